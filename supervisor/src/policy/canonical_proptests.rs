// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

//! Properties of canonicalisation, over the shipped grammars and profile:
//! every spelling a tool accepts for a call has the same canonical form
//! (so a rule's examples hold in every spelling, and a denied call stays
//! denied however it is spelled), and what cannot be classified is never
//! allowed.

use proptest::prelude::*;

use super::argv_tests::coding_agent;
use super::canonical::{canonicalize, Canonical};
use super::canonical_tests::shipped;
use super::grammar::{Command, Grammar, Style, Takes, Target};
use super::{compile_pattern, CompiledGrammar, Verdict};

/// Choices, consumed one at a time (0 when exhausted).
struct Dice<'a>(&'a [u8], usize);

impl Dice<'_> {
    fn pick(&mut self, n: usize) -> usize {
        let b = self.0.get(self.1).copied().unwrap_or(0);
        self.1 += 1;
        if n == 0 {
            0
        } else {
            usize::from(b) % n
        }
    }
}

/// Every long name (or unique prefix of one) that reaches `t`.
fn long_spellings(cmd: &Command, t: Target) -> Vec<Vec<u8>> {
    let o = cmd.option(t);
    let names = if t.negated { &o.negations } else { &o.longs };
    let mut out = Vec::new();
    for name in names {
        let name = name.as_bytes();
        out.push(name.to_vec());
        if !cmd.syntax.abbrev {
            continue;
        }
        for len in 3..name.len() {
            let p = &name[..len];
            let same = |x: Target| x.option == t.option && x.negated == t.negated;
            let unique = cmd.prefixed(p).all(|(_, x)| same(x));
            if unique && cmd.exact(p).is_none_or(same) {
                out.push(p.to_vec());
            }
        }
    }
    out
}

/// One way to write an option: its arguments, the letters it adds to a
/// bundle of short options (if it may join one), whether it ends the bundle.
type Way = (Vec<Vec<u8>>, Option<Vec<u8>>, bool);

