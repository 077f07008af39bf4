//! One broker connection: authenticate the peer, read the request, decide,
//! record, run, reply. Every refusal is one line and names its reason.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cordon_shim::protocol::{Reply, Request, VERSION};

use super::peer::authenticate;
use super::secrets::CallSecrets;
use super::wire::{read_first, send_reply};
use super::{tool, Session};
use crate::audit::{Kind, Record};
use crate::policy::Verdict;
use crate::process::{Outcome, Violation};
use crate::profile::DivergenceAction;

/// How long a peer may take to send its request: a shim sends it at once;
/// a peer that sends half a frame and stalls is dropped after this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one connection to completion.
pub fn serve(session: &Session, mut stream: UnixStream) {
    let t0 = Instant::now();
    let peer = match authenticate(&stream, session.uid, session.pid_ns) {
        Ok(p) => p,
        Err(e) => {
            // A foreign peer cannot be charged to this session; its records
            // are capped so a connect loop cannot flood the shared log.
            let n = session.refused_peers.fetch_add(1, Ordering::Relaxed);
            if n < MAX_REFUSED_PEER_RECORDS {
                let _ = session
                    .record(Record::new(Kind::RefusedPeer, &session.id).reason(e.to_string()));
            } else if n == MAX_REFUSED_PEER_RECORDS {
                let _ = session.record(
                    Record::new(Kind::RefusedPeer, &session.id)
                        .reason(format!("more than {MAX_REFUSED_PEER_RECORDS} refused peers; no further records this session")),
                );
            }
            send_reply(
                &mut stream,
                &Reply::Denied {
                    reason: format!("refused: {e}"),
                },
            );
            return;
        }
    };
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let (request, fds) = match read_first(&mut stream) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(pid = peer.pid, error = %e, "broker: bad request");
            if let Some(what) = super::approve::forged_answer(&e) {
                super::approve::forgery(session, &mut stream, peer.pid, &what);
                return;
            }
            // A malformed request from the agent's own tree is a refusal
            // like any other: it counts toward max_denials.
            if !matches!(e, super::wire::WireError::Closed) {
                count_denial(
                    session,
                    peer.pid,
                    &format!("sent a malformed request ({e})"),
                );
            }
            send_reply(
                &mut stream,
                &Reply::Error {
                    message: e.to_string(),
                },
            );
            return;
        }
    };
    let _ = stream.set_read_timeout(None);
    let (version, name, args, env) = match request {
        Request::Exec {
            version,
            tool,
            args,
            cwd: _,
            env,
        } => (version, tool, args, env),
        Request::Secret { version, name } => {
            super::expose::serve(session, &mut stream, peer.pid, version, &name);
            return;
        }
        Request::Spawn {
            version,
            name,
            profile,
            intent,
            argv,
            cwd: _,
        } => {
            let req = super::spawn::SpawnRequest {
                version,
                name,
                profile,
                intent,
                argv,
            };
            super::spawn::serve(session, &mut stream, peer.pid, req, &fds);
            return;
        }
        Request::Cancel { .. } => {
            send_reply(
                &mut stream,
                &Reply::Error {
                    message: "the first frame must be an exec or secret request".into(),
                },
            );
            return;
        }
    };
    if version != VERSION {
        send_reply(&mut stream, &Reply::Error {
            message: format!("protocol version {version} is not supported (this supervisor speaks {VERSION})"),
        });
        return;
    }
    let call = session.next_call.fetch_add(1, Ordering::Relaxed) + 1;
    let name_text = String::from_utf8_lossy(&name).into_owned();
    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let cwd = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fds[3])
    ))
    .unwrap_or_default();
    let base = Record::new(Kind::Call, &session.id)
        .profile(&session.profile.name)
        .call(call)
        .tool(name_text.clone())
        .argv_bytes(&args)
        .cwd(cwd.display().to_string())
        .pid(peer.pid);
    let base = match &session.intent {
        Some(i) => base.intent(i.clone()),
        None => base,
    };

    // An undeclared name is divergence, whatever the patterns say.
    let Some(tool) = session.profile.tools.get(&name_text) else {
        let what = format!(
            "ran undeclared tool `{}` through the shim",
            name_text.escape_debug()
        );
        refuse(
            session,
            &mut stream,
            base,
            peer.pid,
            &what,
            session.profile.divergence.undeclared_tool,
        );
        return;
    };
    let decision = session.policy.decide(&name_text, &args);
    // The exact argv stays in `argv`; the form the rules saw goes beside it.
    let base = match &decision.canonical {
        Some(c) => base.canonical_bytes(c),
        None => base,
    };
    let rule = decision.rule.as_ref().map(|r| {
        format!(
            "tools.{name_text}.{}[{}] {} ({})",
            r.list, r.index, r.pattern, r.origin
        )
    });
    let base = match rule {
        Some(r) => base.rule(r),
        None => base,
    };
    let reason = match decision.verdict {
        Verdict::Allow | Verdict::Approve => None,
        Verdict::Deny => Some(decision.reason.clone()),
    };
    let reason = reason
        .or_else(|| cwd_refusal(session, &name_text, &cwd))
        .or_else(|| over_quota(session, tool, &name_text));
    if let Some(reason) = reason {
        refuse(
            session,
            &mut stream,
            base,
            peer.pid,
            &reason,
            session.profile.divergence.denied_action,
        );
        return;
    }
    // A call that needs a human yes waits here for one (or is refused).
    let base = match (decision.verdict, decision.rule.as_ref()) {
        (Verdict::Allow, _) => base.decision("allow"),
        (Verdict::Approve, Some(rule)) => {
            let ask = super::approve::Ask {
                tool,
                name: &name_text,
                args: &args,
                cwd: &cwd,
                rule,
                pid: peer.pid,
            };
            let Some(ok) = super::approve::gate(session, &mut stream, &base, &ask) else {
                return;
            };
            base.decision("approve")
                .approver(ok.approver)
                .approved_at(ok.at)
                .approval(ok.id)
        }
        (Verdict::Approve | Verdict::Deny, _) => {
            let action = session.profile.divergence.denied_action;
            refuse(
                session,
                &mut stream,
                base,
                peer.pid,
                &decision.reason,
                action,
            );
            return;
        }
    };
    let decided = t0.elapsed();
    let base = if tool.secrets.is_empty() {
        base
    } else {
        base.secrets(
            tool.secrets
                .iter()
                .map(|w| w.name.clone())
                .collect::<Vec<_>>(),
        )
    };
    // Written before anything of the call happens, the fetch of its
    // secrets included (a provider may mint a credential): no call runs,
    // and no secret is fetched for one, unrecorded. `base` carries the
    // decision (allow, or approve with its approver).
    if let Err(e) = session.record(base.clone()) {
        send_reply(
            &mut stream,
            &Reply::Denied {
                reason: format!("the audit log cannot be written ({e}); no call runs unrecorded"),
            },
        );
        return;
    }
    // Secrets are fetched now, at the moment of the call, never before. A
    // call that cannot have them ends there, refused, on its `call_end`.
    let secrets = match CallSecrets::fetch(session, tool) {
        Ok(s) => s,
        Err(reason) => {
            let end = Record::new(Kind::CallEnd, &session.id)
                .profile(&session.profile.name)
                .call(call)
                .tool(name_text);
            refuse(
                session,
                &mut stream,
                end,
                peer.pid,
                &reason,
                DivergenceAction::Deny,
            );
            return;
        }
    };
    let env = pass_env(&tool.env, &env);
    let recorded = t0.elapsed();
    let started = Instant::now();
    let request = tool::Call {
        id: call,
        cwd: &cwd,
        args: &args,
        env: &env,
        fds: &fds,
    };
    let result = tool::run(session, tool, &request, &secrets, &mut stream);
    // Revoke now, before the call is reported finished.
    drop(secrets);
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::debug!(
        call,
        decided_us = decided.as_micros(),
        recorded_us = recorded.as_micros(),
        ran_us = t0.elapsed().as_micros(),
        "broker: call timings"
    );
    let end = Record::new(Kind::CallEnd, &session.id)
        .profile(&session.profile.name)
        .call(call)
        .tool(name_text)
        .duration_ms(duration_ms);
    match result {
        Ok(ran) => {
            let end = match &ran.outcome {
                Outcome::Exited(c) => end.exit(*c),
                Outcome::Signaled(s) => end.signal(*s),
                Outcome::Diverged(v) => end.decision("kill").reason(v.what.clone()),
                Outcome::TimedOut => end.decision("kill").reason(match &ran.reply {
                    cordon_shim::protocol::Reply::Denied { reason } => reason.clone(),
                    _ => "timeout".to_string(),
                }),
                other => end.detail(format!("{other:?}")),
            };
            let _ = session.record(end);
            send_reply(&mut stream, &ran.reply);
        }
        Err(e) => {
            let _ = session.record(end.detail(e.to_string()));
            send_reply(
                &mut stream,
                &Reply::Error {
                    message: e.to_string(),
                },
            );
        }
    }
}

