//! Placeholders: what a process holds instead of a secret delivered
//! through cordon's egress proxy (`deliver = "proxy"`).
//!
//! A placeholder is `cordon-placeholder-` and 32 base32 characters: 160
//! random bits from the kernel, so it cannot be guessed, and two
//! placeholders of one session (or of two sessions) never coincide in
//! practice. It is recognisable on purpose: a person reading a log, and
//! the proxy scanning a request head, can tell it is not a credential.
//! It is not secret: holding one gives nothing outside the proxy, which
//! swaps it for the value only on requests to the secret's own hosts.

use std::fmt;

use crate::sys::Errno;

/// What every placeholder starts with.
pub const PREFIX: &str = "cordon-placeholder-";
/// Random bytes per placeholder (160 bits, 32 base32 characters).
const RANDOM_BYTES: usize = 20;
/// Characters after [`PREFIX`].
pub const RANDOM_CHARS: usize = RANDOM_BYTES * 8 / 5;
/// Lower-case RFC 4648 base32: letters and the digits 2-7, so it
/// survives URLs, headers, shells and base64 user-info unchanged.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// One placeholder. Cloning and printing it is fine: it is not a secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Placeholder(String);

impl Placeholder {
    /// A fresh placeholder from the kernel's random source.
    pub fn generate() -> Result<Placeholder, Errno> {
        let mut bytes = [0u8; RANDOM_BYTES];
        crate::sys::getrandom(&mut bytes)?;
        Ok(Placeholder::from_random(bytes))
    }

    /// The placeholder these random bytes make (tests use fixed bytes).
    #[must_use]
    pub fn from_random(bytes: [u8; RANDOM_BYTES]) -> Placeholder {
        let mut text = String::with_capacity(PREFIX.len() + RANDOM_CHARS);
        text.push_str(PREFIX);
        // 20 bytes are exactly 160 bits: 32 groups of 5, no padding.
        let mut acc: u32 = 0;
        let mut bits = 0;
        for b in bytes {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                let index = (acc >> bits) & 31;
                text.push(char::from(ALPHABET[index as usize]));
            }
        }
        Placeholder(text)
    }

    /// Parses a placeholder written out in full (e.g. read back from a
    /// record); `None` for anything else.
    #[must_use]
    pub fn parse(text: &str) -> Option<Placeholder> {
        let rest = text.strip_prefix(PREFIX)?;
        (rest.len() == RANDOM_CHARS && rest.bytes().all(|b| ALPHABET.contains(&b)))
            .then(|| Placeholder(text.to_string()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Placeholder({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_is_fixed_and_recognisable() {
        let p = Placeholder::from_random([0u8; RANDOM_BYTES]);
        assert_eq!(p.as_str(), format!("{PREFIX}{}", "a".repeat(32)));
        let p = Placeholder::from_random([0xff; RANDOM_BYTES]);
        assert_eq!(p.as_str(), format!("{PREFIX}{}", "7".repeat(32)));
        // 0x08 = 00001000: the first group is 00001 (b), the next starts 000.
        let mut bytes = [0u8; RANDOM_BYTES];
        bytes[0] = 0x08;
        assert!(Placeholder::from_random(bytes)
            .as_str()
            .starts_with("cordon-placeholder-ba"));
        assert_eq!(Placeholder::parse(p.as_str()), Some(p.clone()));
        for bad in [
            "cordon-placeholder-",
            "cordon-placeholder-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "cordon-placeholder-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1",
            "cordon-placeholder-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(Placeholder::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn generated_placeholders_are_distinct_and_well_formed() {
        let all: std::collections::HashSet<Placeholder> = (0..1000)
            .map(|_| Placeholder::generate().unwrap_or_else(|e| panic!("getrandom: {e}")))
            .collect();
        assert_eq!(all.len(), 1000);
        for p in &all {
            assert_eq!(Placeholder::parse(p.as_str()).as_ref(), Some(p));
        }
    }
}
