// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

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

#[test]
fn a_full_tool_parses() {
    let src = r#"
[tools.git]
path = "/usr/bin/git"
allow   = [["status"], ["diff", "**"], { argv = ["commit", "-m", "*"], examples = { match = [["commit", "-m", "fix typo"]], no_match = [["commit", "--amend"]] } }]
approve = [["push", "**"]]
deny    = [["push", "**", "--force", "**"], ["-c", "**"]]
timeout = "60s"
max_calls = 200
env = ["GIT_AUTHOR_NAME"]
secrets = []

[tools.git.sandbox]
inherit_defaults = false
read = ["/usr", { path = "/nope/x", optional = true }]
write = ["{workspace}"]
cwd = ["{workspace}/src"]
connect_tcp = [443]

[tools."c++"]
path = "/usr/bin/git"
approve = [["**"]]

[audit]
path = "{home}/audit.jsonl"
"#;
    let (layer, errs) = walk(src);
    assert_eq!(errs, Vec::<String>::new());
    let l = layer.unwrap();
    let git = &l.tools["git"];
    assert_eq!(git.allow.len(), 3);
    assert_eq!(git.allow[2].tokens, ["commit", "-m", "*"]);
    assert_eq!(git.allow[2].examples_match, [["commit", "-m", "fix typo"]]);
    assert_eq!(git.allow[2].examples_no_match, [["commit", "--amend"]]);
    assert_eq!(
        (git.allow[2].origin.line, git.allow[2].origin.column),
        (4, 40)
    );
    assert_eq!(git.deny.len(), 2);
    assert_eq!(git.timeout, Some(std::time::Duration::from_secs(60)));
    assert_eq!(git.max_calls, Some(200));
    assert_eq!(git.env, ["GIT_AUTHOR_NAME"]);
    assert!(!git.sandbox.inherit_defaults);
    assert_eq!(git.sandbox.read.len(), 2);
    assert_eq!(git.sandbox.cwd[0].path.as_str(), "{workspace}/src");
    assert_eq!(git.sandbox.connect_tcp, [443]);
    let cpp = &l.tools["c++"];
    assert!(cpp.sandbox.inherit_defaults);
    assert_eq!(cpp.sandbox.cwd[0].path.as_str(), "{workspace}");
    assert_eq!(l.audit_path.unwrap().as_str(), "{home}/audit.jsonl");
}

#[test]
fn every_tool_error_is_reported_at_its_place() {
    let src = r#"[tools.git]
path = "/usr/bin/git"
allow = [["ok", "[a-"], { argv = ["commit", "*"], examples = { match = [["commit"]], no_match = [["commit", "x"]] } }]
approve = [{ argv = ["x"], exmples = {} }]
timeout = "0s"
max_calls = 0
env = ["1BAD"]
secrets = ["GITHUB_TOKEN", "GITHUB_TOKEN"]
paht = 1
[tools.".hidden"]
path = "/usr/bin/git"
[tools.none]
path = "/etc/passwd"
deny = [["x"]]
[tools.none.sandbox]
cwd = ["relative"]
"#;
    let (_, errs) = walk(src);
    let want = [
        "3:17: rule allow[0]: token 1 \"[a-\": unclosed `[`",
        "3:73: example [\"commit\"] is not matched by rule allow[1] [\"commit\", \"*\"]",
        "3:98: example [\"commit\", \"x\"] is matched by rule allow[1] [\"commit\", \"*\"]",
        "4:28: unknown key `exmples` in a `approve` rule; did you mean `examples`?",
        "5:11: `timeout` must be longer than 0s",
        "6:13: `max_calls` expects an integer 1-1000000, got 0",
        "7:8: `1BAD` is not a valid variable name",
        "8:28: secret `GITHUB_TOKEN` is listed twice in the `secrets` of [tools.git] (first at line 8); remove one",
        "9:1: unknown key `paht` in [tools.git]; valid keys: path, allow,",
        "10:8: tool name `.hidden` must be",
        "12:1: [tools.none] has no `allow` or `approve` rule",
        "13:8: `/etc/passwd` is not executable",
        "16:8: relative path `relative`",
    ];
    for w in want {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing {w:?} in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
}

#[test]
fn a_child_tool_replaces_the_parents_whole() {
    let (p, _) = walk("[tools.git]\npath = \"/usr/bin/git\"\nallow = [[\"a\"]]\ndeny = [[\"d\"]]\n[audit]\npath = \"/p\"\n");
    let (c, _) = walk("[tools.git]\npath = \"/usr/bin/git\"\nallow = [[\"b\"]]\n[tools.find]\npath = \"/usr/bin/find\"\nallow = [[\"**\"]]\n[audit]\npath = \"/c\"\n");
    let m = p.unwrap().merge(c.unwrap(), &mut Vec::new());
    assert_eq!(m.tools["git"].allow[0].tokens, ["b"]);
    assert!(m.tools["git"].deny.is_empty());
    assert!(m.tools.contains_key("find"));
    assert_eq!(m.audit_path.unwrap().as_str(), "/c");
}

#[test]
fn risk_tags_parse_and_their_mistakes_are_located() {
    let src = r#"
[tools.rm]
path = "/usr/bin/rm"
allow = [{ argv = ["-r", "*"], risk = "delete" }, { argv = ["tmp/*"], risk = "delete", pre_approved = true }, ["-i", "*"]]
approve = [{ argv = ["-rf", "**"], risk = "delete" }]
"#;
    let (layer, diags) = walk(src);
    assert!(diags.is_empty(), "{diags:?}");
    let layer = layer.unwrap();
    let rm = &layer.tools["rm"];
    assert_eq!(rm.allow[0].risk, Some(crate::profile::Risk::Delete));
    assert!(!rm.allow[0].pre_approved);
    assert!(rm.allow[1].pre_approved);
    assert_eq!(rm.allow[2].risk, None);
    assert_eq!(rm.approve[0].risk, Some(crate::profile::Risk::Delete));

    let src = r#"
[tools.rm]
path = "/usr/bin/rm"
allow = [{ argv = ["a"], risk = "dangerous" }, { argv = ["b"], pre_approved = true }]
approve = [{ argv = ["c"], risk = "money", pre_approved = true }]
deny = [{ argv = ["d"], rsik = "share" }]
"#;
    let (_, diags) = walk(src);
    let all = diags.join("\n");
    assert!(all.contains("4:33: `risk` must be \"delete\" or \"money\" or \"share\" or \"privilege\", got \"dangerous\""), "{all}");
    assert!(
        all.contains("4:79: `pre_approved` only applies to a rule with a `risk` tag"),
        "{all}"
    );
    assert!(
        all.contains("5:59: `pre_approved` cannot apply to an `approve` rule"),
        "{all}"
    );
    assert!(all.contains("6:25: unknown key `rsik` in a `deny` rule; valid keys: argv, examples, risk, pre_approved"), "{all}");
}
