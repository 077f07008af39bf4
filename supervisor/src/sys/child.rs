//! The code between clone and execve.
//!
//! It runs in a forked copy of the supervisor, so it must be
//! async-signal-safe: no allocation, no locks, no panics that unwind. Every
//! input is prepared by the parent in a [`ChildSpec`] (C strings, pointer
//! arrays, a compiled BPF program); here we only issue raw syscalls and, on
//! failure, write a fixed-size [`Report`] naming the stage and errno.
//!
//! Two processes run this code:
//! - **init**, pid 1 of the new pid namespace: sets up the mount namespace
//!   (masks, /proc), forks the agent, forwards stop signals to it, reaps
//!   orphans, and exits with the agent's status. When init exits the kernel
//!   kills everything left in the namespace: that is the containment.
//! - **the agent**, init's child: drops capabilities, sets no_new_privs,
//!   applies Landlock and seccomp, and executes the command.

use std::ffi::CStr;
use std::os::fd::RawFd;

use super::landlock;
use super::seccomp::{self, SockFilter};

/// One path rule to add to the Landlock ruleset inside the child.
#[derive(Debug)]
pub struct RulePath {
    pub path: std::ffi::CString,
    pub access: u64,
    /// A missing path is skipped rather than a setup failure.
    pub optional: bool,
}

/// What to mount at a mask target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskKind {
    /// Bind the empty, mode-000 mask file over a denied file.
    File,
    /// Bind the empty, mode-000 mask directory over a denied directory.
    Directory,
    /// Bind a directory onto itself: a mount point cannot be renamed or
    /// removed, so the ancestors of a denied path stay where the mask is.
    Pin,
}

/// One mount of the deny masks, applied in order.
#[derive(Debug)]
pub struct MaskMount {
    pub target: std::ffi::CString,
    pub kind: MaskKind,
}

/// The empty, read-only tmpfs that mask mounts are bound from.
#[derive(Debug)]
pub struct MaskSource<'a> {
    /// An empty directory of the session where the tmpfs is mounted.
    pub mountpoint: &'a CStr,
    pub file: &'a CStr,
    pub directory: &'a CStr,
}

/// Landlock work for the agent.
#[derive(Debug)]
pub struct LandlockSpec<'a> {
    pub ruleset: RawFd,
    pub paths: &'a [RulePath],
    /// The rights that may be granted on a non-directory.
    pub file_access_mask: u64,
}

/// Everything the child needs, prepared by the parent.
pub struct ChildSpec<'a> {
    /// Set when the child is in a new user namespace: "inside outside 1".
    pub uid_map: Option<&'a CStr>,
    pub gid_map: Option<&'a CStr>,
    /// Make every mount private before changing any (needs a mount ns).
    pub private_mounts: bool,
    pub mask_source: Option<MaskSource<'a>>,
    pub masks: &'a [MaskMount],
    pub mount_proc: bool,
    pub landlock: Option<LandlockSpec<'a>>,
    pub seccomp: &'a [SockFilter],
    pub rlimits: &'a [(u32, u64)],
    pub cwd: &'a CStr,
    /// When set, the directory `cwd` must be (checked after chdir).
    pub cwd_fd: Option<RawFd>,
    /// When set, these become the process's 0, 1 and 2 (none of them may
    /// already be 0, 1 or 2).
    pub stdio: Option<[RawFd; 3]>,
    /// Descriptors (above 2) the program keeps across exec, at the same
    /// numbers (secrets delivered as files).
    pub keep_fds: &'a [RawFd],
    pub exe: &'a CStr,
    /// NULL-terminated.
    pub argv: &'a [*const libc::c_char],
    /// NULL-terminated.
    pub envp: &'a [*const libc::c_char],
    /// Write end of the report pipe (close-on-exec).
    pub report_fd: RawFd,
    /// Read end of the lifeline pipe: POLLHUP means the supervisor is gone.
    pub lifeline_fd: RawFd,
    /// Child end of the socketpair that carries the seccomp listener.
    pub listener_sock: RawFd,
    /// The parent's ends of those channels, closed first thing.
    pub parent_fds: &'a [RawFd],
    /// The stack the agent runs on until it executes.
    pub agent_stack: &'a [u8],
    /// In a new network namespace: bring loopback up and hand the
    /// supervisor a listening socket for its egress proxy.
    pub egress: Option<EgressSpec>,
}

