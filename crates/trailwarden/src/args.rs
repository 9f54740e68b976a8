//! Command-line arguments: the global options every command shares, and the commands.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::time::Duration;
use trailwarden_model::target::{
    AccountId, AccountSelector, OrganizationScope, RegionSelection, organization_scope,
};

const AFTER_HELP: &str = "\
Credentials come from the standard AWS chain (environment, AWS_PROFILE or --profile, SSO,
credential_process, instance or container role). With --accounts, trailwarden assumes
arn:aws:iam::<ID>:role/<--role-name> in each account; its role sessions are named
trailwarden-<time> so its own calls can be recognised in CloudTrail.

--accounts org visits every active account of the caller's AWS organization, and
--accounts ou-…,r-… those of organizational units and everything below them (the caller is
the management account or a delegated administrator). Suspended and closed accounts are
skipped and said so; --exclude-accounts leaves accounts out. With a baseline, audit then also
reports accounts the baseline does not cover (unguarded) and baseline accounts that left the
organization.

An account or region that cannot be read (AccessDenied, a region not enabled, throttling
that outlasts the retries, an endpoint that does not answer) is reported with the account,
region and call that failed; the other targets are still read.

Examples:
  trailwarden trails
  trailwarden --regions us-east-1,eu-west-1 trails --format json
  trailwarden --accounts 111111111111,222222222222 --role-name TrailwardenAudit trails
  trailwarden --endpoint-url http://127.0.0.1:5000 trails     # moto, or any AWS-compatible endpoint
  trailwarden --accounts 111111111111 --role-name TrailwardenAudit baseline capture --out baseline.toml
  trailwarden --accounts org --exclude-accounts 999999999999 --role-name TrailwardenAudit audit --baseline baseline.toml
  trailwarden --role-name TrailwardenAudit audit --baseline baseline.toml
  trailwarden --role-name TrailwardenAudit remediate --baseline baseline.toml --apply
  trailwarden scan ./cloudtrail-logs/ --format jsonl
  trailwarden --accounts 111111111111 --regions eu-west-1 scan s3://org-trail-bucket/ --since 2026-11-01
  zcat file.json.gz | trailwarden scan -
  trailwarden rules list
  trailwarden rules test --rules ./my-sigma-rules/
  trailwarden --role-name TrailwardenAudit watch --queue-url URL --baseline baseline.toml --remediate";

