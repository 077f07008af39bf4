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

mod common;
use common::*;
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

// ----- the battery -------------------------------------------------------

fn filesystem() -> Vec<Escape> {
    vec![
        case(
            "fs.read-outside-grant",
            "read a file outside every grant",
            |c| {
                let f = c.outside.join("secret.txt");
                std::fs::write(&f, SECRET_TEXT).unwrap();
                refused(&run(c, &ws(true), &["read", &p(&f)]), &["EACCES"]);
            },
        ),
        case(
            "fs.list-outside-grant",
            "list a directory outside every grant",
            |c| {
                refused(&run(c, &ws(true), &["list", &p(&c.outside)]), &["EACCES"]);
            },
        ),
        case(
            "fs.write-outside-grant",
            "create a file outside every grant",
            |c| {
                let f = c.outside.join("planted");
                refused(&run(c, &ws(true), &["write", &p(&f)]), &["EACCES"]);
                assert!(!f.exists());
            },
        ),
        case(
            "fs.write-read-only-grant",
            "create a file in a read-only grant",
            |c| {
                let f = c.workspace.join("new");
                refused(&run(c, &ws(false), &["write", &p(&f)]), &["EACCES"]);
                assert!(!f.exists());
            },
        ),
        case(
            "fs.truncate-read-only-grant",
            "truncate a file in a read-only grant",
            |c| {
                let f = c.workspace.join("keep");
                std::fs::write(&f, "original").unwrap();
                refused(&run(c, &ws(false), &["truncate", &p(&f)]), &["EACCES"]);
                assert_eq!(std::fs::read_to_string(&f).unwrap(), "original");
            },
        ),
        case(
            "fs.read-host-passwd",
            "read /etc/passwd (not granted)",
            |c| {
                refused(&run(c, &ws(false), &["read", "/etc/passwd"]), &["EACCES"]);
            },
        ),
        case("fs.read-block-device", "read the host's disk device", |c| {
            let dev = ["/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/mem"]
                .into_iter()
                .find(|d| std::path::Path::new(d).exists())
                .unwrap_or("/dev/mem");
            refused(&run(c, &ws(false), &["read", dev]), &["EACCES"]);
        }),
        case(
            "fs.denied-subpath-read",
            "read a denied file inside the workspace",
            |c| {
                let prof = with_denies(c);
                refused(
                    &run(c, &prof, &["read", &p(&c.workspace.join(".env"))]),
                    &["EACCES"],
                );
            },
        ),
        case("fs.denied-subpath-write", "overwrite a denied file", |c| {
            let prof = with_denies(c);
            let env = c.workspace.join(".env");
            refused(&run(c, &prof, &["write", &p(&env)]), &["EACCES", "EROFS"]);
            assert_eq!(std::fs::read_to_string(&env).unwrap(), SECRET_TEXT);
        }),
        case(
            "fs.denied-subpath-symlink",
            "read a denied file through a new symlink",
            |c| {
                let prof = with_denies(c);
                let (env, link) = (c.workspace.join(".env"), c.workspace.join("link"));
                refused(
                    &run(c, &prof, &["symlink-read", &p(&env), &p(&link)]),
                    &["EACCES"],
                );
            },
        ),
        case(
            "fs.denied-subpath-hardlink",
            "hard-link a denied file to a new name",
            |c| {
                let prof = with_denies(c);
                let stolen = c.workspace.join("stolen");
                let r = run(
                    c,
                    &prof,
                    &["link", &p(&c.workspace.join(".env")), &p(&stolen)],
                );
                refused(&r, &["EXDEV", "EACCES", "EPERM"]);
                assert!(!stolen.exists());
            },
        ),
        case(
            "fs.denied-subpath-rename",
            "rename a denied file out of its mask",
            |c| {
                let prof = with_denies(c);
                let stolen = c.workspace.join("stolen");
                let r = run(
                    c,
                    &prof,
                    &["rename", &p(&c.workspace.join(".env")), &p(&stolen)],
                );
                refused(&r, &["EBUSY", "EXDEV", "EACCES", "EPERM"]);
                assert!(!stolen.exists());
            },
        ),
        case(
            "fs.denied-parent-rename",
            "move the parent of a denied directory away",
            |c| {
                let prof = with_denies(c);
                let moved = c.workspace.join("moved");
                let r = run(
                    c,
                    &prof,
                    &["rename", &p(&c.workspace.join(".git")), &p(&moved)],
                );
                refused(&r, &["EBUSY"]);
                assert!(!moved.exists());
            },
        ),
        case(
            "fs.denied-dir-add",
            "add a hook to a denied directory",
            |c| {
                let prof = with_denies(c);
                let hook = c.workspace.join(".git/hooks/post-checkout");
                refused(&run(c, &prof, &["write", &p(&hook)]), &["EACCES", "EROFS"]);
                assert!(!hook.exists());
            },
        ),
        case(
            "fs.symlink-to-outside",
            "read outside the grants through a symlink",
            |c| {
                let f = c.outside.join("secret.txt");
                std::fs::write(&f, SECRET_TEXT).unwrap();
                let link = c.workspace.join("link");
                refused(
                    &run(c, &ws(true), &["symlink-read", &p(&f), &p(&link)]),
                    &["EACCES"],
                );
            },
        ),
        case(
            "fs.hardlink-from-outside",
            "hard-link an outside file into the workspace",
            |c| {
                let f = c.outside.join("secret.txt");
                std::fs::write(&f, SECRET_TEXT).unwrap();
                let copy = c.workspace.join("copy");
                refused(
                    &run(c, &ws(true), &["link", &p(&f), &p(&copy)]),
                    &["EXDEV", "EACCES", "EPERM"],
                );
                assert!(!copy.exists());
            },
        ),
        case(
            "fs.rename-to-outside",
            "move a workspace file outside the grants",
            |c| {
                let f = c.workspace.join("f");
                std::fs::write(&f, "x").unwrap();
                let dst = c.outside.join("f");
                refused(
                    &run(c, &ws(true), &["rename", &p(&f), &p(&dst)]),
                    &["EXDEV", "EACCES"],
                );
                assert!(f.exists() && !dst.exists());
            },
        ),
        case(
            "fs.proc-other-process",
            "read /proc/<pid>/environ of a host process",
            |c| {
                let mut prof = ws(false);
                prof.read.push("/proc".into());
                let target = format!("/proc/{}/environ", std::process::id());
                refused(&run(c, &prof, &["read", &target]), &["ENOENT", "EACCES"]);
            },
        ),
        case(
            "fs.proc-sandbox-init",
            "read /proc/1/environ (cordon's init, outside the domain)",
            |c| {
                let mut prof = ws(false);
                prof.read.push("/proc".into());
                refused(&run(c, &prof, &["read", "/proc/1/environ"]), &["EACCES"]);
            },
        ),
        case(
            "fs.profile-read",
            "read the profile cordon runs under",
            |c| {
                let prof = ws(true);
                refused(
                    &run(c, &prof, &["read", &p(&c.profile_path(&prof))]),
                    &["EACCES"],
                );
            },
        ),
        case(
            "fs.profile-write",
            "rewrite the profile cordon runs under",
            |c| {
                let prof = ws(true);
                let path = c.profile_path(&prof);
                refused(&run(c, &prof, &["write", &p(&path)]), &["EACCES"]);
                assert_eq!(std::fs::read_to_string(&path).unwrap(), prof.toml());
            },
        ),
        case("fs.audit-log-read", "read the audit log", |c| {
            refused(
                &run(c, &ws(true), &["read", &p(&c.audit_path())]),
                &["EACCES"],
            );
        }),
        case(
            "fs.audit-log-append",
            "append a forged record to the audit log",
            |c| {
                refused(
                    &run(c, &ws(true), &["append", &p(&c.audit_path())]),
                    &["EACCES"],
                );
                let v = cordon_cmd()
                    .args(["audit", "verify"])
                    .arg(c.audit_path())
                    .output()
                    .unwrap();
                assert_eq!(v.status.code(), Some(0), "{v:?}");
            },
        ),
        case(
            "fs.secret-source-file",
            "read the file a secret is fetched from",
            |c| {
                let prof = brokered(c);
                let source = c.dir.path().join("secret-source");
                refused(&run(c, &prof, &["read", &p(&source)]), &["EACCES"]);
            },
        ),
    ]
}

