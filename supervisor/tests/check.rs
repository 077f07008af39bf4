//! `cordon check` end to end: the real binary on fixture profiles.
//!
//! The binary runs in the crate directory with relative fixture paths, so
//! each diagnostic's `file:line:column: ` prefix is known exactly.

use std::process::{Command, Output};

fn check(files: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .arg("check")
        .args(files)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run cordon: {e}"));
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks one bad fixture: exit 1, and a stderr line that starts with
/// `file:line:col: ` and contains `message`.
fn assert_bad(file: &str, at: &str, message: &str) {
    assert_reported(file, &format!("{file}:{at}"), message);
}

/// Like [`assert_bad`], for an error reported in another file (a parent).
fn assert_reported(file: &str, at: &str, message: &str) {
    let path = format!("tests/profiles/{file}");
    let out = check(&[&path]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{path}: {err}");
    let prefix = format!("tests/profiles/{at}: ");
    assert!(
        err.lines()
            .any(|l| l.starts_with(&prefix) && l.contains(message)),
        "{path}: wanted `{prefix}...{message}...`, got:\n{err}"
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

#[test]
fn a_good_profile_is_ok() {
    let out = check(&["tests/profiles/good.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "tests/profiles/good.toml: ok (profile `coding-agent`)\n"
    );
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn every_error_of_a_file_is_reported() {
    let out = check(&["tests/profiles/three-errors.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    let f = "tests/profiles/three-errors.toml";
    assert!(lines[0].starts_with(&format!(
        "{f}:5:21: `connect_tcp` expects port numbers 1-65535, got 70000"
    )));
    assert!(lines[1].starts_with(&format!("{f}:8:9: unknown syscall `ptrce`")));
    assert!(lines[1].contains("did you mean `ptrace`?"));
    assert!(lines[2].starts_with(&format!(
        "{f}:11:19: `undeclared_tool` must be \"kill\" or \"deny\", got \"stop\""
    )));
}

#[test]
fn good_and_bad_files_together_exit_1() {
    let out = check(&[
        "tests/profiles/good.toml",
        "tests/profiles/bad/port-zero.toml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("good.toml: ok"));
    assert!(stderr(&out).starts_with("tests/profiles/bad/port-zero.toml:5:19: "));
}

#[test]
fn an_unreadable_file_is_reported_at_1_1() {
    assert_bad("bad/no-such-file.toml", "1:1", "cannot read profile: ");
}

#[test]
fn syntax_and_structure_errors() {
    assert_bad("bad/syntax.toml", "3:15", "TOML syntax error");
    assert_bad(
        "bad/unknown-section.toml",
        "4:2",
        "unknown section [netwrok]; did you mean [network]?",
    );
    assert_bad("bad/unknown-key.toml", "5:1", "unknown key `conect_tcp` in [network]; did you mean `connect_tcp`? valid keys: connect_tcp, bind_tcp");
    assert_bad(
        "bad/missing-name.toml",
        "1:1",
        "missing `name` in [profile]",
    );
    assert_bad("bad/bad-name.toml", "2:8", "`name` must be 1-64 characters");
}

#[test]
fn types_ranges_and_words() {
    assert_bad(
        "bad/port-type.toml",
        "5:15",
        "`connect_tcp` expects an array of port numbers 1-65535, got a string",
    );
    assert_bad(
        "bad/port-zero.toml",
        "5:19",
        "`bind_tcp` expects port numbers 1-65535, got 0",
    );
    assert_bad("bad/port-high.toml", "5:21", "got 70000");
    assert_bad(
        "bad/bad-duration.toml",
        "3:14",
        "`stop_grace` must be a duration such as \"5s\"",
    );
    assert_bad(
        "bad/long-grace.toml",
        "3:14",
        "`stop_grace` must be at most 10m",
    );
    assert_bad(
        "bad/bad-enum.toml",
        "5:16",
        "`on_violation` must be \"kill\" or \"deny\", got \"stop\"",
    );
    assert_bad("bad/bad-syscall.toml", "5:19", "unknown syscall `ptrce`");
    assert_bad(
        "bad/negative-limit.toml",
        "5:10",
        "`nofile` expects a non-negative integer, got -1",
    );
    assert_bad(
        "bad/env-name.toml",
        "5:9",
        "`1BAD` is not a valid variable name",
    );
    assert_bad("bad/set-home.toml", "5:9", "cordon sets `HOME` itself");
}

#[test]
fn paths() {
    assert_bad("bad/relative-path.toml", "5:17", "relative path `usr/lib`");
    assert_bad(
        "bad/missing-path.toml",
        "5:9",
        "`/opt/cordon-fixture-missing` does not exist; fix the path or write { path = \"/opt/cordon-fixture-missing\", optional = true }",
    );
}

#[test]
fn cross_field_rules() {
    assert_bad(
        "bad/granted-denied.toml",
        "6:9",
        "deny only paths strictly inside a granted tree",
    );
    assert_bad(
        "bad/deny-root.toml",
        "6:9",
        "`deny` of `/` would hide everything",
    );
    assert_bad(
        "bad/duplicate.toml",
        "8:3",
        "`/usr` is listed twice in `read` (first at line 6)",
    );
    assert_bad(
        "bad/max-denials-kill.toml",
        "6:15",
        "`max_denials` has no effect with denied_action = \"kill\"",
    );
    assert_bad(
        "bad/pass-and-set.toml",
        "5:9",
        "`LANG` is both in `pass` and in `set`",
    );
}

#[test]
fn host_rules_without_a_port_are_errors() {
    assert_bad("bad/host-rule-without-port.toml", "5:38", "`allow_hosts`: `pypi.org` needs a port: write `pypi.org:443`, or `pypi.org:*` for any port");
}

#[test]
fn a_good_profile_with_secrets_is_ok() {
    let out = check(&["tests/profiles/good-secrets.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "tests/profiles/good-secrets.toml: ok (profile `with-secrets`)\n"
    );
}

#[test]
fn secret_errors() {
    assert_bad(
        "bad/secret-unused.toml",
        "4:1",
        "secret `GITHUB_TOKEN` is never used (no tool or MCP server lists it, it is not in [environment] secrets, and expose = false)",
    );
    assert_bad("bad/secret-bad-from.toml", "5:8", "`from` must start with `env:`, `file:`, `credential:`, `command:` or `identity:` (the value is not shown");
    assert_bad(
        "bad/secret-placeholder.toml",
        "5:8",
        "`file:{workspace}/.token`: a secret source may not use a placeholder",
    );
    assert_bad(
        "bad/secret-credential-path.toml",
        "5:8",
        "a credential name is one file name inside $CREDENTIALS_DIRECTORY",
    );
    assert_bad(
        "bad/secret-cache-no-ttl.toml",
        "7:9",
        "`cache = true` needs a `ttl`",
    );
    assert_bad(
        "bad/secret-ttl-long.toml",
        "7:7",
        "`ttl` must be at most 24h, got \"25h\"",
    );
    assert_bad(
        "bad/secret-ttl-long.toml",
        "8:17",
        "`fetch_timeout` must be longer than 0s",
    );
    assert_bad(
        "bad/secret-undeclared.toml",
        "7:12",
        "tool `git`: secret `GITHUB_TOKN` is not declared; did you mean `GITHUB_TOKEN`?",
    );
    assert_bad(
        "bad/secret-duplicate.toml",
        "8:28",
        "secret `GITHUB_TOKEN` is listed twice in the `secrets` of [tools.git] (first at line 8)",
    );
    assert_bad(
        "bad/secret-duplicate.toml",
        "8:68",
        "secret `GIT_TOKEN` is also in the `env` of [tools.git]",
    );
    assert_bad(
        "bad/secret-bad-name.toml",
        "4:10",
        "secret name `LD_PRELOAD` starts with `LD_`, which is reserved",
    );
    assert_bad(
        "bad/secret-bad-name.toml",
        "8:10",
        "secret name `github-token` must be 1-128 characters",
    );
    assert_bad(
        "bad/secret-unknown-key.toml",
        "7:1",
        "unknown key `max_use` in [secrets.TOKEN]; did you mean `max_uses`?",
    );
    assert_bad(
        "bad/secret-unknown-key.toml",
        "8:11",
        "`revoke`: the program must be an absolute path or a bare name",
    );
    assert_bad("bad/secret-passed.toml", "8:8", "secret `TOKEN`: the agent would receive the secret source: `GITHUB_TOKEN` is in [environment] pass");
    assert_bad("bad/secret-writable-provider.toml", "8:8", "secret `TOKEN`: the agent could replace the provider command /tmp/fetch-token (granted by write = \"/tmp\" at tests/profiles/bad/secret-writable-provider.toml:5:10)");
}

#[test]
fn a_readable_secret_source_is_refused() {
    assert_bad("bad/secret-readable.toml", "8:8", "secret `TOKEN`: the agent could read the secret source /etc/cordon/token (granted by read = \"/\" at tests/profiles/bad/secret-readable.toml:5:9); narrow the grant");
    // The value written by mistake in `from` never reaches the output.
    let out = check(&["tests/profiles/bad/secret-bad-from.toml"]);
    assert!(!stderr(&out).contains("ghp_"), "{}", stderr(&out));
}

#[test]
fn tool_errors() {
    assert_bad("bad/tools.toml", "4:1", "[tools.git] has no `allow` or `approve` rule, so it could never run; add one or remove the tool");
    assert_bad("bad/tool-exec.toml", "7:1", "tool `git`: the agent could run /usr/bin/git directly, bypassing the broker (`/usr/bin` in [filesystem] exec at tests/profiles/bad/tool-exec.toml:5:9); remove its directory from [filesystem] exec or list narrower paths");
    assert_bad("bad/tool-example.toml", "6:62", "example [\"commit\", \"--amend\"] is matched by rule allow[0] [\"commit\", \"**\"]; fix the rule or move the example to `match`");
}

#[test]
fn grammar_errors() {
    assert_bad("bad/grammar.toml", "7:59", "example [\"status\", \"--frob\"] never reaches rule allow[0] [\"status\", \"**\"]: grammar git cannot classify it (git status: unknown option `--frob`)");
    assert_bad("bad/grammar.toml", "8:24", "rule deny[0]: `-f` can never match: grammar git writes that option `--force` in push in the canonical form");
    assert_bad("bad/grammar.toml", "11:1", "`commit -m`: git commit has no option spelled `-m` in the canonical form (`-m` is written `--message`)");
}

#[test]
fn coding_agent_profile_checks() {
    let out = check(&["../profiles/coding-agent.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn extends_good_child() {
    let out = check(&["tests/profiles/extends/child.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "tests/profiles/extends/child.toml: ok (profile `child`)\n"
    );
}

#[test]
fn extends_errors() {
    // The cycle is reported at the `extends` that closes it, in cycle-b.
    assert_reported(
        "extends/cycle-a.toml",
        "extends/cycle-b.toml:3:11",
        "`extends` makes a cycle: tests/profiles/extends/cycle-a.toml -> tests/profiles/extends/cycle-b.toml -> tests/profiles/extends/cycle-a.toml",
    );
    assert_bad(
        "extends/missing-parent.toml",
        "3:11",
        "cannot read parent profile `tests/profiles/extends/no-such-parent.toml`",
    );
    // An error inside the parent carries the parent's file name.
    let out = check(&["tests/profiles/extends/child-of-bad.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .starts_with("tests/profiles/extends/bad-parent.toml:5:16: `connect_tcp` expects"),
        "{}",
        stderr(&out)
    );
    assert_bad(
        "extends/unnamed-child.toml",
        "1:1",
        "names are not inherited through `extends`",
    );
}

#[test]
fn garbage_files_are_errors_not_crashes() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let inputs: [&[u8]; 4] = [
        b"\x00\xff\xfe\x01garbage",
        b"[profile]\nname = \"x\"\n[limits]\ncpu = 99999999999999999999999999999\n",
        b"[[[[[[",
        b"[network]\nconnect_tcp = [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]\n",
    ];
    for (i, bytes) in inputs.iter().enumerate() {
        let path = dir.path().join(format!("g{i}.toml"));
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write: {e}"));
        let path = path.display().to_string();
        let out = check(&[&path]);
        assert_eq!(out.status.code(), Some(1), "{path}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with(&format!("{path}:")),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn proxy_secret_mistakes_are_located() {
    let file = "bad/secret-proxy.toml";
    assert_bad(
        file,
        "18:10",
        "`hosts`: `*.github.com:443` is a wildcard: name each host exactly",
    );
    assert_bad(file, "7:20", "tool `git`: secret `FILE` has deliver = \"proxy\": the tool gets a placeholder in its environment, so `as = \"file\"` makes no sense");
    assert_bad(file, "7:20", "secret `FILE` (deliver = \"proxy\") goes to tool `git`, whose host rules refuse its host `api.github.com:443`");
    assert_bad(
        file,
        "13:12",
        "[environment] secrets: `RAW` is delivered raw, and the agent must never hold a value",
    );
}

#[test]
fn the_proxy_secret_examples_check() {
    let out = check(&[
        "../examples/proxy-secrets/claude-code.toml",
        "../examples/proxy-secrets/git-push.toml",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
