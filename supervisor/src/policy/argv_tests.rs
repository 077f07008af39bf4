// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use super::tests::{profile, rule, tool};
use super::*;
use crate::profile::{OptionRule, ToolGrammar, Unknown};

pub(super) fn coding_agent() -> Policy {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../profiles/coding-agent.toml");
    let p = crate::profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
    Policy::compile(&p).unwrap()
}

fn args(s: &str) -> Vec<&[u8]> {
    s.split(' ')
        .filter(|a| !a.is_empty())
        .map(str::as_bytes)
        .collect()
}

fn verdict(p: &Policy, tool: &str, argv: &str) -> Verdict {
    p.decide(tool, &args(argv)).verdict
}

#[test]
fn every_spelling_of_the_issue_is_refused_by_the_shipped_profile() {
    let p = coding_agent();
    for argv in [
        "push --del origin old",
        "push -d origin old",
        "push --mirr origin",
        "push --pru origin",
        "push --rece=sh origin",
        "push --rece sh origin",
        "push -f origin main",
        "push -uf origin main",
        "push origin main -fu",
        "push --force-w origin",
        "push --exe=sh origin",
        "push --forc origin",
        "push --frob origin",
        "fetch --upl sh origin",
        "-c core.pager=sh log",
        "-ccore.pager=sh log",
        "-C /elsewhere status",
        "--git-dir=/x status",
        "log --outp=/tmp/x",
        "diff --output /tmp/x",
        "filter-branch --tree-filter x",
        "st",
    ] {
        let d = p.decide("git", &args(argv));
        assert_eq!(d.verdict, Verdict::Deny, "git {argv}: {}", d.reason);
    }
    for argv in [
        "--eva x:;sh",
        "--eval=x:;sh all",
        "--fil other.mk",
        "-kf other.mk",
        "-kfother.mk",
        "--dir /elsewhere",
        "-knC /elsewhere",
        "-E x:;sh",
        "SHELL=/bin/sh",
        "--jobserver-auth=3,4",
    ] {
        let d = p.decide("make", &args(argv));
        assert_eq!(d.verdict, Verdict::Deny, "make {argv}: {}", d.reason);
    }
    for argv in [
        ". -exec sh -c x ;",
        ". -delete",
        ". -fprintf /tmp/x %p",
        ". -frob",
    ] {
        assert_eq!(verdict(&p, "find", argv), Verdict::Deny, "find {argv}");
    }
}

#[test]
fn the_agents_read_only_probes_are_allowed_and_harmless_spellings_still_work() {
    let p = coding_agent();
    for argv in [
        "-c core.hooksPath=/dev/null -c core.fsmonitor= --no-optional-locks ls-files -z --others --exclude-standard",
        "-c core.hooksPath=/dev/null -c core.fsmonitor=false status --porcelain",
        "--no-optional-locks status",
        "-c safe.bareRepository=explicit -c core.hooksPath=/dev/null rev-parse --show-toplevel",
        "config --get remote.origin.url",
        "branch --show-current",
        "rev-parse --abbrev-ref HEAD",
        "--no-pager log --oneline -n 5",
        "commit -am fix",
        "status -sb",
        "log -5 --format=%H",
    ] {
        let d = p.decide("git", &args(argv));
        assert_eq!(d.verdict, Verdict::Allow, "git {argv}: {}", d.reason);
    }
    assert_eq!(verdict(&p, "git", "push origin main"), Verdict::Approve);
    assert_eq!(verdict(&p, "git", "push -u origin main"), Verdict::Approve);
    assert_eq!(verdict(&p, "make", "-j 4 test"), Verdict::Allow);
    assert_eq!(verdict(&p, "make", "-k"), Verdict::Allow);
    assert_eq!(
        verdict(&p, "grep", "-rn5 --inc=*.rs TODO src"),
        Verdict::Allow
    );
    assert_eq!(verdict(&p, "find", ". -name -delete"), Verdict::Allow);
}