/// trailwarden keeps AWS audit logging alive and honest: it finds CloudTrail tampering in
/// every region of every account.
#[derive(Debug, Parser)]
#[command(name = "trailwarden", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Send every AWS call to this endpoint (an emulator such as moto, or a proxy).
    /// The SDK's AWS_ENDPOINT_URL works too.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Named profile from the AWS config files (default: AWS_PROFILE, then "default").
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// Accounts to visit, comma-separated: 12-digit ids, organizational units (ou-…) or roots
    /// (r-…) with every account below them, or "org" for every active account of the
    /// organization (default: the caller's own account). Needs --role-name.
    #[arg(long, global = true, value_name = "ID,ou-…|org", value_delimiter = ',', value_parser = parse_selector)]
    pub accounts: Option<Vec<AccountSelector>>,

    /// Accounts never to visit, comma-separated ids (e.g. a sandbox found in the organization).
    #[arg(long, global = true, value_name = "ID,ID", value_delimiter = ',', value_parser = parse_account)]
    pub exclude_accounts: Vec<AccountId>,

    /// Role to assume in each of --accounts.
    #[arg(long, global = true, value_name = "NAME")]
    pub role_name: Option<String>,

    /// Regions to visit: a comma-separated list, or "all" for every region enabled in each
    /// account (discovered with ec2:DescribeRegions).
    #[arg(long, global = true, value_name = "LIST|all", default_value = "all")]
    pub regions: RegionSelection,

    /// Region for account-wide calls (STS, region discovery). Default: the chain's region
    /// (AWS_REGION, profile), else us-east-1.
    #[arg(long, global = true, value_name = "REGION")]
    pub home_region: Option<String>,

    /// AWS calls in flight at once, across all accounts and regions.
    #[arg(long, global = true, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=512))]
    pub concurrency: u16,

    /// Attempts per AWS call, the first included; throttling and transient errors are retried
    /// with exponential backoff and jitter.
    #[arg(long, global = true, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,

    /// Limit for one AWS call with all its retries, e.g. 30s, 2m.
    #[arg(long, global = true, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub call_timeout: Duration,

    /// Output format (default: table on a terminal, json otherwise).
    #[arg(long, global = true, value_enum)]
    pub format: Option<Format>,

    /// No progress bar.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG also works.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log lines on stderr as text, or as one JSON object per line (for a log pipeline: every
    /// field, e.g. account, region, rule, actor, is a key).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "TRAILWARDEN_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    Table,
    /// One JSON document.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// OCSF findings (for commands that produce findings).
    Ocsf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every CloudTrail trail of the selected accounts × regions: home region, scope,
    /// logging status, destination, and the regions no logging trail covers.
    ///
    /// One DescribeTrails per account × region (shadow copies of multi-region and organization
    /// trails are folded into their trail) and one GetTrailStatus per trail, in its home
    /// region. Exit status: 0 everything was read, 1 some accounts or regions could not be
    /// read (they are listed), 2 trailwarden could not run.
    Trails,

    /// Capture and manage the known-good baseline.
    #[command(subcommand)]
    Baseline(BaselineCommand),

    /// Compare the real state of the selected accounts × regions with the baseline and report
    /// every difference and every tampering technique that shows in state.
    ///
    /// Reads the real configuration (it does not trust CloudTrail, so it sees what happened
    /// after logging was stopped): trails, their status, event and Insights selectors and tags;
    /// the log buckets (policy, lifecycle, versioning, MFA delete, public access block,
    /// notifications, replication, ACL, default encryption, server access logging); the KMS keys;
    /// the CloudWatch Logs groups, the alarms on their metric filters' metrics and the SNS
    /// topics those alarms and the trails notify (policy, subscribers); GuardDuty, AWS Config
    /// and VPC flow logs in every region.
    /// Without --accounts, and with --role-name, the baseline's accounts are audited.
    ///
    /// Exit status: 0 clean, 1 findings or targets that could not be read (an unread target is
    /// never reported as clean), 2 the audit could not run.
    Audit(AuditArgs),

    /// Restore the baseline: plan the API calls that undo every restorable finding of the
    /// audit, and with --apply execute them, verify by reading the state again, and journal
    /// every action.
    ///
    /// The plan only moves state toward the baseline, in a safe order (bucket and its policy,
    /// key, log group, then the trail, its selectors, then logging). What this account cannot
    /// restore (an organization trail seen from a member account, a deleted key) is escalated
    /// with the reason and the account that must act. Without --apply nothing changes.
    ///
    /// Exit status: 0 everything restored or already good, 1 something is not restored (or,
    /// without --apply, something would be), 2 could not run.
    Remediate(RemediateArgs),

    /// List the actions `remediate --apply` took, newest first.
    Journal(JournalArgs),

    /// Detect tampering in CloudTrail records with the rule pack: files, folders (recursive),
    /// s3://bucket/prefix, or - for stdin.
    ///
    /// Reads CloudTrail log files ({"Records":[...]}, gzip or not), JSON Lines, single
    /// records, EventBridge events and JSON arrays of records, on every core. In folders, files
    /// ending .json, .json.gz, .gz, .jsonl, .ndjson or .log are read (others are counted and
    /// named in the summary; pass a file by name to read it whatever its name). For s3:// the
    /// AWSLogs key layout is understood: --accounts, --regions, --since and --until skip
    /// objects before they are downloaded, and filter the records inside. A malformed file is
    /// reported with its path and position and the scan goes on.
    ///
    /// A failed call (errorCode present) is reported at low severity and never as restorable.
    ///
    /// Exit status: 0 nothing found, 1 findings, 2 an input could not be read (or the scan
    /// could not run).
    Scan(ScanArgs),

    /// Inspect and test the detection rules (the built-in pack, or --rules DIR).
    #[command(subcommand)]
    Rules(RulesCommand),

    /// What trailwarden covers of the tamper catalog, technique by technique: the event rules
    /// that see it, the state checks that see it without CloudTrail, how their findings are
    /// answered (the restore call, or an escalation and why), the lab attacks that test it.
    ///
    /// Computed from what this binary ships (the rule pack or --rules, the audit's checks,
    /// the restore plans), never from a hand-kept table. Status: end-to-end (rule, check,
    /// restore or escalation, lab attack), no-lab-attack, rule-only (stop the event path and
    /// nothing sees it), state-only, stateless (the technique changes no configuration: the
    /// reason is given), uncovered. `--markdown` prints the table of rules/README.md.
    ///
    /// Exit status: 0; 1 when a rule names a catalog technique that does not exist.
    Techniques(TechniquesArgs),

    /// Service mode, in the security account: consume the central queue of forwarded
    /// CloudTrail events, run the rule pack on each, restore the affected account at once
    /// (--remediate), and sweep every baseline account against the baseline on start and
    /// every --sweep-interval (the backstop for what no event reports).
    ///
    /// A message is deleted only after it was handled; a redelivered event is recognised by
    /// its eventID (kept in --state) and not acted on twice; a message that cannot be handled
    /// stays on the queue and goes to the queue's dead-letter queue after its maxReceiveCount.
    /// Failed attempts (errorCode) and trailwarden's own calls (trailwarden-* role sessions)
    /// never trigger a restore. SIGTERM or Ctrl-C stops it after the messages in hand.
    /// /healthz and /metrics (Prometheus) are served on --listen. Logs: -v.
    Watch(WatchArgs),

    /// Install, in every enabled region of every selected account, the EventBridge rule that
    /// forwards the tamper-relevant CloudTrail events (the event pattern is generated from the
    /// rule pack, so the two never drift apart) to the security account's bus; idempotent.
    /// Without --apply, shows what would change (exit 1 if something would). With
    /// --cloudformation DIR, writes StackSet-ready templates instead (member rule; the
    /// security account's bus policy, rule, queue and dead-letter queue).
    Deploy(DeployArgs),

    /// What `watch` detected, grouped into incidents: the detections of one actor (principal,
    /// else access key, else source IP) no more than --gap apart, each with its timeline, the
    /// accounts, regions, keys and addresses involved, and what was restored.
    Incidents(IncidentsArgs),
}

