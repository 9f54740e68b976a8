//! The `trailwarden` binary as users run it, against the emulated estate.

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Output;
use trailwarden_lab::{Lab, LabSpec, operator_env};
use trailwarden_testkit::IsolatedCommand;
use trailwarden_testkit::iam_policy::{allowed_actions, assert_calls_allowed};

const BIN: &str = env!("CARGO_BIN_EXE_trailwarden");

/// Runs the binary with the lab operator's credentials and nothing from the machine's AWS setup.
async fn trailwarden(args: &[&str]) -> Output {
    tokio::process::Command::from(
        IsolatedCommand::new(BIN)
            .credentials(&operator_env())
            .args(args)
            .build(),
    )
    .output()
    .await
    .expect("running trailwarden")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn help_lists_the_commands_that_exist_and_teaches_the_global_options() {
    let out = trailwarden(&["--help"]).await;
    assert!(out.status.success());
    let help = stdout(&out);
    for command in [
        "trails",
        "baseline",
        "audit",
        "remediate",
        "journal",
        "scan",
        "rules",
        "techniques",
    ] {
        assert!(help.contains(command), "{command} missing:\n{help}");
    }
    for option in [
        "--endpoint-url",
        "--profile",
        "--accounts",
        "--role-name",
        "--regions",
        "--concurrency",
        "--format",
    ] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
    // Commands of DESIGN.md that are not built yet must not be listed.
    for absent in ["lambda", "notify"] {
        assert!(
            !help.lines().any(|l| l.trim_start().starts_with(absent)),
            "{absent} is listed but does not exist:\n{help}"
        );
    }
    let out = trailwarden(&["--version"]).await;
    assert_eq!(
        stdout(&out).trim(),
        format!("trailwarden {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn techniques_reports_the_coverage_and_refuses_a_rule_naming_no_technique() {
    let out = trailwarden(&["techniques", "--format", "json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let items: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    let a1 = items.iter().find(|t| t["id"] == "A1").expect("A1");
    assert_eq!(a1["status"], "end-to-end", "{a1:#}");
    assert!(
        a1["checks"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["id"] == "trail-logging-stopped"
                && c["remedy"]["calls"][0] == "cloudtrail:StartLogging")),
        "{a1:#}"
    );
    // A user rule whose catalog reference is a typo would leave a technique uncovered unseen.
    let dir = tempfile::tempdir().unwrap();
    let rule = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../rules/trail/trail-delete.yml"
    ))
    .unwrap()
    .replace("catalog: 'A2'", "catalog: 'A99'");
    std::fs::write(dir.path().join("trail-delete.yml"), rule).unwrap();
    let out = trailwarden(&["techniques", "--rules", dir.path().to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rule trail-delete names catalog technique A99"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn bad_arguments_exit_2_naming_the_bad_value() {
    let out = trailwarden(&["--accounts", "12345", "trails"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("'12345' is not 12 digits"),
        "{}",
        stderr(&out)
    );

    let out = trailwarden(&["--accounts", "111111111111", "trails"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--role-name"), "{}", stderr(&out));

    let out = trailwarden(&["trails", "--format", "ocsf"]).await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trails_lists_three_accounts_in_all_regions_and_reports_the_denied_one() {
    let lab = Lab::start(&LabSpec::default()).await.expect("lab");
    let d = &lab.description;
    let accounts = d.account_list();
    let out = trailwarden(&[
        "--endpoint-url",
        &d.endpoint,
        "--accounts",
        &accounts,
        "--role-name",
        &d.role_name,
        "trails",
        "--format",
        "json",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("json report");

    let reached: Vec<&str> = report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account"].as_str().unwrap())
        .collect();
    assert_eq!(reached, ["100000000001", "100000000002", "100000000003"]);
    for account in report["accounts"].as_array().unwrap() {
        assert_eq!(account["regions_read"].as_array().unwrap().len(), 20);
        assert_eq!(account["uncovered_regions"].as_array().unwrap().len(), 0);
    }
    let trails = report["trails"].as_array().unwrap();
    assert_eq!(trails.len(), 4);
    let eu = trails.iter().find(|t| t["name"] == "eu-audit").unwrap();
    assert_eq!(eu["home_region"], "eu-west-1");
    assert_eq!(eu["status"]["is_logging"], false);

    let gaps = report["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0]["account"], "100000000004");
    assert_eq!(gaps[0]["kind"], "access-denied");
    assert_eq!(gaps[0]["operation"], "sts:AssumeRole");

    assert_calls_allowed_by_docs_iam(&lab);

    // The table names the failing account and the call.
    let out = trailwarden(&[
        "--endpoint-url",
        &d.endpoint,
        "--accounts",
        &accounts,
        "--role-name",
        &d.role_name,
        "--regions",
        "us-east-1,eu-west-1",
        "trails",
        "--format",
        "table",
    ])
    .await;
    let table = stdout(&out);
    assert!(table.contains("management-events"), "{table}");
    assert!(table.contains("100000000004"), "{table}");
    assert!(table.contains("sts:AssumeRole"), "{table}");
    assert!(table.contains("access-denied"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_inventory_exits_0_and_jsonl_has_one_object_per_line() {
    let lab = Lab::start(&LabSpec {
        accounts: 2,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let d = &lab.description;
    let out = trailwarden(&[
        "--endpoint-url",
        &d.endpoint,
        "--accounts",
        &d.account_list(),
        "--role-name",
        &d.role_name,
        "--regions",
        "us-east-1,eu-west-1",
        "trails",
        "--format",
        "jsonl",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let count = |t: &str| lines.iter().filter(|l| l["type"] == t).count();
    assert_eq!(count("account"), 2);
    assert_eq!(count("trail"), 3);
    assert_eq!(count("gap"), 0);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_clear_error_not_a_hang() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{closed}");
    let out = trailwarden(&["--endpoint-url", &endpoint, "--max-attempts", "1", "trails"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("sts:GetCallerIdentity"), "{err}");
    assert!(err.contains("--endpoint-url"), "{err}");
}

/// The shipped policies of the CLI's commands (`docs/iam/`).
const POLICIES: &[&str] = &[
    "trailwarden-audit-policy.json",
    "trailwarden-caller-policy.json",
    "trailwarden-remediate-policy.json",
];

/// Every call the commands made through the lab is allowed by the shipped policies.
fn assert_calls_allowed_by_docs_iam(lab: &Lab) {
    assert_calls_allowed(lab.proxy.calls().keys(), POLICIES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_then_audit_clean_then_tampered_then_bad_baseline() {
    let lab = Lab::start(&LabSpec {
        accounts: 2,
        denied_accounts: 1,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let d = &lab.description;
    let dir = std::env::temp_dir().join(format!("trailwarden-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let baseline = dir.join("baseline.toml");
    let baseline_arg = baseline.to_str().unwrap();
    let all = d.account_list();
    let reachable = "100000000001,100000000002";
    let common = |accounts: &str| -> Vec<String> {
        vec![
            "--endpoint-url".into(),
            d.endpoint.clone(),
            "--accounts".into(),
            accounts.into(),
            "--role-name".into(),
            d.role_name.clone(),
            "--regions".into(),
            "us-east-1,eu-west-1".into(),
        ]
    };
    let run = |mut args: Vec<String>, more: &[&str]| {
        args.extend(more.iter().map(|s| s.to_string()));
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            trailwarden(&refs).await
        }
    };

    // An unreadable account keeps the baseline from being written, unless allowed.
    let out = run(
        common(&all),
        &["baseline", "capture", "--out", baseline_arg],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("100000000003"), "{}", stderr(&out));
    assert!(!baseline.exists());

    let out = run(
        common(reachable),
        &["baseline", "capture", "--out", baseline_arg],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&baseline).unwrap();
    assert!(text.contains("management-events") && text.contains("[[account]]"));

    let out = run(
        common(reachable),
        &["audit", "--baseline", baseline_arg, "--format", "json"],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    lab.attack("stop-logging", "100000000002").await.unwrap();
    let out = run(
        common(reachable),
        &["audit", "--baseline", baseline_arg, "--format", "json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f["rule_id"], "trail-logging-stopped");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["account"], "100000000002");
    assert_eq!(f["region"], "us-east-1");
    assert_eq!(f["technique"], "A1");
    assert_eq!(f["expected"], true);
    assert_eq!(f["actual"], false);
    assert_eq!(
        f["resource"],
        "arn:aws:cloudtrail:us-east-1:100000000002:trail/management-events"
    );
    assert_eq!(report["accounts"][1]["coverage"]["eu-west-1"], false);

    let out = run(
        common(reachable),
        &["audit", "--baseline", baseline_arg, "--format", "ocsf"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let events: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["class_uid"], 2003);
    assert_eq!(events[0]["cloud"]["account"]["uid"], "100000000002");

    // The baseline's accounts are audited when --accounts is absent; the table says so.
    let out = run(
        vec![
            "--endpoint-url".into(),
            d.endpoint.clone(),
            "--role-name".into(),
            d.role_name.clone(),
            "--regions".into(),
            "us-east-1".into(),
        ],
        &["audit", "--baseline", baseline_arg, "--format", "table"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("trail-logging-stopped"),
        "{}",
        stdout(&out)
    );

    assert_calls_allowed_by_docs_iam(&lab);

    // A broken baseline is an error naming the file and the place.
    std::fs::write(&baseline, "format = 1\n[[account]]\naccount = 12\n").unwrap();
    let out = run(common(reachable), &["audit", "--baseline", baseline_arg]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(baseline_arg), "{}", stderr(&out));
    assert!(stderr(&out).contains("line"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remediate_plans_then_restores_then_is_a_no_op_and_journals_everything() {
    let lab = Lab::start(&LabSpec {
        accounts: 2,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let d = &lab.description;
    let dir = std::env::temp_dir().join(format!("trailwarden-remediate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let baseline = dir.join("baseline.toml");
    let state = dir.join("state.db");
    let (b, st) = (baseline.to_str().unwrap(), state.to_str().unwrap());
    let common = vec![
        "--endpoint-url",
        d.endpoint.as_str(),
        "--role-name",
        d.role_name.as_str(),
        "--regions",
        "us-east-1,eu-west-1",
        "--quiet",
    ];
    let run = |more: &[&str]| {
        let mut args = common.clone();
        args.extend_from_slice(more);
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            trailwarden(&refs).await
        }
    };
    let accounts = "100000000001,100000000002";
    let out = run(&["--accounts", accounts, "baseline", "capture", "--out", b]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A combined attack on both accounts.
    for (t, a) in [
        ("delete-trail", "100000000001"),
        ("schedule-key-deletion", "100000000001"),
        ("minimize", "100000000002"),
        ("bucket-policy-deny", "100000000002"),
        ("stop-config", "100000000002"),
    ] {
        lab.attack(t, a).await.unwrap();
    }
    // ...and in another region: the regional trail of the second account.
    lab.attacker("100000000002")
        .await
        .cloudtrail("eu-west-1")
        .delete_trail()
        .name("eu-audit")
        .send()
        .await
        .unwrap();

    // Dry run: a plan, exit 1, nothing changed, nothing journaled.
    let out = run(&[
        "remediate",
        "--baseline",
        b,
        "--state",
        st,
        "--format",
        "json",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let calls: BTreeSet<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"]["call"].as_str().unwrap())
        .collect();
    assert!(
        calls.contains("create_trail") && calls.contains("start_config_recorder"),
        "{calls:?}"
    );
    let regions: BTreeSet<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["region"].as_str().unwrap())
        .collect();
    assert_eq!(regions, BTreeSet::from(["us-east-1", "eu-west-1"]));
    assert!(!state.exists(), "a dry run must not open the state store");
    let out = run(&["audit", "--baseline", b]).await;
    assert_eq!(out.status.code(), Some(1));

    // Apply: everything restored, verified, exit 0; the audit is clean again.
    let out = run(&[
        "remediate",
        "--baseline",
        b,
        "--apply",
        "--state",
        st,
        "--format",
        "json",
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let results = report["results"].as_array().unwrap();
    assert!(results.len() >= 8, "{report:#}");
    assert!(
        results.iter().all(|r| r["result"] == "restored"),
        "{report:#}"
    );
    let out = run(&["audit", "--baseline", b]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_calls_allowed_by_docs_iam(&lab);

    // Again: nothing to do.
    let out = run(&[
        "remediate",
        "--baseline",
        b,
        "--apply",
        "--state",
        st,
        "--format",
        "json",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0));
    let again: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(again["steps"].as_array().unwrap().is_empty());

    // The journal has every action and every verification.
    let out = trailwarden(&["journal", "--state", st, "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let entries: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let entries = entries.as_array().unwrap();
    let applied = entries.iter().filter(|e| e["outcome"] == "applied").count();
    let verified = entries
        .iter()
        .filter(|e| e["outcome"] == "verified")
        .count();
    assert_eq!(applied, plan["steps"].as_array().unwrap().len());
    assert_eq!(verified, results.len());
    assert!(
        entries
            .iter()
            .any(|e| e["call"] == "cloudtrail:CreateTrail" && e["account"] == "100000000001")
    );

    // A denied permission is reported with the permission, not hidden.
    lab.attack("stop-logging", "100000000001").await.unwrap();
    lab.proxy.add(
        trailwarden_lab::trailwarden_moto::Fault::error(
            400,
            "AccessDeniedException",
            "User is not authorized to perform: cloudtrail:StartLogging",
        )
        .service("cloudtrail")
        .operation("StartLogging"),
    );
    let out = run(&[
        "remediate",
        "--baseline",
        b,
        "--apply",
        "--state",
        st,
        "--verify-attempts",
        "1",
        "--format",
        "json",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("missing permission cloudtrail:StartLogging"),
        "{text}"
    );
    assert!(text.contains("not-restored"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_remediation_policy_allows_every_action_a_restore_step_may_call() {
    let allowed = allowed_actions(POLICIES);
    for action in trailwarden_posture::plan::ALL_IAM_ACTIONS {
        assert!(allowed.contains(*action), "{action} missing from docs/iam");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_endpoint_url_and_named_profiles_work_as_in_the_aws_cli() {
    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let dir = std::env::temp_dir().join(format!("trailwarden-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let credentials = dir.join("credentials");
    std::fs::write(
        &credentials,
        "[lab]\naws_access_key_id = AKIAPROFILE00000001\naws_secret_access_key = from-profile\n",
    )
    .unwrap();
    let config = dir.join("config");
    std::fs::write(&config, "[profile lab]\nregion = us-east-1\n").unwrap();
    // No AWS_REGION and no keys: the region and the keys come from the profile.
    let out = tokio::process::Command::from(
        IsolatedCommand::new(BIN)
            .env_remove("AWS_REGION")
            .aws_files(&config, &credentials)
            .env("AWS_ENDPOINT_URL", &lab.description.endpoint)
            .args([
                "--profile",
                "lab",
                "--regions",
                "us-east-1",
                "--accounts",
                &lab.description.accounts[0].id,
                "--role-name",
                &lab.description.role_name,
                "trails",
                "--format",
                "json",
            ])
            .build(),
    )
    .output()
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["trails"].as_array().unwrap().len(), 1);
    // The role was assumed with the profile's keys, through AWS_ENDPOINT_URL.
    assert_eq!(lab.proxy.calls_to("sts", "AssumeRole"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
