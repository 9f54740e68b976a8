//! Reading the state snapshot of accounts: trails (config, status, selectors, tags), their log
//! buckets, KMS keys and log groups, and the detection services of every region.
//!
//! Calls are spread over four phases so each piece of state is read once: one pass per
//! account × region (DescribeTrails and the regional services), then one per trail in its home
//! region, then one per bucket, key and log group the trails name (with the alarms on the
//! log group's metrics), then one per SNS topic the trails and those alarms notify.

use crate::failure::{GapScope, gap_from_sdk};
use crate::fanout::{Account, for_each_region};
use crate::trails::{describe_trails, trail_status};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use trailwarden_model::target::{AccountId, Gap};
use trailwarden_model::trail::{TrailView, fold_shadows};
use trailwarden_posture::snapshot::{
    AccessLogging, AccountSnapshot, AclGrant, AdvancedSelector, BasicSelector, BucketAcl,
    BucketEncryption, BucketSnapshot, ConfigDelivery, ConfigRecorder, DataResource, Delivery,
    Detector, DetectorFilter, EventSelectors, FieldSelector, FlowLog, IpSet, KeySnapshot,
    LifecycleRule, LogFilter, LogGroupSnapshot, MetricAlarm, NotificationTarget, ObjectLock,
    PublicAccessBlock, RegionServices, ReplicationRule, Subscription, TopicSnapshot, TrailSnapshot,
};

/// Progress of [`snapshot_accounts`], one call per finished unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Region,
    Trail,
    Resource,
}

/// A snapshot per account, and every part that could not be read.
#[derive(Debug, Default)]
pub struct Snapshots {
    pub accounts: Vec<AccountSnapshot>,
    pub gaps: Vec<Gap>,
}

type Result<T> = std::result::Result<T, Gap>;

/// Resources to read in an account even if no trail names them any more (a baseline's: an
/// attacker who detaches the key from the trail must not hide the key's state too).
#[derive(Debug, Clone, Default)]
pub struct AlsoRead {
    pub buckets: BTreeSet<String>,
    pub keys: BTreeSet<String>,
    pub log_groups: BTreeSet<String>,
    /// Per log group ARN: the alarms to read besides those on its current metric filters'
    /// metrics (an attacker who deletes the filter or re-points the alarm must not hide it).
    pub alarms: BTreeMap<String, AlarmPath>,
    pub topics: BTreeSet<String>,
}

/// The alarms of a log group's alarm path: by metric, and by name.
#[derive(Debug, Clone, Default)]
pub struct AlarmPath {
    /// `(namespace, metric)`.
    pub metrics: BTreeSet<(String, String)>,
    pub names: BTreeSet<String>,
}

impl AlsoRead {
    /// What a baseline snapshot of the account names.
    pub fn from_snapshot(s: &AccountSnapshot) -> Self {
        let alarms = s
            .log_groups
            .iter()
            .map(|g| {
                let listed = g.alarms.iter().flatten();
                let path = AlarmPath {
                    metrics: g
                        .metrics()
                        .into_iter()
                        .chain(
                            listed
                                .clone()
                                .map(|a| (a.namespace.clone(), a.metric.clone())),
                        )
                        .collect(),
                    names: listed.map(|a| a.name.clone()).collect(),
                };
                (g.arn.clone(), path)
            })
            .collect();
        Self {
            buckets: s.buckets.iter().map(|b| b.name.clone()).collect(),
            keys: s.keys.iter().map(|k| k.arn.clone()).collect(),
            log_groups: s.log_groups.iter().map(|g| g.arn.clone()).collect(),
            alarms,
            topics: s.topics.iter().map(|t| t.arn.clone()).collect(),
        }
    }
}

