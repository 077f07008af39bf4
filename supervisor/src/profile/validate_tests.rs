// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
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
    let p = parent
        .merge(child, &mut Vec::new())
        .into_profile("kid.toml".into());
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

/// A tool `t` that receives `secrets` (a TOML array).
fn tool_with(secrets: &str) -> String {
    format!("[tools.t]\npath = \"/usr/bin/true\"\nallow = [[\"**\"]]\nsecrets = {secrets}\n")
}

#[test]
fn tool_secrets_must_be_declared() {
    let src = format!(
        "{NAME}{}[secrets.GITHUB_TOKEN]\nfrom = \"env:GH\"\n",
        tool_with("[\"GITHUB_TOKEN\", \"GITHUB_TOKN\", { name = \"ZZZ\", as = \"file\" }]")
    );
    let e = profile_errors(&src);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!(e[0], "v.toml:6:28: tool `t`: secret `GITHUB_TOKN` is not declared; did you mean `GITHUB_TOKEN`? declare it in a [secrets.GITHUB_TOKN] section");
    assert!(e[1].starts_with("v.toml:6:43: tool `t`: secret `ZZZ` is not declared; declare it"));
}

#[test]
fn unused_secrets_are_errors_unless_exposed() {
    let src = format!("{NAME}[secrets.A]\nfrom = \"env:A\"\n[secrets.B]\nfrom = \"env:B\"\nexpose = true\n[secrets.C]\nfrom = \"env:C\"\n{}", tool_with("[\"C\"]"));
    let e = profile_errors(&src);
    assert_eq!(e, ["v.toml:3:1: secret `A` is never used (no tool or MCP server lists it, it is not in [environment] secrets, and expose = false); list it in a tool's `secrets` or remove it"]);
}

#[test]
fn an_env_source_may_not_be_passed_to_the_agent() {
    let src = format!("{NAME}[environment]\npass = [\"LANG\", \"GH\"]\n[secrets.T]\nfrom = \"env:GH\"\nexpose = true\n");
    let e = profile_errors(&src);
    assert_eq!(e, ["v.toml:6:8: secret `T`: the agent would receive the secret source: `GH` is in [environment] pass (at v.toml:4:17); remove it from `pass`"]);
}

/// A profile granting `grants` (a [filesystem] body) with secret `S` read
/// from `from` (exposed, so it counts as used).
fn escalation(grants: &str, from: &str) -> String {
    format!("{NAME}[filesystem]\n{grants}\n[secrets.S]\nfrom = {from}\nexpose = true\n")
}

#[test]
fn a_readable_file_source_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    let token = d.join("token");
    std::fs::write(&token, "x").unwrap();
    let from = format!("\"file:{}\"", token.display());
    let src = escalation(&format!("read = [\"/usr\", \"{}\"]", d.display()), &from);
    let e = profile_errors(&src);
    assert_eq!(e.len(), 1, "{e:#?}");
    let want = format!("v.toml:6:8: secret `S`: the agent could read the secret source {} (granted by read = \"{}\" at v.toml:4:17); narrow the grant", token.display(), d.display());
    assert_eq!(e[0], want);
    // Write and exec grants count too, and one error per grant.
    let src = escalation(
        &format!("write = [\"{0}\"]\nexec = [\"{0}/token\"]", d.display()),
        &from,
    );
    // (The exec grant inside the write grant is an error of its own.)
    let e: Vec<String> = profile_errors(&src)
        .into_iter()
        .filter(|m| m.contains("secret source"))
        .collect();
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].contains("could read and change the secret source"),
        "{}",
        e[0]
    );
    assert!(e[0].contains("(granted by write = "), "{}", e[0]);
    assert!(e[1].contains("(granted by exec = "), "{}", e[1]);
    // A missing source is compared as written; `/` reaches everything.
    let src = escalation("read = [\"/\"]", "\"file:/nonexistent/cordon/token\"");
    let e = profile_errors(&src);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].contains(
        "the secret source /nonexistent/cordon/token (granted by read = \"/\" at v.toml:4:9)"
    ));
    // A deny inside the grant does not excuse it.
    let src = escalation(
        &format!("read = [\"{0}\"]\ndeny = [\"{0}/token\"]", d.display()),
        &from,
    );
    assert_eq!(profile_errors(&src).len(), 1);
    // A sibling directory is fine.
    let other = tempfile::tempdir().unwrap();
    let src = escalation(&format!("read = [\"{}\"]", other.path().display()), &from);
    assert!(profile_errors(&src).is_empty());
}

