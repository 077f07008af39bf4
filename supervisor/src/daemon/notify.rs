//! systemd's notify protocol, by hand: one datagram of `KEY=VALUE` lines
//! to the socket named in `$NOTIFY_SOCKET` (a path, or `@name` for an
//! abstract socket). Absent variable: every call is a no-op.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A connection to the service manager, if there is one.
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    /// `$WATCHDOG_USEC`, when it is meant for this process.
    watchdog: Option<Duration>,
}

/// Why the notify socket could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET={0:?} is not an absolute path or an @abstract name")]
    BadAddress(String),
    #[error("NOTIFY_SOCKET: {0}")]
    Io(#[from] std::io::Error),
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`.
    pub fn from_env() -> Result<Notifier, NotifyError> {
        let watchdog = watchdog_from(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        let Some(raw) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(Notifier {
                target: None,
                watchdog,
            });
        };
        let raw = raw.to_string_lossy().into_owned();
        let addr = if let Some(name) = raw.strip_prefix('@') {
            SocketAddr::from_abstract_name(name.as_bytes())?
        } else if raw.starts_with('/') {
            SocketAddr::from_pathname(&raw)?
        } else {
            return Err(NotifyError::BadAddress(raw));
        };
        let sock = UnixDatagram::unbound()?;
        Ok(Notifier {
            target: Some((sock, addr)),
            watchdog,
        })
    }

    /// Sends `state` (newline-separated assignments). Errors are
    /// returned so the caller can log them; systemd treats a missing
    /// READY=1 as a failed start, so they matter.
    pub fn send(&self, state: &str) -> std::io::Result<()> {
        match &self.target {
            Some((sock, addr)) => sock.send_to_addr(state.as_bytes(), addr).map(drop),
            None => Ok(()),
        }
    }

    /// How often to send WATCHDOG=1: half of `$WATCHDOG_USEC`.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    /// `RELOADING=1` with the monotonic timestamp systemd 253+ requires.
    pub fn reloading(&self) -> std::io::Result<()> {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the configuration",
            crate::sys::spawn::monotonic_usec()
        ))
    }
}

/// `$WATCHDOG_USEC` applies when `$WATCHDOG_PID` is unset or names us.
fn watchdog_from(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(me) {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_applies_only_to_its_pid() {
        assert_eq!(
            watchdog_from(Some("2000000"), None, 7),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            watchdog_from(Some("2000000"), Some("7"), 7),
            Some(Duration::from_secs(2))
        );
        assert_eq!(watchdog_from(Some("2000000"), Some("8"), 7), None);
        assert_eq!(watchdog_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_from(Some("x"), None, 7), None);
        assert_eq!(watchdog_from(None, None, 7), None);
    }
}
