//! TLS for the injecting path: a per-session certificate authority made
//! in memory, a leaf certificate per injecting host, and the client side
//! toward the real host, verified against the system's roots.
//!
//! The CA is X.509 name-constrained to the injecting hosts (RFC 5280
//! `permittedSubtrees` of dNSName): even a client that trusts it, and
//! even someone who got hold of its key, can only be shown certificates
//! for those names; OpenSSL, GnuTLS, rustls and Go all enforce the
//! constraint. Its key never leaves this process: there is no file, and
//! the certificate handed to clients is the public half only.
//!
//! Both sides speak HTTP/1.1 only (ALPN `http/1.1`): the injector reads
//! and rewrites each request head, which HTTP/2's compressed, multiplexed
//! frames would hide. A client that offers only `h2` fails the handshake.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SerialNumber,
};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Debian's bundle of the system's trusted roots (what OpenSSL clients
/// read by default there).
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The one application protocol spoken on either side.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";
/// How long the session CA and its leaves are valid. A session is
/// expected to end long before; certificates are never reused across
/// sessions, so a long validity gives nothing to anyone else.
const VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Tolerated clock difference with the client.
const BACKDATE: Duration = Duration::from_secs(3600);

/// Why TLS could not be set up (never about a request).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("egress: cannot make the session CA: {0}")]
    Ca(rcgen::Error),
    #[error("egress: cannot make a certificate for {host}: {source}")]
    Leaf { host: String, source: rcgen::Error },
    #[error("egress: {host} is not a host this session's CA may sign for (its injecting hosts: {hosts})")]
    NotConstrained { host: String, hosts: String },
    #[error("egress: cannot read the CA bundle {}: {source}", path.display())]
    Roots {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("egress: the CA bundle {} holds no usable certificate", path.display())]
    NoRoots { path: PathBuf },
    #[error("egress: TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("egress: cannot read the kernel's random source: {0}")]
    Random(crate::sys::Errno),
}

/// The session's TLS material: its CA, leaves made on demand, and the
/// configuration toward real hosts. Shared by the agent's proxy and each
/// tool call's proxy of one session.
pub struct Tls {
    ca: Issuer<'static, KeyPair>,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    /// The names the CA is constrained to (lower case).
    hosts: Vec<String>,
    /// One key for every leaf of the session: minting a leaf is then one
    /// signature.
    leaf_key: KeyPair,
    leaves: Mutex<HashMap<String, Arc<ServerConfig>>>,
    upstream: Arc<ClientConfig>,
    provider: Arc<CryptoProvider>,
    not_before: SystemTime,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// A CA for `hosts` (exact names) named after `label` (the session
    /// id), trusting the roots in the PEM bundle at `roots` upstream
    /// ([`SYSTEM_ROOTS`] in a session; tests add their own).
    pub fn new(label: &str, hosts: &[String], roots: &Path) -> Result<Tls, TlsError> {
        Tls::with_roots(label, hosts, load_roots(roots)?)
    }

