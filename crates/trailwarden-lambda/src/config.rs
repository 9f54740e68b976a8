//! The function's configuration: environment variables only (a Lambda has no arguments),
//! checked all at once at cold start so one failed deployment names every mistake.

use std::path::PathBuf;
use trailwarden_model::target::RegionSelection;

/// Where the baseline comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaselineSource {
    /// A file in the deployment package (or a layer), e.g. `/var/task/baseline.toml`.
    File(PathBuf),
    /// An object read with the function's own role at cold start.
    S3 { bucket: String, key: String },
}

impl std::fmt::Display for BaselineSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `TRAILWARDEN_BASELINE` (required).
    pub baseline: BaselineSource,
    /// `TRAILWARDEN_BASELINE_SHA256`: refuse to start unless the baseline's bytes hash to it.
    pub baseline_sha256: Option<String>,
    /// `TRAILWARDEN_BASELINE_BUCKET_OWNER`: the account that must own an `s3://` baseline's
    /// bucket (default: the function's own account); S3 refuses the read otherwise.
    pub baseline_bucket_owner: Option<String>,
    /// `TRAILWARDEN_NOTIFY_SNS`: publish every detection to this topic (delivered before the
    /// invocation returns; what cannot be sent waits in the journal for the next one).
    pub notify_sns: Option<String>,
    /// `TRAILWARDEN_REMEDIATE` (default true: Lambda mode restores automatically).
    pub remediate: bool,
    /// `TRAILWARDEN_ROLE_NAME`: assume this role in each baseline account (a central
    /// function); unset, the function guards the account it runs in.
    pub role_name: Option<String>,
    /// `TRAILWARDEN_REGIONS`: what a sweep reads (default: every enabled region).
    pub regions: RegionSelection,
    /// `TRAILWARDEN_RULES`: a directory of extra rules; the built-in pack always applies.
    pub rules: Option<PathBuf>,
    /// `TRAILWARDEN_STATE`: the journal (SQLite), per container.
    pub state: PathBuf,
    /// `TRAILWARDEN_VERIFY_ATTEMPTS`: reads after a restore until it is verified.
    pub verify_attempts: u32,
    /// `TRAILWARDEN_CONCURRENCY`: AWS calls in flight at once during a sweep.
    pub concurrency: usize,
    /// `AWS_ENDPOINT_URL`: every call goes there instead of AWS (emulators, tests).
    pub endpoint_url: Option<String>,
}

pub const DEFAULT_STATE: &str = "/tmp/trailwarden.db";

impl Config {
    /// Reads the configuration through `var` (the process environment in production);
    /// every problem is reported, one line each.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, Vec<String>> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut errors = Vec::new();

        let baseline = match get("TRAILWARDEN_BASELINE") {
            None => {
                errors.push("TRAILWARDEN_BASELINE is not set: give the baseline file (a path in the package, e.g. /var/task/baseline.toml) or s3://BUCKET/KEY".to_owned());
                None
            }
            Some(v) if v.starts_with("s3://") => match v["s3://".len()..].split_once('/') {
                Some((bucket, key))
                    if !bucket.is_empty() && !key.is_empty() && !key.ends_with('/') =>
                {
                    Some(BaselineSource::S3 {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                    })
                }
                _ => {
                    errors.push(format!(
                            "TRAILWARDEN_BASELINE={v:?}: an S3 baseline is s3://BUCKET/KEY (one object, not a prefix)"
                        ));
                    None
                }
            },
            Some(v) if v.contains("://") => {
                errors.push(format!(
                    "TRAILWARDEN_BASELINE={v:?}: only a file path or s3://BUCKET/KEY is supported"
                ));
                None
            }
            Some(v) => Some(BaselineSource::File(PathBuf::from(v))),
        };

