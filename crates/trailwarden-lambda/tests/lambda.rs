//! The real `trailwarden-lambda` binary against a Lambda Runtime API emulator (below) and the
//! lab: real EventBridge envelopes of real attacks (captured from the member account's default
//! bus through an SQS queue), restores verified with the SDK, a scheduled sweep, failed
//! attempts, failed restores and Lambda's retry, unsupported events, and cold-start errors.

use serde_json::{Value, json};
use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use trailwarden_aws::sdk::s3::primitives::ByteStream;
use trailwarden_aws::{AccountConfig, ClientFactory};
use trailwarden_lab::trailwarden_moto::Fault;
use trailwarden_lab::{HOME_REGION, Lab, LabSpec, ROLE_NAME, operator_options, session_env};
use trailwarden_testkit::IsolatedCommand;
use trailwarden_testkit::iam_policy::{self, assert_calls_allowed};

const BIN: &str = env!("CARGO_BIN_EXE_trailwarden-lambda");
const FUNCTION: &str = "trailwarden-guard";
const TRAIL: &str = "management-events";

// ---------------------------------------------------------------------------------------------
// A Lambda Runtime API emulator: what the Lambda service offers a custom runtime on
// AWS_LAMBDA_RUNTIME_API (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html).

/// What the function answered to one invocation (or to its initialisation).
#[derive(Debug, Clone)]
struct Answer {
    /// `response`, `error` or `init-error`.
    kind: String,
    request_id: String,
    /// The `Lambda-Runtime-Function-Error-Type` header, for errors.
    error_type_header: Option<String>,
    body: Value,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<(String, Value)>,
}

struct RuntimeApi {
    address: String,
    queue: Arc<(Mutex<Queue>, Condvar)>,
    answers: mpsc::Receiver<Answer>,
    closed: Arc<AtomicBool>,
    next_id: AtomicU64,
}

impl RuntimeApi {
    fn start(account: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let (tx, answers) = mpsc::channel();
        let function_arn = format!("arn:aws:lambda:{HOME_REGION}:{account}:function:{FUNCTION}");
        {
            let queue = queue.clone();
            let closed = closed.clone();
            let arn = function_arn;
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { break };
                    if closed.load(Ordering::Relaxed) {
                        break;
                    }
                    let (queue, closed, tx, arn) =
                        (queue.clone(), closed.clone(), tx.clone(), arn.clone());
                    std::thread::spawn(move || serve(stream, &queue, &closed, &tx, &arn));
                }
            });
        }
        Self {
            address,
            queue,
            answers,
            closed,
            next_id: AtomicU64::new(1),
        }
    }

    /// Hands `event` to the function and waits for its answer.
    fn invoke(&self, event: &Value, limit: Duration) -> Answer {
        let id = format!(
            "{:08x}-test-4000-8000-{:012x}",
            std::process::id(),
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        {
            let (lock, ready) = &*self.queue;
            lock.lock()
                .unwrap()
                .pending
                .push_back((id.clone(), event.clone()));
            ready.notify_all();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = self
                .answers
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no answer to invocation {id} within {limit:?}"));
            if answer.request_id == id {
                return answer;
            }
        }
    }

    /// The next answer of any kind (an init error comes without an invocation).
    fn next_answer(&self, limit: Duration) -> Option<Answer> {
        self.answers.recv_timeout(limit).ok()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Relaxed);
        self.queue.1.notify_all();
        let _ = TcpStream::connect(&self.address);
    }
}

/// False once the other end closed the connection (nothing to read, and no data pending).
fn peer_is_open(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let open = match stream.peek(&mut [0u8; 1]) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    open
}

