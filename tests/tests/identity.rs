//! The workload identity, checked by a relying party that shares no code
//! with cordon (PyJWT over OpenSSL, `tests/verifiers/verify_jwt.py`): a
//! token cordon minted verifies; another audience, an expired token, a
//! replay, a tampered token and one signed by another key are refused.
//! And end to end: a brokered tool receives a token as a secret and
//! verifies it, while the agent never holds it; a call-bound token names
//! its call, and a relying party serving another call (another id,
//! another argument digest) refuses it.
#![allow(clippy::unwrap_used)] // test code

mod common;
use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An interpreter that has PyJWT and cryptography (Debian's python3-jwt);
/// `None` skips, except on CI, where it fails.
fn python() -> Option<PathBuf> {
    for p in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(p)
            .args(["-c", "import jwt, cryptography"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(PathBuf::from(p));
        }
    }
    assert!(
        !in_ci(),
        "CI needs python3 with PyJWT (apt install python3-jwt)"
    );
    eprintln!("skipped: no python3 with PyJWT");
    None
}

fn verifier_script() -> PathBuf {
    let repo = std::env::var_os("CORDON_TEST_REPO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    repo.join("tests/verifiers/verify_jwt.py")
}

/// `cordon identity ...` with its key in `state`.
fn identity(state: &Path, args: &[&str]) -> std::process::Output {
    cordon_cmd()
        .arg("identity")
        .args(args)
        .env("CORDON_STATE_DIR", state)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap()
}

fn mint(state: &Path, args: &[&str]) -> String {
    let mut all = vec!["mint"];
    all.extend_from_slice(args);
    let out = identity(state, &all);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs the independent verifier over `tokens`, expecting no call
/// binding; one line per token.
fn relying_party(py: &Path, jwks: &Path, aud: &str, tokens: &[String]) -> Vec<String> {
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    relying_party_for(py, jwks, aud, &[], &tokens)
}

#[test]
fn an_independent_verifier_accepts_cordon_tokens_and_refuses_the_rest() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = identity(&state, &["jwks"]);
    assert!(out.status.success(), "{out:?}");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, &out.stdout).unwrap();

    let good = mint(&state, &["--aud", "svc", "--ttl", "1m", "--profile", "p1"]);
    let other_aud = mint(&state, &["--aud", "another-service", "--ttl", "1m"]);
    let expired = mint(
        &state,
        &["--aud", "svc", "--ttl", "1m", "--issued-at", "1000000000"],
    );
    // One claim changed (the profile), the signature kept.
    let parts: Vec<&str> = good.split('.').collect();
    let payload = b64url_decode(parts[1]);
    let changed = String::from_utf8(payload)
        .unwrap()
        .replace("\"p1\"", "\"admin\"");
    let tampered = format!("{}.{}.{}", parts[0], b64url(changed.as_bytes()), parts[2]);
    // A token of another cordon (another key).
    let foreign = mint(&dir.path().join("other-state"), &["--aud", "svc"]);

    let lines = relying_party(
        &py,
        &jwks,
        "svc",
        &[
            good.clone(),
            good.clone(),
            other_aud,
            expired,
            tampered,
            foreign,
        ],
    );
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert!(
        lines[0].starts_with("ok spiffe://cordon.local/profile/p1/session/"),
        "{lines:#?}"
    );
    assert!(lines[1].contains("replayed"), "{lines:#?}");
    assert!(lines[2].contains("InvalidAudience"), "{lines:#?}");
    assert!(lines[3].contains("ExpiredSignature"), "{lines:#?}");
    assert!(lines[4].contains("InvalidSignature"), "{lines:#?}");
    assert!(lines[5].contains("unknown kid"), "{lines:#?}");

    // cordon's own verifier agrees on each.
    let out = identity(&state, &["verify", "--aud", "svc", &good, &good]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("token 2: refused") && err.contains("replay"),
        "{err}"
    );
    assert!(!err.contains("token 1:"), "{err}");
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    assert!(identity(&state, &["jwks"]).status.success());
    let key = state.join("identity/signing-key.pem");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = identity(&state, &["mint", "--aud", "svc"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_tool_receives_a_session_token_it_can_verify_and_the_agent_never_sees_it() {
    let Some(py) = python() else { return };
    let c = Case::new();
    let state = c.dir.path().join("state");
    let out = identity(&state, &["jwks"]);
    assert!(out.status.success(), "{out:?}");
    std::fs::write(c.workspace.join("jwks.json"), &out.stdout).unwrap();
    // The tool is the relying party: it verifies the token it was given
    // and prints what it learned (never the token, which would be masked).
    let script = c.dir.path().join("verify_jwt.py");
    std::fs::copy(verifier_script(), &script).unwrap();
    let tool = c.dir.path().join("api-client");
    std::fs::write(
        &tool,
        format!(
            "#!{py}\nimport os, subprocess, sys\n\
             r = subprocess.run([{py:?}, {script:?}, 'jwks.json', 'https://api.example.com'], input=os.environ['API_TOKEN'] + '\\n', capture_output=True, text=True)\n\
             print(r.stdout.split(' {{')[0]); sys.exit(r.returncode)\n",
            py = py.display(),
            script = script.display().to_string(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut p = Profile::base();
    p.exec.push("/usr/bin/dash".into());
    p.read.push("{workspace}".into());
    p.extra = format!(
        r#"
[tools.api-client]
path = "{tool}"
allow = [["**"]]
secrets = ["API_TOKEN"]

[tools.api-client.sandbox]
# A tool gets no more than the agent's grants by default: its interpreter
# and the interpreter's library are its table's to say.
read = ["{script}", "/usr/lib"]
exec = ["{py}"]

[secrets.API_TOKEN]
from = "identity:jwt?aud=https://api.example.com&bind=session"
ttl = "2m"
"#,
        tool = tool.display(),
        script = script.display(),
        py = py.display(),
    );
    let mut cmd = c.cordon_run(&p);
    cmd.args([
        "/usr/bin/dash",
        "-c",
        "api-client; api-client; echo \"agent sees: ${API_TOKEN:-nothing}\"",
    ])
    .env("CORDON_STATE_DIR", &state)
    .env_remove("CREDENTIALS_DIRECTORY");
    let r = Run::from(cmd.output().unwrap());
    let oks: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("ok ")).collect();
    assert_eq!(oks.len(), 2, "{r:#?}");
    let profile_sub = "ok spiffe://cordon.local/profile/test/session/";
    assert!(oks.iter().all(|l| l.starts_with(profile_sub)), "{r:#?}");
    // Each call got its own token.
    let jti = |l: &str| l.split(' ').nth(2).unwrap_or("").to_string();
    assert_ne!(jti(oks[0]), jti(oks[1]), "{r:#?}");
    assert!(r.stdout.contains("agent sees: nothing"), "{r:#?}");
    // The log names the secret; no token is in it.
    let log = std::fs::read_to_string(c.audit_path()).unwrap();
    assert!(log.contains(r#""secrets":["API_TOKEN"]"#), "{log}");
    assert!(!log.contains("eyJ"), "a token is in the audit log: {log}");
}

#[test]
fn a_tool_sandbox_that_could_read_the_signing_key_is_refused() {
    let c = Case::new();
    let state = c.dir.path().join("state");
    assert!(identity(&state, &["jwks"]).status.success());
    let mut p = Profile::base();
    p.exec.push("/usr/bin/dash".into());
    // A tool that does not even receive the token: it runs what the agent
    // asks, so reading the key through it is the agent reading it.
    p.extra = format!(
        r#"
[tools.show]
path = "/usr/bin/cat"
allow = [["**"]]

[tools.show.sandbox]
read = ["{state}"]

[tools.api]
path = "{tp}"
allow = [["**"]]
secrets = ["ID"]

[secrets.ID]
from = "identity:jwt?aud=svc&bind=call"
ttl = "1m"
"#,
        state = state.display(),
        tp = c.tool_probe().display()
    );
    let mut cmd = c.cordon_run(&p);
    cmd.args(["/usr/bin/dash", "-c", "show identity/signing-key.pem"])
        .env("CORDON_STATE_DIR", &state)
        .env_remove("CREDENTIALS_DIRECTORY");
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert!(
        r.stderr
            .contains("[tools.show.sandbox] could read cordon's identity signing key"),
        "{r:#?}"
    );
    assert!(!r.stdout.contains("PRIVATE KEY"), "{r:#?}");
}

/// Runs the independent verifier over `tokens` as a relying party that
/// serves one call (`expect`: its flags, e.g. `--call 2`).
fn relying_party_for(
    py: &Path,
    jwks: &Path,
    aud: &str,
    expect: &[&str],
    tokens: &[&str],
) -> Vec<String> {
    let mut child = Command::new(py)
        .arg(verifier_script())
        .arg(jwks)
        .arg(aud)
        .args(expect)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for t in tokens {
        writeln!(stdin, "{t}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.stderr.is_empty(),
        "the verifier failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// SHA-256 (hex) of each argument followed by a NUL byte: the audit
/// record's `argv_sha256`, as a relying party computes it.
fn argv_digest(args: &[&str]) -> String {
    let mut input = Vec::new();
    for a in args {
        input.extend_from_slice(a.as_bytes());
        input.push(0);
    }
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_call_bound_token_names_its_call_and_is_refused_for_any_other() {
    let Some(py) = python() else { return };
    let c = Case::new();
    let state = c.dir.path().join("state");
    let out = identity(&state, &["jwks"]);
    assert!(out.status.success(), "{out:?}");
    let jwks = c.dir.path().join("jwks.json");
    std::fs::write(&jwks, &out.stdout).unwrap();
    // The tool hands its token to the test (a relying party would use it
    // for the request it makes); it writes it where only the test looks.
    let tool = c.dir.path().join("deploy");
    std::fs::write(
        &tool,
        format!(
            "#!/usr/bin/dash\nprintf '%s' \"$DEPLOY_IDENTITY\" > {ws}/token-$1\n",
            ws = c.workspace.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut p = Profile::base();
    p.exec.push("/usr/bin/dash".into());
    p.write.push("{workspace}".into());
    p.extra = format!(
        r#"
[tools.deploy]
path = "{tool}"
allow = [["*", "*"]]
secrets = ["DEPLOY_IDENTITY"]

[secrets.DEPLOY_IDENTITY]
from = "identity:jwt?aud=https://deploy.example.com&bind=call"
ttl = "2m"
"#,
        tool = tool.display(),
    );
    let mut cmd = c.cordon_run(&p);
    cmd.args([
        "/usr/bin/dash",
        "-c",
        "deploy one staging; echo a=$?; deploy two prod; echo b=$?",
    ])
    .env("CORDON_STATE_DIR", &state)
    .env_remove("CREDENTIALS_DIRECTORY");
    let r = Run::from(cmd.output().unwrap());
    assert!(
        r.stdout.contains(
            "a=0
b=0"
        ),
        "{r:#?}"
    );
    let token = |n: &str| std::fs::read_to_string(c.workspace.join(format!("token-{n}"))).unwrap();
    let (one, two) = (token("one"), token("two"));
    // The ids the audit log gave the two calls.
    let log = std::fs::read_to_string(c.audit_path()).unwrap();
    let ids: Vec<String> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "call" && r["tool"] == "deploy")
        .map(|r| r["call"].as_u64().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{log}");
    assert!(!log.contains("eyJ"), "a token is in the audit log: {log}");
    let aud = "https://deploy.example.com";
    let d1 = argv_digest(&["one", "staging"]);
    let d2 = argv_digest(&["two", "prod"]);
    // Serving call 1 with its arguments: its token verifies, once.
    let call1 = ["--call", &ids[0], "--tool", "deploy", "--argv-sha256", &d1];
    let lines = relying_party_for(&py, &jwks, aud, &call1, &[&one, &one]);
    assert!(lines[0].starts_with("ok "), "{lines:#?}");
    assert!(lines[1].contains("replayed"), "{lines:#?}");
    // Token 1 presented for call 2, or with call 2's arguments: refused.
    let call2 = ["--call", &ids[1], "--argv-sha256", &d2];
    let lines = relying_party_for(&py, &jwks, aud, &call2, &[&one, &two]);
    assert!(lines[0].starts_with("refused WrongBinding"), "{lines:#?}");
    assert!(lines[1].starts_with("ok "), "{lines:#?}");
    let lines = relying_party_for(&py, &jwks, aud, &["--argv-sha256", &d1], &[&two]);
    assert!(
        lines[0].starts_with("refused WrongBinding") && lines[0].contains("argv_sha256"),
        "{lines:#?}"
    );
    let lines = relying_party_for(&py, &jwks, aud, &["--tool", "kubectl"], &[&one]);
    assert!(lines[0].starts_with("refused WrongBinding"), "{lines:#?}");
    // cordon's own verifier agrees.
    let jwks_arg = jwks.display().to_string();
    let out = identity(
        &state,
        &[
            "verify",
            "--aud",
            aud,
            "--jwks",
            &jwks_arg,
            "--call",
            &ids[0],
            "--argv-sha256",
            &d1,
            &one,
            &two,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("token 1:"), "{err}");
    assert!(
        err.contains("token 2: refused: the token is bound to call"),
        "{err}"
    );
    let claims: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(claims["tool"], "deploy");
    assert_eq!(claims["argv_sha256"], d1.as_str());
}

fn b64url(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn b64url_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}
