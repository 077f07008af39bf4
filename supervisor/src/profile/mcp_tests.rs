// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::profile::layer::Layer;
use crate::profile::parse::parse_layer;
use crate::profile::Risk;

fn walk(src: &str) -> (Layer, Vec<String>) {
    let mut diags = Vec::new();
    let layer = parse_layer(Arc::from(Path::new("m.toml")), src, &mut diags);
    let msgs = diags
        .iter()
        .map(|d| format!("{}:{}: {}", d.location.line, d.location.column, d.message))
        .collect();
    (layer.unwrap(), msgs)
}

const SERVER: &str = "[mcp.fs]\ncommand = [\"/bin/sh\", \"-c\", \"exec server {workspace}\"]\n";

/// The errors of `SERVER` plus `rest`.
fn errors(rest: &str) -> Vec<String> {
    walk(&format!("{SERVER}{rest}")).1
}

#[test]
fn a_full_server_parses() {
    let src = format!(
        r#"{SERVER}secrets = ["TOKEN"]
env = ["LANG"]
timeout = "30s"
max_calls = 100
max_message = 65536

[mcp.fs.sandbox]
read = ["/usr"]

[mcp.fs.tools.read_text_file]
allow = [{{ args = {{ path = ["{{workspace}}", "{{workspace}}/*"] }}, examples = {{ match = [{{ path = "{{workspace}}/a.txt" }}], no_match = [{{ path = "/etc/passwd" }}, {{ path = "{{workspace}}/../etc/passwd" }}] }} }}]
deny = [{{ args = {{ path = "*/.env" }}, examples = {{ match = [{{ path = "/x/.env" }}] }} }}]

[mcp.fs.tools.write_file]
allow = [{{ args = {{ path = "{{workspace}}/*" }}, risk = "delete" }}]

[mcp.fs.tools.list_allowed_directories]
allow = [{{}}]
"#
    );
    let (l, e) = walk(&src);
    assert_eq!(e, Vec::<String>::new());
    let fs = &l.mcp["fs"];
    assert_eq!(fs.command, ["/bin/sh", "-c", "exec server {workspace}"]);
    assert_eq!(fs.call_timeout, Duration::from_secs(30));
    assert_eq!((fs.max_calls, fs.max_message), (Some(100), 65536));
    assert_eq!(fs.secrets[0].name, "TOKEN");
    assert!(fs.sandbox.inherit_defaults);
    let read = &fs.tools["read_text_file"];
    assert_eq!(read.allow[0].args[0].path, "path");
    assert_eq!(read.allow[0].args[0].globs.len(), 2);
    assert_eq!(read.allow[0].examples_no_match.len(), 2);
    assert_eq!(read.deny.len(), 1);
    assert_eq!(fs.tools["write_file"].allow[0].risk, Some(Risk::Delete));
    assert!(fs.tools["list_allowed_directories"].allow[0]
        .args
        .is_empty());
}

#[test]
fn examples_that_disagree_with_their_rule_are_errors() {
    let e = errors(
        r#"[mcp.fs.tools.read_file]
allow = [{ args = { path = "{workspace}/*" }, examples = { match = [{ path = "{workspace}/../etc/shadow" }], no_match = [{ path = "{workspace}/ok" }] } }]
"#,
    );
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e[0].starts_with("4:69: example {\"path\":\"{workspace}/../etc/shadow\"} is not matched by rule allow[0] { path = [\"{workspace}/*\"] }"), "{e:#?}");
    assert!(
        e[1].starts_with(
            "4:122: example {\"path\":\"{workspace}/ok\"} is matched by rule allow[0]"
        ),
        "{e:#?}"
    );
}

#[test]
fn mistakes_are_named_where_they_are() {
    let cases: [(&str, &str); 10] = [
        (
            "[mcp.fs.tools.t]\ndeny = [{}]\n",
            "3:1: [mcp.fs.tools.t] has no `allow` or `approve` rule",
        ),
        (
            "[mcp.fs.tools.t]\nallow = [[\"x\"]]\n",
            "4:10: `allow` rules are tables such as",
        ),
        (
            "[mcp.fs.tools.t]\nallow = [{ args = { \"a..b\" = \"x\" } }]\n",
            "4:21: rule allow[0]: JSON path `a..b`, at character 3",
        ),
        (
            "[mcp.fs.tools.t]\nallow = [{ args = { p = \"[z-a]\" } }]\n",
            "4:25: rule allow[0]: glob \"[z-a]\"",
        ),
        (
            "[mcp.fs.tools.t]\nallow = [{ args = { p = \"{home}/x\" } }]\n",
            "4:25: rule allow[0]: glob \"{home}/x\": only {workspace}",
        ),
        (
            "[mcp.fs.tools.t]\nallow = [{ args = { p = 5 } }]\n",
            "4:25: argument `p` expects a glob or an array of globs, got an integer",
        ),
        (
            "[mcp.fs.tools.t]\nallow = [{ argz = {} }]\n",
            "4:12: unknown key `argz` in a `allow` rule; did you mean `args`?",
        ),
        (
            "[mcp.fs.tools.\"bad name\"]\nallow = [{}]\n",
            "3:15: MCP tool name `bad name` must be",
        ),
        (
            "[mcp.fs.tools.t]\nallow = [{}]\nask = []\n",
            "5:1: unknown key `ask` in [mcp.fs.tools.t]",
        ),
        (
            "max_message = 10\n[mcp.fs.tools.t]\nallow = [{}]\n",
            "3:15: `max_message` expects a size in bytes, 4096-16777216, got 10",
        ),
    ];
    for (rest, want) in cases {
        let e = errors(rest);
        assert_eq!(e.len(), 1, "{rest}: {e:#?}");
        assert!(
            e[0].starts_with(want),
            "{rest}:\n got {}\nwant {want}",
            e[0]
        );
    }
}