/// Reads the snapshot of every account, at most `concurrency` units of work at once: the
/// resources its own trails name, plus those in `also`.
pub async fn snapshot_accounts<'a>(
    accounts: &'a [Account],
    concurrency: usize,
    also: &BTreeMap<AccountId, AlsoRead>,
    on_step: &(dyn Fn(Phase) + Sync),
) -> Snapshots {
    let concurrency = concurrency.max(1);
    let mut out = Snapshots::default();
    let mut snapshots: BTreeMap<AccountId, AccountSnapshot> = accounts
        .iter()
        .map(|a| (a.id.clone(), AccountSnapshot::new(a.id.clone())))
        .collect();

    // Phase 1: every account × region.
    let regional = for_each_region(
        accounts,
        concurrency,
        &|_| on_step(Phase::Region),
        |account, region| async move { Ok(read_region(account, &region).await) },
    )
    .await;
    let mut views: BTreeMap<AccountId, Vec<(String, Vec<TrailView>)>> = BTreeMap::new();
    for (target, result) in regional {
        let (trails, services, gaps) = match result {
            Ok(read) => read,
            Err(gap) => {
                out.gaps.push(gap);
                continue;
            }
        };
        out.gaps.extend(gaps);
        let Some(snapshot) = snapshots.get_mut(&target.account) else {
            continue;
        };
        if let Some(trails) = trails {
            snapshot.regions.push(target.region.clone());
            views
                .entry(target.account.clone())
                .or_default()
                .push((target.region.clone(), trails));
        }
        snapshot.services.insert(target.region, services);
    }

    // Phase 2: every trail, in its home region.
    let trails: Vec<(&'a Account, TrailView)> = accounts
        .iter()
        .flat_map(|account: &'a Account| {
            let per_region = views.remove(&account.id).unwrap_or_default();
            fold_shadows(&account.id, per_region)
                .into_iter()
                .map(move |t| (account, t.view))
        })
        .collect();
    // Futures made before they are polled: see `fanout::for_each_region`.
    let pending: Vec<_> = trails
        .into_iter()
        .map(|(account, view)| async move {
            let (trail, gaps) = read_trail(account, view).await;
            on_step(Phase::Trail);
            (account.id.clone(), trail, gaps)
        })
        .collect();
    let read: Vec<(AccountId, TrailSnapshot, Vec<Gap>)> = futures::stream::iter(pending)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for (account, trail, gaps) in read {
        out.gaps.extend(gaps);
        if let Some(snapshot) = snapshots.get_mut(&account) {
            snapshot.trails.push(trail);
        }
    }

    // Phase 3: the buckets, keys and log groups the account's own trails use.
    let mut resources = Vec::new();
    for account in accounts {
        let snapshot = &snapshots[&account.id];
        let own = snapshot.trails.iter().filter(|t| !t.foreign);
        let extra = also.get(&account.id).cloned().unwrap_or_default();
        let mut buckets = extra.buckets;
        let mut keys = extra.keys;
        let mut groups = extra.log_groups;
        for t in own {
            buckets.extend(t.s3_bucket.clone());
            keys.extend(t.kms_key_id.clone());
            groups.extend(t.cloudwatch_logs_log_group_arn.clone());
        }
        resources.extend(buckets.into_iter().map(|b| (account, Resource::Bucket(b))));
        resources.extend(keys.into_iter().map(|k| (account, Resource::Key(k))));
        resources.extend(groups.into_iter().map(|g| {
            let path = extra.alarms.get(&g).cloned().unwrap_or_default();
            (account, Resource::LogGroup(g, path))
        }));
    }
    let pending: Vec<_> = resources
        .into_iter()
        .map(|(account, resource)| async move {
            let state = match resource {
                Resource::Bucket(name) => read_bucket(account, &name)
                    .await
                    .map(|b| ResourceState::Bucket(Box::new(b))),
                Resource::Key(arn) => read_key(account, &arn).await.map(ResourceState::Key),
                Resource::LogGroup(arn, path) => read_log_group(account, &arn, &path)
                    .await
                    .map(ResourceState::LogGroup),
            };
            on_step(Phase::Resource);
            (account.id.clone(), state)
        })
        .collect();
    let read: Vec<(AccountId, Result<ResourceState>)> = futures::stream::iter(pending)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for (account, state) in read {
        let Some(snapshot) = snapshots.get_mut(&account) else {
            continue;
        };
        match state {
            Ok(ResourceState::Bucket(b)) => snapshot.buckets.push(*b),
            Ok(ResourceState::Key(k)) => snapshot.keys.push(k),
            Ok(ResourceState::LogGroup((g, gaps))) => {
                snapshot.log_groups.push(g);
                out.gaps.extend(gaps);
            }
            Err(gap) => out.gaps.push(gap),
        }
    }

    // Phase 4: the SNS topics of this account that its trails notify and its alarms act on.
    let mut topics = Vec::new();
    for account in accounts {
        let snapshot = &snapshots[&account.id];
        let mut arns = also
            .get(&account.id)
            .map(|a| a.topics.clone())
            .unwrap_or_default();
        arns.extend(
            snapshot
                .trails
                .iter()
                .filter(|t| !t.foreign)
                .filter_map(|t| t.sns_topic_arn.clone()),
        );
        arns.extend(
            snapshot
                .log_groups
                .iter()
                .flat_map(|g| g.alarms.iter().flatten())
                .flat_map(|a| a.alarm_actions.iter().chain(&a.ok_actions))
                .cloned(),
        );
        // Only this account's topics: another account's topic is read (and restored) there.
        arns.retain(|arn| topic_account(arn) == Some(account.id.as_str()));
        topics.extend(arns.into_iter().map(|arn| (account, arn)));
    }
    let pending: Vec<_> = topics
        .into_iter()
        .map(|(account, arn)| async move {
            let topic = read_topic(account, &arn).await;
            on_step(Phase::Resource);
            (account.id.clone(), topic)
        })
        .collect();
    let read: Vec<(AccountId, Result<TopicSnapshot>)> = futures::stream::iter(pending)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for (account, topic) in read {
        match (snapshots.get_mut(&account), topic) {
            (Some(snapshot), Ok(t)) => snapshot.topics.push(t),
            (_, Err(gap)) => out.gaps.push(gap),
            (None, Ok(_)) => {}
        }
    }

    for mut snapshot in snapshots.into_values() {
        snapshot.regions.sort();
        snapshot.trails.sort_by(|a, b| a.arn.cmp(&b.arn));
        snapshot.buckets.sort_by(|a, b| a.name.cmp(&b.name));
        snapshot.keys.sort_by(|a, b| a.arn.cmp(&b.arn));
        snapshot.log_groups.sort_by(|a, b| a.arn.cmp(&b.arn));
        snapshot.topics.sort_by(|a, b| a.arn.cmp(&b.arn));
        out.accounts.push(snapshot);
    }
    out.gaps.sort_by(|a, b| {
        (&a.account, &a.region, &a.operation).cmp(&(&b.account, &b.region, &b.operation))
    });
    out
}

enum Resource {
    Bucket(String),
    Key(String),
    LogGroup(String, AlarmPath),
}

enum ResourceState {
    Bucket(Box<BucketSnapshot>),
    Key(KeySnapshot),
    /// With the gap of its alarms, when they could not be read.
    LogGroup((LogGroupSnapshot, Option<Gap>)),
}

fn has_code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>, codes: &[&str]) -> bool {
    err.code().is_some_and(|c| codes.contains(&c))
}

