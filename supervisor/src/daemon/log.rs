//! The daemon's event log: journald's native protocol when systemd gave
//! us a journal stream (`$JOURNAL_STREAM`), one line on stderr otherwise.
//!
//! Each event kind has a fixed MESSAGE_ID, so `journalctl
//! MESSAGE_ID=...` finds every occurrence; AGENT, SESSION, DECISION and
//! friends are journal fields of their own.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// journald's native socket.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// What happened; each kind has its own MESSAGE_ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Ready,
    SessionStarted,
    SessionExited,
    Restarting,
    GaveUp,
    StartFailed,
    Reloaded,
    ReloadFailed,
    ControlRefused,
    ControlRequest,
    Stopping,
    Killed,
}

impl Event {
    pub fn message_id(self) -> &'static str {
        match self {
            Event::Ready => "e114126466964432849f5f7d48eac88c",
            Event::SessionStarted => "f69a82b5ed054f6884c3381f837c98ce",
            Event::SessionExited => "22770986bd214ef28ba7a0acc81662bd",
            Event::Restarting => "4b368a14642d483595c84c69a77de3e4",
            Event::GaveUp => "1189d0887ebb4eefbb74a88e1c2ce603",
            Event::StartFailed => "a2ecbecf76ae49478afa5eebf3e3415c",
            Event::Reloaded => "b6f361c27b374326b8544a8ae1394bf7",
            Event::ReloadFailed => "6520336cfd1e4361b51502656f5c37e4",
            Event::ControlRefused => "8ad7424447374a3e91992694264e9ee7",
            Event::ControlRequest => "19f8a6e7864341789a11dffbb3562002",
            Event::Stopping => "fe688eb56bf948c8bb3ec840dd8768a0",
            Event::Killed => "8c35d93db988418498019cd419e97862",
        }
    }

    /// syslog priority: 3 error, 4 warning, 5 notice, 6 info.
    pub fn priority(self) -> u8 {
        match self {
            Event::GaveUp | Event::StartFailed | Event::ReloadFailed => 3,
            Event::ControlRefused | Event::Restarting | Event::Killed => 4,
            Event::Ready | Event::Reloaded | Event::Stopping => 5,
            _ => 6,
        }
    }
}

/// Where events go.
pub struct Log {
    journal: Option<(UnixDatagram, PathBuf)>,
}

impl Log {
    /// journald when `$JOURNAL_STREAM` is set (systemd connected our
    /// stderr to the journal), else stderr. `CORDON_JOURNAL_SOCKET`
    /// overrides the socket path (tests play journald with it).
    pub fn from_env() -> Log {
        let wanted = std::env::var_os("JOURNAL_STREAM").is_some();
        let path = std::env::var_os("CORDON_JOURNAL_SOCKET")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(JOURNAL_SOCKET));
        let journal = if wanted {
            UnixDatagram::unbound().ok().map(|s| (s, path))
        } else {
            None
        };
        Log { journal }
    }

    /// Records one event with its fields (upper-case journal names).
    pub fn event(&self, event: Event, message: &str, fields: &[(&str, &str)]) {
        if let Some((sock, path)) = &self.journal {
            let datagram = encode(event, message, fields);
            if sock.send_to(&datagram, path).is_ok() {
                return;
            }
        }
        let mut line = format!("cordon serve: {message}");
        for (k, v) in fields {
            line.push_str(&format!(" {}={v:?}", k.to_ascii_lowercase()));
        }
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// One native-protocol datagram: `KEY=value\n`, or for values holding a
/// newline, `KEY\n` + little-endian u64 length + value + `\n`.
pub fn encode(event: Event, message: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let priority = event.priority().to_string();
    let fixed = [
        ("MESSAGE", message),
        ("MESSAGE_ID", event.message_id()),
        ("PRIORITY", priority.as_str()),
        ("SYSLOG_IDENTIFIER", "cordon"),
    ];
    for (k, v) in fixed.iter().chain(fields.iter()) {
        if !valid_field(k) {
            continue;
        }
        out.extend_from_slice(k.as_bytes());
        if v.contains('\n') {
            out.push(b'\n');
            out.extend_from_slice(&(v.len() as u64).to_le_bytes());
            out.extend_from_slice(v.as_bytes());
        } else {
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
        }
        out.push(b'\n');
    }
    out
}

/// journald field names: upper-case letters, digits and `_`, not
/// starting with `_` or a digit.
fn valid_field(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && !k.starts_with('_')
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_encoded_natively() {
        let d = encode(
            Event::GaveUp,
            "gave up",
            &[("AGENT", "a"), ("REASON", "two\nlines"), ("bad", "x")],
        );
        let text = String::from_utf8_lossy(&d);
        assert!(text.starts_with(
            "MESSAGE=gave up\nMESSAGE_ID=1189d0887ebb4eefbb74a88e1c2ce603\nPRIORITY=3\n"
        ));
        assert!(text.contains("AGENT=a\n"));
        let mut want = b"REASON\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(b"two\nlines\n");
        assert!(d.windows(want.len()).any(|w| w == want.as_slice()));
        assert!(!text.contains("bad="));
    }
}
