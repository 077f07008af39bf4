//! `cordon run --profile FILE [--workspace DIR] [--intent TEXT] -- CMD [ARGS...]`

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use cordon::process::{self, ExecPolicy, Killer, Policy, Stops, EXIT_SETUP_FAILED};
use cordon::sandbox::{self, Host, Request};

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

/// Where session directories go: `CORDON_SESSION_DIR`, else /dev/shm
/// (memory: creating and removing them costs microseconds, not the
/// ~0.3 ms a discard-mounted disk takes), else TMPDIR.
fn session_base() -> PathBuf {
    if let Some(dir) = std::env::var_os("CORDON_SESSION_DIR") {
        return PathBuf::from(dir);
    }
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        return shm;
    }
    std::env::temp_dir()
}

/// `cordon-shim` is installed next to `cordon`.
fn shim_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let shim = exe.parent()?.join("cordon-shim");
    shim.is_file().then_some(shim)
}

fn fail(message: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("cordon: {message}");
    ExitCode::from(code)
}

pub fn run(args: RunArgs) -> ExitCode {
    // Nothing cordon's caller left open may reach the agent.
    if let Err(e) = cordon::sys::cloexec_inherited_fds() {
        return fail(
            format_args!("cannot mark inherited descriptors close-on-exec: {e}"),
            EXIT_SETUP_FAILED,
        );
    }
    let profile = match cordon::profile::load(&args.profile) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return fail("the profile has errors; nothing was run", EXIT_SETUP_FAILED);
        }
    };
    let invocation_dir = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            return fail(
                format_args!("cannot read the current directory: {e}"),
                EXIT_SETUP_FAILED,
            )
        }
    };
    let request = Request {
        workspace: args.workspace.unwrap_or_else(|| invocation_dir.clone()),
        command: args.command,
        invocation_dir,
        session_base: session_base(),
        shim: shim_binary(),
    };
    // Block the signals we supervise before any child exists, so none is
    // lost between clone and the first poll.
    let signals = match cordon::sys::fd::block_signals_to_fd(&[
        libc::SIGCHLD,
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
    ]) {
        Ok(fd) => fd,
        Err(e) => {
            return fail(
                format_args!("cannot set up signal handling: {e}"),
                EXIT_SETUP_FAILED,
            )
        }
    };
    let host = Host::probe();
    let plan = match sandbox::build(&profile, &request, &host, &|name| std::env::var_os(name)) {
        Ok(plan) => plan,
        Err(e) => return fail(&e, e.exit_code()),
    };
    for w in &plan.confined.weakened {
        eprintln!("cordon: WARNING: best_effort: {w}");
        tracing::warn!(profile = %profile.name, "best effort: {w}");
    }
    let identity = plan.session.identity(&profile.name);
    tracing::info!(
        session = %plan.session.id,
        %identity,
        intent = args.intent.as_deref().unwrap_or(""),
        command = ?request.command,
        "starting agent"
    );
    let running = match process::launch(&plan.confined, &plan.command, process::Io::default()) {
        Ok(r) => r,
        Err(e) => return fail(e, EXIT_SETUP_FAILED),
    };
    let killer = match Killer::new(&running.init.pidfd) {
        Ok(k) => k,
        Err(e) => {
            return fail(
                format_args!("cannot hold the sandbox's pidfd: {e}"),
                EXIT_SETUP_FAILED,
            )
        }
    };
    let policy = Policy {
        on_violation: profile.syscalls.on_violation,
        stop_grace: profile.stop_grace,
        exec: Some(ExecPolicy {
            allowed: plan.exec_allowed.clone(),
            undeclared: profile.divergence.undeclared_tool,
        }),
        deadline: None,
        loud: true,
    };
    let outcome = match process::supervise(&running, Stops::Signals(&signals), policy, &killer) {
        Ok(o) => o,
        Err(e) => return fail(e, EXIT_SETUP_FAILED),
    };
    if let Some(message) = outcome.message(&plan.confined, &plan.command) {
        eprintln!("cordon: {message}");
    }
    tracing::info!(session = %plan.session.id, ?outcome, "agent finished");
    ExitCode::from(outcome.exit_code())
}
