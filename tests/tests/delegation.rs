//! Sub-agents, end to end: `cordon-shim spawn --profile SUB -- CMD` from a
//! real agent sandbox. A sub-agent only gets narrower, runs as a session of
//! its own whose records name its parent, and dies with its parent.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;
use common::*;

use std::time::Duration;

/// The parent: dash, the probe, the workspace readable, and a brokered
/// `tp` that may `read` anything and `write` one file.
fn parent(c: &Case) -> Profile {
    let mut p = Profile::base();
    for util in ["dash", "sleep"] {
        p.exec.push(format!("/usr/bin/{util}"));
    }
    p.read.push("{workspace}".into());
    p.extra = tools(c, "allow = [[\"read\", \"**\"], [\"write\", \"*\"]]");
    p
}

fn tools(c: &Case, rules: &str) -> String {
    format!(
        "[tools.tp]\npath = \"{}\"\n{rules}\n",
        c.tool_probe().display()
    )
}

/// Writes `p` (renamed `sub`) into the workspace, where the agent can read it.
fn write_sub(c: &Case, p: &Profile) {
    let text = p.toml().replace("name = \"test\"", "name = \"sub\"");
    std::fs::write(c.workspace.join("sub.toml"), text).unwrap();
}

fn records(c: &Case) -> Vec<serde_json::Value> {
    std::fs::read_to_string(c.audit_path())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_sub_agent_runs_narrower_and_its_records_name_its_parent() {
    let c = Case::new();
    let p = parent(&c);
    let mut sub = p.clone();
    sub.extra = tools(&c, "allow = [[\"read\", \"**\"]]");
    write_sub(&c, &sub);
    let r = c.shell(
        &p,
        "cordon-shim spawn --profile sub.toml --intent 'read only' -- /usr/bin/dash -c 'tp read /dev/null; echo r=$?; tp write x; echo w=$?'; echo spawn=$?",
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(
        r.stdout.contains("r=0") && r.stdout.contains("w=126"),
        "{r:#?}"
    );
    assert!(r.stdout.contains("spawn=0"), "{r:#?}");
    assert!(
        !c.workspace.join("x").exists(),
        "the sub-agent could not write"
    );

    let recs = records(&c);
    let root = recs
        .iter()
        .find(|r| r["kind"] == "session_start" && r.get("chain").is_none())
        .unwrap();
    let root_id = root["session"].as_str().unwrap();
    let sub_start = recs
        .iter()
        .find(|r| r["kind"] == "session_start" && r.get("chain").is_some())
        .expect("the sub-agent's session_start");
    assert_eq!(sub_start["chain"], serde_json::json!([root_id]));
    assert_eq!(sub_start["profile"], "sub");
    assert_eq!(sub_start["intent"], "read only");
    let sub_id = sub_start["session"].as_str().unwrap();
    assert_ne!(sub_id, root_id);
    // The sub-agent's refused call is its own, and names the chain.
    let refused = recs
        .iter()
        .find(|r| r["kind"] == "call" && r["session"] == sub_id && r["decision"] == "deny")
        .unwrap();
    assert_eq!(refused["chain"], serde_json::json!([root_id]));
    // The parent's record of the spawn names the sub-session.
    assert!(recs.iter().any(|r| r["kind"] == "call_end"
        && r["session"] == root_id
        && r["detail"].as_str().unwrap_or("").contains(sub_id)));
    let v = Run::from(
        cordon_cmd()
            .args(["audit", "verify", c.audit_path().to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_eq!(v.code, Some(0), "{v:#?}");
}

/// One change to a sub-profile.
type Edit = dyn Fn(&mut Profile);

#[test]
fn a_widening_sub_profile_is_refused_naming_the_part() {
    let c = Case::new();
    let p = parent(&c);
    let widen: [(&str, Box<Edit>); 5] = [
        (
            "`[filesystem] read` entry `/etc`",
            Box::new(|s| s.read.push("/etc".into())),
        ),
        (
            "`[network] connect_tcp` port 22",
            Box::new(|s| s.connect_tcp.push(22)),
        ),
        (
            "`[tools.tp] allow` rule [\"write\", \"**\"]",
            Box::new(|s| s.extra = s.extra.replace("[\"write\", \"*\"]", "[\"write\", \"**\"]")),
        ),
        (
            "tool `[tools.cat]` is not a tool of the parent",
            Box::new(|s| {
                s.extra
                    .push_str("\n[tools.cat]\npath = \"/usr/bin/cat\"\nallow = [[\"**\"]]\n")
            }),
        ),
        (
            "secret `[secrets.TOKEN]` is not a secret of the parent",
            Box::new(|s| {
                s.extra
                    .push_str("\n[secrets.TOKEN]\nfrom = \"env:HOME\"\nexpose = true\n")
            }),
        ),
    ];
    for (want, edit) in widen {
        let mut sub = p.clone();
        edit(&mut sub);
        write_sub(&c, &sub);
        let r = c.shell(
            &p,
            "cordon-shim spawn --profile sub.toml -- /usr/bin/dash -c 'echo inside'; echo spawn=$?",
        );
        assert!(r.stdout.contains("spawn=126"), "{want}: {r:#?}");
        assert!(!r.stdout.contains("inside"), "{want}: {r:#?}");
        assert!(
            r.stderr
                .contains("cordon: denied: sub-agent profile grants more than this session's"),
            "{r:#?}"
        );
        assert!(r.stderr.contains(want), "want {want}: {r:#?}");
    }
}

#[test]
fn a_sub_agents_divergence_kills_only_the_sub_agent() {
    let c = Case::new();
    let p = parent(&c);
    write_sub(&c, &p);
    // The sub-agent runs /usr/bin/cat, which neither profile grants.
    let r = c.shell(
        &p,
        "cordon-shim spawn --profile sub.toml -- /usr/bin/dash -c '/usr/bin/cat /etc/hostname; echo sub-survived'; echo spawn=$?",
    );
    assert_eq!(r.code, Some(0), "the parent lives on: {r:#?}");
    assert!(r.stdout.contains("spawn=86"), "{r:#?}");
    assert!(!r.stdout.contains("sub-survived"), "{r:#?}");
    assert!(r.stderr.contains("cordon: killed: sub-agent"), "{r:#?}");
    let recs = records(&c);
    assert!(
        recs.iter()
            .any(|r| r["kind"] == "divergence" && r.get("chain").is_some()),
        "{recs:#?}"
    );
    assert!(recs.iter().any(|r| r["kind"] == "call_end"
        && r["decision"] == "kill"
        && r["reason"].as_str().unwrap_or("").contains("diverged")));
}

#[test]
fn killing_the_parent_leaves_no_sub_agent_process() {
    let c = Case::new();
    let p = parent(&c);
    write_sub(&c, &p);
    let tok = token("sub");
    let script = format!(
        "cordon-shim spawn --profile sub.toml -- {} sleep 1000 {tok} & sleep 1; /usr/bin/cat /etc/hostname; echo survived",
        probe().display()
    );
    let r = c.shell(&p, &script);
    assert_eq!(r.code, Some(86), "{r:#?}");
    assert!(!r.stdout.contains("survived"));
    assert!(
        r.stdout.contains("ready"),
        "the sub-agent was running: {r:#?}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || processes_with(&tok).is_empty()),
        "a sub-agent survived its parent"
    );
}

#[test]
fn a_sub_agent_cannot_use_extends_or_an_unreadable_profile() {
    let c = Case::new();
    let p = parent(&c);
    std::fs::write(
        c.workspace.join("sub.toml"),
        "[profile]\nname = \"sub\"\nextends = \"/etc/passwd\"\n",
    )
    .unwrap();
    let r = c.shell(
        &p,
        "cordon-shim spawn --profile sub.toml -- /usr/bin/dash -c 'echo inside'; echo spawn=$?",
    );
    assert!(r.stdout.contains("spawn=126"), "{r:#?}");
    assert!(
        r.stderr
            .contains("has 1 error(s), the first at line:column 3:11"),
        "{r:#?}"
    );
    // A profile outside the agent's grants cannot even be read.
    let r = c.shell(
        &p,
        &format!(
            "cordon-shim spawn --profile {} -- /usr/bin/dash -c 'echo inside'; echo spawn=$?",
            c.outside.join("x.toml").display()
        ),
    );
    assert!(r.stdout.contains("spawn=2"), "{r:#?}");
    assert!(r.stderr.contains("cannot read"), "{r:#?}");
}

#[test]
fn with_sub_agent_kill_a_sub_agents_divergence_kills_the_parent_too() {
    let c = Case::new();
    let mut p = parent(&c);
    p.extra.push_str("\n[divergence]\nsub_agent = \"kill\"\n");
    write_sub(&c, &p);
    let r = c.shell(
        &p,
        "cordon-shim spawn --profile sub.toml -- /usr/bin/dash -c '/usr/bin/cat /etc/hostname'; echo parent-survived",
    );
    assert_eq!(r.code, Some(86), "{r:#?}");
    assert!(!r.stdout.contains("parent-survived"), "{r:#?}");
    assert!(r.stderr.contains("had sub-agent session"), "{r:#?}");
}

#[test]
fn a_hand_made_spawn_frame_without_a_command_is_refused_and_the_broker_lives() {
    let c = Case::new();
    let p = parent(&c);
    // SPAWN, version 2, empty name, profile and intent, argc 0, empty cwd:
    // refused by name; then a normal call is still served (the supervisor
    // did not fall over).
    let frame = "170000000402000000000000000000000000000000000000000000";
    let r = c.shell(
        &p,
        &format!(
            "{} send-raw {frame}; tp read /dev/null; echo rc=$?",
            probe().display()
        ),
    );
    assert!(
        r.stdout.contains("reply 16") && r.stdout.contains("spawn needs a command"),
        "{r:#?}"
    );
    assert!(r.stdout.contains("rc=0"), "{r:#?}");
}
