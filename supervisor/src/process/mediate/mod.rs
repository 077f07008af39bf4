//! Connects and addressed sends of a sandboxed process, made by the
//! supervisor: the seccomp filter sends connect(), sendto() with an
//! address, sendmsg() and sendmmsg() here; the supervisor takes a copy of
//! the process's socket (pidfd_getfd), reads the address (and data) into
//! its own memory, decides with the sandbox's [`NetPolicy`], and makes the
//! call itself on that copy with that address, then answers the process
//! with its result. Nothing the process does meanwhile (rewrite the
//! address, swap another socket onto the descriptor) changes where the
//! call goes: the kernel never reads the process's arguments again. This
//! is what makes `[network] unix` and "UDP only to the name servers" hold
//! on kernels whose Landlock cannot say either.
//!
//! Calls that may block (a connect, a send on a full socket) run on a
//! thread of their own, so the supervisor's loop never waits on them.
//!
//! A connect to the session's broker is not made at all: the process gets
//! one end of a new socket pair in place of its socket (SECCOMP_IOCTL_
//! NOTIF_ADDFD) and the broker the other, with the caller known from the
//! notification (`broker::handoff`).

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

mod read;

use read::{fd_cloexec, low_int, read_addr, read_data, read_msghdr, resolve_unix, rewrite_unix};

use crate::broker::handoff::{Handed, Handoff};
use crate::sandbox::netpolicy::{parse_sockaddr, Addr, NetPolicy, NetVerdict};
use crate::sandbox::seccomp::syscall_name;
use crate::sys::in_sandbox;
use crate::sys::process::{pidfd_open_thread, write_remote};
use crate::sys::seccomp::{Listener, Notification};
use crate::sys::sockets::{connect, connect_raw, pidfd_getfd, socket_kind, Outgoing};
use crate::sys::Errno;

/// The most a mediated send carries (more is EMSGSIZE).
const MAX_SEND: usize = 4 * 1024 * 1024;
/// iovecs per message at most (the kernel's UIO_MAXIOV).
const MAX_IOV: usize = 1024;
/// Messages per sendmmsg at most (the kernel's UIO_MAXIOV).
const MAX_MMSG: usize = 1024;
/// Descriptors per SCM_RIGHTS message at most (the kernel's SCM_MAX_FD).
const MAX_FDS: usize = 253;
/// Mediated calls in flight per sandbox; past it a call fails with EAGAIN.
const MAX_IN_FLIGHT: usize = 256;
/// `struct sockaddr_storage`.
const MAX_ADDR: usize = 128;
/// Not an errno: [`Mediator::prepare`]'s way of saying divergence.
const DIVERGED: i32 = -1;

/// The mediation of one sandbox.
#[derive(Debug)]
pub struct Mediator {
    policy: NetPolicy,
    in_flight: Arc<AtomicUsize>,
    /// Say refusals on stderr (the agent's run).
    loud: bool,
    /// Where connections to the broker go, and the call whose sandbox this
    /// is (a tool's: its processes' calls are nested in it).
    broker: Option<(Arc<Handoff>, Option<u64>)>,
    /// Where refusals are said and recorded.
    notices: Option<Arc<super::Notices>>,
}

/// What `prepare` found the call to be.
enum Decided {
    Make(Prepared),
    /// A connect to the session's broker, on this socket of the caller.
    Broker(OwnedFd),
}

/// One message, read from the process and ready to send.
struct Message {
    name: Vec<u8>,
    data: Vec<u8>,
    /// Descriptors to pass (SCM_RIGHTS), copied from the process.
    fds: Vec<OwnedFd>,
    /// The socket file `name` now names (`/proc/self/fd/N` of this).
    hold: Option<OwnedFd>,
}

/// A decided call, ready to make.
struct Prepared {
    /// The caller's socket (a copy of its descriptor).
    sock: OwnedFd,
    call: Call,
    /// The caller (a pidfd), when the call must be made as a process of
    /// its sandbox (`sys::in_sandbox`).
    caller: Option<OwnedFd>,
}

