//! The harness itself: servers are private, answer, reset, and go away; a missing moto is an
//! error that says how to install it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use trailwarden_moto::{HarnessError, MotoServer};

fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

#[test]
fn a_missing_moto_names_the_install_command() {
    let err = MotoServer::start_program(PathBuf::from("/nonexistent/moto_server")).unwrap_err();
    assert!(matches!(err, HarnessError::MotoMissing));
    let text = err.to_string();
    assert!(text.contains("pip install 'moto[server]==5.2.1'"), "{text}");
}

#[test]
fn servers_are_private_answer_and_stop_when_dropped() {
    let a = MotoServer::start().expect("moto");
    let b = MotoServer::start().expect("moto");
    assert_ne!(a.port(), b.port());
    assert!(a.endpoint().starts_with("http://127.0.0.1:"));
    assert!(
        get(a.port(), "/moto-api/data.json")
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );
    a.reset().expect("reset");
    let port = b.port();
    drop(b);
    assert!(
        get(port, "/moto-api/data.json").is_err(),
        "a dropped server must not answer"
    );
}