/// Writes `c` (the canonical form of some argv) in another spelling the
/// tool accepts, chosen by `dice`.
fn respell(g: &Grammar, c: &Canonical, dice: &mut Dice<'_>) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut cmd = &g.main;
    // A bundle of short options being built, and whether another may join.
    let mut bundle_open = false;
    let mut last_was_digits = false;
    let mut hits = c.options.iter().peekable();
    let mut ended = false;
    for (i, token) in c.tokens.iter().enumerate() {
        let hit = match hits.peek() {
            Some(h) if h.token == i => hits.next().copied(),
            _ => None,
        };
        let Some(h) = hit.filter(|_| !ended) else {
            if token == b"--" || (cmd.syntax.end_of_options && token == b"--end-of-options") {
                ended = true;
            }
            if let (false, Some((_, sub))) = (ended, g.subcommand(token)) {
                if std::ptr::eq(cmd, &g.main) && !g.subcommands.is_empty() {
                    cmd = sub;
                }
            }
            out.push(token.clone());
            bundle_open = false;
            continue;
        };
        let t = Target {
            option: h.option,
            negated: h.negated,
        };
        let o = cmd.option(t);
        let value = h.value(&c.tokens).map(<[u8]>::to_vec);
        let digits = cmd.digits_target() == Some(h.option)
            && value
                .as_deref()
                .is_some_and(|v| !v.is_empty() && v.iter().all(u8::is_ascii_digit));
        let gnu = cmd.syntax.style == Style::Gnu;
        let mut ways: Vec<Way> = Vec::new();
        if digits {
            let v = value.clone().unwrap_or_default();
            ways.push((vec![[b"-".as_slice(), &v].concat()], Some(v), false));
        }
        for name in long_spellings(cmd, t) {
            match (&o.takes, &value) {
                (_, None) => ways.push((vec![name], None, false)),
                (Takes::Value { attached, separate }, Some(v)) => {
                    if *attached && cmd.syntax.equals && gnu {
                        ways.push((vec![[name.as_slice(), b"=", v].concat()], None, false));
                    }
                    if *attached && !gnu {
                        // find: `-O3`.
                        ways.push((vec![[name.as_slice(), v].concat()], None, false));
                    }
                    if *separate {
                        ways.push((vec![name.clone(), v.clone()], None, false));
                    }
                }
                (Takes::Optional { next }, Some(v)) => {
                    if cmd.syntax.equals && gnu {
                        ways.push((vec![[name.as_slice(), b"=", v].concat()], None, false));
                    }
                    if next.takes(v) {
                        ways.push((vec![name.clone(), v.clone()], None, false));
                    }
                }
                _ => {}
            }
        }
        if !t.negated && gnu {
            for &s in &o.shorts {
                let short = vec![b'-', s];
                match (&o.takes, &value) {
                    (Takes::Nothing, _) => ways.push((vec![short], Some(vec![s]), false)),
                    (Takes::Optional { .. }, None) => {
                        // It would take the rest of a bundle as its value.
                        ways.push((vec![short], Some(vec![s]), true));
                    }
                    (Takes::Optional { next }, Some(v)) if !v.is_empty() => {
                        ways.push((
                            vec![[short.as_slice(), v].concat()],
                            Some([&[s][..], v].concat()),
                            true,
                        ));
                        if next.takes(v) {
                            ways.push((vec![short.clone(), v.clone()], Some(vec![s]), true));
                        }
                    }
                    (Takes::Value { attached, separate }, Some(v)) => {
                        if *attached && !v.is_empty() {
                            ways.push((
                                vec![[short.as_slice(), v].concat()],
                                Some([&[s][..], v].concat()),
                                true,
                            ));
                        }
                        if *separate {
                            ways.push((vec![short.clone(), v.clone()], Some(vec![s]), true));
                        }
                    }
                    _ => {}
                }
            }
        }
        if !gnu && ways.is_empty() {
            out.push(token.clone());
            continue;
        }
        let (tokens, joinable, closes) = ways.swap_remove(dice.pick(ways.len()));
        let join = bundle_open
            && cmd.syntax.bundle
            && joinable.is_some()
            && !(digits && last_was_digits)
            && dice.pick(2) == 1;
        match (join, joinable) {
            (true, Some(letters)) => {
                if let Some(prev) = out.last_mut() {
                    prev.extend_from_slice(&letters);
                }
                out.extend(tokens.into_iter().skip(1));
            }
            _ => out.extend(tokens.iter().cloned()),
        }
        // A bundle may grow only from a short whose letters end the token
        // (`-4` may take more letters; `--context=4`, the same option
        // spelled long, may not).
        let single = out
            .last()
            .is_some_and(|l| l.len() >= 2 && l[0] == b'-' && l[1] != b'-');
        bundle_open = single && !closes && ((gnu && value.is_none()) || digits);
        last_was_digits = digits;
    }
    out
}

fn canonical_of(g: &Grammar, args: &[Vec<u8>]) -> Option<Canonical> {
    let a: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    canonicalize(g, &a).ok()
}

