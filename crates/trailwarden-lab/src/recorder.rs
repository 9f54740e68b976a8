//! CloudTrail emulation: every mutating call made through the lab's proxy becomes a
//! real-shaped CloudTrail record, sent (a) as an "AWS API Call via CloudTrail" event to that
//! region's default EventBridge bus in moto and (b) into the log bucket of every trail that is
//! logging and covers the region, as `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`
//! files written every few seconds. Stopping a trail really stops its logs.
//!
//! Read-only calls (Get/List/Describe) go to the log files only, as AWS does: EventBridge does
//! not receive them. Trails with log-file validation also get signed digest files
//! (`digest.rs`). Not emulated: data events, organization trails.

use crate::{HOME_REGION, operator_options};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use trailwarden_aws::{AccountConfig, ClientFactory};
use trailwarden_model::clock::rfc3339;
use trailwarden_moto::{Exchange, FaultProxy};

/// The account moto gives keys it does not know (the lab operator's static keys).
const DEFAULT_ACCOUNT: &str = "123456789012";

/// Who made a call, as CloudTrail's `userIdentity` says it.
#[derive(Debug, Clone)]
struct Identity {
    account: String,
    user_identity: Value,
}

type Buffers = Arc<Mutex<BTreeMap<(String, String), Vec<Value>>>>;

/// Starts recording the proxy's traffic; log files are written every `interval`.
pub fn start(proxy: &FaultProxy, moto_endpoint: &str, interval: Duration) {
    let (tx, rx) = mpsc::unbounded_channel::<Exchange>();
    proxy.observe(Arc::new(move |exchange| {
        let _ = tx.send(exchange);
    }));
    let buffers: Buffers = Arc::default();
    let endpoint = moto_endpoint.to_owned();
    let clients = Arc::new(AccountClients::new(endpoint));
    tokio::spawn(record(rx, clients.clone(), buffers.clone()));
    // Digest files of the trails with log-file validation, every few log periods.
    let digests = crate::digest::Digests::new();
    tokio::spawn(crate::digest::run(
        digests.clone(),
        clients.clone(),
        crate::digest::period(interval),
    ));
    tokio::spawn(deliver(clients, buffers, interval, digests));
}

/// Clients acting in each account on CloudTrail's behalf, straight to moto.
pub(crate) struct AccountClients {
    endpoint: String,
    cache: tokio::sync::Mutex<HashMap<String, AccountConfig>>,
}

impl AccountClients {
    pub(crate) fn new(endpoint: String) -> Self {
        Self {
            endpoint,
            cache: tokio::sync::Mutex::default(),
        }
    }

    pub(crate) async fn get(&self, account: &str) -> AccountConfig {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.get(account) {
            return c.clone();
        }
        let c = ClientFactory::new(&operator_options(&self.endpoint))
            .await
            .assume_role(&format!(
                "arn:aws:iam::{account}:role/aws-service-role/cloudtrail.amazonaws.com/AWSServiceRoleForCloudTrail"
            ))
            .await;
        cache.insert(account.to_owned(), c.clone());
        c
    }
}

