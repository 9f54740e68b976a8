//! `trailwarden deploy`: the forwarding rules in every member region (pattern generated from
//! the rule pack, so the two cannot drift apart), applied idempotently or written as
//! CloudFormation templates.

use crate::args::{DeployArgs, Format, GlobalArgs};
use crate::exit;
use crate::output::{self, print, table};
use crate::progress::Progress;
use crate::{rules_cmd, targets};
use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use trailwarden_aws::ClientFactory;
use trailwarden_aws::fanout::{self, for_each_region};
use trailwarden_aws::forwarding::{self, Change, FORWARDING_RULE};
use trailwarden_aws::organization;
use trailwarden_aws::stack_sets::{self, Instance, StackSetRequest};
use trailwarden_engine::forwarding::Forwarding;
use trailwarden_engine::guard::remember_own_sessions;
use trailwarden_engine::journal::Journal;
use trailwarden_engine::stack_templates;
use trailwarden_model::target::{
    AccountId, Gap, OrganizationScope, RegionSelection, is_unit_id, partition_of_region,
};

#[derive(Debug, Serialize)]
struct Row {
    account: String,
    region: String,
    change: Option<Change>,
}

pub async fn run(factory: &ClientFactory, g: &GlobalArgs, args: &DeployArgs) -> Result<u8> {
    let rules = rules_cmd::load(&args.source)?;
    if !rules.forwarded_events().complete {
        eprintln!(
            "note: some rules are not restricted by eventName (e.g. omitted request parameters); \
             the forwarding pattern cannot cover them — they apply to log files (`scan`) and sweeps"
        );
    }
    // The same rule `audit --event-bus-arn` and `watch --event-bus-arn` check against.
    let forwarding = Forwarding::new(
        &rules,
        &args.event_bus_arn,
        args.forwarder_role_name.clone(),
    )?;
    let pattern = &forwarding.pattern;
    if let Some(name) = &args.stack_set {
        return deploy_stack_sets(factory, g, args, &forwarding, name).await;
    }
    if let Some(dir) = &args.cloudformation {
        write_templates(dir, &forwarding, g.role_name.as_deref())?;
        print(&format!(
            "wrote {0}/member-forwarding.json (StackSet for every member account and region), {0}/member-roles.json (StackSet for every member account, one region) and {0}/security-queue.json (the security account)\n",
            dir.display(),
        ))?;
        return Ok(exit::OK);
    }
    // The guard knows trailwarden's own calls by the keys of the sessions that made them:
    // remember this run's before any is obtained.
    if args.apply {
        let path = match &args.state {
            Some(p) => p.clone(),
            None => Journal::default_path()?,
        };
        let journal = Journal::open(&path)
            .with_context(|| format!("opening the state store {}", path.display()))?;
        remember_own_sessions(factory, Arc::new(journal));
    }
    let selection = targets::selection(g, None);
    let progress = Progress::with_unit(g.quiet, "deploying forwarding rules", 0, "regions");
    progress.set_message("resolving accounts and regions");
    let resolution = fanout::resolve(factory, &selection).await?;
    progress.set_message("deploying forwarding rules");
    let mut gaps: Vec<Gap> = resolution.gaps;
    let cells: usize = resolution.accounts.iter().map(|a| a.regions.len()).sum();
    progress.add_work(cells as u64);
    let results = for_each_region(
        &resolution.accounts,
        usize::from(g.concurrency),
        &|_| progress.step(),
        |account, region| {
            let pattern = pattern.clone();
            let bus = args.event_bus_arn.clone();
            let apply = args.apply;
            let role = forwarding.role_for(&account.id, &region);
            async move {
                if apply {
                    forwarding::ensure(account, &region, &pattern, &bus, role.as_deref())
                        .await
                        .map(Some)
                } else {
                    let existing = forwarding::read(account, &region).await?;
                    Ok(Some(
                        match forwarding::drift(existing.as_ref(), &pattern, &bus) {
                            None => Change::Unchanged,
                            Some(forwarding::Drift::Missing) => Change::Created,
                            Some(_) => Change::Updated,
                        },
                    ))
                }
            }
        },
    )
    .await;
    progress.finish();
    let mut rows = Vec::new();
    for (target, result) in results {
        match result {
            Ok(change) => rows.push(Row {
                account: target.account.to_string(),
                region: target.region,
                change,
            }),
            Err(gap) => gaps.push(gap),
        }
    }
    let pending = rows
        .iter()
        .filter(|r| r.change != Some(Change::Unchanged))
        .count();
    let text = match output::choose(g.format) {
        Format::Table => {
            let mut t = table(&[
                "account",
                "region",
                if args.apply { "result" } else { "would be" },
            ]);
            for r in &rows {
                t.add_row(vec![
                    r.account.clone(),
                    r.region.clone(),
                    r.change
                        .map_or("-".into(), |c| format!("{c:?}").to_lowercase()),
                ]);
            }
            let mut text = format!("Rule {FORWARDING_RULE} → {}\n{t}\n", args.event_bus_arn);
            for gap in &gaps {
                text.push_str(&format!("not reached: {gap}\n"));
            }
            if !args.apply && pending > 0 {
                text.push_str(&format!(
                    "{pending} region(s) to change: run again with --apply\n"
                ));
            }
            text
        }
        _ => {
            serde_json::to_string_pretty(&json!({
                "rule": FORWARDING_RULE, "event_bus_arn": args.event_bus_arn, "event_pattern": pattern,
                "applied": args.apply, "regions": rows, "gaps": gaps,
            }))? + "\n"
        }
    };
    print(&text)?;
    Ok(if !gaps.is_empty() || (!args.apply && pending > 0) {
        exit::FINDINGS
    } else {
        exit::OK
    })
}

