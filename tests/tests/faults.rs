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
    // The next cordon to start sweeps the dead session's directory away. (A
    // cordon started by another test of this binary, running in parallel,
    // may have swept it already: either way it is gone after this start.)
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

// ---------------------------------------------------------------------------
// The audit log fails: cordon fails closed. No brokered call runs without
// its record, the agent is told why (the shim's `cordon: denied:` line),
// and a session whose log cannot be opened or written never starts.

/// A session that stops at gates: the script prints `gateN` and waits for
/// a line on stdin, so the test can break the audit log in between.
struct Gated {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    out: std::io::BufReader<std::process::ChildStdout>,
    seen: String,
}

impl Gated {
    fn start(c: &Case, p: &Profile, audit: &std::path::Path, script: &str) -> Gated {
        let mut cmd = c.cordon_run(p);
        cmd.env("CORDON_AUDIT", audit)
            .args(["/usr/bin/dash", "-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        Gated {
            stdin: child.stdin.take(),
            out: std::io::BufReader::new(child.stdout.take().unwrap()),
            child,
            seen: String::new(),
        }
    }

    /// Reads the agent's output up to the line `gate`.
    fn reach(&mut self, gate: &str) {
        loop {
            let mut line = String::new();
            let n = std::io::BufRead::read_line(&mut self.out, &mut line).unwrap();
            if n == 0 {
                let mut err = String::new();
                let _ =
                    std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut err);
                let status = self.child.wait().unwrap();
                panic!(
                    "the agent ended ({status}) before `{gate}`: {}\nstderr: {err}",
                    self.seen
                );
            }
            self.seen.push_str(&line);
            if line.trim_end() == gate {
                return;
            }
        }
    }

    fn release(&mut self) {
        use std::io::Write;
        self.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    }

    /// Exit code, all stdout, all stderr.
    fn finish(mut self) -> Run {
        use std::io::Read;
        drop(self.stdin.take());
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).unwrap();
        self.seen.push_str(&rest);
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = self.child.wait().unwrap();
        Run {
            code: status.code(),
            stdout: self.seen,
            stderr: err,
        }
    }
}

/// dash for the agent, the probe as brokered tool `tp` (it writes marker
/// files into the workspace, which the tool's sandbox may write).
fn audit_profile(c: &Case) -> Profile {
    let mut p = Profile::base();
    p.exec.push("/usr/bin/dash".into());
    p.read.push("{workspace}".into());
    p.extra = format!(
        "[tools.tp]\npath = \"{}\"\nallow = [[\"**\"]]\n",
        c.tool_probe().display()
    );
    p
}

fn verify(log: &std::path::Path) -> std::process::Output {
    cordon_cmd()
        .args(["audit", "verify"])
        .arg(log)
        .output()
        .unwrap()
}

/// The shim's refusal: one `cordon: denied:` line naming the audit log and
/// the kernel's reason.
fn assert_refused_for_audit(r: &Run, errno_text: &[&str]) {
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with("cordon: denied: the audit log cannot be written"))
        .unwrap_or_else(|| panic!("no audit refusal on stderr: {r:#?}"));
    assert!(
        errno_text.iter().any(|t| line.contains(t)),
        "the refusal does not say why ({errno_text:?}): {line}"
    );
}

