//! The lab's CloudTrail digest files, checked as `aws cloudtrail validate-logs` checks AWS's,
//! with nothing but what the bucket holds and the public key the lab publishes: each
//! digest's signature (object metadata) over CloudTrail's data-signing string, each listed
//! log file's SHA-256, the chain, every delivered log file in exactly one digest; a final
//! digest when the trail stops, none while stopped, a starting digest when it starts again;
//! and a changed byte is caught.

use base64ct::{Base64, Encoding as _};
use rsa::pkcs8::DecodePublicKey as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use trailwarden_aws::AccountConfig;
use trailwarden_aws::sdk::cloudtrail::types::Tag;
use trailwarden_aws::sdk::s3::primitives::ByteStream;
use trailwarden_lab::{HOME_REGION, Lab, LabSpec};
use trailwarden_model::clock::rfc3339;

const ACCOUNT: &str = "100000000001";
const TRAIL: &str = "management-events";
/// A region only the multi-region trail covers.
const OTHER_REGION: &str = "us-west-2";

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

// A test reading back the files the lab wrote: no cap needed.
#[allow(clippy::disallowed_types)]
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gzip");
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An object as stored: its raw (gzip) bytes and user metadata.
#[derive(Debug, Clone)]
struct Object {
    raw: Vec<u8>,
    metadata: HashMap<String, String>,
}

/// The trail's bucket, read as a verifier reads it (digests and log files never change once
/// written, so they are read once).
struct Bucket {
    c: AccountConfig,
    name: String,
    cache: HashMap<String, Object>,
}

impl Bucket {
    async fn keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut pages = self
            .c
            .s3(HOME_REGION)
            .list_objects_v2()
            .bucket(&self.name)
            .prefix(format!("AWSLogs/{ACCOUNT}/"))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            out.extend(
                page.unwrap()
                    .contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        out
    }

    async fn get(&mut self, key: &str) -> Option<Object> {
        if let Some(o) = self.cache.get(key) {
            return Some(o.clone());
        }
        let got = self
            .c
            .s3(HOME_REGION)
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .ok()?;
        let metadata = got.metadata().cloned().unwrap_or_default();
        let raw = got.body.collect().await.unwrap().into_bytes().to_vec();
        let o = Object { raw, metadata };
        self.cache.insert(key.to_owned(), o.clone());
        Some(o)
    }

    async fn put(&mut self, key: &str, raw: Vec<u8>, metadata: &HashMap<String, String>) {
        self.c
            .s3(HOME_REGION)
            .put_object()
            .bucket(&self.name)
            .key(key)
            .set_metadata(Some(metadata.clone()))
            .body(ByteStream::from(raw))
            .send()
            .await
            .unwrap();
        self.cache.remove(key);
    }
}

#[derive(Debug, Clone)]
struct DigestFile {
    key: String,
    doc: Value,
    sha256: String,
    signature: String,
}

impl DigestFile {
    fn end(&self) -> &str {
        self.doc["digestEndTime"].as_str().unwrap_or_default()
    }
    fn starting(&self) -> bool {
        self.doc["previousDigestSignature"].is_null()
    }
    fn files(&self) -> Vec<&str> {
        self.doc["logFiles"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f["s3Object"].as_str()).collect())
            .unwrap_or_default()
    }
}

/// What a clean validation found.
#[derive(Debug)]
struct Checked {
    /// Per region: its digests, oldest first.
    chains: BTreeMap<String, Vec<DigestFile>>,
    log_files: BTreeSet<String>,
    /// Log file → the digest listing it.
    listed: BTreeMap<String, String>,
}

impl Checked {
    fn unlisted(&self) -> Vec<&String> {
        self.log_files
            .iter()
            .filter(|k| !self.listed.contains_key(*k))
            .collect()
    }
    fn chain(&self, region: &str) -> &[DigestFile] {
        self.chains.get(region).map_or(&[], Vec::as_slice)
    }
    fn digest_count(&self) -> usize {
        self.chains.values().map(Vec::len).sum()
    }
}

/// The published key, as a verifier gets it.
struct PublishedKey {
    key: rsa::PublicKey,
    fingerprint: String,
}

