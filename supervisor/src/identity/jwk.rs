//! The public key as a JSON Web Key (RFC 7517), and the key id: the JWK's
//! SHA-256 thumbprint (RFC 7638), so a `kid` names exactly one key.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{b64, unb64};

/// One P-256 public key, as a JWKS lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    /// The affine coordinates, 32 bytes each, base64url.
    pub x: String,
    pub y: String,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

/// `{"keys": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// Why a JWK cannot be used to verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    #[error("key `{kid}`: only EC P-256 keys are accepted, got kty `{kty}` crv `{crv}`")]
    Unsupported {
        kid: String,
        kty: String,
        crv: String,
    },
    #[error("key `{kid}`: `x`/`y` are not 32-byte base64url coordinates")]
    Coordinates { kid: String },
    #[error("key `{kid}`: the coordinates are not a point on P-256")]
    NotOnCurve { kid: String },
    #[error("key `{kid}`: its `kid` is not its RFC 7638 thumbprint `{thumbprint}`")]
    Kid { kid: String, thumbprint: String },
}

impl Jwk {
    /// The JWK of `key`, with its thumbprint as `kid`.
    pub fn of(key: &p256::ecdsa::VerifyingKey) -> Jwk {
        let point = key.to_encoded_point(false);
        // An uncompressed point always has both coordinates.
        let coord = |c: Option<&p256::FieldBytes>| c.map(|b| b64(b)).unwrap_or_default();
        let x = coord(point.x());
        let y = coord(point.y());
        let kid = thumbprint(&x, &y);
        Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x,
            y,
            kid,
            alg: Some("ES256".into()),
            use_: Some("sig".into()),
        }
    }

    /// The key this JWK describes; its `kid` must be its thumbprint (a
    /// JWKS cannot give one key's id to another).
    pub fn verifying_key(&self) -> Result<p256::ecdsa::VerifyingKey, JwkError> {
        if self.kty != "EC" || self.crv != "P-256" {
            return Err(JwkError::Unsupported {
                kid: self.kid.clone(),
                kty: self.kty.clone(),
                crv: self.crv.clone(),
            });
        }
        let coord = |c: &str| {
            unb64(c)
                .filter(|b| b.len() == 32)
                .ok_or_else(|| JwkError::Coordinates {
                    kid: self.kid.clone(),
                })
        };
        let (x, y) = (coord(&self.x)?, coord(&self.y)?);
        let point = p256::EncodedPoint::from_affine_coordinates(
            p256::FieldBytes::from_slice(&x),
            p256::FieldBytes::from_slice(&y),
            false,
        );
        let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point).map_err(|_| {
            JwkError::NotOnCurve {
                kid: self.kid.clone(),
            }
        })?;
        let expected = thumbprint(&self.x, &self.y);
        if expected != self.kid {
            return Err(JwkError::Kid {
                kid: self.kid.clone(),
                thumbprint: expected,
            });
        }
        Ok(key)
    }
}

/// RFC 7638: SHA-256 over the required members in lexical order, no
/// whitespace, base64url.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    b64(&Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint_of_a_known_key() {
        // The P-256 key of RFC 7515 appendix A.3; the expected value was
        // computed with Python's hashlib over the RFC 7638 member order.
        let x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
        let y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
        let tp = thumbprint(x, y);
        assert_eq!(tp, "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
        let jwk = Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: x.into(),
            y: y.into(),
            kid: tp,
            alg: None,
            use_: None,
        };
        assert!(jwk.verifying_key().is_ok());
    }

    #[test]
    fn a_jwk_round_trips_and_refuses_a_borrowed_kid() {
        let key = super::super::SigningKey::ephemeral().unwrap();
        let jwk = key.jwk().clone();
        let json = serde_json::to_string(&jwk).unwrap();
        assert!(json.contains(r#""use":"sig""#), "{json}");
        let back: Jwk = serde_json::from_str(&json).unwrap();
        assert!(back.verifying_key().is_ok());
        let other = super::super::SigningKey::ephemeral().unwrap();
        let mut lying = other.jwk().clone();
        lying.kid = jwk.kid.clone();
        assert!(matches!(lying.verifying_key(), Err(JwkError::Kid { .. })));
        let mut off = jwk.clone();
        off.y = off.x.clone();
        assert!(off.verifying_key().is_err());
        let mut rsa = jwk;
        rsa.kty = "RSA".into();
        assert!(matches!(
            rsa.verifying_key(),
            Err(JwkError::Unsupported { .. })
        ));
    }
}