/// One connection of the runtime's HTTP client (keep-alive: several requests in turn).
fn serve(
    stream: TcpStream,
    queue: &(Mutex<Queue>, Condvar),
    closed: &AtomicBool,
    answers: &mpsc::Sender<Answer>,
    function_arn: &str,
) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_owned(),
            parts.next().unwrap_or_default().to_owned(),
        );
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if let Some(length) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
            body.resize(length, 0);
            if reader.read_exact(&mut body).is_err() {
                return;
            }
        } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            loop {
                let mut size = String::new();
                if reader.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                if reader.read_exact(&mut chunk).is_err() {
                    return;
                }
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        }
        let respond = |w: &mut TcpStream, status: &str, extra: &str, body: &str| {
            let _ = write!(
                w,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = w.flush();
        };
        let parsed = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method.as_str(), segments.as_slice()) {
            ("GET", ["2018-06-01", "runtime", "invocation", "next"]) => {
                let (lock, ready) = queue;
                let mut q = lock.lock().unwrap();
                let (id, event) = loop {
                    if closed.load(Ordering::Relaxed) {
                        return;
                    }
                    // A function that was stopped while it waited must not take the next
                    // invocation with it: the connection is looked at before each hand-out.
                    if !peer_is_open(reader.get_ref()) {
                        return;
                    }
                    if let Some(next) = q.pending.pop_front() {
                        break next;
                    }
                    q = ready.wait_timeout(q, Duration::from_millis(200)).unwrap().0;
                };
                drop(q);
                let deadline = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
                    + 120_000;
                let extra = format!(
                    "Lambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\n\
                     Lambda-Runtime-Invoked-Function-Arn: {function_arn}\r\n\
                     Lambda-Runtime-Trace-Id: Root=1-67a1b2c3-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=0\r\n"
                );
                respond(&mut writer, "200 OK", &extra, &event.to_string());
            }
            (
                "POST",
                [
                    "2018-06-01",
                    "runtime",
                    "invocation",
                    id,
                    kind @ ("response" | "error"),
                ],
            ) => {
                let _ = answers.send(Answer {
                    kind: (*kind).to_owned(),
                    request_id: (*id).to_owned(),
                    error_type_header: header("lambda-runtime-function-error-type"),
                    body: parsed(),
                });
                respond(&mut writer, "202 Accepted", "", r#"{"status":"OK"}"#);
            }
            ("POST", ["2018-06-01", "runtime", "init", "error"]) => {
                let _ = answers.send(Answer {
                    kind: "init-error".into(),
                    request_id: String::new(),
                    error_type_header: header("lambda-runtime-function-error-type"),
                    body: parsed(),
                });
                respond(&mut writer, "202 Accepted", "", r#"{"status":"OK"}"#);
            }
            _ => respond(
                &mut writer,
                "404 Not Found",
                "",
                r#"{"errorMessage":"unknown path"}"#,
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------

struct Function {
    child: Child,
    stdout: std::path::PathBuf,
    stderr: std::path::PathBuf,
}

impl Function {
    /// Starts the binary as Lambda would: the runtime's variables, the execution role's
    /// credentials, and the function's own configuration.
    fn start(api: &RuntimeApi, dir: &std::path::Path, name: &str, vars: &[(&str, String)]) -> Self {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let mut c = IsolatedCommand::new(BIN)
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/28/[$LATEST]0123456789abcdef",
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{FUNCTION}"),
            )
            .env("AWS_REGION", HOME_REGION)
            .env("AWS_DEFAULT_REGION", HOME_REGION)
            .build();
        c.envs(vars.iter().map(|(k, v)| (k, v)))
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        Self {
            child: c.spawn().unwrap(),
            stdout,
            stderr,
        }
    }

    fn logs(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Clients in `account` straight to moto (no proxy: the lab's CloudTrail emulation does not
/// see these calls, so nothing reports them).
async fn quiet_clients(lab: &Lab, account: &str) -> AccountConfig {
    ClientFactory::new(&operator_options(&lab.description.moto_endpoint))
        .await
        .assume_role(&format!("arn:aws:iam::{account}:role/{ROLE_NAME}"))
        .await
}

async fn is_logging(clients: &AccountConfig) -> bool {
    clients
        .cloudtrail(HOME_REGION)
        .get_trail_status()
        .name(TRAIL)
        .send()
        .await
        .unwrap()
        .is_logging()
        .unwrap_or(false)
}

/// The next envelope on `queue` whose record `wanted` accepts (others are consumed).
async fn next_envelope(
    sqs: &trailwarden_aws::sdk::sqs::Client,
    queue: &str,
    seen: &mut HashSet<String>,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            let envelope: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            let id = envelope["detail"]["eventID"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if wanted(&envelope["detail"]) && seen.insert(id) {
                return envelope;
            }
        }
    }
    panic!("no matching EventBridge event reached the queue within 15 s");
}

fn by_attacker(name: &'static str, failed: bool) -> impl Fn(&Value) -> bool {
    move |d: &Value| {
        d["eventName"] == name
            && d["userIdentity"]["arn"]
                .as_str()
                .is_some_and(|a| a.ends_with("/mallory"))
            && d.get("errorCode").is_some() == failed
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_restores_from_real_events_and_sweeps_on_schedule() {
    let t0 = Instant::now();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut lap = {
        let mut last = Instant::now();
        move |what: &'static str, timings: &mut Vec<(&str, Duration)>| {
            timings.push((what, last.elapsed()));
            last = Instant::now();
        }
    };
    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        log_interval: Duration::from_secs(5),
    })
    .await
    .expect("lab");
    let account = lab.description.accounts[0].id.clone();
    let member = quiet_clients(&lab, &account).await;
    let dir = tempfile::tempdir().unwrap();
    lap("lab start", &mut timings);

    // The baseline lives in S3 (read with the function's role at cold start). Its bucket
    // exists before the capture, so it is part of the known-good state.
    let config_bucket = format!("trailwarden-config-{account}");
    member
        .s3(HOME_REGION)
        .create_bucket()
        .bucket(&config_bucket)
        .send()
        .await
        .unwrap();
    let baseline_path = dir.path().join("baseline.toml");
    // The baseline as `trailwarden baseline capture` writes it (the engine's capture).
    let factory = ClientFactory::new(&operator_options(&lab.description.endpoint)).await;
    let selection = trailwarden_aws::fanout::Selection {
        accounts: Some(vec![account.parse().unwrap()]),
        role_name: Some(ROLE_NAME.into()),
        regions: trailwarden_model::target::RegionSelection::List(vec![
            "us-east-1".into(),
            "eu-west-1".into(),
        ]),
        concurrency: 16,
        ..Default::default()
    };
    let state = trailwarden_engine::state::read_state(
        &factory,
        &selection,
        &[],
        &trailwarden_engine::state::no_progress,
    )
    .await
    .unwrap();
    assert!(
        state.snapshots.gaps.is_empty(),
        "{:?}",
        state.snapshots.gaps
    );
    let captured =
        trailwarden_engine::state::capture(state.snapshots.accounts, None, "lambda test");
    std::fs::write(&baseline_path, captured.baseline.to_toml().unwrap()).unwrap();
    member
        .s3(HOME_REGION)
        .put_object()
        .bucket(&config_bucket)
        .key("trailwarden/baseline.toml")
        .body(ByteStream::from(std::fs::read(&baseline_path).unwrap()))
        .send()
        .await
        .unwrap();

    // The real envelopes: a rule on the member's default bus with `trailwarden deploy`'s
    // pattern, delivering to a queue the test reads.
    let sqs = member.sqs(HOME_REGION);
    let queue_url = sqs
        .create_queue()
        .queue_name("lambda-test-events")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(trailwarden_aws::sdk::sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&trailwarden_aws::sdk::sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let rules = trailwarden_rules_pattern();
    let events = member.eventbridge(HOME_REGION);
    events
        .put_rule()
        .name("trailwarden-lambda")
        .event_pattern(rules.to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("trailwarden-lambda")
        .targets(
            trailwarden_aws::sdk::eventbridge::types::Target::builder()
                .id("test-queue")
                .arn(&queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    lap("baseline capture + S3 + rule", &mut timings);

    // The execution role's credentials: a role session named after the function, as Lambda
    // does (through the lab's endpoint, so its CloudTrail emulation knows who calls).
    let operator = ClientFactory::new(&operator_options(&lab.description.endpoint)).await;
    let assumed = operator
        .caller()
        .sts(HOME_REGION)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/trailwarden-lambda"))
        .role_session_name(FUNCTION)
        .send()
        .await
        .unwrap();
    let credentials = session_env(assumed.credentials().unwrap());
    // The function alerts through SNS: a topic, and a queue subscribed to read what it says.
    let sns = member.sns(HOME_REGION);
    let topic = sns
        .create_topic()
        .name("trailwarden-alerts")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    let inbox = sqs
        .create_queue()
        .queue_name("alerts-inbox")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:{HOME_REGION}:{account}:alerts-inbox"))
        .send()
        .await
        .unwrap();
    // From here on, every call the proxy counts is the function's (the lab's attacker is not
    // counted), so they can be checked against the function's IAM policy.
    lab.proxy.reset_calls();
    let api = RuntimeApi::start(&account);
    let mut vars: Vec<(&str, String)> = credentials.to_vec();
    vars.extend([
        ("AWS_ENDPOINT_URL", lab.description.endpoint.clone()),
        (
            "TRAILWARDEN_BASELINE",
            format!("s3://{config_bucket}/trailwarden/baseline.toml"),
        ),
        ("TRAILWARDEN_REGIONS", "us-east-1,eu-west-1".into()),
        (
            "TRAILWARDEN_STATE",
            dir.path().join("state.db").display().to_string(),
        ),
        ("TRAILWARDEN_VERIFY_ATTEMPTS", "1".into()),
        ("TRAILWARDEN_NOTIFY_SNS", topic.clone()),
    ]);
    let function = Function::start(&api, dir.path(), "function", &vars);
    let limit = Duration::from_secs(30);
    let mut seen = HashSet::new();
    let start_logging_calls = || lab.proxy.calls_to("cloudtrail", "StartLogging");

    // 1. StopLogging → the real event → restored, verified by reading the trail.
    lab.attack("stop-logging", &account).await.unwrap();
    assert!(!is_logging(&member).await);
    let stop = next_envelope(
        &sqs,
        &queue_url,
        &mut seen,
        by_attacker("StopLogging", false),
    )
    .await;
    assert_eq!(
        stop["detail-type"], "AWS API Call via CloudTrail",
        "{stop:#}"
    );
    assert_eq!(stop["source"], "aws.cloudtrail", "{stop:#}");
    lap("attack + envelope", &mut timings);
    let answer = api.invoke(&stop, limit);
    lap("invoke: restore (incl. cold start)", &mut timings);
    assert_eq!(answer.kind, "response", "{answer:#?}\n{}", function.logs());
    let body = &answer.body;
    assert_eq!(body["type"], "event", "{body:#}");
    assert_eq!(body["event_id"], stop["detail"]["eventID"], "{body:#}");
    assert_eq!(body["duplicate"], false, "{body:#}");
    let findings = body["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["event_name"] == "StopLogging"
            && f["outcome"] == "restored"
            && f["account"] == account.as_str()
            && f["rule_id"].as_str().is_some_and(|r| !r.is_empty())),
        "{body:#}"
    );
    assert!(body["restored"].as_u64().unwrap() >= 1, "{body:#}");
    assert!(is_logging(&member).await, "the trail is not logging again");
    let restores = start_logging_calls();
    assert!(restores >= 1);
    // Notified before the invocation returned: the detection is in the topic's subscriber.
    let alerts = sqs
        .receive_message()
        .queue_url(&inbox)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    assert!(
        alerts.messages().iter().any(|m| {
            let note: Value = serde_json::from_str(m.body().unwrap_or("{}")).unwrap_or_default();
            let detection: Value =
                serde_json::from_str(note["Message"].as_str().unwrap_or("{}")).unwrap_or_default();
            detection["detection"]["event_name"] == "StopLogging"
                && detection["detection"]["outcome"] == "restored"
        }),
        "{alerts:#?}"
    );

    // Forged: the same record from a custom source, and under another account. Answered as
    // rejected (Lambda must not retry a forgery), and nothing is done.
    let cloudtrail_calls = || {
        lab.proxy
            .calls()
            .iter()
            .filter(|((service, _), _)| service == "cloudtrail")
            .map(|(_, n)| *n)
            .sum::<u64>()
    };
    let before = cloudtrail_calls();
    let mut custom = stop.clone();
    custom["source"] = json!("my.app");
    custom["detail"]["eventID"] = json!("forged-custom-source");
    let mut elsewhere = stop.clone();
    elsewhere["account"] = json!("999999999999");
    elsewhere["detail"]["eventID"] = json!("forged-other-account");
    for (forged, reason) in [
        (custom, "not an AWS service"),
        (elsewhere, "is not the record's recipient account"),
    ] {
        let answer = api.invoke(&forged, limit);
        assert_eq!(answer.kind, "response", "{answer:#?}");
        assert!(
            answer.body["rejected"]
                .as_str()
                .is_some_and(|r| r.contains(reason)),
            "{:#}",
            answer.body
        );
        assert_eq!(answer.body["findings"], json!([]));
    }
    assert_eq!(cloudtrail_calls(), before, "a forged event led to calls");

    // 2. EventBridge delivers at least once: the same event again is recognised, not redone.
    let again = api.invoke(&stop, limit);
    assert_eq!(again.kind, "response", "{again:#?}");
    assert_eq!(again.body["duplicate"], true, "{:#}", again.body);
    assert_eq!(again.body["findings"], json!([]), "{:#}", again.body);
    assert_eq!(start_logging_calls(), restores);
    lap("invoke: redelivered", &mut timings);

    // 3. A failed attempt (errorCode AccessDenied) is reported, never restored.
    lab.attack("denied-stop-logging", &account).await.unwrap();
    let denied = next_envelope(
        &sqs,
        &queue_url,
        &mut seen,
        by_attacker("StopLogging", true),
    )
    .await;
    assert!(denied["detail"]["errorCode"].is_string(), "{denied:#}");
    let answer = api.invoke(&denied, limit);
    assert_eq!(answer.kind, "response", "{answer:#?}\n{}", function.logs());
    let findings = answer.body["findings"].as_array().unwrap();
    assert!(!findings.is_empty(), "{:#}", answer.body);
    assert!(
        findings.iter().all(|f| f["outcome"] == "failed-attempt"),
        "{:#}",
        answer.body
    );
    assert_eq!(answer.body["restored"], 0);
    assert_eq!(
        start_logging_calls(),
        restores,
        "a failed attempt was acted on"
    );
    lap("attack + invoke: failed attempt", &mut timings);

    // 4. A restore that fails is an error (Lambda retries it); the retry restores.
    lab.proxy.add_first(
        Fault::error(
            400,
            "AccessDeniedException",
            "User: arn:aws:sts::assumed-role/trailwarden-lambda/trailwarden-guard is not authorized to perform: cloudtrail:StartLogging",
        )
        .service("cloudtrail")
        .operation("StartLogging")
        .times(1),
    );
    lab.attack("stop-logging", &account).await.unwrap();
    let second = next_envelope(
        &sqs,
        &queue_url,
        &mut seen,
        by_attacker("StopLogging", false),
    )
    .await;
    let answer = api.invoke(&second, limit);
    assert_eq!(answer.kind, "error", "{answer:#?}\n{}", function.logs());
    assert_eq!(answer.body["errorType"], "RestoreFailed", "{answer:#?}");
    let message = answer.body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains(second["detail"]["eventID"].as_str().unwrap())
            && message.contains("restore not verified"),
        "{message}"
    );
    assert!(!is_logging(&member).await, "the fault did not hold");
    let retry = api.invoke(&second, limit);
    assert_eq!(retry.kind, "response", "{retry:#?}\n{}", function.logs());
    assert_eq!(retry.body["duplicate"], false, "{:#}", retry.body);
    assert!(
        retry.body["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["outcome"] == "restored"),
        "{:#}",
        retry.body
    );
    assert!(is_logging(&member).await, "the retry did not restore");
    lap("attack + invoke: failed restore, retry", &mut timings);

    // 5. A quiet StopLogging (no event: straight to moto) → the scheduled sweep restores it.
    member
        .cloudtrail(HOME_REGION)
        .stop_logging()
        .name(TRAIL)
        .send()
        .await
        .unwrap();
    assert!(!is_logging(&member).await);
    let schedule = json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": "2026-11-28T10:00:00Z",
        "region": HOME_REGION,
        "resources": [format!("arn:aws:events:{HOME_REGION}:{account}:rule/trailwarden-sweep")],
        "detail": {}
    });
    let answer = api.invoke(&schedule, limit);
    lap("quiet attack + invoke: sweep", &mut timings);
    assert_eq!(answer.kind, "response", "{answer:#?}\n{}", function.logs());
    let body = &answer.body;
    assert_eq!(body["type"], "sweep", "{body:#}");
    assert_eq!(body["applied"], true, "{body:#}");
    assert!(body["restored"].as_u64().unwrap() >= 1, "{body:#}");
    assert_eq!(body["not_restored"], 0, "{body:#}");
    assert_eq!(body["gaps"], json!([]), "{body:#}");
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["result"] == "restored"
                && r["account"] == account.as_str()
                && r["resource"]
                    .as_str()
                    .is_some_and(|a| a.ends_with(&format!("trail/{TRAIL}")))),
        "{body:#}"
    );
    assert!(is_logging(&member).await, "the sweep did not restore");
    // And a sweep over the restored estate finds nothing.
    let calm = api.invoke(&schedule, limit);
    assert_eq!(calm.kind, "response", "{calm:#?}");
    assert_eq!(calm.body["findings"], 0, "{:#}", calm.body);

    // 6. Anything else is an error that names what arrived.
    let ec2 = json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": account,
        "time": "2026-11-28T10:00:00Z",
        "region": HOME_REGION,
        "resources": [format!("arn:aws:ec2:{HOME_REGION}:{account}:instance/i-abcd1111")],
        "detail": {"instance-id": "i-abcd1111", "state": "pending"}
    });
    let answer = api.invoke(&ec2, limit);
    assert_eq!(answer.kind, "error", "{answer:#?}");
    assert_eq!(answer.body["errorType"], "UnsupportedEvent", "{answer:#?}");
    let message = answer.body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("EC2 Instance State-change Notification") && message.contains("aws.ec2"),
        "{message}"
    );
    lap("invoke: sweep again, unsupported", &mut timings);

    // The logs are JSON lines (CloudWatch Logs), and invocations carry their request id.
    let stdout = std::fs::read_to_string(&function.stdout).unwrap();
    let lines: Vec<Value> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["message"] == "ready"), "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "event handled" && l["span"]["request_id"].is_string()),
        "{stdout}"
    );
    drop(function);
    // Every call the function made through the lab is allowed by its policy.
    let calls = lab.proxy.calls();
    assert!(
        calls.contains_key(&("cloudtrail".to_owned(), "StartLogging".to_owned())),
        "{calls:?}"
    );
    assert_calls_allowed(calls.keys(), &[LAMBDA_POLICY]);

    // 7. Detect only (TRAILWARDEN_REMEDIATE=false): reported as restorable, left alone.
    let mut vars = vars.clone();
    vars.retain(|(k, _)| *k != "TRAILWARDEN_STATE");
    vars.push(("TRAILWARDEN_REMEDIATE", "false".into()));
    vars.push((
        "TRAILWARDEN_STATE",
        dir.path().join("detect-only.db").display().to_string(),
    ));
    let detect_only = Function::start(&api, dir.path(), "detect-only", &vars);
    lab.attack("stop-logging", &account).await.unwrap();
    let third = next_envelope(
        &sqs,
        &queue_url,
        &mut seen,
        by_attacker("StopLogging", false),
    )
    .await;
    let answer = api.invoke(&third, limit);
    assert_eq!(
        answer.kind,
        "response",
        "{answer:#?}\n{}",
        detect_only.logs()
    );
    assert_eq!(answer.body["remediate"], false);
    assert!(
        answer.body["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["event_name"] == "StopLogging" && f["outcome"] == "not-remediating"),
        "{:#}",
        answer.body
    );
    assert!(!is_logging(&member).await, "detect-only mode restored");
    lap("detect-only function: attack + invoke", &mut timings);

    for (what, took) in &timings {
        println!("{what:<45} {took:>10.2?}");
    }
    println!("{:<45} {:>10.2?}", "total", t0.elapsed());
}

