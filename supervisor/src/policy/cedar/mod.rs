//! Cedar policies on the broker's decision path: `[policy] cedar = "FILE"`
//! (see docs/policy.md).
//!
//! - [`schema`]: the shipped schema (`profiles/cordon.cedarschema`).
//! - [`request`]: a request as plain data (principal, action, resource,
//!   context) and its Cedar form.
//! - [`combine`]: how Cedar's answer and the TOML verdict make one
//!   decision (a TOML deny always wins).
//! - [`session`]: one session's policies and principal, which every
//!   decision path of the session asks.
//!
//! Policies are parsed and validated against the schema (strictly) when a
//! profile is loaded, so `cordon check` reports every mistake at
//! file:line:column; a policy that still errors at evaluation denies.
//!
//! Policy ids are the `@id("...")` annotation when a policy has one, else
//! `FILE:LINE` of its first line: the audit record names them.

pub mod combine;
mod index;
pub mod request;
pub mod schema;
pub mod session;

use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Decision as CedarDecision, Effect, Policy, PolicyId, PolicySet, ValidationMode,
    Validator,
};

use index::{Facts, Needed, Scope, Sets};

pub use combine::{combine, Combined, Unmatched};
pub use request::{Action, Principal, Request};
pub use session::SessionPolicies;

/// The stack a thread that evaluates policies is given: Cedar refuses to
/// evaluate (an error, so a deny) with less than 100 KiB of stack left,
/// and the broker's call threads (256 KiB) and the egress proxy's
/// connection threads (128 KiB) have used more than the difference by the
/// time they decide. Stacks are mapped lazily: what is not touched costs
/// address space, not memory.
pub const STACK: usize = 1024 * 1024;

/// One problem in a policy file: where (a byte offset into it, when
/// known) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub offset: Option<usize>,
    pub message: String,
}

#[derive(Debug, Clone)]
struct Meta {
    approve: bool,
}

/// Compiled, validated policies.
pub struct Engine {
    /// In the order written, with their scopes.
    policies: Vec<Policy>,
    scopes: Vec<Scope>,
    meta: HashMap<PolicyId, Meta>,
    needed: Needed,
    sets: Sets,
    authorizer: Authorizer,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("policies", &self.meta.len())
            .finish()
    }
}

/// What the policies say about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Some permit holds and no forbid: the permits, and whether one of
    /// them asks for approval.
    Permit {
        policies: Vec<String>,
        approve: bool,
    },
    /// Some forbid holds.
    Forbid { policies: Vec<String> },
    /// No policy holds.
    NoMatch,
    /// A policy could not be evaluated (it denies).
    Error {
        policies: Vec<String>,
        message: String,
    },
}