/// The egress proxy's listener, made inside the sandbox's network namespace.
#[derive(Debug, Clone, Copy)]
pub struct EgressSpec {
    /// The port on 127.0.0.1 the proxy listens on.
    pub port: u16,
    /// Child end of the socketpair the listener is sent over.
    pub sock: RawFd,
}

/// What a report record says.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    SetupFailed = 1,
    ExecFailed = 2,
    AgentExited = 3,
}

/// Declares the setup steps once: the enum (numbered from 1, as sent on
/// the report pipe) and the lookup from that number.
macro_rules! stages {
    ($($stage:ident),+ $(,)?) => {
        /// The setup step that failed.
        #[repr(u32)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Stage {
            $($stage),+
        }

        impl Stage {
            pub fn from_u32(v: u32) -> Option<Stage> {
                [$(Stage::$stage),+].into_iter().find(|s| *s as u32 + 1 == v)
            }

            /// The number sent on the report pipe (never 0).
            pub fn code(self) -> u32 {
                self as u32 + 1
            }
        }
    };
}

stages! {
    Lifeline,
    Setgroups,
    UidMap,
    GidMap,
    PrivateMounts,
    MaskTmpfs,
    MaskFiles,
    MaskRemount,
    MaskBind,
    MountProc,
    Fork,
    Rlimit,
    Securebits,
    CapBound,
    CapAmbient,
    Capset,
    NoNewPrivs,
    LandlockOpen,
    LandlockRule,
    LandlockRestrict,
    Seccomp,
    SendListener,
    LoopbackUp,
    EgressListen,
    SendEgress,
    Chdir,
    Stdio,
    KeepFds,
}

/// One fixed-size record on the report pipe: written atomically (16 bytes
/// is far below PIPE_BUF), so records from init and agent never interleave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub kind: u32,
    pub stage: u32,
    /// Index into the spec's list the stage worked on (mask, rule, rlimit).
    pub index: u32,
    /// errno, or the raw wait status for AgentExited.
    pub value: u32,
}

pub const REPORT_SIZE: usize = 16;

impl Report {
    pub fn encode(&self) -> [u8; REPORT_SIZE] {
        let mut b = [0u8; REPORT_SIZE];
        b[0..4].copy_from_slice(&self.kind.to_ne_bytes());
        b[4..8].copy_from_slice(&self.stage.to_ne_bytes());
        b[8..12].copy_from_slice(&self.index.to_ne_bytes());
        b[12..16].copy_from_slice(&self.value.to_ne_bytes());
        b
    }

    pub fn decode(b: &[u8; REPORT_SIZE]) -> Report {
        let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Report {
            kind: word(0),
            stage: word(4),
            index: word(8),
            value: word(12),
        }
    }
}

/// Signals init forwards to the agent when they come from the supervisor.
const FORWARDED: [libc::c_int; 6] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

fn errno() -> u32 {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() as u32 }
}

fn report(fd: RawFd, kind: ReportKind, stage: u32, index: usize, value: u32) {
    let rec = Report {
        kind: kind as u32,
        stage,
        index: u32::try_from(index).unwrap_or(u32::MAX),
        value,
    }
    .encode();
    loop {
        // SAFETY: writes REPORT_SIZE bytes from a live stack array.
        let n = unsafe { libc::write(fd, rec.as_ptr().cast(), REPORT_SIZE) };
        if n >= 0 || errno() != libc::EINTR as u32 {
            return;
        }
    }
}

/// Reports a failed stage and exits 125 without running any destructor.
fn fail(fd: RawFd, stage: Stage, index: usize) -> ! {
    fail_errno(fd, stage, index, errno())
}

/// Like [`fail`], for errors whose errno was already captured.
fn fail_errno(fd: RawFd, stage: Stage, index: usize, errno: u32) -> ! {
    report(fd, ReportKind::SetupFailed, stage.code(), index, errno);
    exit(125)
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the process immediately; nothing else runs.
    unsafe { libc::_exit(code) }
}

fn write_file(path: &CStr, data: &CStr) -> bool {
    // SAFETY: `path` is NUL-terminated; the fd is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return false;
    }
    let bytes = data.to_bytes();
    // SAFETY: writes `bytes`, a live slice, to the fd we opened.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    // SAFETY: closes the fd we opened.
    unsafe { libc::close(fd) };
    n >= 0 && n.unsigned_abs() == bytes.len()
}

