#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is a failed test
//! Honest enforcement: when the kernel (here: a lowered Landlock ABI, via
//! CORDON_LANDLOCK_ABI) cannot give what the profile needs, cordon refuses
//! to start, or with best_effort runs loudly and still enforces the rest.

mod common;
use common::*;

fn run_with_abi(c: &Case, p: &Profile, abi: &str, args: &[&str]) -> Run {
    Run::from(
        c.command(p, args)
            .env("CORDON_LANDLOCK_ABI", abi)
            .output()
            .unwrap(),
    )
}

#[test]
fn the_real_kernel_has_every_feature_cordon_needs() {
    // On CI this machine must have Landlock ABI 6+; elsewhere a refusal is
    // reported as what it is.
    let c = Case::new();
    let r = c.run(&Profile::base(), &["exit", "0"]);
    if r.code == Some(125) && !in_ci() {
        eprintln!("kernel lacks features, as cordon says: {}", r.stderr);
        return;
    }
    assert_eq!(r.code, Some(0), "{r:#?}");
}

#[test]
fn a_kernel_without_scoping_refuses_to_start() {
    let c = Case::new();
    let marker = c.workspace.join("ran");
    let mut p = Profile::base();
    p.write.push("{workspace}".into());
    let r = run_with_abi(&c, &p, "5", &["write", &path_str(&marker)]);
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert!(
        r.stderr.contains("signal scoping (Landlock ABI 6)"),
        "{r:#?}"
    );
    assert!(r.stderr.contains("best_effort"), "{r:#?}");
    assert!(!marker.exists(), "the agent ran although cordon refused");
}

#[test]
fn a_kernel_without_tcp_rules_refuses_to_start() {
    let c = Case::new();
    let r = run_with_abi(&c, &Profile::base(), "3", &["exit", "0"]);
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert!(
        r.stderr.contains("TCP bind/connect rules (Landlock ABI 4)"),
        "{r:#?}"
    );
}

#[test]
fn best_effort_warns_loudly_and_still_enforces_what_it_can() {
    let c = Case::new();
    std::fs::write(c.outside.join("secret"), "s").unwrap();
    let mut p = Profile::base();
    p.best_effort = true;
    let r = run_with_abi(&c, &p, "3", &["read", &path_str(&c.outside.join("secret"))]);
    // Filesystem rules exist at ABI 3: the read is still denied.
    r.failed_with(&["EACCES"]);
    assert!(r.stderr.contains("WARNING"), "{r:#?}");
    assert!(
        r.stderr
            .contains("TCP bind/connect rules (Landlock ABI 4) is NOT enforced"),
        "{r:#?}"
    );
    assert!(
        r.stderr
            .contains("signal scoping (Landlock ABI 6) is NOT enforced"),
        "{r:#?}"
    );
}

#[test]
fn best_effort_without_landlock_says_the_filesystem_is_open_and_keeps_seccomp() {
    let c = Case::new();
    let mut p = Profile::base();
    p.best_effort = true;
    let r = run_with_abi(&c, &p, "0", &["syscall", "ptrace"]);
    assert!(
        r.stderr
            .contains("filesystem rules (Landlock ABI 1) is NOT enforced"),
        "{r:#?}"
    );
    r.killed_for("`ptrace`");
}