/// What the mediated call is, with its own copies of everything.
enum Call {
    Connect {
        addr: Vec<u8>,
        /// The socket file `addr` names (`/proc/self/fd/N` of this).
        hold: Option<OwnedFd>,
    },
    Send {
        msgs: Vec<Message>,
        flags: i32,
        many: Option<u64>,
    },
}

impl Mediator {
    /// The policy it decides with.
    pub fn policy(&self) -> &NetPolicy {
        &self.policy
    }

    pub fn new(policy: NetPolicy, loud: bool) -> Mediator {
        Mediator {
            policy,
            in_flight: Arc::default(),
            loud,
            broker: None,
            notices: None,
        }
    }

    /// Refusals are said and recorded through `notices` (which then
    /// decides what is loud).
    #[must_use]
    pub fn with_notices(mut self, notices: Arc<super::Notices>) -> Mediator {
        self.notices = Some(notices);
        self
    }

    /// Connects to the broker go to `handoff`, as nested in `via_call`
    /// when this is a tool call's sandbox.
    #[must_use]
    pub fn with_broker(mut self, handoff: Arc<Handoff>, via_call: Option<u64>) -> Mediator {
        self.broker = Some((handoff, via_call));
        self
    }

    /// Whether `nr` is a call this mediates.
    pub fn handles(nr: i32) -> bool {
        syscall_name(nr).is_some_and(|n| crate::sandbox::seccomp::MEDIATED.contains(&n))
    }

    /// Decides and makes the call of notification `n`; answers it (now, or
    /// from a worker thread when the call may block). A divergence is
    /// returned unanswered: the caller kills the sandbox.
    pub fn handle(&self, listener: &Arc<Listener>, n: &Notification) -> Option<String> {
        match self.prepare(listener, n) {
            Ok(Some(Decided::Make(prepared))) => self.perform(listener, n, prepared),
            Ok(Some(Decided::Broker(sock))) => {
                if let Err(errno) = self.hand_to_broker(listener, n, &sock) {
                    let _ = listener.respond_error(n.id, errno);
                }
            }
            Ok(None) => {}
            Err((DIVERGED, why)) => return why,
            Err((errno, why)) => {
                if let Some(why) = why {
                    self.refused(n, &why);
                }
                let _ = listener.respond_error(n.id, errno);
            }
        }
        None
    }

    /// Says and records a refused call (a `connect` record with the
    /// reason: the sandbox's own sockets, not the egress proxy's).
    fn refused(&self, n: &Notification, why: &str) {
        tracing::info!(pid = n.pid, %why, "network: refused");
        match &self.notices {
            Some(notices) => {
                notices.say(&format!("denied: pid {} {why}", n.pid));
                let call = syscall_name(n.data.nr).unwrap_or("connect");
                notices.record(
                    notices
                        .base(crate::audit::Kind::Connect)
                        .pid(n.pid)
                        .decision(crate::audit::Decision::Deny)
                        .rule("network")
                        .detail(call.to_string())
                        .reason(why.to_string()),
                );
            }
            None if self.loud => eprintln!("cordon: denied: pid {} {why}", n.pid),
            None => {}
        }
    }

