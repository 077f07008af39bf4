//! Running one allowed call: the tool's own sandbox (built with the same
//! machinery as the agent's), the caller's stdio and working directory,
//! its time limit, and cancellation from the shim.
//!
//! (Over 400 lines: setting up, supervising and ending a call are one
//! sequence whose order matters for the secrets, kept in one place.)

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use cordon_shim::protocol::Reply;

use super::secrets::CallSecrets;
use super::wire::control_event;
use super::{pump, Session};
use crate::audit::{Decision, Record};
use crate::process::{self, Io, Killer, Outcome, Policy, Stops};
use crate::profile::{Limits, OnViolation, Placeholders, Tool};
use crate::sandbox::confine::{confine, Confined, Confinement};
use crate::sandbox::seccomp::ExecWatch;
use crate::sandbox::{Command, PlanError};
use crate::secrets::Redactor;
use crate::sys::fd::{dup_above_stdio, open_dir_nofollow, same_inode};

/// Why a call could not be run (told to the shim as an error).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("preparing the tool's sandbox: {0}")]
    Plan(#[from] PlanError),
    #[error("preparing the call: {0}")]
    Io(#[from] std::io::Error),
    #[error("starting the tool: {0}")]
    Launch(#[from] process::LaunchError),
    #[error("supervising the tool: {0}")]
    Supervise(#[from] process::SuperviseError),
    #[error("preparing the call's proxy-delivered secrets: {0}")]
    Inject(String),
}

/// The private directory of one call (HOME and TMPDIR), removed on drop.
struct CallDir(PathBuf);

impl CallDir {
    fn create(path: PathBuf) -> std::io::Result<CallDir> {
        use std::os::unix::fs::DirBuilderExt;
        let mut b = std::fs::DirBuilder::new();
        b.mode(0o700).recursive(true);
        b.create(path.join("home"))?;
        b.create(path.join("tmp"))?;
        Ok(CallDir(path))
    }
}

impl Drop for CallDir {
    fn drop(&mut self) {
        // The tool may have left unreadable directories behind; the
        // session's remover copes with those (a plain remove_dir_all
        // does not, for an unprivileged cordon).
        let _ = crate::sandbox::session_dir::remove_tree(&self.0);
    }
}

/// What a call's end means: its reply and its `call_end` record are both
/// made from this, so they cannot disagree.
#[derive(Debug)]
pub struct Ending {
    pub reply: Reply,
    status: EndStatus,
    /// What the leak scan found (a call with raw secrets), when it found
    /// something or could not read everything.
    leak: Option<super::leak::Scan>,
}

#[derive(Debug)]
enum EndStatus {
    Exited(i32),
    Signaled(i32),
    /// cordon stopped the tool (divergence in its sandbox, its timeout, a
    /// secret's expiry): why.
    Killed(String),
    /// The tool could not be run: why.
    Failed(String),
}

impl Ending {
    /// A call that could not be run.
    pub fn failed(message: String) -> Ending {
        Ending {
            reply: Reply::Error {
                message: message.clone(),
            },
            status: EndStatus::Failed(message),
            leak: None,
        }
    }

    fn killed(reason: String) -> Ending {
        Ending {
            reply: Reply::Denied {
                reason: reason.clone(),
            },
            status: EndStatus::Killed(reason),
            leak: None,
        }
    }

    /// `end` with what this ending says.
    pub fn record(&self, end: Record) -> Record {
        let end = match &self.status {
            EndStatus::Exited(c) => end.exit(*c),
            EndStatus::Signaled(s) => end.signal(*s),
            EndStatus::Killed(why) => end.decision(Decision::Kill).reason(why.clone()),
            EndStatus::Failed(why) => end.detail(why.clone()),
        };
        let Some(scan) = &self.leak else {
            return end;
        };
        let end = if scan.leaks.is_empty() {
            end
        } else {
            end.leaked(scan.secrets()).leaked_to(scan.paths())
        };
        match &scan.incomplete {
            Some(why) => end.leak_scan(format!("incomplete: {why}")),
            None => end,
        }
    }

    /// What the tool's outcome means for its caller.
    fn of(
        outcome: &Outcome,
        tool: &Tool,
        secrets: &CallSecrets<'_>,
        confined: &Confined,
        command: &Command,
    ) -> Ending {
        match outcome {
            Outcome::Exited(code) => Ending {
                reply: Reply::Exited { code: *code },
                status: EndStatus::Exited(*code),
                leak: None,
            },
            Outcome::Signaled(sig) => Ending {
                reply: Reply::Signaled { signal: *sig },
                status: EndStatus::Signaled(*sig),
                leak: None,
            },
            Outcome::Diverged(v) => Ending::killed(format!(
                "`{}` {} in its sandbox, so the call was stopped",
                tool.name, v.what
            )),
            Outcome::TimedOut if secrets.expiry().is_some_and(|(e, _)| e <= Instant::now()) => {
                Ending::killed(format!(
                    "secret `{}` expired during the call, so the call was stopped",
                    secrets.expiry().map(|(_, n)| n).unwrap_or_default()
                ))
            }
            Outcome::TimedOut => Ending::killed(format!(
                "`{}` ran past its timeout of {} and was killed",
                tool.name,
                tool.timeout
                    .map(|t| humantime::format_duration(t).to_string())
                    .unwrap_or_default()
            )),
            other => Ending::failed(
                other
                    .message(confined, command)
                    .unwrap_or_else(|| format!("`{}` could not be run", tool.name)),
            ),
        }
    }
}

/// One allowed call, as the shim sent it.
pub struct Call<'a> {
    pub id: u64,
    /// The caller's working directory (already checked).
    pub cwd: &'a Path,
    pub args: &'a [&'a [u8]],
    /// The variables passed through to the tool.
    pub env: &'a [(String, String)],
    /// [stdin, stdout, stderr, cwd] from the shim.
    pub fds: &'a [OwnedFd],
}

/// Runs `tool` for a shim connected on `stream`, with `secrets` delivered
/// to the tool and masked in what it prints.
pub fn run(
    session: &Session,
    tool: &Tool,
    call: &Call<'_>,
    secrets: &CallSecrets<'_>,
    stream: &mut UnixStream,
) -> Result<Ending, RunError> {
    let Call {
        id: call,
        cwd,
        args,
        env,
        fds,
    } = *call;
    let dir = CallDir::create(session.call_dir(call))?;

    let values = Placeholders {
        workspace: session.placeholders.workspace.clone(),
        home: dir.0.join("home"),
        tmp: dir.0.join("tmp"),
    };
    let Some(plan) = session.tool_plans.get(&tool.name) else {
        return Err(RunError::Io(std::io::Error::other(format!(
            "tool `{}` has no planned sandbox",
            tool.name
        ))));
    };
    let (filesystem, network) = (&plan.filesystem, &plan.network);
    let limits = Limits::default();
    let confinement = Confinement {
        filesystem,
        network,
        syscall_deny: &[],
        limits: &limits,
        best_effort: session.profile.best_effort,
        exec_watch: ExecWatch::Off,
        shadows: &plan.shadows,
        shim: session.shim.as_deref(),
        mediate: true,
    };
    let mask = dir.0.join("mask");
    let confined = confine(&confinement, &values, &session.host, &mask, &|| {
        std::fs::create_dir(&mask)
    })?;
    // Other tools are reached from here through the shim and the
    // session's broker, like the agent reaches them.
    let mut full_env = vec![
        (
            "PATH".to_string(),
            format!(
                "{}:{}",
                session.root.join("bin").display(),
                crate::sandbox::env::DEFAULT_PATH
            ),
        ),
        ("HOME".to_string(), values.home.display().to_string()),
        ("TMPDIR".to_string(), values.tmp.display().to_string()),
        (
            crate::sandbox::env::SOCKET_VAR.to_string(),
            session.root.join("broker.sock").display().to_string(),
        ),
    ];
    full_env.extend(env.iter().cloned());
    if network.has_host_rules() {
        crate::egress::route_through_proxy(&mut full_env);
    }
    // Proxy-delivered secrets: a placeholder in the environment, the value
    // only ever in the call's proxy (fetched there when a request needs
    // it), the session CA in the clients' bundle.
    let injection = super::proxied::for_call(session, tool, call).map_err(RunError::Inject)?;
    if let (Some(inj), Some(t)) = (&injection, &session.tls) {
        crate::sandbox::proxied::set_placeholders(&mut full_env, &inj.placeholders);
        crate::sandbox::proxied::set_ca_variables(&mut full_env, &t.bundle);
    }
    let mut argv: Vec<&[u8]> = vec![tool.name.as_bytes()];
    argv.extend_from_slice(args);
    let mut command = Command::new(cwd, &tool.path, &argv, &full_env)?;
    // Secret entries go straight in as C strings (a value need not be
    // UTF-8) and are wiped once the child has its copy.
    let (secret_env, secret_fds) = secrets.environment()?;
    let keep: Vec<i32> = secret_fds.iter().map(AsRawFd::as_raw_fd).collect();
    let plain_env = command.envp.len();
    command.envp.extend(secret_env);

    // The shim's descriptors, moved above 0..2 so the child can dup2 them.
    let dup = |fd: &OwnedFd| dup_above_stdio(fd.as_raw_fd()).map_err(std::io::Error::from);
    let [stdin, out, err] = [dup(&fds[0])?, dup(&fds[1])?, dup(&fds[2])?];
    // The shim's directory descriptor may belong to the agent's mount
    // namespace, where the tool would have no usable path; reopen the
    // checked path here (no symlinks followed) and make sure it is the
    // same directory the shim sent.
    let here = open_dir_nofollow(&command.cwd).map_err(std::io::Error::from)?;
    if !same_inode(here.as_raw_fd(), fds[3].as_raw_fd()).map_err(std::io::Error::from)? {
        return Err(RunError::Io(std::io::Error::other(
            "the working directory changed during the call",
        )));
    }
    // With secrets, the tool writes into pipes that the redactor copies to
    // the caller; without, straight into the caller's descriptors.
    let mut pumps = Vec::new();
    let (out_w, err_w) = if secrets.is_empty() {
        (out, err)
    } else {
        let (out_r, out_w) = pipe_above_stdio()?;
        let (err_r, err_w) = pipe_above_stdio()?;
        let redactor = Arc::new(Redactor::new(&secrets.values()).map_err(std::io::Error::other)?);
        pumps.push(pump::start(Arc::clone(&redactor), out_r, out)?);
        pumps.push(pump::start(redactor, err_r, err)?);
        (out_w, err_w)
    };
    let io = Io {
        stdio: Some([stdin.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()]),
        cwd: Some(here.as_raw_fd()),
        keep: &keep,
    };
    // What the tool writes from here on is the leak scan's to read.
    let started_at = super::leak::mark(&dir.0)?;
    let launched = process::launch(&confined, &command, io);
    wipe_secret_env(&mut command, plain_env);
    let mut running = launched?;
    // From now until the call ends, its sandbox's processes may reach
    // other tools through the broker.
    let _registered = RunningCall::register(session, &running.init, call)?;
    // Only the tool holds the write ends now: the pumps see EOF when its
    // tree is gone.
    drop((stdin, out_w, err_w, secret_fds));
    let killer = Killer::new(&running.init.pidfd)?;
    // The tool's own egress proxy, for this call only.
    let proxy = match running.egress_listener.take() {
        None => None,
        Some(listener) => {
            let rules = crate::egress::Rules::new(
                &network.allow_hosts,
                &network.deny_hosts,
                &format!("tools.{}.sandbox", tool.name),
            );
            let ctx = crate::egress::Context::new(
                rules,
                Arc::clone(&session.audit),
                &session.id,
                &session.profile.name,
                session.refusals.clone(),
            )
            .for_tool(&tool.name, call)
            .loud(session.notices.loud())
            .tolerating(&session.profile.divergence.tolerated_hosts)
            .cedar(session.cedar.clone());
            let ctx = match &injection {
                Some(inj) => ctx.injecting(Arc::clone(&inj.injector)),
                None => ctx,
            };
            Some(crate::egress::proxy::start(listener, ctx)?)
        }
    };
    let policy = Policy {
        observer: None,
        on_violation: OnViolation::Kill,
        stop_grace: session.profile.stop_grace,
        exec: None,
        deadline: [
            tool.timeout.map(|t| Instant::now() + t),
            secrets.expiry().map(|(e, _)| e),
        ]
        .into_iter()
        .flatten()
        .min(),
        loud: false,
        net: Some(Arc::new(
            process::mediate::Mediator::new(tool_net(session, plan, &values), false)
                .with_broker(Arc::clone(&session.handoff), Some(call))
                .with_notices(Arc::new(session.notices.for_call(&tool.name, call))),
        )),
        notices: None,
    };
    // A follow-up frame (a cancel) must arrive whole promptly: a peer that
    // sends half of one and stalls is treated as gone, so the loop that
    // enforces the deadline is never stuck in a read.
    stream.set_read_timeout(Some(std::time::Duration::from_secs(1)))?;
    let sock = stream.as_raw_fd();
    let mut on_control = || control_event(stream);
    let outcome = process::supervise(
        &running,
        Stops::Control(sock, &mut on_control),
        policy,
        &killer,
    )?;
    let mut ending = Ending::of(&outcome, tool, secrets, &confined, &command);
    // The tool's init has exited, so its whole pid namespace is gone (the
    // kernel kills and reaps every process left in it, `setsid` children
    // too, before it reports init's exit): nothing of the call can use a
    // secret any more. Then its proxy stops, and the values that proxy
    // fetched are revoked, before the call is reported finished.
    if let Some(p) = proxy {
        p.stop(std::time::Duration::from_secs(1));
    }
    if let Some(inj) = &injection {
        inj.injector.finish();
    }
    // Raw values were in the tool: did it write one where the agent reads?
    if !secrets.is_empty() {
        ending.leak = leak_scan(session, tool, call, plan, &values, started_at, secrets);
    }
    for p in pumps {
        let _ = p.join();
    }
    Ok(ending)
}

/// Scans what the call changed where the agent can read for its raw
/// secrets (`super::leak`); says what it found on cordon's stderr.
fn leak_scan(
    session: &Session,
    tool: &Tool,
    call: u64,
    plan: &crate::sandbox::tool_plan::ToolPlan,
    values: &Placeholders,
    since: std::time::SystemTime,
    secrets: &CallSecrets<'_>,
) -> Option<super::leak::Scan> {
    let writes: Vec<PathBuf> = plan
        .filesystem
        .write
        .iter()
        .map(|r| r.path.expand(values))
        .collect();
    let agent = &session.profile.filesystem;
    let sees: Vec<PathBuf> = agent
        .read
        .iter()
        .chain(&agent.write)
        .chain(&agent.exec)
        .map(|r| r.path.expand(&session.placeholders))
        .collect();
    let roots = super::leak::roots(&writes, &sees);
    let names = secrets.names();
    let pairs: Vec<(String, &crate::secrets::SecretValue)> =
        names.into_iter().zip(secrets.values()).collect();
    let scan = super::leak::scan(&roots, since, &pairs);
    if !scan.leaks.is_empty() {
        let what = format!(
            "call {call} of `{}` wrote the value of secret {} where the agent can read it ({}); give the tool a sandbox that cannot write what the agent reads, or deliver the secret with deliver = \"proxy\"",
            tool.name,
            scan.secrets().join(", "),
            scan.paths().join(", ")
        );
        eprintln!("cordon: WARNING: {what}");
        tracing::warn!(session = %session.id, call, tool = %tool.name, "leak: {what}");
    }
    (!scan.leaks.is_empty() || scan.incomplete.is_some()).then_some(scan)
}

/// Where a call's connects and addressed sends may go: the tool's grants
/// (with the call's own directories) and the session's broker.
fn tool_net(
    session: &Session,
    plan: &crate::sandbox::tool_plan::ToolPlan,
    values: &Placeholders,
) -> crate::sandbox::netpolicy::NetPolicy {
    let root = std::fs::canonicalize(&session.root).unwrap_or_else(|_| session.root.clone());
    crate::sandbox::netpolicy::NetPolicy::for_sandbox(
        &plan.network,
        &plan.filesystem,
        values,
        Some(root.join("broker.sock")),
        crate::host::resolv::read(Path::new("/etc/resolv.conf")),
    )
}

/// A call listed among the session's running calls while it lives.
struct RunningCall<'s> {
    session: &'s Session,
    init: i32,
}

