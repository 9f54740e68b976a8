//! Organization discovery as users run it, against an emulated organization: `--accounts org`
//! and `--accounts ou-…` find exactly the active accounts of a nested unit tree, and `audit`
//! over the organization names each account and region nobody guards and each account that
//! left — the victims the test made, nothing else.

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Output;
use std::time::Duration;
use trailwarden_lab::guarded::{Guarded, WatchOptions};
use trailwarden_lab::organization::LabOrganization;
use trailwarden_lab::trailwarden_moto::Fault;
use trailwarden_lab::{
    ATTACKER_ROLE, Lab, LabSpec, ROLE_NAME, Recorded, SECURITY_ACCOUNT, operator_env,
};
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
    let (lab, org) = organized(
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
    .await;
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

    // Organizations throttles without a published rate: retried, and the answer is the same.
    let throttled = lab.proxy.add(
        Fault::error(
            400,
            "TooManyRequestsException",
            "AWS Organizations can't complete your request because another request is already in progress.",
        )
        .service("organizations")
        .operation("ListAccountsForParent")
        .times(2),
    );
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
    assert_eq!(lab.proxy.hits(throttled), 2);
    let (visited, _) = visited_and_skipped(&json(&unit));
    assert_eq!(visited, set(&["100000000002", "100000000003", &deep]));

    // A caller that may not list the organization is told where to run from.
    lab.proxy.add(
        Fault::error(
            400,
            "AccessDeniedException",
            "You don't have permissions to access this resource.",
        )
        .service("organizations")
        .operation("ListAccounts"),
    );
    let denied = trailwarden(
        &lab,
        &["--accounts", "org", "--regions", "us-east-1", "trails"],
    )
    .await;
    assert_eq!(denied.status.code(), Some(2));
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(
        err.contains("organizations:ListAccounts")
            && err.contains("management account or a delegated administrator"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_over_the_organization_names_unguarded_accounts_and_regions_and_accounts_that_left() {
    let (lab, org) = organized(
        &["workloads"],
        &[
            ("100000000001", "workloads"),
            ("100000000002", "workloads"),
            ("100000000003", "workloads"),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.toml");
    let baseline = baseline.to_str().unwrap();
    let unit = org.unit("workloads");

    let text = capture(&lab, unit, baseline).await;
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
    let text = capture(&lab, unit, baseline).await;
    assert!(
        text.contains("[defaults]") && text.contains("guardduty = true"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_rediscovers_the_organization_on_its_events_and_reports_each_change_once() {
    let (lab, org) = organized(
        &["workloads"],
        &[
            ("100000000001", "workloads"),
            ("100000000002", "workloads"),
            ("100000000003", "workloads"),
        ],
    )
    .await;
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

    // Failed Organizations calls change nothing: handled (the event rule sees the attempt) but
    // no rediscovery, so an attacker cannot keep the guard listing the organization with
    // calls that are refused.
    let listings = lab.proxy.calls_to("organizations", "ListAccounts");
    for _ in 0..5 {
        assert!(
            lab.leave_organization("100000000003").await.is_err(),
            "no longer a member"
        );
    }
    wait_or_show_log(&guarded, "the refused attempts", || {
        of("organization-account-left-or-removed")
            .iter()
            .filter(|d| d["account"] == "100000000003")
            .count()
            >= 2
    });
    // Longer than the spacing between rediscoveries.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        lab.proxy.calls_to("organizations", "ListAccounts"),
        listings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_by_stack_sets_reaches_every_account_and_region_of_the_units_and_names_the_rest() {
    let (lab, org) = organized(
        &["workloads", "sandbox"],
        &[
            ("100000000001", "workloads"),
            ("100000000002", "workloads"),
            ("100000000003", "sandbox"),
        ],
    )
    .await;
    let bus = lab.description.security.event_bus_arn.clone();
    let unit = org.unit("workloads").to_owned();
    let deploy = |apply: bool| {
        let (bus, unit) = (bus.clone(), unit.clone());
        let lab = &lab;
        async move {
            let mut args = vec![
                "--regions",
                "us-east-1,eu-west-1",
                "deploy",
                "--event-bus-arn",
                &bus,
                "--forwarder-role-name",
                "TrailwardenEventForwarder",
                "--stack-set",
                "trailwarden",
                "--organizational-units",
                &unit,
                "--format",
                "json",
            ];
            if apply {
                args.push("--apply");
            }
            trailwarden(lab, &args).await
        }
    };

    // Without --apply: the plan and the templates, nothing created.
    let plan = deploy(false).await;
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let plan = json(&plan);
    assert_eq!(plan["stack_sets"][0]["name"], "trailwarden-roles");
    assert_eq!(
        plan["stack_sets"][0]["template"]["Resources"]["AuditRole"]["Properties"]["RoleName"],
        ROLE_NAME
    );
    assert_eq!(lab.proxy.calls_to("cloudformation", "CreateStackSet"), 0);

    let applied = deploy(true).await;
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&applied.stdout),
        String::from_utf8_lossy(&applied.stderr)
    );
    let doc = json(&applied);
    let cells = |set: usize| -> BTreeSet<(String, String)> {
        doc["stack_sets"][set]["instances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["status"] == "CURRENT")
            .map(|i| {
                (
                    i["account"].as_str().unwrap().to_owned(),
                    i["region"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let of = |accounts: &[&str], regions: &[&str]| -> BTreeSet<(String, String)> {
        accounts
            .iter()
            .flat_map(|a| regions.iter().map(move |r| (a.to_string(), r.to_string())))
            .collect()
    };
    let members = ["100000000001", "100000000002"];
    assert_eq!(cells(0), of(&members, &["us-east-1"]), "roles: one region");
    assert_eq!(
        cells(1),
        of(&members, &["us-east-1", "eu-west-1"]),
        "rules: every region"
    );
    // What CloudFormation created is what trailwarden expects: the rules are the ones
    // `deploy` would write, and the role trusts only the security account's trailwarden
    // inside the organization.
    let check = trailwarden(
        &lab,
        &[
            "--accounts",
            &unit,
            "--regions",
            "us-east-1,eu-west-1",
            "deploy",
            "--event-bus-arn",
            &bus,
            "--forwarder-role-name",
            "TrailwardenEventForwarder",
            "--format",
            "json",
        ],
    )
    .await;
    let rows = json(&check);
    let rows = rows["regions"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{rows:#?}");
    assert!(rows.iter().all(|r| r["change"] == "unchanged"), "{rows:#?}");
    for member in members {
        let role = lab
            .iam_role(member, ROLE_NAME)
            .await
            .unwrap()
            .expect("the role");
        assert!(role.contains(&org.id), "{role}");
        assert!(
            lab.iam_role(member, "TrailwardenEventForwarder")
                .await
                .unwrap()
                .is_some()
        );
    }
    assert!(
        lab.iam_role("100000000003", ROLE_NAME)
            .await
            .unwrap()
            .is_none(),
        "outside the units"
    );

    // Again: nothing new to create; an account that joined since (moto has no automatic
    // deployment) is named as not reached, and the run fails.
    let newcomer = lab
        .create_account(&org, "newcomer", "workloads")
        .await
        .unwrap();
    let again = deploy(true).await;
    assert_eq!(again.status.code(), Some(1));
    let doc = json(&again);
    let not_reached = |set: usize| -> BTreeSet<(String, String)> {
        doc["stack_sets"][set]["not_reached"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_owned(),
                    p[1].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(not_reached(0), of(&[&newcomer], &["us-east-1"]));
    assert_eq!(
        not_reached(1),
        of(&[&newcomer], &["us-east-1", "eu-west-1"])
    );
    assert_eq!(
        lab.proxy.calls_to("cloudformation", "CreateStackInstances"),
        2,
        "once per set"
    );
    assert_eq!(lab.proxy.calls_to("cloudformation", "UpdateStackSet"), 2);
    assert_calls_allowed(
        lab.proxy.calls().keys(),
        &[
            "trailwarden-stackset-deploy-policy.json",
            "trailwarden-deploy-policy.json",
            "trailwarden-caller-policy.json",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_that_left_the_watched_unit_is_still_swept_and_restored() {
    let (lab, org) = organized(
        &["workloads"],
        &[
            ("100000000001", "workloads"),
            ("100000000002", "workloads"),
            ("100000000003", "workloads"),
        ],
    )
    .await;
    let mut options = WatchOptions::new(BIN);
    options.accounts = Some(org.unit("workloads").to_owned());
    options.sweep_interval = "2s".into();
    let guarded = Guarded::start(&lab, options).await;

    // The attacker takes the account out of the organization (out of the watched unit), then
    // stops its trail with calls CloudTrail never records: only the sweep can see it.
    let victim = "100000000003";
    lab.leave_organization(victim).await.unwrap();
    let quiet = lab
        .description
        .attacker_as(victim, ATTACKER_ROLE, "mallory", Recorded::No)
        .await;
    lab.attack_as("stop-logging", victim, &quiet).await.unwrap();
    assert!(!lab.trail_logging(victim).await);

    let until = std::time::Instant::now() + Duration::from_secs(90);
    while !lab.trail_logging(victim).await {
        assert!(
            std::time::Instant::now() < until,
            "the account that left was not restored; the service's log:\n{}",
            guarded.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let left: Vec<Value> = guarded
        .detections()
        .into_iter()
        .filter(|d| d["rule_id"] == "organization-account-left")
        .collect();
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["account"], victim);
}

/// `baseline capture` over `unit` into `baseline`; the file's text.
async fn capture(lab: &Lab, unit: &str, baseline: &str) -> String {
    let out = trailwarden(
        lab,
        &["--accounts", unit, "baseline", "capture", "--out", baseline],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(baseline).unwrap()
}

/// The lab's three member accounts in an organization: `units` created (parents first), each
/// member invited into its unit.
async fn organized(units: &[&str], members: &[(&str, &str)]) -> (Lab, LabOrganization) {
    let lab = Lab::start(&LabSpec {
        accounts: 3,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let org = lab
        .form_organization(units, members)
        .await
        .expect("organization");
    (lab, org)
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
