#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking
//! `cordon serve` and systemd, run as real processes.
//!
//! systemd is not PID 1 on the test machines, so each test runs the daemon
//! directly with the environment systemd would give it: NOTIFY_SOCKET (a
//! datagram socket the test binds and reads, playing the service manager),
//! WATCHDOG_USEC, JOURNAL_STREAM (with CORDON_JOURNAL_SOCKET pointing the
//! native protocol at a socket the test reads, playing journald), a
//! delegated cgroup, and CREDENTIALS_DIRECTORY (serve.rs).

mod common;
#[path = "serve_harness/mod.rs"]
mod harness;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use harness::*;

#[test]
fn the_service_manager_sees_ready_reloading_watchdog_and_stopping() {
    let c = Case::new();
    let dir = c.dir.path();
    let profile = dir.join("p.toml");
    std::fs::write(&profile, shell_profile("")).unwrap();
    let notify_path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let config = header(dir) + &agent("idle", &profile, &["/usr/bin/sleep", "1000"], "");
    let d = Daemon::start(
        dir,
        &config,
        &[
            ("NOTIFY_SOCKET", notify_path.display().to_string()),
            ("WATCHDOG_USEC", "400000".into()),
        ],
    );
    recv_until(&notify, Duration::from_secs(20), |m| {
        m.lines().any(|l| l == "READY=1")
    });
    // WatchdogSec=0.4s: a ping at least every 200 ms; three within 2 s.
    let mut pings = 0;
    recv_until(&notify, Duration::from_secs(2), |m| {
        pings += usize::from(m == "WATCHDOG=1");
        pings >= 3
    });
    d.signal(libc::SIGHUP);
    let seen = recv_until(&notify, Duration::from_secs(20), |m| {
        m.starts_with("RELOADING=1")
    });
    let reloading = seen.last().unwrap();
    let usec: u64 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .expect("MONOTONIC_USEC with RELOADING=1")
        .parse()
        .unwrap();
    assert!(usec > 0);
    recv_until(&notify, Duration::from_secs(20), |m| {
        m.lines().any(|l| l == "READY=1")
    });
    d.signal(libc::SIGTERM);
    recv_until(&notify, Duration::from_secs(20), |m| {
        m.lines().any(|l| l == "STOPPING=1")
    });
    let (code, log) = d.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn an_abstract_notify_socket_works_too() {
    let c = Case::new();
    let dir = c.dir.path();
    let profile = dir.join("p.toml");
    std::fs::write(&profile, shell_profile("")).unwrap();
    let name = token("notify");
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let notify = UnixDatagram::bind_addr(&addr).unwrap();
    let config = header(dir) + &agent("idle", &profile, &["/usr/bin/sleep", "1000"], "");
    let d = Daemon::start(dir, &config, &[("NOTIFY_SOCKET", format!("@{name}"))]);
    let seen = recv_until(&notify, Duration::from_secs(20), |m| {
        m.lines().any(|l| l == "READY=1")
    });
    assert!(seen.iter().any(|m| m.contains("READY=1")));
    assert_eq!(d.stop().0, Some(0));
}

#[test]
fn a_reload_with_a_broken_profile_keeps_the_running_config_and_says_why() {
    let c = Case::new();
    let dir = c.dir.path();
    let good = dir.join("good.toml");
    std::fs::write(&good, shell_profile("")).unwrap();
    let journal_path = dir.join("journal.sock");
    let journal = UnixDatagram::bind(&journal_path).unwrap();
    let config = header(dir) + &agent("a", &good, &["/usr/bin/sleep", "1000"], "");
    let d = Daemon::start(
        dir,
        &config,
        &[
            ("JOURNAL_STREAM", "8:1234".into()),
            ("CORDON_JOURNAL_SOCKET", journal_path.display().to_string()),
        ],
    );
    assert!(wait_until(Duration::from_secs(20), || d.agent("a")
        ["session"]
        .is_string()));
    let session = d.agent("a")["session"].clone();
    // A new agent whose profile has a typo on line 3.
    let broken = dir.join("broken.toml");
    std::fs::write(&broken, "[profile]\nname = \"b\"\n[filesytem]\n").unwrap();
    let new = config.clone() + &agent("b", &broken, &["/usr/bin/sleep", "1000"], "");
    std::fs::write(&d.config, new).unwrap();
    d.signal(libc::SIGHUP);
    let seen = recv_until(&journal, Duration::from_secs(20), |m| {
        m.contains("MESSAGE_ID=6520336cfd1e4361b51502656f5c37e4")
    });
    let failed = seen.last().unwrap();
    assert!(failed.contains("PRIORITY=3"), "{failed}");
    assert!(failed.contains("SYSLOG_IDENTIFIER=cordon"), "{failed}");
    assert!(
        failed.contains(&format!(
            "{}:3:2: unknown section [filesytem]",
            broken.display()
        )),
        "the reason names file:line:col: {failed}"
    );
    // The old configuration runs on, untouched.
    let ps = d.ps();
    let names: Vec<&str> = ps["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a"]);
    assert_eq!(
        d.agent("a")["session"],
        session,
        "the running session was kept"
    );
    // Fixed: the reload applies.
    std::fs::write(&broken, shell_profile("")).unwrap();
    d.signal(libc::SIGHUP);
    recv_until(&journal, Duration::from_secs(20), |m| {
        m.contains("MESSAGE_ID=b6f361c27b374326b8544a8ae1394bf7")
    });
    assert!(wait_until(Duration::from_secs(20), || d.agent("b")
        ["state"]
        == "running"));
    assert_eq!(d.agent("a")["session"], session);
    assert_eq!(d.stop().0, Some(0));
}

