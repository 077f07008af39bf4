//! seccomp: the default deny-list stops each escape syscall on the real
//! kernel, the supervisor names it, and the whole tree dies with exit 86.

mod common;
use common::*;

fn killed(probe: &str, syscall: &str) {
    let c = Case::new();
    c.run(&Profile::base(), &["syscall", probe])
        .killed_for(syscall);
}

#[test]
fn ptrace_is_stopped() {
    killed("ptrace", "`ptrace`");
}

#[test]
fn creating_a_user_namespace_is_stopped() {
    killed("unshare-user", "`unshare`");
}

#[test]
fn mount_is_stopped() {
    killed("mount", "`mount`");
}

#[test]
fn io_uring_is_stopped() {
    killed("io_uring_setup", "`io_uring_setup`");
}

#[test]
fn bpf_is_stopped() {
    killed("bpf", "`bpf`");
}

#[test]
fn tiocsti_is_stopped() {
    killed("tiocsti", "`ioctl`");
}

#[test]
fn keyctl_is_stopped() {
    killed("keyctl", "`keyctl`");
}

#[test]
fn disabling_aslr_is_stopped() {
    killed("personality-aslr-off", "`personality`");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn the_i386_abi_is_stopped() {
    killed("int80", "foreign ABI");
}

#[test]
fn harmless_calls_near_the_deny_list_still_work() {
    let c = Case::new();
    c.run(&Profile::base(), &["syscall", "unshare-files"]).ok();
    c.run(&Profile::base(), &["syscall", "getpid"]).ok();
    // clone3 answers ENOSYS so libc falls back to clone, whose flags seccomp sees.
    c.run(&Profile::base(), &["syscall", "clone3"])
        .failed_with(&["ENOSYS"]);
}

#[test]
fn a_profile_deny_entry_is_enforced() {
    let c = Case::new();
    let mut p = Profile::base();
    p.syscalls_deny.push("getpid".into());
    c.run(&p, &["syscall", "getpid"]).killed_for("`getpid`");
}

#[test]
fn on_violation_deny_fails_the_call_with_eperm_and_keeps_running() {
    let c = Case::new();
    let mut p = Profile::base();
    p.on_violation = "deny";
    let r = c.run(&p, &["syscall", "ptrace"]);
    r.failed_with(&["EPERM"]);
    assert!(
        r.stderr.contains("cordon: denied:") && r.stderr.contains("`ptrace`"),
        "{r:#?}"
    );
}

#[test]
fn a_violation_deep_in_the_tree_kills_the_whole_tree() {
    let c = Case::new();
    let r = c.run(&Profile::base(), &["child-syscall", "ptrace"]);
    r.killed_for("`ptrace`");
    // The agent itself never got to report its child's status.
    assert!(!r.stdout.contains("child-status"), "{r:#?}");
}

#[test]
fn executing_a_memfd_is_stopped() {
    let c = Case::new();
    let mut p = Profile::base();
    p.read.push("/usr/bin/true".into());
    // Asking for an executable memfd is a violation...
    c.run(&p, &["memfd-exec", "exec-flag"])
        .killed_for("`memfd_create`");
    // ...and executing a (sealed, non-executable) memfd by descriptor is an
    // exec outside the profile.
    c.run(&p, &["memfd-exec"])
        .killed_for("unnamed or deleted file");
}
