//! CloudFormation StackSets with service-managed permissions: a stack set created (or its
//! template updated) with automatic deployment, so accounts that join its organizational units
//! later get their stack from AWS; instances bootstrapped where a unit has none in a region;
//! and the instances read back, with their status, for the report and the audit.

use crate::client::AccountConfig;
use crate::failure::CallError;
use aws_sdk_cloudformation::types::{
    AutoDeployment, CallAs, Capability, DeploymentTargets, PermissionModels,
    StackSetOperationStatus,
};
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::Duration;

/// How long one stack set operation may take before trailwarden stops waiting for it (it goes
/// on in AWS; a later run reports its instances).
const OPERATION_LIMIT: Duration = Duration::from_secs(30 * 60);

/// What to deploy.
#[derive(Debug, Clone)]
pub struct StackSetRequest<'a> {
    pub name: &'a str,
    pub template: &'a str,
    /// The template creates named IAM roles (CAPABILITY_NAMED_IAM).
    pub named_iam: bool,
    /// Organizational units (or the root) to deploy to; AWS includes every unit below.
    pub units: &'a [String],
    pub regions: &'a [String],
    /// The caller is a delegated administrator for StackSets, not the management account.
    pub delegated_admin: bool,
}

/// One stack instance: an account × region of the stack set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instance {
    pub account: String,
    pub region: String,
    /// `CURRENT`, `OUTDATED` or `INOPERABLE`.
    pub status: String,
    /// `SUCCEEDED`, `FAILED`, `RUNNING`, ... when AWS says it.
    pub detailed_status: Option<String>,
    pub reason: Option<String>,
}

impl Instance {
    /// Deployed and up to date.
    pub fn is_current(&self) -> bool {
        self.status == "CURRENT"
            && self
                .detailed_status
                .as_deref()
                .is_none_or(|s| s == "SUCCEEDED")
    }
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Deployed {
    pub name: String,
    /// `created`, or `updated` (the template of every instance).
    pub change: &'static str,
    /// Operations run, with their final status.
    pub operations: Vec<(String, String)>,
    pub instances: Vec<Instance>,
}

fn call_as(delegated: bool) -> CallAs {
    if delegated {
        CallAs::DelegatedAdmin
    } else {
        CallAs::SelfValue
    }
}

/// Creates the stack set or updates its template; then creates instances for every unit ×
/// region that has none yet (accounts that join a unit later are AWS's automatic deployment).
pub async fn ensure(
    clients: &AccountConfig,
    region: &str,
    request: &StackSetRequest<'_>,
) -> Result<Deployed, CallError> {
    let cf = clients.cloudformation(region);
    let subject = format!("stack set {} ({region})", request.name);
    let existing = cf
        .describe_stack_set()
        .stack_set_name(request.name)
        .call_as(call_as(request.delegated_admin))
        .send()
        .await;
    let exists = match existing {
        Ok(_) => true,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_stack_set_not_found_exception()) =>
        {
            false
        }
        Err(err) => {
            return Err(CallError::from_sdk(
                &err,
                &subject,
                region,
                "cloudformation:DescribeStackSet",
            ));
        }
    };
    let capabilities = request
        .named_iam
        .then_some(Capability::CapabilityNamedIam)
        .into_iter()
        .collect::<Vec<_>>();
    let auto = AutoDeployment::builder()
        .enabled(true)
        .retain_stacks_on_account_removal(false)
        .build();
    let mut operations = Vec::new();
    if exists {
        let updated = cf
            .update_stack_set()
            .stack_set_name(request.name)
            .template_body(request.template)
            .set_capabilities(Some(capabilities))
            .permission_model(PermissionModels::ServiceManaged)
            .auto_deployment(auto)
            .call_as(call_as(request.delegated_admin))
            .send()
            .await
            .map_err(|err| {
                CallError::from_sdk(&err, &subject, region, "cloudformation:UpdateStackSet")
            })?;
        if let Some(id) = updated.operation_id() {
            let status = wait(&cf, request, id, &subject, region).await?;
            operations.push((id.to_owned(), status));
        }
    } else {
        cf.create_stack_set()
            .stack_set_name(request.name)
            .template_body(request.template)
            .set_capabilities(Some(capabilities))
            .permission_model(PermissionModels::ServiceManaged)
            .auto_deployment(auto)
            .call_as(call_as(request.delegated_admin))
            .send()
            .await
            .map_err(|err| {
                CallError::from_sdk(&err, &subject, region, "cloudformation:CreateStackSet")
            })?;
    }
    // A region with no instance at all is new to the stack set: bootstrap it for every unit.
    // (Instances of single accounts that are missing are AWS's automatic deployment; they
    // are reported, not forced, so one failing account never blocks the others.)
    let present: BTreeSet<String> =
        instances(clients, region, request.name, request.delegated_admin)
            .await?
            .into_iter()
            .map(|i| i.region)
            .collect();
    let missing: Vec<String> = request
        .regions
        .iter()
        .filter(|r| !present.contains(*r))
        .cloned()
        .collect();
    if !missing.is_empty() {
        let created = cf
            .create_stack_instances()
            .stack_set_name(request.name)
            .deployment_targets(
                DeploymentTargets::builder()
                    .set_organizational_unit_ids(Some(request.units.to_vec()))
                    .build(),
            )
            .set_regions(Some(missing))
            .call_as(call_as(request.delegated_admin))
            .send()
            .await
            .map_err(|err| {
                CallError::from_sdk(
                    &err,
                    &subject,
                    region,
                    "cloudformation:CreateStackInstances",
                )
            })?;
        if let Some(id) = created.operation_id() {
            let status = wait(&cf, request, id, &subject, region).await?;
            operations.push((id.to_owned(), status));
        }
    }
    Ok(Deployed {
        name: request.name.to_owned(),
        change: if exists { "updated" } else { "created" },
        operations,
        instances: instances(clients, region, request.name, request.delegated_admin).await?,
    })
}