#[test]
fn a_delegated_cgroup_gets_one_child_cgroup_per_session() {
    if !is_root() {
        // Only root can create a cgroup on these hosts (hybrid layout):
        // the unprivileged pass of scripts/test-all.sh cannot run this.
        eprintln!("skipped: needs root to create a cgroup");
        return;
    }
    let mount = Path::new("/sys/fs/cgroup/unified");
    let mount = if mount.join("cgroup.procs").exists() {
        mount.to_path_buf()
    } else {
        PathBuf::from("/sys/fs/cgroup")
    };
    let name = token("cg");
    let cg = mount.join(&name);
    std::fs::create_dir(&cg).expect("create a test cgroup (root, cgroup2)");
    let _cleanup = CgroupGuard(cg.clone());
    let c = Case::new();
    let dir = c.dir.path();
    let profile = dir.join("p.toml");
    std::fs::write(&profile, shell_profile("")).unwrap();
    let config = header(dir) + &agent("boxed", &profile, &["/usr/bin/sleep", "1000"], "");
    let d = Daemon::start_in(dir, &config, &[], Some(&cg));
    assert!(
        wait_until(Duration::from_secs(20), || d.agent("boxed")["session"]
            .is_string()),
        "{}",
        d.log()
    );
    let pid = d.agent("boxed")["pid"].as_i64().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = format!("0::/{name}/agent-boxed-1");
    assert!(own.lines().any(|l| l == want), "{own}\n{}", d.log());
    // The agent itself (a grandchild) was born inside too.
    let procs = std::fs::read_to_string(cg.join("agent-boxed-1/cgroup.procs")).unwrap();
    assert!(
        procs.lines().count() >= 2,
        "cordon run and its agent: {procs}"
    );
    let (code, log) = d.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        !cg.join("agent-boxed-1").exists(),
        "the session's cgroup is removed"
    );
}

