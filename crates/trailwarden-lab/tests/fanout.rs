//! The AWS access layer against a real moto: fan-out over accounts × regions, role assumption,
//! region discovery, retries, and failures that stay confined to their target.

use std::time::Duration;
use trailwarden_aws::fanout::{self, Resolution, Selection};
use trailwarden_aws::trails::{Inventory, inventory};
use trailwarden_aws::{AwsOptions, ClientFactory};
use trailwarden_lab::{Lab, LabSpec, ROLE_NAME, operator_options};
use trailwarden_model::target::{AccountId, GapKind, RegionSelection};
use trailwarden_moto::Fault;

fn ids(lab: &Lab) -> Vec<AccountId> {
    lab.description
        .accounts
        .iter()
        .map(|a| a.id.parse().unwrap())
        .collect()
}

fn selection(lab: &Lab, regions: RegionSelection) -> Selection {
    Selection {
        accounts: Some(ids(lab)),
        role_name: Some(ROLE_NAME.into()),
        regions,
        concurrency: 8,
        ..Default::default()
    }
}

async fn sweep(options: &AwsOptions, selection: &Selection) -> (Resolution, Inventory) {
    let factory = ClientFactory::new(options).await;
    let resolution = fanout::resolve(&factory, selection).await.expect("resolve");
    let inventory = inventory(&resolution.accounts, selection.concurrency, &|_| {}).await;
    (resolution, inventory)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_every_trail_of_every_account_and_region_and_reports_the_denied_account() {
    let lab = Lab::start(&LabSpec::default()).await.expect("lab");
    let options = operator_options(&lab.description.endpoint);
    let (resolution, inventory) =
        sweep(&options, &selection(&lab, RegionSelection::AllEnabled)).await;

    // Three accounts reached; the fourth is reported, not silently dropped.
    assert_eq!(resolution.accounts.len(), 3);
    assert_eq!(resolution.gaps.len(), 1, "{:?}", resolution.gaps);
    let denied = &resolution.gaps[0];
    assert_eq!(denied.account.as_str(), "100000000004");
    assert_eq!(denied.kind, GapKind::AccessDenied);
    assert_eq!(denied.code.as_deref(), Some("AccessDenied"));
    assert_eq!(denied.operation, "sts:AssumeRole");
    assert!(
        denied
            .message
            .contains("arn:aws:iam::100000000004:role/TrailwardenAudit"),
        "{}",
        denied.message
    );

    // Every account: the regions moto reports enabled for it, in the aws partition only.
    for account in &resolution.accounts {
        assert_eq!(account.regions.len(), 20, "{:?}", account.regions);
        assert!(account.regions.iter().all(|r| !r.starts_with("cn-")));
        assert!(
            !account.regions.contains(&"me-south-1".to_owned()),
            "not opted in"
        );
        assert!(
            account.principal_arn.starts_with(&format!(
                "arn:aws:sts::{}:assumed-role/{ROLE_NAME}/trailwarden-",
                account.id
            )),
            "{}",
            account.principal_arn
        );
    }

    // Shadows folded: 4 trails, not 20 copies each.
    assert!(inventory.gaps.is_empty(), "{:?}", inventory.gaps);
    assert_eq!(inventory.trails.len(), 4);
    for expected in lab.description.accounts.iter().filter(|a| a.reachable) {
        for want in &expected.trails {
            let got = inventory
                .trails
                .iter()
                .find(|t| t.view.arn == want.arn)
                .unwrap_or_else(|| panic!("{} missing", want.arn));
            assert_eq!(got.account.as_str(), expected.id);
            assert_eq!(got.view.home_region, want.home_region);
            assert_eq!(got.view.is_multi_region, want.multi_region);
            assert_eq!(got.status.as_ref().unwrap().is_logging, want.logging);
            let seen = if want.multi_region { 20 } else { 1 };
            assert_eq!(got.seen_in.len(), seen, "{}", want.arn);
        }
    }

    // One DescribeTrails per account × region and one GetTrailStatus per trail, no more.
    assert_eq!(lab.proxy.calls_to("cloudtrail", "DescribeTrails"), 60);
    assert_eq!(lab.proxy.calls_to("cloudtrail", "GetTrailStatus"), 4);
    assert_eq!(lab.proxy.calls_to("ec2", "DescribeRegions"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_with_backoff_until_it_passes() {
    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let fault = lab.proxy.add(
        Fault::throttle()
            .service("cloudtrail")
            .operation("DescribeTrails")
            .region("eu-west-1")
            .times(2),
    );
    let options = operator_options(&lab.description.endpoint);
    let (resolution, inventory) = sweep(
        &options,
        &selection(
            &lab,
            RegionSelection::List(vec!["us-east-1".into(), "eu-west-1".into()]),
        ),
    )
    .await;
    assert!(resolution.gaps.is_empty(), "{:?}", resolution.gaps);
    assert!(inventory.gaps.is_empty(), "{:?}", inventory.gaps);
    assert_eq!(lab.proxy.hits(fault), 2);
    // Two calls; the throttled one took three attempts.
    assert_eq!(lab.proxy.calls_to("cloudtrail", "DescribeTrails"), 2);
    assert_eq!(lab.proxy.requests_to("cloudtrail", "DescribeTrails"), 4);
    assert_eq!(inventory.regions_read.values().next().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_region_is_a_gap_for_that_region_only() {
    let lab = Lab::start(&LabSpec {
        accounts: 2,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    // Throttled beyond every retry in one region; token rejected (opt-in) in another.
    lab.proxy
        .add(Fault::throttle().service("cloudtrail").region("ap-south-1"));
    lab.proxy.add(
        Fault::error(
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
        .service("cloudtrail")
        .region("sa-east-1"),
    );
    let mut options = operator_options(&lab.description.endpoint);
    options.max_attempts = 2;
    let (resolution, inventory) =
        sweep(&options, &selection(&lab, RegionSelection::AllEnabled)).await;
    assert!(resolution.gaps.is_empty(), "{:?}", resolution.gaps);
    assert_eq!(inventory.gaps.len(), 4, "{:?}", inventory.gaps);
    for gap in &inventory.gaps {
        match gap.region.as_deref() {
            Some("ap-south-1") => assert_eq!(gap.kind, GapKind::Throttled),
            Some("sa-east-1") => assert_eq!(gap.kind, GapKind::RegionNotEnabled),
            other => panic!("unexpected gap in {other:?}: {gap}"),
        }
        assert_eq!(gap.operation, "cloudtrail:DescribeTrails");
    }
    // Every other region of both accounts was read, and the trails are complete.
    for regions in inventory.regions_read.values() {
        assert_eq!(regions.len(), 18);
    }
    assert_eq!(inventory.trails.len(), 3);
    assert!(inventory.trails.iter().all(|t| t.status.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_regions_are_checked_against_the_enabled_ones() {
    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let options = operator_options(&lab.description.endpoint);
    let (resolution, inventory) = sweep(
        &options,
        &selection(
            &lab,
            RegionSelection::List(vec!["eu-west-1".into(), "me-south-1".into()]),
        ),
    )
    .await;
    assert_eq!(resolution.accounts[0].regions, vec!["eu-west-1"]);
    // A named region that is not enabled is no gap (nothing can happen there), but it is said.
    assert!(resolution.gaps.is_empty(), "{:?}", resolution.gaps);
    assert_eq!(resolution.not_enabled.len(), 1);
    let gap = &resolution.not_enabled[0];
    assert_eq!(gap.kind, GapKind::RegionNotEnabled);
    assert_eq!(gap.region.as_deref(), Some("me-south-1"));
    assert!(gap.message.contains("nothing can happen there"), "{gap}");
    assert!(inventory.gaps.is_empty());
    // The multi-region trail is visible from eu-west-1 as a shadow, homed in us-east-1.
    assert_eq!(inventory.trails.len(), 1);
    assert_eq!(inventory.trails[0].view.home_region, "us-east-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_region_discovery_is_an_account_gap_unless_regions_are_named() {
    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    lab.proxy.add(
        Fault::error(
            403,
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        )
        .service("ec2")
        .operation("DescribeRegions"),
    );
    let options = operator_options(&lab.description.endpoint);
    let (resolution, _) = sweep(&options, &selection(&lab, RegionSelection::AllEnabled)).await;
    assert!(resolution.accounts.is_empty());
    let gap = &resolution.gaps[0];
    assert_eq!(gap.kind, GapKind::AccessDenied);
    assert_eq!(gap.operation, "ec2:DescribeRegions");
    assert!(
        gap.message.contains("pass --regions explicitly"),
        "{}",
        gap.message
    );

    let (resolution, inventory) = sweep(
        &options,
        &selection(&lab, RegionSelection::List(vec!["us-east-1".into()])),
    )
    .await;
    assert!(resolution.gaps.is_empty());
    assert_eq!(inventory.trails.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_accounts_the_callers_own_account_is_read() {
    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let options = operator_options(&lab.description.endpoint);
    let selection = Selection {
        accounts: None,
        role_name: None,
        regions: RegionSelection::List(vec!["us-east-1".into()]),
        concurrency: 4,
        ..Default::default()
    };
    let (resolution, inventory) = sweep(&options, &selection).await;
    // moto maps unknown access keys to its default account, which has no trails.
    assert_eq!(resolution.accounts.len(), 1);
    assert_eq!(resolution.accounts[0].id.as_str(), "123456789012");
    assert_eq!(lab.proxy.calls_to("sts", "AssumeRole"), 0);
    assert!(inventory.trails.is_empty());
    assert!(inventory.gaps.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_does_not_answer_is_reported_per_account_and_quickly() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut options = operator_options(&format!("http://127.0.0.1:{closed}"));
    options.max_attempts = 2;
    options.call_timeout = Duration::from_secs(10);
    let factory = ClientFactory::new(&options).await;
    let started = std::time::Instant::now();

    let caller = Selection {
        accounts: None,
        role_name: None,
        regions: RegionSelection::AllEnabled,
        concurrency: 4,
        ..Default::default()
    };
    let err = fanout::resolve(&factory, &caller).await.unwrap_err();
    assert!(err.to_string().contains("--endpoint-url"), "{err}");

    let accounts = Selection {
        accounts: Some(vec![
            "111111111111".parse().unwrap(),
            "222222222222".parse().unwrap(),
        ]),
        role_name: Some(ROLE_NAME.into()),
        regions: RegionSelection::AllEnabled,
        concurrency: 4,
        ..Default::default()
    };
    let resolution = fanout::resolve(&factory, &accounts).await.unwrap();
    assert!(resolution.accounts.is_empty());
    assert_eq!(resolution.gaps.len(), 2);
    for gap in &resolution.gaps {
        assert_eq!(gap.kind, GapKind::Unreachable, "{gap}");
    }
    assert!(started.elapsed() < Duration::from_secs(30));
}
