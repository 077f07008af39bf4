//! Saying refusals: one line on cordon's stderr for the person running
//! it, and one audit record, for every refusal that has no record of its
//! own elsewhere (a denied exec, a denied syscall, a refused connect of
//! the sandbox's own sockets). The broker and the egress proxies record
//! their refusals themselves and use this only to say them.
//!
//! Both are bounded per sandbox, so a process that refuses itself in a
//! loop can flood neither the terminal nor the log: past
//! [`MAX_LINES`] lines and [`MAX_RECORDS`] records, one last line (and
//! one last record) says so, and the rest is only counted.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::audit::{AuditLog, Kind, Record};

/// Lines said per sandbox before the rest are only recorded.
pub const MAX_LINES: u32 = 100;
/// Records written per sandbox before the rest are only counted.
pub const MAX_RECORDS: u32 = 1000;

/// Whose refusals these are and where they go.
#[derive(Debug)]
pub struct Notices {
    /// Say them on stderr (`cordon run`, `learn`); a daemon's sessions
    /// have their own stderr too, which is their journal.
    loud: bool,
    audit: Option<Arc<AuditLog>>,
    session: String,
    profile: String,
    chain: Vec<String>,
    /// The tool call whose sandbox this is.
    call: Option<(String, u64)>,
    lines: AtomicU32,
    records: AtomicU32,
    /// Keys of what is said only once (a tolerated refusal).
    once: Mutex<HashSet<String>>,
    /// cordon's own stderr (device, inode), to tell when a refused
    /// caller's stderr is that same file (it said the refusal there).
    stderr: Option<(u64, u64)>,
}

impl Notices {
    /// The notices of a session's agent.
    pub fn new(loud: bool, audit: Option<Arc<AuditLog>>, session: &str, profile: &str) -> Notices {
        Notices {
            loud,
            audit,
            session: session.to_string(),
            profile: profile.to_string(),
            chain: Vec::new(),
            call: None,
            lines: AtomicU32::new(0),
            records: AtomicU32::new(0),
            once: Mutex::new(HashSet::new()),
            stderr: file_id("/proc/self/fd/2"),
        }
    }

    /// A sub-agent's: its records carry its ancestors.
    #[must_use]
    pub fn chain(mut self, chain: Vec<String>) -> Notices {
        self.chain = chain;
        self
    }

    /// The notices of one call of `tool`'s sandbox, from a session's.
    pub fn for_call(&self, tool: &str, call: u64) -> Notices {
        Notices {
            loud: self.loud,
            audit: self.audit.clone(),
            session: self.session.clone(),
            profile: self.profile.clone(),
            chain: self.chain.clone(),
            call: Some((tool.to_string(), call)),
            lines: AtomicU32::new(0),
            records: AtomicU32::new(0),
            once: Mutex::new(HashSet::new()),
            stderr: self.stderr,
        }
    }

    pub fn loud(&self) -> bool {
        self.loud
    }

    /// Says `what` as `cordon: WHAT` on stderr (when loud), within the
    /// bound of lines.
    pub fn say(&self, what: &str) {
        if !self.loud {
            return;
        }
        let n = self.lines.fetch_add(1, Ordering::Relaxed) + 1;
        if n < MAX_LINES {
            eprintln!("cordon: {what}");
        } else if n == MAX_LINES {
            eprintln!("cordon: {what}");
            eprintln!("cordon: {MAX_LINES} refusals said; the rest are in the audit log only");
        }
    }

    /// Says `what` the first time `key` is seen; true if it was said.
    pub fn say_once(&self, key: &str, what: &str) -> bool {
        let first = self
            .once
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string());
        if first {
            self.say(what);
        }
        first
    }

    /// Whether process `pid`'s stderr is cordon's own (the same pipe or
    /// terminal): then what it printed there was seen, and saying it
    /// again would say it twice.
    pub fn shares_stderr(&self, pid: u32) -> bool {
        self.stderr.is_some() && file_id(&format!("/proc/{pid}/fd/2")) == self.stderr
    }

    /// A record of this sandbox (`kind`, stamped with the session, the
    /// profile, the chain and the call), for [`Notices::record`].
    pub fn base(&self, kind: Kind) -> Record {
        let rec = Record::new(kind, &self.session).profile(&self.profile);
        let rec = if self.chain.is_empty() {
            rec
        } else {
            rec.chain(self.chain.clone())
        };
        match &self.call {
            Some((tool, call)) => rec.tool(tool.clone()).call(*call),
            None => rec,
        }
    }

    /// Appends `rec`, within the bound of records. A record that cannot
    /// be written is logged: the refusal it describes has happened.
    pub fn record(&self, rec: Record) {
        let Some(audit) = &self.audit else { return };
        let n = self.records.fetch_add(1, Ordering::Relaxed) + 1;
        if n > MAX_RECORDS {
            return;
        }
        let rec = if n == MAX_RECORDS {
            rec.detail(format!(
                "the {MAX_RECORDS}th refusal recorded for this sandbox; later ones are not recorded"
            ))
        } else {
            rec
        };
        if let Err(e) = audit.append(&rec) {
            tracing::error!(session = %self.session, error = %e, "audit: a refusal could not be recorded");
        }
    }
}

/// (device, inode) of the file `path` names (following the link).
fn file_id(path: &str) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_bounded_and_the_last_one_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(AuditLog::open(dir.path().join("a.jsonl")).unwrap());
        let n = Notices::new(false, Some(Arc::clone(&log)), "s", "p").for_call("git", 3);
        for _ in 0..MAX_RECORDS + 5 {
            n.record(n.base(Kind::Violation).reason("x"));
        }
        let text = std::fs::read_to_string(dir.path().join("a.jsonl")).unwrap();
        assert_eq!(text.lines().count(), MAX_RECORDS as usize);
        let last = text.lines().last().unwrap();
        assert!(
            last.contains("later ones are not recorded") && last.contains(r#""tool":"git","#),
            "{last}"
        );
        assert!(n.say_once("k", "x") && !n.say_once("k", "x"));
    }

    #[test]
    fn a_process_with_cordons_stderr_is_recognised() {
        let n = Notices::new(true, None, "s", "p");
        assert!(n.shares_stderr(std::process::id()));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        assert!(!n.shares_stderr(child.id()));
        let _ = child.kill();
        let _ = child.wait();
    }
}