fn exec() -> Vec<Escape> {
    vec![
        case(
            "exec.outside-grant",
            "execute a readable binary without an exec grant",
            |c| {
                let mut prof = ws(false);
                prof.read.push("/usr/bin".into());
                run(c, &prof, &["exec", "/usr/bin/true"]).killed_for("executed `/usr/bin/true`");
            },
        ),
        case(
            "exec.planted-binary",
            "execute a binary the agent wrote into its workspace",
            |c| {
                let copy = c.workspace.join("mytrue");
                std::fs::copy("/usr/bin/true", &copy).unwrap();
                run(c, &ws(true), &["exec", &p(&copy)]).killed_for("executed");
            },
        ),
        case(
            "exec.symlink",
            "execute a binary through a symlink in the workspace",
            |c| {
                let mut prof = ws(true);
                prof.read.push("/usr/bin".into());
                std::os::unix::fs::symlink("/usr/bin/id", c.workspace.join("innocent")).unwrap();
                run(c, &prof, &["exec", &p(&c.workspace.join("innocent"))])
                    .killed_for("executed `/usr/bin/id`");
            },
        ),
        case(
            "exec.memfd",
            "execute a copy of a binary from a memfd",
            |c| {
                let mut prof = ws(false);
                prof.read.push("/usr/bin/true".into());
                run(c, &prof, &["memfd-exec"]).killed_for("unnamed or deleted file");
            },
        ),
        case(
            "exec.memfd-exec-flag",
            "create an executable memfd (MFD_EXEC)",
            |c| {
                let mut prof = ws(false);
                prof.read.push("/usr/bin/true".into());
                run(c, &prof, &["memfd-exec", "exec-flag"]).killed_for("`memfd_create`");
            },
        ),
        case(
            "exec.brokered-tool-directly",
            "execute a declared tool's real binary, bypassing the broker",
            |c| {
                let mut prof = brokered(c);
                prof.read.push("/usr/bin".into());
                run(c, &prof, &["exec", "/usr/bin/cat"]).killed_for("executed `/usr/bin/cat`");
            },
        ),
    ]
}

