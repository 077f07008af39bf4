//! Recording an observed run: each seccomp notification of the learn
//! filter becomes an access of the agent or of a tool it ran.
//!
//! Paths are read from the caller's memory while it waits on the
//! notification and resolved against its cwd or directory descriptor
//! through /proc. What a process does after it executes a program that
//! looks like a tool is charged to that tool (found through the parent
//! chain in /proc), since under `cordon run` that program runs in the
//! tool's own sandbox.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use super::classify::{classify, Program};
use super::{Access, Observations, ToolRun};
use crate::process::Observer;
use crate::sandbox::seccomp::{syscall_name, AUDIT_ARCH};
use crate::sys::process::{read_remote, read_remote_cstr};
use crate::sys::seccomp::{Listener, Notification};

/// Longest path read from a caller.
const MAX_PATH: usize = 4096;
/// Most argv entries read for one exec.
const MAX_ARGS: usize = 256;
/// How far up the parent chain a tool's descendant is looked for.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Default)]
struct State {
    obs: Observations,
    /// Processes that executed a tool, and the tool's name.
    tool_roots: HashMap<i32, String>,
    /// Parent pids seen, so a process that has exited still has a chain.
    parents: HashMap<i32, i32>,
}

/// The observer `cordon learn` gives the supervisor.
#[derive(Debug)]
pub struct Recorder {
    state: Mutex<State>,
    /// Canonical directories whose programs run inside the agent's own
    /// sandbox whatever they are (the workspace, HOME, TMPDIR).
    agent_trees: Vec<PathBuf>,
}

impl Recorder {
    pub fn new(agent_trees: Vec<PathBuf>) -> Recorder {
        Recorder {
            state: Mutex::new(State::default()),
            agent_trees,
        }
    }

    /// What was seen so far.
    pub fn take(&self) -> Observations {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut st.obs)
    }
}

impl Observer for Recorder {
    fn observe(&self, _listener: &Listener, n: &Notification) {
        if n.data.arch != AUDIT_ARCH {
            return;
        }
        let Some(name) = syscall_name(n.data.nr) else {
            return;
        };
        let pid = i32::try_from(n.pid).unwrap_or(0);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        remember_parent(&mut st, pid);
        let a = n.data.args;
        let path = |dirfd: Option<u64>, addr: u64| resolve(pid, dirfd.map(fd_arg), addr);
        match name {
            "execve" | "execveat" => {
                let (target, argv) = if name == "execve" {
                    (path(None, a[0]), a[1])
                } else {
                    (path(Some(a[0]), a[1]), a[2])
                };
                if let Some(target) = target.map(|t| program_file(pid, t)) {
                    let argv = read_argv(pid, argv);
                    tracing::debug!(pid, program = %target.display(), ?argv, "learn: exec");
                    exec(&mut st, &self.agent_trees, pid, target, argv);
                }
            }
            "connect" | "bind" => {
                if let Some(port) = inet_port(pid, a[1], a[2]) {
                    let access = owner_access(&mut st, pid);
                    if name == "connect" {
                        access.connect.insert(port);
                    } else {
                        access.bind.insert(port);
                    }
                }
            }
            _ => {
                for (p, write) in paths_of(name, pid, &a) {
                    tracing::debug!(pid, syscall = name, path = %p.display(), write, "learn: path");
                    let access = owner_access(&mut st, pid);
                    if write {
                        access.write.insert(p);
                    } else {
                        access.read.insert(p);
                    }
                }
            }
        }
    }
}

/// The low 32 bits of a syscall argument as a descriptor number.
fn fd_arg(v: u64) -> i32 {
    let lo = u32::try_from(v & 0xffff_ffff).unwrap_or(0);
    i32::from_ne_bytes(lo.to_ne_bytes())
}

/// The paths a path syscall touches, and whether each is written.
fn paths_of(name: &str, pid: i32, a: &[u64; 6]) -> Vec<(PathBuf, bool)> {
    let p = |dirfd: Option<u64>, addr: u64| resolve(pid, dirfd.map(fd_arg), addr);
    let open_write = |flags: u64| {
        let mode = flags & u64::from(libc::O_ACCMODE.unsigned_abs());
        mode != u64::from(libc::O_RDONLY.unsigned_abs())
            || flags & u64::from((libc::O_CREAT | libc::O_TRUNC).unsigned_abs()) != 0
    };
    let one = |path: Option<PathBuf>, write: bool| path.map(|p| (p, write)).into_iter().collect();
    match name {
        "open" => one(p(None, a[0]), open_write(a[1])),
        "openat" => one(p(Some(a[0]), a[1]), open_write(a[2])),
        "openat2" => {
            // struct open_how begins with the u64 flags.
            let mut flags = [0u8; 8];
            let f = read_remote(pid, a[2], &mut flags).map_or(0, |()| u64::from_ne_bytes(flags));
            one(p(Some(a[0]), a[1]), open_write(f))
        }
        "creat" | "mkdir" | "mknod" | "unlink" | "rmdir" | "truncate" => one(p(None, a[0]), true),
        "mkdirat" | "mknodat" | "unlinkat" => one(p(Some(a[0]), a[1]), true),
        "rename" | "link" => [p(None, a[0]), p(None, a[1])]
            .into_iter()
            .flatten()
            .map(|p| (p, true))
            .collect(),
        "renameat" | "renameat2" | "linkat" => [p(Some(a[0]), a[1]), p(Some(a[2]), a[3])]
            .into_iter()
            .flatten()
            .map(|p| (p, true))
            .collect(),
        // The target of a symlink is only text; the link is what is made.
        "symlink" => one(p(None, a[1]), true),
        "symlinkat" => one(p(Some(a[1]), a[2]), true),
        _ => Vec::new(),
    }
}

