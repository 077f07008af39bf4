#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking
//! `cordon serve` supervising sessions, run as real processes: restart and
//! back-off, operator commands, who may use the control socket, stopping
//! with calls in flight, many agents. (systemd's side: serve_systemd.rs.)

mod common;
#[path = "serve_harness/mod.rs"]
mod harness;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use harness::*;

#[test]
fn a_crashing_agent_is_restarted_with_back_off_then_given_up_on() {
    let c = Case::new();
    let dir = c.dir.path();
    let profile = dir.join("p.toml");
    std::fs::write(&profile, shell_profile("")).unwrap();
    let count = dir.join("count");
    let script = format!("echo x >> {}; exit 3", count.display());
    let mut p = Profile::base();
    p.exec.push("/usr/bin/dash".into());
    p.exec.push("/usr/bin/sleep".into());
    p.write.push(count.display().to_string());
    std::fs::write(&count, "").unwrap();
    std::fs::write(&profile, p.toml()).unwrap();
    let config = header(dir)
        + &agent(
            "crash",
            &profile,
            &["/usr/bin/dash", "-c", &script],
            "restart = { policy = \"on-failure\", initial_delay = \"300ms\", max_delay = \"600ms\", max_failures = 4, window = \"1m\" }",
        )
        + &agent("steady", &profile, &["/usr/bin/sleep", "1000"], "");
    let d = Daemon::start(dir, &config, &[]);
    let start = Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || d.agent("crash")["state"]
            == "gave-up"),
        "{}",
        d.log()
    );
    let took = start.elapsed();
    let runs = std::fs::read_to_string(&count).unwrap().lines().count();
    assert_eq!(runs, 4, "four runs, then it gave up: {}", d.log());
    // Back-off 300 + 600 + 600 ms between the four runs.
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    let a = d.agent("crash");
    assert_eq!(a["restarts"], 3);
    assert_eq!(a["recent_failures"], 4);
    assert_eq!(a["last_exit"], "exit 3");
    assert!(
        a["gave_up"]
            .as_str()
            .unwrap()
            .contains("4 failures within 1m"),
        "{a}"
    );
    let log = d.log();
    assert!(log.contains("restarting in 300ms"), "{log}");
    assert!(log.contains("restarting in 600ms"), "{log}");
    assert!(log.contains("gave up on agent crash"), "{log}");
    // The other agent was never touched.
    let s = d.agent("steady");
    assert_eq!(s["state"], "running");
    assert_eq!(s["restarts"], 0);
    // An operator can start it again (and it fails again).
    let r = d.operator(&["start", "crash"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&count).unwrap().lines().count() >= 5
    }));
    assert_eq!(d.stop().0, Some(0));
}

