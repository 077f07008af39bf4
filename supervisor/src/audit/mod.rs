//! The audit log: one JSON object per line, hash-chained.
//!
//! - [`record`]: what one line says ([`Record`], [`Kind`]), argv escaping.
//! - [`time`]: RFC 3339 timestamps from `SystemTime` (UTC, milliseconds).
//! - [`fit`]: the size limit and how an oversized record is shortened.
//! - [`log`]: [`AuditLog`], the appender shared by many threads and processes.
//! - [`tail`]: reading the last line(s) of a log without reading it all.
//! - [`problem`]: what verification found, worded for people.
//! - [`verify`]: checks a whole file and names the first broken line.
//!
//! On disk every line is `{"seq":N,"prev":"<hex>",...record fields}`:
//! `seq` counts records from 1 per file, and `prev` is the SHA-256 of the
//! previous line's exact bytes (without its newline), or 64 zeros on the
//! first line. See `docs/audit.md` for the format and its limits.

pub mod fit;
pub mod log;
mod problem;
pub mod record;
mod tail;
pub mod time;
pub mod verify;
#[cfg(test)]
mod verify_tests;

use std::path::PathBuf;

use sha2::{Digest, Sha256};

pub use log::AuditLog;
pub use problem::Problem;
pub use record::{argv_text, identity, Decision, Kind, Record};
pub use verify::{verify, verify_reader, Summary, VerifyFailure};

/// The largest line cordon writes or accepts, in bytes, without its newline.
/// Records over it are shortened (see [`fit`]), never dropped; it also
/// bounds how far back the appender must read to find the last line.
pub const MAX_LINE: usize = 64 * 1024;

/// `prev` of the first line of a file.
pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Lower-case hex SHA-256 of one line's bytes (without its newline).
pub fn line_hash(line: &[u8]) -> String {
    hex(&Sha256::digest(line))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Why appending to (or opening) the audit log failed. The broker fails
/// closed on any of these: no record, no tool call.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {}: cannot create its directory: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit log {}: {} is not a directory", path.display(), parent.display())]
    ParentNotDir { path: PathBuf, parent: PathBuf },
    #[error("audit log {}: is a symbolic link; refusing to follow it", path.display())]
    Symlink { path: PathBuf },
    #[error("audit log {}: cannot open: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit log {}: not a regular file", path.display())]
    NotRegular { path: PathBuf },
    #[error("audit log {}: cannot lock (flock): {source}", path.display())]
    Lock {
        path: PathBuf,
        source: crate::sys::Errno,
    },
    #[error("audit log {}: cannot read its last line: {source}", path.display())]
    ReadTail {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "audit log {}: the last line is not a cordon audit record ({reason}); \
         refusing to extend the chain: run `cordon audit verify` on it",
        path.display()
    )]
    BadTail { path: PathBuf, reason: String },
    #[error(
        "audit log {}: a record of kind {kind} is over {max} bytes even with \
         every shortenable field cut",
        path.display(),
        max = MAX_LINE
    )]
    TooLarge { path: PathBuf, kind: Kind },
    #[error("audit log {}: cannot encode the record: {source}", path.display())]
    Encode {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("audit log {}: write failed: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "audit log {}: short write ({written} of {len} bytes; disk full?); \
         the next append starts a fresh line",
        path.display()
    )]
    ShortWrite {
        path: PathBuf,
        written: usize,
        len: usize,
    },
    #[error("audit log {}: fdatasync failed: {source}", path.display())]
    Sync {
        path: PathBuf,
        source: std::io::Error,
    },
}
