//! `cordon serve [--config FILE] [--check]`

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The daemon's configuration ([[agent]], [audit], [control], [service]).
    #[arg(long, short, default_value = cordon::daemon::DEFAULT_CONFIG)]
    config: PathBuf,
    /// Check the configuration and every profile it names, then exit
    /// (0: fine, 1: errors, each with file:line:column).
    #[arg(long)]
    check: bool,
}

pub fn serve(args: ServeArgs) -> ExitCode {
    if args.check {
        return match cordon::daemon::load(&args.config) {
            Ok(c) => {
                println!("{}: ok ({} agents)", args.config.display(), c.agents.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    match cordon::daemon::serve(&args.config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cordon serve: {e}");
            ExitCode::FAILURE
        }
    }
}
