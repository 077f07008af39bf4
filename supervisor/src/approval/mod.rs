//! Runtime approval: a call a rule marks as needing a human yes (`approve`
//! rules, `risk` tags) waits here as a pending request until an approver
//! answers, or its `[approval] timeout` passes and it is denied.
//!
//! Approvers, all at once, the first answer winning: the profile's hook
//! ([`hook`]), operators over the control socket (`cordon approve`, the
//! client is [`client`]), and a prompt on cordon's terminal when that is
//! safe. Grants ([`grant`]) let one answer cover later calls, never wider
//! than the tool and rule that matched, and they expire. A [`limit`] keeps
//! a looping agent from flooding people with questions.
//!
//! This module holds the state and the rules; the broker parks calls and
//! serves the control socket.

pub mod client;
pub mod grant;
pub mod hook;
pub mod limit;
pub mod names;
pub mod wire;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::profile::Approval;
use grant::{Grant, GrantSpec};
use limit::{Limiter, Over};

/// What approvers are shown, as JSON on a hook's stdin and over the
/// control socket. Argv is escaped like the audit log's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestInfo {
    /// `<first 8 hex of the session>-<n>`: unique per host in practice,
    /// and names the session for the operator.
    pub id: String,
    pub session: String,
    pub identity: String,
    pub profile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    pub tool: String,
    pub argv: Vec<String>,
    pub cwd: String,
    /// Names of the secrets the call would receive; never values.
    pub secrets: Vec<String>,
    /// The rule that asked for approval.
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<String>,
    pub pid: u32,
    /// RFC 3339 UTC.
    pub requested_at: String,
    /// Seconds until the request is denied for want of an answer.
    pub expires_in_s: u64,
}

/// An approver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub approve: bool,
    /// What an approval covers beyond this call.
    pub grant: GrantSpec,
    /// `uid 1000 (alice)`, `hook:/usr/local/bin/ask`, `tty uid 1000 (alice)`.
    pub approver: String,
    pub reason: Option<String>,
    /// RFC 3339 UTC, when the answer was given.
    pub at: String,
}

#[derive(Debug)]
enum State {
    Open,
    Answered(Answer),
    /// Timed out or withdrawn (the shim went away): late answers fail.
    Closed,
}

/// One parked call.
#[derive(Debug)]
pub struct Pending {
    pub info: RequestInfo,
    /// The matched rule (`approve`/`allow`, index): what a session grant covers.
    pub rule_key: (&'static str, usize),
    /// The exact argv, bytes: what a count or ttl grant covers.
    pub args: Vec<Vec<u8>>,
    pub deadline: Instant,
    state: Mutex<State>,
    changed: Condvar,
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `answer` if nobody answered before and the request is still
    /// open; true when this answer is the one that counts.
    pub fn answer(&self, answer: Answer) -> bool {
        let mut state = self.lock();
        if !matches!(*state, State::Open) {
            return false;
        }
        *state = State::Answered(answer);
        self.changed.notify_all();
        true
    }

    /// Still waiting for an answer (and not past its deadline).
    pub fn is_open(&self) -> bool {
        matches!(*self.lock(), State::Open) && Instant::now() < self.deadline
    }

    /// Waits at most `max` for an answer; `None` while there is none.
    pub fn wait(&self, max: Duration) -> Option<Answer> {
        let state = self.lock();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, max, |s| matches!(s, State::Open))
            .unwrap_or_else(|e| e.into_inner());
        match &*state {
            State::Answered(a) => Some(a.clone()),
            _ => None,
        }
    }

    /// Ends the wait: the answer if one came, else `None`, and from now on
    /// every answer is refused. Atomic with [`Pending::answer`], so an answer
    /// racing the deadline either counts or is told it came too late.
    pub fn close(&self) -> Option<Answer> {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, State::Closed) {
            State::Answered(a) => {
                *state = State::Answered(a.clone());
                Some(a)
            }
            _ => None,
        }
    }

    /// The request as shown now, with the seconds it has left.
    pub fn shown(&self) -> RequestInfo {
        let mut info = self.info.clone();
        info.expires_in_s = self
            .deadline
            .saturating_duration_since(Instant::now())
            .as_secs();
        info
    }
}

/// A call some grant already covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covered {
    pub approver: String,
    pub at: String,
    /// The request whose answer made the grant.
    pub from: String,
}

/// Why a request was not put to approvers.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("approval rate limit: {0}")]
    Limit(#[from] Over),
}

