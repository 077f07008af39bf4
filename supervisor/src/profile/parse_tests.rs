// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::profile::{DivergenceAction, Limits};

/// Parses `src` as `p.toml` and returns the layer and `line:col: message`s.
fn walk(src: &str) -> (Option<Layer>, Vec<String>) {
    let mut diags = Vec::new();
    let layer = parse_layer(Arc::from(Path::new("p.toml")), src, &mut diags);
    let msgs = diags
        .iter()
        .map(|d| format!("{}:{}: {}", d.location.line, d.location.column, d.message))
        .collect();
    (layer, msgs)
}

fn errors(src: &str) -> Vec<String> {
    walk(src).1
}

fn one_error(src: &str) -> String {
    let e = errors(src);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.into_iter().next().unwrap_or_default()
}

#[test]
fn a_full_profile_walks_cleanly() {
    let src = r#"
[profile]
name = "agent-1"
description = "d"
extends = "base.toml"
best_effort = true
stop_grace = "1m"
[filesystem]
read = ["/usr", "{workspace}", { path = "/nonexistent/x", optional = true }]
[network]
connect_tcp = [443, 80]
[syscalls]
deny = ["ptrace", "mount"]
on_violation = "deny"
[divergence]
denied_action = "kill"
[environment]
pass = ["LANG"]
set = { EDITOR = "true" }
[limits]
as = 8589934592
core = 0
"#;
    let (layer, errs) = walk(src);
    assert_eq!(errs, Vec::<String>::new());
    let l = layer.unwrap();
    assert_eq!(l.name.as_deref(), Some("agent-1"));
    assert_eq!(l.extends.unwrap().value, "base.toml");
    assert_eq!(l.best_effort, Some(true));
    assert_eq!(l.stop_grace, Some(Duration::from_secs(60)));
    assert_eq!(l.filesystem.read.len(), 3);
    assert!(l.filesystem.read[2].optional);
    assert_eq!(
        l.connect_tcp.iter().map(|p| p.value).collect::<Vec<_>>(),
        [443, 80]
    );
    assert_eq!(
        l.syscall_deny[0].number,
        syscalls::Sysno::ptrace.id() as u32
    );
    assert_eq!(l.on_violation, Some(OnViolation::Deny));
    assert_eq!(l.denied_action.unwrap().value, DivergenceAction::Kill);
    assert_eq!(l.env_set["EDITOR"].value, "true");
    let want = Limits {
        address_space: Some(8589934592),
        core: Some(0),
        ..Limits::default()
    };
    assert_eq!(l.limits, want);
}

#[test]
fn syntax_errors_point_at_their_span() {
    let (layer, errs) = walk("[profile]\nname = \"x\nother = 1\n");
    assert!(layer.is_none());
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("2:"), "{errs:?}");
    assert!(errs[0].contains("TOML syntax error"), "{errs:?}");
}

#[test]
fn unknown_sections_and_keys_suggest_the_right_one() {
    let e = one_error("[netwrok]\nconnect_tcp = [1]\n");
    assert!(
        e.starts_with("1:2: unknown section [netwrok]; did you mean [network]?"),
        "{e}"
    );
    let e = one_error("[network]\nconect_tcp = [1]\n");
    assert!(
        e.starts_with("2:1: unknown key `conect_tcp` in [network]; did you mean `connect_tcp`?"),
        "{e}"
    );
    assert!(e.contains("valid keys: connect_tcp, bind_tcp"), "{e}");
    let e = one_error("name = \"x\"\n");
    assert!(e.contains("unknown top-level key `name`"), "{e}");
}

#[test]
fn wrong_types_name_what_was_expected() {
    let e = one_error("[network]\nconnect_tcp = \"443\"\n");
    assert_eq!(
        e,
        "2:15: `connect_tcp` expects an array of port numbers 1-65535, got a string"
    );
    let e = errors("[network]\nconnect_tcp = [0, 70000, \"x\", 1.5, 22]\n");
    assert_eq!(
        e,
        [
            "2:16: `connect_tcp` expects port numbers 1-65535, got 0",
            "2:19: `connect_tcp` expects port numbers 1-65535, got 70000",
            "2:26: `connect_tcp` expects port numbers 1-65535, got a string",
            "2:31: `connect_tcp` expects port numbers 1-65535, got a float",
        ]
    );
    let e = one_error("profile = 3\n");
    assert_eq!(e, "1:11: `profile` must be a table, got an integer");
    let e = one_error("[profile]\nname = \"a\"\nbest_effort = \"yes\"\n");
    assert_eq!(e, "3:15: `best_effort` expects true or false, got a string");
}

#[test]
fn enums_name_their_words() {
    let e = one_error("[syscalls]\non_violation = \"stop\"\n");
    assert_eq!(
        e,
        "2:16: `on_violation` must be \"kill\" or \"deny\", got \"stop\""
    );
    let e = one_error("[divergence]\ndenied_action = 1\n");
    assert_eq!(
        e,
        "2:17: `denied_action` must be \"kill\" or \"deny\", got an integer"
    );
}

