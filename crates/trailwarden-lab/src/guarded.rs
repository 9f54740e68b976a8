//! The lab guarded by `trailwarden watch`, as a test or a benchmark needs it: the baseline
//! captured, the forwarding rules deployed, the service started in the security account with
//! its API, a webhook receiver and the state store in a temporary folder.

use crate::{Lab, ROLE_NAME, operator_env};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use trailwarden_testkit::IsolatedCommand;
use trailwarden_testkit::service::{self, Accepted, Killed};

/// How `watch` is started.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The `trailwarden` binary under test (`env!("CARGO_BIN_EXE_trailwarden")`).
    pub bin: PathBuf,
    /// `--regions` of every command.
    pub regions: String,
    pub sweep_interval: String,
    /// More arguments of `watch`.
    pub extra: Vec<String>,
    /// Requests the webhook refuses (503) before it accepts.
    pub webhook_failures: usize,
    /// `--accounts` of the capture, the deployment and `watch` (e.g. an organizational unit);
    /// `None`: the lab's reachable accounts for the first two, the baseline's for `watch`.
    pub accounts: Option<String>,
}

impl WatchOptions {
    pub fn new(bin: &str) -> Self {
        Self {
            bin: PathBuf::from(bin),
            regions: "us-east-1,eu-west-1".into(),
            sweep_interval: "1h".into(),
            extra: Vec::new(),
            webhook_failures: 0,
            accounts: None,
        }
    }
}

/// A running guard over the lab.
#[derive(Debug)]
pub struct Guarded {
    pub dir: tempfile::TempDir,
    pub baseline: PathBuf,
    pub state: PathBuf,
    pub port: u16,
    pub token: String,
    pub log: PathBuf,
    pub webhook: Accepted,
    pub options: WatchOptions,
    pub service: Option<Killed>,
}

/// The API token the guarded service requires.
const TOKEN: &str = "lab-token-0123456789abcdef";

impl Guarded {
    /// Captures the baseline of every member account, deploys the forwarding rules, and
    /// starts `watch --remediate` with the service's session; waits until its start-up sweep
    /// is done.
    pub async fn start(lab: &Lab, options: WatchOptions) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let baseline = dir.path().join("baseline.toml");
        let state = dir.path().join("state.db");
        let operator = operator_env();
        let accounts = options.accounts.clone().unwrap_or_else(|| {
            lab.description
                .accounts
                .iter()
                .filter(|a| a.reachable)
                .map(|a| a.id.clone())
                .collect::<Vec<_>>()
                .join(",")
        });
        let global = [
            "--endpoint-url",
            lab.description.endpoint.as_str(),
            "--role-name",
            ROLE_NAME,
            "--regions",
            options.regions.as_str(),
            "--accounts",
            accounts.as_str(),
            "--quiet",
        ];
        let run = |args: &[&str], env: &[(&str, String)]| {
            let out = IsolatedCommand::new(&options.bin)
                .credentials(env)
                .args(global.iter().copied().chain(args.iter().copied()))
                .build()
                .output()
                .expect("trailwarden runs");
            assert!(
                out.status.success(),
                "trailwarden {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(
            &["baseline", "capture", "--out", path(&baseline)],
            &operator,
        );
        run(
            &[
                "deploy",
                "--event-bus-arn",
                &lab.description.security.event_bus_arn,
                "--state",
                path(&state),
                "--apply",
            ],
            &operator,
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let token_file = dir.path().join("api-token");
        service::write_private(&token_file, &format!("{TOKEN}\n")).expect("token file");
        let (hook_port, webhook) = service::webhook_receiver(options.webhook_failures);
        let hooks = dir.path().join("webhooks");
        service::write_private(&hooks, &format!("http://127.0.0.1:{hook_port}/hook\n"))
            .expect("webhook file");
        let mut guarded = Self {
            log: dir.path().join("watch.log"),
            dir,
            baseline,
            state,
            port,
            token: TOKEN.into(),
            webhook,
            options,
            service: None,
        };
        let credentials = lab
            .service_credentials()
            .await
            .expect("the security account's session");
        let endpoint = lab.description.endpoint.clone();
        let queue = lab.description.security.queue_url.clone();
        let listen = format!("127.0.0.1:{port}");
        let mut args: Vec<String> = [
            "--endpoint-url",
            &endpoint,
            "--role-name",
            ROLE_NAME,
            "--regions",
            &guarded.options.regions,
            "-v",
            "--log-format",
            "json",
            "watch",
            "--queue-url",
            &queue,
            "--remediate",
            "--sweep-interval",
            &guarded.options.sweep_interval,
            "--listen",
            &listen,
            "--api-token-file",
            path(&token_file),
            "--notify-webhook-file",
            path(&hooks),
            "--baseline",
            path(&guarded.baseline),
            "--state",
            path(&guarded.state),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if let Some(accounts) = &guarded.options.accounts {
            args.extend(["--accounts".to_owned(), accounts.clone()]);
        }
        args.extend(guarded.options.extra.iter().cloned());
        let log = std::fs::File::create(&guarded.log).expect("log file");
        let child = IsolatedCommand::new(&guarded.options.bin)
            .credentials(&credentials)
            .args(args.iter().map(String::as_str))
            .build()
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("watch starts");
        guarded.service = Some(Killed(child));
        let port = guarded.port;
        service::wait_for("the start-up sweep", Duration::from_secs(90), || {
            service::metric(port, "trailwarden_sweeps_total") >= 1.0
        });
        guarded
    }

    pub fn metric(&self, name: &str) -> f64 {
        service::metric(self.port, name)
    }

    /// The service's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `/api/incidents`.
    pub fn incidents(&self) -> Value {
        let (status, body) = service::request(
            self.port,
            "GET",
            "/api/incidents",
            &format!("Authorization: Bearer {}\r\n", self.token),
            "",
        )
        .expect("the API answers");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("JSON incidents")
    }

    /// Every detection of every incident, flattened.
    pub fn detections(&self) -> Vec<Value> {
        self.incidents()["incidents"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|i| i["timeline"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// The notifications the webhook accepted, parsed.
    pub fn notifications(&self) -> Vec<Value> {
        self.webhook
            .lock()
            .map(|b| {
                b.iter()
                    .filter_map(|s| serde_json::from_str(s).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}