#[test]
fn the_command_and_the_server_name_are_checked() {
    let e = walk("[mcp.Fs]\ncommand = [\"/bin/sh\"]\n").1;
    assert!(
        e[0].starts_with("1:6: MCP server name `Fs` must be"),
        "{e:#?}"
    );
    let e = walk("[mcp.fs]\ncommand = [\"node\", \"x.js\"]\n[mcp.fs.tools.t]\nallow = [{}]\n").1;
    assert!(
        e[0].starts_with("2:12: the server's program must be an absolute path"),
        "{e:#?}"
    );
    let e = walk("[mcp.fs]\ncommand = [\"/nonexistent/node\"]\n[mcp.fs.tools.t]\nallow = [{}]\n").1;
    assert!(
        e[0].starts_with("2:12: `/nonexistent/node` cannot be run"),
        "{e:#?}"
    );
    let e =
        walk("[mcp.fs]\ncommand = [\"/bin/sh\", \"{tmp}/x\"]\n[mcp.fs.tools.t]\nallow = [{}]\n").1;
    assert!(
        e[0].starts_with("2:23: `command`: only {workspace}"),
        "{e:#?}"
    );
    let e = walk("[mcp.fs]\n[mcp.fs.tools.t]\nallow = [{}]\n").1;
    assert!(e[0].starts_with("1:1: [mcp.fs] needs `command`"), "{e:#?}");
    let e = walk("[mcp.fs]\ncommand = [\"/bin/sh\"]\n").1;
    assert!(e[0].starts_with("1:1: [mcp.fs] declares no tool"), "{e:#?}");
}

#[test]
fn server_secrets_must_be_declared_and_count_as_used() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        format!("[profile]\nname = \"m\"\n{SERVER}secrets = [\"T\", \"U\"]\n[mcp.fs.tools.t]\nallow = [{{}}]\n[secrets.T]\nfrom = \"env:T\"\n"),
    )
    .unwrap();
    let e = crate::profile::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("MCP server `fs`: secret `U` is not declared"),
        "{e}"
    );
    assert!(!e.contains("secret `T` is never used"), "{e}");
}

#[test]
fn policy_files_are_read_and_their_errors_placed_in_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("team.cedar"),
        "@id(\"ok\")\nforbid (principal, action, resource) when { context.intent == \"x\" };\n\npermit (principal, action, resource) when { context.nope };\n",
    )
    .unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        "[profile]\nname = \"m\"\n[policy]\ncedar = \"team.cedar\"\nunmatched = \"deny\"\n",
    )
    .unwrap();
    let e = crate::profile::load(&p).unwrap_err();
    assert_eq!(e.diagnostics.len(), 1, "{e}");
    let d = &e.diagnostics[0];
    assert!(d.location.file.ends_with("team.cedar"), "{e}");
    assert_eq!((d.location.line, d.location.column), (4, 45), "{e}");
    assert!(
        d.message.starts_with("Cedar: ") && d.message.contains("nope"),
        "{e}"
    );
    std::fs::write(
        dir.path().join("team.cedar"),
        "forbid (principal, action, resource) when { context.intent == \"x\" };\n",
    )
    .unwrap();
    let profile = crate::profile::load(&p).unwrap();
    let cedar = profile.policy.cedar.unwrap();
    assert!(cedar.path.ends_with("team.cedar"));
    assert_eq!(
        profile.policy.unmatched,
        crate::policy::cedar::Unmatched::Deny
    );
    // A missing file is an error at the key.
    std::fs::write(
        &p,
        "[profile]\nname = \"m\"\n[policy]\ncedar = \"missing.cedar\"\n",
    )
    .unwrap();
    let e = crate::profile::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("p.toml:4:9: cannot read the Cedar policy file"),
        "{e}"
    );
}

#[test]
fn a_sub_agent_names_no_policy_file() {
    let e = crate::profile::load_text(
        Path::new("sub.toml"),
        "[profile]\nname = \"s\"\n[policy]\ncedar = \"/etc/shadow\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("sub.toml:4:9: a sub-agent's profile cannot name a policy file"),
        "{e}"
    );
}
