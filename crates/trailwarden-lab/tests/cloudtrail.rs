//! The lab's CloudTrail emulation: calls made through the lab become real-shaped records on
//! EventBridge (delivered by a rule to SQS) and in log files of logging trails only.

use std::time::Duration;
use trailwarden_aws::AccountConfig;
use trailwarden_aws::sdk::eventbridge;
use trailwarden_lab::{HOME_REGION, Lab, LabSpec};
use trailwarden_testkit::corpus;

const ACCOUNT: &str = "100000000001";

async fn log_objects(c: &AccountConfig, bucket: &str) -> Vec<String> {
    let list = c
        .s3(HOME_REGION)
        .list_objects_v2()
        .bucket(bucket)
        .prefix(format!("AWSLogs/{ACCOUNT}/CloudTrail/"))
        .send()
        .await
        .unwrap();
    list.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

// A test reading back the log file the lab wrote: no cap needed.
#[allow(clippy::disallowed_types)]
async fn records_in(c: &AccountConfig, bucket: &str, key: &str) -> Vec<serde_json::Value> {
    let object = c
        .s3(HOME_REGION)
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let bytes = object.body.collect().await.unwrap().into_bytes();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["Records"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_become_records_on_eventbridge_and_in_log_files_while_the_trail_logs() {
    let started = std::time::Instant::now();
    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        log_interval: Duration::from_millis(500),
    })
    .await
    .expect("lab");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "lab took {:?}",
        started.elapsed()
    );
    let bucket = lab.description.accounts[0].bucket.clone().unwrap();
    // The defenders' plumbing: a rule forwarding trail tampering to a queue.
    let defender = lab.attacker(ACCOUNT).await;
    let queue = defender
        .sqs(HOME_REGION)
        .create_queue()
        .queue_name("tamper")
        .send()
        .await
        .unwrap();
    let queue_url = queue.queue_url().unwrap().to_owned();
    let queue_arn = format!("arn:aws:sqs:{HOME_REGION}:{ACCOUNT}:tamper");
    let events = defender.eventbridge(HOME_REGION);
    events
        .put_rule()
        .name("trail-tampering")
        .event_pattern(
            r#"{"source":["aws.cloudtrail"],"detail-type":["AWS API Call via CloudTrail"],"detail":{"eventName":["StopLogging","StartLogging"]}}"#,
        )
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("trail-tampering")
        .targets(
            eventbridge::types::Target::builder()
                .id("q")
                .arn(&queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    // A logging trail delivers the records of calls made through the lab.
    lab.attack("suspend-versioning", ACCOUNT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let delivered = log_objects(&defender, &bucket).await;
    assert!(!delivered.is_empty(), "no log file delivered while logging");
    let records = records_in(&defender, &bucket, &delivered[0]).await;
    let versioning = records
        .iter()
        .find(|r| r["eventName"] == "PutBucketVersioning")
        .unwrap_or_else(|| panic!("{records:#?}"));
    assert_eq!(versioning["eventSource"], "s3.amazonaws.com");
    assert_eq!(versioning["recipientAccountId"], ACCOUNT);
    assert_eq!(versioning["awsRegion"], HOME_REGION);
    assert_eq!(versioning["userIdentity"]["type"], "AssumedRole");
    assert!(
        versioning["userIdentity"]["arn"]
            .as_str()
            .unwrap()
            .contains(":assumed-role/compromised-admin/")
    );
    assert_eq!(
        versioning["requestParameters"]["bucketName"],
        bucket.as_str()
    );

    // StopLogging: the event reaches EventBridge → SQS, and log delivery stops.
    lab.attack("stop-logging", ACCOUNT).await.unwrap();
    let messages = defender
        .sqs(HOME_REGION)
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    let bodies: Vec<serde_json::Value> = messages
        .messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    let stop = bodies
        .iter()
        .find(|b| b["detail"]["eventName"] == "StopLogging")
        .unwrap_or_else(|| panic!("{bodies:#?}"));
    assert_eq!(stop["detail-type"], "AWS API Call via CloudTrail");
    assert_eq!(
        stop["detail"]["requestParameters"]["name"],
        "management-events"
    );
    assert!(stop["detail"].get("errorCode").is_none());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let delivered = log_objects(&defender, &bucket).await;
    // The StopLogging call itself is the trail's last delivered event, as in AWS.
    let mut last_record = None;
    for key in &delivered {
        for r in records_in(&defender, &bucket, key).await {
            if r["eventName"] == "StopLogging" {
                last_record = Some(r);
            }
        }
    }
    let last_record = last_record.expect("the StopLogging record is delivered to the bucket");
    assert_eq!(
        last_record["requestParameters"]["name"],
        "management-events"
    );
    let before = delivered.len();
    lab.attack("validation-off", ACCOUNT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        log_objects(&defender, &bucket).await.len(),
        before,
        "logs delivered while stopped"
    );

    // StartLogging: delivery resumes.
    defender
        .cloudtrail(HOME_REGION)
        .start_logging()
        .name("management-events")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = log_objects(&defender, &bucket).await;
    assert!(
        after.len() > before,
        "delivery did not resume after StartLogging"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_attempt_is_recorded_with_its_error() {
    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        log_interval: Duration::from_millis(500),
    })
    .await
    .expect("lab");
    lab.proxy.add(
        trailwarden_moto::Fault::error(
            400,
            "AccessDeniedException",
            "not authorized to perform: cloudtrail:DeleteTrail",
        )
        .service("cloudtrail")
        .operation("DeleteTrail"),
    );
    let attacker = lab.attacker(ACCOUNT).await;
    assert!(
        attacker
            .cloudtrail(HOME_REGION)
            .delete_trail()
            .name("management-events")
            .send()
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let bucket = lab.description.accounts[0].bucket.clone().unwrap();
    let mut found = None;
    for key in log_objects(&attacker, &bucket).await {
        for r in records_in(&attacker, &bucket, &key).await {
            if r["eventName"] == "DeleteTrail" {
                found = Some(r);
            }
        }
    }
    let r = found.expect("the denied DeleteTrail is in the logs");
    assert_eq!(r["errorCode"], "AccessDeniedException");
    assert!(
        r["errorMessage"]
            .as_str()
            .unwrap()
            .contains("not authorized")
    );
}

fn keys(v: &serde_json::Value) -> std::collections::BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_have_the_fields_and_shapes_of_real_cloudtrail_records() {
    // Real records of the corpus (Stratus Red Team detonations).
    let real = corpus::stratus_detonations();
    let real_stop = real
        .iter()
        .find(|r| r["eventName"] == "StopLogging")
        .expect("Stratus StopLogging");
    let real_role = real
        .iter()
        .find(|r| r["userIdentity"]["type"] == "AssumedRole" && r["errorCode"].is_null())
        .expect("a real AssumedRole record");

    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        log_interval: Duration::from_millis(300),
    })
    .await
    .expect("lab");
    // Stop then start: the StartLogging record is delivered (the trail logs again).
    lab.attack("stop-logging", ACCOUNT).await.unwrap();
    let defender = lab.attacker(ACCOUNT).await;
    defender
        .cloudtrail(HOME_REGION)
        .start_logging()
        .name("management-events")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let bucket = lab.description.accounts[0].bucket.clone().unwrap();
    let mut ours = None;
    for key in log_objects(&defender, &bucket).await {
        for r in records_in(&defender, &bucket, &key).await {
            if r["eventName"] == "StartLogging" {
                ours = Some(r);
            }
        }
    }
    let ours = ours.expect("a StartLogging record in the logs");
    // The same top-level fields as AWS writes (tlsDetails aside: no TLS on loopback).
    let mut want = keys(real_stop);
    want.remove("tlsDetails");
    assert_eq!(keys(&ours), want);
    for field in ["eventVersion", "eventTime", "eventID", "requestID"] {
        assert!(ours[field].is_string(), "{field}");
    }
    assert_eq!(ours["readOnly"], false);
    assert_eq!(ours["managementEvent"], true);
    assert_eq!(ours["requestParameters"]["name"], "management-events");
    // An assumed role's identity has AWS's fields, session context included.
    let want_identity = keys(&real_role["userIdentity"]);
    assert!(
        keys(&ours["userIdentity"]).is_subset(&want_identity),
        "{} vs {}",
        ours["userIdentity"],
        real_role["userIdentity"]
    );
    assert_eq!(
        keys(&ours["userIdentity"]["sessionContext"]["sessionIssuer"]),
        keys(&real_role["userIdentity"]["sessionContext"]["sessionIssuer"])
    );
}

/// The call each technique is recognised by on EventBridge.
fn signature(technique: &str) -> &'static str {
    match technique {
        "stop-logging" | "denied-stop-logging" => "StopLogging",
        "delete-trail" => "DeleteTrail",
        "single-region" | "no-global-events" | "redirect-bucket" | "attacker-kms-key"
        | "validation-off" | "detach-cloudwatch" | "minimize" | "trail-sns-off" => "UpdateTrail",
        "exclude-management-events" | "read-only-management" | "advanced-selectors-data-only" => {
            "PutEventSelectors"
        }
        "insights-off" => "PutInsightSelectors",
        "unexpected-trail" => "CreateTrail",
        "delete-bucket" => "DeleteBucket",
        "bucket-policy-deny" => "PutBucketPolicy",
        "lifecycle-expiration" => "PutBucketLifecycle",
        "bucket-notification" => "PutBucketNotification",
        "suspend-versioning" => "PutBucketVersioning",
        "bucket-acl-grant" => "PutBucketAcl",
        "bucket-encryption-attacker-key" => "PutBucketEncryption",
        "access-logging-off" => "PutBucketLogging",
        "disable-key" => "DisableKey",
        "schedule-key-deletion" => "ScheduleKeyDeletion",
        "key-policy" => "PutKeyPolicy",
        "delete-log-group" => "DeleteLogGroup",
        "shorten-retention" => "PutRetentionPolicy",
        "delete-metric-filter" => "DeleteMetricFilter",
        "mute-alarm" => "DisableAlarmActions",
        "delete-alarm" => "DeleteAlarms",
        "delete-alert-topic" => "DeleteTopic",
        "unsubscribe-alerts" => "Unsubscribe",
        "disable-guardduty" => "UpdateDetector",
        "delete-guardduty" => "DeleteDetector",
        "guardduty-suppression-filter" => "CreateFilter",
        "stop-config" => "StopConfigurationRecorder",
        "narrow-config-recorder" => "PutConfigurationRecorder",
        "redirect-config-channel" => "PutDeliveryChannel",
        "delete-config-recorder" => "DeleteConfigurationRecorder",
        "delete-flow-logs" => "DeleteFlowLogs",
        // Faked in the lab (moto has no IP sets): no API call is made.
        "guardduty-trusted-ip" => "",
        other => panic!("no signature for {other}: add one"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_reaches_eventbridge_as_its_cloudtrail_event() {
    use trailwarden_lab::attacks::TECHNIQUES;
    let lab = Lab::start(&LabSpec {
        accounts: TECHNIQUES.len(),
        denied_accounts: 0,
        log_interval: Duration::from_secs(5),
    })
    .await
    .expect("lab");
    let mut failures = Vec::new();
    for (n, t) in TECHNIQUES.iter().enumerate() {
        let account = trailwarden_lab::account_id(n + 1);
        let want = signature(t.id);
        let c = lab.attacker(&account).await;
        // A fresh queue per account keeps moto's SendMessage fast (deps.md).
        let queue = c
            .sqs(HOME_REGION)
            .create_queue()
            .queue_name("all-api-calls")
            .send()
            .await
            .unwrap();
        let url = queue.queue_url().unwrap().to_owned();
        let events = c.eventbridge(HOME_REGION);
        events
            .put_rule()
            .name("all-api-calls")
            .event_pattern(r#"{"detail-type":["AWS API Call via CloudTrail"]}"#)
            .send()
            .await
            .unwrap();
        events
            .put_targets()
            .rule("all-api-calls")
            .targets(
                eventbridge::types::Target::builder()
                    .id("q")
                    .arn(format!("arn:aws:sqs:{HOME_REGION}:{account}:all-api-calls"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        lab.attack(t.id, &account).await.unwrap();
        // The recorder works behind the proxy's answer: poll until the event arrives.
        let mut names = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while (want.is_empty() || !names.iter().any(|n| n == want))
            && std::time::Instant::now() < deadline
        {
            let got = c
                .sqs(HOME_REGION)
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            if got.messages().is_empty() && want.is_empty() {
                break;
            }
            for m in got.messages() {
                let body: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
                assert_eq!(body["detail"]["recipientAccountId"], account.as_str());
                names.push(
                    body["detail"]["eventName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
                c.sqs(HOME_REGION)
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        if !want.is_empty() && !names.iter().any(|n| n == want) {
            failures.push(format!(
                "{} in {account}: expected {want}, got {names:?}",
                t.id
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_calls_reach_the_log_files_but_not_eventbridge() {
    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        log_interval: Duration::from_millis(300),
    })
    .await
    .expect("lab");
    let bucket = lab.description.accounts[0].bucket.clone().unwrap();
    let c = lab.attacker(ACCOUNT).await;
    let sqs = c.sqs(HOME_REGION);
    let queue_url = sqs
        .create_queue()
        .queue_name("reads")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let events = c.eventbridge(HOME_REGION);
    events
        .put_rule()
        .name("reads")
        .event_pattern(r#"{"detail":{"eventName":["DescribeTrails"]}}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("reads")
        .targets(
            eventbridge::types::Target::builder()
                .id("q")
                .arn(format!("arn:aws:sqs:{HOME_REGION}:{ACCOUNT}:reads"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    c.cloudtrail(HOME_REGION)
        .describe_trails()
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut read = None;
    for key in log_objects(&c, &bucket).await {
        for r in records_in(&c, &bucket, &key).await {
            if r["eventName"] == "DescribeTrails" {
                read = Some(r);
            }
        }
    }
    let read = read.expect("the DescribeTrails record is in a log file");
    assert_eq!(read["readOnly"], true);
    assert_eq!(read["managementEvent"], true);
    let got = sqs
        .receive_message()
        .queue_url(&queue_url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert!(
        got.messages().is_empty(),
        "EventBridge does not receive read-only calls"
    );
}
