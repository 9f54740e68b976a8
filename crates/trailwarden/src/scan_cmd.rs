//! `trailwarden scan PATH...`: the rule pack over CloudTrail records from files, folders, S3
//! and stdin.

use crate::args::{Format, GlobalArgs, ScanArgs};
use crate::exit;
use crate::output::{self, print, table, tagged};
use crate::progress::Progress;
use crate::rules_cmd;
use anyhow::{Context, bail};
use futures::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use trailwarden_aws::ClientFactory;
use trailwarden_aws::log_objects::{self, S3Location};
use trailwarden_engine::scan::{Input, RecordFilter, ScanOptions, SourceResult, scan};
use trailwarden_model::clock::parse_rfc3339;
use trailwarden_model::finding::{Finding, Severity};
use trailwarden_model::log_key::{KeyFilter, parse_day};
use trailwarden_model::target::RegionSelection;

/// File names read when found in a folder.
const RECORD_FILE_ENDINGS: &[&str] = &[".json", ".json.gz", ".gz", ".jsonl", ".ndjson", ".log"];

/// S3 objects up to this size are held in memory; larger ones are spooled to a temporary
/// file (a CloudTrail log file is far smaller), so memory stays bounded.
const IN_MEMORY_OBJECT_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, Default, Serialize)]
struct Summary {
    inputs: u64,
    records: u64,
    read_bytes: u64,
    decoded_bytes: u64,
    digests: u64,
    findings: u64,
    findings_by_rule: BTreeMap<String, u64>,
    errors: u64,
    /// Files in folders that were not read because of their names.
    skipped_files: u64,
    rules: usize,
    seconds: f64,
    records_per_second: f64,
}