async fn record(
    mut rx: mpsc::UnboundedReceiver<Exchange>,
    clients: Arc<AccountClients>,
    buffers: Buffers,
) {
    let mut identities: HashMap<String, Identity> = HashMap::new();
    while let Some(x) = rx.recv().await {
        let req = &x.request;
        if req.service == "sts"
            && req.operation == "AssumeRole"
            && x.status == 200
            && let Some((key, identity)) = assumed_identity(&x)
        {
            identities.insert(key, identity);
        }
        let read_only = match classify(&x) {
            _ if req.service.is_empty() => continue,
            Kind::Data => continue,
            Kind::ReadOnly => true,
            Kind::Mutating => false,
        };
        let identity = identities
            .get(&req.access_key_id)
            .cloned()
            .unwrap_or_else(|| Identity {
                account: DEFAULT_ACCOUNT.into(),
                user_identity: json!({
                    "type": "IAMUser",
                    "principalId": "AIDALABOPERATOR00001",
                    "arn": format!("arn:aws:iam::{DEFAULT_ACCOUNT}:user/lab-operator"),
                    "accountId": DEFAULT_ACCOUNT,
                    "accessKeyId": req.access_key_id,
                    "userName": "lab-operator",
                }),
            });
        let mut record = cloudtrail_record(&x, &identity);
        record["readOnly"] = json!(read_only);
        let region = if req.region.is_empty() {
            HOME_REGION.to_owned()
        } else {
            req.region.clone()
        };
        let event_source = record["eventSource"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let account_clients = clients.get(&identity.account).await;
        // EventBridge gets no Get/List/Describe calls; the log files get everything.
        if read_only {
            buffers
                .lock()
                .expect("recorder buffers")
                .entry((identity.account.clone(), region))
                .or_default()
                .push(record);
            continue;
        }
        let entry = trailwarden_aws::sdk::eventbridge::types::PutEventsRequestEntry::builder()
            .source(format!(
                "aws.{}",
                event_source.trim_end_matches(".amazonaws.com")
            ))
            .detail_type("AWS API Call via CloudTrail")
            .detail(record.to_string())
            .build();
        let _ = account_clients
            .eventbridge(&region)
            .put_events()
            .entries(entry)
            .send()
            .await;
        buffers
            .lock()
            .expect("recorder buffers")
            .entry((identity.account.clone(), region))
            .or_default()
            .push(record);
    }
}

/// Every `interval`, each account × region's records go to the buckets of the trails that
/// log that region; records of a region no logging trail covers are lost, as in AWS.
async fn deliver(
    clients: Arc<AccountClients>,
    buffers: Buffers,
    interval: Duration,
    digests: Arc<crate::digest::Digests>,
) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        let batch: Vec<((String, String), Vec<Value>)> =
            std::mem::take(&mut *buffers.lock().expect("recorder buffers"))
                .into_iter()
                .collect();
        for ((account, region), records) in batch {
            let c = clients.get(&account).await;
            let Ok(trails) = c
                .cloudtrail(&region)
                .describe_trails()
                .include_shadow_trails(true)
                .send()
                .await
            else {
                continue;
            };
            for t in trails.trail_list() {
                let covers = t.is_multi_region_trail().unwrap_or(false)
                    || t.home_region() == Some(region.as_str());
                let (Some(arn), Some(bucket)) = (t.trail_arn(), t.s3_bucket_name()) else {
                    continue;
                };
                if !covers {
                    continue;
                }
                let home = t.home_region().unwrap_or(&region).to_owned();
                let Ok(status) = c
                    .cloudtrail(&home)
                    .get_trail_status()
                    .name(t.name().unwrap_or(arn))
                    .send()
                    .await
                else {
                    continue;
                };
                // A trail stopped since the last delivery still delivers what it recorded
                // before, the StopLogging call itself included, as AWS does.
                let delivered: Vec<&Value> = if status.is_logging().unwrap_or(false) {
                    records.iter().collect()
                } else {
                    let (Some(started), Some(stopped)) =
                        (status.start_logging_time(), status.stop_logging_time())
                    else {
                        continue;
                    };
                    let window = started.secs()..=stopped.secs();
                    records
                        .iter()
                        .filter(|r| {
                            r["eventTime"]
                                .as_str()
                                .and_then(trailwarden_model::clock::parse_rfc3339)
                                .and_then(|t| i64::try_from(t).ok())
                                .is_some_and(|t| window.contains(&t))
                        })
                        .collect()
                };
                if delivered.is_empty() {
                    continue;
                }
                let key = log_file_key(t.s3_key_prefix(), &account, &region);
                let text = json!({"Records": delivered}).to_string();
                let body = gzip(&text);
                let put = c
                    .s3(HOME_REGION)
                    .put_object()
                    .bucket(bucket)
                    .key(&key)
                    .body(trailwarden_aws::sdk::s3::primitives::ByteStream::from(body))
                    .send()
                    .await;
                if put.is_ok() {
                    digests.delivered(t, &account, &region, &key, &text, &delivered);
                }
            }
        }
        digests.pass_done();
    }
}

