// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn every_shipped_grammar_parses() {
    for (name, _) in SHIPPED_GRAMMARS {
        let g = shipped_grammar(name).unwrap();
        let g = g.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.name, name);
    }
    assert!(shipped_grammar("nope").is_none());
}
