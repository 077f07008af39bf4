//! Is this exec inside the profile? Read the path an agent process passed
//! to execve/execveat and resolve it as the kernel would.
//!
//! This is detection, not enforcement: Landlock refuses an exec outside the
//! grants whatever we answer here. A racing thread that rewrites the path
//! after we read it can only make us miss a divergence, never allow an exec
//! Landlock forbids.

use std::path::{Path, PathBuf};

use crate::sys::process::read_remote_cstr;
use crate::sys::seccomp::{Listener, Notification};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecVerdict {
    /// Inside the grants, or not a file we can name (the kernel will fail it).
    Allowed,
    /// An existing file outside the grants.
    Outside(PathBuf),
    /// A dynamic loader, executed directly.
    Interpreter(PathBuf),
}

const AT_FDCWD: i64 = -100;

/// Decides for one execve/execveat notification.
pub fn check_exec(
    listener: &Listener,
    n: &Notification,
    allowed: &[PathBuf],
    interpreters: &[PathBuf],
) -> ExecVerdict {
    let Some(path) = target(listener, n) else {
        return ExecVerdict::Allowed;
    };
    classify(&path, allowed, interpreters)
}

/// Whether `path` (canonical) is a dynamic loader (never allowed as a
/// program), or lies in an allowed file or tree.
pub fn classify(path: &Path, allowed: &[PathBuf], interpreters: &[PathBuf]) -> ExecVerdict {
    if interpreters.iter().any(|i| i == path) {
        return ExecVerdict::Interpreter(path.to_path_buf());
    }
    if allowed.iter().any(|a| path.starts_with(a)) {
        ExecVerdict::Allowed
    } else {
        ExecVerdict::Outside(path.to_path_buf())
    }
}

/// The low 32 bits of a syscall argument as the C `int` the kernel sees.
fn low_int(arg: u64) -> i32 {
    i32::from_ne_bytes(u32::try_from(arg & 0xffff_ffff).unwrap_or(0).to_ne_bytes())
}

/// The canonical path being executed, seen from the caller's root, cwd
/// and descriptors; None when it cannot be named (then it does not exist
/// or cannot be opened, and the kernel will fail the exec itself).
fn target(listener: &Listener, n: &Notification) -> Option<PathBuf> {
    let execveat = crate::sandbox::seccomp::syscall_name(n.data.nr) == Some("execveat");
    let (dirfd, addr, flags) = if execveat {
        // dirfd is an int: the kernel reads the low 32 bits, sign and all.
        (
            i64::from(low_int(n.data.args[0])),
            n.data.args[1],
            n.data.args[4],
        )
    } else {
        (AT_FDCWD, n.data.args[0], 0)
    };
    let pid = i32::try_from(n.pid).ok()?;
    let raw = read_remote_cstr(pid, addr, libc::PATH_MAX as usize).ok()?;
    // The pid could have died and been reused while we read: only trust
    // what we read if the notification is still pending.
    if !listener.id_valid(n.id) {
        return None;
    }
    let proc = PathBuf::from(format!("/proc/{pid}"));
    // Names that mean "the caller" must be read as the caller's, not ours.
    let text = String::from_utf8_lossy(&raw);
    let text = if let Some(rest) = text
        .strip_prefix("/proc/self/")
        .or_else(|| text.strip_prefix("/proc/thread-self/"))
    {
        format!("/proc/{pid}/{rest}").into()
    } else if let Some(n) = text.strip_prefix("/dev/fd/") {
        format!("/proc/{pid}/fd/{n}").into()
    } else {
        text
    };
    let by_fd = text.starts_with(&format!("/proc/{pid}/fd/"))
        || (raw.is_empty() && flags & libc::AT_EMPTY_PATH as u64 != 0);
    let base = if text.starts_with(&format!("/proc/{pid}/")) {
        PathBuf::from("/")
    } else if raw.first() == Some(&b'/') {
        proc.join("root")
    } else if dirfd == AT_FDCWD {
        proc.join("cwd")
    } else {
        proc.join("fd").join(dirfd.to_string())
    };
    let full = if raw.is_empty() && flags & libc::AT_EMPTY_PATH as u64 != 0 {
        base
    } else {
        base.join(text.trim_start_matches('/'))
    };
    // /proc/<pid>/root, cwd and fd/N are magic links into the caller's
    // view; canonicalize follows them and every symlink after.
    let canonical = match std::fs::canonicalize(&full) {
        Ok(c) => c,
        // An exec through a descriptor whose file has no name we can
        // follow (a memfd, a deleted file): outside every grant.
        Err(_) if by_fd => {
            return Some(PathBuf::from(format!(
                "{} (an unnamed or deleted file)",
                full.display()
            )))
        }
        Err(_) => return None,
    };
    // A path under the caller's root comes back relative to ours: the
    // same thing for a process in our mount tree or a copy of it.
    Some(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_files_and_trees() {
        let allowed = vec![
            PathBuf::from("/usr/lib"),
            PathBuf::from("/opt/cordon/cordon-shim"),
        ];
        let ld = [PathBuf::from(
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        )];
        assert_eq!(
            classify(Path::new("/usr/lib/x/y"), &allowed, &ld),
            ExecVerdict::Allowed
        );
        assert_eq!(
            classify(Path::new("/opt/cordon/cordon-shim"), &allowed, &ld),
            ExecVerdict::Allowed
        );
        assert_eq!(
            classify(Path::new("/usr/bin/curl"), &allowed, &ld),
            ExecVerdict::Outside(PathBuf::from("/usr/bin/curl"))
        );
        // A prefix of a name is not a parent directory.
        assert!(matches!(
            classify(Path::new("/usr/library"), &allowed, &ld),
            ExecVerdict::Outside(_)
        ));
        // The loader, though under an exec grant, is not a program.
        assert_eq!(
            classify(&ld[0], &allowed, &ld),
            ExecVerdict::Interpreter(ld[0].clone())
        );
    }
}