    /// Like [`Tls::new`], with the upstream roots given.
    pub fn with_roots(
        label: &str,
        hosts: &[String],
        roots: RootCertStore,
    ) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut hosts: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
        hosts.sort();
        hosts.dedup();
        let not_before = SystemTime::now() - BACKDATE;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("cordon session CA {label}"));
        params.distinguished_name.push(
            DnType::OrganizationName,
            "cordon (in memory, this session only)",
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: hosts.iter().cloned().map(GeneralSubtree::DnsName).collect(),
            excluded_subtrees: Vec::new(),
        });
        set_validity(&mut params, not_before)?;
        let key = KeyPair::generate().map_err(TlsError::Ca)?;
        let cert = params.self_signed(&key).map_err(TlsError::Ca)?;
        let upstream = client_config(&provider, roots)?;
        Ok(Tls {
            ca_pem: cert.pem(),
            ca_der: cert.der().clone(),
            ca: Issuer::new(params, key),
            hosts,
            leaf_key: KeyPair::generate().map_err(TlsError::Ca)?,
            leaves: Mutex::new(HashMap::new()),
            upstream,
            provider,
            not_before,
        })
    }

    /// The CA certificate (PEM) a client must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate (DER).
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// The names the CA may sign for.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The PEM bundle to hand to clients: the system's roots at `system`
    /// followed by the session CA. `SSL_CERT_FILE` and friends *replace*
    /// the default bundle for OpenSSL clients, so the system roots must
    /// be in it for every other host to keep working.
    pub fn bundle(&self, system: &Path) -> Result<Vec<u8>, TlsError> {
        let mut out = std::fs::read(system).map_err(|source| TlsError::Roots {
            path: system.to_path_buf(),
            source,
        })?;
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.extend_from_slice(self.ca_pem.as_bytes());
        Ok(out)
    }

    /// The server side for `host`: its leaf certificate (made once and
    /// kept), ALPN `http/1.1` only.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, TlsError> {
        let host = host.to_ascii_lowercase();
        if !self.hosts.contains(&host) {
            return Err(TlsError::NotConstrained {
                host,
                hosts: self.hosts.join(", "),
            });
        }
        let mut leaves = self.leaves.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = leaves.get(&host) {
            return Ok(Arc::clone(c));
        }
        let leaf_err = |source| TlsError::Leaf {
            host: host.clone(),
            source,
        };
        let mut params = CertificateParams::new(vec![host.clone()]).map_err(leaf_err)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, host.clone());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, self.not_before)?;
        let cert = params
            .signed_by(&self.leaf_key, &self.ca)
            .map_err(leaf_err)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone(), self.ca_der.clone()], key)?;
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        let config = Arc::new(config);
        leaves.insert(host, Arc::clone(&config));
        Ok(config)
    }

    /// The client side toward real hosts.
    pub fn upstream_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.upstream)
    }
}

/// The roots of a PEM bundle; certificates the verifier cannot use are
/// skipped (as OpenSSL does), an empty or unreadable bundle is an error.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Roots {
        path: path.to_path_buf(),
        source,
    })?;
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsError::NoRoots {
            path: path.to_path_buf(),
        });
    }
    Ok(roots)
}

fn client_config(
    provider: &Arc<CryptoProvider>,
    roots: RootCertStore,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = ClientConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// Validity from `not_before` for [`VALIDITY`], and a random serial.
fn set_validity(params: &mut CertificateParams, not_before: SystemTime) -> Result<(), TlsError> {
    let secs = |t: SystemTime| {
        let s = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        i64::try_from(s).unwrap_or(i64::MAX)
    };
    let at = |t: SystemTime| rcgen::date_time_ymd(1970, 1, 1) + time::Duration::seconds(secs(t));
    params.not_before = at(not_before);
    params.not_after = at(not_before + VALIDITY);
    let mut serial = [0u8; 16];
    crate::sys::getrandom(&mut serial).map_err(TlsError::Random)?;
    // A positive integer of at most 20 octets (RFC 5280 4.1.2.2).
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(hosts: &[&str]) -> Tls {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        // Upstream trust does not matter here: some unrelated CA.
        let mut roots = RootCertStore::empty();
        let ca = rcgen::generate_simple_self_signed(vec!["root.test".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        roots
            .add(ca.cert.der().clone())
            .unwrap_or_else(|e| panic!("{e}"));
        Tls::with_roots("t", &hosts, roots).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn leaves_are_minted_for_constrained_hosts_only_and_kept() {
        let t = tls(&["API.test", "git.test"]);
        assert_eq!(t.hosts(), ["api.test", "git.test"]);
        let a = t
            .server_config("api.test")
            .unwrap_or_else(|e| panic!("{e}"));
        let b = t
            .server_config("API.TEST")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(Arc::ptr_eq(&a, &b), "one leaf per host");
        assert_eq!(a.alpn_protocols, [b"http/1.1".to_vec()]);
        let e = t.server_config("evil.test").unwrap_err().to_string();
        assert!(
            e.contains("evil.test is not a host this session's CA may sign for"),
            "{e}"
        );
        assert!(t.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn the_bundle_is_the_system_roots_then_the_session_ca() {
        let t = tls(&["api.test"]);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let system = dir.path().join("roots.pem");
        std::fs::write(
            &system,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let b = String::from_utf8(t.bundle(&system).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_default();
        assert!(
            b.starts_with(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN"
            ),
            "{b}"
        );
        assert!(b.ends_with(t.ca_pem()));
        let e = t
            .bundle(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read the CA bundle"), "{e}");
        let e = load_roots(&system).unwrap_err().to_string();
        assert!(e.contains("holds no usable certificate"), "{e}");
    }
}
