//! The seccomp program, checked instruction by instruction by a small
//! BPF interpreter.

use super::bpf::*;
use super::*;

#[test]
fn the_learn_filter_observes_opens_execs_and_sockets_only() {
    let p = build_learn_program();
    for name in [
        "openat",
        "execve",
        "connect",
        "bind",
        "renameat2",
        "unlinkat",
    ] {
        assert_eq!(call(&p, name, [0; 6]), SECCOMP_RET_USER_NOTIF, "{name}");
    }
    for name in ["read", "write", "ptrace", "mount", "getpid"] {
        assert_eq!(call(&p, name, [0; 6]), RET_ALLOW, "{name}");
    }
}

/// A classic-BPF interpreter for the instructions we emit.
fn run(prog: &[SockFilter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = Vec::new();
    data.extend_from_slice(&nr.to_le_bytes());
    data.extend_from_slice(&arch.to_le_bytes());
    data.extend_from_slice(&0u64.to_le_bytes());
    for a in args {
        data.extend_from_slice(&a.to_le_bytes());
    }
    let mut acc = 0u32;
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            BPF_LD_W_ABS => {
                let k = i.k as usize;
                acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
            }
            BPF_RET_K => return i.k,
            BPF_ALU_AND_K => acc &= i.k,
            BPF_JEQ_K | BPF_JGE_K | BPF_JSET_K => {
                let t = match i.code {
                    BPF_JEQ_K => acc == i.k,
                    BPF_JGE_K => acc >= i.k,
                    _ => acc & i.k != 0,
                };
                pc += usize::from(if t { i.jt } else { i.jf });
            }
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

fn call(prog: &[SockFilter], name: &str, args: [u64; 6]) -> u32 {
    run(prog, AUDIT_ARCH, nr(name).unwrap(), args)
}

#[test]
fn mediated_calls_go_to_the_supervisor_unaddressed_sends_do_not() {
    let on = SocketPolicy {
        mediate: true,
        ..SocketPolicy::default()
    };
    let p = build_program(&[], ExecWatch::Off, on).unwrap();
    for name in ["connect", "sendmsg", "sendmmsg"] {
        assert_eq!(
            call(&p, name, [3, 0x1000, 16, 0, 0, 0]),
            SECCOMP_RET_USER_NOTIF,
            "{name}"
        );
    }
    // sendto(fd, buf, len, flags, dest, destlen)
    assert_eq!(call(&p, "sendto", [3, 0x1000, 5, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        call(&p, "sendto", [3, 0x1000, 5, 0, 0x7ffd_0000, 16]),
        SECCOMP_RET_USER_NOTIF
    );
    // A pointer whose low half is zero is still a pointer.
    assert_eq!(
        call(&p, "sendto", [3, 0x1000, 5, 0, 0x7f_0000_0000, 16]),
        SECCOMP_RET_USER_NOTIF
    );
    for name in ["write", "read", "recvfrom", "getpid"] {
        assert_eq!(
            call(&p, name, [3, 0x1000, 5, 0, 0x7ffd_0000, 16]),
            RET_ALLOW,
            "{name}"
        );
    }
    let off = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
    assert_eq!(call(&off, "connect", [3, 0x1000, 16, 0, 0, 0]), RET_ALLOW);
}

#[test]
fn default_deny_list_is_enforced() {
    let p = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
    for name in DEFAULT_DENY {
        if let Some(n) = nr(name) {
            assert_eq!(run(&p, AUDIT_ARCH, n, [0; 6]), RET_VIOLATION, "{name}");
        }
    }
    for name in [
        "read",
        "write",
        "openat",
        "execve",
        "mmap",
        "futex",
        "landlock_restrict_self",
    ] {
        assert_eq!(call(&p, name, [0; 6]), RET_ALLOW, "{name}");
    }
}

#[test]
fn namespaces_are_refused_through_clone_and_unshare() {
    let p = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
    let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
    assert_eq!(call(&p, "clone", [thread, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        call(&p, "clone", [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        call(&p, "clone", [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]),
        RET_VIOLATION
    );
    assert_eq!(
        call(&p, "unshare", [libc::CLONE_NEWNET as u64, 0, 0, 0, 0, 0]),
        RET_VIOLATION
    );
    assert_eq!(call(&p, "unshare", [0x80, 0, 0, 0, 0, 0]), RET_VIOLATION);
    assert_eq!(
        call(&p, "unshare", [libc::CLONE_FILES as u64, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(call(&p, "clone3", [0; 6]), RET_ERRNO | libc::ENOSYS as u32);
}

#[test]
fn tty_injection_is_refused_whatever_the_high_bits() {
    let p = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
    assert_eq!(
        call(&p, "ioctl", [0, u64::from(TIOCSTI), 0, 0, 0, 0]),
        RET_VIOLATION
    );
    assert_eq!(
        call(
            &p,
            "ioctl",
            [0, 0xdead_0000_0000_0000 | u64::from(TIOCSTI), 0, 0, 0, 0]
        ),
        RET_VIOLATION
    );
    assert_eq!(
        call(&p, "ioctl", [0, u64::from(TIOCLINUX), 0, 0, 0, 0]),
        RET_VIOLATION
    );
    assert_eq!(call(&p, "ioctl", [0, 0x5401, 0, 0, 0, 0]), RET_ALLOW); // TCGETS
}

#[test]
fn personality_allows_only_harmless_values() {
    let p = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
    assert_eq!(
        call(&p, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(call(&p, "personality", [0, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        call(&p, "personality", [0x0040000, 0, 0, 0, 0, 0]),
        RET_VIOLATION
    );
    assert_eq!(
        call(&p, "personality", [0x0400000, 0, 0, 0, 0, 0]),
        RET_VIOLATION
    );
}

#[test]
fn execs_are_reported_only_when_watched() {
    let off = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
    let on = build_program(
        &[],
        ExecWatch::Notify { launch_path: None },
        SocketPolicy::default(),
    )
    .unwrap();
    for name in ["execve", "execveat"] {
        assert_eq!(call(&off, name, [0; 6]), RET_ALLOW);
        assert_eq!(call(&on, name, [0; 6]), SECCOMP_RET_USER_NOTIF);
        assert!(is_exec(nr(name).unwrap() as i32));
    }
    assert!(!is_exec(nr("ptrace").unwrap() as i32));
    // The launch exec, by its path pointer, goes through unreported;
    // the same call with any other pointer is reported.
    let addr = 0x5555_dead_beef_u64;
    let launch = build_program(
        &[],
        ExecWatch::Notify {
            launch_path: Some(addr),
        },
        SocketPolicy::default(),
    )
    .unwrap();
    assert_eq!(call(&launch, "execve", [addr, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        call(&launch, "execve", [addr + 1, 0, 0, 0, 0, 0]),
        SECCOMP_RET_USER_NOTIF
    );
    assert_eq!(
        call(&launch, "execve", [addr & 0xffff_ffff, 0, 0, 0, 0, 0]),
        SECCOMP_RET_USER_NOTIF
    );
    assert_eq!(
        call(&launch, "execveat", [0, addr, 0, 0, 0, 0]),
        SECCOMP_RET_USER_NOTIF
    );
    assert_eq!(
        call(&launch, "ptrace", [addr, 0, 0, 0, 0, 0]),
        RET_VIOLATION
    );
}

#[test]
fn executable_memfds_are_violations() {
    let p = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
    assert_eq!(
        call(&p, "memfd_create", [0, 0x10, 0, 0, 0, 0]),
        RET_VIOLATION
    );
    assert_eq!(
        call(&p, "memfd_create", [0, 0x1 | 0x8, 0, 0, 0, 0]),
        RET_ALLOW
    );
}

#[test]
fn sockets_are_limited_to_what_the_profile_grants() {
    let closed = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
    let tcp = build_program(
        &[],
        ExecWatch::Off,
        SocketPolicy {
            tcp: true,
            udp: true,
            mediate: false,
        },
    )
    .unwrap();
    let refuse = RET_ERRNO | libc::EACCES as u32;
    let sock = |p: &[SockFilter], d: u32, t: u32, proto: u32| {
        call(
            p,
            "socket",
            [u64::from(d), u64::from(t), u64::from(proto), 0, 0, 0],
        )
    };
    let nonblock_cloexec = (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) as u32;
    assert_eq!(sock(&closed, AF_UNIX, SOCK_STREAM, 0), RET_ALLOW);
    assert_eq!(
        sock(&closed, AF_UNIX, SOCK_DGRAM | nonblock_cloexec, 0),
        RET_ALLOW
    );
    assert_eq!(sock(&closed, AF_INET, SOCK_STREAM, 0), refuse);
    assert_eq!(sock(&closed, AF_INET6, SOCK_DGRAM, 0), refuse);
    assert_eq!(
        sock(&tcp, AF_INET, SOCK_STREAM | nonblock_cloexec, 6),
        RET_ALLOW
    );
    assert_eq!(sock(&tcp, AF_INET6, SOCK_DGRAM, 17), RET_ALLOW);
    assert_eq!(sock(&tcp, AF_INET, 3 /* SOCK_RAW */, 1), refuse);
    assert_eq!(sock(&tcp, AF_INET, SOCK_STREAM, 0), RET_ALLOW);
    assert_eq!(sock(&tcp, AF_INET6, SOCK_DGRAM, 0), RET_ALLOW);
    // Other protocols on stream and datagram types escape Landlock's
    // TCP rules: SCTP (132), MPTCP (262), UDP-Lite (136).
    assert_eq!(sock(&tcp, AF_INET, SOCK_STREAM, 132), refuse);
    assert_eq!(sock(&tcp, AF_INET6, SOCK_STREAM, 262), refuse);
    assert_eq!(sock(&tcp, AF_INET, SOCK_DGRAM, 136), refuse);
    assert_eq!(sock(&tcp, AF_INET, 5 /* SOCK_SEQPACKET */, 132), refuse);
    assert_eq!(sock(&closed, AF_NETLINK, 3, NETLINK_ROUTE), RET_ALLOW);
    assert_eq!(sock(&closed, AF_NETLINK, 3, 9 /* NETLINK_AUDIT */), refuse);
    for family in [
        17, /* AF_PACKET */
        38, /* AF_ALG */
        40, /* AF_VSOCK */
        44, /* AF_XDP */
    ] {
        assert_eq!(
            sock(&tcp, family, SOCK_DGRAM, 0),
            RET_VIOLATION,
            "family {family}"
        );
    }
    let pair = |p: &[SockFilter], d: u32| call(p, "socketpair", [u64::from(d), 1, 0, 0, 0, 0]);
    assert_eq!(pair(&closed, AF_UNIX), RET_ALLOW);
    assert_eq!(pair(&tcp, AF_INET), RET_ERRNO | libc::EAFNOSUPPORT as u32);
}

#[test]
fn foreign_abis_are_violations() {
    let p = build_program(&[], ExecWatch::Off, SocketPolicy::default()).unwrap();
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    assert_eq!(run(&p, AUDIT_ARCH_I386, 20, [0; 6]), RET_VIOLATION);
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        run(&p, AUDIT_ARCH, X32_SYSCALL_BIT | 39, [0; 6]),
        RET_VIOLATION
    );
}

#[test]
fn profile_denies_are_added_and_checked() {
    let extra = vec![
        ("getpid".to_string(), nr("getpid").unwrap()),
        ("ioctl".to_string(), nr("ioctl").unwrap()),
    ];
    let p = build_program(&extra, ExecWatch::Off, SocketPolicy::default()).unwrap();
    assert_eq!(call(&p, "getpid", [0; 6]), RET_VIOLATION);
    // Denying ioctl outright beats the argument check.
    assert_eq!(call(&p, "ioctl", [0, 0x5401, 0, 0, 0, 0]), RET_VIOLATION);
    let bad = vec![("execve".to_string(), nr("execve").unwrap())];
    assert_eq!(
        build_program(&bad, ExecWatch::Off, SocketPolicy::default()),
        Err(SeccompError::NeededForStart("execve".into()))
    );
}
