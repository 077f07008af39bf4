//! Checking a token as a relying party would: the signature against a
//! JWKS, the audience, the validity window, and that its `jti` was not
//! seen before (a replay).
//!
//! The order matters: nothing in a token is believed before its
//! signature is checked, and a token is only remembered (for replay) once
//! everything else about it holds.

use std::collections::HashMap;
use std::sync::Mutex;

use p256::ecdsa::signature::Verifier as _;

use super::claims::Claims;
use super::jwk::{JwkError, Jwks};
use super::jwt::{self, FormatError};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const DEFAULT_LEEWAY: u64 = 30;
/// Tokens remembered at most; beyond, new tokens are refused (a replay
/// cache that forgets early would let a replay through).
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token: {0}")]
    Format(#[from] FormatError),
    #[error("signed by an unknown key `{0}` (not in the JWKS)")]
    UnknownKey(String),
    #[error("the signature does not verify: the token was changed, or signed by another key")]
    Signature,
    #[error("the claims are not a JWT-SVID's: {0}")]
    Claims(String),
    #[error("`sub` is `{0}`, not a SPIFFE ID")]
    NotSpiffe(String),
    #[error("the token is for audience {got:?}, not `{want}`")]
    Audience { want: String, got: Vec<String> },
    #[error("the token expired at {exp} (now {now})")]
    Expired { exp: u64, now: u64 },
    #[error("the token is not valid before {nbf} (now {now})")]
    NotYetValid { nbf: u64, now: u64 },
    #[error("the token has no `jti`, so a replay could not be told apart")]
    NoJti,
    #[error("the token `{0}` was already presented once (a replay)")]
    Replayed(String),
    #[error("the replay cache is full of unexpired tokens; refusing rather than forgetting one")]
    ReplayCacheFull,
    #[error("the token is bound to {claim} {got}, not {want} (minted for another call)")]
    Binding {
        claim: &'static str,
        want: String,
        got: String,
    },
}

/// What a relying party serving one call expects a call-bound token
/// (`bind=call`) to carry: a token minted for another call, another tool
/// or other arguments is refused. Each `None` is not checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    pub call: Option<u64>,
    pub tool: Option<String>,
    /// SHA-256 (hex) of the call's exact arguments, each followed by a NUL
    /// byte (as the audit record's `argv_sha256`).
    pub argv_sha256: Option<String>,
}

impl Expect {
    fn check(&self, claims: &Claims) -> Result<(), VerifyError> {
        let shown = |v: Option<String>| v.unwrap_or_else(|| "nothing (a session token)".into());
        let mismatch = |claim, want: String, got: Option<String>| VerifyError::Binding {
            claim,
            want,
            got: shown(got).escape_debug().to_string(),
        };
        if let Some(want) = self.call {
            if claims.call != Some(want) {
                return Err(mismatch(
                    "call",
                    want.to_string(),
                    claims.call.map(|c| c.to_string()),
                ));
            }
        }
        if let Some(want) = &self.tool {
            if claims.tool.as_ref() != Some(want) {
                return Err(mismatch("tool", want.clone(), claims.tool.clone()));
            }
        }
        if let Some(want) = &self.argv_sha256 {
            let got = claims.argv_sha256.as_ref();
            if !got.is_some_and(|g| g.eq_ignore_ascii_case(want)) {
                return Err(mismatch("argv_sha256", want.clone(), got.cloned()));
            }
        }
        Ok(())
    }
}

/// `jti`s seen, each kept until its token expires.
#[derive(Debug)]
pub struct ReplayCache {
    seen: HashMap<String, u64>,
    capacity: usize,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> ReplayCache {
        ReplayCache {
            seen: HashMap::new(),
            capacity,
        }
    }

    /// Records `jti` (valid until `exp`); an error if it was seen.
    pub fn admit(&mut self, jti: &str, exp: u64, now: u64) -> Result<(), VerifyError> {
        if self.seen.contains_key(jti) {
            return Err(VerifyError::Replayed(jti.escape_debug().to_string()));
        }
        if self.seen.len() >= self.capacity {
            self.seen.retain(|_, e| *e + DEFAULT_LEEWAY >= now);
            if self.seen.len() >= self.capacity {
                return Err(VerifyError::ReplayCacheFull);
            }
        }
        self.seen.insert(jti.to_string(), exp);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// A relying party: the keys it trusts, the audience it is, its clock
/// tolerance and its replay cache.
#[derive(Debug)]
pub struct Verifier {
    keys: HashMap<String, p256::ecdsa::VerifyingKey>,
    audience: String,
    pub leeway: u64,
    /// The call a token must be bound to (nothing by default).
    pub expect: Expect,
    replay: Mutex<ReplayCache>,
}

impl Verifier {
    /// Trusts every key of `jwks` (each checked), as `audience`.
    pub fn new(jwks: &Jwks, audience: &str) -> Result<Verifier, JwkError> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            keys.insert(jwk.kid.clone(), jwk.verifying_key()?);
        }
        Ok(Verifier {
            keys,
            audience: audience.to_string(),
            leeway: DEFAULT_LEEWAY,
            expect: Expect::default(),
            replay: Mutex::new(ReplayCache::new(DEFAULT_REPLAY_CAPACITY)),
        })
    }

