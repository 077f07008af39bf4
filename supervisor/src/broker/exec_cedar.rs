//! The Cedar policies on an exec call, after its TOML verdict: the call
//! itself (`exec`, argv exact and canonical), then each secret it would
//! be handed (`secret`, with the tool named). They can only narrow: a
//! TOML deny is never put to them, a forbid denies, an `@approve` permit
//! makes an allowed call ask a person.

use super::Received;
use crate::policy::cedar::{Combined, Request};
use crate::policy::{Decision, Verdict};
use crate::profile::Tool;

/// Puts the call to the session's policies (if it has any and the TOML
/// rules did not deny it), updating `decision` and the call's record.
/// Returns the policies that made an allowed call ask for approval.
pub(super) fn decide(
    received: &mut Received<'_>,
    tool: &Tool,
    decision: &mut Decision,
    rule_text: Option<String>,
) -> Option<String> {
    let session = received.session;
    let cedar = session.cedar.as_ref()?;
    if decision.verdict == Verdict::Deny {
        return None;
    }
    let toml = decision.verdict;
    let risk = decision.rule.as_ref().and_then(|r| r.risk);
    let cwd = received.cwd.to_string_lossy().into_owned();
    let combined = {
        let args = received.arg_slices();
        let req = Request::exec(
            cedar.principal(),
            &received.name,
            &args,
            decision.canonical.as_deref(),
            &cwd,
        )
        .decided(toml, rule_text.unwrap_or_default(), risk);
        let mut combined = cedar.decide(&req);
        for (i, wanted) in tool.secrets.iter().enumerate() {
            if combined.verdict == Verdict::Deny {
                break;
            }
            let req = Request::secret(cedar.principal(), &wanted.name, Some(&received.name))
                .decided(toml, format!("tools.{}.secrets[{i}]", received.name), risk);
            let one = cedar.decide(&req);
            combined = narrower(combined, one, &wanted.name);
        }
        combined
    };
    if !combined.policies.is_empty() {
        received.base = received.base.clone().policies(combined.policies.clone());
    }
    let asked = (toml == Verdict::Allow && combined.verdict == Verdict::Approve)
        .then(|| combined.policies.join(", "));
    decision.verdict = combined.verdict;
    if let Some(reason) = combined.reason {
        decision.reason = reason;
    }
    asked
}

/// The narrower of the call's decision so far and one secret's: a deny
/// wins, then an approval; the policies of both are named.
fn narrower(call: Combined, secret: Combined, name: &str) -> Combined {
    let rank = |v: Verdict| match v {
        Verdict::Allow => 0,
        Verdict::Approve => 1,
        Verdict::Deny => 2,
    };
    let mut policies = call.policies.clone();
    for p in &secret.policies {
        if !policies.contains(p) {
            policies.push(p.clone());
        }
    }
    if rank(secret.verdict) > rank(call.verdict) {
        Combined {
            verdict: secret.verdict,
            policies,
            reason: secret.reason.map(|r| format!("secret `{name}`: {r}")),
        }
    } else {
        Combined { policies, ..call }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(verdict: Verdict, p: &str, reason: Option<&str>) -> Combined {
        Combined {
            verdict,
            policies: vec![p.to_string()],
            reason: reason.map(str::to_string),
        }
    }

    #[test]
    fn a_secret_narrows_the_call_and_never_widens_it() {
        let call = c(Verdict::Allow, "a", None);
        let n = narrower(
            call,
            c(Verdict::Deny, "b", Some("forbidden by Cedar policy b")),
            "T",
        );
        assert_eq!(n.verdict, Verdict::Deny);
        assert_eq!(n.policies, ["a", "b"]);
        assert_eq!(
            n.reason.as_deref(),
            Some("secret `T`: forbidden by Cedar policy b")
        );
        let call = c(Verdict::Approve, "a", Some("ask"));
        let n = narrower(call, c(Verdict::Allow, "a", None), "T");
        assert_eq!(n.verdict, Verdict::Approve);
        assert_eq!(n.policies, ["a"]);
        assert_eq!(n.reason.as_deref(), Some("ask"));
    }
}