    /// Everything up to the call: the socket, the address, the data, the
    /// decision. `Ok(None)`: the caller is gone (nothing to answer).
    fn prepare(
        &self,
        listener: &Listener,
        n: &Notification,
    ) -> Result<Option<Decided>, (i32, Option<String>)> {
        let name = syscall_name(n.data.nr).unwrap_or("");
        let pid = i32::try_from(n.pid).map_err(|_| (libc::ESRCH, None))?;
        let pidfd = pidfd_open_thread(pid).map_err(|e| (e.0, None))?;
        // The pid could have been reused before pidfd_open: only a still
        // pending notification proves it is the caller.
        if !listener.id_valid(n.id) {
            return Ok(None);
        }
        let fd = low_int(n.data.args[0]);
        let sock = pidfd_getfd(&pidfd, fd).map_err(|e| (e.0, None))?;
        let (domain, kind) = socket_kind(&sock).map_err(|e| (e.0, None))?;
        let call = match name {
            "connect" => {
                let addr = read_addr(pid, n.data.args[1], n.data.args[2])?;
                Call::Connect { addr, hold: None }
            }
            "sendto" => {
                let len = usize::try_from(n.data.args[2]).unwrap_or(usize::MAX);
                let msg = Message {
                    name: read_addr(pid, n.data.args[4], n.data.args[5])?,
                    data: read_data(pid, n.data.args[1], len)?,
                    fds: Vec::new(),
                    hold: None,
                };
                Call::Send {
                    msgs: vec![msg],
                    flags: low_int(n.data.args[3]),
                    many: None,
                }
            }
            "sendmsg" => {
                let msg = read_msghdr(pid, &pidfd, n.data.args[1])?;
                Call::Send {
                    msgs: vec![msg],
                    flags: low_int(n.data.args[2]),
                    many: None,
                }
            }
            "sendmmsg" => {
                let count = usize::try_from(n.data.args[2] & 0xffff_ffff)
                    .unwrap_or(0)
                    .min(MAX_MMSG);
                let mut msgs = Vec::with_capacity(count);
                for i in 0..count {
                    // struct mmsghdr: a msghdr, then unsigned msg_len, padded.
                    let at = n.data.args[1].saturating_add(64 * i as u64);
                    msgs.push(read_msghdr(pid, &pidfd, at)?);
                }
                Call::Send {
                    msgs,
                    flags: low_int(n.data.args[3]),
                    many: Some(n.data.args[1]),
                }
            }
            _ => return Err((libc::ENOSYS, None)),
        };
        // Every address the call names is decided, as the caller sees it.
        let addrs: Vec<&[u8]> = match &call {
            Call::Connect { addr, .. } => vec![addr.as_slice()],
            Call::Send { msgs, .. } => msgs
                .iter()
                .map(|m| m.name.as_slice())
                .filter(|a| !a.is_empty())
                .collect(),
        };
        let mut broker = false;
        let mut resolved = Vec::new();
        for raw in addrs {
            let addr = parse_sockaddr(raw).map_err(|e| (libc::EINVAL, Some(e.to_string())))?;
            let target = match &addr {
                Addr::UnixPath(p) => Some(resolve_unix(pid, p)?),
                _ => None,
            };
            match self
                .policy
                .decide(domain, kind, &addr, target.as_ref().map(|t| t.1.as_path()))
            {
                NetVerdict::Perform => {}
                NetVerdict::Broker if matches!(call, Call::Connect { .. }) => broker = true,
                NetVerdict::Broker => {
                    return Err((libc::EINVAL, Some("sent a datagram to the broker".into())))
                }
                NetVerdict::Refuse { errno, why } => return Err((errno, Some(why))),
                NetVerdict::Diverge { why } => return Err((DIVERGED, Some(why))),
            }
            resolved.push(target);
        }
        // A pathname address is replaced by the file the supervisor
        // resolved (as `/proc/self/fd/N` of an O_PATH descriptor it holds).
        if broker && self.broker.is_some() {
            return Ok(Some(Decided::Broker(sock)));
        }
        let call = rewrite_unix(call, resolved);
        // A Unix socket's peer learns who connected or sent: that must be
        // a process of the sandbox, never the supervisor.
        let as_caller = domain == libc::AF_UNIX;
        Ok(Some(Decided::Make(Prepared {
            sock,
            call,
            caller: as_caller.then_some(pidfd),
        })))
    }