#[test]
fn an_audit_log_that_cannot_be_opened_stops_the_session_before_it_starts() {
    let c = Case::new();
    let mut p = Profile::base();
    p.write.push("{workspace}".into());
    let marker = c.workspace.join("ran");
    let not_a_dir = c.dir.path().join("a-file");
    std::fs::write(&not_a_dir, "").unwrap();
    let mut cases = vec![
        (not_a_dir.join("audit.jsonl"), "a-file is not a directory"),
        ("/dev/full".into(), "not a regular file"),
    ];
    if !is_root() {
        // Root passes permission bits; a read-only directory stops only
        // others.
        let ro = c.dir.path().join("read-only");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o500)).unwrap();
        cases.push((ro.join("audit.jsonl"), "Permission denied"));
    }
    for (log, why) in cases {
        let mut cmd = c.command(&p, &["write", &path_str(&marker)]);
        let r = Run::from(cmd.env("CORDON_AUDIT", &log).output().unwrap());
        assert_eq!(r.code, Some(125), "{log:?}: {r:#?}");
        let line = r
            .stderr
            .lines()
            .find(|l| l.starts_with("cordon: cannot open the audit log"))
            .unwrap_or_else(|| panic!("no precise message for {log:?}: {r:#?}"));
        assert!(
            line.contains(&path_str(&log)) && line.contains(why),
            "{line}"
        );
        assert!(!marker.exists(), "the agent ran without an audit log");
    }
}

#[test]
fn an_audit_log_that_stops_growing_mid_session_refuses_every_call() {
    // RLIMIT_FSIZE set on the running cordon at the log's current size:
    // every further append fails (EFBIG), as on a full disk. Works for any
    // user (prlimit on one's own process).
    let c = Case::new();
    let log = c.audit_path();
    let script = "echo gate1; read x; tp write m1; echo rc=$?; tp write m2; echo rc2=$?; echo agent-still-running";
    let mut s = Gated::start(&c, &audit_profile(&c), &log, script);
    s.reach("gate1");
    let size = std::fs::metadata(&log).unwrap().len();
    let lim = libc::rlimit64 {
        rlim_cur: size,
        rlim_max: size,
    };
    let pid = s.child.id() as i32;
    assert_eq!(
        unsafe { libc::prlimit64(pid, libc::RLIMIT_FSIZE, &lim, std::ptr::null_mut()) },
        0,
        "prlimit: {}",
        std::io::Error::last_os_error()
    );
    s.release();
    let r = s.finish();
    // cordon survived (no SIGXFSZ death), the agent ran on and was told.
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(
        r.stdout.contains("rc=126") && r.stdout.contains("rc2=126"),
        "{r:#?}"
    );
    assert!(r.stdout.contains("agent-still-running"), "{r:#?}");
    assert_refused_for_audit(&r, &["File too large"]);
    assert!(
        !c.workspace.join("m1").exists() && !c.workspace.join("m2").exists(),
        "a tool ran unrecorded"
    );
    assert!(
        r.stderr
            .contains("audit record(s) of this session could not be written"),
        "{r:#?}"
    );
    // Nothing was half-written: the log is the session start, intact.
    assert_eq!(std::fs::metadata(&log).unwrap().len(), size);
    let v = verify(&log);
    assert_eq!(v.status.code(), Some(0), "{v:?}");
}

/// True as root. Otherwise the test skips, which is fine only in the
/// unprivileged pass of `scripts/test-all.sh` (CORDON_TEST_BIN_DIR set):
/// in CI the same test has run as root just before.
fn root_pass(what: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        !in_ci() || std::env::var_os("CORDON_TEST_BIN_DIR").is_some(),
        "{what} needs root, and CI must run this test as root"
    );
    eprintln!("skipped: {what} needs root (it runs in the root pass)");
    false
}

/// A small tmpfs mounted (as root) for one test, unmounted on drop.
struct TinyFs(std::path::PathBuf);

