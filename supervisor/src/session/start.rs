//! Starting a planned session, supervising it, and ending it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{Planned, StartError};
use crate::audit::{AuditLog, Decision, Kind, Record};
use crate::broker;
use crate::egress::{self, Proxy, Rules};
use crate::process::{
    self, ExecPolicy, Io, Killer, Outcome, Policy, Refusals, Running, Stops, SuperviseError,
};
use crate::profile::Profile;
use crate::sandbox::Plan;

/// How long the first process of a sub-agent may take to exec when its
/// pid namespace can only be read from it (see
/// `broker::namespace_of_child`).
const PID_NS_WAIT: Duration = Duration::from_secs(5);
/// How long the egress proxy gets to write its connections' end records.
const PROXY_STOP: Duration = Duration::from_secs(2);

/// Who can answer the session's approval requests, besides its hook.
#[derive(Default)]
pub struct Approvers {
    /// An operator control socket is (or will be) served.
    pub operators: bool,
    /// cordon's terminal, when prompting there is safe.
    pub tty: Option<std::fs::File>,
}

/// What the session's egress proxy decides on.
pub enum Egress {
    /// The profile's `[network]` host rules, recorded in the session's log.
    Profile,
    /// Other rules, recorded in another log (`cordon learn` allows and
    /// records every host in the session's own directory).
    Custom { rules: Rules, audit: Arc<AuditLog> },
}

/// How to start a planned session.
pub struct Start<'a> {
    pub audit: Arc<AuditLog>,
    pub intent: Option<String>,
    /// The command as the user gave it, for the `session_start` record.
    pub argv: Vec<std::ffi::OsString>,
    /// The descriptors the agent gets instead of cordon's.
    pub io: Io<'a>,
    /// A sub-agent's parent session.
    pub parent: Option<&'a Arc<broker::Session>>,
    /// Say refusals and warnings on stderr (`cordon run`, `learn`).
    pub loud: bool,
    pub approvers: Approvers,
    pub egress: Egress,
    /// The session's approval control socket: reaching it is divergence.
    pub control_socket: Option<std::path::PathBuf>,
}

/// An ended session; dropping it removes its session directory.
pub struct Ended {
    pub plan: Plan,
    /// How many audit appends of the broker failed, and the first error.
    pub audit_failures: Option<(u32, String)>,
}

/// A running session.
pub struct Started {
    pub profile: Arc<Profile>,
    pub plan: Plan,
    pub running: Running,
    pub killer: Arc<Killer>,
    /// Ancestor sessions, root first (empty for a root session).
    pub chain: Vec<String>,
    audit: Arc<AuditLog>,
    proxy: Option<Proxy>,
    /// The agent's proxy's injector: its fetched values are revoked once
    /// the proxy has stopped.
    injector: Option<Arc<egress::Injector>>,
    broker: Option<broker::Broker>,
    loud: bool,
    records: bool,
    control_socket: Option<std::path::PathBuf>,
    /// Where the agent's refusals are said and recorded.
    notices: Arc<process::Notices>,
}

impl Planned {
    /// Records the start, launches the sandbox and serves it. Nothing of
    /// the agent exists before its `session_start` record does.
    pub fn start(self, start: Start<'_>) -> Result<Started, StartError> {
        let Planned {
            profile,
            plan,
            socket,
            observed,
            host,
            shim,
        } = self;
        for w in &plan.confined.weakened {
            if start.loud {
                eprintln!("cordon: WARNING: best_effort: {w}");
            }
            tracing::warn!(profile = %profile.name, "best effort: {w}");
        }
        let chain = match start.parent {
            Some(p) => {
                let mut chain = p.chain.clone();
                chain.push(p.id.clone());
                chain
            }
            None => Vec::new(),
        };
        let records = !observed;
        if records {
            // Recorded before the agent exists. (It cannot wait for the
            // child's set-up: cordon's own launch exec skips the
            // exec-watch round trip, so the agent's command may run before
            // the supervisor hears of it.)
            let argv: Vec<&[u8]> = start
                .argv
                .iter()
                .map(|a| std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str()))
                .collect();
            let rec = Record::new(Kind::SessionStart, &plan.session.id)
                .profile(&profile.name)
                .argv_bytes(&argv)
                .cwd(plan.placeholders.workspace.display().to_string());
            let rec = if chain.is_empty() {
                rec
            } else {
                rec.chain(chain.clone())
            };
            let rec = match &start.intent {
                Some(i) => rec.intent(i.clone()),
                None => rec,
            };
            start.audit.append(&rec)?;
        }
        let running = process::launch(&plan.confined, &plan.command, start.io)?;
        let killer = match Killer::new(&running.init.pidfd) {
            Ok(k) => Arc::new(k),
            Err(e) => {
                kill_and_reap(&running);
                return Err(StartError::Pidfd(e));
            }
        };
        let refusals = match start.parent {
            Some(p) => p.refusals.child(&profile.divergence, &killer),
            None => Refusals::root(&profile.divergence, &killer),
        };
        let notices = process::Notices::new(
            start.loud,
            records.then(|| Arc::clone(&start.audit)),
            &plan.session.id,
            &profile.name,
        )
        .chain(chain.clone());
        let mut started = Started {
            notices: Arc::new(notices),
            profile,
            plan,
            running,
            killer,
            chain,
            audit: Arc::clone(&start.audit),
            proxy: None,
            injector: None,
            broker: None,
            loud: start.loud,
            records,
            control_socket: start.control_socket.clone(),
        };
        if let Err(e) = started.serve(socket, refusals, start, host, shim) {
            started.abort();
            return Err(e);
        }
        Ok(started)
    }
}

