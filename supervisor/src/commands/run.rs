//! `cordon run --profile FILE|NAME [--workspace DIR] [--intent TEXT] -- CMD [ARGS...]`

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use cordon::audit::AuditLog;
use cordon::broker;
use cordon::host::Host;
use cordon::process::{Stops, EXIT_SETUP_FAILED};
use cordon::profile::{Placeholders, Profile};
use cordon::sandbox::Request;
use cordon::session::{Approvers, Egress, Planned, Start};

#[derive(clap::Args)]
pub struct RunArgs {
    /// The capability profile: a TOML file, or the name of one in
    /// ~/.config/cordon/profiles, /etc/cordon/profiles or the shipped
    /// profiles (`cordon profiles` lists them).
    #[arg(long, short)]
    profile: PathBuf,
    /// The agent's workspace, `{workspace}` in the profile (default: the current directory).
    #[arg(long, short)]
    workspace: Option<PathBuf>,
    /// What the agent is asked to do, recorded with the session.
    #[arg(long)]
    intent: Option<String>,
    /// The audit log (hash-chained JSONL). Default: `[audit] path` of the
    /// profile, else `CORDON_AUDIT`, else /var/log/cordon/audit.jsonl for
    /// root and ~/.local/state/cordon/audit.jsonl for other users.
    #[arg(long)]
    audit: Option<PathBuf>,
    /// The operator control socket for approvals (`cordon approve`).
    /// Default: `<session id>.sock` in /run/cordon/approvals for root, else
    /// in $XDG_RUNTIME_DIR/cordon/approvals, else in
    /// /tmp/cordon-<uid>/approvals. Only made when
    /// the profile has calls that need approval.
    #[arg(long, value_name = "PATH")]
    control_socket: Option<PathBuf>,
    /// Where `cordon serve` wants the session id written (internal).
    #[arg(long, hide = true)]
    session_file: Option<PathBuf>,
    /// The digest of the profile `cordon serve` checked (internal): any
    /// other profile is refused.
    #[arg(long, hide = true)]
    profile_digest: Option<String>,
    /// The command to run, and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

/// Where the audit log goes when neither `--audit` nor the profile says.
fn default_audit_path() -> PathBuf {
    if let Some(p) = std::env::var_os("CORDON_AUDIT") {
        return PathBuf::from(p);
    }
    if cordon::sys::geteuid() == 0 {
        return PathBuf::from("/var/log/cordon/audit.jsonl");
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    state.join("cordon/audit.jsonl")
}

/// Opens the audit log, refusing one the agent could write.
fn open_audit(
    args_path: Option<&Path>,
    profile: &Profile,
    placeholders: &Placeholders,
) -> Result<AuditLog, String> {
    let path = match (args_path, &profile.audit.path) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(t)) => t.expand(placeholders),
        (None, None) => default_audit_path(),
    };
    let log = AuditLog::open(&path).map_err(|e| format!("cannot open the audit log: {e}"))?;
    let real = std::fs::canonicalize(&path).unwrap_or(path);
    for rule in &profile.filesystem.write {
        let granted = rule.path.expand(placeholders);
        let granted = std::fs::canonicalize(&granted).unwrap_or(granted);
        if real.starts_with(&granted) {
            return Err(format!(
                "the audit log {} lies under the agent's write grant `{}` ({}): the agent could rewrite its own record; put the log elsewhere",
                real.display(),
                rule.path,
                rule.origin
            ));
        }
    }
    Ok(log)
}

/// Where session directories go: `CORDON_SESSION_DIR`, else /dev/shm
/// (memory: creating and removing them costs microseconds, not the
/// ~0.3 ms a discard-mounted disk takes), else TMPDIR.
pub(super) fn session_base() -> PathBuf {
    if let Some(dir) = std::env::var_os("CORDON_SESSION_DIR") {
        return PathBuf::from(dir);
    }
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        return shm;
    }
    std::env::temp_dir()
}

/// Blocks the signals the supervisor loop takes (through a signalfd)
/// before any child exists, so none is lost between clone and the first
/// poll.
pub(super) fn supervised_signals() -> Result<std::os::fd::OwnedFd, ExitCode> {
    cordon::sys::fd::block_signals_to_fd(&[
        libc::SIGCHLD,
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
    ])
    .map_err(|e| {
        fail(
            format_args!("cannot set up signal handling: {e}"),
            EXIT_SETUP_FAILED,
        )
    })
}

pub(super) fn fail(message: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("cordon: {message}");
    ExitCode::from(code)
}

