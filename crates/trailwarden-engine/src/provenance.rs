//! Whether to believe what a message says: that AWS sent it (the envelope), and who made the
//! call it records — trailwarden itself, proven by the credentials it obtained, or someone
//! else. An attacker who has read this code can choose a role-session name, send custom
//! events to a bus, or write objects into a bucket; none of that must make trailwarden stand
//! down or act.
//!
//! Pure: the caller supplies the credentials it knows (memory, state store).

use serde_json::Value;
use trailwarden_model::target::AccountId;
use trailwarden_posture::Baseline;
use trailwarden_posture::plan::ALL_IAM_ACTIONS;
use trailwarden_records::envelope::Envelope;

/// Why a message was not believed (never acted on). `reason()` is a bounded metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// `source` is not `aws.*`: only AWS can send those (PutEvents refuses them), so anything
    /// else was written by someone with PutEvents rights.
    #[error("source {0:?} is not an AWS service (aws.*): a custom event, not CloudTrail's")]
    NotFromAws(String),
    /// The envelope's account (set by EventBridge) differs from the record's recipient.
    #[error("the envelope's account {envelope:?} is not the record's recipient account {record:?}")]
    AccountMismatch { envelope: String, record: String },
    /// The account is not one the baseline guards.
    #[error("account {0} is not in the baseline")]
    NotInBaseline(String),
    /// An S3 notification for a bucket the baseline does not name as a log bucket.
    #[error("bucket {0:?} is not a log bucket of the baseline")]
    UnknownBucket(String),
    /// A record in a log file whose key says another account or region.
    #[error(
        "record of account {record_account} region {record_region} in a log file of account {key_account} region {key_region}"
    )]
    MisplacedRecord {
        record_account: String,
        record_region: String,
        key_account: String,
        key_region: String,
    },
}

impl Rejection {
    /// The metric label: one of a fixed few.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFromAws(_) => "not-from-aws",
            Self::AccountMismatch { .. } => "account-mismatch",
            Self::NotInBaseline(_) => "not-in-baseline",
            Self::UnknownBucket(_) => "unknown-bucket",
            Self::MisplacedRecord { .. } => "misplaced-record",
        }
    }

    pub const REASONS: [&'static str; 5] = [
        "not-from-aws",
        "account-mismatch",
        "not-in-baseline",
        "unknown-bucket",
        "misplaced-record",
    ];
}

/// The account of an EventBridge envelope that can only have come from AWS: `source`
/// `aws.*`, the envelope's account equal to the record's recipient account, and that account
/// in the baseline.
pub fn check_envelope(e: &Envelope<'_>, baseline: &Baseline) -> Result<AccountId, Rejection> {
    let source = e.source.unwrap_or_default();
    if !source.starts_with("aws.") {
        return Err(Rejection::NotFromAws(source.to_owned()));
    }
    let recipient = e
        .detail
        .get("recipientAccountId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let envelope = e.account.unwrap_or_default();
    if envelope.is_empty() || envelope != recipient {
        return Err(Rejection::AccountMismatch {
            envelope: envelope.to_owned(),
            record: recipient.to_owned(),
        });
    }
    in_baseline(envelope, baseline)
}

/// `account` if the baseline guards it.
pub fn in_baseline(account: &str, baseline: &Baseline) -> Result<AccountId, Rejection> {
    account
        .parse::<AccountId>()
        .ok()
        .filter(|id| baseline.account(id).is_some())
        .ok_or_else(|| Rejection::NotInBaseline(account.to_owned()))
}

/// A bucket an S3 notification may name: a log bucket the baseline declares.
pub fn check_bucket(bucket: &str, baseline: &Baseline) -> Result<(), Rejection> {
    let known = baseline.accounts.iter().any(|a| {
        a.buckets.iter().any(|b| b.name == bucket)
            || a.trails
                .iter()
                .any(|t| t.s3_bucket.as_deref() == Some(bucket))
    });
    if known {
        Ok(())
    } else {
        Err(Rejection::UnknownBucket(bucket.to_owned()))
    }
}

/// A record read from a log file belongs where its key says
/// (`…/AWSLogs/[o-…/]<account>/CloudTrail/<region>/…`): a record planted under another
/// account's prefix is not believed.
pub fn check_record_place(record: &Value, key: &str) -> Result<(), Rejection> {
    let Some((key_account, key_region)) = key_place(key) else {
        return Ok(());
    };
    let text = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or_default();
    let (account, region) = (text("recipientAccountId"), text("awsRegion"));
    // CloudTrail delivers a region's records (global service events included, under the
    // region where they were recorded) to that region's prefix.
    if account == key_account && region == key_region {
        Ok(())
    } else {
        Err(Rejection::MisplacedRecord {
            record_account: account.to_owned(),
            record_region: region.to_owned(),
            key_account: key_account.to_owned(),
            key_region: key_region.to_owned(),
        })
    }
}

fn key_place(key: &str) -> Option<(&str, &str)> {
    let mut parts = key.split('/').skip_while(|p| *p != "AWSLogs").skip(1);
    let mut account = parts.next()?;
    if account.starts_with("o-") {
        account = parts.next()?;
    }
    (parts.next()? == "CloudTrail").then_some(())?;
    Some((account, parts.next()?))
}

/// Who made a call, as far as trailwarden can prove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// trailwarden itself: the record's access key is one of the sessions it obtained, and
    /// the call is one it makes.
    Own,
    /// trailwarden's credentials, used for a call trailwarden never makes: someone has them.
    OwnMisused { action: String },
    /// Claims to be trailwarden (its session-name prefix, or one of its roles) with a key
    /// trailwarden never obtained: an impersonation.
    Impersonating { why: String },
    /// Anyone else.
    Other,
}

