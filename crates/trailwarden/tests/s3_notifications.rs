//! `watch` also takes S3 notifications of new CloudTrail log files: the object is fetched and
//! scanned with the rule pack, and what it finds is acted on like a forwarded event. Here no
//! forwarding rule is deployed, so the log file is the only way the attack reaches the guard.

use std::process::Stdio;
use std::time::{Duration, Instant};
use trailwarden_lab::{HOME_REGION, Lab, LabSpec, ROLE_NAME, operator_env};
use trailwarden_testkit::IsolatedCommand;

const BIN: &str = env!("CARGO_BIN_EXE_trailwarden");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_file_named_by_an_s3_notification_is_scanned_and_acted_on() {
    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        log_interval: Duration::from_millis(500),
    })
    .await
    .expect("lab");
    let d = lab.description.clone();
    let victim = d.accounts[0].id.clone();
    let bucket = d.accounts[0].bucket.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.toml");
    let state = dir.path().join("state.db");
    let command = |credentials: &[(&str, String)]| {
        IsolatedCommand::new(BIN)
            .credentials(credentials)
            .args(["--endpoint-url", &d.endpoint, "--role-name", ROLE_NAME])
            .args([
                "--accounts",
                &victim,
                "--regions",
                "us-east-1,eu-west-1",
                "--quiet",
            ])
            .build()
    };
    let operator = operator_env();
    let out = command(&operator)
        .args(["baseline", "capture", "--out"])
        .arg(&baseline)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // watch in the security account; its start-up sweep finds the lab clean.
    let service_credentials = lab.service_credentials().await.expect("security session");
    let log_path = dir.path().join("watch.log");
    let mut watch = command(&service_credentials)
        .args([
            "-v",
            "watch",
            "--queue-url",
            &d.security.queue_url,
            "--remediate",
        ])
        .args(["--sweep-interval", "1h", "--listen", "off", "--baseline"])
        .arg(&baseline)
        .arg("--state")
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let started = Instant::now();
    while !log().contains("sweep") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no sweep:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The attack; its record is delivered in a log file (a stopped trail still delivers what it
    // recorded up to its stop).
    lab.attack("stop-logging", &victim).await.unwrap();
    let s3 = lab.attacker(&victim).await.s3(HOME_REGION);
    let key = {
        let deadline = Instant::now() + Duration::from_secs(20);
        'found: loop {
            let listed = s3
                .list_objects_v2()
                .bucket(&bucket)
                .prefix(format!("AWSLogs/{victim}/CloudTrail/"))
                .send()
                .await
                .unwrap();
            for object in listed.contents() {
                let key = object.key().unwrap().to_owned();
                let body = s3
                    .get_object()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await
                    .unwrap();
                let bytes = body.body.collect().await.unwrap().into_bytes();
                let mut text = String::new();
                #[allow(clippy::disallowed_types)]
                // a test reading back the log file the lab wrote
                std::io::Read::read_to_string(
                    &mut flate2::read::GzDecoder::new(&bytes[..]),
                    &mut text,
                )
                .unwrap();
                if text.contains("\"StopLogging\"") {
                    break 'found key;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no log file with the StopLogging record"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };

    // S3's notification of that object, as S3 sends it to SQS (keys URL-encoded, spaces as +).
    let notification = serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": HOME_REGION,
        "eventTime": "2026-11-28T10:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": key, "size": 1024}}
    }]});
    let sent = Instant::now();
    lab.attacker(&d.security.id)
        .await
        .sqs(HOME_REGION)
        .send_message()
        .queue_url(&d.security.queue_url)
        .message_body(notification.to_string())
        .send()
        .await
        .unwrap();
    let restored = loop {
        let journal = trailwarden_engine::Journal::open(&state).unwrap();
        let detections = journal.detections(None).unwrap();
        if let Some(d) = detections
            .iter()
            .find(|d| d.event_name.as_deref() == Some("StopLogging"))
        {
            break d.clone();
        }
        assert!(
            sent.elapsed() < Duration::from_secs(30),
            "not acted on:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(
        restored.outcome,
        trailwarden_model::outcome::Outcome::Restored,
        "{restored:?}\n{}",
        log()
    );
    assert_eq!(restored.rule_id, "trail-stop-logging");
    assert_eq!(restored.account, victim);
    assert!(
        restored
            .actor
            .as_deref()
            .unwrap_or_default()
            .ends_with("/mallory")
    );
    println!("S3 notification → restored in {:?}", sent.elapsed());
    let logging = lab
        .attacker(&victim)
        .await
        .cloudtrail(HOME_REGION)
        .get_trail_status()
        .name("management-events")
        .send()
        .await
        .unwrap()
        .is_logging();
    assert_eq!(logging, Some(true));
}
