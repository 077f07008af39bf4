//! The escape battery: one named case per escape attempt, each made by one
//! invocation of `cordon-probe` inside a real `cordon run`, each asserting
//! its outcome (the errno, the kill with exit 86, the file left unread,
//! the process gone).
//!
//! Every case runs in this one test, in order, and the suite prints a
//! results table (to stderr, uncaptured) and writes it as Markdown to
//! `$CORDON_ESCAPE_RESULTS`, else `$TMPDIR/cordon-escape-<uid>.md`.
//! `ESCAPE_CASE=substring` runs only the matching cases. The names are
//! stable: SECURITY.md and bug reports refer to them.
//! `scripts/test-all.sh` runs the battery as root and again as an
//! unprivileged user.
#![allow(
    clippy::unwrap_used,
    clippy::undocumented_unsafe_blocks,
    clippy::cast_possible_truncation
)] // test code that acts as an attacker would

#[path = "../common/mod.rs"]
mod common;
use common::*;
#[path = "../proxied/mod.rs"]
mod proxied;

mod broker;
mod bypass;
mod egress;
mod exec_net;
mod fs;
mod process;
mod secrets;
#[cfg(target_arch = "x86_64")]
mod syscalls;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// One escape attempt: a stable name, what it tries, and the check that
/// runs it (a panic is a failed case).
struct Escape {
    name: String,
    attempt: String,
    check: Box<dyn Fn(&Case)>,
}

fn case(name: &str, attempt: &str, check: impl Fn(&Case) + 'static) -> Escape {
    Escape {
        name: name.into(),
        attempt: attempt.into(),
        check: Box::new(check),
    }
}

const SECRET_TEXT: &str = "escape-battery-secret-7f3a9c";

// ----- profiles ----------------------------------------------------------

/// The workspace readable (and writable when `write`).
fn ws(write: bool) -> Profile {
    let mut p = Profile::base();
    p.read.push("{workspace}".into());
    if write {
        p.write.push("{workspace}".into());
    }
    p
}

/// A writable workspace with `.env` and `.git/hooks` denied inside it.
fn with_denies(c: &Case) -> Profile {
    std::fs::write(c.workspace.join(".env"), SECRET_TEXT).unwrap();
    std::fs::create_dir_all(c.workspace.join(".git/hooks")).unwrap();
    std::fs::write(c.workspace.join(".git/hooks/pre-commit"), SECRET_TEXT).unwrap();
    let mut p = ws(true);
    p.deny.push("{workspace}/.env".into());
    p.deny.push("{workspace}/.git/hooks".into());
    p
}

/// Brokered tools: `tp` (the probe as a tool, with a secret from a file
/// outside every grant) and `cat` (with a deny rule).
fn brokered(c: &Case) -> Profile {
    let source = c.dir.path().join("secret-source");
    std::fs::write(&source, SECRET_TEXT).unwrap();
    let mut p = with_denies(c);
    p.extra = format!(
        r#"
[tools.tp]
path = "{tp}"
allow = [["**"]]

[tools.cat]
path = "/usr/bin/cat"
allow = [["**"]]
deny = [["/etc/shadow"], ["**", "*shadow*", "**"]]

[tools.sec]
path = "/usr/bin/true"
allow = [["**"]]
secrets = ["FROM_FILE", "FROM_ENV"]

[secrets.FROM_FILE]
from = "file:{source}"

[secrets.FROM_ENV]
from = "env:CORDON_ESCAPE_SECRET"
"#,
        tp = c.tool_probe().display(),
        source = source.display()
    );
    p
}

// ----- outcome checks ------------------------------------------------------

fn run(c: &Case, p: &Profile, args: &[&str]) -> Run {
    let out = c
        .command(p, args)
        .env("CORDON_ESCAPE_SECRET", SECRET_TEXT)
        .output()
        .unwrap();
    Run::from(out)
}

/// The probe's operation failed with one of `errnos`, and no secret
/// text reached its output.
fn refused(r: &Run, errnos: &[&str]) {
    r.failed_with(errnos);
    no_secret(r);
}

fn no_secret(r: &Run) {
    assert!(
        !r.stdout.contains(SECRET_TEXT) && !r.stderr.contains(SECRET_TEXT),
        "secret text leaked: {r:#?}"
    );
}

