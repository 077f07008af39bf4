//! `cordon learn`: a least-privilege profile written from one observed run.
//!
//! The command runs under the learn seccomp filter (every open, exec,
//! connect and bind is a user notification the supervisor records and
//! lets continue; no Landlock, no masks), in a pid namespace so its whole
//! tree ends with it, with the same clean environment and private HOME
//! and TMPDIR `cordon run` gives. What it did is then generalised into a
//! profile:
//!
//! - [`observe`]: notifications to accesses (reads the caller's memory);
//! - [`classify`]: which programs become brokered tools (pure);
//! - [`argv`]: argv patterns from the calls seen (pure);
//! - [`grants`]: paths to grants (resolves paths, reads ELF headers);
//! - [`render`]: the TOML text (pure).

pub mod argv;
pub mod classify;
pub mod grants;
pub mod observe;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

pub use observe::Recorder;
pub use render::{write_profile, Base, Learned, Setting};

/// What one process tree (the agent's, or one tool's runs) touched.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Access {
    pub read: BTreeSet<PathBuf>,
    pub write: BTreeSet<PathBuf>,
    pub exec: BTreeSet<PathBuf>,
    pub connect: BTreeSet<u16>,
    pub bind: BTreeSet<u16>,
}

/// A program the agent ran that becomes a brokered tool.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ToolRun {
    /// The program as executed (resolved when the profile is written).
    pub path: PathBuf,
    /// Each call's arguments, after argv[0].
    pub calls: Vec<Vec<String>>,
    /// What the tool's processes touched.
    pub access: Access,
}

/// A connection through the recording proxy (`cordon learn --hosts`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostSeen {
    /// The name (or literal address) the client asked for.
    pub host: String,
    pub port: u16,
    /// Internal addresses it resolved to (they need `via`).
    pub internal: Vec<std::net::IpAddr>,
}

/// Everything an observed run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Observations {
    pub agent: Access,
    /// Hosts reached through the proxy (only with `--hosts`).
    pub hosts: BTreeSet<HostSeen>,
    pub tools: BTreeMap<String, ToolRun>,
    /// The command's own program (the first exec).
    pub first_program: Option<PathBuf>,
}

/// Names of variables that look like credentials.
pub fn looks_like_credential(name: &str) -> bool {
    const WORDS: [&str; 10] = [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "API_KEY",
        "APIKEY",
        "ACCESS_KEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
        "AUTH",
    ];
    let upper = name.to_ascii_uppercase();
    WORDS.iter().any(|w| upper.contains(w)) && !upper.contains("AUTHOR")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names() {
        for n in [
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "db_password",
            "OPENAI_API_KEY",
            "NPM_AUTH",
        ] {
            assert!(looks_like_credential(n), "{n}");
        }
        for n in ["PATH", "HOME", "GIT_AUTHOR_NAME", "LANG", "TERM"] {
            assert!(!looks_like_credential(n), "{n}");
        }
    }
}
