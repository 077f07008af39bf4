//! One `tools/call` of an MCP session, through the same stages as an exec
//! call: decided (the tool's argument rules, then the Cedar policies),
//! admitted (quota, a human yes when asked, the `call` record before the
//! server sees it), then forwarded; its `call_end` when the answer comes.
//! Refusals are recorded and counted here and answered to the agent as a
//! JSON-RPC error, never as the shim's final reply (the session goes on).
//! No lock is held while writing to the agent: a client that stops
//! reading must not stall the relay's other direction.

use std::os::unix::net::UnixStream;
use std::time::Instant;

use super::approve::{gate, Ask};
use super::mcp::Conversation;
use crate::audit::{Decision, Kind, Record};
use crate::mcp::{Ended, ToolCall};
use crate::policy::cedar::Request as CedarRequest;
use crate::policy::{RuleRef, Verdict};
use crate::process::Charged;
use crate::profile::DivergenceAction;

/// A call decided, not yet admitted.
pub(super) struct Decided {
    id: u64,
    full: String,
    canonical: String,
    base: Record,
    pub verdict: Verdict,
    reason: String,
    /// The Cedar policies that made an allowed call ask (`@approve`).
    asked_by: Option<String>,
}

/// The call's record so far and its verdict: the TOML rules, then the
/// Cedar policies.
pub(super) fn decide(c: &Conversation<'_>, call: &ToolCall) -> Decided {
    let session = c.session;
    let id = session.next_call_id();
    let full = format!("{}/{}", c.server.name, call.tool);
    let canonical = call.canonical_arguments();
    let mut base = Record::new(Kind::Call, &session.id)
        .profile(&session.profile.name)
        .call(id)
        .tool(format!("mcp:{full}"))
        .argv_bytes(&[canonical.as_bytes()])
        .pid(c.pid);
    if let Some(i) = &session.intent {
        base = base.intent(i.clone());
    }
    let toml = &call.decision;
    let rule_text = toml.rule.as_ref().map(|r| {
        format!(
            "mcp.{}.tools.{}.{}[{}] {} ({})",
            c.server.name, call.tool, r.list, r.index, r.pattern, r.origin
        )
    });
    if let Some(r) = &rule_text {
        base = base.rule(r.clone());
    }
    // The Cedar policies, on top of the TOML verdict (a TOML deny is final).
    let mut verdict = toml.verdict;
    let mut reason = toml.reason.clone();
    let mut asked_by = None;
    if let (Some(cedar), true) = (&session.cedar, toml.verdict != Verdict::Deny) {
        let req = CedarRequest::mcp_call(cedar.principal(), &full, &call.arguments).decided(
            toml.verdict,
            rule_text.clone().unwrap_or_default(),
            toml.rule.as_ref().and_then(|r| r.risk),
        );
        let combined = cedar.decide(&req);
        if !combined.policies.is_empty() {
            base = base.policies(combined.policies.clone());
        }
        if toml.verdict == Verdict::Allow && combined.verdict == Verdict::Approve {
            asked_by = Some(combined.policies.join(", "));
        }
        verdict = combined.verdict;
        if let Some(r) = combined.reason {
            reason = r;
        }
    }
    Decided {
        id,
        full,
        canonical,
        base,
        verdict,
        reason,
        asked_by,
    }
}

/// The checks after the verdict (quota, a human yes when asked), then the
/// `call` record, then the call goes to the server.
pub(super) fn admit(c: &Conversation<'_>, call: &ToolCall, d: Decided) {
    let session = c.session;
    let toml = &call.decision;
    let Decided {
        id,
        full,
        canonical,
        mut base,
        verdict,
        reason,
        asked_by,
    } = d;
    let denied_action = session.profile.divergence.denied_action;
    if verdict == Verdict::Deny {
        return refuse(c, call, base, &reason, denied_action);
    }
    if let Some(why) = over_quota(c) {
        return refuse(c, call, base, &why, denied_action);
    }
    let Some(rule) = toml.rule.clone() else {
        return refuse(c, call, base, &reason, denied_action);
    };
    base = match verdict {
        Verdict::Approve => match approve(c, call, &full, &canonical, &base, &rule, asked_by) {
            Some(b) => b,
            None => return,
        },
        _ => base.decision(Decision::Allow),
    };
    if let Err(e) = session.record(base) {
        let why = format!("the audit log cannot be written ({e}); no call runs unrecorded");
        c.to_agent(&call.refusal(&why));
        return;
    }
    let frame = c.relay().admit(call, id, Instant::now());
    if !c.to_server(&frame) {
        c.to_agent(&call.refusal("the MCP server is gone"));
    }
}