impl TinyFs {
    /// `None` when not root (the test then skips; CI runs as root).
    fn mount(c: &Case, size: &str) -> Option<TinyFs> {
        if !root_pass("mounting a tmpfs") {
            return None;
        }
        let dir = c.dir.path().join("tinyfs");
        std::fs::create_dir(&dir).unwrap();
        let target = std::ffi::CString::new(path_str(&dir)).unwrap();
        let opts = std::ffi::CString::new(format!("size={size},mode=0700")).unwrap();
        let ret = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                opts.as_ptr().cast(),
            )
        };
        assert_eq!(ret, 0, "mount tmpfs: {}", std::io::Error::last_os_error());
        Some(TinyFs(dir))
    }

    /// Writes a filler file until the filesystem refuses another byte.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = [b'f'; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        // Then byte by byte: no room is left even for a short line.
        while f.write(b"f").is_ok_and(|n| n == 1) {}
        path
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let target = std::ffi::CString::new(path_str(&self.0)).unwrap();
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn a_full_audit_disk_at_start_stops_the_session_before_the_agent_runs() {
    let c = Case::new();
    let Some(fs) = TinyFs::mount(&c, "64k") else {
        return;
    };
    fs.fill();
    let log = fs.0.join("audit.jsonl");
    let mut p = Profile::base();
    p.write.push("{workspace}".into());
    let marker = c.workspace.join("ran");
    let mut cmd = c.command(&p, &["write", &path_str(&marker)]);
    let r = Run::from(cmd.env("CORDON_AUDIT", &log).output().unwrap());
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert!(
        r.stderr.contains("cordon: cannot write the audit log")
            && r.stderr.contains("No space left on device"),
        "{r:#?}"
    );
    assert!(!marker.exists(), "the agent ran without its session record");
}

#[test]
fn a_full_audit_disk_mid_session_refuses_calls_and_every_tool_that_ran_was_recorded() {
    let c = Case::new();
    let Some(fs) = TinyFs::mount(&c, "64k") else {
        return;
    };
    let log = fs.0.join("audit.jsonl");
    // Calls until one is refused: the log's last page still has room for a
    // few records after the disk is otherwise full. Then space is freed and
    // calls work again.
    let script = "echo gate1; read x; i=0; while [ $i -lt 60 ]; do i=$((i+1)); \
                  tp write m$i || { echo refused=$i; break; }; done; \
                  echo gate2; read y; tp write after; echo after=$?";
    let mut s = Gated::start(&c, &audit_profile(&c), &log, script);
    s.reach("gate1");
    let filler = fs.fill();
    s.release();
    s.reach("gate2");
    std::fs::remove_file(&filler).unwrap();
    s.release();
    let r = s.finish();
    assert_eq!(r.code, Some(0), "{r:#?}");
    let refused: u32 = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("refused="))
        .unwrap_or_else(|| panic!("no call was refused on a full disk: {r:#?}"))
        .parse()
        .unwrap();
    assert_refused_for_audit(&r, &["No space left on device", "short write"]);
    assert!(!c.workspace.join(format!("m{refused}")).exists());
    // Every tool that ran has its allow record, written before it ran.
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    for i in 1..refused {
        assert!(c.workspace.join(format!("m{i}")).exists(), "call {i}");
        let argv = format!("\"argv\":[\"write\",\"m{i}\"]");
        assert!(
            text.lines().any(|l| l.contains("\"kind\":\"call\"")
                && l.contains("\"decision\":\"allow\"")
                && l.contains(&argv)),
            "call {i} ran without a complete record:\n{text}"
        );
    }
    // With space again, calls are served and recorded.
    assert!(r.stdout.contains("after=0"), "{r:#?}");
    assert!(c.workspace.join("after").exists());
    assert!(
        text.lines()
            .any(|l| l.contains("\"decision\":\"allow\"") && l.contains("[\"write\",\"after\"]")),
        "{text}"
    );
    // The chain holds; a record torn by the full disk is named as such.
    let v = verify(&log);
    let err = String::from_utf8_lossy(&v.stderr);
    assert!(
        v.status.code() == Some(0) || (v.status.code() == Some(1) && err.contains("torn record")),
        "{v:?}"
    );
}