impl Started {
    /// Starts the broker's session, the egress proxy (injecting the
    /// agent's proxy-delivered secrets, which need that session) and the
    /// broker of the launched sandbox.
    fn serve(
        &mut self,
        socket: Option<broker::Prepared>,
        refusals: Refusals,
        start: Start<'_>,
        host: crate::host::Host,
        shim: Option<std::path::PathBuf>,
    ) -> Result<(), StartError> {
        let parent = start.parent;
        // One compiled set of Cedar policies for the session: its broker
        // and its egress proxy ask the same.
        let cedar = crate::policy::cedar::SessionPolicies::new(
            &self.profile,
            &self.plan.session.id,
            start.intent.as_deref(),
            &self.chain,
        );
        let session = match &socket {
            Some(_) => {
                Some(self.broker_session_for(&refusals, &start, host, shim, cedar.clone())?)
            }
            None => None,
        };
        if let Some(listener) = self.running.egress_listener.take() {
            let (rules, audit) = match start.egress {
                Egress::Profile => (
                    Rules::new(
                        &self.profile.network.allow_hosts,
                        &self.profile.network.deny_hosts,
                        "network",
                    ),
                    Arc::clone(&self.audit),
                ),
                Egress::Custom { rules, audit } => (rules, audit),
            };
            let ctx = egress::Context::new(
                rules,
                audit,
                &self.plan.session.id,
                &self.profile.name,
                refusals.clone(),
            )
            .loud(self.loud)
            .tolerating(&self.profile.divergence.tolerated_hosts)
            .cedar(cedar.clone());
            let ctx = match (&session, self.plan.agent_secrets.is_empty()) {
                (Some(s), false) => {
                    let inj = broker::agent_injector(s, &self.plan.agent_secrets)
                        .map_err(StartError::Broker)?;
                    self.injector = Some(Arc::clone(&inj));
                    ctx.injecting(inj)
                }
                _ => ctx,
            };
            self.proxy = Some(egress::proxy::start(listener, ctx).map_err(StartError::Proxy)?);
        }
        let (Some(socket), Some(session)) = (socket, session) else {
            return Ok(());
        };
        if let Some(tty) = start.approvers.tty {
            if let Err(e) = broker::prompt::start(tty, &session.approvals) {
                eprintln!("cordon: WARNING: cannot start the approval prompt: {e}");
            }
        }
        if let Some(p) = parent {
            p.add_sub(&session);
        }
        self.broker =
            Some(broker::start(socket, session).map_err(|e| StartError::Broker(e.to_string()))?);
        Ok(())
    }

    /// The broker's view of this session.
    fn broker_session_for(
        &mut self,
        refusals: &Refusals,
        start: &Start<'_>,
        host: crate::host::Host,
        shim: Option<std::path::PathBuf>,
        cedar: Option<Arc<crate::policy::cedar::SessionPolicies>>,
    ) -> Result<Arc<broker::Session>, StartError> {
        let init = self.running.init.pid;
        // cordon may be non-dumpable already (a session before this one
        // holds secrets), and so is the init it cloned; unprivileged, its
        // /proc/<pid>/ns cannot be read then, but its first child's can.
        let pid_ns = match broker::pid_namespace(Path::new("/proc"), init) {
            Some(ns) => ns,
            None => broker::namespace_of_child(Path::new("/proc"), init, PID_NS_WAIT).ok_or_else(
                || {
                    StartError::Broker(
                        "cannot identify the sandbox's pid namespace (did its command start?)"
                            .into(),
                    )
                },
            )?,
        };
        // From here cordon may hold secrets: nobody of its uid may read its
        // memory or attach to it, and it leaves no core dump. (After the
        // agent and its init exist, which must stay inspectable to cordon.)
        if !self.profile.secrets.is_empty() {
            crate::sys::set_non_dumpable()
                .map_err(|e| StartError::Broker(format!("cannot make cordon non-dumpable: {e}")))?;
        }
        let parent = start.parent;
        let session = broker::Session::new(broker::SessionParts {
            id: self.plan.session.id.clone(),
            profile: Arc::clone(&self.profile),
            intent: start.intent.clone(),
            placeholders: self.plan.placeholders.clone(),
            host,
            audit: Arc::clone(&self.audit),
            pid_ns,
            root: self.plan.session.root.clone(),
            refusals: refusals.clone(),
            chain: self.chain.clone(),
            shim,
            operators: start.approvers.operators
                || parent.is_some_and(|p| p.approvals.has_operators()),
            loader: std::mem::take(&mut self.plan.loader),
            notices: Arc::clone(&self.notices),
            tls: self.plan.tls.clone(),
            cedar,
        })
        .map_err(|e| StartError::Broker(e.to_string()))?;
        Ok(Arc::new(session))
    }

