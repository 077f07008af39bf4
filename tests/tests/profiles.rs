#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is a failed test
//! The shipped profiles and the example agent, run for real.

mod common;
use common::*;
use std::path::PathBuf;

/// The repository (or CI's copy of its profiles/ and examples/).
fn repo() -> PathBuf {
    match std::env::var_os("CORDON_TEST_REPO_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
    }
}

fn cordon_run(profile: &str, workspace: &std::path::Path, cmd: &[&str]) -> Run {
    let out = cordon_cmd()
        .arg("run")
        .arg("--profile")
        .arg(repo().join("profiles").join(profile))
        .arg("--workspace")
        .arg(workspace)
        .arg("--")
        .args(cmd)
        .output()
        .unwrap();
    Run::from(out)
}

#[test]
fn every_shipped_profile_passes_cordon_check() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("profiles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let out = cordon_cmd().arg("check").args(&files).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn minimal_runs_true_and_nothing_more() {
    let c = Case::new();
    let r = cordon_run("minimal.toml", &c.workspace, &["/bin/true"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    let r = cordon_run("minimal.toml", &c.workspace, &["/bin/cat", "/etc/passwd"]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(r.stderr.contains("Permission denied"), "{r:#?}");
}

#[test]
fn read_only_reads_the_workspace_but_cannot_change_it() {
    let c = Case::new();
    std::fs::write(c.workspace.join("code.rs"), "fn main() {}\n").unwrap();
    let r = cordon_run(
        "read-only.toml",
        &c.workspace,
        &["/usr/bin/grep", "-c", "main", "code.rs"],
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert_eq!(r.stdout.trim(), "1");
    let r = cordon_run(
        "read-only.toml",
        &c.workspace,
        &["/bin/sh", "-c", "echo changed > code.rs"],
    );
    assert_ne!(r.code, Some(0), "{r:#?}");
    let r = cordon_run("read-only.toml", &c.workspace, &["/usr/bin/rm", "code.rs"]);
    assert_ne!(r.code, Some(0), "{r:#?}");
    assert_eq!(
        std::fs::read_to_string(c.workspace.join("code.rs")).unwrap(),
        "fn main() {}\n"
    );
}

#[test]
fn the_python_example_agent_reports_what_its_sandbox_allows() {
    let example = repo().join("examples/python-agent");
    let r = cordon_run("python-agent.toml", &example, &["python3", "agent.py"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    let line = |what: &str| {
        r.stdout
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no line for {what}: {r:#?}"))
            .to_string()
    };
    assert!(line("read data/notes.txt").starts_with("allowed"));
    assert!(line("write a note to the scratch dir").starts_with("allowed"));
    assert!(line("connect to TCP port 443").starts_with("allowed"));
    assert!(line("read the workspace's .env").starts_with("BLOCKED"));
    assert!(line("change a workspace file").starts_with("BLOCKED"));
    assert!(line("/etc/shadow").starts_with("BLOCKED"));
    assert!(line("outside the workspace").starts_with("BLOCKED"));
    assert!(line("TCP port 22").starts_with("BLOCKED"));
    assert!(line("run /bin/sh").starts_with("BLOCKED"));
    assert!(!r.stdout.contains("example-only-not-a-real-key"));
}

#[test]
fn the_python_example_agent_is_killed_for_ptrace() {
    let example = repo().join("examples/python-agent");
    let r = cordon_run(
        "python-agent.toml",
        &example,
        &["python3", "agent.py", "--try-ptrace"],
    );
    r.killed_for("`ptrace`");
    assert!(!r.stdout.contains("still alive"), "{r:#?}");
}

/// `--profile NAME`: the user's directory, then /etc/cordon/profiles, then
/// the shipped profiles beside the installed binary
/// (`PREFIX/share/cordon/profiles`); a path is never searched for; `cordon
/// profiles` lists what the names find.
#[test]
fn a_bare_profile_name_is_found_in_the_user_then_the_shipped_directory() {
    let c = Case::new();
    let t = tempfile::tempdir().unwrap();
    let prefix = t.path().join("prefix");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    let share = prefix.join("share/cordon/profiles");
    std::fs::create_dir_all(&share).unwrap();
    let config = t.path().join("config");
    std::fs::create_dir_all(config.join("cordon/profiles")).unwrap();
    for b in ["cordon", "cordon-shim"] {
        std::fs::copy(bin_dir().join(b), prefix.join("bin").join(b)).unwrap();
    }
    // A name no machine has in /etc/cordon/profiles.
    let name = "cordon-test-minimal";
    let minimal = std::fs::read_to_string(repo().join("profiles/minimal.toml")).unwrap();
    std::fs::write(share.join(format!("{name}.toml")), &minimal).unwrap();
    std::fs::write(share.join("cordon-test-other.toml"), &minimal).unwrap();
    let cordon = |args: &[&str]| {
        let out = std::process::Command::new(prefix.join("bin/cordon"))
            .env("XDG_CONFIG_HOME", &config)
            .env("CORDON_AUDIT", c.audit_path())
            .current_dir(&c.workspace)
            .args(args)
            .output()
            .unwrap();
        Run::from(out)
    };
    let r = cordon(&["run", "--profile", name, "--", "/bin/true"]);
    assert_eq!(r.code, Some(0), "the shipped profile: {r:#?}");
    // The user's own of the same name wins: here one that does not parse.
    let user = config.join(format!("cordon/profiles/{name}.toml"));
    std::fs::write(&user, "[profile]\nname = 3\n").unwrap();
    let r = cordon(&["run", "--profile", name, "--", "/bin/true"]);
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert!(
        r.stderr.contains(&format!("{}:2:8:", user.display())),
        "{r:#?}"
    );
    let r = cordon(&["profiles"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(
        r.stdout
            .contains(&format!("{name}  {}  (has errors", user.display()))
            && r.stdout.contains(&format!(
                "hides {}",
                share.join(format!("{name}.toml")).display()
            ))
            && r.stdout.contains("cordon-test-other  "),
        "{r:#?}"
    );
    // A value with a slash is a path, never a name.
    let r = cordon(&["check", &format!("./{name}")]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(r.stderr.contains("cannot read profile"), "{r:#?}");
    let r = cordon(&["run", "--profile", "no-such-profile", "--", "/bin/true"]);
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert!(
        r.stderr.contains("profile `no-such-profile` not found")
            && r.stderr.contains(&share.display().to_string()),
        "{r:#?}"
    );
}