fn gap<E>(err: &SdkError<E, HttpResponse>, account: &Account, region: &str, op: &str) -> Gap
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    gap_from_sdk(err, &account.id, Some(region), op, GapScope::Region)
}

/// One region: trails (None if DescribeTrails failed), services, and the gaps.
async fn read_region(
    account: &Account,
    region: &str,
) -> (Option<Vec<TrailView>>, RegionServices, Vec<Gap>) {
    let mut gaps = Vec::new();
    // Independent services: read together, so a region costs its slowest read, not the sum.
    let (trails, guardduty, config, flow_logs) = tokio::join!(
        describe_trails(account, region),
        read_guardduty(account, region),
        read_config(account, region),
        read_flow_logs(account, region),
    );
    let trails = match trails {
        Ok(t) => Some(t),
        Err(g) => {
            gaps.push(g);
            None
        }
    };
    let mut services = RegionServices::default();
    match guardduty {
        Ok(d) => services.guardduty = d,
        Err(g) => {
            services.unread.push("guardduty".into());
            gaps.push(g);
        }
    }
    match config {
        Ok(c) => services.config_recorder = c,
        Err(g) => {
            services.unread.push("config".into());
            gaps.push(g);
        }
    }
    match flow_logs {
        Ok(f) => services.flow_logs = f,
        Err(g) => {
            services.unread.push("flow-logs".into());
            gaps.push(g);
        }
    }
    (trails, services, gaps)
}

async fn read_guardduty(account: &Account, region: &str) -> Result<Option<Detector>> {
    let client = account.clients.guardduty(region);
    let ids = client
        .list_detectors()
        .send()
        .await
        .map_err(|e| gap(&e, account, region, "guardduty:ListDetectors"))?;
    // One detector per account and region is all GuardDuty allows.
    let Some(id) = ids.detector_ids().first() else {
        return Ok(None);
    };
    let detector = client
        .get_detector()
        .detector_id(id)
        .send()
        .await
        .map_err(|e| gap(&e, account, region, "guardduty:GetDetector"))?;
    let mut filters = Vec::new();
    let mut pages = client
        .list_filters()
        .detector_id(id)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| gap(&e, account, region, "guardduty:ListFilters"))?;
        for name in page.filter_names() {
            let filter = match client
                .get_filter()
                .detector_id(id)
                .filter_name(name)
                .send()
                .await
            {
                Ok(filter) => filter,
                // Deleted between ListFilters and GetFilter (a restore running meanwhile): gone,
                // which is what a read a moment later would say.
                Err(e)
                    if e.as_service_error().is_some_and(|s| {
                        s.is_bad_request_exception()
                            && aws_smithy_types::error::metadata::ProvideErrorMetadata::message(s)
                                .is_some_and(|m| m.contains("no such resource"))
                    }) =>
                {
                    continue;
                }
                Err(e) => return Err(gap(&e, account, region, "guardduty:GetFilter")),
            };
            filters.push(DetectorFilter {
                name: name.clone(),
                action: filter
                    .action()
                    .map(|a| a.as_str().to_owned())
                    .unwrap_or_default(),
            });
        }
    }
    filters.sort();
    let mut ip_sets = Vec::new();
    let mut pages = client
        .list_ip_sets()
        .detector_id(id)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| gap(&e, account, region, "guardduty:ListIPSets"))?;
        for set_id in page.ip_set_ids() {
            let set = client
                .get_ip_set()
                .detector_id(id)
                .ip_set_id(set_id)
                .send()
                .await
                .map_err(|e| gap(&e, account, region, "guardduty:GetIPSet"))?;
            ip_sets.push(IpSet {
                id: set_id.clone(),
                name: set.name().unwrap_or_default().to_owned(),
                location: set.location().unwrap_or_default().to_owned(),
                status: set
                    .status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            });
        }
    }
    ip_sets.sort();
    Ok(Some(Detector {
        id: id.clone(),
        status: detector
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        filters: Some(filters),
        ip_sets: Some(ip_sets),
    }))
}

async fn read_config(account: &Account, region: &str) -> Result<Option<ConfigRecorder>> {
    let client = account.clients.config(region);
    let recorders = client
        .describe_configuration_recorders()
        .send()
        .await
        .map_err(|e| gap(&e, account, region, "config:DescribeConfigurationRecorders"))?;
    let Some(recorder) = recorders.configuration_recorders().first() else {
        return Ok(None);
    };
    let name = recorder.name().unwrap_or_default().to_owned();
    let status = client
        .describe_configuration_recorder_status()
        .send()
        .await
        .map_err(|e| {
            gap(
                &e,
                account,
                region,
                "config:DescribeConfigurationRecorderStatus",
            )
        })?;
    let recording = status
        .configuration_recorders_status()
        .iter()
        .find(|s| s.name() == Some(name.as_str()))
        .is_some_and(|s| s.recording());
    let channels = client
        .describe_delivery_channels()
        .send()
        .await
        .map_err(|e| gap(&e, account, region, "config:DescribeDeliveryChannels"))?;
    let group = recorder.recording_group();
    let channel = channels.delivery_channels().first();
    let mut resource_types: Vec<String> = group
        .map(|g| {
            g.resource_types()
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect()
        })
        .unwrap_or_default();
    resource_types.sort();
    Ok(Some(ConfigRecorder {
        name,
        recording,
        all_supported: group.is_some_and(|g| g.all_supported()),
        delivery_channel: channel.and_then(|c| c.name()).map(str::to_owned),
        role_arn: recorder.role_arn().map(str::to_owned),
        include_global_resource_types: group.map(|g| g.include_global_resource_types()),
        resource_types,
        delivery: channel.and_then(|c| {
            Some(ConfigDelivery {
                bucket: c.s3_bucket_name()?.to_owned(),
                prefix: c
                    .s3_key_prefix()
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
                sns_topic: c
                    .sns_topic_arn()
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            })
        }),
    }))
}