/// Polls an operation until it ends; returns its final status (`SUCCEEDED`, `FAILED`, ...).
async fn wait(
    cf: &aws_sdk_cloudformation::Client,
    request: &StackSetRequest<'_>,
    id: &str,
    subject: &str,
    region: &str,
) -> Result<String, CallError> {
    let started = std::time::Instant::now();
    loop {
        let described = cf
            .describe_stack_set_operation()
            .stack_set_name(request.name)
            .operation_id(id)
            .call_as(call_as(request.delegated_admin))
            .send()
            .await
            .map_err(|err| {
                CallError::from_sdk(
                    &err,
                    subject,
                    region,
                    "cloudformation:DescribeStackSetOperation",
                )
            })?;
        let status = described
            .stack_set_operation()
            .and_then(|o| o.status())
            .cloned();
        match status {
            Some(
                StackSetOperationStatus::Running
                | StackSetOperationStatus::Queued
                | StackSetOperationStatus::Stopping,
            )
            | None => {}
            Some(done) => return Ok(done.as_str().to_owned()),
        }
        if started.elapsed() > OPERATION_LIMIT {
            return Ok("RUNNING (no longer waited for)".to_owned());
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// Every instance of the stack set.
pub async fn instances(
    clients: &AccountConfig,
    region: &str,
    name: &str,
    delegated_admin: bool,
) -> Result<Vec<Instance>, CallError> {
    let cf = clients.cloudformation(region);
    let subject = format!("stack set {name} ({region})");
    let mut out = Vec::new();
    let mut pages = cf
        .list_stack_instances()
        .stack_set_name(name)
        .call_as(call_as(delegated_admin))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            CallError::from_sdk(&err, &subject, region, "cloudformation:ListStackInstances")
        })?;
        for s in page.summaries() {
            out.push(Instance {
                account: s.account().unwrap_or_default().to_owned(),
                region: s.region().unwrap_or_default().to_owned(),
                status: s
                    .status()
                    .map(|x| x.as_str().to_owned())
                    .unwrap_or_default(),
                detailed_status: s
                    .stack_instance_status()
                    .and_then(|x| x.detailed_status())
                    .map(|x| x.as_str().to_owned()),
                reason: s.status_reason().map(str::to_owned),
            });
        }
    }
    out.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
    out.dedup_by(|a, b| a.account == b.account && a.region == b.region);
    Ok(out)
}