    /// Checks `token` at `now` (seconds since the epoch); its claims if it
    /// holds. A token that holds is remembered: presenting it again is a
    /// replay.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, VerifyError> {
        let parsed = jwt::parse(token.trim())?;
        let kid = parsed.header.kid.clone().unwrap_or_default();
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| VerifyError::UnknownKey(kid.escape_debug().to_string()))?;
        let sig = p256::ecdsa::Signature::from_slice(&parsed.signature)
            .map_err(|_| VerifyError::Signature)?;
        key.verify(parsed.signing_input.as_bytes(), &sig)
            .map_err(|_| VerifyError::Signature)?;
        let claims: Claims = serde_json::from_slice(&parsed.payload)
            .map_err(|e| VerifyError::Claims(e.to_string()))?;
        if !claims.sub.starts_with("spiffe://") {
            return Err(VerifyError::NotSpiffe(
                claims.sub.escape_debug().to_string(),
            ));
        }
        if !claims.aud.contains(&self.audience) {
            return Err(VerifyError::Audience {
                want: self.audience.clone(),
                got: claims.aud.clone(),
            });
        }
        if let Some(nbf) = claims.nbf {
            if nbf > now.saturating_add(self.leeway) {
                return Err(VerifyError::NotYetValid { nbf, now });
            }
        }
        if claims.exp.saturating_add(self.leeway) <= now {
            return Err(VerifyError::Expired {
                exp: claims.exp,
                now,
            });
        }
        if claims.jti.is_empty() {
            return Err(VerifyError::NoJti);
        }
        self.expect.check(&claims)?;
        self.replay
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(&claims.jti, claims.exp, now)?;
        Ok(claims)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use std::time::Duration;

    use super::super::{b64, Binding, Issuer, SigningKey};
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn issuer() -> Issuer {
        Issuer::new(SigningKey::ephemeral().unwrap())
    }

    fn mint(issuer: &Issuer, aud: &str, ttl: u64, now: u64) -> String {
        let b = Binding {
            session: "s1",
            profile: "p",
            intent: None,
            chain: &[],
            call: None,
        };
        issuer
            .mint(&b, &[aud.to_string()], Duration::from_secs(ttl), now)
            .unwrap()
            .0
    }

    fn verifier(issuer: &Issuer, aud: &str) -> Verifier {
        let jwks = Jwks {
            keys: vec![issuer.key().jwk().clone()],
        };
        Verifier::new(&jwks, aud).unwrap()
    }

    #[test]
    fn a_good_token_verifies_once() {
        let i = issuer();
        let v = verifier(&i, "svc");
        let t = mint(&i, "svc", 60, NOW);
        let c = v.verify(&t, NOW + 1).unwrap();
        assert_eq!(c.aud, vec!["svc".to_string()]);
        assert!(matches!(
            v.verify(&t, NOW + 2),
            Err(VerifyError::Replayed(_))
        ));
    }

    #[test]
    fn another_audience_is_refused() {
        let i = issuer();
        let t = mint(&i, "other-service", 60, NOW);
        let e = verifier(&i, "svc").verify(&t, NOW).unwrap_err();
        assert!(matches!(e, VerifyError::Audience { .. }), "{e}");
    }

    #[test]
    fn expired_and_not_yet_valid_are_refused_beyond_the_leeway() {
        let i = issuer();
        let v = verifier(&i, "svc");
        let t = mint(&i, "svc", 60, NOW);
        assert!(matches!(
            v.verify(&t, NOW + 60 + DEFAULT_LEEWAY),
            Err(VerifyError::Expired { .. })
        ));
        assert!(matches!(
            v.verify(&t, NOW - DEFAULT_LEEWAY - 1),
            Err(VerifyError::NotYetValid { .. })
        ));
        // A refused token is not remembered: within its window it verifies.
        assert!(v.verify(&t, NOW + 59 + DEFAULT_LEEWAY).is_ok());
    }

    #[test]
    fn another_key_and_any_tampering_are_refused() {
        let i = issuer();
        let v = verifier(&i, "svc");
        // Signed by another key that claims this key's kid.
        let other = issuer();
        let forged = mint(&other, "svc", 60, NOW);
        let (h, rest) = forged.split_once('.').unwrap();
        let _ = h;
        let header =
            b64(format!(r#"{{"alg":"ES256","kid":"{}","typ":"JWT"}}"#, i.key().kid()).as_bytes());
        let forged = format!("{header}.{rest}");
        assert_eq!(v.verify(&forged, NOW), Err(VerifyError::Signature));
        // Signed by another key under its own kid: unknown.
        let unknown = mint(&other, "svc", 60, NOW);
        assert!(matches!(
            v.verify(&unknown, NOW),
            Err(VerifyError::UnknownKey(_))
        ));
        // One changed claim (a wider audience, a later expiry).
        let good = mint(&i, "svc", 60, NOW);
        let parts: Vec<&str> = good.split('.').collect();
        let payload = String::from_utf8(super::super::unb64(parts[1]).unwrap()).unwrap();
        let changed = payload.replace(
            &format!("\"exp\":{}", NOW + 60),
            &format!("\"exp\":{}", NOW + 99_999),
        );
        assert_ne!(changed, payload);
        let tampered = format!("{}.{}.{}", parts[0], b64(changed.as_bytes()), parts[2]);
        assert_eq!(v.verify(&tampered, NOW), Err(VerifyError::Signature));
        // A flipped signature byte.
        let mut sig = super::super::unb64(parts[2]).unwrap();
        sig[10] ^= 1;
        let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
        assert_eq!(v.verify(&flipped, NOW), Err(VerifyError::Signature));
        // `alg: none` with the signature stripped.
        let none = format!("{}.{}.", b64(br#"{"alg":"none","kid":"x"}"#), parts[1]);
        assert!(matches!(v.verify(&none, NOW), Err(VerifyError::Format(_))));
        // The untouched token still verifies.
        assert!(v.verify(&good, NOW).is_ok());
    }

    #[test]
    fn a_call_bound_token_is_refused_for_another_call_tool_or_arguments() {
        use super::super::CallBinding;
        let i = issuer();
        let digest = "ab".repeat(32);
        let b = Binding {
            session: "s1",
            profile: "p",
            intent: None,
            chain: &[],
            call: Some(CallBinding {
                id: 7,
                tool: "deploy",
                argv_sha256: &digest,
            }),
        };
        let aud = ["svc".to_string()];
        let t = i.mint(&b, &aud, Duration::from_secs(60), NOW).unwrap().0;
        let session = mint(&i, "svc", 60, NOW);
        let mut v = verifier(&i, "svc");
        for (expect, claim) in [
            (
                Expect {
                    call: Some(8),
                    ..Expect::default()
                },
                "call",
            ),
            (
                Expect {
                    tool: Some("git".into()),
                    ..Expect::default()
                },
                "tool",
            ),
            (
                Expect {
                    argv_sha256: Some("cd".repeat(32)),
                    ..Expect::default()
                },
                "argv_sha256",
            ),
        ] {
            v.expect = expect;
            match v.verify(&t, NOW) {
                Err(VerifyError::Binding { claim: c, .. }) => assert_eq!(c, claim),
                other => panic!("{claim}: {other:?}"),
            }
        }
        // A session token carries no call at all.
        v.expect = Expect {
            call: Some(7),
            ..Expect::default()
        };
        let e = v.verify(&session, NOW).unwrap_err();
        assert!(e.to_string().contains("a session token"), "{e}");
        // Refusals are not remembered: the right call still verifies, once.
        v.expect = Expect {
            call: Some(7),
            tool: Some("deploy".into()),
            argv_sha256: Some(digest.to_uppercase()),
        };
        let c = v.verify(&t, NOW).unwrap();
        assert_eq!(c.call, Some(7));
        assert!(matches!(v.verify(&t, NOW), Err(VerifyError::Replayed(_))));
    }

    #[test]
    fn a_full_replay_cache_refuses_instead_of_forgetting() {
        let mut c = ReplayCache::new(2);
        c.admit("a", NOW + 10, NOW).unwrap();
        c.admit("b", NOW + 10, NOW).unwrap();
        assert_eq!(
            c.admit("c", NOW + 10, NOW),
            Err(VerifyError::ReplayCacheFull)
        );
        // Once the first two have expired, there is room again.
        c.admit("c", NOW + 100, NOW + 10 + DEFAULT_LEEWAY + 1)
            .unwrap();
        assert_eq!(c.len(), 1);
    }
}