/// Removes a test cgroup (killing what is left in it) however the test ends.
struct CgroupGuard(PathBuf);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.0) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    let _ = std::fs::write(e.path().join("cgroup.kill"), "1");
                    std::thread::sleep(Duration::from_millis(50));
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn the_example_unit_passes_systemd_analyze_verify() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        assert!(!in_ci(), "CI needs systemd-analyze (the systemd package)");
        eprintln!("skipped: no systemd-analyze");
        return;
    }
    let unit = std::fs::read_to_string(repo().join("examples/systemd/cordon.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/cordon serve"),
        "where make install puts it"
    );
    // verify checks that ExecStart= binaries exist: point them at the
    // binaries under test. --man=no: the man page is not installed here.
    let c = Case::new();
    let path = c.dir.path().join("cordon.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/cordon", &cordon().display().to_string()),
    )
    .unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_example_config_checks_with_the_repositorys_profiles() {
    let text = std::fs::read_to_string(repo().join("examples/systemd/cordon.toml")).unwrap();
    let c = Case::new();
    let profiles = repo().join("profiles");
    let cfg = c.dir.path().join("cordon.toml");
    std::fs::write(
        &cfg,
        // The group comes from cordon.sysusers.conf, not applied to this
        // machine: a group every machine has stands in for it.
        text.replace("/etc/cordon/profiles", &profiles.display().to_string())
            .replace("\"cordon-operators\"", "\"root\""),
    )
    .unwrap();
    let r = Run::from(
        Command::new(cordon())
            .args(["serve", "--check", "--config"])
            .arg(&cfg)
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(r.stdout.contains("ok (2 agents)"), "{r:#?}");
}

#[test]
fn man_pages_and_completions_come_from_the_cli_definition() {
    let c = Case::new();
    let man = c.dir.path().join("man");
    let comp = c.dir.path().join("completions");
    for (what, dir) in [("man", &man), ("completions", &comp)] {
        let out = Command::new(cordon())
            .args(["generate", what])
            .arg(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let serve = std::fs::read_to_string(man.join("cordon-serve.1")).unwrap();
    assert!(serve.starts_with(".ie") || serve.contains(".TH"), "{serve}");
    assert!(serve.contains("\\-\\-config"), "{serve}");
    for page in [
        "cordon.1",
        "cordon-ps.1",
        "cordon-kill.1",
        "cordon-start.1",
        "cordon-stop.1",
    ] {
        assert!(man.join(page).exists(), "{page}");
    }
    assert!(
        !man.join("cordon-generate.1").exists(),
        "the hidden verb has no page"
    );
    let bash = std::fs::read_to_string(comp.join("cordon.bash")).unwrap();
    assert!(
        bash.contains("serve") && bash.contains("--socket"),
        "{bash}"
    );
    assert!(comp.join("_cordon").exists() && comp.join("cordon.fish").exists());
}

#[test]
fn a_divergence_kill_is_a_journal_event_with_its_decision() {
    let c = Case::new();
    let dir = c.dir.path();
    let mut p = Profile::base();
    p.exec.push("/usr/bin/dash".into());
    p.read.push("/usr/bin".into());
    let profile = dir.join("p.toml");
    std::fs::write(&profile, p.toml()).unwrap();
    let journal_path = dir.join("journal.sock");
    let journal = UnixDatagram::bind(&journal_path).unwrap();
    // /usr/bin/id is readable but neither granted exec nor a tool.
    let config = header(dir)
        + &agent(
            "wanders",
            &profile,
            &["/usr/bin/dash", "-c", "/usr/bin/id"],
            "restart = \"no\"",
        );
    let d = Daemon::start(
        dir,
        &config,
        &[
            ("JOURNAL_STREAM", "8:1234".into()),
            ("CORDON_JOURNAL_SOCKET", journal_path.display().to_string()),
        ],
    );
    let seen = recv_until(&journal, Duration::from_secs(20), |m| {
        m.contains("MESSAGE_ID=22770986bd214ef28ba7a0acc81662bd")
    });
    let ended = seen.last().unwrap();
    for field in [
        "AGENT=wanders",
        "EXIT=exit 86",
        "DECISION=kill",
        "REASON=divergence",
    ] {
        assert!(ended.lines().any(|l| l == field), "{field} in {ended}");
    }
    let session = ended
        .lines()
        .find_map(|l| l.strip_prefix("SESSION="))
        .unwrap();
    assert_eq!(session.len(), 32, "the session id: {ended}");
    assert_eq!(d.agent("wanders")["last_exit"], "exit 86");
    assert_eq!(d.stop().0, Some(0));
}

#[test]
fn a_profile_edited_without_a_reload_is_not_used_until_the_reload_checks_it() {
    let c = Case::new();
    let dir = c.dir.path();
    let profile = dir.join("p.toml");
    std::fs::write(&profile, shell_profile("")).unwrap();
    let fast = "restart = { policy = \"on-failure\", initial_delay = \"200ms\", max_delay = \"200ms\", max_failures = 100 }";
    let config = header(dir) + &agent("a", &profile, &["/usr/bin/sleep", "1000"], fast);
    let d = Daemon::start(dir, &config, &[]);
    assert!(wait_until(Duration::from_secs(20), || d.agent("a")
        ["session"]
        .is_string()));
    // A valid but different profile, written without telling the daemon.
    let mut edited = Profile::base();
    for util in ["dash", "sleep", "true", "false"] {
        edited.exec.push(format!("/usr/bin/{util}"));
    }
    edited.read.push("/srv".into());
    std::fs::write(&profile, edited.toml()).unwrap();
    assert_eq!(d.operator(&["kill", "a"]).code, Some(0));
    assert!(
        wait_until(Duration::from_secs(20), || {
            d.log()
                .contains("changed on disk since cordon serve last checked it")
        }),
        "{}",
        d.log()
    );
    assert_eq!(d.agent("a")["last_exit"], "exit 125");
    // The reload checks it; the next restart uses it.
    d.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let a = d.agent("a");
            a["state"] == "running" && a["session"].is_string()
        }),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, Some(0));
}