fn log_file_key(prefix: Option<&str>, account: &str, region: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let stamp = rfc3339(now); // 2026-11-28T16:23:20Z
    let (date, time) = stamp.split_once('T').unwrap_or((&stamp, ""));
    let day = date.replace('-', "/");
    let compact = format!(
        "{}T{}Z",
        date.replace('-', ""),
        &time.replace(':', "")[..4.min(time.len())]
    );
    let file = format!(
        "{account}_CloudTrail_{region}_{compact}_{}.json.gz",
        unique_id()
    );
    let base = format!("AWSLogs/{account}/CloudTrail/{region}/{day}/{file}");
    match prefix.filter(|p| !p.is_empty()) {
        Some(p) => format!("{}/{base}", p.trim_end_matches('/')),
        None => base,
    }
}

fn gzip(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = e.write_all(text.as_bytes());
    e.finish().unwrap_or_default()
}

/// A 16-hex-digit id unique within the process (event ids, file names).
fn unique_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{:016x}",
        t.rotate_left(17) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id())
    )
}

fn uuid() -> String {
    let a = unique_id();
    let b = unique_id();
    format!(
        "{}-{}-4{}-a{}-{}{}",
        &a[..8],
        &a[8..12],
        &a[13..16],
        &b[1..4],
        &b[4..16],
        ""
    )
}

/// Reads or writes? Reads are Get*/List*/Describe*/Head*/Lookup* and GET/HEAD on REST APIs.
/// Calls that are data events, or read-only though their names do not say so: CloudTrail
/// does not record them as (write) management events.
const DATA_EVENTS: &[&str] = &[
    "ListObjects",
    "ListObjectsV2",
    "ListObjectVersions",
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "PutEvents",
    "PutLogEvents",
    "Encrypt",
    "Decrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncrypt",
    "Sign",
    "Verify",
];

/// What kind of CloudTrail event a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A management event that changes something.
    Mutating,
    /// A management event that only reads (`readOnly: true`).
    ReadOnly,
    /// A data event (objects, messages, log events): a management trail does not record it.
    Data,
}

fn classify(x: &Exchange) -> Kind {
    let op = x.request.operation.as_str();
    if x.request.service == "s3" && x.request.path.trim_matches('/').contains('/') {
        return Kind::Data;
    }
    if DATA_EVENTS.contains(&op) {
        return Kind::Data;
    }
    let reads = [
        "Get", "List", "Describe", "Head", "Lookup", "Test", "Validate",
    ];
    if x.method == "GET" || x.method == "HEAD" || reads.iter().any(|p| op.starts_with(p)) {
        return Kind::ReadOnly;
    }
    Kind::Mutating
}

/// An AssumeRole answer: the new access key and who it is.
fn assumed_identity(x: &Exchange) -> Option<(String, Identity)> {
    let body = std::str::from_utf8(&x.response).ok()?;
    let key = xml_text(body, "AccessKeyId")?;
    let arn = xml_text(body, "Arn")?;
    let role_arn = form_field(&x.request.body, "RoleArn")?;
    let account = role_arn.split(':').nth(4)?.to_owned();
    let principal = xml_text(body, "AssumedRoleId").unwrap_or_default();
    Some((
        key.clone(),
        Identity {
            account: account.clone(),
            user_identity: json!({
                "type": "AssumedRole",
                "principalId": principal,
                "arn": arn,
                "accountId": account,
                "accessKeyId": key,
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": principal.split(':').next().unwrap_or_default(),
                        "arn": role_arn,
                        "accountId": account,
                        "userName": role_arn.rsplit('/').next().unwrap_or_default(),
                    },
                    "attributes": {"creationDate": rfc3339(now()), "mfaAuthenticated": "false"}
                }
            }),
        },
    ))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn xml_text(body: &str, tag: &str) -> Option<String> {
    let start = body.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].to_owned())
}

fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
}

