// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use crate::profile::{load_text, Presentation, Profile};

/// Loads `src` as `d.toml`: the profile, or every `line:col: message`.
fn load(src: &str) -> Result<Profile, Vec<String>> {
    load_text(Path::new("d.toml"), src).map_err(|e| {
        e.diagnostics
            .iter()
            .map(|d| format!("{}:{}: {}", d.location.line, d.location.column, d.message))
            .collect()
    })
}

fn errors(src: &str) -> Vec<String> {
    match load(src) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    }
}

/// A profile whose agent reaches `api.test:443` and holds secret `S`
/// with `body` (which starts on line 8).
fn agent_secret(body: &str) -> String {
    format!("[profile]\nname = \"d\"\n[network]\nallow_hosts = [\"api.test:443\", \"git.test:443\"]\n[environment]\nsecrets = [\"S\"]\n[secrets.S]\n{body}\n")
}

/// The one error of `agent_secret(body)`.
fn one(body: &str) -> String {
    let e = errors(&agent_secret(body));
    assert_eq!(e.len(), 1, "{body}: {e:#?}");
    e.into_iter().next().unwrap_or_default()
}

#[test]
fn proxy_secrets_parse_in_each_shape() {
    let p = load(&agent_secret(
        "from = \"env:S\"\ndeliver = \"proxy\"\nhosts = [\"API.test:443\", \"git.test:443\"]\nformat = \"Bearer {}\"\nttl = \"5m\"\nmax_uses = 3",
    ))
    .unwrap();
    let proxy = p.secrets["S"].proxy.clone().unwrap();
    assert_eq!(
        proxy.targets(),
        [("api.test".to_string(), 443), ("git.test".to_string(), 443)]
    );
    assert_eq!(proxy.header, "Authorization");
    assert_eq!(
        proxy.form,
        Presentation::Format {
            before: "Bearer ".into(),
            after: String::new()
        }
    );
    assert_eq!(p.environment.secrets, ["S"]);
    let p = load(&agent_secret(
        "from = \"env:S\"\ndeliver = \"proxy\"\nhosts = [\"api.test:443\"]\nheader = \"x-api-key\"\nformat = \"{}\"",
    ))
    .unwrap();
    let proxy = p.secrets["S"].proxy.clone().unwrap();
    assert_eq!(proxy.header, "x-api-key");
    assert_eq!(
        proxy.form,
        Presentation::Format {
            before: String::new(),
            after: String::new()
        }
    );
    let p = load(&agent_secret(
        "from = \"env:S\"\ndeliver = \"proxy\"\nhosts = [\"git.test:443\"]\nbasic = { user = \"x-access-token\" }",
    ))
    .unwrap();
    assert_eq!(
        p.secrets["S"].proxy.clone().unwrap().form,
        Presentation::Basic {
            user: "x-access-token".into()
        }
    );
    // The default stays raw delivery.
    let p =
        load("[profile]\nname = \"d\"\n[secrets.S]\nfrom = \"env:S\"\nexpose = true\n").unwrap();
    assert_eq!(p.secrets["S"].proxy, None);
    let p = load("[profile]\nname = \"d\"\n[secrets.S]\nfrom = \"env:S\"\ndeliver = \"raw\"\nexpose = true\n").unwrap();
    assert_eq!(p.secrets["S"].proxy, None);
}

