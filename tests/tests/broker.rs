//! The broker, end to end: a real agent sandbox, the real shim, the real
//! socket, the real tool sandbox. Each test states the attack in its name.
#![allow(clippy::unwrap_used, clippy::undocumented_unsafe_blocks)] // test code

mod common;
use common::*;
use std::io::Read;
use std::process::Stdio;

/// A sandbox with dash for the agent and a few brokered tools. `tp` is a
/// copy of the probe run as a tool (outside the agent's exec grants).
fn broker_profile(c: &Case, extra_tools: &str) -> Profile {
    let tool_probe = c.tool_probe();
    let mut p = Profile::base();
    for util in ["dash", "ln", "readlink", "sleep"] {
        p.exec.push(format!("/usr/bin/{util}"));
    }
    p.read.push("{workspace}".into());
    p.write.push("{workspace}".into());
    p.extra = format!(
        r#"
[approval]
timeout = "1s"
prompt = false

[tools.cat]
path = "/usr/bin/cat"
allow = [["**"]]
deny = [["/etc/shadow"], ["**", "secret*", "**"]]

[tools.ls]
path = "/usr/bin/ls"
allow = [["-1"]]
approve = [["-la"]]

[tools.tp]
path = "{}"
allow = [["**"]]
{extra_tools}
"#,
        tool_probe.display()
    );
    p
}

#[test]
fn an_allowed_call_runs_the_real_tool_and_its_output_reaches_the_agent() {
    let c = Case::new();
    std::fs::write(c.workspace.join("f.txt"), "hello from the workspace\n").unwrap();
    let r = c.shell(&broker_profile(&c, ""), "cat f.txt; echo rc=$?");
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(
        r.stdout.contains("hello from the workspace\nrc=0"),
        "{r:#?}"
    );
}

#[test]
fn a_denied_call_exits_126_with_one_line_naming_the_rule() {
    let c = Case::new();
    std::fs::write(c.workspace.join("secret.txt"), "s3cr3t").unwrap();
    let r = c.shell(&broker_profile(&c, ""), "cat secret.txt; echo rc=$?");
    assert!(r.stdout.contains("rc=126"), "{r:#?}");
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with("cordon: denied:"))
        .unwrap();
    assert!(line.contains("deny[1]"), "{line}");
    assert!(!r.stdout.contains("s3cr3t") && !r.stderr.contains("s3cr3t"));
    // Nothing matched is denied too.
    let r = c.shell(&broker_profile(&c, ""), "ls -R; echo rc=$?");
    assert!(r.stdout.contains("rc=126"), "{r:#?}");
    assert!(
        r.stderr.contains("cordon: denied: no rule allows `ls -R`"),
        "{r:#?}"
    );
}

#[test]
fn an_approve_rule_nobody_answers_is_denied_at_its_timeout() {
    let c = Case::new();
    let r = c.shell(&broker_profile(&c, ""), "ls -la; echo rc=$?");
    assert!(r.stdout.contains("rc=126"), "{r:#?}");
    assert!(
        r.stderr.contains("cordon: denied: approval request")
            && r.stderr.contains("timed out after 1s"),
        "{r:#?}"
    );
}

#[test]
fn shell_chaining_yields_separate_decisions() {
    let c = Case::new();
    std::fs::write(c.workspace.join("f.txt"), "first\n").unwrap();
    let r = c.shell(&broker_profile(&c, ""), "cat f.txt && ls -la; echo rc=$?");
    assert!(r.stdout.contains("first"), "the allowed half ran: {r:#?}");
    assert!(
        r.stdout.contains("rc=126"),
        "the refused half was refused: {r:#?}"
    );
}