#[test]
fn symlinks_are_followed_for_reading_and_not_for_swapping() {
    let secret_dir = tempfile::tempdir().unwrap();
    let link_dir = tempfile::tempdir().unwrap();
    let (s, l) = (
        secret_dir.path().canonicalize().unwrap(),
        link_dir.path().canonicalize().unwrap(),
    );
    std::fs::write(s.join("token"), "x").unwrap();
    std::os::unix::fs::symlink(s.join("token"), l.join("link")).unwrap();
    let from = format!("\"file:{}\"", l.join("link").display());
    // Read of the link's directory: Landlock checks the target, not the link.
    let src = escalation(&format!("read = [\"{}\"]", l.display()), &from);
    assert!(profile_errors(&src).is_empty());
    // Read of the target's directory: reachable through the link.
    let src = escalation(&format!("read = [\"{}\"]", s.display()), &from);
    let e = profile_errors(&src);
    assert_eq!(e.len(), 1, "{e:#?}");
    let want = format!(
        "source {} (which resolves to {}/token)",
        l.join("link").display(),
        s.display()
    );
    assert!(e[0].contains(&want), "{}", e[0]);
    // Write of the link's directory: the agent could swap the link.
    let src = escalation(&format!("write = [\"{}\"]", l.display()), &from);
    let e = profile_errors(&src);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].contains("could read and change"), "{}", e[0]);
}

#[test]
fn placeholder_grants_are_left_to_the_session() {
    let src = escalation(
        "read = [\"{workspace}\", \"{home}\"]\nwrite = [\"{tmp}\"]",
        "\"file:/etc/cordon-token\"",
    );
    assert!(profile_errors(&src).is_empty());
}

#[test]
fn a_credential_under_a_grant_is_refused_when_the_directory_is_known() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().canonicalize().unwrap();
    let src = escalation(
        &format!("read = [\"{}\"]", creds.display()),
        "\"credential:gh\"",
    );
    let merged = layer(&src);
    let mut diags = Vec::new();
    sources_not_reachable_with(&merged, None, &mut diags);
    assert!(diags.is_empty());
    sources_not_reachable_with(&merged, Some(&creds), &mut diags);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert!(diags[0].message.contains(&format!(
        "the secret source {}/gh (granted by read",
        creds.display()
    )));
}

#[test]
fn writable_provider_and_revoke_programs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    let src = format!(
        "{NAME}[filesystem]\nwrite = [\"{0}\"]\nexec = [\"{0}\"]\n[secrets.S]\nfrom = \"command:{0}/fetch x\"\nrevoke = [\"{0}/revoke\"]\nexpose = true\n[secrets.B]\nfrom = \"command:gh auth token\"\nexpose = true\n",
        d.display()
    );
    // (The exec grant on the writable tree is an error of its own.)
    let e: Vec<String> = profile_errors(&src)
        .into_iter()
        .filter(|m| m.contains("secret `"))
        .collect();
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e[0].starts_with(&format!("v.toml:7:8: secret `S`: the agent could replace the provider command {}/fetch (granted by write = ", d.display())), "{}", e[0]);
    assert!(
        e[1].starts_with("v.toml:8:10: secret `S`: the agent could replace the revoke command"),
        "{}",
        e[1]
    );
}

