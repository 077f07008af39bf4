//! [`SecretValue`]: the bytes of one secret, zeroed when dropped and never
//! printed.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

/// The value of one secret.
///
/// The bytes live in a [`Zeroizing`] vector, so they are overwritten with
/// zeros (the whole allocation, spare capacity included) when the value is
/// dropped. There is no `Display`, no `Clone` and no `Debug` that shows the
/// bytes: the only way to read them is [`SecretValue::expose`], which makes
/// every use easy to find.
pub struct SecretValue {
    bytes: Zeroizing<Vec<u8>>,
}

impl SecretValue {
    /// Takes ownership of `bytes` without copying them: the vector's
    /// allocation becomes the secret's, and is zeroed on drop.
    ///
    /// Copies made before this call (a buffer the vector grew out of, a
    /// pipe buffer) are the caller's to avoid; read into a vector of
    /// sufficient capacity.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretValue {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// A value read from a provider command's stdout: like [`Self::new`],
    /// with one trailing line ending (`\n` or `\r\n`) removed, as shells do
    /// for `$(command)`. Only one: a value that really ends in a newline
    /// keeps the others.
    #[must_use]
    pub fn from_command_output(bytes: Vec<u8>) -> Self {
        let mut value = Self::new(bytes);
        value.trim_trailing_newline();
        value
    }

    /// Removes one trailing `\n` or `\r\n`, zeroing the removed bytes.
    pub fn trim_trailing_newline(&mut self) {
        let keep = match self.bytes.as_slice() {
            [.., b'\r', b'\n'] => self.bytes.len() - 2,
            [.., b'\n'] => self.bytes.len() - 1,
            _ => return,
        };
        // `truncate` keeps the allocation; zero the tail so it does not
        // linger there until drop (drop would zero it too, but a value may
        // live for a whole call).
        if let Some(tail) = self.bytes.get_mut(keep..) {
            tail.zeroize();
        }
        self.bytes.truncate(keep);
    }

    /// The secret's bytes. Every caller is a place the value leaves this
    /// type: keep them few.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// Length in bytes (not secret: it is printed by `Debug`).
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the value is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl From<Vec<u8>> for SecretValue {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<redacted, {} bytes>)", self.bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let v = SecretValue::new(b"hunter2-canary-0xC0FFEE".to_vec());
        for shown in [
            format!("{v:?}"),
            format!("{v:#?}"),
            format!("{:?}", Some(&v)),
            format!("{:?}", vec![&v]),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains("C0FFEE"), "{shown}");
            assert!(
                shown.contains("SecretValue(<redacted, 23 bytes>)"),
                "{shown}"
            );
        }
    }

    #[test]
    fn new_takes_the_allocation_without_copying() {
        let bytes = b"abcdef".to_vec();
        let ptr = bytes.as_ptr();
        let v = SecretValue::from(bytes);
        assert_eq!(v.expose().as_ptr(), ptr);
        assert_eq!(v.expose(), b"abcdef");
    }

    #[test]
    fn command_output_loses_one_line_ending() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"token\n", b"token"),
            (b"token\r\n", b"token"),
            (b"token\n\n", b"token\n"),
            (b"token\r\n\r\n", b"token\r\n"),
            (b"token", b"token"),
            (b"token\r", b"token\r"),
            (b"\n", b""),
        ];
        for (raw, want) in cases {
            let v = SecretValue::from_command_output(raw.to_vec());
            assert_eq!(v.expose(), want, "{:?}", String::from_utf8_lossy(raw));
            assert_eq!(v.len(), want.len());
        }
        assert!(SecretValue::from_command_output(Vec::new()).is_empty());
    }
}
