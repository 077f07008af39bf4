//! The broker protocol between `cordon-shim` and the supervisor.
//!
//! Transport: a Unix stream socket. Every message is one frame:
//!
//! ```text
//! +----------------+---------+----------------------+
//! | length: u32 LE | kind: u8| payload (length - 1) |
//! +----------------+---------+----------------------+
//! ```
//!
//! `length` counts the kind byte and the payload and may not exceed
//! [`MAX_FRAME`]; a larger header is a protocol error and the peer is
//! disconnected without reading further. Inside a payload, integers are
//! little-endian, and a byte string is a u32 length then the bytes.
//!
//! A call is: the shim sends [`Request::Exec`], then may send
//! [`Request::Cancel`]; the supervisor answers with exactly one final
//! [`Reply`]: `Denied`, `Exited`, `Signaled` or `Error`, and closes.
//! Frames are bytes only: the supervisor takes the caller's stdin, stdout,
//! stderr and working directory from the calling process itself
//! (pidfd_getfd), and refuses a frame that carries descriptors.
//!
//! Version 2 (version 1 attached the descriptors as SCM_RIGHTS). The
//! version travels in every first frame; a supervisor that does not speak
//! it replies `Error` naming the version it does.

use std::fmt;

/// The protocol version this crate speaks.
pub const VERSION: u16 = 2;

/// The largest frame (kind + payload) either side accepts: 1 MiB, enough
/// for an argv near Linux's usual 128 KiB per-string limit times a few, and
/// small enough that a hostile peer cannot make the supervisor allocate much.
pub const MAX_FRAME: u32 = 1 << 20;

/// Frame kinds.
pub mod kind {
    pub const EXEC: u8 = 1;
    pub const CANCEL: u8 = 2;
    pub const SECRET: u8 = 3;
    pub const SPAWN: u8 = 4;
    pub const MCP: u8 = 5;
    pub const DENIED: u8 = 16;
    pub const EXITED: u8 = 17;
    pub const SIGNALED: u8 = 18;
    pub const ERROR: u8 = 19;
    pub const VALUE: u8 = 20;
}

/// What the shim asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Run `tool` with `args` (the argv after the tool name, byte-exact).
    Exec {
        version: u16,
        tool: Vec<u8>,
        args: Vec<Vec<u8>>,
        /// The shim's working directory as text (for the record; the
        /// attached directory descriptor is what counts).
        cwd: Vec<u8>,
        /// The shim's environment; the supervisor keeps only the names the
        /// tool's profile passes through.
        env: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// The shim got this signal: stop the tool.
    Cancel { signal: i32 },
    /// `cordon-shim secret NAME`: the agent asks for a secret's value
    /// (granted only for secrets the profile marks `expose = true`).
    Secret { version: u16, name: Vec<u8> },
    /// `cordon-shim spawn --profile FILE -- CMD...`: run CMD as a
    /// sub-agent under the profile text (read inside the sandbox), which
    /// must be a subset of this session's. Carries the same four
    /// descriptors as `Exec`.
    Spawn {
        version: u16,
        /// The profile file's name, for messages.
        name: Vec<u8>,
        /// The profile's TOML text.
        profile: Vec<u8>,
        /// Empty when none was given.
        intent: Vec<u8>,
        /// The command and its arguments.
        argv: Vec<Vec<u8>>,
        cwd: Vec<u8>,
    },
    /// `cordon-shim mcp NAME`: speak MCP on stdin/stdout with the
    /// profile's `[mcp.NAME]` server, through the supervisor (which runs
    /// the server and decides every `tools/call`). Carries the same four
    /// descriptors as `Exec`; the final reply comes when the server ends.
    Mcp {
        version: u16,
        server: Vec<u8>,
        cwd: Vec<u8>,
        env: Vec<(Vec<u8>, Vec<u8>)>,
    },
}

