//! Shared by the proxy-secret tests (`proxy_secrets.rs` and the escape
//! battery's `secrets.` cases): a local TLS "real host" outside every
//! sandbox that records each request it gets, trusted by cordon through
//! `SSL_CERT_FILE` (the roots cordon verifies upstreams with, and puts
//! into the session's CA bundle); profiles for real clients with
//! proxy-delivered secrets; and the search for a value everywhere the
//! agent can read.
//!
//! The host answers for `localhost` (the name the secrets are bound to)
//! and `127.0.0.1` (another host, same server: where a redirect or a
//! second pipelined request tries to take a placeholder).
#![allow(dead_code, clippy::unwrap_used)] // each test file uses a part

#[path = "../../../supervisor/tests/inject_support/mod.rs"]
pub mod inject_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use cordon::egress::h1;

use super::common::{Case, Profile};
pub use inject_support::{Upstream, API_VALUE, GIT_VALUE};

/// The variables cordon reads the two values from (outside every sandbox).
pub const API_ENV: &str = "CORDON_TEST_PROXY_API";
pub const GIT_ENV: &str = "CORDON_TEST_PROXY_GIT";

/// The local TLS host and the file of roots cordon trusts it with.
pub struct Host {
    pub up: Upstream,
    pub dir: tempfile::TempDir,
}

impl Host {
    pub fn start() -> Host {
        let up = Upstream::start(&["localhost", "127.0.0.1"], handler);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("roots.pem"), &up.ca_pem).unwrap();
        Host { up, dir }
    }

    pub fn port(&self) -> u16 {
        self.up.port
    }

    /// The roots cordon verifies the host with (its `SSL_CERT_FILE`).
    pub fn roots(&self) -> PathBuf {
        self.dir.path().join("roots.pem")
    }

    /// An `allow_hosts` rule for the host by name (`localhost`).
    pub fn allow_name(&self) -> String {
        format!("localhost:{} via 127.0.0.1", self.up.port)
    }

    /// An `allow_hosts` rule for the same server by address: another
    /// host, whose tunnel the proxy does not open.
    pub fn allow_address(&self) -> String {
        format!("127.0.0.1:{}", self.up.port)
    }

    /// Every request head the host received.
    pub fn heads(&self) -> Vec<String> {
        self.up.seen().into_iter().map(|s| s.head).collect()
    }

    /// Everything the host received, heads and bodies.
    pub fn received(&self) -> String {
        self.up
            .seen()
            .into_iter()
            .map(|s| format!("{}{}", s.head, String::from_utf8_lossy(&s.body)))
            .collect()
    }

    /// `cordon run` for `c` and `p`, trusting this host, with the values
    /// in cordon's environment.
    pub fn cordon_run(&self, c: &Case, p: &Profile) -> Command {
        let mut cmd = c.cordon_run(p);
        cmd.env("SSL_CERT_FILE", self.roots())
            .env(API_ENV, API_VALUE)
            .env(GIT_ENV, GIT_VALUE);
        cmd
    }
}

/// `/echo` answers with the head it received, `/redirect` sends the
/// client to the same path on `127.0.0.1` (another host), `/repo.git/...`
/// is a smart-HTTP git server behind the injected credential, anything
/// else answers `ok`.
fn handler(req: &h1::Request, body: &[u8], port: u16) -> (u16, Vec<(String, String)>, Vec<u8>) {
    if req.target.starts_with("/redirect") {
        let location = format!("https://127.0.0.1:{port}/echo");
        return (302, vec![("Location".into(), location)], b"moved".to_vec());
    }
    if req.target.starts_with("/repo") {
        return git_handler(req, body);
    }
    inject_support::default_handler(req, body, port)
}

/// Where the git server's repositories are (one per test process).
fn git_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.keep();
        let ok = Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main", "repo.git"])
            .current_dir(&root)
            .status()
            .unwrap();
        assert!(ok.success());
        let ok = Command::new("git")
            .args(["config", "http.receivepack", "true"])
            .current_dir(root.join("repo.git"))
            .status()
            .unwrap();
        assert!(ok.success());
        root
    })
}

/// The bare repository the git server serves.
pub fn served_repo() -> PathBuf {
    git_root().join("repo.git")
}

/// The git server: [`inject_support::git_over_http`] for [`git_root`].
fn git_handler(req: &h1::Request, body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    inject_support::git_over_http(git_root(), req, body)
}

