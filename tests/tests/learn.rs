//! `cordon learn` on the three agents in examples/learn: the profile it
//! writes passes `cordon check`, the same run passes under `cordon run`,
//! and the same run with one extra, unobserved action is refused. A
//! credential seeded in the environment never reaches the profile.
#![allow(clippy::unwrap_used)] // test code

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

const SEEDED: &str = "learn-seeded-credential-4f1b9c";

/// The repository (examples live there); CI copies it for the
/// unprivileged pass and says where.
fn repo() -> PathBuf {
    std::env::var_os("CORDON_TEST_REPO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

/// A fresh copy of an example as a workspace.
fn workspace(c: &Case, example: &str, name: &str) -> PathBuf {
    let dst = c.dir.path().join(name);
    copy_dir(&repo().join("examples/learn").join(example), &dst);
    dst
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Learns a profile for `cmd` in `ws`; checks it; returns its path.
fn learn(c: &Case, ws: &Path, cmd: &[&str]) -> PathBuf {
    learn_with(c, ws, &[], cmd)
}

fn learn_with(c: &Case, ws: &Path, flags: &[&str], cmd: &[&str]) -> PathBuf {
    let out = c.dir.path().join("learned.toml");
    let o = cordon_cmd()
        .arg("learn")
        .args(flags)
        .arg("--workspace")
        .arg(ws)
        .arg("--output")
        .arg(&out)
        .arg("--force")
        .arg("--")
        .args(cmd)
        .current_dir(ws)
        .env("LEARN_TEST_TOKEN", SEEDED)
        .output()
        .unwrap();
    assert!(o.status.success(), "learn failed: {}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("NOT CONFINED"),
        "learn mode says so: {stderr}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        !text.contains(SEEDED),
        "a secret value reached the profile:\n{text}"
    );
    assert!(
        text.contains("LEARN_TEST_TOKEN"),
        "the credential becomes a secret entry (or a commented one):\n{text}"
    );
    let check = cordon_cmd().arg("check").arg(&out).output().unwrap();
    assert!(check.status.success(), "{}\n{text}", show(&check));
    out
}

fn run(c: &Case, profile: &Path, ws: &Path, cmd: &[&str]) -> Output {
    cordon_cmd()
        .arg("run")
        .arg("--profile")
        .arg(profile)
        .arg("--workspace")
        .arg(ws)
        .env("CORDON_AUDIT", c.audit_path())
        .env("LEARN_TEST_TOKEN", SEEDED)
        .arg("--")
        .args(cmd)
        .current_dir(ws)
        .output()
        .unwrap()
}

fn need(program: &str) {
    assert!(
        Path::new(program).exists(),
        "{program} is missing: .ci/run installs it"
    );
}

#[test]
fn a_shell_agent_using_git_learns_a_profile_that_refuses_one_more_file() {
    need("/usr/bin/git");
    let c = Case::new();
    let cmd = ["/bin/sh", "agent.sh"];
    let profile = learn(&c, &workspace(&c, "shell-git", "learn"), &cmd);
    let text = std::fs::read_to_string(&profile).unwrap();
    assert!(text.contains("[tools.git]"), "{text}");
    assert!(text.contains(r#"argv = ["add", "*"]"#), "{text}");
    let ws = workspace(&c, "shell-git", "enforced");
    let o = run(&c, &profile, &ws, &cmd);
    assert!(o.status.success(), "{}\n{text}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("done"));
    assert!(ws.join(".git").is_dir() && ws.join("out/result.txt").is_file());
    let ws = workspace(&c, "shell-git", "extra");
    let o = run(&c, &profile, &ws, &["/bin/sh", "agent.sh", "--extra"]);
    assert!(!o.status.success(), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/etc/hostname: Permission denied"),
        "{}",
        show(&o)
    );
}

/// A local TCP service outside every sandbox that answers each line.
fn service() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut line = String::new();
            let _ = BufReader::new(&conn).read_line(&mut line);
            let _ = (&conn).write_all(format!("pong {port}\n").as_bytes());
        }
    });
    port
}

#[test]
fn a_python_agent_calling_a_tcp_service_learns_its_port_and_no_other() {
    need("/usr/bin/python3");
    let (port, extra) = (service(), service());
    let c = Case::new();
    let config = format!(r#"{{"port": {port}, "extra_port": {extra}}}"#);
    let cmd = ["/usr/bin/python3", "agent.py"];
    let ws = workspace(&c, "python-service", "learn");
    std::fs::write(ws.join("config.json"), &config).unwrap();
    let profile = learn(&c, &ws, &cmd);
    let text = std::fs::read_to_string(&profile).unwrap();
    assert!(text.contains(&format!("connect_tcp = [{port}]")), "{text}");
    let ws = workspace(&c, "python-service", "enforced");
    std::fs::write(ws.join("config.json"), &config).unwrap();
    let o = run(&c, &profile, &ws, &cmd);
    assert!(o.status.success(), "{}\n{text}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("service says: pong {port}")));
    let o = run(
        &c,
        &profile,
        &ws,
        &["/usr/bin/python3", "agent.py", "--extra"],
    );
    assert!(!o.status.success(), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("PermissionError"), "{}", show(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("second service says"));
}

#[test]
fn an_agent_spawning_a_helper_learns_it_and_one_more_program_is_divergence() {
    need("/usr/bin/python3");
    let c = Case::new();
    let cmd = ["/usr/bin/python3", "agent.py"];
    let profile = learn(&c, &workspace(&c, "spawn-helper", "learn"), &cmd);
    let text = std::fs::read_to_string(&profile).unwrap();
    // The helper runs through /bin/sh (dash): the shell is granted, the
    // workspace script only read, the loader cordon's own to grant.
    assert!(text.contains("\"/usr/bin/dash\""), "{text}");
    assert!(!text.contains("\"{workspace}/helper.sh\""), "{text}");
    assert!(!text.contains("ld-linux"), "{text}");
    let ws = workspace(&c, "spawn-helper", "enforced");
    let o = run(&c, &profile, &ws, &cmd);
    assert!(o.status.success(), "{}\n{text}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("helper wrote: helper got from-agent"));
    let o = run(
        &c,
        &profile,
        &ws,
        &["/usr/bin/python3", "agent.py", "--extra"],
    );
    assert_eq!(o.status.code(), Some(86), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("uname"),
        "{}",
        show(&o)
    );
}

#[test]
fn learning_with_a_base_adds_only_what_is_missing_and_reports_it() {
    need("/usr/bin/python3");
    let c = Case::new();
    let ws = workspace(&c, "spawn-helper", "learn");
    // A base that already grants the workspace and Python's libraries.
    let base = c.dir.path().join("base.toml");
    std::fs::write(
        &base,
        "[profile]\nname = \"base\"\n[filesystem]\nread = [\"/usr/lib/python3.11\"]\nwrite = [\"{workspace}\"]\n",
    )
    .unwrap();
    let out = c.dir.path().join("more.toml");
    let o = cordon_cmd()
        .arg("learn")
        .arg("--base")
        .arg(&base)
        .arg("--workspace")
        .arg(&ws)
        .arg("--output")
        .arg(&out)
        .args(["--", "/usr/bin/python3", "agent.py"])
        .current_dir(&ws)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("cordon: learned: + [filesystem] exec /usr/bin/dash"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("+ [filesystem] write {workspace}"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("extends = \"base.toml\""), "{text}");
    assert!(!text.contains("\"/usr/lib/python3.11\""), "{text}");
    let check = cordon_cmd().arg("check").arg(&out).output().unwrap();
    assert!(check.status.success(), "{}", show(&check));
    // It refuses to overwrite without --force.
    let again = cordon_cmd()
        .args(["learn", "--output"])
        .arg(&out)
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(125), "{}", show(&again));
}

/// A local HTTP server answering every request with `hello PORT`.
fn http_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut reader = BufReader::new(&conn);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body = format!("hello {port}\n");
            let _ = (&conn).write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    port
}

#[test]
fn learning_behind_the_proxy_writes_host_rules_and_no_other_host_passes() {
    need("/usr/bin/python3");
    let (port, extra) = (http_server(), http_server());
    let c = Case::new();
    let config = format!(
        r#"{{"url": "http://localhost:{port}/x", "extra_url": "http://localhost:{extra}/y"}}"#
    );
    let cmd = ["/usr/bin/python3", "agent.py"];
    let ws = workspace(&c, "python-http", "learn");
    std::fs::write(ws.join("config.json"), &config).unwrap();
    let profile = learn_with(&c, &ws, &["--hosts"], &cmd);
    let text = std::fs::read_to_string(&profile).unwrap();
    // localhost resolves to loopback: the rule must name it.
    assert!(
        text.contains(&format!("\"localhost:{port} via 127.0.0.1")),
        "{text}"
    );
    assert!(
        !text.contains("3128"),
        "the proxy's own port is not a grant: {text}"
    );
    let ws = workspace(&c, "python-http", "enforced");
    std::fs::write(ws.join("config.json"), &config).unwrap();
    let o = run(&c, &profile, &ws, &cmd);
    assert!(o.status.success(), "{}\n{text}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("fetched: hello {port}")));
    let o = run(
        &c,
        &profile,
        &ws,
        &["/usr/bin/python3", "agent.py", "--extra"],
    );
    assert!(!o.status.success(), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("403"), "{}", show(&o));
    assert!(
        stderr.contains(&format!("localhost:{extra} is not in allow_hosts")),
        "{}",
        show(&o)
    );
}

#[test]
fn a_program_run_from_the_writable_workspace_is_reported_not_granted() {
    use std::os::unix::fs::PermissionsExt;
    let c = Case::new();
    let ws = c.dir.path().join("ws-script");
    std::fs::create_dir_all(&ws).unwrap();
    let script = ws.join("x.sh");
    std::fs::write(&script, "#!/bin/sh\necho ran > out.txt\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = c.dir.path().join("learned.toml");
    let o = cordon_cmd()
        .args(["learn", "--workspace"])
        .arg(&ws)
        .arg("--output")
        .arg(&out)
        .args(["--force", "--", "/bin/sh", "-c", "./x.sh"])
        .current_dir(&ws)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("NOT granted: exec {workspace}/x.sh (it lies in a writable tree"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("# NOT granted: the run executed {workspace}/x.sh"),
        "{text}"
    );
    // What was written is a profile `cordon check` accepts.
    let check = cordon_cmd().arg("check").arg(&out).output().unwrap();
    assert!(check.status.success(), "{}\n{text}", show(&check));
    // And under it the script is refused, the shell allowed.
    let o = run(&c, &out, &ws, &["/bin/sh", "-c", "./x.sh"]);
    assert_eq!(o.status.code(), Some(86), "{}", show(&o));
    let o = run(&c, &out, &ws, &["/bin/sh", "./x.sh"]);
    assert!(o.status.success(), "{}", show(&o));
}

/// `--pass VAR`: the agent's own variable (its model key) is given to the
/// observed run and passed by the learned profile, never made a tool
/// secret; the learned profile hides the workspace's `.env` (and git's
/// program-running files) even though the observed run read it.
#[test]
fn passed_variables_stay_the_agents_and_dot_env_is_hidden_by_default() {
    let c = Case::new();
    let ws = c.dir.path().join("pass-ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join(".env"), "CANARY-7f3a\n").unwrap();
    std::fs::write(ws.join("notes.txt"), "notes\n").unwrap();
    let script =
        "test -n \"$LEARN_TEST_TOKEN\" && echo has-token; cat notes.txt; cat .env; echo done";
    let cmd = ["/bin/sh", "-c", script];
    let profile = learn_with(&c, &ws, &["--pass", "LEARN_TEST_TOKEN"], &cmd);
    let text = std::fs::read_to_string(&profile).unwrap();
    assert!(
        text.contains("pass = [\n    \"LEARN_TEST_TOKEN\",\n]")
            || text.contains("pass = [\"LEARN_TEST_TOKEN\"]"),
        "{text}"
    );
    assert!(!text.contains("[secrets.LEARN_TEST_TOKEN]"), "{text}");
    assert!(text.contains("\"{workspace}/.env\""), "{text}");
    let o = run(&c, &profile, &ws, &cmd);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("has-token") && stdout.contains("notes") && stdout.contains("done"),
        "{}",
        show(&o)
    );
    assert!(!stdout.contains("CANARY"), "{}", show(&o));
    // A credential-like variable with cordon's reserved prefix is not made
    // a secret (the profile would fail its own check).
    let out = c.dir.path().join("reserved.toml");
    let o = cordon_cmd()
        .arg("learn")
        .arg("--workspace")
        .arg(&ws)
        .arg("--output")
        .arg(&out)
        .args(["--", "/bin/sh", "-c", "git --version"])
        .current_dir(&ws)
        .env("CORDON_LEARN_TOKEN", "abcdefgh")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("[tools.git]") && !text.contains("CORDON_LEARN_TOKEN"),
        "{text}"
    );
    // A name cordon cannot pass is refused before anything runs.
    let o = cordon_cmd()
        .args(["learn", "--pass", "HOME", "--output"])
        .arg(c.dir.path().join("x.toml"))
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("--pass HOME: not a variable name cordon passes"),
        "{}",
        show(&o)
    );
}
