#![allow(clippy::expect_used, clippy::undocumented_unsafe_blocks)] // test harness: panics are test failures
//! Shared harness: find the binaries, write a profile, run the probe under
//! `cordon run`, and look for survivors in the host's /proc.
#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where `cordon` and `cordon-probe` are: `CORDON_TEST_BIN_DIR` when set
/// (CI copies them somewhere an unprivileged user can reach), else the
/// cargo target directory the probe was built into.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CORDON_TEST_BIN_DIR") {
        return PathBuf::from(d);
    }
    let probe = PathBuf::from(env!("CARGO_BIN_EXE_cordon-probe"));
    probe.parent().expect("probe has a directory").to_path_buf()
}

pub fn cordon() -> PathBuf {
    let p = bin_dir().join("cordon");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` (or `cargo test --workspace`) first",
        p.display()
    );
    p
}

/// `cordon` with its audit log in a per-test-process temporary file, so
/// tests never write the user's (or root's) real log.
pub fn cordon_cmd() -> Command {
    let mut cmd = Command::new(cordon());
    cmd.env(
        "CORDON_AUDIT",
        std::env::temp_dir().join(format!("cordon-test-audit-{}.jsonl", std::process::id())),
    );
    cmd
}

pub fn probe() -> PathBuf {
    bin_dir().join("cordon-probe")
}

/// True in CI, where a missing kernel feature must fail, not skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

pub fn is_root() -> bool {
    // SAFETY-free: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A profile under construction; `toml()` renders it.
#[derive(Clone, Debug)]
pub struct Profile {
    /// `[profile] name` ("test" unless a test tells sessions apart by it).
    pub name: &'static str,
    pub read: Vec<String>,
    pub write: Vec<String>,
    pub exec: Vec<String>,
    pub deny: Vec<String>,
    pub connect_tcp: Vec<u16>,
    pub bind_tcp: Vec<u16>,
    /// `[network] allow_hosts` / `deny_hosts` (egress through the proxy).
    pub allow_hosts: Vec<String>,
    pub deny_hosts: Vec<String>,
    /// `[network] unix`: Unix sockets the sandbox may connect to.
    pub unix: Vec<String>,
    pub syscalls_deny: Vec<String>,
    pub on_violation: &'static str,
    pub best_effort: bool,
    pub stop_grace: &'static str,
    /// Extra TOML appended as is (e.g. a `[limits]` table).
    pub extra: String,
}

impl Profile {
    /// What the probe needs to start: its binary and the C library.
    pub fn base() -> Profile {
        Profile {
            name: "test",
            read: vec!["/etc/ld.so.cache".into()],
            write: vec!["/dev/null".into()],
            exec: vec![
                probe().display().to_string(),
                "/usr/lib".into(),
                "/usr/lib64".into(),
                "/lib64".into(),
            ],
            deny: vec![],
            connect_tcp: vec![],
            bind_tcp: vec![],
            allow_hosts: vec![],
            deny_hosts: vec![],
            unix: vec![],
            syscalls_deny: vec![],
            on_violation: "kill",
            best_effort: false,
            stop_grace: "5s",
            extra: String::new(),
        }
    }

    pub fn toml(&self) -> String {
        let list = |v: &[String]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ports = |v: &[u16]| v.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
        format!(
            "[profile]\nname = {:?}\nbest_effort = {}\nstop_grace = {:?}\n\n\
             [filesystem]\nread = [{}]\nwrite = [{}]\nexec = [{}]\ndeny = [{}]\n\n\
             [network]\nconnect_tcp = [{}]\nbind_tcp = [{}]\nallow_hosts = [{}]\ndeny_hosts = [{}]\nunix = [{}]\n\n\
             [syscalls]\ndeny = [{}]\non_violation = {:?}\n\n{}\n",
            self.name,
            self.best_effort,
            self.stop_grace,
            list(&self.read),
            list(&self.write),
            list(&self.exec),
            list(&self.deny),
            ports(&self.connect_tcp),
            ports(&self.bind_tcp),
            list(&self.allow_hosts),
            list(&self.deny_hosts),
            list(&self.unix),
            list(&self.syscalls_deny),
            self.on_violation,
            self.extra,
        )
    }
}

/// A temporary workspace plus the directory holding the profile file.
pub struct Case {
    pub dir: tempfile::TempDir,
    pub workspace: PathBuf,
    pub outside: PathBuf,
}

impl Case {
    pub fn new() -> Case {
        let dir = tempfile::tempdir().expect("temp dir");
        let workspace = dir.path().join("ws");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&workspace).expect("workspace");
        std::fs::create_dir(&outside).expect("outside dir");
        Case {
            dir,
            workspace,
            outside,
        }
    }

    pub fn profile_path(&self, profile: &Profile) -> PathBuf {
        let path = self.dir.path().join("profile.toml");
        std::fs::write(&path, profile.toml()).expect("write profile");
        path
    }

    /// `cordon run` of the probe with `args`, not yet started.
    pub fn command(&self, profile: &Profile, args: &[&str]) -> Command {
        let mut cmd = self.cordon_run(profile);
        cmd.arg(probe()).args(args);
        cmd
    }

    /// `cordon run --profile P --workspace W --` (the command to follow).
    /// The audit log goes to this case's directory.
    pub fn cordon_run(&self, profile: &Profile) -> Command {
        let mut cmd = cordon_cmd();
        cmd.arg("run")
            .arg("--profile")
            .arg(self.profile_path(profile))
            .arg("--workspace")
            .arg(&self.workspace)
            .arg("--")
            .env("CORDON_AUDIT", self.audit_path())
            .stdin(Stdio::null());
        cmd
    }

    /// A copy of the probe outside every agent grant, to declare as a
    /// brokered tool (made once per case).
    /// The probe as a brokered tool: a copy with a few bytes appended
    /// (the loader ignores what follows an ELF file's segments), so it is
    /// not the very program the agent may run (cordon refuses a profile
    /// whose tool the agent could run without the broker).
    pub fn tool_probe(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join("tool-probe");
        if !path.exists() {
            let mut bytes = std::fs::read(probe()).expect("read the probe");
            bytes.extend_from_slice(b"\0cordon: the probe as a tool\n");
            std::fs::write(&path, bytes).expect("write the tool probe");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("make the tool probe executable");
        }
        path
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.path().join("audit.jsonl")
    }

    /// Runs `script` with dash inside the sandbox (the profile must grant
    /// /usr/bin/dash exec).
    pub fn shell(&self, profile: &Profile, script: &str) -> Run {
        let mut cmd = self.cordon_run(profile);
        cmd.args(["/usr/bin/dash", "-c", script]);
        Run::from(cmd.output().expect("spawn cordon"))
    }

    pub fn run(&self, profile: &Profile, args: &[&str]) -> Run {
        Run::from(self.command(profile, args).output().expect("spawn cordon"))
    }
}

/// The result of one `cordon run`.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the probe succeeded.
    pub fn ok(&self) -> &Run {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        assert!(
            self.stdout.lines().any(|l| l == "ok"),
            "expected `ok`: {self:#?}"
        );
        self
    }

    /// Asserts the probe's operation failed with one of `errnos` (names).
    pub fn failed_with(&self, errnos: &[&str]) -> &Run {
        assert_eq!(
            self.code,
            Some(1),
            "expected the probe to report a failure: {self:#?}"
        );
        let line = self
            .stdout
            .lines()
            .find(|l| l.starts_with("err "))
            .unwrap_or("");
        assert!(
            errnos.iter().any(|e| line.ends_with(e)),
            "expected one of {errnos:?}, got `{line}`: {self:#?}"
        );
        self
    }

    /// Asserts cordon killed the sandbox for a violation of `syscall`.
    pub fn killed_for(&self, syscall: &str) -> &Run {
        assert_eq!(
            self.code,
            Some(86),
            "expected a divergence kill (86): {self:#?}"
        );
        assert!(
            self.stderr.contains("cordon: killed:") && self.stderr.contains(syscall),
            "expected the kill to name {syscall}: {self:#?}"
        );
        assert!(
            !self.stdout.lines().any(|l| l == "ok"),
            "the syscall must not have succeeded: {self:#?}"
        );
        self
    }
}

/// Host pids whose command line contains `token`.
pub fn processes_with(token: &str) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            if cmdline
                .split(|&b| b == 0)
                .any(|arg| arg == token.as_bytes())
            {
                found.push(pid);
            }
        }
    }
    found
}

/// Polls `cond` every 20 ms until it holds or `limit` passes. A bound on
/// waiting, not a timing assertion.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// A token unique to this test process and call.
pub fn token(name: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("cordon-test-{name}-{}-{n}", std::process::id())
}

/// Spawns cordon with piped stdout and waits for the probe's first line.
pub fn spawn_until_line(
    mut cmd: Command,
    line: &str,
) -> (Child, BufReader<std::process::ChildStdout>) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn cordon");
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut got = String::new();
    loop {
        got.clear();
        let n = out.read_line(&mut got).expect("read probe output");
        assert!(n > 0, "probe ended before printing `{line}`");
        if got.trim_end() == line {
            break;
        }
    }
    (child, out)
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}
