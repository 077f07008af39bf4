//! The daemon's event loop: one thread polling the signalfd, the control
//! socket and every session's pidfd, with timers for back-off, stop
//! deadlines and the watchdog.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::agents::{ensure_dir, Agents};
use super::cgroup::Delegated;
use super::config::{self, Config, ConfigError};
use super::control::{self, Request, Response, MAX_LINE};
use super::log::{Event, Log};
use super::notify::{Notifier, NotifyError};
use crate::sys::fd::{block_signals_to_fd, poll, read_signal};

/// Why the daemon could not start (it exits non-zero; systemd logs it).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error("cannot set up signal handling: {0}")]
    Signals(crate::sys::Errno),
    #[error("control socket {path}: {source}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another daemon is answering on {0}")]
    SocketInUse(PathBuf),
    #[error("cannot find the cordon binary to run sessions with: {0}")]
    Exe(std::io::Error),
    #[error("waiting for events: {0}")]
    Poll(crate::sys::Errno),
}

/// How long an operator connection may take to send its request.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs the daemon until SIGTERM or SIGINT; returns after every session
/// has ended.
pub fn serve(config_path: &Path) -> Result<(), ServeError> {
    let signals = block_signals_to_fd(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP])
        .map_err(ServeError::Signals)?;
    let notifier = Notifier::from_env()?;
    let log = Log::from_env();
    let config = config::load(config_path)?;
    let listener = bind(&config.control.socket)?;
    let state_dir = config
        .control
        .socket
        .parent()
        .unwrap_or(Path::new("/run/cordon"))
        .join("sessions");
    ensure_dir(&state_dir).map_err(|source| ServeError::Socket {
        path: state_dir.clone(),
        source,
    })?;
    let _ = std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o755));
    let cordon = std::env::current_exe().map_err(ServeError::Exe)?;
    let cgroups = match Delegated::detect() {
        Ok(d) => {
            log.event(
                Event::Ready,
                &format!("each session gets its own cgroup under {}", d.dir.display()),
                &[("CGROUP", &d.dir.display().to_string())],
            );
            Some(d)
        }
        Err(why) => {
            log.event(
                Event::Ready,
                &format!("sessions share the daemon's cgroup ({why}); each is contained by its pid namespace"),
                &[],
            );
            None
        }
    };
    let mut daemon = Daemon {
        config_path: config_path.to_path_buf(),
        agents: Agents::new(&config, cordon, state_dir, cgroups),
        config,
        log,
        notifier,
        listener,
        stopping: false,
        status: String::new(),
    };
    daemon.agents.autostart(&daemon.log);
    let (n, running) = daemon.agents.counts();
    daemon.log.event(
        Event::Ready,
        &format!("ready: {n} agents configured, {running} running"),
        &[("CONFIG", &config_path.display().to_string())],
    );
    daemon.notify("READY=1");
    daemon.update_status();
    let result = daemon.run(&signals);
    let _ = std::fs::remove_file(&daemon.config.control.socket);
    result
}

struct Daemon {
    config_path: PathBuf,
    config: Config,
    agents: Agents,
    log: Log,
    notifier: Notifier,
    listener: UnixListener,
    stopping: bool,
    status: String,
}

impl Daemon {
    fn run(&mut self, signals: &OwnedFd) -> Result<(), ServeError> {
        let watchdog = self.notifier.watchdog_interval();
        let mut next_ping = watchdog.map(|w| Instant::now() + w);
        if watchdog.is_some() {
            self.notify("WATCHDOG=1");
        }
        loop {
            if self.stopping && !self.agents.any_alive() {
                return Ok(());
            }
            let pidfds = self.agents.pidfds();
            let mut fds = Vec::with_capacity(2 + pidfds.len());
            fds.push(pollfd(signals.as_raw_fd()));
            fds.push(pollfd(self.listener.as_raw_fd()));
            fds.extend(pidfds.iter().map(|(_, fd)| pollfd(*fd)));
            let now = Instant::now();
            let due = [self.agents.next_due(), next_ping]
                .into_iter()
                .flatten()
                .min();
            let timeout = match due {
                Some(t) => {
                    let ms = t.saturating_duration_since(now).as_millis() + 1;
                    i32::try_from(ms).unwrap_or(i32::MAX)
                }
                None => -1,
            };
            poll(&mut fds, timeout).map_err(ServeError::Poll)?;
            if fds[0].revents != 0 {
                while let Ok(Some((sig, _))) = read_signal(signals) {
                    self.signal(sig);
                }
            }
            if fds[1].revents != 0 {
                self.accept();
            }
            if fds[2..].iter().any(|f| f.revents != 0) {
                self.agents.reap(&self.log);
            }
            let now = Instant::now();
            self.agents.tick(now, &self.log);
            if let (Some(w), Some(t)) = (watchdog, next_ping) {
                if t <= now {
                    self.notify("WATCHDOG=1");
                    next_ping = Some(now + w);
                }
            }
            self.update_status();
        }
    }

    fn signal(&mut self, sig: i32) {
        match sig {
            libc::SIGHUP if !self.stopping => self.reload(),
            libc::SIGTERM | libc::SIGINT if !self.stopping => {
                self.stopping = true;
                self.notify("STOPPING=1\nSTATUS=stopping every session");
                self.log.event(
                    Event::Stopping,
                    "stopping: every session gets SIGTERM",
                    &[("SIGNAL", &sig.to_string())],
                );
                self.agents.stop_all(&self.log);
            }
            _ => {}
        }
    }

