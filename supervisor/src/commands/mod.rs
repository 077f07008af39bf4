//! CLI verbs. Each file parses nothing itself: clap does, here.

mod approve;
mod audit;
mod check;
mod doctor;
mod generate;
mod identity;
mod learn;
mod operator;
mod profiles;
mod run;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cordon::daemon::control::Request;

/// Exit status when cordon itself failed before the agent started.
pub const EXIT_SETUP_FAILED: u8 = 125;

#[derive(Parser)]
#[command(
    name = "cordon",
    version,
    about = "Run AI agents under Landlock and seccomp, per a TOML profile."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command inside the sandbox a profile describes.
    Run(run::RunArgs),
    /// Run a command observed (not confined) and write a least-privilege
    /// profile from what it did.
    Learn(learn::LearnArgs),
    /// Check profiles and report every error with file:line:column.
    Check {
        /// Profile files (or names, as `run --profile` takes) to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also check that each file grants nothing PARENT lacks (a
        /// sub-agent's profile); every widening is named.
        #[arg(long, value_name = "PARENT")]
        within: Option<PathBuf>,
    },
    /// Probe this host and say which profile features will work here.
    Doctor,
    /// List the profiles `--profile NAME` finds: ~/.config/cordon/profiles,
    /// then /etc/cordon/profiles, then the shipped ones.
    Profiles,
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// cordon's workload identity: its public keys, verifying and minting tokens.
    Identity {
        #[command(subcommand)]
        command: identity::IdentityCommand,
    },
    /// List the calls waiting for approval (operators; over the control socket).
    Approvals(approve::ListArgs),
    /// Approve a waiting call: once, or wider with --for-session/--count/--ttl.
    Approve(approve::ApproveArgs),
    /// Deny a waiting call.
    Deny(approve::DenyArgs),
    /// Run the configured agents as a daemon (systemd Type=notify).
    Serve(serve::ServeArgs),
    /// List the daemon's agents and sessions.
    Ps {
        #[command(flatten)]
        common: operator::Common,
    },
    /// End a session (by session id or agent name); its restart policy applies.
    Kill {
        /// A session id (see `cordon ps`), or an agent's name.
        session: String,
        #[command(flatten)]
        common: operator::Common,
    },
    /// Start a configured agent now (also one stopped or given up on).
    Start {
        /// The agent's `name` in the daemon's configuration.
        agent: String,
        #[command(flatten)]
        common: operator::Common,
    },
    /// Stop an agent's session and keep it stopped.
    Stop {
        /// The agent's `name` in the daemon's configuration.
        agent: String,
        #[command(flatten)]
        common: operator::Common,
    },
    /// Man pages and shell completions from this definition (for packaging).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: generate::GenerateCommand,
    },
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap exits 2 on usage errors; keep 125 for "cordon failed
            // before the agent started" so wrappers can tell it apart from
            // the agent's own status. --help and --version are not failures.
            return if e.use_stderr() {
                ExitCode::from(EXIT_SETUP_FAILED)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging();
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Learn(args) => learn::learn(args),
        Command::Check { files, within } => check::check(&files, within.as_deref()),
        Command::Doctor => doctor::doctor(),
        Command::Profiles => profiles::profiles(),
        Command::Audit { command } => audit::audit(command),
        Command::Identity { command } => identity::identity(command),
        Command::Approvals(args) => approve::list(&args),
        Command::Approve(args) => approve::approve(&args),
        Command::Deny(args) => approve::deny(&args),
        Command::Serve(args) => serve::serve(args),
        Command::Generate { what } => {
            generate::generate(what, <Cli as clap::CommandFactory>::command())
        }
        Command::Ps { common } => operator::operator(&common, &Request::Ps),
        Command::Kill { session, common } => {
            operator::operator(&common, &Request::Kill { session })
        }
        Command::Start { agent, common } => operator::operator(&common, &Request::Start { agent }),
        Command::Stop { agent, common } => operator::operator(&common, &Request::Stop { agent }),
    }
}

/// Logs go to stderr; `CORDON_LOG` takes an env-filter such as `debug`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CORDON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}
