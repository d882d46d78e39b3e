//! The binary: parse flags, set up logging, call the library. Nothing else lives here.

use std::process::ExitCode;

use clap::Parser;
use sei_condition_watcher::config::{Cli, Command, LogFormat};

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(async_main());
    // Dropping a runtime waits for every blocking task (an SDK export stuck on a hanging
    // collector would hold the exit past the shutdown deadline): give them a second.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

async fn async_main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check(args)) => {
            sei_condition_watcher::telemetry::init_logging(LogFormat::Text, Some("warn"));
            match sei_condition_watcher::check::run(args).await {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("error: {}", e.line());
                    ExitCode::from(2)
                }
            }
        }
        None => {
            let args = cli.run;
            sei_condition_watcher::telemetry::init_logging(
                args.log_format,
                args.log_filter.as_deref(),
            );
            match sei_condition_watcher::run(args, sei_condition_watcher::shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(kind = e.kind(), "{}", e.line());
                    ExitCode::from(e.exit_code())
                }
            }
        }
    }
}
