//! CloudTrail digest files (log-file integrity validation), written as AWS writes them
//! (tamper catalog §8): for every trail with log-file validation on, every digest period and
//! for each region the trail covers, a signed
//! `AWSLogs/<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/<account>_CloudTrail-Digest_<region>_<trail>_<home region>_<end>.json.gz`
//! in the trail's bucket, listing the log files delivered for that trail and region since the
//! previous digest, chained to it by its signature and hash.
//!
//! * A digest is written each period while the trail logs, also with no log files. After the
//!   trail stops (or validation is turned off, or the trail is deleted) one final digest lists
//!   what was delivered up to then; then none until it logs again, when a *starting* digest
//!   (every `previousDigest*` null) begins a new chain.
//! * The body is compact JSON with `\/`-escaped slashes and no trailing newline, as CloudTrail
//!   writes it; hashes are hex SHA-256 of the **uncompressed** bytes.
//! * The signature is RSASSA-PKCS1-v1_5 with SHA-256 (`SHA256withRSA`) over
//!   `digestEndTime \n digestS3Bucket/digestS3Object \n hex(sha256(digest)) \n previousDigestSignature|null`,
//!   hex, in the object's user metadata `signature` (`x-amz-meta-signature`), with
//!   `signature-algorithm` (`x-amz-meta-signature-algorithm`).
//! * The key: one 2048-bit RSA key pair per process, generated when the first lab starts and
//!   never stored; the lab publishes its public half ([`DigestPublicKey`], like
//!   `ListPublicKeys`). AWS has one key per region; the lab signs every region with one key.
//!
//! Lab deviations: digest periods are whole seconds (`log_interval` × 3, rounded up), not an
//! hour, since digest names carry the end time to the second; a multi-region trail gets
//! digests for its home region and for each region it has delivered log files for, not for
//! every region of the partition (that would be thirty-odd signed uploads a period per trail).

use crate::recorder::AccountClients;
use crate::{HOME_REGION, REGIONAL_TRAIL_REGION};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use trailwarden_aws::AccountConfig;
use trailwarden_aws::sdk::cloudtrail::types::Trail;
use trailwarden_model::clock::rfc3339;

/// `digestSignatureAlgorithm`, and the `signature-algorithm` metadata.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";
/// `hashAlgorithm` and `previousDigestHashAlgorithm`.
pub const HASH_ALGORITHM: &str = "SHA-256";
/// The size of the lab's signing key, as AWS's.
pub const KEY_BITS: usize = 2048;

/// The public half of the lab's digest-signing key, as CloudTrail's `ListPublicKeys` gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestPublicKey {
    /// What digests carry as `digestPublicKeyFingerprint`: hex MD5 of the DER PKCS #1
    /// `RSAPublicKey` (`ListPublicKeys`' `Fingerprint`).
    pub fingerprint: String,
    /// The DER `SubjectPublicKeyInfo`, base64.
    pub spki_der_base64: String,
    /// The DER PKCS #1 `RSAPublicKey`, base64: `ListPublicKeys`' `Value`.
    pub pkcs1_der_base64: String,
    /// The `SubjectPublicKeyInfo` as PEM (`-----BEGIN PUBLIC KEY-----`).
    pub pem: String,
    /// `SHA256withRSA`.
    pub signature_algorithm: String,
    /// When the key was made (`ValidityStartTime`).
    pub validity_start_time: String,
}

struct LabKey {
    private: rsa::PrivateKey,
    public: DigestPublicKey,
}

impl LabKey {
    fn generate() -> Self {
        use base64ct::{Base64, Encoding};
        use rsa::pkcs1::EncodeRsaPublicKey;
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        let private = rsa::PrivateKey::new(&mut getrandom::SysRng, KEY_BITS)
            .expect("generating the lab's digest-signing RSA key");
        let public = private.to_public_key();
        let pkcs1 = public
            .to_pkcs1_der()
            .expect("encoding an RSA public key as PKCS #1");
        let spki = public
            .to_public_key_der()
            .expect("encoding an RSA public key as SubjectPublicKeyInfo");
        let pem = public
            .to_public_key_pem(LineEnding::LF)
            .expect("encoding an RSA public key as PEM");
        Self {
            public: DigestPublicKey {
                fingerprint: fingerprint(pkcs1.as_bytes()),
                spki_der_base64: Base64::encode_string(spki.as_bytes()),
                pkcs1_der_base64: Base64::encode_string(pkcs1.as_bytes()),
                pem,
                signature_algorithm: SIGNATURE_ALGORITHM.into(),
                validity_start_time: rfc3339(now()),
            },
            private,
        }
    }

