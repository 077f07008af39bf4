//! Grants: an approval that covers more than the call it answered.
//!
//! By default an approval covers its one call and nothing else. An
//! operator may widen it, never beyond the tool and the rule that asked:
//! - `--count N`: this call and N-1 more with the *same exact argv*;
//! - `--ttl D`: calls with the same exact argv for D;
//! - `--for-session`: calls the *same rule* of the same tool matches (a
//!   different argv pattern, even of the same tool, asks again), for D
//!   (default 1 h) or N calls.
//!
//! Every grant expires; none outlives its session (grants live in it).

use std::time::{Duration, Instant};

use super::Answer;

/// How long a grant lives when the approver gave no `--ttl`.
pub const DEFAULT_GRANT_TTL: Duration = Duration::from_secs(3600);
/// The longest `--ttl`.
pub const MAX_GRANT_TTL: Duration = Duration::from_secs(24 * 3600);
/// The most calls `--count` may cover.
pub const MAX_GRANT_COUNT: u32 = 10_000;

/// What an approval covers beyond its own call, as the approver asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantSpec {
    pub for_session: bool,
    /// Calls covered, this one included.
    pub count: Option<u32>,
    pub ttl: Option<Duration>,
}

impl GrantSpec {
    /// Checks the limits; the message is for the operator.
    pub fn validate(&self) -> Result<(), String> {
        if self.count == Some(0) || self.count.is_some_and(|c| c > MAX_GRANT_COUNT) {
            return Err(format!("--count must be 1-{MAX_GRANT_COUNT}"));
        }
        if self.ttl.is_some_and(|t| t.is_zero() || t > MAX_GRANT_TTL) {
            return Err("--ttl must be longer than 0s and at most 24h".into());
        }
        Ok(())
    }

    /// "this call", "this call and 4 more like it", ... for the audit log.
    pub fn describe(&self) -> String {
        let mut out = if self.for_session {
            "calls matching the same rule this session".to_string()
        } else {
            match self.count {
                Some(n) if n > 1 => format!("this call and {} more with the same argv", n - 1),
                _ if self.ttl.is_some() => "calls with the same argv".to_string(),
                _ => return "this call".to_string(),
            }
        };
        if let (true, Some(n)) = (self.for_session, self.count) {
            out.push_str(&format!(", {n} calls at most"));
        }
        let ttl = self.ttl.unwrap_or(DEFAULT_GRANT_TTL);
        out.push_str(&format!(", for {}", humantime::format_duration(ttl)));
        out
    }
}

/// What a grant matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The same argv, byte for byte.
    Exact(Vec<Vec<u8>>),
    /// Whatever the same rule (`list`, index) of the tool matches.
    Rule(&'static str, usize),
}

/// A live grant.
#[derive(Debug, Clone)]
pub struct Grant {
    tool: String,
    scope: Scope,
    /// Further calls it covers; `None`: any number until it expires.
    uses_left: Option<u32>,
    expires: Instant,
    pub approver: String,
    pub at: String,
    /// The request whose answer made it.
    pub from: String,
}

