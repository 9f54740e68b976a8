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
use trailwarden_engine::forwarding::Forwarding;
use trailwarden_engine::guard::remember_own_sessions;
use trailwarden_engine::journal::Journal;
use trailwarden_model::target::Gap;

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
    if let Some(dir) = &args.cloudformation {
        write_templates(dir, pattern, args)?;
        print(&format!(
            "wrote {}/member-forwarding.json (StackSet for every member account and region) and {}/security-queue.json (the security account)\n",
            dir.display(),
            dir.display()
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

/// StackSet-ready templates: the member rule, and the security account's queue side.
fn write_templates(
    dir: &std::path::Path,
    pattern: &serde_json::Value,
    args: &DeployArgs,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let member = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "trailwarden: forward tamper-relevant CloudTrail events to the security account's bus. Deploy as a StackSet to every member account and region.",
        "Parameters": {
            "SecurityEventBusArn": {"Type": "String", "Default": args.event_bus_arn},
            "ForwarderRoleArn": {"Type": "String", "Default": "", "Description": "Role EventBridge uses to put events on a bus in another region (empty in the bus's region)."}
        },
        "Conditions": {"HasRole": {"Fn::Not": [{"Fn::Equals": [{"Ref": "ForwarderRoleArn"}, ""]}]}},
        "Resources": {
            "ForwardTamperEvents": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Name": FORWARDING_RULE,
                    "State": "ENABLED",
                    "EventPattern": pattern,
                    "Targets": [{
                        "Id": "trailwarden-security-bus",
                        "Arn": {"Ref": "SecurityEventBusArn"},
                        "RoleArn": {"Fn::If": ["HasRole", {"Ref": "ForwarderRoleArn"}, {"Ref": "AWS::NoValue"}]}
                    }]
                }
            }
        }
    });
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
        ("security-queue.json", security),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
