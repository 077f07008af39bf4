// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use super::*;
use crate::policy::Verdict;
use crate::profile::{ArgMatch, ArgRule, Location, McpServer, McpTool, Risk, ToolSandbox};

fn at() -> Location {
    Location {
        file: Arc::from(Path::new("t.toml")),
        line: 1,
        column: 1,
    }
}

fn rule(args: &[(&str, &[&str])]) -> ArgRule {
    ArgRule {
        args: args
            .iter()
            .map(|(p, g)| ArgMatch {
                path: p.to_string(),
                globs: g.iter().map(|s| s.to_string()).collect(),
                origin: at(),
            })
            .collect(),
        examples_match: vec![],
        examples_no_match: vec![],
        risk: None,
        pre_approved: false,
        origin: at(),
    }
}

/// A tool's name and its allow, approve and deny rules.
type ToolRules<'a> = (&'a str, Vec<ArgRule>, Vec<ArgRule>, Vec<ArgRule>);

fn server(tools: Vec<ToolRules<'_>>) -> McpServer {
    let mut map = BTreeMap::new();
    for (name, allow, approve, deny) in tools {
        map.insert(
            name.to_string(),
            McpTool {
                name: name.to_string(),
                allow,
                approve,
                deny,
                origin: at(),
            },
        );
    }
    McpServer {
        name: "fs".into(),
        command: vec!["/bin/true".into()],
        secrets: vec![],
        env: vec![],
        sandbox: ToolSandbox::default(),
        call_timeout: std::time::Duration::from_secs(5),
        max_calls: None,
        max_message: 1 << 20,
        tools: map,
        origin: at(),
    }
}

fn verdict(p: &ServerPolicy, tool: &str, args: Value) -> Verdict {
    p.decide(tool, &args).verdict
}

#[test]
fn path_globs_compare_the_resolved_path() {
    let s = server(vec![(
        "read",
        vec![rule(&[("path", &["{workspace}", "{workspace}/*"])])],
        vec![],
        vec![],
    )]);
    let p = ServerPolicy::compile(&s, "/ws").unwrap();
    assert_eq!(
        verdict(&p, "read", json!({"path": "/ws/a/b.txt"})),
        Verdict::Allow
    );
    assert_eq!(verdict(&p, "read", json!({"path": "/ws"})), Verdict::Allow);
    assert_eq!(
        verdict(&p, "read", json!({"path": "/ws/./a//b"})),
        Verdict::Allow
    );
    for escape in [
        "/ws/../etc/passwd",
        "/ws/a/../../etc",
        "/wsx/a",
        "ws/a",
        "/etc/passwd",
        "/ws/\0",
    ] {
        assert_eq!(
            verdict(&p, "read", json!({"path": escape})),
            Verdict::Deny,
            "{escape}"
        );
    }
    // A path glob never matches something that is not a string path.
    assert_eq!(
        verdict(&p, "read", json!({"path": ["/ws/a"]})),
        Verdict::Deny
    );
    assert_eq!(verdict(&p, "read", json!({"path": 5})), Verdict::Deny);
    assert_eq!(verdict(&p, "read", json!({})), Verdict::Deny);
    assert_eq!(verdict(&p, "read", json!(null)), Verdict::Deny);
}

#[test]
fn the_workspace_is_a_literal_in_globs() {
    let s = server(vec![(
        "read",
        vec![rule(&[("path", &["{workspace}/*"])])],
        vec![],
        vec![],
    )]);
    let p = ServerPolicy::compile(&s, "/w[s]*").unwrap();
    assert_eq!(
        verdict(&p, "read", json!({"path": "/w[s]*/a"})),
        Verdict::Allow
    );
    assert_eq!(verdict(&p, "read", json!({"path": "/ws/a"})), Verdict::Deny);
    assert_eq!(
        verdict(&p, "read", json!({"path": "/wsanything/a"})),
        Verdict::Deny
    );
}

