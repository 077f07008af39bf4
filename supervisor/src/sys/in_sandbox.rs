//! Making one socket call as a process of a sandbox: the peer of a Unix
//! socket learns who connected (SO_PEERCRED, SO_PEERPIDFD) and a receiver
//! with SO_PASSCRED who sent (SCM_CREDENTIALS) from the process that made
//! the call. A connect or send the supervisor mediates must not be seen as
//! the supervisor's (a process of the host's pid namespace, with its
//! capabilities): a server that trusts its peers by pid, namespace or
//! capability would give the sandbox the supervisor's standing.
//!
//! So the call is made by a short-lived process that joins the caller's
//! user and pid namespaces and holds no capability: the peer sees a
//! process of the sandbox, with the sandbox's uid, and permission checks
//! on the socket file are the sandbox's, not root's.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::{check_int, Errno};

/// Stack of the process that makes the call (it only makes the call).
const STACK: usize = 64 * 1024;

/// What the calling process runs: `op`, and where its result goes.
struct Call<'a> {
    op: &'a dyn Fn() -> i64,
    result: RawFd,
    /// The caller's pidfd.
    caller: RawFd,
    join_user: bool,
    /// The stack of the process that makes the call.
    stack: &'a mut [u8],
}

/// Runs `op` (a raw socket call: a result, or minus an errno) in a new
/// process inside the user and pid namespaces of the process `caller`
/// (a pidfd), with no capabilities, and returns what it returned.
/// `own_user_ns`: the caller is in this process's user namespace (only its
/// pid namespace is joined, from a child that shares this memory; joining
/// a user namespace takes a process of its own memory, a fork).
///
/// `op` runs in a child of this multithreaded process: it must only make
/// system calls on memory prepared before (no allocation, no lock).
pub fn run(caller: &OwnedFd, own_user_ns: bool, op: &dyn Fn() -> i64) -> Result<i64, Errno> {
    let (read, write) = super::fd::pipe()?;
    let mut stacks = vec![0u8; 2 * STACK];
    let (joiner_stack, caller_stack) = stacks.split_at_mut(STACK);
    let call = Call {
        op,
        result: write.as_raw_fd(),
        caller: caller.as_raw_fd(),
        join_user: !own_user_ns,
        stack: caller_stack,
    };
    let pid = if own_user_ns {
        let top = (joiner_stack.as_mut_ptr_range().end as usize) & !0xf;
        // SAFETY: `joiner` runs on its own stack with `call`, both alive
        // until it exits: CLONE_VFORK suspends this thread until then, and
        // nothing else uses them. It shares this memory and only makes raw
        // system calls on what `call` points at.
        unsafe {
            libc::clone(
                joiner,
                top as *mut libc::c_void,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                (&call as *const Call<'_>).cast_mut().cast(),
            )
        }
    } else {
        // SAFETY: a fork (no CLONE_VM): the child gets a copy of this
        // address space and continues here with 0. It only runs `joiner`
        // on the copy of `call`, which makes raw system calls and never
        // returns, so no destructor or lock of the parent runs twice.
        let pid = check_int(unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) })?;
        if pid == 0 {
            joiner((&call as *const Call<'_>).cast_mut().cast());
            // SAFETY: `joiner` exits; this is not reached.
            unsafe { libc::_exit(0) };
        }
        pid
    };
    if pid < 0 {
        return Err(Errno::last());
    }
    drop(write);
    let mut out = [0u8; 8];
    let got = super::fd::read(read.as_raw_fd(), &mut out);
    let mut status = 0;
    // SAFETY: waits for our own child; writes one int.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 && Errno::last().0 == libc::EINTR {}
    match got {
        Ok(8) => {
            let r = i64::from_ne_bytes(out);
            if r < 0 {
                Err(Errno(i32::try_from(-r).unwrap_or(libc::EIO)))
            } else {
                Ok(r)
            }
        }
        _ => Err(Errno(libc::EIO)),
    }
}

/// The child that joins the caller's namespaces, then clones the process
/// that makes the call (joining a pid namespace places only one's
/// children in it). Exits, never returns.
extern "C" fn joiner(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Call` that `run` passed (or its copy, in a
    // fork), alive until we exit.
    let call = unsafe { &*(arg as *const Call<'_>) };
    let fail = |e: i32| -> ! {
        report(call.result, -i64::from(e));
        // SAFETY: _exit ends this child without running anything of the
        // parent's.
        unsafe { libc::_exit(0) }
    };
    // SAFETY: prctl with integer arguments. Not dumpable: the supervisor's
    // memory (this child's, or its copy) is not the sandbox's to read once
    // in its namespaces. Dies with the supervisor.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    let flags = if call.join_user {
        libc::CLONE_NEWUSER | libc::CLONE_NEWPID
    } else {
        libc::CLONE_NEWPID
    };
    // SAFETY: setns on a pidfd with namespace flags; no memory.
    if unsafe { libc::setns(call.caller, flags) } != 0 {
        // EINVAL: the caller shares our user namespace after all.
        let retried = call.join_user && errno() == libc::EINVAL && {
            // SAFETY: as above.
            let r = unsafe { libc::setns(call.caller, libc::CLONE_NEWPID) };
            r == 0
        };
        if !retried {
            fail(errno());
        }
    }
    let top = (call.stack.as_ptr_range().end as usize) & !0xf;
    // SAFETY: `entry` runs on `call.stack`, which nothing else uses, with
    // `call`, alive until it exits (CLONE_VFORK suspends this child until
    // then). The clone shares this memory and nothing else.
    let pid = unsafe {
        libc::clone(
            entry,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            arg,
        )
    };
    if pid < 0 {
        fail(errno());
    }
    let mut status = 0;
    // SAFETY: reaps the clone; writes one int.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

/// The process of the sandbox: drops every capability, makes the call,
/// reports its result.
extern "C" fn entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Call` that `child` passed, alive until we exit.
    let call = unsafe { &*(arg as *const Call<'_>) };
    let mut header = super::CapHeader {
        version: super::CAPABILITY_VERSION_3,
        pid: 0,
    };
    let none = [super::CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: version 3 capset reads exactly two data structs.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, none.as_ptr()) } != 0 {
        report(call.result, -i64::from(errno()));
        // SAFETY: ends this process; shares memory with `child`, which
        // only waits.
        unsafe { libc::_exit(0) };
    }
    report(call.result, (call.op)());
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

fn report(fd: RawFd, value: i64) {
    let b = value.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live buffer.
    unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
}

fn errno() -> i32 {
    // SAFETY: reads this thread's errno.
    unsafe { *libc::__errno_location() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_is_made_by_another_process_without_capabilities() {
        use std::os::unix::net::UnixListener;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let me = crate::sys::process::pidfd_open(crate::sys::process::getpid()).unwrap();
        // SAFETY: a plain socket call.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0);
        let mut addr = vec![0u8; 2];
        addr[..2].copy_from_slice(&u16::try_from(libc::AF_UNIX).unwrap().to_ne_bytes());
        addr.extend(path.as_os_str().as_encoded_bytes());
        addr.push(0);
        let op = || match crate::sys::sockets::connect_raw(fd, &addr) {
            Ok(()) => 0,
            Err(e) => -i64::from(e.0),
        };
        // Our own pid namespace: joining it takes CAP_SYS_ADMIN (EPERM
        // unprivileged); with it, the peer is the clone, not us.
        match run(&me, true, &op) {
            Ok(0) => {
                let (conn, _) = listener.accept().unwrap();
                // SAFETY: ucred is plain data, written by getsockopt.
                let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
                let mut len: libc::socklen_t = 12;
                // SAFETY: the kernel writes at most `len` bytes into `cred`.
                let ret = unsafe {
                    libc::getsockopt(
                        conn.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_PEERCRED,
                        (&mut cred as *mut libc::ucred).cast(),
                        &mut len,
                    )
                };
                assert_eq!(ret, 0);
                assert_ne!(cred.pid, std::process::id() as i32, "the peer is not us");
                assert_eq!(cred.uid, crate::sys::geteuid());
            }
            other => assert!(matches!(other, Err(Errno(libc::EPERM))), "{other:?}"),
        }
        // SAFETY: closes the socket made above.
        unsafe { libc::close(fd) };
    }
}
