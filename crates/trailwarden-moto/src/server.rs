//! Starting, waiting for and stopping one `moto_server` process.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned moto version, the same one the README and CI install.
pub const MOTO_INSTALL_HINT: &str = "python3 -m pip install 'moto[server]==5.2.1' (or run ./scripts/test, which installs it into .venv)";

const START_TIMEOUT: Duration = Duration::from_secs(30);
const START_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(
        "moto_server was not found (looked at TRAILWARDEN_MOTO_SERVER, the workspace's .venv, PATH); install it with: {MOTO_INSTALL_HINT}"
    )]
    MotoMissing,
    #[error("could not start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error(
        "moto_server on port {port} did not answer within {timeout:?} (after {attempts} attempt(s)); its output:\n{log}"
    )]
    NotAnswering {
        port: u16,
        timeout: Duration,
        attempts: usize,
        log: String,
    },
    #[error("moto request {what} failed: {source}")]
    Request {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The moto patches that make its EventBridge envelopes what AWS delivers (`aws_fidelity.py`).
const AWS_FIDELITY: &str = include_str!("aws_fidelity.py");

/// `moto_server` started through the Python beside it with [`AWS_FIDELITY`] applied; the
/// plain program when there is no such Python (a moto installed some other way).
fn launcher(program: &Path) -> Command {
    let python = program.with_file_name("python3");
    if python.is_file() {
        let mut command = Command::new(python);
        command.args(["-c", AWS_FIDELITY]);
        command
    } else {
        Command::new(program)
    }
}

/// A `moto_server` child process on `127.0.0.1:<free port>`; killed when dropped.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
    _log_dir: TempDir,
}

impl MotoServer {
    /// Starts a fresh server with empty state and waits until it answers.
    pub fn start() -> Result<Self, HarnessError> {
        Self::start_program(find_moto_server().ok_or(HarnessError::MotoMissing)?)
    }

    /// Like [`MotoServer::start`], with an explicit `moto_server` executable.
    pub fn start_program(program: PathBuf) -> Result<Self, HarnessError> {
        if !program.is_file() {
            return Err(HarnessError::MotoMissing);
        }
        let mut last_log = String::new();
        let mut port = 0;
        // A free port can be taken between our probe and moto's bind; try again then.
        for _ in 0..START_ATTEMPTS {
            port = free_port()?;
            let log_dir = TempDir::new()?;
            let log_path = log_dir.path().join("moto.log");
            let log = std::fs::File::create(&log_path)?;
            let child = launcher(&program)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                // Newer regions answer HTTP 500 in some services without this (DESIGN.md).
                .env("MOTO_ALLOW_NONEXISTENT_REGION", "true")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .map_err(|source| HarnessError::Spawn {
                    program: program.display().to_string(),
                    source,
                })?;
            let mut server = MotoServer {
                child,
                port,
                _log_dir: log_dir,
            };
            if server.wait_until_answering() {
                return Ok(server);
            }
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let _ = server.child.kill();
        }
        Err(HarnessError::NotAnswering {
            port,
            timeout: START_TIMEOUT,
            attempts: START_ATTEMPTS,
            log: tail(&last_log, 40),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`, for `--endpoint-url` and `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Forgets all emulated state (every account, every region).
    pub fn reset(&self) -> Result<(), HarnessError> {
        http_request(self.port, "POST", "/moto-api/reset").map(|_| ())
    }

    fn wait_until_answering(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(reply) = http_request(self.port, "GET", "/moto-api/data.json")
                && reply.starts_with("HTTP/1.")
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `moto_server` is: `$TRAILWARDEN_MOTO_SERVER`, the workspace's `.venv`, then PATH.
fn find_moto_server() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os("TRAILWARDEN_MOTO_SERVER") {
        return Some(PathBuf::from(explicit)).filter(|p| p.is_file());
    }
    let workspace_venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
    if workspace_venv.is_file() {
        return Some(workspace_venv);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn http_request(port: u16, method: &str, path: &str) -> Result<String, HarnessError> {
    let what = format!("{method} {path}");
    let io = |source| HarnessError::Request {
        what: what.clone(),
        source,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).map_err(io)?;
    if !reply.starts_with("HTTP/1.1 200") && !reply.starts_with("HTTP/1.0 200") {
        return Err(io(std::io::Error::other(format!(
            "unexpected reply: {}",
            reply.lines().next().unwrap_or("")
        ))));
    }
    Ok(reply)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A private directory removed on drop (keeps moto's output for error messages).
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "trailwarden-moto-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
