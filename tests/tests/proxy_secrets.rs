//! Proxy-delivered secrets in real sessions (`deliver = "proxy"`), with
//! real clients (curl, git, Python) against a local TLS host: the process
//! holds a placeholder, the proxy of its sandbox swaps it for the value
//! only toward the secret's host, and the value is nowhere the agent can
//! read (its outputs, the workspace, the audit log).
#![allow(clippy::unwrap_used)] // test code

mod common;
use common::*;
mod proxied;
use proxied::*;

/// The placeholder `NAME=` holds in `env` output.
fn placeholder_in(text: &str, name: &str) -> String {
    let key = format!("{name}=");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .to_string()
}

#[test]
fn the_agent_holds_a_placeholder_and_its_proxy_injects_the_value_toward_its_host_only() {
    need_clients();
    let host = Host::start();
    let c = Case::new();
    let mut p = client_profile(&host);
    p.extra = format!(
        "[environment]\nsecrets = [\"API_KEY\"]\n\n{}",
        api_secret(&host, "")
    );
    let port = host.port();
    let script = format!(
        "env > env.txt; \
         curl -sS -m 20 -H \"Authorization: Bearer $API_KEY\" https://localhost:{port}/echo; echo curl=$?; \
         python3 -c 'import os, urllib.request as u; \
r = u.Request(\"https://localhost:{port}/echo\", headers={{\"Authorization\": \"Bearer \" + os.environ[\"API_KEY\"]}}); \
print(u.urlopen(r).read().decode())'; echo python=$?"
    );
    let mut cmd = host.cordon_run(&c, &p);
    cmd.current_dir(&c.workspace)
        .args(["/usr/bin/dash", "-c", &script]);
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(
        r.stdout.contains("curl=0") && r.stdout.contains("python=0"),
        "{r:#?}"
    );
    let env = std::fs::read_to_string(c.workspace.join("env.txt")).unwrap();
    let ph = placeholder_in(&env, "API_KEY");
    assert!(ph.starts_with("cordon-placeholder-"), "{ph}");
    for v in [
        "SSL_CERT_FILE",
        "CURL_CA_BUNDLE",
        "REQUESTS_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        "NODE_EXTRA_CA_CERTS",
    ] {
        assert!(
            env.contains(&format!("{v}=")),
            "{v} is set for the agent: {env}"
        );
    }
    // The host got the value, twice, in the declared shape.
    let heads = host.heads();
    let want = format!("authorization: Bearer {API_VALUE}\r\n");
    assert_eq!(
        heads
            .iter()
            .filter(|h| h.to_ascii_lowercase().contains(&want.to_ascii_lowercase()))
            .count(),
        2,
        "{heads:#?}"
    );
    assert!(
        !host.received().contains(&ph),
        "the placeholder never reaches the host"
    );
    // What the host echoed back was masked on the way to the agent.
    assert!(r.stdout.contains("GET /echo HTTP/1.1"), "{r:#?}");
    assert_unseen(&c, &r.stdout, &r.stderr);
    // Each injection is recorded, with the host and the request line.
    let injects = records(&c, "inject");
    assert_eq!(injects.len(), 2, "{injects:#?}");
    for rec in &injects {
        assert_eq!(rec["secrets"][0], "API_KEY", "{rec}");
    }
    // Fetched once, at the first request that needed it.
    let fetched: Vec<_> = records(&c, "secret")
        .into_iter()
        .filter(|r| {
            r["detail"]
                .as_str()
                .is_some_and(|d| d.contains("fetched for the agent's proxy"))
        })
        .collect();
    assert_eq!(fetched.len(), 1, "{fetched:#?}");
}

/// A session trusting `host`, its values in cordon's environment, run in
/// the workspace.
fn session(host: &Host, c: &Case, p: &Profile, script: &str) -> Run {
    let mut cmd = host.cordon_run(c, p);
    cmd.current_dir(&c.workspace)
        .args(["/usr/bin/dash", "-c", script]);
    Run::from(cmd.output().unwrap())
}

/// How many requests the host received with `value` in their head.
fn with_value(host: &Host, value: &str) -> usize {
    host.heads()
        .iter()
        .filter(|h| forms(value).iter().any(|f| h.contains(f)))
        .count()
}