/// Validates every digest and every log file they list; `Err` lists every failure, in
/// `validate-logs`' words.
async fn validate(bucket: &mut Bucket, key: &PublishedKey) -> Result<Checked, String> {
    let keys = bucket.keys().await;
    let mut errors = Vec::new();
    let mut chains: BTreeMap<String, Vec<DigestFile>> = BTreeMap::new();
    let mut listed: BTreeMap<String, String> = BTreeMap::new();
    let log_files: BTreeSet<String> = keys
        .iter()
        .filter(|k| k.contains("/CloudTrail/"))
        .cloned()
        .collect();
    for dkey in keys.iter().filter(|k| k.contains("/CloudTrail-Digest/")) {
        let Some(object) = bucket.get(dkey).await else {
            errors.push(format!("{dkey}: not found"));
            continue;
        };
        let bytes = gunzip(&object.raw);
        let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else {
            errors.push(format!("{dkey}: invalid format"));
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        if !text.contains(r#"AWSLogs\/"#) || text.ends_with('\n') {
            errors.push(format!("{dkey}: not written as CloudTrail writes digests"));
        }
        if doc["digestS3Bucket"] != bucket.name.as_str() || doc["digestS3Object"] != dkey.as_str() {
            errors.push(format!("{dkey}: has been moved from its original location"));
        }
        if doc["awsAccountId"] != ACCOUNT {
            errors.push(format!("{dkey}: awsAccountId {}", doc["awsAccountId"]));
        }
        if doc["digestPublicKeyFingerprint"] != key.fingerprint.as_str() {
            errors.push(format!(
                "{dkey}: public key not found for fingerprint {}",
                doc["digestPublicKeyFingerprint"]
            ));
        }
        if doc["digestSignatureAlgorithm"] != "SHA256withRSA"
            || object
                .metadata
                .get("signature-algorithm")
                .map(String::as_str)
                != Some("SHA256withRSA")
        {
            errors.push(format!("{dkey}: signature algorithm is not SHA256withRSA"));
        }
        let sha256 = sha256_hex(&bytes);
        let signature = object
            .metadata
            .get("signature")
            .cloned()
            .unwrap_or_default();
        let end = doc["digestEndTime"].as_str().unwrap_or_default();
        let to_sign = format!(
            "{end}\n{}/{}\n{sha256}\n{}",
            doc["digestS3Bucket"].as_str().unwrap_or_default(),
            doc["digestS3Object"].as_str().unwrap_or_default(),
            doc["previousDigestSignature"].as_str().unwrap_or("null")
        );
        let verified = unhex(&signature).is_some_and(|sig| {
            key.key
                .pkcs1v15_verify::<Sha256>(to_sign.as_bytes(), &sig)
                .is_ok()
        });
        if !verified {
            errors.push(format!("{dkey}: signature verification failed"));
        }
        // The name: ..._CloudTrail-Digest_<region>_<trail>_<home region>_<end>.json.gz
        let region = dkey.split('/').nth(3).unwrap_or_default().to_owned();
        let day = end.get(..10).unwrap_or_default().replace('-', "/");
        let stamp = end.replace(['-', ':'], "");
        let expected = format!(
            "AWSLogs/{ACCOUNT}/CloudTrail-Digest/{region}/{day}/{ACCOUNT}_CloudTrail-Digest_{region}_{TRAIL}_{HOME_REGION}_{stamp}.json.gz"
        );
        if *dkey != expected {
            errors.push(format!("{dkey}: not named {expected}"));
        }
        // The log files it lists.
        let mut newest: Option<String> = None;
        let mut oldest: Option<String> = None;
        for f in doc["logFiles"].as_array().cloned().unwrap_or_default() {
            let lkey = f["s3Object"].as_str().unwrap_or_default().to_owned();
            if f["s3Bucket"] != bucket.name.as_str() || f["hashAlgorithm"] != "SHA-256" {
                errors.push(format!("{dkey}: {lkey}: bucket or hash algorithm"));
            }
            if !lkey.starts_with(&format!("AWSLogs/{ACCOUNT}/CloudTrail/{region}/")) {
                errors.push(format!("{dkey}: lists {lkey} of another region"));
            }
            if let Some(other) = listed.insert(lkey.clone(), dkey.clone()) {
                errors.push(format!("{lkey}: listed by {other} and {dkey}"));
            }
            let (f_newest, f_oldest) = (
                f["newestEventTime"].as_str().map(str::to_owned),
                f["oldestEventTime"].as_str().map(str::to_owned),
            );
            newest = newest.max(f_newest);
            oldest = match (oldest, f_oldest) {
                (Some(o), Some(m)) => Some(o.min(m)),
                (o, m) => o.or(m),
            };
            let Some(log) = bucket.get(&lkey).await else {
                errors.push(format!("{lkey}: not found"));
                continue;
            };
            let content = gunzip(&log.raw);
            if f["hashValue"] != sha256_hex(&content).as_str() {
                errors.push(format!("{lkey}: hash value doesn't match"));
                continue;
            }
            let records: Value = serde_json::from_slice(&content).unwrap_or_default();
            let times: Vec<String> = records["Records"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r["eventTime"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let (max, min) = (times.iter().max(), times.iter().min());
            if f["newestEventTime"].as_str() != max.map(String::as_str)
                || f["oldestEventTime"].as_str() != min.map(String::as_str)
            {
                errors.push(format!("{dkey}: {lkey}: event times"));
            }
        }
        if doc["newestEventTime"].as_str() != newest.as_deref()
            || doc["oldestEventTime"].as_str() != oldest.as_deref()
        {
            errors.push(format!("{dkey}: newest/oldest event time"));
        }
        chains.entry(region).or_default().push(DigestFile {
            key: dkey.clone(),
            doc,
            sha256,
            signature,
        });
    }
    // Each chain: every digest points at the one before it, or starts a new chain.
    for (region, chain) in &mut chains {
        chain.sort_by(|a, b| a.end().cmp(b.end()));
        let previous_fields = [
            "previousDigestS3Bucket",
            "previousDigestS3Object",
            "previousDigestHashValue",
            "previousDigestHashAlgorithm",
            "previousDigestSignature",
        ];
        for (i, d) in chain.iter().enumerate() {
            let nulls = previous_fields
                .iter()
                .filter(|f| d.doc[**f].is_null())
                .count();
            if nulls != 0 && nulls != previous_fields.len() {
                errors.push(format!("{}: some previousDigest fields are null", d.key));
            }
            if d.starting() {
                continue;
            }
            let Some(p) = i.checked_sub(1).map(|j| &chain[j]) else {
                errors.push(format!(
                    "{}: the first digest of {region} is not a starting digest",
                    d.key
                ));
                continue;
            };
            if d.doc["previousDigestS3Bucket"] != bucket.name.as_str()
                || d.doc["previousDigestS3Object"] != p.key.as_str()
                || d.doc["previousDigestHashValue"] != p.sha256.as_str()
                || d.doc["previousDigestHashAlgorithm"] != "SHA-256"
                || d.doc["previousDigestSignature"] != p.signature.as_str()
            {
                errors.push(format!("{}: does not chain to {}", d.key, p.key));
            }
            if d.doc["digestStartTime"].as_str() != Some(p.end()) {
                errors.push(format!("{}: does not start where {} ends", d.key, p.key));
            }
        }
    }
    if errors.is_empty() {
        Ok(Checked {
            chains,
            log_files,
            listed,
        })
    } else {
        Err(errors.join("\n"))
    }
}

/// Validates until `done` (every check passing each time), or panics after 30 s.
async fn validate_until(
    bucket: &mut Bucket,
    key: &PublishedKey,
    what: &str,
    mut done: impl FnMut(&Checked) -> bool,
) -> Checked {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let checked = validate(bucket, key)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if done(&checked) {
            return checked;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {checked:#?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_sign_and_chain_every_log_file_and_follow_the_trail_logging() {
    let started = Instant::now();
    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        log_interval: Duration::from_millis(300),
    })
    .await
    .expect("lab");
    let start_time = started.elapsed();
    eprintln!("lab started in {start_time:?}");
    assert!(
        start_time < Duration::from_secs(10),
        "lab took {start_time:?}"
    );

    // The published key, as ListPublicKeys would give it.
    let published = &lab.description.digest_public_key;
    let spki = Base64::decode_vec(&published.spki_der_base64).unwrap();
    let pkcs1 = Base64::decode_vec(&published.pkcs1_der_base64).unwrap();
    let key = PublishedKey {
        key: rsa::PublicKey::from_public_key_der(&spki).unwrap(),
        fingerprint: published.fingerprint.clone(),
    };
    let from_pem = rsa::PublicKey::from_public_key_pem(&published.pem).unwrap();
    assert_eq!(from_pem, key.key);
    // CloudTrail's fingerprint: MD5 of the DER PKCS #1 key.
    use md5::Digest as _;
    let md5: String = md5::Md5::digest(&pkcs1)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(md5, published.fingerprint);
    assert_eq!(spki.len(), 294, "a 2048-bit RSA SubjectPublicKeyInfo");

    let account = &lab.description.accounts[0];
    let trail = account.trails.iter().find(|t| t.name == TRAIL).unwrap();
    let c = lab.attacker(ACCOUNT).await;
    let mut bucket = Bucket {
        c: c.clone(),
        name: trail.bucket.clone(),
        cache: HashMap::new(),
    };

    // Harmless calls: in the home region, and a read in a region only the multi-region trail
    // covers.
    c.cloudtrail(HOME_REGION)
        .add_tags()
        .resource_id(&trail.arn)
        .tags_list(Tag::builder().key("team").value("blue").build().unwrap())
        .send()
        .await
        .unwrap();
    lab.attack("shorten-retention", ACCOUNT).await.unwrap();
    c.cloudtrail(OTHER_REGION)
        .describe_trails()
        .send()
        .await
        .unwrap();
    validate_until(&mut bucket, &key, "digests of every log file", |c| {
        let regions: BTreeSet<&str> = c
            .listed
            .keys()
            .filter_map(|k| k.split('/').nth(3))
            .collect();
        c.unlisted().is_empty() && regions.contains(HOME_REGION) && regions.contains(OTHER_REGION)
    })
    .await;
    // More calls, for a digest further down the chain.
    c.cloudtrail(HOME_REGION)
        .add_tags()
        .resource_id(&trail.arn)
        .tags_list(Tag::builder().key("team").value("green").build().unwrap())
        .send()
        .await
        .unwrap();
    let checked = validate_until(&mut bucket, &key, "a chained digest with log files", |c| {
        c.unlisted().is_empty()
            && c.chain(HOME_REGION)
                .iter()
                .any(|d| !d.starting() && !d.files().is_empty())
            && c.chain(OTHER_REGION).len() >= 2
    })
    .await;
    for region in [HOME_REGION, OTHER_REGION] {
        let chain = checked.chain(region);
        assert!(chain[0].starting(), "{:#?}", chain[0].doc);
        assert!(chain[1..].iter().all(|d| !d.starting()), "{chain:#?}");
    }
    let example = checked
        .chain(HOME_REGION)
        .iter()
        .find(|d| !d.starting() && !d.files().is_empty())
        .expect("a chained digest with log files");
    eprintln!(
        "example digest {}\nx-amz-meta-signature: {}\n{}",
        example.key,
        example.signature,
        String::from_utf8(gunzip(&bucket.get(&example.key).await.unwrap().raw)).unwrap()
    );
    // Periods without log files still get their digest while logging.
    let empty = checked
        .chains
        .values()
        .flatten()
        .find(|d| d.files().is_empty())
        .expect("a digest of a period without log files");
    assert!(empty.doc["newestEventTime"].is_null() && empty.doc["oldestEventTime"].is_null());
    assert_eq!(empty.doc["logFiles"], serde_json::json!([]));

    // StopLogging: one final digest per chain, with everything delivered up to the stop (the
    // StopLogging record included), then nothing.
    let stopped_at = now();
    lab.attack("stop-logging", ACCOUNT).await.unwrap();
    let mut quiet_since = Instant::now();
    let mut count = 0;
    let checked = validate_until(&mut bucket, &key, "the final digests", |c| {
        if c.digest_count() != count {
            count = c.digest_count();
            quiet_since = Instant::now();
        }
        // No digest for four periods: the chains have ended.
        c.unlisted().is_empty() && quiet_since.elapsed() > Duration::from_secs(4)
    })
    .await;
    let stop_file = checked
        .log_files
        .iter()
        .find(|k| {
            bucket.cache.get(*k).is_some_and(|o| {
                String::from_utf8_lossy(&gunzip(&o.raw)).contains(r#""eventName":"StopLogging""#)
            })
        })
        .expect("the StopLogging record is delivered")
        .clone();
    let home = checked.chain(HOME_REGION);
    let last = home.last().unwrap();
    assert!(
        last.files().contains(&stop_file.as_str()),
        "the final digest lists the StopLogging log file: {:#?}",
        last.doc
    );
    for region in [HOME_REGION, OTHER_REGION] {
        let final_digest = checked.chain(region).last().unwrap();
        assert!(
            final_digest.end() >= rfc3339(stopped_at).as_str(),
            "{region}: no final digest after the stop: {:#?}",
            final_digest.doc
        );
    }
    let final_ends: BTreeMap<String, String> = checked
        .chains
        .iter()
        .map(|(r, ch)| (r.clone(), ch.last().unwrap().end().to_owned()))
        .collect();
    // Still nothing while stopped.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = validate(&mut bucket, &key).await.unwrap();
    assert_eq!(
        still.digest_count(),
        checked.digest_count(),
        "digests while stopped"
    );

    // StartLogging: the next digest of each chain is a starting digest.
    let restarted_at = now();
    c.cloudtrail(HOME_REGION)
        .start_logging()
        .name(TRAIL)
        .send()
        .await
        .unwrap();
    c.cloudtrail(HOME_REGION)
        .add_tags()
        .resource_id(&trail.arn)
        .tags_list(Tag::builder().key("team").value("red").build().unwrap())
        .send()
        .await
        .unwrap();
    let checked = validate_until(&mut bucket, &key, "the starting digests", |c| {
        c.unlisted().is_empty()
            && [HOME_REGION, OTHER_REGION].iter().all(|r| {
                c.chain(r)
                    .iter()
                    .filter(|d| d.end() > final_ends[*r].as_str())
                    .count()
                    >= 2
            })
    })
    .await;
    for region in [HOME_REGION, OTHER_REGION] {
        let chain = checked.chain(region);
        let after: Vec<&DigestFile> = chain
            .iter()
            .filter(|d| d.end() > final_ends[region].as_str())
            .collect();
        let first = after[0];
        assert!(first.starting(), "{region}: {:#?}", first.doc);
        assert!(
            first.end() >= rfc3339(restarted_at).as_str()
                && first.doc["digestStartTime"].as_str().unwrap() >= rfc3339(restarted_at).as_str(),
            "{region}: a digest while stopped: {:#?}",
            first.doc
        );
        assert!(!after[1].starting(), "{region}: {:#?}", after[1].doc);
        // Exactly two starting digests in all: at first, and after the restart.
        assert_eq!(
            chain.iter().filter(|d| d.starting()).count(),
            2,
            "{chain:#?}"
        );
    }

    // A changed byte in a log file: its hash no longer matches.
    let original = bucket.get(&stop_file).await.unwrap();
    let mut content = gunzip(&original.raw);
    let at = String::from_utf8_lossy(&content)
        .find(r#""eventName":"StopLogging""#)
        .unwrap()
        + r#""eventName":""#.len();
    content[at] = b'T'; // StopLogging → TtopLogging
    bucket
        .put(&stop_file, gzip(&content), &original.metadata)
        .await;
    let errors = validate(&mut bucket, &key)
        .await
        .expect_err("a changed log file must fail validation");
    assert_eq!(
        errors,
        format!("{stop_file}: hash value doesn't match"),
        "{errors}"
    );
    bucket
        .put(&stop_file, original.raw.clone(), &original.metadata)
        .await;
    validate(&mut bucket, &key).await.unwrap();

    // A changed byte in a digest (its signature kept): the signature no longer verifies.
    let digest_key = final_digest_key(&checked, &final_ends);
    let original = bucket.get(&digest_key).await.unwrap();
    let mut content = gunzip(&original.raw);
    let at = String::from_utf8_lossy(&content)
        .find(r#""awsAccountId":"1"#)
        .unwrap()
        + r#""awsAccountId":""#.len();
    content[at] = b'9';
    bucket
        .put(&digest_key, gzip(&content), &original.metadata)
        .await;
    let errors = validate(&mut bucket, &key)
        .await
        .expect_err("a changed digest must fail validation");
    assert!(
        errors.contains(&format!("{digest_key}: signature verification failed")),
        "{errors}"
    );
}

/// The home region's final digest before the restart.
fn final_digest_key(checked: &Checked, final_ends: &BTreeMap<String, String>) -> String {
    checked
        .chain(HOME_REGION)
        .iter()
        .find(|d| d.end() == final_ends[HOME_REGION].as_str())
        .unwrap()
        .key
        .clone()
}
