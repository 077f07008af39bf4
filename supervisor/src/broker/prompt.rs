//! The approval prompt on cordon's own terminal.
//!
//! Only when the agent cannot touch that terminal: cordon does not start
//! the agent in a session of its own (interactive agents keep the
//! terminal), so an agent whose stdin, stdout or stderr *is* cordon's
//! terminal could write a fake prompt over the real one, or read the
//! operator's keystrokes. The prompt is therefore off when any of cordon's
//! descriptors 0-2 (which the agent inherits) is the controlling terminal,
//! or when a grant of the agent or of a tool reaches a terminal device
//! (`/dev/tty`, `/dev/pts`, `/dev`, `/`). Then the operator answers with
//! `cordon approve`. TIOCSTI and TIOCLINUX are refused by seccomp in every
//! case, so no sandboxed process can push bytes into a terminal's input.
//!
//! Defence in depth when the prompt is on: input typed before the question
//! is discarded (so a held-down key answers nothing), what the agent chose
//! (argv, cwd, intent) is shown with control characters escaped, and only
//! `y`/`yes` or `s`/`session` approve; anything else denies.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::approval::grant::GrantSpec;
use crate::approval::names::describe_uid;
use crate::approval::{printable, Answer, Pending, Queue};
use crate::profile::{PathRule, Placeholders, Profile};

/// How often the prompt checks whether another approver answered.
const TICK: Duration = Duration::from_millis(100);

/// Opens cordon's terminal for prompting, or says why the prompt must stay
/// off.
pub fn open_terminal(profile: &Profile, values: &Placeholders) -> Result<File, String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open("/dev/tty")
        .map_err(|_| "cordon has no controlling terminal".to_string())?;
    let ctty = controlling_tty(Path::new("/proc/self/stat"))
        .ok_or("cannot tell which terminal is cordon's")?;
    for fd in 0..=2 {
        if let Ok(m) = std::fs::metadata(format!("/proc/self/fd/{fd}")) {
            if m.file_type().is_char_device() && m.rdev() == ctty {
                return Err(format!(
                    "the agent's {} is this terminal, so it could draw a fake prompt over the real one; redirect the agent's stdio to enable the prompt",
                    ["stdin", "stdout", "stderr"][fd]
                ));
            }
        }
    }
    let fs = &profile.filesystem;
    let agent = fs.read.iter().chain(&fs.write).chain(&fs.exec);
    let tools = profile
        .tools
        .values()
        .flat_map(|t| t.sandbox.read.iter().chain(&t.sandbox.write));
    if let Some(rule) = agent.chain(tools).find(|r| reaches_terminal(r, values)) {
        return Err(format!(
            "the grant `{}` ({}) lets a sandboxed process open a terminal",
            rule.path, rule.origin
        ));
    }
    Ok(tty)
}

fn reaches_terminal(rule: &PathRule, values: &Placeholders) -> bool {
    let p = rule.path.expand(values);
    let text = p.to_string_lossy();
    p == Path::new("/")
        || p == Path::new("/dev")
        || text.starts_with("/dev/tty")
        || text.starts_with("/dev/pts")
        || text.starts_with("/dev/console")
        || text.starts_with("/dev/ptmx")
        || text.starts_with("/dev/vcs")
}

/// The device number of the controlling terminal (`tty_nr` of
/// /proc/self/stat), `None` without one.
pub fn controlling_tty(stat_path: &Path) -> Option<u64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // Fields after the command name (which may hold spaces and parens).
    let rest = &stat[stat.rfind(')')? + 1..];
    let tty: i64 = rest.split_whitespace().nth(4)?.parse().ok()?;
    // The kernel prints the dev_t as a signed int; 0 means none.
    (tty != 0).then(|| u64::try_from(tty).unwrap_or(0))
}

/// Starts prompting on `tty` for every request put to `queue` (set up
/// before the broker serves its first call, so none is missed).
pub fn start(tty: File, queue: &Queue) -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel::<Arc<Pending>>();
    let who = format!("tty {}", describe_uid(crate::sys::geteuid()));
    std::thread::Builder::new()
        .name("cordon-prompt".into())
        .spawn(move || {
            let mut tty = tty;
            for p in rx {
                if p.is_open() {
                    ask(&mut tty, &p, &who);
                }
            }
        })?;
    queue.set_prompter(tx);
    Ok(())
}

