//! Every refusal is visible: one line on cordon's stderr (once, even when
//! the refused process shares it) and a record in the audit log; refusals
//! the profile tolerates (`[divergence] tolerated_execs`,
//! `tolerated_hosts`) are refused, said once and recorded, but never
//! counted nor killed for; an agent that brings its own namespace sandbox
//! is told what to do about it.
#![allow(clippy::unwrap_used)] // test code

mod common;
use common::*;

/// The records of kind `kind` in the case's audit log.
fn records(c: &Case, kind: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(c.audit_path())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["kind"] == kind)
        .collect()
}

fn shell_profile() -> Profile {
    let mut p = Profile::base();
    p.exec.push("/usr/bin/dash".into());
    p.read.push("/usr/bin".into());
    p
}

#[test]
fn a_tolerated_exec_is_refused_recorded_and_said_once_but_never_divergence() {
    let c = Case::new();
    let mut p = shell_profile();
    // undeclared_tool stays "kill": /usr/bin/id still kills.
    p.extra = "[divergence]\ntolerated_execs = [\"/usr/bin/true\"]\n".into();
    let r = c.shell(
        &p,
        "/usr/bin/true; echo a=$?; /usr/bin/true; echo b=$?; /usr/bin/id; echo survived",
    );
    assert!(r.stdout.contains("a=126\nb=126"), "{r:#?}");
    r.killed_for("executed `/usr/bin/id`");
    assert!(!r.stdout.contains("survived"), "{r:#?}");
    assert_eq!(
        r.stderr
            .matches("tolerated by divergence.tolerated_execs[0]")
            .count(),
        1,
        "said once: {r:#?}"
    );
    let v = records(&c, "violation");
    assert_eq!(v.len(), 2, "{v:#?}");
    for rec in &v {
        assert_eq!(rec["rule"], "divergence.tolerated_execs[0]", "{rec}");
        assert_eq!(rec["decision"], "deny", "{rec}");
        assert_eq!(rec["detail"], "exec /usr/bin/true", "{rec}");
    }
    assert_eq!(records(&c, "divergence").len(), 1);
}

#[test]
fn a_tolerated_exec_inside_an_exec_grant_is_a_profile_error() {
    let c = Case::new();
    let mut p = shell_profile();
    p.extra = "[divergence]\ntolerated_execs = [\"/usr/bin/dash\"]\n".into();
    let out = cordon_cmd()
        .arg("check")
        .arg(c.profile_path(&p))
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(
        r.stderr.contains(
            "`tolerated_execs` entry `/usr/bin/dash` lies in the exec grant `/usr/bin/dash`"
        ),
        "{r:#?}"
    );
}

