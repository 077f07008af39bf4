//! The signing key: one P-256 key per host (per user, for an unprivileged
//! cordon), generated on first use and kept 0600 in cordon's state
//! directory, or handed in by systemd as the credential `identity-key`.
//!
//! A key file anyone else could read, or that another user owns, is
//! refused, as ssh refuses such a private key: whoever reads it can mint
//! any session's identity.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use p256::ecdsa::signature::Signer;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};

use super::jwk::Jwk;

/// The key's file under the state directory.
pub const KEY_FILE: &str = "identity/signing-key.pem";
/// The systemd credential (`LoadCredential=identity-key:...`) that, when
/// present, is the key instead (and is never written).
pub const KEY_CREDENTIAL: &str = "identity-key";
/// A PEM private key is a few hundred bytes; more is not a key.
const MAX_KEY_FILE: u64 = 16 * 1024;

/// Why the signing key cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cordon has no state directory for its identity key: set CORDON_STATE_DIR (or XDG_STATE_HOME, or HOME) to an absolute path")]
    NoStateDir,
    #[error("reading the identity key {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the identity key {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the identity key {} is not a regular file", path.display())]
    NotFile { path: PathBuf },
    #[error("the identity key {} can be read or changed by others (mode {mode:04o}); it must be 0600 or 0400: chmod 600 {}", path.display(), path.display())]
    Permissions { path: PathBuf, mode: u32 },
    #[error("the identity key {} belongs to uid {owner}, not to cordon's uid {uid}", path.display())]
    Owner { path: PathBuf, owner: u32, uid: u32 },
    #[error("the identity key {} is larger than {MAX_KEY_FILE} bytes, so it is not a key", path.display())]
    TooLarge { path: PathBuf },
    #[error("the identity key {} is not a P-256 private key in PKCS#8 or SEC1 PEM ({reason}); make one with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256", path.display())]
    Format { path: PathBuf, reason: String },
    #[error("the kernel's random source failed: {0}")]
    Random(String),
}

/// Where the key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    /// `$CREDENTIALS_DIRECTORY/identity-key`: read, never written.
    Credential(PathBuf),
    /// `<state dir>/identity/signing-key.pem`: created when missing.
    State(PathBuf),
}

impl KeyLocation {
    pub fn path(&self) -> &Path {
        match self {
            KeyLocation::Credential(p) | KeyLocation::State(p) => p,
        }
    }

    /// The credential when systemd passed one, else the state directory's
    /// file. `env` reads cordon's environment; `euid` picks the default
    /// state directory.
    pub fn find(
        env: &dyn Fn(&str) -> Option<OsString>,
        euid: u32,
    ) -> Result<KeyLocation, KeyError> {
        if let Some(dir) = env("CREDENTIALS_DIRECTORY").map(PathBuf::from) {
            let cred = dir.join(KEY_CREDENTIAL);
            if dir.is_absolute() && cred.exists() {
                return Ok(KeyLocation::Credential(cred));
            }
        }
        let dir = state_dir(env, euid).ok_or(KeyError::NoStateDir)?;
        Ok(KeyLocation::State(dir.join(KEY_FILE)))
    }

    /// This process's location (its environment and euid).
    pub fn for_this_process() -> Result<KeyLocation, KeyError> {
        KeyLocation::find(&|n| std::env::var_os(n), crate::sys::geteuid())
    }
}

/// cordon's state directory: `$CORDON_STATE_DIR`; for root
/// `/var/lib/cordon`; else `$XDG_STATE_HOME/cordon` or
/// `$HOME/.local/state/cordon`. Relative values are ignored.
pub fn state_dir(env: &dyn Fn(&str) -> Option<OsString>, euid: u32) -> Option<PathBuf> {
    let abs = |name: &str| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(p) = abs("CORDON_STATE_DIR") {
        return Some(p);
    }
    if euid == 0 {
        return Some(PathBuf::from("/var/lib/cordon"));
    }
    abs("XDG_STATE_HOME")
        .map(|p| p.join("cordon"))
        .or_else(|| abs("HOME").map(|h| h.join(".local/state/cordon")))
}

