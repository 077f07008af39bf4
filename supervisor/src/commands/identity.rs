//! `cordon identity jwks | verify | mint`: the public keys of cordon's
//! workload identity, a local relying party, and a token by hand.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use cordon::identity::key::KeyLocation;
use cordon::identity::{Binding, Expect, Issuer, Jwks, SigningKey, Verifier};

#[derive(Subcommand)]
pub enum IdentityCommand {
    /// Print the JWKS (public keys) that verifies cordon's tokens; creates
    /// the signing key if there is none yet.
    Jwks,
    /// Verify tokens as a relying party would: signature, audience,
    /// expiry, no token twice, and (when asked) the call a token is bound
    /// to (exit 0 all good, 1 any refused).
    Verify {
        /// The audience this relying party is.
        #[arg(long, value_name = "AUD")]
        aud: String,
        /// Trust the keys of this JWKS file instead of the local key.
        #[arg(long, value_name = "FILE")]
        jwks: Option<PathBuf>,
        /// Clock skew tolerated on exp/nbf, in seconds.
        #[arg(long, default_value_t = 30)]
        leeway: u64,
        /// Refuse a token not bound to this call id (`bind=call` tokens
        /// carry the call's id, tool and argument digest).
        #[arg(long, value_name = "ID")]
        call: Option<u64>,
        /// Refuse a token not bound to a call of this tool.
        #[arg(long, value_name = "NAME")]
        tool: Option<String>,
        /// Refuse a token not bound to these exact arguments: the SHA-256
        /// (hex) of each argument followed by a NUL byte, e.g.
        /// `printf 'push\0origin\0' | sha256sum`.
        #[arg(long, value_name = "HEX")]
        argv_sha256: Option<String>,
        /// Tokens, checked in order (a repeated one is a replay); `-`
        /// reads one per line from stdin.
        #[arg(required = true)]
        tokens: Vec<String>,
    },
    /// Mint a token with the local key (to test a relying party); it
    /// names no real session unless --session does.
    Mint {
        #[arg(long, value_name = "AUD", required = true)]
        aud: Vec<String>,
        /// Lifetime, at most 1h.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        ttl: Duration,
        #[arg(long, default_value = "manual")]
        profile: String,
        /// The session id (default: a fresh random one).
        #[arg(long)]
        session: Option<String>,
        /// Issue as of this time (seconds since the epoch; default now),
        /// e.g. to give a relying party an already expired token.
        #[arg(long, value_name = "UNIX")]
        issued_at: Option<u64>,
    },
}

pub fn identity(command: IdentityCommand) -> ExitCode {
    match command {
        IdentityCommand::Jwks => jwks(),
        IdentityCommand::Verify {
            aud,
            jwks,
            leeway,
            call,
            tool,
            argv_sha256,
            tokens,
        } => {
            let expect = Expect {
                call,
                tool,
                argv_sha256,
            };
            verify(&aud, jwks.as_deref(), leeway, expect, &tokens)
        }
        IdentityCommand::Mint {
            aud,
            ttl,
            profile,
            session,
            issued_at,
        } => mint(&aud, ttl, &profile, session, issued_at),
    }
}

fn local_key() -> Result<SigningKey, String> {
    let location = KeyLocation::for_this_process().map_err(|e| e.to_string())?;
    SigningKey::load_or_create(location).map_err(|e| e.to_string())
}

fn jwks() -> ExitCode {
    match local_key() {
        Ok(key) => {
            let set = Jwks {
                keys: vec![key.jwk().clone()],
            };
            match serde_json::to_string_pretty(&set) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Err(e) => fail(&e),
    }
}

fn trusted(jwks: Option<&Path>) -> Result<Jwks, String> {
    match jwks {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a JWKS ({{\"keys\": [...]}}): {e}", path.display()))
        }
        None => Ok(Jwks {
            keys: vec![local_key()?.jwk().clone()],
        }),
    }
}

fn verify(
    aud: &str,
    jwks: Option<&Path>,
    leeway: u64,
    expect: Expect,
    tokens: &[String],
) -> ExitCode {
    if let Some(d) = &expect.argv_sha256 {
        if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
            return fail("--argv-sha256 takes a SHA-256 digest: 64 hexadecimal digits");
        }
    }
    let verifier =
        match trusted(jwks).and_then(|set| Verifier::new(&set, aud).map_err(|e| e.to_string())) {
            Ok(mut v) => {
                v.leeway = leeway;
                v.expect = expect;
                v
            }
            Err(e) => return fail(&e),
        };
    let mut all: Vec<String> = Vec::new();
    for t in tokens {
        if t == "-" {
            all.extend(std::io::stdin().lock().lines().map_while(Result::ok));
        } else {
            all.push(t.clone());
        }
    }
    let mut ok = true;
    for (n, token) in all.iter().enumerate() {
        match verifier.verify(token, cordon::identity::unix_now()) {
            Ok(claims) => match serde_json::to_string(&claims) {
                Ok(json) => println!("{json}"),
                Err(e) => return fail(&e.to_string()),
            },
            Err(e) => {
                ok = false;
                eprintln!("cordon: token {}: refused: {e}", n + 1);
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn mint(
    aud: &[String],
    ttl: Duration,
    profile: &str,
    session: Option<String>,
    issued_at: Option<u64>,
) -> ExitCode {
    let session = match session {
        Some(s) => s,
        None => {
            let mut b = [0u8; 16];
            if let Err(e) = cordon::sys::getrandom(&mut b) {
                return fail(&format!("the kernel's random source failed: {e}"));
            }
            b.iter().map(|x| format!("{x:02x}")).collect()
        }
    };
    // Path segments of the SPIFFE ID: keep them to what cordon names.
    let segment = |s: &str| {
        (1..=64).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if !segment(profile) || !segment(&session) {
        return fail(
            "--profile and --session must be 1-64 characters of letters, digits, `-` and `_`",
        );
    }
    let issuer = match local_key() {
        Ok(k) => Issuer::new(k),
        Err(e) => return fail(&e),
    };
    let binding = Binding {
        session: &session,
        profile,
        intent: None,
        chain: &[],
        call: None,
    };
    let now = issued_at.unwrap_or_else(cordon::identity::unix_now);
    match issuer.mint(&binding, aud, ttl, now) {
        Ok((token, _)) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("cordon: {message}");
    ExitCode::FAILURE
}
