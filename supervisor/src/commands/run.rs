//! `cordon run --profile FILE [--workspace DIR] [--intent TEXT] -- CMD [ARGS...]`

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The capability profile (TOML).
    #[arg(long, short)]
    profile: PathBuf,
    /// The agent's workspace, `{workspace}` in the profile (default: the current directory).
    #[arg(long, short)]
    workspace: Option<PathBuf>,
    /// What the agent is asked to do, recorded with the session.
    #[arg(long)]
    intent: Option<String>,
    /// The command to run, and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

pub fn run(args: RunArgs) -> ExitCode {
    let _ = args;
    ExitCode::from(super::EXIT_SETUP_FAILED)
}
