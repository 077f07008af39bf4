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