/// A new request, before it has an id.
pub struct NewRequest {
    pub info: RequestInfo,
    pub rule_key: (&'static str, usize),
    pub args: Vec<Vec<u8>>,
}

/// Approval state of one session: pending requests, grants, the limiter.
pub struct Queue {
    pub config: Approval,
    prefix: String,
    next: AtomicU64,
    inner: Mutex<Inner>,
    prompter: Mutex<Option<mpsc::Sender<Arc<Pending>>>>,
    /// The operator control socket is being served.
    operators: AtomicBool,
}

struct Inner {
    pending: Vec<Arc<Pending>>,
    grants: Vec<Grant>,
    limiter: Limiter,
}

impl Queue {
    pub fn new(config: Approval, session: &str) -> Queue {
        let limiter = Limiter::new(config.max_pending, config.max_per_minute);
        Queue {
            config,
            prefix: session.chars().take(8).collect(),
            next: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                pending: Vec::new(),
                grants: Vec::new(),
                limiter,
            }),
            prompter: Mutex::new(None),
            operators: AtomicBool::new(false),
        }
    }

    /// Operators can answer over the control socket from now on.
    pub fn set_operators(&self) {
        self.operators.store(true, Ordering::Release);
    }

    /// Operators can answer (a sub-agent's queue inherits this).
    pub fn has_operators(&self) -> bool {
        self.operators.load(Ordering::Acquire)
    }

    /// Some approver could answer: the hook, the control socket, or the
    /// terminal prompt. Without one, waiting would only delay a deny.
    pub fn has_approver(&self) -> bool {
        self.config.approver.is_some()
            || self.operators.load(Ordering::Acquire)
            || self.has_prompter()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands every new request to the terminal prompt too.
    pub fn set_prompter(&self, tx: mpsc::Sender<Arc<Pending>>) {
        *self.prompter.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    }

    /// True when the terminal prompt is one of the approvers.
    pub fn has_prompter(&self) -> bool {
        self.prompter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// A grant that covers this call, if any; uses one of its calls.
    pub fn covered(
        &self,
        tool: &str,
        rule_key: (&'static str, usize),
        args: &[&[u8]],
    ) -> Option<Covered> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.grants.retain(|g| g.live(now));
        let g = inner
            .grants
            .iter_mut()
            .find(|g| g.covers(tool, rule_key, args, now))?;
        g.use_one();
        Some(Covered {
            approver: g.approver.clone(),
            at: g.at.clone(),
            from: g.from.clone(),
        })
    }

    /// Parks a request, unless the limiter says no.
    pub fn open(&self, new: NewRequest) -> Result<Arc<Pending>, OpenError> {
        let now = Instant::now();
        let pending = {
            let mut inner = self.lock();
            inner.pending.retain(|p| p.is_open());
            let waiting = inner.pending.len();
            inner.limiter.admit(waiting, now)?;
            let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
            let mut info = new.info;
            info.id = format!("{}-{n}", self.prefix);
            info.expires_in_s = self.config.timeout.as_secs();
            let p = Arc::new(Pending {
                info,
                rule_key: new.rule_key,
                args: new.args,
                deadline: now + self.config.timeout,
                state: Mutex::new(State::Open),
                changed: Condvar::new(),
            });
            inner.pending.push(Arc::clone(&p));
            p
        };
        if let Some(tx) = &*self.prompter.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = tx.send(Arc::clone(&pending));
        }
        Ok(pending)
    }

    /// Removes a finished request; an approval wider than one call becomes
    /// a grant.
    pub fn finish(&self, p: &Arc<Pending>, answer: Option<&Answer>) {
        let mut inner = self.lock();
        inner.pending.retain(|q| !Arc::ptr_eq(q, p));
        if let Some(a) = answer.filter(|a| a.approve) {
            if let Some(g) = Grant::from_answer(
                &p.info.tool,
                p.rule_key,
                &p.args,
                a,
                &p.info.id,
                Instant::now(),
            ) {
                inner.grants.push(g);
            }
        }
    }

    /// The requests waiting now.
    pub fn list(&self) -> Vec<RequestInfo> {
        let inner = self.lock();
        inner
            .pending
            .iter()
            .filter(|p| p.is_open())
            .map(|p| p.shown())
            .collect()
    }

    /// The open request `id`, if this queue has it.
    pub fn find(&self, id: &str) -> Option<Arc<Pending>> {
        let inner = self.lock();
        inner
            .pending
            .iter()
            .find(|p| p.info.id == id && p.is_open())
            .cloned()
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

/// `s` with every control character escaped, so text an agent chose
/// (argv, cwd, intent) cannot move the cursor, recolour or rewrite what an
/// operator's terminal shows.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}