    fn sign(&self, to_sign: &str) -> String {
        let signature = self
            .private
            .pkcs1v15_sign::<Sha256>(to_sign.as_bytes())
            .expect("signing with the lab's RSA key");
        hex(&signature)
    }
}

fn lab_key() -> &'static LabKey {
    static KEY: OnceLock<LabKey> = OnceLock::new();
    KEY.get_or_init(LabKey::generate)
}

/// The lab's digest-signing public key (generated on first use, once per process).
pub fn public_key() -> DigestPublicKey {
    lab_key().public.clone()
}

/// CloudTrail's key fingerprint: hex MD5 of the DER PKCS #1 `RSAPublicKey`.
pub fn fingerprint(pkcs1_der: &[u8]) -> String {
    use md5::Digest as _;
    hex(&md5::Md5::digest(pkcs1_der))
}

/// What CloudTrail signs (AWS CLI `_create_string_to_sign`).
pub fn string_to_sign(
    digest_end_time: &str,
    digest_bucket: &str,
    digest_object: &str,
    digest_sha256_hex: &str,
    previous_signature: Option<&str>,
) -> String {
    format!(
        "{digest_end_time}\n{digest_bucket}/{digest_object}\n{digest_sha256_hex}\n{}",
        previous_signature.unwrap_or("null")
    )
}

/// The digest period for a lab whose log files are written every `log_interval`: three log
/// periods, rounded up to whole seconds (digest names and times have second precision).
pub(crate) fn period(log_interval: Duration) -> Duration {
    let ms = log_interval.as_millis().saturating_mul(3);
    Duration::from_secs(u64::try_from(ms.div_ceil(1000)).unwrap_or(u64::MAX).max(1))
}

/// One digest chain: a trail's digests for one region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct StreamId {
    account: String,
    trail_arn: String,
    region: String,
}

/// A delivered log file, as a digest lists it.
#[derive(Debug, Clone)]
struct LogFile {
    bucket: String,
    key: String,
    sha256: String,
    newest: Option<String>,
    oldest: Option<String>,
}

/// What the recorder tells the digest writer: log files delivered, and delivery passes done.
#[derive(Debug, Default)]
pub(crate) struct Digests {
    pending: Mutex<BTreeMap<StreamId, Vec<LogFile>>>,
    passes: AtomicU64,
}

impl Digests {
    /// Makes the lab's key now, so a lab starts with it.
    pub(crate) fn new() -> Arc<Self> {
        let _ = lab_key();
        Arc::default()
    }

    /// A log file of `trail` for `region` was delivered to `key` in the trail's bucket;
    /// `text` is its uncompressed content, `records` what it holds.
    pub(crate) fn delivered(
        &self,
        trail: &Trail,
        account: &str,
        region: &str,
        key: &str,
        text: &str,
        records: &[&Value],
    ) {
        if !trail.log_file_validation_enabled().unwrap_or(false) {
            return;
        }
        let (Some(arn), Some(bucket)) = (trail.trail_arn(), trail.s3_bucket_name()) else {
            return;
        };
        let times: Vec<&str> = records
            .iter()
            .filter_map(|r| r["eventTime"].as_str())
            .collect();
        let file = LogFile {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            sha256: sha256_hex(text.as_bytes()),
            newest: times.iter().max().map(|t| (*t).to_owned()),
            oldest: times.iter().min().map(|t| (*t).to_owned()),
        };
        self.pending
            .lock()
            .expect("digest pending files")
            .entry(StreamId {
                account: account.to_owned(),
                trail_arn: arn.to_owned(),
                region: region.to_owned(),
            })
            .or_default()
            .push(file);
    }

    /// One delivery pass (every buffered record offered to its trails) is over.
    pub(crate) fn pass_done(&self) {
        self.passes.fetch_add(1, Ordering::SeqCst);
    }

    fn take(&self, id: &StreamId) -> Vec<LogFile> {
        self.pending
            .lock()
            .expect("digest pending files")
            .remove(id)
            .unwrap_or_default()
    }

