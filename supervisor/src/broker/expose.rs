//! `cordon-shim secret NAME`: the one way an agent may hold a secret's
//! value, and only for secrets the profile marks `expose = true`. Every
//! request, granted or not, is recorded (by name).

use std::sync::Arc;

use cordon_shim::protocol::Reply;

use super::secrets::fetch_now;
use super::serve::Authenticated;
use super::wire::send_reply;
use super::{refuse, Session};
use crate::audit::{Decision, Kind, Record};
use crate::policy::cedar::Request as CedarRequest;
use crate::policy::Verdict;

pub(super) fn serve(session: &Session, mut conn: Authenticated, name: &[u8]) {
    let (stream, pid) = (&mut conn.stream, conn.pid);
    let name = String::from_utf8_lossy(name).into_owned();
    let rec = Record::new(Kind::Secret, &session.id)
        .pid(pid)
        .secrets(vec![name.clone()]);
    let refusal = match session.profile.secrets.get(&name) {
        None => Some(format!(
            "`{}` is not a declared secret",
            name.escape_debug()
        )),
        Some(spec) if !spec.expose => Some(format!(
            "secret `{name}` is not exposed to the agent (expose = false)"
        )),
        Some(_) => None,
    };
    if let Some(reason) = refusal {
        let action = session.profile.divergence.denied_action;
        refuse::refuse(session, stream, rec, pid, &reason, action);
        return;
    }
    let Some(spec) = session.profile.secrets.get(&name) else {
        return;
    };
    let (rec, refusal) = policies(session, rec, &name);
    if let Some(reason) = refusal {
        let action = session.profile.divergence.denied_action;
        refuse::refuse(session, stream, rec, pid, &reason, action);
        return;
    }
    // Recorded before the provider runs (it may mint a credential).
    if session
        .record(
            rec.clone()
                .decision(Decision::Allow)
                .detail("exposed to the agent"),
        )
        .is_err()
    {
        send_reply(
            stream,
            &Reply::Denied {
                reason: "the audit log cannot be written; no secret leaves unrecorded".into(),
            },
        );
        return;
    }
    match fetch_now(session, spec, None) {
        Ok(value) => {
            send_reply(
                stream,
                &Reply::Value {
                    value: value.expose().to_vec(),
                },
            );
            // The agent holds it now: revoke with the session, not sooner.
            session.secrets.keep_until_end(&name, Arc::new(value));
        }
        Err(e) => {
            let reason = format!("secret `{name}` could not be fetched: {e}");
            let _ = session.record(rec.decision(Decision::Deny).reason(reason.clone()));
            send_reply(stream, &Reply::Denied { reason });
        }
    }
}

/// What the session's Cedar policies say about handing secret `name` to
/// the agent (the profile allows it: `expose = true`). They can only
/// refuse; an `@approve` refuses too, as no person is asked here. The
/// record names the policies that decided.
fn policies(session: &Session, rec: Record, name: &str) -> (Record, Option<String>) {
    let Some(cedar) = &session.cedar else {
        return (rec, None);
    };
    let rule = format!("secrets.{name}.expose");
    let req =
        CedarRequest::secret(cedar.principal(), name, None).decided(Verdict::Allow, rule, None);
    let combined = cedar
        .decide(&req)
        .without_approval("handing a secret to the agent");
    let rec = if combined.policies.is_empty() {
        rec
    } else {
        rec.policies(combined.policies.clone())
    };
    match combined.verdict {
        Verdict::Deny => {
            let reason = combined
                .reason
                .unwrap_or_else(|| "refused by the Cedar policies".into());
            (rec, Some(format!("secret `{name}`: {reason}")))
        }
        Verdict::Allow | Verdict::Approve => (rec, None),
    }
}
