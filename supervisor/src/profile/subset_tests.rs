// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::policy::{Policy, Verdict};
use crate::profile::{
    Approval, Audit, Divergence, Environment, Filesystem, Limits, Network, PathTemplate, Risk,
    Syscalls,
};

fn at(line: u32) -> Location {
    Location {
        file: Arc::from(Path::new("sub.toml")),
        line,
        column: 1,
    }
}

fn rule(tokens: &[&str]) -> ArgvRule {
    ArgvRule {
        tokens: tokens.iter().map(|s| s.to_string()).collect(),
        examples_match: Vec::new(),
        examples_no_match: Vec::new(),
        risk: None,
        pre_approved: false,
        origin: at(7),
    }
}

fn path(p: &str) -> PathRule {
    PathRule {
        path: PathTemplate::parse(p).unwrap(),
        optional: false,
        origin: at(3),
    }
}

fn tool(allow: Vec<ArgvRule>, approve: Vec<ArgvRule>, deny: Vec<ArgvRule>) -> Tool {
    Tool {
        name: "git".into(),
        path: PathBuf::from("/usr/bin/env"),
        allow,
        approve,
        deny,
        timeout: None,
        max_calls: None,
        env: Vec::new(),
        secrets: Vec::new(),
        sandbox: ToolSandbox::default(),
        grammar: None,
        origin: at(5),
    }
}

fn profile(tools: Vec<Tool>) -> Profile {
    Profile {
        source: PathBuf::from("sub.toml"),
        name: "p".into(),
        description: None,
        best_effort: false,
        stop_grace: Duration::from_secs(5),
        filesystem: Filesystem::default(),
        network: Network::default(),
        syscalls: Syscalls::default(),
        divergence: Divergence::default(),
        environment: Environment::default(),
        limits: Limits::default(),
        tools: tools.into_iter().map(|t| (t.name.clone(), t)).collect(),
        secrets: Default::default(),
        audit: Audit::default(),
        approval: Approval::default(),
        mcp: Default::default(),
        policy: Default::default(),
    }
}

fn parts(w: &[Widening]) -> Vec<String> {
    w.iter().map(ToString::to_string).collect()
}

#[test]
fn pattern_inclusion_is_token_wise() {
    let v = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let yes = [
        (&["push", "origin", "main"][..], &["push", "**"][..]),
        (&["push", "**"], &["push", "**"]),
        (&["push", "*"], &["push", "**"]),
        (&["status"], &["*"]),
        (&["feature/x"], &["feature/*"]),
        (&["a", "**", "b"], &["**"]),
        (&[], &["**"]),
    ];
    for (inner, outer) in yes {
        assert!(
            pattern_within(&v(inner), &v(outer)),
            "{inner:?} within {outer:?}"
        );
    }
    let no = [
        (&["push", "**"][..], &["push", "*"][..]),
        (&["push"], &["push", "*"]),
        (&["*"], &["status"]),
        (&["feature/*"], &["feature/x*"]),
        (&["**"], &["*"]),
        (&["push", "**", "--force"], &["push", "origin", "**"]),
    ];
    for (inner, outer) in no {
        assert!(
            !pattern_within(&v(inner), &v(outer)),
            "{inner:?} not within {outer:?}"
        );
    }
}

