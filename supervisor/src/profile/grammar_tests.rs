// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::profile::layer::Layer;
use crate::profile::parse::parse_layer;

fn walk(src: &str) -> (Option<Layer>, Vec<String>) {
    let mut diags = Vec::new();
    let layer = parse_layer(Arc::from(Path::new("p.toml")), src, &mut diags);
    let msgs = diags
        .iter()
        .map(|d| format!("{}:{}: {}", d.location.line, d.location.column, d.message))
        .collect();
    (layer, msgs)
}

fn assert_errors(src: &str, want: &[&str]) {
    let (_, errs) = walk(src);
    for w in want {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing {w:?} in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
}

#[test]
fn every_shipped_grammar_parses() {
    for (name, _) in SHIPPED_GRAMMARS {
        let g = shipped_grammar(name).unwrap();
        let g = g.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.name, name);
    }
    assert!(shipped_grammar("nope").is_none());
}

#[test]
fn a_tool_with_a_shipped_grammar_and_option_rules_parses() {
    let src = r#"[tools.git]
path = "/usr/bin/git"
grammar = "git"
unknown = "approve"
allow = [{ argv = ["status", "**"], examples = { match = [["-c", "core.hooksPath=/dev/null", "status"]], no_match = [["-c", "x=y", "status"]] } }]
[tools.git.options]
"-c" = { allow = ["core.hooksPath=/dev/null"], approve = ["user.*"] }
"--no-optional-locks" = { neutral = true }
"push --push-option" = { approve = ["*"] }
"#;
    let (l, errs) = walk(src);
    assert!(errs.is_empty(), "{errs:#?}");
    let git = &l.unwrap().tools["git"];
    let g = git.grammar.as_ref().unwrap();
    assert_eq!(g.shipped.as_deref(), Some("git"));
    assert_eq!(g.unknown, Unknown::Approve);
    assert_eq!(g.unknown_origin.line, 4);
    assert_eq!(g.options.len(), 3);
    assert_eq!(g.options[2].scope, "push");
    assert_eq!(g.options[2].key(), "push --push-option");
}

#[test]
fn grammar_mistakes_are_reported_at_their_place() {
    let src = r#"[tools.git]
path = "/usr/bin/git"
grammar = "gti"
allow = [["status"]]
[tools.make]
path = "/usr/bin/make"
unknown = "approve"
allow = [["**"]]
[tools.g2]
path = "/usr/bin/git"
grammar = 3
allow = [["status"]]
"#;
    assert_errors(
        src,
        &[
            "3:11: no shipped grammar `gti`; shipped: git, make, find, grep, curl",
            "7:11: `unknown` only applies to a tool with a `grammar`",
            "11:11: `grammar` expects the name of a shipped grammar",
        ],
    );
}

#[test]
fn option_rule_mistakes_are_reported_at_their_key() {
    let src = r#"[tools.git]
path = "/usr/bin/git"
grammar = "git"
allow = [["status"]]
[tools.git.options]
"--git-dir" = { neutral = true }
"--no-optional-locks" = { allow = ["x"] }
"commit -m" = { allow = ["*"] }
"frob --x" = { allow = ["*"] }
"-c" = { allow = ["[x"] }
"--bare" = {}
"-C" = { alow = ["x"] }
"#;
    assert_errors(
        src,
        &[
            "6:1: `--git-dir`: `--git-dir` takes a value; list the values it may have in `allow`",
            "7:1: `--no-optional-locks`: `--no-optional-locks` takes no value",
            "8:1: `commit -m`: git commit has no option spelled `-m` in the canonical form (`-m` is written `--message`)",
            "9:1: `frob --x`: grammar git has no subcommand `frob`",
            "10:19: value glob \"[x\": token 0 \"[x\": unclosed `[`",
            "11:12: option rule `--bare` says nothing",
            "12:10: unknown key `alow` in option rule `-C`",
            "12:8: option rule `-C` says nothing",
        ],
    );
}