async fn read_flow_logs(account: &Account, region: &str) -> Result<Vec<FlowLog>> {
    let client = account.clients.ec2(region);
    let mut out = Vec::new();
    let mut pages = client.describe_flow_logs().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| gap(&e, account, region, "ec2:DescribeFlowLogs"))?;
        for f in page.flow_logs() {
            out.push(FlowLog {
                id: f.flow_log_id().unwrap_or_default().to_owned(),
                resource_id: f.resource_id().unwrap_or_default().to_owned(),
                traffic_type: f.traffic_type().map(|t| t.as_str().to_owned()),
                destination_type: f.log_destination_type().map(|t| t.as_str().to_owned()),
                destination: f
                    .log_destination()
                    .or(f.log_group_name())
                    .map(str::to_owned),
                deliver_logs_role_arn: f.deliver_logs_permission_arn().map(str::to_owned),
                status: f.flow_log_status().map(str::to_owned),
            });
        }
    }
    out.sort();
    Ok(out)
}

async fn read_trail(account: &Account, view: TrailView) -> (TrailSnapshot, Vec<Gap>) {
    let region = view.home_region.clone();
    let client = account.clients.cloudtrail(&region);
    let foreign = view
        .owner_account()
        .is_some_and(|owner| owner != account.id.as_str());
    let mut gaps = Vec::new();
    let mut unread = Vec::new();

    let (logging, delivery) = match trail_status(account, &view).await {
        Ok(s) => {
            let age = s
                .latest_delivery_time
                .as_deref()
                .and_then(trailwarden_model::clock::parse_rfc3339)
                .map(|t| trailwarden_model::clock::now().saturating_sub(t));
            (
                s.is_logging,
                Some(Delivery {
                    latest_delivery_error: s.latest_delivery_error,
                    latest_delivery_time: s.latest_delivery_time,
                    latest_cloudwatch_logs_delivery_error: s.latest_cloudwatch_logs_delivery_error,
                    latest_notification_error: s.latest_notification_error,
                    latest_delivery_age_seconds: age,
                }),
            )
        }
        Err(gap) => {
            gaps.push(gap);
            unread.push("status".to_owned());
            (false, None)
        }
    };

    let event_selectors = match client
        .get_event_selectors()
        .trail_name(&view.arn)
        .send()
        .await
    {
        Ok(s) => Some(EventSelectors {
            basic: s
                .event_selectors()
                .iter()
                .map(|b| BasicSelector {
                    read_write_type: b
                        .read_write_type()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_else(|| "All".into()),
                    include_management_events: b.include_management_events().unwrap_or(true),
                    exclude_management_event_sources: b.exclude_management_event_sources().to_vec(),
                    data_resources: b
                        .data_resources()
                        .iter()
                        .map(|d| DataResource {
                            resource_type: d.r#type().unwrap_or_default().to_owned(),
                            values: d.values().to_vec(),
                        })
                        .collect(),
                })
                .collect(),
            advanced: s
                .advanced_event_selectors()
                .iter()
                .map(|a| AdvancedSelector {
                    name: a.name().map(str::to_owned),
                    field_selectors: a
                        .field_selectors()
                        .iter()
                        .map(|f| FieldSelector {
                            field: f.field().to_owned(),
                            equals: f.equals().to_vec(),
                            starts_with: f.starts_with().to_vec(),
                            ends_with: f.ends_with().to_vec(),
                            not_equals: f.not_equals().to_vec(),
                            not_starts_with: f.not_starts_with().to_vec(),
                            not_ends_with: f.not_ends_with().to_vec(),
                        })
                        .collect(),
                })
                .collect(),
        }),
        Err(e) => {
            gaps.push(trail_gap(
                &e,
                account,
                &view,
                "cloudtrail:GetEventSelectors",
            ));
            None
        }
    };

    let insight_selectors = match client
        .get_insight_selectors()
        .trail_name(&view.arn)
        .send()
        .await
    {
        Ok(s) => {
            let mut types: Vec<String> = s
                .insight_selectors()
                .iter()
                .filter_map(|i| i.insight_type().map(|t| t.as_str().to_owned()))
                .collect();
            types.sort();
            Some(types)
        }
        // AWS's answer for a trail without Insights.
        Err(e) if has_code(&e, &["InsightNotEnabledException"]) => Some(Vec::new()),
        Err(e) => {
            gaps.push(trail_gap(
                &e,
                account,
                &view,
                "cloudtrail:GetInsightSelectors",
            ));
            None
        }
    };

    let mut tags = BTreeMap::new();
    match client.list_tags().resource_id_list(&view.arn).send().await {
        Ok(t) => {
            for resource in t.resource_tag_list() {
                for tag in resource.tags_list() {
                    tags.insert(
                        tag.key().to_owned(),
                        tag.value().unwrap_or_default().to_owned(),
                    );
                }
            }
        }
        Err(e) => {
            gaps.push(trail_gap(&e, account, &view, "cloudtrail:ListTags"));
            unread.push("tags".to_owned());
        }
    }

    let trail = TrailSnapshot {
        name: view.name,
        arn: view.arn,
        home_region: view.home_region,
        multi_region: view.is_multi_region,
        organization: view.is_organization,
        foreign,
        s3_bucket: view.s3_bucket,
        s3_key_prefix: view.s3_key_prefix.filter(|p| !p.is_empty()),
        sns_topic_arn: view.sns_topic_arn.filter(|p| !p.is_empty()),
        include_global_service_events: view.include_global_service_events,
        log_file_validation: view.log_file_validation,
        kms_key_id: view.kms_key_id.filter(|p| !p.is_empty()),
        cloudwatch_logs_log_group_arn: view.cloudwatch_logs_log_group_arn.filter(|p| !p.is_empty()),
        cloudwatch_logs_role_arn: view.cloudwatch_logs_role_arn.filter(|p| !p.is_empty()),
        logging,
        delivery,
        event_selectors,
        insight_selectors,
        tags,
        unread,
    };
    (trail, gaps)
}

