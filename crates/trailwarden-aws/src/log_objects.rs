//! CloudTrail log objects in S3: find the bucket's region, list the objects a scan wants
//! (pruned by the AWSLogs key layout before anything is downloaded), and fetch them.

use crate::client::AccountConfig;
use crate::failure::CallError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use trailwarden_model::log_key::KeyFilter;

/// `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://bucket[/prefix]`; `None` for anything else.
    pub fn parse(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        (!bucket.is_empty()).then(|| Self {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    pub fn url_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

/// One object to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogObject {
    pub key: String,
    pub size: u64,
}

/// An S3 call that failed, named like the IAM action it needs.
fn describe<E>(
    err: &SdkError<E, HttpResponse>,
    bucket: &str,
    region: &str,
    operation: &str,
) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    CallError::from_sdk(
        err,
        format!("bucket {bucket} (region {region})"),
        region,
        operation,
    )
}

/// The bucket's region (GetBucketLocation); S3 answers requests for a bucket only there.
/// With `expected_owner` (an account id) S3 refuses the request if another account owns the
/// bucket: a bucket deleted and re-created by someone else under the same name is not read.
pub async fn bucket_region(
    account: &AccountConfig,
    home_region: &str,
    bucket: &str,
    expected_owner: Option<&str>,
) -> Result<String, CallError> {
    let out = account
        .s3(home_region)
        .get_bucket_location()
        .bucket(bucket)
        .set_expected_bucket_owner(expected_owner.map(str::to_owned))
        .send()
        .await
        .map_err(|e| describe(&e, bucket, home_region, "s3:GetBucketLocation"))?;
    Ok(match out.location_constraint().map(|c| c.as_str()) {
        None | Some("") => "us-east-1".to_owned(),
        Some("EU") => "eu-west-1".to_owned(),
        Some(region) => region.to_owned(),
    })
}

/// Lists the objects under `location` that `filter` keeps, using narrower prefixes when
/// accounts are named (and the location points at or above `AWSLogs/`).
pub async fn list_log_objects(
    account: &AccountConfig,
    region: &str,
    location: &S3Location,
    filter: &KeyFilter,
) -> Result<Vec<LogObject>, CallError> {
    let client = account.s3(region);
    let base = location.prefix.as_str();
    let above_awslogs = !base.contains("AWSLogs");
    let prefixes = if above_awslogs {
        let awslogs = if base.is_empty() || base.ends_with('/') {
            format!("{base}AWSLogs/")
        } else {
            format!("{base}/AWSLogs/")
        };
        let orgs = if filter.accounts.is_empty() {
            Vec::new()
        } else {
            list_folders(&client, &location.bucket, region, &awslogs)
                .await?
                .into_iter()
                .filter_map(|p| {
                    let name = p.strip_prefix(&awslogs)?.trim_end_matches('/');
                    name.starts_with("o-").then(|| name.to_owned())
                })
                .collect()
        };
        filter.prefixes(base, &orgs)
    } else {
        None
    };
    let prefixes = prefixes.unwrap_or_else(|| vec![base.to_owned()]);
    let mut objects = Vec::new();
    for prefix in prefixes {
        let mut pages = client
            .list_objects_v2()
            .bucket(&location.bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| describe(&e, &location.bucket, region, "s3:ListBucket"))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                if key.ends_with('/') || !filter.keeps(key) {
                    continue;
                }
                objects.push(LogObject {
                    key: key.to_owned(),
                    size: u64::try_from(object.size().unwrap_or(0)).unwrap_or(0),
                });
            }
        }
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    objects.dedup_by(|a, b| a.key == b.key);
    Ok(objects)
}

async fn list_folders(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    region: &str,
    prefix: &str,
) -> Result<Vec<String>, CallError> {
    let mut folders = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .delimiter("/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| describe(&e, bucket, region, "s3:ListBucket"))?;
        folders.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned)),
        );
    }
    Ok(folders)
}

/// Downloads one object whole; refuses objects larger than `max_bytes`, and (with
/// `expected_owner`) objects of a bucket another account owns.
pub async fn fetch(
    account: &AccountConfig,
    region: &str,
    bucket: &str,
    key: &str,
    max_bytes: u64,
    expected_owner: Option<&str>,
) -> Result<Vec<u8>, CallError> {
    let subject = || format!("bucket {bucket} (region {region})");
    let out = account
        .s3(region)
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_expected_bucket_owner(expected_owner.map(str::to_owned))
        .send()
        .await
        .map_err(|e| describe(&e, bucket, region, "s3:GetObject"))?;
    let length = u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0);
    if length > max_bytes {
        return Err(CallError::local(
            subject(),
            format!("{length} bytes, over the limit of {max_bytes}; skipped"),
        ));
    }
    out.body
        .collect()
        .await
        .map(|data| data.into_bytes().to_vec())
        .map_err(|e| CallError::local(subject(), format!("reading the body failed: {e}")))
}

/// Downloads one object into `path`, chunk by chunk (for objects too large to hold).
pub async fn fetch_to_file(
    account: &AccountConfig,
    region: &str,
    bucket: &str,
    key: &str,
    path: &std::path::Path,
) -> Result<(), CallError> {
    use std::io::Write;
    let subject = || format!("bucket {bucket} (region {region})");
    let out = account
        .s3(region)
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| describe(&e, bucket, region, "s3:GetObject"))?;
    let mut file = std::fs::File::create(path).map_err(|e| {
        CallError::local(subject(), format!("cannot create {}: {e}", path.display()))
    })?;
    let mut body = out.body;
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| CallError::local(subject(), format!("reading the body failed: {e}")))?
    {
        file.write_all(&chunk).map_err(|e| {
            CallError::local(subject(), format!("cannot write {}: {e}", path.display()))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        assert_eq!(
            S3Location::parse("s3://logs/AWSLogs/1/"),
            Some(S3Location {
                bucket: "logs".into(),
                prefix: "AWSLogs/1/".into()
            })
        );
        assert_eq!(
            S3Location::parse("s3://logs"),
            Some(S3Location {
                bucket: "logs".into(),
                prefix: String::new()
            })
        );
        assert_eq!(S3Location::parse("s3://"), None);
        assert_eq!(S3Location::parse("/tmp/x"), None);
    }
}
