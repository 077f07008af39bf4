//! Going around the broker (issue 14): reaching a declared tool's bytes or
//! rights another way (the loader, a link or copy, a writable exec grant,
//! a login shell's PATH, a tool's own sandbox), the network around the
//! port rules (UDP, pathname Unix sockets, a racing address, the proxy's
//! Host header), and the audit trail and refusal count around their limits.

use super::*;
use std::os::unix::net::UnixListener;

/// `tp` (allow everything) and `cat` (no *shadow* argument) are declared.
fn with_tools(c: &Case) -> Profile {
    let mut p = brokered(c);
    p.exec.push("/usr/bin/dash".into());
    p.extra.push_str("\n[divergence]\nmax_denials = 1000\n");
    p
}

/// The peer credentials (pid, uid) of an accepted Unix connection.
fn peer_of(s: &std::os::unix::net::UnixStream) -> (i32, u32) {
    use std::os::fd::AsRawFd;
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    let ret = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    assert_eq!(ret, 0, "SO_PEERCRED");
    (cred.pid, cred.uid)
}

/// SHA-256 (hex) of `bytes`, by coreutils' sha256sum.
fn sha256_hex(bytes: &[u8]) -> String {
    let mut child = std::process::Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn audit_records(c: &Case) -> Vec<serde_json::Value> {
    std::fs::read_to_string(c.audit_path())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Accepts on `l` (non-blocking) until `stop`, counting connections.
fn count_accepts(
    l: TcpListener,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    use std::sync::atomic::Ordering::Relaxed;
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let mut n = 0;
        loop {
            match l.accept() {
                Ok(_) => n += 1,
                Err(_) if stop.load(Relaxed) => return n,
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    })
}

pub(super) fn cases() -> Vec<Escape> {
    let mut all = tools();
    all.extend(network());
    all.extend(records());
    all
}

fn tools() -> Vec<Escape> {
    vec![
        case(
            "bypass.loader-runs-tool",
            "run a declared tool's binary through the dynamic loader (ld.so FILE), with exec on the library directories",
            |c| {
                let marker = c.workspace.join("ran");
                let prof = with_tools(c);
                let tp = p(&c.tool_probe());
                run(
                    c,
                    &prof,
                    &["exec", "/lib64/ld-linux-x86-64.so.2", &tp, "write", &p(&marker)],
                )
                .killed_for("dynamic loader");
                assert!(!marker.exists(), "the tool ran without the broker");
            },
        ),
        case(
            "bypass.exec-grant-on-writable",
            "grant exec on a tree the agent writes (where a copy or a `#!ld.so` script could be planted)",
            |c| {
                let marker = c.workspace.join("ran");
                let mut prof = ws(true);
                prof.exec.push("{workspace}".into());
                let r = run(c, &prof, &["write", &p(&marker)]);
                assert_ne!(r.code, Some(0), "{r:#?}");
                assert!(r.stderr.contains("overlaps the write grant"), "{r:#?}");
                assert!(!marker.exists(), "something ran");
                let check = Run::from(
                    cordon_cmd()
                        .arg("check")
                        .arg(c.profile_path(&prof))
                        .output()
                        .unwrap(),
                );
                assert_ne!(check.code, Some(0), "check passed it: {check:#?}");
                assert!(
                    format!("{}{}", check.stdout, check.stderr).contains("overlaps the write grant"),
                    "{check:#?}"
                );
            },
        ),
        case(
            "bypass.hard-link-of-tool",
            "run a hard link of a declared tool found under a read grant",
            |c| {
                let dir = c.dir.path().join("links");
                std::fs::create_dir(&dir).unwrap();
                std::fs::hard_link(c.tool_probe(), dir.join("innocent")).unwrap();
                let mut prof = with_tools(c);
                prof.read.push(p(&dir));
                let marker = c.workspace.join("ran");
                let r = run(c, &prof, &["exec", &p(&dir.join("innocent")), "write", &p(&marker)]);
                assert_ne!(r.code, Some(0), "{r:#?}");
                assert!(
                    r.stderr.contains("is a hard link of declared tool `tp`"),
                    "{r:#?}"
                );
                assert!(!marker.exists(), "the link ran");
            },
        ),
        case(
            "bypass.copy-of-tool",
            "load a byte-for-byte copy of a declared tool found under a read grant",
            |c| {
                let dir = c.dir.path().join("copies");
                std::fs::create_dir(&dir).unwrap();
                std::fs::copy(c.tool_probe(), dir.join("lookalike")).unwrap();
                let mut prof = with_tools(c);
                prof.read.push(p(&dir));
                let r = run(c, &prof, &["exit", "0"]);
                assert_ne!(r.code, Some(0), "{r:#?}");
                assert!(r.stderr.contains("is a copy of declared tool `tp`"), "{r:#?}");
                let check = Run::from(
                    cordon_cmd()
                        .arg("check")
                        .arg(c.profile_path(&prof))
                        .output()
                        .unwrap(),
                );
                assert_ne!(check.code, Some(0), "check passed it: {check:#?}");
            },
        ),
        case(
            "bypass.read-tool-bytes",
            "read a declared tool's binary at its real path (to load it without execve)",
            |c| {
                let mut prof = with_tools(c);
                prof.read.push("/usr/bin/cat".into());
                let r = run(c, &prof, &["read", "/usr/bin/cat"]);
                assert_eq!(r.code, Some(0), "{r:#?}");
                let real = String::from_utf8_lossy(&std::fs::read("/usr/bin/cat").unwrap())
                    .into_owned();
                assert!(real.contains("Usage: %s [OPTION]"), "coreutils cat");
                assert!(
                    !r.stderr.contains("Usage: %s [OPTION]"),
                    "the agent read the real cat"
                );
                assert!(r.stderr.contains("cordon"), "it read the shim instead");
            },
        ),
        case(
            "bypass.login-shell-path",
            "reset PATH as a login shell does and run a declared tool by name",
            |c| {
                let r = c.shell(
                    &with_tools(c),
                    "PATH=/usr/local/bin:/usr/bin:/bin; export PATH; cat /etc/shadow; echo rc=$?",
                );
                assert!(r.stdout.contains("rc=126"), "{r:#?}");
                assert!(!r.stdout.contains("root:"), "shadow was read: {r:#?}");
                assert!(r.stderr.contains("denied"), "{r:#?}");
            },
        ),
        case(
            "bypass.tool-reads-beyond-agent",
            "have a brokered tool read a file the agent's profile does not grant",
            |c| {
                let secret = c.outside.join("notes");
                std::fs::write(&secret, SECRET_TEXT).unwrap();
                let tp = p(&c.tool_probe());
                let r = run(c, &with_tools(c), &["exec", &tp, "read", &p(&secret)]);
                no_secret(&r);
                assert!(
                    r.stdout.contains("EACCES") || r.stderr.contains("EACCES"),
                    "{r:#?}"
                );
            },
        ),
        case(
            "bypass.tool-runs-other-tool",
            "from inside an allowed tool's sandbox, run another declared tool with arguments its rules deny",
            |c| {
                let tp = p(&c.tool_probe());
                let r = run(
                    c,
                    &with_tools(c),
                    &["exec", &tp, "exec", "/usr/bin/cat", "/etc/shadow"],
                );
                assert!(!r.stdout.contains("root:"), "shadow was read: {r:#?}");
                let recs = audit_records(c);
                let nested = recs
                    .iter()
                    .find(|r| r["kind"] == "call" && r["tool"] == "cat")
                    .unwrap_or_else(|| panic!("the nested call reached no broker: {recs:#?}"));
                assert_eq!(nested["decision"], "deny", "{nested:#}");
                assert!(nested["via_call"].is_u64(), "{nested:#}");
            },
        ),
        case(
            "bypass.shim-under-minimal-profile",
            "call a tool from a profile that grants no library directory (the shim must still start)",
            |c| {
                let mut prof = with_tools(c);
                prof.exec = vec![p(&probe())];
                let marker = c.workspace.join("made");
                let tp = p(&c.tool_probe());
                let r = run(c, &prof, &["exec", &tp, "write", &p(&marker)]);
                assert_eq!(r.code, Some(0), "{r:#?}");
                assert!(marker.exists(), "the brokered call did not run: {r:#?}");
                let recs = audit_records(c);
                assert!(
                    recs.iter().any(|r| r["kind"] == "call" && r["tool"] == "tp" && r["decision"] == "allow"),
                    "not through the broker: {recs:#?}"
                );
            },
        ),
    ]
}

fn network() -> Vec<Escape> {
    vec![
        case(
            "bypass.udp-under-port-rules",
            "send UDP (IPv4 and IPv6) anywhere but the resolver's port 53, under a TCP grant",
            |c| {
                let mut prof = ws(false);
                prof.connect_tcp.push(443);
                let v4 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let v6 = std::net::UdpSocket::bind("[::1]:0").unwrap();
                v4.set_nonblocking(true).unwrap();
                v6.set_nonblocking(true).unwrap();
                let p4 = v4.local_addr().unwrap().port().to_string();
                let p6 = v6.local_addr().unwrap().port().to_string();
                refused(&run(c, &prof, &["udp-send", "127.0.0.1", &p4]), &["EACCES"]);
                refused(&run(c, &prof, &["udp-send", "::1", &p6]), &["EACCES"]);
                let mut buf = [0u8; 64];
                assert!(v4.recv_from(&mut buf).is_err(), "a datagram arrived (v4)");
                assert!(v6.recv_from(&mut buf).is_err(), "a datagram arrived (v6)");
                // The resolver the host names: port 53 only.
                let resolver = std::fs::read_to_string("/etc/resolv.conf")
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| l.strip_prefix("nameserver").map(|a| a.trim().to_string()));
                if let Some(ns) = resolver {
                    refused(&run(c, &prof, &["udp-send", &ns, "54"]), &["EACCES"]);
                    let r = run(c, &prof, &["udp-send", &ns, "53"]);
                    assert!(
                        !r.stdout.contains("EACCES") && !r.stderr.contains("denied"),
                        "name resolution was refused: {r:#?}"
                    );
                }
            },
        ),
        case(
            "bypass.unix-host-socket",
            "connect to a world-connectable pathname Unix socket of the host",
            |c| {
                use std::os::unix::fs::PermissionsExt;
                let path = c.outside.join("host.sock");
                let l = UnixListener::bind(&path).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
                l.set_nonblocking(true).unwrap();
                let mut prof = ws(false);
                prof.read.push(p(&c.outside));
                let r = run(c, &prof, &["unix-send", &p(&path), "hello"]);
                refused(&r, &["EACCES"]);
                assert!(r.stderr.contains("is not in [network] unix"), "{r:#?}");
                assert!(l.accept().is_err(), "a connection arrived");
            },
        ),
        case(
            "bypass.unix-peer-identity",
            "connect to an allowlisted Unix socket and be seen as the supervisor (its pid, namespace, capabilities)",
            |c| {
                let path = c.outside.join("granted.sock");
                let l = UnixListener::bind(&path).unwrap();
                let mut prof = ws(false);
                prof.unix.push(p(&path));
                let child = c
                    .command(&prof, &["unix-send", &p(&path), "hello"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let supervisor = child.id() as i32;
                let (mut conn, _) = l.accept().unwrap();
                let (pid, uid) = peer_of(&conn);
                assert_ne!(pid, supervisor, "the peer is the supervisor");
                assert_ne!(pid, std::process::id() as i32);
                assert_eq!(uid, unsafe { libc::geteuid() });
                let mut line = [0u8; 6];
                conn.read_exact(&mut line).unwrap();
                conn.write_all(b"pong").unwrap();
                drop(conn);
                let r = Run::from(child.wait_with_output().unwrap());
                assert!(r.stdout.contains("reply pong"), "{r:#?}");
            },
        ),
        case(
            "bypass.connect-address-race",
            "flip a connect's address from a granted port to another while the supervisor checks it",
            |c| {
                use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
                let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
                let denied = TcpListener::bind("127.0.0.1:0").unwrap();
                let (pa, pd) = (
                    allowed.local_addr().unwrap().port(),
                    denied.local_addr().unwrap().port(),
                );
                let stop = std::sync::Arc::new(AtomicBool::new(false));
                let a = count_accepts(allowed, std::sync::Arc::clone(&stop));
                let d = count_accepts(denied, std::sync::Arc::clone(&stop));
                let mut prof = ws(false);
                prof.connect_tcp.push(pa);
                prof.extra.push_str("\n[divergence]\nmax_denials = 100000\n");
                let r = run(
                    c,
                    &prof,
                    &["connect-race", &pa.to_string(), &pd.to_string(), "400"],
                );
                std::thread::sleep(Duration::from_millis(200));
                stop.store(true, Relaxed);
                let (ok, bad) = (a.join().unwrap(), d.join().unwrap());
                assert_eq!(r.code, Some(0), "{r:#?}");
                assert_eq!(bad, 0, "{bad} connection(s) reached the ungranted port: {r:#?}");
                assert!(ok > 0, "no connect went through at all: {r:#?}");
                assert!(r.stderr.contains("is not granted"), "the race was never on: {r:#?}");
            },
        ),
        case(
            "bypass.unix-connect-race",
            "flip a connect's Unix socket path from an allowlisted socket to another while the supervisor checks it",
            |c| {
                use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
                let (pa, pd) = (c.outside.join("a.sock"), c.outside.join("d.sock"));
                let stop = std::sync::Arc::new(AtomicBool::new(false));
                let accepts = |path: &std::path::Path| {
                    use std::os::unix::fs::PermissionsExt;
                    let l = UnixListener::bind(path).unwrap();
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
                        .unwrap();
                    l.set_nonblocking(true).unwrap();
                    let stop = std::sync::Arc::clone(&stop);
                    std::thread::spawn(move || {
                        let mut n = 0;
                        loop {
                            match l.accept() {
                                Ok(_) => n += 1,
                                Err(_) if stop.load(Relaxed) => return n,
                                Err(_) => std::thread::sleep(Duration::from_millis(1)),
                            }
                        }
                    })
                };
                let (a, d) = (accepts(&pa), accepts(&pd));
                let mut prof = ws(false);
                prof.unix.push(p(&pa));
                prof.extra.push_str("\n[divergence]\nmax_denials = 100000\n");
                let r = run(c, &prof, &["unix-connect-race", &p(&pa), &p(&pd), "300"]);
                std::thread::sleep(Duration::from_millis(200));
                stop.store(true, Relaxed);
                let (ok, bad) = (a.join().unwrap(), d.join().unwrap());
                assert_eq!(r.code, Some(0), "{r:#?}");
                assert_eq!(bad, 0, "{bad} connection(s) reached the socket not allowlisted: {r:#?}");
                assert!(ok > 0, "no connect went through at all: {r:#?}");
                // Both addresses were seen: the race was on.
                assert!(r.stderr.contains("is not in [network] unix"), "{r:#?}");
            },
        ),
        case(
            "bypass.proxy-host-header",
            "send the proxy an allowed request target with another host in its Host header",
            |c| {
                let up = TcpListener::bind("127.0.0.1:0").unwrap();
                let port = up.local_addr().unwrap().port();
                let server = std::thread::spawn(move || {
                    let (mut s, _) = up.accept().unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                        head.push(b[0]);
                    }
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                    String::from_utf8_lossy(&head).into_owned()
                });
                let mut prof = ws(false);
                prof.allow_hosts.push(format!("localhost:{port} via 127.0.0.1"));
                let raw = format!(
                    "GET http://localhost:{port}/x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
                );
                let r = run(c, &prof, &["proxy-raw", &raw]);
                assert!(r.stdout.contains("200"), "{r:#?}");
                let head = server.join().unwrap();
                assert!(
                    head.to_ascii_lowercase().contains(&format!("host: localhost:{port}\r\n")),
                    "{head}"
                );
                assert!(!head.contains("evil.example"), "the agent's Host went upstream: {head}");
            },
        ),
    ]
}

fn records() -> Vec<Escape> {
    vec![
        case(
            "bypass.long-argv-digest",
            "make a call whose argv is too long to record whole",
            |c| {
                let args: Vec<String> = (0..4)
                    .map(|i| format!("{i}{}", "a".repeat(100_000)))
                    .collect();
                let mut argv: Vec<&str> = vec!["shim-call", "tp", "exit", "0"];
                argv.extend(args.iter().map(String::as_str));
                let r = run(c, &with_tools(c), &argv);
                assert!(reply(&r).starts_with("reply "), "{r:#?}");
                let mut exact = Vec::new();
                for a in ["exit", "0"]
                    .iter()
                    .copied()
                    .chain(args.iter().map(String::as_str))
                {
                    exact.extend_from_slice(a.as_bytes());
                    exact.push(0);
                }
                let recs = audit_records(c);
                let call = recs
                    .iter()
                    .find(|r| r["kind"] == "call" && r["tool"] == "tp")
                    .unwrap_or_else(|| panic!("no call record: {recs:#?}"));
                assert_eq!(call["argc"], 6, "{call:#}");
                assert_eq!(call["argv_len"], 5 + 4 * 100_001, "{call:#}");
                assert_eq!(call["argv_sha256"], sha256_hex(&exact), "{call:#}");
            },
        ),
        case(
            "bypass.sub-agent-refusals",
            "spread refusals between a sub-agent and its parent to stay under max_denials",
            |c| {
                let mut prof = ws(false);
                prof.exec.push("/usr/bin/dash".into());
                prof.extra = format!(
                    "[tools.tp]\npath = \"{}\"\nallow = [[\"read\", \"**\"]]\n\n[divergence]\nmax_denials = 3\n",
                    c.tool_probe().display()
                );
                let sub = prof.toml().replace("name = \"test\"", "name = \"sub\"");
                std::fs::write(c.workspace.join("sub.toml"), sub).unwrap();
                let r = c.shell(
                    &prof,
                    "cordon-shim spawn --profile sub.toml -- /usr/bin/dash -c 'tp write x; tp write x; echo sub-done'; \
                     tp write x; tp write x; echo survived",
                );
                assert!(r.stdout.contains("sub-done"), "{r:#?}");
                assert_eq!(r.code, Some(86), "four refusals in one tree kill: {r:#?}");
                assert!(!r.stdout.contains("survived"), "{r:#?}");
                assert!(r.stderr.contains("over max_denials = 3"), "{r:#?}");
            },
        ),
    ]
}
