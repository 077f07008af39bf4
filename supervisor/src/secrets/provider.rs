//! Secret providers: fetch a value at the moment a call needs it, and run
//! the profile's revoke command after. Values never appear in errors,
//! logs, or a command's argv.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::value::SecretValue;
use crate::identity::{Binding, Issuer, MintError};
use crate::profile::{IdentityBind, SecretSource, SecretSpec};

/// The most a provider may print: a secret is small; anything larger is a
/// misconfigured command, not a value.
pub const MAX_VALUE: usize = 64 * 1024;

/// Why a secret could not be fetched (never contains the value).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("`{0}` is not set in cordon's environment")]
    EnvUnset(String),
    #[error("reading {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "CREDENTIALS_DIRECTORY is not set (credential: secrets need systemd's LoadCredential=)"
    )]
    NoCredentials,
    #[error("the provider command `{program}` could not start: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("the provider command `{program}` exited with {status}")]
    Failed { program: String, status: String },
    #[error("the provider command `{program}` took longer than {limit:?} and was killed")]
    Timeout { program: String, limit: Duration },
    #[error("the value is empty")]
    Empty,
    #[error("cordon's identity key is not available here ({0})")]
    NoIssuer(String),
    #[error("the token is bound to a call, and this request names none; use `bind=session` for a token that names only the session")]
    Unbound,
    #[error("minting the token: {0}")]
    Mint(#[from] MintError),
    #[error("the value is larger than {MAX_VALUE} bytes")]
    TooLarge,
    #[error("`{0}` has deliver = \"proxy\": its value goes only to cordon's egress proxy, never into a process (the process gets a placeholder)")]
    ProxyOnly(String),
    #[error("`{0}` is delivered raw (no deliver = \"proxy\"), so the egress proxy has nothing to inject")]
    NotProxied(String),
}

/// Where a fetch may look.
pub struct Sources<'a> {
    /// cordon's own environment (never the agent's).
    pub env: &'a dyn Fn(&str) -> Option<OsString>,
    /// `$CREDENTIALS_DIRECTORY`, when set.
    pub credentials: Option<&'a Path>,
    /// For `identity:` secrets: the issuer (or why there is none) and
    /// what the token is bound to.
    pub identity: Option<(Result<&'a Issuer, &'a str>, Binding<'a>)>,
}

/// Fetches `spec`'s value now, to hand to a process (a tool's environment
/// or file, or the agent for `expose`). A `deliver = "proxy"` secret is
/// refused: its value must never reach a process, whatever the caller
/// does with it.
pub fn fetch(spec: &SecretSpec, sources: &Sources<'_>) -> Result<SecretValue, FetchError> {
    if spec.proxy.is_some() {
        return Err(FetchError::ProxyOnly(spec.name.clone()));
    }
    fetch_value(spec, sources)
}

/// Fetches the value of a `deliver = "proxy"` secret for the egress
/// proxy's injector (see `egress::inject`); refuses a raw secret.
pub fn fetch_for_proxy(
    spec: &SecretSpec,
    sources: &Sources<'_>,
) -> Result<SecretValue, FetchError> {
    if spec.proxy.is_none() {
        return Err(FetchError::NotProxied(spec.name.clone()));
    }
    fetch_value(spec, sources)
}

