//! trailwarden's own plumbing as part of the known-good state: the forwarding rule `deploy`
//! installs in every member region. A missing, disabled, redirected or edited rule blinds the
//! guard in that region (tamper-catalog H), so `audit --event-bus-arn` reports it and the
//! sweeps of `watch --event-bus-arn --remediate` put it back (journaled like any restore).

use crate::journal::{Journal, NewEntry, StepOutcome};
use serde_json::{Value, json};
use trailwarden_aws::fanout::{Account, for_each_region};
use trailwarden_aws::forwarding::{self, Drift, FORWARDING_RULE};
use trailwarden_model::clock;
use trailwarden_model::finding::{Finding, Severity};
use trailwarden_model::target::{AccountId, Gap};
use trailwarden_rules::RuleSet;

/// The rule id of the finding.
pub const RULE_ID: &str = "responder-forwarding-rule";

/// The event bus named for the forwarding rules' target is not an EventBridge bus ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--event-bus-arn {0:?} is not an EventBridge bus ARN (arn:aws:events:REGION:ACCOUNT:event-bus/NAME)"
)]
pub struct NotABusArn(pub String);

/// What every member region's forwarding rule should be.
#[derive(Debug, Clone, PartialEq)]
pub struct Forwarding {
    pub bus_arn: String,
    /// Role EventBridge uses for a bus in another region (`deploy --forwarder-role-name`).
    pub forwarder_role_name: Option<String>,
    pub pattern: Value,
}

impl Forwarding {
    pub fn new(
        rules: &RuleSet,
        bus_arn: &str,
        forwarder_role_name: Option<String>,
    ) -> Result<Self, NotABusArn> {
        if !bus_arn.starts_with("arn:") || !bus_arn.contains(":event-bus/") {
            return Err(NotABusArn(bus_arn.to_owned()));
        }
        Ok(Forwarding {
            bus_arn: bus_arn.to_owned(),
            forwarder_role_name,
            pattern: rules.forwarded_events().event_pattern(),
        })
    }

    /// The region of the security account's bus.
    pub fn bus_region(&self) -> &str {
        trailwarden_model::target::region_of_arn(&self.bus_arn).unwrap_or_default()
    }

    /// The role EventBridge passes events with: only for a bus in another region.
    pub fn role_for(&self, account: &AccountId, region: &str) -> Option<String> {
        if region == self.bus_region() {
            return None;
        }
        self.forwarder_role_name
            .as_ref()
            .map(|name| format!("arn:aws:iam::{account}:role/{name}"))
    }

    pub fn finding(&self, account: &AccountId, region: &str, drift: &Drift) -> Finding {
        Finding {
            rule_id: RULE_ID.into(),
            severity: Severity::High,
            title: format!(
                "trailwarden's forwarding rule {FORWARDING_RULE} {}: tampering in this region no longer reaches the security account (run `trailwarden deploy --apply`)",
                drift.describe()
            ),
            account: account.clone(),
            region: region.to_owned(),
            technique: Some("H1".into()),
            attack: Some("T1562.001".into()),
            sigma_id: None,
            resource: Some(format!(
                "arn:aws:events:{region}:{account}:rule/{FORWARDING_RULE}"
            )),
            expected: Some(
                json!({"state": "ENABLED", "target": self.bus_arn, "pattern": "the rule pack's"}),
            ),
            actual: Some(serde_json::to_value(drift).unwrap_or(Value::Null)),
            remediable: true,
            event: None,
        }
    }

    /// Every region of `accounts`: a finding for each rule that is not as deployed.
    pub async fn check(
        &self,
        accounts: &[Account],
        concurrency: usize,
    ) -> (Vec<Finding>, Vec<Gap>) {
        let results = for_each_region(
            accounts,
            concurrency,
            &|_| {},
            |account, region| async move {
                let existing = forwarding::read(account, &region).await?;
                Ok(
                    forwarding::drift(existing.as_ref(), &self.pattern, &self.bus_arn)
                        .map(|d| self.finding(&account.id, &region, &d)),
                )
            },
        )
        .await;
        let mut findings = Vec::new();
        let mut gaps = Vec::new();
        for (_, result) in results {
            match result {
                Ok(Some(f)) => findings.push(f),
                Ok(None) => {}
                Err(gap) => gaps.push(gap),
            }
        }
        (findings, gaps)
    }

    /// Puts the rule back where `findings` say it drifted, reads it again, and journals both;
    /// returns (restored, not restored with why).
    pub async fn restore(
        &self,
        accounts: &[Account],
        findings: &[Finding],
        journal: &Journal,
    ) -> (Vec<Finding>, Vec<(Finding, String)>) {
        let run = format!("run-{}-{}-forwarding", clock::now(), std::process::id());
        let mut restored = Vec::new();
        let mut failed = Vec::new();
        for f in findings.iter().filter(|f| f.rule_id == RULE_ID) {
            let Some(account) = accounts.iter().find(|a| a.id == f.account) else {
                failed.push((f.clone(), "account not reached".into()));
                continue;
            };
            let role = self.role_for(&account.id, &f.region);
            let applied = forwarding::ensure(
                account,
                &f.region,
                &self.pattern,
                &self.bus_arn,
                role.as_deref(),
            )
            .await;
            let verified = match &applied {
                Ok(_) => match forwarding::read(account, &f.region).await {
                    Ok(now) => forwarding::drift(now.as_ref(), &self.pattern, &self.bus_arn)
                        .map(|d| format!("still {}", d.describe())),
                    Err(gap) => Some(gap.to_string()),
                },
                Err(gap) => Some(gap.to_string()),
            };
            let entry = |call: &str, outcome: StepOutcome, error: Option<String>| NewEntry {
                run_id: run.clone(),
                time: clock::now_rfc3339(),
                account: account.id.to_string(),
                region: f.region.clone(),
                resource: f.resource.clone().unwrap_or_default(),
                call: call.into(),
                parameters: json!({"rule": FORWARDING_RULE, "target": self.bus_arn, "role": role}),
                outcome,
                error,
                finding: Some(RULE_ID.into()),
            };
            let mut records = vec![entry(
                "events:PutRule+PutTargets",
                if applied.is_ok() {
                    StepOutcome::Applied
                } else {
                    StepOutcome::Failed
                },
                applied.as_ref().err().map(|g| g.to_string()),
            )];
            if applied.is_ok() {
                records.push(entry(
                    "verify",
                    if verified.is_none() {
                        StepOutcome::Verified
                    } else {
                        StepOutcome::NotRestored
                    },
                    verified.clone(),
                ));
            }
            for r in &records {
                if let Err(e) = journal.record(r) {
                    tracing::warn!(error = %e, "journaling the forwarding restore failed");
                }
            }
            match verified {
                None => restored.push(f.clone()),
                Some(why) => failed.push((f.clone(), why)),
            }
        }
        (restored, failed)
    }
}