    /// Gives the caller a connection to the broker in place of its socket
    /// `sock` (keeping its O_NONBLOCK and close-on-exec flags) and the
    /// broker the other end, then answers the connect. Nothing here
    /// blocks. An errno when the connect must fail.
    fn hand_to_broker(
        &self,
        listener: &Listener,
        n: &Notification,
        sock: &OwnedFd,
    ) -> Result<(), i32> {
        let Some((handoff, via_call)) = &self.broker else {
            return Err(libc::ECONNREFUSED);
        };
        let tid = i32::try_from(n.pid).map_err(|_| libc::ESRCH)?;
        let fd = low_int(n.data.args[0]);
        let pid = crate::sys::process::thread_group(tid).map_err(|e| e.0)?;
        let pidfd = crate::sys::process::pidfd_open(pid).map_err(|e| e.0)?;
        // Still pending: the thread is the caller, so `pid` is its process.
        if !listener.id_valid(n.id) {
            return Ok(());
        }
        let (mine, theirs) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
        let flags = crate::sys::fd::status_flags(sock.as_raw_fd()).map_err(|e| e.0)?;
        if flags & libc::O_NONBLOCK != 0 {
            crate::sys::fd::set_nonblocking(theirs.as_raw_fd()).map_err(|e| e.0)?;
        }
        let cloexec = fd_cloexec(tid, fd);
        handoff
            .hand(Handed {
                stream: mine,
                pid: pid.unsigned_abs(),
                pidfd,
                via_call: *via_call,
            })
            .map_err(|_| libc::EAGAIN)?;
        // (Should this fail, the broker's end sees the connection closed.)
        listener
            .add_fd_at(n.id, theirs.as_raw_fd(), fd, cloexec)
            .map_err(|e| e.0)?;
        listener.respond_value(n.id, 0).map_err(|e| e.0)
    }

    /// Makes the call on a worker thread and answers from there.
    fn perform(&self, listener: &Arc<Listener>, n: &Notification, prepared: Prepared) {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            let _ = listener.respond_error(n.id, libc::EAGAIN);
            return;
        }
        let (listener, id, pid) = (Arc::clone(listener), n.id, n.pid);
        let in_flight = Arc::clone(&self.in_flight);
        let spawned = std::thread::Builder::new()
            .name("cordon-net".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let result = run(prepared, pid);
                let _ = match result {
                    Ok(v) => listener.respond_value(id, v),
                    Err(e) => listener.respond_error(id, e.0),
                };
                in_flight.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Makes the call (as the caller, when it has one); its return value.
fn run(prepared: Prepared, pid: u32) -> Result<i64, Errno> {
    let Prepared { sock, call, caller } = prepared;
    let own_user_ns = caller.is_some() && same_user_namespace(pid);
    let sock = &sock;
    let raw = sock.as_raw_fd();
    match call {
        Call::Connect { addr, hold } => {
            match &caller {
                Some(caller) => {
                    in_sandbox::run(caller, own_user_ns, &|| match connect_raw(raw, &addr) {
                        Ok(()) => 0,
                        Err(e) => -i64::from(e.0),
                    })?;
                }
                None => connect(sock, &addr)?,
            }
            drop(hold);
            Ok(0)
        }
        Call::Send { msgs, flags, many } => {
            let mut sent = 0i64;
            for (i, m) in msgs.into_iter().enumerate() {
                let fds: Vec<i32> = m.fds.iter().map(AsRawFd::as_raw_fd).collect();
                let data = [m.data.as_slice()];
                let out = Outgoing::new(&data, &m.name, &fds)?;
                let done = match &caller {
                    Some(caller) => {
                        in_sandbox::run(caller, own_user_ns, &|| match out.send(raw, flags) {
                            Ok(n) => i64::try_from(n).unwrap_or(i64::MAX),
                            Err(e) => -i64::from(e.0),
                        })
                        .map(|n| usize::try_from(n).unwrap_or(0))
                    }
                    None => out.send(raw, flags),
                };
                // The resolved socket file was needed until now.
                drop(m.hold);
                match done {
                    Ok(bytes) => {
                        if let Some(base) = many {
                            // sendmmsg reports each message's length in it.
                            let at = base.saturating_add(64 * i as u64 + 56);
                            let len = u32::try_from(bytes).unwrap_or(u32::MAX);
                            let _ = write_remote(
                                i32::try_from(pid).unwrap_or(0),
                                at,
                                &len.to_ne_bytes(),
                            );
                            sent += 1;
                        } else {
                            sent = i64::try_from(bytes).unwrap_or(i64::MAX);
                        }
                    }
                    // sendmmsg: what was sent counts; the error only if
                    // nothing was.
                    Err(e) if many.is_some() && i > 0 => {
                        let _ = e;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(sent)
        }
    }
}

/// Whether process `pid` is in this process's user namespace.
fn same_user_namespace(pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ns = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino()));
    matches!((ns("/proc/self/ns/user"), ns(&format!("/proc/{pid}/ns/user"))), (Ok(a), Ok(b)) if a == b)
}
