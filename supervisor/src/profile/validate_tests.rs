// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::profile::parse::parse_layer;

fn layer(src: &str) -> Layer {
    let mut diags = Vec::new();
    let l = parse_layer(Arc::from(Path::new("v.toml")), src, &mut diags);
    assert!(diags.is_empty(), "{diags:#?}");
    l.unwrap()
}

fn layer_errors(src: &str) -> Vec<String> {
    let mut diags = Vec::new();
    check_layer(&layer(src), &mut diags);
    diags.iter().map(|d| d.to_string()).collect()
}

fn profile_errors(src: &str) -> Vec<String> {
    let mut diags = Vec::new();
    check_profile(&layer(src), &mut diags);
    diags.iter().map(|d| d.to_string()).collect()
}

const NAME: &str = "[profile]\nname = \"v\"\n";

#[test]
fn duplicates_name_the_first_line() {
    let e = layer_errors(&format!("{NAME}[filesystem]\nread = [\"/usr\",\n  \"/usr/\"]\n[network]\nbind_tcp = [80, 80]\n[syscalls]\ndeny = [\"ptrace\", \"ptrace\"]\n[environment]\npass = [\"A\", \"A\"]\n"));
    assert_eq!(e.len(), 4, "{e:#?}");
    assert_eq!(
        e[0],
        "v.toml:5:3: `/usr` is listed twice in `read` (first at line 4); remove one"
    );
    assert!(e[1].starts_with("v.toml:7:17: `80` is listed twice in `bind_tcp`"));
    assert!(e[2].contains("`ptrace` is listed twice"));
    assert!(e[3].contains("`A` is listed twice in `pass`"));
}

#[test]
fn granted_and_denied_is_an_error() {
    let e = profile_errors(&format!("{NAME}[filesystem]\nwrite = [\"{{workspace}}\"]\ndeny = [\"{{workspace}}/\", \"{{workspace}}/.env\"]\n"));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].starts_with("v.toml:5:9: `{workspace}/` is both granted (in `write` at v.toml:4:10)"),
        "{}",
        e[0]
    );
    assert!(e[0].ends_with("deny only paths strictly inside a granted tree"));
}

#[test]
fn denying_root_is_an_error() {
    let e = profile_errors(&format!("{NAME}[filesystem]\ndeny = [\"//\"]\n"));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].starts_with("v.toml:4:9: `deny` of `/` would hide everything"));
}

#[test]
fn missing_name_is_reported_at_the_profile_table() {
    let e = profile_errors("[profile]\ndescription = \"x\"\n");
    assert_eq!(
        e,
        ["v.toml:1:1: missing `name` in [profile]; write e.g. name = \"coding-agent\""]
    );
    let e = profile_errors("[network]\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("v.toml:1:1: missing `name`"));
}

#[test]
fn max_denials_with_kill_has_no_effect() {
    let e = profile_errors(&format!(
        "{NAME}[divergence]\ndenied_action = \"kill\"\nmax_denials = 2\n"
    ));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].starts_with("v.toml:5:15: `max_denials` has no effect"));
    assert!(profile_errors(&format!(
        "{NAME}[divergence]\ndenied_action = \"deny\"\nmax_denials = 2\n"
    ))
    .is_empty());
}

#[test]
fn pass_and_set_of_the_same_name() {
    let e = profile_errors(&format!(
        "{NAME}[environment]\npass = [\"LANG\"]\nset = {{ LANG = \"C\" }}\n"
    ));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].starts_with("v.toml:4:9: `LANG` is both in `pass` and in `set` (at v.toml:5:9)"),
        "{}",
        e[0]
    );
}

#[test]
fn merge_follows_the_documented_rules() {
    let parent = layer("[profile]\nname = \"base\"\ndescription = \"d\"\nstop_grace = \"7s\"\n[filesystem]\nread = [\"/usr\", { path = \"/nope\", optional = true }]\n[network]\nconnect_tcp = [443]\n[environment]\nset = { A = \"p\", B = \"p\" }\n[limits]\nnofile = 10\ncpu = 5\n");
    let child = layer("[profile]\nname = \"kid\"\nbest_effort = true\n[filesystem]\nread = [{ path = \"/usr\", optional = true }, \"/etc\", { path = \"/nope\", optional = true }]\n[network]\nconnect_tcp = [80, 443]\n[environment]\nset = { B = \"c\" }\n[limits]\ncpu = 9\n");
    let p = parent.merge(child).into_profile("kid.toml".into());
    assert_eq!(p.name, "kid");
    assert_eq!(p.description.as_deref(), Some("d"));
    assert!(p.best_effort);
    assert_eq!(p.stop_grace, std::time::Duration::from_secs(7));
    let reads: Vec<&str> = p.filesystem.read.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(reads, ["/usr", "/nope", "/etc"]);
    // Required in the parent, optional in the child: the stricter reading wins.
    assert!(!p.filesystem.read[0].optional);
    assert!(p.filesystem.read[1].optional);
    assert_eq!(p.network.connect_tcp, [443, 80]);
    assert_eq!(p.environment.set["A"], "p");
    assert_eq!(p.environment.set["B"], "c");
    assert_eq!((p.limits.nofile, p.limits.cpu), (Some(10), Some(9)));
}
