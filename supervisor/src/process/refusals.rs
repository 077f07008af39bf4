//! Counting refusals toward `[divergence] max_denials`, from every place
//! that refuses something (the broker, the egress proxies), for a whole
//! session tree: a sub-agent's refusals count toward its own limit and
//! toward each ancestor's, so a parent cannot probe its profile through a
//! string of fresh sub-agents.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::kill::Killer;
use super::outcome::Violation;
use crate::profile::{Divergence, DivergenceAction};

/// Counts one refusal in `count`; returns why the session must now be
/// killed, if it must: the action for this kind of refusal is `kill`, or
/// the refusals went past `max_denials`.
fn over_limit(
    count: &AtomicU32,
    divergence: &Divergence,
    action: DivergenceAction,
    reason: &str,
) -> Option<String> {
    let denials = count.fetch_add(1, Ordering::Relaxed) + 1;
    let max = divergence.max_denials;
    if action == DivergenceAction::Kill {
        Some(reason.to_string())
    } else if denials > max {
        Some(format!(
            "was refused {denials} times, over max_denials = {max} (last: {reason})"
        ))
    } else {
        None
    }
}

/// One session's refusal counter and the means to end it, shared by the
/// threads that refuse on its behalf, linked to its parent session's.
#[derive(Debug, Clone)]
pub struct Refusals {
    count: Arc<AtomicU32>,
    divergence: Divergence,
    killer: Arc<Killer>,
    parent: Option<Box<Refusals>>,
}

/// What charging a refusal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charged {
    /// Counted; the session goes on.
    Counted,
    /// The session (or an ancestor, and so the session too) was killed,
    /// for this reason.
    Killed(String),
}

impl Charged {
    pub fn killed(&self) -> bool {
        matches!(self, Charged::Killed(_))
    }
}

impl Refusals {
    /// The counter of a root session.
    pub fn root(divergence: &Divergence, killer: &Arc<Killer>) -> Refusals {
        Refusals {
            count: Arc::default(),
            divergence: divergence.clone(),
            killer: Arc::clone(killer),
            parent: None,
        }
    }

    /// The counter of a sub-agent session below this one.
    pub fn child(&self, divergence: &Divergence, killer: &Arc<Killer>) -> Refusals {
        Refusals {
            parent: Some(Box::new(self.clone())),
            ..Refusals::root(divergence, killer)
        }
    }

    /// The session these refusals end.
    pub fn killer(&self) -> &Arc<Killer> {
        &self.killer
    }

    /// Refusals counted in this session so far (its sub-agents' included).
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// Counts a refused action (`denied_action` applies).
    pub fn charge(&self, pid: u32, reason: &str) -> Charged {
        self.charge_as(pid, reason, self.divergence.denied_action)
    }

    /// Counts a refusal whose profile action is `action` here (the
    /// ancestors only count it) and kills every session whose limit it
    /// passes. A killed ancestor takes this session with it.
    pub fn charge_as(&self, pid: u32, reason: &str, action: DivergenceAction) -> Charged {
        let mut charged = Charged::Counted;
        if let Some(what) = over_limit(&self.count, &self.divergence, action, reason) {
            self.killer.diverge(
                Violation {
                    pid,
                    what: what.clone(),
                },
                true,
            );
            charged = Charged::Killed(what);
        }
        let mut level = self.parent.as_deref();
        while let Some(r) = level {
            let reason = format!("had a sub-agent refused: {reason}");
            if let Some(what) = over_limit(&r.count, &r.divergence, DivergenceAction::Deny, &reason)
            {
                r.killer.diverge(
                    Violation {
                        pid,
                        what: what.clone(),
                    },
                    true,
                );
                if !charged.killed() {
                    charged = Charged::Killed(what);
                }
            }
            level = r.parent.as_deref();
        }
        charged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_exceeded_on_the_next_refusal() {
        let d = Divergence {
            max_denials: 2,
            ..Divergence::default()
        };
        let n = AtomicU32::new(0);
        assert_eq!(over_limit(&n, &d, DivergenceAction::Deny, "a"), None);
        assert_eq!(over_limit(&n, &d, DivergenceAction::Deny, "b"), None);
        let why = over_limit(&n, &d, DivergenceAction::Deny, "c").unwrap();
        assert!(why.contains("3 times") && why.contains("last: c"), "{why}");
        assert_eq!(
            over_limit(&AtomicU32::new(0), &d, DivergenceAction::Kill, "x").as_deref(),
            Some("x")
        );
    }

    /// A real process to kill, and its Killer.
    fn victim() -> (std::process::Child, Arc<Killer>) {
        let child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pidfd = crate::sys::process::pidfd_open(i32::try_from(child.id()).unwrap()).unwrap();
        let killer = Arc::new(Killer::new(&pidfd).unwrap());
        (child, killer)
    }

    #[test]
    fn a_sub_agents_refusals_count_toward_every_ancestor() {
        let limit = |max_denials| Divergence {
            max_denials,
            ..Divergence::default()
        };
        let (mut root_proc, root_killer) = victim();
        let (mut sub_proc, sub_killer) = victim();
        let (mut sub2_proc, sub2_killer) = victim();
        let root = Refusals::root(&limit(2), &root_killer);
        // Two sub-agents, each well within its own limit of 5.
        let sub = root.child(&limit(5), &sub_killer);
        let sub2 = root.child(&limit(5), &sub2_killer);
        assert_eq!(sub.charge(1, "a"), Charged::Counted);
        assert_eq!(sub2.charge(1, "b"), Charged::Counted);
        assert_eq!(root.count(), 2);
        // The third refusal anywhere in the tree is one too many for the root.
        let third = sub2.charge(1, "c");
        assert!(
            matches!(&third, Charged::Killed(why) if why.contains("over max_denials = 2") && why.contains("sub-agent refused: c")),
            "{third:?}"
        );
        assert!(root_killer.diverged().is_some());
        assert!(sub_killer.diverged().is_none() && sub2_killer.diverged().is_none());
        assert!(
            root_proc.wait().unwrap().code().is_none(),
            "the root was killed"
        );
        // A kill action in a sub-agent kills that sub-agent only.
        let (mut p, k) = victim();
        let lone_root = Refusals::root(&limit(10), &k);
        let killed = lone_root.child(&limit(10), &sub_killer).charge_as(
            1,
            "undeclared",
            DivergenceAction::Kill,
        );
        assert_eq!(killed, Charged::Killed("undeclared".into()));
        assert!(sub_proc.wait().unwrap().code().is_none());
        assert!(k.diverged().is_none());
        for c in [&mut p, &mut sub2_proc] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