#[test]
fn executing_the_real_tool_by_absolute_path_is_a_brokered_call() {
    let c = Case::new();
    std::fs::write(c.workspace.join("f.txt"), "through the broker\n").unwrap();
    // In the agent's mount namespace /usr/bin/cat is the shim: an allowed
    // argv runs the real cat in its sandbox, a denied one is refused by
    // the rules, both recorded as calls of `cat`.
    let r = c.shell(
        &broker_profile(&c, ""),
        "/usr/bin/cat f.txt; echo rc=$?; /usr/bin/cat /etc/shadow; echo shadow=$?; \
         PATH=/usr/bin:/bin; cat /etc/shadow; echo reset=$?",
    );
    assert!(r.stdout.contains("through the broker\nrc=0"), "{r:#?}");
    assert!(
        r.stdout.contains("shadow=126") && r.stdout.contains("reset=126"),
        "{r:#?}"
    );
    assert_eq!(
        r.stderr
            .matches("cordon: denied: denied by rule deny[0]")
            .count(),
        2,
        "{r:#?}"
    );
    let log = std::fs::read_to_string(c.audit_path()).unwrap();
    assert_eq!(
        log.matches(r#""tool":"cat","argv":["/etc/shadow"]"#)
            .count(),
        2,
        "{log}"
    );
}

#[test]
fn a_shim_link_under_a_new_name_is_divergence() {
    let c = Case::new();
    // The agent finds the shim behind `cat` and links it as `evil`.
    let r = c.shell(
        &broker_profile(&c, ""),
        r#"ln -s "$(readlink "$(command -v cat)")" ./evil || exit 9; ./evil; echo survived"#,
    );
    r.killed_for("undeclared tool `evil`");
    assert!(!r.stdout.contains("survived"));
}

#[test]
fn exit_statuses_and_signals_of_the_tool_propagate() {
    let c = Case::new();
    let p = broker_profile(&c, "");
    let r = c.shell(&p, "tp exit 7; echo rc=$?; tp kill-self 15; echo rc=$?");
    assert!(r.stdout.contains("rc=7"), "{r:#?}");
    assert!(r.stdout.contains("rc=143"), "{r:#?}");
}

#[test]
fn the_tool_runs_in_its_own_sandbox_not_the_agents() {
    let c = Case::new();
    let p = broker_profile(&c, "");
    // The tool has no capabilities either, and a seccomp violation in the
    // tool stops the call, not the agent.
    let r = c.shell(
        &p,
        "tp caps; tp syscall ptrace; echo rc=$?; echo agent-alive",
    );
    assert!(
        r.stdout.contains("eff=0 prm=0 inh=0 bounding=0 ambient=0"),
        "{r:#?}"
    );
    assert!(
        r.stdout.contains("rc=126") && r.stdout.contains("agent-alive"),
        "{r:#?}"
    );
    assert!(r.stderr.contains("`tp` called `ptrace`"), "{r:#?}");
    assert_eq!(r.code, Some(0), "{r:#?}");
}

#[test]
fn a_tool_past_its_timeout_is_killed() {
    let c = Case::new();
    let mut p = broker_profile(&c, "timeout = \"300ms\"");
    p.stop_grace = "1s";
    let tok = token("timeout");
    let r = c.shell(&p, &format!("tp sleep 30 {tok}; echo rc=$?"));
    assert!(r.stdout.contains("rc=126"), "{r:#?}");
    assert!(r.stderr.contains("ran past its timeout of 300ms"), "{r:#?}");
    assert!(
        processes_with(&tok).is_empty(),
        "the timed-out tool survived"
    );
}

#[test]
fn sigterm_to_the_shim_cancels_the_tool() {
    let c = Case::new();
    let tok = token("cancel");
    let script =
        format!("tp sleep 30 {tok} & pid=$!; sleep 0.5; kill -TERM $pid; wait $pid; echo rc=$?");
    let r = c.shell(&broker_profile(&c, ""), &script);
    assert!(r.stdout.contains("rc=143"), "{r:#?}");
    assert!(
        processes_with(&tok).is_empty(),
        "the cancelled tool survived"
    );
}

#[test]
fn max_calls_is_enforced_per_tool() {
    let c = Case::new();
    let p = broker_profile(&c, "max_calls = 2");
    let r = c.shell(&p, "tp exit 0; tp exit 0; tp exit 0; echo rc=$?");
    assert!(r.stdout.contains("rc=126"), "{r:#?}");
    assert!(r.stderr.contains("reached its max_calls = 2"), "{r:#?}");
}

#[test]
fn repeated_refusals_past_max_denials_kill_the_session() {
    let c = Case::new();
    let mut p = broker_profile(&c, "");
    p.extra.push_str("\n[divergence]\nmax_denials = 2\n");
    let r = c.shell(&p, "ls -R; ls -R; echo still-here; ls -R; echo survived");
    assert!(r.stdout.contains("still-here"), "{r:#?}");
    r.killed_for("over max_denials = 2");
    assert!(!r.stdout.contains("survived"));
}

#[test]
fn a_call_from_outside_the_workspace_is_refused() {
    let c = Case::new();
    let r = c.shell(
        &broker_profile(&c, ""),
        "cd / && cat /etc/hostname; echo rc=$?",
    );
    assert!(r.stdout.contains("rc=126"), "{r:#?}");
    assert!(
        r.stderr.contains("working directory `/` is outside"),
        "{r:#?}"
    );
}

#[test]
fn forged_and_malformed_frames_get_an_error_and_the_session_keeps_serving() {
    let c = Case::new();
    let p = broker_profile(&c, "");
    std::fs::write(c.workspace.join("f.txt"), "still served\n").unwrap();
    let pr = probe();
    let pr = pr.display();
    let script = format!(
        // unknown kind; a 4 GiB length header; a valid-looking exec frame
        // without descriptors; then a normal call.
        "{pr} send-raw 0100000063; {pr} send-raw ffffffff01; {pr} send-raw 0700000001010003000000; cat f.txt"
    );
    let r = c.shell(&p, &script);
    let replies: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("reply "))
        .collect();
    assert_eq!(replies.len(), 3, "{r:#?}");
    assert!(replies[0].contains("unknown frame kind 99"), "{replies:?}");
    assert!(replies[1].contains("outside 1..="), "{replies:?}");
    assert!(replies[2].starts_with("reply 19"), "{replies:?}");
    assert!(r.stdout.contains("still served"), "{r:#?}");
    assert_eq!(r.code, Some(0), "{r:#?}");
}