#[test]
fn the_runtime_check_expands_placeholders() {
    let ws = tempfile::tempdir().unwrap();
    let w = ws.path().canonicalize().unwrap();
    let src = escalation(
        "read = [\"/usr\", \"{workspace}\"]\nwrite = [\"{tmp}\"]",
        "\"credential:gh\"",
    );
    let src = format!("{src}[secrets.F]\nfrom = \"file:{}/cfg/token\"\nexpose = true\nrevoke = [\"{}/bin/revoke\"]\n", w.display(), w.display());
    let mut diags = Vec::new();
    let merged = layer(&src);
    check_profile(&merged, &mut diags);
    assert!(diags.is_empty(), "{diags:#?}");
    let profile = merged.into_profile("v.toml".into());
    let values = |tmp: &Path| crate::profile::Placeholders {
        workspace: w.clone(),
        home: PathBuf::from("/nonexistent/home"),
        tmp: tmp.to_path_buf(),
    };
    let hits = reachable_in(&profile, &values(Path::new("/nonexistent/tmp")), None);
    let got: Vec<(String, PathBuf, (u32, u32))> = hits
        .into_iter()
        .map(|(n, p, l)| (n, p, (l.line, l.column)))
        .collect();
    assert_eq!(got, [("F".to_string(), w.join("cfg/token"), (4, 17))],);
    // The credentials directory inside {tmp}, which the agent may write.
    let hits = reachable_in(&profile, &values(&w), Some(&w.join("creds")));
    let names: Vec<&str> = hits.iter().map(|(n, _, _)| n.as_str()).collect();
    // F's source (read and write grants), F's revoke program (write), S's
    // credential (read and write).
    assert_eq!(names, ["F", "F", "F", "S", "S"], "{hits:#?}");
    assert_eq!(hits[2].1, w.join("bin/revoke"));
    assert!(crate::profile::secret_source_reachable(&profile, &values(Path::new("/x"))).len() <= 2);
}

#[test]
fn the_proxy_port_cannot_be_bound_with_host_rules() {
    let e = profile_errors(&format!(
        "{NAME}[network]\nallow_hosts = [\"a.test:443\"]\nbind_tcp = [8080, 3128]\n"
    ));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].starts_with("v.toml:5:19: port 3128 is cordon's egress proxy"),
        "{e:#?}"
    );
    let e = profile_errors(&format!("{NAME}[network]\nbind_tcp = [3128]\n"));
    assert!(e.is_empty(), "{e:#?}");
}

#[test]
fn an_exec_grant_on_a_writable_tree_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap().display().to_string();
    for sub in ["tools/cache", "tool", "tools"] {
        std::fs::create_dir_all(format!("{d}/{sub}")).unwrap();
    }
    let overlapping = [
        ("{tmp}".to_string(), "{tmp}".to_string()),
        ("{workspace}/bin".to_string(), "{workspace}".to_string()),
        (format!("{d}/tools"), format!("{d}/tools/cache")),
        (format!("{d}/tools/"), format!("{d}/tools")),
    ];
    for (exec, write) in overlapping {
        let e = profile_errors(&format!(
            "{NAME}[filesystem]\nexec = [\"{exec}\"]\nwrite = [\"{write}\"]\n"
        ));
        assert_eq!(e.len(), 1, "{exec} / {write}: {e:#?}");
        assert!(
            e[0].starts_with("v.toml:4:9: exec grant")
                && e[0].contains("overlaps the write grant")
                && e[0].contains("v.toml:5:10"),
            "{}",
            e[0]
        );
    }
    // Siblings and name prefixes do not overlap.
    let apart = [
        ("{workspace}/bin".to_string(), "{tmp}".to_string()),
        (format!("{d}/tool"), format!("{d}/tools")),
    ];
    for (exec, write) in apart {
        let e = profile_errors(&format!(
            "{NAME}[filesystem]\nexec = [\"{exec}\"]\nwrite = [\"{write}\"]\n"
        ));
        assert!(e.is_empty(), "{exec} / {write}: {e:#?}");
    }
}

