//! `trailwarden watch` against the lab: member events forwarded to the security account's
//! queue are detected and the affected account is restored within seconds; redelivered
//! events are not acted on twice; failed attempts never trigger a restore; /healthz and
//! /metrics answer; SIGTERM stops it cleanly.

use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use trailwarden_aws::ClientFactory;
use trailwarden_lab::{HOME_REGION, Lab, LabSpec, ROLE_NAME, operator_env, operator_options};
use trailwarden_testkit::IsolatedCommand;
use trailwarden_testkit::service::{
    Killed, get as http_get, metric, request, wait_for, webhook_receiver,
};

const BIN: &str = env!("CARGO_BIN_EXE_trailwarden");

fn command(args: &[&str], credentials: &[(&str, String)]) -> Command {
    IsolatedCommand::new(BIN)
        .credentials(credentials)
        .args(args)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_detects_and_restores_within_seconds_and_never_acts_twice() {
    let lab = Lab::start(&LabSpec {
        accounts: 2,
        denied_accounts: 0,
        log_interval: Duration::from_millis(500),
    })
    .await
    .expect("lab");
    let endpoint = lab.description.endpoint.clone();
    let security = lab.description.security.clone();
    let accounts: Vec<String> = lab
        .description
        .accounts
        .iter()
        .map(|a| a.id.clone())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.toml");
    let state = dir.path().join("state.db");
    let operator = operator_env();
    let global = [
        "--endpoint-url",
        &endpoint,
        "--role-name",
        ROLE_NAME,
        "--regions",
        "us-east-1,eu-west-1",
    ];
    let list = accounts.join(",");
    let mut capture: Vec<&str> = global.to_vec();
    capture.extend([
        "--accounts",
        &list,
        "--quiet",
        "baseline",
        "capture",
        "--out",
    ]);
    capture.push(baseline.to_str().unwrap());
    let out = command(&capture, &operator).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // deploy: the forwarding rules in every member region; idempotent.
    let mut deploy: Vec<&str> = global.to_vec();
    deploy.extend([
        "--accounts",
        &list,
        "--quiet",
        "--format",
        "json",
        "deploy",
        "--event-bus-arn",
        &security.event_bus_arn,
    ]);
    let dry = command(&deploy, &operator).output().unwrap();
    assert_eq!(
        dry.status.code(),
        Some(1),
        "changes pending: {}",
        String::from_utf8_lossy(&dry.stdout)
    );
    // The guard's state store: the sessions deploy obtains are remembered there, so its
    // forwarded calls are trailwarden's own, proven by their keys.
    deploy.extend(["--state", state.to_str().unwrap(), "--apply"]);
    let out = command(&deploy, &operator).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let regions = doc["regions"].as_array().unwrap();
    assert_eq!(regions.len(), 4, "2 accounts × 2 regions: {doc:#}");
    assert!(regions.iter().all(|r| r["change"] == "created"), "{doc:#}");
    let names = doc["event_pattern"]["detail"]["eventName"]
        .as_array()
        .unwrap();
    assert!(
        names.iter().any(|n| n == "StopLogging") && names.iter().any(|n| n == "DeleteTrail"),
        "{doc:#}"
    );
    let again = command(&deploy, &operator).output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(
        doc["regions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["change"] == "unchanged"),
        "{doc:#}"
    );
    let templates = dir.path().join("cfn");
    let mut cfn: Vec<&str> = global.to_vec();
    cfn.extend([
        "deploy",
        "--event-bus-arn",
        &security.event_bus_arn,
        "--cloudformation",
        templates.to_str().unwrap(),
    ]);
    assert_eq!(
        command(&cfn, &operator).output().unwrap().status.code(),
        Some(0)
    );
    let member: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(templates.join("member-forwarding.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        member["Resources"]["ForwardTamperEvents"]["Properties"]["EventPattern"]["detail"]["eventName"],
        doc["event_pattern"]["detail"]["eventName"]
    );
    assert!(templates.join("security-queue.json").is_file());

    // The service runs in the security account.
    let service_credentials = lab.service_credentials().await.expect("security session");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");

    // Notifications: an SNS topic (subscribed by a queue) and a webhook that fails twice.
    let security_lab = lab.attacker(&security.id).await;
    let topic = security_lab
        .sns(HOME_REGION)
        .create_topic()
        .name("trailwarden-alerts")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    let inbox_url = security_lab
        .sqs(HOME_REGION)
        .create_queue()
        .queue_name("alerts-inbox")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let inbox_arn = format!("arn:aws:sqs:{HOME_REGION}:{}:alerts-inbox", security.id);
    security_lab
        .sns(HOME_REGION)
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&inbox_arn)
        .send()
        .await
        .unwrap();
    let (hook_port, hook_bodies) = webhook_receiver(2);
    let hook = format!("http://127.0.0.1:{hook_port}/hooks/s3cr3t-path");
    let token_file = dir.path().join("api-token");
    std::fs::write(&token_file, "test-token-0123456789abcdef\n").unwrap();
    // The webhook URL holds a secret: a private file, not an argument.
    let hook_file = dir.path().join("webhooks");
    std::fs::write(&hook_file, format!("# alerts\n{hook}\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [&token_file, &hook_file] {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    let mut watch: Vec<&str> = global.to_vec();
    watch.extend([
        "-v",
        "--log-format",
        "json",
        "watch",
        "--notify-sns",
        &topic,
        "--notify-webhook-file",
        hook_file.to_str().unwrap(),
        "--api-token-file",
        token_file.to_str().unwrap(),
        "--queue-url",
        &security.queue_url,
        "--remediate",
        "--sweep-interval",
        "1h",
        "--listen",
        &listen,
    ]);
    watch.extend([
        "--baseline",
        baseline.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ]);
    let log = std::fs::File::create(dir.path().join("watch.log")).unwrap();
    let child = command(&watch, &service_credentials)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut service = Killed(child);
    let log_text = || std::fs::read_to_string(dir.path().join("watch.log")).unwrap_or_default();

    wait_for("/healthz", Duration::from_secs(30), || {
        http_get(port, "/healthz").as_deref() == Some("ok\n")
    });
    wait_for("the start-up sweep", Duration::from_secs(60), || {
        metric(port, "trailwarden_sweeps_total") >= 1.0
    });

    // Attack → detected from the event → restored and verified.
    let victim = &accounts[0];
    let trail_status = |account: &str| {
        let account = account.to_owned();
        let lab_endpoint = lab.description.moto_endpoint.clone();
        async move {
            let c = ClientFactory::new(&operator_options(&lab_endpoint))
                .await
                .assume_role(&format!("arn:aws:iam::{account}:role/{ROLE_NAME}"))
                .await;
            c.cloudtrail(HOME_REGION)
                .get_trail_status()
                .name("management-events")
                .send()
                .await
                .unwrap()
                .is_logging()
                .unwrap_or(false)
        }
    };
    let attacked = Instant::now();
    lab.attack("stop-logging", victim).await.unwrap();
    let mut restored_after = None;
    while attacked.elapsed() < Duration::from_secs(30) {
        if metric(port, "trailwarden_restores_total") >= 1.0 && trail_status(victim).await {
            restored_after = Some(attacked.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let restored_after =
        restored_after.unwrap_or_else(|| panic!("not restored within 30 s:\n{}", log_text()));
    println!("attack → verified restore: {restored_after:?}");
    let journal = trailwarden_engine::Journal::open(&state).unwrap();
    let entries = journal
        .list(&trailwarden_engine::Filter::default())
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.call == "cloudtrail:StartLogging" && e.account == *victim),
        "{entries:#?}"
    );

    // A failed attempt is reported, never restored.
    let restores = metric(port, "trailwarden_restores_total");
    let findings = metric(port, "trailwarden_findings_total");
    lab.attack("denied-stop-logging", &accounts[1])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(port, "trailwarden_findings_total") <= findings && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metric(port, "trailwarden_findings_total") > findings,
        "{}",
        log_text()
    );
    assert_eq!(
        metric(port, "trailwarden_restores_total"),
        restores,
        "a failed attempt triggered a restore"
    );

    // The same event delivered twice is acted on once.
    let sqs = lab.attacker(&security.id).await.sqs(HOME_REGION);
    let record = json!({"eventVersion": "1.08", "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
        "awsRegion": "us-east-1", "eventTime": "2026-11-28T10:00:00Z", "eventID": "redelivered-1",
        "recipientAccountId": victim, "requestParameters": {"name": "management-events"},
        "userIdentity": {"type": "AssumedRole", "arn": format!("arn:aws:sts::{victim}:assumed-role/x/mallory")}});
    let envelope = json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.cloudtrail",
        "account": victim, "region": "us-east-1", "detail": record});
    for _ in 0..2 {
        sqs.send_message()
            .queue_url(&security.queue_url)
            .message_body(envelope.to_string())
            .send()
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(port, "trailwarden_duplicate_events_total") < 1.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        metric(port, "trailwarden_duplicate_events_total"),
        1.0,
        "{}",
        log_text()
    );
    assert!(journal.event_handled(victim, "redelivered-1").unwrap());

    // A message that is not a CloudTrail event is not deleted (the queue dead-letters it).
    sqs.send_message()
        .queue_url(&security.queue_url)
        .message_body("{\"hello\": 1}")
        .send()
        .await
        .unwrap();
    // Waits for the line itself: another error counted meanwhile must not end the wait early.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !log_text().contains("message not handled") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(log_text().contains("message not handled"), "{}", log_text());

    // Incidents: the attacker's detections with what was done.
    let out = command(
        &[
            "incidents",
            "--state",
            state.to_str().unwrap(),
            "--format",
            "json",
        ],
        &operator,
    )
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let incidents: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let victim_incident = incidents
        .as_array()
        .unwrap()
        .iter()
        .find(|i| {
            i["actor"] == format!("arn:aws:sts::{victim}:assumed-role/compromised-admin/mallory")
        })
        .unwrap_or_else(|| panic!("{incidents:#}"));
    let timeline = victim_incident["timeline"].as_array().unwrap();
    assert!(
        timeline
            .iter()
            .any(|d| d["event_name"] == "StopLogging" && d["outcome"] == "restored"),
        "{victim_incident:#}"
    );
    assert!(victim_incident["restored"].as_u64().unwrap() >= 1);

    // The incidents API: refused without the token, the same incidents with it.
    let (status, _) = request(port, "GET", "/api/incidents", "", "").unwrap();
    assert_eq!(status, 401);
    let (status, _) = request(
        port,
        "GET",
        "/api/incidents",
        "Authorization: Bearer wrong-token-0123456789\r\n",
        "",
    )
    .unwrap();
    assert_eq!(status, 401);
    let (status, body) = request(
        port,
        "GET",
        "/api/incidents?gap=3600",
        "Authorization: Bearer test-token-0123456789abcdef\r\n",
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api["incidents"], incidents, "the API and `incidents` agree");

    // Notifications: the restored StopLogging reached the topic's subscriber and, after two
    // refused attempts, the webhook.
    // The victim's restored StopLogging (the denied attempt elsewhere is notified too).
    let stop_logging_notified = |text: &str| {
        serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| {
            v["detection"]["rule_id"] == "trail-stop-logging"
                && v["detection"]["account"] == victim.as_str()
                && v["detection"]["event_id"] != "redelivered-1"
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !hook_bodies
        .lock()
        .unwrap()
        .iter()
        .any(|b| stop_logging_notified(b))
    {
        assert!(
            Instant::now() < deadline,
            "no webhook delivery:\n{}",
            log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let delivered: serde_json::Value = serde_json::from_str(
        hook_bodies
            .lock()
            .unwrap()
            .iter()
            .find(|b| stop_logging_notified(b))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(delivered["type"], "trailwarden.detection");
    assert_eq!(delivered["detection"]["account"], victim.as_str());
    assert_eq!(
        delivered["detection"]["outcome"],
        "restored",
        "{}",
        log_text()
    );
    // The copy sent while the trail was logging again found nothing to restore, and says so.
    let journal = trailwarden_engine::Journal::open(&state).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let redelivered = loop {
        let found = journal
            .detections(None)
            .unwrap()
            .into_iter()
            .find(|d| d.event_id.as_deref() == Some("redelivered-1"));
        match found {
            Some(d) => break d,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            None => panic!("no detection of the redelivered event:\n{}", log_text()),
        }
    };
    assert_eq!(
        redelivered.outcome,
        trailwarden_model::outcome::Outcome::AlreadyGood,
        "{redelivered:#?}"
    );
    assert!(
        delivered["detection"]["actor"]
            .as_str()
            .unwrap()
            .ends_with("/mallory")
    );
    let inbox = security_lab
        .sqs(HOME_REGION)
        .receive_message()
        .queue_url(&inbox_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let sns_bodies: Vec<String> = inbox
        .messages()
        .iter()
        .filter_map(|m| {
            let envelope: serde_json::Value = serde_json::from_str(m.body()?).ok()?;
            envelope["Message"].as_str().map(str::to_owned)
        })
        .collect();
    assert!(
        sns_bodies
            .iter()
            .any(|b| stop_logging_notified(b) && b.contains("\"restored\"")),
        "{sns_bodies:#?}"
    );
    assert!(metric(port, "trailwarden_notifications_total") >= 2.0);
    // JSON log lines, with the finding's fields as keys; the webhook's secret path never logged.
    let lines: Vec<serde_json::Value> = log_text()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "finding"
            && l["rule"] == "trail-stop-logging"
            && l["account"] == victim.as_str()),
        "{}",
        log_text()
    );
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "notification failed; will retry")
    );
    assert!(!log_text().contains("s3cr3t"), "{}", log_text());
    // deploy's own PutRule/PutTargets were forwarded too: trailwarden's calls are no incident.
    assert!(
        incidents.as_array().unwrap().iter().all(|i| !i["actor"]
            .as_str()
            .unwrap_or_default()
            .contains("/trailwarden-")),
        "{incidents:#}"
    );

    // SIGTERM: stops cleanly.
    let pid = service.0.id();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let status = {
        let start = Instant::now();
        loop {
            if let Some(status) = service.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "watch did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(status.code(), Some(0), "{}", log_text());
}
