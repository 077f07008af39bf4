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
