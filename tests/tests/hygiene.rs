#![allow(clippy::undocumented_unsafe_blocks)] // tests call libc directly to act as an attacker would
//! Process hygiene: no capabilities, a clean environment, no inherited
//! descriptors, no_new_privs.

mod common;
use common::*;
use std::os::fd::AsRawFd;

#[test]
fn the_agent_holds_no_capability_even_when_cordon_is_root() {
    let c = Case::new();
    let r = c.run(&Profile::base(), &["caps"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(
        r.stdout.contains("eff=0 prm=0 inh=0 bounding=0 ambient=0"),
        "capabilities leaked (running as root: {}): {r:#?}",
        is_root()
    );
}

#[test]
fn proc_status_shows_no_caps_and_no_new_privs() {
    let c = Case::new();
    let mut p = Profile::base();
    p.read.push("/proc".into());
    let r = c.run(&p, &["read", "/proc/self/status"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(
        r.stderr.contains("CapEff:\t0000000000000000"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("CapBnd:\t0000000000000000"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("NoNewPrivs:\t1"), "{}", r.stderr);
    assert!(r.stderr.contains("Seccomp:\t2"), "{}", r.stderr);
}

#[test]
fn the_sandbox_proc_shows_only_the_sandbox() {
    let c = Case::new();
    let mut p = Profile::base();
    p.read.push("/proc".into());
    let outside = std::process::id();
    // Our own pid is not a process in the agent's /proc.
    c.run(&p, &["read", &format!("/proc/{outside}/cmdline")])
        .failed_with(&["ENOENT", "EACCES"]);
}

#[test]
fn cordons_environment_does_not_reach_the_agent() {
    let c = Case::new();
    let out = c
        .command(&Profile::base(), &["env"])
        .env("CORDON_TEST_CANARY", "canary-value-93f1")
        .env("AWS_SECRET_ACCESS_KEY", "also-a-canary")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(!stdout.contains("canary"), "{stdout}");
    let names: Vec<&str> = stdout.lines().filter_map(|l| l.split('=').next()).collect();
    for name in &names {
        assert!(
            [
                "PATH",
                "HOME",
                "TMPDIR",
                "LANG",
                "TERM",
                "CORDON_SESSION",
                "PWD"
            ]
            .contains(name),
            "unexpected variable {name} in the agent's environment: {stdout}"
        );
    }
    assert!(names.contains(&"HOME") && names.contains(&"PATH"));
}

#[test]
fn profile_environment_pass_and_set_are_applied() {
    let c = Case::new();
    let mut p = Profile::base();
    p.extra =
        "[environment]\npass = [\"CORDON_TEST_PASSED\"]\nset = { GREETING = \"hi {workspace}\" }\n"
            .into();
    let out = c
        .command(&p, &["env"])
        .env("CORDON_TEST_PASSED", "yes")
        .env("CORDON_TEST_NOT_PASSED", "no")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("CORDON_TEST_PASSED=yes"), "{stdout}");
    assert!(!stdout.contains("CORDON_TEST_NOT_PASSED"), "{stdout}");
    let ws = std::fs::canonicalize(&c.workspace).unwrap();
    assert!(
        stdout.contains(&format!("GREETING=hi {}", ws.display())),
        "{stdout}"
    );
}

#[test]
fn an_inherited_descriptor_does_not_reach_the_agent() {
    let c = Case::new();
    let canary = std::fs::File::open("/etc/hostname").unwrap();
    // dup() clears close-on-exec: cordon inherits this fd, as it would from
    // a careless caller.
    let fd = unsafe { libc::dup(canary.as_raw_fd()) };
    assert!(fd > 2);
    let out = c.command(&Profile::base(), &["fds"]).output().unwrap();
    unsafe { libc::close(fd) };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let fds: Vec<i32> = stdout.lines().filter_map(|l| l.parse().ok()).collect();
    assert!(
        fds.iter().all(|&f| f <= 2),
        "descriptors beyond stdio reached the agent: {fds:?}"
    );
}

#[test]
fn resource_limits_from_the_profile_apply() {
    let c = Case::new();
    let mut p = Profile::base();
    p.write.push("{workspace}".into());
    p.extra = "[limits]\nfsize = 4\n".into();
    // Writing 16 bytes past a 4-byte file-size limit fails (SIGXFSZ or EFBIG).
    let r = c.run(&p, &["write", &path_str(&c.workspace.join("big"))]);
    assert_ne!(r.code, Some(0), "{r:#?}");
    let len = std::fs::metadata(c.workspace.join("big"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(len <= 4, "wrote {len} bytes past the limit");
}
