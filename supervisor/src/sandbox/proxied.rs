//! A session's part in proxy-delivered secrets (`deliver = "proxy"`):
//! its TLS (one session CA for every sandbox of the session, made only
//! when the profile has such a secret), the CA bundle its clients trust,
//! and what a sandbox whose proxy injects gets: read access to the
//! bundle, the variables that point clients at it, and a placeholder for
//! each of its secrets.
//!
//! The bundle is the roots cordon itself trusts upstream followed by the
//! session CA: `SSL_CERT_FILE` and the like *replace* an OpenSSL client's
//! default bundle, so without the system roots every host the proxy does
//! not open would fail. Those roots are the file named by cordon's own
//! `SSL_CERT_FILE` when it is set (a corporate bundle, a test's CA), else
//! the system's bundle ([`crate::egress::tls::SYSTEM_ROOTS`]).

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::PlanError;
use crate::egress::tls::{Tls, TlsError, SYSTEM_ROOTS};
use crate::profile::{Location, PathRule, PathTemplate, Profile};
use crate::secrets::Placeholder;

/// The bundle's name in the session directory.
pub const BUNDLE_FILE: &str = "ca-bundle.pem";

/// The variables an injecting sandbox gets, each naming the bundle:
/// OpenSSL (curl, git's libcurl, Python's ssl), curl's own, git's,
/// Python requests', and Node's (which *adds* them to its built-in roots).
pub const CA_VARIABLES: [&str; 5] = [
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
];

/// The session's TLS and the bundle written for its clients.
#[derive(Debug, Clone)]
pub struct SessionTls {
    pub tls: Arc<Tls>,
    /// `<session>/ca-bundle.pem`.
    pub bundle: PathBuf,
}

/// Why the session's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ProxiedError {
    #[error("{0}; proxy-delivered secrets need it (set SSL_CERT_FILE in cordon's environment to a PEM bundle of the roots to trust)")]
    Tls(#[from] TlsError),
    #[error("cannot write the session's CA bundle {}: {source}", path.display())]
    Bundle {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Every host a proxy-delivered secret of `profile` names (lower case,
/// sorted, once each).
pub fn injecting_hosts(profile: &Profile) -> Vec<String> {
    let mut hosts: Vec<String> = profile
        .secrets
        .values()
        .filter_map(|s| s.proxy.as_ref())
        .flat_map(|p| p.targets().into_iter().map(|(h, _)| h))
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The roots cordon trusts toward real hosts: `SSL_CERT_FILE` in its own
/// environment, else the system bundle.
pub fn upstream_roots(caller_env: &dyn Fn(&str) -> Option<OsString>) -> PathBuf {
    caller_env("SSL_CERT_FILE")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(SYSTEM_ROOTS), PathBuf::from)
}

/// The session CA for `profile`'s injecting hosts and its bundle, written
/// to `root` (the session directory, 0700); `None` when no secret of the
/// profile is proxy-delivered.
pub fn prepare(
    profile: &Profile,
    session_id: &str,
    root: &Path,
    caller_env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Option<SessionTls>, ProxiedError> {
    let hosts = injecting_hosts(profile);
    if hosts.is_empty() {
        return Ok(None);
    }
    let roots = upstream_roots(caller_env);
    let tls = Tls::new(session_id, &hosts, &roots)?;
    let bytes = tls.bundle(&roots)?;
    let bundle = root.join(BUNDLE_FILE);
    // A new file, read-only: no sandbox is granted more than reading it.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(&bundle)
        .and_then(|mut f| f.write_all(&bytes));
    written.map_err(|source| ProxiedError::Bundle {
        path: bundle.clone(),
        source,
    })?;
    Ok(Some(SessionTls {
        tls: Arc::new(tls),
        bundle,
    }))
}

/// The read grant on the bundle for a sandbox whose proxy injects.
pub fn bundle_rule(bundle: &Path) -> Result<PathRule, PlanError> {
    Ok(PathRule {
        path: PathTemplate::parse(&bundle.to_string_lossy())
            .map_err(|_| PlanError::Nul(bundle.display().to_string()))?,
        optional: false,
        origin: Location::whole_file(Path::new("<cordon: the session's CA bundle>")),
    })
}

/// Points `env`'s clients at `bundle` (a value passed in for one of the
/// variables is replaced).
pub fn set_ca_variables(env: &mut Vec<(String, String)>, bundle: &Path) {
    env.retain(|(k, _)| !CA_VARIABLES.contains(&k.as_str()));
    let b = bundle.display().to_string();
    env.extend(CA_VARIABLES.iter().map(|v| (v.to_string(), b.clone())));
}

/// Sets `NAME=placeholder` for each of `secrets` (replacing any value of
/// the same name).
pub fn set_placeholders(env: &mut Vec<(String, String)>, secrets: &[(String, Placeholder)]) {
    env.retain(|(k, _)| !secrets.iter().any(|(n, _)| n == k));
    env.extend(
        secrets
            .iter()
            .map(|(n, p)| (n.clone(), p.as_str().to_string())),
    );
}

/// A fresh placeholder for each of `names`.
pub fn placeholders(names: &[String]) -> Result<Vec<(String, Placeholder)>, crate::sys::Errno> {
    names
        .iter()
        .map(|n| Ok((n.clone(), Placeholder::generate()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variables_replace_what_was_passed_and_placeholders_their_names() {
        let mut env = vec![
            ("PATH".to_string(), "/usr/bin".to_string()),
            ("SSL_CERT_FILE".to_string(), "/evil.pem".to_string()),
            ("API_KEY".to_string(), "raw".to_string()),
        ];
        set_ca_variables(&mut env, Path::new("/s/ca-bundle.pem"));
        let ph = Placeholder::from_random([7; 20]);
        set_placeholders(&mut env, &[("API_KEY".into(), ph.clone())]);
        assert!(!env.iter().any(|(_, v)| v == "/evil.pem" || v == "raw"));
        for v in CA_VARIABLES {
            let got: Vec<&str> = env
                .iter()
                .filter(|(k, _)| k == v)
                .map(|(_, x)| x.as_str())
                .collect();
            assert_eq!(got, ["/s/ca-bundle.pem"], "{v}");
        }
        assert!(env.contains(&("API_KEY".into(), ph.as_str().into())));
        assert_eq!(env.len(), 1 + CA_VARIABLES.len() + 1);
    }

    #[test]
    fn the_upstream_roots_are_cordons_own_ssl_cert_file_or_the_systems() {
        let set = |_: &str| Some(OsString::from("/etc/corp.pem"));
        assert_eq!(upstream_roots(&set), PathBuf::from("/etc/corp.pem"));
        let empty = |_: &str| Some(OsString::new());
        assert_eq!(upstream_roots(&empty), PathBuf::from(SYSTEM_ROOTS));
        assert_eq!(upstream_roots(&|_| None), PathBuf::from(SYSTEM_ROOTS));
    }

    #[test]
    fn a_profile_without_proxy_secrets_gets_no_ca() {
        let p = crate::profile::load_text(Path::new("p.toml"), "[profile]\nname = \"p\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let got = prepare(&p, "id", dir.path(), &|_| None).unwrap_or_else(|e| panic!("{e}"));
        assert!(got.is_none());
        assert!(!dir.path().join(BUNDLE_FILE).exists());
    }
}