#[test]
fn the_decision_carries_the_canonical_argv_and_reasons_name_what_decided() {
    let p = coding_agent();
    let d = p.decide(
        "git",
        &args("-c core.hooksPath=/dev/null push -uf origin main"),
    );
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(
        d.reason
            .starts_with("denied by rule deny[0] [\"push\", \"**\", \"--force\", \"**\"]"),
        "{}",
        d.reason
    );
    let canonical: Vec<&[u8]> = d
        .canonical
        .as_ref()
        .unwrap()
        .iter()
        .map(Vec::as_slice)
        .collect();
    assert_eq!(
        canonical,
        args("-c=core.hooksPath=/dev/null push --set-upstream --force origin main")
    );
    let d = p.decide("git", &args("-c core.pager=sh log"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(
        d.reason.starts_with("`-c=core.pager=sh` is not a value allowed by \"-c\" allow [\"safe.bareRepository=explicit\""),
        "{}",
        d.reason
    );
    // The coding-agent profile's list is long: the reason shows its start
    // and where it is written, not all of it.
    assert!(
        d.reason.len() < 400
            && d.reason.contains(" …] (")
            && d.reason.contains("coding-agent.toml:"),
        "{}",
        d.reason
    );
    assert_eq!(d.rule.as_ref().unwrap().list, "options");
    let d = p.decide("git", &args("push --frob"));
    assert_eq!(d.rule, None);
    assert_eq!(d.canonical, None);
    assert_eq!(
        d.reason,
        "git push: unknown option `--frob`; grammar git cannot classify `git push --frob`, so it is refused"
    );
    // A tool without a grammar: the argv as written, no canonical form.
    let d = p.decide("git", &args("status"));
    assert!(d.canonical.is_some());
    let plain = Policy::compile(&profile(vec![tool(
        "t",
        vec![rule(&["-f"], 3)],
        vec![],
        vec![],
    )]))
    .unwrap();
    let d = plain.decide("t", &args("-f"));
    assert_eq!((d.verdict, d.canonical), (Verdict::Allow, None));
}

fn with_grammar(unknown: Unknown, options: Vec<OptionRule>) -> Policy {
    let mut t = tool(
        "git",
        vec![rule(&["status", "**"], 3), rule(&["push", "**"], 4)],
        vec![],
        vec![
            rule(&["push", "**", "--force", "**"], 5),
            rule(&["**", "--frob*", "**"], 6),
        ],
    );
    let origin = rule(&[], 9).origin;
    t.grammar = Some(ToolGrammar {
        grammar: super::canonical_tests::shipped("git"),
        shipped: Some("git".into()),
        unknown,
        unknown_origin: origin.clone(),
        options,
        origin,
    });
    Policy::compile(&profile(vec![t])).unwrap()
}

fn option(key: &str, allow: &[&str], approve: &[&str], neutral: bool) -> OptionRule {
    let (scope, option) = key.rsplit_once(' ').unwrap_or(("", key));
    OptionRule {
        scope: scope.into(),
        option: option.into(),
        allow: allow.iter().map(|s| s.to_string()).collect(),
        approve: approve.iter().map(|s| s.to_string()).collect(),
        neutral,
        origin: rule(&[], 12).origin,
    }
}

#[test]
fn unknown_approve_asks_but_deny_rules_still_apply() {
    let p = with_grammar(Unknown::Approve, vec![]);
    let d = p.decide("git", &args("push --fancy origin"));
    assert_eq!(d.verdict, Verdict::Approve, "{}", d.reason);
    assert_eq!(d.rule.as_ref().unwrap().list, "unknown");
    assert!(
        d.reason.contains("git push: unknown option `--fancy`"),
        "{}",
        d.reason
    );
    // A deny rule that matches the call as written...
    assert_eq!(verdict(&p, "git", "push --frobnicate x"), Verdict::Deny);
    // ...or as far as it was canonicalised still denies it.
    let d = p.decide("git", &args("push -f --fancy"));
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert!(
        d.reason.contains("deny[0]") && d.reason.contains("unknown option `--fancy`"),
        "{}",
        d.reason
    );
    // An ambiguous prefix is unclassified too.
    assert_eq!(verdict(&p, "git", "push --fo"), Verdict::Approve);
    let p = with_grammar(Unknown::Deny, vec![]);
    assert_eq!(verdict(&p, "git", "push --fancy origin"), Verdict::Deny);
}

#[test]
fn option_rules_allow_ask_or_refuse_values_and_hide_what_they_allow() {
    let p = with_grammar(
        Unknown::Deny,
        vec![
            option(
                "-c",
                &["core.hooksPath=/dev/null", "core.fsmonitor="],
                &["user.name=*"],
                false,
            ),
            option("--no-optional-locks", &[], &[], true),
            option("push --push-option", &[], &["ci.*"], false),
        ],
    );
    assert_eq!(
        verdict(&p, "git", "-c core.hooksPath=/dev/null status"),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&p, "git", "-c core.fsmonitor= --no-optional-locks status"),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&p, "git", "-c core.fsmonitor=x status"),
        Verdict::Deny
    );
    let d = p.decide("git", &args("-c user.name=x status"));
    assert_eq!(d.verdict, Verdict::Approve);
    assert!(
        d.reason
            .starts_with("approval required (`-c=user.name=x` needs approval by \"-c\""),
        "{}",
        d.reason
    );
    // Approval by a value does not lift a deny of the rules.
    assert_eq!(
        verdict(&p, "git", "-c user.name=x push --force"),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&p, "git", "push -o ci.skip origin"),
        Verdict::Approve
    );
    assert_eq!(verdict(&p, "git", "push -o x origin"), Verdict::Deny);
    // A neutral flag is hidden; one without a rule is seen (and matches
    // no rule here).
    assert_eq!(verdict(&p, "git", "--no-pager status"), Verdict::Deny);
    // The options rules of the main command do not apply to subcommands.
    assert_eq!(verdict(&p, "git", "status -c"), Verdict::Deny);
}
