//! HTTPS for the model server (`--tls-ca FILE`): a root made at start-up,
//! written to FILE for whoever must trust the server (cordon's
//! `SSL_CERT_FILE`, or a bare CLI's `NODE_EXTRA_CA_CERTS`), and a leaf for
//! `localhost` and `127.0.0.1` signed by it. HTTP/1.1 only, as the vendor
//! APIs are reached through cordon's proxy.

use std::sync::Arc;

pub fn server_config(ca_file: &str) -> Result<Arc<rustls::ServerConfig>, String> {
    let err = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    let ca_key = rcgen::KeyPair::generate().map_err(|e| err("CA key", &e))?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| err("CA parameters", &e))?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "cordon-model-server root");
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| err("CA", &e))?;
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = rcgen::KeyPair::generate().map_err(|e| err("leaf key", &e))?;
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .map_err(|e| err("leaf parameters", &e))?
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| err("leaf", &e))?;
    std::fs::write(ca_file, ca_cert.pem()).map_err(|e| err(ca_file, &e))?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| err("TLS versions", &e))?
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .map_err(|e| err("TLS certificate", &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