    fn put_back(&self, id: &StreamId, mut files: Vec<LogFile>) {
        let mut pending = self.pending.lock().expect("digest pending files");
        let entry = pending.entry(id.clone()).or_default();
        files.append(entry);
        *entry = files;
    }
}

/// The previous digest of a chain.
#[derive(Debug, Clone)]
struct Previous {
    bucket: String,
    object: String,
    sha256: String,
    signature: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No chain: the trail does not log (or validates nothing).
    Idle,
    /// A digest every period.
    Logging,
    /// Stopped: the final digest waits for the log files of records made before the stop
    /// (delivery passes that started after the stop was seen).
    Stopping { after_pass: u64 },
}

#[derive(Debug, Clone)]
struct Stream {
    trail_name: String,
    home_region: String,
    bucket: String,
    prefix: Option<String>,
    phase: Phase,
    /// `digestStartTime` of the next digest.
    start: u64,
    /// `digestEndTime` of the last digest written.
    last_end: u64,
    previous: Option<Previous>,
}

/// Writes the digests of every trail of the lab's accounts every `period`, until the runtime
/// stops.
pub(crate) async fn run(digests: Arc<Digests>, clients: Arc<AccountClients>, period: Duration) {
    let mut accounts = members(&clients).await;
    let mut streams: BTreeMap<StreamId, Stream> = BTreeMap::new();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let pending: Vec<StreamId> = digests
            .pending
            .lock()
            .expect("digest pending files")
            .keys()
            .cloned()
            .collect();
        accounts.extend(pending.iter().map(|id| id.account.clone()));
        for account in &accounts {
            let c = clients.get(account).await;
            account_tick(&digests, &c, account, &pending, &mut streams).await;
        }
    }
}

/// The lab's member accounts with trails (`account_id(1)`, `account_id(2)`, ... up to the
/// first without one); accounts whose trails deliver log files later join by themselves.
async fn members(clients: &AccountClients) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for n in 1..=1000 {
        let id = crate::account_id(n);
        let c = clients.get(&id).await;
        match c
            .cloudtrail(HOME_REGION)
            .describe_trails()
            .include_shadow_trails(true)
            .send()
            .await
        {
            Ok(o) if !o.trail_list().is_empty() => {
                out.insert(id);
            }
            _ => break,
        }
    }
    out
}