pub async fn run(factory: &ClientFactory, g: &GlobalArgs, args: &ScanArgs) -> anyhow::Result<u8> {
    let rules = rules_cmd::load(&args.source)?;
    let format = output::choose(g.format);
    let min_severity: Severity =
        serde_json::from_value(args.min_severity.clone().into()).context("--min-severity")?;
    let accounts: Vec<String> = crate::targets::account_filter(factory, g)
        .await?
        .iter()
        .map(ToString::to_string)
        .collect();
    let regions = match &g.regions {
        RegionSelection::AllEnabled => Vec::new(),
        RegionSelection::List(list) => list.clone(),
    };
    let since = args
        .since
        .as_deref()
        .map(|t| parse_time(t, false))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|t| parse_time(t, true))
        .transpose()?;
    let filter = RecordFilter {
        accounts: accounts.clone(),
        regions: regions.clone(),
        since,
        until,
    };
    // Log files are named by delivery day; records can be a little older or newer.
    let key_filter = KeyFilter {
        accounts,
        regions,
        since: since.map(|s| day_of(s.saturating_sub(86_400))),
        until: until.map(|u| day_of(u + 86_400)),
    };

    let mut locals = Vec::new();
    let mut buckets = Vec::new();
    let mut stdin = false;
    for path in &args.paths {
        if path == "-" {
            stdin = true;
        } else if path.starts_with("s3://") {
            match S3Location::parse(path) {
                Some(location) => buckets.push(location),
                None => bail!("{path:?} is not an S3 location like s3://bucket/prefix"),
            }
        } else {
            locals.push(PathBuf::from(path));
        }
    }

    let started = Instant::now();
    let mut summary = Summary {
        rules: rules.len(),
        ..Summary::default()
    };
    let mut inputs = Vec::new();
    if stdin {
        inputs.push(Input::Stdin);
    }
    for item in trailwarden_records::walk(&locals) {
        match item {
            Err(e) => inputs.push(Input::Failed {
                name: e.source_name.clone(),
                error: e.kind.to_string(),
            }),
            Ok(path) => {
                let named = locals.iter().any(|root| root == &path);
                if !named && !looks_like_records(&path) {
                    summary.skipped_files += 1;
                    continue;
                }
                if !named && !key_filter.keeps(&path.to_string_lossy().replace('\\', "/")) {
                    continue;
                }
                inputs.push(Input::File(path));
            }
        }
    }

    // S3: list (pruned by the key layout) before anything is downloaded.
    let mut objects = Vec::new();
    for location in &buckets {
        let account = factory.caller();
        let region = match log_objects::bucket_region(
            &account,
            factory.home_region(),
            &location.bucket,
            None,
        )
        .await
        {
            Ok(region) => region,
            Err(e) => {
                inputs.push(Input::Failed {
                    name: location.url_of(&location.prefix),
                    error: e.to_string(),
                });
                continue;
            }
        };
        match log_objects::list_log_objects(&account, &region, location, &key_filter).await {
            Ok(found) => objects.extend(
                found
                    .into_iter()
                    .map(|o| (location.clone(), region.clone(), o)),
            ),
            Err(e) => inputs.push(Input::Failed {
                name: location.url_of(&location.prefix),
                error: e.to_string(),
            }),
        }
    }

    let progress = Progress::with_unit(
        g.quiet,
        "scanning",
        (inputs.len() + objects.len()) as u64,
        "inputs",
    );
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Input>(4);
    let account = factory.caller();
    let downloads = usize::from(args.downloads);
    let spool = tempfile::tempdir().context("creating a temporary directory for large objects")?;
    let spool_dir = spool.path().to_owned();
    let downloader = tokio::spawn(async move {
        let mut fetched = futures::stream::iter(objects.into_iter().enumerate())
            .map(|(n, (location, region, object))| {
                let account = account.clone();
                let spooled = spool_dir.join(format!("{n}.object"));
                async move {
                    let name = location.url_of(&object.key);
                    let (bucket, key) = (&location.bucket, &object.key);
                    if object.size > IN_MEMORY_OBJECT_BYTES {
                        return match log_objects::fetch_to_file(
                            &account, &region, bucket, key, &spooled,
                        )
                        .await
                        {
                            Ok(()) => Input::NamedFile {
                                name,
                                path: spooled,
                            },
                            Err(error) => Input::Failed {
                                name,
                                error: error.to_string(),
                            },
                        };
                    }
                    match log_objects::fetch(
                        &account,
                        &region,
                        bucket,
                        key,
                        IN_MEMORY_OBJECT_BYTES * 2,
                        None,
                    )
                    .await
                    {
                        Ok(bytes) => Input::Bytes { name, bytes },
                        Err(error) => Input::Failed {
                            name,
                            error: error.to_string(),
                        },
                    }
                }
            })
            .buffered(downloads);
        while let Some(input) = fetched.next().await {
            if sender.send(input).await.is_err() {
                break;
            }
        }
    });

    let options = ScanOptions {
        workers: args
            .jobs
            .map_or_else(|| ScanOptions::default().workers, usize::from),
        filter,
        ..ScanOptions::default()
    };
    let streaming = matches!(format, Format::Jsonl | Format::Ocsf);
    let (summary, findings, errors) = tokio::task::spawn_blocking(move || {
        let mut findings: Vec<Finding> = Vec::new();
        let mut errors: Vec<String> = Vec::new();
        let all = inputs
            .into_iter()
            .chain(std::iter::from_fn(move || receiver.blocking_recv()));
        let mut write_failed = None;
        scan(all, &rules, &options, |result: SourceResult| {
            progress.step();
            summary.inputs += 1;
            summary.records += result.records;
            summary.read_bytes += result.read_bytes;
            summary.decoded_bytes += result.decoded_bytes;
            summary.digests += result.digests;
            summary.errors += result.errors.len() as u64;
            let mut lines = String::new();
            for finding in result
                .findings
                .into_iter()
                .filter(|f| f.severity >= min_severity)
            {
                summary.findings += 1;
                *summary
                    .findings_by_rule
                    .entry(finding.rule_id.clone())
                    .or_default() += 1;
                if streaming {
                    lines.push_str(&stream_line(format, &finding));
                } else {
                    findings.push(finding);
                }
            }
            for error in result.errors {
                if streaming {
                    progress.suspend(|| eprintln!("error: {error}"));
                }
                errors.push(error);
            }
            if !lines.is_empty()
                && let Err(e) = print(&lines)
            {
                write_failed.get_or_insert(e);
            }
        });
        progress.finish();
        summary.seconds = started.elapsed().as_secs_f64();
        summary.records_per_second = summary.records as f64 / summary.seconds.max(1e-9);
        match write_failed {
            Some(e) => Err(anyhow::Error::from(e).context("writing findings")),
            None => Ok((summary, findings, errors)),
        }
    })
    .await
    .context("the scan stopped")??;
    downloader.abort();
    drop(spool);

    let mut findings = findings;
    findings.sort_by(|a, b| {
        let time = |f: &Finding| f.event.as_ref().and_then(|e| e.event_time.clone());
        time(a)
            .cmp(&time(b))
            .then_with(|| a.rule_id.cmp(&b.rule_id))
    });
    match format {
        Format::Json => {
            let doc =
                serde_json::json!({"findings": findings, "summary": summary, "errors": errors});
            print(&(serde_json::to_string_pretty(&doc)? + "\n"))?;
        }
        Format::Table => print(&render_table(&findings, &summary, &errors))?,
        Format::Jsonl => print(&tagged("summary", &summary)?)?,
        Format::Ocsf => eprint!("{}", summary_text(&summary)),
    }
    Ok(if summary.findings > 0 {
        exit::FINDINGS
    } else if summary.errors > 0 {
        exit::ERROR
    } else {
        exit::OK
    })
}

