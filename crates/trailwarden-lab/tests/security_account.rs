//! The security account: reached by AssumeRole, it holds the central queue (with its
//! dead-letter queue), and events that member accounts forward to its bus reach the queue.

use std::time::Duration;
use trailwarden_aws::ClientFactory;
use trailwarden_aws::sdk::eventbridge::types::Target;
use trailwarden_lab::{HOME_REGION, Lab, LabSpec, operator_options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_events_forwarded_to_the_security_bus_reach_the_central_queue() {
    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        log_interval: Duration::from_millis(500),
    })
    .await
    .expect("lab");
    let security = &lab.description.security;
    assert_eq!(security.id, trailwarden_lab::SECURITY_ACCOUNT);
    assert!(
        security.queue_url.contains("trailwarden-events"),
        "{security:?}"
    );
    assert!(
        security
            .dead_letter_queue_url
            .contains("trailwarden-events-dlq")
    );
    let account = lab.description.accounts[0].id.clone();

    // What `deploy` installs in each member region: forward CloudTrail API events to the bus.
    let member = lab.attacker(&account).await;
    let events = member.eventbridge(HOME_REGION);
    events
        .put_rule()
        .name("forward-to-security")
        .event_pattern(r#"{"detail-type":["AWS API Call via CloudTrail"],"detail":{"eventName":["StopLogging"]}}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("forward-to-security")
        .targets(
            Target::builder()
                .id("security")
                .arn(&security.event_bus_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    lab.attack("stop-logging", &account).await.unwrap();

    // trailwarden's service, in the security account by AssumeRole, reads the queue.
    let watcher = ClientFactory::new(&operator_options(&lab.description.endpoint))
        .await
        .assume_role(&security.role_arn)
        .await;
    let sqs = watcher.sqs(HOME_REGION);
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let got = sqs
            .receive_message()
            .queue_url(&security.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        bodies.extend(
            got.messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_owned)),
        );
        if !bodies.is_empty() {
            break;
        }
    }
    let event: serde_json::Value =
        serde_json::from_str(bodies.first().expect("a forwarded event")).unwrap();
    assert_eq!(event["detail"]["eventName"], "StopLogging");
    assert_eq!(event["detail"]["recipientAccountId"], account.as_str());
    assert!(
        event["detail"]["userIdentity"]["arn"]
            .as_str()
            .unwrap()
            .contains("/mallory"),
        "{event:#}"
    );
    // The queue gives up on a message after 5 receives: its dead letters are kept.
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&security.queue_url)
        .attribute_names(trailwarden_aws::sdk::sqs::types::QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let redrive = attributes
        .attributes()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    assert!(
        redrive.contains(&security.dead_letter_queue_arn) && redrive.contains('5'),
        "{redrive}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_can_seed_a_moto_that_is_already_running_and_lists_its_regions() {
    let moto = trailwarden_lab::trailwarden_moto::MotoServer::start().expect("moto");
    let lab = Lab::start_on(
        &LabSpec {
            accounts: 1,
            denied_accounts: 0,
            log_interval: Duration::from_millis(500),
        },
        Some(&moto.endpoint()),
    )
    .await
    .expect("lab");
    assert!(lab.moto.is_none());
    assert_eq!(lab.description.moto_endpoint, moto.endpoint());
    let regions = &lab.description.regions;
    assert!(
        regions.len() >= 10 && regions.iter().any(|r| r == "eu-west-1"),
        "{regions:?}"
    );
    assert!(
        !regions.iter().any(|r| r == "me-south-1"),
        "not opted in: {regions:?}"
    );
}