/// A human yes, asked like an exec call's. `None` when refused (the
/// approval's records are written by the gate; the agent is answered
/// here).
fn approve(
    c: &Conversation<'_>,
    call: &ToolCall,
    full: &str,
    canonical: &str,
    base: &Record,
    rule: &RuleRef,
    asked_by: Option<String>,
) -> Option<Record> {
    // The gate answers refusals on the stream it is given, as it would
    // answer a shim; an MCP refusal is the agent's JSON-RPC error instead,
    // so the gate gets a stream of its own (kept open while it waits, or
    // it would take the hang-up for a shim gone away).
    let (mut ours, _held) = match UnixStream::pair() {
        Ok(p) => p,
        Err(e) => {
            let why = format!("cannot ask for approval: {e}");
            c.to_agent(&call.refusal(&why));
            return None;
        }
    };
    let args: [&[u8]; 1] = [canonical.as_bytes()];
    let at = format!("mcp.{}.tools.{}", c.server.name, call.tool);
    let ask = Ask {
        tool: &c.tool,
        name: full,
        args: &args,
        cwd: &c.cwd,
        rule,
        at: &at,
        asked_by: asked_by.as_deref(),
        pid: c.pid,
    };
    match gate(c.session, &mut ours, base, &ask) {
        Some(ok) => Some(
            base.clone()
                .decision(Decision::Approve)
                .approver(ok.approver)
                .approved_at(ok.at)
                .approval(ok.id),
        ),
        None => {
            let why = format!("`{full}` was not approved (the audit log has the answer)");
            c.to_agent(&call.refusal(&why));
            None
        }
    }
}

/// Records and counts a refusal, and answers the agent unless the
/// refusal killed the session.
pub(super) fn refuse(
    c: &Conversation<'_>,
    call: &ToolCall,
    base: Record,
    reason: &str,
    action: DivergenceAction,
) {
    let charged = c.session.refusals.charge_as(c.pid, reason, action);
    let _ = c.session.record(
        base.decision(Decision::refusal(charged.killed()))
            .reason(reason.to_string()),
    );
    if !charged.killed() {
        c.to_agent(&call.refusal(reason));
    }
}

/// Counts a refusal that has no call (a malformed message, a stray
/// answer, a call of an undeclared `tool`), with a record of it.
pub(super) fn count(
    c: &Conversation<'_>,
    reason: &str,
    tool: Option<&str>,
    action: DivergenceAction,
) -> Charged {
    let charged = c.session.refusals.charge_as(c.pid, reason, action);
    let name = match tool {
        Some(t) => format!("mcp:{}/{t}", c.server.name),
        None => format!("mcp:{}", c.server.name),
    };
    let rec = Record::new(Kind::Call, &c.session.id)
        .profile(&c.session.profile.name)
        .tool(name)
        .pid(c.pid)
        .decision(Decision::refusal(charged.killed()))
        .reason(reason.to_string());
    let _ = c.session.record(rec);
    charged
}

/// The server's `max_calls`.
fn over_quota(c: &Conversation<'_>) -> Option<String> {
    let max = c.server.max_calls?;
    let n = c.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (n >= max).then(|| {
        format!(
            "MCP server `{}` reached its max_calls = {max} for this session",
            c.server.name
        )
    })
}

/// The `call_end` record of an answered (or expired) call.
pub(super) fn ended(c: &Conversation<'_>, e: &Ended, timed_out: bool) {
    let ms = u64::try_from(e.since.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut rec = Record::new(Kind::CallEnd, &c.session.id)
        .profile(&c.session.profile.name)
        .call(e.call)
        .tool(format!("mcp:{}/{}", c.server.name, e.tool))
        .duration_ms(ms);
    if timed_out {
        rec = rec.reason(format!(
            "the MCP server did not answer within {}",
            humantime::format_duration(c.server.call_timeout)
        ));
    } else if e.failed && c.stop.load(std::sync::atomic::Ordering::Acquire) {
        rec = rec.detail("the MCP server ended before answering".to_string());
    } else if e.failed {
        rec = rec.detail("the server reported an error".to_string());
    }
    let _ = c.session.record(rec);
}
