//! Who is on the other end of a broker connection? Only processes of this
//! session's agent tree are served.
//!
//! SO_PEERCRED gives the peer's pid and uid as of connect(); SO_PEERPIDFD
//! pins that exact process. We read the pid's namespace from /proc, then
//! check the pidfd still names a live process with that pid: if it does,
//! the /proc read cannot have been about a recycled pid.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use crate::sys::fd::peer_cred;

/// An authenticated peer.
#[derive(Debug)]
pub struct Peer {
    pub pid: u32,
    /// Pins the peer process (its descriptors and cwd are taken from it).
    pub pidfd: OwnedFd,
    /// A process of a running tool call's sandbox (a tool reaching another
    /// tool through the broker): that call's id.
    pub via_call: Option<u64>,
}

/// Why a peer is refused (audited, and told in one line).
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("cannot read the peer's credentials: {0}")]
    Cred(crate::sys::Errno),
    #[error("peer uid {0} is not this session's")]
    Uid(u32),
    #[error("peer pid {0} is not in this session's agent tree")]
    Foreign(i32),
    #[error("peer pid {0} exited while being checked")]
    Gone(i32),
}

/// The inode of a process's pid namespace (`/proc/<pid>/ns/pid`).
pub fn pid_namespace(proc_root: &Path, pid: i32) -> Option<u64> {
    let link = std::fs::read_link(proc_root.join(pid.to_string()).join("ns/pid")).ok()?;
    let text = link.to_str()?;
    text.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// The pid a pidfd refers to in our namespace, or None once it has exited
/// (`Pid:` in its fdinfo reads -1 then).
pub(super) fn pidfd_pid(proc_root: &Path, pidfd: &OwnedFd) -> Option<i32> {
    let info = std::fs::read_to_string(
        proc_root
            .join("self/fdinfo")
            .join(pidfd.as_raw_fd().to_string()),
    )
    .ok()?;
    let pid: i32 = info
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))?
        .trim()
        .parse()
        .ok()?;
    (pid > 0).then_some(pid)
}

/// The pid namespace of a sandbox whose init cannot be inspected: a
/// non-dumpable, unprivileged cordon (one that holds secrets) clones
/// non-dumpable inits, whose /proc/<pid>/ns stays closed to it. The init's
/// first child becomes readable once it has executed the agent's command;
/// it is pinned by a pidfd while its parent (our unreaped `init`, so a pid
/// nobody else can have) and its namespace are read, and it is in init's
/// namespace (nothing in a sandbox may make a pid namespace). Waits at
/// most `limit`.
pub fn namespace_of_child(proc_root: &Path, init: i32, limit: std::time::Duration) -> Option<u64> {
    let parent_of = |pid: i32| -> Option<i32> {
        let status =
            std::fs::read_to_string(proc_root.join(pid.to_string()).join("status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse().ok())
    };
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        let pids = std::fs::read_dir(proc_root)
            .ok()?
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()));
        for pid in pids.filter(|&pid| parent_of(pid) == Some(init)) {
            // Pinned, then checked again: what is read below is about
            // init's child, not a process that took its pid meanwhile.
            let Ok(pidfd) = crate::sys::process::pidfd_open(pid) else {
                continue;
            };
            if parent_of(pid) != Some(init) {
                continue;
            }
            let ns = pid_namespace(proc_root, pid);
            if ns.is_some() && pidfd_pid(proc_root, &pidfd) == Some(pid) {
                return ns;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    None
}

/// How far up a peer's parents are followed to find a running call.
const MAX_ANCESTRY: usize = 256;

/// The parent of `pid` (`PPid:` of its status).
fn parent_of(proc_root: &Path, pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(proc_root.join(pid.to_string()).join("status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The running call whose sandbox `pid` belongs to: the first ancestor
/// that is a call's init (`call_of` maps an init pid to its call).
fn call_ancestor(proc_root: &Path, pid: i32, call_of: &dyn Fn(i32) -> Option<u64>) -> Option<u64> {
    let mut cur = pid;
    for _ in 0..MAX_ANCESTRY {
        let parent = parent_of(proc_root, cur)?;
        if parent <= 1 {
            return None;
        }
        if let Some(call) = call_of(parent) {
            return Some(call);
        }
        cur = parent;
    }
    None
}

/// Admits the peer of `sock` if it runs as `uid` inside pid namespace
/// `session_ns` (the agent's), or inside the sandbox of one of the
/// session's running tool calls (`call_of` maps a call's init pid to its
/// id; a tool reaches other tools only through the broker). Everything
/// read from /proc is trusted only once the peer's pidfd shows it is
/// still the same live process. (A sandboxed process's connect is
/// mediated and reaches the broker through `handoff` instead; this is the
/// path of processes whose connects are not: `cordon learn`'s.)
pub fn authenticate(
    sock: &impl AsRawFd,
    uid: u32,
    session_ns: u64,
    call_of: &dyn Fn(i32) -> Option<u64>,
) -> Result<Peer, PeerError> {
    let proc_root = Path::new("/proc");
    let cred = peer_cred(sock.as_raw_fd()).map_err(PeerError::Cred)?;
    if cred.uid != uid {
        return Err(PeerError::Uid(cred.uid));
    }
    let (pid, pidfd) = (cred.pid, cred.pidfd);
    let ns = pid_namespace(proc_root, pid);
    let via_call = if ns == Some(session_ns) {
        None
    } else {
        call_ancestor(proc_root, pid, call_of)
    };
    if pidfd_pid(proc_root, &pidfd) != Some(pid) {
        return Err(PeerError::Gone(pid));
    }
    if ns != Some(session_ns) && via_call.is_none() {
        return Err(PeerError::Foreign(pid));
    }
    Ok(Peer {
        pid: pid.unsigned_abs(),
        pidfd,
        via_call,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_namespace_and_pidfd() {
        let me = std::process::id() as i32;
        let ns = pid_namespace(Path::new("/proc"), me).expect("own pid namespace");
        assert!(ns > 0);
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let none = |_: i32| None;
        let peer = authenticate(&a, crate::sys::geteuid(), ns, &none).unwrap();
        assert_eq!(peer.pid, me.unsigned_abs());
        assert_eq!(peer.via_call, None);
        // The same process is foreign to any other namespace...
        assert!(matches!(
            authenticate(&a, crate::sys::geteuid(), ns + 1, &none),
            Err(PeerError::Foreign(_))
        ));
        // ...unless it descends from a running call's init: our parent
        // plays one here.
        let parent = parent_of(Path::new("/proc"), me).unwrap();
        let call_of = |pid: i32| (pid == parent).then_some(7);
        let peer = authenticate(&a, crate::sys::geteuid(), ns + 1, &call_of).unwrap();
        assert_eq!(peer.via_call, Some(7));
        // Another uid is refused before anything else.
        assert!(matches!(
            authenticate(&a, crate::sys::geteuid() + 1, ns, &none),
            Err(PeerError::Uid(_))
        ));
    }
}
