//! Dev-only test harness: runs `moto_server` on a free loopback port for one test (or one
//! lab), and a fault-injecting proxy in front of it that answers chosen requests with the
//! errors real AWS gives and moto never does (AccessDenied, throttling, disabled regions).
//!
//! This crate must never be a dependency of a shipped binary, and it never skips: if moto is
//! missing, starting the server fails with the command that installs it.

mod fault_proxy;
mod server;

pub use fault_proxy::{
    CALLS_PATH, Exchange, FAULTS_PATH, Fault, FaultId, FaultProxy, Observer, RequestInfo,
    post_fault,
};
pub use server::{HarnessError, MOTO_INSTALL_HINT, MotoServer};
