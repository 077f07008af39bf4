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
    #[error("a connection cordon made for a sandboxed process did not say which (its prelude)")]
    Prelude,
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
/// still the same live process.
pub fn authenticate(
    sock: &mut (impl AsRawFd + std::io::Read),
    uid: u32,
    session_ns: u64,
    call_of: &dyn Fn(i32) -> Option<u64>,
    nonce: &[u8; 32],
) -> Result<Peer, PeerError> {
    use crate::sandbox::netpolicy::{prelude_pid, PRELUDE_LEN};
    let proc_root = Path::new("/proc");
    let cred = peer_cred(sock.as_raw_fd()).map_err(PeerError::Cred)?;
    // A connect the supervisor made itself, for a sandboxed process whose
    // connect it mediated (`process::mediate`): the prelude it wrote first
    // names that process, with the session's nonce (which no sandboxed
    // process holds).
    let (pid, pidfd) = if cred.pid == crate::sys::process::getpid() {
        let mut p = [0u8; PRELUDE_LEN];
        sock.read_exact(&mut p).map_err(|_| PeerError::Prelude)?;
        let pid = prelude_pid(nonce, &p).ok_or(PeerError::Prelude)?;
        let pid = i32::try_from(pid).map_err(|_| PeerError::Prelude)?;
        let pidfd = crate::sys::process::pidfd_open(pid).map_err(|_| PeerError::Gone(pid))?;
        (pid, pidfd)
    } else {
        if cred.uid != uid {
            return Err(PeerError::Uid(cred.uid));
        }
        (cred.pid, cred.pidfd)
    };
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
        let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let none = |_: i32| None;
        // A pair of our own: we are the supervisor here, so a prelude is
        // expected; write one naming us.
        let nonce = [3u8; 32];
        use std::io::Write;
        let p = crate::sandbox::netpolicy::prelude(&nonce, me.unsigned_abs());
        b.write_all(&p).unwrap();
        let peer = authenticate(&mut a, crate::sys::geteuid(), ns, &none, &nonce).unwrap();
        assert_eq!(peer.pid, me.unsigned_abs());
        assert_eq!(peer.via_call, None);
        // The same process is foreign to any other namespace.
        a.write_all(&p).unwrap();
        assert!(matches!(
            authenticate(&mut b, crate::sys::geteuid(), ns + 1, &none, &nonce),
            Err(PeerError::Foreign(_))
        ));
        // ...unless it descends from a running call's init: our parent
        // plays one here.
        a.write_all(&p).unwrap();
        let parent = parent_of(Path::new("/proc"), me).unwrap();
        let call_of = |pid: i32| (pid == parent).then_some(7);
        let peer = authenticate(&mut b, crate::sys::geteuid(), ns + 1, &call_of, &nonce).unwrap();
        assert_eq!(peer.via_call, Some(7));
        // A prelude without the nonce, or none at all, names nobody.
        a.write_all(&crate::sandbox::netpolicy::prelude(&[4; 32], 1))
            .unwrap();
        assert!(matches!(
            authenticate(&mut b, crate::sys::geteuid(), ns, &none, &nonce),
            Err(PeerError::Prelude)
        ));
        drop(a);
        assert!(matches!(
            authenticate(&mut b, crate::sys::geteuid(), ns, &none, &nonce),
            Err(PeerError::Prelude)
        ));
    }
}