        let baseline_sha256 = get("TRAILWARDEN_BASELINE_SHA256");
        if let Some(pin) = &baseline_sha256
            && let Err(e) = trailwarden_engine::pinned::parse_pin(pin)
        {
            errors.push(format!("TRAILWARDEN_BASELINE_SHA256: {e}"));
        }
        let baseline_bucket_owner = get("TRAILWARDEN_BASELINE_BUCKET_OWNER");
        if let Some(owner) = &baseline_bucket_owner
            && owner
                .parse::<trailwarden_model::target::AccountId>()
                .is_err()
        {
            errors.push(format!(
                "TRAILWARDEN_BASELINE_BUCKET_OWNER={owner:?}: an account id (12 digits)"
            ));
        }
        let notify_sns = get("TRAILWARDEN_NOTIFY_SNS");
        if let Some(topic) = &notify_sns
            && trailwarden_aws::topics::topic_region(topic).is_none()
        {
            errors.push(format!(
                "TRAILWARDEN_NOTIFY_SNS={topic:?}: not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
            ));
        }

        let remediate = match get("TRAILWARDEN_REMEDIATE")
            .as_deref()
            .map(str::to_ascii_lowercase)
        {
            None => true,
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => true,
            Some(v) if matches!(v.as_str(), "false" | "0" | "no") => false,
            Some(v) => {
                errors.push(format!(
                    "TRAILWARDEN_REMEDIATE={v:?}: use true (restore, the default) or false (detect and report only)"
                ));
                true
            }
        };

        let role_name = get("TRAILWARDEN_ROLE_NAME");
        if let Some(name) = &role_name
            && (name.contains('/') || name.contains(':'))
        {
            errors.push(format!(
                "TRAILWARDEN_ROLE_NAME={name:?}: give the role's name (e.g. TrailwardenAudit), not its ARN or path"
            ));
        }

        let regions = match get("TRAILWARDEN_REGIONS") {
            None => RegionSelection::AllEnabled,
            Some(v) => match v.parse::<RegionSelection>() {
                Ok(r) => r,
                Err(e) => {
                    errors.push(format!("TRAILWARDEN_REGIONS={v:?}: {e}"));
                    RegionSelection::AllEnabled
                }
            },
        };

        let rules = get("TRAILWARDEN_RULES").map(PathBuf::from);
        let state =
            get("TRAILWARDEN_STATE").map_or_else(|| PathBuf::from(DEFAULT_STATE), PathBuf::from);