#[test]
fn one_more_path_port_tool_pattern_or_secret_is_refused_and_named() {
    let mut parent = profile(vec![tool(
        vec![rule(&["status"]), rule(&["push", "origin", "*"])],
        vec![],
        vec![rule(&["-c", "**"])],
    )]);
    parent.filesystem.read = vec![path("/usr"), path("{workspace}")];
    parent.filesystem.write = vec![path("{workspace}/out")];
    parent.network.connect_tcp = vec![443];
    let same = parent.clone();
    assert!(widenings(&same, &parent, None).is_empty());

    let mut c = parent.clone();
    c.filesystem.read.push(path("/etc"));
    assert_eq!(parts(&widenings(&c, &parent, None)), ["sub.toml:3:1: `[filesystem] read` entry `/etc` is not within any of the parent's (/usr, {workspace}, {workspace}/out)"]);

    let mut c = parent.clone();
    c.filesystem.write = vec![path("{workspace}")];
    assert!(parts(&widenings(&c, &parent, None))[0]
        .contains("`[filesystem] write` entry `{workspace}`"));

    let mut c = parent.clone();
    c.network.connect_tcp.push(22);
    assert!(parts(&widenings(&c, &parent, None))[0]
        .contains("`[network] connect_tcp` port 22 is not granted to the parent ([443])"));

    let mut c = parent.clone();
    let mut extra = tool(vec![rule(&["**"])], vec![], vec![]);
    extra.name = "curl".into();
    c.tools.insert("curl".into(), extra);
    assert!(parts(&widenings(&c, &parent, None))[0]
        .contains("tool `[tools.curl]` is not a tool of the parent"));

    let mut c = parent.clone();
    c.tools.get_mut("git").unwrap().allow[1] = rule(&["push", "**"]);
    assert!(parts(&widenings(&c, &parent, None))[0].contains(
        "`[tools.git] allow` rule [\"push\", \"**\"] is not within any allow rule of the parent"
    ));

    let mut c = parent.clone();
    c.tools.get_mut("git").unwrap().deny.clear();
    assert!(parts(&widenings(&c, &parent, None))[0].contains("drops the parent's deny rule"));

    let mut c = parent.clone();
    c.tools
        .get_mut("git")
        .unwrap()
        .secrets
        .push(crate::profile::ToolSecret {
            name: "GITHUB_TOKEN".into(),
            delivery: crate::profile::Delivery::Env,
            origin: at(9),
        });
    assert!(parts(&widenings(&c, &parent, None))[0]
        .contains("`[tools.git] secrets` entry `GITHUB_TOKEN`"));

    // Narrower is fine: fewer paths, a sub-tree, fewer ports, a narrower
    // pattern, an extra deny.
    let mut c = parent.clone();
    c.filesystem.read = vec![path("{workspace}/src")];
    c.filesystem.write.clear();
    c.network.connect_tcp.clear();
    let git = c.tools.get_mut("git").unwrap();
    git.allow = vec![rule(&["push", "origin", "main"])];
    git.deny.push(rule(&["push", "**", "--force"]));
    assert!(
        widenings(&c, &parent, None).is_empty(),
        "{:?}",
        parts(&widenings(&c, &parent, None))
    );
}

#[test]
fn dropping_a_parent_deny_or_an_approval_is_refused() {
    let mut parent = profile(vec![tool(
        vec![rule(&["**"])],
        vec![rule(&["push", "**"])],
        vec![],
    )]);
    parent.filesystem.read = vec![path("{workspace}")];
    parent.filesystem.deny = vec![path("{workspace}/.env")];
    let mut c = parent.clone();
    c.filesystem.deny.clear();
    assert!(parts(&widenings(&c, &parent, None))[0]
        .contains("drops the parent's deny of `{workspace}/.env`"));
    // A grant that does not reach the denied path needs no deny.
    c.filesystem.read = vec![path("{workspace}/src")];
    c.tools.clear();
    assert!(widenings(&c, &parent, None).is_empty());

    let mut c = parent.clone();
    c.tools.get_mut("git").unwrap().approve.clear();
    assert!(
        parts(&widenings(&c, &parent, None))[0].contains("drops the parent's need for approval")
    );
    // Moving it to deny is narrower.
    c.tools
        .get_mut("git")
        .unwrap()
        .deny
        .push(rule(&["push", "**"]));
    assert!(widenings(&c, &parent, None).is_empty());

    // A risky allow rule must keep asking.
    let mut risky = rule(&["rm", "*"]);
    risky.risk = Some(Risk::Delete);
    let parent = profile(vec![tool(vec![risky.clone()], vec![], vec![])]);
    let mut c = parent.clone();
    c.tools.get_mut("git").unwrap().allow[0].pre_approved = true;
    assert!(
        parts(&widenings(&c, &parent, None))[0].contains("drops the parent's need for approval")
    );
}

#[test]
fn a_sub_profile_cannot_bring_its_own_approver_or_looser_containment() {
    let parent = profile(vec![]);
    let mut c = parent.clone();
    c.approval.approver = Some(vec!["/bin/echo".into(), "approve".into()]);
    c.syscalls.on_violation = OnViolation::Deny;
    c.divergence.max_denials = 1000;
    c.best_effort = true;
    c.stop_grace = Duration::from_secs(60);
    let got = parts(&widenings(&c, &parent, None)).join("\n");
    for part in [
        "`[approval] approver`",
        "on_violation",
        "max_denials = 1000",
        "best_effort",
        "stop_grace",
    ] {
        assert!(got.contains(part), "{part}: {got}");
    }
}

