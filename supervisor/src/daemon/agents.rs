//! The configured agents and their sessions: each session is a child
//! `cordon run` process, watched through a pidfd, restarted per policy
//! with exponential back-off, given up on after too many failures.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cgroup::Delegated;
use super::config::{Agent, Config, RestartPolicy};
use super::control::AgentStatus;
use super::counts::Counter;
use super::log::{Event, Log};
use super::session::{self, Ending, Launch, Session};
use crate::sys::process::{pidfd_send_signal, try_wait, Exit};

/// Where an agent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Stopped,
    Running,
    Stopping,
    BackingOff,
    GaveUp,
}

impl State {
    pub fn word(self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Running => "running",
            State::Stopping => "stopping",
            State::BackingOff => "backing-off",
            State::GaveUp => "gave-up",
        }
    }
}

/// One configured agent.
pub struct Slot {
    pub spec: Agent,
    pub state: State,
    pub session: Option<Session>,
    failures: VecDeque<Instant>,
    starts: u32,
    last_exit: Option<String>,
    retry_at: Option<Instant>,
    gave_up: Option<String>,
    /// No longer in the configuration: dropped once stopped.
    removed: bool,
    serial: u64,
}

/// The daemon's agents and what sessions need.
pub struct Agents {
    pub slots: Vec<Slot>,
    pub audit: Option<PathBuf>,
    pub stop_timeout: Duration,
    cordon: PathBuf,
    state_dir: PathBuf,
    /// Each agent's directory for its sessions' approval sockets.
    agents_dir: PathBuf,
    cgroups: Option<Delegated>,
    counter: Option<Counter>,
}

/// How long one session may take to say how many approvals it has
/// pending, and all of them together, for one `cordon ps`.
const PENDING_ASK: Duration = Duration::from_millis(200);
const PENDING_BUDGET: Duration = Duration::from_millis(500);

impl Agents {
    pub fn new(
        config: &Config,
        cordon: PathBuf,
        state_dir: PathBuf,
        cgroups: Option<Delegated>,
    ) -> Agents {
        let mut agents = Agents {
            slots: Vec::new(),
            audit: config.audit.clone(),
            stop_timeout: config.stop_timeout,
            cordon,
            agents_dir: state_dir
                .parent()
                .map_or_else(|| state_dir.join("agents"), |p| p.join("agents")),
            state_dir,
            cgroups,
            counter: config.audit.as_deref().map(Counter::new),
        };
        for a in &config.agents {
            agents.slots.push(Slot::new(a.clone()));
        }
        agents
    }

    /// Starts every autostart agent.
    pub fn autostart(&mut self, log: &Log) {
        for i in 0..self.slots.len() {
            if self.slots[i].spec.autostart && self.slots[i].state == State::Stopped {
                self.start(i, log);
            }
        }
    }

    /// Swaps in a new (already checked) configuration. Running sessions
    /// keep running; a changed agent's new settings apply from its next
    /// start; agents no longer configured are stopped; new autostart
    /// agents start.
    pub fn reconfigure(&mut self, config: &Config, log: &Log) {
        if config.audit != self.audit {
            self.counter = config.audit.as_deref().map(Counter::new);
        }
        self.audit = config.audit.clone();
        self.stop_timeout = config.stop_timeout;
        for slot in &mut self.slots {
            slot.removed = !config.agents.iter().any(|a| a.name == slot.spec.name);
        }
        for i in 0..self.slots.len() {
            if self.slots[i].removed {
                self.end(i, Ending::Stop, log);
            }
        }
        for a in &config.agents {
            match self.slots.iter_mut().find(|s| s.spec.name == a.name) {
                Some(slot) => slot.spec = a.clone(),
                None => {
                    self.slots.push(Slot::new(a.clone()));
                    if a.autostart {
                        let i = self.slots.len() - 1;
                        self.start(i, log);
                    }
                }
            }
        }
        self.drop_removed();
    }

    fn drop_removed(&mut self) {
        self.slots.retain(|s| !(s.removed && s.session.is_none()));
    }

