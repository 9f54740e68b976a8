//! The trail inventory: what `DescribeTrails` and `GetTrailStatus` say, per account, with
//! shadow copies folded into the trail they mirror.

use crate::target::AccountId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A trail as seen from one region. Multi-region and organization trails appear in every
/// region (as "shadow" copies); `home_region` says where the trail really lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailView {
    pub name: String,
    pub arn: String,
    pub home_region: String,
    pub is_multi_region: bool,
    pub is_organization: bool,
    pub s3_bucket: Option<String>,
    pub s3_key_prefix: Option<String>,
    pub sns_topic_arn: Option<String>,
    pub include_global_service_events: bool,
    pub log_file_validation: bool,
    pub kms_key_id: Option<String>,
    pub cloudwatch_logs_log_group_arn: Option<String>,
    pub cloudwatch_logs_role_arn: Option<String>,
    pub has_custom_event_selectors: bool,
    pub has_insight_selectors: bool,
}

impl TrailView {
    /// The account that owns the trail (from its ARN). For an organization trail seen from a
    /// member account this is the management (or delegated admin) account, not the member.
    pub fn owner_account(&self) -> Option<&str> {
        self.arn.split(':').nth(4).filter(|a| !a.is_empty())
    }
}

/// What `GetTrailStatus` says about a trail (asked once, in its home region).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TrailStatus {
    pub is_logging: bool,
    pub latest_delivery_error: Option<String>,
    /// RFC 3339.
    pub latest_delivery_time: Option<String>,
    pub start_logging_time: Option<String>,
    pub stop_logging_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_cloudwatch_logs_delivery_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_notification_error: Option<String>,
}

/// One trail of an account, shadows folded in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trail {
    pub account: AccountId,
    #[serde(flatten)]
    pub view: TrailView,
    /// The regions in which `DescribeTrails` showed this trail.
    pub seen_in: BTreeSet<String>,
    /// `None` when the status could not be read (see the account's gaps).
    pub status: Option<TrailStatus>,
}

impl Trail {
    /// True when the trail records this region's events.
    pub fn covers(&self, region: &str) -> bool {
        self.view.is_multi_region || self.view.home_region == region
    }

    /// True when this account does not own the trail (an organization trail seen from a member).
    pub fn is_foreign(&self) -> bool {
        self.view
            .owner_account()
            .is_some_and(|owner| owner != self.account.as_str())
    }
}

/// Folds per-region `DescribeTrails` answers of one account into one entry per trail (by ARN).
/// The home-region view wins when a trail is seen in several regions.
pub fn fold_shadows(
    account: &AccountId,
    per_region: impl IntoIterator<Item = (String, Vec<TrailView>)>,
) -> Vec<Trail> {
    let mut by_arn: BTreeMap<String, Trail> = BTreeMap::new();
    for (region, views) in per_region {
        for view in views {
            let from_home = view.home_region == region;
            match by_arn.get_mut(&view.arn) {
                Some(trail) => {
                    trail.seen_in.insert(region.clone());
                    if from_home {
                        trail.view = view;
                    }
                }
                None => {
                    by_arn.insert(
                        view.arn.clone(),
                        Trail {
                            account: account.clone(),
                            seen_in: BTreeSet::from([region.clone()]),
                            view,
                            status: None,
                        },
                    );
                }
            }
        }
    }
    by_arn.into_values().collect()
}

/// Regions (of those given) that no logging trail covers.
pub fn uncovered_regions<'a>(
    trails: &[Trail],
    regions: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    regions
        .into_iter()
        .filter(|region| {
            !trails.iter().any(|t| {
                t.covers(region) && t.status.as_ref().is_some_and(|status| status.is_logging)
            })
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, home: &str, multi: bool) -> TrailView {
        TrailView {
            name: name.into(),
            arn: format!("arn:aws:cloudtrail:{home}:111111111111:trail/{name}"),
            home_region: home.into(),
            is_multi_region: multi,
            is_organization: false,
            s3_bucket: Some("logs".into()),
            s3_key_prefix: None,
            sns_topic_arn: None,
            include_global_service_events: multi,
            log_file_validation: true,
            kms_key_id: None,
            cloudwatch_logs_log_group_arn: None,
            cloudwatch_logs_role_arn: None,
            has_custom_event_selectors: false,
            has_insight_selectors: false,
        }
    }

    fn account() -> AccountId {
        "111111111111".parse().unwrap()
    }

    #[test]
    fn shadows_fold_into_one_trail_with_the_home_view() {
        let mut shadow = view("org", "us-east-1", true);
        shadow.s3_key_prefix = Some("seen-from-shadow".into());
        let trails = fold_shadows(
            &account(),
            [
                ("eu-west-1".to_owned(), vec![shadow]),
                (
                    "us-east-1".to_owned(),
                    vec![
                        view("org", "us-east-1", true),
                        view("local", "us-east-1", false),
                    ],
                ),
                (
                    "ap-south-1".to_owned(),
                    vec![view("org", "us-east-1", true)],
                ),
            ],
        );
        assert_eq!(trails.len(), 2);
        let org = trails.iter().find(|t| t.view.name == "org").unwrap();
        assert_eq!(org.seen_in.len(), 3);
        assert_eq!(org.view.s3_key_prefix, None, "home-region view must win");
        let local = trails.iter().find(|t| t.view.name == "local").unwrap();
        assert_eq!(local.seen_in, BTreeSet::from(["us-east-1".to_owned()]));
    }

    #[test]
    fn coverage_needs_a_logging_trail_that_covers_the_region() {
        let mut trails = fold_shadows(
            &account(),
            [(
                "us-east-1".to_owned(),
                vec![
                    view("multi", "us-east-1", true),
                    view("local", "eu-west-1", false),
                ],
            )],
        );
        // Nothing is known to be logging yet: every region is uncovered.
        assert_eq!(
            uncovered_regions(&trails, ["us-east-1", "eu-west-1"]),
            vec!["us-east-1", "eu-west-1"]
        );
        for t in &mut trails {
            t.status = Some(TrailStatus {
                latest_cloudwatch_logs_delivery_error: None,
                latest_notification_error: None,
                is_logging: t.view.name == "local",
                ..Default::default()
            });
        }
        assert_eq!(
            uncovered_regions(&trails, ["us-east-1", "eu-west-1"]),
            vec!["us-east-1"]
        );
        trails[0].status.as_mut().unwrap().is_logging = true; // "local" sorts first by ARN
        trails[1].status.as_mut().unwrap().is_logging = true;
        assert!(uncovered_regions(&trails, ["us-east-1", "eu-west-1", "ap-south-1"]).is_empty());
    }

    #[test]
    fn organization_trails_seen_from_members_are_foreign() {
        let mut v = view("org", "us-east-1", true);
        v.arn = "arn:aws:cloudtrail:us-east-1:999999999999:trail/org".into();
        v.is_organization = true;
        let trails = fold_shadows(&account(), [("us-east-1".to_owned(), vec![v])]);
        assert!(trails[0].is_foreign());
        assert_eq!(trails[0].view.owner_account(), Some("999999999999"));
    }
}