impl Request {
    /// True for the kinds that carry [`EXEC_FDS`] descriptors.
    pub fn carries_fds(&self) -> bool {
        matches!(
            self,
            Request::Exec { .. } | Request::Spawn { .. } | Request::Mcp { .. }
        )
    }
}

/// The supervisor's final answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Refused: one line, no secret, shown as `cordon: denied: <reason>`.
    Denied {
        reason: String,
    },
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    /// The request itself was bad, or the broker failed.
    Error {
        message: String,
    },
    /// An exposed secret's value.
    Value {
        value: Vec<u8>,
    },
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The header announces more than [`MAX_FRAME`] bytes, or zero.
    BadLength(u32),
    UnknownKind(u8),
    /// The payload ends inside a field.
    Truncated,
    /// Bytes left over after the last field.
    Trailing(usize),
    /// A count announces more items than the payload could hold.
    BadCount(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadLength(n) => write!(f, "frame length {n} is outside 1..={MAX_FRAME}"),
            DecodeError::UnknownKind(k) => write!(f, "unknown frame kind {k}"),
            DecodeError::Truncated => f.write_str("frame ends inside a field"),
            DecodeError::Trailing(n) => write!(f, "{n} unexpected bytes after the last field"),
            DecodeError::BadCount(n) => write!(f, "count {n} exceeds what the frame can hold"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Checks a frame header; returns the length of what follows it.
pub fn frame_length(header: [u8; 4]) -> Result<u32, DecodeError> {
    let len = u32::from_le_bytes(header);
    if len == 0 || len > MAX_FRAME {
        return Err(DecodeError::BadLength(len));
    }
    Ok(len)
}

struct Writer(Vec<u8>);

impl Writer {
    fn frame(kind: u8) -> Writer {
        let mut v = Vec::with_capacity(256);
        v.extend_from_slice(&[0, 0, 0, 0, kind]);
        Writer(v)
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(b);
    }
    /// Fills in the length. Frames over MAX_FRAME are the caller's error
    /// (the peer would refuse them); `encode` reports it.
    fn finish(mut self) -> Result<Vec<u8>, DecodeError> {
        let len = u32::try_from(self.0.len() - 4).unwrap_or(u32::MAX);
        if len > MAX_FRAME {
            return Err(DecodeError::BadLength(len));
        }
        self.0[..4].copy_from_slice(&len.to_le_bytes());
        Ok(self.0)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    /// A count of items each at least `min_size` bytes long.
    fn count(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let n = self.u32()?;
        if (n as usize).saturating_mul(min_size) > self.0.len() {
            return Err(DecodeError::BadCount(n));
        }
        Ok(n as usize)
    }
    fn end(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing(self.0.len()))
        }
    }
}

impl Request {
    /// The whole frame, header included.
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        match self {
            Request::Exec {
                version,
                tool,
                args,
                cwd,
                env,
            } => {
                let mut w = Writer::frame(kind::EXEC);
                w.u16(*version);
                w.bytes(tool);
                w.u32(u32::try_from(args.len()).unwrap_or(u32::MAX));
                for a in args {
                    w.bytes(a);
                }
                w.bytes(cwd);
                w.u32(u32::try_from(env.len()).unwrap_or(u32::MAX));
                for (k, v) in env {
                    w.bytes(k);
                    w.bytes(v);
                }
                w.finish()
            }
            Request::Cancel { signal } => {
                let mut w = Writer::frame(kind::CANCEL);
                w.i32(*signal);
                w.finish()
            }
            Request::Secret { version, name } => {
                let mut w = Writer::frame(kind::SECRET);
                w.u16(*version);
                w.bytes(name);
                w.finish()
            }
            Request::Spawn {
                version,
                name,
                profile,
                intent,
                argv,
                cwd,
            } => {
                let mut w = Writer::frame(kind::SPAWN);
                w.u16(*version);
                w.bytes(name);
                w.bytes(profile);
                w.bytes(intent);
                w.u32(u32::try_from(argv.len()).unwrap_or(u32::MAX));
                for a in argv {
                    w.bytes(a);
                }
                w.bytes(cwd);
                w.finish()
            }
            Request::Mcp {
                version,
                server,
                cwd,
                env,
            } => {
                let mut w = Writer::frame(kind::MCP);
                w.u16(*version);
                w.bytes(server);
                w.bytes(cwd);
                w.u32(u32::try_from(env.len()).unwrap_or(u32::MAX));
                for (k, v) in env {
                    w.bytes(k);
                    w.bytes(v);
                }
                w.finish()
            }
        }
    }

    /// Decodes a frame body (kind byte and payload, header already read).
    pub fn decode(body: &[u8]) -> Result<Request, DecodeError> {
        let (&k, payload) = body.split_first().ok_or(DecodeError::Truncated)?;
        let mut r = Reader(payload);
        let req = match k {
            kind::EXEC => {
                let version = r.u16()?;
                let tool = r.bytes()?;
                let n = r.count(4)?;
                let mut args = Vec::with_capacity(n);
                for _ in 0..n {
                    args.push(r.bytes()?);
                }
                let cwd = r.bytes()?;
                let n = r.count(8)?;
                let mut env = Vec::with_capacity(n);
                for _ in 0..n {
                    env.push((r.bytes()?, r.bytes()?));
                }
                Request::Exec {
                    version,
                    tool,
                    args,
                    cwd,
                    env,
                }
            }
            kind::CANCEL => Request::Cancel { signal: r.i32()? },
            kind::SECRET => Request::Secret {
                version: r.u16()?,
                name: r.bytes()?,
            },
            kind::SPAWN => {
                let version = r.u16()?;
                let name = r.bytes()?;
                let profile = r.bytes()?;
                let intent = r.bytes()?;
                let n = r.count(4)?;
                let mut argv = Vec::with_capacity(n);
                for _ in 0..n {
                    argv.push(r.bytes()?);
                }
                Request::Spawn {
                    version,
                    name,
                    profile,
                    intent,
                    argv,
                    cwd: r.bytes()?,
                }
            }
            kind::MCP => {
                let version = r.u16()?;
                let server = r.bytes()?;
                let cwd = r.bytes()?;
                let n = r.count(8)?;
                let mut env = Vec::with_capacity(n);
                for _ in 0..n {
                    env.push((r.bytes()?, r.bytes()?));
                }
                Request::Mcp {
                    version,
                    server,
                    cwd,
                    env,
                }
            }
            other => return Err(DecodeError::UnknownKind(other)),
        };
        r.end()?;
        Ok(req)
    }
}

