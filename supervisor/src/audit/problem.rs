//! What `cordon audit verify` found wrong, worded for the person reading it.
//!
//! Each variant names the line (1-based, as in an editor) and, where the
//! chain allows it, says which record was edited, dropped, inserted or moved.

use std::fmt;

use super::MAX_LINE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A line over the size limit: not written by cordon.
    TooLong {
        line: u64,
    },
    /// Not a JSON object with `seq` and `prev`, and nothing chains over it.
    NotRecord {
        line: u64,
        reason: String,
    },
    /// The file ends in the middle of a line.
    TornTail {
        line: u64,
    },
    /// The last line is a whole record but lacks its newline.
    NoFinalNewline {
        line: u64,
        seq: u64,
    },
    /// A torn line that cordon recovered from (the next record chains over
    /// it): the chain is intact, but a record was lost to a crash.
    Torn {
        line: u64,
        records: u64,
    },
    /// The first record's seq is not 1.
    StartsLate {
        line: u64,
        seq: u64,
    },
    Gap {
        line: u64,
        seq: u64,
        after: u64,
    },
    /// Lines `line` and `line + 1` hold seq `first` and `first - 1`.
    Swapped {
        line: u64,
        first: u64,
    },
    /// Line `line` was inserted: the next line repeats its seq and chains
    /// to the line before it.
    Inserted {
        line: u64,
        seq: u64,
    },
    Repeated {
        line: u64,
        seq: u64,
        other: u64,
    },
    Backwards {
        line: u64,
        seq: u64,
        after: u64,
    },
    /// Line 1's prev is not the zero hash.
    FirstPrev {
        seq: u64,
    },
    /// `line`'s prev skips the line before it and names the one before
    /// that: the line before was inserted.
    InsertedBefore {
        line: u64,
        seq: u64,
    },
    PrevMismatch {
        line: u64,
        seq: u64,
    },
    HeadMismatch {
        line: u64,
        actual: String,
        expected: String,
    },
}

impl Problem {
    /// The line the problem was found on.
    pub fn line(&self) -> u64 {
        match self {
            Problem::FirstPrev { .. } => 1,
            Problem::TooLong { line }
            | Problem::NotRecord { line, .. }
            | Problem::TornTail { line }
            | Problem::NoFinalNewline { line, .. }
            | Problem::Torn { line, .. }
            | Problem::StartsLate { line, .. }
            | Problem::Gap { line, .. }
            | Problem::Swapped { line, .. }
            | Problem::Inserted { line, .. }
            | Problem::Repeated { line, .. }
            | Problem::Backwards { line, .. }
            | Problem::InsertedBefore { line, .. }
            | Problem::PrevMismatch { line, .. }
            | Problem::HeadMismatch { line, .. } => *line,
        }
    }
}

/// "record 5" or "records 5 to 9".
fn records(from: u64, to: u64) -> String {
    if from == to {
        format!("record {from} is")
    } else {
        format!("records {from} to {to} are")
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::TooLong { line } => write!(
                f,
                "line {line}: longer than {MAX_LINE} bytes: not a cordon audit record"
            ),
            Problem::NotRecord { line, reason } => write!(
                f,
                "line {line}: not a cordon audit record ({reason}): it was inserted or damaged"
            ),
            Problem::TornTail { line } => write!(
                f,
                "line {line}: incomplete last line (no newline at end of file): the last \
                 record was cut short (the file was truncated, or cordon crashed writing it)"
            ),
            Problem::NoFinalNewline { line, seq } => write!(
                f,
                "line {line} (seq {seq}): no newline at end of file: the file was truncated, \
                 or its last write was cut short"
            ),
            Problem::Torn { line, records } => write!(
                f,
                "line {line}: torn record (an incomplete write: cordon crashed or the disk \
                 was full); the next line chains over it and the other {records} records verify"
            ),
            Problem::StartsLate { line, seq } => write!(
                f,
                "line {line}: the log starts at seq {seq}: {} missing (its beginning was cut off)",
                records(1, seq - 1)
            ),
            Problem::Gap { line, seq, after } => {
                write!(f, "line {line}: seq {seq} follows seq {after}: ")?;
                if *seq == after + 2 {
                    write!(f, "{} missing", records(after + 1, after + 1))
                } else {
                    let missing = records(after + 1, seq - 1);
                    write!(f, "{missing} missing, or line {line} was moved here")
                }
            }
            Problem::Swapped { line, first } => write!(
                f,
                "lines {line} and {}: seq {first} comes before seq {}: the two records were swapped",
                line + 1,
                first - 1
            ),
            Problem::Inserted { line, seq } => write!(
                f,
                "line {line} (seq {seq}) was inserted: line {} repeats seq {seq} and chains to \
                 the line before it",
                line + 1
            ),
            Problem::Repeated { line, seq, other } => write!(
                f,
                "line {line}: seq {seq} repeats seq {seq} of line {other}: a record was \
                 inserted or duplicated"
            ),
            Problem::Backwards { line, seq, after } => write!(
                f,
                "line {line}: seq {seq} follows seq {after}: out of order (line {line} was \
                 moved or inserted)"
            ),
            Problem::FirstPrev { seq } => write!(
                f,
                "line 1 (seq {seq}): prev is not 64 zeros: records before it were removed"
            ),
            Problem::InsertedBefore { line, seq } => write!(
                f,
                "line {line} (seq {seq}): prev skips line {}: line {} was inserted",
                line - 1,
                line - 1
            ),
            Problem::PrevMismatch { line, seq } => write!(
                f,
                "line {line} (seq {seq}): prev does not match line {}: line {} was edited, \
                 or a record between them was removed",
                line - 1,
                line - 1
            ),
            Problem::HeadMismatch {
                line,
                actual,
                expected,
            } => write!(
                f,
                "line {line} (the last): hash {actual} is not the expected head {expected}: \
                 the last record was edited, or records were removed from or added to the end"
            ),
        }
    }
}
