//! `cordon serve`: a systemd-native daemon that starts the configured
//! agents, each as its own `cordon run` child process, supervises them
//! (restart with back-off, give up, report), and answers operators on a
//! control socket.
//!
//! - [`config`]: the configuration file, checked with file:line:column.
//! - [`agents`]: agents, their sessions, restart policy and back-off.
//! - [`session`]: starting one session (`cordon run` as the agent's user).
//! - [`control`]: the operator protocol (JSON lines) and its client.
//! - [`counts`]: calls allowed/denied per session, from the audit log.
//! - [`notify`]: sd_notify by hand (READY, RELOADING, STOPPING, WATCHDOG).
//! - [`log`]: journald native protocol, or stderr.
//! - [`cgroup`]: a cgroup per session when systemd delegated ours.
//! - [`server`]: the event loop tying them together.
//!
//! Why one process per session: the release build aborts on panic, so a
//! bug hit by one session's broker would otherwise take every session
//! down; a child `cordon run` per session confines a crash (or a kill -9)
//! to that session, reuses the exact code path `cordon run` is tested
//! with, and lets each session run as its agent's own user.

pub mod agents;
pub mod cgroup;
pub mod config;
pub mod control;
pub mod counts;
pub mod log;
pub mod notify;
pub mod server;
pub mod session;

pub use config::{load, Config, ConfigError, DEFAULT_CONFIG, DEFAULT_SOCKET};
pub use server::{serve, ServeError};

/// A digest of a loaded profile (its whole parsed form, every file of its
/// `extends` chain included). The daemon passes the digest of the profile
/// it checked to each session's `cordon run`, which refuses to start if
/// the profile it loads is not that one: a session never runs a profile
/// the daemon has not validated at start or reload.
pub fn profile_digest(profile: &crate::profile::Profile) -> String {
    crate::audit::line_hash(format!("{profile:?}").as_bytes())
}