/// Entry point of init, pid 1 of the new pid namespace. Never returns.
pub fn run_init(spec: &ChildSpec<'_>) -> ! {
    let rfd = spec.report_fd;
    for &fd in spec.parent_fds {
        // SAFETY: these are the parent's ends of our pipes; closing our copy
        // is what lets the lifeline report the parent's death.
        unsafe { libc::close(fd) };
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    } != 0
    {
        fail(rfd, Stage::Lifeline, 0);
    }
    // The parent may have died before PDEATHSIG was armed: check the lifeline.
    let mut pfd = libc::pollfd {
        fd: spec.lifeline_fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polls one live pollfd with a zero timeout.
    if unsafe { libc::poll(&mut pfd, 1, 0) } != 0
        && pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0
    {
        exit(125);
    }

    if let (Some(uid_map), Some(gid_map)) = (spec.uid_map, spec.gid_map) {
        // A non-dumpable process (the supervisor is, once it may hold
        // secrets, and we are its copy) has root-owned /proc files, so an
        // unprivileged one cannot write its own maps. Be dumpable for the
        // three writes only; the agent cannot reach us either way (another
        // pid namespace, Landlock-scoped).
        // SAFETY: prctl with integer arguments only.
        let was_dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) } == 1;
        if !was_dumpable {
            // SAFETY: as above.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
        }
        if !write_file(c"/proc/self/setgroups", c"deny") {
            fail(rfd, Stage::Setgroups, 0);
        }
        if !write_file(c"/proc/self/uid_map", uid_map) {
            fail(rfd, Stage::UidMap, 0);
        }
        if !write_file(c"/proc/self/gid_map", gid_map) {
            fail(rfd, Stage::GidMap, 0);
        }
        if !was_dumpable {
            // SAFETY: prctl with integer arguments only.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        }
    }
    if spec.private_mounts {
        setup_mounts(spec);
    }
    if let Some(egress) = spec.egress {
        setup_egress(rfd, egress);
    }
    // memfds are created sealed non-executable in this pid namespace (the
    // sysctl is per pid namespace and can only be raised); asking for an
    // executable one (MFD_EXEC) is a seccomp violation. Landlock does not
    // govern exec from a memfd. Kernels before 6.3 lack the sysctl.
    let _ = write_file(c"/proc/sys/vm/memfd_noexec", c"1");

    // Block every signal: init takes them one at a time with sigwaitinfo.
    // SAFETY: sigset_t is plain data, filled by sigfillset.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `all` is a live sigset_t; the old mask is not needed.
    unsafe {
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }

    // The agent shares init's memory until it executes (vfork, as
    // posix_spawn does): no page tables to copy, no copy-on-write faults,
    // and init sleeps meanwhile so nothing else touches that memory.
    let stack_top = spec.agent_stack.as_ptr_range().end as usize & !0xf;
    // SAFETY: `agent_entry` runs on `spec.agent_stack`, a buffer that
    // outlives the child's use of it (init is suspended until the agent
    // executes or exits) and is used by nothing else; the argument points
    // at `spec`, valid in the shared memory for the same reason. Without
    // CLONE_SIGHAND or CLONE_THREAD, the agent's signal handlers, masks,
    // credentials, Landlock domain and seccomp filters are its own.
    let agent = unsafe {
        libc::clone(
            agent_entry,
            stack_top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (spec as *const ChildSpec<'_>).cast_mut().cast(),
        )
    };
    if agent < 0 {
        fail(rfd, Stage::Fork, 0);
    }
    // The agent has executed (vfork): init keeps only the report pipe and
    // the lifeline. Everything else it inherited from the supervisor (other
    // calls' pipes and sockets, the audit log...) is closed, so init never
    // holds another call's pipe open.
    close_all_but(rfd, spec.lifeline_fd);
    init_loop(rfd, agent, &all)
}

/// Closes every descriptor from 3 up except `a` and `b`.
fn close_all_but(a: RawFd, b: RawFd) {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let mut from = 3;
    for keep in [lo, hi] {
        if keep >= from {
            if keep > from {
                // SAFETY: close_range on a range of descriptor numbers.
                unsafe {
                    libc::syscall(libc::SYS_close_range, from as u32, (keep - 1) as u32, 0u32)
                };
            }
            from = keep + 1;
        }
    }
    // SAFETY: as above, up to the highest possible descriptor.
    unsafe { libc::syscall(libc::SYS_close_range, from as u32, u32::MAX, 0u32) };
}

/// Waits for signals: forwards stop signals to the agent, reaps every
/// orphan, and exits with the agent's status once it is gone.
fn init_loop(rfd: RawFd, agent: libc::pid_t, all: &libc::sigset_t) -> ! {
    loop {
        // SAFETY: siginfo_t is plain data, written by sigwaitinfo.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `all` is an initialised set; `info` is writable.
        let sig = unsafe { libc::sigwaitinfo(all, &mut info) };
        if sig < 0 {
            continue;
        }
        if sig == libc::SIGCHLD {
            loop {
                let mut status = 0;
                // SAFETY: reaps any child without blocking; writes `status`.
                let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                if pid <= 0 {
                    break;
                }
                if pid == agent {
                    report(rfd, ReportKind::AgentExited, 0, 0, status as u32);
                    let code = if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        128 + libc::WTERMSIG(status)
                    };
                    exit(code);
                }
            }
        } else if FORWARDED.contains(&sig) && info.si_code != libc::SI_KERNEL {
            // A signal the terminal sent to the whole foreground group already
            // reached the agent (SI_KERNEL); forward only those sent to us.
            // SAFETY: kill with a pid and signal number.
            unsafe { libc::kill(agent, sig) };
        }
    }
}

