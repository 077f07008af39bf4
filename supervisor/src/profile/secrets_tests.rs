// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::profile::layer::Layer;
use crate::profile::parse::parse_layer;
use crate::profile::{Delivery, SecretSource};

/// Parses `src` as `s.toml`; returns the layer and `line:col: message`s.
fn walk(src: &str) -> (Layer, Vec<String>) {
    let mut diags = Vec::new();
    let layer = parse_layer(Arc::from(Path::new("s.toml")), src, &mut diags);
    let msgs = diags
        .iter()
        .map(|d| format!("{}:{}: {}", d.location.line, d.location.column, d.message))
        .collect();
    (layer.unwrap(), msgs)
}

fn errors(src: &str) -> Vec<String> {
    walk(src).1
}

/// The one error of `[secrets.S]` with `body`, as `line:col: message`
/// (the body starts on line 2).
fn one(body: &str) -> String {
    let e = errors(&format!("[secrets.S]\n{body}\n"));
    assert_eq!(e.len(), 1, "{body}: {e:#?}");
    e.into_iter().next().unwrap_or_default()
}

#[test]
fn a_full_secret_parses() {
    let src = r#"[secrets.GITHUB_TOKEN]
from = "env:GITHUB_TOKEN"
revoke = ["vault", "lease", "revoke", "-"]
ttl = "5m"
max_uses = 10
expose = true
cache = true
fetch_timeout = "3s"

[secrets.F]
from = "file:/etc/cordon/token"
[secrets.C]
from = "credential:gh-token"
[secrets.V]
from = "command:vault kv get  -field=token	secret/gh"
[secrets.OP]
from = { command = ["/usr/bin/op", "read", "op://vault/my item/token"] }
"#;
    let (l, e) = walk(src);
    assert_eq!(e, Vec::<String>::new());
    let gh = l.secrets["GITHUB_TOKEN"].spec.clone().unwrap();
    assert_eq!(gh.source, SecretSource::Env("GITHUB_TOKEN".into()));
    assert_eq!(gh.revoke.unwrap(), ["vault", "lease", "revoke", "-"]);
    assert_eq!(gh.ttl, Some(Duration::from_secs(300)));
    assert_eq!(gh.max_uses, Some(10));
    assert!(gh.expose && gh.cache);
    assert_eq!(gh.fetch_timeout, Duration::from_secs(3));
    assert_eq!((gh.origin.line, gh.origin.column), (1, 1));
    let at = l.secrets["GITHUB_TOKEN"].from_at.clone().unwrap();
    assert_eq!((at.line, at.column), (2, 8));
    let spec = |n: &str| l.secrets[n].spec.clone().unwrap();
    assert_eq!(
        spec("F").source,
        SecretSource::File("/etc/cordon/token".into())
    );
    assert_eq!(spec("F").fetch_timeout, Duration::from_secs(10));
    assert!(!spec("F").expose && !spec("F").cache && spec("F").ttl.is_none());
    assert_eq!(
        spec("C").source,
        SecretSource::Credential("gh-token".into())
    );
    assert_eq!(
        spec("V").source,
        SecretSource::Command(
            ["vault", "kv", "get", "-field=token", "secret/gh"]
                .map(String::from)
                .to_vec()
        )
    );
    assert_eq!(
        spec("OP").source,
        SecretSource::Command(
            ["/usr/bin/op", "read", "op://vault/my item/token"]
                .map(String::from)
                .to_vec()
        )
    );
}

#[test]
fn secret_names_become_variable_names() {
    let mut e = errors("[secrets.1X]\nfrom = \"env:A\"\n[secrets.a-b]\nfrom = \"env:A\"\n[secrets.PATH]\nfrom = \"env:A\"\n[secrets.LD_PRELOAD]\nfrom = \"env:A\"\n[secrets.CORDON_X]\nfrom = \"env:A\"\n");
    assert_eq!(e.len(), 5, "{e:#?}");
    e.sort_by_key(|m| m.split(':').next().and_then(|l| l.parse::<u32>().ok()));
    assert!(
        e[0].starts_with("1:10: secret name `1X` must be 1-128 characters"),
        "{e:#?}"
    );
    assert!(
        e[1].starts_with("3:10: secret name `a-b` must be"),
        "{e:#?}"
    );
    assert!(e[2].starts_with("5:10: secret name `PATH` is a variable cordon sets"));
    assert!(e[3].contains("`LD_PRELOAD` starts with `LD_`"));
    assert!(e[4].contains("`CORDON_X` starts with `CORDON_`"));
    let long = "A".repeat(129);
    let e = errors(&format!("[secrets.{long}]\nfrom = \"env:A\"\n"));
    assert_eq!(e.len(), 1, "{e:#?}");
    let ok = "_".to_string() + &"a".repeat(127);
    assert!(errors(&format!("[secrets.{ok}]\nfrom = \"env:A\"\n")).is_empty());
}