    /// SIGHUP: the new configuration and all its profiles, or nothing.
    fn reload(&mut self) {
        if let Err(e) = self.notifier.reloading() {
            tracing::warn!(error = %e, "sd_notify RELOADING=1 failed");
        }
        match config::load(&self.config_path) {
            Ok(new) => {
                if new.control.socket != self.config.control.socket {
                    self.log.event(
                        Event::ReloadFailed,
                        &format!(
                            "[control] socket changed to {}: it takes effect at the next restart; still listening on {}",
                            new.control.socket.display(),
                            self.config.control.socket.display()
                        ),
                        &[],
                    );
                }
                let socket = self.config.control.socket.clone();
                self.agents.reconfigure(&new, &self.log);
                self.config = new;
                self.config.control.socket = socket;
                self.log.event(
                    Event::Reloaded,
                    &format!(
                        "reloaded {}: {} agents",
                        self.config_path.display(),
                        self.config.agents.len()
                    ),
                    &[("CONFIG", &self.config_path.display().to_string())],
                );
            }
            Err(e) => {
                let why = e.to_string();
                self.log.event(
                    Event::ReloadFailed,
                    &format!(
                        "reload refused, the running configuration stays: {}",
                        why.replace('\n', "; ")
                    ),
                    &[
                        ("CONFIG", &self.config_path.display().to_string()),
                        ("REASON", &why),
                    ],
                );
            }
        }
        self.status.clear();
        self.notify("READY=1");
        self.update_status();
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.client(stream),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    return;
                }
            }
        }
    }

    /// One operator connection: peer check, one request, one response.
    fn client(&mut self, stream: UnixStream) {
        let fd = stream.as_raw_fd();
        let cred = match crate::sys::fd::peer_cred(fd) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "control socket: no peer credentials");
                return;
            }
        };
        let groups = crate::sys::spawn::peer_groups(fd).unwrap_or_default();
        let uid = cred.uid.to_string();
        let pid = cred.pid.to_string();
        // Every sandbox (agent and tool) has its own pid namespace: a peer
        // outside ours is inside a sandbox, whatever its uid (an agent of
        // a root-run session is uid 0), and is never an operator.
        let refusal = if !same_pid_namespace(cred.pid) {
            Some("from another pid namespace (inside a sandbox)")
        } else if !control::permitted(&self.config.control, cred.uid, cred.gid, &groups) {
            Some("not root, not in allow_uids, not in an allow_gids group")
        } else {
            None
        };
        if let Some(why) = refusal {
            self.log.event(
                Event::ControlRefused,
                &format!(
                    "control socket: refused uid {} (pid {}): {why}",
                    cred.uid, cred.pid
                ),
                &[
                    ("PEER_UID", &uid),
                    ("PEER_PID", &pid),
                    ("DECISION", "refuse"),
                    ("REASON", why),
                ],
            );
            return;
        }
        let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
        let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
        let mut reader = BufReader::new((&stream).take(MAX_LINE as u64));
        let mut line = String::new();
        let response = match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => match serde_json::from_str::<Request>(&line) {
                Ok(req) => {
                    let op = format!("{req:?}");
                    self.log.event(
                        Event::ControlRequest,
                        &format!("control: uid {} asks {op}", cred.uid),
                        &[("PEER_UID", &uid), ("PEER_PID", &pid), ("REQUEST", &op)],
                    );
                    self.handle(req)
                }
                Err(e) => Response::error(format!("unknown request ({e})")),
            },
        };
        let mut out = serde_json::to_vec(&response).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
        out.push(b'\n');
        let _ = (&stream).write_all(&out);
    }

    /// The extension point for new operator requests.
    fn handle(&mut self, req: Request) -> Response {
        match req {
            Request::Ps => Response {
                ok: true,
                agents: Some(self.agents.status()),
                ..Response::default()
            },
            Request::Kill { session } => match self.agents.operator_kill(&session, &self.log) {
                Ok(m) => Response::ok(m),
                Err(e) => Response::error(e),
            },
            Request::Start { agent } => match self.agents.find(&agent) {
                _ if self.stopping => Response::error("the daemon is stopping"),
                None => Response::error(format!("no agent named `{agent}`")),
                Some(i) => match self.agents.operator_start(i, &self.log) {
                    Ok(m) => Response::ok(m),
                    Err(e) => Response::error(e),
                },
            },
            Request::Stop { agent } => match self.agents.find(&agent) {
                None => Response::error(format!("no agent named `{agent}`")),
                Some(i) => Response::ok(self.agents.operator_stop(i, &self.log)),
            },
        }
    }

    fn notify(&self, state: &str) {
        if let Err(e) = self.notifier.send(state) {
            tracing::warn!(error = %e, state, "sd_notify failed");
        }
    }

    /// STATUS= when it changed.
    fn update_status(&mut self) {
        let (n, running) = self.agents.counts();
        let status = if self.stopping {
            format!("stopping: {running} sessions left")
        } else {
            format!("{running} of {n} agents running")
        };
        if status != self.status {
            self.notify(&format!("STATUS={status}"));
            self.status = status;
        }
    }
}

/// Whether process `pid` shares the daemon's pid namespace. Unknown
/// (the process is gone, /proc unreadable) counts as no.
fn same_pid_namespace(pid: i32) -> bool {
    let ours = std::fs::read_link("/proc/self/ns/pid");
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/pid"));
    matches!((ours, theirs), (Ok(a), Ok(b)) if a == b)
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Binds the control socket (0666: who may use it is decided per
/// connection with SO_PEERCRED, so refusals are seen and logged).
fn bind(path: &Path) -> Result<UnixListener, ServeError> {
    let err = |source| ServeError::Socket {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(ServeError::SocketInUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    Ok(listener)
}