fn trail_gap<E>(
    err: &SdkError<E, HttpResponse>,
    account: &Account,
    view: &TrailView,
    op: &str,
) -> Gap
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut g = gap(err, account, &view.home_region, op);
    g.message = format!("trail {}: {}", view.arn, g.message);
    g
}

async fn read_bucket(account: &Account, name: &str) -> Result<BucketSnapshot> {
    let home = "us-east-1";
    let located = account
        .clients
        .s3(home)
        .get_bucket_location()
        .bucket(name)
        .send()
        .await;
    let region = match located {
        Ok(l) => match l.location_constraint().map(|c| c.as_str()) {
            None | Some("") => "us-east-1".to_owned(),
            Some("EU") => "eu-west-1".to_owned(),
            Some(r) => r.to_owned(),
        },
        Err(e) if has_code(&e, &["NoSuchBucket"]) => {
            return Ok(BucketSnapshot {
                name: name.to_owned(),
                region: None,
                exists: false,
                policy: None,
                lifecycle_rules: Vec::new(),
                versioning: "Off".into(),
                mfa_delete: None,
                public_access_block: None,
                object_lock: None,
                notifications: Vec::new(),
                replication_rules: Vec::new(),
                owner: None,
                encryption: None,
                access_logging: None,
                acl: None,
            });
        }
        Err(e) => return Err(bucket_gap(&e, account, home, name, "s3:GetBucketLocation")),
    };
    let s3 = account.clients.s3(&region);
    let r = region.as_str();
    // Owned by the account reading it? S3 refuses HeadBucket with ExpectedBucketOwner when
    // another account owns the bucket (403), whatever its policy says.
    let owner = match s3
        .head_bucket()
        .bucket(name)
        .expected_bucket_owner(account.id.as_str())
        .send()
        .await
    {
        Ok(_) => Some(account.id.to_string()),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => None,
        Err(e) => return Err(bucket_gap(&e, account, r, name, "s3:ListBucket")),
    };

    let policy = match s3.get_bucket_policy().bucket(name).send().await {
        Ok(p) => p.policy().map(str::to_owned),
        Err(e) if has_code(&e, &["NoSuchBucketPolicy"]) => None,
        Err(e) => return Err(bucket_gap(&e, account, r, name, "s3:GetBucketPolicy")),
    };
    let lifecycle_rules = match s3
        .get_bucket_lifecycle_configuration()
        .bucket(name)
        .send()
        .await
    {
        Ok(l) => l
            .rules()
            .iter()
            .map(|rule| LifecycleRule {
                id: rule.id().map(str::to_owned),
                status: rule.status().as_str().to_owned(),
                #[allow(deprecated)]
                prefix: rule
                    .filter()
                    .and_then(|f| f.prefix().or_else(|| f.and().and_then(|a| a.prefix())))
                    .or(rule.prefix())
                    .unwrap_or_default()
                    .to_owned(),
                expiration_days: rule.expiration().and_then(|e| e.days()),
                expiration_date: rule
                    .expiration()
                    .and_then(|e| e.date())
                    .and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
                noncurrent_expiration_days: rule
                    .noncurrent_version_expiration()
                    .and_then(|n| n.noncurrent_days()),
            })
            .collect(),
        Err(e) if has_code(&e, &["NoSuchLifecycleConfiguration"]) => Vec::new(),
        Err(e) => {
            return Err(bucket_gap(
                &e,
                account,
                r,
                name,
                "s3:GetLifecycleConfiguration",
            ));
        }
    };
    let encryption = match s3.get_bucket_encryption().bucket(name).send().await {
        Ok(out) => out
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|rule| {
                rule.apply_server_side_encryption_by_default()
                    .map(|d| BucketEncryption {
                        algorithm: d.sse_algorithm().as_str().to_owned(),
                        kms_key: d.kms_master_key_id().map(str::to_owned),
                        bucket_key: rule.bucket_key_enabled().unwrap_or(false),
                    })
            }),
        Err(e) if has_code(&e, &["ServerSideEncryptionConfigurationNotFoundError"]) => None,
        Err(e) => {
            return Err(bucket_gap(
                &e,
                account,
                r,
                name,
                "s3:GetEncryptionConfiguration",
            ));
        }
    };
    let access_logging = s3
        .get_bucket_logging()
        .bucket(name)
        .send()
        .await
        .map_err(|e| bucket_gap(&e, account, r, name, "s3:GetBucketLogging"))?
        .logging_enabled()
        .map(|l| AccessLogging {
            target_bucket: l.target_bucket().to_owned(),
            target_prefix: l.target_prefix().to_owned(),
        });
    let acl = s3
        .get_bucket_acl()
        .bucket(name)
        .send()
        .await
        .map_err(|e| bucket_gap(&e, account, r, name, "s3:GetBucketAcl"))?;
    let acl = bucket_acl(&acl);
    let versioning = s3
        .get_bucket_versioning()
        .bucket(name)
        .send()
        .await
        .map_err(|e| bucket_gap(&e, account, r, name, "s3:GetBucketVersioning"))?;
    let public_access_block = match s3.get_public_access_block().bucket(name).send().await {
        Ok(p) => p
            .public_access_block_configuration()
            .map(|c| PublicAccessBlock {
                block_public_acls: c.block_public_acls().unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
                block_public_policy: c.block_public_policy().unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
            }),
        Err(e) if has_code(&e, &["NoSuchPublicAccessBlockConfiguration"]) => None,
        Err(e) => {
            return Err(bucket_gap(
                &e,
                account,
                r,
                name,
                "s3:GetBucketPublicAccessBlock",
            ));
        }
    };
    let n = s3
        .get_bucket_notification_configuration()
        .bucket(name)
        .send()
        .await
        .map_err(|e| bucket_gap(&e, account, r, name, "s3:GetBucketNotification"))?;
    let events = |list: &[aws_sdk_s3::types::Event]| -> Vec<String> {
        list.iter().map(|e| e.as_str().to_owned()).collect()
    };
    let mut notifications: Vec<NotificationTarget> = Vec::new();
    for c in n.lambda_function_configurations() {
        notifications.push(NotificationTarget {
            kind: "lambda".into(),
            arn: c.lambda_function_arn().to_owned(),
            events: events(c.events()),
        });
    }
    for c in n.queue_configurations() {
        notifications.push(NotificationTarget {
            kind: "sqs".into(),
            arn: c.queue_arn().to_owned(),
            events: events(c.events()),
        });
    }
    for c in n.topic_configurations() {
        notifications.push(NotificationTarget {
            kind: "sns".into(),
            arn: c.topic_arn().to_owned(),
            events: events(c.events()),
        });
    }
    if n.event_bridge_configuration().is_some() {
        notifications.push(NotificationTarget {
            kind: "eventbridge".into(),
            arn: format!("arn:aws:events:{r}:{}:event-bus/default", account.id),
            events: Vec::new(),
        });
    }
    notifications.sort();
    let object_lock = match s3.get_object_lock_configuration().bucket(name).send().await {
        Ok(o) => o.object_lock_configuration().map(|c| {
            let retention = c.rule().and_then(|r| r.default_retention());
            ObjectLock {
                mode: retention
                    .and_then(|d| d.mode())
                    .map(|m| m.as_str().to_owned()),
                days: retention.and_then(|d| d.days().or(d.years().map(|y| y * 365))),
            }
        }),
        Err(e) if has_code(&e, &["ObjectLockConfigurationNotFoundError"]) => None,
        Err(e) => {
            return Err(bucket_gap(
                &e,
                account,
                r,
                name,
                "s3:GetBucketObjectLockConfiguration",
            ));
        }
    };
    let replication_rules = match s3.get_bucket_replication().bucket(name).send().await {
        Ok(rep) => rep
            .replication_configuration()
            .map(|c| {
                c.rules()
                    .iter()
                    .map(|rule| ReplicationRule {
                        id: rule.id().map(str::to_owned),
                        status: rule.status().as_str().to_owned(),
                        destination_bucket: rule
                            .destination()
                            .map(|d| d.bucket().to_owned())
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        Err(e) if has_code(&e, &["ReplicationConfigurationNotFoundError"]) => Vec::new(),
        Err(e) => {
            return Err(bucket_gap(
                &e,
                account,
                r,
                name,
                "s3:GetReplicationConfiguration",
            ));
        }
    };
    Ok(BucketSnapshot {
        name: name.to_owned(),
        region: Some(region.clone()),
        exists: true,
        policy,
        lifecycle_rules,
        versioning: versioning
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "Off".into()),
        mfa_delete: versioning.mfa_delete().map(|m| m.as_str().to_owned()),
        public_access_block,
        object_lock,
        notifications,
        replication_rules,
        owner,
        encryption,
        access_logging,
        acl,
    })
}

/// The owner and the grants, each grantee as `id=`, `uri=` or `email=`; `None` without an
/// owner (PutBucketAcl could not put it back).
fn bucket_acl(
    out: &aws_sdk_s3::operation::get_bucket_acl::GetBucketAclOutput,
) -> Option<BucketAcl> {
    let owner = out.owner()?.id()?.to_owned();
    let mut grants: Vec<AclGrant> = out
        .grants()
        .iter()
        .filter_map(|g| {
            let who = g.grantee()?;
            let grantee = if let Some(id) = who.id() {
                format!("id={id}")
            } else if let Some(uri) = who.uri() {
                format!("uri={uri}")
            } else {
                format!("email={}", who.email_address()?)
            };
            Some(AclGrant {
                grantee,
                permission: g.permission()?.as_str().to_owned(),
            })
        })
        .collect();
    grants.sort();
    grants.dedup();
    Some(BucketAcl { owner, grants })
}

fn bucket_gap<E>(
    err: &SdkError<E, HttpResponse>,
    account: &Account,
    region: &str,
    bucket: &str,
    op: &str,
) -> Gap
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut g = gap(err, account, region, op);
    g.message = format!("bucket {bucket}: {}", g.message);
    g
}

/// The region in an ARN, or the home region for a bare key id.
fn arn_region<'a>(arn: &'a str, fallback: &'a str) -> &'a str {
    trailwarden_model::target::region_of_arn(arn).unwrap_or(fallback)
}

async fn read_key(account: &Account, key: &str) -> Result<KeySnapshot> {
    let region = arn_region(key, "us-east-1").to_owned();
    let kms = account.clients.kms(&region);
    let key_gap = |e: &dyn std::fmt::Display, g: Gap| Gap {
        message: format!(
            "key {key}: {}",
            if g.message.is_empty() {
                e.to_string()
            } else {
                g.message
            }
        ),
        ..g
    };
    let described = match kms.describe_key().key_id(key).send().await {
        Ok(d) => d,
        Err(e) if has_code(&e, &["NotFoundException"]) => {
            return Ok(KeySnapshot {
                arn: key.to_owned(),
                region,
                exists: false,
                state: None,
                deletion_date: None,
                policy: None,
            });
        }
        Err(e) => {
            let g = gap(&e, account, &region, "kms:DescribeKey");
            return Err(key_gap(&"", g));
        }
    };
    let meta = described.key_metadata();
    // AccessDenied on the policy of the trail's own key is itself worth a gap (catalog A6).
    let policy = match kms
        .get_key_policy()
        .key_id(key)
        .policy_name("default")
        .send()
        .await
    {
        Ok(p) => p.policy().map(str::to_owned),
        Err(e) => {
            let g = gap(&e, account, &region, "kms:GetKeyPolicy");
            return Err(key_gap(&"", g));
        }
    };
    Ok(KeySnapshot {
        arn: key.to_owned(),
        region,
        exists: true,
        state: meta
            .and_then(|m| m.key_state())
            .map(|s| s.as_str().to_owned()),
        deletion_date: meta
            .and_then(|m| m.deletion_date())
            .and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
        policy,
    })
}

/// `arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*]` → (region, name).
fn log_group_name(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.split_once(":log-group:")?.1;
    let name = rest.strip_suffix(":*").unwrap_or(rest);
    Some((trailwarden_model::target::region_of_arn(arn)?, name))
}

/// The log group, then the alarms on its metrics and on the baseline's (alarms outlive their
/// log group and filters); an alarm read that fails is a gap of its own, not of the group.
async fn read_log_group(
    account: &Account,
    arn: &str,
    also: &AlarmPath,
) -> Result<(LogGroupSnapshot, Option<Gap>)> {
    let mut group = read_log_group_itself(account, arn).await?;
    let metrics: BTreeSet<(String, String)> = group
        .metrics()
        .into_iter()
        .chain(also.metrics.iter().cloned())
        .collect();
    match read_alarms(account, &group.region, &metrics, &also.names).await {
        Ok(alarms) => {
            group.alarms = Some(alarms);
            Ok((group, None))
        }
        Err(g) => {
            let message = format!("log group {}: {}", group.name, g.message);
            Ok((group, Some(Gap { message, ..g })))
        }
    }
}

async fn read_log_group_itself(account: &Account, arn: &str) -> Result<LogGroupSnapshot> {
    let Some((region, name)) = log_group_name(arn) else {
        return Err(Gap {
            account: account.id.clone(),
            region: None,
            operation: "logs:DescribeLogGroups".into(),
            kind: trailwarden_model::target::GapKind::ServiceError,
            code: None,
            message: format!("'{arn}' is not a log group ARN"),
        });
    };
    let logs = account.clients.logs(region);
    let group_gap = |g: Gap| Gap {
        message: format!("log group {name}: {}", g.message),
        ..g
    };
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(|e| group_gap(gap(&e, account, region, "logs:DescribeLogGroups")))?;
    let Some(group) = groups
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))
    else {
        return Ok(LogGroupSnapshot {
            arn: arn.to_owned(),
            name: name.to_owned(),
            region: region.to_owned(),
            exists: false,
            retention_days: None,
            subscription_filters: Vec::new(),
            metric_filters: Vec::new(),
            alarms: None,
        });
    };
    let subs = logs
        .describe_subscription_filters()
        .log_group_name(name)
        .send()
        .await
        .map_err(|e| group_gap(gap(&e, account, region, "logs:DescribeSubscriptionFilters")))?;
    let metrics = logs
        .describe_metric_filters()
        .log_group_name(name)
        .send()
        .await
        .map_err(|e| group_gap(gap(&e, account, region, "logs:DescribeMetricFilters")))?;
    let mut subscription_filters: Vec<LogFilter> = subs
        .subscription_filters()
        .iter()
        .map(|f| LogFilter {
            name: f.filter_name().unwrap_or_default().to_owned(),
            pattern: f.filter_pattern().unwrap_or_default().to_owned(),
            target: f.destination_arn().map(str::to_owned),
        })
        .collect();
    subscription_filters.sort();
    let mut metric_filters: Vec<LogFilter> = metrics
        .metric_filters()
        .iter()
        .map(|f| LogFilter {
            name: f.filter_name().unwrap_or_default().to_owned(),
            pattern: f.filter_pattern().unwrap_or_default().to_owned(),
            target: f
                .metric_transformations()
                .first()
                .map(|m| format!("{}/{}", m.metric_namespace(), m.metric_name())),
        })
        .collect();
    metric_filters.sort();
    Ok(LogGroupSnapshot {
        arn: arn.to_owned(),
        name: name.to_owned(),
        region: region.to_owned(),
        exists: true,
        retention_days: group.retention_in_days(),
        subscription_filters,
        metric_filters,
        alarms: None,
    })
}