impl<'s> RunningCall<'s> {
    fn register(
        session: &'s Session,
        init: &crate::sys::process::Spawned,
        call: u64,
    ) -> std::io::Result<RunningCall<'s>> {
        let pidfd = init.pidfd.try_clone()?;
        session
            .running_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(init.pid, (call, pidfd));
        Ok(RunningCall {
            session,
            init: init.pid,
        })
    }
}

impl Drop for RunningCall<'_> {
    fn drop(&mut self) {
        self.session
            .running_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.init);
    }
}

/// A close-on-exec pipe whose ends are above 0..2.
fn pipe_above_stdio() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = crate::sys::fd::pipe().map_err(std::io::Error::from)?;
    let lift = |fd: OwnedFd| -> std::io::Result<OwnedFd> {
        if fd.as_raw_fd() > 2 {
            Ok(fd)
        } else {
            dup_above_stdio(fd.as_raw_fd()).map_err(std::io::Error::from)
        }
    };
    Ok((lift(r)?, lift(w)?))
}

/// Zeroes the secret `NAME=value` entries (from `plain` on) once the child
/// has been started with them.
fn wipe_secret_env(command: &mut Command, plain: usize) {
    for entry in command.envp.drain(plain..) {
        let mut bytes = entry.into_bytes_with_nul();
        zeroize::Zeroize::zeroize(&mut bytes);
    }
}
