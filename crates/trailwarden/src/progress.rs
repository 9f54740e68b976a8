//! A progress bar on stderr for long sweeps; silent when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use trailwarden_aws::snapshot::Phase;
use trailwarden_engine::state::ReadProgress;

/// Wraps an indicatif bar that draws only on an interactive stderr.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(quiet: bool, message: &str, total: u64) -> Self {
        Self::with_unit(quiet, message, total, "calls")
    }

    /// A bar counting `unit`s (calls, inputs, ...).
    pub fn with_unit(quiet: bool, message: &str, total: u64, unit: &str) -> Self {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
        } else {
            ProgressBar::new(total)
        };
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{elapsed}})"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(message.to_owned());
        Self { bar }
    }

    pub fn set_message(&self, message: &str) {
        self.bar.set_message(message.to_owned());
    }

    pub fn add_work(&self, n: u64) {
        self.bar.inc_length(n);
    }

    pub fn step(&self) {
        self.bar.inc(1);
    }

    /// Runs `f` (which writes to stderr) with the bar hidden.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// The engine's state reads drawn on this bar.
    pub fn state_reader(&self) -> impl Fn(ReadProgress) + Sync + '_ {
        move |p| match p {
            ReadProgress::Resolving => self.set_message("resolving accounts and regions"),
            ReadProgress::Reading {
                accounts,
                regions,
                cells,
            } => {
                self.set_message(&format!(
                    "reading {accounts} account(s) × {regions} region(s)"
                ));
                self.add_work(cells as u64);
            }
            ReadProgress::Step(phase) => {
                // Trails and their resources are found as the read goes: each adds itself.
                if phase != Phase::Region {
                    self.add_work(1);
                }
                self.step();
            }
            ReadProgress::Done => {}
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