#[test]
fn git_pushes_over_https_with_a_credential_helper_that_prints_the_placeholder() {
    need_clients();
    let host = Host::start();
    let c = Case::new();
    let mut p = as_tool(client_profile(&host), "/usr/bin/git");
    p.extra = format!(
        "[tools.git]\npath = \"/usr/bin/git\"\nallow = [[\"**\"]]\nsecrets = [\"GITHUB_TOKEN\"]\n\n\
         [tools.git.sandbox]\nallow_hosts = [\"{}\"]\nexec = [\"/usr/lib/git-core\"]\n\n{}",
        host.allow_name(),
        git_secret(&host, "")
    );
    let branch = token("push").replace('-', "_");
    let port = host.port();
    // The recipe of docs/profiles.md: git asks the helper, the helper
    // prints the placeholder, the call's proxy swaps it.
    let script = format!(
        "git init -q -b main r && cd r && \
         git -c user.name=a -c user.email=a@example.com commit -q --allow-empty -m one && \
         git -c credential.helper='!f() {{ echo username=x-access-token; echo \"password=$GITHUB_TOKEN\"; }}; f' \
             push -q https://localhost:{port}/repo.git HEAD:refs/heads/{branch}; echo push=$?"
    );
    let r = session(&host, &c, &p, &script);
    assert!(r.stdout.contains("push=0"), "{r:#?}");
    let pushed = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(served_repo())
        .args(["rev-parse", "--verify", &format!("refs/heads/{branch}")])
        .output()
        .unwrap();
    assert!(pushed.status.success(), "the branch arrived: {pushed:?}");
    assert!(with_value(&host, GIT_VALUE) >= 1, "{:#?}", host.heads());
    // One fetch for the call, recorded with the call; injections too.
    let fetched: Vec<_> = records(&c, "secret")
        .into_iter()
        .filter(|r| {
            r["detail"]
                .as_str()
                .is_some_and(|d| d.contains("fetched for the proxy of call"))
        })
        .collect();
    assert_eq!(fetched.len(), 1, "{fetched:#?}");
    assert!(!records(&c, "inject").is_empty());
    assert_unseen(&c, &r.stdout, &r.stderr);
}

/// Requests `https://localhost:PORT/<path>` for each path with the
/// placeholder in `API_KEY` as a bearer token; prints each path's status.
const REQUESTS: &str = r#"import os, sys, urllib.request as u
for path in sys.argv[2:]:
    r = u.Request("https://localhost:%s/%s" % (sys.argv[1], path),
                  headers={"Authorization": "Bearer " + os.environ["API_KEY"]})
    try:
        print(path, u.urlopen(r).status)
    except Exception as e:
        print(path, "refused", getattr(e, "code", e))
"#;

#[test]
fn a_tools_max_uses_counts_calls_and_the_agents_counts_requests() {
    need_clients();
    let host = Host::start();
    let port = host.port();
    // A tool: one call of two requests is one use; the next call has none.
    let c = Case::new();
    std::fs::write(c.workspace.join("req.py"), REQUESTS).unwrap();
    let mut p = as_tool(client_profile(&host), "/usr/bin/python3.11");
    p.extra = format!(
        "[tools.python3]\npath = \"/usr/bin/python3\"\nallow = [[\"**\"]]\nsecrets = [\"API_KEY\"]\n\n\
         [tools.python3.sandbox]\nallow_hosts = [\"{}\"]\n\n{}",
        host.allow_name(),
        api_secret(&host, "max_uses = 1")
    );
    let r = session(
        &host,
        &c,
        &p,
        &format!("python3 req.py {port} a b; echo one=$?; python3 req.py {port} c; echo two=$?"),
    );
    assert!(
        r.stdout.contains("a 200") && r.stdout.contains("b 200"),
        "{r:#?}"
    );
    assert!(
        !r.stdout.contains("c 200"),
        "the second call had no use left: {r:#?}"
    );
    assert_eq!(with_value(&host, API_VALUE), 2, "{:#?}", host.heads());
    assert_unseen(&c, &r.stdout, &r.stderr);

    // The agent: each injected request is one use.
    let c = Case::new();
    std::fs::write(c.workspace.join("req.py"), REQUESTS).unwrap();
    let mut p = client_profile(&host);
    p.extra = format!(
        "[environment]\nsecrets = [\"API_KEY\"]\n\n{}",
        api_secret(&host, "max_uses = 1")
    );
    let before = with_value(&host, API_VALUE);
    let r = session(
        &host,
        &c,
        &p,
        &format!("python3 req.py {port} d e; echo rc=$?"),
    );
    assert!(r.stdout.contains("d 200"), "{r:#?}");
    assert!(!r.stdout.contains("e 200"), "one request, one use: {r:#?}");
    assert_eq!(
        with_value(&host, API_VALUE),
        before + 1,
        "{:#?}",
        host.heads()
    );
    assert_unseen(&c, &r.stdout, &r.stderr);
}