#[derive(Debug, Args)]
pub struct IncidentsArgs {
    /// The state store `watch` writes (see `watch --state`).
    #[arg(long, value_name = "PATH")]
    pub state: Option<std::path::PathBuf>,
    /// Only detections at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// A pause longer than this between an actor's detections starts a new incident.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub gap: Duration,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The security account's event bus (arn:aws:events:REGION:ACCOUNT:event-bus/default).
    #[arg(long, value_name = "ARN")]
    pub event_bus_arn: String,
    /// Make the changes (default: show them).
    #[arg(long, conflicts_with = "cloudformation")]
    pub apply: bool,
    /// Deploy through CloudFormation StackSets (service-managed, with automatic deployment to
    /// accounts that join the units later) instead of account by account: NAME-roles (the
    /// role of --role-name, and the --forwarder-role-name role, in the home region: IAM is
    /// global) and NAME-forwarding (the rule, in every region of --regions). Run from the
    /// management account or a StackSets delegated administrator; the management account
    /// itself is never reached by StackSets (said in the output). Without --apply, prints the
    /// plan and the templates. Exit 1 when an instance failed or an account is not reached.
    #[arg(long, value_name = "NAME", conflicts_with = "cloudformation")]
    pub stack_set: Option<String>,
    /// With --stack-set: where to deploy, comma-separated: "root" (the whole organization)
    /// or organizational unit ids (ou-…); AWS includes every unit below them.
    #[arg(
        long,
        value_name = "root|ou-…",
        value_delimiter = ',',
        requires = "stack_set"
    )]
    pub organizational_units: Vec<String>,
    /// With --stack-set: the only principal the member role trusts (default: the role
    /// `trailwarden` in the account of --event-bus-arn), and only from inside the organization.
    #[arg(long, value_name = "ARN", requires = "stack_set")]
    pub trusted_role_arn: Option<String>,
    /// Write CloudFormation templates into DIR instead of calling AWS.
    #[arg(long, value_name = "DIR")]
    pub cloudformation: Option<std::path::PathBuf>,
    /// Role (in each member account) EventBridge uses to put events on the bus from other
    /// regions; required by AWS for a bus in another region.
    #[arg(long, value_name = "NAME")]
    pub forwarder_role_name: Option<String>,
    /// The state store the guard (`watch`, the Lambda) uses: with --apply, the sessions this
    /// run obtains are remembered there, so the guard recognises deploy's calls as
    /// trailwarden's own (by their keys) instead of as an impersonation of trailwarden.
    #[arg(long, value_name = "PATH")]
    pub state: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub source: RulesSource,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The central queue (its URL, as SQS gives it).
    #[arg(long, value_name = "URL")]
    pub queue_url: String,
    /// The known-good state (written by `baseline capture`).
    #[arg(long, value_name = "FILE")]
    pub baseline: std::path::PathBuf,
    /// Refuse to start unless the baseline file's SHA-256 is this (64 hex digits; compute it
    /// with `sha256sum` when the baseline is reviewed). An attacker who can write the file
    /// cannot then make trailwarden treat their state as known-good.
    #[arg(long, value_name = "HEX", env = "TRAILWARDEN_BASELINE_SHA256")]
    pub baseline_sha256: Option<String>,
    /// Restore what events and sweeps find (default: report only).
    #[arg(long)]
    pub remediate: bool,
    /// Time between full sweeps, e.g. 5m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub sweep_interval: Duration,
    /// The local state store: journal of actions and handled events (see `remediate --state`).
    #[arg(long, value_name = "PATH")]
    pub state: Option<std::path::PathBuf>,
    /// The security account's bus `deploy` forwards to: every sweep also checks each member
    /// region's forwarding rule and, with --remediate, puts it back; an event that disables
    /// or deletes it triggers the same at once.
    #[arg(long, value_name = "ARN", env = "TRAILWARDEN_EVENT_BUS_ARN")]
    pub event_bus_arn: Option<String>,
    /// As `deploy --forwarder-role-name` (for a bus in another region).
    #[arg(long, value_name = "NAME")]
    pub forwarder_role_name: Option<String>,
    /// Address for /healthz, /metrics and the incidents API, or "off". Loopback by default;
    /// anything else exposes them to the network.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9137")]
    pub listen: String,
    /// File holding the bearer token the incidents API (/api/incidents) requires; without it
    /// the API is not served. The token is never logged.
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<std::path::PathBuf>,
    /// Publish every detection (finding, actor, source IP, what was done) to this SNS topic;
    /// the topic's region is taken from the ARN.
    #[arg(long, value_name = "ARN")]
    pub notify_sns: Option<String>,
    /// POST every detection as JSON to the URLs in this file (http:// or https://, one per
    /// line; `#` starts a comment). A file, not an argument: webhook URLs often carry a
    /// secret, and a process's arguments are visible to every user of the machine. The file
    /// must not be readable by group or others.
    #[arg(long, value_name = "FILE")]
    pub notify_webhook_file: Option<std::path::PathBuf>,
    /// Attempts per notification before it is given up (logged and counted in /metrics);
    /// retries back off exponentially from 1 s.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub notify_attempts: u32,
    /// Restores in flight at once across accounts (each account has at most one: events of
    /// one account coalesce into its restore, so a flood there never holds the others).
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: u32,
    /// Messages being handled at once; beyond it, receiving waits.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub max_in_flight: u32,
    /// Receive loops polling the queue at once (throughput under floods).
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=16))]
    pub receivers: u32,
    /// Sweeps in a row an account or region may be unreadable before that is an alert of its
    /// own (trailwarden may have been locked out).
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub unread_alert_after: u32,
    #[command(flatten)]
    pub source: RulesSource,
}

