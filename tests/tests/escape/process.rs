//! Signals, privilege, inherited state, and surviving cordon.

use super::*;

pub(super) fn signals_and_privilege() -> Vec<Escape> {
    vec![
        case(
            "sig.kill-sandbox-init",
            "SIGTERM pid 1 (cordon's init)",
            |c| {
                refused(&run(c, &ws(false), &["signal", "1"]), &["EPERM"]);
            },
        ),
        case(
            "sig.kill-host-process",
            "SIGTERM a process outside the sandbox",
            |c| {
                let mut victim = std::process::Command::new("/usr/bin/sleep")
                    .arg("30")
                    .spawn()
                    .unwrap();
                let pid = victim.id().to_string();
                let r = run(c, &ws(false), &["signal", &pid]);
                let alive = victim.try_wait().unwrap().is_none();
                let _ = victim.kill();
                let _ = victim.wait();
                refused(&r, &["ESRCH", "EPERM"]);
                assert!(alive, "the host process was killed");
            },
        ),
        case(
            "cap.none-held",
            "hold any capability (even when cordon is root)",
            |c| {
                let r = run(c, &ws(false), &["caps"]);
                assert!(
                    r.stdout.contains("eff=0 prm=0 inh=0 bounding=0 ambient=0"),
                    "{r:#?}"
                );
            },
        ),
        case(
            "cap.capset-raise",
            "raise every capability with capset",
            |c| {
                refused(&run(c, &ws(false), &["capset-all"]), &["EPERM"]);
            },
        ),
        case(
            "cap.no-new-privs",
            "run without no_new_privs (setuid binaries would elevate)",
            |c| {
                let r = run(c, &ws(false), &["no-new-privs"]);
                assert!(r.stdout.contains("no_new_privs=1"), "{r:#?}");
            },
        ),
    ]
}

pub(super) fn inherited() -> Vec<Escape> {
    vec![
        case(
            "inherit.env",
            "read cordon's environment (API keys of the caller)",
            |c| {
                let out = c
                    .command(&ws(false), &["env"])
                    .env("AWS_SECRET_ACCESS_KEY", SECRET_TEXT)
                    .output()
                    .unwrap();
                let r = Run::from(out);
                assert_eq!(r.code, Some(0), "{r:#?}");
                no_secret(&r);
                assert!(!r.stdout.contains("AWS_SECRET_ACCESS_KEY"), "{r:#?}");
            },
        ),
        case(
            "inherit.secret-env",
            "find a declared secret in the agent's environment",
            |c| {
                let r = run(c, &brokered(c), &["env"]);
                assert_eq!(r.code, Some(0), "{r:#?}");
                no_secret(&r);
            },
        ),
        case(
            "inherit.fds",
            "use a descriptor cordon's caller left open",
            |c| {
                use std::os::fd::AsRawFd;
                let f = c.outside.join("open.txt");
                std::fs::write(&f, SECRET_TEXT).unwrap();
                let file = std::fs::File::open(&f).unwrap();
                let fd = unsafe { libc::dup(file.as_raw_fd()) }; // dup clears close-on-exec
                let out = c.command(&ws(false), &["fds"]).output().unwrap();
                unsafe { libc::close(fd) };
                let r = Run::from(out);
                let fds: Vec<i32> = r.stdout.lines().filter_map(|l| l.parse().ok()).collect();
                assert!(
                    !fds.is_empty() && fds.iter().all(|&f| f <= 2),
                    "{fds:?}: {r:#?}"
                );
            },
        ),
    ]
}

pub(super) fn survival() -> Vec<Escape> {
    vec![
        case(
            "proc.double-fork-setsid",
            "leave a double-forked setsid daemon behind after exiting",
            |c| {
                let tok = token("escape-daemon");
                let r = run(c, &ws(false), &["daemon", &tok]);
                assert!(r.stdout.contains("daemonized"), "{r:#?}");
                assert_eq!(r.code, Some(0), "{r:#?}");
                assert!(
                    processes_with(&tok).is_empty(),
                    "daemon survived: {:?}",
                    processes_with(&tok)
                );
            },
        ),
        case(
            "proc.daemon-past-divergence-kill",
            "keep a daemon alive through a divergence kill",
            |c| {
                let tok = token("escape-daemon-kill");
                let r = run(c, &ws(false), &["daemon", &tok, "ptrace"]);
                assert!(r.stdout.contains("daemonized"), "{r:#?}");
                r.killed_for("`ptrace`");
                assert!(
                    processes_with(&tok).is_empty(),
                    "daemon survived: {:?}",
                    processes_with(&tok)
                );
            },
        ),
        case(
            "proc.ignore-sigterm",
            "ignore SIGTERM when cordon stops the session",
            |c| {
                let mut prof = ws(false);
                prof.stop_grace = "300ms";
                let tok = token("escape-ignore-term");
                let (mut child, _out) =
                    spawn_until_line(c.command(&prof, &["ignore-term", &tok]), "ready");
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                let status = child.wait().unwrap();
                assert_eq!(status.code(), Some(128 + libc::SIGKILL), "{status:?}");
                assert!(
                    wait_until(Duration::from_secs(5), || processes_with(&tok).is_empty()),
                    "survived"
                );
            },
        ),
        case(
            "proc.daemon-ignoring-sigterm-on-stop",
            "keep a SIGTERM-ignoring daemon alive when cordon is stopped",
            |c| {
                let tok = token("escape-daemon-stop");
                let mut prof = ws(false);
                prof.stop_grace = "300ms";
                let (mut child, _out) =
                    spawn_until_line(c.command(&prof, &["daemon", &tok, "wait"]), "daemonized");
                assert!(wait_until(Duration::from_secs(5), || !processes_with(&tok).is_empty()));
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                let _ = child.wait();
                assert!(
                    wait_until(Duration::from_secs(5), || processes_with(&tok).is_empty()),
                    "survived"
                );
            },
        ),
        case(
            "proc.kill-9-of-cordon",
            "outlive cordon when it is killed with SIGKILL",
            |c| {
                let tok = token("escape-kill9");
                let (mut child, _out) = spawn_until_line(
                    c.command(&ws(false), &["daemon", &tok, "wait"]),
                    "daemonized",
                );
                assert!(wait_until(Duration::from_secs(5), || !processes_with(&tok).is_empty()));
                unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
                let _ = child.wait();
                assert!(
                    wait_until(Duration::from_secs(5), || processes_with(&tok).is_empty()),
                    "survived"
                );
            },
        ),
    ]
}