#[test]
fn operators_start_stop_and_kill_sessions() {
    let c = Case::new();
    let dir = c.dir.path();
    let profile = dir.join("p.toml");
    std::fs::write(&profile, shell_profile("")).unwrap();
    let config = header(dir)
        + &agent("svc", &profile, &["/usr/bin/sleep", "1000"], "")
        + &agent(
            "manual",
            &profile,
            &["/usr/bin/sleep", "1000"],
            "autostart = false",
        );
    let d = Daemon::start(dir, &config, &[]);
    assert!(wait_until(Duration::from_secs(20), || d.agent("svc")
        ["session"]
        .is_string()));
    assert_eq!(d.agent("manual")["state"], "stopped");
    let table = d.operator(&["ps"]);
    assert!(table.stdout.starts_with("AGENT"), "{table:#?}");
    assert!(
        table.stdout.contains("manual") && table.stdout.contains("stopped"),
        "{table:#?}"
    );
    // start
    let r = d.operator(&["start", "manual", "--json"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert!(wait_until(Duration::from_secs(20), || d.agent("manual")
        ["session"]
        .is_string()));
    // kill by session id: the session ends, the policy (on-failure) restarts it.
    let first = d.agent("svc")["session"].as_str().unwrap().to_string();
    let r = d.operator(&["kill", &first]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(wait_until(Duration::from_secs(20), || {
        let a = d.agent("svc");
        a["session"].is_string() && a["session"] != first.as_str()
    }));
    assert_eq!(d.agent("svc")["restarts"], 1);
    // stop: ends and stays ended.
    let r = d.operator(&["stop", "svc"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(wait_until(Duration::from_secs(20), || d.agent("svc")
        ["state"]
        == "stopped"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(d.agent("svc")["state"], "stopped");
    // Errors are errors.
    let r = d.operator(&["kill", "no-such-session"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("no running session"), "{r:#?}");
    let r = d.operator(&["start", "nope", "--json"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stdout.contains("no agent named"), "{r:#?}");
    assert_eq!(d.stop().0, Some(0));
}

#[test]
fn a_uid_not_allowed_cannot_use_the_control_socket_and_agents_run_as_their_user() {
    // Needs root to switch users; the unprivileged pass of
    // scripts/test-all.sh (not root) has no other uid to test with.
    let Some((uid, gid)) = ci_user() else {
        eprintln!("skipped: needs root to act as another uid");
        return;
    };
    let c = Case::new();
    let dir = c.dir.path();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let profile = dir.join("p.toml");
    std::fs::write(&profile, shell_profile("")).unwrap();
    std::fs::set_permissions(&profile, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The agent user's cordon run appends to the audit log.
    let audit = dir.join("audit.jsonl");
    std::fs::write(&audit, "").unwrap();
    std::os::unix::fs::chown(&audit, Some(uid), Some(gid)).unwrap();
    let config = header(dir)
        + &agent(
            "as-user",
            &profile,
            &["/usr/bin/sleep", "1000"],
            "user = \"cordon-ci\"\nworkspace = \"/tmp\"",
        );
    let d = Daemon::start(dir, &config, &[]);
    assert!(
        wait_until(Duration::from_secs(20), || d.agent("as-user")["session"]
            .is_string()),
        "{}",
        d.log()
    );
    let a = d.agent("as-user");
    assert_eq!(a["uid"], uid);
    let pid = a["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uids.split_whitespace().skip(1).collect::<Vec<_>>(),
        vec![uid.to_string(); 4],
        "the session's cordon run holds only the agent's uid"
    );
    let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert_eq!(
        groups.split_whitespace().nth(1),
        Some(gid.to_string().as_str()),
        "{groups}"
    );
    // The same uid at the control socket: refused, and logged.
    use std::os::unix::process::CommandExt;
    let out = Command::new(dir.join("bin/cordon"))
        .args(["ps", "--json", "--socket"])
        .arg(&d.socket)
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing answered to the refused uid");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(
        wait_until(Duration::from_secs(5), || d
            .log()
            .contains(&format!("refused uid {uid}"))),
        "{}",
        d.log()
    );
    // A refused `stop` changes nothing.
    let out = Command::new(dir.join("bin/cordon"))
        .args(["stop", "as-user", "--socket"])
        .arg(&d.socket)
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        d.agent("as-user")["state"],
        "running",
        "a refused stop did nothing"
    );
    assert_eq!(d.stop().0, Some(0));

    // The same uid with a supplementary group listed in allow_gids is
    // served (SO_PEERGROUPS), and so is a uid listed in allow_uids.
    let c2 = Case::new();
    let dir = c2.dir.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let profile = dir.join("p.toml");
    std::fs::write(&profile, shell_profile("")).unwrap();
    let config = header(dir).replace("[control]\n", "[control]\nallow_gids = [4242]\n")
        + &agent("idle", &profile, &["/usr/bin/sleep", "1000"], "");
    let d = Daemon::start(dir, &config, &[]);
    let as_ci = |groups: &str| {
        Command::new("setpriv")
            .args([
                "--reuid=cordon-ci",
                "--regid=cordon-ci",
                &format!("--groups={groups}"),
            ])
            .arg(cordon())
            .args(["ps", "--json", "--socket"])
            .arg(&d.socket)
            .output()
            .unwrap()
    };
    let out = as_ci("4242");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"idle\""));
    let out = as_ci("4243");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(d.stop().0, Some(0));
}

#[test]
fn sigterm_with_a_tool_call_in_flight_revokes_its_secret_and_leaves_a_verifiable_log() {
    let c = Case::new();
    let dir = c.dir.path();
    let tp = c.tool_probe();
    let revoked = dir.join("revoked");
    let revoke = dir.join("revoke.sh");
    std::fs::write(
        &revoke,
        format!(
            "#!/bin/sh\ncat >/dev/null\necho revoked >> {}\n",
            revoked.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&revoke, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The secret comes from systemd's credentials directory.
    let creds = dir.join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("canary"), "cordon-canary-value-7f3a").unwrap();
    let profile = dir.join("p.toml");
    std::fs::write(
        &profile,
        shell_profile(&format!(
            "[tools.tp]\npath = \"{}\"\nallow = [[\"**\"]]\nsecrets = [\"CANARY\"]\n\n[secrets.CANARY]\nfrom = \"credential:canary\"\nrevoke = [\"{}\"]\n",
            tp.display(),
            revoke.display()
        )),
    )
    .unwrap();
    let mark = token("in-flight");
    let script = format!("tp sleep 60 {mark}");
    let config = header(dir) + &agent("caller", &profile, &["/usr/bin/dash", "-c", &script], "");
    let d = Daemon::start(
        dir,
        &config,
        &[("CREDENTIALS_DIRECTORY", creds.display().to_string())],
    );
    let audit = dir.join("audit.jsonl");
    let in_flight = || {
        std::fs::read_to_string(&audit).is_ok_and(|t| {
            t.lines()
                .any(|l| l.contains("\"kind\":\"call\"") && l.contains("\"decision\":\"allow\""))
        })
    };
    assert!(
        wait_until(Duration::from_secs(30), in_flight),
        "the tool call never started: {}",
        d.log()
    );
    // Let the tool itself get going.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        std::fs::read_to_string(&revoked).is_err(),
        "not revoked yet"
    );
    let a = d.agent("caller");
    assert_eq!(a["calls_allowed"], 1, "{a}");
    assert_eq!(a["calls_denied"], 0, "{a}");
    let identity = format!(
        "spiffe://cordon.local/profile/test/session/{}",
        a["session"].as_str().unwrap()
    );
    assert_eq!(a["identity"], identity.as_str(), "{a}");
    let (code, log) = d.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        processes_with(&mark).is_empty(),
        "no `tp sleep 60` survives the daemon"
    );
    let n = std::fs::read_to_string(&revoked)
        .unwrap_or_default()
        .lines()
        .count();
    assert_eq!(n, 1, "the secret was revoked exactly once: {log}");
    let v = Run::from(
        Command::new(cordon())
            .args(["audit", "verify"])
            .arg(&audit)
            .output()
            .unwrap(),
    );
    assert_eq!(v.code, Some(0), "{v:#?}");
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(text.contains("\"session_end\""), "{text}");
    assert!(
        !text.contains("cordon-canary-value-7f3a"),
        "no secret in the log"
    );
}

/// Agents × calls: `CORDON_SERVE_AGENTS` and `CORDON_SERVE_CALLS` set the
/// size (bench/serve.sh runs 100 × 200); CI runs 10 × 20.
#[test]
fn many_agents_make_many_calls_under_one_daemon() {
    let agents: usize = std::env::var("CORDON_SERVE_AGENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let calls: usize = std::env::var("CORDON_SERVE_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let c = Case::new();
    let dir = c.dir.path();
    let tp = c.tool_probe();
    let profile = dir.join("p.toml");
    std::fs::write(
        &profile,
        shell_profile(&format!(
            "[tools.tp]\npath = \"{}\"\nallow = [[\"exit\", \"0\"]]\nmax_calls = 100000\n",
            tp.display()
        )),
    )
    .unwrap();
    let script = format!("i=0; while [ $i -lt {calls} ]; do tp exit 0 || exit 9; i=$((i+1)); done");
    let mut config = header(dir);
    for i in 0..agents {
        config += &agent(
            &format!("a{i}"),
            &profile,
            &["/usr/bin/dash", "-c", &script],
            "restart = \"no\"",
        );
    }
    let d = Daemon::start(dir, &config, &[]);
    let done = wait_until(Duration::from_secs(600), || {
        d.ps()["agents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["state"] == "stopped")
    });
    assert!(done, "{}", d.log());
    for a in d.ps()["agents"].as_array().unwrap() {
        assert_eq!(a["last_exit"], "exit 0", "{a}");
    }
    let (code, log) = d.stop();
    assert_eq!(code, Some(0), "{log}");
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    let allowed = text
        .lines()
        .filter(|l| l.contains("\"kind\":\"call\"") && l.contains("\"decision\":\"allow\""))
        .count();
    assert_eq!(allowed, agents * calls, "every call allowed and recorded");
    let v = Command::new(cordon())
        .args(["audit", "verify"])
        .arg(dir.join("audit.jsonl"))
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
}

#[test]
fn a_config_with_errors_is_refused_with_file_line_col() {
    let c = Case::new();
    let dir = c.dir.path();
    let cfg = dir.join("cordon.toml");
    std::fs::write(&cfg, "[[agent]]\nname = \"x\"\ncomand = [\"/bin/true\"]\n").unwrap();
    let r = Run::from(
        Command::new(cordon())
            .args(["serve", "--check", "--config"])
            .arg(&cfg)
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, Some(1), "{r:#?}");
    let want = format!(
        "{}:3:1: unknown key `comand` in [[agent]]; did you mean `command`?",
        cfg.display()
    );
    assert!(r.stderr.contains(&want), "{r:#?}");
    let r = Run::from(
        Command::new(cordon())
            .args(["serve", "--config"])
            .arg(&cfg)
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(r.stderr.contains(&want), "{r:#?}");
}

#[test]
fn a_session_past_the_stop_timeout_is_killed_and_the_daemon_still_exits_0() {
    let c = Case::new();
    let dir = c.dir.path();
    // A copy of the probe only this test runs: its path finds survivors.
    let stubborn = c.tool_probe();
    let mut p = Profile::base();
    p.exec.push(stubborn.display().to_string());
    // The probe says it ignores SIGTERM in this file (its stdout goes to
    // the daemon): stopping earlier would race its signal().
    let ready = dir.join("ready");
    std::fs::write(&ready, "").unwrap();
    p.write.push(ready.display().to_string());
    // The profile would give the agent 60 s after SIGTERM; the daemon's
    // stop_timeout (1 s) is shorter and wins.
    p.stop_grace = "60s";
    let profile = dir.join("p.toml");
    std::fs::write(&profile, p.toml()).unwrap();
    let config = header(dir).replace("stop_timeout = \"10s\"", "stop_timeout = \"1s\"")
        + &agent(
            "stubborn",
            &profile,
            &[
                &stubborn.display().to_string(),
                "ignore-term",
                "stubborn",
                &ready.display().to_string(),
            ],
            "",
        );
    let d = Daemon::start(dir, &config, &[]);
    let tool = stubborn.display().to_string();
    assert!(wait_until(Duration::from_secs(20), || std::fs::read(
        &ready
    )
    .is_ok_and(|r| r == b"ready")));
    assert!(!processes_with(&tool).is_empty());
    // The tool ignores SIGTERM for good: the daemon exits only because it
    // killed the session after stop_timeout, which its log says.
    let (code, log) = d.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("did not stop in time: SIGKILL"), "{log}");
    assert!(
        wait_until(Duration::from_secs(5), || processes_with(&tool).is_empty()),
        "the agent died with its cordon run"
    );
}

#[test]
fn an_agent_reaching_the_control_socket_is_refused_whatever_its_uid() {
    let c = Case::new();
    let dir = c.dir.path();
    let socket = dir.join("run/control.sock");
    let mut p = Profile::base();
    p.exec.push(cordon().display().to_string());
    // Granted, so the connect is made (as a process of the sandbox, never
    // the session's supervisor) and the daemon's own check is what refuses.
    p.unix.push(dir.display().to_string());
    let profile = dir.join("p.toml");
    std::fs::write(&profile, p.toml()).unwrap();
    // The agent's own uid (root's, for a root-run session) is allowed: the
    // refusal must come from where the peer runs, not who it is.
    // SAFETY: geteuid takes nothing and cannot fail.
    let me = unsafe { libc::geteuid() };
    let config = header(dir).replace("[control]\n", &format!("[control]\nallow_uids = [{me}]\n"))
        + &agent(
            "sneaky",
            &profile,
            &[
                &cordon().display().to_string(),
                "stop",
                "sneaky",
                "--socket",
                &socket.display().to_string(),
            ],
            "restart = \"no\"",
        );
    let d = Daemon::start(dir, &config, &[]);
    assert!(
        wait_until(Duration::from_secs(20), || d.agent("sneaky")["state"]
            == "stopped"),
        "{}",
        d.log()
    );
    assert_eq!(d.agent("sneaky")["last_exit"], "exit 1", "{}", d.log());
    let log = d.log();
    assert!(
        log.contains(&format!("refused uid {me}")) && log.contains("another pid namespace"),
        "{log}"
    );
    // The operator (same uid, host namespace) is served.
    assert_eq!(d.operator(&["ps"]).code, Some(0));
    assert_eq!(d.stop().0, Some(0));
}

#[test]
fn a_session_supervisor_killed_with_sigkill_is_restarted_and_its_sibling_is_untouched() {
    let c = Case::new();
    let dir = c.dir.path();
    let profile = dir.join("p.toml");
    std::fs::write(&profile, shell_profile("")).unwrap();
    let fast = "restart = { policy = \"on-failure\", initial_delay = \"100ms\" }";
    let config = header(dir)
        + &agent("victim", &profile, &["/usr/bin/sleep", "1000"], fast)
        + &agent("sibling", &profile, &["/usr/bin/sleep", "1000"], fast);
    let d = Daemon::start(dir, &config, &[]);
    assert!(wait_until(Duration::from_secs(20), || {
        d.agent("victim")["session"].is_string() && d.agent("sibling")["session"].is_string()
    }));
    let sibling = d.agent("sibling");
    let victim = d.agent("victim");
    let pid = i32::try_from(victim["pid"].as_i64().unwrap()).unwrap();
    // As a crash of that session's cordon run would end it.
    // SAFETY: kill(2) takes integers.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let a = d.agent("victim");
            a["session"].is_string() && a["session"] != victim["session"]
        }),
        "{}",
        d.log()
    );
    let a = d.agent("victim");
    assert_eq!(a["restarts"], 1);
    assert_eq!(a["last_exit"], "signal 9");
    let s = d.agent("sibling");
    assert_eq!(s["session"], sibling["session"]);
    assert_eq!(s["pid"], sibling["pid"]);
    assert_eq!(s["restarts"], 0);
    assert_eq!(d.stop().0, Some(0));
}

#[test]
fn an_agent_that_cannot_start_is_given_up_on_with_the_reason() {
    let c = Case::new();
    let dir = c.dir.path();
    let profile = dir.join("p.toml");
    std::fs::write(&profile, shell_profile("")).unwrap();
    let config = header(dir)
        + &agent(
            "nobody-here",
            &profile,
            &["/usr/bin/sleep", "1000"],
            "user = \"cordon-no-such-user\"\nrestart = { initial_delay = \"100ms\", max_delay = \"100ms\", max_failures = 2 }",
        );
    let d = Daemon::start(dir, &config, &[]);
    assert!(
        wait_until(Duration::from_secs(20), || d.agent("nobody-here")["state"]
            == "gave-up"),
        "{}",
        d.log()
    );
    let a = d.agent("nobody-here");
    assert_eq!(
        a["last_exit"],
        "could not start: no such user `cordon-no-such-user`"
    );
    assert!(
        a["gave_up"]
            .as_str()
            .unwrap()
            .starts_with("2 failures within"),
        "{a}"
    );
    assert!(
        d.log().contains("agent nobody-here could not start"),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, Some(0));
}

#[test]
fn when_the_daemon_dies_its_sessions_stop_cleanly() {
    let c = Case::new();
    let dir = c.dir.path();
    let profile = dir.join("p.toml");
    std::fs::write(&profile, shell_profile("")).unwrap();
    let script = format!("sleep 1000; : {}", token("orphan"));
    let config = header(dir) + &agent("a", &profile, &["/usr/bin/dash", "-c", &script], "");
    let mut d = Daemon::start(dir, &config, &[]);
    assert!(wait_until(Duration::from_secs(20), || d.agent("a")
        ["session"]
        .is_string()));
    let session = d.agent("a")["session"].as_str().unwrap().to_string();
    assert!(!processes_with(&script).is_empty());
    // kill -9: no chance for the daemon to stop anything itself.
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || processes_with(&script)
            .is_empty()),
        "the agent outlived its daemon"
    );
    let audit = dir.join("audit.jsonl");
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&audit).is_ok_and(|t| {
                t.lines()
                    .any(|l| l.contains("\"session_end\"") && l.contains(&session))
            })
        }),
        "the session's end was recorded"
    );
    let v = Command::new(cordon())
        .args(["audit", "verify"])
        .arg(&audit)
        .output()
        .unwrap();
    assert!(v.status.success(), "{v:?}");
}