pub fn run(mut args: RunArgs) -> ExitCode {
    // Nothing cordon's caller left open may reach the agent.
    if let Err(e) = cordon::sys::cloexec_inherited_fds() {
        return fail(
            format_args!("cannot mark inherited descriptors close-on-exec: {e}"),
            EXIT_SETUP_FAILED,
        );
    }
    // A file-size limit reached by the audit log must refuse calls, not
    // kill the supervisor (SIGXFSZ's default action).
    if let Err(e) = cordon::sys::ignore_file_size_signal() {
        return fail(
            format_args!("cannot ignore SIGXFSZ: {e}"),
            EXIT_SETUP_FAILED,
        );
    }
    match cordon::profile::find(&args.profile) {
        Ok(path) => args.profile = path,
        Err(e) => return fail(e, EXIT_SETUP_FAILED),
    }
    let profile = match cordon::profile::load(&args.profile) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return fail("the profile has errors; nothing was run", EXIT_SETUP_FAILED);
        }
    };
    if let Some(want) = &args.profile_digest {
        if *want != cordon::daemon::profile_digest(&profile) {
            return fail(
                format_args!(
                    "{} (or a profile it extends) changed on disk since cordon serve last checked it; reload the daemon (systemctl reload cordon) to check and use it",
                    args.profile.display()
                ),
                EXIT_SETUP_FAILED,
            );
        }
    }
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
        shim: broker::shim_binary(),
        cache: cordon::sandbox::host_cache::default_dir(),
    };
    let signals = match supervised_signals() {
        Ok(fd) => fd,
        Err(code) => return code,
    };
    let host = Host::probe();
    let planned = match Planned::confined(std::sync::Arc::new(profile), &request, &host) {
        Ok(p) => p,
        Err(e) => return fail(&e, e.exit_code()),
    };
    let profile = std::sync::Arc::clone(&planned.profile);
    let audit = match open_audit(args.audit.as_deref(), &profile, &planned.plan.placeholders) {
        Ok(a) => Arc::new(a),
        Err(e) => return fail(e, EXIT_SETUP_FAILED),
    };
    let session_id = planned.id().to_string();
    if let Some(f) = &args.session_file {
        if let Err(e) = std::fs::write(f, format!("{session_id}\n")) {
            return fail(
                format_args!("cannot write the session id to {}: {e}", f.display()),
                EXIT_SETUP_FAILED,
            );
        }
    }
    tracing::info!(
        session = %session_id,
        identity = %planned.identity(),
        intent = args.intent.as_deref().unwrap_or(""),
        command = ?request.command,
        "starting agent"
    );
    // Bound before the agent exists; served once the broker runs.
    let mut control = match bind_control(&profile, args.control_socket.as_deref(), &session_id) {
        Ok(c) => c,
        Err(e) => return fail(e, EXIT_SETUP_FAILED),
    };
    let approvers = Approvers {
        operators: control.is_some(),
        tty: approval_terminal(&profile, &planned.plan.placeholders),
    };
    let start = Start {
        audit,
        intent: args.intent.clone(),
        argv: request.command.clone(),
        io: cordon::process::Io::default(),
        parent: None,
        loud: true,
        approvers,
        egress: Egress::Profile,
        control_socket: control.as_ref().map(|c| c.path().to_path_buf()),
    };
    let started = match planned.start(start) {
        Ok(s) => s,
        Err(e) => return fail(&e, e.exit_code()),
    };
    // Dead sessions are swept while the child sets itself up.
    cordon::sandbox::session_dir::sweep_dead(&request.session_base);
    if let (Some(session), Some(c)) = (started.broker_session(), control.as_mut()) {
        let registry = Arc::new(broker::control::Registry::default());
        registry.add(session);
        match broker::control::start(c, registry) {
            Ok(()) => tracing::info!(socket = %c.path().display(), "approvals: control socket"),
            Err(e) => eprintln!("cordon: WARNING: cannot serve the control socket: {e}"),
        }
    }
    let policy = started.agent_policy();
    let outcome = match started.supervise(Stops::Signals(&signals), policy) {
        Ok(o) => o,
        Err(e) => return fail(e, EXIT_SETUP_FAILED),
    };
    if let Some(message) = outcome.message(&started.plan.confined, &started.plan.command) {
        eprintln!("cordon: {message}");
    }
    if let Some((n, first)) = started.finish(&outcome).audit_failures {
        eprintln!(
            "cordon: WARNING: {n} audit record(s) of this session could not be written (first: {first}); every brokered call met by it was refused, and the log misses those records"
        );
    }
    tracing::info!(peak_rss_kb = peak_rss_kb().unwrap_or(0), "session ended");
    drop(control);
    ExitCode::from(outcome.exit_code())
}

/// Binds the control socket when the profile may ask for approvals: at
/// `--control-socket`, else in the default directory. A default location
/// that is unusable only warns (approvals then come from the hook or the
/// terminal); an explicit one that is unusable is an error.
fn bind_control(
    profile: &Profile,
    explicit: Option<&Path>,
    session: &str,
) -> Result<Option<broker::control::ControlSocket>, String> {
    if !profile.asks_for_approval() {
        return Ok(None);
    }
    if let Some(path) = explicit {
        return broker::control::bind(path).map(Some);
    }
    let dir = cordon::approval::client::default_dir();
    let bound = cordon::approval::client::ensure_dir(&dir)
        .and_then(|()| broker::control::bind(&dir.join(format!("{session}.sock"))));
    match bound {
        Ok(c) => Ok(Some(c)),
        Err(e) => {
            eprintln!("cordon: WARNING: no operator control socket ({e}); `cordon approve` cannot reach this session");
            Ok(None)
        }
    }
}

/// cordon's terminal for the approval prompt, when the profile wants one
/// and it is safe (see broker::prompt); says why not otherwise.
fn approval_terminal(profile: &Profile, placeholders: &Placeholders) -> Option<std::fs::File> {
    if !profile.asks_for_approval() || !profile.approval.prompt {
        return None;
    }
    match broker::prompt::open_terminal(profile, placeholders) {
        Ok(tty) => Some(tty),
        Err(why) => {
            // Not having a terminal is the normal headless case; say more
            // only when one exists and is unsafe to use.
            if why != "cordon has no controlling terminal" {
                eprintln!("cordon: approval prompt off: {why}; use `cordon approve`");
            }
            tracing::info!(reason = %why, "approvals: no terminal prompt");
            None
        }
    }
}

/// The supervisor's peak resident memory (VmHWM), for the session log.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
