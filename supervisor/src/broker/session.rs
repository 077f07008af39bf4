//! What the broker knows about one session: its profile and compiled
//! policy, its identity and ancestors, its counters, and where its records
//! go. Built by one constructor for a root session and a sub-agent alike.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::secrets::SessionSecrets;
use crate::approval::Queue;
use crate::audit::{AuditError, AuditLog, Record};
use crate::host::Host;
use crate::identity::Issuer;
use crate::policy::cedar::SessionPolicies;
use crate::policy::{Policy, PolicyError};
use crate::process::{Killer, Refusals};
use crate::profile::{Placeholders, Profile};
use crate::sandbox::loader::LoaderCache;
use crate::sandbox::proxied::SessionTls;
use crate::sandbox::tool_plan::{tool_plan, ToolPlan};

/// Everything a call needs to know about its session.
pub struct Session {
    pub id: String,
    pub profile: Arc<Profile>,
    pub policy: Policy,
    pub intent: Option<String>,
    pub placeholders: Placeholders,
    pub host: Host,
    pub audit: Arc<AuditLog>,
    /// The uid every peer must have.
    pub uid: u32,
    /// The agent's pid namespace: only processes in it are served.
    pub pid_ns: u64,
    /// Connections the supervisor made for sandboxed processes (their
    /// mediated connects), on their way to the accept loop.
    pub handoff: Arc<super::handoff::Handoff>,
    /// Canonical directories each tool's calls may run in.
    pub tool_cwds: HashMap<String, Vec<PathBuf>>,
    /// Each tool's sandbox, planned once for the session.
    pub tool_plans: HashMap<String, ToolPlan>,
    /// The session directory (calls get private subdirectories).
    pub root: PathBuf,
    pub next_call: AtomicU64,
    /// Refusals toward `max_denials`, shared with the session's egress
    /// proxies and counted toward every ancestor's; it also kills the
    /// session.
    pub refusals: Refusals,
    /// Connections refused as foreign (not charged to this session).
    pub refused_peers: AtomicU32,
    /// Calls per tool so far (`max_calls`).
    pub calls: Mutex<HashMap<String, u32>>,
    /// Tool calls running now, by the pid of their sandbox's init: their
    /// processes may call other tools through the broker.
    /// Each holds the init's pidfd: a pid read from /proc counts only
    /// while that same process is alive (a reaped init's pid may be reused).
    pub running_calls: Mutex<HashMap<i32, (u64, std::os::fd::OwnedFd)>>,
    pub secrets: SessionSecrets,
    /// Appends that failed (each refused its call), for the session's end.
    pub audit_failures: AuditFailures,
    /// Pending approval requests and grants.
    pub approvals: Queue,
    /// Ancestor sessions of a sub-agent, root first; empty for a root.
    pub chain: Vec<String>,
    /// `cordon-shim`, for the sessions of sub-agents.
    pub shim: Option<PathBuf>,
    /// Sub-agent sessions running now.
    pub subs: Mutex<Vec<Weak<Session>>>,
    /// Where the session's refusals are said.
    pub notices: Arc<crate::process::Notices>,
    /// cordon's identity issuer, loaded at the first identity secret.
    issuer: OnceLock<Result<Arc<Issuer>, String>>,
    /// The session CA and its bundle, for proxy-delivered secrets.
    pub tls: Option<SessionTls>,
    /// This session, for what outlives a borrow of it (a tool call's
    /// injector, held by its proxy's threads); set by `broker::start`.
    this: OnceLock<Weak<Session>>,
    /// The profile's Cedar policies (`[policy] cedar`), shared with the
    /// session's egress proxies.
    pub cedar: Option<Arc<SessionPolicies>>,
}