async fn account_tick(
    digests: &Digests,
    c: &AccountConfig,
    account: &str,
    pending: &[StreamId],
    streams: &mut BTreeMap<StreamId, Stream>,
) {
    let mine = |id: &&StreamId| id.account == account;
    let mut regions: BTreeSet<String> = [HOME_REGION, REGIONAL_TRAIL_REGION]
        .into_iter()
        .map(str::to_owned)
        .collect();
    regions.extend(streams.keys().filter(mine).map(|id| id.region.clone()));
    regions.extend(pending.iter().filter(mine).map(|id| id.region.clone()));
    let mut trails: BTreeMap<String, Trail> = BTreeMap::new();
    let mut complete = true;
    for region in &regions {
        match c
            .cloudtrail(region)
            .describe_trails()
            .include_shadow_trails(true)
            .send()
            .await
        {
            Ok(out) => {
                for t in out.trail_list() {
                    if let Some(arn) = t.trail_arn() {
                        trails.entry(arn.to_owned()).or_insert_with(|| t.clone());
                    }
                }
            }
            Err(_) => complete = false,
        }
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (arn, t) in &trails {
        let (Some(bucket), Some(name)) = (t.s3_bucket_name(), t.name()) else {
            continue;
        };
        let home = t.home_region().unwrap_or(HOME_REGION).to_owned();
        let Ok(status) = c
            .cloudtrail(&home)
            .get_trail_status()
            .name(arn)
            .send()
            .await
        else {
            seen.insert(arn.clone());
            continue;
        };
        seen.insert(arn.clone());
        let logging = status.is_logging().unwrap_or(false)
            && t.log_file_validation_enabled().unwrap_or(false);
        let started = status
            .start_logging_time()
            .and_then(|d| u64::try_from(d.secs()).ok());
        let mut covered: BTreeSet<String> = BTreeSet::from([home.clone()]);
        let of_trail = |id: &&StreamId| id.account == account && &id.trail_arn == arn;
        covered.extend(streams.keys().filter(of_trail).map(|id| id.region.clone()));
        covered.extend(pending.iter().filter(of_trail).map(|id| id.region.clone()));
        let multi_region = t.is_multi_region_trail().unwrap_or(false);
        for region in covered {
            // A trail made single-region no longer logs its other regions.
            let logging = logging && (multi_region || region == home);
            let id = StreamId {
                account: account.to_owned(),
                trail_arn: arn.clone(),
                region,
            };
            let known = streams.contains_key(&id);
            // Files of a chain not known yet were delivered while the trail logged.
            let has_pending = !known && pending.contains(&id);
            if !known && !logging && !has_pending {
                continue;
            }
            let stream = streams.entry(id.clone()).or_insert_with(|| Stream {
                trail_name: name.to_owned(),
                home_region: home.clone(),
                bucket: bucket.to_owned(),
                prefix: None,
                phase: Phase::Idle,
                start: started.unwrap_or_else(now),
                last_end: 0,
                previous: None,
            });
            stream.trail_name = name.to_owned();
            stream.home_region.clone_from(&home);
            bucket.clone_into(&mut stream.bucket);
            stream.prefix = t
                .s3_key_prefix()
                .filter(|p| !p.is_empty())
                .map(str::to_owned);
            step(
                digests,
                c,
                &id,
                stream,
                logging || has_pending,
                logging,
                started,
            )
            .await;
        }
    }
    // Trails that are gone: a final digest for what they delivered, then nothing.
    if complete {
        let gone: Vec<StreamId> = streams
            .keys()
            .filter(|id| id.account == account && !seen.contains(&id.trail_arn))
            .cloned()
            .collect();
        for id in gone {
            let Some(stream) = streams.get_mut(&id) else {
                continue;
            };
            step(digests, c, &id, stream, false, false, None).await;
            if stream.phase == Phase::Idle {
                streams.remove(&id);
            }
        }
    }
}

/// One period of one chain. `was_logging`: a new chain starts logging (the trail logs, or
/// delivered files while it did); `logging`: the trail logs now, with validation on.
async fn step(
    digests: &Digests,
    c: &AccountConfig,
    id: &StreamId,
    stream: &mut Stream,
    was_logging: bool,
    logging: bool,
    started: Option<u64>,
) {
    match stream.phase {
        Phase::Idle if was_logging => {
            // A starting digest: a new chain from when logging (re)started.
            stream.phase = Phase::Logging;
            stream.previous = None;
            stream.start = started.unwrap_or_else(now).max(stream.last_end);
            if logging {
                write(digests, c, id, stream).await;
            } else {
                stream.phase = Phase::Stopping {
                    after_pass: digests.passes.load(Ordering::SeqCst) + 2,
                };
            }
        }
        Phase::Idle => {}
        Phase::Logging if logging => {
            write(digests, c, id, stream).await;
        }
        Phase::Logging => {
            stream.phase = Phase::Stopping {
                after_pass: digests.passes.load(Ordering::SeqCst) + 2,
            };
        }
        Phase::Stopping { after_pass } => {
            if digests.passes.load(Ordering::SeqCst) >= after_pass
                && write(digests, c, id, stream).await
            {
                // The final digest: the chain ends here.
                stream.phase = Phase::Idle;
                stream.previous = None;
            }
        }
    }
}

/// Writes the chain's next digest (its files: those delivered since the last); false when it
/// could not (same second as the last one, or the upload failed: the files wait).
async fn write(digests: &Digests, c: &AccountConfig, id: &StreamId, stream: &mut Stream) -> bool {
    let end = now();
    if end <= stream.last_end {
        return false;
    }
    let files = digests.take(id);
    let key = digest_key(
        stream.prefix.as_deref(),
        &id.account,
        &id.region,
        &stream.trail_name,
        &stream.home_region,
        end,
    );
    let end_time = rfc3339(end);
    let body = digest_json(&DigestParts {
        account: &id.account,
        start: &rfc3339(stream.start.min(end)),
        end: &end_time,
        bucket: &stream.bucket,
        key: &key,
        previous: stream.previous.as_ref(),
        files: &files,
    });
    let sha256 = sha256_hex(body.as_bytes());
    let previous_signature = stream.previous.as_ref().map(|p| p.signature.as_str());
    let signature = lab_key().sign(&string_to_sign(
        &end_time,
        &stream.bucket,
        &key,
        &sha256,
        previous_signature,
    ));
    let put = c
        .s3(HOME_REGION)
        .put_object()
        .bucket(&stream.bucket)
        .key(&key)
        .metadata("signature", &signature)
        .metadata("signature-algorithm", SIGNATURE_ALGORITHM)
        .body(trailwarden_aws::sdk::s3::primitives::ByteStream::from(
            gzip(&body),
        ))
        .send()
        .await;
    if put.is_err() {
        digests.put_back(id, files);
        return false;
    }
    stream.previous = Some(Previous {
        bucket: stream.bucket.clone(),
        object: key,
        sha256,
        signature,
    });
    stream.start = end;
    stream.last_end = end;
    true
}

struct DigestParts<'a> {
    account: &'a str,
    start: &'a str,
    end: &'a str,
    bucket: &'a str,
    key: &'a str,
    previous: Option<&'a Previous>,
    files: &'a [LogFile],
}

