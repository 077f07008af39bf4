//! Which policies can apply to a request, decided from their scopes
//! (`principal`, `action`, `resource` constraints) before Cedar is asked:
//! Cedar's authorizer evaluates every policy it is given, which at 100
//! policies costs ~90 us a request here; most policies name one tool, one
//! server or one profile, so a request is evaluated against the few whose
//! scope it can satisfy. The selection is conservative (a policy whose
//! scope might apply is kept), so the answer is the one the whole set
//! would give.
//!
//! Also which context attributes any policy reads: building a Cedar
//! context costs per attribute (a `datetime` ~4 us), so attributes no
//! policy names are left out. A policy can only read an attribute by
//! writing its name, so "the text never contains the name" is safe; a
//! policy that uses the context as a whole gets every attribute.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cedar_policy::{
    ActionConstraint, EntityTypeName, EntityUid, Policy, PolicySet, PrincipalConstraint,
    ResourceConstraint,
};

/// Policy sets kept for reuse, per distinct selection.
const CACHE: usize = 256;

/// A policy's scope.
#[derive(Debug, Clone)]
pub struct Scope {
    principal: PrincipalConstraint,
    action: ActionConstraint,
    resource: ResourceConstraint,
}

impl Scope {
    pub fn of(p: &Policy) -> Scope {
        Scope {
            principal: p.principal_constraint(),
            action: p.action_constraint(),
            resource: p.resource_constraint(),
        }
    }
}

/// The request's side of the scope check: each entity and what it is in.
pub struct Facts<'a> {
    pub principal: &'a EntityUid,
    pub principal_type: &'a EntityTypeName,
    pub principal_in: &'a [EntityUid],
    pub action: &'a EntityUid,
    pub resource: &'a EntityUid,
    pub resource_type: &'a EntityTypeName,
    pub resource_in: &'a [EntityUid],
}

fn within(uid: &EntityUid, me: &EntityUid, ancestors: &[EntityUid]) -> bool {
    uid == me || ancestors.contains(uid)
}

impl Scope {
    /// False only when the scope cannot hold for `f`.
    pub fn may_apply(&self, f: &Facts<'_>) -> bool {
        let principal = match &self.principal {
            PrincipalConstraint::Any => true,
            PrincipalConstraint::Eq(u) => u == f.principal,
            PrincipalConstraint::In(u) => within(u, f.principal, f.principal_in),
            PrincipalConstraint::Is(t) => t == f.principal_type,
            PrincipalConstraint::IsIn(t, u) => {
                t == f.principal_type && within(u, f.principal, f.principal_in)
            }
        };
        // The schema declares no action groups, so `in` is membership.
        let action = match &self.action {
            ActionConstraint::Any => true,
            ActionConstraint::Eq(u) => u == f.action,
            ActionConstraint::In(list) => list.contains(f.action),
        };
        let resource = match &self.resource {
            ResourceConstraint::Any => true,
            ResourceConstraint::Eq(u) => u == f.resource,
            ResourceConstraint::In(u) => within(u, f.resource, f.resource_in),
            ResourceConstraint::Is(t) => t == f.resource_type,
            ResourceConstraint::IsIn(t, u) => {
                t == f.resource_type && within(u, f.resource, f.resource_in)
            }
        };
        principal && action && resource
    }
}

/// Policy sets made of a selection of the policies, reused.
#[derive(Default)]
pub struct Sets {
    cache: Mutex<HashMap<Vec<u32>, Arc<PolicySet>>>,
}

impl Sets {
    /// The set of `policies[i]` for each `i` of `chosen`.
    pub fn get(&self, chosen: &[u32], policies: &[Policy]) -> Result<Arc<PolicySet>, String> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = cache.get(chosen) {
            return Ok(Arc::clone(set));
        }
        let picked = chosen
            .iter()
            .filter_map(|&i| policies.get(usize::try_from(i).ok()?).cloned());
        let set = Arc::new(PolicySet::from_policies(picked).map_err(|e| e.to_string())?);
        if cache.len() < CACHE {
            cache.insert(chosen.to_vec(), Arc::clone(&set));
        }
        Ok(set)
    }
}

/// The context attributes some policy may read.
#[derive(Debug, Clone)]
pub struct Needed {
    all: bool,
    names: Vec<&'static str>,
}

/// Every attribute of the schema's `Context`.
pub const CONTEXT: [&str; 17] = [
    "argv",
    "args",
    "canonical",
    "canonical_args",
    "argc",
    "argv_sha256",
    "cwd",
    "tool",
    "host",
    "intent",
    "risk",
    "rule",
    "toml",
    "time",
    "hour_utc",
    "port",
    "ancestors",
];

impl Needed {
    /// From the policies' text.
    pub fn of(text: &str) -> Needed {
        // `context` used other than as `context.x`, `context["x"]` or
        // `context has x` (compared whole, say): everything.
        let whole = text.match_indices("context").any(|(i, _)| {
            let after = text[i + "context".len()..].trim_start();
            !(after.starts_with('.') || after.starts_with('[') || after.starts_with("has"))
        });
        Needed {
            all: whole,
            names: CONTEXT.into_iter().filter(|n| text.contains(n)).collect(),
        }
    }

    pub fn wants(&self, name: &str) -> bool {
        self.all || self.names.contains(&name)
    }

    /// Every attribute (for tests and tools that want the full context).
    pub fn everything() -> Needed {
        Needed {
            all: true,
            names: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Needed;

    #[test]
    fn attributes_are_needed_when_named_or_when_the_context_is_used_whole() {
        let n = Needed::of("permit (principal, action, resource) when { context.argv like \"*\" && context has intent };");
        assert!(n.wants("argv") && n.wants("intent"));
        assert!(!n.wants("time") && !n.wants("args"));
        let n = Needed::of("forbid (principal, action, resource) when { context == {} };");
        assert!(n.wants("time") && n.wants("args"));
        let n =
            Needed::of("forbid (principal, action, resource) when { context[\"hour_utc\"] > 3 };");
        assert!(n.wants("hour_utc") && !n.wants("time"));
    }
}