impl Reply {
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        let w = match self {
            Reply::Denied { reason } => {
                let mut w = Writer::frame(kind::DENIED);
                w.bytes(reason.as_bytes());
                w
            }
            Reply::Exited { code } => {
                let mut w = Writer::frame(kind::EXITED);
                w.i32(*code);
                w
            }
            Reply::Signaled { signal } => {
                let mut w = Writer::frame(kind::SIGNALED);
                w.i32(*signal);
                w
            }
            Reply::Error { message } => {
                let mut w = Writer::frame(kind::ERROR);
                w.bytes(message.as_bytes());
                w
            }
            Reply::Value { value } => {
                let mut w = Writer::frame(kind::VALUE);
                w.bytes(value);
                w
            }
        };
        w.finish()
    }

    pub fn decode(body: &[u8]) -> Result<Reply, DecodeError> {
        let (&k, payload) = body.split_first().ok_or(DecodeError::Truncated)?;
        let mut r = Reader(payload);
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        let reply = match k {
            kind::DENIED => Reply::Denied {
                reason: text(r.bytes()?),
            },
            kind::EXITED => Reply::Exited { code: r.i32()? },
            kind::SIGNALED => Reply::Signaled { signal: r.i32()? },
            kind::ERROR => Reply::Error {
                message: text(r.bytes()?),
            },
            kind::VALUE => Reply::Value { value: r.bytes()? },
            other => return Err(DecodeError::UnknownKind(other)),
        };
        r.end()?;
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_request(req: Request) {
        let frame = req.encode().unwrap();
        let len = frame_length(frame[..4].try_into().unwrap()).unwrap();
        assert_eq!(len as usize, frame.len() - 4);
        assert_eq!(Request::decode(&frame[4..]).unwrap(), req);
    }

    #[test]
    fn requests_round_trip_byte_exact() {
        roundtrip_request(Request::Exec {
            version: VERSION,
            tool: b"git".to_vec(),
            args: vec![
                b"commit".to_vec(),
                b"-m".to_vec(),
                b"caf\xe9 \0 \xff".to_vec(),
                Vec::new(),
            ],
            cwd: b"/w".to_vec(),
            env: vec![(b"A".to_vec(), b"1".to_vec())],
        });
        roundtrip_request(Request::Cancel { signal: 2 });
        roundtrip_request(Request::Mcp {
            version: VERSION,
            server: b"fs".to_vec(),
            cwd: b"/w".to_vec(),
            env: vec![(b"LANG".to_vec(), b"C".to_vec())],
        });
        roundtrip_request(Request::Secret {
            version: VERSION,
            name: b"TOKEN".to_vec(),
        });
        roundtrip_request(Request::Spawn {
            version: VERSION,
            name: b"sub.toml".to_vec(),
            profile: b"[profile]\nname = \"sub\"\n".to_vec(),
            intent: Vec::new(),
            argv: vec![b"/usr/bin/dash".to_vec(), b"-c".to_vec(), b"\xff".to_vec()],
            cwd: b"/w".to_vec(),
        });
    }

    #[test]
    fn replies_round_trip() {
        for r in [
            Reply::Denied {
                reason: "no".into(),
            },
            Reply::Exited { code: 3 },
            Reply::Signaled { signal: 9 },
            Reply::Error {
                message: "bad".into(),
            },
            Reply::Value {
                value: b"v\0\xff".to_vec(),
            },
        ] {
            let f = r.encode().unwrap();
            assert_eq!(Reply::decode(&f[4..]).unwrap(), r);
        }
    }

    #[test]
    fn hostile_frames_are_rejected_not_trusted() {
        assert_eq!(
            frame_length(u32::MAX.to_le_bytes()),
            Err(DecodeError::BadLength(u32::MAX))
        );
        assert_eq!(frame_length([0; 4]), Err(DecodeError::BadLength(0)));
        assert_eq!(Request::decode(&[99]), Err(DecodeError::UnknownKind(99)));
        assert_eq!(Request::decode(&[]), Err(DecodeError::Truncated));
        // A count of 4 billion args in a 20-byte frame is refused up front,
        // before any allocation.
        let mut body = vec![kind::EXEC, 1, 0, 0, 0, 0, 0];
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Request::decode(&body), Err(DecodeError::BadCount(u32::MAX)));
        // A string length past the end.
        let mut body = vec![kind::EXEC, 1, 0];
        body.extend_from_slice(&100u32.to_le_bytes());
        assert_eq!(Request::decode(&body), Err(DecodeError::Truncated));
        // Trailing garbage.
        let mut f = Request::Cancel { signal: 1 }.encode().unwrap();
        f.push(0);
        assert_eq!(Request::decode(&f[4..]), Err(DecodeError::Trailing(1)));
    }

    #[test]
    fn oversized_frames_cannot_be_encoded() {
        let req = Request::Exec {
            version: VERSION,
            tool: b"x".to_vec(),
            args: vec![vec![b'a'; MAX_FRAME as usize]],
            cwd: Vec::new(),
            env: Vec::new(),
        };
        assert!(matches!(req.encode(), Err(DecodeError::BadLength(_))));
    }
}