/// An argv for `g` built from its own option specs: each option in its
/// most explicit spelling, with a value from a small set.
fn seed_argv(g: &Grammar, picks: &[u8]) -> Vec<Vec<u8>> {
    let mut d = Dice(picks, 0);
    let mut out: Vec<Vec<u8>> = Vec::new();
    let values: [&[u8]; 6] = [b"x", b"4", b"a=b", b"-v", b"", b"2.5"];
    let operands: [&[u8]; 4] = [b"origin", b"main", b"src", b"."];
    let mut cmd = &g.main;
    let emit = |cmd: &Command, d: &mut Dice<'_>, out: &mut Vec<Vec<u8>>| {
        let o = &cmd.options[d.pick(cmd.options.len())];
        let name = o.canonical.as_bytes().to_vec();
        let v = values[d.pick(values.len())].to_vec();
        match o.takes {
            Takes::Nothing => out.push(name),
            Takes::Value { separate: true, .. } => {
                out.push(name);
                out.push(v);
                if o.arity == 2 {
                    out.push(b"%p".to_vec());
                }
            }
            Takes::Value { .. } => out.push([name.as_slice(), b"=", &v].concat()),
            Takes::Optional { .. } if d.pick(2) == 0 => out.push(name),
            Takes::Optional { .. } => out.push([name.as_slice(), b"=", &v].concat()),
            Takes::Command => {
                out.push(name);
                out.push(b"rm".to_vec());
                out.push(b"{}".to_vec());
                out.push(b";".to_vec());
            }
        }
    };
    if g.main.syntax.style == Style::Find {
        out.push(b".".to_vec());
        for _ in 0..d.pick(5) {
            let o = &cmd.options[d.pick(cmd.options.len())];
            if !o.leading {
                emit_find(o, &mut out, &values, &mut d);
            }
        }
        return out;
    }
    for _ in 0..d.pick(3) {
        emit(cmd, &mut d, &mut out);
    }
    if !g.subcommands.is_empty() {
        let (name, sub) = &g.subcommands[d.pick(g.subcommands.len())];
        out.push(name.as_bytes().to_vec());
        cmd = sub;
    }
    for _ in 0..d.pick(6) {
        if d.pick(4) == 0 {
            out.push(operands[d.pick(operands.len())].to_vec());
        } else {
            emit(cmd, &mut d, &mut out);
        }
    }
    out
}

fn emit_find(
    o: &super::grammar::OptSpec,
    out: &mut Vec<Vec<u8>>,
    values: &[&[u8]],
    d: &mut Dice<'_>,
) {
    let name = o.canonical.as_bytes().to_vec();
    match o.takes {
        Takes::Value { .. } => {
            out.push(name);
            out.push(values[d.pick(values.len())].to_vec());
            if o.arity == 2 {
                out.push(b"%p".to_vec());
            }
        }
        Takes::Command => {
            out.push(name);
            out.push(b"rm".to_vec());
            out.push(b";".to_vec());
        }
        _ => out.push(name),
    }
}