/// Denied execs (`undeclared_tool = "deny"`), denied syscalls
/// (`on_violation = "deny"`) and refused connects of the sandbox's own
/// sockets each leave a line and a record.
#[test]
fn denied_execs_syscalls_and_connects_are_said_and_recorded() {
    let c = Case::new();
    let mut p = shell_profile();
    p.on_violation = "deny";
    p.extra = "[divergence]\nundeclared_tool = \"deny\"\n".into();
    let probe = probe().display().to_string();
    let r = c.shell(
        &p,
        &format!(
            "/usr/bin/id; echo id=$?; {probe} syscall ptrace; {probe} connect-abstract cordon-test; echo done"
        ),
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(
        r.stdout.contains("id=126") && r.stdout.contains("done"),
        "{r:#?}"
    );
    for line in [
        "cordon: denied: pid ",
        "executed `/usr/bin/id`, which is neither under [filesystem] exec nor a declared tool (returned EACCES)",
        "called `ptrace` (returned EPERM)",
        "abstract",
    ] {
        assert!(r.stderr.contains(line), "missing {line:?}: {r:#?}");
    }
    let v = records(&c, "violation");
    let exec = v
        .iter()
        .find(|r| r["detail"] == "exec /usr/bin/id")
        .unwrap_or_else(|| panic!("{v:#?}"));
    assert_eq!(exec["rule"], "divergence.undeclared_tool");
    assert_eq!(exec["decision"], "deny");
    assert!(exec["pid"].as_u64().is_some(), "{exec}");
    let sys = v
        .iter()
        .find(|r| r["detail"] == "`ptrace`")
        .unwrap_or_else(|| panic!("{v:#?}"));
    assert_eq!(sys["rule"], "syscalls.on_violation");
    let connects = records(&c, "connect");
    assert_eq!(connects.len(), 1, "{connects:#?}");
    assert_eq!(connects[0]["decision"], "deny");
    assert_eq!(connects[0]["detail"], "connect");
    assert!(
        connects[0]["reason"].as_str().unwrap().contains("abstract"),
        "{connects:#?}"
    );
    let verify = cordon_cmd()
        .args(["audit", "verify"])
        .arg(c.audit_path())
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
}

/// A refused brokered call is said on the caller's stderr by the shim; an
/// agent CLI captures that (its model sees it), so cordon says it on its
/// own stderr too, naming the call, unless the caller's stderr is
/// cordon's (then once is enough).
#[test]
fn a_refused_call_is_said_on_cordons_stderr_once_whoever_holds_the_callers() {
    let c = Case::new();
    let mut p = shell_profile();
    p.extra = "[tools.cat]\npath = \"/usr/bin/cat\"\nallow = [[\"-n\", \"*\"]]\n\
               deny = [[\"**\", \"secret*\", \"**\"]]\n"
        .into();
    // The caller's stderr is cordon's: one line, the shim's.
    let r = c.shell(&p, "cat secret.txt; echo rc=$?");
    assert!(r.stdout.contains("rc=126"), "{r:#?}");
    assert_eq!(r.stderr.matches("cordon: denied:").count(), 1, "{r:#?}");
    // The caller's stderr is captured: cordon says it, with the call.
    let r = c.shell(&p, "cat secret.txt 2>/dev/null; echo rc=$?");
    assert!(r.stdout.contains("rc=126"), "{r:#?}");
    assert_eq!(r.stderr.matches("cordon: denied:").count(), 1, "{r:#?}");
    assert!(
        r.stderr
            .contains(": cat secret.txt: denied by rule deny[0]"),
        "{r:#?}"
    );
    // What the agent chose as arguments cannot drive cordon's terminal.
    let r = c.shell(
        &p,
        "cat \"$(printf 'secret\\033[2J')\" 2>/dev/null; echo rc=$?",
    );
    assert!(r.stdout.contains("rc=126"), "{r:#?}");
    assert!(!r.stderr.contains('\u{1b}'), "{r:#?}");
}

/// An agent starting a namespace sandbox of its own (Codex runs
/// bubblewrap) is killed, as before, with a message that says what it was
/// doing and which switch turns it off.
#[test]
fn an_agent_that_brings_its_own_namespace_sandbox_is_told_how_to_turn_it_off() {
    let c = Case::new();
    let p = Profile::base();
    let r = c.run(&p, &["syscall", "unshare-user"]);
    r.killed_for("called `unshare` with CLONE_NEWUSER (cordon-probe)");
    assert!(
        r.stderr.contains("making namespaces")
            && r.stderr
                .contains("--dangerously-bypass-approvals-and-sandbox"),
        "{r:#?}"
    );
    let d = records(&c, "divergence");
    assert!(
        d[0]["reason"]
            .as_str()
            .unwrap()
            .contains("`unshare` with CLONE_NEWUSER"),
        "{d:#?}"
    );
    // Running bubblewrap itself, where it is installed, says the same.
    if std::path::Path::new("/usr/bin/bwrap").exists() {
        let mut p = Profile::base();
        p.read.push("/usr/bin".into());
        let r = c.run(&p, &["exec", "/usr/bin/bwrap"]);
        r.killed_for("`bwrap` builds a namespace sandbox of its own");
    }
}
