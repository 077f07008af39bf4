//! [`AuditLog`]: appends records to one hash-chained file.
//!
//! Several cordon processes (one per session) may append to the same file,
//! and the broker appends from many threads. Each append takes an exclusive
//! `flock`, reads the current tail, and writes its whole line with one
//! `write(2)` on an `O_APPEND` descriptor, so lines never interleave and
//! every `prev` names the line really before it.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use super::fit::fit;
use super::record::Record;
use super::tail::{read_tail, TailError};
use super::{line_hash, AuditError};
use crate::sys::lock::ExclusiveLock;

/// What goes on disk: the chain fields first, then the record.
#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    prev: &'a str,
    #[serde(flatten)]
    record: &'a Record,
}

/// An open audit log. Cheap to share behind an `Arc`; `append` takes `&self`.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    /// flock excludes other open descriptions (processes, other handles),
    /// not other threads using this one; the mutex covers those.
    file: Mutex<File>,
    sync: bool,
}

impl AuditLog {
    /// Opens (creating if needed, mode 0600) the log at `path`. Missing
    /// parent directories are created with mode 0700. A symbolic link at
    /// `path` itself, or anything but a regular file, is refused.
    pub fn open(path: impl AsRef<Path>) -> Result<AuditLog, AuditError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| {
                    // create_dir_all says "File exists" when a file stands
                    // where a directory should: name what is wrong.
                    match dir.metadata() {
                        Ok(m) if !m.is_dir() => AuditError::ParentNotDir {
                            path: path.clone(),
                            parent: dir.to_path_buf(),
                        },
                        _ => AuditError::CreateDir {
                            path: path.clone(),
                            source,
                        },
                    }
                })?;
        }
        let file = OpenOptions::new()
            .read(true) // the tail is read back before each append
            .append(true)
            .create(true)
            .mode(0o600)
            // O_NONBLOCK: a FIFO planted at `path` must not hang the
            // open; it is then refused as not a regular file. It has no
            // effect on regular files.
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::ELOOP) => AuditError::Symlink { path: path.clone() },
                _ => AuditError::Open {
                    path: path.clone(),
                    source,
                },
            })?;
        let meta = file.metadata().map_err(|source| AuditError::Open {
            path: path.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(AuditError::NotRegular { path });
        }
        Ok(AuditLog {
            path,
            file: Mutex::new(file),
            sync: false,
        })
    }

    /// With `true`, every append ends with `fdatasync`: the record is on
    /// disk before `append` returns (slower; off by default).
    #[must_use]
    pub fn with_sync(mut self, sync: bool) -> AuditLog {
        self.sync = sync;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `rec` and returns the new line's hash (the log's head).
    /// A record over [`super::MAX_LINE`] is shortened, never dropped.
    /// Any failure is returned: the caller must not go ahead unrecorded.
    pub fn append(&self, rec: &Record) -> Result<String, AuditError> {
        // A panic in another append cannot leave the file half-updated in a
        // way the mutex would protect: the state is the file itself, which
        // is re-read under the flock. So a poisoned mutex is still usable.
        let file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _lock = ExclusiveLock::acquire(file.as_fd()).map_err(|source| AuditError::Lock {
            path: self.path.clone(),
            source,
        })?;
        let tail = read_tail(&file).map_err(|e| match e {
            TailError::Io(source) => AuditError::ReadTail {
                path: self.path.clone(),
                source,
            },
            TailError::Bad(reason) => AuditError::BadTail {
                path: self.path.clone(),
                reason,
            },
        })?;
        let mut record = rec.clone();
        let encode = |r: &Record| {
            serde_json::to_vec(&Line {
                seq: tail.seq,
                prev: &tail.prev,
                record: r,
            })
        };
        let line = fit(&mut record, encode)
            .map_err(|source| AuditError::Encode {
                path: self.path.clone(),
                source,
            })?
            .ok_or_else(|| AuditError::TooLarge {
                path: self.path.clone(),
                kind: rec.kind,
            })?;
        let hash = line_hash(&line);
        // After a torn line the record starts on a fresh line; the newline
        // goes in the same write so a crash cannot separate them.
        let mut buf = Vec::with_capacity(line.len() + 2);
        if tail.torn {
            buf.push(b'\n');
        }
        buf.extend_from_slice(&line);
        buf.push(b'\n');
        self.write_once(&file, &buf)?;
        if self.sync {
            file.sync_data().map_err(|source| AuditError::Sync {
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(hash)
    }

    /// One write(2): never a second write that could land after another
    /// process's line. A short write (disk full) leaves a torn line, which
    /// the next append recovers from, and is reported as an error.
    fn write_once(&self, mut file: &File, buf: &[u8]) -> Result<(), AuditError> {
        loop {
            match file.write(buf) {
                Ok(n) if n == buf.len() => return Ok(()),
                Ok(written) => {
                    return Err(AuditError::ShortWrite {
                        path: self.path.clone(),
                        written,
                        len: buf.len(),
                    })
                }
                // Interrupted before anything was written: try again.
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(AuditError::Write {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
    }
}
