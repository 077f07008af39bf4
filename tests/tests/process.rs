#![allow(clippy::undocumented_unsafe_blocks)] // tests call libc directly to act as an attacker would
//! Exit statuses, signal forwarding and containment of the whole tree.

mod common;
use common::*;
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn the_agents_exit_status_is_cordons() {
    let c = Case::new();
    for code in [0, 1, 7, 42, 255] {
        let r = c.run(&Profile::base(), &["exit", &code.to_string()]);
        assert_eq!(r.code, Some(code), "{r:#?}");
    }
}

#[test]
fn death_by_signal_n_exits_128_plus_n() {
    let c = Case::new();
    let r = c.run(&Profile::base(), &["kill-self", &libc::SIGTERM.to_string()]);
    assert_eq!(r.code, Some(128 + libc::SIGTERM), "{r:#?}");
    let r = c.run(&Profile::base(), &["kill-self", &libc::SIGKILL.to_string()]);
    assert_eq!(r.code, Some(128 + libc::SIGKILL), "{r:#?}");
}

#[test]
fn a_missing_command_exits_127_and_a_forbidden_one_126() {
    let c = Case::new();
    let p = c.profile_path(&Profile::base());
    let out = cordon_cmd()
        .args(["run", "--profile"])
        .arg(&p)
        .args(["--", "no-such-command-anywhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("command not found"));
    // Exists, but the profile does not let it execute.
    let out = cordon_cmd()
        .args(["run", "--profile"])
        .arg(&p)
        .args(["--", "/usr/bin/env"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(126), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot execute"),
        "{out:?}"
    );
}

#[test]
fn setup_failures_exit_125_before_anything_runs() {
    let c = Case::new();
    // A broken profile.
    let bad = c.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[profile]\nname = \"x\"\n[filesystem]\nread = [\"relative/path\"]\n",
    )
    .unwrap();
    let marker = c.workspace.join("ran");
    let out = cordon_cmd()
        .args(["run", "--profile"])
        .arg(&bad)
        .arg("--")
        .arg(probe())
        .arg("write")
        .arg(&marker)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.toml:4:"),
        "{out:?}"
    );
    assert!(!marker.exists());
    // A workspace that does not exist.
    let out = cordon_cmd()
        .args(["run", "--profile"])
        .arg(c.profile_path(&Profile::base()))
        .args(["--workspace", "/nonexistent/ws", "--"])
        .arg(probe())
        .arg("exit")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    // No command at all is a usage error, also 125.
    let out = cordon_cmd()
        .args(["run", "--profile", "x.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
}

#[test]
fn a_daemon_dies_with_the_tree_after_a_seccomp_kill() {
    let c = Case::new();
    let tok = token("seccomp-daemon");
    let r = c.run(&Profile::base(), &["daemon", &tok, "ptrace"]);
    assert!(
        r.stdout.contains("daemonized"),
        "the daemon was never started: {r:#?}"
    );
    r.killed_for("`ptrace`");
    assert!(
        processes_with(&tok).is_empty(),
        "daemon {tok} survived: {:?}",
        processes_with(&tok)
    );
}

#[test]
fn a_daemon_dies_when_the_agent_exits() {
    let c = Case::new();
    let tok = token("exit-daemon");
    let r = c.run(&Profile::base(), &["daemon", &tok]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(r.stdout.contains("daemonized"), "{r:#?}");
    assert!(processes_with(&tok).is_empty(), "daemon {tok} survived");
}

#[test]
fn kill_9_of_cordon_takes_the_whole_tree_down() {
    let c = Case::new();
    let tok = token("kill9-daemon");
    let mut cmd = c.command(&Profile::base(), &["daemon", &tok, ""]);
    // After daemonizing, the probe itself keeps running.
    cmd.args(Vec::<&str>::new());
    let (mut child, _out) = spawn_until_line(
        {
            // `wait`: the agent stays alive after daemonizing, so the
            // daemon cannot die with it before the test sees it.
            let mut cmd = c.command(&Profile::base(), &["daemon", &tok, "wait"]);
            cmd.stdin(Stdio::null());
            cmd
        },
        "daemonized",
    );
    drop(cmd);
    assert!(
        wait_until(Duration::from_secs(5), || !processes_with(&tok).is_empty()),
        "the daemon never showed up"
    );
    // Kill cordon itself with SIGKILL: no chance to clean up in user space.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    assert!(
        wait_until(Duration::from_secs(5), || processes_with(&tok).is_empty()),
        "daemon {tok} survived cordon's death: {:?}",
        processes_with(&tok)
    );
}

#[test]
fn sigterm_to_cordon_reaches_the_agent() {
    let c = Case::new();
    let (mut child, _out) =
        spawn_until_line(c.command(&Profile::base(), &["sleep", "60"]), "ready");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
}

#[test]
fn an_agent_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let c = Case::new();
    let mut p = Profile::base();
    p.stop_grace = "300ms";
    let tok = token("ignore-term");
    let mut cmd = c.command(&p, &["ignore-term", &tok]);
    cmd.stdin(Stdio::null());
    let (mut child, _out) = spawn_until_line(cmd, "ready");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGKILL));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("grace") || status.code() == Some(137), "{err}");
}
