//! Throughput of the output redactor: 256 MB of pseudo-random printable
//! text through a [`Redactor`] holding one 40-byte secret (all its forms),
//! in 64 KiB chunks, as a tool's stdout would arrive. Prints MB/s, the
//! median of 5 runs; then the same with the secret, raw or base64'd,
//! planted once per 64 KiB across chunk boundaries, checking every plant
//! is masked; then 17 secrets, too many patterns for the SIMD searcher.
//!
//! Run: `cargo bench -p cordon --bench redact`. Not part of `cargo test`.

use std::hint::black_box;
use std::time::Instant;

use cordon::secrets::{Redactor, SecretValue, MARKER};

const TOTAL: usize = 256 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
const RUNS: usize = 5;
const SECRET: &[u8] = b"ghp_R3dactB3nchCanary0123456789abcdefXYZ";
/// base64("user:" + SECRET), standard alphabet.
const SECRET_BASIC: &[u8] = b"dXNlcjpnaHBfUjNkYWN0QjNuY2hDYW5hcnkwMTIzNDU2Nzg5YWJjZGVmWFla";

/// xorshift64: deterministic, no dependency.
fn printable_text(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        for byte in state.to_le_bytes() {
            // 95 printable characters and a newline now and then.
            let c = match byte % 96 {
                95 => b'\n',
                n => b' ' + n,
            };
            out.push(c);
        }
    }
    out.truncate(len);
    out
}

/// Median MB/s of `text` through `redactor`, and the output of the last run.
fn measure(redactor: &Redactor, text: &[u8]) -> (f64, Vec<u8>) {
    let mut rates = Vec::with_capacity(RUNS);
    let mut all = Vec::with_capacity(text.len());
    let mut out = Vec::with_capacity(CHUNK + redactor.longest_pattern());
    for _ in 0..RUNS {
        all.clear();
        let mut stream = redactor.stream();
        let start = Instant::now();
        for chunk in text.chunks(CHUNK) {
            out.clear();
            stream.push(black_box(chunk), &mut out);
            all.extend_from_slice(black_box(&out));
        }
        out.clear();
        stream.finish(&mut out);
        all.extend_from_slice(&out);
        rates.push(text.len() as f64 / 1e6 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    (rates[RUNS / 2], all)
}

fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(1);
}

fn main() {
    let secret = SecretValue::new(SECRET.to_vec());
    let redactor =
        Redactor::new(&[&secret]).unwrap_or_else(|e| fail(&format!("bench redactor: {e}")));
    let mut text = printable_text(TOTAL);
    println!(
        "redact: 1 secret of {} bytes, {} patterns (longest {}), {} MB in {} KiB chunks, median of {RUNS}",
        secret.len(),
        redactor.pattern_count(),
        redactor.longest_pattern(),
        TOTAL / 1_000_000,
        CHUNK / 1024
    );
    let (rate, out) = measure(&redactor, &text);
    if out != text {
        fail("the redactor changed secret-free text");
    }
    println!("no secret in the text:       {rate:.0} MB/s");

    // Plant the secret across each chunk boundary, raw and base64'd in turn.
    let mut planted = 0;
    for (i, at) in (CHUNK - 20..TOTAL - 100).step_by(CHUNK).enumerate() {
        let form = if i % 2 == 0 { SECRET } else { SECRET_BASIC };
        text[at..at + form.len()].copy_from_slice(form);
        planted += 1;
    }
    let (rate, out) = measure(&redactor, &text);
    let markers = out.windows(MARKER.len()).filter(|w| *w == MARKER).count();
    if markers != planted {
        fail(&format!("{planted} planted, {markers} masked"));
    }
    println!("a secret form every 64 KiB:  {rate:.0} MB/s ({markers} masked)");

    // Beyond what the SIMD searcher takes: the automaton.
    let many: Vec<SecretValue> = (0..16)
        .map(|i| SecretValue::new(format!("another-secret-{i:02}-of-40-bytes-Zq/+{i:04}").into()))
        .chain([secret])
        .collect();
    let refs: Vec<&SecretValue> = many.iter().collect();
    let redactor = Redactor::new(&refs).unwrap_or_else(|e| fail(&format!("bench redactor: {e}")));
    let (rate, out) = measure(&redactor, &text);
    let markers = out.windows(MARKER.len()).filter(|w| *w == MARKER).count();
    if markers != planted {
        fail(&format!("{planted} planted, {markers} masked"));
    }
    println!(
        "17 secrets, {} patterns:     {rate:.0} MB/s (DFA, no prefilter)",
        redactor.pattern_count()
    );
}