/// The digest's bytes: CloudTrail's 15 keys in its order, then `logFiles`; compact, with
/// `\/`-escaped slashes and no trailing newline.
fn digest_json(d: &DigestParts<'_>) -> String {
    let newest = d.files.iter().filter_map(|f| f.newest.as_deref()).max();
    let oldest = d.files.iter().filter_map(|f| f.oldest.as_deref()).min();
    let previous = d.previous;
    let doc = json!({
        "awsAccountId": d.account,
        "digestStartTime": d.start,
        "digestEndTime": d.end,
        "digestS3Bucket": d.bucket,
        "digestS3Object": d.key,
        "digestPublicKeyFingerprint": lab_key().public.fingerprint,
        "digestSignatureAlgorithm": SIGNATURE_ALGORITHM,
        "newestEventTime": newest,
        "oldestEventTime": oldest,
        "previousDigestS3Bucket": previous.map(|p| p.bucket.as_str()),
        "previousDigestS3Object": previous.map(|p| p.object.as_str()),
        "previousDigestHashValue": previous.map(|p| p.sha256.as_str()),
        "previousDigestHashAlgorithm": previous.map(|_| HASH_ALGORITHM),
        "previousDigestSignature": previous.map(|p| p.signature.as_str()),
        "logFiles": d.files.iter().map(|f| json!({
            "s3Bucket": f.bucket,
            "s3Object": f.key,
            "hashValue": f.sha256,
            "hashAlgorithm": HASH_ALGORITHM,
            "newestEventTime": f.newest,
            "oldestEventTime": f.oldest,
        })).collect::<Vec<_>>(),
    });
    // Compact JSON has no '/' outside strings.
    doc.to_string().replace('/', "\\/")
}

