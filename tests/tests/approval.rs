//! Runtime approval, end to end: a real agent sandbox parks a call, and a
//! real approver (the operator's `cordon approve`, a hook, a terminal)
//! answers it, or the agent tries to answer it itself. Each test states the
//! attack or the promise in its name, and checks the outcome that matters:
//! whether the tool ran (its marker file), the exit status, the audit log.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::undocumented_unsafe_blocks
)] // test code

mod common;
use common::*;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A sandbox with dash and a brokered `tp` (the probe as a tool):
/// `tp read ...` is allowed, `tp write F` needs approval (rule approve[0]),
/// `tp append F` is allowed but tagged risk = "delete" (so it asks too).
fn approval_profile(c: &Case, approval: &str) -> Profile {
    let tool_probe = c.tool_probe();
    let mut p = Profile::base();
    for util in ["dash", "sleep", "cat"] {
        p.exec.push(format!("/usr/bin/{util}"));
    }
    p.read.push("{workspace}".into());
    p.extra = format!(
        r#"
[tools.tp]
path = "{}"
allow = [["read", "**"], {{ argv = ["append", "*"], risk = "delete" }}]
approve = [["write", "*"]]
secrets = ["DEPLOY_TOKEN"]

[secrets.DEPLOY_TOKEN]
from = "env:CORDON_TEST_DEPLOY_TOKEN"

[approval]
prompt = false
{approval}
"#,
        tool_probe.display()
    );
    p
}

fn control(c: &Case) -> PathBuf {
    c.dir.path().join("control.sock")
}

/// `cordon run` of `script` under dash, with a control socket in the case
/// directory, started in the background.
fn spawn_agent(c: &Case, p: &Profile, script: &str) -> Child {
    let mut cmd = cordon_cmd();
    cmd.arg("run")
        .arg("--profile")
        .arg(c.profile_path(p))
        .arg("--workspace")
        .arg(&c.workspace)
        .arg("--control-socket")
        .arg(control(c))
        .arg("--intent")
        .arg("tidy the release notes")
        .arg("--")
        .args(["/usr/bin/dash", "-c", script])
        .env("CORDON_AUDIT", c.audit_path())
        .env("CORDON_TEST_DEPLOY_TOKEN", "tok-7f3a")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().expect("spawn cordon")
}

fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().expect("wait for cordon"))
}

/// `cordon ARGS...` as the operator.
fn operator(args: &[&str]) -> Run {
    Run::from(cordon_cmd().args(args).output().expect("run cordon"))
}

/// Waits for a pending request whose argv starts with `first` and returns it.
fn pending(c: &Case, first: &str) -> serde_json::Value {
    let sock = control(c);
    let sock = sock.to_str().unwrap();
    let mut found = None;
    let ok = wait_until(Duration::from_secs(20), || {
        let r = operator(&["approvals", "--socket", sock, "--json"]);
        found = r
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["argv"][0] == first);
        found.is_some()
    });
    assert!(ok, "no pending request for `{first}` appeared");
    found.unwrap()
}

fn id(v: &serde_json::Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// The audit records of this case, parsed.
fn records(c: &Case) -> Vec<serde_json::Value> {
    std::fs::read_to_string(c.audit_path())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn call_records<'a>(recs: &'a [serde_json::Value], arg: &str) -> Vec<&'a serde_json::Value> {
    recs.iter()
        .filter(|r| r["kind"] == "call" && r["argv"][0] == arg)
        .collect()
}

