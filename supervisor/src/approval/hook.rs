//! The approval hook: `[approval] approver = "command:ARGV"`.
//!
//! The command runs outside every sandbox, as cordon's user, with an empty
//! environment (plus a fixed PATH), `/` as its directory, and the request
//! as one JSON object on stdin. The first line of its stdout is the answer:
//! `approve` or `deny`, optionally followed by a reason. Anything else, a
//! non-zero exit, or no answer before the request expires is a deny, and a
//! hook still running then is killed with its whole process group.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::grant::GrantSpec;
use super::{Answer, Pending};

/// The most of a hook's stdout read.
const MAX_OUTPUT: u64 = 64 * 1024;
/// How often a running hook is checked against its request.
const TICK: Duration = Duration::from_millis(50);

/// A hook's first line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub approve: bool,
    pub reason: Option<String>,
}

/// Reads the first line of a hook's stdout. Only `approve` and `deny` (as
/// the first word, exactly) are answers; anything else is an error, which
/// the caller turns into a deny.
pub fn parse_answer(stdout: &[u8]) -> Result<Verdict, String> {
    let first = stdout.split(|&b| b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(first) else {
        return Err("its first line is not UTF-8".into());
    };
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (word, rest) = match line.split_once([' ', '\t']) {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    let approve = match word {
        "approve" => true,
        "deny" => false,
        _ => {
            let shown: String = line.chars().take(60).collect();
            return Err(format!(
                "its first line is not `approve` or `deny` (got {:?})",
                shown
            ));
        }
    };
    let reason = (!rest.is_empty()).then(|| rest.chars().take(500).collect());
    Ok(Verdict { approve, reason })
}

/// Asks the hook about `pending`. Returns its answer, or `None` when the
/// request was answered by someone else, withdrawn or expired first (the
/// hook is killed then).
pub fn ask(argv: &[String], pending: &Pending) -> Option<Answer> {
    let program = argv.first()?;
    let approver = format!("hook:{program}");
    let deny = |reason: String| {
        Some(Answer {
            approve: false,
            grant: GrantSpec::default(),
            approver: approver.clone(),
            reason: Some(reason),
            at: crate::audit::time::now(),
        })
    };
    let json = match serde_json::to_vec(&pending.shown()) {
        Ok(j) => j,
        Err(e) => return deny(format!("cannot encode the request: {e}")),
    };
    let mut cmd = Command::new(program);
    cmd.args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
    crate::sys::process::die_with_parent(&mut cmd);
    let spawned = cmd.spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return deny(format!("the hook `{program}` could not start: {e}")),
    };
    let pgid = i32::try_from(child.id()).unwrap_or(0);
    let kill_group = || {
        let _ = crate::sys::process::kill_process_group(pgid, libc::SIGKILL);
    };
    // Writing and reading in threads: a hook that reads nothing, or prints
    // without end, cannot stall the wait.
    if let Some(mut stdin) = child.stdin.take() {
        std::thread::spawn(move || {
            let _ = stdin.write_all(&json);
            let _ = stdin.write_all(b"\n");
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.take(MAX_OUTPUT).read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    let pidfd = match crate::sys::process::pidfd_open(pgid) {
        Ok(fd) => fd,
        Err(e) => {
            kill_group();
            let _ = child.wait();
            return deny(format!("cannot watch the hook: {e}"));
        }
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                kill_group();
                let _ = child.wait();
                return deny(format!("cannot wait for the hook: {e}"));
            }
        }
        if !pending.is_open() {
            // Answered elsewhere, withdrawn, or past its deadline.
            kill_group();
            let _ = child.wait();
            return None;
        }
        let mut fds = [libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let ms = i32::try_from(TICK.as_millis()).unwrap_or(50);
        let _ = crate::sys::fd::poll(&mut fds, ms);
    };
    // Whatever the hook left running goes with it.
    kill_group();
    let out = rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
    if !status.success() {
        return deny(format!(
            "the hook `{program}` failed ({status}); that is a deny"
        ));
    }
    match parse_answer(&out) {
        Ok(v) => Some(Answer {
            approve: v.approve,
            grant: GrantSpec::default(),
            approver,
            reason: v.reason,
            at: crate::audit::time::now(),
        }),
        Err(why) => deny(format!(
            "the hook `{program}` gave no answer: {why}; that is a deny"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_approve_or_deny_first_is_an_answer() {
        assert_eq!(
            parse_answer(b"approve\n"),
            Ok(Verdict {
                approve: true,
                reason: None
            })
        );
        assert_eq!(
            parse_answer(b"deny  not during the freeze \nmore"),
            Ok(Verdict {
                approve: false,
                reason: Some("not during the freeze".into())
            })
        );
        assert_eq!(
            parse_answer(b"approve\tok by bob\r\n"),
            Ok(Verdict {
                approve: true,
                reason: Some("ok by bob".into())
            })
        );
        for garbage in [
            &b""[..],
            b"\napprove",
            b"yes",
            b"APPROVE",
            b"approved",
            b" approve",
            b"\xffapprove",
        ] {
            assert!(parse_answer(garbage).is_err(), "{garbage:?}");
        }
    }
}