/// Brings up loopback in the new network namespace, listens on
/// 127.0.0.1:`port` and sends the listener to the supervisor, which serves
/// the proxy on it from outside. Only stack memory and syscalls.
#[allow(clippy::cast_possible_truncation)] // AF_INET (2) and a 16-byte size
fn setup_egress(rfd: RawFd, egress: EgressSpec) {
    // SAFETY: creates a socket; integer arguments only.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        fail(rfd, Stage::LoopbackUp, 0);
    }
    // struct ifreq: the name in the first 16 bytes, then ifr_flags (short).
    let mut ifr = [0u8; 40];
    ifr[..3].copy_from_slice(b"lo\0");
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags within the
    // 40-byte ifreq buffer.
    if unsafe { libc::ioctl(s, libc::SIOCGIFFLAGS, ifr.as_mut_ptr()) } != 0 {
        fail(rfd, Stage::LoopbackUp, 0);
    }
    const IFF_UP: i16 = 0x1; // <linux/if.h>
    let flags = i16::from_ne_bytes([ifr[16], ifr[17]]) | IFF_UP;
    ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: as above; SIOCSIFFLAGS only reads the buffer.
    if unsafe { libc::ioctl(s, libc::SIOCSIFFLAGS, ifr.as_ptr()) } != 0 {
        fail(rfd, Stage::LoopbackUp, 1);
    }
    // SAFETY: closes the socket made above.
    unsafe { libc::close(s) };

    // SAFETY: creates a socket; integer arguments only.
    let l = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if l < 0 {
        fail(rfd, Stage::EgressListen, 0);
    }
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: egress.port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `addr` is a live sockaddr_in of the size passed.
    let bound = unsafe {
        libc::bind(
            l,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    // SAFETY: listen on the socket made above.
    if bound != 0 || unsafe { libc::listen(l, libc::SOMAXCONN) } != 0 {
        fail(rfd, Stage::EgressListen, 1);
    }
    if let Err(e) = super::fd::send_fd(egress.sock, l) {
        fail_errno(rfd, Stage::SendEgress, 0, e.0 as u32);
    }
    // SAFETY: our copies; the supervisor holds the listener now.
    unsafe {
        libc::close(l);
        libc::close(egress.sock);
    }
}

fn setup_mounts(spec: &ChildSpec<'_>) {
    let rfd = spec.report_fd;
    // SAFETY: (this and every mount call below) every pointer is a
    // NUL-terminated C string from the spec or a literal, or null where the
    // kernel allows it; mount copies them and keeps none.
    if unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    } != 0
    {
        fail(rfd, Stage::PrivateMounts, 0);
    }
    if let Some(src) = &spec.mask_source {
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        let data = c"size=4k,nr_inodes=8,mode=0700";
        // SAFETY: see above.
        if unsafe {
            libc::mount(
                c"cordon-mask".as_ptr(),
                src.mountpoint.as_ptr(),
                c"tmpfs".as_ptr(),
                flags,
                data.as_ptr().cast(),
            )
        } != 0
        {
            fail(rfd, Stage::MaskTmpfs, 0);
        }
        // Mode 000 and no capabilities in the agent: nobody can open them.
        // SAFETY: NUL-terminated paths; the fd is closed right away.
        let ok = unsafe {
            let fd = libc::open(
                src.file.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                0,
            );
            fd >= 0 && libc::close(fd) == 0 && libc::mkdir(src.directory.as_ptr(), 0) == 0
        };
        if !ok {
            fail(rfd, Stage::MaskFiles, 0);
        }
        // Read-only superblock: every bind of it is read-only, and chmod fails.
        // SAFETY: see above.
        if unsafe {
            libc::mount(
                std::ptr::null(),
                src.mountpoint.as_ptr(),
                std::ptr::null(),
                libc::MS_REMOUNT | libc::MS_RDONLY | flags,
                data.as_ptr().cast(),
            )
        } != 0
        {
            fail(rfd, Stage::MaskRemount, 0);
        }
        for (i, m) in spec.masks.iter().enumerate() {
            let (source, flags) = match m.kind {
                MaskKind::File => (src.file, libc::MS_BIND),
                MaskKind::Directory => (src.directory, libc::MS_BIND),
                MaskKind::Pin => (m.target.as_c_str(), libc::MS_BIND | libc::MS_REC),
            };
            // SAFETY: see above.
            if unsafe {
                libc::mount(
                    source.as_ptr(),
                    m.target.as_ptr(),
                    std::ptr::null(),
                    flags,
                    std::ptr::null(),
                )
            } != 0
            {
                fail(rfd, Stage::MaskBind, i);
            }
        }
    }
    if spec.mount_proc {
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        // SAFETY: see above.
        if unsafe {
            libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                flags,
                std::ptr::null(),
            )
        } != 0
        {
            fail(rfd, Stage::MountProc, 0);
        }
    }
}

