//! Reliability of `trailwarden watch` (the acceptance criteria), against the lab:
//!
//! 1. `kill -9` in the middle of a burst of 1,000 events loses none of them, everything the
//!    attacks broke is restored after the restart, and no restore step is applied twice.
//! 2. Throttling and 5xx answers for a while (on the restore call and on the queue) delay the
//!    restore, but lose neither the event nor the restore.
//! 3. A message watch cannot handle (not JSON, not a CloudTrail event, oversized) is left on
//!    the queue until the redrive policy dead-letters it, with a log line naming it.
//!
//! Test 2 fails with watch as of this writing: when a restore fails (StartLogging throttled
//! past the SDK's retries), `act_on` returns `Ok("not restored")`, so `handle_record` marks
//! the event handled and the message is deleted; nothing retries it before the next sweep.
//!
//! Every test runs its own lab (moto + fault proxy) and `watch` processes; they take the
//! machine's CPUs, so they run one at a time (a lock), and each prints its timings.
//!
//! Queue set-up, test traffic and checks go straight to moto (not through the lab's proxy),
//! so the proxy's counts and the emulated CloudTrail see only watch's calls and the attacks.

use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use trailwarden_aws::sdk::eventbridge::types::Target;
use trailwarden_aws::sdk::sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use trailwarden_aws::{AccountConfig, ClientFactory};
use trailwarden_engine::journal::{Filter, Journal, StepOutcome};
use trailwarden_lab::trailwarden_moto::Fault;
use trailwarden_lab::{
    FORWARDED_RULE, HOME_REGION, Lab, LabSpec, REGIONAL_TRAIL_REGION, ROLE_NAME, operator_env,
    operator_options,
};
use trailwarden_model::outcome::Outcome;
use trailwarden_testkit::IsolatedCommand;

const BIN: &str = env!("CARGO_BIN_EXE_trailwarden");
const REGIONS: &str = "us-east-1,eu-west-1";

/// One test at a time: each starts moto and watch, and the CI machine has few cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_alone(test: impl std::future::Future<Output = ()>) {
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
}

fn command(args: &[String], credentials: &[(&str, String)]) -> Command {
    IsolatedCommand::new(BIN)
        .credentials(credentials)
        .args(args)
        .build()
}

