//! Organization discovery as users run it, against an emulated organization: `--accounts org`
//! and `--accounts ou-…` find exactly the active accounts of a nested unit tree, and `audit`
//! over the organization names each account and region nobody guards and each account that
//! left — the victims the test made, nothing else.

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Output;
use std::time::Duration;
use trailwarden_lab::guarded::{Guarded, WatchOptions};
use trailwarden_lab::{Lab, LabSpec, ROLE_NAME, SECURITY_ACCOUNT, operator_env};
use trailwarden_testkit::IsolatedCommand;
use trailwarden_testkit::iam_policy::assert_calls_allowed;

const BIN: &str = env!("CARGO_BIN_EXE_trailwarden");
/// moto maps the lab operator's keys to this account: the management account.
const MANAGEMENT: &str = "123456789012";

async fn trailwarden(lab: &Lab, args: &[&str]) -> Output {
    let mut all = vec![
        "--endpoint-url",
        lab.description.endpoint.as_str(),
        "--role-name",
        ROLE_NAME,
        "--quiet",
    ];
    all.extend_from_slice(args);
    tokio::process::Command::from(
        IsolatedCommand::new(BIN)
            .credentials(&operator_env())
            .args(&all)
            .build(),
    )
    .output()
    .await
    .expect("running trailwarden")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The accounts a `trails --format json` report visited, and those it skipped.
fn visited_and_skipped(report: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let ids = |key: &str, field: &str| {
        report[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key} in {report}"))
            .iter()
            .map(|a| a[field].as_str().unwrap().to_owned())
            .collect()
    };
    (ids("accounts", "account"), ids("skipped", "account"))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `(account, region)` of every finding of `rule`.
fn findings_of(report: &Value, rule: &str) -> BTreeSet<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == rule)
        .map(|f| {
            (
                f["account"].as_str().unwrap().to_owned(),
                f["region"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_exactly_the_active_accounts_of_a_nested_unit_tree() {
    let lab = Lab::start(&LabSpec {
        accounts: 3,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let org = lab
        .form_organization(
            &[
                "workloads",
                "workloads/prod",
                "workloads/prod/eu",
                "sandbox",
            ],
            &[
                ("100000000001", ""),
                ("100000000002", "workloads"),
                ("100000000003", "workloads/prod"),
            ],
        )
        .await
        .expect("organization");
    // Three levels below `workloads`: a walk that stops at direct children misses it.
    let deep = lab
        .create_account(&org, "eu-app", "workloads/prod/eu")
        .await
        .unwrap();
    let live = lab
        .create_account(&org, "sandbox-live", "sandbox")
        .await
        .unwrap();
    let closed = lab
        .create_account(&org, "sandbox-old", "sandbox")
        .await
        .unwrap();
    lab.close_account(&closed).await.unwrap();

    let whole = trailwarden(
        &lab,
        &[
            "--accounts",
            "org",
            "--regions",
            "us-east-1",
            "trails",
            "--format",
            "json",
        ],
    )
    .await;
    let (visited, skipped) = visited_and_skipped(&json(&whole));
    assert_eq!(
        visited,
        set(&[
            MANAGEMENT,
            SECURITY_ACCOUNT,
            "100000000001",
            "100000000002",
            "100000000003",
            &deep,
            &live
        ]),
        "every active account, and only those"
    );
    assert_eq!(
        skipped,
        set(&[&closed]),
        "the closed account is skipped and said so"
    );
    let report = json(&whole);
    assert!(
        report["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("SUSPENDED"),
        "{report}"
    );

    let workloads = org.unit("workloads");
    let unit = trailwarden(
        &lab,
        &[
            "--accounts",
            workloads,
            "--regions",
            "us-east-1",
            "trails",
            "--format",
            "json",
        ],
    )
    .await;
    let (visited, skipped) = visited_and_skipped(&json(&unit));
    assert_eq!(
        visited,
        set(&["100000000002", "100000000003", &deep]),
        "the unit and every unit below it"
    );
    assert!(skipped.is_empty());

    // Units and ids mix; exclusions win over both.
    let sandbox = org.unit("sandbox");
    let mixed = format!("{sandbox},100000000001");
    let excluded = trailwarden(
        &lab,
        &[
            "--accounts",
            &mixed,
            "--exclude-accounts",
            &live,
            "--regions",
            "us-east-1",
            "trails",
            "--format",
            "json",
        ],
    )
    .await;
    let (visited, skipped) = visited_and_skipped(&json(&excluded));
    assert_eq!(visited, set(&["100000000001"]));
    assert_eq!(skipped, set(&[&live, &closed]));

    // The tree is walked unit by unit: never one ListParents per account.
    assert_eq!(lab.proxy.calls_to("organizations", "ListParents"), 0);
    assert!(lab.proxy.calls_to("organizations", "ListAccountsForParent") >= 4);
    assert_calls_allowed(
        lab.proxy.calls().keys(),
        &[
            "trailwarden-caller-policy.json",
            "trailwarden-audit-policy.json",
        ],
    );

    // A unit that does not exist stops the command with the unit named (nothing to visit).
    let missing = trailwarden(
        &lab,
        &[
            "--accounts",
            "ou-zzzz-zzzzzzzz",
            "--regions",
            "us-east-1",
            "trails",
        ],
    )
    .await;
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("ou-zzzz-zzzzzzzz"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_over_the_organization_names_unguarded_accounts_and_regions_and_accounts_that_left() {
    let lab = Lab::start(&LabSpec {
        accounts: 3,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let org = lab
        .form_organization(
            &["workloads"],
            &[
                ("100000000001", "workloads"),
                ("100000000002", "workloads"),
                ("100000000003", "workloads"),
            ],
        )
        .await
        .expect("organization");
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.toml");
    let baseline = baseline.to_str().unwrap();
    let unit = org.unit("workloads");

    let capture = trailwarden(
        &lab,
        &["--accounts", unit, "baseline", "capture", "--out", baseline],
    )
    .await;
    assert_eq!(
        capture.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&capture.stderr)
    );
    let text = std::fs::read_to_string(baseline).unwrap();
    assert!(
        text.contains(&org.id),
        "the baseline records the organization"
    );

    // The victims: an account created after the baseline, one that left, one new region.
    let newcomer = lab
        .create_account(&org, "newcomer", "workloads")
        .await
        .unwrap();
    lab.remove_account("100000000003").await.unwrap();
    lab.enable_region("100000000002", "ap-east-1")
        .await
        .unwrap();

    let audit = trailwarden(
        &lab,
        &[
            "--accounts",
            unit,
            "audit",
            "--baseline",
            baseline,
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(audit.status.code(), Some(1));
    let report = json(&audit);
    let home = |account: &str| (account.to_owned(), "us-east-1".to_owned());
    assert_eq!(
        findings_of(&report, "organization-account-unguarded"),
        BTreeSet::from([home(&newcomer)])
    );
    assert_eq!(
        findings_of(&report, "organization-account-left"),
        BTreeSet::from([home("100000000003")])
    );
    assert_eq!(
        findings_of(&report, "organization-region-unguarded"),
        BTreeSet::from([("100000000002".to_owned(), "ap-east-1".to_owned())])
    );
    let left = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "organization-account-left")
        .unwrap();
    assert_eq!(left["severity"], "critical");
    assert_eq!(left["technique"], "G1");
    // Nothing else changed in the accounts the baseline holds.
    let others: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            !f["rule_id"].as_str().unwrap().starts_with("organization-")
                && f["region"] != "ap-east-1"
                && f["account"] != newcomer.as_str()
        })
        .collect();
    assert!(others.is_empty(), "{others:#?}");

    // With defaults in the baseline, the newcomer is checked against them at once, region by
    // region, instead of being only "unguarded": GuardDuty was turned on in one region of it.
    let mut text = std::fs::read_to_string(baseline).unwrap();
    text = text.replacen(
        "[[account]]",
        "[defaults]\nguardduty = true\n\n[[account]]",
        1,
    );
    std::fs::write(baseline, text).unwrap();
    lab.enable_guardduty(&newcomer, "eu-west-1").await.unwrap();
    let regions = "us-east-1,eu-west-1,ap-southeast-2";
    let audit = trailwarden(
        &lab,
        &[
            "--accounts",
            unit,
            "--regions",
            regions,
            "audit",
            "--baseline",
            baseline,
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(audit.status.code(), Some(1));
    let report = json(&audit);
    let at = |region: &str| (newcomer.clone(), region.to_owned());
    assert!(findings_of(&report, "organization-account-unguarded").is_empty());
    assert_eq!(
        findings_of(&report, "organization-default-guardduty-off"),
        BTreeSet::from([at("us-east-1"), at("ap-southeast-2")])
    );
    assert_eq!(
        findings_of(&report, "organization-default-region-not-logged"),
        BTreeSet::from([at("us-east-1"), at("eu-west-1"), at("ap-southeast-2")]),
        "the newcomer has no trail"
    );
    assert!(
        findings_of(&report, "organization-default-config-off").is_empty(),
        "not asked for"
    );

    // A re-capture keeps what a human wrote: the defaults survive.
    let capture = trailwarden(
        &lab,
        &["--accounts", unit, "baseline", "capture", "--out", baseline],
    )
    .await;
    assert_eq!(
        capture.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&capture.stderr)
    );
    let text = std::fs::read_to_string(baseline).unwrap();
    assert!(
        text.contains("[defaults]") && text.contains("guardduty = true"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_rediscovers_the_organization_on_its_events_and_reports_each_change_once() {
    let lab = Lab::start(&LabSpec {
        accounts: 3,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let org = lab
        .form_organization(
            &["workloads"],
            &[
                ("100000000001", "workloads"),
                ("100000000002", "workloads"),
                ("100000000003", "workloads"),
            ],
        )
        .await
        .expect("organization");
    let mut options = WatchOptions::new(BIN);
    options.accounts = Some(org.unit("workloads").to_owned());
    // Long: anything reported below comes from the events, not from the schedule.
    options.sweep_interval = "1h".into();
    let guarded = Guarded::start(&lab, options).await;
    let sweeps = guarded.metric("trailwarden_sweeps_total");

    // The victims: an account created in the unit (silently: no event reaches the guard
    // from the management account here), then a member's admin leaving the organization.
    let newcomer = lab
        .create_account(&org, "newcomer", "workloads")
        .await
        .unwrap();
    lab.leave_organization("100000000003").await.unwrap();

    let of = |rule: &str| -> Vec<Value> {
        guarded
            .detections()
            .into_iter()
            .filter(|d| d["rule_id"] == rule)
            .collect()
    };
    wait_or_show_log(&guarded, "the account that left and the newcomer", || {
        !of("organization-account-left").is_empty()
            && !of("organization-account-unguarded").is_empty()
    });
    let left = of("organization-account-left");
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["account"], "100000000003");
    assert_eq!(left[0]["severity"], "critical");
    let unguarded = of("organization-account-unguarded");
    assert_eq!(unguarded.len(), 1, "{unguarded:#?}");
    assert_eq!(unguarded[0]["account"], newcomer.as_str());
    // The event rule saw the call itself too, with who made it.
    let event = of("organization-account-left-or-removed");
    assert_eq!(event.len(), 1, "{event:#?}");
    assert_eq!(event[0]["account"], "100000000003");
    assert_eq!(
        guarded.metric("trailwarden_sweeps_total"),
        sweeps,
        "no sweep ran: the event made the rediscovery"
    );

    // Another member leaves: one more detection; what was reported is not reported twice.
    lab.leave_organization("100000000002").await.unwrap();
    wait_or_show_log(&guarded, "the second account that left", || {
        of("organization-account-left").len() == 2
    });
    std::thread::sleep(Duration::from_secs(2));
    let left: BTreeSet<String> = of("organization-account-left")
        .iter()
        .map(|d| d["account"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, set(&["100000000002", "100000000003"]));
    assert_eq!(
        of("organization-account-unguarded").len(),
        1,
        "once while it lasts"
    );
    let notified: Vec<Value> = guarded
        .notifications()
        .into_iter()
        .filter(|n| n.to_string().contains("organization-account-unguarded"))
        .collect();
    assert_eq!(notified.len(), 1, "{notified:#?}");
}

/// Waits up to 90 s for `done`; on time-out, fails with the service's log.
fn wait_or_show_log(guarded: &Guarded, what: &str, mut done: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(
            std::time::Instant::now() < until,
            "{what}: not within 90 s; the service's log:\n{}",
            guarded.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