/// The metric alarms on `metrics`, and those named `names` (wherever they point now).
async fn read_alarms(
    account: &Account,
    region: &str,
    metrics: &BTreeSet<(String, String)>,
    names: &BTreeSet<String>,
) -> Result<Vec<MetricAlarm>> {
    let cw = account.clients.cloudwatch(region);
    let mut found: BTreeMap<String, MetricAlarm> = BTreeMap::new();
    // DescribeAlarmsForMetric is not paginated: it returns every alarm on the metric. A few
    // at a time: a CIS log group has a dozen metrics, CloudWatch's read quota is per region.
    let per_metric: Vec<_> = metrics
        .iter()
        .map(|(namespace, metric)| {
            cw.describe_alarms_for_metric()
                .namespace(namespace)
                .metric_name(metric)
                .send()
        })
        .collect();
    let answers: Vec<_> = futures::stream::iter(per_metric)
        .buffer_unordered(4)
        .collect()
        .await;
    for answer in answers {
        let out =
            answer.map_err(|e| gap(&e, account, region, "cloudwatch:DescribeAlarmsForMetric"))?;
        for a in out.metric_alarms() {
            let alarm = metric_alarm(a);
            found.insert(alarm.name.clone(), alarm);
        }
    }
    let names: Vec<&String> = names.iter().filter(|n| !found.contains_key(*n)).collect();
    // DescribeAlarms takes at most 100 names per call.
    for chunk in names.chunks(100) {
        let mut pages = cw
            .describe_alarms()
            .set_alarm_names(Some(chunk.iter().map(|n| (*n).clone()).collect()))
            .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| gap(&e, account, region, "cloudwatch:DescribeAlarms"))?;
            for a in page.metric_alarms() {
                let alarm = metric_alarm(a);
                found.insert(alarm.name.clone(), alarm);
            }
        }
    }
    Ok(found.into_values().collect())
}

