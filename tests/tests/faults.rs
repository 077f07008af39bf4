//! Faults on purpose: nothing lost, nothing leaked.
#![allow(clippy::unwrap_used, clippy::undocumented_unsafe_blocks)] // test code

mod common;
use common::*;
use std::time::Duration;

const CANARY: &str = "cordon-fault-canary-5d1e77a0c3b94f28";

#[test]
fn kill_9_of_cordon_mid_call_leaves_no_process_no_secret_and_a_valid_log() {
    let c = Case::new();
    let tool_probe = c.tool_probe();
    let mut p = Profile::base();
    p.exec.push("/usr/bin/dash".into());
    p.read.push("{workspace}".into());
    p.extra = format!(
        "[tools.tp]\npath = \"{}\"\nallow = [[\"**\"]]\nsecrets = [{{ name = \"CANARY\", as = \"file\" }}]\n\n\
         [secrets.CANARY]\nfrom = \"env:CORDON_FAULT_CANARY\"\n",
        tool_probe.display()
    );
    let tok = token("kill9-midcall");
    let mut cmd = c.cordon_run(&p);
    cmd.args([
        "/usr/bin/dash",
        "-c",
        &format!("echo $CORDON_SESSION; tp sleep 60 {tok}"),
    ])
    .env("CORDON_FAULT_CANARY", CANARY)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null());
    let mut cordon = cmd.spawn().unwrap();
    let mut session = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(cordon.stdout.take().unwrap()),
        &mut session,
    )
    .unwrap();
    let session_dir = std::path::Path::new("/dev/shm").join(format!("cordon-{}", session.trim()));
    assert!(session_dir.is_dir(), "{session_dir:?}");
    // The tool (outside the agent's sandbox, holding the secret) is running:
    // a process with the token whose binary is the tool, not the shim.
    let tool_running = || {
        processes_with(&tok).into_iter().any(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == tool_probe)
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), tool_running),
        "the tool never started"
    );
    unsafe { libc::kill(cordon.id() as i32, libc::SIGKILL) };
    let _ = cordon.wait();
    assert!(
        wait_until(Duration::from_secs(5), || processes_with(&tok).is_empty()),
        "the tool survived cordon's death: {:?}",
        processes_with(&tok)
    );
    // No file anywhere under any session directory (`cordon-<32 hex>` in
    // /dev/shm, where cordon makes them) holds the secret.
    let mut leaked = Vec::new();
    let is_session_dir = |name: &str| {
        name.strip_prefix("cordon-")
            .is_some_and(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    if let Ok(entries) = std::fs::read_dir("/dev/shm") {
        for e in entries
            .flatten()
            .filter(|e| is_session_dir(&e.file_name().to_string_lossy()))
        {
            scan(&e.path(), &mut leaked);
        }
    }
    assert!(leaked.is_empty(), "the secret is on disk: {leaked:?}");
    // The next cordon to start sweeps the dead session's directory away.
    assert!(session_dir.exists());
    let next = c.run(&Profile::base(), &["exit", "0"]);
    assert_eq!(next.code, Some(0), "{next:#?}");
    assert!(
        !session_dir.exists(),
        "the dead session's directory was not swept"
    );
    // The audit chain still verifies up to the last complete record.
    let out = cordon_cmd()
        .args(["audit", "verify"])
        .arg(c.audit_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let log = std::fs::read_to_string(c.audit_path()).unwrap();
    assert!(
        log.contains(r#""kind":"call""#) && !log.contains(CANARY),
        "{log}"
    );
}

fn scan(dir: &std::path::Path, leaked: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let holds_canary = |p: &std::path::Path| {
            std::fs::read(p).is_ok_and(|d| d.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()))
        };
        match e.file_type() {
            Ok(t) if t.is_dir() => scan(&path, leaked),
            Ok(t) if t.is_file() && holds_canary(&path) => leaked.push(path),
            _ => {}
        }
    }
}
