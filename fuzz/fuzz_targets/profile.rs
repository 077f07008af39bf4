//! The profile parser and validator on arbitrary bytes: never a panic,
//! and an error always names file:line:column.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("cordon-fuzz-{}.toml", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Err(e) = cordon::profile::load(&path) {
        assert!(!e.diagnostics.is_empty(), "an error with no diagnostic");
        for d in &e.diagnostics {
            assert!(d.location.line >= 1 && d.location.column >= 1);
        }
    }
});