#[test]
fn a_sub_profile_tolerates_only_what_its_parent_tolerates() {
    let host = |text: &str| crate::profile::hosts::parse_rule(text, at(9)).unwrap();
    let mut parent = profile(vec![]);
    parent.divergence.tolerated_hosts = vec![host("*.telemetry.example:443")];
    parent.divergence.tolerated_execs = vec![path("/usr/bin/lsb_release")];
    let mut c = parent.clone();
    c.divergence.tolerated_hosts = vec![host("a.telemetry.example:443")];
    assert!(widenings(&c, &parent, None).is_empty());
    c.divergence.tolerated_hosts.push(host("api.example:443"));
    c.divergence.tolerated_execs.push(path("/usr/bin/id"));
    let got = parts(&widenings(&c, &parent, None)).join("\n");
    assert!(
        got.contains("`[divergence] tolerated_hosts` entry `api.example:443`")
            && got.contains("`[divergence] tolerated_execs` entry `/usr/bin/id`"),
        "{got}"
    );
}

#[test]
fn with_values_a_symlink_cannot_carry_a_grant_out_of_its_tree() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    std::os::unix::fs::symlink("/etc", ws.join("etc")).unwrap();
    let values = Placeholders {
        workspace: ws.clone(),
        home: dir.path().join("h"),
        tmp: dir.path().join("t"),
    };
    let mut parent = profile(vec![]);
    parent.filesystem.read = vec![path("{workspace}")];
    let mut c = parent.clone();
    c.filesystem.read = vec![path("{workspace}/etc")];
    assert!(
        widenings(&c, &parent, None).is_empty(),
        "as written it looks inside"
    );
    let w = parts(&widenings(&c, &parent, Some(&values)));
    assert!(
        w[0].contains("`[filesystem] read` entry `{workspace}/etc`"),
        "{w:?}"
    );
}

// Property tests: an accepted sub-profile never grants more.

fn token() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("**"),
        Just("*"),
        Just("a"),
        Just("b"),
        Just("a*"),
        Just("-f")
    ]
}

fn arg() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("a"), Just("b"), Just("ab"), Just("-f"), Just("c")]
}

fn tokens() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(token(), 0..4)
}

fn rules() -> impl Strategy<Value = Vec<Vec<&'static str>>> {
    prop::collection::vec(tokens(), 0..3)
}

fn to_rules(r: &[Vec<&str>], risky: &[bool]) -> Vec<ArgvRule> {
    r.iter()
        .enumerate()
        .map(|(i, t)| {
            let mut rule = rule(t);
            if risky.get(i).copied().unwrap_or(false) {
                rule.risk = Some(Risk::Share);
            }
            rule
        })
        .collect()
}

fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Deny => 0,
        Verdict::Approve => 1,
        Verdict::Allow => 2,
    }
}