/// What makes one session differ from another; the rest of a [`Session`]
/// starts empty or follows from these.
pub struct SessionParts {
    pub id: String,
    pub profile: Arc<Profile>,
    pub intent: Option<String>,
    pub placeholders: Placeholders,
    pub host: Host,
    pub audit: Arc<AuditLog>,
    pub pid_ns: u64,
    pub root: PathBuf,
    pub refusals: Refusals,
    pub chain: Vec<String>,
    pub shim: Option<PathBuf>,
    /// Operators can answer approvals (a control socket is served).
    pub operators: bool,
    /// What the loader needs, as the agent's plan found it (the tools'
    /// plans share most of it).
    pub loader: LoaderCache,
    /// Where the session's refusals are said (and, for those without a
    /// record of their own, recorded).
    pub notices: Arc<crate::process::Notices>,
    /// The session CA and its bundle (a profile with proxy-delivered
    /// secrets).
    pub tls: Option<SessionTls>,
    /// The profile's Cedar policies for this session (the agent's egress
    /// proxy, started before the broker, asks the same ones).
    pub cedar: Option<Arc<SessionPolicies>>,
}

/// Why a broker session could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("compiling the argv rules: {0}")]
    Policy(#[from] PolicyError),
    #[error("planning the sandbox of tool `{tool}`: {source}")]
    ToolPlan {
        tool: String,
        source: crate::sandbox::PlanError,
    },
    #[error("creating the broker's handoff queue: {0}")]
    Handoff(crate::sys::Errno),
}

impl Session {
    /// Compiles the profile's rules, plans each tool's sandbox and sets up
    /// the session's counters.
    pub fn new(parts: SessionParts) -> Result<Session, SessionError> {
        let policy = Policy::compile(&parts.profile)?;
        let mut loader = parts.loader;
        let mut tool_plans = HashMap::new();
        for (name, tool) in &parts.profile.tools {
            let plan = tool_plan(
                &parts.profile,
                tool,
                parts.shim.as_deref(),
                &parts.placeholders,
                &mut loader,
            )
            .map_err(|source| SessionError::ToolPlan {
                tool: name.clone(),
                source,
            })?;
            tool_plans.insert(name.clone(), plan);
        }
        // MCP servers run through the same launcher, each in its own
        // sandbox planned the same way.
        for server in parts.profile.mcp.values() {
            let tool = super::mcp_server::as_tool(server);
            let plan = tool_plan(
                &parts.profile,
                &tool,
                parts.shim.as_deref(),
                &parts.placeholders,
                &mut loader,
            )
            .map_err(|source| SessionError::ToolPlan {
                tool: tool.name.clone(),
                source,
            })?;
            tool_plans.insert(tool.name, plan);
        }
        // A sandbox whose proxy injects (a tool's, an MCP server's) reads the
        // session's CA bundle.
        for (name, plan) in &mut tool_plans {
            if let Some(t) = &parts.tls {
                if super::proxied::injects(&parts.profile, name) {
                    let rule =
                        crate::sandbox::proxied::bundle_rule(&t.bundle).map_err(|source| {
                            SessionError::ToolPlan {
                                tool: name.clone(),
                                source,
                            }
                        })?;
                    plan.filesystem.read.push(rule);
                }
            }
        }
        let approvals = Queue::new(parts.profile.approval.clone(), &parts.id);
        if parts.operators {
            approvals.set_operators();
        }
        Ok(Session {
            tool_cwds: tool_cwds(&parts.profile, &parts.placeholders),
            tool_plans,
            id: parts.id,
            policy,
            intent: parts.intent,
            placeholders: parts.placeholders,
            host: parts.host,
            audit: parts.audit,
            uid: crate::sys::geteuid(),
            pid_ns: parts.pid_ns,
            handoff: Arc::new(super::handoff::Handoff::new().map_err(SessionError::Handoff)?),
            root: parts.root,
            next_call: AtomicU64::new(0),
            refusals: parts.refusals,
            refused_peers: AtomicU32::new(0),
            calls: Mutex::default(),
            running_calls: Mutex::default(),
            secrets: SessionSecrets::default(),
            audit_failures: AuditFailures::default(),
            approvals,
            chain: parts.chain,
            shim: parts.shim,
            subs: Mutex::default(),
            notices: parts.notices,
            issuer: OnceLock::new(),
            tls: parts.tls,
            this: OnceLock::new(),
            cedar: parts.cedar,
            profile: parts.profile,
        })
    }

    /// Remembers `session` as itself (once; `broker::start` does it).
    pub fn set_this(session: &Arc<Session>) {
        let _ = session.this.set(Arc::downgrade(session));
    }

    /// This session, weakly (empty before `broker::start`).
    pub fn this(&self) -> Weak<Session> {
        self.this.get().cloned().unwrap_or_default()
    }