#[test]
fn from_is_required_and_checked() {
    assert!(errors("[secrets.S]\nttl = \"1s\"\n")[0].starts_with("1:1: [secrets.S] needs `from`"));
    let e = one("from = \"ghp_SECRETVALUE\"");
    assert!(
        e.starts_with(
            "2:8: `from` must start with `env:`, `file:`, `credential:`, `command:` or `identity:`"
        ),
        "{e}"
    );
    assert!(!e.contains("ghp_"), "the value must not be echoed: {e}");
    let e = one("from = \"comand:x\"");
    assert!(e.ends_with("did you mean `command:`?"), "{e}");
    assert_eq!(
        one("from = 5"),
        "2:8: `from` expects a string such as \"env:VAR\", or { command = [...] }, got an integer"
    );
    for p in ["env", "file", "credential", "command"] {
        let e = one(&format!("from = \"{p}:\""));
        assert!(
            e.starts_with(&format!("2:8: `from = \"{p}:\"` needs ")),
            "{e}"
        );
    }
    assert!(one("from = \"command:   \"").contains("needs a command"));
    assert!(one("from = \"env:1A\"").contains("not a valid variable name"));
}

#[test]
fn file_sources_are_absolute_host_paths() {
    assert!(one("from = \"file:token\"").contains("needs an absolute path"));
    let e = one("from = \"file:{workspace}/token\"");
    assert!(e.contains("may not use a placeholder"), "{e}");
    assert!(e.contains("the agent controls"), "{e}");
    assert!(one("from = \"file:{home}/t\"").contains("may not use a placeholder"));
    assert!(one("from = \"file:/etc/../t\"").contains("`.` or `..` component"));
    assert!(one("from = \"file:/etc/{tmp}/t\"").contains("placeholder in the middle"));
    // A missing file is no error at check time: it is read at call time.
    assert!(
        errors("[secrets.S]\nfrom = \"file:/nonexistent/cordon/t\"\nexpose = true\n").is_empty()
    );
}

#[test]
fn credential_names_are_one_component() {
    for bad in ["a/b", ".", "..", "/abs"] {
        let e = one(&format!("from = \"credential:{bad}\""));
        assert!(e.contains("a credential name is one file name"), "{e}");
    }
    assert!(errors("[secrets.S]\nfrom = \"credential:..x\"\n").is_empty());
}

#[test]
fn commands_and_revoke_argv() {
    let e = one("from = \"command:sh -c 'echo hi'\"");
    assert!(e.contains("without quoting"), "{e}");
    assert!(e.contains("from = { command = ["), "{e}");
    assert!(one("from = \"command:./fetch\"")
        .contains("must be an absolute path or a bare name found on cordon's PATH, got `./fetch`"));
    assert!(one("from = { command = [] }").contains("needs a command"));
    assert!(one("from = { command = [\"\"] }").contains("the program name is empty"));
    assert!(one("from = { command = [\"/a/../b\"] }").contains("`.` or `..` component"));
    let e = errors("[secrets.S]\nfrom = { comand = [\"gh\"] }\n");
    assert!(
        e[0].starts_with("2:10: unknown key `comand` in `from`; did you mean `command`?"),
        "{e:#?}"
    );
    assert!(
        e[1].starts_with("2:8: a `from` table needs `command`"),
        "{e:#?}"
    );
    assert_eq!(
        one("from = { command = [\"gh\", 1] }"),
        "2:27: `command` expects strings, got an integer"
    );
    let e = errors("[secrets.S]\nfrom = \"env:A\"\nrevoke = []\n");
    assert!(e[0].starts_with("3:10: `revoke` needs a command"), "{e:#?}");
    let e = errors("[secrets.S]\nfrom = \"env:A\"\nrevoke = \"vault revoke\"\n");
    assert!(
        e[0].starts_with("3:10: `revoke` expects an array of strings"),
        "{e:#?}"
    );
    let e = errors("[secrets.S]\nfrom = \"env:A\"\nrevoke = [\"bin/revoke\"]\n");
    assert!(
        e[0].starts_with("3:11: `revoke`: the program must be"),
        "{e:#?}"
    );
}