#[test]
fn a_raw_secret_a_tool_writes_where_the_agent_reads_is_found_recorded_and_told() {
    need_clients();
    let host = Host::start();
    let c = Case::new();
    let mut p = as_tool(client_profile(&host), "/usr/bin/python3.11");
    p.extra = format!(
        "[tools.python3]\npath = \"/usr/bin/python3\"\nallow = [[\"**\"]]\nsecrets = [\"RAW\"]\n\n\
         [secrets.RAW]\nfrom = \"env:{API_ENV}\"\n"
    );
    // `cordon check` says the risk, and the way out, without failing.
    let check = cordon_cmd()
        .arg("check")
        .arg(c.profile_path(&p))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(0), "{said}");
    assert!(
        said.contains("warning: secret `RAW` goes to tool `python3` raw")
            && said.contains("deliver = \"proxy\""),
        "{said}"
    );
    // The value, base64-encoded, written into the workspace: the first
    // call is recorded as leaked, the second (which writes nothing) not.
    let r = session(
        &host,
        &c,
        &p,
        "python3 -c 'import os, base64; open(\"out.txt\", \"w\").write(base64.b64encode(os.environ[\"RAW\"].encode()).decode())'; \
         python3 -c 'print(1)'; echo rc=$?",
    );
    assert!(r.stdout.contains("rc=0"), "{r:#?}");
    let ends = records(&c, "call_end");
    assert_eq!(ends.len(), 2, "{ends:#?}");
    assert_eq!(ends[0]["leaked"], serde_json::json!(["RAW"]), "{ends:#?}");
    let to = ends[0]["leaked_to"].to_string();
    assert!(to.contains("out.txt"), "{ends:#?}");
    assert!(
        ends[1].get("leaked").is_none_or(|v| v.is_null()),
        "{ends:#?}"
    );
    assert!(
        r.stderr.contains("WARNING")
            && r.stderr.contains("secret RAW")
            && r.stderr.contains("out.txt"),
        "the user is told: {r:#?}"
    );
}

fn repo() -> std::path::PathBuf {
    match std::env::var_os("CORDON_TEST_REPO_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
    }
}

#[test]
fn the_shipped_coding_agent_profile_pushes_with_a_token_git_never_holds() {
    need_clients();
    let (host, c) = (Host::start(), Case::new());
    let shipped = std::fs::read_to_string(repo().join("profiles/coding-agent.toml")).unwrap();
    assert!(
        shipped.contains("secrets = [\"GITHUB_TOKEN\"]"),
        "coding-agent.toml lost git's GITHUB_TOKEN"
    );
    let text = localized(&shipped, "[\"github.com:443\"]", &host, &c);
    push_with_a_token_git_never_holds(&host, &c, &text, "git push -q origin");
}

#[test]
fn the_shipped_git_push_example_pushes_with_a_token_git_never_holds() {
    need_clients();
    let (host, c) = (Host::start(), Case::new());
    let shipped =
        std::fs::read_to_string(repo().join("examples/proxy-secrets/git-push.toml")).unwrap();
    let hosts = "[\"github.com:443\", \"api.github.com:443\"]";
    let text = localized(&shipped, hosts, &host, &c);
    // Its approve rule is `push origin REF`: no options in between.
    push_with_a_token_git_never_holds(&host, &c, &text, "git push origin");
}