    /// The identity issuer: cordon's signing key (the systemd credential
    /// `identity-key`, else the state directory's, created on first use),
    /// loaded once per session; why not, if it cannot be.
    pub fn issuer(&self) -> Result<&Arc<Issuer>, &String> {
        self.issuer
            .get_or_init(|| {
                crate::identity::key::KeyLocation::for_this_process()
                    .and_then(crate::identity::SigningKey::load_or_create)
                    .map(|k| Arc::new(Issuer::new(k)))
                    .map_err(|e| e.to_string())
            })
            .as_ref()
    }

    /// Kills the agent's whole tree (divergence).
    pub fn killer(&self) -> &Arc<Killer> {
        self.refusals.killer()
    }

    /// The next call id (from 1).
    pub fn next_call_id(&self) -> u64 {
        self.next_call.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Appends a record with this session's profile and identity (and its
    /// chain of ancestors, for a sub-agent). A failure is counted and
    /// logged here; the caller decides what it refuses because of it.
    pub fn record(&self, rec: Record) -> Result<String, AuditError> {
        let rec = rec.profile(&self.profile.name);
        let rec = if self.chain.is_empty() {
            rec
        } else {
            rec.chain(self.chain.clone())
        };
        let appended = self.audit.append(&rec);
        if let Err(e) = &appended {
            tracing::error!(session = %self.id, error = %e, "audit: append failed");
            self.audit_failures.note(e);
        }
        appended
    }

    /// This session and every sub-agent session below it.
    pub fn tree(self: &Arc<Session>) -> Vec<Arc<Session>> {
        let mut out = vec![Arc::clone(self)];
        let mut i = 0;
        while let Some(s) = out.get(i).cloned() {
            let subs = s.subs.lock().unwrap_or_else(|e| e.into_inner());
            out.extend(subs.iter().filter_map(Weak::upgrade));
            i += 1;
        }
        out
    }

    /// Registers a running sub-agent session (held weakly).
    pub fn add_sub(&self, sub: &Arc<Session>) {
        self.subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(sub));
    }

    /// Forgets sub-agent sessions that have ended.
    pub fn prune_subs(&self) {
        self.subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|w| w.strong_count() > 0);
    }

    /// The running call whose sandbox's init is `pid`.
    pub fn call_of_init(&self, pid: i32) -> Option<u64> {
        let calls = self.running_calls.lock().unwrap_or_else(|e| e.into_inner());
        let (call, pidfd) = calls.get(&pid)?;
        (super::peer::pidfd_pid(std::path::Path::new("/proc"), pidfd) == Some(pid)).then_some(*call)
    }

    /// A private directory for one call.
    pub fn call_dir(&self, call: u64) -> PathBuf {
        self.root.join("calls").join(call.to_string())
    }
}

/// The audit appends a session could not make: how many, and the first
/// error (the reason an operator needs; later ones usually repeat it).
#[derive(Default)]
pub struct AuditFailures {
    count: AtomicU32,
    first: Mutex<Option<String>>,
}

impl AuditFailures {
    fn note(&self, e: &AuditError) {
        if self.count.fetch_add(1, Ordering::Relaxed) == 0 {
            *self.first.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
    }

    /// How many appends failed, and the first failure's message.
    pub fn summary(&self) -> Option<(u32, String)> {
        let n = self.count.load(Ordering::Relaxed);
        let first = self
            .first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        (n > 0).then_some((n, first))
    }
}

/// The canonical `cwd` trees of every tool, expanded for this session.
pub fn tool_cwds(profile: &Profile, values: &Placeholders) -> HashMap<String, Vec<PathBuf>> {
    profile
        .tools
        .iter()
        .map(|(name, tool)| {
            let dirs: Vec<PathBuf> = if tool.sandbox.cwd.is_empty() {
                vec![values.workspace.clone()]
            } else {
                tool.sandbox
                    .cwd
                    .iter()
                    .map(|r| r.path.expand(values))
                    .collect()
            };
            let canonical = dirs
                .iter()
                .filter_map(|p| std::fs::canonicalize(p).ok())
                .collect();
            (name.clone(), canonical)
        })
        .collect()
}
