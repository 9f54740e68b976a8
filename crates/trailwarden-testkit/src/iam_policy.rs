//! The IAM policies trailwarden ships (`docs/iam/*.json`), and the check that a test's AWS
//! calls are all allowed by them.
//!
//! The calls come from the lab's fault proxy (`lab.proxy.calls()`: service and API operation,
//! as the SDK names them); [`iam_action`] turns an operation into the IAM action a policy must
//! allow, which is not always its name (S3 spells several differently).

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One statement of a policy: its `Sid`, `Effect` and the actions it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: String,
    pub actions: Vec<String>,
}

/// Where a shipped policy file is: `docs/iam/<file>` of the repository.
pub fn path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/iam")
        .join(file)
}

/// The statements of `docs/iam/<file>`, in their order.
///
/// # Panics
///
/// When the file cannot be read or is not a policy whose statements name their actions
/// (`Action`, a string or a list of strings); the message names the file.
pub fn policy(file: &str) -> Vec<Statement> {
    let path = path(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("docs/iam/{file} ({}): {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("docs/iam/{file}: {e}"));
    parse(&doc).unwrap_or_else(|e| panic!("docs/iam/{file}: {e}"))
}

/// The statements of a policy document (e.g. one inlined in a CloudFormation template).
///
/// # Panics
///
/// As [`policy`].
pub fn statements(document: &Value) -> Vec<Statement> {
    parse(document).unwrap_or_else(|e| panic!("{e}: {document:#}"))
}

fn parse(document: &Value) -> Result<Vec<Statement>, String> {
    let list = match &document["Statement"] {
        Value::Array(list) => list.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        other => return Err(format!("Statement is not a list: {other}")),
    };
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let actions = match &s["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(items) => items
                    .iter()
                    .map(|a| {
                        a.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| format!("statement {i}: an action is not a string"))
                    })
                    .collect::<Result<_, _>>()?,
                other => return Err(format!("statement {i}: unexpected Action {other}")),
            };
            Ok(Statement {
                sid: s["Sid"].as_str().map(str::to_owned),
                effect: s["Effect"].as_str().unwrap_or_default().to_owned(),
                actions,
            })
        })
        .collect()
}

/// The actions the `Allow` statements of these files of `docs/iam/` name.
pub fn allowed_actions(files: &[&str]) -> BTreeSet<String> {
    files
        .iter()
        .flat_map(|file| policy(file))
        .filter(|s| s.effect == "Allow")
        .flat_map(|s| s.actions)
        .collect()
}

/// The IAM action a call of `operation` of `service` needs (the proxy's and the SDK's
/// names: `("s3", "GetPublicAccessBlock")` needs `s3:GetBucketPublicAccessBlock`).
pub fn iam_action(service: &str, operation: &str) -> String {
    let renamed = match (service, operation) {
        ("s3", "GetBucketLifecycleConfiguration") => "GetLifecycleConfiguration",
        ("s3", "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle") => {
            "PutLifecycleConfiguration"
        }
        ("s3", "GetPublicAccessBlock") => "GetBucketPublicAccessBlock",
        ("s3", "PutPublicAccessBlock") => "PutBucketPublicAccessBlock",
        ("s3", "GetBucketEncryption") => "GetEncryptionConfiguration",
        ("s3", "PutBucketEncryption") => "PutEncryptionConfiguration",
        ("s3", "GetBucketNotificationConfiguration") => "GetBucketNotification",
        ("s3", "PutBucketNotificationConfiguration") => "PutBucketNotification",
        ("s3", "GetBucketReplication") => "GetReplicationConfiguration",
        ("s3", "GetObjectLockConfiguration") => "GetBucketObjectLockConfiguration",
        ("s3", "ListObjects" | "ListObjectsV2" | "HeadBucket") => "ListBucket",
        ("s3", "HeadObject") => "GetObject",
        // SQS authorizes a batch call by its single action.
        ("sqs", "DeleteMessageBatch") => "DeleteMessage",
        ("sqs", "SendMessageBatch") => "SendMessage",
        ("sqs", "ChangeMessageVisibilityBatch") => "ChangeMessageVisibility",
        (_, operation) => operation,
    };
    // The signing name is not always IAM's service prefix.
    let service = match service {
        "monitoring" => "cloudwatch",
        other => other,
    };
    format!("{service}:{renamed}")
}

