//! Counting a session's refusals toward `[divergence] max_denials`, from
//! every place that refuses something (the broker, the egress proxies).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::kill::Killer;
use super::outcome::Violation;
use crate::profile::{Divergence, DivergenceAction};

/// Counts one refusal in `count`; returns why the session must now be
/// killed, if it must: the action for this kind of refusal is `kill`, or
/// the refusals went past `max_denials`.
pub fn over_limit(
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

/// A session's refusal counter and the means to end it, shared by the
/// threads that refuse on its behalf.
#[derive(Debug, Clone)]
pub struct Refusals {
    pub count: Arc<AtomicU32>,
    pub divergence: Divergence,
    pub killer: Arc<Killer>,
}

impl Refusals {
    /// Counts a refused action (`denied_action` applies) and kills the
    /// session when that is one too many. Returns whether it killed.
    pub fn charge(&self, pid: u32, reason: &str) -> bool {
        match over_limit(
            &self.count,
            &self.divergence,
            self.divergence.denied_action,
            reason,
        ) {
            Some(what) => {
                self.killer.diverge(Violation { pid, what }, true);
                true
            }
            None => false,
        }
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
}
