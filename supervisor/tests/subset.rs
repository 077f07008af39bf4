//! `cordon check --within PARENT SUB`: the structural subset check of a
//! sub-agent's profile, end to end with the real binary. A sub-profile that
//! adds one path, one port, one tool, one looser pattern or one secret is
//! refused, and the error names the widening part where it was written.

use std::path::Path;
use std::process::Command;

const PARENT: &str = r#"[profile]
name = "parent"

[filesystem]
read = ["/usr", "{workspace}"]
write = ["{workspace}/out"]
deny = ["{workspace}/.env"]

[network]
connect_tcp = [443]

[tools.git]
path = "/usr/bin/env"
allow = [["status"], ["push", "origin", "*"]]
approve = [["push", "**"]]
deny = [["-c", "**"]]
secrets = ["TOKEN"]

[secrets.TOKEN]
from = "env:CORDON_TEST_SUBSET_TOKEN"
"#;

/// A change to the parent's text.
type Edit = dyn Fn(&str) -> String;

/// The parent's own text, changed by `edit`, checked against the parent.
fn check_sub(dir: &Path, edit: impl Fn(&str) -> String) -> (i32, String) {
    std::fs::write(dir.join("parent.toml"), PARENT).unwrap_or_else(|e| panic!("{e}"));
    let sub = edit(PARENT).replace("name = \"parent\"", "name = \"sub\"");
    std::fs::write(dir.join("sub.toml"), sub).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["check", "--within", "parent.toml", "sub.toml"])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run cordon: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_same_or_a_narrower_profile_is_accepted() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Accepted: exit 0 and nothing but warnings (the parent's raw TOKEN
    // to a tool that reads the agent's workspace is rightly warned about).
    let (code, err) = check_sub(dir.path(), str::to_string);
    assert_eq!(code, 0, "{err}");
    assert!(err.lines().all(|l| l.contains(": warning: ")), "{err}");
    let narrower = |p: &str| {
        p.replace("[\"/usr\", \"{workspace}\"]", "[\"{workspace}/src\"]")
            .replace("connect_tcp = [443]", "connect_tcp = []")
            .replace(
                "[\"push\", \"origin\", \"*\"]]",
                "[\"push\", \"origin\", \"main\"]]",
            )
            .replace(
                "deny = [[\"-c\", \"**\"]]",
                "deny = [[\"-c\", \"**\"], [\"push\", \"**\", \"--force\"]]",
            )
    };
    let (code, err) = check_sub(dir.path(), narrower);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn one_more_path_port_tool_pattern_or_secret_is_refused_and_named() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cases: [(&str, &Edit); 5] = [
        (
            "sub.toml:5:32: `[filesystem] read` entry `/etc` is not within any of the parent's",
            &|p: &str| p.replace("read = [\"/usr\", \"{workspace}\"]", "read = [\"/usr\", \"{workspace}\", \"/etc\"]"),
        ),
        (
            "`[network] connect_tcp` port 22 is not granted to the parent ([443])",
            &|p: &str| p.replace("connect_tcp = [443]", "connect_tcp = [443, 22]"),
        ),
        (
            "sub.toml:22:1: tool `[tools.curl]` is not a tool of the parent",
            &|p: &str| format!("{p}\n[tools.curl]\npath = \"/usr/bin/env\"\nallow = [[\"**\"]]\n"),
        ),
        (
            "sub.toml:14:22: `[tools.git] allow` rule [\"push\", \"origin\", \"**\"] is not within any allow rule of the parent",
            &|p: &str| p.replace("[\"push\", \"origin\", \"*\"]]", "[\"push\", \"origin\", \"**\"]]"),
        ),
        (
            "sub.toml:19:1: secret `[secrets.OTHER]` is not a secret of the parent",
            &|p: &str| {
                p.replace("secrets = [\"TOKEN\"]", "secrets = [\"TOKEN\", \"OTHER\"]")
                    .replace("[secrets.TOKEN]", "[secrets.OTHER]\nfrom = \"env:CORDON_TEST_OTHER\"\n\n[secrets.TOKEN]")
            },
        ),
    ];
    for (want, edit) in cases {
        let (code, err) = check_sub(dir.path(), edit);
        assert_eq!(code, 1, "{want}: {err}");
        assert!(err.contains(want), "want `{want}` in:\n{err}");
        assert!(
            err.contains("grants more than its parent `parent.toml`"),
            "{err}"
        );
    }
}
