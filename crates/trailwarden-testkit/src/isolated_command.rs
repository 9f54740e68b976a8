//! The command of a binary under test, isolated from the developer's environment.
//!
//! A test that runs `trailwarden` (or `trailwarden-lambda`) must see the same thing on every
//! machine: no `AWS_PROFILE`, keys, region or endpoint from the developer's shell, no
//! `TRAILWARDEN_*` setting, no `~/.aws` files and no instance metadata lookup. The binary
//! gets only `PATH`, what [`IsolatedCommand::new`] sets, and what the test adds.

use std::ffi::OsStr;
use std::process::Command;

/// The region every isolated command runs in unless the test says otherwise (the lab's home
/// region).
pub const REGION: &str = "us-east-1";

/// What `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE` point at: a file that is never
/// there, so no profile of the machine is read.
pub const NO_AWS_FILE: &str = "/nonexistent/trailwarden-test";

/// The variables a process takes static or session credentials from.
const CREDENTIAL_VARIABLES: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// A builder of the [`Command`] that runs a binary under test.
///
/// ```no_run
/// # use trailwarden_testkit::IsolatedCommand;
/// let out = IsolatedCommand::new("/path/to/trailwarden") // env!("CARGO_BIN_EXE_trailwarden")
///     .credentials(&[("AWS_ACCESS_KEY_ID", "AKIA…"), ("AWS_SECRET_ACCESS_KEY", "…")])
///     .args(["trails", "--format", "json"])
///     .build()
///     .output();
/// ```
#[derive(Debug)]
pub struct IsolatedCommand {
    command: Command,
}

impl IsolatedCommand {
    /// The binary at `binary` (each crate passes its own `env!("CARGO_BIN_EXE_…")`) with an
    /// empty environment but for `PATH`, `AWS_REGION` ([`REGION`]), AWS config and credentials
    /// files that do not exist ([`NO_AWS_FILE`]) and the instance metadata service turned off.
    /// No credentials: add them with [`IsolatedCommand::credentials`].
    pub fn new(binary: impl AsRef<OsStr>) -> Self {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_REGION", REGION)
            .env("AWS_CONFIG_FILE", NO_AWS_FILE)
            .env("AWS_SHARED_CREDENTIALS_FILE", NO_AWS_FILE)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        Self { command }
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Runs with these credentials, given as environment variable pairs
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, and `AWS_SESSION_TOKEN` for a role
    /// session). They replace any credentials set before, so a session token never outlives
    /// the keys it belongs to.
    pub fn credentials<K, V>(mut self, pairs: &[(K, V)]) -> Self
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for name in CREDENTIAL_VARIABLES {
            self.command.env_remove(name);
        }
        for (name, value) in pairs {
            self.command.env(name, value);
        }
        self
    }

    /// Uses these AWS CLI `config` and `credentials` files instead of none (named profiles).
    pub fn aws_files(mut self, config: impl AsRef<OsStr>, credentials: impl AsRef<OsStr>) -> Self {
        self.command
            .env("AWS_CONFIG_FILE", config)
            .env("AWS_SHARED_CREDENTIALS_FILE", credentials);
        self
    }

    /// Sets one more environment variable (or replaces one set before).
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(name, value);
        self
    }

    /// Leaves a variable out (`AWS_REGION`, for a test of where else the region comes from).
    pub fn env_remove(mut self, name: impl AsRef<OsStr>) -> Self {
        self.command.env_remove(name);
        self
    }

    /// The command, to run as it is or to adjust further (stdio, more arguments). For tokio,
    /// `tokio::process::Command::from(it)`.
    pub fn build(self) -> Command {
        self.command
    }
}

impl From<IsolatedCommand> for Command {
    fn from(isolated: IsolatedCommand) -> Self {
        isolated.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(c: &Command) -> BTreeMap<String, Option<String>> {
        c.get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn the_environment_is_what_the_builder_sets_and_nothing_else() {
        let c = IsolatedCommand::new("/bin/true")
            .credentials(&[
                ("AWS_ACCESS_KEY_ID", "AKIA1"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
            ])
            .args(["a", "b"])
            .build();
        let vars = env(&c);
        let set: Vec<&str> = vars
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(
            set,
            [
                "AWS_ACCESS_KEY_ID",
                "AWS_CONFIG_FILE",
                "AWS_EC2_METADATA_DISABLED",
                "AWS_REGION",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SHARED_CREDENTIALS_FILE",
                "PATH"
            ],
            "{vars:?}"
        );
        let args: Vec<&OsStr> = c.get_args().collect();
        assert_eq!(args, ["a", "b"]);
    }

    #[test]
    fn new_credentials_replace_a_session_token_set_before() {
        let c = IsolatedCommand::new("/bin/true")
            .credentials(&[
                ("AWS_ACCESS_KEY_ID", "ASIA1"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
                ("AWS_SESSION_TOKEN", "t"),
            ])
            .credentials(&[
                ("AWS_ACCESS_KEY_ID", "AKIA2"),
                ("AWS_SECRET_ACCESS_KEY", "u"),
            ])
            .build();
        let vars = env(&c);
        assert_eq!(vars["AWS_ACCESS_KEY_ID"].as_deref(), Some("AKIA2"));
        assert_eq!(vars.get("AWS_SESSION_TOKEN").cloned().flatten(), None);
    }

    #[test]
    fn the_child_sees_only_what_the_builder_sets() {
        // `env` prints the environment it got: what the builder set, and nothing of this test
        // process's own (cargo's CARGO_* variables, HOME, the developer's AWS_*).
        let out = IsolatedCommand::new("env")
            .build()
            .output()
            .expect("env runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut names: Vec<&str> = text.lines().filter_map(|l| l.split('=').next()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "AWS_CONFIG_FILE",
                "AWS_EC2_METADATA_DISABLED",
                "AWS_REGION",
                "AWS_SHARED_CREDENTIALS_FILE",
                "PATH"
            ],
            "{text}"
        );
    }
}