#[test]
fn pending_approvals_of_daemon_sessions_show_in_ps_and_are_answered_with_cordon_approve() {
    let c = Case::new();
    let dir = c.dir.path();
    let marker = dir.join("approved-call-ran");
    let profile = dir.join("p.toml");
    let tp = c.tool_probe();
    std::fs::write(
        &profile,
        shell_profile(&format!(
            "\n[tools.tp]\npath = \"{}\"\napprove = [[\"write\", \"*\"]]\n\n[tools.tp.sandbox]\nwrite = [\"{}\"]\n\n[approval]\nprompt = false\ntimeout = \"60s\"\n",
            tp.display(),
            dir.display()
        )),
    )
    .unwrap();
    let script = format!("tp write {}; sleep 1000", marker.display());
    let config = header(dir) + &agent("gated", &profile, &["/usr/bin/dash", "-c", &script], "");
    let d = Daemon::start(dir, &config, &[]);
    assert!(
        wait_until(Duration::from_secs(20), || d.agent("gated")
            ["pending_approvals"]
            == 1),
        "{}\n{:#}",
        d.log(),
        d.ps()
    );
    assert!(d.operator(&["ps"]).stdout.contains("PENDING"));
    assert!(!marker.exists(), "the call waits for its approver");
    // The operator finds it under the daemon's agents directory.
    let agents = dir.join("run/agents");
    let list = Command::new(cordon())
        .args(["approvals", "--json", "--socket"])
        .arg(&agents)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{list:?}");
    let request: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let id = request["id"].as_str().unwrap().to_string();
    let ok = Command::new(cordon())
        .args(["approve", &id, "--socket"])
        .arg(&agents)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    assert!(wait_until(Duration::from_secs(20), || marker.exists()));
    assert!(wait_until(Duration::from_secs(20), || d.agent("gated")
        ["pending_approvals"]
        == 0));
    assert_eq!(d.stop().0, Some(0));
}

