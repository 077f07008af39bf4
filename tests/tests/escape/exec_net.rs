//! Execution outside the grants, and network escapes (TCP, abstract and
//! pathname Unix sockets).

use super::*;

pub(super) fn exec() -> Vec<Escape> {
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
                // The real path is the shim in the agent's mount namespace:
                // the call reaches the broker and its deny rule.
                let mut prof = brokered(c);
                prof.read.push("/usr/bin".into());
                let r = run(c, &prof, &["exec", "/usr/bin/cat", "/etc/shadow"]);
                assert_eq!(r.code, Some(126), "{r:#?}");
                assert!(
                    r.stderr.contains("cordon: denied: denied by rule"),
                    "{r:#?}"
                );
            },
        ),
    ]
}

pub(super) fn network() -> Vec<Escape> {
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
            "net.control-socket",
            "ask the session's own operator control socket (approvals) for anything",
            |c| {
                let mut prof = brokered(c);
                prof.extra.push_str("\n[tools.ls]\npath = \"/usr/bin/ls\"\napprove = [[\"-la\"]]\n\n[approval]\nprompt = false\n");
                let ctl = c.dir.path().join("ctl.sock");
                let mut cmd = cordon_cmd();
                cmd.arg("run")
                    .arg("--profile")
                    .arg(c.profile_path(&prof))
                    .arg("--workspace")
                    .arg(&c.workspace)
                    .arg("--control-socket")
                    .arg(&ctl)
                    .arg("--")
                    .arg(probe())
                    .args(["unix-send", &p(&ctl), r#"{"op":"list"}"#])
                    .env("CORDON_AUDIT", c.audit_path())
                    .env("CORDON_ESCAPE_SECRET", SECRET_TEXT)
                    .stdin(Stdio::null());
                let r = Run::from(cmd.output().unwrap());
                assert_eq!(r.code, Some(86), "{r:#?}");
                assert!(r.stderr.contains("control socket"), "{r:#?}");
                assert!(
                    !r.stdout.contains("\"pending\""),
                    "the agent heard an answer: {r:#?}"
                );
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
                // Refused at connect (a Unix socket outside [network] unix),
                // before the other broker could even see the peer.
                refused(&r, &["EACCES"]);
                assert!(
                    r.stderr.contains("is not in [network] unix"),
                    "no refusal line: {r:#?}"
                );
                assert!(!marker.exists(), "the other session ran the tool");
                drop(b.stdin.take());
                let _ = b.wait();
            },
        ),
    ]
}
