//! What a cordon token says, and minting one.
//!
//! The registered claims are JWT-SVID's (`sub` a SPIFFE ID, `aud`, `exp`)
//! plus `iss`, `iat`, `nbf` and a `jti` that a relying party can use to
//! refuse a replay. cordon's own claims bind the token to what it was
//! minted for: the session and profile, the digest of the session's
//! intent, its ancestors, and for a call-bound token the call id, the
//! tool and the digest of the call's exact arguments.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use super::key::SigningKey;
use super::{jwt, MAX_TTL, TRUST_DOMAIN};
use crate::audit::hex;

/// A token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub iss: String,
    pub sub: String,
    /// Always written as an array; a single string is accepted.
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub exp: u64,
    #[serde(default)]
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default)]
    pub jti: String,
    #[serde(default)]
    pub session: String,
    #[serde(default)]
    pub profile: String,
    /// SHA-256 (hex) of the session's `--intent` text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_sha256: Option<String>,
    /// The ancestor sessions of a sub-agent, root first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    /// The call this token was minted for, when it is bound to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// SHA-256 (hex) of the call's exact arguments: the argv bytes as the
    /// audit record digests them, or an MCP call's canonical JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv_sha256: Option<String>,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// Who a token is for: the session, and the call when it is call-bound.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub session: &'a str,
    pub profile: &'a str,
    pub intent: Option<&'a str>,
    pub chain: &'a [String],
    pub call: Option<CallBinding<'a>>,
}

/// The one call a token is bound to.
#[derive(Debug, Clone, Copy)]
pub struct CallBinding<'a> {
    pub id: u64,
    pub tool: &'a str,
    /// SHA-256 (hex) of the exact arguments.
    pub argv_sha256: &'a str,
}

/// Why no token could be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("a token needs at least one audience")]
    NoAudience,
    #[error("a token's lifetime must be 1s to 1h, got {0:?}")]
    Ttl(Duration),
    #[error("the kernel's random source failed: {0}")]
    Random(String),
    #[error("encoding the token: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Mints tokens with cordon's signing key.
#[derive(Debug)]
pub struct Issuer {
    key: SigningKey,
}

impl Issuer {
    pub fn new(key: SigningKey) -> Issuer {
        Issuer { key }
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// A token for `binding`, valid from `now` (seconds since the epoch)
    /// for `ttl`, for `audiences`. Returns it with its claims.
    pub fn mint(
        &self,
        binding: &Binding<'_>,
        audiences: &[String],
        ttl: Duration,
        now: u64,
    ) -> Result<(String, Claims), MintError> {
        if audiences.is_empty() {
            return Err(MintError::NoAudience);
        }
        if ttl.as_secs() == 0 || ttl > MAX_TTL {
            return Err(MintError::Ttl(ttl));
        }
        let mut jti = [0u8; 16];
        crate::sys::getrandom(&mut jti).map_err(|e| MintError::Random(e.to_string()))?;
        let claims = Claims {
            iss: TRUST_DOMAIN.to_string(),
            sub: crate::audit::identity(binding.profile, binding.session),
            aud: audiences.to_vec(),
            exp: now + ttl.as_secs(),
            iat: now,
            nbf: Some(now),
            jti: hex(&jti),
            session: binding.session.to_string(),
            profile: binding.profile.to_string(),
            intent_sha256: binding.intent.map(|i| hex(&Sha256::digest(i.as_bytes()))),
            chain: binding.chain.to_vec(),
            call: binding.call.map(|c| c.id),
            tool: binding.call.map(|c| c.tool.to_string()),
            argv_sha256: binding.call.map(|c| c.argv_sha256.to_string()),
        };
        let token = jwt::encode(self.key.kid(), &claims, |m| self.key.sign(m))?;
        Ok((token, claims))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    #[test]
    fn claims_bind_the_session_and_the_call() {
        let issuer = Issuer::new(SigningKey::ephemeral().unwrap());
        let chain = vec!["root".to_string()];
        let b = Binding {
            session: "abc",
            profile: "coding-agent",
            intent: Some("fix the build"),
            chain: &chain,
            call: Some(CallBinding {
                id: 7,
                tool: "fs/write_file",
                argv_sha256: "00ff",
            }),
        };
        let aud = vec!["https://api.example.com".to_string()];
        let (token, c) = issuer
            .mint(&b, &aud, Duration::from_secs(60), 1000)
            .unwrap();
        assert_eq!(
            c.sub,
            "spiffe://cordon.local/profile/coding-agent/session/abc"
        );
        assert_eq!((c.iat, c.nbf, c.exp), (1000, Some(1000), 1060));
        assert_eq!(c.call, Some(7));
        assert_eq!(c.tool.as_deref(), Some("fs/write_file"));
        assert_eq!(c.chain, chain);
        assert_eq!(c.jti.len(), 32);
        // The intent is only digested, never carried.
        assert!(!token.contains("fix"));
        let payload = jwt::parse(&token).unwrap().payload;
        let back: Claims = serde_json::from_slice(&payload).unwrap();
        assert_eq!(back, c);
        // Two tokens for the same binding differ in their jti.
        let (_, c2) = issuer
            .mint(&b, &aud, Duration::from_secs(60), 1000)
            .unwrap();
        assert_ne!(c.jti, c2.jti);
    }

    #[test]
    fn bad_lifetimes_and_audiences_are_refused() {
        let issuer = Issuer::new(SigningKey::ephemeral().unwrap());
        let b = Binding {
            session: "s",
            profile: "p",
            intent: None,
            chain: &[],
            call: None,
        };
        let aud = vec!["a".to_string()];
        assert!(matches!(
            issuer.mint(&b, &[], Duration::from_secs(5), 0),
            Err(MintError::NoAudience)
        ));
        assert!(matches!(
            issuer.mint(&b, &aud, Duration::ZERO, 0),
            Err(MintError::Ttl(_))
        ));
        assert!(matches!(
            issuer.mint(&b, &aud, MAX_TTL + Duration::from_secs(1), 0),
            Err(MintError::Ttl(_))
        ));
    }

    #[test]
    fn a_single_string_audience_is_read() {
        let c: Claims = serde_json::from_str(r#"{"sub":"s","aud":"x","exp":5}"#).unwrap();
        assert_eq!(c.aud, vec!["x".to_string()]);
    }
}
