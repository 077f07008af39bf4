//! Delegation for `[mcp.NAME]`: a sub-agent may reach only its parent's
//! MCP servers, run the same way, and call their tools under rules that
//! are provably no looser.
//!
//! The rule check is by rule identity (paths, globs, risk tag), not glob
//! inclusion: the sub-profile's `allow` rules must be rules of the
//! parent's `allow`, and it must keep every `deny` and `approve` rule of
//! the parent, and every risky `allow` rule (somewhere: as written, as an
//! approve or a deny). Then no call the parent denies or asks about can be
//! allowed outright: an identical rule decides it first.

use super::{ArgRule, McpServer, McpTool, Profile, Widening};

type Key = (Vec<(String, Vec<String>)>, Option<&'static str>, bool);

fn key(r: &ArgRule) -> Key {
    (
        r.args
            .iter()
            .map(|m| (m.path.clone(), m.globs.clone()))
            .collect(),
        r.risk.map(|x| x.as_str()),
        r.pre_approved,
    )
}

/// The arguments alone (a risky rule kept as an approve or a deny).
fn args(r: &ArgRule) -> Vec<(String, Vec<String>)> {
    key(r).0
}

pub(super) fn widenings(child: &Profile, parent: &Profile, out: &mut Vec<Widening>) {
    for (name, c) in &child.mcp {
        let mut push = |part: String, why: String| {
            out.push(Widening {
                at: c.origin.clone(),
                part,
                why,
            })
        };
        let Some(p) = parent.mcp.get(name) else {
            push(
                format!("MCP server `[mcp.{name}]`"),
                "is not an MCP server of the parent".into(),
            );
            continue;
        };
        server(name, c, p, &mut push);
        for (tool, ct) in &c.tools {
            match p.tools.get(tool) {
                None => push(
                    format!("`[mcp.{name}.tools.{tool}]`"),
                    "is not a tool the parent may call".into(),
                ),
                Some(pt) => rules(name, tool, ct, pt, &mut push),
            }
        }
    }
}

fn server(name: &str, c: &McpServer, p: &McpServer, push: &mut impl FnMut(String, String)) {
    if c.command != p.command {
        push(
            format!("`[mcp.{name}] command`"),
            "is not the parent's".into(),
        );
    }
    if c.sandbox != p.sandbox {
        push(
            format!("`[mcp.{name}.sandbox]`"),
            "is not the parent's (a sub-agent runs its parent's server as it is)".into(),
        );
    }
    for s in c
        .secrets
        .iter()
        .filter(|s| !p.secrets.iter().any(|ps| ps.name == s.name))
    {
        push(
            format!("`[mcp.{name}] secrets` entry `{}`", s.name),
            "is not a secret of the parent's server".into(),
        );
    }
    for e in c.env.iter().filter(|e| !p.env.contains(e)) {
        push(
            format!("`[mcp.{name}] env` entry `{e}`"),
            "is not passed by the parent".into(),
        );
    }
    if c.call_timeout > p.call_timeout {
        push(
            format!("`[mcp.{name}] timeout`"),
            "is longer than the parent's".into(),
        );
    }
    if p.max_calls
        .is_some_and(|pm| c.max_calls.is_none_or(|cm| cm > pm))
    {
        push(
            format!("`[mcp.{name}] max_calls`"),
            "is more than the parent's".into(),
        );
    }
    if c.max_message > p.max_message {
        push(
            format!("`[mcp.{name}] max_message`"),
            "is larger than the parent's".into(),
        );
    }
}

fn rules(
    server: &str,
    tool: &str,
    c: &McpTool,
    p: &McpTool,
    push: &mut impl FnMut(String, String),
) {
    let at = |list: &str, i: usize| format!("`[mcp.{server}.tools.{tool}] {list}[{i}]`");
    let has = |list: &[ArgRule], r: &ArgRule| list.iter().any(|x| key(x) == key(r));
    for (i, r) in c.allow.iter().enumerate() {
        if !has(&p.allow, r) {
            push(
                at("allow", i),
                "is not an allow rule of the parent (a sub-agent may only keep the parent's)"
                    .into(),
            );
        }
    }
    for (list, theirs, ours) in [
        ("deny", &p.deny, &c.deny),
        ("approve", &p.approve, &c.approve),
    ] {
        for (i, r) in theirs.iter().enumerate() {
            if !has(ours, r) {
                push(
                    format!("`[mcp.{server}.tools.{tool}]`"),
                    format!("drops the parent's {list}[{i}] rule"),
                );
            }
        }
    }
    for (i, r) in p.allow.iter().enumerate() {
        if r.risk.is_none() || r.pre_approved {
            continue;
        }
        let kept = has(&c.allow, r) || c.approve.iter().chain(&c.deny).any(|x| args(x) == args(r));
        if !kept {
            push(
                format!("`[mcp.{server}.tools.{tool}]`"),
                format!("drops the parent's risky allow[{i}] rule, whose calls need approval"),
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use std::path::Path;

    use crate::profile::{load_text, widenings, Profile};

    const PARENT: &str = r#"
[profile]
name = "parent"
[mcp.fs]
command = ["/bin/sh"]
[mcp.fs.tools.read]
allow = [{ args = { path = "/ws/*" } }, { args = { path = "/ws/big/*" }, risk = "share" }]
deny = [{ args = { path = "*/.env" } }]
[mcp.fs.tools.write]
approve = [{ args = { path = "/ws/*" } }]
"#;

    fn load(text: &str) -> Profile {
        load_text(Path::new("p.toml"), text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn wider(child: &str) -> Vec<String> {
        widenings(&load(child), &load(PARENT), None)
            .iter()
            .map(|w| format!("{} {}", w.part, w.why))
            .collect()
    }

    #[test]
    fn the_parent_itself_and_a_narrower_child_are_subsets() {
        assert_eq!(wider(PARENT), Vec::<String>::new());
        let narrower = PARENT
            .replace("name = \"parent\"", "name = \"child\"")
            .replace(
                "[mcp.fs.tools.write]\napprove = [{ args = { path = \"/ws/*\" } }]\n",
                "",
            );
        assert_eq!(wider(&narrower), Vec::<String>::new());
    }

    #[test]
    fn every_widening_is_named() {
        let cases = [
            (
                PARENT
                    .replace("[mcp.fs]", "[mcp.other]")
                    .replace("mcp.fs.", "mcp.other."),
                "is not an MCP server of the parent",
            ),
            (
                PARENT.replace("[\"/bin/sh\"]", "[\"/bin/dash\"]"),
                "command` is not the parent's",
            ),
            (
                PARENT.replace("path = \"/ws/*\" } }, {", "path = \"/*\" } }, {"),
                "allow[0]` is not an allow rule of the parent",
            ),
            (
                PARENT.replace("deny = [{ args = { path = \"*/.env\" } }]", ""),
                "drops the parent's deny[0] rule",
            ),
            (
                PARENT.replace(", risk = \"share\"", ""),
                "drops the parent's risky allow[1] rule",
            ),
            (
                PARENT.replace("approve = [{", "allow = [{"),
                "is not an allow rule of the parent",
            ),
            (
                format!("{PARENT}[mcp.fs.tools.delete]\nallow = [{{}}]\n"),
                "`[mcp.fs.tools.delete]` is not a tool the parent may call",
            ),
        ];
        for (child, want) in cases {
            let got = wider(&child);
            assert!(
                got.iter().any(|w| w.contains(want)),
                "want {want}: {got:#?}"
            );
        }
    }
}