    fn launch(&self) -> Launch<'_> {
        Launch {
            cordon: &self.cordon,
            state_dir: &self.state_dir,
            agents_dir: &self.agents_dir,
            cgroups: self.cgroups.as_ref(),
            audit: self.audit.as_deref(),
        }
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.spec.name == name && !s.removed)
    }

    /// `cordon start NAME`.
    pub fn operator_start(&mut self, i: usize, log: &Log) -> Result<String, String> {
        let slot = &mut self.slots[i];
        match slot.state {
            State::Running | State::Stopping => Err(format!(
                "{} is already {}",
                slot.spec.name,
                slot.state.word()
            )),
            _ => {
                slot.failures.clear();
                slot.gave_up = None;
                slot.retry_at = None;
                self.start(i, log);
                let slot = &self.slots[i];
                match slot.state {
                    State::Running => Ok(format!("started {}", slot.spec.name)),
                    _ => Err(format!(
                        "{} could not start: {}",
                        slot.spec.name,
                        slot.last_exit.as_deref().unwrap_or("unknown")
                    )),
                }
            }
        }
    }

    /// `cordon stop NAME`.
    pub fn operator_stop(&mut self, i: usize, log: &Log) -> String {
        let name = self.slots[i].spec.name.clone();
        match self.slots[i].state {
            State::Running | State::Stopping => {
                self.end(i, Ending::Stop, log);
                format!("stopping {name}")
            }
            State::BackingOff | State::GaveUp => {
                let slot = &mut self.slots[i];
                slot.state = State::Stopped;
                slot.retry_at = None;
                format!("{name} will not be restarted")
            }
            State::Stopped => format!("{name} is not running"),
        }
    }

    /// `cordon kill SESSION` (a session id, or an agent's name).
    pub fn operator_kill(&mut self, session: &str, log: &Log) -> Result<String, String> {
        let found = self.slots.iter_mut().position(|s| {
            s.spec.name == session
                || s.session
                    .as_mut()
                    .and_then(|x| x.id())
                    .is_some_and(|id| id == session)
        });
        match found {
            Some(i) if self.slots[i].state == State::Running => {
                self.end(i, Ending::Kill, log);
                Ok(format!(
                    "killing the session of {}",
                    self.slots[i].spec.name
                ))
            }
            _ => Err(format!("no running session `{session}`")),
        }
    }

    /// Stops every session (shutdown).
    pub fn stop_all(&mut self, log: &Log) {
        for i in 0..self.slots.len() {
            match self.slots[i].state {
                State::Running | State::Stopping => self.end(i, Ending::Stop, log),
                _ => {
                    self.slots[i].state = State::Stopped;
                    self.slots[i].retry_at = None;
                }
            }
        }
    }

    pub fn any_alive(&self) -> bool {
        self.slots.iter().any(|s| s.session.is_some())
    }

    /// Starts agent `i`'s session now.
    fn start(&mut self, i: usize, log: &Log) {
        self.slots[i].serial += 1;
        let serial = self.slots[i].serial;
        let spec = self.slots[i].spec.clone();
        let result = session::spawn(&self.launch(), &spec, serial);
        let slot = &mut self.slots[i];
        slot.retry_at = None;
        match result {
            Ok(session) => {
                slot.starts += 1;
                let pid = session.pid.to_string();
                log.event(
                    Event::SessionStarted,
                    &format!("started agent {} (pid {pid})", spec.name),
                    &[
                        ("AGENT", &spec.name),
                        ("PID", &pid),
                        ("PROFILE", &spec.profile_name),
                    ],
                );
                slot.session = Some(session);
                slot.state = State::Running;
            }
            Err(e) => {
                let e = e.to_string();
                log.event(
                    Event::StartFailed,
                    &format!("agent {} could not start: {e}", spec.name),
                    &[("AGENT", &spec.name), ("REASON", &e)],
                );
                slot.last_exit = Some(format!("could not start: {e}"));
                self.after_failure(i, log);
            }
        }
    }

    /// Asks slot `i`'s session to end (SIGTERM: `cordon run` forwards it
    /// to the agent with the profile's grace, revokes secrets, writes
    /// the audit log's end); SIGKILL after `stop_timeout`.
    fn end(&mut self, i: usize, why: Ending, log: &Log) {
        let timeout = self.stop_timeout;
        let slot = &mut self.slots[i];
        let Some(s) = slot.session.as_mut() else {
            slot.state = State::Stopped;
            return;
        };
        // A stop overrides a kill in progress, not the other way round.
        if s.ending != Some(Ending::Stop) {
            s.ending = Some(why);
        }
        if s.kill_at.is_none() {
            let _ = pidfd_send_signal(&s.pidfd, libc::SIGTERM);
            s.kill_at = Some(Instant::now() + timeout);
        }
        if why == Ending::Kill {
            let id = s.id().unwrap_or("").to_string();
            log.event(
                Event::Killed,
                &format!("operator ended the session of {}", slot.spec.name),
                &[
                    ("AGENT", &slot.spec.name),
                    ("SESSION", &id),
                    ("DECISION", "kill"),
                ],
            );
        }
        slot.state = State::Stopping;
    }

    /// Reaps whatever session ended; returns whether any did.
    pub fn reap(&mut self, log: &Log) -> bool {
        let mut any = false;
        for i in 0..self.slots.len() {
            let Some(s) = self.slots[i].session.as_ref() else {
                continue;
            };
            let exit = match try_wait(&s.pidfd) {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                Err(_) => Exit::Signal(0),
            };
            any = true;
            self.ended(i, exit, log);
        }
        self.drop_removed();
        any
    }

    fn ended(&mut self, i: usize, exit: Exit, log: &Log) {
        let Some(mut s) = self.slots[i].session.take() else {
            return;
        };
        let id = s.id().unwrap_or("").to_string();
        if let Some(c) = self.counter.as_mut() {
            c.forget(&id);
        }
        if let Some(cg) = &s.cgroup {
            cg.remove();
        }
        let _ = std::fs::remove_file(&s.id_file);
        let slot = &mut self.slots[i];
        let (text, failed) = match exit {
            Exit::Code(0) => ("exit 0".to_string(), false),
            Exit::Code(c) => (format!("exit {c}"), true),
            Exit::Signal(n) => (format!("signal {n}"), true),
        };
        // 86: cordon run killed the agent for leaving its profile.
        let diverged = exit == Exit::Code(i32::from(crate::process::EXIT_DIVERGED));
        let ran = s.started.elapsed();
        let mut fields = vec![
            ("AGENT", slot.spec.name.as_str()),
            ("SESSION", id.as_str()),
            ("EXIT", text.as_str()),
        ];
        if diverged {
            fields.push(("DECISION", "kill"));
            fields.push(("REASON", "divergence"));
        }
        log.event(
            Event::SessionExited,
            &format!(
                "agent {} session ended: {text} after {:.1}s{}",
                slot.spec.name,
                ran.as_secs_f64(),
                if diverged {
                    " (killed by cordon for leaving its profile)"
                } else {
                    ""
                }
            ),
            &fields,
        );
        slot.last_exit = Some(text);
        if s.ending == Some(Ending::Stop) || slot.removed {
            slot.state = State::Stopped;
            return;
        }
        match (slot.spec.restart.policy, failed) {
            (RestartPolicy::No, _) | (RestartPolicy::OnFailure, false) => {
                slot.state = State::Stopped;
            }
            (_, true) => self.after_failure(i, log),
            (RestartPolicy::Always, false) => {
                let slot = &mut self.slots[i];
                slot.state = State::BackingOff;
                slot.retry_at = Some(Instant::now() + slot.spec.restart.initial_delay);
            }
        }
    }

    /// Counts a failure; backs off, or gives up past the limit.
    fn after_failure(&mut self, i: usize, log: &Log) {
        let slot = &mut self.slots[i];
        let r = slot.spec.restart;
        let now = Instant::now();
        slot.failures.push_back(now);
        while slot
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > r.window)
        {
            slot.failures.pop_front();
        }
        if r.policy == RestartPolicy::No {
            slot.state = State::Stopped;
            return;
        }
        let n = u32::try_from(slot.failures.len()).unwrap_or(u32::MAX);
        if n >= r.max_failures {
            let why = format!(
                "{n} failures within {}; last: {}",
                humantime::format_duration(r.window),
                slot.last_exit.as_deref().unwrap_or("unknown")
            );
            log.event(
                Event::GaveUp,
                &format!("gave up on agent {}: {why}", slot.spec.name),
                &[("AGENT", &slot.spec.name), ("REASON", &why)],
            );
            slot.gave_up = Some(why);
            slot.state = State::GaveUp;
            slot.retry_at = None;
            return;
        }
        let delay = backoff(r.initial_delay, r.max_delay, n);
        log.event(
            Event::Restarting,
            &format!(
                "agent {} failed ({}); restarting in {}",
                slot.spec.name,
                slot.last_exit.as_deref().unwrap_or("unknown"),
                humantime::format_duration(delay)
            ),
            &[
                ("AGENT", &slot.spec.name),
                ("DELAY_MS", &delay.as_millis().to_string()),
            ],
        );
        slot.state = State::BackingOff;
        slot.retry_at = Some(now + delay);
    }

    /// Does what is due at `now`: restarts after back-off, SIGKILL of
    /// sessions past their stop deadline.
    pub fn tick(&mut self, now: Instant, log: &Log) {
        for i in 0..self.slots.len() {
            if self.slots[i].state == State::BackingOff
                && self.slots[i].retry_at.is_some_and(|t| t <= now)
            {
                self.start(i, log);
            }
            let slot = &mut self.slots[i];
            if let Some(s) = slot.session.as_mut() {
                if s.kill_at.is_some_and(|t| t <= now) {
                    log.event(
                        Event::Killed,
                        &format!("agent {} did not stop in time: SIGKILL", slot.spec.name),
                        &[("AGENT", &slot.spec.name), ("DECISION", "kill")],
                    );
                    let _ = pidfd_send_signal(&s.pidfd, libc::SIGKILL);
                    if let Some(cg) = &s.cgroup {
                        let _ = cg.kill();
                    }
                    s.kill_at = None;
                }
            }
        }
    }

    /// The earliest moment `tick` has work.
    pub fn next_due(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flat_map(|s| [s.retry_at, s.session.as_ref().and_then(|x| x.kill_at)])
            .flatten()
            .min()
    }

    /// `cordon ps`.
    pub fn status(&mut self) -> Vec<AgentStatus> {
        let now = Instant::now();
        let asks_until = now + PENDING_BUDGET;
        if let Some(c) = self.counter.as_mut() {
            c.update();
        }
        let counter = self.counter.as_ref();
        self.slots
            .iter_mut()
            .map(|slot| {
                let (session, pid, uid, uptime) = match slot.session.as_mut() {
                    Some(s) => (
                        s.id().map(str::to_string),
                        Some(s.pid),
                        Some(s.uid),
                        Some(s.started.elapsed().as_secs()),
                    ),
                    None => (None, None, None, None),
                };
                // Asked on the daemon's own loop: a session that does not
                // answer (stopped, wedged) costs at most what is left of
                // the shared budget, and its count is then unknown.
                let left = asks_until.saturating_duration_since(Instant::now());
                let pending_approvals = slot
                    .session
                    .as_ref()
                    .and_then(|s| s.approvals.as_deref())
                    .filter(|p| !left.is_zero() && p.exists())
                    .and_then(|p| {
                        crate::approval::client::call_within(
                            p,
                            &crate::approval::wire::ControlRequest::List,
                            left.min(PENDING_ASK),
                        )
                        .ok()
                    })
                    .filter(|r| r.ok)
                    .map(|r| r.pending.len());
                let calls = match (counter, session.as_deref()) {
                    (Some(c), Some(id)) => Some(c.get(id)),
                    _ => None,
                };
                AgentStatus {
                    name: slot.spec.name.clone(),
                    profile: slot.spec.profile_name.clone(),
                    state: slot.state.word().to_string(),
                    session,
                    pid,
                    uid,
                    uptime_secs: uptime,
                    identity: calls.as_ref().and_then(|c| c.identity.clone()),
                    calls_allowed: calls.as_ref().map(|c| c.allowed),
                    calls_denied: calls.as_ref().map(|c| c.denied),
                    pending_approvals,
                    restarts: slot.starts.saturating_sub(1),
                    recent_failures: u32::try_from(slot.failures.len()).unwrap_or(u32::MAX),
                    last_exit: slot.last_exit.clone(),
                    next_start_secs: slot
                        .retry_at
                        .map(|t| t.saturating_duration_since(now).as_secs_f64()),
                    gave_up: slot.gave_up.clone(),
                }
            })
            .collect()
    }

    /// (configured, running) for STATUS=.
    pub fn counts(&self) -> (usize, usize) {
        let running = self
            .slots
            .iter()
            .filter(|s| s.state == State::Running)
            .count();
        (self.slots.len(), running)
    }

    pub fn pidfds(&self) -> Vec<(usize, std::os::fd::RawFd)> {
        use std::os::fd::AsRawFd;
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.session.as_ref().map(|x| (i, x.pidfd.as_raw_fd())))
            .collect()
    }
}

impl Slot {
    fn new(spec: Agent) -> Slot {
        Slot {
            spec,
            state: State::Stopped,
            session: None,
            failures: VecDeque::new(),
            starts: 0,
            last_exit: None,
            retry_at: None,
            gave_up: None,
            removed: false,
            serial: 0,
        }
    }
}

/// initial × 2^(failures-1), at most `max`.
pub fn backoff(initial: Duration, max: Duration, failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(30);
    initial.saturating_mul(1u32 << shift).min(max)
}

/// Whether `path` is an existing directory (for the state dir).
pub fn ensure_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(1), s(60), 1), s(1));
        assert_eq!(backoff(s(1), s(60), 2), s(2));
        assert_eq!(backoff(s(1), s(60), 4), s(8));
        assert_eq!(backoff(s(1), s(60), 7), s(60));
        assert_eq!(backoff(s(1), s(60), 1000), s(60));
    }
}
