//! Calls allowed and denied per session, for `cordon ps`, read from the
//! audit log the sessions append to: the daemon follows the file from
//! where it was when the daemon started, a little more at each `ps`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The most read per `ps` (the rest waits for the next one).
const MAX_STEP: u64 = 64 * 1024 * 1024;

/// Per-session counts of `call` records, and the session's workload
/// identity from its `session_start` record.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Calls {
    pub allowed: u64,
    pub denied: u64,
    pub identity: Option<String>,
}

/// Follows one audit log.
#[derive(Debug)]
pub struct Counter {
    path: PathBuf,
    offset: u64,
    /// A line not yet complete at the last read.
    partial: Vec<u8>,
    counts: HashMap<String, Calls>,
}

#[derive(Deserialize)]
struct Line<'a> {
    kind: &'a str,
    session: &'a str,
    #[serde(default)]
    decision: Option<&'a str>,
    #[serde(default)]
    identity: Option<&'a str>,
}

impl Counter {
    /// Starts at the log's current end (earlier sessions are not ours).
    pub fn new(path: &Path) -> Counter {
        let offset = std::fs::metadata(path).map_or(0, |m| m.len());
        Counter {
            path: path.to_path_buf(),
            offset,
            partial: Vec::new(),
            counts: HashMap::new(),
        }
    }

    /// Reads what was appended since the last call.
    pub fn update(&mut self) {
        let Ok(mut f) = File::open(&self.path) else {
            return;
        };
        let len = f.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            // Rotated or truncated: start over.
            self.offset = 0;
            self.partial.clear();
        }
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = std::mem::take(&mut self.partial);
        let before = buf.len();
        if f.take(MAX_STEP).read_to_end(&mut buf).is_err() {
            return;
        }
        self.offset += (buf.len() - before) as u64;
        let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in buf[..complete].split(|&b| b == b'\n') {
            let Ok(l) = serde_json::from_slice::<Line<'_>>(line) else {
                continue;
            };
            if l.kind == "session_start" {
                let c = self.counts.entry(l.session.to_string()).or_default();
                c.identity = l.identity.map(str::to_string);
                continue;
            }
            if l.kind != "call" {
                continue;
            }
            let c = self.counts.entry(l.session.to_string()).or_default();
            match l.decision {
                Some("allow") => c.allowed += 1,
                _ => c.denied += 1,
            }
        }
        self.partial = buf[complete..].to_vec();
    }

    pub fn get(&self, session: &str) -> Calls {
        self.counts.get(session).cloned().unwrap_or_default()
    }

    /// Forgets sessions that are over.
    pub fn forget(&mut self, session: &str) {
        self.counts.remove(session);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn counts_only_new_complete_call_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        std::fs::write(
            &p,
            "{\"kind\":\"call\",\"session\":\"old\",\"decision\":\"allow\"}\n",
        )
        .unwrap();
        let mut c = Counter::new(&p);
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        write!(f, "{{\"kind\":\"session_start\",\"session\":\"s\",\"identity\":\"spiffe://x/s\"}}\n{{\"kind\":\"call\",\"session\":\"s\",\"decision\":\"allow\"}}\n{{\"kind\":\"call\",\"session\":\"s\",\"decision\":\"deny\"}}\n{{\"kind\":\"call_end\",\"session\":\"s\"}}\n{{\"kind\":\"call\",\"sess").unwrap();
        c.update();
        let s = c.get("s");
        assert_eq!((s.allowed, s.denied), (1, 1));
        assert_eq!(s.identity.as_deref(), Some("spiffe://x/s"));
        assert_eq!(c.get("old"), Calls::default());
        writeln!(f, "ion\":\"s\",\"decision\":\"allow\"}}").unwrap();
        c.update();
        assert_eq!((c.get("s").allowed, c.get("s").denied), (2, 1));
    }
}