        let number = |name: &str, default: u32, max: u32, errors: &mut Vec<String>| match get(name)
        {
            None => default,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    errors.push(format!("{name}={v:?}: a whole number from 1 to {max}"));
                    default
                }
            },
        };
        let verify_attempts = number("TRAILWARDEN_VERIFY_ATTEMPTS", 3, 10, &mut errors);
        let concurrency = number("TRAILWARDEN_CONCURRENCY", 16, 512, &mut errors) as usize;

        let endpoint_url = get("AWS_ENDPOINT_URL");
        if let Some(url) = &endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            errors.push(format!("AWS_ENDPOINT_URL={url:?}: not an http(s) URL"));
        }

        match baseline {
            Some(baseline) if errors.is_empty() => Ok(Self {
                baseline,
                baseline_sha256,
                baseline_bucket_owner,
                notify_sns,
                remediate,
                role_name,
                regions,
                rules,
                state,
                verify_attempts,
                concurrency,
                endpoint_url,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, Vec<String>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_restore_in_every_enabled_region_with_the_journal_in_tmp() {
        let c = parse(&[("TRAILWARDEN_BASELINE", "/var/task/baseline.toml")]).unwrap();
        assert_eq!(
            c.baseline,
            BaselineSource::File("/var/task/baseline.toml".into())
        );
        assert!(c.remediate);
        assert_eq!(c.role_name, None);
        assert_eq!(c.regions, RegionSelection::AllEnabled);
        assert_eq!(c.rules, None);
        assert_eq!(c.state, PathBuf::from("/tmp/trailwarden.db"));
        assert_eq!(c.verify_attempts, 3);
        assert_eq!(c.endpoint_url, None);
        assert_eq!(c.baseline_sha256, None);
        assert_eq!(c.notify_sns, None);
    }

    #[test]
    fn every_variable_is_read() {
        let c = parse(&[
            (
                "TRAILWARDEN_BASELINE",
                "s3://org-config/trailwarden/baseline.toml",
            ),
            ("TRAILWARDEN_REMEDIATE", "False"),
            ("TRAILWARDEN_ROLE_NAME", "TrailwardenAudit"),
            ("TRAILWARDEN_REGIONS", "us-east-1, eu-west-1"),
            ("TRAILWARDEN_RULES", "/opt/rules"),
            ("TRAILWARDEN_STATE", "/tmp/x.db"),
            ("TRAILWARDEN_VERIFY_ATTEMPTS", "1"),
            ("TRAILWARDEN_CONCURRENCY", "4"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            (
                "TRAILWARDEN_BASELINE_SHA256",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            ("TRAILWARDEN_BASELINE_BUCKET_OWNER", "111122223333"),
            (
                "TRAILWARDEN_NOTIFY_SNS",
                "arn:aws:sns:us-east-1:111122223333:trailwarden",
            ),
        ])
        .unwrap();
        assert_eq!(c.baseline_bucket_owner.as_deref(), Some("111122223333"));
        assert!(c.baseline_sha256.is_some() && c.notify_sns.is_some());
        assert_eq!(
            c.baseline,
            BaselineSource::S3 {
                bucket: "org-config".into(),
                key: "trailwarden/baseline.toml".into()
            }
        );
        assert!(!c.remediate);
        assert_eq!(c.role_name.as_deref(), Some("TrailwardenAudit"));
        assert_eq!(
            c.regions,
            RegionSelection::List(vec!["us-east-1".into(), "eu-west-1".into()])
        );
        assert_eq!(c.rules, Some(PathBuf::from("/opt/rules")));
        assert_eq!(c.state, PathBuf::from("/tmp/x.db"));
        assert_eq!(c.verify_attempts, 1);
        assert_eq!(c.concurrency, 4);
        assert_eq!(c.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn every_mistake_is_named_at_once() {
        let errors = parse(&[
            ("TRAILWARDEN_REMEDIATE", "sometimes"),
            ("TRAILWARDEN_ROLE_NAME", "arn:aws:iam::1:role/x"),
            ("TRAILWARDEN_REGIONS", "us-east-1,not a region"),
            ("TRAILWARDEN_VERIFY_ATTEMPTS", "0"),
            ("TRAILWARDEN_BASELINE_SHA256", "not-a-hash"),
            ("TRAILWARDEN_NOTIFY_SNS", "alerts"),
        ])
        .unwrap_err();
        let text = errors.join("\n");
        for name in [
            "TRAILWARDEN_BASELINE is not set",
            "TRAILWARDEN_REMEDIATE=\"sometimes\"",
            "TRAILWARDEN_ROLE_NAME=",
            "TRAILWARDEN_REGIONS=",
            "TRAILWARDEN_VERIFY_ATTEMPTS=\"0\"",
            "TRAILWARDEN_BASELINE_SHA256",
            "TRAILWARDEN_NOTIFY_SNS",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        assert_eq!(errors.len(), 7, "{text}");
    }

    #[test]
    fn an_s3_baseline_names_one_object() {
        for bad in [
            "s3://bucket",
            "s3://bucket/",
            "s3:///key",
            "s3://bucket/prefix/",
        ] {
            let errors = parse(&[("TRAILWARDEN_BASELINE", bad)]).unwrap_err();
            assert!(errors[0].contains("s3://BUCKET/KEY"), "{bad}: {errors:?}");
        }
        let errors = parse(&[("TRAILWARDEN_BASELINE", "https://example.com/b.toml")]).unwrap_err();
        assert!(errors[0].contains("only a file path"), "{errors:?}");
    }
}