#[test]
fn a_rule_token_that_no_canonical_argv_has_is_an_error() {
    // The rules of a profile written before grammars: `-f` and `-[df]*`
    // would never match once `-f` is canonicalised to `--force`.
    let src = r#"[tools.git]
path = "/usr/bin/git"
grammar = "git"
allow = [["status", "**"]]
deny = [["push", "**", "-f", "**"], ["push", "**", "-[df]*", "**"], ["push", "--forc*"], ["push", "--", "-f"], ["-c", "**"]]
"#;
    assert_errors(
        src,
        &[
            "5:24: rule deny[0]: `-f` can never match: grammar git writes that option `--force` in push in the canonical form",
            "5:52: rule deny[1]: `-[df]*` can never match: no option of git push is spelled so",
            "5:113: rule deny[4]: `-c` can never match: grammar git writes that option `-c=...` in the canonical form",
        ],
    );
}

#[test]
fn examples_are_checked_in_their_canonical_form() {
    let src = r#"[tools.git]
path = "/usr/bin/git"
grammar = "git"
allow = [{ argv = ["commit", "--message=*"], examples = { match = [["commit", "-m", "x"], ["commit", "-am", "x"], ["commit", "--frob"]], no_match = [["commit", "-mx"], ["commit", "--frob"]] } }]
"#;
    assert_errors(
        src,
        &[
            "4:91: example [\"commit\", \"-am\", \"x\"] (canonical form [\"commit\", \"--all\", \"--message=x\"]) is not matched by rule allow[0]",
            "4:115: example [\"commit\", \"--frob\"] never reaches rule allow[0] [\"commit\", \"--message=*\"]: grammar git cannot classify it (git commit: unknown option `--frob`)",
            "4:150: example [\"commit\", \"-mx\"] (canonical form [\"commit\", \"--message=x\"]) is matched by rule allow[0]",
        ],
    );
}

#[test]
fn a_grammar_written_in_the_profile() {
    let src = r#"[tools.deploy]
path = "/usr/bin/true"
allow = [{ argv = ["--env=staging", "**"], examples = { match = [["-e", "staging"], ["--env", "staging", "-v"], ["-estaging", "--verb"]], no_match = [["--env=prod"], ["-x"], ["-vestaging"]] } }]
[tools.deploy.grammar]
abbrev = true
bundle = true
options = ["-e, --env <name>", "-v, --[no-]verbose"]
[tools.deploy.grammar.subcommands.x]
options = ["--y"]
"#;
    let (l, errs) = walk(src);
    assert!(errs.is_empty(), "{errs:#?}");
    let g = l.unwrap().tools["deploy"].grammar.clone().unwrap();
    assert_eq!(g.grammar.name, "deploy");
    assert_eq!(g.shipped, None);
    let bad = r#"[tools.deploy]
path = "/usr/bin/true"
allow = [["**"]]
[tools.deploy.grammar]
abrev = true
style = "dos"
options = ["-e, --env <name>", "-e", "--x junk", 5]
[tools.deploy.grammar.subcommands.a]
like = "b"
"#;
    assert_errors(
        bad,
        &[
            "5:1: unknown key `abrev` in a grammar; did you mean `abbrev`?",
            "6:9: `style` must be \"gnu\" or \"find\", got \"dos\"",
        ],
    );
    let bad = r#"[tools.deploy]
path = "/usr/bin/true"
allow = [["**"]]
[tools.deploy.grammar]
options = ["-e, --env <name>", "-e", "--x junk"]
[tools.deploy.grammar.subcommands.a]
like = "b"
"#;
    assert_errors(
        bad,
        &[
            "5:38: option spec \"--x junk\": `junk` is neither a value `<...>` nor a flag",
            "5:11: `-e` is declared twice in deploy (options 0 and 1)",
            "7:8: `like = \"b\"`: no subcommand `b` with `options`",
        ],
    );
    let dup = r#"[tools.deploy]
path = "/usr/bin/true"
allow = [["**"]]
[tools.deploy.grammar]
options = ["-e, --env <name>", "-e"]
"#;
    assert_errors(
        dup,
        &["5:11: `-e` is declared twice in deploy (options 0 and 1)"],
    );
}
