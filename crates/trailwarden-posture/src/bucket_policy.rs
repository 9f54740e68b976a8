//! Does a bucket policy still let CloudTrail deliver? (Catalog B2.)
//!
//! This is a focused reading of the statements CloudTrail depends on, not an IAM policy
//! evaluator: it looks for an Allow of `s3:PutObject` to `cloudtrail.amazonaws.com` on the
//! trail's log path and for any Deny that would override it.

use serde_json::Value;

const CLOUDTRAIL: &str = "cloudtrail.amazonaws.com";

/// `None` when the policy admits CloudTrail writes to
/// `arn:aws:s3:::<bucket>/[<prefix>/]AWSLogs/<account>/...`; otherwise the problem.
pub fn cloudtrail_delivery_problem(
    policy: Option<&str>,
    bucket: &str,
    prefix: Option<&str>,
    account: &str,
) -> Option<String> {
    let Some(text) = policy else {
        return Some("the bucket has no policy, so CloudTrail may not write to it".into());
    };
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Some(format!("the bucket policy is not valid JSON: {e}")),
    };
    let statements: Vec<&Value> = match &doc["Statement"] {
        Value::Array(list) => list.iter().collect(),
        Value::Object(_) => vec![&doc["Statement"]],
        _ => return Some("the bucket policy has no statements".into()),
    };
    let path = match prefix.filter(|p| !p.is_empty()) {
        Some(p) => format!(
            "arn:aws:s3:::{bucket}/{}/AWSLogs/{account}/",
            p.trim_matches('/')
        ),
        None => format!("arn:aws:s3:::{bucket}/AWSLogs/{account}/"),
    };
    let object = format!("{path}CloudTrail/us-east-1/2024/01/01/log.json.gz");

    for s in &statements {
        if s["Effect"] == "Deny"
            && applies_to_cloudtrail(&s["Principal"])
            && action_covers(&s["Action"], "s3:PutObject")
            && resource_covers(&s["Resource"], &object)
        {
            let sid = s["Sid"].as_str().unwrap_or("(no Sid)");
            return Some(format!(
                "statement {sid} denies s3:PutObject to CloudTrail on {path}*"
            ));
        }
    }
    let allowed = statements.iter().any(|s| {
        s["Effect"] == "Allow"
            && names_cloudtrail(&s["Principal"])
            && action_covers(&s["Action"], "s3:PutObject")
            && resource_covers(&s["Resource"], &object)
    });
    if allowed {
        None
    } else {
        Some(format!(
            "no statement allows cloudtrail.amazonaws.com to s3:PutObject on {path}*"
        ))
    }
}

/// The principal is exactly the CloudTrail service (what an Allow must name).
fn names_cloudtrail(principal: &Value) -> bool {
    match &principal["Service"] {
        Value::String(s) => s == CLOUDTRAIL,
        Value::Array(list) => list.iter().any(|s| s == CLOUDTRAIL),
        _ => false,
    }
}

/// A Deny hits CloudTrail when it names it or everyone.
fn applies_to_cloudtrail(principal: &Value) -> bool {
    principal == "*" || principal["AWS"] == "*" || names_cloudtrail(principal)
}

fn action_covers(action: &Value, wanted: &str) -> bool {
    strings(action)
        .iter()
        .any(|a| glob(&a.to_ascii_lowercase(), &wanted.to_ascii_lowercase()))
}

fn resource_covers(resource: &Value, arn: &str) -> bool {
    strings(resource).iter().any(|r| glob(r, arn))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// IAM-style wildcard match: `*` any run, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn standard(bucket: &str, account: &str) -> String {
        json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow",
             "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:GetBucketAcl", "Resource": format!("arn:aws:s3:::{bucket}")},
            {"Sid": "AWSCloudTrailWrite", "Effect": "Allow",
             "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:PutObject",
             "Resource": format!("arn:aws:s3:::{bucket}/AWSLogs/{account}/*"),
             "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}}
        ]})
        .to_string()
    }

    #[test]
    fn the_standard_policy_admits_cloudtrail() {
        assert_eq!(
            cloudtrail_delivery_problem(
                Some(&standard("logs", "111111111111")),
                "logs",
                None,
                "111111111111"
            ),
            None
        );
    }

    #[test]
    fn wrong_account_prefix_or_missing_policy_is_a_problem() {
        let p = standard("logs", "111111111111");
        assert!(cloudtrail_delivery_problem(Some(&p), "logs", None, "222222222222").is_some());
        assert!(
            cloudtrail_delivery_problem(Some(&p), "logs", Some("team"), "111111111111").is_some()
        );
        assert!(cloudtrail_delivery_problem(None, "logs", None, "111111111111").is_some());
        assert!(cloudtrail_delivery_problem(Some("{not json"), "logs", None, "1").is_some());
    }

    #[test]
    fn a_deny_for_cloudtrail_or_everyone_overrides_the_allow() {
        let mut doc: Value = serde_json::from_str(&standard("logs", "111111111111")).unwrap();
        doc["Statement"].as_array_mut().unwrap().push(json!({
            "Sid": "Nope", "Effect": "Deny", "Principal": "*",
            "Action": "s3:*", "Resource": "arn:aws:s3:::logs/*"
        }));
        let problem =
            cloudtrail_delivery_problem(Some(&doc.to_string()), "logs", None, "111111111111")
                .unwrap();
        assert!(problem.contains("Nope"), "{problem}");
    }

    #[test]
    fn prefixes_and_wildcards() {
        let p = json!({"Statement": {"Effect": "Allow",
            "Principal": {"Service": ["cloudtrail.amazonaws.com"]},
            "Action": ["s3:Put*"], "Resource": "arn:aws:s3:::logs/team/AWSLogs/*"}})
        .to_string();
        assert_eq!(
            cloudtrail_delivery_problem(Some(&p), "logs", Some("team"), "111111111111"),
            None
        );
        assert!(glob("a*c", "abbbc"));
        assert!(glob("*", ""));
        assert!(!glob("a?c", "ac"));
        assert!(glob("s3:*", "s3:putobject"));
    }
}
