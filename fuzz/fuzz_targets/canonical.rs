//! The argv canonicaliser of every shipped grammar: the first byte picks
//! the grammar, the rest is the argv (split at 0x00). Never a panic; a
//! classified argv records each option at a token that starts with its
//! canonical spelling, and its value (if any) is the rest of that token.
#![no_main]
use cordon::policy::canonicalize;
use cordon::profile::{shipped_grammar, SHIPPED_GRAMMARS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (name, _) = SHIPPED_GRAMMARS[usize::from(pick) % SHIPPED_GRAMMARS.len()];
    let Some(Ok(g)) = shipped_grammar(name) else {
        panic!("shipped grammar {name} does not parse");
    };
    let args: Vec<&[u8]> = rest.split(|&b| b == 0).collect();
    match canonicalize(&g, &args) {
        Ok(c) => {
            for hit in &c.options {
                let token = &c.tokens[hit.token];
                if let Some(at) = hit.value_at {
                    assert!(at >= 2 && token[at - 1] == b'=', "{token:?}");
                }
                assert!(token.first() == Some(&b'-') || matches!(token.as_slice(), b"(" | b")" | b"!" | b","));
            }
        }
        Err(u) => {
            assert!(u.at < args.len().max(1), "{u}");
            let _ = u.to_string();
        }
    }
});