/// The signing key, with its public half as a JWK and its `kid`.
pub struct SigningKey {
    inner: p256::ecdsa::SigningKey,
    jwk: Jwk,
    location: KeyLocation,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private half.
        f.debug_struct("SigningKey")
            .field("kid", &self.jwk.kid)
            .field("location", &self.location)
            .finish()
    }
}

impl SigningKey {
    /// Loads the key at `location`, creating a state-directory key that
    /// does not exist yet.
    pub fn load_or_create(location: KeyLocation) -> Result<SigningKey, KeyError> {
        match read_key(location.path()) {
            Ok(secret) => Ok(SigningKey::new(secret, location)),
            Err(KeyError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound
                    && matches!(location, KeyLocation::State(_)) =>
            {
                create(location.path())?;
                let secret = read_key(location.path())?;
                Ok(SigningKey::new(secret, location))
            }
            Err(e) => Err(e),
        }
    }

    /// Loads an existing key (never creates one).
    pub fn load(location: KeyLocation) -> Result<SigningKey, KeyError> {
        let secret = read_key(location.path())?;
        Ok(SigningKey::new(secret, location))
    }

    /// A fresh key held only in memory (tests, and a verifier's "another
    /// key").
    pub fn ephemeral() -> Result<SigningKey, KeyError> {
        let secret = random_secret()?;
        Ok(SigningKey::new(
            secret,
            KeyLocation::State(PathBuf::from("(memory)")),
        ))
    }

    fn new(secret: p256::SecretKey, location: KeyLocation) -> SigningKey {
        let inner = p256::ecdsa::SigningKey::from(secret);
        let jwk = Jwk::of(inner.verifying_key());
        SigningKey {
            inner,
            jwk,
            location,
        }
    }

    /// The public key, as published in the JWKS.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    pub fn kid(&self) -> &str {
        &self.jwk.kid
    }

    pub fn location(&self) -> &KeyLocation {
        &self.location
    }

    /// The ES256 signature of `message`: r and s, 32 bytes each (JWS form).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let sig: p256::ecdsa::Signature = self.inner.sign(message);
        let mut out = [0u8; 64];
        out.copy_from_slice(&sig.to_bytes());
        out
    }
}