/// StackSet-ready templates: the member rule and roles (the ones `--stack-set` deploys), and
/// the security account's queue side. The roles' trust is left to parameters.
fn write_templates(
    dir: &std::path::Path,
    forwarding: &Forwarding,
    role_name: Option<&str>,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let member = stack_templates::member_forwarding(forwarding);
    let roles =
        stack_templates::member_roles(role_name.unwrap_or("TrailwardenAudit"), "", "", forwarding);
    let security = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "trailwarden: the security account's side — members may put events on the bus; a rule delivers them to the central queue; the queue dead-letters what watch cannot handle.",
        "Parameters": {"OrganizationId": {"Type": "String", "Description": "o-xxxxxxxxxx: accounts allowed to forward"}},
        "Resources": {
            "DeadLetterQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "trailwarden-events-dlq", "MessageRetentionPeriod": 1209600}},
            "EventQueue": {"Type": "AWS::SQS::Queue", "Properties": {
                "QueueName": "trailwarden-events", "VisibilityTimeout": 60,
                "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}, "maxReceiveCount": 5}
            }},
            "EventQueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
                "Queues": [{"Ref": "EventQueue"}],
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
                    "Resource": {"Fn::GetAtt": ["EventQueue", "Arn"]},
                    "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["DeliverToQueue", "Arn"]}}}
                }]}
            }},
            "OrganizationMayForward": {"Type": "AWS::Events::EventBusPolicy", "Properties": {
                "StatementId": "trailwarden-organization-forwards",
                "Statement": {"Effect": "Allow", "Principal": "*", "Action": "events:PutEvents",
                    "Resource": {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"},
                    "Condition": {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}}
            }},
            "DeliverToQueue": {"Type": "AWS::Events::Rule", "Properties": {
                "Name": "trailwarden-forwarded-events", "State": "ENABLED",
                "EventPattern": {"source": [{"prefix": "aws."}], "detail-type": ["AWS API Call via CloudTrail"]},
                "Targets": [{"Id": "trailwarden-events", "Arn": {"Fn::GetAtt": ["EventQueue", "Arn"]}}]
            }}
        },
        "Outputs": {"QueueUrl": {"Value": {"Ref": "EventQueue"}}}
    });
    for (name, doc) in [
        ("member-forwarding.json", member),
        ("member-roles.json", roles),
        ("security-queue.json", security),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// One stack set of `deploy --stack-set`: what it is for, and (with --apply) what it holds.
#[derive(Debug, Serialize)]
struct StackSetReport {
    name: String,
    regions: Vec<String>,
    units: Vec<String>,
    /// `created` or `updated`; absent without --apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    change: Option<&'static str>,
    operations: Vec<(String, String)>,
    instances: Vec<Instance>,
    /// Instances not deployed or not up to date (failed, outdated, inoperable).
    failed: Vec<Instance>,
    /// Accounts of the units × regions without an instance (automatic deployment pending or
    /// failed, or a unit AWS did not expand).
    not_reached: Vec<(String, String)>,
    /// The template, without --apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct StackSetsDoc {
    organization: String,
    management_account: AccountId,
    /// Active accounts of the units the stack sets must reach (the management account never is).
    accounts: Vec<AccountId>,
    applied: bool,
    stack_sets: Vec<StackSetReport>,
    notes: Vec<String>,
}

/// `deploy --stack-set NAME`: NAME-roles (one region) and NAME-forwarding (every region) as
/// service-managed stack sets with automatic deployment to the units.
async fn deploy_stack_sets(
    factory: &ClientFactory,
    g: &GlobalArgs,
    args: &DeployArgs,
    forwarding: &Forwarding,
    name: &str,
) -> Result<u8> {
    let role_name = g.role_name.as_deref().context(
        "--stack-set needs --role-name: the role the stack set creates in each member account",
    )?;
    if args.organizational_units.is_empty() {
        anyhow::bail!("--stack-set needs --organizational-units root|ou-…: where to deploy");
    }
    let home = factory.home_region().to_owned();
    let caller = factory.caller();
    let organization_error = |e| anyhow::Error::new(fanout::SelectionError::Organization(e));
    let mut units = Vec::new();
    for unit in &args.organizational_units {
        if unit == "root" {
            units.push(
                organization::root_id(&caller, &home)
                    .await
                    .map_err(organization_error)?,
            );
        } else if is_unit_id(unit) {
            units.push(unit.clone());
        } else {
            anyhow::bail!(
                "--organizational-units: {unit:?} is neither \"root\" nor an organizational unit (ou-…) or root (r-…) id"
            );
        }
    }
    let scope = organization::discover(&caller, &home, &OrganizationScope::Units(units.clone()))
        .await
        .map_err(organization_error)?;
    let regions: Vec<String> = match &g.regions {
        RegionSelection::List(list) => list.clone(),
        RegionSelection::AllEnabled => {
            let own = fanout::resolve(factory, &fanout::Selection::default()).await?;
            own.accounts
                .first()
                .map(|a| a.regions.clone())
                .context("the caller's enabled regions could not be read: pass --regions")?
        }
    };
    let (caller_account, _) = fanout::caller_identity(factory).await?;
    let delegated_admin = caller_account != scope.management_account;
    let trusted = match &args.trusted_role_arn {
        Some(arn) => arn.clone(),
        None => {
            let bus_account = forwarding.bus_arn.split(':').nth(4).unwrap_or_default();
            format!(
                "arn:{}:iam::{bus_account}:role/trailwarden",
                partition_of_region(&home)
            )
        }
    };
    let mut notes = Vec::new();
    let accounts: Vec<AccountId> = scope
        .in_scope
        .iter()
        .filter(|id| {
            let management = **id == scope.management_account;
            if management {
                notes.push(format!(
                    "StackSets never deploy to the management account {id}: deploy its rule directly (`trailwarden --accounts {id} --role-name {role_name} deploy --event-bus-arn … --apply`) and create its role from member-roles.json (`deploy --cloudformation DIR`)"
                ));
            }
            !management && scope.member(id).is_some_and(|m| m.is_active())
        })
        .cloned()
        .collect();
    let plans = [
        (
            format!("{name}-roles"),
            stack_templates::member_roles(role_name, &trusted, &scope.organization_id, forwarding),
            vec![home.clone()],
            true,
        ),
        (
            format!("{name}-forwarding"),
            stack_templates::member_forwarding(forwarding),
            regions,
            false,
        ),
    ];
    let mut reports = Vec::new();
    for (set_name, template, set_regions, named_iam) in plans {
        let mut report = StackSetReport {
            name: set_name.clone(),
            regions: set_regions.clone(),
            units: units.clone(),
            change: None,
            operations: Vec::new(),
            instances: Vec::new(),
            failed: Vec::new(),
            not_reached: Vec::new(),
            template: None,
        };
        if !args.apply {
            report.template = Some(template);
            reports.push(report);
            continue;
        }
        let body = serde_json::to_string(&template)?;
        let deployed = stack_sets::ensure(
            &caller,
            &home,
            &StackSetRequest {
                name: &set_name,
                template: &body,
                named_iam,
                units: &units,
                regions: &set_regions,
                delegated_admin,
            },
        )
        .await?;
        report.change = Some(deployed.change);
        report.operations = deployed.operations;
        report.failed = deployed
            .instances
            .iter()
            .filter(|i| !i.is_current())
            .cloned()
            .collect();
        for account in &accounts {
            for region in &set_regions {
                if !deployed
                    .instances
                    .iter()
                    .any(|i| i.account == account.as_str() && &i.region == region)
                {
                    report
                        .not_reached
                        .push((account.to_string(), region.clone()));
                }
            }
        }
        report.instances = deployed.instances;
        reports.push(report);
    }
    let doc = StackSetsDoc {
        organization: scope.organization_id.clone(),
        management_account: scope.management_account.clone(),
        accounts,
        applied: args.apply,
        stack_sets: reports,
        notes,
    };
    let trouble = doc
        .stack_sets
        .iter()
        .any(|s| !s.failed.is_empty() || !s.not_reached.is_empty());
    let text = match output::choose(g.format) {
        Format::Table => stack_sets_table(&doc),
        _ => serde_json::to_string_pretty(&doc)? + "\n",
    };
    print(&text)?;
    Ok(if trouble { exit::FINDINGS } else { exit::OK })
}

fn stack_sets_table(doc: &StackSetsDoc) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut t = table(&[
        "stack set",
        "regions",
        "change",
        "instances",
        "failed",
        "not reached",
    ]);
    for s in &doc.stack_sets {
        t.add_row(vec![
            s.name.clone(),
            s.regions.join(","),
            s.change
                .unwrap_or(if doc.applied { "-" } else { "(plan)" })
                .to_owned(),
            s.instances.len().to_string(),
            s.failed
                .iter()
                .map(|i| {
                    format!(
                        "{} {} {}",
                        i.account,
                        i.region,
                        i.reason.as_deref().unwrap_or(&i.status)
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            s.not_reached
                .iter()
                .map(|(a, r)| format!("{a} {r}"))
                .collect::<Vec<_>>()
                .join("; "),
        ]);
    }
    let _ = writeln!(
        out,
        "Organization {} ({} account(s) to reach)\n{t}",
        doc.organization,
        doc.accounts.len()
    );
    if !doc.applied {
        let _ = writeln!(
            out,
            "Nothing changed: pass --apply to deploy (--format json shows the templates)."
        );
    }
    for note in &doc.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}