/// The broker's reply, as the forged shim printed it.
fn reply(r: &Run) -> &str {
    r.stdout
        .lines()
        .find(|l| l.starts_with("reply ") || *l == "closed")
        .unwrap_or_else(|| panic!("no reply from the broker: {r:#?}"))
}

fn reply_is(r: &Run, kind: u8, text: &str) {
    let line = reply(r);
    assert!(
        line.starts_with(&format!("reply {kind} ")) && line.contains(text),
        "expected reply {kind} containing `{text}`, got `{line}`: {r:#?}"
    );
}

fn p(path: &std::path::Path) -> String {
    path_str(path)
}

/// A brokered session that waits on stdin; returns it and its socket path.
fn other_session(c: &Case) -> (std::process::Child, String) {
    let mut prof = brokered(c);
    prof.exec.push("/usr/bin/dash".into());
    let mut cmd = c.cordon_run(&prof);
    cmd.args(["/usr/bin/dash", "-c", "echo \"$CORDON_SOCKET\"; read x"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut sock = String::new();
    std::io::BufRead::read_line(&mut out, &mut sock).unwrap();
    assert!(
        !sock.trim().is_empty(),
        "the other session printed no socket"
    );
    (child, sock.trim().to_string())
}

fn battery() -> Vec<Escape> {
    let mut all = fs::cases();
    all.extend(exec_net::exec());
    all.extend(exec_net::network());
    all.extend(egress::cases());
    #[cfg(target_arch = "x86_64")]
    all.extend(syscalls::cases());
    all.extend(process::signals_and_privilege());
    all.extend(process::inherited());
    all.extend(process::survival());
    all.extend(broker::cases());
    all.extend(bypass::cases());
    all.extend(secrets::cases());
    all
}

#[test]
fn escape_battery() {
    let filter = std::env::var("ESCAPE_CASE").unwrap_or_default();
    let user = if is_root() { "root" } else { "unprivileged" };
    let mut rows = Vec::new();
    // Case names are unique and stable.
    let all = battery();
    let mut names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "duplicate case names");
    let started = Instant::now();
    for e in all.iter().filter(|e| e.name.contains(&filter)) {
        let c = Case::new();
        let t = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| (e.check)(&c)));
        let outcome = match result {
            Ok(()) => Ok(()),
            Err(p) => Err(p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()),
        };
        rows.push((e, outcome, t.elapsed()));
    }
    let passed = rows.iter().filter(|(_, o, _)| o.is_ok()).count();
    let mut table = format!(
        "# cordon escape battery as {user} (uid {}): {passed} of {} cases passed in {:.1} s\n\n\
         | case | attempt | result |\n|---|---|---|\n",
        unsafe { libc::geteuid() },
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    for (e, o, d) in &rows {
        let res = match o {
            Ok(()) => format!("pass ({} ms)", d.as_millis()),
            Err(m) => format!("**FAIL**: {}", m.lines().next().unwrap_or("")),
        };
        table.push_str(&format!("| `{}` | {} | {} |\n", e.name, e.attempt, res));
    }
    let path = std::env::var_os("CORDON_ESCAPE_RESULTS").map_or_else(
        || std::env::temp_dir().join(format!("cordon-escape-{}.md", unsafe { libc::geteuid() })),
        std::path::PathBuf::from,
    );
    let _ = std::fs::write(&path, &table);
    // Straight to the process's stderr, past the test harness's capture.
    let _ = std::io::stderr()
        .write_all(format!("{table}\n(table written to {})\n", path.display()).as_bytes());
    let failed: Vec<String> = rows
        .iter()
        .filter_map(|(e, o, _)| o.as_ref().err().map(|m| format!("{}: {m}", e.name)))
        .collect();
    assert!(
        failed.is_empty(),
        "{} escape case(s) failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
    assert!(
        filter.is_empty() || !rows.is_empty(),
        "ESCAPE_CASE={filter} matches no case"
    );
}

#[test]
fn the_battery_has_forty_cases_and_every_default_deny_entry() {
    let all = battery();
    assert!(all.len() >= 40, "only {} cases", all.len());
    #[cfg(target_arch = "x86_64")]
    for name in cordon::sandbox::seccomp::DEFAULT_DENY {
        assert!(
            all.iter().any(|e| e.name == format!("sys.{name}")),
            "`{name}` is on the default deny-list but has no escape case"
        );
    }
}