#[test]
fn the_sysusers_and_tmpfiles_snippets_apply_to_a_fresh_root() {
    if !is_root() {
        // systemd-tmpfiles must chown to the agent user.
        eprintln!("skipped: needs root to chown");
        return;
    }
    let (sysusers, tmpfiles) = (
        Path::new("/usr/bin/systemd-sysusers"),
        Path::new("/usr/bin/systemd-tmpfiles"),
    );
    if !sysusers.exists() || !tmpfiles.exists() {
        assert!(!in_ci(), "CI needs systemd-sysusers and systemd-tmpfiles");
        eprintln!("skipped: no systemd-sysusers/systemd-tmpfiles");
        return;
    }
    let c = Case::new();
    let root = c.dir.path();
    std::fs::create_dir(root.join("etc")).unwrap();
    for f in ["passwd", "group", "shadow", "gshadow"] {
        std::fs::write(root.join("etc").join(f), "").unwrap();
    }
    let examples = std::fs::canonicalize(repo().join("examples/systemd")).unwrap();
    let run = |tool: &Path, args: &[&str], file: &str| {
        let out = Command::new(tool)
            .arg(format!("--root={}", root.display()))
            .args(args)
            .arg(examples.join(file))
            .output()
            .unwrap();
        assert!(out.status.success(), "{tool:?}: {out:?}");
    };
    run(sysusers, &[], "cordon.sysusers.conf");
    run(tmpfiles, &["--create"], "cordon.tmpfiles.conf");
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    let gid: u32 = group
        .lines()
        .find_map(|l| l.strip_prefix("cordon-agent:x:"))
        .and_then(|rest| rest.split(':').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(group.contains("cordon-operators:x:"), "{group}");
    use std::os::unix::fs::MetadataExt;
    let log = std::fs::metadata(root.join("var/log/cordon/audit.jsonl")).unwrap();
    assert_eq!(log.mode() & 0o777, 0o660, "the agent user's group appends");
    assert_eq!((log.uid(), log.gid()), (0, gid));
    let run_dir = std::fs::metadata(root.join("run/cordon")).unwrap();
    assert_eq!(run_dir.mode() & 0o777, 0o755);
}