/// `trailwarden deploy`'s event pattern (generated from the built-in rule pack).
fn trailwarden_rules_pattern() -> Value {
    let rules = trailwarden_rules::RuleSet::built_in().unwrap();
    rules.forwarded_events().event_pattern()
}

#[test]
fn cold_start_names_every_configuration_mistake() {
    let api = RuntimeApi::start("100000000001");
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut function = Function::start(
        &api,
        dir.path(),
        "misconfigured",
        &[
            ("TRAILWARDEN_REMEDIATE", "sometimes".into()),
            ("TRAILWARDEN_REGIONS", "us-east-1,mars-north-1x".into()),
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE".into()),
            ("AWS_SECRET_ACCESS_KEY", "x".into()),
        ],
    );
    assert_eq!(
        function.wait(Duration::from_secs(20)),
        Some(2),
        "{}",
        function.logs()
    );
    let answer = api
        .next_answer(Duration::from_secs(2))
        .unwrap_or_else(|| panic!("no init error reported:\n{}", function.logs()));
    assert_eq!(answer.kind, "init-error");
    assert_eq!(
        answer.error_type_header.as_deref(),
        Some("Runtime.ConfigError")
    );
    let message = answer.body["errorMessage"].as_str().unwrap();
    for name in [
        "TRAILWARDEN_BASELINE is not set",
        "TRAILWARDEN_REMEDIATE=\"sometimes\"",
        "TRAILWARDEN_REGIONS=",
    ] {
        assert!(message.contains(name), "{name} not in: {message}");
    }
    // The same, as a JSON log line for CloudWatch.
    let logs = function.logs();
    assert!(
        logs.lines().any(|l| serde_json::from_str::<Value>(l)
            .is_ok_and(|v| v["message"] == "cold start failed; no event is taken")),
        "{logs}"
    );

    // A baseline file that is not there (checked before any AWS call).
    let mut function = Function::start(
        &api,
        dir.path(),
        "no-baseline",
        &[("TRAILWARDEN_BASELINE", "/var/task/missing.toml".into())],
    );
    assert_eq!(
        function.wait(Duration::from_secs(20)),
        Some(2),
        "{}",
        function.logs()
    );
    let answer = api.next_answer(Duration::from_secs(2)).unwrap();
    let message = answer.body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("TRAILWARDEN_BASELINE=/var/task/missing.toml")
            && message.contains("cannot read the baseline"),
        "{message}"
    );
    println!("cold-start errors: {:.2?}", started.elapsed());
}

