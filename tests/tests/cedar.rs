//! Cedar policies on every decision path, end to end on the real kernel:
//! exec (argv exact and canonical, `@approve` through the approval gate),
//! connect (the egress proxies of the agent and of a tool call), secret
//! (`cordon-shim secret` and a tool call's secrets) and spawn. Each path
//! shows a forbid narrowing what the TOML rules allow, and a permit that
//! tries to widen a TOML deny changing nothing.
#![allow(clippy::unwrap_used)] // test code

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A permit of everything: the widening every test tries.
const PERMIT_ALL: &str = "@id(\"permit-everything\")\npermit (principal, action, resource);\n";

fn write_policies(c: &Case, text: &str) {
    std::fs::write(c.dir.path().join("team.cedar"), text).unwrap();
}

/// A dash script at `c.dir/NAME` that prints what it was run with.
fn script_tool(c: &Case, name: &str) -> PathBuf {
    let path = c.dir.path().join(name);
    std::fs::write(&path, format!("#!/usr/bin/dash\necho \"{name} ran: $*\"\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

fn records(c: &Case) -> Vec<serde_json::Value> {
    std::fs::read_to_string(c.audit_path())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn of_kind<'a>(recs: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    recs.iter().filter(|r| r["kind"] == kind).collect()
}

fn policies(r: &serde_json::Value) -> Vec<String> {
    r["policies"]
        .as_array()
        .map(|a| a.iter().map(|p| p.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn exec_forbids_match_the_canonical_argv_and_a_permit_cannot_widen_a_toml_deny() {
    let c = Case::new();
    let git = script_tool(&c, "git");
    write_policies(
        &c,
        &format!(
            "@id(\"no-force-push\")\n\
             forbid (principal, action == Cordon::Action::\"exec\", resource == Cordon::Tool::\"git\")\n\
             when {{ context.canonical_args.contains(\"--force\") }};\n\n{PERMIT_ALL}"
        ),
    );
    let mut p = Profile::base();
    p.exec.push("/usr/bin/dash".into());
    p.extra = format!(
        r#"
[tools.git]
path = "{git}"
grammar = "git"
allow = [["status"], ["push", "**"]]
deny = [["push", "**", "--delete", "**"]]

[divergence]
max_denials = 20

[policy]
cedar = "team.cedar"
"#,
        git = git.display()
    );
    let r = c.shell(
        &p,
        "git status; echo status=$?; \
         git push origin main; echo plain=$?; \
         git push -f origin main; echo short=$?; \
         git push -uf origin main; echo bundled=$?; \
         git push --force origin main; echo long=$?; \
         git push --fo origin main; echo ambiguous=$?; \
         git push --del origin old; echo delete=$?",
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    for ok in ["status=0", "plain=0"] {
        assert!(r.stdout.contains(ok), "{ok}: {r:#?}");
    }
    for refused in [
        "short=126",
        "bundled=126",
        "long=126",
        "ambiguous=126",
        "delete=126",
    ] {
        assert!(r.stdout.contains(refused), "{refused}: {r:#?}");
    }
    assert_eq!(r.stdout.matches("git ran:").count(), 2, "{r:#?}");
    assert_eq!(
        r.stderr
            .matches("forbidden by Cedar policy no-force-push")
            .count(),
        3,
        "{r:#?}"
    );
    let recs = records(&c);
    let calls: Vec<_> = of_kind(&recs, "call")
        .into_iter()
        .filter(|r| r["tool"] == "git")
        .collect();
    assert_eq!(calls.len(), 7, "{calls:#?}");
    assert_eq!(calls[0]["decision"], "allow");
    assert_eq!(policies(calls[0]), ["permit-everything"]);
    // `-f`, `-uf` and `--force` are one canonical option to the policy.
    for call in &calls[2..5] {
        assert_eq!(call["decision"], "deny", "{call:#}");
        assert_eq!(policies(call), ["no-force-push"], "{call:#}");
        let canonical = call["canonical"].as_array().unwrap();
        assert!(canonical.iter().any(|a| a == "--force"), "{call:#}");
    }
    assert_eq!(
        calls[2]["argv"],
        serde_json::json!(["push", "-f", "origin", "main"])
    );
    // An ambiguous abbreviation and a TOML deny are final: no policy is
    // asked, so the permit-everything policy does not reach them.
    for call in &calls[5..7] {
        assert_eq!(call["decision"], "deny", "{call:#}");
        assert!(call.get("policies").is_none(), "{call:#}");
    }
    assert!(
        calls[6]["rule"]
            .as_str()
            .unwrap()
            .starts_with("tools.git.deny[0]"),
        "{:#}",
        calls[6]
    );
}

/// An approval hook that approves calls whose request names `prod-eu`,
/// denies the rest, and keeps every request it saw.
fn approving_hook(c: &Case) -> (PathBuf, PathBuf) {
    let seen = c.dir.path().join("seen.jsonl");
    let hook = c.dir.path().join("hook");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nreq=$(cat)\necho \"$req\" >> {seen}\ncase \"$req\" in *prod-eu*) echo 'approve change 7';; *) echo 'deny not today';; esac\n",
            seen = seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (hook, seen)
}

#[test]
fn an_approve_policy_sends_an_allowed_exec_call_to_a_person() {
    let c = Case::new();
    let deploy = script_tool(&c, "deploy");
    let (hook, seen) = approving_hook(&c);
    write_policies(
        &c,
        "@id(\"prod-asks\")\n@approve(\"production deploys need a person\")\n\
         permit (principal, action == Cordon::Action::\"exec\", resource == Cordon::Tool::\"deploy\")\n\
         when { context.argv like \"*prod*\" };\n",
    );
    let mut p = Profile::base();
    p.exec.push("/usr/bin/dash".into());
    p.extra = format!(
        r#"
[tools.deploy]
path = "{deploy}"
allow = [["*"]]

[approval]
prompt = false
approver = "command:{hook}"
timeout = "30s"

[divergence]
max_denials = 20

[policy]
cedar = "team.cedar"
"#,
        deploy = deploy.display(),
        hook = hook.display()
    );
    let r = c.shell(
        &p,
        "deploy staging; echo staging=$?; deploy prod-eu; echo eu=$?; deploy prod-us; echo us=$?",
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(
        r.stdout.contains("deploy ran: staging\nstaging=0"),
        "{r:#?}"
    );
    assert!(r.stdout.contains("deploy ran: prod-eu\neu=0"), "{r:#?}");
    assert!(r.stdout.contains("us=126"), "{r:#?}");
    assert!(!r.stdout.contains("ran: prod-us"), "{r:#?}");
    assert!(r.stderr.contains("not today"), "{r:#?}");
    // The hook was asked twice (not for staging, which no policy speaks
    // to), and each request says which policy asked, on which rule.
    let asked = std::fs::read_to_string(&seen).unwrap();
    let asked: Vec<serde_json::Value> = asked
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(asked.len(), 2, "{asked:#?}");
    let rule = asked[0]["rule"].as_str().unwrap();
    assert!(
        rule.starts_with("tools.deploy.allow[0]")
            && rule.ends_with("and Cedar policy prod-asks (@approve)"),
        "{rule}"
    );
    let recs = records(&c);
    let calls: Vec<_> = of_kind(&recs, "call")
        .into_iter()
        .filter(|r| r["tool"] == "deploy")
        .collect();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert_eq!(calls[0]["decision"], "allow");
    assert!(calls[0].get("policies").is_none(), "{:#}", calls[0]);
    assert_eq!(calls[1]["decision"], "approve");
    assert_eq!(calls[1]["approver"], format!("hook:{}", hook.display()));
    assert_eq!(policies(calls[1]), ["prod-asks"]);
    assert_eq!(calls[2]["decision"], "deny");
    assert_eq!(policies(calls[2]), ["prod-asks"]);
}

/// A local HTTP server outside every sandbox that counts its requests.
struct Upstream {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&hits);
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                seen.fetch_add(1, Ordering::SeqCst);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match conn.read(&mut b) {
                        Ok(1) => head.push(b[0]),
                        _ => break,
                    }
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nhi\n",
                );
            }
        });
        Upstream { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn client_profile() -> Profile {
    let mut p = Profile::base();
    p.read = ["/usr", "/etc", "/lib", "/lib64", "/dev/urandom"]
        .map(String::from)
        .to_vec();
    p.exec = vec![
        probe().display().to_string(),
        "/usr/bin".into(),
        "/usr/lib".into(),
        "/lib".into(),
        "/lib64".into(),
        "/usr/lib64".into(),
    ];
    p
}

#[test]
fn connect_policies_narrow_the_host_rules_of_the_agent_and_of_a_tool() {
    assert!(Path::new("/usr/bin/curl").exists(), "curl is needed");
    let (a, b, not_allowed, asks) = (
        Upstream::start(),
        Upstream::start(),
        Upstream::start(),
        Upstream::start(),
    );
    let c = Case::new();
    // The tool is curl made a program of its own (bytes appended).
    let curl = c.dir.path().join("curl");
    let mut bytes = std::fs::read("/usr/bin/curl").unwrap();
    bytes.extend_from_slice(b"\0cordon: curl as a tool\n");
    std::fs::write(&curl, bytes).unwrap();
    std::fs::set_permissions(&curl, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    write_policies(
        &c,
        &format!(
            "@id(\"agent-not-b\")\n\
             forbid (principal, action == Cordon::Action::\"connect\", resource == Cordon::Host::\"localhost\")\n\
             when {{ context.port == {b} && context.tool == \"\" }};\n\
             @id(\"fetch-stays-home\")\n\
             forbid (principal, action == Cordon::Action::\"connect\", resource)\n\
             when {{ context.tool == \"fetch\" && context.host like \"local*\" }};\n\
             @id(\"ask-d\")\n@approve\n\
             permit (principal, action == Cordon::Action::\"connect\", resource) when {{ context.port == {d} }};\n\
             {PERMIT_ALL}",
            b = b.port,
            d = asks.port
        ),
    );
    let mut p = client_profile();
    for u in [&a, &b, &asks] {
        p.allow_hosts
            .push(format!("localhost:{} via 127.0.0.1", u.port));
    }
    p.extra = format!(
        r#"
[tools.fetch]
path = "{curl}"
allow = [["-fsS", "-m", "10", "*"]]

[tools.fetch.sandbox]
allow_hosts = ["localhost:{a} via 127.0.0.1"]

[divergence]
max_denials = 20

[policy]
cedar = "team.cedar"
"#,
        curl = curl.display(),
        a = a.port
    );
    let get = |port: u16, name: &str| {
        format!(
            "curl -sS -m 10 -o /dev/null -w '{name}=%{{http_code}}\\n' http://localhost:{port}/; "
        )
    };
    let script = format!(
        "{}{}{}{}fetch -fsS -m 10 http://localhost:{}/; echo fetch=$?",
        get(a.port, "a"),
        get(b.port, "b"),
        get(not_allowed.port, "c"),
        get(asks.port, "d"),
        a.port
    );
    let r = c.shell(&p, &script);
    assert_eq!(r.code, Some(0), "{r:#?}");
    for want in ["a=200", "b=403", "c=403", "d=403", "fetch=22"] {
        assert!(r.stdout.contains(want), "{want}: {r:#?}");
    }
    assert_eq!(
        (a.hits(), b.hits(), not_allowed.hits(), asks.hits()),
        (1, 0, 0, 0)
    );
    let recs = records(&c);
    let conns = of_kind(&recs, "connect");
    assert_eq!(conns.len(), 5, "{conns:#?}");
    assert_eq!(conns[0]["decision"], "allow");
    assert_eq!(policies(conns[0]), ["permit-everything"]);
    // A forbid narrows an allow_hosts rule.
    assert_eq!(conns[1]["decision"], "deny");
    assert_eq!(policies(conns[1]), ["agent-not-b"]);
    assert_eq!(conns[1]["rule"], "network.allow_hosts[1]");
    // The permit does not reach a host no rule allows.
    assert_eq!(conns[2]["decision"], "deny");
    assert!(conns[2].get("policies").is_none(), "{:#}", conns[2]);
    assert!(
        conns[2]["reason"]
            .as_str()
            .unwrap()
            .contains("not in allow_hosts"),
        "{:#}",
        conns[2]
    );
    // No person is asked about a connection: `@approve` refuses.
    assert_eq!(conns[3]["decision"], "deny");
    assert!(
        conns[3]["reason"]
            .as_str()
            .unwrap()
            .contains("asks for approval"),
        "{:#}",
        conns[3]
    );
    // The tool's own proxy asks the same policies, naming the tool.
    assert_eq!(conns[4]["tool"], "fetch");
    assert_eq!(conns[4]["decision"], "deny");
    assert_eq!(policies(conns[4]), ["fetch-stays-home"]);
}

#[test]
fn secret_and_spawn_policies_refuse_what_the_profile_allows() {
    let c = Case::new();
    write_policies(
        &c,
        &format!(
            "@id(\"keep-other-id\")\n\
             forbid (principal, action == Cordon::Action::\"secret\", resource == Cordon::Secret::\"OTHER_ID\")\n\
             when {{ context.tool == \"\" }};\n\
             @id(\"no-token-for-tp\")\n\
             forbid (principal, action == Cordon::Action::\"secret\", resource == Cordon::Secret::\"DEPLOY_TOKEN\")\n\
             when {{ context.tool == \"tp\" }};\n\
             @id(\"no-sub-agents\")\n\
             forbid (principal, action == Cordon::Action::\"spawn\", resource == Cordon::Profile::\"sub\");\n\
             {PERMIT_ALL}"
        ),
    );
    let mut p = Profile::base();
    p.exec.push("/usr/bin/dash".into());
    p.read.push("{workspace}".into());
    let sub = p.toml().replace("name = \"test\"", "name = \"sub\"");
    std::fs::write(c.workspace.join("sub.toml"), sub).unwrap();
    p.extra = format!(
        r#"
[tools.tp]
path = "{tp}"
allow = [["exit", "*"]]
secrets = ["DEPLOY_TOKEN"]

[tools.tp2]
path = "{tp}"
allow = [["exit", "*"]]

[secrets.DEPLOY_TOKEN]
from = "env:CORDON_TEST_DEPLOY"

[secrets.PUBLIC_ID]
from = "env:CORDON_TEST_PUBLIC"
expose = true

[secrets.OTHER_ID]
from = "env:CORDON_TEST_PUBLIC"
expose = true

[divergence]
max_denials = 20

[policy]
cedar = "team.cedar"
"#,
        tp = c.tool_probe().display()
    );
    let mut cmd = c.cordon_run(&p);
    cmd.args([
        "/usr/bin/dash",
        "-c",
        "cordon-shim secret PUBLIC_ID; echo; echo public=$?; \
         cordon-shim secret OTHER_ID; echo other=$?; \
         tp exit 0; echo tp=$?; tp2 exit 0; echo tp2=$?; \
         cordon-shim spawn --profile sub.toml -- /usr/bin/dash -c 'echo inside'; echo spawn=$?",
    ])
    .env("CORDON_TEST_DEPLOY", "deploy-value-1")
    .env("CORDON_TEST_PUBLIC", "public-value-2");
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(r.stdout.contains("public-value-2\npublic=0"), "{r:#?}");
    for want in ["other=126", "tp=126", "tp2=0", "spawn=126"] {
        assert!(r.stdout.contains(want), "{want}: {r:#?}");
    }
    assert!(!r.stdout.contains("inside"), "{r:#?}");
    for why in [
        "secret `OTHER_ID`: forbidden by Cedar policy keep-other-id",
        "secret `DEPLOY_TOKEN`: forbidden by Cedar policy no-token-for-tp",
        "sub-agent profile `sub`: forbidden by Cedar policy no-sub-agents",
    ] {
        assert!(r.stderr.contains(why), "{why}: {r:#?}");
    }
    let recs = records(&c);
    let secrets = of_kind(&recs, "secret");
    let other = secrets
        .iter()
        .find(|s| s["secrets"] == serde_json::json!(["OTHER_ID"]))
        .unwrap();
    assert_eq!(other["decision"], "deny");
    assert_eq!(policies(other), ["keep-other-id"]);
    let tp = of_kind(&recs, "call")
        .into_iter()
        .find(|r| r["tool"] == "tp")
        .unwrap();
    assert_eq!(tp["decision"], "deny");
    assert_eq!(policies(tp), ["permit-everything", "no-token-for-tp"]);
    let spawn = of_kind(&recs, "call")
        .into_iter()
        .find(|r| r["tool"] == "cordon-shim spawn")
        .unwrap();
    assert_eq!(spawn["decision"], "deny");
    assert_eq!(policies(spawn), ["no-sub-agents"]);
    let log = std::fs::read_to_string(c.audit_path()).unwrap();
    assert!(!log.contains("deploy-value-1") && !log.contains("public-value-2"));
}