fn network() -> Vec<Escape> {
    vec![
        case(
            "net.tcp-ungranted-port",
            "connect to a TCP port the profile does not grant",
            |c| {
                let granted = TcpListener::bind("127.0.0.1:0").unwrap();
                let other = TcpListener::bind("127.0.0.1:0").unwrap();
                other.set_nonblocking(true).unwrap();
                let mut prof = ws(false);
                prof.connect_tcp.push(granted.local_addr().unwrap().port());
                let port = other.local_addr().unwrap().port().to_string();
                refused(&run(c, &prof, &["connect", &port]), &["EACCES"]);
                assert!(other.accept().is_err(), "a connection arrived");
            },
        ),
        case(
            "net.tcp-no-grant",
            "connect over TCP with no port granted at all",
            |c| {
                let other = TcpListener::bind("127.0.0.1:0").unwrap();
                other.set_nonblocking(true).unwrap();
                let port = other.local_addr().unwrap().port().to_string();
                refused(&run(c, &ws(false), &["connect", &port]), &["EACCES"]);
                assert!(other.accept().is_err(), "a connection arrived");
            },
        ),
        case(
            "net.tcp-bind-ungranted",
            "listen on a TCP port the profile does not grant",
            |c| {
                let free = TcpListener::bind("127.0.0.1:0").unwrap();
                let port = free.local_addr().unwrap().port();
                drop(free);
                let mut prof = ws(false);
                prof.connect_tcp.push(port.wrapping_add(1).max(1));
                refused(&run(c, &prof, &["bind", &port.to_string()]), &["EACCES"]);
            },
        ),
        case(
            "net.abstract-unix-outside",
            "connect to a host process's abstract Unix socket",
            |c| {
                let name = token("escape-abstract");
                let fd = unsafe {
                    libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)
                };
                assert!(fd >= 0);
                let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
                addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
                for (i, b) in name.bytes().enumerate() {
                    addr.sun_path[i + 1] = b as libc::c_char;
                }
                let len =
                    (std::mem::size_of::<libc::sa_family_t>() + 1 + name.len()) as libc::socklen_t;
                assert_eq!(
                    unsafe { libc::bind(fd, (&addr as *const libc::sockaddr_un).cast(), len) },
                    0
                );
                assert_eq!(unsafe { libc::listen(fd, 4) }, 0);
                let r = run(c, &ws(false), &["connect-abstract", &name]);
                unsafe { libc::close(fd) };
                refused(&r, &["EPERM"]);
            },
        ),
        case(
            "net.unix-other-session-broker",
            "send a tool call to another session's broker socket",
            |c| {
                let other = Case::new();
                let (mut b, sock) = other_session(&other);
                let marker = other.workspace.join("ran");
                let r = run(
                    c,
                    &brokered(c),
                    &["shim-call", "--socket", &sock, "tp", "write", &p(&marker)],
                );
                reply_is(&r, 16, "not in this session's agent tree");
                assert!(!marker.exists(), "the other session ran the tool");
                drop(b.stdin.take());
                let _ = b.wait();
            },
        ),
    ]
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