/// A child made from the parent by random edits, some narrowing, some
/// widening: the check must tell which.
#[derive(Debug, Clone)]
enum Edit {
    DropAllow(usize),
    DropApprove(usize),
    DropDeny(usize),
    ReplaceAllow(usize, Vec<&'static str>),
    AddAllow(Vec<&'static str>),
    AddApprove(Vec<&'static str>),
    AddDeny(Vec<&'static str>),
    PreApprove(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..3usize).prop_map(Edit::DropAllow),
        (0..3usize).prop_map(Edit::DropApprove),
        (0..3usize).prop_map(Edit::DropDeny),
        ((0..3usize), tokens()).prop_map(|(i, t)| Edit::ReplaceAllow(i, t)),
        tokens().prop_map(Edit::AddAllow),
        tokens().prop_map(Edit::AddApprove),
        tokens().prop_map(Edit::AddDeny),
        (0..3usize).prop_map(Edit::PreApprove),
    ]
}

fn apply(t: &mut Tool, e: &Edit) {
    let at = |v: &mut Vec<ArgvRule>, i: usize| {
        if v.is_empty() {
            None
        } else {
            Some(i % v.len())
        }
    };
    match e {
        Edit::DropAllow(i) => {
            if let Some(i) = at(&mut t.allow, *i) {
                t.allow.remove(i);
            }
        }
        Edit::DropApprove(i) => {
            if let Some(i) = at(&mut t.approve, *i) {
                t.approve.remove(i);
            }
        }
        Edit::DropDeny(i) => {
            if let Some(i) = at(&mut t.deny, *i) {
                t.deny.remove(i);
            }
        }
        Edit::ReplaceAllow(i, tokens) => {
            if let Some(i) = at(&mut t.allow, *i) {
                t.allow[i].tokens = tokens.iter().map(|s| s.to_string()).collect();
            }
        }
        Edit::AddAllow(tokens) => t.allow.push(rule(tokens)),
        Edit::AddApprove(tokens) => t.approve.push(rule(tokens)),
        Edit::AddDeny(tokens) => t.deny.push(rule(tokens)),
        Edit::PreApprove(i) => {
            if let Some(i) = at(&mut t.allow, *i) {
                t.allow[i].pre_approved = true;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// `pattern_within` never claims an inclusion that an argv disproves.
    #[test]
    fn pattern_within_is_sound(
        inner in tokens(),
        outer in tokens(),
        args in prop::collection::vec(arg(), 0..5),
    ) {
        let owned = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (i, o) = (owned(&inner), owned(&outer));
        if pattern_within(&i, &o) {
            let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            let im = compile_pattern(&i).unwrap().matches(&bytes);
            let om = compile_pattern(&o).unwrap().matches(&bytes);
            prop_assert!(!im || om, "{inner:?} within {outer:?} but {args:?} says otherwise");
        }
    }

    /// An accepted sub-profile decides every call at most as permissively
    /// as its parent: never allow where the parent asks or denies, never
    /// ask where the parent denies.
    #[test]
    fn an_accepted_subset_never_grants_a_call_the_parent_lacks(
        allow in rules(),
        approve in rules(),
        deny in rules(),
        risky in prop::collection::vec(any::<bool>(), 3),
        edits in prop::collection::vec(edit(), 0..4),
        calls in prop::collection::vec(prop::collection::vec(arg(), 0..4), 12),
    ) {
        let parent = profile(vec![tool(to_rules(&allow, &risky), to_rules(&approve, &[]), to_rules(&deny, &[]))]);
        let mut child = parent.clone();
        for e in &edits {
            apply(child.tools.get_mut("git").unwrap(), e);
        }
        if widenings(&child, &parent, None).is_empty() {
            let (pp, cp) = (Policy::compile(&parent).unwrap(), Policy::compile(&child).unwrap());
            for call in &calls {
                let bytes: Vec<&[u8]> = call.iter().map(|a| a.as_bytes()).collect();
                let (pv, cv) = (pp.decide("git", &bytes).verdict, cp.decide("git", &bytes).verdict);
                prop_assert!(rank(cv) <= rank(pv), "{call:?}: child {cv:?}, parent {pv:?}; edits {edits:?}");
            }
        }
    }

    /// An accepted sub-profile reads no path the parent cannot.
    #[test]
    fn an_accepted_subset_never_grants_a_path_the_parent_lacks(
        parent_read in prop::collection::vec(prop_oneof![Just("/a"), Just("/a/b"), Just("/c")], 0..3),
        parent_deny in prop::collection::vec(prop_oneof![Just("/a/b/s"), Just("/a/x")], 0..2),
        child_read in prop::collection::vec(prop_oneof![Just("/a"), Just("/a/b"), Just("/a/b/s"), Just("/ab"), Just("/c/d")], 0..3),
        child_deny in prop::collection::vec(prop_oneof![Just("/a/b/s"), Just("/a/b"), Just("/a")], 0..2),
        probes in prop::collection::vec(prop_oneof![Just("/a/b/s/k"), Just("/a/x"), Just("/ab/q"), Just("/c/d/e"), Just("/a/b/z")], 1..5),
    ) {
        let paths = |v: &[&str]| v.iter().map(|p| path(p)).collect::<Vec<_>>();
        let mut parent = profile(vec![]);
        parent.filesystem.read = paths(&parent_read);
        parent.filesystem.deny = paths(&parent_deny);
        let mut child = profile(vec![]);
        child.filesystem.read = paths(&child_read);
        child.filesystem.deny = paths(&child_deny);
        let readable = |read: &[&str], deny: &[&str], p: &str| {
            read.iter().any(|g| within(p, g)) && !deny.iter().any(|d| within(p, d))
        };
        if widenings(&child, &parent, None).is_empty() {
            for p in &probes {
                if readable(&child_read, &child_deny, p) {
                    prop_assert!(readable(&parent_read, &parent_deny, p), "{p} readable by the child only");
                }
            }
        }
    }
}

#[test]
fn host_rules_may_only_narrow() {
    let host = |text: &str| crate::profile::hosts::parse_rule(text, at(7)).unwrap();
    let mut parent = profile(vec![]);
    parent.network.allow_hosts = vec![host("*.github.com:443"), host("pypi.org:443")];
    parent.network.deny_hosts = vec![host("gist.github.com:*")];

    let mut c = parent.clone();
    c.network.allow_hosts = vec![host("api.github.com:443")];
    assert!(
        widenings(&c, &parent, None).is_empty(),
        "{:?}",
        parts(&widenings(&c, &parent, None))
    );

    for (rule, says) in [
        ("api.github.com:*", "`api.github.com:*` is not within"),
        ("*:443", "`*:443` is not within"),
        ("example.com:443", "`example.com:443` is not within"),
        ("140.82.112.3:443", "`140.82.112.3:443` is not within"),
        (
            "api.github.com:443 via 127.0.0.1",
            "via 127.0.0.1` is not within",
        ),
    ] {
        let mut c = parent.clone();
        c.network.allow_hosts = vec![host(rule)];
        let w = parts(&widenings(&c, &parent, None));
        assert!(w.iter().any(|p| p.contains(says)), "{rule}: {w:?}");
    }

    // Dropping the parent's deny rule widens.
    let mut c = parent.clone();
    c.network.deny_hosts.clear();
    assert!(parts(&widenings(&c, &parent, None))
        .iter()
        .any(|p| p.contains("missing `gist.github.com:*`")));

    // Direct ports under a parent that only goes through its proxy.
    let mut c = parent.clone();
    c.network.allow_hosts.clear();
    c.network.deny_hosts.clear();
    c.network.connect_tcp = vec![443];
    assert!(parts(&widenings(&c, &parent, None))
        .iter()
        .any(|p| p.contains("connect_tcp without host rules")));

    // Under a parent with port rules, host rules on its ports narrow it.
    let mut ports = profile(vec![]);
    ports.network.connect_tcp = vec![443];
    let mut c = ports.clone();
    c.network.allow_hosts = vec![host("api.github.com:443")];
    assert!(widenings(&c, &ports, None).is_empty());
    c.network.allow_hosts = vec![host("api.github.com:22")];
    assert!(parts(&widenings(&c, &ports, None))
        .iter()
        .any(|p| p.contains("any host on port 443")));
}

fn grammar(
    name: &str,
    unknown: crate::profile::Unknown,
    options: Vec<crate::profile::OptionRule>,
) -> Option<crate::profile::ToolGrammar> {
    Some(crate::profile::ToolGrammar {
        grammar: crate::profile::shipped_grammar(name).unwrap().unwrap(),
        shipped: Some(name.into()),
        unknown,
        unknown_origin: at(9),
        options,
        origin: at(8),
    })
}

fn dash_c(allow: &[&str]) -> crate::profile::OptionRule {
    crate::profile::OptionRule {
        scope: String::new(),
        option: "-c".into(),
        allow: allow.iter().map(|s| s.to_string()).collect(),
        approve: Vec::new(),
        neutral: false,
        origin: at(11),
    }
}

#[test]
fn a_sub_agent_keeps_its_parents_grammar_unknown_and_option_rules() {
    use crate::profile::Unknown;
    let with = |g| Tool {
        grammar: g,
        ..tool(vec![rule(&["status", "**"])], vec![], vec![])
    };
    let parent = profile(vec![with(grammar(
        "git",
        Unknown::Deny,
        vec![dash_c(&["core.hooksPath=/dev/null", "core.fsmonitor=*"])],
    ))]);
    let same = profile(vec![with(grammar(
        "git",
        Unknown::Deny,
        vec![dash_c(&["core.fsmonitor="])],
    ))]);
    assert!(
        widenings(&same, &parent, None).is_empty(),
        "{:?}",
        parts(&widenings(&same, &parent, None))
    );
    let cases = [
        (
            with(None),
            "`[tools.git] grammar` is missing: the parent's tool canonicalises",
        ),
        (
            with(grammar("make", Unknown::Deny, vec![])),
            "is grammar make, not the parent's grammar git",
        ),
        (
            with(grammar(
                "git",
                Unknown::Approve,
                vec![dash_c(&["core.fsmonitor="])],
            )),
            "asks a person about calls the parent refuses",
        ),
        (
            with(grammar("git", Unknown::Deny, vec![])),
            "(missing \"-c\") drops the parent's option rule",
        ),
        (
            with(grammar("git", Unknown::Deny, vec![dash_c(&["*"])])),
            "accepts values the parent's rule",
        ),
        (
            with(grammar(
                "git",
                Unknown::Deny,
                vec![
                    dash_c(&[]),
                    crate::profile::OptionRule {
                        option: "--no-pager".into(),
                        neutral: true,
                        ..dash_c(&[])
                    },
                ],
            )),
            "is not an option rule of the parent",
        ),
    ];
    for (t, want) in cases {
        let child = profile(vec![t]);
        let w = parts(&widenings(&child, &parent, None));
        assert!(w.iter().any(|x| x.contains(want)), "{want}: {w:#?}");
    }
    // And no grammar below a parent without one.
    let plain = profile(vec![with(None)]);
    let w = parts(&widenings(&same, &plain, None));
    assert!(
        w.iter().any(|x| x.contains(
            "canonicalises the argv with grammar git while the parent's tool matches it as written"
        )),
        "{w:#?}"
    );
}