/// Refused-peer records written per session before they are only counted.
const MAX_REFUSED_PEER_RECORDS: u32 = 100;

/// Counts one refusal; returns why the session must now be killed, if it
/// must: the action for this kind of refusal is `kill`, or the refusals
/// went past `max_denials`.
fn over_limit(session: &Session, action: DivergenceAction, reason: &str) -> Option<String> {
    crate::process::refusals::over_limit(
        &session.denials,
        &session.profile.divergence,
        action,
        reason,
    )
}

/// Counts a refusal that has no call record of its own (a malformed
/// request, a refused secret) and kills the session past the limit.
pub(super) fn count_denial(session: &Session, pid: u32, reason: &str) {
    if let Some(what) = over_limit(session, session.profile.divergence.denied_action, reason) {
        session.killer.diverge(Violation { pid, what }, true);
    }
}

/// Records and answers a refusal; counts it toward `max_denials`, or kills
/// the session when the profile says so.
fn refuse(
    session: &Session,
    stream: &mut UnixStream,
    base: Record,
    pid: u32,
    reason: &str,
    action: DivergenceAction,
) {
    let kill = over_limit(session, action, reason);
    let decision = if kill.is_some() { "kill" } else { "deny" };
    let _ = session.record(base.decision(decision).reason(reason.to_string()));
    if let Some(what) = kill {
        // The divergence record itself is written when the session ends.
        session.killer.diverge(Violation { pid, what }, true);
        // No answer: the shim waits, connected, until the tree is gone, so
        // the agent never runs another step after its last refusal.
        session.killer.wait_dead(std::time::Duration::from_secs(5));
        return;
    }
    send_reply(
        stream,
        &Reply::Denied {
            reason: reason.to_string(),
        },
    );
}