fn grammar_name() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("git"),
        Just("make"),
        Just("grep"),
        Just("curl"),
        Just("find")
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Every spelling of a call has the call's canonical form.
    #[test]
    fn every_accepted_spelling_has_the_same_canonical_form(
        name in grammar_name(),
        picks in prop::collection::vec(any::<u8>(), 0..40),
        dice in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let g = shipped(name);
        let seed = seed_argv(&g, &picks);
        let Some(c) = canonical_of(&g, &seed) else {
            // An option whose value the seed wrote ambiguously; not a
            // spelling question.
            return Ok(());
        };
        let spelled = respell(&g, &c, &mut Dice(&dice, 0));
        let again = canonical_of(&g, &spelled);
        prop_assert!(again.is_some(), "{name}: {:?} respelled as {:?} is not accepted", show(&seed), show(&spelled));
        prop_assert_eq!(&again.unwrap().tokens, &c.tokens, "{} {:?} respelled {:?}", name, show(&seed), show(&spelled));
    }

    /// However a call is spelled, the shipped profile decides it alike: a
    /// denied call stays denied, an allowed one allowed.
    #[test]
    fn the_decision_does_not_depend_on_the_spelling(
        name in prop_oneof![Just("git"), Just("make"), Just("grep"), Just("find")],
        picks in prop::collection::vec(any::<u8>(), 0..40),
        dice in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let p = coding_agent();
        let g = shipped(name);
        let seed = seed_argv(&g, &picks);
        let Some(c) = canonical_of(&g, &seed) else { return Ok(()); };
        let spelled = respell(&g, &c, &mut Dice(&dice, 0));
        let a: Vec<&[u8]> = seed.iter().map(Vec::as_slice).collect();
        let b: Vec<&[u8]> = spelled.iter().map(Vec::as_slice).collect();
        let (da, db) = (p.decide(name, &a), p.decide(name, &b));
        prop_assert_eq!(da.verdict, db.verdict, "{:?} vs {:?}: {} / {}", show(&seed), show(&spelled), da.reason, db.reason);
        prop_assert_eq!(da.rule, db.rule);
    }

    /// A call the grammar cannot classify is never allowed, whatever
    /// fragments of option names it is made of.
    #[test]
    fn what_cannot_be_classified_is_never_allowed(
        name in prop_oneof![Just("git"), Just("make"), Just("grep"), Just("find")],
        parts in prop::collection::vec((0usize..400, 0usize..12, any::<bool>()), 0..6),
    ) {
        let p = coding_agent();
        let g = shipped(name);
        // Fragments of real names: prefixes, bundles of letters, values.
        let mut names: Vec<String> = g.commands().flat_map(|(_, c)| c.options.iter().flat_map(|o| o.longs.clone().into_iter().chain(o.negations.clone()).chain(o.shorts.iter().map(|s| format!("-{}", char::from(*s)))))).collect();
        names.extend(g.subcommands.iter().map(|(n, _)| n.clone()));
        names.sort();
        let argv: Vec<Vec<u8>> = parts.iter().map(|(i, cut, eq)| {
            let n = &names[i % names.len()];
            let cut = (n.len().saturating_sub(*cut)).max(1);
            let mut a = n.as_bytes()[..cut].to_vec();
            if *eq { a.extend_from_slice(b"=x"); }
            a
        }).collect();
        let a: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        let d = p.decide(name, &a);
        if canonicalize(&g, &a).is_err() {
            prop_assert_ne!(d.verdict, Verdict::Allow, "{:?}: {}", show(&argv), d.reason);
            prop_assert!(d.canonical.is_none());
        } else {
            prop_assert!(d.canonical.is_some());
        }
    }
}

fn show(a: &[Vec<u8>]) -> Vec<String> {
    a.iter()
        .map(|x| String::from_utf8_lossy(x).into_owned())
        .collect()
}

/// The examples of every rule of the shipped profile, respelled many
/// ways, still match (or not) as written.
#[test]
fn the_shipped_examples_hold_in_every_spelling() {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../profiles/coding-agent.toml");
    let profile = crate::profile::load(&path).unwrap();
    let mut checked = 0;
    for (name, tool) in &profile.tools {
        let Some(tg) = &tool.grammar else { continue };
        let cg = CompiledGrammar::compile(tg).unwrap();
        for rule in tool.allow.iter().chain(&tool.approve).chain(&tool.deny) {
            let pattern = compile_pattern(&rule.tokens).unwrap();
            let all = rule
                .examples_match
                .iter()
                .map(|e| (e, true))
                .chain(rule.examples_no_match.iter().map(|e| (e, false)));
            for (example, want) in all {
                let bytes: Vec<&[u8]> = example.iter().map(|a| a.as_bytes()).collect();
                let Ok(c) = canonicalize(&tg.grammar, &bytes) else {
                    continue;
                };
                for seed in 0u8..64 {
                    let dice: Vec<u8> = (0..64u8)
                        .map(|i| i.wrapping_mul(seed.wrapping_add(7)).wrapping_add(seed))
                        .collect();
                    let spelled = respell(&tg.grammar, &c, &mut Dice(&dice, 0));
                    let s: Vec<&[u8]> = spelled.iter().map(Vec::as_slice).collect();
                    let got = match cg.rule_view(&s) {
                        Ok(view) => {
                            pattern.matches(&view.iter().map(Vec::as_slice).collect::<Vec<_>>())
                        }
                        Err(_) => false,
                    };
                    assert_eq!(
                        got,
                        want,
                        "{name} {:?} respelled {:?}",
                        example,
                        show(&spelled)
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 5000, "{checked}");
}
