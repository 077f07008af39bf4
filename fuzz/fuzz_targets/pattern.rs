//! The argv pattern compiler and matcher: tokens and arguments from the
//! input (split at 0x00, the halves at 0xff); never a panic, and `**`
//! alone matches everything.
#![no_main]
use cordon::policy::compile_pattern;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (pat, args) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let tokens: Vec<String> = pat
        .split(|&b| b == 0)
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect();
    let args: Vec<&[u8]> = args.split(|&b| b == 0).collect();
    if let Ok(p) = compile_pattern(&tokens) {
        let _ = p.matches(&args);
    }
    let all = compile_pattern(&["**".to_string()]).expect("** compiles");
    assert!(all.matches(&args));
});
