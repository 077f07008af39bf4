//! `cordon doctor` end to end: the real binary on this machine's kernel.
//!
//! The machines here have everything cordon needs (Landlock ABI 7, seccomp
//! user notification, user/pid/mount namespaces), so doctor must exit 0 and
//! report the ABI the kernel itself reports. Off CI, a host that lacks a
//! feature makes these tests print why and pass; in CI (`CI=true`) that is
//! a failure, never a skip.

use std::process::{Command, Output};

/// The kernel's Landlock ABI: landlock_create_ruleset(NULL, 0, VERSION).
fn kernel_abi() -> Result<i64, std::io::Error> {
    // SAFETY: with a NULL attr, size 0 and LANDLOCK_CREATE_RULESET_VERSION
    // the kernel reads no memory and returns the ABI version.
    let ret = unsafe { libc::syscall(444, std::ptr::null::<u8>(), 0usize, 1u32) };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The host lacks what cordon needs: in CI that fails the test; elsewhere
/// it says why, and the caller returns (skips).
fn lacking(why_not: &str) {
    assert!(
        !in_ci(),
        "CI host lacks a feature cordon requires: {why_not}"
    );
    eprintln!("skipping: this host lacks a feature cordon requires: {why_not}");
}

fn doctor(extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cordon"));
    cmd.arg("doctor").env_remove("CORDON_LANDLOCK_ABI");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run cordon: {e}"))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn doctor_passes_and_reports_the_kernels_landlock_abi() {
    let abi = match kernel_abi() {
        Ok(abi) => abi,
        Err(e) => return lacking(&format!("no Landlock: {e}")),
    };
    let out = doctor(&[]);
    let text = stdout(&out);
    if out.status.code() != Some(0) {
        return lacking(&text);
    }
    assert_eq!(out.status.code(), Some(0), "{text}");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert!(
        text.starts_with(&format!("cordon doctor: {}\n", release.trim())),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok") && l.contains(&format!("Landlock ABI {abi}:"))),
        "kernel says ABI {abi}:\n{text}"
    );
    for check in [
        "seccomp user notification:",
        "pid namespace:",
        "mount namespace:",
        "fresh /proc:",
        "pidfd_open:",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("ok ") && l.contains(check)),
            "{check} not ok:\n{text}"
        );
    }
    // Every line after the header is a check, except the summary at the end.
    let lines: Vec<&str> = text.lines().collect();
    for l in &lines[1..lines.len() - 1] {
        assert!(
            l.starts_with("ok ") || l.starts_with("no ") || l.starts_with("warn "),
            "{l}"
        );
    }
    assert!(
        lines[lines.len() - 1].starts_with("profiles will run with full protection here"),
        "{text}"
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_lowered_abi_fails_and_names_what_is_lost() {
    if kernel_abi().map_or(true, |abi| abi < 4) {
        return lacking("Landlock ABI < 4");
    }
    let out = doctor(&[("CORDON_LANDLOCK_ABI", "3")]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("no ")
            && l.contains("TCP bind/connect rules")
            && l.contains("any host and port")),
        "{text}"
    );
    let summary = text.lines().last().unwrap_or_default();
    assert!(summary.starts_with("missing: "), "{summary}");
    assert!(summary.contains("TCP bind/connect rules"), "{summary}");
}

/// As root, doctor run by an unprivileged user goes through the user
/// namespace path; exercised when the `cordonci` user exists and can reach
/// the binary.
#[test]
fn doctor_as_an_unprivileged_user() {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // already covered by the first test
    }
    let Some((uid, gid)) = lookup_user("cordonci") else {
        eprintln!("skipping: no user cordonci");
        return;
    };
    let exe = env!("CARGO_BIN_EXE_cordon");
    let out = Command::new(exe)
        .arg("doctor")
        .env_remove("CORDON_LANDLOCK_ABI")
        .uid(uid)
        .gid(gid)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipping: cordonci cannot run {exe}: {e}");
            return;
        }
    };
    let text = stdout(&out);
    if out.status.code() == Some(126) || text.is_empty() {
        eprintln!("skipping: cordonci cannot run {exe}");
        return;
    }
    if out.status.code() != Some(0) {
        return lacking(&text);
    }
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("running unprivileged (uid {uid})")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok ") && l.contains("user namespaces:")),
        "{text}"
    );
}

fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name) && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}
