//! The audit log end to end: records written by `AuditLog`, tampered with
//! in a copy, and checked by the real `cordon audit verify`.

#![allow(clippy::unwrap_used)] // test helpers fail by panicking

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use cordon::audit::{AuditError, AuditLog, Kind, Record};

const SESSION: &str = "0123456789abcdef0123456789abcdef";

fn verify(file: &Path, head: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cordon"));
    cmd.args(["audit", "verify"]).arg(file);
    if let Some(h) = head {
        cmd.args(["--head", h]);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run cordon: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A 20-record log like a session writes; returns its path and head.
fn session_log(dir: &Path) -> (PathBuf, String) {
    let path = dir.join("logs/audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    let mut head = log
        .append(
            &Record::new(Kind::SessionStart, SESSION)
                .profile("coding-agent")
                .intent("fix the build"),
        )
        .unwrap();
    for call in 1..=9u64 {
        let rec = Record::new(Kind::Call, SESSION)
            .profile("coding-agent")
            .call(call)
            .tool("git")
            .argv_bytes(&[b"commit", b"-m", b"caf\xc3\xa9 \xff"])
            .cwd("/work/repo")
            .decision(cordon::audit::Decision::Allow)
            .rule("tools.git.allow[2]")
            .secrets(vec!["GITHUB_TOKEN".to_owned()]);
        log.append(&rec).unwrap();
        let end = Record::new(Kind::CallEnd, SESSION)
            .profile("coding-agent")
            .call(call)
            .duration_ms(12u64)
            .exit(0);
        log.append(&end).unwrap();
    }
    head = log
        .append(&Record::new(Kind::SessionEnd, SESSION).profile("coding-agent"))
        .unwrap_or(head);
    (path, head)
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Writes `lines` to a copy next to the original and verifies it.
fn tampered(dir: &Path, name: &str, lines: &[String]) -> Output {
    let copy = dir.join(name);
    fs::write(
        &copy,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    verify(&copy, None)
}

fn assert_broken(out: &Output, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

#[test]
fn a_written_log_verifies_and_prints_its_head() {
    let dir = tempfile::tempdir().unwrap();
    let (path, head) = session_log(dir.path());
    let out = verify(&path, Some(&head));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{}: ok, 20 records, head {head}\n", path.display())
    );

    let l = lines(&path);
    assert!(l[0].starts_with(r#"{"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","kind":"session_start","time":""#));
    assert!(
        l[1].contains(r#""argv":["commit","-m","café \\xff"]"#),
        "{}",
        l[1]
    );
    assert!(l[1].contains(&format!(
        r#""identity":"spiffe://cordon.local/profile/coding-agent/session/{SESSION}""#
    )));
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(
        fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
        0o700
    );
}

#[test]
fn every_tampering_is_caught_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let (path, head) = session_log(dir.path());
    let orig = lines(&path);

    let mut l = orig.clone();
    l[5] = l[5].replacen(r#""decision":"allow""#, r#""decision":"deny""#, 1);
    assert_ne!(l[5], orig[5]);
    assert_broken(
        &tampered(dir.path(), "edit", &l),
        "line 7 (seq 7): prev does not match line 6: line 6 was edited",
    );

    let mut l = orig.clone();
    l.remove(9);
    assert_broken(
        &tampered(dir.path(), "delete", &l),
        "line 10: seq 11 follows seq 9: record 10 is missing",
    );

    // A forged record with a correct-looking seq and prev.
    let mut l = orig.clone();
    let forged = l[4].replacen("\"exit\":0", "\"exit\":1", 1);
    l.insert(4, forged);
    assert_broken(
        &tampered(dir.path(), "insert", &l),
        "line 5 (seq 5) was inserted",
    );

    let mut l = orig.clone();
    l.swap(11, 12);
    assert_broken(
        &tampered(dir.path(), "swap", &l),
        "lines 12 and 13: seq 13 comes before seq 12",
    );

    let mut l = orig.clone();
    l.swap(2, 15);
    assert_broken(
        &tampered(dir.path(), "swap-far", &l),
        "line 3: seq 16 follows seq 2",
    );

    let copy = dir.path().join("truncate");
    let bytes = fs::read(&path).unwrap();
    fs::write(&copy, &bytes[..bytes.len() - 40]).unwrap();
    assert_broken(&verify(&copy, None), "line 20: incomplete last line");

    let mut l = orig.clone();
    l.push("rm -rf /".to_owned());
    assert_broken(
        &tampered(dir.path(), "garbage", &l),
        "line 21: not a cordon audit record",
    );

    // The last line: only the head hash can tell.
    let mut l = orig.clone();
    l[19] = l[19].replacen("session_end", "call_end", 1);
    let out = tampered(dir.path(), "last", &l);
    assert_eq!(out.status.code(), Some(0));
    assert_broken(
        &verify(&dir.path().join("last"), Some(&head)),
        "line 20 (the last): hash",
    );
    let out = tampered(dir.path(), "cut", &orig[..18]);
    assert_eq!(out.status.code(), Some(0));
    assert_broken(
        &verify(&dir.path().join("cut"), Some(&head)),
        "is not the expected head",
    );
}

#[test]
fn an_unreadable_file_exits_2() {
    let out = verify(Path::new("/nonexistent/audit.jsonl"), None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/audit.jsonl: cannot read"));
}

#[test]
fn concurrent_appenders_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.jsonl");
    let handles: Vec<Arc<AuditLog>> = (0..4)
        .map(|_| Arc::new(AuditLog::open(&path).unwrap()))
        .collect();
    let mut threads = Vec::new();
    for (h, log) in handles.iter().enumerate() {
        for t in 0..4 {
            let log = Arc::clone(log);
            threads.push(std::thread::spawn(move || {
                for i in 0..100u64 {
                    let rec = Record::new(Kind::Call, SESSION)
                        .call(i)
                        .detail(format!("handle {h} thread {t}"));
                    log.append(&rec).unwrap();
                }
            }));
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    let out = verify(&path, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(": ok, 1600 records, head "));
}

#[test]
fn open_refuses_symlinks_and_non_files() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.jsonl");
    fs::write(&target, "").unwrap();
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(matches!(
        AuditLog::open(&link),
        Err(AuditError::Symlink { .. })
    ));
    assert!(matches!(
        AuditLog::open(dir.path()),
        Err(AuditError::NotRegular { .. }) | Err(AuditError::Open { .. })
    ));
    let fifo = dir.path().join("fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    assert!(matches!(
        AuditLog::open(&fifo),
        Err(AuditError::NotRegular { .. })
    ));
}

#[test]
fn append_failures_are_returned_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    fs::write(&path, "not a record\n").unwrap();
    let log = AuditLog::open(&path).unwrap();
    let err = log.append(&Record::new(Kind::Call, SESSION)).unwrap_err();
    assert!(matches!(err, AuditError::BadTail { .. }));
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    // Nothing was written after the unreadable tail.
    assert_eq!(fs::read_to_string(&path).unwrap(), "not a record\n");
}

#[test]
fn oversized_records_are_shortened_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let log = AuditLog::open(&path).unwrap().with_sync(true);
    let huge = vec![b'a'; 200_000];
    log.append(
        &Record::new(Kind::Call, SESSION)
            .argv_bytes(&[&huge, b"x"])
            .detail("d".repeat(100_000)),
    )
    .unwrap();
    log.append(&Record::new(Kind::CallEnd, SESSION)).unwrap();
    let l = lines(&path);
    assert_eq!(l.len(), 2);
    assert!(l[0].len() <= cordon::audit::MAX_LINE);
    assert!(l[0].contains(cordon::audit::fit::CUT_MARK));
    assert_eq!(verify(&path, None).status.code(), Some(0));
}