#[test]
fn tolerated_lists_are_checked() {
    let mut diags = Vec::new();
    let src = format!("{NAME}[filesystem]\nexec = [\"/usr/bin\"]\n[divergence]\ntolerated_hosts = [\"ab.example:443 via 10.0.0.0/8\", \"ab.example:443\"]\ntolerated_execs = [\"/usr/bin/env\"]\n");
    let l = parse_layer(Arc::from(Path::new("v.toml")), &src, &mut diags).unwrap();
    check_profile(&l, &mut diags);
    let e: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].starts_with("v.toml:6:20: `tolerated_hosts` entry `ab.example:443 via 10.0.0.0/8`: `via` has no meaning here"),
        "{e:#?}"
    );
    assert!(
        e[1].starts_with(
            "v.toml:7:20: `tolerated_execs` entry `/usr/bin/env` lies in the exec grant `/usr/bin`"
        ),
        "{e:#?}"
    );
}

#[test]
fn a_persistent_home_is_a_word_and_never_a_sub_agents() {
    let src = format!("{NAME}[environment]\nhome = \"persistent\"\n");
    let p = crate::profile::load_text(Path::new("sub.toml"), &src).unwrap_err();
    assert!(
        p.to_string()
            .contains("sub.toml:4:8: a sub-agent's profile cannot keep a persistent home"),
        "{p}"
    );
    let mut diags = Vec::new();
    let src = format!("{NAME}[environment]\nhome = \"kept\"\n");
    parse_layer(Arc::from(Path::new("v.toml")), &src, &mut diags).unwrap();
    assert!(
        diags[0].to_string().contains("\"fresh\" or \"persistent\""),
        "{diags:#?}"
    );
}

#[test]
fn a_tool_or_server_sandbox_that_reaches_the_identity_key_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().canonicalize().unwrap();
    let key = dir.join("identity/signing-key.pem");
    let src = format!(
        "{NAME}[tools.t]\npath = \"/usr/bin/true\"\nallow = [[]]\nsecrets = [\"ID\"]\n[tools.t.sandbox]\nread = [\"{d}\"]\n\
         [tools.u]\npath = \"/usr/bin/false\"\nallow = [[]]\n[tools.u.sandbox]\nread = [\"{{tmp}}\"]\n\
         [secrets.ID]\nfrom = \"identity:jwt?aud=svc&bind=call\"\nttl = \"1m\"\n",
        d = dir.display()
    );
    let merged = layer(&src);
    let mut diags = Vec::new();
    super::key::check_with(&merged, Some(&key), &mut diags);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let m = &diags[0].message;
    assert!(
        m.starts_with("secret `ID`: [tools.t.sandbox] could read cordon's identity signing key")
            && m.contains(&format!("granted by read = \"{}\"", dir.display())),
        "{m}"
    );
    // Elsewhere, no complaint.
    let mut diags = Vec::new();
    super::key::check_with(&merged, Some(Path::new("/nonexistent/key.pem")), &mut diags);
    assert!(diags.is_empty(), "{diags:#?}");
    // At session start, with {tmp} expanded to where the key is.
    let profile = merged.into_profile("v.toml".into());
    let values = crate::profile::Placeholders {
        workspace: PathBuf::from("/nonexistent/ws"),
        home: PathBuf::from("/nonexistent/home"),
        tmp: dir.clone(),
    };
    let expand = |t: &PathTemplate| Some(t.expand(&values));
    let hits = super::key::reachable(&profile, &expand, Some(&key));
    assert_eq!(hits.len(), 2, "{hits:#?}");
    assert!(hits.iter().all(|(n, p, _)| n == "ID" && p == &key));
}