/// (name, number) of every syscall on cordon's default deny-list.
#[cfg(target_arch = "x86_64")]
const DENY_LIST: &[(&str, i64)] = &[
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
    ("process_madvise", libc::SYS_process_madvise),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("setns", libc::SYS_setns),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("acct", libc::SYS_acct),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("reboot", libc::SYS_reboot),
    ("syslog", libc::SYS_syslog),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("quotactl", libc::SYS_quotactl),
    ("quotactl_fd", 443),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("uselib", libc::SYS_uselib),
    ("vhangup", libc::SYS_vhangup),
    ("iopl", libc::SYS_iopl),
    ("ioperm", libc::SYS_ioperm),
    ("nfsservctl", libc::SYS_nfsservctl),
];

#[cfg(target_arch = "x86_64")]
fn syscalls() -> Vec<Escape> {
    let mut v: Vec<Escape> = DENY_LIST
        .iter()
        .map(|&(name, nr)| {
            case(
                &format!("sys.{name}"),
                &format!("call {name} (default deny-list)"),
                move |c| {
                    run(c, &ws(false), &["nr", &nr.to_string()]).killed_for(&format!("`{name}`"));
                },
            )
        })
        .collect();
    // Syscalls denied by their arguments: (name, attempt, syscall, args, reported as).
    let by_args: &[(&str, &str, i64, &[u64], &str)] = &[
        (
            "sys.clone-newuser",
            "clone into a new user namespace",
            libc::SYS_clone,
            &[(libc::CLONE_NEWUSER | libc::SIGCHLD) as u64],
            "`clone`",
        ),
        (
            "sys.clone-newns",
            "clone into a new mount namespace",
            libc::SYS_clone,
            &[(libc::CLONE_NEWNS | libc::SIGCHLD) as u64],
            "`clone`",
        ),
        (
            "sys.clone-newnet",
            "clone into a new network namespace",
            libc::SYS_clone,
            &[(libc::CLONE_NEWNET | libc::SIGCHLD) as u64],
            "`clone`",
        ),
        (
            "sys.unshare-newuser",
            "unshare a user namespace",
            libc::SYS_unshare,
            &[libc::CLONE_NEWUSER as u64],
            "`unshare`",
        ),
        (
            "sys.unshare-newns",
            "unshare a mount namespace",
            libc::SYS_unshare,
            &[libc::CLONE_NEWNS as u64],
            "`unshare`",
        ),
        (
            "sys.unshare-newnet",
            "unshare a network namespace",
            libc::SYS_unshare,
            &[libc::CLONE_NEWNET as u64],
            "`unshare`",
        ),
        (
            "sys.unshare-newpid",
            "unshare a pid namespace",
            libc::SYS_unshare,
            &[libc::CLONE_NEWPID as u64],
            "`unshare`",
        ),
        (
            "sys.unshare-newtime",
            "unshare a time namespace",
            libc::SYS_unshare,
            &[0x80],
            "`unshare`",
        ),
        (
            "tty.tiocsti",
            "inject input into the terminal (ioctl TIOCSTI)",
            libc::SYS_ioctl,
            &[0, 0x5412],
            "`ioctl`",
        ),
        (
            "tty.tiocsti-high-bits",
            "TIOCSTI with junk in the high 32 bits",
            libc::SYS_ioctl,
            &[0, 0xdead_0000_0000_5412],
            "`ioctl`",
        ),
        (
            "tty.tioclinux",
            "console ioctl TIOCLINUX",
            libc::SYS_ioctl,
            &[0, 0x541c],
            "`ioctl`",
        ),
        (
            "sys.personality-no-aslr",
            "turn ASLR off (personality ADDR_NO_RANDOMIZE)",
            libc::SYS_personality,
            &[0x0040000],
            "`personality`",
        ),
        (
            "sys.personality-read-implies-exec",
            "personality READ_IMPLIES_EXEC",
            libc::SYS_personality,
            &[0x0400000],
            "`personality`",
        ),
        (
            "sys.abi-x32",
            "getpid through the x32 ABI",
            0x4000_0000 | libc::SYS_getpid,
            &[],
            "x32 syscall",
        ),
    ];
    for &(name, attempt, nr, args, reported) in by_args {
        let mut argv = vec!["nr".to_string(), nr.to_string()];
        argv.extend(args.iter().map(|a| format!("0x{a:x}")));
        v.push(case(name, attempt, move |c| {
            let a: Vec<&str> = argv.iter().map(String::as_str).collect();
            run(c, &ws(false), &a).killed_for(reported);
        }));
    }
    v.push(case(
        "sys.abi-i386",
        "getpid through int 0x80 (the i386 ABI)",
        |c| {
            run(c, &ws(false), &["syscall", "int80"]).killed_for("foreign ABI");
        },
    ));
    v
}

