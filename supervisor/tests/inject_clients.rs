//! Real HTTPS clients (curl, git, python) through the in-process
//! TLS-terminating proxy to a local TLS server that checks the injected
//! credential. Each client holds only a placeholder; the test proves the
//! server got the value and that the client never held it: not in its
//! environment or /proc, not in anything it printed or received.
//!
//! A client missing on this host skips its test, except with CI=true.

#![allow(clippy::unwrap_used)] // test helpers fail by panicking

mod inject_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cordon::egress::h1;
use inject_support::{proxied, Proxied, Upstream, API_VALUE, GIT_VALUE};

/// The program, or `None` (and a note) when this host lacks it.
fn have(program: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is needed on CI"
        );
        eprintln!("skipped: {program} is not installed");
    }
    found
}

/// Everything a client could have shown: its output, and what it held.
fn assert_never_held(p: &Proxied, what: &str, texts: &[&[u8]]) {
    for v in [API_VALUE, GIT_VALUE] {
        let b64 = STANDARD.encode(format!("x-access-token:{v}"));
        for t in texts {
            let t = String::from_utf8_lossy(t);
            assert!(!t.contains(v) && !t.contains(&b64), "{what} saw {v}: {t}");
        }
        assert!(!p.audit_text().contains(v), "the audit log holds {v}");
    }
}

/// A bundle trusting the session CA and, for tunnels the proxy does not
/// open, the test server's own CA.
fn bundle(p: &Proxied, up: &Upstream) -> PathBuf {
    let path = p.dir.path().join("clients.pem");
    std::fs::write(&path, format!("{}{}", p.tls.ca_pem(), up.ca_pem)).unwrap();
    path
}

