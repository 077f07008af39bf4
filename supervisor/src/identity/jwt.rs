//! Compact JWS (RFC 7515) for ES256 only: `header.payload.signature`,
//! each part base64url without padding.
//!
//! Only the algorithm cordon signs with is accepted: `alg` must be
//! `ES256` (never `none`, never an HMAC a public key could be misused
//! as), a `crit` header is refused (no extension is understood), and a
//! key embedded in the header (`jwk`, `jku`, `x5u`, `x5c`) is never
//! used: keys come from the verifier's JWKS alone.

use serde::{Deserialize, Serialize};

use super::{b64, unb64, MAX_TOKEN};

/// The protected header cordon writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Present only to be refused.
    #[serde(default, skip_serializing)]
    pub crit: Option<serde_json::Value>,
}

/// Why bytes are not a token cordon can check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the token is {0} bytes; at most {MAX_TOKEN} are accepted")]
    TooLarge(usize),
    #[error("a compact JWS has three parts separated by `.`; this has {0}")]
    Parts(usize),
    #[error("the {0} is not base64url without padding")]
    Encoding(&'static str),
    #[error("the header is not a JSON object with a string `alg` ({0})")]
    Header(String),
    #[error("the payload is not a JSON object of JWT claims ({0})")]
    Claims(String),
    #[error("algorithm `{0}` is refused; only ES256 is accepted")]
    Algorithm(String),
    #[error("the header has `crit`, and no JWS extension is understood")]
    Critical,
    #[error("the header names no `kid`")]
    NoKid,
    #[error("the signature is {0} bytes; ES256 signatures are 64")]
    SignatureLength(usize),
}

/// A token split into its parts, its header checked, nothing verified.
#[derive(Debug)]
pub struct Parsed {
    pub header: Header,
    /// `header.payload` as sent: the bytes the signature covers.
    pub signing_input: String,
    pub payload: Vec<u8>,
    pub signature: [u8; 64],
}

/// Signs `claims` with `kid`'s `sign` into a compact token.
pub fn encode(
    kid: &str,
    claims: &impl Serialize,
    sign: impl FnOnce(&[u8]) -> [u8; 64],
) -> Result<String, serde_json::Error> {
    let header = Header {
        alg: "ES256".into(),
        kid: Some(kid.to_string()),
        typ: Some("JWT".into()),
        crit: None,
    };
    let mut input = b64(&serde_json::to_vec(&header)?);
    input.push('.');
    input.push_str(&b64(&serde_json::to_vec(claims)?));
    let sig = sign(input.as_bytes());
    input.push('.');
    input.push_str(&b64(&sig));
    Ok(input)
}

/// Splits and decodes `token`, and checks its header.
pub fn parse(token: &str) -> Result<Parsed, FormatError> {
    if token.len() > MAX_TOKEN {
        return Err(FormatError::TooLarge(token.len()));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err(FormatError::Parts(parts.len()));
    };
    let header = unb64(h).ok_or(FormatError::Encoding("header"))?;
    let payload = unb64(p).ok_or(FormatError::Encoding("payload"))?;
    let sig = unb64(s).ok_or(FormatError::Encoding("signature"))?;
    let header: Header =
        serde_json::from_slice(&header).map_err(|e| FormatError::Header(e.to_string()))?;
    if header.alg != "ES256" {
        return Err(FormatError::Algorithm(
            header.alg.escape_debug().to_string(),
        ));
    }
    if header.crit.is_some() {
        return Err(FormatError::Critical);
    }
    if header.kid.is_none() {
        return Err(FormatError::NoKid);
    }
    let signature: [u8; 64] = sig
        .as_slice()
        .try_into()
        .map_err(|_| FormatError::SignatureLength(sig.len()))?;
    Ok(Parsed {
        header,
        signing_input: format!("{h}.{p}"),
        payload,
        signature,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    fn token(header: &str, payload: &str, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            b64(header.as_bytes()),
            b64(payload.as_bytes()),
            b64(sig)
        )
    }

    #[test]
    fn encode_then_parse() {
        let t = encode("k1", &serde_json::json!({"sub": "x"}), |_| [7u8; 64]).unwrap();
        let p = parse(&t).unwrap();
        assert_eq!(p.header.kid.as_deref(), Some("k1"));
        assert_eq!(p.header.typ.as_deref(), Some("JWT"));
        assert_eq!(p.payload, br#"{"sub":"x"}"#);
        assert_eq!(p.signature, [7u8; 64]);
        assert_eq!(t.rsplit_once('.').unwrap().0, p.signing_input);
    }

    #[test]
    fn hostile_shapes_are_refused_without_panics() {
        let sig = [1u8; 64];
        let cases: Vec<(String, FormatError)> = vec![
            ("a.b".into(), FormatError::Parts(2)),
            ("a.b.c.d".into(), FormatError::Parts(4)),
            ("".into(), FormatError::Parts(1)),
            (
                "x".repeat(MAX_TOKEN + 1),
                FormatError::TooLarge(MAX_TOKEN + 1),
            ),
            ("!!.e30.AA".into(), FormatError::Encoding("header")),
            // Padding is not base64url-without-padding.
            (
                format!(
                    "{}=.e30.{}",
                    b64(br#"{"alg":"ES256","kid":"k"}"#),
                    b64(&sig)
                ),
                FormatError::Encoding("header"),
            ),
            (
                token(r#"{"alg":"none","kid":"k"}"#, "{}", &sig),
                FormatError::Algorithm("none".into()),
            ),
            (
                token(r#"{"alg":"HS256","kid":"k"}"#, "{}", &sig),
                FormatError::Algorithm("HS256".into()),
            ),
            (
                token(r#"{"alg":"ES256","kid":"k","crit":["b64"]}"#, "{}", &sig),
                FormatError::Critical,
            ),
            (token(r#"{"alg":"ES256"}"#, "{}", &sig), FormatError::NoKid),
            (
                token(r#"{"alg":"ES256","kid":"k"}"#, "{}", &[1u8; 63]),
                FormatError::SignatureLength(63),
            ),
        ];
        for (t, want) in cases {
            let got = parse(&t).map(|_| ()).unwrap_err();
            assert_eq!(got, want, "{t:.80}");
        }
        let e = parse(&token("[1]", "{}", &sig)).map(|_| ()).unwrap_err();
        assert!(matches!(e, FormatError::Header(_)), "{e}");
    }
}