/// The record AWS would write for this call.
fn cloudtrail_record(x: &Exchange, identity: &Identity) -> Value {
    let req = &x.request;
    let source = format!(
        "{}.amazonaws.com",
        match req.service.as_str() {
            "events" => "events",
            other => other,
        }
    );
    let event_name = event_name(x);
    let request_parameters = request_parameters(x);
    let response: Option<Value> = serde_json::from_slice(&x.response).ok();
    let mut record = json!({
        "eventVersion": "1.09",
        "userIdentity": identity.user_identity,
        "eventTime": rfc3339(now()),
        "eventSource": source,
        "eventName": event_name,
        "awsRegion": if req.region.is_empty() { HOME_REGION } else { req.region.as_str() },
        "sourceIPAddress": "127.0.0.1",
        "userAgent": x.user_agent.clone().unwrap_or_default(),
        "requestParameters": request_parameters,
        "responseElements": Value::Null,
        "requestID": uuid(),
        "eventID": uuid(),
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": identity.account,
        "eventCategory": "Management",
    });
    if x.status >= 400 {
        let text = String::from_utf8_lossy(&x.response);
        let code = response
            .as_ref()
            .and_then(|r| {
                r["__type"]
                    .as_str()
                    .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
            })
            .or_else(|| xml_text(&text, "Code"))
            .unwrap_or_else(|| format!("HTTP{}", x.status));
        let message = response
            .as_ref()
            .and_then(|r| {
                r["message"]
                    .as_str()
                    .or(r["Message"].as_str())
                    .map(str::to_owned)
            })
            .or_else(|| xml_text(&text, "Message"))
            .unwrap_or_default();
        record["errorCode"] = json!(code);
        record["errorMessage"] = json!(message);
    } else if let Some(r) = response.filter(|r| r.as_object().is_some_and(|o| !o.is_empty())) {
        record["responseElements"] = camel(r);
    }
    record
}

