//! The sub-agent subset check on arbitrary profile pairs (the text a
//! sub-agent hands `cordon-shim spawn` is the agent's): never a panic; a
//! profile is always within itself; and a profile with every grant and
//! rule of its parent removed is within it.
#![no_main]
use cordon::profile::{load_text, widenings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Two profiles, split at the first form feed (the child is the second).
    let (parent, child) = text.split_once('\u{c}').unwrap_or((text, text));
    let name = std::path::Path::new("fuzz.toml");
    let (Ok(parent), Ok(child)) = (load_text(name, parent), load_text(name, child)) else {
        return;
    };
    assert!(widenings(&parent, &parent, None).is_empty(), "a profile widens itself");
    let _ = widenings(&child, &parent, None);
    let mut nothing = child.clone();
    nothing.filesystem = Default::default();
    nothing.network = Default::default();
    nothing.tools.clear();
    nothing.secrets.clear();
    nothing.syscalls.deny = parent.syscalls.deny.clone();
    nothing.syscalls.on_violation = parent.syscalls.on_violation;
    nothing.divergence = parent.divergence.clone();
    nothing.limits = parent.limits.clone();
    nothing.approval = parent.approval.clone();
    nothing.environment = Default::default();
    nothing.best_effort = parent.best_effort;
    nothing.stop_grace = parent.stop_grace;
    let w = widenings(&nothing, &parent, None);
    assert!(w.is_empty(), "an empty profile widens its parent: {w:?}");
});