#[test]
fn a_peer_that_sends_half_a_frame_and_stalls_is_dropped() {
    let c = Case::new();
    let p = broker_profile(&c, "");
    std::fs::write(c.workspace.join("f.txt"), "meanwhile\n").unwrap();
    let pr = probe();
    // The staller holds its half frame for 6 s, past the broker's 5 s
    // request timeout; a normal call in the meantime is served.
    let script = format!("{} send-raw 0a00 6 & cat f.txt; wait", pr.display());
    let r = c.shell(&p, &script);
    assert!(r.stdout.contains("meanwhile"), "{r:#?}");
    assert!(
        r.stdout.contains("reply 19") || r.stdout.contains("closed"),
        "{r:#?}"
    );
}

#[test]
fn a_thousand_connections_do_not_stop_other_sessions() {
    let c = Case::new();
    let p = broker_profile(&c, "");
    let other = Case::new();
    std::fs::write(other.workspace.join("f.txt"), "other session\n").unwrap();
    // Session A floods its own broker with 1000 idle connections.
    let mut flood = c.cordon_run(&p);
    flood
        .arg(probe())
        .args(["flood", "1000", "3"])
        .stdout(Stdio::piped());
    let (mut flooder, mut out) = spawn_until_line(flood, "opened 1000");
    // Session B serves calls meanwhile.
    for _ in 0..5 {
        let r = other.shell(&broker_profile(&other, ""), "cat f.txt");
        assert!(r.stdout.contains("other session"), "{r:#?}");
    }
    let status = flooder.wait().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
}