fn ask(tty: &mut File, p: &Pending, who: &str) {
    let i = p.shown();
    let secrets = if i.secrets.is_empty() {
        "none".to_string()
    } else {
        i.secrets.join(", ")
    };
    let text = format!(
        "\r\ncordon: approval needed [{}] (profile {}, session {})\r\n  intent:  {}\r\n  call:    {} {}\r\n  cwd:     {}\r\n  secrets: {}\r\n  rule:    {}\r\n  approve? [y]es once / [s]ession / anything else denies (denied in {}s): ",
        printable(&i.id),
        printable(&i.profile),
        i.session,
        printable(i.intent.as_deref().unwrap_or("(none given)")),
        printable(&i.tool),
        i.argv.iter().map(|a| printable(a)).collect::<Vec<_>>().join(" "),
        printable(&i.cwd),
        printable(&secrets),
        printable(&i.rule),
        i.expires_in_s,
    );
    // Typed-ahead input is discarded before the question appears, so only
    // keys pressed after it was shown can answer it.
    let _ = crate::sys::tty::flush_input(tty.as_fd());
    if tty.write_all(text.as_bytes()).is_err() {
        return;
    }
    let mut buf = [0u8; 256];
    let n = loop {
        if !p.is_open() {
            let _ = tty.write_all(b"\r\ncordon: answered elsewhere, or timed out\r\n");
            return;
        }
        let mut fds = [libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(tty),
            events: libc::POLLIN,
            revents: 0,
        }];
        let ms = i32::try_from(TICK.as_millis()).unwrap_or(100);
        match crate::sys::fd::poll(&mut fds, ms) {
            Ok(0) | Err(_) => continue,
            Ok(_) => {}
        }
        match tty.read(&mut buf) {
            Ok(n) => break n,
            Err(_) => return,
        }
    };
    let line = String::from_utf8_lossy(&buf[..n])
        .trim()
        .to_ascii_lowercase();
    let (approve, grant) = match line.as_str() {
        "y" | "yes" => (true, GrantSpec::default()),
        "s" | "session" => (
            true,
            GrantSpec {
                for_session: true,
                ..GrantSpec::default()
            },
        ),
        _ => (false, GrantSpec::default()),
    };
    let answer = Answer {
        approve,
        grant,
        approver: who.to_string(),
        reason: (!approve).then(|| "denied at the terminal".to_string()),
        at: crate::audit::time::now(),
    };
    let said = if p.answer(answer) {
        if approve {
            "approved"
        } else {
            "denied"
        }
    } else {
        "too late: answered elsewhere, or timed out"
    };
    let _ = tty.write_all(format!("cordon: {said}\r\n").as_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    #[test]
    fn reads_tty_nr_past_a_hostile_command_name() {
        let dir = tempfile::tempdir().unwrap();
        let stat = dir.path().join("stat");
        std::fs::write(&stat, "42 (a) b) 1 2) S 1 42 42 34817 42 4194560 0 0").unwrap();
        assert_eq!(controlling_tty(&stat), Some(34817));
        std::fs::write(&stat, "42 (x) S 1 42 42 0 -1 4194560").unwrap();
        assert_eq!(controlling_tty(&stat), None);
    }

    #[test]
    fn grants_that_reach_a_terminal() {
        let values = Placeholders {
            workspace: "/w".into(),
            home: "/h".into(),
            tmp: "/t".into(),
        };
        let rule = |p: &str| PathRule {
            path: crate::profile::PathTemplate::parse(p).unwrap(),
            optional: false,
            origin: crate::profile::Location::whole_file(Path::new("p.toml")),
        };
        for p in [
            "/",
            "/dev",
            "/dev/tty",
            "/dev/pts",
            "/dev/pts/3",
            "/dev/tty1",
        ] {
            assert!(reaches_terminal(&rule(p), &values), "{p}");
        }
        for p in [
            "/dev/null",
            "/dev/urandom",
            "/usr",
            "{workspace}",
            "/devices",
        ] {
            assert!(!reaches_terminal(&rule(p), &values), "{p}");
        }
    }
}
