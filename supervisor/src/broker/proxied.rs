//! Proxy-delivered secrets (`deliver = "proxy"`) on the broker's side:
//! the injectors of the agent's proxy and of each tool call's, and the
//! supplier that fetches their values.
//!
//! A value is fetched **at the first request that needs it** (one whose
//! header carries the placeholder in the secret's shape, toward one of its
//! hosts), not when the session or the call starts: a session or a `git
//! status` that never sends the credential never fetches it (a `command:`
//! provider may mint a lease, an unset `env:` variable breaks nothing that
//! does not need it), and the value lives in cordon's memory only from its
//! first use. It is injected for its `ttl` (for good, without one), then
//! the next request fetches it again and the old value is revoked; each
//! fetch is a `secret` record, each injection an `inject` record.
//!
//! - The agent's secrets (`[environment] secrets`) are fetched by its
//!   proxy for the session and revoked at its end; `max_uses` counts
//!   injected requests (the agent makes no calls). The session's Cedar
//!   policies are asked before each fetch (a `secret` request without a
//!   tool), as no call decision covers them; a tool's secrets are decided
//!   with its call (broker/exec.rs).
//! - A tool's secrets are fetched by the call's own proxy and revoked when
//!   the call ends (its whole pid namespace is gone by then); `max_uses`
//!   counts calls that injected the secret, as for raw secrets (one `git
//!   push` makes several requests). The placeholders are fresh per call:
//!   one written out by a call is worth nothing after it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use super::secrets::{fetch_for_injector, obtain, run_revoke};
use super::Session;
use crate::audit::{Kind, Record};
use crate::egress::{Fetched, InjectSecret, Injector, Supplier, Supply};
use crate::policy::cedar::Request as CedarRequest;
use crate::policy::Verdict;
use crate::profile::{Profile, SecretSpec, Tool};
use crate::secrets::{Placeholder, SecretValue};

/// Whether the sandbox planned under `name` (a tool, or `mcp:SERVER`)
/// gets a proxy-delivered secret.
pub(super) fn injects(profile: &Profile, name: &str) -> bool {
    let listed = match name.strip_prefix("mcp:") {
        Some(server) => profile.mcp.get(server).map(|s| &s.secrets),
        None => profile.tools.get(name).map(|t| &t.secrets),
    };
    listed.is_some_and(|l| {
        l.iter().any(|w| {
            profile
                .secrets
                .get(&w.name)
                .is_some_and(|s| s.proxy.is_some())
        })
    })
}

/// Fetches values for one injector: the agent's (`call` is `None`) or
/// one tool call's.
struct ProxySupplier {
    session: Weak<Session>,
    /// The call and its tool.
    call: Option<(u64, String)>,
    /// Secrets whose use this call has counted (`max_uses`, per call).
    counted: Mutex<HashSet<String>>,
}

impl ProxySupplier {
    fn whose(&self) -> String {
        match &self.call {
            Some((call, tool)) => format!("the proxy of call {call} (tool `{tool}`)"),
            None => "the agent's proxy".into(),
        }
    }

    fn record(&self, session: &Session, spec: &SecretSpec, detail: String) {
        let rec = Record::new(Kind::Secret, &session.id)
            .secrets(vec![spec.name.clone()])
            .detail(detail);
        let rec = match &self.call {
            Some((call, tool)) => rec.call(*call).tool(tool.clone()),
            None => rec,
        };
        let _ = session.record(rec);
    }
}

impl Supplier for ProxySupplier {
    fn fetch(&self, name: &str) -> Result<Fetched, String> {
        let session = self
            .session
            .upgrade()
            .ok_or_else(|| "the session has ended".to_string())?;
        let Some(spec) = session.profile.secrets.get(name) else {
            return Err(format!("secret `{name}` is not declared"));
        };
        if self.call.is_none() {
            agent_policies(&session, name)?;
        }
        if self.call.is_some() {
            let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
            if !counted.contains(name) {
                session.secrets.take_use(spec)?;
                counted.insert(name.to_string());
            }
        }
        let (value, expires, _cached) =
            obtain(&session, spec, &|| fetch_for_injector(&session, spec))?;
        let detail = format!(
            "secret `{name}` fetched for {} (its value goes only into requests to its hosts)",
            self.whose()
        );
        self.record(&session, spec, detail);
        Ok(Fetched { value, expires })
    }

