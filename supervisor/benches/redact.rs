//! Throughput of the output redactor: 256 MB of pseudo-random printable
//! text through a [`Redactor`] holding one 40-byte secret (all its forms),
//! in 64 KiB chunks, as a tool's stdout would arrive. Prints MB/s, the
//! median of 5 runs.
//!
//! Run: `cargo bench -p cordon --bench redact`. Not part of `cargo test`.

use std::hint::black_box;
use std::time::Instant;

use cordon::secrets::{Redactor, SecretValue};

const TOTAL: usize = 256 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
const RUNS: usize = 5;

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

fn main() {
    let secret = SecretValue::new(b"ghp_R3dactB3nchCanary0123456789abcdefXYZ".to_vec());
    let redactor = match Redactor::new(&[&secret]) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench redactor does not build: {e}");
            std::process::exit(1);
        }
    };
    let text = printable_text(TOTAL);
    let mut out = Vec::with_capacity(CHUNK + redactor.longest_pattern());
    let mut rates = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let mut stream = redactor.stream();
        let mut emitted = 0usize;
        let start = Instant::now();
        for chunk in text.chunks(CHUNK) {
            out.clear();
            stream.push(black_box(chunk), &mut out);
            emitted += black_box(&out).len();
        }
        out.clear();
        stream.finish(&mut out);
        emitted += out.len();
        let secs = start.elapsed().as_secs_f64();
        if emitted != TOTAL {
            eprintln!("the redactor changed secret-free text: {emitted} bytes out of {TOTAL}");
            std::process::exit(1);
        }
        rates.push(TOTAL as f64 / 1e6 / secs);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "redact: 1 secret of {} bytes, {} patterns (longest {}), {} MB in {} KiB chunks",
        secret.len(),
        redactor.pattern_count(),
        redactor.longest_pattern(),
        TOTAL / 1_000_000,
        CHUNK / 1024
    );
    println!(
        "median {:.0} MB/s over {RUNS} runs (min {:.0}, max {:.0})",
        rates[RUNS / 2],
        rates[0],
        rates[RUNS - 1]
    );
}