#[test]
fn curl_gets_its_bearer_token_injected_and_never_sees_it() {
    let Some(curl) = have("curl") else { return };
    let up = Upstream::start(&["api.test", "other.test"], inject_support::default_handler);
    let p = proxied(&up, 10);
    let ph = p.placeholder("API_KEY");
    let run = |path: &str, extra: &[&str]| {
        Command::new(&curl)
            .env_clear()
            .env("API_KEY", &ph)
            .env("HTTPS_PROXY", format!("http://{}", p.addr))
            .args(["-sS", "-v", "--cacert"])
            .arg(bundle(&p, &up))
            .args(["-H", &format!("Authorization: Bearer {ph}")])
            .args(extra)
            .arg(format!("https://api.test:{}{path}", up.port))
            .output()
            .unwrap()
    };
    let out = run("/echo", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Authorization: Bearer [cordon: redacted]"),
        "{stdout}"
    );
    let seen = up.seen();
    assert!(
        seen[0]
            .head
            .contains(&format!("Authorization: Bearer {API_VALUE}")),
        "{}",
        seen[0].head
    );
    // `-v` prints what curl sent and got: the placeholder, never the value.
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("Authorization: Bearer {ph}")));
    assert_never_held(&p, "curl", &[&out.stdout, &out.stderr]);
    // A redirect to another host, followed with the credential resent
    // (--location-trusted): that host gets the placeholder only.
    // (--http1.1: the test server, reached directly there, offers h2
    // but speaks only HTTP/1.1.)
    let out = run("/redirect", &["-L", "--location-trusted", "--http1.1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let to_other: Vec<_> = up
        .seen()
        .into_iter()
        .filter(|s| s.head.contains("Host: other.test"))
        .collect();
    assert_eq!(to_other.len(), 1);
    assert!(
        to_other[0].head.contains(&ph) && !to_other[0].head.contains(API_VALUE),
        "{}",
        to_other[0].head
    );
    assert_never_held(&p, "curl", &[&out.stdout, &out.stderr]);
}

#[test]
fn python_holds_a_placeholder_in_its_environment_and_proc_while_the_proxy_injects() {
    let Some(python) = have("python3") else {
        return;
    };
    // The interpreter itself, not a version manager's shim, so /proc/PID
    // is python's.
    let exe = Command::new(&python)
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let exe = String::from_utf8_lossy(&exe.stdout).trim().to_string();
    let up = Upstream::start(&["api.test"], inject_support::default_handler);
    let p = proxied(&up, 10);
    let ph = p.placeholder("API_KEY");
    let has_requests = Command::new(&exe)
        .args(["-c", "import requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    let script = r#"
import os, ssl, sys, urllib.request
url = sys.argv[1]
headers = {"Authorization": "Bearer " + os.environ["API_KEY"]}
body = urllib.request.urlopen(urllib.request.Request(url, headers=headers), context=ssl.create_default_context()).read()
sys.stdout.write(body.decode() + "\n")
if sys.argv[2] == "requests":
    import requests
    sys.stdout.write(requests.get(url, headers=headers).text + "\n")
print("DONE", flush=True)
sys.stdin.read()
"#;
    let url = format!("https://api.test:{}/echo", up.port);
    let mut child = Command::new(&exe)
        .env_clear()
        .env("API_KEY", &ph)
        .env("HTTPS_PROXY", format!("http://{}", p.addr))
        .env("SSL_CERT_FILE", p.bundle())
        .env("REQUESTS_CA_BUNDLE", p.bundle())
        .args([
            "-c",
            script,
            &url,
            if has_requests { "requests" } else { "urllib" },
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 || line == "DONE\n" {
            break;
        }
        printed.push_str(&line);
    }
    // The client is alive and has used its credential: read what it holds.
    let pid = child.id();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&environ).contains(&format!("API_KEY={ph}")));
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    let requests = if has_requests { 2 } else { 1 };
    assert_eq!(
        printed
            .matches("Authorization: Bearer [cordon: redacted]")
            .count(),
        requests,
        "{printed}"
    );
    let seen = up.seen();
    assert_eq!(seen.len(), requests);
    assert!(
        seen.iter().all(|s| s
            .head
            .contains(&format!("Authorization: Bearer {API_VALUE}"))),
        "{seen:#?}"
    );
    assert_never_held(
        &p,
        "python",
        &[&environ, &cmdline, printed.as_bytes(), stderr.as_bytes()],
    );
    if !has_requests {
        eprintln!("note: python's requests is not installed; urllib only");
    }
}

/// The bare repositories `git http-backend` serves.
static GIT_ROOT: OnceLock<PathBuf> = OnceLock::new();

/// The git server: [`inject_support::git_over_http`] for [`GIT_ROOT`].
fn git_handler(
    req: &h1::Request,
    body: &[u8],
    _port: u16,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    inject_support::git_over_http(GIT_ROOT.get().unwrap(), req, body)
}

fn git(dir: &Path, home: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new("git");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .current_dir(dir)
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn git_pushes_over_https_with_a_token_only_the_proxy_holds() {
    if have("git").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("srv");
    std::fs::create_dir(&root).unwrap();
    GIT_ROOT.set(root.clone()).unwrap();
    let home = work.path().join("home");
    let repo = work.path().join("repo");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&repo).unwrap();
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o
    };
    ok(git(
        &root,
        &home,
        &["init", "-q", "--bare", "repo.git"],
        &[],
    ));
    let up = Upstream::start(&["git.test"], git_handler);
    let p = proxied(&up, 10);
    let ph = p.placeholder("GIT_TOKEN");
    let who = [
        ("GIT_AUTHOR_NAME", "a"),
        ("GIT_AUTHOR_EMAIL", "a@test"),
        ("GIT_COMMITTER_NAME", "a"),
        ("GIT_COMMITTER_EMAIL", "a@test"),
    ];
    ok(git(&repo, &home, &["init", "-q", "-b", "main"], &[]));
    std::fs::write(repo.join("f"), "one\n").unwrap();
    ok(git(&repo, &home, &["add", "f"], &[]));
    ok(git(&repo, &home, &["commit", "-qm", "one"], &who));
    let remote = format!("https://git.test:{}/repo.git", up.port);
    let proxy = format!("http.proxy=http://{}", p.addr);
    let ca = format!("http.sslCAInfo={}", p.bundle().display());
    // Recipe 1: a credential helper that prints the placeholder.
    let helper =
        "credential.helper=!f() { echo username=x-access-token; echo \"password=$GIT_TOKEN\"; }; f";
    let push1 = ok(git(
        &repo,
        &home,
        &[
            "-c", &proxy, "-c", &ca, "-c", helper, "push", "-q", &remote, "main",
        ],
        &[("GIT_TOKEN", &ph)],
    ));
    // Recipe 2: the header itself, with the placeholder in it.
    std::fs::write(repo.join("f"), "two\n").unwrap();
    ok(git(&repo, &home, &["commit", "-qam", "two"], &who));
    let header = format!(
        "http.extraHeader=Authorization: Basic {}",
        STANDARD.encode(format!("x-access-token:{ph}"))
    );
    let push2 = ok(git(
        &repo,
        &home,
        &[
            "-c", &proxy, "-c", &ca, "-c", &header, "push", "-q", &remote, "main",
        ],
        &[],
    ));
    let log = ok(git(
        &root.join("repo.git"),
        &home,
        &["log", "--format=%s", "main"],
        &[],
    ));
    assert_eq!(String::from_utf8_lossy(&log.stdout), "two\none\n");
    // The attacks of issue 13 against a raw token, here against the
    // placeholder: the agent wrote the repository's config, so git runs
    // its fsmonitor (which writes git's environment into the workspace)
    // and a credential helper that leaves a setsid'd child behind, which
    // writes its environment after the call.
    let hostile = "credential.helper=!f() { setsid sh -c 'sleep 0.2; env > ../late-env.txt' >/dev/null 2>&1 & echo username=x-access-token; echo \"password=$GIT_TOKEN\"; }; f";
    ok(git(&repo, &home, &["config", "core.fsmonitor", "[ -n \"$GIT_TOKEN\" ] && env > ../fsmonitor-env.txt && printf '%s' \"$GIT_TOKEN\" > ../leak.txt; false"], &[]));
    ok(git(
        &repo,
        &home,
        &["status", "--short"],
        &[("GIT_TOKEN", &ph)],
    ));
    std::fs::write(repo.join("f"), "three\n").unwrap();
    ok(git(&repo, &home, &["commit", "-qam", "three"], &who));
    let push3 = ok(git(
        &repo,
        &home,
        &[
            "-c", &proxy, "-c", &ca, "-c", hostile, "push", "-q", &remote, "main",
        ],
        &[("GIT_TOKEN", &ph)],
    ));
    let late = work.path().join("late-env.txt");
    for _ in 0..500 {
        if std::fs::read_to_string(&late).is_ok_and(|t| t.contains("GIT_TOKEN=")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read_to_string(work.path().join("leak.txt")).unwrap(),
        ph,
        "the hostile config ran and got the placeholder"
    );
    assert!(
        std::fs::read_to_string(&late)
            .unwrap()
            .contains(&format!("GIT_TOKEN={ph}")),
        "the lingering child ran"
    );
    let log = ok(git(
        &root.join("repo.git"),
        &home,
        &["log", "-1", "--format=%s", "main"],
        &[],
    ));
    assert_eq!(
        String::from_utf8_lossy(&log.stdout),
        "three\n",
        "and the push still worked"
    );
    assert_never_held(&p, "git", &[&push3.stdout, &push3.stderr]);
    let injected = p
        .records()
        .into_iter()
        .filter(|r| r["kind"] == "inject" && r["decision"] == "allow")
        .count();
    assert!(
        injected >= 4,
        "info/refs and receive-pack, twice: {injected}"
    );
    assert_never_held(
        &p,
        "git",
        &[&push1.stdout, &push1.stderr, &push2.stdout, &push2.stderr],
    );
    // Nothing in the workspace, its neighbours or anywhere git wrote holds
    // the value (the bare repository's objects are compressed: its refs,
    // config and logs are what could hold it in clear).
    for entry in walk(work.path()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert_never_held(&p, &entry.display().to_string(), &[&bytes]);
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