/// Where rules come from.
#[derive(Debug, Args)]
pub struct RulesSource {
    /// Sigma rule files or directories (recursive) to use instead of the built-in pack;
    /// repeatable. Rules for other log sources are skipped and counted; a CloudTrail rule
    /// using a Sigma feature trailwarden does not implement stops the command, naming the
    /// file, line and feature.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<std::path::PathBuf>,
    /// With --rules: use the built-in pack as well.
    #[arg(long, requires = "rules")]
    pub built_in: bool,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files, folders, s3://bucket/prefix, or - (stdin).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    #[command(flatten)]
    pub source: RulesSource,
    /// Only records at or after this time (RFC 3339, or a day YYYY-MM-DD).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only records at or before this time (RFC 3339, or a day YYYY-MM-DD, meaning its end).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Report findings of at least this severity.
    #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = ["info", "low", "medium", "high", "critical"])]
    pub min_severity: String,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// S3 objects downloaded at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=128))]
    pub downloads: u16,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules: id, level, tamper-catalog entry, ATT&CK technique, whether restoring
    /// state undoes what they detect.
    List(RulesArgs),
    /// Run every rule's own test cases (positive and negative records). Exit 1 if one fails.
    Test(RulesArgs),
    /// Check the rules are complete: ids, levels, ATT&CK tags, descriptions, and for the
    /// built-in pack a catalog reference and tests both ways. Exit 1 on errors.
    Lint(RulesArgs),
}

#[derive(Debug, Args)]
pub struct TechniquesArgs {
    #[command(flatten)]
    pub source: RulesSource,
    /// Print the coverage as the Markdown table of rules/README.md.
    #[arg(long)]
    pub markdown: bool,
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(flatten)]
    pub source: RulesSource,
}