#[test]
fn allow_needs_every_element_deny_needs_one() {
    let s = server(vec![(
        "read_many",
        vec![rule(&[("paths[*]", &["/ws/*"])])],
        vec![],
        vec![rule(&[("paths[*]", &["*.key"])])],
    )]);
    let p = ServerPolicy::compile(&s, "/ws").unwrap();
    assert_eq!(
        verdict(&p, "read_many", json!({"paths": ["/ws/a", "/ws/b"]})),
        Verdict::Allow
    );
    // One element outside: the allow does not hold.
    assert_eq!(
        verdict(&p, "read_many", json!({"paths": ["/ws/a", "/etc/shadow"]})),
        Verdict::Deny
    );
    // One element the deny names: denied, whatever the others.
    let d = p.decide("read_many", &json!({"paths": ["/ws/a", "/ws/id.key"]}));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.rule.unwrap().list, "deny");
    // No element at all is not an allow.
    assert_eq!(
        verdict(&p, "read_many", json!({"paths": []})),
        Verdict::Deny
    );
}

#[test]
fn deny_beats_approve_beats_allow_and_risk_asks() {
    let mut risky = rule(&[("path", &["/ws/*"])]);
    risky.risk = Some(Risk::Delete);
    let mut pre = rule(&[("path", &["/ws/tmp/*"])]);
    pre.risk = Some(Risk::Delete);
    pre.pre_approved = true;
    let s = server(vec![
        (
            "write",
            vec![rule(&[("path", &["/ws/*"])])],
            vec![rule(&[("path", &["/ws/.github/*"])])],
            vec![rule(&[("path", &["*/.git/*"])])],
        ),
        ("delete", vec![rule(&[]), risky, pre], vec![], vec![]),
    ]);
    let p = ServerPolicy::compile(&s, "/ws").unwrap();
    assert_eq!(
        verdict(&p, "write", json!({"path": "/ws/a"})),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&p, "write", json!({"path": "/ws/.github/ci.yml"})),
        Verdict::Approve
    );
    assert_eq!(
        verdict(&p, "write", json!({"path": "/ws/.git/config"})),
        Verdict::Deny
    );
    // The risky rule is not shadowed by the broader `{}` written first.
    let d = p.decide("delete", &json!({"path": "/ws/a"}));
    assert_eq!(d.verdict, Verdict::Approve);
    assert!(d.reason.contains("risk delete"), "{}", d.reason);
    // `{}` matches anything not covered by a risky rule.
    assert_eq!(
        verdict(&p, "delete", json!({"path": "/elsewhere"})),
        Verdict::Allow
    );
}

#[test]
fn an_undeclared_tool_is_denied_without_a_rule() {
    let s = server(vec![("read", vec![rule(&[])], vec![], vec![])]);
    let p = ServerPolicy::compile(&s, "/ws").unwrap();
    let d = p.decide("exec_command", &json!({}));
    assert_eq!((d.verdict, d.rule.is_none()), (Verdict::Deny, true));
    assert!(
        d.reason.contains("not a declared tool of MCP server `fs`"),
        "{}",
        d.reason
    );
    assert!(p.declares("read") && !p.declares("exec_command"));
}

#[test]
fn scalars_match_by_their_json_text() {
    let s = server(vec![(
        "t",
        vec![rule(&[("n", &["[0-9]"]), ("flag", &["false"])])],
        vec![],
        vec![],
    )]);
    let p = ServerPolicy::compile(&s, "/ws").unwrap();
    assert_eq!(
        verdict(&p, "t", json!({"n": 7, "flag": false})),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&p, "t", json!({"n": 17, "flag": false})),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&p, "t", json!({"n": "7", "flag": "false"})),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&p, "t", json!({"n": 7, "flag": {"x": 1}})),
        Verdict::Deny
    );
}

#[test]
fn normalize_resolves_as_text() {
    assert_eq!(normalize("/a/./b//c/").as_deref(), Some("/a/b/c"));
    assert_eq!(normalize("/a/../../b").as_deref(), Some("/b"));
    assert_eq!(normalize("/").as_deref(), Some("/"));
    assert_eq!(normalize("a/b"), None);
    assert_eq!(normalize(""), None);
}
