//! The `trailwarden` command line. Thin: parses arguments, runs a command from the library
//! crates, renders its result, and maps it to an exit code. No AWS logic lives here.

use clap::Parser;
use std::process::ExitCode;
use trailwarden::args::{BaselineCommand, Cli, Command, RulesCommand};
use trailwarden::{
    deploy_cmd, exit, incidents_cmd, posture_cmd, remediate_cmd, rules_cmd, scan_cmd, trails_cmd,
    watch_cmd,
};
use trailwarden_aws::{AwsOptions, ClientFactory};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose, cli.global.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    let code = runtime.block_on(run(cli));
    ExitCode::from(code)
}

async fn run(cli: Cli) -> u8 {
    let g = &cli.global;
    let options = AwsOptions {
        profile: g.profile.clone(),
        endpoint_url: g.endpoint_url.clone(),
        region: g.home_region.clone(),
        max_attempts: g.max_attempts,
        call_timeout: g.call_timeout,
        ..AwsOptions::default()
    };
    let factory = ClientFactory::new(&options).await;
    let result = match cli.command {
        Command::Trails => trails_cmd::run(&factory, g).await,
        Command::Baseline(BaselineCommand::Capture(args)) => {
            posture_cmd::capture(&factory, g, &args).await
        }
        Command::Audit(args) => posture_cmd::audit(&factory, g, &args).await,
        Command::Remediate(args) => remediate_cmd::remediate(&factory, g, &args).await,
        Command::Journal(args) => remediate_cmd::journal(g, &args),
        Command::Scan(args) => scan_cmd::run(&factory, g, &args).await,
        Command::Watch(args) => watch_cmd::run(&factory, g, &args).await,
        Command::Deploy(args) => deploy_cmd::run(&factory, g, &args).await,
        Command::Incidents(args) => incidents_cmd::run(g, &args),
        Command::Rules(RulesCommand::List(args)) => rules_cmd::list(&args, g.format),
        Command::Rules(RulesCommand::Test(args)) => rules_cmd::test(&args),
        Command::Rules(RulesCommand::Lint(args)) => rules_cmd::lint(&args),
        Command::Techniques(args) => rules_cmd::techniques(&args, g.format),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::ERROR
        }
    }
}

fn init_logging(verbose: u8, format: trailwarden::args::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        // The SDK warns about every region source it tried (IMDS...) before the fallback.
        0 => "warn,aws_config=error",
        1 => "info,aws_config=warn,aws_smithy_runtime=warn",
        2 => "debug,aws_smithy_runtime=info,hyper_util=info,rustls=info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Logs go to stderr so stdout stays machine-readable. The SDK never logs secrets at
    // these levels; credentials are not logged by trailwarden at any level.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into files or log pipelines.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match format {
        trailwarden::args::LogFormat::Text => builder.try_init(),
        // Fields flattened to top-level keys, so a pipeline can filter on `account`, `rule`...
        trailwarden::args::LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}