/// The call's working directory must lie inside one of the tool's `cwd`
/// trees.
fn cwd_refusal(session: &Session, tool: &str, cwd: &std::path::Path) -> Option<String> {
    let allowed = session.tool_cwds.get(tool)?;
    if cwd.as_os_str().is_empty() || !allowed.iter().any(|a| cwd.starts_with(a)) {
        return Some(format!(
            "working directory `{}` is outside what `{tool}` may run in ({})",
            cwd.display(),
            allowed
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    None
}

/// Counts the call against the tool's `max_calls`.
fn over_quota(session: &Session, tool: &crate::profile::Tool, name: &str) -> Option<String> {
    let max = tool.max_calls?;
    let mut counts = session.calls.lock().unwrap_or_else(|e| e.into_inner());
    let n = counts.entry(name.to_string()).or_insert(0);
    if *n >= max {
        return Some(format!(
            "`{name}` reached its max_calls = {max} for this session"
        ));
    }
    *n += 1;
    None
}

/// The caller's variables the tool may see: the profile's `env` names, plus
/// the terminal and locale.
fn pass_env(names: &[String], env: &[(Vec<u8>, Vec<u8>)]) -> Vec<(String, String)> {
    let wanted = |k: &str| {
        names.iter().any(|n| n == k) || ["TERM", "LANG", "LC_ALL", "COLUMNS", "LINES"].contains(&k)
    };
    env.iter()
        .filter_map(|(k, v)| {
            Some((
                String::from_utf8(k.clone()).ok()?,
                String::from_utf8(v.clone()).ok()?,
            ))
        })
        .filter(|(k, _)| wanted(k))
        .collect()
}

/// The canonical directories a tool's calls may run in.
pub fn canonical_dirs(paths: &[std::path::PathBuf]) -> Vec<PathBuf> {
    paths
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect()
}