#[test]
fn bad_proxy_keys_say_where_and_why() {
    let base = "from = \"env:S\"\ndeliver = \"proxy\"\n";
    for (body, at, says) in [
        ("deliver = \"mitm\"", "9:11", "must be \"raw\" or \"proxy\""),
        (
            "deliver = \"proxy\"\nformat = \"{}\"",
            "9:11",
            "needs `hosts`",
        ),
        ("hosts = []\nformat = \"{}\"", "10:9", "`hosts` is empty"),
        (
            "hosts = [\"*.test:443\"]\nformat = \"{}\"",
            "10:10",
            "is a wildcard",
        ),
        (
            "hosts = [\"*:443\"]\nformat = \"{}\"",
            "10:10",
            "is a wildcard",
        ),
        (
            "hosts = [\"api.test:*\"]\nformat = \"{}\"",
            "10:10",
            "exact port",
        ),
        (
            "hosts = [\"10.0.0.1:443\"]\nformat = \"{}\"",
            "10:10",
            "is an address",
        ),
        (
            "hosts = [\"api.test:443 via 127.0.0.1\"]\nformat = \"{}\"",
            "10:10",
            "belongs in the `allow_hosts`",
        ),
        (
            "hosts = [\"api.test\"]\nformat = \"{}\"",
            "10:10",
            "needs a port",
        ),
        (
            "hosts = [\"api.test:443\", \"API.test:443\"]\nformat = \"{}\"",
            "10:26",
            "listed twice",
        ),
        (
            "hosts = [\"api.test:443\"]",
            "9:11",
            "format = \"Bearer {}\"",
        ),
        (
            "hosts = [\"api.test:443\"]\nformat = \"Bearer\"",
            "11:10",
            "exactly once",
        ),
        (
            "hosts = [\"api.test:443\"]\nformat = \"{}:{}\"",
            "11:10",
            "exactly once",
        ),
        (
            "hosts = [\"api.test:443\"]\nformat = \"Bearer {}\\n\"",
            "11:10",
            "printable ASCII",
        ),
        (
            "hosts = [\"api.test:443\"]\nformat = \" {}\"",
            "11:10",
            "leading or trailing",
        ),
        (
            "hosts = [\"api.test:443\"]\nformat = \"{}\"\nbasic = { user = \"u\" }",
            "12:9",
            "both `format` and `basic`",
        ),
        (
            "hosts = [\"api.test:443\"]\nbasic = { user = \"a:b\" }",
            "11:18",
            "without spaces or `:`",
        ),
        (
            "hosts = [\"api.test:443\"]\nbasic = { user = \"u\", name = \"u\" }",
            "11:23",
            "unknown key `name`",
        ),
        (
            "hosts = [\"api.test:443\"]\nbasic = \"u\"",
            "11:9",
            "expects a table",
        ),
        (
            "hosts = [\"api.test:443\"]\nheader = \"X-Key\"\nbasic = { user = \"u\" }",
            "11:10",
            "`Authorization` header",
        ),
        (
            "hosts = [\"api.test:443\"]\nheader = \"Host\"\nformat = \"{}\"",
            "11:10",
            "proxy owns that header",
        ),
        (
            "hosts = [\"api.test:443\"]\nheader = \"Transfer-Encoding\"\nformat = \"{}\"",
            "11:10",
            "proxy owns",
        ),
        (
            "hosts = [\"api.test:443\"]\nheader = \"X Key\"\nformat = \"{}\"",
            "11:10",
            "not an HTTP header name",
        ),
        (
            "hosts = [\"api.test:443\"]\nformat = \"{}\"\nexpose = true",
            "12:10",
            "`expose` makes no sense",
        ),
        (
            "hosts = [\"api.test:443\"]\nformat = \"{}\"\nfrobnicate = 1",
            "12:1",
            "unknown key `frobnicate`",
        ),
    ] {
        let body = if body.starts_with("deliver") {
            format!("from = \"env:S\"\n{body}")
        } else {
            format!("{base}{body}")
        };
        let e = one(&body);
        assert!(
            e.starts_with(&format!("{at}: ")) && e.contains(says),
            "{body}\n=> {e}"
        );
    }
    // Delivery keys without deliver = "proxy".
    let e = errors("[profile]\nname = \"d\"\n[secrets.S]\nfrom = \"env:S\"\nexpose = true\nhosts = [\"api.test:443\"]\nformat = \"{}\"\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].starts_with("6:9: `hosts` in [secrets.S] only applies to deliver = \"proxy\""),
        "{e:#?}"
    );
    assert!(e[1].starts_with("7:10: `format`"), "{e:#?}");
}

#[test]
fn a_placeholder_must_be_able_to_reach_its_hosts_where_it_is_delivered() {
    let tool = |sandbox: &str, entry: &str| {
        format!("[profile]\nname = \"d\"\n[tools.git]\npath = \"/bin/true\"\nallow = [[\"push\"]]\nsecrets = [{entry}]\n[tools.git.sandbox]\n{sandbox}\n[secrets.T]\nfrom = \"env:T\"\ndeliver = \"proxy\"\nhosts = [\"git.test:443\", \"api.test:443\"]\nbasic = {{ user = \"x-access-token\" }}\n")
    };
    let ok = tool("allow_hosts = [\"*.test:443\"]", "\"T\"");
    assert_eq!(errors(&ok), Vec::<String>::new());
    let e = errors(&tool("connect_tcp = [443]", "\"T\""));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].starts_with(
            "6:12: secret `T` (deliver = \"proxy\") goes to tool `git`, which has no host rules"
        ),
        "{e:#?}"
    );
    assert!(
        e[0].contains("allow_hosts = [\"git.test:443\", \"api.test:443\"] to [tools.git.sandbox]"),
        "{e:#?}"
    );
    let e = errors(&tool("allow_hosts = [\"git.test:443\"]", "\"T\""));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].contains("refuse its host `api.test:443` (api.test:443 is not in allow_hosts)"),
        "{e:#?}"
    );
    assert!(e[0].contains("(at d.toml:12:26)"), "{e:#?}");
    let e = errors(&tool(
        "allow_hosts = [\"*.test:443\"]\ndeny_hosts = [\"api.test:*\"]",
        "\"T\"",
    ));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].contains("denied by `api.test:*`"), "{e:#?}");
    let e = errors(&tool(
        "allow_hosts = [\"*.test:443\"]",
        "{ name = \"T\", as = \"file\" }",
    ));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].starts_with("6:12: tool `git`: secret `T` has deliver = \"proxy\""),
        "{e:#?}"
    );
    assert!(e[0].contains("`as = \"file\"` makes no sense"), "{e:#?}");
    // The agent: through [network].
    let e = errors("[profile]\nname = \"d\"\n[network]\nconnect_tcp = [443]\n[environment]\nsecrets = [\"S\"]\n[secrets.S]\nfrom = \"env:S\"\ndeliver = \"proxy\"\nhosts = [\"api.test:443\"]\nformat = \"{}\"\n");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].starts_with(
            "6:12: secret `S` (deliver = \"proxy\") goes to the agent, which has no host rules"
        ),
        "{e:#?}"
    );
}

