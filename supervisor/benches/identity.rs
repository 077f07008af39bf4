//! What a workload identity token costs: minting one (the broker does it
//! when a call or a session is handed an `identity:jwt` secret: claims,
//! a fresh `jti` from the kernel, an ES256 signature) and checking one as
//! a relying party would (signature against the JWKS, audience, window,
//! replay cache). Session-bound and call-bound tokens, medians and p99
//! of 2000 samples of 20 operations each.
//!
//! Run: `cargo bench -p cordon --bench identity`. Not part of `cargo test`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cordon::identity::{Binding, CallBinding, Expect, Issuer, Jwks, SigningKey, Verifier};

const SAMPLES: usize = 2000;
const PER_SAMPLE: usize = 20;

fn report(what: &str, mut ns: Vec<f64>) {
    ns.sort_by(f64::total_cmp);
    let at = |per_mille: usize| ns[(ns.len() - 1) * per_mille / 1000];
    println!(
        "{what:<44} median {:>7.1} µs   p99 {:>7.1} µs",
        at(500) / 1e3,
        at(990) / 1e3
    );
}

fn sample(mut op: impl FnMut(usize)) -> Vec<f64> {
    let mut out = Vec::with_capacity(SAMPLES);
    let mut n = 0;
    for _ in 0..SAMPLES {
        let start = Instant::now();
        for _ in 0..PER_SAMPLE {
            op(n);
            n += 1;
        }
        out.push(start.elapsed().as_nanos() as f64 / PER_SAMPLE as f64);
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = Issuer::new(SigningKey::ephemeral()?);
    let chain = vec!["root-session".to_string()];
    let aud = vec!["https://api.example.com".to_string()];
    let ttl = Duration::from_secs(300);
    let now = cordon::identity::unix_now();
    let argv = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let session = Binding {
        session: "0b7c2f",
        profile: "coding-agent",
        intent: Some("fix the failing build"),
        chain: &chain,
        call: None,
    };
    let call = |id| Binding {
        call: Some(CallBinding {
            id,
            tool: "gh",
            argv_sha256: argv,
        }),
        ..session
    };

    report(
        "mint, session-bound",
        sample(|_| {
            black_box(issuer.mint(black_box(&session), &aud, ttl, now).ok());
        }),
    );
    report(
        "mint, call-bound",
        sample(|i| {
            black_box(issuer.mint(&call(i as u64), &aud, ttl, now).ok());
        }),
    );

    // Fresh tokens for the verifier: each is presented once (a second
    // presentation is a replay, refused by design).
    let total = SAMPLES * PER_SAMPLE;
    let mut tokens = Vec::with_capacity(total);
    for i in 0..total {
        tokens.push(issuer.mint(&call(i as u64), &aud, ttl, now)?.0);
    }
    let jwks = Jwks {
        keys: vec![issuer.key().jwk().clone()],
    };
    let mut verifier = Verifier::new(&jwks, &aud[0])?;
    verifier.expect = Expect {
        call: None,
        tool: Some("gh".into()),
        argv_sha256: Some(argv.into()),
    };
    let mut refused = 0usize;
    report(
        "verify (signature, audience, window, replay)",
        sample(|i| {
            if verifier.verify(black_box(&tokens[i]), now).is_err() {
                refused += 1;
            }
        }),
    );
    assert_eq!(refused, 0, "a fresh, well-formed token was refused");
    // And every one of them is now a replay.
    assert!(verifier.verify(&tokens[0], now).is_err());
    Ok(())
}