/// `profile = "NAME"` finds the profile as `cordon run --profile NAME`
/// does (here in the service user's `$XDG_CONFIG_HOME/cordon/profiles`),
/// and the session runs it; a name found nowhere is an error at its
/// line and column that says where it looked.
#[test]
fn an_agents_profile_may_be_given_by_name() {
    let c = Case::new();
    let dir = c.dir.path();
    let xdg = dir.join("xdg");
    let profiles = xdg.join("cordon/profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(profiles.join("named-agent.toml"), shell_profile("")).unwrap();
    let config = header(dir)
        + &agent(
            "by-name",
            Path::new("named-agent"),
            &["/usr/bin/sleep", "1000"],
            "",
        );
    let xdg_env = [("XDG_CONFIG_HOME", xdg.display().to_string())];
    let d = Daemon::start(dir, &config, &xdg_env);
    assert!(
        wait_until(Duration::from_secs(20), || d.agent("by-name")["session"]
            .is_string()),
        "{}",
        d.log()
    );
    assert_eq!(d.agent("by-name")["state"], "running", "{}", d.log());
    assert_eq!(d.stop().0, Some(0));

    let cfg = dir.join("missing.toml");
    std::fs::write(
        &cfg,
        header(dir) + &agent("x", Path::new("no-such-profile"), &["/usr/bin/true"], ""),
    )
    .unwrap();
    let r = Run::from(
        Command::new(cordon())
            .args(["serve", "--check", "--config"])
            .arg(&cfg)
            .env("XDG_CONFIG_HOME", &xdg)
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(
        r.stderr
            .contains(":11: profile `no-such-profile` not found: no such file here, nor")
            && r.stderr.contains(&profiles.display().to_string()),
        "{r:#?}"
    );
}