#[derive(Debug, Args)]
pub struct RemediateArgs {
    /// The baseline to restore (written by `baseline capture`).
    #[arg(long, value_name = "FILE")]
    pub baseline: std::path::PathBuf,
    /// Refuse to start unless the baseline file's SHA-256 is this (64 hex digits; compute it
    /// with `sha256sum` when the baseline is reviewed). An attacker who can write the file
    /// cannot then make trailwarden treat their state as known-good.
    #[arg(long, value_name = "HEX", env = "TRAILWARDEN_BASELINE_SHA256")]
    pub baseline_sha256: Option<String>,
    /// Execute the plan (default: print it and change nothing).
    #[arg(long)]
    pub apply: bool,
    /// The local state store that journals every action (default: $TRAILWARDEN_STATE, else
    /// $XDG_STATE_HOME/trailwarden/state.db, else ~/.local/state/trailwarden/state.db).
    #[arg(long, value_name = "PATH")]
    pub state: Option<std::path::PathBuf>,
    /// How many times to read the state again while waiting for a restore to show.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub verify_attempts: u32,
}

#[derive(Debug, Args)]
pub struct JournalArgs {
    /// The local state store (see `remediate --state`).
    #[arg(long, value_name = "PATH")]
    pub state: Option<std::path::PathBuf>,
    /// Only this account.
    #[arg(long = "account", value_name = "ID")]
    pub account: Option<String>,
    /// Only this remediation run.
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,
    /// At most this many entries.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Read the selected accounts × regions and write their state as the baseline: a TOML
    /// file to keep in version control. Every trail must then keep logging, with the same
    /// settings, selectors and destination; the buckets, keys, log groups, alarms, alert
    /// topics and detection services the file lists must stay as they are.
    ///
    /// Capture from a healthy estate: whatever is read is declared good. The file is written
    /// only when every target was read (see --allow-gaps). Exit status: 0 written, 2 not.
    Capture(CaptureArgs),
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Where to write the baseline (TOML).
    #[arg(long, value_name = "FILE")]
    pub out: std::path::PathBuf,
    /// Write the baseline even if some accounts or regions could not be read (they are then
    /// missing from it and will not be audited).
    #[arg(long)]
    pub allow_gaps: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The baseline to compare with (written by `baseline capture`).
    #[arg(long, value_name = "FILE")]
    pub baseline: std::path::PathBuf,
    /// Refuse to start unless the baseline file's SHA-256 is this (64 hex digits; compute it
    /// with `sha256sum` when the baseline is reviewed). An attacker who can write the file
    /// cannot then make trailwarden treat their state as known-good.
    #[arg(long, value_name = "HEX", env = "TRAILWARDEN_BASELINE_SHA256")]
    pub baseline_sha256: Option<String>,
    /// Report a logging trail whose last log delivery is older than this (default: the
    /// baseline's setting, 120m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_delivery_age: Option<Duration>,
    /// Also check trailwarden's own forwarding rule (installed by `deploy`) in every region:
    /// missing, disabled, not targeting this bus, or forwarding another pattern than the rule
    /// pack's is reported as tampering with trailwarden itself.
    #[arg(long, value_name = "ARN", env = "TRAILWARDEN_EVENT_BUS_ARN")]
    pub event_bus_arn: Option<String>,
    #[command(flatten)]
    pub source: RulesSource,
}

fn parse_account(s: &str) -> Result<AccountId, String> {
    s.parse()
        .map_err(|e: trailwarden_model::target::TargetParseError| e.to_string())
}

fn parse_selector(s: &str) -> Result<AccountSelector, String> {
    s.parse()
        .map_err(|e: trailwarden_model::target::TargetParseError| e.to_string())
}

impl GlobalArgs {
    /// The account ids named in `--accounts`, without repeats; `None` when it names none.
    pub fn account_list(&self) -> Option<Vec<AccountId>> {
        let mut out: Vec<AccountId> = Vec::new();
        for selector in self.accounts.as_ref()? {
            if let AccountSelector::Account(id) = selector
                && !out.contains(id)
            {
                out.push(id.clone());
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// The organizational units (or the whole organization) named in `--accounts`.
    pub fn organization_scope(&self) -> Option<OrganizationScope> {
        organization_scope(self.accounts.as_deref()?)
    }
}

/// Parses `500ms`, `20s`, `5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 500ms, 20s, 5m or 1h"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use ms, s, m or h)")),
    };
    if d.is_zero() {
        return Err("a duration must be more than zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("20"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn bad_accounts_and_regions_are_rejected_with_the_value() {
        let err = Cli::try_parse_from(["trailwarden", "--accounts", "123", "trails"]).unwrap_err();
        assert!(err.to_string().contains("'123' is not 12 digits"), "{err}");
        let err = Cli::try_parse_from(["trailwarden", "--regions", "us-east-1,moon-1", "trails"])
            .unwrap_err();
        assert!(err.to_string().contains("'moon-1'"), "{err}");
    }
}