extern "C" fn agent_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `&ChildSpec` run_init passed to clone; init keeps
    // it alive and untouched while this vfork child runs.
    let spec = unsafe { &*(arg as *const ChildSpec<'_>) };
    run_agent(spec)
}

/// The agent: confine this process, then execute the command. Never returns.
fn run_agent(spec: &ChildSpec<'_>) -> ! {
    let rfd = spec.report_fd;
    // SAFETY: lifeline is init's business; closing our copy.
    unsafe { libc::close(spec.lifeline_fd) };
    reset_signals();

    for (i, &(resource, value)) in spec.rlimits.iter().enumerate() {
        let lim = libc::rlimit64 {
            rlim_cur: value,
            rlim_max: value,
        };
        // SAFETY: `lim` is a live rlimit64; the old value is not wanted.
        if unsafe {
            libc::prlimit64(
                0,
                resource as libc::__rlimit_resource_t,
                &lim,
                std::ptr::null_mut(),
            )
        } != 0
        {
            fail(rfd, Stage::Rlimit, i);
        }
    }
    drop_capabilities(rfd);
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        fail(rfd, Stage::NoNewPrivs, 0);
    }
    if let Some(ll) = &spec.landlock {
        apply_landlock(rfd, ll);
    }
    if !spec.seccomp.is_empty() {
        let listener = match seccomp::install_with_listener(spec.seccomp) {
            Ok(fd) => fd,
            Err(e) => fail_errno(rfd, Stage::Seccomp, 0, e.0 as u32),
        };
        if let Err(e) = super::fd::send_fd(spec.listener_sock, listener) {
            fail_errno(rfd, Stage::SendListener, 0, e.0 as u32);
        }
        // SAFETY: the supervisor holds its own copy now; close ours.
        unsafe { libc::close(listener) };
    }
    // SAFETY: closing our end of the listener socketpair.
    unsafe { libc::close(spec.listener_sock) };
    // Enter the directory by path, inside this mount namespace, so the
    // deny masks apply to lookups relative to it (a descriptor opened
    // outside would see under them). With a descriptor given, it must be
    // the very same directory: a path swapped since the check fails here.
    // SAFETY: cwd is NUL-terminated.
    if unsafe { libc::chdir(spec.cwd.as_ptr()) } != 0 {
        fail(rfd, Stage::Chdir, 0);
    }
    if let Some(fd) = spec.cwd_fd {
        // SAFETY: stat is plain data, written by stat/fstat below.
        let (mut here, mut want): (libc::stat, libc::stat) =
            unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        // SAFETY: both structs are writable; "." and `fd` are valid names.
        let ok =
            unsafe { libc::stat(c".".as_ptr(), &mut here) == 0 && libc::fstat(fd, &mut want) == 0 };
        if !ok || here.st_dev != want.st_dev || here.st_ino != want.st_ino {
            fail_errno(rfd, Stage::Chdir, 0, libc::ESTALE as u32);
        }
    }
    if let Some(fds) = spec.stdio {
        for (target, &fd) in (0..).zip(fds.iter()) {
            // SAFETY: dup2 onto 0..=2; `fd` is open and above 2, so the
            // new descriptor is a copy without close-on-exec.
            if unsafe { libc::dup2(fd, target) } < 0 {
                fail(rfd, Stage::Stdio, target as usize);
            }
        }
    }
    // Nothing but 0, 1 and 2 survives the exec; the report pipe stays open
    // until then so an exec failure can still be reported.
    // SAFETY: only sets the close-on-exec flag on descriptors.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    for &fd in spec.keep_fds {
        // SAFETY: clears close-on-exec on a descriptor the parent handed over.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } != 0 {
            fail(rfd, Stage::KeepFds, 0);
        }
    }
    // SAFETY: exe is NUL-terminated, argv and envp are NULL-terminated arrays
    // of NUL-terminated strings that live in this process's memory.
    unsafe { libc::execve(spec.exe.as_ptr(), spec.argv.as_ptr(), spec.envp.as_ptr()) };
    let e = errno();
    report(rfd, ReportKind::ExecFailed, 0, 0, e);
    exit(if e == libc::ENOENT as u32 { 127 } else { 126 })
}

