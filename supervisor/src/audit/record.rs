//! One audit record: what happened, to whom, decided how.
//!
//! Records are data, not log lines. Secret *values* never appear here, only
//! the names of the secrets injected into a call.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    SessionStart,
    /// A brokered tool call and its decision.
    Call,
    /// The end of an allowed call: duration, exit status.
    CallEnd,
    /// A sandbox violation the supervisor saw (seccomp notification).
    Violation,
    /// The agent left its profile; cordon killed its tree.
    Divergence,
    /// A broker peer that could not be tied to a session.
    RefusedPeer,
    /// A secret event: revoked, revoke failed, exposed to the agent.
    Secret,
    /// An outbound connection through the egress proxy, and its decision.
    Connect,
    /// The end of an allowed connection: bytes each way, duration.
    ConnectEnd,
    /// A secret injected by the egress proxy into one request (names,
    /// host, request line; never the value), or a request refused there.
    Inject,
    /// A call put to approvers (`pending`), or an attempt to answer one
    /// from inside the sandbox.
    Approval,
    SessionEnd,
}

/// What was decided about a call, a connection, a secret or a session:
/// the `decision` field of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Allowed by a rule (or exposed, for a secret).
    Allow,
    /// Allowed after a human (or a grant) said yes.
    Approve,
    /// Refused; the session goes on.
    Deny,
    /// Refused, and the session was killed for it.
    Kill,
    /// Put to approvers; the answer follows in the call's record.
    Pending,
}

impl Decision {
    /// `Kill` when the refusal ended the session, else `Deny`.
    pub fn refusal(killed: bool) -> Decision {
        if killed {
            Decision::Kill
        } else {
            Decision::Deny
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Approve => "approve",
            Decision::Deny => "deny",
            Decision::Kill => "kill",
            Decision::Pending => "pending",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Kind::SessionStart => "session_start",
            Kind::Call => "call",
            Kind::CallEnd => "call_end",
            Kind::Violation => "violation",
            Kind::Divergence => "divergence",
            Kind::RefusedPeer => "refused_peer",
            Kind::Secret => "secret",
            Kind::Connect => "connect",
            Kind::ConnectEnd => "connect_end",
            Kind::Inject => "inject",
            Kind::Approval => "approval",
            Kind::SessionEnd => "session_end",
        };
        f.write_str(s)
    }
}

/// One line of the audit log, without its `seq`/`prev` chain fields.
/// `None` fields are left out of the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub kind: Kind,
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    /// Session id (32 hex digits).
    pub session: String,
    /// The session's workload identity, see [`identity`].
    pub identity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// A sub-agent's ancestors, root session first (absent for a root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// Call id within the session; a `call` and its `call_end` share it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<u64>,
    /// A call made from inside another call's tool sandbox (make running
    /// git): that call's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_call: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Escaped with [`argv_text`] so any bytes survive as valid JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// The number of arguments, their total size in bytes, and the
    /// SHA-256 (hex) of the exact argument bytes, each followed by a NUL
    /// as exec passes them: what was decided, even when `argv` had to be
    /// shortened to fit the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argc: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv_len: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv_sha256: Option<String>,
    /// The same call in the canonical form of the tool's grammar (what the
    /// rules were matched against), escaped the same way; absent for a
    /// tool without a grammar, or a call it could not classify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// SHA-256 (hex) of the exact bytes of `cwd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The profile rule that decided, e.g. `tools.git.approve[0]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The Cedar policies that decided (their `@id`, or `FILE:LINE`),
    /// when `[policy] cedar` had a say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who answered an approval: `uid 1000 (alice)`, `hook:/path`, `tty uid 1000 (alice)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    /// When the approver answered (RFC 3339 UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    /// The approval request id (`cordon approve ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// Names of the secrets injected into the call; never their values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Connection id within the session (per call for a tool's proxy); a
    /// `connect` and its `connect_end` share it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<u64>,
    /// The host a connection asked for (a name or a literal address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The address the proxy connected to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Bytes from the sandbox to the remote host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_up: Option<u64>,
    /// Bytes from the remote host to the sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_down: Option<u64>,
    /// On a `call_end`: the raw secrets of the call found (in some form)
    /// in files it changed where the agent can read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaked: Option<Vec<String>>,
    /// Those files (at most 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaked_to: Option<Vec<String>>,
    /// Why the leak scan did not read every changed file, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leak_scan: Option<String>,
}

/// The workload identity of a session:
/// `spiffe://cordon.local/profile/<name>/session/<id>`.
pub fn identity(profile: &str, session: &str) -> String {
    format!("spiffe://cordon.local/profile/{profile}/session/{session}")
}

/// Builder-style setters for the optional fields: `rec.tool("git")`.
macro_rules! setters {
    ($($field:ident: $ty:ty),* $(,)?) => {
        $(
            #[doc = concat!("Sets `", stringify!($field), "`.")]
            #[must_use]
            pub fn $field(mut self, value: impl Into<$ty>) -> Self {
                self.$field = Some(value.into());
                self
            }
        )*
    };
}

