//! Talking to a service under test on loopback: plain HTTP requests, its Prometheus metrics, a
//! webhook receiver that can refuse, a child process killed when the test ends, and waiting
//! for a condition with a deadline that names what did not happen.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request to `127.0.0.1:port` with extra header lines (each ending in `\r\n`) and a body;
/// the status and body of the answer, or `None` while nothing answers.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    out.split_once("\r\n\r\n")
        .map(|(_, body)| (status, body.to_owned()))
}

/// GET `path`: the body, or `None` while nothing answers.
pub fn get(port: u16, path: &str) -> Option<String> {
    request(port, "GET", path, "", "").map(|(_, body)| body)
}

/// A metric's value from `/metrics` (`name` may carry labels, e.g.
/// `trailwarden_rejected_messages_total{reason="not-from-aws"}`); -1 when it is not there.
pub fn metric(port: u16, name: &str) -> f64 {
    get(port, "/metrics")
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(-1.0)
}

/// Waits until `done`, at most `limit`; how long it took. Panics naming `what` otherwise.
pub fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// A child process killed when dropped (a failing test leaves no service behind).
#[derive(Debug)]
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The bodies a [`webhook_receiver`] accepted.
pub type Accepted = Arc<Mutex<Vec<String>>>;

/// A webhook receiver on loopback that answers 503 to the first `failures` requests, then
/// 200; its port and the bodies it accepted.
pub fn webhook_receiver(failures: usize) -> (u16, Accepted) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let accepted: Accepted = Arc::default();
    let bodies = accepted.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let Ok(read_half) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(read_half);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let status = if n < failures {
                "503 Service Unavailable"
            } else {
                if let Ok(mut b) = bodies.lock() {
                    b.push(String::from_utf8_lossy(&body).into_owned());
                }
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (port, accepted)
}

/// Writes `text` to `path`, readable by its owner only (token and webhook files).
pub fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receiver_refuses_then_accepts_and_metrics_parse() {
        let (port, accepted) = webhook_receiver(1);
        let body = "{\"a\":1}";
        let post = || request(port, "POST", "/hook", "", body);
        assert_eq!(post().map(|(s, _)| s), Some(503));
        assert_eq!(post().map(|(s, _)| s), Some(200));
        assert_eq!(accepted.lock().unwrap().as_slice(), [body.to_owned()]);
        assert_eq!(metric(1, "nothing_listens_here"), -1.0);
    }
}