/// Runs a trailwarden command to its end, off the runtime's threads (the lab's proxy runs on
/// them).
async fn output(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// GET on loopback; the body, or None while nothing answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `done` every 100 ms; panics with `what` and `context()` after `limit`.
async fn wait_until(
    what: &str,
    limit: Duration,
    context: impl Fn() -> String,
    mut done: impl AsyncFnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

/// A running `watch`; killed (SIGKILL) when dropped.
struct Watch {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Watch {
    fn metric(&self, name: &str) -> f64 {
        http_get(self.port, "/metrics")
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with(&format!("{name} ")))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(-1.0)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The tail of the log, for failure messages.
    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Serving, and the start-up sweep done (it restores what is already wrong).
    async fn ready(&self) -> Duration {
        wait_until(
            "watch: /healthz and the start-up sweep",
            Duration::from_secs(30),
            || self.log_tail(),
            async || {
                http_get(self.port, "/healthz").as_deref() == Some("ok\n")
                    && self.metric("trailwarden_sweeps_total") >= 1.0
            },
        )
        .await
    }

    /// `kill -9`: no signal handler runs, nothing is finished or flushed.
    fn kill9(&mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A lab with a baseline (and, with `forward`, member events forwarded to the central queue),
/// the credentials of watch's service role, and test clients straight to moto.
struct Env {
    lab: Lab,
    dir: tempfile::TempDir,
    baseline: PathBuf,
    state: PathBuf,
    accounts: Vec<String>,
    global: Vec<String>,
    service_credentials: Vec<(&'static str, String)>,
    /// The security account (the queues), straight to moto.
    security: AccountConfig,
    queue_url: String,
    dlq_url: String,
}

impl Env {
    async fn start(accounts: usize, forward: bool) -> Env {
        let lab = Lab::start(&LabSpec {
            accounts,
            denied_accounts: 0,
            log_interval: Duration::from_millis(500),
        })
        .await
        .expect("lab");
        let d = lab.description.clone();
        let ids: Vec<String> = d.accounts.iter().map(|a| a.id.clone()).collect();
        let dir = tempfile::tempdir().unwrap();
        let baseline = dir.path().join("baseline.toml");
        let state = dir.path().join("state.db");
        let global = strings(&[
            "--endpoint-url",
            &d.endpoint,
            "--role-name",
            ROLE_NAME,
            "--regions",
            REGIONS,
        ]);
        let mut capture = global.clone();
        capture.extend(strings(&[
            "--accounts",
            &ids.join(","),
            "--quiet",
            "baseline",
            "capture",
            "--out",
            baseline.to_str().unwrap(),
        ]));
        let out = output(command(&capture, &operator_env())).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if forward {
            let mut deploy = global.clone();
            deploy.extend(strings(&[
                "--accounts",
                &ids.join(","),
                "--quiet",
                "deploy",
                "--event-bus-arn",
                &d.security.event_bus_arn,
                "--state",
                state.to_str().unwrap(),
                "--apply",
            ]));
            let out = output(command(&deploy, &operator_env())).await;
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let moto = ClientFactory::new(&operator_options(&d.moto_endpoint)).await;
        let service_credentials = lab.service_credentials().await.expect("security session");
        let security = moto.assume_role(&d.security.role_arn).await;
        Env {
            lab,
            dir,
            baseline,
            state,
            accounts: ids,
            global,
            service_credentials,
            security,
            queue_url: d.security.queue_url.clone(),
            dlq_url: d.security.dead_letter_queue_url.clone(),
        }
    }

    fn sqs(&self) -> trailwarden_aws::sdk::sqs::Client {
        self.security.sqs(HOME_REGION)
    }

    /// Starts `watch --remediate` on the central queue with this env's state file.
    fn watch(&self, name: &str) -> Watch {
        self.watch_with(name, &[])
    }

    /// `watch` with more arguments.
    fn watch_with(&self, name: &str, extra: &[&str]) -> Watch {
        let port = free_port();
        let log = self.dir.path().join(format!("{name}.log"));
        let mut args = self.global.clone();
        args.extend(strings(&[
            "-v",
            "watch",
            "--queue-url",
            &self.queue_url,
            "--remediate",
            // No periodic sweep during a test: only the start-up one.
            "--sweep-interval",
            "1h",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--baseline",
            self.baseline.to_str().unwrap(),
            "--state",
            self.state.to_str().unwrap(),
        ]));
        args.extend(strings(extra));
        let child = command(&args, &self.service_credentials)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Watch { child, port, log }
    }

    async fn set_queue(&self, url: &str, attributes: &[(QueueAttributeName, String)]) {
        let mut call = self.sqs().set_queue_attributes().queue_url(url);
        for (k, v) in attributes {
            call = call.attributes(k.clone(), v);
        }
        call.send().await.unwrap();
    }

    /// (ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible).
    async fn counts(&self, url: &str) -> (u64, u64) {
        let out = self
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let get = |k: QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(&k))
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX)
        };
        (
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// Receives and deletes every visible message: (message id, body).
    async fn drain(&self, url: &str) -> Vec<(String, String)> {
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs()
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .unwrap();
            if out.messages().is_empty() {
                return all;
            }
            for m in out.messages() {
                all.push((
                    m.message_id().unwrap_or_default().to_owned(),
                    m.body().unwrap_or_default().to_owned(),
                ));
                self.sqs()
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// Sends bodies 10 at a time; their message ids in order.
    async fn send_all(&self, bodies: &[String]) -> Vec<String> {
        let mut ids = Vec::new();
        for chunk in bodies.chunks(10) {
            let mut call = self.sqs().send_message_batch().queue_url(&self.queue_url);
            for (i, body) in chunk.iter().enumerate() {
                call = call.entries(
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .message_body(body)
                        .build()
                        .unwrap(),
                );
            }
            let out = call.send().await.unwrap();
            assert!(out.failed().is_empty(), "{:?}", out.failed());
            let mut ok: Vec<_> = out.successful().to_vec();
            ok.sort_by_key(|e| e.id()[1..].parse::<usize>().unwrap());
            ids.extend(ok.iter().map(|e| e.message_id().to_owned()));
        }
        ids
    }

    async fn send(&self, body: &str) -> String {
        self.sqs()
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap()
            .message_id()
            .unwrap()
            .to_owned()
    }

    /// A second queue on the security account's forwarding rule: it gets a copy of every
    /// event EventBridge delivers to the central queue, so the test knows their eventIDs.
    async fn witness(&self) -> String {
        let url = self
            .sqs()
            .create_queue()
            .queue_name("reliability-witness")
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let security = &self.lab.description.security;
        self.security
            .eventbridge(HOME_REGION)
            .put_targets()
            .rule(FORWARDED_RULE)
            .targets(
                Target::builder()
                    .id("reliability-witness")
                    .arn(format!(
                        "arn:aws:sqs:{HOME_REGION}:{}:reliability-witness",
                        security.id
                    ))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        url
    }

    /// CloudTrail records the lab really logged (its log files in the members' buckets),
    /// read-only calls without errors: benign noise. Waits for at least `min` of them.
    async fn logged_reads(&self, min: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let mut reads = Vec::new();
            let moto =
                ClientFactory::new(&operator_options(&self.lab.description.moto_endpoint)).await;
            for a in &self.lab.description.accounts {
                let member = moto
                    .assume_role(&format!("arn:aws:iam::{}:role/{ROLE_NAME}", a.id))
                    .await;
                let s3 = member.s3(HOME_REGION);
                let bucket = a.bucket.clone().unwrap();
                let listed = s3
                    .list_objects_v2()
                    .bucket(&bucket)
                    .prefix("AWSLogs/")
                    .send()
                    .await
                    .unwrap();
                for o in listed.contents() {
                    let key = o.key().unwrap_or_default();
                    if key.contains("CloudTrail-Digest") || !key.ends_with(".json.gz") {
                        continue;
                    }
                    let object = s3.get_object().bucket(&bucket).key(key).send().await;
                    let bytes = object.unwrap().body.collect().await.unwrap().into_bytes();
                    let mut text = String::new();
                    #[allow(clippy::disallowed_types)]
                    // a test reading back the log file the lab wrote
                    flate2::read::GzDecoder::new(&bytes[..])
                        .read_to_string(&mut text)
                        .unwrap();
                    let file: Value = serde_json::from_str(&text).unwrap();
                    reads.extend(
                        file["Records"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .filter(|r| r["readOnly"] == true && r.get("errorCode").is_none())
                            .cloned(),
                    );
                }
            }
            if reads.len() >= min {
                return reads;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "only {} logged read records",
                reads.len()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn audit_clean(&self) -> Result<(), String> {
        let mut args = self.global.clone();
        args.extend(strings(&[
            "--format",
            "json",
            "audit",
            "--baseline",
            self.baseline.to_str().unwrap(),
        ]));
        let out = output(command(&args, &operator_env())).await;
        match out.status.code() {
            Some(0) => Ok(()),
            _ => Err(format!(
                "audit exit {:?}\n{}\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    }

    async fn trail_logging(&self, account: &str, region: &str, name: &str) -> bool {
        ClientFactory::new(&operator_options(&self.lab.description.moto_endpoint))
            .await
            .assume_role(&format!("arn:aws:iam::{account}:role/{ROLE_NAME}"))
            .await
            .cloudtrail(region)
            .get_trail_status()
            .name(name)
            .send()
            .await
            .unwrap()
            .is_logging()
            .unwrap_or(false)
    }
}

/// The EventBridge envelope AWS puts on the queue for a CloudTrail record.
fn envelope(record: &Value) -> Value {
    let source = record["eventSource"]
        .as_str()
        .unwrap_or_default()
        .trim_end_matches(".amazonaws.com");
    json!({
        "version": "0",
        "id": format!("env-{}", record["eventID"].as_str().unwrap_or_default()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{source}"),
        "account": record["recipientAccountId"],
        "time": record["eventTime"],
        "region": record["awsRegion"],
        "resources": [],
        "detail": record,
    })
}

/// `n` benign events with unique eventIDs, cloned from real logged records.
fn noise(reads: &[Value], from: usize, n: usize) -> Vec<(String, String)> {
    (from..from + n)
        .map(|i| {
            let mut r = reads[i % reads.len()].clone();
            let id = format!("noise-{i:04}-{}", r["eventID"].as_str().unwrap_or_default());
            r["eventID"] = json!(id);
            (id, envelope(&r).to_string())
        })
        .collect()
}

fn event_of(body: &str) -> Value {
    serde_json::from_str::<Value>(body)
        .map(|v| v["detail"].clone())
        .unwrap_or(Value::Null)
}

fn is_attacker(event: &Value) -> bool {
    event["userIdentity"]["arn"]
        .as_str()
        .is_some_and(|a| a.ends_with(&format!("/{}", trailwarden_lab::ATTACKER_SESSION)))
}

/// Calls that change something (not reads, not STS, not the queue).
fn writes(calls: &BTreeMap<(String, String), u64>) -> BTreeMap<String, u64> {
    calls
        .iter()
        .filter(|((service, op), _)| {
            !["sts", "sqs"].contains(&service.as_str())
                && !["Get", "List", "Describe", "Lookup", "Head", "GET ", "HEAD "]
                    .iter()
                    .any(|p| op.starts_with(p))
        })
        .map(|((service, op), n)| (format!("{service}:{op}"), *n))
        .collect()
}

fn journal(path: &Path) -> Journal {
    Journal::open(path).unwrap()
}

const BURST: usize = 1_000;
/// Messages waiting on the queue at most while the burst is sent.
const BACKLOG: u64 = 20;

#[test]
fn kill_9_during_a_burst_of_1000_events_loses_none_and_restores_everything_once() {
    run_alone(async {
        let t = Instant::now();
        let env = Env::start(3, true).await;
        let (a1, a2, a3) = (
            env.accounts[0].as_str(),
            env.accounts[1].as_str(),
            env.accounts[2].as_str(),
        );
        let witness = env.witness().await;
        // In-flight messages of the killed process reappear after 2 s.
        env.set_queue(
            &env.queue_url,
            &[(QueueAttributeName::VisibilityTimeout, "2".into())],
        )
        .await;
        // deploy's own forwarded calls: not part of the burst.
        let witnessed: RefCell<Vec<(String, String)>> = RefCell::default();
        tokio::time::sleep(Duration::from_millis(500)).await;
        env.drain(&env.queue_url).await;
        env.drain(&witness).await;
        let reads = env.logged_reads(50).await;
        println!(
            "setup (lab, baseline, deploy, {} logged reads): {:?}",
            reads.len(),
            t.elapsed()
        );

        env.lab.proxy.reset_calls();
        let mut first = env.watch("watch-1");
        let ready = first.ready().await;
        println!("watch 1 ready after {ready:?}");
        assert!(env.audit_clean().await.is_ok(), "not clean before attacks");

        // The burst: benign noise with real tampering between, in 3 accounts and 2 regions,
        // sent as fast as watch takes it, with at most BACKLOG messages waiting (moto scans
        // the whole queue on every call: a 1,000-message backlog makes each call ~0.3 s, 20 keeps it ~15 ms).
        let burst_start = Instant::now();
        let attacks: [&[(&str, &str)]; 2] = [
            &[("stop-logging", a1), ("minimize", a2)],
            &[("exclude-management-events", a3), ("eu-validation-off", a2)],
        ];
        let producer = async {
            let mut expected: Vec<String> = Vec::new();
            let mut attack_ids: Vec<String> = Vec::new();
            let mut round = 0;
            while expected.len() < BURST {
                if round < attacks.len() && expected.len() >= [300, 650][round] {
                    let before = attack_ids.len();
                    for (technique, account) in attacks[round] {
                        if *technique == "eu-validation-off" {
                            // The regional trail, in its own region.
                            env.lab
                                .attacker(account)
                                .await
                                .cloudtrail(REGIONAL_TRAIL_REGION)
                                .update_trail()
                                .name("eu-audit")
                                .enable_log_file_validation(false)
                                .send()
                                .await
                                .unwrap();
                        } else {
                            env.lab.attack(technique, account).await.unwrap();
                        }
                    }
                    // The attacks' forwarded events (the witness gets the same ones).
                    wait_until(
                        "the attacks' events forwarded",
                        Duration::from_secs(10),
                        || format!("{:#?}", witnessed.borrow()),
                        async || {
                            let more = env.drain(&witness).await;
                            witnessed.borrow_mut().extend(more);
                            attack_ids = witnessed
                                .borrow()
                                .iter()
                                .map(|(_, b)| event_of(b))
                                .filter(is_attacker)
                                .map(|e| e["eventID"].as_str().unwrap_or_default().to_owned())
                                .collect();
                            attack_ids.len() >= before + attacks[round].len()
                        },
                    )
                    .await;
                    expected.extend(attack_ids[before..].iter().cloned());
                    round += 1;
                    continue;
                }
                if env.counts(&env.queue_url).await.0 >= BACKLOG {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                let next = if round < attacks.len() {
                    [300, 650][round]
                } else {
                    BURST
                };
                let batch = noise(&reads, expected.len(), 10.min(next - expected.len()));
                env.send_all(&batch.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>())
                    .await;
                expected.extend(batch.into_iter().map(|(id, _)| id));
            }
            println!(
                "burst of {BURST} sent ({} attack events) in {:?}",
                attack_ids.len(),
                burst_start.elapsed()
            );
            (expected, attack_ids)
        };
        // kill -9 in the middle of it, and restart on the same state.
        let killer = async {
            wait_until(
                "watch 1 handling half the burst",
                Duration::from_secs(40),
                || first.log_tail(),
                // Mid-batch (watch receives 10 at a time): some received, not yet handled.
                async || {
                    let n = first.metric("trailwarden_events_total");
                    n >= 500.0 && (2.0..=8.0).contains(&(n % 10.0))
                },
            )
            .await;
            let at_kill = first.metric("trailwarden_events_total");
            let restores_before_kill = first.metric("trailwarden_restores_total");
            first.kill9();
            let in_queue = env.counts(&env.queue_url).await;
            println!(
                "kill -9 after {:?} of burst: {at_kill} events evaluated, {restores_before_kill} restores; queue (visible, in flight) {in_queue:?}",
                burst_start.elapsed()
            );
            assert!(
                at_kill < BURST as f64,
                "the kill came after the burst was handled: it proves nothing"
            );
            let second = env.watch("watch-2");
            second.ready().await;
            (second, Instant::now())
        };
        let ((expected, attack_ids), (second, restart)) = tokio::join!(producer, killer);
        assert_eq!(expected.len(), BURST);
        assert_eq!(
            expected.iter().collect::<BTreeSet<_>>().len(),
            BURST,
            "eventIDs are unique"
        );
        assert_eq!(attack_ids.len(), 4, "one event per attack");

        let drained = wait_until(
            "queue drained after the restart",
            Duration::from_secs(60),
            || second.log_tail(),
            async || {
                if env.counts(&env.queue_url).await != (0, 0) {
                    return false;
                }
                // Everything forwarded until now reached the central queue too; drained
                // again afterwards means each of them was handled and deleted.
                let more = env.drain(&witness).await;
                witnessed.borrow_mut().extend(more);
                env.counts(&env.queue_url).await == (0, 0)
            },
        )
        .await;
        println!(
            "restart → queue drained: {:?} (drain wait {drained:?}); duplicates recognised: {}",
            restart.elapsed(),
            second.metric("trailwarden_duplicate_events_total")
        );
        drop(second);

        // Nothing lost: every eventID of the burst, and every event forwarded meanwhile
        // (the restores' own calls included), is recorded as handled.
        let j = journal(&env.state);
        let missing: Vec<&String> = expected
            .iter()
            .filter(|id| j.accounts_that_handled(id).unwrap().is_empty())
            .collect();
        assert!(
            missing.is_empty(),
            "{} of {BURST} events not handled, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        let forwarded: Vec<String> = witnessed
            .borrow()
            .iter()
            .map(|(_, b)| {
                event_of(b)["eventID"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        let lost: Vec<&String> = forwarded
            .iter()
            .filter(|id| j.accounts_that_handled(id).unwrap().is_empty())
            .collect();
        assert!(lost.is_empty(), "forwarded events not handled: {lost:?}");
        assert_eq!(env.counts(&env.dlq_url).await, (0, 0), "dead-lettered");

        // Everything restored.
        env.audit_clean().await.unwrap();
        // Every attack was detected from its event and its account is restored. A process
        // killed after its restore but before it recorded the detection leaves the event to
        // the next one, which truthfully finds the state already good; that the restore
        // happened (once) is what the writes below prove.
        let detections = j.detections(None).unwrap();
        for id in &attack_ids {
            let d: Vec<_> = detections
                .iter()
                .filter(|d| d.event_id.as_deref() == Some(id))
                .collect();
            assert!(
                !d.is_empty()
                    && d.iter()
                        .all(|d| matches!(d.outcome, Outcome::Restored | Outcome::AlreadyGood)),
                "attack event {id}: {d:#?}"
            );
        }

        // No duplicate harm. Each attack broke one trail once, and nothing broke it again,
        // so each broken setting needs exactly one restoring write:
        //   stop-logging (a1)                → cloudtrail:StartLogging      (management-events)
        //   minimize (a2)                    → cloudtrail:UpdateTrail       (management-events)
        //   exclude-management-events (a3)   → cloudtrail:PutEventSelectors (management-events)
        //   validation off (a2, eu-west-1)   → cloudtrail:UpdateTrail       (eu-audit)
        // (the plan puts every setting of a trail back in one UpdateTrail). The proxy counts
        // every write watch sent, across both processes, whether or not the journal got to
        // record it before the kill: a write repeated for an event handled again after the
        // restart, or any write the attacks do not explain, is harm.
        let writes = writes(&env.lab.proxy.calls());
        let want: BTreeMap<String, u64> = [
            ("cloudtrail:PutEventSelectors", 1),
            ("cloudtrail:StartLogging", 1),
            ("cloudtrail:UpdateTrail", 2),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(writes, want, "watch's writes");
        // And the journal: every applied step once, none failed.
        let entries = j.list(&Filter::default()).unwrap();
        let mut applied: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
        for e in entries.iter().filter(|e| e.outcome == StepOutcome::Applied) {
            applied
                .entry((e.account.clone(), e.resource.clone(), e.call.clone()))
                .or_default()
                .push(e.run_id.clone());
        }
        assert_eq!(applied.len(), 4, "{applied:#?}");
        assert!(applied.values().all(|runs| runs.len() == 1), "{applied:#?}");
        assert!(
            entries
                .iter()
                .all(|e| !matches!(e.outcome, StepOutcome::Failed | StepOutcome::NotRestored)),
            "{entries:#?}"
        );
        println!("test 1 total: {:?}", t.elapsed());
    });
}

#[test]
fn throttling_and_5xx_for_a_while_delay_the_restore_but_lose_nothing() {
    run_alone(async {
        let t = Instant::now();
        let env = Env::start(1, true).await;
        let victim = env.accounts[0].clone();
        env.set_queue(
            &env.queue_url,
            &[(QueueAttributeName::VisibilityTimeout, "2".into())],
        )
        .await;
        let reads = env.logged_reads(1).await;
        // One receive loop: its long poll, begun before the faults, is ended by one event.
        let watch = env.watch_with("watch", &["--receivers", "1"]);
        watch.ready().await;
        println!("setup: {:?}", t.elapsed());
        let proxy = &env.lab.proxy;

        // The queue answers 503 to watch's receives, and CloudTrail throttles StartLogging.
        let receive = proxy.add_first(
            Fault::error(503, "ServiceUnavailable", "Service is unavailable")
                .service("sqs")
                .operation("ReceiveMessage"),
        );
        let start_logging = proxy.add_first(
            Fault::throttle()
                .service("cloudtrail")
                .operation("StartLogging"),
        );
        // watch is in a long poll begun before the faults: a benign event ends it.
        let (wake_id, wake) = noise(&reads, 0, 1).remove(0);
        env.send(&wake).await;
        wait_until(
            "receives failing",
            Duration::from_secs(15),
            || watch.log_tail(),
            async || proxy.hits(receive) >= 2,
        )
        .await;
        let faults_start = Instant::now();
        env.lab.attack("stop-logging", &victim).await.unwrap();
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(env.counts(&env.queue_url).await.0 >= 1, "the event waits");
        proxy.remove(receive);
        println!(
            "receives failed for {:?} ({} answers)",
            faults_start.elapsed(),
            proxy.hits(receive)
        );
        // Now watch gets the event; StartLogging stays throttled for 10 s more: longer than
        // one call's retries (5 attempts from 200 ms backoff, ~3 s) and than the restore's
        // verification (3 reads, 2 s and 4 s apart), as a real throttling episode can be.
        wait_until(
            "the restore tried",
            Duration::from_secs(10),
            || watch.log_tail(),
            async || proxy.hits(start_logging) >= 1,
        )
        .await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        proxy.remove(start_logging);
        println!(
            "StartLogging throttled {} times; faults over after {:?}",
            proxy.hits(start_logging),
            faults_start.elapsed()
        );
        assert!(
            !env.trail_logging(&victim, HOME_REGION, "management-events")
                .await,
            "restored through the faults?"
        );

        // The restore happens once the faults are over: the event whose restore failed must
        // come back (the message left on the queue, not marked handled) and be retried; the
        // periodic sweep (1 h here, 15 min by default) is a backstop, not the retry.
        let restored = wait_until(
            "restored after the faults",
            Duration::from_secs(25),
            || watch.log_tail(),
            async || {
                env.trail_logging(&victim, HOME_REGION, "management-events")
                    .await
            },
        )
        .await;
        println!("faults over → restored: {restored:?}");

        // Nothing lost: the attack's event handled (as restored), the queue drained, no dead
        // letter; the benign event handled too.
        wait_until(
            "queue drained",
            Duration::from_secs(10),
            || watch.log_tail(),
            async || env.counts(&env.queue_url).await == (0, 0),
        )
        .await;
        let j = journal(&env.state);
        assert!(!j.accounts_that_handled(&wake_id).unwrap().is_empty());
        let detections = j.detections(None).unwrap();
        let attack: Vec<_> = detections
            .iter()
            .filter(|d| {
                d.event_name.as_deref() == Some("StopLogging")
                    && d.actor.as_deref().is_some_and(|a| a.ends_with("/mallory"))
            })
            .collect();
        assert!(!attack.is_empty(), "{detections:#?}");
        let event_id = attack[0].event_id.clone().unwrap();
        assert!(
            !j.accounts_that_handled(&event_id).unwrap().is_empty(),
            "{event_id} not handled: {attack:#?}\n{}",
            watch.log_tail()
        );
        assert!(
            attack.iter().any(|d| d.outcome == Outcome::Restored),
            "{attack:#?}"
        );
        assert!(
            j.list(&Filter::default())
                .unwrap()
                .iter()
                .any(|e| e.call == "cloudtrail:StartLogging" && e.outcome == StepOutcome::Applied),
        );
        assert_eq!(env.counts(&env.dlq_url).await, (0, 0), "dead-lettered");
        assert!(proxy.hits(receive) >= 2 && proxy.hits(start_logging) >= 1);
        println!("test 2 total: {:?}", t.elapsed());
    });
}

#[test]
fn malformed_and_oversized_messages_are_dead_lettered_with_a_log_line_naming_them() {
    run_alone(async {
        let t = Instant::now();
        let env = Env::start(1, false).await;
        // Fail fast: visible again after 1 s, dead-lettered after 2 receives.
        let dlq_arn = env.lab.description.security.dead_letter_queue_arn.clone();
        env.set_queue(
            &env.queue_url,
            &[
                (QueueAttributeName::VisibilityTimeout, "1".into()),
                (
                    QueueAttributeName::RedrivePolicy,
                    json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}).to_string(),
                ),
            ],
        )
        .await;
        let reads = env.logged_reads(2).await;
        let watch = env.watch("watch");
        watch.ready().await;
        println!("setup: {:?}", t.elapsed());

        let mut good = noise(&reads, 0, 2);
        let not_json = env.send("this is not JSON {").await;
        let (good_1, body) = good.remove(0);
        env.send(&body).await;
        let not_cloudtrail = env
            .send(
                &json!({"version": "0", "detail-type": "EC2 Instance State-change Notification",
                    "source": "aws.ec2", "detail": {"instance-id": "i-0123456789abcdef0", "state": "running"}})
                .to_string(),
            )
            .await;
        // A real CloudTrail event, too big: its only fault is its size (> 256 KiB, which
        // EventBridge never delivers; moto's queues, like SQS's today, take up to 1 MiB).
        let mut big = reads[1].clone();
        big["eventID"] = json!("oversized-1");
        big["requestParameters"] = json!({"padding": "x".repeat(300 * 1024)});
        let big = envelope(&big).to_string();
        assert!(big.len() > 256 * 1024);
        let oversized = env.send(&big).await;
        let (good_2, body) = good.remove(0);
        env.send(&body).await;
        let bad = [
            ("not JSON", not_json),
            ("not a CloudTrail event", not_cloudtrail),
            ("oversized", oversized),
        ];

        let dead: RefCell<BTreeSet<String>> = RefCell::default();
        let took = wait_until(
            "the bad messages dead-lettered",
            Duration::from_secs(30),
            || format!("in the DLQ: {:?}\n{}", dead.borrow(), watch.log_tail()),
            async || {
                let more = env.drain(&env.dlq_url).await;
                dead.borrow_mut().extend(more.into_iter().map(|(id, _)| id));
                bad.iter().all(|(_, id)| dead.borrow().contains(id))
            },
        )
        .await;
        println!("sent → all dead-lettered: {took:?}");
        wait_until(
            "queue drained",
            Duration::from_secs(10),
            || watch.log_tail(),
            async || env.counts(&env.queue_url).await == (0, 0),
        )
        .await;
        let expected_dead: BTreeSet<String> = bad.iter().map(|(_, id)| id.clone()).collect();
        assert_eq!(
            dead.into_inner(),
            expected_dead,
            "only the bad ones are dead letters"
        );
        let j = journal(&env.state);
        assert!(
            !j.accounts_that_handled(&good_1).unwrap().is_empty()
                && !j.accounts_that_handled(&good_2).unwrap().is_empty()
        );
        assert!(j.accounts_that_handled("oversized-1").unwrap().is_empty());

        // Each bad message is named (id and receive count) in a log line that says why.
        let log = watch.log_text();
        for (what, id) in &bad {
            let lines: Vec<&str> = log.lines().filter(|l| l.contains(id.as_str())).collect();
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains("not handled") && l.contains("receive_count")),
                "{what} ({id}): no log line naming it:\n{log}"
            );
            println!("{what}: {}", lines[0]);
        }
        println!("test 3 total: {:?}", t.elapsed());
    });
}