/// Asserts that every call in `calls` (service, operation: the keys of
/// `lab.proxy.calls()`) is allowed by the `Allow` statements of these files of `docs/iam/`,
/// and that there was a call to check.
///
/// # Panics
///
/// When no call was counted, or naming every action called but not allowed and the files.
#[track_caller]
pub fn assert_calls_allowed<'a>(
    calls: impl IntoIterator<Item = &'a (String, String)>,
    files: &[&str],
) {
    let allowed = allowed_actions(files);
    let called: BTreeSet<String> = calls
        .into_iter()
        .map(|(service, operation)| iam_action(service, operation))
        .collect();
    let named: Vec<String> = files.iter().map(|f| format!("docs/iam/{f}")).collect();
    let named = named.join(", ");
    assert!(
        !called.is_empty(),
        "no call was counted: nothing to check against {named}"
    );
    let denied: Vec<&String> = called.difference(&allowed).collect();
    assert!(
        denied.is_empty(),
        "called but not allowed by {named}: {denied:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operations_map_to_the_actions_iam_names() {
        let cases = [
            (("cloudtrail", "StartLogging"), "cloudtrail:StartLogging"),
            (("logs", "PutRetentionPolicy"), "logs:PutRetentionPolicy"),
            (("sts", "AssumeRole"), "sts:AssumeRole"),
            (
                ("monitoring", "PutMetricAlarm"),
                "cloudwatch:PutMetricAlarm",
            ),
            (("s3", "GetBucketPolicy"), "s3:GetBucketPolicy"),
            (("s3", "GetObject"), "s3:GetObject"),
            (
                ("s3", "GetBucketLifecycleConfiguration"),
                "s3:GetLifecycleConfiguration",
            ),
            (
                ("s3", "PutBucketLifecycleConfiguration"),
                "s3:PutLifecycleConfiguration",
            ),
            (
                ("s3", "DeleteBucketLifecycle"),
                "s3:PutLifecycleConfiguration",
            ),
            (
                ("s3", "GetPublicAccessBlock"),
                "s3:GetBucketPublicAccessBlock",
            ),
            (
                ("s3", "PutPublicAccessBlock"),
                "s3:PutBucketPublicAccessBlock",
            ),
            (
                ("s3", "GetBucketNotificationConfiguration"),
                "s3:GetBucketNotification",
            ),
            (
                ("s3", "PutBucketNotificationConfiguration"),
                "s3:PutBucketNotification",
            ),
            (
                ("s3", "GetBucketReplication"),
                "s3:GetReplicationConfiguration",
            ),
            (
                ("s3", "GetObjectLockConfiguration"),
                "s3:GetBucketObjectLockConfiguration",
            ),
            (("s3", "ListObjectsV2"), "s3:ListBucket"),
            (("s3", "ListObjects"), "s3:ListBucket"),
            // Only S3 renames: the same operation name elsewhere is itself.
            (("sqs", "GetPublicAccessBlock"), "sqs:GetPublicAccessBlock"),
        ];
        for ((service, operation), want) in cases {
            assert_eq!(
                iam_action(service, operation),
                want,
                "{service} {operation}"
            );
        }
    }

    #[test]
    fn statements_name_their_actions_one_or_many() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "One", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"},
            {"Effect": "Deny", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"},
        ]});
        assert_eq!(
            statements(&doc),
            [
                Statement {
                    sid: Some("One".into()),
                    effect: "Allow".into(),
                    actions: vec!["sts:AssumeRole".into()],
                },
                Statement {
                    sid: None,
                    effect: "Deny".into(),
                    actions: vec!["s3:GetObject".into(), "s3:ListBucket".into()],
                },
            ]
        );
        assert!(parse(&json!({"Statement": [{"NotAction": "s3:*"}]})).is_err());
    }

    #[test]
    fn every_shipped_policy_reads() {
        for entry in std::fs::read_dir(path("")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with("-policy.json") {
                assert!(!policy(&name).is_empty(), "{name}");
            }
        }
    }

    fn calls(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(s, o)| ((*s).to_owned(), (*o).to_owned()))
            .collect()
    }

    #[test]
    fn allowed_calls_pass_and_a_call_not_allowed_fails_naming_the_files() {
        let files = [
            "trailwarden-audit-policy.json",
            "trailwarden-caller-policy.json",
        ];
        assert_calls_allowed(
            &calls(&[
                ("sts", "AssumeRole"),
                ("cloudtrail", "GetTrailStatus"),
                ("s3", "GetBucketLifecycleConfiguration"),
            ]),
            &files,
        );
        let panic = std::panic::catch_unwind(|| {
            assert_calls_allowed(
                &calls(&[("sts", "AssumeRole"), ("cloudtrail", "StartLogging")]),
                &files,
            );
        })
        .unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert_eq!(
            message,
            "called but not allowed by docs/iam/trailwarden-audit-policy.json, \
             docs/iam/trailwarden-caller-policy.json: [\"cloudtrail:StartLogging\"]"
        );
    }

    #[test]
    fn no_calls_is_no_evidence() {
        let panic = std::panic::catch_unwind(|| {
            assert_calls_allowed(&[], &["trailwarden-audit-policy.json"])
        })
        .unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.starts_with("no call was counted"), "{message}");
    }
}
