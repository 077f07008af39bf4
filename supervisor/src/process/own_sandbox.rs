//! Telling an agent that brings a sandbox of its own (Codex's bubblewrap,
//! firejail, nsjail...) what went wrong: such a sandbox makes namespaces,
//! which cordon's seccomp filter refuses inside its own, and the person
//! reading "called unshare" would not guess that the fix is a flag of the
//! agent. Pure: the texts only.

use std::path::Path;

/// Programs that build a namespace sandbox around what they run.
const SANDBOXERS: [&str; 8] = [
    "bwrap",
    "bubblewrap",
    "firejail",
    "nsjail",
    "minijail0",
    "unshare",
    "systemd-nspawn",
    "runsc",
];

/// What to do about it, for every such refusal.
const ADVICE: &str = "cordon is the sandbox here, and namespaces cannot be made inside it: run the agent with its own sandbox turned off (Codex: `--dangerously-bypass-approvals-and-sandbox`, or `--sandbox danger-full-access`)";

/// The namespace flags of clone/unshare, by name.
const FLAGS: [(u64, &str); 8] = [
    (libc::CLONE_NEWUSER as u64, "CLONE_NEWUSER"),
    (libc::CLONE_NEWNS as u64, "CLONE_NEWNS"),
    (libc::CLONE_NEWPID as u64, "CLONE_NEWPID"),
    (libc::CLONE_NEWNET as u64, "CLONE_NEWNET"),
    (libc::CLONE_NEWIPC as u64, "CLONE_NEWIPC"),
    (libc::CLONE_NEWUTS as u64, "CLONE_NEWUTS"),
    (libc::CLONE_NEWCGROUP as u64, "CLONE_NEWCGROUP"),
    (libc::CLONE_NEWTIME as u64, "CLONE_NEWTIME"),
];

/// The advice for an exec of `path`, when it is a sandboxing program.
pub fn exec_hint(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    SANDBOXERS
        .contains(&name)
        .then(|| format!("`{name}` builds a namespace sandbox of its own; {ADVICE}"))
}

/// "called `unshare` with CLONE_NEWUSER|CLONE_NEWNS" and the advice, for a clone or
/// unshare (`syscall`) whose flags argument `flags` asks for namespaces;
/// `comm` is the caller's name, when known.
pub fn namespace_call(syscall: &str, flags: u64, comm: Option<&str>) -> Option<String> {
    if syscall != "clone" && syscall != "unshare" {
        return None;
    }
    // clone's low byte is the exit signal, not CLONE_NEWTIME.
    let names: Vec<&str> = FLAGS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .filter(|(bit, _)| syscall == "unshare" || *bit != libc::CLONE_NEWTIME as u64)
        .map(|(_, n)| *n)
        .collect();
    if names.is_empty() {
        return None;
    }
    let who = comm.map(|c| format!(" ({c})")).unwrap_or_default();
    Some(format!(
        "called `{syscall}` with {}{who}, which the profile denies: it is making namespaces, as a sandbox of its own (bubblewrap, firejail) does; {ADVICE}",
        names.join("|")
    ))
}

/// The name of process `pid` (`/proc/PID/comm`), printable.
pub fn comm(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    let text: String = String::from_utf8_lossy(&raw)
        .trim_end()
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_calls_are_named_with_their_flags_and_the_fix() {
        let flags = (libc::CLONE_NEWUSER | libc::CLONE_NEWNS) as u64;
        let m = namespace_call("unshare", flags, Some("bwrap")).unwrap();
        assert!(
            m.starts_with(
                "called `unshare` with CLONE_NEWUSER|CLONE_NEWNS (bwrap), which the profile denies"
            ),
            "{m}"
        );
        assert!(
            m.contains("--dangerously-bypass-approvals-and-sandbox"),
            "{m}"
        );
        // clone's exit signal (SIGCHLD = 17 = 0x11) is not CLONE_NEWTIME (0x80).
        let clone = (libc::CLONE_NEWPID as u64) | 0x80 | 17;
        let m = namespace_call("clone", clone, None).unwrap();
        assert!(m.starts_with("called `clone` with CLONE_NEWPID, "), "{m}");
        assert_eq!(namespace_call("clone", 17, None), None);
        assert_eq!(namespace_call("ptrace", flags, None), None);
        assert!(exec_hint(Path::new("/usr/bin/bwrap")).is_some());
        assert_eq!(exec_hint(Path::new("/usr/bin/git")), None);
    }
}