#[test]
fn limits_durations_and_flags() {
    let e = errors("[secrets.S]\nfrom = \"env:A\"\nttl = \"0s\"\nmax_uses = 0\nexpose = \"yes\"\nfetch_timeout = \"6m\"\ncahe = true\n");
    let want = [
        "3:7: `ttl` must be longer than 0s",
        "4:12: `max_uses` expects an integer 1-1000000, got 0",
        "5:10: `expose` expects true or false, got a string",
        "6:17: `fetch_timeout` must be at most 5m, got \"6m\"",
        "7:1: unknown key `cahe` in [secrets.S]; did you mean `cache`?",
    ];
    assert_eq!(e.len(), want.len(), "{e:#?}");
    for w in want {
        assert!(
            e.iter().any(|m| m.starts_with(w)),
            "missing {w:?} in {e:#?}"
        );
    }
    let e = errors("[secrets.S]\nfrom = \"env:A\"\nttl = \"25h\"\nmax_uses = 1000001\nfetch_timeout = \"soon\"\n");
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(e[0].starts_with("3:7: `ttl` must be at most 24h"));
    assert!(e[2].starts_with("5:17: `fetch_timeout` must be a duration such as \"10s\""));
}

#[test]
fn cache_needs_a_ttl() {
    assert_eq!(
        one("from = \"env:A\"\ncache = true"),
        "3:9: `cache = true` needs a `ttl`: how long a fetched value may be reused"
    );
    assert!(errors("[secrets.S]\nfrom = \"env:A\"\ncache = false\n").is_empty());
    assert!(errors("[secrets.S]\nfrom = \"env:A\"\ncache = true\nttl = \"1m\"\n").is_empty());
}

#[test]
fn a_bad_secret_keeps_its_name_but_not_its_spec() {
    let (l, e) = walk("[secrets.S]\nfrom = \"env:A\"\nttl = \"0s\"\n");
    assert_eq!(e.len(), 1);
    assert!(l.secrets["S"].spec.is_none());
}

#[test]
fn secrets_must_be_tables() {
    assert_eq!(
        errors("secrets = 1\n"),
        ["1:11: `secrets` must be a table, got an integer"]
    );
    assert_eq!(
        errors("[secrets]\nS = \"env:A\"\n"),
        ["2:5: [secrets.S] must be a table, got a string"]
    );
}

#[test]
fn tool_secrets_parse_with_their_delivery() {
    let src = r#"[tools.git]
path = "/usr/bin/git"
allow = [["status"]]
env = ["GIT_DIR"]
secrets = ["A", { name = "B", as = "file" }, { name = "C", as = "env" }, { name = "D" }]
"#;
    let (l, e) = walk(src);
    assert_eq!(e, Vec::<String>::new());
    let s = &l.tools["git"].secrets;
    let got: Vec<(&str, Delivery)> = s.iter().map(|s| (s.name.as_str(), s.delivery)).collect();
    assert_eq!(
        got,
        [
            ("A", Delivery::Env),
            ("B", Delivery::File),
            ("C", Delivery::Env),
            ("D", Delivery::Env)
        ]
    );
    assert_eq!((s[1].origin.line, s[1].origin.column), (5, 17));
}