/// The caller's path argument, made absolute against its cwd or `dirfd`
/// and cleaned of `.` and `..` (lexically; symlinks are resolved when the
/// profile is written).
fn resolve(pid: i32, dirfd: Option<i32>, addr: u64) -> Option<PathBuf> {
    let raw = read_remote_cstr(pid, addr, MAX_PATH).ok()?;
    let raw = Path::new(OsStr::from_bytes(&raw));
    let base = if raw.is_absolute() {
        PathBuf::from("/")
    } else {
        let link = match dirfd {
            None | Some(libc::AT_FDCWD) => format!("/proc/{pid}/cwd"),
            Some(fd) => format!("/proc/{pid}/fd/{fd}"),
        };
        std::fs::read_link(link).ok()?
    };
    Some(clean(&base.join(raw)))
}

/// The file an exec of `target` by `pid` runs. A program under /proc
/// (`/proc/self/exe`, as Codex re-executes itself; `/proc/self/fd/N`) is
/// the caller's, not cordon's: `self` is rewritten to the caller's pid and
/// the magic link read now, while the caller waits in its exec and its
/// /proc entries still exist.
fn program_file(pid: i32, target: PathBuf) -> PathBuf {
    let Ok(rest) = target.strip_prefix("/proc") else {
        return target;
    };
    let mut parts = rest.components();
    let own = match parts.next().map(|c| c.as_os_str().to_owned()) {
        Some(c) if c == "self" => PathBuf::from(format!("/proc/{pid}")),
        Some(c) if c == "thread-self" => PathBuf::from(format!("/proc/{pid}/task/{pid}")),
        _ => return std::fs::canonicalize(&target).unwrap_or(target),
    };
    let caller = own.join(parts.as_path());
    std::fs::canonicalize(&caller).unwrap_or(caller)
}

/// `a/./b/../c` as `a/c`, without touching the filesystem.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The argv array of an exec, as text (lossy: only shown in the profile).
fn read_argv(pid: i32, addr: u64) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..MAX_ARGS as u64 {
        let mut ptr = [0u8; 8];
        if read_remote(pid, addr + i * 8, &mut ptr).is_err() {
            break;
        }
        let p = u64::from_ne_bytes(ptr);
        if p == 0 {
            break;
        }
        match read_remote_cstr(pid, p, MAX_PATH) {
            Ok(s) => out.push(String::from_utf8_lossy(&s).into_owned()),
            Err(_) => break,
        }
    }
    out
}

/// The port of an AF_INET/AF_INET6 address the caller passed.
fn inet_port(pid: i32, addr: u64, len: u64) -> Option<u16> {
    if len < 4 {
        return None;
    }
    let mut head = [0u8; 4];
    read_remote(pid, addr, &mut head).ok()?;
    let family = i32::from(u16::from_ne_bytes([head[0], head[1]]));
    if family != libc::AF_INET && family != libc::AF_INET6 {
        return None;
    }
    let port = u16::from_be_bytes([head[2], head[3]]);
    (port != 0).then_some(port)
}

fn remember_parent(st: &mut State, pid: i32) {
    if let std::collections::hash_map::Entry::Vacant(e) = st.parents.entry(pid) {
        if let Some(ppid) = parent_of(pid) {
            e.insert(ppid);
        }
    }
}

fn parent_of(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("PPid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The tool `pid` belongs to (it or an ancestor executed one), if any.
fn tool_of(st: &mut State, pid: i32) -> Option<String> {
    let mut p = pid;
    for _ in 0..MAX_DEPTH {
        if let Some(name) = st.tool_roots.get(&p) {
            return Some(name.clone());
        }
        remember_parent(st, p);
        match st.parents.get(&p) {
            Some(&ppid) if ppid > 1 && ppid != p => p = ppid,
            _ => return None,
        }
    }
    None
}

/// Where an access by `pid` is recorded: its tool's, or the agent's.
fn owner_access(st: &mut State, pid: i32) -> &mut Access {
    match tool_of(st, pid) {
        Some(name) => &mut st.obs.tools.entry(name).or_default().access,
        None => &mut st.obs.agent,
    }
}

fn exec(st: &mut State, agent_trees: &[PathBuf], pid: i32, target: PathBuf, argv: Vec<String>) {
    // A PATH search tries each directory in turn (Codex puts its own in
    // front): an attempt on a file that is not there fails, runs nothing,
    // and must not make the next, real program a helper of a phantom tool.
    if std::fs::metadata(&target).is_err() {
        return;
    }
    if let Some(name) = tool_of(st, pid) {
        // A tool running a helper of its own: part of the tool's run.
        let run = st.obs.tools.entry(name).or_default();
        run.access.exec.insert(target);
        return;
    }
    let first = st.obs.first_program.clone();
    match classify(
        &target,
        argv.first().map(String::as_str),
        first.as_deref(),
        agent_trees,
    ) {
        Program::Agent => {
            if st.obs.first_program.is_none() {
                st.obs.first_program = Some(target.clone());
            }
            st.obs.agent.exec.insert(target);
        }
        Program::Tool(name) => {
            st.tool_roots.insert(pid, name.clone());
            let run: &mut ToolRun = st.obs.tools.entry(name).or_default();
            if run.path.as_os_str().is_empty() {
                run.path = target;
            }
            run.calls.push(argv.into_iter().skip(1).collect());
        }
    }
}