#[test]
fn without_the_runtime_api_it_explains_and_exits_2() {
    let out = IsolatedCommand::new(BIN)
        .build()
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("AWS_LAMBDA_RUNTIME_API") && text.contains("docs/lambda.md"),
        "{text}"
    );
    assert!(out.stdout.is_empty());
}

/// The function's policy in `docs/iam/`.
const LAMBDA_POLICY: &str = "trailwarden-lambda-policy.json";

#[test]
fn the_policy_allows_every_restore_step_and_the_template_matches_pack_and_policy() {
    let allowed = iam_policy::allowed_actions(&[LAMBDA_POLICY]);
    for action in trailwarden_posture::plan::ALL_IAM_ACTIONS {
        assert!(
            allowed.contains(*action),
            "{action} missing from the Lambda policy"
        );
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/lambda/trailwarden-lambda.json"
    );
    let template: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let resources = &template["Resources"];
    assert_eq!(
        resources["TamperEvents"]["Properties"]["EventPattern"],
        trailwarden_rules_pattern(),
        "docs/lambda/trailwarden-lambda.json: the event pattern is not `trailwarden deploy`'s"
    );
    let role_policy = &resources["Role"]["Properties"]["Policies"][0]["PolicyDocument"];
    assert_eq!(
        iam_policy::statements(role_policy),
        iam_policy::policy(LAMBDA_POLICY),
        "the template's role policy differs from docs/iam/trailwarden-lambda-policy.json"
    );
    let function = &resources["Function"]["Properties"];
    assert_eq!(function["Runtime"], "provided.al2023");
    assert_eq!(function["Handler"], "bootstrap");
    assert_eq!(function["Architectures"], json!(["x86_64"]));
    let variables = function["Environment"]["Variables"].as_object().unwrap();
    for name in variables.keys() {
        assert!(
            name.starts_with("TRAILWARDEN_"),
            "{name}: not a variable the function reads"
        );
    }
    assert!(variables.contains_key("TRAILWARDEN_BASELINE"));
    assert_eq!(
        template["Parameters"]["FunctionName"]["AllowedPattern"],
        "^trailwarden-[A-Za-z0-9_-]+$"
    );
}
