//! Reading the end of a log: the last line, and the chain state after it.
//!
//! The appender reads backwards from EOF in 4 KiB steps instead of reading
//! the file: a log grows for months, and every append needs only its tail.
//! No line cordon writes is longer than [`MAX_LINE`], which bounds the read.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use serde::Deserialize;

use super::{line_hash, MAX_LINE, ZERO_HASH};

const STEP: u64 = 4096;

/// How many unparseable (torn) lines the appender steps back over to find
/// the last record's seq. Each torn line is one crash; more than this in a
/// row is not a crash pattern, so the appender refuses instead.
const MAX_TORN_RUN: usize = 16;

/// The chain fields every line starts with.
#[derive(Debug, Deserialize)]
pub(super) struct Header {
    pub seq: u64,
    pub prev: String,
}

/// Parses a line's `seq` and `prev`; the error says what is wrong.
pub(super) fn header(line: &[u8]) -> Result<Header, String> {
    let h: Header = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    if h.prev.len() != 64 || !h.prev.bytes().all(hex) {
        return Err(format!(
            "`prev` is not 64 lower-case hex digits: {:?}",
            h.prev
        ));
    }
    Ok(h)
}

/// Where the next record goes.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Tail {
    /// The next record's seq.
    pub seq: u64,
    /// Hash of the last line (torn or not), the next record's `prev`.
    pub prev: String,
    /// The file does not end in a newline: the next write starts with one.
    pub torn: bool,
}

#[derive(Debug)]
pub(super) enum TailError {
    Io(io::Error),
    Bad(String),
}

impl From<io::Error> for TailError {
    fn from(e: io::Error) -> Self {
        TailError::Io(e)
    }
}

/// The chain state at the end of `file`.
///
/// A torn last line (no newline at EOF: a crash or a short write) is kept
/// and chained over: the next record's `prev` is the hash of the torn bytes,
/// so the chain still covers every byte of the file, and its `seq` follows
/// the last complete record (the torn one never became a record).
pub(super) fn read_tail(file: &File) -> Result<Tail, TailError> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(Tail {
            seq: 1,
            prev: ZERO_HASH.to_owned(),
            torn: false,
        });
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    let torn = last[0] != b'\n';
    let end = if torn { len } else { len - 1 };
    let (mut start, line) = line_ending_at(file, end)?;
    let prev = line_hash(&line);
    let last_seq = match header(&line) {
        Ok(h) => h.seq,
        Err(e) if !torn => return Err(TailError::Bad(e)),
        Err(_) => {
            // Step back over earlier torn lines to the last real record.
            let mut found = None;
            for _ in 0..MAX_TORN_RUN {
                if start == 0 {
                    found = Some(0);
                    break;
                }
                let (s, l) = line_ending_at(file, start - 1)?;
                if let Ok(h) = header(&l) {
                    found = Some(h.seq);
                    break;
                }
                start = s;
            }
            found.ok_or_else(|| {
                TailError::Bad(format!(
                    "more than {MAX_TORN_RUN} unreadable lines at its end"
                ))
            })?
        }
    };
    let seq = last_seq
        .checked_add(1)
        .ok_or_else(|| TailError::Bad("seq is at its maximum".to_owned()))?;
    Ok(Tail { seq, prev, torn })
}

/// The line that ends at byte offset `end` (exclusive; `end` is a newline
/// or EOF): its start offset and bytes.
fn line_ending_at(file: &File, end: u64) -> Result<(u64, Vec<u8>), TailError> {
    let mut pos = end;
    let mut rev_blocks: Vec<Vec<u8>> = Vec::new();
    let mut total = 0usize;
    let start = loop {
        if pos == 0 {
            break 0;
        }
        let step = STEP.min(pos);
        let mut block = vec![0u8; usize::try_from(step).unwrap_or(4096)];
        file.read_exact_at(&mut block, pos - step)?;
        pos -= step;
        if let Some(i) = block.iter().rposition(|&b| b == b'\n') {
            block.drain(..=i);
            total += block.len();
            rev_blocks.push(block);
            break pos + i as u64 + 1;
        }
        total += block.len();
        rev_blocks.push(block);
        if total > MAX_LINE {
            return Err(TailError::Bad(format!(
                "its last line is longer than {MAX_LINE} bytes"
            )));
        }
    };
    if total > MAX_LINE {
        return Err(TailError::Bad(format!(
            "its last line is longer than {MAX_LINE} bytes"
        )));
    }
    let line = rev_blocks.into_iter().rev().flatten().collect();
    Ok((start, line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tail_of(bytes: &[u8]) -> Result<Tail, TailError> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        read_tail(&f)
    }

    fn line(seq: u64) -> String {
        format!(r#"{{"seq":{seq},"prev":"{ZERO_HASH}","kind":"call"}}"#)
    }

    #[test]
    fn empty_file_starts_the_chain() {
        let t = tail_of(b"").unwrap();
        assert_eq!((t.seq, t.prev.as_str(), t.torn), (1, ZERO_HASH, false));
    }

    #[test]
    fn complete_last_line() {
        let (a, b) = (line(1), line(2));
        let t = tail_of(format!("{a}\n{b}\n").as_bytes()).unwrap();
        assert_eq!(
            t,
            Tail {
                seq: 3,
                prev: line_hash(b.as_bytes()),
                torn: false
            }
        );
    }

    #[test]
    fn long_lines_cross_block_boundaries() {
        let pad = "x".repeat(10_000);
        let a = format!(r#"{{"seq":7,"prev":"{ZERO_HASH}","detail":"{pad}"}}"#);
        let t = tail_of(format!("{a}\n{a}\n").as_bytes()).unwrap();
        assert_eq!(t.seq, 8);
        assert_eq!(t.prev, line_hash(a.as_bytes()));
    }

    #[test]
    fn torn_line_is_chained_over_and_seq_follows_the_last_record() {
        let a = line(1);
        let torn = r#"{"seq":2,"pre"#;
        let t = tail_of(format!("{a}\n{torn}").as_bytes()).unwrap();
        assert_eq!(
            t,
            Tail {
                seq: 2,
                prev: line_hash(torn.as_bytes()),
                torn: true
            }
        );
        // Two crashes in a row, the second one during recovery.
        let t = tail_of(format!("{a}\n{torn}\n{torn}").as_bytes()).unwrap();
        assert_eq!(t.seq, 2);
        // A torn first line.
        let t = tail_of(torn.as_bytes()).unwrap();
        assert_eq!((t.seq, t.torn), (1, true));
    }

    #[test]
    fn garbage_tail_is_refused() {
        assert!(matches!(tail_of(b"hello\n"), Err(TailError::Bad(_))));
        let long = "y".repeat(MAX_LINE + 1);
        assert!(matches!(tail_of(long.as_bytes()), Err(TailError::Bad(_))));
    }
}
