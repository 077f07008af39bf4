//! Every entry of the default seccomp deny-list, the syscalls denied by
//! their arguments, and foreign ABIs.

use super::*;

/// (name, number) of every syscall on cordon's default deny-list.
pub(super) const DENY_LIST: &[(&str, i64)] = &[
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
    ("process_madvise", libc::SYS_process_madvise),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("setns", libc::SYS_setns),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("acct", libc::SYS_acct),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("reboot", libc::SYS_reboot),
    ("syslog", libc::SYS_syslog),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("quotactl", libc::SYS_quotactl),
    ("quotactl_fd", 443),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("uselib", libc::SYS_uselib),
    ("vhangup", libc::SYS_vhangup),
    ("iopl", libc::SYS_iopl),
    ("ioperm", libc::SYS_ioperm),
    ("nfsservctl", libc::SYS_nfsservctl),
];

pub(super) fn cases() -> Vec<Escape> {
    let mut v: Vec<Escape> = DENY_LIST
        .iter()
        .map(|&(name, nr)| {
            case(
                &format!("sys.{name}"),
                &format!("call {name} (default deny-list)"),
                move |c| {
                    run(c, &ws(false), &["nr", &nr.to_string()]).killed_for(&format!("`{name}`"));
                },
            )
        })
        .collect();
    // Syscalls denied by their arguments: (name, attempt, syscall, args, reported as).
    let by_args: &[(&str, &str, i64, &[u64], &str)] = &[
        (
            "sys.clone-newuser",
            "clone into a new user namespace",
            libc::SYS_clone,
            &[(libc::CLONE_NEWUSER | libc::SIGCHLD) as u64],
            "`clone`",
        ),
        (
            "sys.clone-newns",
            "clone into a new mount namespace",
            libc::SYS_clone,
            &[(libc::CLONE_NEWNS | libc::SIGCHLD) as u64],
            "`clone`",
        ),
        (
            "sys.clone-newnet",
            "clone into a new network namespace",
            libc::SYS_clone,
            &[(libc::CLONE_NEWNET | libc::SIGCHLD) as u64],
            "`clone`",
        ),
        (
            "sys.unshare-newuser",
            "unshare a user namespace",
            libc::SYS_unshare,
            &[libc::CLONE_NEWUSER as u64],
            "`unshare`",
        ),
        (
            "sys.unshare-newns",
            "unshare a mount namespace",
            libc::SYS_unshare,
            &[libc::CLONE_NEWNS as u64],
            "`unshare`",
        ),
        (
            "sys.unshare-newnet",
            "unshare a network namespace",
            libc::SYS_unshare,
            &[libc::CLONE_NEWNET as u64],
            "`unshare`",
        ),
        (
            "sys.unshare-newpid",
            "unshare a pid namespace",
            libc::SYS_unshare,
            &[libc::CLONE_NEWPID as u64],
            "`unshare`",
        ),
        (
            "sys.unshare-newtime",
            "unshare a time namespace",
            libc::SYS_unshare,
            &[0x80],
            "`unshare`",
        ),
        (
            "tty.tiocsti",
            "inject input into the terminal (ioctl TIOCSTI)",
            libc::SYS_ioctl,
            &[0, 0x5412],
            "`ioctl`",
        ),
        (
            "tty.tiocsti-high-bits",
            "TIOCSTI with junk in the high 32 bits",
            libc::SYS_ioctl,
            &[0, 0xdead_0000_0000_5412],
            "`ioctl`",
        ),
        (
            "tty.tioclinux",
            "console ioctl TIOCLINUX",
            libc::SYS_ioctl,
            &[0, 0x541c],
            "`ioctl`",
        ),
        (
            "sys.personality-no-aslr",
            "turn ASLR off (personality ADDR_NO_RANDOMIZE)",
            libc::SYS_personality,
            &[0x0040000],
            "`personality`",
        ),
        (
            "sys.personality-read-implies-exec",
            "personality READ_IMPLIES_EXEC",
            libc::SYS_personality,
            &[0x0400000],
            "`personality`",
        ),
        (
            "sys.abi-x32",
            "getpid through the x32 ABI",
            0x4000_0000 | libc::SYS_getpid,
            &[],
            "x32 syscall",
        ),
    ];
    for &(name, attempt, nr, args, reported) in by_args {
        let mut argv = vec!["nr".to_string(), nr.to_string()];
        argv.extend(args.iter().map(|a| format!("0x{a:x}")));
        v.push(case(name, attempt, move |c| {
            let a: Vec<&str> = argv.iter().map(String::as_str).collect();
            run(c, &ws(false), &a).killed_for(reported);
        }));
    }
    v.push(case(
        "sys.abi-i386",
        "getpid through int 0x80 (the i386 ABI)",
        |c| {
            run(c, &ws(false), &["syscall", "int80"]).killed_for("foreign ABI");
        },
    ));
    v
}