impl Record {
    /// A record stamped with the current time. Until [`Record::profile`]
    /// names the profile, the identity has no profile part
    /// (`spiffe://cordon.local/session/<id>`), e.g. for a refused peer.
    pub fn new(kind: Kind, session: &str) -> Record {
        Record {
            kind,
            time: super::time::now(),
            session: session.to_owned(),
            identity: format!("spiffe://cordon.local/session/{session}"),
            profile: None,
            chain: None,
            intent: None,
            call: None,
            via_call: None,
            tool: None,
            argv: None,
            argc: None,
            argv_len: None,
            argv_sha256: None,
            canonical: None,
            cwd: None,
            cwd_sha256: None,
            decision: None,
            rule: None,
            policies: None,
            reason: None,
            approver: None,
            approved_at: None,
            approval: None,
            secrets: None,
            pid: None,
            duration_ms: None,
            exit: None,
            signal: None,
            detail: None,
            connection: None,
            host: None,
            port: None,
            address: None,
            bytes_up: None,
            bytes_down: None,
            leaked: None,
            leaked_to: None,
            leak_scan: None,
        }
    }

    /// Sets the profile name and the identity that follows from it.
    #[must_use]
    pub fn profile(mut self, name: &str) -> Self {
        self.identity = identity(name, &self.session);
        self.profile = Some(name.to_owned());
        self
    }

    /// Sets `argv` from raw argument bytes, escaped by [`argv_text`],
    /// with the count, total length and digest of the exact bytes.
    #[must_use]
    pub fn argv_bytes(mut self, args: &[&[u8]]) -> Self {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for a in args {
            h.update(a);
            h.update([0u8]);
        }
        self.argv = Some(argv_text(args));
        self.argc = Some(u32::try_from(args.len()).unwrap_or(u32::MAX));
        self.argv_len = Some(args.iter().map(|a| a.len() as u64).sum());
        self.argv_sha256 = Some(super::hex(&h.finalize()));
        self
    }

    /// Sets `cwd` from its exact bytes (escaped like an argument), with
    /// their digest.
    #[must_use]
    pub fn cwd_bytes(mut self, cwd: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        self.cwd = Some(escape_bytes(cwd));
        self.cwd_sha256 = Some(super::hex(&Sha256::digest(cwd)));
        self
    }

    /// Sets `canonical` from the canonical argument bytes, escaped by
    /// [`argv_text`].
    #[must_use]
    pub fn canonical_bytes(mut self, args: &[Vec<u8>]) -> Self {
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        self.canonical = Some(argv_text(&args));
        self
    }

    setters! {
        intent: String, chain: Vec<String>, call: u64, via_call: u64, tool: String, argv: Vec<String>, canonical: Vec<String>,
        cwd: String, decision: Decision, rule: String, policies: Vec<String>, reason: String,
        approver: String, approved_at: String, approval: String, secrets: Vec<String>, pid: u32,
        duration_ms: u64, exit: i32, signal: i32, detail: String, connection: u64, host: String,
        port: u16, address: String, bytes_up: u64, bytes_down: u64, leaked: Vec<String>,
        leaked_to: Vec<String>, leak_scan: String,
    }
}

/// Arguments as text, faithful to their bytes: valid UTF-8 is kept as is,
/// each invalid byte becomes `\xNN`, and a literal backslash becomes `\\`
/// so the escaping is unambiguous (`\x41` typed by the agent is `\\x41`).
pub fn argv_text(args: &[&[u8]]) -> Vec<String> {
    args.iter().map(|a| escape_bytes(a)).collect()
}

fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_escapes_only_what_it_must() {
        let args: [&[u8]; 4] = [b"push", b"caf\xc3\xa9", b"a\xffb\xc3", br"C:\x41"];
        assert_eq!(
            argv_text(&args),
            ["push", "café", r"a\xffb\xc3", r"C:\\x41"].map(String::from)
        );
    }

    #[test]
    fn none_fields_are_omitted_and_kind_is_snake_case() {
        let r = Record::new(Kind::CallEnd, "ab").profile("p").call(3u64);
        let json = serde_json::to_string(&r).unwrap_or_default();
        assert!(json.starts_with(r#"{"kind":"call_end","time":""#), "{json}");
        assert!(json.ends_with(
            r#""session":"ab","identity":"spiffe://cordon.local/profile/p/session/ab","profile":"p","call":3}"#
        ), "{json}");
    }

    #[test]
    fn argv_digest_is_of_the_exact_bytes_whatever_is_shown() {
        let r = Record::new(Kind::Call, "ab")
            .argv_bytes(&[b"push", b"\xfe", b""])
            .cwd_bytes(b"/w");
        assert_eq!(r.argc, Some(3));
        assert_eq!(r.argv_len, Some(5));
        // printf 'push\0\xfe\0\0' | sha256sum
        let mut h = <sha2::Sha256 as sha2::Digest>::new();
        sha2::Digest::update(&mut h, b"push\0\xfe\0\0");
        assert_eq!(
            r.argv_sha256.as_deref(),
            Some(crate::audit::hex(&sha2::Digest::finalize(h)).as_str())
        );
        // Other bytes, other digest: a NUL-free split cannot collide.
        let other = Record::new(Kind::Call, "ab").argv_bytes(&[b"pus", b"h\xfe", b""]);
        assert_ne!(other.argv_sha256, r.argv_sha256);
        assert_eq!(r.cwd_sha256.as_ref().map(String::len), Some(64));
    }

    #[test]
    fn round_trips() {
        let r = Record::new(Kind::Call, "ab")
            .tool("git")
            .argv_bytes(&[b"push", b"\xfe"])
            .secrets(vec!["GITHUB_TOKEN".to_owned()])
            .exit(-1);
        let json = serde_json::to_string(&r).unwrap_or_default();
        let back: Record = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(back, r);
    }
}