    fn release(&self, name: &str, value: Arc<SecretValue>) {
        let Some(session) = self.session.upgrade() else {
            return;
        };
        let Some(spec) = session.profile.secrets.get(name) else {
            return;
        };
        // A cached value is the session's, revoked at its end.
        if !spec.cache {
            run_revoke(&session, spec, &value);
        }
    }
}

/// What the session's Cedar policies say about injecting the agent's
/// secret `name` (the profile allows it: `[environment] secrets`). They
/// can only refuse; an `@approve` refuses too, as no person is asked for
/// a request in flight.
fn agent_policies(session: &Session, name: &str) -> Result<(), String> {
    let Some(cedar) = &session.cedar else {
        return Ok(());
    };
    let req = CedarRequest::secret(cedar.principal(), name, None).decided(
        Verdict::Allow,
        "environment.secrets".into(),
        None,
    );
    let combined = cedar
        .decide(&req)
        .without_approval("injecting a secret for the agent");
    match combined.verdict {
        Verdict::Deny => Err(format!(
            "secret `{name}`: {}",
            combined
                .reason
                .unwrap_or_else(|| "refused by the Cedar policies".into())
        )),
        Verdict::Allow | Verdict::Approve => Ok(()),
    }
}

/// The injector of one call of `tool` (a tool, or an MCP server as one),
/// and the placeholders its process gets; `None` when the tool has no
/// proxy-delivered secret.
pub(super) struct CallInjection {
    pub injector: Arc<Injector>,
    pub placeholders: Vec<(String, Placeholder)>,
}

pub(super) fn for_call(
    session: &Session,
    tool: &Tool,
    call: u64,
) -> Result<Option<CallInjection>, String> {
    let names: Vec<String> = tool
        .secrets
        .iter()
        .filter(|w| {
            session
                .profile
                .secrets
                .get(&w.name)
                .is_some_and(|s| s.proxy.is_some())
        })
        .map(|w| w.name.clone())
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    let supplier: Arc<dyn Supplier> = Arc::new(ProxySupplier {
        session: session.this(),
        call: Some((call, tool.name.clone())),
        counted: Mutex::default(),
    });
    // Counted per call by the supplier, not per request.
    build(session, &names, None, &supplier, false).map(Some)
}

/// The injector of the agent's proxy for its `[environment] secrets`,
/// whose placeholders its plan put in its environment.
pub fn agent_injector(
    session: &Arc<Session>,
    secrets: &[(String, Placeholder)],
) -> Result<Arc<Injector>, String> {
    let supplier: Arc<dyn Supplier> = Arc::new(ProxySupplier {
        session: Arc::downgrade(session),
        call: None,
        counted: Mutex::default(),
    });
    let names: Vec<String> = secrets.iter().map(|(n, _)| n.clone()).collect();
    let given: Vec<Placeholder> = secrets.iter().map(|(_, p)| p.clone()).collect();
    build(session, &names, Some(given), &supplier, true).map(|i| i.injector)
}

/// An injector for `names` (with these placeholders, or fresh ones),
/// each value from `supplier`.
fn build(
    session: &Session,
    names: &[String],
    given: Option<Vec<Placeholder>>,
    supplier: &Arc<dyn Supplier>,
    count_requests: bool,
) -> Result<CallInjection, String> {
    let Some(tls) = &session.tls else {
        return Err("the session has no CA for proxy-delivered secrets".into());
    };
    let now = Instant::now();
    let mut secrets = Vec::with_capacity(names.len());
    let mut placeholders = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let Some(spec) = session.profile.secrets.get(name) else {
            return Err(format!("secret `{name}` is not declared"));
        };
        let placeholder = match given.as_ref().and_then(|g| g.get(i)) {
            Some(p) => p.clone(),
            None => Placeholder::generate()
                .map_err(|e| format!("cannot make a placeholder for `{name}`: {e}"))?,
        };
        let lazy = Supply::Lazy(Arc::clone(supplier));
        let Some(mut s) = InjectSecret::from_spec(spec, placeholder.clone(), lazy, now) else {
            return Err(format!("secret `{name}` is not proxy-delivered"));
        };
        if !count_requests {
            s.max_uses = None;
        }
        secrets.push(s);
        placeholders.push((name.clone(), placeholder));
    }
    let injector = Injector::new(Arc::clone(&tls.tls), secrets).map_err(|e| e.to_string())?;
    Ok(CallInjection {
        injector: Arc::new(injector),
        placeholders,
    })
}