impl Grant {
    /// The grant an approval makes, if it covers more than its own call.
    pub fn from_answer(
        tool: &str,
        rule: (&'static str, usize),
        args: &[Vec<u8>],
        answer: &Answer,
        from: &str,
        now: Instant,
    ) -> Option<Grant> {
        let spec = &answer.grant;
        let scope = if spec.for_session {
            Scope::Rule(rule.0, rule.1)
        } else if spec.count.is_some_and(|n| n > 1) || spec.ttl.is_some() {
            Scope::Exact(args.to_vec())
        } else {
            return None;
        };
        let ttl = spec.ttl.unwrap_or(DEFAULT_GRANT_TTL).min(MAX_GRANT_TTL);
        Some(Grant {
            tool: tool.to_string(),
            scope,
            // The call that was answered used the first one.
            uses_left: spec.count.map(|n| n.saturating_sub(1)),
            expires: now + ttl,
            approver: answer.approver.clone(),
            at: answer.at.clone(),
            from: from.to_string(),
        })
    }

    /// Not expired and not used up.
    pub fn live(&self, now: Instant) -> bool {
        now < self.expires && self.uses_left != Some(0)
    }

    /// Covers a call of `tool` that `rule` matched with `args`.
    pub fn covers(
        &self,
        tool: &str,
        rule: (&'static str, usize),
        args: &[&[u8]],
        now: Instant,
    ) -> bool {
        if !self.live(now) || self.tool != tool {
            return false;
        }
        match &self.scope {
            Scope::Exact(want) => {
                want.len() == args.len() && want.iter().zip(args).all(|(w, a)| w.as_slice() == *a)
            }
            Scope::Rule(list, index) => (*list, *index) == rule,
        }
    }

    pub fn use_one(&mut self) {
        if let Some(n) = &mut self.uses_left {
            *n = n.saturating_sub(1);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    fn answer(spec: GrantSpec) -> Answer {
        Answer {
            approve: true,
            grant: spec,
            approver: "uid 1000 (alice)".into(),
            reason: None,
            at: "2026-11-25T21:00:00.000Z".into(),
        }
    }

    const PUSH: (&str, usize) = ("approve", 0);

    #[test]
    fn one_call_by_default() {
        let now = Instant::now();
        let args = vec![b"push".to_vec()];
        assert!(Grant::from_answer(
            "git",
            PUSH,
            &args,
            &answer(GrantSpec::default()),
            "a-1",
            now
        )
        .is_none());
    }

    #[test]
    fn a_count_covers_the_same_argv_that_many_times_and_nothing_else() {
        let now = Instant::now();
        let args = vec![b"push".to_vec(), b"origin".to_vec()];
        let spec = GrantSpec {
            count: Some(3),
            ..GrantSpec::default()
        };
        let mut g = Grant::from_answer("git", PUSH, &args, &answer(spec), "a-1", now).unwrap();
        let same: [&[u8]; 2] = [b"push", b"origin"];
        let other: [&[u8]; 3] = [b"push", b"origin", b"main"];
        assert!(!g.covers("git", PUSH, &other, now), "a different argv");
        assert!(!g.covers("gh", PUSH, &same, now), "a different tool");
        for _ in 0..2 {
            assert!(g.covers("git", PUSH, &same, now));
            g.use_one();
        }
        assert!(
            !g.covers("git", PUSH, &same, now),
            "used up: 3 calls in all"
        );
    }

    #[test]
    fn a_session_grant_covers_its_rule_only_and_expires() {
        let now = Instant::now();
        let args = vec![b"push".to_vec()];
        let spec = GrantSpec {
            for_session: true,
            ttl: Some(Duration::from_secs(60)),
            ..GrantSpec::default()
        };
        let g = Grant::from_answer("git", PUSH, &args, &answer(spec), "a-1", now).unwrap();
        let later: [&[u8]; 3] = [b"push", b"origin", b"feature"];
        assert!(g.covers("git", PUSH, &later, now), "same rule, other argv");
        assert!(
            !g.covers("git", ("approve", 1), &later, now),
            "another rule"
        );
        assert!(
            !g.covers("git", ("allow", 0), &later, now),
            "a risky allow rule"
        );
        assert!(
            !g.covers("git", PUSH, &later, now + Duration::from_secs(61)),
            "expired"
        );
    }

    #[test]
    fn specs_are_checked_and_described() {
        assert!(GrantSpec {
            count: Some(0),
            ..GrantSpec::default()
        }
        .validate()
        .is_err());
        assert!(GrantSpec {
            ttl: Some(Duration::from_secs(90_000)),
            ..GrantSpec::default()
        }
        .validate()
        .is_err());
        assert_eq!(GrantSpec::default().describe(), "this call");
        assert_eq!(
            GrantSpec {
                count: Some(3),
                ..GrantSpec::default()
            }
            .describe(),
            "this call and 2 more with the same argv, for 1h"
        );
        assert_eq!(
            GrantSpec {
                for_session: true,
                ttl: Some(Duration::from_secs(600)),
                ..GrantSpec::default()
            }
            .describe(),
            "calls matching the same rule this session, for 10m"
        );
    }
}