fn metric_alarm(a: &aws_sdk_cloudwatch::types::MetricAlarm) -> MetricAlarm {
    // Sorted: the order of an alarm's actions means nothing to CloudWatch.
    let texts = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    MetricAlarm {
        name: a.alarm_name().unwrap_or_default().to_owned(),
        namespace: a.namespace().unwrap_or_default().to_owned(),
        metric: a.metric_name().unwrap_or_default().to_owned(),
        description: a.alarm_description().map(str::to_owned),
        statistic: a.statistic().map(|s| s.as_str().to_owned()),
        period: a.period(),
        evaluation_periods: a.evaluation_periods(),
        datapoints_to_alarm: a.datapoints_to_alarm(),
        threshold: a.threshold(),
        comparison_operator: a.comparison_operator().map(|c| c.as_str().to_owned()),
        treat_missing_data: a.treat_missing_data().map(str::to_owned),
        // AWS omits nothing here; an absent flag is the default (enabled).
        actions_enabled: a.actions_enabled().unwrap_or(true),
        alarm_actions: texts(a.alarm_actions()),
        ok_actions: texts(a.ok_actions()),
        insufficient_data_actions: texts(a.insufficient_data_actions()),
    }
}

/// Every subscriber of the topic, sorted (pending ones included).
async fn list_subscriptions(
    sns: &aws_sdk_sns::Client,
    arn: &str,
) -> std::result::Result<
    Vec<Subscription>,
    SdkError<
        aws_sdk_sns::operation::list_subscriptions_by_topic::ListSubscriptionsByTopicError,
        HttpResponse,
    >,
