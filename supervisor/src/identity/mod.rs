//! A workload identity that the systems an agent calls can verify.
//!
//! cordon holds one ES256 signing key (generated in its state directory on
//! first use, or given as the systemd credential `identity-key`) and mints
//! short-lived JWT-SVID-shaped tokens with it: `sub` is the session's
//! SPIFFE ID, `aud` what the profile names, `exp` within the secret's
//! `ttl`, plus claims binding the token to the profile, the intent, and
//! (when a rule asks) the one call it was minted for. `cordon identity
//! jwks` prints the public keys a relying party needs.
//!
//! - [`key`]: the signing key: generation, storage (0600), loading.
//! - [`jwk`]: the public key as a JWK, its RFC 7638 thumbprint (the `kid`).
//! - [`jwt`]: compact JWS encoding and decoding, ES256 only.
//! - [`claims`]: what a token says, and minting one for a session or call.
//! - [`verify`]: checking a token: signature, `aud`, `exp`/`nbf`, and a
//!   `jti` replay cache.
//!
//! Why ES256 (p256): the JWT-SVID specification allows RS*, ES* and PS*
//! only (not EdDSA), and ES256 is the one every JWT library verifies; the
//! RustCrypto `p256` crate is pure Rust (no C or assembly to build), signs
//! deterministically (RFC 6979, so no random source at signing time) and
//! shares its `sha2` with the rest of cordon.

pub mod claims;
pub mod jwk;
pub mod jwt;
pub mod key;
pub mod verify;

pub use claims::{Binding, CallBinding, Claims, Issuer, MintError};
pub use jwk::{Jwk, Jwks};
pub use key::{KeyError, SigningKey, KEY_CREDENTIAL, KEY_FILE};
pub use verify::{Expect, ReplayCache, Verifier, VerifyError};

/// The SPIFFE trust domain of every cordon identity.
pub const TRUST_DOMAIN: &str = "spiffe://cordon.local";

/// The longest token cordon mints or accepts, in bytes.
pub const MAX_TOKEN: usize = 8 * 1024;

/// The longest lifetime of a minted token.
pub const MAX_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Seconds since the epoch, now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `bytes` in base64url without padding (RFC 7515's encoding).
pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; padding, other alphabets and
/// non-canonical trailing bits are refused.
pub(crate) fn unb64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}