fn verify(c: &Case) {
    let r = operator(&["audit", "verify", c.audit_path().to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "the audit chain verifies: {r:#?}");
}

#[test]
fn the_operator_approves_over_the_control_socket_end_to_end() {
    let c = Case::new();
    let p = approval_profile(&c, "timeout = \"30s\"");
    let agent = spawn_agent(&c, &p, "tp write marker; echo rc=$?");
    let req = pending(&c, "write");
    // What the operator is shown: tool, exact argv, cwd, intent, the
    // secret names (never values), the rule.
    assert_eq!(req["tool"], "tp");
    assert_eq!(req["argv"], serde_json::json!(["write", "marker"]));
    assert_eq!(
        req["cwd"],
        path_str(&std::fs::canonicalize(&c.workspace).unwrap())
    );
    assert_eq!(req["intent"], "tidy the release notes");
    assert_eq!(req["secrets"], serde_json::json!(["DEPLOY_TOKEN"]));
    assert!(
        req["rule"]
            .as_str()
            .unwrap()
            .starts_with("tools.tp.approve[0] [\"write\", \"*\"]"),
        "{req}"
    );
    assert!(!req.to_string().contains("tok-7f3a"));
    assert!(!c.workspace.join("marker").exists(), "parked, not run");
    // The human table shows it too.
    let table = operator(&["approvals", "--socket", control(&c).to_str().unwrap()]);
    assert!(
        table.stdout.contains(&id(&req)) && table.stdout.contains("tp write marker"),
        "{table:#?}"
    );

    let r = operator(&[
        "approve",
        &id(&req),
        "--socket",
        control(&c).to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(r.stdout.contains("approved"), "{r:#?}");
    let run = finish(agent);
    assert!(run.stdout.contains("rc=0"), "{run:#?}");
    assert!(c.workspace.join("marker").exists(), "the tool ran");

    let recs = records(&c);
    let pend = recs
        .iter()
        .find(|r| r["kind"] == "approval" && r["decision"] == "pending")
        .expect("a pending record");
    assert_eq!(pend["approval"], req["id"]);
    let call = call_records(&recs, "write");
    assert_eq!(call.len(), 1, "{recs:#?}");
    let call = call[0];
    assert_eq!(call["decision"], "approve");
    assert_eq!(call["approval"], req["id"]);
    let uid = unsafe { libc::geteuid() };
    assert!(
        call["approver"]
            .as_str()
            .unwrap()
            .starts_with(&format!("uid {uid}")),
        "{call}"
    );
    assert!(
        call["approved_at"].as_str().unwrap().ends_with('Z'),
        "{call}"
    );
    assert_eq!(call["secrets"], serde_json::json!(["DEPLOY_TOKEN"]));
    verify(&c);
}

#[test]
fn a_denied_request_never_runs_its_tool_and_the_agent_hears_why() {
    let c = Case::new();
    let p = approval_profile(&c, "timeout = \"30s\"");
    let agent = spawn_agent(
        &c,
        &p,
        "tp write marker; echo rc=$?; tp read /dev/null; echo second=$?",
    );
    let req = pending(&c, "write");
    let sock = control(&c);
    let r = operator(&[
        "deny",
        &id(&req),
        "--socket",
        sock.to_str().unwrap(),
        "--reason",
        "not on a Friday",
    ]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    let run = finish(agent);
    assert!(run.stdout.contains("rc=126"), "{run:#?}");
    assert!(
        run.stderr.contains("cordon: denied: denied by uid"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("not on a Friday"), "{run:#?}");
    // A person's no is not divergence: the session goes on.
    assert!(run.stdout.contains("second=0"), "{run:#?}");
    assert!(!c.workspace.join("marker").exists());
    let recs = records(&c);
    let call = call_records(&recs, "write")[0];
    assert_eq!(call["decision"], "deny");
    assert!(
        call["approver"].as_str().unwrap().starts_with("uid "),
        "{call}"
    );
    // Answering twice, or an id nobody holds, is an error.
    let again = operator(&["approve", &id(&req), "--socket", sock.to_str().unwrap()]);
    assert_eq!(again.code, Some(1), "{again:#?}");
}

#[test]
fn a_timed_out_request_is_denied_and_its_tool_never_ran() {
    let c = Case::new();
    let p = approval_profile(&c, "timeout = \"1s\"");
    let run = finish(spawn_agent(&c, &p, "tp write marker; echo rc=$?"));
    assert!(run.stdout.contains("rc=126"), "{run:#?}");
    assert!(run.stderr.contains("timed out after 1s"), "{run:#?}");
    assert!(!c.workspace.join("marker").exists(), "the tool never ran");
    let recs = records(&c);
    assert!(recs
        .iter()
        .any(|r| r["kind"] == "approval" && r["decision"] == "pending"));
    let call = call_records(&recs, "write")[0];
    assert_eq!(call["decision"], "deny");
    assert!(call.get("approver").is_none(), "nobody approved: {call}");
    assert!(
        !recs.iter().any(|r| r["kind"] == "call_end"),
        "no call ran: {recs:#?}"
    );
    verify(&c);
}

#[test]
fn a_session_grant_covers_its_rule_but_not_a_different_argv_pattern() {
    let c = Case::new();
    let p = approval_profile(&c, "timeout = \"30s\"");
    std::fs::write(c.workspace.join("log"), "").unwrap();
    let agent = spawn_agent(
        &c,
        &p,
        "tp write a; echo a=$?; tp write b; echo b=$?; tp append log; echo log=$?",
    );
    let sock = control(&c);
    let sock = sock.to_str().unwrap();
    let first = pending(&c, "write");
    let r = operator(&[
        "approve",
        &id(&first),
        "--socket",
        sock,
        "--for-session",
        "--ttl",
        "10m",
    ]);
    assert!(
        r.stdout
            .contains("calls matching the same rule this session, for 10m"),
        "{r:#?}"
    );
    // `write b` is the same rule: no new question. `append log` is another
    // rule (a risk-tagged allow): asked again, and denied here.
    let risky = pending(&c, "append");
    assert_eq!(risky["risk"], "delete");
    assert!(
        risky["rule"]
            .as_str()
            .unwrap()
            .starts_with("tools.tp.allow[1]"),
        "{risky}"
    );
    operator(&["deny", &id(&risky), "--socket", sock]);
    let run = finish(agent);
    assert!(
        run.stdout.contains("a=0") && run.stdout.contains("b=0"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("log=126"), "{run:#?}");
    assert!(c.workspace.join("b").exists());
    assert_eq!(
        std::fs::read_to_string(c.workspace.join("log")).unwrap(),
        ""
    );
    let recs = records(&c);
    let b = call_records(&recs, "write")
        .into_iter()
        .find(|r| r["argv"][1] == "b")
        .unwrap();
    assert!(
        b["approver"]
            .as_str()
            .unwrap()
            .contains(&format!("(grant from {})", id(&first))),
        "{b}"
    );
}

#[test]
fn a_count_grant_covers_the_same_argv_only() {
    let c = Case::new();
    let p = approval_profile(&c, "timeout = \"30s\"");
    let agent = spawn_agent(
        &c,
        &p,
        "tp write a; echo one=$?; tp write a; echo two=$?; tp write other; echo other=$?",
    );
    let sock = control(&c);
    let sock = sock.to_str().unwrap();
    let first = pending(&c, "write");
    operator(&["approve", &id(&first), "--socket", sock, "--count", "2"]);
    // The second `write a` is covered; `write other` asks again.
    let other = pending(&c, "write");
    assert_eq!(other["argv"][1], "other", "{other}");
    operator(&["deny", &id(&other), "--socket", sock]);
    let run = finish(agent);
    assert!(
        run.stdout.contains("one=0") && run.stdout.contains("two=0"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("other=126"), "{run:#?}");
    assert!(!c.workspace.join("other").exists());
}

fn hook(c: &Case, name: &str, body: &str) -> PathBuf {
    let path = c.dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

#[test]
fn the_hook_approves_with_the_request_as_json_on_stdin_and_a_clean_env() {
    let c = Case::new();
    let seen = c.dir.path().join("seen.json");
    let env = c.dir.path().join("env.txt");
    let h = hook(
        &c,
        "hook",
        &format!(
            "cat > {}; env > {}; echo 'approve change ticket 42'",
            seen.display(),
            env.display()
        ),
    );
    let p = approval_profile(
        &c,
        &format!("approver = \"command:{}\"\ntimeout = \"30s\"", h.display()),
    );
    let run = finish(spawn_agent(&c, &p, "tp write marker; echo rc=$?"));
    assert!(run.stdout.contains("rc=0"), "{run:#?}");
    assert!(c.workspace.join("marker").exists());
    let req: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&seen).unwrap().trim()).unwrap();
    assert_eq!(req["argv"], serde_json::json!(["write", "marker"]));
    assert_eq!(req["intent"], "tidy the release notes");
    assert_eq!(req["secrets"], serde_json::json!(["DEPLOY_TOKEN"]));
    let env = std::fs::read_to_string(&env).unwrap();
    assert!(
        !env.contains("tok-7f3a") && !env.contains("CORDON_AUDIT"),
        "{env}"
    );
    let recs = records(&c);
    let call = call_records(&recs, "write")[0];
    assert_eq!(call["decision"], "approve");
    assert_eq!(call["approver"], format!("hook:{}", h.display()));
}

#[test]
fn a_hook_that_hangs_is_killed_and_the_call_denied() {
    let c = Case::new();
    let tok = token("hang");
    // The hook starts a child that never ends (tagged with a token in its
    // argv) and waits for it.
    let h = hook(
        &c,
        "hang",
        &format!("/bin/sh -c 'sleep 1000; true' {tok} & wait"),
    );
    let p = approval_profile(
        &c,
        &format!("approver = \"command:{}\"\ntimeout = \"2s\"", h.display()),
    );
    let run = finish(spawn_agent(&c, &p, "tp write marker; echo rc=$?"));
    assert!(run.stdout.contains("rc=126"), "{run:#?}");
    assert!(run.stderr.contains("timed out"), "{run:#?}");
    assert!(!c.workspace.join("marker").exists());
    // The hook and what it started are gone (its whole process group).
    assert!(
        wait_until(Duration::from_secs(5), || processes_with(&tok).is_empty()),
        "the hung hook survived"
    );
}

#[test]
fn a_hook_that_answers_garbage_or_fails_denies() {
    for (name, body, expect) in [
        ("yes", "echo yes", "is not `approve` or `deny`"),
        (
            "late-word",
            "echo; echo approve",
            "is not `approve` or `deny`",
        ),
        ("approve-but-fails", "echo approve; exit 3", "failed"),
        ("deny", "echo deny change freeze", "change freeze"),
    ] {
        let c = Case::new();
        let h = hook(&c, name, body);
        let p = approval_profile(
            &c,
            &format!("approver = \"command:{}\"\ntimeout = \"30s\"", h.display()),
        );
        let run = finish(spawn_agent(&c, &p, "tp write marker; echo rc=$?"));
        assert!(run.stdout.contains("rc=126"), "{name}: {run:#?}");
        assert!(run.stderr.contains(expect), "{name}: {run:#?}");
        assert!(!c.workspace.join("marker").exists(), "{name}");
    }
}

#[test]
fn a_thousand_requests_hit_the_rate_limit_without_a_prompt_flood() {
    let c = Case::new();
    let asked = c.dir.path().join("asked");
    let h = hook(
        &c,
        "count",
        &format!("echo x >> {}; echo deny", asked.display()),
    );
    let p = approval_profile(
        &c,
        &format!(
            "approver = \"command:{}\"\nmax_per_minute = 10",
            h.display()
        ),
    );
    let script = "i=0; n=0; while [ $i -lt 1000 ]; do tp write m 2>/dev/null; [ $? = 126 ] && n=$((n+1)); i=$((i+1)); done; echo refused=$n";
    let run = finish(spawn_agent(&c, &p, script));
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(run.stdout.contains("refused=1000"), "{run:#?}");
    let prompts = std::fs::read_to_string(&asked)
        .unwrap_or_default()
        .lines()
        .count();
    assert_eq!(
        prompts, 10,
        "only max_per_minute requests reach an approver"
    );
    let recs = records(&c);
    let limited = call_records(&recs, "write")
        .iter()
        .filter(|r| {
            r["reason"]
                .as_str()
                .unwrap_or("")
                .contains("approval rate limit")
        })
        .count();
    assert_eq!(limited, 990);
    assert!(!c.workspace.join("m").exists());
}

#[test]
fn past_the_limit_the_profile_can_kill_the_session() {
    let c = Case::new();
    let p = approval_profile(
        &c,
        "timeout = \"30s\"\nmax_pending = 2\non_limit = \"kill\"",
    );
    // Three calls at once: two wait, the third is over the limit.
    let run = finish(spawn_agent(
        &c,
        &p,
        "tp write a & tp write b & sleep 1; tp write c; echo survived",
    ));
    assert_eq!(run.code, Some(86), "{run:#?}");
    assert!(!run.stdout.contains("survived"), "{run:#?}");
    assert!(run.stderr.contains("approval rate limit"), "{run:#?}");
    for f in ["a", "b", "c"] {
        assert!(!c.workspace.join(f).exists(), "{f}");
    }
}

#[test]
fn an_agent_that_connects_to_the_control_socket_is_killed() {
    let c = Case::new();
    let p = approval_profile(&c, "timeout = \"30s\"");
    let ctl = control(&c);
    let pr = probe();
    // The agent parks a call, then tries to approve it itself: it knows
    // its session id, so it can guess the request id.
    let script = format!(
        r#"tp write marker & sleep 1; id="$(echo $CORDON_SESSION | cut -c1-8)-1"; {} unix-send {} "{{\"op\":\"approve\",\"id\":\"$id\"}}"; echo survived"#,
        pr.display(),
        ctl.display()
    );
    let mut p = p;
    p.exec.push("/usr/bin/cut".into());
    let run = finish(spawn_agent(&c, &p, &script));
    assert_eq!(run.code, Some(86), "{run:#?}");
    assert!(!run.stdout.contains("survived"), "{run:#?}");
    assert!(
        run.stderr
            .contains("connected to the operator control socket"),
        "{run:#?}"
    );
    assert!(
        !c.workspace.join("marker").exists(),
        "the request was never approved"
    );
    // The supervisor stops it at the connect (it makes every connect of
    // the sandbox itself); where Landlock governs Unix sockets instead,
    // the control socket refuses the peer. Either way the kill is on
    // record with the reason.
    let recs = records(&c);
    let about_control = |r: &serde_json::Value| {
        r["reason"]
            .as_str()
            .is_some_and(|why| why.contains("control socket"))
    };
    assert!(
        recs.iter()
            .any(|r| (r["kind"] == "divergence" && about_control(r))
                || (r["kind"] == "approval" && r["decision"] == "kill" && about_control(r))),
        "{recs:#?}"
    );
    assert!(recs.iter().any(|r| r["kind"] == "divergence"));
    verify(&c);
}

#[test]
fn an_agent_running_cordon_approve_itself_is_killed() {
    let c = Case::new();
    let mut p = approval_profile(&c, "timeout = \"30s\"");
    // Even with cordon itself granted to the agent, its approve is refused.
    p.exec.push(path_str(&cordon()));
    p.exec.push("/usr/bin/cut".into());
    p.read.push("/etc/passwd".into());
    let script = format!(
        r#"tp write marker & sleep 1; id="$(echo $CORDON_SESSION | cut -c1-8)-1"; {} approve "$id" --socket {}; echo survived"#,
        cordon().display(),
        control(&c).display()
    );
    let run = finish(spawn_agent(&c, &p, &script));
    assert_eq!(run.code, Some(86), "{run:#?}");
    assert!(!run.stdout.contains("survived"), "{run:#?}");
    assert!(
        run.stderr
            .contains("connected to the operator control socket"),
        "{run:#?}"
    );
    assert!(!c.workspace.join("marker").exists());
}

#[test]
fn a_forged_answer_frame_on_the_broker_socket_is_divergence() {
    let c = Case::new();
    let p = approval_profile(&c, "timeout = \"30s\"");
    // An EXITED(0) frame, the supervisor's own kind, sent by the agent.
    let script = format!(
        "tp write marker & sleep 1; {} send-raw 050000001100000000; echo survived",
        probe().display()
    );
    let run = finish(spawn_agent(&c, &p, &script));
    assert_eq!(run.code, Some(86), "{run:#?}");
    assert!(run.stderr.contains("forged answer"), "{run:#?}");
    assert!(!run.stdout.contains("survived"), "{run:#?}");
    assert!(!c.workspace.join("marker").exists());
}

#[test]
fn a_peer_of_another_uid_is_refused_by_the_control_socket() {
    if !is_root() {
        eprintln!("skipped: needs root to act as another uid");
        return;
    }
    let c = Case::new();
    let p = approval_profile(&c, "timeout = \"30s\"");
    let agent = spawn_agent(&c, &p, "tp write marker; echo rc=$?");
    let req = pending(&c, "write");
    // A careless operator opened the socket and its directory to everyone;
    // the uid check still holds.
    let ctl = control(&c);
    std::fs::set_permissions(
        c.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(&ctl, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let r = Run::from(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(probe())
            .args(["unix-send", ctl.to_str().unwrap()])
            .arg(format!(r#"{{"op":"approve","id":"{}"}}"#, id(&req)))
            .output()
            .unwrap(),
    );
    assert!(
        r.stdout.contains("may not use this control socket"),
        "{r:#?}"
    );
    operator(&["deny", &id(&req), "--socket", ctl.to_str().unwrap()]);
    let run = finish(agent);
    assert!(run.stdout.contains("rc=126"), "{run:#?}");
    assert!(!c.workspace.join("marker").exists());
}

/// The tests keep the terminal prompt off (it would ask on the terminal of
/// whoever runs them); these turn it back on.
fn with_prompt(mut p: Profile) -> Profile {
    p.extra = p.extra.replace("prompt = false", "prompt = true");
    p
}

/// A new pseudo-terminal: the master, and the slave's path.
fn openpty() -> (std::fs::File, PathBuf) {
    use std::os::fd::FromRawFd;
    let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    assert!(fd >= 0, "posix_openpt");
    assert_eq!(unsafe { libc::grantpt(fd) }, 0);
    assert_eq!(unsafe { libc::unlockpt(fd) }, 0);
    let mut buf = [0 as libc::c_char; 128];
    assert_eq!(
        unsafe { libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len()) },
        0
    );
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    let master = unsafe { std::fs::File::from_raw_fd(fd) };
    (master, PathBuf::from(name.to_str().unwrap()))
}

/// Reads what the terminal shows until `want` appears (or 20 s pass).
fn read_until(master: &std::fs::File, want: &str) -> String {
    use std::os::fd::AsRawFd;
    let mut seen = Vec::new();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let mut fds = [libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if unsafe { libc::poll(fds.as_mut_ptr(), 1, 100) } > 0 {
            let mut buf = [0u8; 4096];
            match (&*master).read(&mut buf) {
                Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                // EIO while no process has the terminal open yet (or any more).
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
            if String::from_utf8_lossy(&seen).contains(want) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// `cordon run` whose controlling terminal is `slave`. With `agent_on_tty`
/// the agent's stdio is that terminal too (an interactive agent);
/// otherwise it goes to files in the case directory.
fn spawn_on_tty(c: &Case, p: &Profile, slave: &Path, agent_on_tty: bool, script: &str) -> Child {
    let run = format!(
        "exec {} run --profile {} --workspace {} --control-socket {} -- /usr/bin/dash -c '{}'",
        cordon().display(),
        c.profile_path(p).display(),
        c.workspace.display(),
        control(c).display(),
        script
    );
    let redirect = if agent_on_tty {
        String::new()
    } else {
        format!(
            " </dev/null >{} 2>{}",
            c.dir.path().join("out").display(),
            c.dir.path().join("err").display()
        )
    };
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(slave)
        .unwrap();
    Command::new("setsid")
        .args(["--ctty", "--wait", "/bin/sh", "-c"])
        .arg(format!("{run}{redirect}"))
        .env("CORDON_AUDIT", c.audit_path())
        .env("CORDON_TEST_DEPLOY_TOKEN", "tok-7f3a")
        .stdin(tty.try_clone().unwrap())
        .stdout(tty.try_clone().unwrap())
        .stderr(tty)
        .spawn()
        .unwrap()
}

#[test]
fn the_operator_answers_at_the_terminal_prompt_when_the_agent_cannot_reach_it() {
    let c = Case::new();
    let p = with_prompt(approval_profile(&c, "timeout = \"30s\""));
    let (master, slave) = openpty();
    // Held open so the terminal does not hang up between the shell's
    // redirections and cordon opening /dev/tty.
    let _keep = std::fs::File::open(&slave).unwrap();
    // The agent cannot open the terminal either (no grant reaches it).
    let mut child = spawn_on_tty(
        &c,
        &p,
        &slave,
        false,
        &format!(
            "{} write /dev/tty; tp write marker; echo rc=$?",
            probe().display()
        ),
    );
    let shown = read_until(&master, "denies");
    assert!(shown.contains("cordon: approval needed"), "{shown}");
    assert!(shown.contains("call:    tp write marker"), "{shown}");
    assert!(shown.contains("intent:  (none given)"), "{shown}");
    assert!(shown.contains("secrets: DEPLOY_TOKEN"), "{shown}");
    (&master).write_all(b"y\n").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let out = std::fs::read_to_string(c.dir.path().join("out")).unwrap();
    assert!(out.contains("rc=0"), "{out}");
    assert!(
        out.contains("EACCES"),
        "the agent opened the terminal: {out}"
    );
    assert!(c.workspace.join("marker").exists());
    let recs = records(&c);
    let call = call_records(&recs, "write")[0];
    assert!(
        call["approver"].as_str().unwrap().starts_with("tty uid "),
        "{call}"
    );
}

#[test]
fn an_agent_holding_the_terminal_gets_no_prompt_and_cannot_type_an_answer() {
    let c = Case::new();
    let p = with_prompt(approval_profile(&c, "timeout = \"2s\""));
    let (master, slave) = openpty();
    // The agent shares the terminal: it prints a fake prompt and a `y`.
    let mut child = spawn_on_tty(
        &c,
        &p,
        &slave,
        true,
        "tp write marker & printf \"approve? y\\ny\\n\"; wait; echo rc=done",
    );
    let shown = read_until(&master, "rc=done");
    assert!(shown.contains("approval prompt off"), "{shown}");
    assert!(!shown.contains("approval needed"), "{shown}");
    assert!(shown.contains("timed out"), "{shown}");
    child.wait().unwrap();
    assert!(
        !c.workspace.join("marker").exists(),
        "the agent's `y` approved nothing"
    );
}

#[test]
fn a_sub_agents_request_is_answered_through_the_root_control_socket_and_grants_are_not_inherited() {
    let c = Case::new();
    let p = approval_profile(&c, "timeout = \"30s\"");
    let sub = p.toml().replace("name = \"test\"", "name = \"sub\"");
    std::fs::write(c.workspace.join("sub.toml"), sub).unwrap();
    // The parent gets a session grant for `write *`; its sub-agent still
    // has to ask for its own `write`.
    let agent = spawn_agent(
        &c,
        &p,
        "tp write a; echo a=$?; cordon-shim spawn --profile sub.toml -- /usr/bin/dash -c 'tp write b; echo b=$?'; echo spawn=$?",
    );
    let sock = control(&c);
    let sock = sock.to_str().unwrap();
    let first = pending(&c, "write");
    operator(&["approve", &id(&first), "--socket", sock, "--for-session"]);
    let from_sub = pending(&c, "write");
    assert_eq!(from_sub["argv"][1], "b", "{from_sub}");
    assert_ne!(
        from_sub["session"], first["session"],
        "the sub-agent's own session"
    );
    assert_eq!(from_sub["profile"], "sub");
    let r = operator(&["approve", &id(&from_sub), "--socket", sock]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    let run = finish(agent);
    assert!(
        run.stdout.contains("a=0") && run.stdout.contains("b=0"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("spawn=0"), "{run:#?}");
    assert!(c.workspace.join("b").exists());
    let recs = records(&c);
    let b = call_records(&recs, "write")
        .into_iter()
        .find(|r| r["argv"][1] == "b")
        .unwrap();
    assert_eq!(b["approval"], from_sub["id"]);
    assert_eq!(b["chain"], serde_json::json!([first["session"]]));
}

#[test]
fn kill_9_of_cordon_leaves_no_hook_running() {
    let c = Case::new();
    let tok = token("hook9");
    // The hook is the probe, sleeping with a token in its argv.
    let p = approval_profile(
        &c,
        &format!(
            "approver = \"command:{} sleep 1000 {tok}\"\ntimeout = \"60s\"",
            probe().display()
        ),
    );
    let mut agent = spawn_agent(&c, &p, "tp write marker; echo rc=$?");
    assert!(
        wait_until(Duration::from_secs(20), || !processes_with(&tok).is_empty()),
        "the hook never started"
    );
    unsafe { libc::kill(agent.id() as i32, libc::SIGKILL) };
    let _ = agent.wait();
    assert!(
        wait_until(Duration::from_secs(5), || processes_with(&tok).is_empty()),
        "the hook survived cordon's death: {:?}",
        processes_with(&tok)
    );
    assert!(!c.workspace.join("marker").exists());
}