    /// Kills a sandbox whose start failed half-way, and waits for it.
    fn abort(&mut self) {
        if let Some(p) = self.proxy.take() {
            p.stop(PROXY_STOP);
        }
        if let Some(i) = self.injector.take() {
            i.finish();
        }
        kill_and_reap(&self.running);
    }

    /// The broker's session, when the profile is brokered.
    pub fn broker_session(&self) -> Option<&Arc<broker::Session>> {
        self.broker.as_ref().map(broker::Broker::session)
    }

    /// The agent's supervision policy: its profile's violation action,
    /// grace period and exec grants.
    pub fn agent_policy(&self) -> Policy {
        Policy {
            observer: None,
            on_violation: self.profile.syscalls.on_violation,
            stop_grace: self.profile.stop_grace,
            exec: Some(ExecPolicy {
                allowed: self.plan.exec_allowed.clone(),
                interpreters: self.plan.interpreters.clone(),
                undeclared: self.profile.divergence.undeclared_tool,
                tolerated: self.plan.tolerated_execs.clone(),
            }),
            deadline: None,
            loud: self.loud,
            net: Some(Arc::new({
                let m = process::mediate::Mediator::new(self.net_policy(), self.loud)
                    .with_notices(Arc::clone(&self.notices));
                match self.broker_session() {
                    Some(s) => m.with_broker(Arc::clone(&s.handoff), None),
                    None => m,
                }
            })),
            notices: Some(Arc::clone(&self.notices)),
        }
    }

    /// The agent's net policy, with its control socket as divergence.
    fn net_policy(&self) -> crate::sandbox::netpolicy::NetPolicy {
        let mut net = self.plan.net.clone();
        if let Some(c) = &self.control_socket {
            net.divergent
                .push(std::fs::canonicalize(c).unwrap_or_else(|_| c.clone()));
        }
        net
    }

    /// Supervises the sandbox until its whole tree is gone.
    pub fn supervise(&self, stops: Stops<'_>, policy: Policy) -> Result<Outcome, SuperviseError> {
        process::supervise(&self.running, stops, policy, &self.killer)
    }

    /// Ends the session: its proxy's connections cut (each writes its end
    /// record), the broker's calls in flight given their grace period and
    /// the secrets that outlive calls revoked, then the session's last
    /// records. The session directory lives on until the returned
    /// [`Ended`] is dropped.
    pub fn finish(mut self, outcome: &Outcome) -> Ended {
        if let Some(p) = self.proxy.take() {
            // The sandbox is gone, so are its connections' client ends.
            p.stop(PROXY_STOP);
        }
        // Before the cached and exposed ones, and before the session's end
        // is recorded.
        if let Some(i) = self.injector.take() {
            i.finish();
        }
        let failures = self.broker.as_ref().and_then(|b| {
            b.finish(self.profile.stop_grace + Duration::from_secs(2));
            b.audit_failures()
        });
        if self.records {
            self.record_end(outcome);
        }
        Ended {
            plan: self.plan,
            audit_failures: failures,
        }
    }

    /// The session's last records: a divergence if cordon killed it, then
    /// the end.
    fn record_end(&self, outcome: &Outcome) {
        let session = &self.plan.session.id;
        let stamp = |rec: Record| {
            let rec = rec.profile(&self.profile.name);
            if self.chain.is_empty() {
                rec
            } else {
                rec.chain(self.chain.clone())
            }
        };
        if let Outcome::Diverged(v) = outcome {
            let rec = Record::new(Kind::Divergence, session)
                .pid(v.pid)
                .decision(Decision::Kill)
                .reason(v.what.clone());
            let _ = self.audit.append(&stamp(rec));
        }
        let end = stamp(Record::new(Kind::SessionEnd, session));
        let end = match outcome {
            Outcome::Exited(c) => end.exit(*c),
            Outcome::Signaled(s) => end.signal(*s),
            other => end.exit(i32::from(other.exit_code())),
        };
        match self.audit.append(&end) {
            Ok(head) => tracing::info!(
                session = %session,
                head = %head,
                log = %self.audit.path().display(),
                "session recorded"
            ),
            Err(e) => {
                if self.loud {
                    eprintln!("cordon: cannot write the end of the session to the audit log: {e}");
                }
                tracing::error!(session = %session, error = %e, "audit: session end not written");
            }
        }
    }
}

/// Kills a sandbox and reaps its init.
fn kill_and_reap(running: &Running) {
    let _ = crate::sys::process::pidfd_send_signal(&running.init.pidfd, libc::SIGKILL);
    let mut fds = [libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&running.init.pidfd),
        events: libc::POLLIN,
        revents: 0,
    }];
    let _ = crate::sys::fd::poll(&mut fds, 5000);
    let _ = crate::sys::process::try_wait(&running.init.pidfd);
}
