//! `cordon run --profile FILE [--workspace DIR] [--intent TEXT] -- CMD [ARGS...]`

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use cordon::audit::{AuditLog, Kind, Record};
use cordon::broker;
use cordon::process::{
    self, ExecPolicy, Killer, Outcome, Policy, Refusals, Stops, EXIT_SETUP_FAILED,
};
use cordon::profile::Profile;
use cordon::sandbox::{self, Host, Plan, Request};

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
    plan: &Plan,
) -> Result<AuditLog, String> {
    let path = match (args_path, &profile.audit.path) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(t)) => t.expand(&plan.placeholders),
        (None, None) => default_audit_path(),
    };
    let log = AuditLog::open(&path).map_err(|e| format!("cannot open the audit log: {e}"))?;
    let real = std::fs::canonicalize(&path).unwrap_or(path);
    for rule in &profile.filesystem.write {
        let granted = rule.path.expand(&plan.placeholders);
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

/// `cordon-shim` is installed next to `cordon`.
fn shim_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let shim = exe.parent()?.join("cordon-shim");
    shim.is_file().then_some(shim)
}

pub(super) fn fail(message: impl std::fmt::Display, code: u8) -> ExitCode {
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
    // A file-size limit reached by the audit log must refuse calls, not
    // kill the supervisor (SIGXFSZ's default action).
    if let Err(e) = cordon::sys::ignore_file_size_signal() {
        return fail(
            format_args!("cannot ignore SIGXFSZ: {e}"),
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
    let base = session_base();
    let request = Request {
        workspace: args.workspace.unwrap_or_else(|| invocation_dir.clone()),
        command: args.command,
        invocation_dir,
        session_base: base,
        shim: shim_binary(),
    };
    let signals = match supervised_signals() {
        Ok(fd) => fd,
        Err(code) => return code,
    };
    let host = Host::probe();
    warn_root_sockets(host.euid);
    let plan = match sandbox::build(&profile, &request, &host, &|name| std::env::var_os(name)) {
        Ok(plan) => plan,
        Err(e) => return fail(&e, e.exit_code()),
    };
    for w in &plan.confined.weakened {
        eprintln!("cordon: WARNING: best_effort: {w}");
        tracing::warn!(profile = %profile.name, "best effort: {w}");
    }
    // Checked again now that {workspace}, {home} and {tmp} are known: the
    // agent must not be able to read or change where a secret comes from.
    if let Some((name, source, grant)) =
        cordon::profile::secret_source_reachable(&profile, &plan.placeholders)
            .into_iter()
            .next()
    {
        return fail(
            format_args!(
                "the agent could reach the source of secret `{name}` ({}) through the grant at {grant}; narrow the grant",
                source.display()
            ),
            EXIT_SETUP_FAILED,
        );
    }
    let audit = match open_audit(args.audit.as_deref(), &profile, &plan) {
        Ok(a) => Arc::new(a),
        Err(e) => return fail(e, EXIT_SETUP_FAILED),
    };
    let session_id = plan.session.id.clone();
    if let Some(f) = &args.session_file {
        if let Err(e) = std::fs::write(f, format!("{session_id}\n")) {
            return fail(
                format_args!("cannot write the session id to {}: {e}", f.display()),
                EXIT_SETUP_FAILED,
            );
        }
    }
    let start = Record::new(Kind::SessionStart, &session_id)
        .profile(&profile.name)
        .argv(
            request
                .command
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>(),
        )
        .cwd(plan.placeholders.workspace.display().to_string());
    let start = match &args.intent {
        Some(i) => start.intent(i.clone()),
        None => start,
    };
    tracing::info!(
        session = %session_id,
        identity = %plan.session.identity(&profile.name),
        intent = args.intent.as_deref().unwrap_or(""),
        command = ?request.command,
        "starting agent"
    );
    // The socket and the shim links exist before the agent does.
    let prepared = if !sandbox::plan::brokered(&profile) {
        None
    } else {
        let Some(shim) = request.shim.as_deref() else {
            return fail(sandbox::PlanError::NoShim, EXIT_SETUP_FAILED);
        };
        match broker::prepare(
            &profile,
            &plan.session.shim_dir(),
            &plan.session.socket_path(),
            shim,
        ) {
            Ok(p) => Some(p),
            Err(e) => {
                return fail(
                    format_args!("cannot set up the broker: {e}"),
                    EXIT_SETUP_FAILED,
                )
            }
        }
    };
    // Bound before the agent exists; served once the broker runs.
    let mut control = match bind_control(&profile, args.control_socket.as_deref(), &session_id) {
        Ok(c) => c,
        Err(e) => return fail(e, EXIT_SETUP_FAILED),
    };
    // Recorded before the agent exists. (It cannot wait for the child's
    // set-up: cordon's own launch exec skips the exec-watch round trip,
    // so the agent's command may run before the supervisor hears of it,
    // and a session whose start cannot be recorded must not run at all.)
    if let Err(e) = audit.append(&start) {
        return fail(
            format_args!("cannot write the audit log: {e}"),
            EXIT_SETUP_FAILED,
        );
    }
    let running = match process::launch(&plan.confined, &plan.command, process::Io::default()) {
        Ok(r) => r,
        Err(e) => return fail(e, EXIT_SETUP_FAILED),
    };
    // Dead sessions are swept while the child sets itself up.
    cordon::sandbox::session::sweep_dead(&request.session_base);
    let killer = match Killer::new(&running.init.pidfd) {
        Ok(k) => Arc::new(k),
        Err(e) => {
            return fail(
                format_args!("cannot hold the sandbox's pidfd: {e}"),
                EXIT_SETUP_FAILED,
            )
        }
    };
    let profile = Arc::new(profile);
    // One count of refusals for the whole session: the broker's and the
    // egress proxy's both go toward max_denials.
    let refusals = Refusals {
        count: Arc::default(),
        divergence: profile.divergence.clone(),
        killer: Arc::clone(&killer),
    };
    let proxy = match running.egress_listener.as_ref().map(|l| l.try_clone()) {
        None => None,
        Some(listener) => {
            let ctx = cordon::egress::Context {
                rules: cordon::egress::Rules::new(
                    &profile.network.allow_hosts,
                    &profile.network.deny_hosts,
                    "network",
                ),
                audit: Arc::clone(&audit),
                session: session_id.clone(),
                profile: profile.name.clone(),
                tool: None,
                refusals: refusals.clone(),
                resolve: cordon::egress::proxy::system_resolver,
                loud: true,
                inject: None,
            };
            match listener.and_then(|l| cordon::egress::proxy::start(l, ctx)) {
                Ok(p) => Some(p),
                Err(e) => {
                    let what = format!("could not start the egress proxy ({e})");
                    killer.diverge(process::Violation { pid: 0, what }, false);
                    let policy = agent_policy(&profile, &plan);
                    let _ = process::supervise(&running, Stops::Signals(&signals), policy, &killer);
                    return fail(
                        format_args!("cannot start the egress proxy: {e}"),
                        EXIT_SETUP_FAILED,
                    );
                }
            }
        }
    };
    let mut broker = None;
    if let Some(prepared) = prepared {
        // Every approver is in place before the first call is served.
        let approvers = Approvers {
            operators: control.is_some(),
            tty: approval_terminal(&profile, &plan),
        };
        let started = start_broker(
            prepared,
            &profile,
            &plan,
            &host,
            &killer,
            &audit,
            &args.intent,
            running.init.pid,
            &refusals,
            approvers,
        );
        match started {
            Ok(b) => broker = Some(b),
            Err(e) => {
                let what = format!("could not start the broker ({e})");
                killer.diverge(process::Violation { pid: 0, what }, false);
                let policy = agent_policy(&profile, &plan);
                let _ = process::supervise(&running, Stops::Signals(&signals), policy, &killer);
                return fail(
                    format_args!("cannot start the broker: {e}"),
                    EXIT_SETUP_FAILED,
                );
            }
        }
    }
    if let Some(b) = &broker {
        if let Some(c) = control.as_mut() {
            let registry = Arc::new(broker::control::Registry::default());
            registry.add(b.session());
            match broker::control::start(c, registry) {
                Ok(()) => tracing::info!(socket = %c.path().display(), "approvals: control socket"),
                Err(e) => eprintln!("cordon: WARNING: cannot serve the control socket: {e}"),
            }
        }
    }
    let outcome = match process::supervise(
        &running,
        Stops::Signals(&signals),
        agent_policy(&profile, &plan),
        &killer,
    ) {
        Ok(o) => o,
        Err(e) => return fail(e, EXIT_SETUP_FAILED),
    };
    if let Some(message) = outcome.message(&plan.confined, &plan.command) {
        eprintln!("cordon: {message}");
    }
    if let Some(p) = proxy {
        // The sandbox is gone, so are its connections' client ends; cut
        // the upstream ends and let each write its end record.
        p.stop(std::time::Duration::from_secs(2));
    }
    if let Some(b) = &broker {
        // Calls in flight are being cancelled (their shims are gone); give
        // them their grace period, then revoke what outlives calls.
        b.finish(profile.stop_grace + std::time::Duration::from_secs(2));
        if let Some((n, first)) = b.audit_failures() {
            eprintln!(
                "cordon: WARNING: {n} audit record(s) of this session could not be written (first: {first}); every brokered call met by it was refused, and the log misses those records"
            );
        }
    }
    record_end(&audit, &profile.name, &session_id, &outcome);
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

/// Who can answer approval requests of the session being started.
struct Approvers {
    /// The control socket is bound (it is served once the broker runs).
    operators: bool,
    /// cordon's terminal, when prompting there is safe.
    tty: Option<std::fs::File>,
}

/// cordon's terminal for the approval prompt, when the profile wants one
/// and it is safe (see broker::prompt); says why not otherwise.
fn approval_terminal(profile: &Profile, plan: &Plan) -> Option<std::fs::File> {
    if !profile.asks_for_approval() || !profile.approval.prompt {
        return None;
    }
    match broker::prompt::open_terminal(profile, &plan.placeholders) {
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

/// Landlock (ABI 7) does not govern connecting to pathname Unix sockets,
/// and an agent started by root runs as uid 0 (without capabilities), the
/// owner of root's sockets. Say so when such a socket is on this host.
fn warn_root_sockets(euid: u32) {
    const SOCKETS: [&str; 5] = [
        "/run/docker.sock",
        "/var/run/docker.sock",
        "/run/containerd/containerd.sock",
        "/run/podman/podman.sock",
        "/run/dbus/system_bus_socket",
    ];
    if euid != 0 {
        return;
    }
    let present: Vec<&str> = SOCKETS
        .iter()
        .copied()
        .filter(|s| Path::new(s).exists())
        .collect();
    if !present.is_empty() {
        eprintln!(
            "cordon: WARNING: running as root, the agent runs as uid 0 (no capabilities) and Landlock cannot stop it from connecting to root's Unix sockets such as {}; run cordon as an unprivileged user",
            present.join(", ")
        );
    }
}

/// The supervisor's peak resident memory (VmHWM), for the session log.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn agent_policy(profile: &Profile, plan: &Plan) -> Policy {
    Policy {
        observer: None,
        on_violation: profile.syscalls.on_violation,
        stop_grace: profile.stop_grace,
        exec: Some(ExecPolicy {
            allowed: plan.exec_allowed.clone(),
            undeclared: profile.divergence.undeclared_tool,
        }),
        deadline: None,
        loud: true,
    }
}

#[allow(clippy::too_many_arguments)]
fn start_broker(
    prepared: broker::Prepared,
    profile: &Arc<Profile>,
    plan: &Plan,
    host: &Host,
    killer: &Arc<Killer>,
    audit: &Arc<AuditLog>,
    intent: &Option<String>,
    init_pid: i32,
    refusals: &Refusals,
    approvers: Approvers,
) -> Result<broker::Broker, String> {
    let policy = cordon::policy::Policy::compile(profile).map_err(|e| e.to_string())?;
    let pid_ns = broker::pid_namespace(Path::new("/proc"), init_pid)
        .ok_or_else(|| "cannot read the sandbox's pid namespace".to_string())?;
    // From here cordon may hold secrets: nobody of its uid may read its
    // memory or attach to it, and it leaves no core dump. (After the agent
    // and its init exist, which must stay inspectable to cordon.)
    if !profile.secrets.is_empty() {
        cordon::sys::set_non_dumpable()
            .map_err(|e| format!("cannot make cordon non-dumpable: {e}"))?;
    }
    let session = broker::Session {
        id: plan.session.id.clone(),
        profile: Arc::clone(profile),
        policy,
        intent: intent.clone(),
        placeholders: plan.placeholders.clone(),
        host: host.clone(),
        killer: Arc::clone(killer),
        audit: Arc::clone(audit),
        uid: cordon::sys::geteuid(),
        pid_ns,
        tool_cwds: broker::tool_cwds(profile, &plan.placeholders),
        root: plan.session.root.clone(),
        next_call: Default::default(),
        denials: Arc::clone(&refusals.count),
        refused_peers: Default::default(),
        calls: Default::default(),
        secrets: Default::default(),
        audit_failures: Default::default(),
        approvals: cordon::approval::Queue::new(profile.approval.clone(), &plan.session.id),
        chain: Vec::new(),
        shim: shim_binary(),
        subs: Default::default(),
    };
    if approvers.operators {
        session.approvals.set_operators();
    }
    if let Some(tty) = approvers.tty {
        if let Err(e) = broker::prompt::start(tty, &session.approvals) {
            eprintln!("cordon: WARNING: cannot start the approval prompt: {e}");
        }
    }
    broker::start(prepared, Arc::new(session)).map_err(|e| e.to_string())
}

/// The session's last records: a divergence if cordon killed it, then the end.
fn record_end(audit: &AuditLog, profile: &str, session: &str, outcome: &Outcome) {
    if let Outcome::Diverged(v) = outcome {
        let rec = Record::new(Kind::Divergence, session)
            .profile(profile)
            .pid(v.pid)
            .decision("kill")
            .reason(v.what.clone());
        let _ = audit.append(&rec);
    }
    let end = Record::new(Kind::SessionEnd, session).profile(profile);
    let end = match outcome {
        Outcome::Exited(c) => end.exit(*c),
        Outcome::Signaled(s) => end.signal(*s),
        other => end.exit(i32::from(other.exit_code())),
    };
    match audit.append(&end) {
        Ok(head) => tracing::info!(
            session,
            head = %head,
            log = %audit.path().display(),
            peak_rss_kb = peak_rss_kb().unwrap_or(0),
            "session recorded"
        ),
        Err(e) => eprintln!("cordon: cannot write the end of the session to the audit log: {e}"),
    }
}