/// Gives the agent the signal state a plain exec from cordon's caller
/// would: execve resets handled signals itself, and cordon installs no
/// handlers; it only ignores SIGPIPE (the Rust runtime does) and SIGXFSZ
/// (`super::ignore_file_size_signal`), and blocks signals (init blocks
/// all). Init already set SIGCHLD to the default.
fn reset_signals() {
    // SAFETY: setting two dispositions to SIG_DFL.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::signal(libc::SIGXFSZ, libc::SIG_DFL);
    }
    // SAFETY: sigset_t is plain data, emptied by sigemptyset.
    let mut none: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `none` is a live sigset_t.
    unsafe {
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// Drops every capability from every set, and locks root's special
/// treatment off so an exec as uid 0 cannot regain them.
fn drop_capabilities(rfd: RawFd) {
    // NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE and their locks, plus KEEP_CAPS_LOCKED.
    const SECUREBITS: libc::c_ulong = 0b1110_1111;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_SECUREBITS, SECUREBITS, 0, 0, 0) } != 0 {
        fail(rfd, Stage::Securebits, 0);
    }
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            if errno() == libc::EINVAL as u32 {
                break; // past the last capability this kernel knows
            }
            fail(rfd, Stage::CapBound, cap);
        }
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    } != 0
    {
        fail(rfd, Stage::CapAmbient, 0);
    }
    let mut header = super::CapHeader {
        version: super::CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [super::CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: version 3 capset reads exactly two data structs from `data`.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } != 0 {
        fail(rfd, Stage::Capset, 0);
    }
}

fn apply_landlock(rfd: RawFd, ll: &LandlockSpec<'_>) {
    for (i, rule) in ll.paths.iter().enumerate() {
        // SAFETY: path is NUL-terminated; O_PATH opens without reading.
        let fd = unsafe { libc::open(rule.path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            if rule.optional && errno() == libc::ENOENT as u32 {
                continue;
            }
            fail(rfd, Stage::LandlockOpen, i);
        }
        // SAFETY: stat is plain data, written by fstat on our fd.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is writable; fd is open.
        let is_dir = unsafe { libc::fstat(fd, &mut st) } == 0
            && (st.st_mode & libc::S_IFMT) == libc::S_IFDIR;
        let access = if is_dir {
            rule.access
        } else {
            rule.access & ll.file_access_mask
        };
        let res = landlock::add_path_rule(ll.ruleset, fd, access);
        // SAFETY: closes the fd we opened.
        unsafe { libc::close(fd) };
        if let Err(e) = res {
            fail_errno(rfd, Stage::LandlockRule, i, e.0 as u32);
        }
    }
    if let Err(e) = landlock::restrict_self(ll.ruleset) {
        fail_errno(rfd, Stage::LandlockRestrict, 0, e.0 as u32);
    }
    // SAFETY: the ruleset is enforced; the fd is no longer needed.
    unsafe { libc::close(ll.ruleset) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_round_trip_through_the_report_pipe() {
        assert_eq!(Stage::from_u32(0), None);
        for code in 1..=Stage::KeepFds.code() {
            let stage = Stage::from_u32(code).expect("every code up to the last names a stage");
            assert_eq!(stage.code(), code);
        }
        assert_eq!(Stage::from_u32(Stage::KeepFds.code() + 1), None);
        let r = Report {
            kind: 1,
            stage: Stage::Chdir.code(),
            index: 7,
            value: 13,
        };
        assert_eq!(Report::decode(&r.encode()), r);
    }
}