/// A uniformly random valid scalar: 32 random bytes, retried in the
/// (2^-32 likely) case that they are zero or not below the group order.
fn random_secret() -> Result<p256::SecretKey, KeyError> {
    for _ in 0..16 {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        crate::sys::getrandom(bytes.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
        if let Ok(k) = p256::SecretKey::from_slice(bytes.as_ref()) {
            return Ok(k);
        }
    }
    Err(KeyError::Random(
        "16 draws in a row were not a valid key".into(),
    ))
}

/// Reads and checks a key file: regular, ours, nobody else's to read.
fn read_key(path: &Path) -> Result<p256::SecretKey, KeyError> {
    let read_err = |source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    check_file(path, &meta, crate::sys::geteuid())?;
    let mut text = zeroize::Zeroizing::new(String::new());
    file.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(KeyError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    parse_pem(&text).map_err(|reason| KeyError::Format {
        path: path.to_path_buf(),
        reason,
    })
}

/// A key file must be a regular file of `uid` that only its owner can
/// read or write.
pub(crate) fn check_file(path: &Path, meta: &std::fs::Metadata, uid: u32) -> Result<(), KeyError> {
    let path = path.to_path_buf();
    if !meta.is_file() {
        return Err(KeyError::NotFile { path });
    }
    if meta.uid() != uid {
        return Err(KeyError::Owner {
            path,
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions { path, mode });
    }
    Ok(())
}

/// PKCS#8 (`BEGIN PRIVATE KEY`, as `openssl genpkey` writes) or SEC1
/// (`BEGIN EC PRIVATE KEY`, as `openssl ecparam -genkey` writes).
fn parse_pem(text: &str) -> Result<p256::SecretKey, String> {
    if text.contains("-----BEGIN EC PRIVATE KEY-----") {
        return p256::SecretKey::from_sec1_pem(text).map_err(|e| e.to_string());
    }
    p256::SecretKey::from_pkcs8_pem(text).map_err(|e| e.to_string())
}

/// Creates a new key at `path` (0600, in a 0700 directory). Two cordons
/// starting at once cannot both win: the key is written whole to a
/// private temporary name and hard-linked into place, which fails if a
/// key is already there (then that one is used).
fn create(path: &Path) -> Result<(), KeyError> {
    let write_err = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(write_err)?;
    }
    let secret = random_secret()?;
    let pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| write_err(std::io::Error::other(e.to_string())))?;
    let tmp = path.with_extension(format!("pem.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(pem.as_bytes())?;
        f.sync_all()?;
        match std::fs::hard_link(&tmp, path) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    written.map_err(write_err)?;
    tracing::info!(path = %path.display(), "identity: created a new signing key");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |n| {
            pairs
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn state_dir_follows_the_documented_order() {
        let e = env_of(&[("CORDON_STATE_DIR", "/s"), ("HOME", "/h")]);
        assert_eq!(state_dir(&e, 1000), Some(PathBuf::from("/s")));
        let e = env_of(&[("HOME", "/h")]);
        assert_eq!(state_dir(&e, 0), Some(PathBuf::from("/var/lib/cordon")));
        assert_eq!(
            state_dir(&e, 1000),
            Some(PathBuf::from("/h/.local/state/cordon"))
        );
        let e = env_of(&[("XDG_STATE_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(state_dir(&e, 1000), Some(PathBuf::from("/x/cordon")));
        // Relative values are not a place to keep a key.
        let e = env_of(&[("CORDON_STATE_DIR", "rel"), ("HOME", "also-rel")]);
        assert_eq!(state_dir(&e, 1000), None);
    }

    #[test]
    fn a_credential_wins_over_the_state_directory() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds");
        std::fs::create_dir(&creds).unwrap();
        let d = creds.display().to_string();
        let e = env_of(&[("CREDENTIALS_DIRECTORY", &d), ("CORDON_STATE_DIR", "/s")]);
        // No credential file: the state directory.
        assert_eq!(
            KeyLocation::find(&e, 1000).unwrap(),
            KeyLocation::State(PathBuf::from("/s").join(KEY_FILE))
        );
        std::fs::write(creds.join(KEY_CREDENTIAL), "x").unwrap();
        assert_eq!(
            KeyLocation::find(&e, 1000).unwrap(),
            KeyLocation::Credential(creds.join(KEY_CREDENTIAL))
        );
    }

    #[test]
    fn a_key_is_created_once_0600_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(KEY_FILE);
        let a = SigningKey::load_or_create(KeyLocation::State(path.clone())).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let parent = std::fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(parent.permissions().mode() & 0o777, 0o700);
        let b = SigningKey::load_or_create(KeyLocation::State(path.clone())).unwrap();
        assert_eq!(a.kid(), b.kid());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("signing-key.pem")]);
        // The debug form never shows the private key.
        let shown = format!("{a:?}");
        assert!(
            shown.contains(a.kid()) && !shown.contains("PRIVATE"),
            "{shown}"
        );
    }

    #[test]
    fn a_key_others_can_read_is_refused_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        SigningKey::load_or_create(KeyLocation::State(path.clone())).unwrap();
        let before = std::fs::read(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = SigningKey::load_or_create(KeyLocation::State(path.clone())).unwrap_err();
        assert!(
            matches!(e, KeyError::Permissions { mode: 0o640, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_missing_credential_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_CREDENTIAL);
        let e = SigningKey::load_or_create(KeyLocation::Credential(path.clone())).unwrap_err();
        assert!(matches!(e, KeyError::Read { .. }), "{e}");
        assert!(!path.exists());
    }

    #[test]
    fn a_symlinked_or_garbage_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.pem");
        SigningKey::load_or_create(KeyLocation::State(real.clone())).unwrap();
        let link = dir.path().join("link.pem");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(SigningKey::load(KeyLocation::State(link)).is_err());
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = SigningKey::load(KeyLocation::State(junk)).unwrap_err();
        assert!(matches!(e, KeyError::Format { .. }), "{e}");
        assert!(e.to_string().contains("openssl genpkey"), "{e}");
    }

    #[test]
    fn sec1_keys_as_openssl_ecparam_writes_them_load() {
        let secret = random_secret().unwrap();
        let pem = secret.to_sec1_pem(LineEnding::LF).unwrap();
        let back = parse_pem(&pem).unwrap();
        assert_eq!(back.to_bytes(), secret.to_bytes());
    }
}
