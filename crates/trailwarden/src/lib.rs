//! The `trailwarden` library: the commands behind the CLI, and the guard (`guard`) that both
//! `trailwarden watch` and the Lambda (`trailwarden-lambda`) run. AWS calls go through
//! `trailwarden-aws`; no SDK client is built here.

pub mod args;
pub mod deploy_cmd;
pub mod forwarding_check;
pub mod guard;
pub mod incidents_cmd;
pub mod notify;
pub mod output;
pub mod posture_cmd;
pub mod progress;
pub mod remediate_cmd;
pub mod rules_cmd;
pub mod scan_cmd;
pub mod targets;
pub mod trails_cmd;
pub mod watch_cmd;

/// Exit codes shared by every command (DESIGN.md).
pub mod exit {
    /// Done, nothing to report.
    pub const OK: u8 = 0;
    /// Done, with findings (or, for inventories, with targets that could not be read).
    pub const FINDINGS: u8 = 1;
    /// Could not run.
    pub const ERROR: u8 = 2;
}