#[test]
fn the_agent_holds_only_placeholders_of_declared_proxy_secrets() {
    let e = one("from = \"env:S\"");
    assert!(e.starts_with("6:12: [environment] secrets: `S` is delivered raw, and the agent must never hold a value"), "{e}");
    let e = errors("[profile]\nname = \"d\"\n[environment]\nsecrets = [\"ANTROPIC_KEY\"]\n[secrets.ANTHROPIC_KEY]\nfrom = \"env:K\"\nexpose = true\n");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].starts_with("4:12: [environment] secrets: `ANTROPIC_KEY` is not declared; did you mean `ANTHROPIC_KEY`?"), "{e:#?}");
    let proxied =
        "from = \"env:S\"\ndeliver = \"proxy\"\nhosts = [\"api.test:443\"]\nformat = \"{}\"";
    let src = agent_secret(&proxied.replace("env:S", "env:OTHER")).replace(
        "secrets = [\"S\"]",
        "secrets = [\"S\", \"S\"]\npass = [\"S\"]",
    );
    let e = errors(&src);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].starts_with(
            "6:12: `S` is both in [environment] secrets and in `pass` (at d.toml:7:9)"
        ),
        "{e:#?}"
    );
    assert!(
        e[1].starts_with("6:17: secret `S` is listed twice in [environment] secrets"),
        "{e:#?}"
    );
    // Held by the agent counts as used (no "never used" error).
    assert_eq!(errors(&agent_secret(proxied)), Vec::<String>::new());
}

#[test]
fn a_sub_agent_may_not_widen_an_injected_secret() {
    let parent = load(&agent_secret(
        "from = \"env:S\"\ndeliver = \"proxy\"\nhosts = [\"api.test:443\"]\nformat = \"Bearer {}\"",
    ))
    .unwrap();
    let widen = |body: &str, env: &str| {
        let src = agent_secret(body).replacen("secrets = [\"S\"]", env, 1);
        let child = load(&src).unwrap_or_else(|e| panic!("{e:#?}"));
        crate::profile::widenings(&child, &parent, None)
            .into_iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
    };
    let same =
        "from = \"env:S\"\ndeliver = \"proxy\"\nhosts = [\"api.test:443\"]\nformat = \"Bearer {}\"";
    assert_eq!(widen(same, "secrets = [\"S\"]"), Vec::<String>::new());
    let more = "from = \"env:S\"\ndeliver = \"proxy\"\nhosts = [\"api.test:443\", \"git.test:443\"]\nformat = \"Bearer {}\"";
    let w = widen(more, "secrets = [\"S\"]");
    assert!(
        w.len() == 1 && w[0].contains("toward hosts the parent's is not: git.test:443"),
        "{w:#?}"
    );
    let shape =
        "from = \"env:S\"\ndeliver = \"proxy\"\nhosts = [\"api.test:443\"]\nformat = \"token {}\"";
    let w = widen(shape, "secrets = [\"S\"]");
    assert!(
        w.len() == 1 && w[0].contains("another header or shape"),
        "{w:#?}"
    );
    let raw = "from = \"env:S\"\nexpose = false";
    let w = widen(
        &format!("{raw}\n[tools.t]\npath = \"/bin/true\"\nallow = [[\"x\"]]\nsecrets = [\"S\"]"),
        "",
    );
    assert!(
        w.iter()
            .any(|w| w.contains("delivered raw where the parent's is injected")),
        "{w:#?}"
    );
}
