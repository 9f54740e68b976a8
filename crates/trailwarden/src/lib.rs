//! The `trailwarden` command line as a library: argument parsing (`args`), one `*_cmd` module
//! per command that calls the engine (`trailwarden-engine`) and renders its result, and the
//! HTTP surface of `watch` (`http_api`). AWS calls go through `trailwarden-aws`; what is
//! decided about state and events is the engine's. No SDK client is built here.

// Commands return errors instead of panicking; stdout is written only through `output`.
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

pub mod args;
pub mod deploy_cmd;
pub mod http_api;
pub mod incidents_cmd;
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