#[test]
fn tool_secret_errors() {
    let src = r#"[tools.git]
path = "/usr/bin/git"
allow = [["status"]]
env = ["GIT_DIR"]
secrets = ["A", "A", "GIT_DIR", { name = "B", as = "disk" }, { as = "file" }, { name = "C", sa = "env" }, 7]
"#;
    let e = errors(src);
    let want = [
        "5:17: secret `A` is listed twice in the `secrets` of [tools.git] (first at line 5); remove one",
        "5:22: secret `GIT_DIR` is also in the `env` of [tools.git]",
        "5:52: `as` must be \"env\" or \"file\", got \"disk\"",
        "5:62: a `secrets` entry written as a table needs `name`",
        "5:93: unknown key `sa` in a `secrets` entry; valid keys: name, as",
        "5:107: `secrets` entries must be secret names or { name = \"...\", as = \"env\" | \"file\" }, got an integer",
    ];
    for w in want {
        assert!(
            e.iter().any(|m| m.starts_with(w)),
            "missing {w:?} in {e:#?}"
        );
    }
    assert_eq!(e.len(), want.len(), "{e:#?}");
}

#[test]
fn a_child_secret_replaces_the_parents_whole() {
    let (p, _) = walk("[secrets.A]\nfrom = \"env:P\"\nttl = \"1m\"\ncache = true\n[secrets.B]\nfrom = \"env:B\"\n");
    let (c, _) = walk("[secrets.A]\nfrom = \"command:gh auth token\"\n");
    let m = p.merge(c, &mut Vec::new()).into_profile("c.toml".into());
    let a = &m.secrets["A"];
    assert_eq!(
        a.source,
        SecretSource::Command(["gh", "auth", "token"].map(String::from).to_vec())
    );
    assert!(a.ttl.is_none() && !a.cache);
    assert!(m.secrets.contains_key("B"));
}

#[test]
fn identity_sources_parse_with_their_audiences_and_binding() {
    use crate::profile::{IdentityBind, IdentitySource};
    let src = r#"[secrets.A]
from = "identity:jwt?aud=https://api.example.com"
ttl = "5m"
[secrets.B]
from = "identity:jwt?aud=x&aud=a%26b&bind=session"
ttl = "1h"
cache = true
"#;
    let (l, e) = walk(src);
    assert_eq!(e, Vec::<String>::new());
    assert_eq!(
        l.secrets["A"].spec.clone().unwrap().source,
        SecretSource::Identity(IdentitySource {
            audiences: vec!["https://api.example.com".into()],
            bind: IdentityBind::Call,
        })
    );
    assert_eq!(
        l.secrets["B"].spec.clone().unwrap().source,
        SecretSource::Identity(IdentitySource {
            audiences: vec!["x".into(), "a&b".into()],
            bind: IdentityBind::Session,
        })
    );
}

#[test]
fn identity_sources_say_what_is_wrong() {
    let cases = [
        (
            "from = \"identity:jwt\"\nttl = \"1m\"",
            "2:8: `identity:jwt` needs an audience (who the token is for)",
        ),
        (
            "from = \"identity:oidc?aud=x\"\nttl = \"1m\"",
            "2:8: `identity:oidc`: the only identity kind is `jwt`",
        ),
        (
            "from = \"identity:jwt?aud=x&scope=y\"\nttl = \"1m\"",
            "2:8: `identity:jwt`: unknown parameter `scope`",
        ),
        (
            "from = \"identity:jwt?aud=x&bind=forever\"\nttl = \"1m\"",
            "2:8: `identity:jwt`: `bind` must be `call` or `session`",
        ),
        (
            "from = \"identity:jwt?aud=%zz\"\nttl = \"1m\"",
            "2:8: `identity:jwt`: `aud=%zz` has a broken %-escape",
        ),
        (
            "from = \"identity:jwt?aud=x&aud=x\"\nttl = \"1m\"",
            "2:8: `identity:jwt`: audience `x` is named twice",
        ),
        (
            "from = \"identity:jwt?aud=x\"",
            "1:1: [secrets.S] mints an identity token and needs a `ttl`",
        ),
        (
            "from = \"identity:jwt?aud=x\"\nttl = \"2h\"",
            "3:7: an identity token may live at most 1h",
        ),
        (
            "from = \"identity:jwt?aud=x\"\nttl = \"5m\"\ncache = true",
            "4:9: a call-bound identity token names one call and cannot be cached",
        ),
    ];
    for (body, want) in cases {
        let got = one(body);
        assert!(got.starts_with(want), "{body}:\n got {got}\nwant {want}");
    }
}
