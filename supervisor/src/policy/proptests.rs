// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::tests::{profile, rule, tool};
use super::*;

/// The obvious exponential matcher, as the reference: tokens are `**`, `*`
/// or a literal argument.
fn naive(tokens: &[&str], args: &[&str]) -> bool {
    match tokens.split_first() {
        None => args.is_empty(),
        Some((&"**", rest)) => (0..=args.len()).any(|k| naive(rest, &args[k..])),
        Some((t, rest)) => match args.split_first() {
            Some((a, more)) => (*t == "*" || t == a) && naive(rest, more),
            None => false,
        },
    }
}

fn token() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("**"), Just("*"), Just("a"), Just("b")]
}

fn arg() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("a"), Just("b"), Just("c")]
}

proptest! {
    #[test]
    fn double_star_agrees_with_the_naive_matcher(
        tokens in prop::collection::vec(token(), 0..7),
        args in prop::collection::vec(arg(), 0..8),
    ) {
        let owned: Vec<String> = tokens.iter().map(|s| s.to_string()).collect();
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let got = compile_pattern(&owned).unwrap().matches(&bytes);
        prop_assert_eq!(got, naive(&tokens, &args));
    }

    /// Whatever the order and place of rules, the strongest matching list
    /// decides.
    #[test]
    fn deny_beats_approve_beats_allow_in_any_order(
        lists in prop::collection::vec((0usize..3, prop::collection::vec(token(), 0..4)), 0..8),
        args in prop::collection::vec(arg(), 0..5),
    ) {
        let (mut allow, mut approve, mut deny) = (Vec::new(), Vec::new(), Vec::new());
        let mut hits = [false; 3];
        for (i, (list, tokens)) in lists.iter().enumerate() {
            let r = rule(tokens, u32::try_from(i).unwrap() + 1);
            hits[*list] |= naive(tokens, &args);
            match list {
                0 => allow.push(r),
                1 => approve.push(r),
                _ => deny.push(r),
            }
        }
        let policy = Policy::compile(&profile(vec![tool("t", allow, approve, deny)])).unwrap();
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let d = policy.decide("t", &bytes);
        let want = if hits[2] {
            Verdict::Deny
        } else if hits[1] {
            Verdict::Approve
        } else if hits[0] {
            Verdict::Allow
        } else {
            Verdict::Deny
        };
        prop_assert_eq!(d.verdict, want);
        prop_assert_eq!(d.rule.is_some(), hits.iter().any(|h| *h));
    }
}