impl Engine {
    /// Parses and validates `text` (the file named `file` in messages).
    /// Every problem found is returned.
    pub fn compile(file: &str, text: &str) -> Result<Engine, Vec<Problem>> {
        let parsed = schema::parsed().map_err(|e| {
            vec![Problem {
                offset: None,
                message: format!("cordon's own Cedar schema does not parse ({e}); this is a bug"),
            }]
        })?;
        let raw = PolicySet::from_str(text).map_err(|errs| {
            errs.iter()
                .map(|e| Problem {
                    offset: first_offset(e),
                    message: one_line(e),
                })
                .collect::<Vec<_>>()
        })?;
        let mut problems = Vec::new();
        if raw.num_of_templates() > 0 {
            problems.push(Problem {
                offset: None,
                message: "policy templates (?principal, ?resource) are not supported; write each policy out".into(),
            });
        }
        // Policies in the order written (their default ids count up).
        let mut policies: Vec<_> = raw.policies().collect();
        policies.sort_by_key(|p| {
            p.id()
                .to_string()
                .strip_prefix("policy")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(usize::MAX)
        });
        let mut set = PolicySet::new();
        let mut meta = HashMap::new();
        let mut order = Vec::new();
        let mut cursor = 0;
        for p in policies {
            let offset = p.to_cedar().and_then(|t| {
                let at = text.get(cursor..)?.find(t.as_str())? + cursor;
                cursor = at + t.len();
                Some(at)
            });
            let line = offset.map_or(0, |o| text[..o].matches('\n').count() + 1);
            let shown = match p.annotation("id") {
                Some(id) if !id.is_empty() => id.to_string(),
                _ => format!("{file}:{line}"),
            };
            let approve = p.annotation("approve").is_some();
            if approve && p.effect() == Effect::Forbid {
                problems.push(Problem {
                    offset,
                    message: format!("policy `{shown}`: `@approve` means nothing on a forbid (a forbid denies); put it on a permit"),
                });
            }
            let id = PolicyId::new(&shown);
            if meta.contains_key(&id) {
                problems.push(Problem {
                    offset,
                    message: format!(
                        "policy id `{shown}` is used twice; give each policy its own @id"
                    ),
                });
                continue;
            }
            if let Err(e) = set.add(p.new_id(id.clone())) {
                problems.push(Problem {
                    offset,
                    message: one_line(&e),
                });
                continue;
            }
            meta.insert(id.clone(), Meta { approve });
            order.push(id);
        }
        let validator = Validator::new(parsed.schema.clone());
        let result = validator.validate(&set, ValidationMode::Strict);
        for e in result.validation_errors() {
            // The validator repeats an error for each action a policy
            // applies to; one report per place is enough.
            let problem = Problem {
                offset: first_offset(e),
                message: without_action(&one_line(e)),
            };
            if !problems.contains(&problem) {
                problems.push(problem);
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let policies: Vec<Policy> = order
            .iter()
            .filter_map(|id| set.policy(id).cloned())
            .collect();
        Ok(Engine {
            scopes: policies.iter().map(Scope::of).collect(),
            policies,
            meta,
            needed: Needed::of(text),
            sets: Sets::default(),
            authorizer: Authorizer::new(),
        })
    }

    /// The number of policies.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Evaluates `req`.
    pub fn evaluate(&self, req: &Request<'_>) -> Answer {
        let error = |message: String| Answer::Error {
            policies: vec![],
            message,
        };
        let parsed = match schema::parsed() {
            Ok(p) => p,
            Err(e) => return error(e.to_string()),
        };
        let parts = req.parts(parsed);
        let facts = Facts {
            principal: &parts.principal,
            principal_type: &parsed.types.session,
            principal_in: &parts.principal_in,
            action: &parts.action,
            resource: &parts.resource,
            resource_type: &parts.resource_type,
            resource_in: &parts.resource_in,
        };
        let chosen: Vec<u32> = self
            .scopes
            .iter()
            .enumerate()
            .filter(|(_, s)| s.may_apply(&facts))
            .filter_map(|(i, _)| u32::try_from(i).ok())
            .collect();
        if chosen.is_empty() {
            return Answer::NoMatch;
        }
        let set = match self.sets.get(&chosen, &self.policies) {
            Ok(s) => s,
            Err(e) => return error(e),
        };
        let built = req.entities(&parts).and_then(|entities| {
            let context = req.context(&self.needed)?;
            let request = cedar_policy::Request::new(
                parts.principal.clone(),
                parts.action.clone(),
                parts.resource.clone(),
                context,
                None,
            )
            .map_err(|e| e.to_string())?;
            Ok((entities, request))
        });
        let (entities, request) = match built {
            Ok(b) => b,
            Err(e) => return error(e),
        };
        let response = self.authorizer.is_authorized(&request, &set, &entities);
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        if !errors.is_empty() {
            let policies = response
                .diagnostics()
                .errors()
                .map(|e| match e {
                    cedar_policy::AuthorizationError::PolicyEvaluationError(pe) => {
                        pe.policy_id().to_string()
                    }
                })
                .collect();
            return Answer::Error {
                policies,
                message: errors.join("; "),
            };
        }
        let mut policies: Vec<String> = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        policies.sort();
        match response.decision() {
            CedarDecision::Allow => {
                let approve = response
                    .diagnostics()
                    .reason()
                    .any(|id| self.meta.get(id).is_some_and(|m| m.approve));
                Answer::Permit { policies, approve }
            }
            CedarDecision::Deny if policies.is_empty() => Answer::NoMatch,
            CedarDecision::Deny => Answer::Forbid { policies },
        }
    }
}

fn first_offset(d: &dyn miette::Diagnostic) -> Option<usize> {
    d.labels().and_then(|mut l| l.next()).map(|l| l.offset())
}

/// `... in context for Cordon::Action::"exec" not found` without its
/// ` for Cordon::Action::"exec"`.
fn without_action(msg: &str) -> String {
    const MARK: &str = " for Cordon::Action::\"";
    let Some(start) = msg.find(MARK) else {
        return msg.to_string();
    };
    let rest = &msg[start + MARK.len()..];
    match rest.find('"') {
        Some(end) => format!("{}{}", &msg[..start], &rest[end + 1..]),
        None => msg.to_string(),
    }
}

/// An error and its help, on one line.
fn one_line(d: &dyn miette::Diagnostic) -> String {
    let mut msg = d.to_string();
    if let Some(help) = d.help() {
        msg.push_str(&format!(" ({help})"));
    }
    msg.replace('\n', "; ")
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
