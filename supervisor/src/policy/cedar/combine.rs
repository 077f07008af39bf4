//! One decision from the TOML verdict and the policies' answer:
//!
//! | TOML | Cedar | decision |
//! |---|---|---|
//! | deny | (not asked) | deny |
//! | allow or approve | a forbid holds | deny |
//! | allow or approve | a policy errors | deny |
//! | allow | a permit holds, one has `@approve` | approve |
//! | allow | a permit holds, none has `@approve` | allow |
//! | approve | a permit holds | approve (a permit never removes a TOML question) |
//! | allow or approve | no policy holds, `unmatched = "toml"` | the TOML verdict |
//! | allow or approve | no policy holds, `unmatched = "deny"` | deny |
//!
//! So a policy file can forbid more and ask more, never allow more.

use super::Answer;
use crate::policy::Verdict;

/// `[policy] unmatched`: what a request no policy speaks to gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unmatched {
    /// The TOML verdict stands (policies are a layer of forbids and
    /// approvals on top of the profile).
    #[default]
    Toml,
    /// Denied: every allowed call needs a permit too.
    Deny,
}

/// The combined decision, the policy ids that decided it (empty when the
/// TOML rule alone did), and why, for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combined {
    pub verdict: Verdict,
    pub policies: Vec<String>,
    /// `None` when the TOML reason stands unchanged.
    pub reason: Option<String>,
}

/// Combines `toml` with the policies' `answer` (`None`: not asked).
pub fn combine(toml: Verdict, answer: Option<&Answer>, unmatched: Unmatched) -> Combined {
    let same = |policies: Vec<String>| Combined {
        verdict: toml,
        policies,
        reason: None,
    };
    let Some(answer) = answer else {
        return same(vec![]);
    };
    if toml == Verdict::Deny {
        return same(vec![]);
    }
    match answer {
        Answer::Forbid { policies } => Combined {
            verdict: Verdict::Deny,
            reason: Some(format!("forbidden by Cedar policy {}", policies.join(", "))),
            policies: policies.clone(),
        },
        Answer::Error { policies, message } => Combined {
            verdict: Verdict::Deny,
            reason: Some(format!(
                "a Cedar policy could not be evaluated, so the call is denied: {message}"
            )),
            policies: policies.clone(),
        },
        Answer::Permit {
            policies,
            approve: true,
        } if toml == Verdict::Allow => Combined {
            verdict: Verdict::Approve,
            reason: Some(format!(
                "approval required (Cedar policy {} has @approve)",
                policies.join(", ")
            )),
            policies: policies.clone(),
        },
        Answer::Permit { policies, .. } => same(policies.clone()),
        Answer::NoMatch => match unmatched {
            Unmatched::Toml => same(vec![]),
            Unmatched::Deny => Combined {
                verdict: Verdict::Deny,
                policies: vec![],
                reason: Some(
                    "no Cedar policy permits this, and [policy] unmatched = \"deny\"".into(),
                ),
            },
        },
    }
}

impl Combined {
    /// For a request no person can be asked about (a connection through
    /// the egress proxy): a policy's `@approve` cannot be honoured, so it
    /// refuses, failing closed rather than letting the request through.
    #[must_use]
    pub fn without_approval(self, what: &str) -> Combined {
        if self.verdict != Verdict::Approve {
            return self;
        }
        let reason = format!(
            "Cedar policy {} asks for approval (@approve), and cordon cannot ask a person about {what}; refused",
            self.policies.join(", ")
        );
        Combined {
            verdict: Verdict::Deny,
            reason: Some(reason),
            policies: self.policies,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permit_never_widens_and_an_approval_without_a_person_refuses() {
        let permit = Answer::Permit {
            policies: vec!["p".into()],
            approve: false,
        };
        // A permit cannot reach past a TOML deny, nor remove a TOML question.
        let c = combine(Verdict::Deny, Some(&permit), Unmatched::Toml);
        assert_eq!((c.verdict, c.policies.len()), (Verdict::Deny, 0));
        let c = combine(Verdict::Approve, Some(&permit), Unmatched::Toml);
        assert_eq!(c.verdict, Verdict::Approve);
        let ask = Answer::Permit {
            policies: vec!["night".into()],
            approve: true,
        };
        let c = combine(Verdict::Allow, Some(&ask), Unmatched::Toml);
        assert_eq!(c.verdict, Verdict::Approve);
        let c = c.without_approval("a connection");
        assert_eq!(c.verdict, Verdict::Deny);
        assert!(c
            .reason
            .unwrap()
            .contains("Cedar policy night asks for approval"));
        let c = combine(Verdict::Allow, Some(&permit), Unmatched::Toml).without_approval("x");
        assert_eq!(c.verdict, Verdict::Allow);
    }
}