#[test]
fn an_audit_log_made_immutable_mid_session_refuses_calls() {
    const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
    const FS_IOC_SETFLAGS: libc::c_ulong = 0x4008_6602;
    const FS_IMMUTABLE_FL: libc::c_long = 0x10;
    if !root_pass("chattr +i (CAP_LINUX_IMMUTABLE)") {
        return;
    }
    let c = Case::new();
    let log = c.audit_path();
    let set_immutable = |on: bool| {
        let f = std::fs::File::open(&log).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
        let mut flags: libc::c_long = 0;
        assert_eq!(unsafe { libc::ioctl(fd, FS_IOC_GETFLAGS, &mut flags) }, 0);
        flags = if on {
            flags | FS_IMMUTABLE_FL
        } else {
            flags & !FS_IMMUTABLE_FL
        };
        let ret = unsafe { libc::ioctl(fd, FS_IOC_SETFLAGS, &flags) };
        assert_eq!(ret, 0, "chattr: {}", std::io::Error::last_os_error());
    };
    let script =
        "echo gate1; read x; tp write m1; echo rc=$?; echo gate2; read y; tp write m2; echo rc2=$?";
    let mut s = Gated::start(&c, &audit_profile(&c), &log, script);
    s.reach("gate1");
    set_immutable(true);
    s.release();
    s.reach("gate2");
    set_immutable(false);
    s.release();
    let r = s.finish();
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(r.stdout.contains("rc=126"), "{r:#?}");
    assert_refused_for_audit(&r, &["Operation not permitted"]);
    assert!(!c.workspace.join("m1").exists(), "a tool ran unrecorded");
    // Writable again: the next call runs, and the chain is whole.
    assert!(r.stdout.contains("rc2=0"), "{r:#?}");
    assert!(c.workspace.join("m2").exists());
    let v = verify(&log);
    assert_eq!(v.status.code(), Some(0), "{v:?}");
}

#[test]
fn no_secret_is_fetched_for_a_call_that_cannot_be_recorded() {
    // A `command:` provider may mint a credential: it runs only after the
    // call's record is written. Here it would leave a marker.
    let c = Case::new();
    let marker = c.dir.path().join("provider-ran");
    let provider = c.dir.path().join("provider.sh");
    std::fs::write(
        &provider,
        format!(
            "#!/bin/sh\ntouch {}\necho minted-credential\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &provider,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut p = audit_profile(&c);
    p.extra = format!(
        "[tools.tp]\npath = \"{}\"\nallow = [[\"**\"]]\nsecrets = [\"MINTED\"]\n\n\
         [secrets.MINTED]\nfrom = \"command:{}\"\n",
        c.tool_probe().display(),
        provider.display()
    );
    let log = c.audit_path();
    let script =
        "echo gate1; read x; tp write m1; echo rc=$?; echo gate2; read y; tp write m2; echo rc2=$?";
    let mut s = Gated::start(&c, &p, &log, script);
    s.reach("gate1");
    let size = std::fs::metadata(&log).unwrap().len();
    let lim = libc::rlimit64 {
        rlim_cur: size,
        rlim_max: libc::RLIM64_INFINITY,
    };
    let pid = s.child.id() as i32;
    assert_eq!(
        unsafe { libc::prlimit64(pid, libc::RLIMIT_FSIZE, &lim, std::ptr::null_mut()) },
        0
    );
    s.release();
    s.reach("gate2");
    assert!(
        !marker.exists(),
        "a secret was fetched for an unrecorded call"
    );
    // The log can grow again: the same call is recorded, then fetches.
    let lim = libc::rlimit64 {
        rlim_cur: libc::RLIM64_INFINITY,
        rlim_max: libc::RLIM64_INFINITY,
    };
    assert_eq!(
        unsafe { libc::prlimit64(pid, libc::RLIMIT_FSIZE, &lim, std::ptr::null_mut()) },
        0
    );
    s.release();
    let r = s.finish();
    assert!(
        r.stdout.contains("rc=126") && r.stdout.contains("rc2=0"),
        "{r:#?}"
    );
    assert_refused_for_audit(&r, &["File too large"]);
    assert!(!c.workspace.join("m1").exists() && c.workspace.join("m2").exists());
    assert!(marker.exists(), "the recorded call did not get its secret");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(r#""secrets":["MINTED"]"#) && !text.contains("minted-credential"),
        "{text}"
    );
    let v = verify(&log);
    assert_eq!(v.status.code(), Some(0), "{v:?}");
}