/// A shipped push profile made local: its `hosts` (the TOML array written
/// as both git's `allow_hosts` and the token's `hosts`) moved to `host`,
/// its token read from the test's variable, and an approving hook. Fails
/// when the profile no longer has what is replaced.
fn localized(shipped: &str, hosts: &str, host: &Host, c: &Case) -> String {
    let hook = c.dir.path().join("approve.sh");
    std::fs::write(&hook, "#!/bin/sh\ncat >/dev/null\necho approve\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let port = host.port();
    let swaps = [
        (
            format!("allow_hosts = {hosts}"),
            format!("allow_hosts = [\"{}\"]", host.allow_name()),
        ),
        (
            format!("hosts = {hosts}"),
            format!("hosts = [\"localhost:{port}\"]"),
        ),
        (
            "from = \"env:GITHUB_TOKEN\"".to_string(),
            format!("from = \"env:{GIT_ENV}\""),
        ),
        (
            "[approval]\n".to_string(),
            format!("[approval]\napprover = \"command:{}\"\n", hook.display()),
        ),
    ];
    assert!(
        shipped.contains("deliver = \"proxy\""),
        "the shipped profile's token is no longer proxy-delivered"
    );
    let mut text = shipped.to_string();
    for (from, to) in swaps {
        assert!(text.contains(&from), "the shipped profile lost `{from}`");
        text = text.replace(&from, &to);
    }
    text
}

/// Runs `push` (a git push command line, to which the refspec is added)
/// under the profile `text` against `host`'s repository, through a
/// credential helper that prints the placeholder; asserts the branch
/// arrived, the injection was recorded, and the value stayed unseen.
fn push_with_a_token_git_never_holds(host: &Host, c: &Case, text: &str, push: &str) {
    let port = host.port();
    let profile = c.dir.path().join("profile.toml");
    std::fs::write(&profile, text).unwrap();
    // A repository with one commit, its remote the local host, and the
    // credential helper of docs/profiles.md in its config (which the
    // agent cannot read or change).
    let branch = token("agent-push").replace('-', "_");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("/usr/bin/git")
            .args(args)
            .current_dir(&c.workspace)
            .env("HOME", c.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(c.workspace.join("README"), "hi\n").unwrap();
    git(&["add", "README"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e",
        "commit",
        "-q",
        "-m",
        "init",
    ]);
    git(&[
        "remote",
        "add",
        "origin",
        &format!("https://localhost:{port}/repo.git"),
    ]);
    git(&[
        "config",
        &format!("credential.https://localhost:{port}.helper"),
        "!f() { echo username=x-access-token; echo \"password=$GITHUB_TOKEN\"; }; f",
    ]);
    let script = format!("{push} HEAD:refs/heads/{branch}; echo push=$?");
    let out = cordon_cmd()
        .arg("run")
        .arg("--profile")
        .arg(&profile)
        .arg("--workspace")
        .arg(&c.workspace)
        .env("CORDON_AUDIT", c.audit_path())
        .env("SSL_CERT_FILE", host.roots())
        .env(GIT_ENV, GIT_VALUE)
        .stdin(std::process::Stdio::null())
        .args(["--", "/usr/bin/dash", "-c", &script])
        .output()
        .unwrap();
    let r = Run::from(out);
    assert!(r.stdout.contains("push=0"), "{r:#?}");
    let pushed = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(served_repo())
        .args(["rev-parse", "--verify", &format!("refs/heads/{branch}")])
        .output()
        .unwrap();
    assert!(pushed.status.success(), "the branch arrived: {pushed:?}");
    let injected = records(c, "inject");
    assert!(
        injected.iter().any(|r| r["decision"] == "allow"
            && r["tool"] == "git"
            && r["detail"]
                .as_str()
                .is_some_and(|d| d.contains("git-receive-pack"))),
        "{injected:#?}"
    );
    assert_unseen(c, &r.stdout, &r.stderr);
}

#[test]
fn a_cedar_forbid_keeps_the_agents_proxy_from_injecting() {
    need_clients();
    let host = Host::start();
    let c = Case::new();
    std::fs::write(
        c.dir.path().join("team.cedar"),
        "@id(\"no-key-for-the-agent\")\n\
         forbid (principal, action == Cordon::Action::\"secret\", resource == Cordon::Secret::\"API_KEY\")\n\
         when { context.tool == \"\" };\n\
         @id(\"permit-everything\")\npermit (principal, action, resource);\n",
    )
    .unwrap();
    std::fs::write(c.workspace.join("req.py"), REQUESTS).unwrap();
    let mut p = client_profile(&host);
    p.extra = format!(
        "[environment]\nsecrets = [\"API_KEY\"]\n\n{}\n[policy]\ncedar = \"team.cedar\"\n",
        api_secret(&host, "")
    );
    let port = host.port();
    let r = session(
        &host,
        &c,
        &p,
        &format!("python3 req.py {port} a; echo rc=$?"),
    );
    assert!(r.stdout.contains("a refused"), "{r:#?}");
    assert_eq!(with_value(&host, API_VALUE), 0, "{:#?}", host.heads());
    let refused: Vec<_> = records(&c, "inject")
        .into_iter()
        .filter(|r| r["decision"] == "deny")
        .collect();
    assert!(
        refused
            .iter()
            .any(|r| r["reason"].to_string().contains("no-key-for-the-agent")),
        "{refused:#?}"
    );
    assert_unseen(&c, &r.stdout, &r.stderr);
}

#[test]
fn a_sub_agent_has_its_own_session_ca_placeholder_and_injecting_proxy() {
    need_clients();
    let host = Host::start();
    let c = Case::new();
    std::fs::write(c.workspace.join("req.py"), REQUESTS).unwrap();
    let mut p = client_profile(&host);
    p.extra = format!(
        "[environment]\nsecrets = [\"API_KEY\"]\n\n{}",
        api_secret(&host, "")
    );
    let sub = p.toml().replace("name = \"test\"", "name = \"sub\"");
    std::fs::write(c.workspace.join("sub.toml"), sub).unwrap();
    let port = host.port();
    let script = format!(
        "echo parent=$API_KEY; cat $SSL_CERT_FILE > parent.pem; \
         cordon-shim spawn --profile sub.toml -- /usr/bin/dash -c \
           'echo sub=$API_KEY; cat $SSL_CERT_FILE > sub.pem; python3 req.py {port} s'; echo spawn=$?"
    );
    let r = session(&host, &c, &p, &script);
    assert!(
        r.stdout.contains("spawn=0") && r.stdout.contains("s 200"),
        "{r:#?}"
    );
    let line = |k: &str| {
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {r:#?}"))
            .to_string()
    };
    let (parent, sub) = (line("parent="), line("sub="));
    assert!(parent.starts_with("cordon-placeholder-") && sub.starts_with("cordon-placeholder-"));
    assert_ne!(parent, sub, "each session has its own placeholder");
    let (a, b) = (
        std::fs::read_to_string(c.workspace.join("parent.pem")).unwrap(),
        std::fs::read_to_string(c.workspace.join("sub.pem")).unwrap(),
    );
    assert!(
        a.contains("BEGIN CERTIFICATE") && a != b,
        "each session has its own CA"
    );
    assert_eq!(with_value(&host, API_VALUE), 1, "{:#?}", host.heads());
    assert_unseen(&c, &r.stdout, &r.stderr);
}

#[test]
fn the_agents_value_is_fetched_at_its_first_use_and_revoked_once_at_the_end() {
    need_clients();
    let host = Host::start();
    let port = host.port();
    for (requests, fetched) in [("", 0), ("a b", 1)] {
        let c = Case::new();
        std::fs::write(c.workspace.join("req.py"), REQUESTS).unwrap();
        let revoke = c.dir.path().join("revoke.sh");
        let log = c.dir.path().join("revoked");
        std::fs::write(
            &revoke,
            format!(
                "#!/bin/sh\ncat >/dev/null\necho revoked >> {}\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&revoke, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut p = client_profile(&host);
        p.extra = format!(
            "[environment]\nsecrets = [\"API_KEY\"]\n\n{}",
            api_secret(&host, &format!("revoke = [\"{}\"]", revoke.display()))
        );
        let r = session(
            &host,
            &c,
            &p,
            &format!("python3 req.py {port} {requests}; echo rc=$?"),
        );
        assert!(r.stdout.contains("rc=0"), "{r:#?}");
        let fetches = records(&c, "secret")
            .iter()
            .filter(|r| {
                r["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("fetched for"))
            })
            .count();
        assert_eq!(fetches, fetched, "requests `{requests}`: {r:#?}");
        let revoked = std::fs::read_to_string(&log).map_or(0, |s| s.lines().count());
        assert_eq!(
            revoked, fetched,
            "revoked once per fetched value, at the session's end"
        );
    }
}

#[test]
fn a_tools_value_is_fetched_for_its_call_and_revoked_before_the_call_returns() {
    need_clients();
    let host = Host::start();
    let port = host.port();
    let c = Case::new();
    std::fs::write(c.workspace.join("req.py"), REQUESTS).unwrap();
    // The revoke hook runs outside every sandbox; it writes where the
    // agent looks, so the agent sees whether it ran before its reply.
    let revoke = c.dir.path().join("revoke.sh");
    std::fs::write(
        &revoke,
        format!(
            "#!/bin/sh\ncat >/dev/null\necho revoked >> {}\n",
            c.workspace.join("revoked").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&revoke, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut p = as_tool(client_profile(&host), "/usr/bin/python3.11");
    p.extra = format!(
        "[tools.python3]\npath = \"/usr/bin/python3\"\nallow = [[\"**\"]]\nsecrets = [\"API_KEY\"]\n\n\
         [tools.python3.sandbox]\nallow_hosts = [\"{}\"]\n\n{}",
        host.allow_name(),
        api_secret(&host, &format!("revoke = [\"{}\"]", revoke.display()))
    );
    let r = session(
        &host,
        &c,
        &p,
        &format!(
            "n() {{ k=0; while read -r l; do k=$((k+1)); done < revoked; echo $k; }}; \
             python3 req.py {port} a b; echo first=$(n); \
             python3 req.py {port}; echo second=$(n); \
             python3 req.py {port} c; echo third=$(n)"
        ),
    );
    // One fetch and one revoke per call that needed the value, done when
    // the call's reply arrives; a call that sent nothing fetched nothing.
    assert!(r.stdout.contains("first=1"), "{r:#?}");
    assert!(r.stdout.contains("second=1"), "{r:#?}");
    assert!(r.stdout.contains("third=2"), "{r:#?}");
    assert_eq!(with_value(&host, API_VALUE), 3, "{:#?}", host.heads());
    assert_unseen(&c, &r.stdout, &r.stderr);
}

/// An MCP server whose one tool, `fetch`, requests `/echo` of the local
/// host with its `API_KEY` as a bearer token, and answers with the status
/// and whether its own variable is a placeholder.
const FETCHER: &str = r#"import json, os, sys, urllib.request as u
def send(m):
    sys.stdout.write(json.dumps(m) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m:
        continue
    if m["method"] == "initialize":
        send({"jsonrpc": "2.0", "id": m["id"], "result": {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "fetcher", "version": "1"}}})
    elif m["method"] == "tools/list":
        send({"jsonrpc": "2.0", "id": m["id"], "result": {"tools": [{"name": "fetch"}]}})
    elif m["method"] == "tools/call":
        port = m["params"]["arguments"]["port"]
        r = u.Request("https://localhost:%s/echo" % port, headers={"Authorization": "Bearer " + os.environ["API_KEY"]})
        status = u.urlopen(r).status
        held = "placeholder" if os.environ["API_KEY"].startswith("cordon-placeholder-") else "other"
        send({"jsonrpc": "2.0", "id": m["id"], "result": {"content": [{"type": "text", "text": "status %s, holds a %s" % (status, held)}]}})
"#;

#[test]
fn an_mcp_server_holds_a_placeholder_and_its_proxy_injects() {
    need_clients();
    let host = Host::start();
    let c = Case::new();
    let server = c.dir.path().join("fetcher.py");
    std::fs::write(&server, FETCHER).unwrap();
    let mut p = Profile::base();
    p.read.push("{workspace}".into());
    p.extra = format!(
        r#"
[mcp.web]
command = ["/usr/bin/python3", "{server}"]
secrets = ["API_KEY"]
[mcp.web.sandbox]
read = ["{server}", "/usr/lib/python3", "/usr/lib/python3.11", "/usr/lib/ssl", "/etc", "/usr/share"]
exec = ["/usr/lib/x86_64-linux-gnu"]
allow_hosts = ["{allow}"]

[mcp.web.tools.fetch]
allow = [{{}}]

{secret}"#,
        server = server.display(),
        allow = host.allow_name(),
        secret = api_secret(&host, "")
    );
    let port = host.port();
    let script = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"probe\",\"version\":\"1\"}}}}}}\n\
         {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}}\n\
         {{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{{\"name\":\"fetch\",\"arguments\":{{\"port\":\"{port}\"}}}}}}\n"
    );
    let file = c.workspace.join("script");
    std::fs::write(&file, script).unwrap();
    let mut cmd = host.cordon_run(&c, &p);
    cmd.arg(probe()).args(["mcp", "web", &path_str(&file)]);
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(
        r.stdout.contains("status 200, holds a placeholder"),
        "{r:#?}"
    );
    assert_eq!(with_value(&host, API_VALUE), 1, "{:#?}", host.heads());
    let injected = records(&c, "inject");
    assert!(
        injected
            .iter()
            .any(|r| r["decision"] == "allow" && r["tool"] == "mcp:web"),
        "{injected:#?}"
    );
    assert_unseen(&c, &r.stdout, &r.stderr);
}
