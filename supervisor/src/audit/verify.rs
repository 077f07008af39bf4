//! `cordon audit verify`: checks a whole log and names the first broken line.
//!
//! Every line must be a JSON object with `seq` 1, 2, 3, … (no gap, no
//! repeat) and `prev` = SHA-256 of the previous line's bytes. The chain
//! proves nothing was edited, dropped, inserted or reordered *before the
//! last line*; an edit of the last line, or records cut off the end, show
//! only against a known head hash (`--head`), which cordon logs at session
//! end. The file is streamed: memory use does not grow with its size.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::problem::Problem;
use super::tail::{header, Header};
use super::{line_hash, MAX_LINE, ZERO_HASH};

/// A log that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    pub lines: u64,
    /// Hash of the last line (64 zeros for an empty file).
    pub head: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyFailure {
    #[error("{}: cannot read: {source}", path.display())]
    Unreadable { path: PathBuf, source: io::Error },
    #[error("{}: {problem}", path.display())]
    Broken { path: PathBuf, problem: Problem },
}

impl VerifyFailure {
    /// `cordon audit verify`'s exit status: 1 broken, 2 unreadable.
    pub fn exit_code(&self) -> u8 {
        match self {
            VerifyFailure::Unreadable { .. } => 2,
            VerifyFailure::Broken { .. } => 1,
        }
    }
}

/// Verifies the log at `path`; with `head`, also that its last line hashes
/// to it.
pub fn verify(path: &Path, head: Option<&str>) -> Result<Summary, VerifyFailure> {
    let file = File::open(path).map_err(|source| VerifyFailure::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    verify_reader(path, BufReader::with_capacity(64 * 1024, file), head)
}

/// [`verify`] over any reader; `name` labels the errors.
pub fn verify_reader(
    name: &Path,
    reader: impl BufRead,
    head: Option<&str>,
) -> Result<Summary, VerifyFailure> {
    check(reader, head).map_err(|f| match f {
        Fail::Io(source) => VerifyFailure::Unreadable {
            path: name.to_path_buf(),
            source,
        },
        Fail::Broken(problem) => VerifyFailure::Broken {
            path: name.to_path_buf(),
            problem,
        },
    })
}

enum Fail {
    Io(io::Error),
    Broken(Problem),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::Io(e)
    }
}

impl From<Problem> for Fail {
    fn from(p: Problem) -> Self {
        Fail::Broken(p)
    }
}

/// One line as the checker needs it.
struct Entry {
    no: u64,
    hash: String,
    newline: bool,
    header: Result<Header, String>,
}

impl Entry {
    fn seq(&self) -> Option<u64> {
        self.header.as_ref().ok().map(|h| h.seq)
    }
}

/// Reads the next line, refusing lines over [`MAX_LINE`] (without reading
/// them whole: a hostile file cannot make verify allocate gigabytes).
fn next_line(r: &mut impl BufRead, no: u64, buf: &mut Vec<u8>) -> Result<Option<Entry>, Fail> {
    buf.clear();
    let limit = u64::try_from(MAX_LINE)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    if r.by_ref().take(limit).read_until(b'\n', buf)? == 0 {
        return Ok(None);
    }
    let newline = buf.last() == Some(&b'\n');
    if newline {
        buf.pop();
    } else if buf.len() > MAX_LINE {
        return Err(Problem::TooLong { line: no }.into());
    }
    Ok(Some(Entry {
        no,
        hash: line_hash(buf),
        newline,
        header: header(buf),
    }))
}

fn check(mut r: impl BufRead, head: Option<&str>) -> Result<Summary, Fail> {
    let mut buf = Vec::new();
    let mut next = next_line(&mut r, 1, &mut buf)?;
    // Hashes of the previous line and the one before it ("line 0" is the
    // zero hash every chain starts from).
    let mut prev_hash = ZERO_HASH.to_owned();
    let mut prev2_hash: Option<String> = None;
    // (line, seq) of the last record.
    let mut last: Option<(u64, u64)> = None;
    let mut records = 0u64;
    let mut lines = 0u64;
    let mut first_torn = None;
    while let Some(cur) = next.take() {
        next = next_line(&mut r, cur.no + 1, &mut buf)?;
        lines = cur.no;
        match &cur.header {
            Err(reason) => {
                if !cur.newline {
                    return Err(Problem::TornTail { line: cur.no }.into());
                }
                // A torn line that cordon recovered from: the next record
                // chains over its bytes (see `tail::read_tail`).
                let chained = next
                    .as_ref()
                    .and_then(|n| n.header.as_ref().ok())
                    .is_some_and(|h| h.prev == cur.hash);
                if !chained {
                    let reason = reason.clone();
                    return Err(Problem::NotRecord {
                        line: cur.no,
                        reason,
                    }
                    .into());
                }
                first_torn.get_or_insert(cur.no);
            }
            Ok(h) => {
                let expected = last.map_or(1, |(_, s)| s.saturating_add(1));
                if h.seq != expected {
                    let p = seq_problem(&cur, h, last, next.as_ref(), prev2_hash.as_deref());
                    return Err(p.into());
                }
                if h.prev != prev_hash {
                    let line = cur.no;
                    return Err(if line == 1 {
                        Problem::FirstPrev { seq: h.seq }
                    } else if prev2_hash.as_deref() == Some(h.prev.as_str()) {
                        Problem::InsertedBefore { line, seq: h.seq }
                    } else {
                        Problem::PrevMismatch { line, seq: h.seq }
                    }
                    .into());
                }
                if !cur.newline {
                    return Err(Problem::NoFinalNewline {
                        line: cur.no,
                        seq: h.seq,
                    }
                    .into());
                }
                records += 1;
                last = Some((cur.no, h.seq));
            }
        }
        prev2_hash = Some(std::mem::replace(&mut prev_hash, cur.hash));
    }
    if let Some(expected) = head {
        if !expected.eq_ignore_ascii_case(&prev_hash) {
            return Err(Problem::HeadMismatch {
                line: lines,
                actual: prev_hash,
                expected: expected.to_owned(),
            }
            .into());
        }
    }
    if let Some(line) = first_torn {
        return Err(Problem::Torn { line, records }.into());
    }
    Ok(Summary {
        records,
        lines,
        head: prev_hash,
    })
}

/// Names what a wrong `seq` most likely means, using the neighbours.
fn seq_problem(
    cur: &Entry,
    h: &Header,
    last: Option<(u64, u64)>,
    next: Option<&Entry>,
    prev2: Option<&str>,
) -> Problem {
    let line = cur.no;
    let seq = h.seq;
    let Some((last_line, last_seq)) = last else {
        return if seq > 1 {
            Problem::StartsLate { line, seq }
        } else {
            Problem::Backwards {
                line,
                seq,
                after: 0,
            }
        };
    };
    let expected = last_seq.saturating_add(1);
    if seq == expected.saturating_add(1) && next.and_then(Entry::seq) == Some(expected) {
        return Problem::Swapped { line, first: seq };
    }
    if seq > expected {
        return Problem::Gap {
            line,
            seq,
            after: last_seq,
        };
    }
    if seq == last_seq {
        // The line that chains to the one before its twin is the original:
        // its twin was inserted.
        if last_line + 1 == line && prev2 == Some(h.prev.as_str()) {
            return Problem::Inserted {
                line: last_line,
                seq,
            };
        }
        return Problem::Repeated {
            line,
            seq,
            other: last_line,
        };
    }
    Problem::Backwards {
        line,
        seq,
        after: last_seq,
    }
}