fn signals_and_privilege() -> Vec<Escape> {
    vec![
        case(
            "sig.kill-sandbox-init",
            "SIGTERM pid 1 (cordon's init)",
            |c| {
                refused(&run(c, &ws(false), &["signal", "1"]), &["EPERM"]);
            },
        ),
        case(
            "sig.kill-host-process",
            "SIGTERM a process outside the sandbox",
            |c| {
                let mut victim = std::process::Command::new("/usr/bin/sleep")
                    .arg("30")
                    .spawn()
                    .unwrap();
                let pid = victim.id().to_string();
                let r = run(c, &ws(false), &["signal", &pid]);
                let alive = victim.try_wait().unwrap().is_none();
                let _ = victim.kill();
                let _ = victim.wait();
                refused(&r, &["ESRCH", "EPERM"]);
                assert!(alive, "the host process was killed");
            },
        ),
        case(
            "cap.none-held",
            "hold any capability (even when cordon is root)",
            |c| {
                let r = run(c, &ws(false), &["caps"]);
                assert!(
                    r.stdout.contains("eff=0 prm=0 inh=0 bounding=0 ambient=0"),
                    "{r:#?}"
                );
            },
        ),
        case(
            "cap.capset-raise",
            "raise every capability with capset",
            |c| {
                refused(&run(c, &ws(false), &["capset-all"]), &["EPERM"]);
            },
        ),
        case(
            "cap.no-new-privs",
            "run without no_new_privs (setuid binaries would elevate)",
            |c| {
                let r = run(c, &ws(false), &["no-new-privs"]);
                assert!(r.stdout.contains("no_new_privs=1"), "{r:#?}");
            },
        ),
    ]
}