fn stream_line(format: Format, finding: &Finding) -> String {
    if format == Format::Ocsf {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        finding
            .to_ocsf(now_ms, env!("CARGO_PKG_VERSION"))
            .to_string()
            + "\n"
    } else {
        tagged("finding", finding).unwrap_or_default()
    }
}

fn looks_like_records(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    RECORD_FILE_ENDINGS.iter().any(|e| name.ends_with(e))
}

/// `--since`/`--until`: RFC 3339, or a day (its start, or its end for `--until`).
fn parse_time(text: &str, end_of_day: bool) -> anyhow::Result<u64> {
    if let Some(t) = parse_rfc3339(text) {
        return Ok(t);
    }
    if text.trim().len() == 10
        && let Some((y, m, d)) = parse_day(text)
        && let Some(start) = parse_rfc3339(&format!("{y:04}-{m:02}-{d:02}T00:00:00Z"))
    {
        return Ok(if end_of_day { start + 86_399 } else { start });
    }
    bail!("{text:?} is not a time like 2026-11-28 or 2026-11-28T10:00:00Z")
}

fn day_of(unix: u64) -> (u16, u8, u8) {
    let text = trailwarden_model::clock::rfc3339(unix);
    parse_day(&text).unwrap_or((1970, 1, 1))
}

fn summary_text(s: &Summary) -> String {
    let mut text = format!(
        "{} inputs, {} records ({:.1} MB read, {:.1} MB of JSON) in {:.2}s ({:.0} records/s) with {} rules: {} findings, {} errors",
        s.inputs,
        s.records,
        s.read_bytes as f64 / 1e6,
        s.decoded_bytes as f64 / 1e6,
        s.seconds,
        s.records_per_second,
        s.rules,
        s.findings,
        s.errors
    );
    if s.digests > 0 {
        text.push_str(&format!(", {} digest files (no records)", s.digests));
    }
    if s.skipped_files > 0 {
        text.push_str(&format!(
            ", {} files skipped for their names (not {}; name a file to read it anyway)",
            s.skipped_files,
            RECORD_FILE_ENDINGS.join("/")
        ));
    }
    text.push('\n');
    text
}

fn render_table(findings: &[Finding], summary: &Summary, errors: &[String]) -> String {
    let mut text = String::new();
    if !findings.is_empty() {
        let mut t = table(&[
            "time",
            "severity",
            "rule",
            "account",
            "region",
            "event",
            "actor",
            "source IP",
            "restore",
        ]);
        for f in findings {
            let e = f.event.as_ref();
            let actor = e.map(|e| &e.actor);
            t.add_row(vec![
                e.and_then(|e| e.event_time.clone()).unwrap_or_default(),
                f.severity.to_string(),
                f.rule_id.clone(),
                f.account.to_string(),
                f.region.clone(),
                e.and_then(|e| {
                    let name = e.event_name.clone()?;
                    Some(match &e.error_code {
                        Some(code) => format!("{name} ({code})"),
                        None => name,
                    })
                })
                .unwrap_or_default(),
                // The ARN's resource part is what a reader needs; JSON keeps the whole ARN.
                actor
                    .and_then(|a| a.principal_arn.as_deref())
                    .map(|arn| arn.splitn(6, ':').last().unwrap_or(arn).to_owned())
                    .unwrap_or_default(),
                actor.and_then(|a| a.source_ip.clone()).unwrap_or_default(),
                if f.remediable { "yes" } else { "-" }.to_owned(),
            ]);
        }
        text.push_str(&format!("{t}\n"));
        let mut by_rule = table(&["rule", "findings"]);
        for (rule, n) in &summary.findings_by_rule {
            by_rule.add_row(vec![rule.clone(), n.to_string()]);
        }
        text.push_str(&format!("{by_rule}\n"));
    }
    const SHOWN: usize = 20;
    for e in errors.iter().take(SHOWN) {
        text.push_str(&format!("error: {e}\n"));
    }
    if errors.len() > SHOWN {
        text.push_str(&format!(
            "... and {} more errors (--format json lists them all)\n",
            errors.len() - SHOWN
        ));
    }
    text.push_str(&summary_text(summary));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-02", false).unwrap(), 86_400);
        assert_eq!(parse_time("1970-01-02", true).unwrap(), 2 * 86_400 - 1);
        assert_eq!(parse_time("1970-01-02T00:00:10Z", true).unwrap(), 86_410);
        assert!(parse_time("yesterday", false).is_err());
        assert_eq!(day_of(86_400 * 2 + 5), (1970, 1, 3));
    }

    #[test]
    fn record_file_names() {
        assert!(looks_like_records(Path::new("a/b.json.gz")));
        assert!(looks_like_records(Path::new("x.JSONL")));
        assert!(!looks_like_records(Path::new("MANIFEST.md")));
        assert!(!looks_like_records(Path::new("manifest.csv")));
    }
}