fn fetch_value(spec: &SecretSpec, sources: &Sources<'_>) -> Result<SecretValue, FetchError> {
    let (env, credentials) = (sources.env, sources.credentials);
    let bytes = match &spec.source {
        SecretSource::Identity(id) => {
            let Some((issuer, binding)) = &sources.identity else {
                return Err(FetchError::NoIssuer("no session to mint for".into()));
            };
            let issuer = issuer.map_err(|e| FetchError::NoIssuer(e.to_string()))?;
            let mut binding = *binding;
            match id.bind {
                IdentityBind::Session => binding.call = None,
                IdentityBind::Call if binding.call.is_none() => return Err(FetchError::Unbound),
                IdentityBind::Call => {}
            }
            // The profile requires a ttl for identity secrets.
            let ttl = spec.ttl.unwrap_or(Duration::from_secs(60));
            let (token, _) =
                issuer.mint(&binding, &id.audiences, ttl, crate::identity::unix_now())?;
            token.into_bytes()
        }
        SecretSource::Env(name) => {
            use std::os::unix::ffi::OsStringExt;
            env(name)
                .ok_or_else(|| FetchError::EnvUnset(name.clone()))?
                .into_vec()
        }
        SecretSource::File(path) => read_bounded(path)?,
        SecretSource::Credential(name) => {
            let dir = credentials.ok_or(FetchError::NoCredentials)?;
            read_bounded(&dir.join(name))?
        }
        SecretSource::Command(argv) => run_provider(argv, spec.fetch_timeout)?,
    };
    let value = SecretValue::from_command_output(bytes);
    if value.expose().is_empty() {
        return Err(FetchError::Empty);
    }
    Ok(value)
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, FetchError> {
    let file = std::fs::File::open(path).map_err(|source| FetchError::File {
        path: path.to_path_buf(),
        source,
    })?;
    let mut buf = Vec::new();
    file.take(MAX_VALUE as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|source| FetchError::File {
            path: path.to_path_buf(),
            source,
        })?;
    if buf.len() > MAX_VALUE {
        zero(&mut buf);
        return Err(FetchError::TooLarge);
    }
    Ok(buf)
}

fn zero(buf: &mut Vec<u8>) {
    use zeroize::Zeroize;
    buf.zeroize();
}

/// Waits for `child` at most until `deadline`; kills it past that.
fn wait_until(
    child: &mut Child,
    deadline: Instant,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let pid = i32::try_from(child.id()).unwrap_or(-1);
    let pidfd = crate::sys::process::pidfd_open(pid)?;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        let mut fds = [libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        crate::sys::fd::poll(&mut fds, ms)?;
    }
}

/// Runs a provider command; its stdout (bounded) is the value.
fn run_provider(argv: &[String], limit: Duration) -> Result<Vec<u8>, FetchError> {
    let program = argv.first().cloned().unwrap_or_default();
    let deadline = Instant::now() + limit;
    let mut child = Command::new(&program)
        .args(argv.get(1..).unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .current_dir("/")
        .spawn()
        .map_err(|source| FetchError::Spawn {
            program: program.clone(),
            source,
        })?;
    // Read in a thread so a provider that fills the pipe cannot stall the
    // wait, and one that never closes it cannot stall the read.
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(out) = stdout.as_mut() {
            let _ = out.take(MAX_VALUE as u64 + 1).read_to_end(&mut buf);
        }
        buf
    });
    let status = wait_until(&mut child, deadline).map_err(|source| FetchError::Spawn {
        program: program.clone(),
        source,
    })?;
    let Some(status) = status else {
        return Err(FetchError::Timeout { program, limit });
    };
    let mut buf = reader.join().unwrap_or_default();
    if !status.success() {
        zero(&mut buf);
        return Err(FetchError::Failed {
            program,
            status: status.to_string(),
        });
    }
    if buf.len() > MAX_VALUE {
        zero(&mut buf);
        return Err(FetchError::TooLarge);
    }
    Ok(buf)
}

/// Why a revoke command failed.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("could not start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{program}` exited with {status}")]
    Failed { program: String, status: String },
    #[error("`{program}` took longer than {limit:?} and was killed")]
    Timeout { program: String, limit: Duration },
}

/// Runs the revoke command with the value on stdin and in
/// `CORDON_SECRET_VALUE` (never in argv, which any process can read).
pub fn revoke(argv: &[String], value: &SecretValue, limit: Duration) -> Result<(), RevokeError> {
    let program = argv.first().cloned().unwrap_or_default();
    let text = String::from_utf8_lossy(value.expose()).into_owned();
    let mut text = zeroize::Zeroizing::new(text);
    let spawned = Command::new(&program)
        .args(argv.get(1..).unwrap_or_default())
        .env("CORDON_SECRET_VALUE", text.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/")
        .spawn();
    text.clear();
    let mut child = spawned.map_err(|source| RevokeError::Spawn {
        program: program.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(value.expose());
    }
    let status =
        wait_until(&mut child, Instant::now() + limit).map_err(|source| RevokeError::Spawn {
            program: program.clone(),
            source,
        })?;
    match status {
        None => Err(RevokeError::Timeout { program, limit }),
        Some(s) if !s.success() => Err(RevokeError::Failed {
            program,
            status: s.to_string(),
        }),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> SecretSpec {
        let text = format!(
            "[profile]\nname = \"p\"\n[network]\nallow_hosts = [\"api.test:443\"]\n[environment]\nsecrets = [\"S\"]\n[secrets.S]\nfrom = \"env:S\"\n{extra}\n"
        );
        let p =
            crate::profile::load_text(Path::new("p.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
        p.secrets["S"].clone()
    }

    #[test]
    fn a_proxy_secret_is_never_fetched_for_a_process_and_a_raw_one_never_for_the_proxy() {
        let env = |_: &str| Some(OsString::from("the-value"));
        let src = Sources {
            env: &env,
            credentials: None,
            identity: None,
        };
        let proxied =
            spec("deliver = \"proxy\"\nhosts = [\"api.test:443\"]\nformat = \"Bearer {}\"");
        let e = fetch(&proxied, &src).err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("never into a process")),
            "{e:?}"
        );
        let v = fetch_for_proxy(&proxied, &src).map(|v| v.expose().to_vec());
        assert_eq!(v.ok().as_deref(), Some(&b"the-value"[..]));
        let mut raw = proxied.clone();
        raw.proxy = None;
        assert!(fetch(&raw, &src).is_ok());
        assert!(matches!(
            fetch_for_proxy(&raw, &src),
            Err(FetchError::NotProxied(_))
        ));
    }
}