fn inherited() -> Vec<Escape> {
    vec![
        case(
            "inherit.env",
            "read cordon's environment (API keys of the caller)",
            |c| {
                let out = c
                    .command(&ws(false), &["env"])
                    .env("AWS_SECRET_ACCESS_KEY", SECRET_TEXT)
                    .output()
                    .unwrap();
                let r = Run::from(out);
                assert_eq!(r.code, Some(0), "{r:#?}");
                no_secret(&r);
                assert!(!r.stdout.contains("AWS_SECRET_ACCESS_KEY"), "{r:#?}");
            },
        ),
        case(
            "inherit.secret-env",
            "find a declared secret in the agent's environment",
            |c| {
                let r = run(c, &brokered(c), &["env"]);
                assert_eq!(r.code, Some(0), "{r:#?}");
                no_secret(&r);
            },
        ),
        case(
            "inherit.fds",
            "use a descriptor cordon's caller left open",
            |c| {
                use std::os::fd::AsRawFd;
                let f = c.outside.join("open.txt");
                std::fs::write(&f, SECRET_TEXT).unwrap();
                let file = std::fs::File::open(&f).unwrap();
                let fd = unsafe { libc::dup(file.as_raw_fd()) }; // dup clears close-on-exec
                let out = c.command(&ws(false), &["fds"]).output().unwrap();
                unsafe { libc::close(fd) };
                let r = Run::from(out);
                let fds: Vec<i32> = r.stdout.lines().filter_map(|l| l.parse().ok()).collect();
                assert!(
                    !fds.is_empty() && fds.iter().all(|&f| f <= 2),
                    "{fds:?}: {r:#?}"
                );
            },
        ),
    ]
}

fn survival() -> Vec<Escape> {
    vec![
        case(
            "proc.double-fork-setsid",
            "leave a double-forked setsid daemon behind after exiting",
            |c| {
                let tok = token("escape-daemon");
                let r = run(c, &ws(false), &["daemon", &tok]);
                assert!(r.stdout.contains("daemonized"), "{r:#?}");
                assert_eq!(r.code, Some(0), "{r:#?}");
                assert!(
                    processes_with(&tok).is_empty(),
                    "daemon survived: {:?}",
                    processes_with(&tok)
                );
            },
        ),
        case(
            "proc.daemon-past-divergence-kill",
            "keep a daemon alive through a divergence kill",
            |c| {
                let tok = token("escape-daemon-kill");
                let r = run(c, &ws(false), &["daemon", &tok, "ptrace"]);
                assert!(r.stdout.contains("daemonized"), "{r:#?}");
                r.killed_for("`ptrace`");
                assert!(
                    processes_with(&tok).is_empty(),
                    "daemon survived: {:?}",
                    processes_with(&tok)
                );
            },
        ),
        case(
            "proc.ignore-sigterm",
            "ignore SIGTERM when cordon stops the session",
            |c| {
                let mut prof = ws(false);
                prof.stop_grace = "300ms";
                let tok = token("escape-ignore-term");
                let (mut child, _out) =
                    spawn_until_line(c.command(&prof, &["ignore-term", &tok]), "ready");
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                let status = child.wait().unwrap();
                assert_eq!(status.code(), Some(128 + libc::SIGKILL), "{status:?}");
                assert!(
                    wait_until(Duration::from_secs(5), || processes_with(&tok).is_empty()),
                    "survived"
                );
            },
        ),
        case(
            "proc.daemon-ignoring-sigterm-on-stop",
            "keep a SIGTERM-ignoring daemon alive when cordon is stopped",
            |c| {
                let tok = token("escape-daemon-stop");
                let mut prof = ws(false);
                prof.stop_grace = "300ms";
                let (mut child, _out) =
                    spawn_until_line(c.command(&prof, &["daemon", &tok, "wait"]), "daemonized");
                assert!(wait_until(Duration::from_secs(5), || !processes_with(&tok).is_empty()));
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                let _ = child.wait();
                assert!(
                    wait_until(Duration::from_secs(5), || processes_with(&tok).is_empty()),
                    "survived"
                );
            },
        ),
        case(
            "proc.kill-9-of-cordon",
            "outlive cordon when it is killed with SIGKILL",
            |c| {
                let tok = token("escape-kill9");
                let (mut child, _out) = spawn_until_line(
                    c.command(&ws(false), &["daemon", &tok, "wait"]),
                    "daemonized",
                );
                assert!(wait_until(Duration::from_secs(5), || !processes_with(&tok).is_empty()));
                unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
                let _ = child.wait();
                assert!(
                    wait_until(Duration::from_secs(5), || processes_with(&tok).is_empty()),
                    "survived"
                );
            },
        ),
    ]
}