fn digest_key(
    prefix: Option<&str>,
    account: &str,
    region: &str,
    trail_name: &str,
    home_region: &str,
    end: u64,
) -> String {
    let stamp = rfc3339(end); // 2026-11-28T16:23:20Z
    let date = stamp.split_once('T').map_or(stamp.as_str(), |(d, _)| d);
    let day = date.replace('-', "/");
    let compact = stamp.replace(['-', ':'], ""); // 20261128T162320Z
    let base = format!(
        "AWSLogs/{account}/CloudTrail-Digest/{region}/{day}/{account}_CloudTrail-Digest_{region}_{trail_name}_{home_region}_{compact}.json.gz"
    );
    match prefix.filter(|p| !p.is_empty()) {
        Some(p) => format!("{}/{base}", p.trim_end_matches('/')),
        None => base,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = e.write_all(text.as_bytes());
    e.finish().unwrap_or_default()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_cloudtrails() {
        // `aws cloudtrail list-public-keys` example (AWS CLI docs): Value and Fingerprint.
        use base64ct::{Base64, Encoding};
        let value = "MIIBCgKCAQEAlSS3cl92HDycr/MTj0moOhas8habjrraXw+KzlWF0axSI2tcF+3iJ9BKQAVSKxGwxwu3m0wG3J+kUl1xboEcEPHYoIYMbgfSw7KGnuDKwkLzsQWhUJ0cIbOHASox1vv/5fNXkrHhGbDCHeVXm804c83nvHUEFYThr1PfyP/8HwrCtR3FX5OANtQCP61C1nJtSSkC8JSQUOrIP4CuwJjc+4WGDk+BGH5m9iuiAKkipEHWmUl8/P7XpfpWQuk4h8g3pXZOrNXr08lbh4d39svj7UqdhvOXoBISp9t/EXYuePGEtBdrKD9Dz+VHwyUPtBQvYr9BnkF88qBnaPNhS44rzwIDAQAB";
        let der = Base64::decode_vec(value).unwrap();
        assert_eq!(fingerprint(&der), "7f3f401420072e50a65a141430817ab3");
    }

    #[test]
    fn digests_are_named_as_cloudtrail_names_them() {
        // 2015-08-17T15:01:31Z, the CloudTrail user guide's example.
        let key = digest_key(
            None,
            "111122223333",
            "us-east-2",
            "your-trail-name",
            "us-east-2",
            1_439_823_691,
        );
        assert_eq!(
            key,
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz"
        );
        assert!(
            digest_key(Some("team/"), "1", "r", "t", "h", 0)
                .starts_with("team/AWSLogs/1/CloudTrail-Digest/r/1970/01/01/")
        );
    }

    #[test]
    fn the_body_has_cloudtrails_keys_order_and_escaping() {
        let files = [LogFile {
            bucket: "b".into(),
            key: "AWSLogs/1/CloudTrail/r/x.json.gz".into(),
            sha256: "h".into(),
            newest: Some("2020-09-11T19:26:24Z".into()),
            oldest: Some("2020-09-11T18:32:04Z".into()),
        }];
        let body = digest_json(&DigestParts {
            account: "1",
            start: "s",
            end: "e",
            bucket: "b",
            key: "AWSLogs/1/CloudTrail-Digest/k.json.gz",
            previous: None,
            files: &files,
        });
        assert!(body.contains(r#""digestS3Object":"AWSLogs\/1\/CloudTrail-Digest\/k.json.gz""#));
        assert!(!body.ends_with('\n') && !body.contains(": "));
        let doc: Value = serde_json::from_str(&body).unwrap();
        let keys: Vec<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "awsAccountId",
                "digestStartTime",
                "digestEndTime",
                "digestS3Bucket",
                "digestS3Object",
                "digestPublicKeyFingerprint",
                "digestSignatureAlgorithm",
                "newestEventTime",
                "oldestEventTime",
                "previousDigestS3Bucket",
                "previousDigestS3Object",
                "previousDigestHashValue",
                "previousDigestHashAlgorithm",
                "previousDigestSignature",
                "logFiles"
            ]
        );
        assert_eq!(doc["previousDigestSignature"], Value::Null);
        assert_eq!(doc["newestEventTime"], "2020-09-11T19:26:24Z");
        assert_eq!(doc["logFiles"][0]["hashAlgorithm"], "SHA-256");
    }

    #[test]
    fn periods_are_whole_seconds() {
        assert_eq!(period(Duration::from_millis(300)), Duration::from_secs(1));
        assert_eq!(period(Duration::from_millis(500)), Duration::from_secs(2));
        assert_eq!(period(Duration::from_secs(2)), Duration::from_secs(6));
        assert_eq!(period(Duration::ZERO), Duration::from_secs(1));
    }

    #[test]
    fn signatures_verify_with_the_published_key() {
        use base64ct::{Base64, Encoding};
        use rsa::pkcs8::DecodePublicKey;
        let published = public_key();
        let der = Base64::decode_vec(&published.spki_der_base64).unwrap();
        let key = rsa::PublicKey::from_public_key_der(&der).unwrap();
        let to_sign = string_to_sign("e", "b", "o", "h", None);
        let signature = lab_key().sign(&to_sign);
        let bytes: Vec<u8> = (0..signature.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&signature[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(bytes.len(), KEY_BITS / 8);
        key.pkcs1v15_verify::<Sha256>(to_sign.as_bytes(), &bytes)
            .unwrap();
        assert!(
            key.pkcs1v15_verify::<Sha256>(b"something else", &bytes)
                .is_err()
        );
        let pkcs1 = Base64::decode_vec(&published.pkcs1_der_base64).unwrap();
        assert_eq!(fingerprint(&pkcs1), published.fingerprint);
    }
}
