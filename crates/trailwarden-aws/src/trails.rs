//! The trail inventory: one `DescribeTrails` per account × region (shadows included, then
//! folded), and one `GetTrailStatus` per trail, in its home region.

use crate::failure::{GapScope, gap_from_sdk};
use crate::fanout::{Account, for_each_region};
use futures::StreamExt;
use std::collections::BTreeMap;
use trailwarden_model::target::{AccountId, Gap, Target, region_of_arn};
use trailwarden_model::trail::{Trail, TrailStatus, TrailView, fold_shadows};

/// Every trail of the given accounts, with status, and what could not be read.
#[derive(Debug, Default)]
pub struct Inventory {
    pub trails: Vec<Trail>,
    /// Regions actually read, per account (a region with a gap is not listed).
    pub regions_read: BTreeMap<AccountId, Vec<String>>,
    pub gaps: Vec<Gap>,
}

/// Progress events of [`inventory`], for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `DescribeTrails` finished for one account × region.
    Region,
    /// `GetTrailStatus` finished for one trail.
    Status,
}

/// Reads the inventory of `accounts`, at most `concurrency` calls at once.
pub async fn inventory(
    accounts: &[Account],
    concurrency: usize,
    on_step: &(dyn Fn(Step) + Sync),
) -> Inventory {
    let per_region = for_each_region(
        accounts,
        concurrency,
        &|_: &Target| on_step(Step::Region),
        |account, region| async move { describe_trails(account, &region).await },
    )
    .await;

    let mut inventory = Inventory::default();
    let mut views_by_account: BTreeMap<AccountId, Vec<(String, Vec<TrailView>)>> = BTreeMap::new();
    for (target, result) in per_region {
        match result {
            Ok(views) => {
                inventory
                    .regions_read
                    .entry(target.account.clone())
                    .or_default()
                    .push(target.region.clone());
                views_by_account
                    .entry(target.account)
                    .or_default()
                    .push((target.region, views));
            }
            Err(gap) => inventory.gaps.push(gap),
        }
    }
    let mut trails: Vec<Trail> = views_by_account
        .iter()
        .flat_map(|(account, per_region)| fold_shadows(account, per_region.iter().cloned()))
        .collect();

    let statuses: Vec<(usize, Result<TrailStatus, Gap>)> =
        futures::stream::iter(trails.iter().enumerate().filter_map(|(index, trail)| {
            // Every trail was read from one of `accounts`.
            let account = accounts.iter().find(|a| a.id == trail.account)?;
            Some((index, trail, account))
        }))
        .map(|(index, trail, account)| async move {
            let status = trail_status(account, &trail.view).await;
            on_step(Step::Status);
            (index, status)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for (index, status) in statuses {
        match status {
            Ok(status) => trails[index].status = Some(status),
            Err(gap) => inventory.gaps.push(gap),
        }
    }
    inventory.trails = trails;
    inventory
}

/// `DescribeTrails` with shadow trails, in one region. CloudTrail returns every trail in one
/// page (there is no pagination token on this API).
pub async fn describe_trails(account: &Account, region: &str) -> Result<Vec<TrailView>, Gap> {
    let reply = account
        .clients
        .cloudtrail(region)
        .describe_trails()
        .include_shadow_trails(true)
        .send()
        .await
        .map_err(|err| {
            gap_from_sdk(
                &err,
                &account.id,
                Some(region),
                "cloudtrail:DescribeTrails",
                GapScope::Region,
            )
        })?;
    Ok(reply
        .trail_list()
        .iter()
        .filter_map(|t| {
            let arn = t.trail_arn()?.to_owned();
            Some(TrailView {
                name: t.name().unwrap_or_default().to_owned(),
                home_region: t
                    .home_region()
                    .map(str::to_owned)
                    .unwrap_or_else(|| region_of_arn(&arn).unwrap_or(region).to_owned()),
                arn,
                is_multi_region: t.is_multi_region_trail().unwrap_or(false),
                is_organization: t.is_organization_trail().unwrap_or(false),
                s3_bucket: t.s3_bucket_name().map(str::to_owned),
                s3_key_prefix: t.s3_key_prefix().map(str::to_owned),
                sns_topic_arn: t.sns_topic_arn().map(str::to_owned),
                include_global_service_events: t.include_global_service_events().unwrap_or(false),
                log_file_validation: t.log_file_validation_enabled().unwrap_or(false),
                kms_key_id: t.kms_key_id().map(str::to_owned),
                cloudwatch_logs_log_group_arn: t
                    .cloud_watch_logs_log_group_arn()
                    .map(str::to_owned),
                cloudwatch_logs_role_arn: t.cloud_watch_logs_role_arn().map(str::to_owned),
                has_custom_event_selectors: t.has_custom_event_selectors().unwrap_or(false),
                has_insight_selectors: t.has_insight_selectors().unwrap_or(false),
            })
        })
        .collect())
}

/// `GetTrailStatus` by ARN in the trail's home region (the ARN is what works for organization
/// trails seen from a member account).
pub async fn trail_status(account: &Account, trail: &TrailView) -> Result<TrailStatus, Gap> {
    let reply = account
        .clients
        .cloudtrail(&trail.home_region)
        .get_trail_status()
        .name(&trail.arn)
        .send()
        .await
        .map_err(|err| {
            let mut gap = gap_from_sdk(
                &err,
                &account.id,
                Some(&trail.home_region),
                "cloudtrail:GetTrailStatus",
                GapScope::Region,
            );
            gap.message = format!("trail {}: {}", trail.arn, gap.message);
            gap
        })?;
    let time = |t: Option<&aws_smithy_types::DateTime>| {
        t.and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
    };
    let error = |e: Option<&str>| e.filter(|e| !e.is_empty()).map(str::to_owned);
    Ok(TrailStatus {
        is_logging: reply.is_logging().unwrap_or(false),
        latest_delivery_error: error(reply.latest_delivery_error()),
        latest_delivery_time: time(reply.latest_delivery_time()),
        start_logging_time: time(reply.start_logging_time()),
        stop_logging_time: time(reply.stop_logging_time()),
        latest_cloudwatch_logs_delivery_error: error(
            reply.latest_cloud_watch_logs_delivery_error(),
        ),
        latest_notification_error: error(reply.latest_notification_error()),
    })
}