fn broker() -> Vec<Escape> {
    vec![
        case(
            "broker.unknown-frame-kind",
            "send a frame of an unknown kind",
            |c| {
                let r = run(c, &brokered(c), &["send-raw", "0100000063"]);
                reply_is(&r, 19, "unknown frame kind 99");
            },
        ),
        case("broker.oversized-frame", "announce a 4 GiB frame", |c| {
            let r = run(c, &brokered(c), &["send-raw", "ffffffff01"]);
            reply_is(&r, 19, "outside 1..=");
        }),
        case(
            "broker.exec-without-descriptors",
            "send an exec request without its descriptors",
            |c| {
                let r = run(c, &brokered(c), &["send-raw", "0700000001010003000000"]);
                reply_is(&r, 19, "");
            },
        ),
        case(
            "broker.half-frame-stall",
            "send half a frame and hold the connection",
            |c| {
                let r = run(c, &brokered(c), &["send-raw", "0a00", "6"]);
                let line = reply(&r);
                assert!(line.starts_with("reply 19") || line == "closed", "{r:#?}");
            },
        ),
        case(
            "broker.wrong-version",
            "speak a protocol version the supervisor does not",
            |c| {
                let r = run(
                    c,
                    &brokered(c),
                    &["shim-call", "--version", "99", "tp", "exit", "0"],
                );
                reply_is(&r, 19, "protocol version 99 is not supported");
            },
        ),
        case(
            "broker.undeclared-tool",
            "ask the broker for a tool the profile does not declare",
            |c| {
                run(c, &brokered(c), &["shim-call", "evil"]).killed_for("undeclared tool `evil`");
            },
        ),
        case(
            "broker.path-as-tool-name",
            "name a host binary's path as the tool",
            |c| {
                run(c, &brokered(c), &["shim-call", "/usr/bin/id"]).killed_for("undeclared tool");
            },
        ),
        case(
            "broker.denied-argv",
            "call a declared tool with a denied argv",
            |c| {
                let r = run(c, &brokered(c), &["shim-call", "cat", "/etc/shadow"]);
                reply_is(&r, 16, "deny[0]");
            },
        ),
        case(
            "broker.cwd-outside",
            "run a declared tool from outside its cwd trees",
            |c| {
                let r = run(
                    c,
                    &brokered(c),
                    &["shim-call", "--cwd", "/", "cat", "/etc/hostname"],
                );
                reply_is(&r, 16, "working directory `/` is outside");
            },
        ),
        case(
            "broker.tool-reads-denied-path",
            "have a tool read a file denied to the agent",
            |c| {
                let r = run(
                    c,
                    &brokered(c),
                    &["shim-call", "tp", "read", &p(&c.workspace.join(".env"))],
                );
                reply_is(&r, 17, "1");
                no_secret(&r);
            },
        ),
        case(
            "broker.secret-not-exposed",
            "fetch a secret's value that is not exposed",
            |c| {
                let r = run(c, &brokered(c), &["shim-secret", "FROM_FILE"]);
                reply_is(&r, 16, "not exposed");
                no_secret(&r);
            },
        ),
        case(
            "broker.undeclared-secret",
            "fetch a secret the profile does not declare",
            |c| {
                let r = run(c, &brokered(c), &["shim-secret", "AWS_SECRET_ACCESS_KEY"]);
                reply_is(&r, 16, "not a declared secret");
            },
        ),
        case(
            "broker.outside-peer",
            "use a session's broker from a process outside the sandbox",
            |c| {
                let (mut b, sock) = other_session(c);
                let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
                let mut reply = Vec::new();
                s.read_to_end(&mut reply).unwrap();
                drop(b.stdin.take());
                let _ = b.wait();
                assert!(
                    String::from_utf8_lossy(&reply).contains("not in this session"),
                    "{reply:?}"
                );
            },
        ),
    ]
}

fn battery() -> Vec<Escape> {
    let mut all = filesystem();
    all.extend(exec());
    all.extend(network());
    #[cfg(target_arch = "x86_64")]
    all.extend(syscalls());
    all.extend(signals_and_privilege());
    all.extend(inherited());
    all.extend(survival());
    all.extend(broker());
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