#[test]
fn names_and_durations_are_checked() {
    for bad in ["", "Agent", "-x", "a b", &"a".repeat(65)] {
        let e = one_error(&format!("[profile]\nname = \"{bad}\"\n"));
        assert!(e.starts_with("2:8: `name` must be 1-64 characters"), "{e}");
    }
    assert!(errors(&format!("[profile]\nname = \"{}\"\n", "a".repeat(64))).is_empty());
    for (bad, want) in [
        ("0s", "longer than 0s"),
        ("11m", "at most 10m"),
        ("soon", "must be a duration such as"),
    ] {
        let e = one_error(&format!("[profile]\nstop_grace = \"{bad}\"\n"));
        assert!(e.contains(want), "{e}");
    }
    let e = one_error("[profile]\nstop_grace = 5\n");
    assert!(e.contains("expects a duration"), "{e}");
}

#[test]
fn paths_are_checked_as_templates_and_for_existence() {
    let e = one_error("[filesystem]\nread = [\"usr/lib\"]\n");
    assert!(e.starts_with("2:9: relative path `usr/lib`"), "{e}");
    let e = one_error("[filesystem]\nwrite = [\"{wrkspace}/a\"]\n");
    assert!(e.contains("unknown placeholder `{wrkspace}`"), "{e}");
    let e = one_error("[filesystem]\nexec = [\"/opt/cordon-missing\"]\n");
    assert_eq!(
        e,
        "2:9: `/opt/cordon-missing` does not exist; fix the path or write { path = \"/opt/cordon-missing\", optional = true }"
    );
    let e = one_error("[filesystem]\nread = [{ optional = true }]\n");
    assert!(e.contains("needs `path`"), "{e}");
    let e = one_error("[filesystem]\nread = [{ path = \"/usr\", optonal = true }]\n");
    assert!(e.contains("did you mean `optional`?"), "{e}");
    let e = one_error("[filesystem]\nread = [3]\n");
    assert!(e.contains("got an integer"), "{e}");
}

#[test]
fn host_rules_are_checked_where_written() {
    let e = errors("[network]\nallow_hosts = [\"api.github.com:443\", \"api.github.com\", \"*.x.*:1\", 3, \"api.github.com:443\"]\ndeny_hosts = [\"10.0.0.1/8:*\"]\n");
    assert_eq!(e.len(), 5, "{e:#?}");
    let has = |prefix: &str| e.iter().any(|m| m.starts_with(prefix));
    assert!(
        has("2:38: `allow_hosts`: `api.github.com` needs a port"),
        "{e:#?}"
    );
    assert!(has("2:56: `allow_hosts`: `*.x.*:1`"), "{e:#?}");
    assert!(has("2:67: `allow_hosts` expects"), "{e:#?}");
    assert!(has("2:70: `api.github.com:443` is listed twice"), "{e:#?}");
    assert!(
        has("3:15: `deny_hosts`: after") || has("3:15: `deny_hosts`: `10.0.0.1/8"),
        "{e:#?}"
    );
    let (layer, e) =
        walk("[network]\nallow_hosts = [\"*.pythonhosted.org:443\", \"svc:80 via 127.0.0.1\"]\n");
    assert!(e.is_empty(), "{e:#?}");
    assert_eq!(layer.unwrap().allow_hosts.len(), 2);
}

#[test]
fn environment_names_and_reserved_variables() {
    let e = errors("[environment]\npass = [\"1X\", \"OK\", \"HOME\"]\nset = { TMPDIR = \"/t\", \"A-B\" = \"x\", C = 1, D = \"a\\u0000b\" }\n");
    assert_eq!(e.len(), 6, "{e:#?}");
    assert!(e
        .iter()
        .any(|m| m == "3:48: the value of `D` contains a NUL byte"));
    assert!(e[0].starts_with("2:9: `1X` is not a valid variable name"));
    assert!(e[1].starts_with("2:21: cordon sets `HOME` itself"));
    assert!(e.iter().any(|m| m.contains("cordon sets `TMPDIR` itself")));
    assert!(e
        .iter()
        .any(|m| m.contains("`A-B` is not a valid variable name")));
    assert!(e
        .iter()
        .any(|m| m.contains("`C` expects a string value, got an integer")));
}

#[test]
fn limits_and_max_denials_are_range_checked() {
    let e = errors("[limits]\nnofile = -1\nmemory = 5\n[divergence]\nmax_denials = 1000001\n");
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(e
        .iter()
        .any(|m| m == "2:10: `nofile` expects a non-negative integer, got -1"));
    assert!(e
        .iter()
        .any(|m| m.starts_with("3:1: unknown key `memory` in [limits]")));
    assert!(e
        .iter()
        .any(|m| m == "5:15: `max_denials` expects an integer 0-1000000, got 1000001"));
}

#[test]
fn garbage_never_panics() {
    let deep = format!("a = {}{}", "[".repeat(5000), "]".repeat(5000));
    let inputs = [
        "\u{0}\u{1}\u{2}\u{ff}".to_string(),
        deep,
        "[limits]\ncpu = 999999999999999999999999999999999999999999999999\n".to_string(),
        "[network]\nconnect_tcp = [-1, -99999999999999999999999]\n".to_string(),
        "[[profile]]\nname = \"x\"\n".to_string(),
        "[filesystem]\nread = [[[\"/usr\"]]]\n".to_string(),
        "[syscalls]\ndeny = [\"\", \"\\u0000\", \"ptrace\\n\"]\n".to_string(),
        "[profile.name]\nx = 1\n".to_string(),
        "=".repeat(1000),
    ];
    for src in inputs {
        let (_, e) = walk(&src);
        assert!(!e.is_empty(), "{src:?} should be rejected");
        assert!(e.iter().all(|m| !m.contains('\n')), "{e:#?}");
    }
}