/// What trailwarden knows of its own sessions.
pub trait OwnKeys {
    /// The role of the session with this access key id (`Some(None)`: trailwarden's own
    /// starting credentials), or `None` if trailwarden never obtained it.
    fn role_of(&self, access_key_id: &str) -> Option<Option<String>>;
}

/// Classifies the caller of `record`. `session_prefix` is the prefix of trailwarden's role
/// sessions (`trailwarden-`), `role_names` the names of the roles it assumes.
pub fn classify_caller(
    record: &Value,
    own: &dyn OwnKeys,
    session_prefix: &str,
    role_names: &[String],
) -> Caller {
    let identity = record.get("userIdentity");
    let text = |path: &str| {
        identity
            .and_then(|i| i.pointer(path))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let key = text("/accessKeyId");
    let arn = text("/arn");
    let issuer = text("/sessionContext/sessionIssuer/arn");
    let session = arn
        .contains(":assumed-role/")
        .then(|| arn.rsplit('/').next())
        .flatten()
        .unwrap_or_default();
    let role_name = issuer.rsplit('/').next().unwrap_or_default();
    let claims_own = (!session.is_empty() && session.starts_with(session_prefix))
        || (!role_name.is_empty() && role_names.iter().any(|r| r == role_name));
    match (!key.is_empty()).then(|| own.role_of(key)).flatten() {
        Some(role) => {
            // The key is ours; a record that names another role for it is forged.
            if let Some(role) = role
                && !issuer.is_empty()
                && !same_role(&role, issuer)
            {
                return Caller::Impersonating {
                    why: format!(
                        "access key {key} is trailwarden's session of {role}, but the record says {issuer}"
                    ),
                };
            }
            let action = iam_action(
                record
                    .get("eventSource")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                record
                    .get("eventName")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
            if trailwarden_makes(&action) {
                Caller::Own
            } else {
                Caller::OwnMisused { action }
            }
        }
        None if claims_own => Caller::Impersonating {
            why: format!(
                "{} names trailwarden ({}) but access key {} is not one trailwarden obtained",
                if arn.is_empty() { "the caller" } else { arn },
                if session.starts_with(session_prefix) {
                    format!("session {session}")
                } else {
                    format!("role {role_name}")
                },
                if key.is_empty() { "(none)" } else { key }
            ),
        },
        None => Caller::Other,
    }
}

/// Roles compare by account and name (a role ARN may carry a path).
fn same_role(a: &str, b: &str) -> bool {
    let parts = |arn: &str| {
        let account = arn.split(':').nth(4).unwrap_or_default().to_owned();
        let name = arn.rsplit('/').next().unwrap_or_default().to_owned();
        (account, name)
    };
    parts(a) == parts(b)
}

/// The IAM action of a CloudTrail record (`cloudtrail.amazonaws.com` + `StartLogging` →
/// `cloudtrail:StartLogging`), with the S3 actions IAM spells otherwise.
pub fn iam_action(event_source: &str, event_name: &str) -> String {
    let service = event_source.split('.').next().unwrap_or_default();
    let name = match (service, event_name) {
        ("s3", "PutBucketLifecycle" | "DeleteBucketLifecycle") => "PutLifecycleConfiguration",
        ("s3", "DeleteBucketPolicy") => "DeleteBucketPolicy",
        ("s3", "PutBucketPublicAccessBlock" | "DeleteBucketPublicAccessBlock") => {
            "PutBucketPublicAccessBlock"
        }
        (_, name) => name,
    };
    format!("{service}:{name}")
}

/// Whether trailwarden ever makes this call: its restores, its forwarding rules, its
/// notifications, its queue, role assumption, and reads.
pub fn trailwarden_makes(action: &str) -> bool {
    const ALSO: [&str; 9] = [
        "events:PutRule",
        "events:PutTargets",
        "sns:Publish",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:DeleteMessageBatch",
        "sts:AssumeRole",
        "sts:GetCallerIdentity",
        "kms:Verify",
    ];
    let name = action.split(':').nth(1).unwrap_or_default();
    let read = ["Get", "List", "Describe", "Head", "Lookup"]
        .iter()
        .any(|p| name.starts_with(p));
    read || ALL_IAM_ACTIONS.contains(&action) || ALSO.contains(&action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    struct Known(HashMap<&'static str, Option<String>>);

    impl OwnKeys for Known {
        fn role_of(&self, key: &str) -> Option<Option<String>> {
            self.0.get(key).cloned()
        }
    }

    const AUDIT_ROLE: &str = "arn:aws:iam::111111111111:role/TrailwardenAudit";

    fn known() -> Known {
        Known(HashMap::from([
            ("ASIAOWN0000000000001", Some(AUDIT_ROLE.to_owned())),
            ("AKIACALLER0000000001", None),
        ]))
    }

    fn record(role: &str, session: &str, key: &str, event: &str) -> Value {
        json!({
            "eventSource": "cloudtrail.amazonaws.com",
            "eventName": event,
            "recipientAccountId": "111111111111",
            "userIdentity": {
                "type": "AssumedRole",
                "arn": format!("arn:aws:sts::111111111111:assumed-role/{role}/{session}"),
                "accessKeyId": key,
                "sessionContext": {"sessionIssuer": {"arn": format!("arn:aws:iam::111111111111:role/{role}")}}
            }
        })
    }

    fn caller(r: &Value) -> Caller {
        classify_caller(
            r,
            &known(),
            "trailwarden-",
            &["TrailwardenAudit".to_owned()],
        )
    }

    #[test]
    fn own_calls_are_proven_by_the_key_not_the_name() {
        let own = record(
            "TrailwardenAudit",
            "trailwarden-1796000000",
            "ASIAOWN0000000000001",
            "StartLogging",
        );
        assert_eq!(caller(&own), Caller::Own);
        // The attacker's spoofed session name, own key or not.
        let spoofed = record(
            "compromised-admin",
            "trailwarden-1796000000",
            "ASIAATTACKER00000001",
            "StopLogging",
        );
        assert!(
            matches!(caller(&spoofed), Caller::Impersonating { ref why } if why.contains("session trailwarden-1796000000")),
            "{:?}",
            caller(&spoofed)
        );
        // The attacker assumed trailwarden's role itself.
        let role = record(
            "TrailwardenAudit",
            "mallory",
            "ASIAATTACKER00000002",
            "StopLogging",
        );
        assert!(
            matches!(caller(&role), Caller::Impersonating { ref why } if why.contains("role TrailwardenAudit"))
        );
        // Someone else entirely.
        let other = record(
            "compromised-admin",
            "mallory",
            "ASIAATTACKER00000001",
            "StopLogging",
        );
        assert_eq!(caller(&other), Caller::Other);
    }

    #[test]
    fn trailwardens_keys_used_for_what_it_never_does_are_misuse() {
        let stop = record(
            "TrailwardenAudit",
            "trailwarden-1",
            "ASIAOWN0000000000001",
            "StopLogging",
        );
        assert_eq!(
            caller(&stop),
            Caller::OwnMisused {
                action: "cloudtrail:StopLogging".into()
            }
        );
        // The key of one role presented as another's.
        let other_role = record("SomethingElse", "x", "ASIAOWN0000000000001", "StartLogging");
        assert!(matches!(caller(&other_role), Caller::Impersonating { .. }));
        // trailwarden's starting credentials (no role) restoring a bucket.
        let mut caller_key = record("x", "y", "AKIACALLER0000000001", "PutBucketLifecycle");
        caller_key["eventSource"] = json!("s3.amazonaws.com");
        caller_key["userIdentity"]["sessionContext"] = json!({});
        assert_eq!(caller(&caller_key), Caller::Own);
    }

    #[test]
    fn only_aws_envelopes_for_the_baselines_accounts_are_believed() {
        let baseline = Baseline::from_toml(
            "format = 1\ncaptured_at = \"x\"\ncaptured_by = \"t\"\n[[account]]\naccount = \"111111111111\"\n",
            "t",
        )
        .unwrap();
        let detail = json!({"recipientAccountId": "111111111111"});
        let envelope = |source: &'static str, account: &'static str| Envelope {
            source: Some(source),
            account: Some(account),
            region: Some("us-east-1"),
            detail_type: "AWS API Call via CloudTrail",
            detail: &detail,
            envelope: &detail,
        };
        assert_eq!(
            check_envelope(&envelope("aws.cloudtrail", "111111111111"), &baseline),
            Ok("111111111111".parse().unwrap())
        );
        for (e, reason) in [
            (envelope("my.app", "111111111111"), "not-from-aws"),
            (
                envelope("aws.cloudtrail", "222222222222"),
                "account-mismatch",
            ),
        ] {
            assert_eq!(check_envelope(&e, &baseline).unwrap_err().reason(), reason);
        }
        let outside = json!({"recipientAccountId": "222222222222"});
        let e = Envelope {
            detail: &outside,
            ..envelope("aws.cloudtrail", "222222222222")
        };
        assert_eq!(
            check_envelope(&e, &baseline).unwrap_err().reason(),
            "not-in-baseline"
        );
    }

    #[test]
    fn records_belong_under_their_own_prefix() {
        let r = json!({"recipientAccountId": "111111111111", "awsRegion": "eu-west-1"});
        let key = "AWSLogs/111111111111/CloudTrail/eu-west-1/2026/12/07/f.json.gz";
        assert!(check_record_place(&r, key).is_ok());
        let org = "p/AWSLogs/o-abc123/111111111111/CloudTrail/eu-west-1/2026/12/07/f.json.gz";
        assert!(check_record_place(&r, org).is_ok());
        let planted = "AWSLogs/222222222222/CloudTrail/eu-west-1/2026/12/07/f.json.gz";
        assert_eq!(
            check_record_place(&r, planted).unwrap_err().reason(),
            "misplaced-record"
        );
        assert!(check_record_place(&r, "somewhere/else.json").is_ok());
    }

    #[test]
    fn s3_record_names_map_to_iam_actions() {
        assert_eq!(
            iam_action("s3.amazonaws.com", "PutBucketLifecycle"),
            "s3:PutLifecycleConfiguration"
        );
        assert!(trailwarden_makes("s3:PutLifecycleConfiguration"));
        assert!(trailwarden_makes("cloudtrail:DescribeTrails"));
        assert!(!trailwarden_makes("cloudtrail:StopLogging"));
        assert!(!trailwarden_makes("cloudtrail:DeleteTrail"));
        assert!(!trailwarden_makes("iam:PutRolePolicy"));
        assert!(!trailwarden_makes("events:DeleteRule"));
    }
}
