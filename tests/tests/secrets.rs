//! Secrets, end to end, with a canary: fetched at the call, delivered to
//! the tool only, masked in what comes back, revoked exactly once, and
//! nowhere the agent can reach.
#![allow(clippy::unwrap_used)] // test code

mod common;
use common::*;
use std::process::Stdio;

const CANARY: &str = "cordon-canary-8f3a9c1e2b7d4a6f0e5b";

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            s.push(if i <= c.len() {
                T[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    s
}

/// Every form of the canary that must never reach the agent.
fn forbidden() -> Vec<String> {
    let mut basic = b"user:".to_vec();
    basic.extend_from_slice(CANARY.as_bytes());
    let b = base64(&basic);
    vec![
        CANARY.to_string(),
        base64(CANARY.as_bytes()).trim_end_matches('=').to_string(),
        // The part of base64("user:" + canary) the canary alone determines.
        b[8..b.len() - 4].to_string(),
        CANARY.replace('-', "%2D"),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for f in forbidden() {
        assert!(
            !text.contains(&f),
            "{what} contains the secret (as `{f}`):\n{text}"
        );
    }
}

/// A profile with the probe as tool `tp`, holding the canary.
fn secret_profile(c: &Case, tool_extra: &str, secret_extra: &str) -> Profile {
    let tool_probe = c.tool_probe();
    let revoke = c.dir.path().join("revoke.sh");
    std::fs::write(
        &revoke,
        format!(
            "#!/bin/sh\ncat >/dev/null\necho revoked >> {}\n",
            c.dir.path().join("revoked").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&revoke, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut p = Profile::base();
    for util in ["dash", "sleep", "true"] {
        p.exec.push(format!("/usr/bin/{util}"));
    }
    p.read.push("{workspace}".into());
    p.write.push("{workspace}".into());
    p.extra = format!(
        r#"
[tools.tp]
path = "{tp}"
allow = [["**"]]
secrets = ["CANARY"]
{tool_extra}

[secrets.CANARY]
from = "env:CORDON_TEST_CANARY"
revoke = ["{revoke}"]
{secret_extra}
"#,
        tp = tool_probe.display(),
        revoke = revoke.display(),
    );
    p
}

fn run_with_canary(c: &Case, p: &Profile, script: &str) -> Run {
    let mut cmd = c.cordon_run(p);
    cmd.args(["/usr/bin/dash", "-c", script])
        .env("CORDON_TEST_CANARY", CANARY);
    Run::from(cmd.output().unwrap())
}

fn revocations(c: &Case) -> usize {
    std::fs::read_to_string(c.dir.path().join("revoked"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[test]
fn the_tool_gets_the_secret_and_every_form_it_prints_is_masked() {
    let c = Case::new();
    let r = run_with_canary(
        &c,
        &secret_profile(&c, "", ""),
        "tp secret-forms CANARY; echo rc=$?",
    );
    assert!(r.stdout.contains("rc=0"), "the tool had the secret: {r:#?}");
    assert!(r.stdout.contains("[cordon: redacted]"), "{r:#?}");
    assert_clean("the agent's stdout", &r.stdout);
    assert_clean("the agent's stderr", &r.stderr);
    assert_eq!(revocations(&c), 1, "revoked exactly once");
}

#[test]
fn the_secret_is_nowhere_the_agent_can_look() {
    let c = Case::new();
    let mut p = secret_profile(&c, "", "");
    p.read.push("/proc".into());
    let pr = probe();
    // While the tool holds the secret, the agent reads its own environment
    // and every /proc entry it can see (the tool is not among them).
    let script = format!(
        "tp sleep 3 & sleep 0.5; {pr} env; for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do {pr} read $f; done; wait",
        pr = pr.display()
    );
    let r = run_with_canary(&c, &p, &script);
    assert_clean("what the agent could read", &r.stdout);
    assert_clean("what the agent could read (stderr)", &r.stderr);
    // The session's record names the secret and never holds its value.
    let log = std::fs::read_to_string(c.audit_path()).unwrap();
    assert!(log.contains(r#""secrets":["CANARY"]"#), "{log}");
    assert_clean("the audit log", &log);
}

#[test]
fn file_delivery_gives_a_private_0400_file_that_is_gone_after_the_call() {
    let c = Case::new();
    let p = {
        let mut p = secret_profile(&c, "", "");
        p.extra = p.extra.replace(
            "secrets = [\"CANARY\"]",
            "secrets = [{ name = \"CANARY\", as = \"file\" }]",
        );
        p
    };
    let pr = probe();
    let script = format!(
        "tp cat-env-file CANARY; tp env | grep -o 'CANARY=[^ ]*' > where; {pr} read \"$(cut -d= -f2 where)\"; echo done",
        pr = pr.display()
    );
    let mut p2 = p.clone();
    for util in ["grep", "cut"] {
        p2.exec.push(format!("/usr/bin/{util}"));
    }
    let r = run_with_canary(&c, &p2, &script);
    assert!(
        r.stdout.contains("[cordon: redacted]"),
        "the tool read its file: {r:#?}"
    );
    assert!(
        r.stdout.contains("err "),
        "the agent could not read the file: {r:#?}"
    );
    assert_clean("the agent's output", &r.stdout);
    assert!(r.stdout.contains("done"), "{r:#?}");
}

#[test]
fn revoke_runs_once_when_the_call_times_out() {
    let c = Case::new();
    let r = run_with_canary(
        &c,
        &secret_profile(&c, "timeout = \"300ms\"", ""),
        "tp sleep 20; echo rc=$?",
    );
    assert!(r.stdout.contains("rc=126"), "{r:#?}");
    assert_eq!(revocations(&c), 1);
}

#[test]
fn revoke_runs_once_when_the_agent_is_killed_mid_call() {
    let c = Case::new();
    let mut p = secret_profile(&c, "", "");
    p.read.push("/usr/bin".into());
    // The agent starts a long call, then executes something outside its
    // profile: divergence kills its tree, the shim dies, the call is
    // cancelled, and the secret is revoked before cordon exits.
    let r = run_with_canary(
        &c,
        &p,
        "tp sleep 20 & sleep 0.5; /usr/bin/id; echo survived",
    );
    r.killed_for("executed `/usr/bin/id`");
    assert_eq!(revocations(&c), 1, "{r:#?}");
}

#[test]
fn a_secret_past_its_ttl_stops_the_call() {
    let c = Case::new();
    let r = run_with_canary(
        &c,
        &secret_profile(&c, "", "ttl = \"300ms\""),
        "tp sleep 20; echo rc=$?",
    );
    assert!(r.stdout.contains("rc=126"), "{r:#?}");
    assert!(r.stderr.contains("secret `CANARY` expired"), "{r:#?}");
    assert_eq!(revocations(&c), 1);
}

#[test]
fn a_hanging_provider_is_bounded_and_refuses_the_call() {
    let c = Case::new();
    let mut p = secret_profile(&c, "", "fetch_timeout = \"300ms\"");
    p.extra = p.extra.replace(
        "from = \"env:CORDON_TEST_CANARY\"",
        "from = \"command:/usr/bin/sleep 30\"",
    );
    let r = run_with_canary(&c, &p, "tp exit 0; echo rc=$?");
    assert!(r.stdout.contains("rc=126"), "{r:#?}");
    assert!(r.stderr.contains("took longer than"), "{r:#?}");
}

#[test]
fn max_uses_limits_calls_that_receive_the_secret() {
    let c = Case::new();
    let r = run_with_canary(
        &c,
        &secret_profile(&c, "", "max_uses = 1"),
        "tp exit 0; echo a=$?; tp exit 0; echo b=$?",
    );
    assert!(
        r.stdout.contains("a=0") && r.stdout.contains("b=126"),
        "{r:#?}"
    );
    assert!(r.stderr.contains("max_uses = 1"), "{r:#?}");
}

#[test]
fn the_agent_gets_a_value_only_for_an_exposed_secret() {
    let c = Case::new();
    let mut p = secret_profile(&c, "", "");
    p.extra
        .push_str("\n[secrets.PUBLIC_ID]\nfrom = \"env:CORDON_TEST_PUBLIC\"\nexpose = true\n");
    let mut cmd = c.cordon_run(&p);
    cmd.args([
        "/usr/bin/dash",
        "-c",
        "cordon-shim secret CANARY; echo a=$?; cordon-shim secret PUBLIC_ID; echo; echo b=$?",
    ])
    .env("CORDON_TEST_CANARY", CANARY)
    .env("CORDON_TEST_PUBLIC", "public-value-123")
    .stdin(Stdio::null());
    let r = Run::from(cmd.output().unwrap());
    assert!(r.stdout.contains("a=126"), "{r:#?}");
    assert!(r.stderr.contains("not exposed to the agent"), "{r:#?}");
    assert!(
        r.stdout.contains("public-value-123") && r.stdout.contains("b=0"),
        "{r:#?}"
    );
    assert_clean("the agent's output", &r.stdout);
    let log = std::fs::read_to_string(c.audit_path()).unwrap();
    assert_eq!(log.matches(r#""kind":"secret""#).count(), 2, "{log}");
    assert!(!log.contains("public-value-123"), "{log}");
}

#[test]
fn a_profile_that_lets_the_agent_read_a_secret_file_is_refused() {
    let c = Case::new();
    let source = c.outside.join("token");
    std::fs::write(&source, CANARY).unwrap();
    let mut p = secret_profile(&c, "", "");
    p.extra = p.extra.replace(
        "from = \"env:CORDON_TEST_CANARY\"",
        &format!("from = \"file:{}\"", source.display()),
    );
    p.read.push(path_str(&c.outside));
    let r = run_with_canary(&c, &p, "tp exit 0");
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert_clean("cordon's error", &r.stderr);
}
