//! The redactor: a secret (from the first bytes) planted in text, fed in
//! chunks (sizes from the input); the raw secret never comes out.
#![no_main]
use cordon::secrets::{Redactor, SecretValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let n = usize::from(data[0] % 48) + 4;
    let chunk = usize::from(data[1]).max(1);
    let rest = &data[2..];
    if rest.len() < n {
        return;
    }
    // High bytes only: the marker is ASCII, so an occurrence in the output
    // can only be an unmasked one, never marker text next to a neighbour.
    let secret: Vec<u8> = rest[..n].iter().map(|b| b | 0x80).collect();
    let value = SecretValue::from(secret.clone());
    let Ok(redactor) = Redactor::new(&[&value]) else {
        return;
    };
    let mut text = rest[n..].to_vec();
    let at = text.len() / 2;
    text.splice(at..at, secret.iter().copied());
    let mut stream = redactor.stream();
    let mut out = Vec::new();
    for c in text.chunks(chunk) {
        stream.push(c, &mut out);
    }
    stream.finish(&mut out);
    assert!(
        !out.windows(secret.len()).any(|w| w == secret.as_slice()),
        "the secret came through"
    );
});
