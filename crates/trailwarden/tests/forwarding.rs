//! trailwarden's own forwarding rules are part of the known-good state: `audit
//! --event-bus-arn` reports a disabled, redirected or deleted rule as tampering with
//! trailwarden itself, and the sweep of `watch --event-bus-arn --remediate` puts it back
//! (disabling the rule suppresses its own event, so only the sweep can see it).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use trailwarden_lab::{HOME_REGION, Lab, LabSpec, ROLE_NAME, operator_env};
use trailwarden_testkit::IsolatedCommand;

const BIN: &str = env!("CARGO_BIN_EXE_trailwarden");

fn command(args: &[&str]) -> Command {
    IsolatedCommand::new(BIN)
        .credentials(&operator_env())
        .args(args)
        .build()
}

fn audit(args: &[&str]) -> (i32, serde_json::Value) {
    let out = command(args).output().unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), doc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_forwarding_rule_is_reported_and_the_sweep_puts_it_back() {
    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        log_interval: Duration::from_millis(500),
    })
    .await
    .expect("lab");
    let endpoint = lab.description.endpoint.clone();
    let bus = lab.description.security.event_bus_arn.clone();
    let victim = lab.description.accounts[0].id.clone();
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.toml");
    let state = dir.path().join("state.db");
    let global = [
        "--endpoint-url",
        &endpoint,
        "--role-name",
        ROLE_NAME,
        "--accounts",
        &victim,
        "--regions",
        "us-east-1,eu-west-1",
        "--quiet",
    ];
    fn run<'a>(global: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = global.to_vec();
        args.extend(extra);
        args
    }
    let out = command(&run(
        &global,
        &["baseline", "capture", "--out", baseline.to_str().unwrap()],
    ))
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit_args = run(
        &global,
        &[
            "--format",
            "json",
            "audit",
            "--baseline",
            baseline.to_str().unwrap(),
            "--event-bus-arn",
            &bus,
        ],
    );

    // Not deployed yet: both regions report the rule missing.
    let (code, doc) = audit(&audit_args);
    assert_eq!(code, 1, "{doc:#}");
    let missing: Vec<&serde_json::Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "responder-forwarding-rule")
        .collect();
    assert_eq!(missing.len(), 2, "{doc:#}");
    assert!(
        missing
            .iter()
            .all(|f| f["actual"] == "missing" && f["technique"] == "H1")
    );

    // deploy's calls, and nothing else's, are checked against the policies it runs with.
    lab.proxy.reset_calls();
    let out = command(&run(
        &global,
        &[
            "deploy",
            "--event-bus-arn",
            &bus,
            "--state",
            state.to_str().unwrap(),
            "--apply",
        ],
    ))
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    trailwarden_testkit::iam_policy::assert_calls_allowed(
        lab.proxy.calls().keys(),
        &[
            "trailwarden-deploy-policy.json",
            "trailwarden-caller-policy.json",
        ],
    );
    let (code, doc) = audit(&audit_args);
    assert_eq!(code, 0, "deployed and untouched: clean\n{doc:#}");

    // The attacker disables the rule in one region and redirects it in the other.
    let attacker = lab.attacker(&victim).await;
    let rule = "trailwarden-forward-tamper-events";
    attacker
        .eventbridge(HOME_REGION)
        .disable_rule()
        .name(rule)
        .send()
        .await
        .unwrap();
    let west = attacker.eventbridge("eu-west-1");
    west.remove_targets()
        .rule(rule)
        .ids("trailwarden-security-bus")
        .send()
        .await
        .unwrap();
    let (code, doc) = audit(&audit_args);
    assert_eq!(code, 1);
    let mut drift: Vec<(String, serde_json::Value)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "responder-forwarding-rule")
        .map(|f| {
            (
                f["region"].as_str().unwrap().to_owned(),
                f["actual"].clone(),
            )
        })
        .collect();
    drift.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        drift,
        vec![
            (
                "eu-west-1".to_owned(),
                serde_json::json!({"not_forwarding": []})
            ),
            ("us-east-1".to_owned(), serde_json::json!("disabled")),
        ],
        "{doc:#}"
    );

    // watch (in the security account) puts both back in its start-up sweep and journals it.
    let security = lab.description.security.clone();
    let service_credentials = lab.service_credentials().await.expect("security session");
    let queue = security.queue_url.clone();
    let log = std::fs::File::create(dir.path().join("watch.log")).unwrap();
    let mut watch = IsolatedCommand::new(BIN)
        .credentials(&service_credentials)
        .args(run(
            &global,
            &[
                "-v",
                "watch",
                "--queue-url",
                &queue,
                "--baseline",
                baseline.to_str().unwrap(),
                "--state",
                state.to_str().unwrap(),
                "--remediate",
                "--event-bus-arn",
                &bus,
                "--listen",
                "off",
            ],
        ))
        .build()
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let verifications = |count: usize| {
        let started = Instant::now();
        loop {
            let entries = trailwarden_engine::Journal::open(&state)
                .and_then(|j| j.list(&trailwarden_engine::Filter::default()))
                .unwrap_or_default();
            let v: Vec<_> = entries
                .iter()
                .filter(|e| {
                    e.call == "verify" && e.finding.as_deref() == Some("responder-forwarding-rule")
                })
                .map(|e| (e.region.clone(), e.outcome.to_string()))
                .collect();
            if v.len() >= count || started.elapsed() > Duration::from_secs(60) {
                break (v, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let log = || std::fs::read_to_string(dir.path().join("watch.log")).unwrap_or_default();
    let (verified, took) = verifications(2);
    assert_eq!(verified.len(), 2, "{}", log());
    assert!(
        verified.iter().all(|(_, o)| o == "verified"),
        "{verified:?}\n{}",
        log()
    );
    println!("sweep restored both forwarding rules in {took:?}");

    // A quiet narrowing: the pattern loses StopLogging but still forwards PutRule, so the
    // PutRule event itself reaches the guard, which puts the rule back at once.
    let events = attacker.eventbridge(HOME_REGION);
    let pattern = events
        .describe_rule()
        .name(rule)
        .send()
        .await
        .unwrap()
        .event_pattern()
        .unwrap()
        .to_owned();
    let mut narrowed: serde_json::Value = serde_json::from_str(&pattern).unwrap();
    narrowed["detail"]["eventName"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n != "StopLogging");
    events
        .put_rule()
        .name(rule)
        .event_pattern(narrowed.to_string())
        .send()
        .await
        .unwrap();
    let (verified, took) = verifications(3);
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(verified.len(), 3, "{}", log());
    // The journal lists newest first.
    assert_eq!(verified[0], ("us-east-1".to_owned(), "verified".to_owned()));
    assert!(
        log().contains("responder-eventbridge-rule-tampered"),
        "{}",
        log()
    );
    println!("narrowed pattern → restored from its own event in {took:?}");
    let (code, doc) = audit(&audit_args);
    assert_eq!(code, 0, "restored: clean again\n{doc:#}");
}
