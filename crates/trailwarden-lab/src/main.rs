//! `trailwarden-lab`: run the emulated estate for the demo and for manual testing.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use trailwarden_lab::{Lab, LabDescription, LabSpec};

/// An emulated AWS estate on loopback: moto, a fault-injecting proxy, member accounts with
/// CloudTrail trails. For tests and the demo; never point it at real AWS.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start moto and the proxy, seed the accounts, write the description, and serve until
    /// interrupted (Ctrl-C, SIGTERM or `trailwarden-lab down`).
    Up {
        /// Member accounts with trails.
        #[arg(long, default_value_t = 3)]
        accounts: usize,
        /// Seed a moto that is already running here (fresh) instead of starting one.
        #[arg(long, value_name = "URL")]
        endpoint_url: Option<String>,
        /// Extra member accounts whose AssumeRole is denied (AccessDenied), to show how
        /// failures are reported.
        #[arg(long, default_value_t = 1)]
        denied_accounts: usize,
        /// Where to write the lab description (JSON).
        #[arg(long, default_value = "target/lab.json")]
        out: PathBuf,
    },
    /// Perform a tampering technique of the catalog against a member account, as an attacker
    /// holding a role there would.
    Attack {
        /// The technique (see --list).
        #[arg(required_unless_present = "list")]
        technique: Option<String>,
        /// The member account to attack.
        #[arg(long, required_unless_present = "list")]
        account: Option<String>,
        /// List the techniques with their catalog reference.
        #[arg(long)]
        list: bool,
        /// The description `up` wrote.
        #[arg(long, default_value = "target/lab.json")]
        desc: PathBuf,
    },
    /// Stop a lab started with `up`.
    Down {
        /// The description `up` wrote.
        #[arg(long, default_value = "target/lab.json")]
        desc: PathBuf,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Up {
            accounts,
            endpoint_url,
            denied_accounts,
            out,
        } => {
            let spec = LabSpec {
                accounts,
                denied_accounts,
                ..LabSpec::default()
            };
            let lab = Lab::start_on(&spec, endpoint_url.as_deref()).await?;
            let text = serde_json::to_string_pretty(&lab.description)?;
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            // Write then rename, so a reader never sees half a description.
            let tmp = out.with_extension("json.tmp");
            std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &out).with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "lab up: endpoint {} (moto {}), {} account(s), role {}; description in {}",
                lab.description.endpoint,
                lab.description.moto_endpoint,
                lab.description.accounts.len(),
                lab.description.role_name,
                out.display()
            );
            wait_for_stop().await;
            let _ = std::fs::remove_file(&out);
            eprintln!("lab down");
            Ok(())
        }
        Command::Attack {
            technique,
            account,
            list,
            desc,
        } => {
            if list {
                for t in trailwarden_lab::attacks::TECHNIQUES {
                    println!("{:<28} {:<4} {}", t.id, t.catalog, t.summary);
                }
                return Ok(());
            }
            let lab = read_description(&desc)?;
            let (technique, account) = (technique.unwrap_or_default(), account.unwrap_or_default());
            let target = lab.member(&account)?;
            let attacker = lab.attacker(&account).await;
            for fault in trailwarden_lab::attacks::setup_faults(&technique) {
                trailwarden_lab::trailwarden_moto::post_fault(&lab.endpoint, &fault).with_context(
                    || format!("installing a fault in the lab at {}", lab.endpoint),
                )?;
            }
            let done = trailwarden_lab::attacks::perform(&technique, &attacker, target).await?;
            for fake in &done.fakes {
                trailwarden_lab::trailwarden_moto::post_fault(&lab.endpoint, fake).with_context(
                    || format!("installing a fake answer in the lab at {}", lab.endpoint),
                )?;
            }
            println!("{}", done.summary);
            Ok(())
        }
        Command::Down { desc } => {
            let lab = read_description(&desc)?;
            let status = std::process::Command::new("kill")
                .arg(lab.pid.to_string())
                .status()
                .context("running kill")?;
            anyhow::ensure!(status.success(), "no lab process {} to stop", lab.pid);
            Ok(())
        }
    }
}

fn read_description(desc: &std::path::Path) -> Result<LabDescription> {
    let text = std::fs::read_to_string(desc)
        .with_context(|| format!("reading {} (is a lab up?)", desc.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a lab description", desc.display()))
}

async fn wait_for_stop() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