> {
    let mut subscriptions = Vec::new();
    let mut pages = sns
        .list_subscriptions_by_topic()
        .topic_arn(arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        subscriptions.extend(page?.subscriptions().iter().map(|s| Subscription {
            protocol: s.protocol().unwrap_or_default().to_owned(),
            endpoint: s.endpoint().unwrap_or_default().to_owned(),
        }));
    }
    subscriptions.sort();
    subscriptions.dedup();
    Ok(subscriptions)
}

/// `arn:aws:sns:REGION:ACCOUNT:NAME` → ACCOUNT.
fn topic_account(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    (parts.len() == 6 && parts[2] == "sns").then(|| parts[4])
}

async fn read_topic(account: &Account, arn: &str) -> Result<TopicSnapshot> {
    let region = crate::topics::topic_region(arn)
        .unwrap_or("us-east-1")
        .to_owned();
    let sns = account.clients.sns(&region);
    let topic_gap = |g: Gap| Gap {
        message: format!("topic {arn}: {}", g.message),
        ..g
    };
    let (attributes, listed) = tokio::join!(
        sns.get_topic_attributes().topic_arn(arn).send(),
        list_subscriptions(&sns, arn),
    );
    let attributes = match attributes {
        Ok(a) => a,
        Err(e) if has_code(&e, &["NotFound", "NotFoundException"]) => {
            return Ok(TopicSnapshot {
                arn: arn.to_owned(),
                region,
                exists: false,
                policy: None,
                subscriptions: Vec::new(),
            });
        }
        Err(e) => {
            return Err(topic_gap(gap(
                &e,
                account,
                &region,
                "sns:GetTopicAttributes",
            )));
        }
    };
    let policy = attributes
        .attributes()
        .and_then(|a| a.get("Policy"))
        .cloned();
    let subscriptions =
        listed.map_err(|e| topic_gap(gap(&e, account, &region, "sns:ListSubscriptionsByTopic")))?;
    Ok(TopicSnapshot {
        arn: arn.to_owned(),
        region,
        exists: true,
        policy,
        subscriptions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_group_arns() {
        assert_eq!(
            log_group_name("arn:aws:logs:eu-west-1:111111111111:log-group:/aws/ct:*"),
            Some(("eu-west-1", "/aws/ct"))
        );
        assert_eq!(
            log_group_name("arn:aws:logs:us-east-1:111111111111:log-group:ct"),
            Some(("us-east-1", "ct"))
        );
        assert_eq!(log_group_name("nope"), None);
    }
}