#[test]
fn another_sessions_socket_refuses_this_agent() {
    let c = Case::new();
    let p = broker_profile(&c, "");
    // Session B waits, after telling its socket path; the test hands the
    // path to session A.
    let b = Case::new();
    let pb = broker_profile(&b, "");
    let mut cmd = b.cordon_run(&pb);
    cmd.args([
        "/usr/bin/dash",
        "-c",
        "echo \"$CORDON_SOCKET\"; echo ready; read x",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut session_b = cmd.spawn().unwrap();
    let mut out = std::io::BufReader::new(session_b.stdout.take().unwrap());
    let mut sock = String::new();
    std::io::BufRead::read_line(&mut out, &mut sock).unwrap();
    std::fs::write(c.workspace.join("sock"), sock.trim()).unwrap();
    let r = c.shell(
        &p,
        "CORDON_SOCKET=$(cat sock) cat /etc/hostname; echo rc=$?",
    );
    assert!(r.stdout.contains("rc=126"), "{r:#?}");
    // Refused at connect: another session's broker is a Unix socket the
    // profile does not grant, so the other broker never sees this agent.
    assert!(r.stderr.contains("is not in [network] unix"), "{r:#?}");
    // A process outside every sandbox (this test) is refused as well.
    let mut s = std::os::unix::net::UnixStream::connect(sock.trim()).unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    assert!(
        String::from_utf8_lossy(&reply).contains("not in this session"),
        "{reply:?}"
    );
    drop(session_b.stdin.take());
    let _ = session_b.wait();
}

#[test]
fn two_hundred_megabytes_of_tool_output_arrive_intact() {
    let c = Case::new();
    let size = 200 * 1024 * 1024;
    let mut data = vec![0u8; size];
    let mut x: u32 = 12345;
    for b in data.iter_mut() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 24) as u8;
    }
    std::fs::write(c.workspace.join("big"), &data).unwrap();
    let mut cmd = c.cordon_run(&broker_profile(&c, ""));
    cmd.args(["/usr/bin/dash", "-c", "cat big"]);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout.len(), size);
    assert!(out.stdout == data, "the bytes differ");
}

#[test]
fn every_call_is_in_the_audit_log_and_the_chain_verifies() {
    let c = Case::new();
    std::fs::write(c.workspace.join("f.txt"), "x\n").unwrap();
    let r = c.shell(&broker_profile(&c, ""), "cat f.txt; ls -R; exit 3");
    assert_eq!(r.code, Some(3), "{r:#?}");
    let log = std::fs::read_to_string(c.audit_path()).unwrap();
    let kinds: Vec<&str> = log
        .lines()
        .map(|l| {
            l.split("\"kind\":\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(
        kinds,
        ["session_start", "call", "call_end", "call", "session_end"],
        "{log}"
    );
    assert!(
        log.contains("\"decision\":\"allow\"") && log.contains("\"decision\":\"deny\""),
        "{log}"
    );
    assert!(
        log.contains("spiffe://cordon.local/profile/test/session/"),
        "{log}"
    );
    let out = std::process::Command::new(cordon())
        .args(["audit", "verify"])
        .arg(c.audit_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The agent cannot write the log: the profile may not grant it.
    let mut p = broker_profile(&c, "");
    p.write.push(path_str(c.dir.path()));
    let r = c.shell(&p, "true");
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert!(r.stderr.contains("could rewrite its own record"), "{r:#?}");
}

#[test]
fn a_slow_tool_does_not_block_other_calls() {
    let c = Case::new();
    std::fs::write(c.workspace.join("f.txt"), "fast\n").unwrap();
    // If calls were served one at a time, `cat` would return only after the
    // slow call ended by itself (exit 0). Served concurrently, `cat` returns
    // while the slow call still runs, and cancelling it gives 143.
    let r = c.shell(
        &broker_profile(&c, ""),
        "tp sleep 20 & pid=$!; cat f.txt; kill -TERM $pid; wait $pid; echo rc=$?",
    );
    assert!(r.stdout.contains("fast"), "{r:#?}");
    assert!(r.stdout.contains("rc=143"), "{r:#?}");
}

#[test]
fn a_tool_cannot_be_the_agents_way_around_a_deny() {
    let c = Case::new();
    std::fs::write(c.workspace.join(".env"), "TOKEN=hidden-from-all").unwrap();
    let mut p = broker_profile(&c, "");
    p.deny.push("{workspace}/.env".into());
    // The agent asks a tool to read the file it may not read itself.
    let r = c.shell(&p, "cat .env; echo rc=$?; tp read .env; echo tp=$?");
    assert!(
        !r.stdout.contains("hidden-from-all") && !r.stderr.contains("hidden-from-all"),
        "{r:#?}"
    );
    assert!(
        r.stdout.contains("rc=1") && r.stdout.contains("tp=1"),
        "{r:#?}"
    );
    // A tool that unmasks the entry sees it.
    p.extra
        .push_str("\n[tools.tp.sandbox]\nunmask = [\"{workspace}/.env\"]\n");
    let r = c.shell(&p, "tp read .env; echo tp=$?");
    assert!(
        r.stdout.contains("tp=0") && r.stderr.contains("hidden-from-all"),
        "{r:#?}"
    );
}
