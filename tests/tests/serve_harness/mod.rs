#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking
//! The `cordon serve` test harness: a daemon as a real process, its
//! operator commands, and configuration snippets.
#![allow(dead_code)] // each test file uses a different part

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Spawns `cmd`, whose program was copied just now. A test thread that
/// forks while the copy's write descriptor is open gives the child that
/// descriptor until its exec, and executing the copy meanwhile fails with
/// ETXTBSY ("Text file busy"): try again, a bounded number of times.
fn spawn_fresh_copy(cmd: &mut Command) -> Child {
    for _ in 0..100 {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.expect("spawn cordon serve"),
        }
    }
    cmd.spawn().expect("spawn cordon serve (text file busy)")
}

/// A daemon under test, with its directory, config and logs.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub stderr: PathBuf,
}

impl Daemon {
    pub fn start(dir: &Path, config: &str, env: &[(&str, String)]) -> Daemon {
        Daemon::start_in(dir, config, env, None)
    }

    /// Starts the daemon inside cgroup `cgroup` (as systemd would with
    /// Delegate=yes) when given.
    pub fn start_in(
        dir: &Path,
        config: &str,
        env: &[(&str, String)],
        cgroup: Option<&Path>,
    ) -> Daemon {
        let socket = dir.join("run/control.sock");
        let config_path = dir.join("cordon.toml");
        std::fs::write(&config_path, config).unwrap();
        let stderr = dir.join("serve.log");
        // The daemon starts sessions from its own binary, as their agents'
        // users when configured: a copy in the case's directory stays
        // reachable for them even when the checkout is not (CI clones into
        // a 0700 directory).
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for name in ["cordon", "cordon-shim"] {
            std::fs::copy(bin_dir().join(name), bin.join(name)).unwrap();
        }
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let daemon = bin.join("cordon");
        let mut cmd = match cgroup {
            None => Command::new(&daemon),
            Some(cg) => {
                let mut sh = Command::new("/bin/sh");
                sh.args(["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\""])
                    .arg(cg)
                    .arg(&daemon);
                sh
            }
        };
        cmd.arg("serve")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env_remove("WATCHDOG_USEC");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = spawn_fresh_copy(&mut cmd);
        let d = Daemon {
            child,
            socket,
            config: config_path,
            stderr,
        };
        assert!(
            wait_until(Duration::from_secs(20), || d.socket.exists()),
            "the control socket never appeared: {}",
            d.log()
        );
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn operator(&self, args: &[&str]) -> Run {
        Run::from(
            Command::new(cordon())
                .args(args)
                .arg("--socket")
                .arg(&self.socket)
                .output()
                .unwrap(),
        )
    }

    pub fn ps(&self) -> serde_json::Value {
        let r = self.operator(&["ps", "--json"]);
        assert_eq!(r.code, Some(0), "{r:#?}");
        serde_json::from_str(&r.stdout).unwrap()
    }

    pub fn agent(&self, name: &str) -> serde_json::Value {
        self.ps()["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    }

    pub fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) takes integers; the pid is our unreaped child.
        let ret = unsafe { libc::kill(pid, sig) };
        assert_eq!(ret, 0);
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> (Option<i32>, String) {
        self.signal(libc::SIGTERM);
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s.code(), self.log());
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("the daemon did not stop: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A profile that lets the agent run dash, sleep and true (and nothing
/// else), plus `extra`.
pub fn shell_profile(extra: &str) -> String {
    let mut p = Profile::base();
    // Agents here are shell commands; the probe's path may lie where an
    // agent's user cannot look (a 0700 checkout).
    let probe = probe().display().to_string();
    p.exec.retain(|e| *e != probe);
    for util in ["dash", "sleep", "true", "false"] {
        p.exec.push(format!("/usr/bin/{util}"));
    }
    p.extra = extra.to_string();
    p.toml()
}

pub fn agent(name: &str, profile: &Path, command: &[&str], extra: &str) -> String {
    let argv: Vec<String> = command.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "[[agent]]\nname = \"{name}\"\nprofile = \"{}\"\ncommand = [{}]\n{extra}\n",
        profile.display(),
        argv.join(", ")
    )
}

pub fn header(dir: &Path) -> String {
    format!(
        "[audit]\npath = \"{}\"\n\n[control]\nsocket = \"{}\"\n\n[service]\nstop_timeout = \"10s\"\n\n",
        dir.join("audit.jsonl").display(),
        dir.join("run/control.sock").display()
    )
}

/// Reads datagrams until `want` returns true for one, or `limit` passes.
pub fn recv_until(
    sock: &UnixDatagram,
    limit: Duration,
    mut want: impl FnMut(&str) -> bool,
) -> Vec<String> {
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 65536];
    while start.elapsed() < limit {
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = want(&msg);
            seen.push(msg);
            if done {
                return seen;
            }
        }
    }
    panic!("not seen within {limit:?}; got {seen:#?}");
}

/// The unprivileged user scripts/test-all.sh uses; created when missing.
pub fn ci_user() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let id = |flag: &str| {
        Command::new("id")
            .args([flag, "cordon-ci"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u32>()
                    .ok()
            })
    };
    if id("-u").is_none() {
        let ok = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "cordon-ci",
            ])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot create user cordon-ci");
    }
    Some((id("-u")?, id("-g")?))
}

/// The repository (or CI's copy of its profiles/ and examples/).
pub fn repo() -> PathBuf {
    match std::env::var_os("CORDON_TEST_REPO_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
    }
}