/// A profile for real clients with a readable, writable workspace,
/// reaching `host` by name through the proxy: dash and a few utilities,
/// curl and python3 as single files (never /usr/bin, so any of them can be
/// declared a tool: see [`as_tool`]), the system's libraries.
pub fn client_profile(host: &Host) -> Profile {
    let mut p = Profile::base();
    // Not all of /usr: /usr/lib/git-core holds a copy of git's binary,
    // which the agent must not reach when git is a tool.
    p.read = [
        "/usr/share",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/ssl",
        "/usr/lib/python3",
        "/usr/lib/python3.11",
        "/etc",
        "/lib64",
        "/dev/urandom",
        "{workspace}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    p.write.push("{workspace}".into());
    p.exec = AGENT_PROGRAMS
        .iter()
        .map(|s| s.to_string())
        .chain(
            ["/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"]
                .iter()
                .map(|s| s.to_string()),
        )
        .collect();
    p.allow_hosts.push(host.allow_name());
    p
}

/// The programs the agent of [`client_profile`] may run itself.
pub const AGENT_PROGRAMS: [&str; 8] = [
    "/usr/bin/dash",
    "/usr/bin/env",
    "/usr/bin/curl",
    "/usr/bin/sleep",
    "/usr/bin/mkdir",
    "/usr/bin/cat",
    "/usr/bin/python3.11",
    "/usr/bin/printf",
];

/// `p` with the file `program` no longer among the agent's programs (it
/// is declared a tool: the agent must not run it past the broker).
pub fn as_tool(mut p: Profile, program: &str) -> Profile {
    p.exec.retain(|e| e != program);
    p
}

/// `[secrets.API_KEY]`: a bearer token for `localhost:PORT` only.
pub fn api_secret(host: &Host, extra: &str) -> String {
    format!(
        "[secrets.API_KEY]\nfrom = \"env:{API_ENV}\"\ndeliver = \"proxy\"\n\
         hosts = [\"localhost:{}\"]\nformat = \"Bearer {{}}\"\n{extra}\n",
        host.port()
    )
}

/// `[secrets.GITHUB_TOKEN]`: git's basic auth for `localhost:PORT` only.
pub fn git_secret(host: &Host, extra: &str) -> String {
    format!(
        "[secrets.GITHUB_TOKEN]\nfrom = \"env:{GIT_ENV}\"\ndeliver = \"proxy\"\n\
         hosts = [\"localhost:{}\"]\nbasic = {{ user = \"x-access-token\" }}\n{extra}\n",
        host.port()
    )
}

/// Every form of `value` that would give it away: itself, its base64,
/// the part of base64("x-access-token:" + value) it alone determines.
pub fn forms(value: &str) -> Vec<String> {
    let basic = STANDARD.encode(format!("x-access-token:{value}"));
    vec![
        value.to_string(),
        STANDARD.encode(value).trim_end_matches('=').to_string(),
        basic[20..basic.len() - 4].to_string(),
    ]
}

/// Panics when `text` holds a form of either value.
pub fn assert_clean(what: &str, text: &str) {
    for v in [API_VALUE, GIT_VALUE] {
        for f in forms(v) {
            assert!(
                !text.contains(&f),
                "{what} holds a secret's value (as `{f}`):\n{text}"
            );
        }
    }
}

/// Every file under `dir` (symlinks not followed), as text.
pub fn tree_text(dir: &Path) -> String {
    let mut out = String::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            out.push_str(&tree_text(&e.path()));
        } else if t.is_file() {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            out.push_str(&format!("== {}\n", e.path().display()));
            out.push_str(&String::from_utf8_lossy(&bytes));
            out.push('\n');
        }
    }
    out
}

/// Asserts no value is anywhere the agent can read: its stdout and
/// stderr, the workspace, the audit log.
pub fn assert_unseen(c: &Case, stdout: &str, stderr: &str) {
    assert_clean("the agent's stdout", stdout);
    assert_clean("the agent's stderr", stderr);
    assert_clean("the workspace", &tree_text(&c.workspace));
    assert_clean(
        "the audit log",
        &std::fs::read_to_string(c.audit_path()).unwrap_or_default(),
    );
}

/// The records of kind `kind` in the case's audit log.
pub fn records(c: &Case, kind: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(c.audit_path())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["kind"] == kind)
        .collect()
}

/// Asserts the clients the tests run are installed (CI installs them).
pub fn need_clients() {
    for tool in ["/usr/bin/curl", "/usr/bin/python3", "/usr/bin/git"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: .ci/run installs it (apt-get install curl python3 git)"
        );
    }
}