fn event_name(x: &Exchange) -> String {
    let op = &x.request.operation;
    if !op.contains(' ') {
        // CloudTrail keeps S3's older names for these calls.
        return match op.as_str() {
            "PutBucketLifecycleConfiguration" => "PutBucketLifecycle",
            "PutBucketNotificationConfiguration" => "PutBucketNotification",
            "PutPublicAccessBlock" => "PutBucketPublicAccessBlock",
            other => other,
        }
        .to_owned();
    }
    if x.request.service != "s3" {
        return op.clone();
    }
    // REST calls the proxy could not name: S3 bucket subresources.
    let sub = x
        .query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .next()
        .unwrap_or("")
        .split('=')
        .next()
        .unwrap_or("");
    match (x.method.as_str(), sub) {
        ("PUT", "") => "CreateBucket".into(),
        ("DELETE", "") => "DeleteBucket".into(),
        ("PUT", s) => format!("PutBucket{}", capitalise(s)),
        ("DELETE", s) => format!("DeleteBucket{}", capitalise(s)),
        (m, s) => format!("{m}{}", capitalise(s)),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn request_parameters(x: &Exchange) -> Value {
    let req = &x.request;
    if req.service == "s3" {
        return s3_request_parameters(x);
    }
    if let Ok(v) = serde_json::from_str::<Value>(&req.body) {
        return camel(v);
    }
    if req.body.contains('=') && !req.body.trim_start().starts_with('<') {
        let mut map = Map::new();
        for kv in req.body.split('&') {
            if let Some((k, v)) = kv.split_once('=')
                && k != "Action"
                && k != "Version"
            {
                map.insert(lower_first(k), json!(v));
            }
        }
        return Value::Object(map);
    }
    Value::Null
}

/// S3 as CloudTrail writes it: the bucket, the host, the subresource, and the request body —
/// a bucket policy as the JSON it is, an XML document as JSON with S3's own element names
/// (`LifecycleConfiguration.Rule.Expiration.Days`), repeated elements as arrays.
fn s3_request_parameters(x: &Exchange) -> Value {
    let req = &x.request;
    let path = req.path.trim_matches('/');
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let mut map = Map::new();
    map.insert("bucketName".into(), json!(bucket));
    map.insert("Host".into(), json!(format!("{bucket}.s3.amazonaws.com")));
    if !key.is_empty() {
        map.insert("key".into(), json!(key));
    }
    if let Some(sub) = x.query.as_deref().filter(|q| !q.is_empty()) {
        map.insert(sub.split('=').next().unwrap_or(sub).to_owned(), json!(""));
    }
    let body = req.body.trim();
    if body.starts_with('{')
        && let Ok(policy) = serde_json::from_str::<Value>(body)
    {
        map.insert("bucketPolicy".into(), policy);
    } else if body.starts_with('<')
        && let Some((name, value)) = xml_to_json(body)
    {
        map.insert(name, value);
    }
    Value::Object(map)
}

/// A small XML reader for S3 request bodies (elements and text; attributes other than
/// `xmlns` and processing instructions are dropped). Numbers and booleans stay strings
/// except `Days`-like counts, which CloudTrail writes as numbers.
fn xml_to_json(text: &str) -> Option<(String, Value)> {
    let mut rest = text.trim();
    if rest.starts_with("<?") {
        rest = rest[rest.find("?>")? + 2..].trim_start();
    }
    let (name, value, _) = xml_element(rest)?;
    Some((name, value))
}

/// Parses one element at the start of `s`; returns its name, value and what follows.
fn xml_element(s: &str) -> Option<(String, Value, &str)> {
    let s = s.trim_start().strip_prefix('<')?;
    let close = s.find('>')?;
    let head = &s[..close];
    let self_closing = head.ends_with('/');
    let head = head.trim_end_matches('/');
    let name = head.split_whitespace().next()?.to_owned();
    let mut map = Map::new();
    if let Some(ns) = head
        .split("xmlns=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
    {
        map.insert("xmlns".into(), json!(ns));
    }
    let mut rest = &s[close + 1..];
    if self_closing {
        return Some((name, Value::Object(map), rest));
    }
    let end_tag = format!("</{name}>");
    if !rest.trim_start().starts_with('<') || rest.trim_start().starts_with("</") {
        let end = rest.find(&end_tag)?;
        let text = rest[..end].trim();
        let value = if map.is_empty() {
            match text.parse::<i64>() {
                Ok(n) if name.ends_with("Days") || name == "Days" => json!(n),
                _ => json!(text),
            }
        } else {
            Value::Object(map)
        };
        return Some((name, value, &rest[end + end_tag.len()..]));
    }
    loop {
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix(end_tag.as_str()) {
            return Some((name, Value::Object(map), after));
        }
        let (child, value, after) = xml_element(trimmed)?;
        match map.get_mut(&child) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = json!([first, value]);
            }
            None => {
                map.insert(child, value);
            }
        }
        rest = after;
    }
}

fn lower_first(k: &str) -> String {
    let mut c = k.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

/// CloudTrail writes request and response members in lowerCamelCase.
fn camel(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (lower_first(&k), camel(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(camel).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_lower_camel_case_all_the_way_down() {
        assert_eq!(
            camel(json!({"Name": "t", "EventSelectors": [{"ReadWriteType": "All"}]})),
            json!({"name": "t", "eventSelectors": [{"readWriteType": "All"}]})
        );
    }

    #[test]
    fn s3_xml_bodies_become_cloudtrail_json() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ID>a</ID><Status>Enabled</Status><Filter><Prefix></Prefix></Filter><Expiration><Days>1</Days></Expiration></Rule><Rule><ID>b</ID><Status>Enabled</Status><Filter/></Rule></LifecycleConfiguration>"#;
        let (name, value) = xml_to_json(body).unwrap();
        assert_eq!(name, "LifecycleConfiguration");
        assert_eq!(value["xmlns"], "http://s3.amazonaws.com/doc/2006-03-01/");
        assert_eq!(value["Rule"][0]["Expiration"]["Days"], 1);
        assert_eq!(value["Rule"][0]["Filter"]["Prefix"], "");
        assert_eq!(value["Rule"][1]["ID"], "b");
        let (_, v) = xml_to_json(
            "<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>",
        )
        .unwrap();
        assert_eq!(v["Status"], "Suspended");
        assert!(xml_to_json("<Broken><A>1</B>").is_none());
    }

    #[test]
    fn log_file_keys_follow_the_awslogs_layout() {
        let key = log_file_key(Some("team/"), "111111111111", "eu-west-1");
        assert!(
            key.starts_with("team/AWSLogs/111111111111/CloudTrail/eu-west-1/20"),
            "{key}"
        );
        assert!(
            key.contains("/111111111111_CloudTrail_eu-west-1_20"),
            "{key}"
        );
        assert!(key.ends_with(".json.gz"), "{key}");
        assert!(log_file_key(None, "1", "r").starts_with("AWSLogs/1/CloudTrail/r/"));
    }

    #[test]
    fn ids_are_unique() {
        let ids: std::collections::BTreeSet<String> = (0..1000).map(|_| uuid()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
