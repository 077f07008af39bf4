//! The MCP broker, end to end on the real kernel: a scripted MCP client
//! (the probe, inside the agent's sandbox) talks to
//! `cordon-shim mcp fs`; cordon runs the reference filesystem server from
//! npm (`@modelcontextprotocol/server-filesystem`, installed by .ci/run)
//! under its own sandbox, relays, and decides every `tools/call`. A fake
//! server that lies is played by a Python script.
#![allow(clippy::unwrap_used)] // test code

mod common;
use common::*;
use std::path::{Path, PathBuf};

const FS_SERVER: &str =
    "/usr/local/lib/cordon-test/mcp-fs/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js";

/// The reference server's entry point (`CORDON_TEST_MCP_FS` overrides);
/// `None` skips, except on CI, where it fails.
fn fs_server() -> Option<PathBuf> {
    let path = std::env::var_os("CORDON_TEST_MCP_FS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(FS_SERVER));
    if path.exists() && Path::new("/usr/bin/node").exists() {
        return Some(path);
    }
    assert!(
        !in_ci(),
        "CI needs node and {} (see .ci/run)",
        path.display()
    );
    eprintln!("skipped: no {} or no /usr/bin/node", path.display());
    None
}

/// The package's directory (`.../server-filesystem`), which the server's
/// sandbox must read, with its dependencies next to it.
fn package_root(server: &Path) -> PathBuf {
    server.ancestors().nth(4).unwrap().to_path_buf()
}

/// A profile whose agent is the probe, with `[mcp.fs]` and `tools`.
fn mcp_profile(server: &Path, tools: &str, extra: &str) -> Profile {
    let mut p = Profile::base();
    p.read.push("{workspace}".into());
    p.extra = format!(
        r#"
[mcp.fs]
command = ["/usr/bin/node", "{server}", "{{workspace}}"]

[mcp.fs.sandbox]
# The server's sandbox starts from the agent's grants: node's package and
# its OpenSSL config are the server's own to name.
read = ["{root}", {{ path = "/etc/ssl/openssl.cnf", optional = true }}]

{tools}
{extra}
"#,
        server = server.display(),
        root = package_root(server).display(),
    );
    p
}

const READ_TOOLS: &str = r#"
[mcp.fs.tools.read_text_file]
allow = [{ args = { path = "{workspace}/*" }, examples = { match = [{ path = "{workspace}/a.txt" }], no_match = [{ path = "{workspace}/../etc/passwd" }] } }]

[mcp.fs.tools.list_allowed_directories]
allow = [{}]
"#;

/// Runs the probe's MCP client over `script` (one message per line;
/// `WS` becomes the workspace) and returns the run and the answers by id.
fn session(c: &Case, p: &Profile, script: &str) -> (Run, Vec<serde_json::Value>) {
    let ws = c.workspace.canonicalize().unwrap();
    let file = c.workspace.join("script");
    std::fs::write(&file, script.replace("WS", &ws.display().to_string())).unwrap();
    let r = c.run(p, &["mcp", "fs", &path_str(&file)]);
    let answers = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("< "))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (r, answers)
}

fn answer(answers: &[serde_json::Value], id: i64) -> &serde_json::Value {
    answers
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no answer to {id}: {answers:#?}"))
}

fn records(c: &Case) -> Vec<serde_json::Value> {
    std::fs::read_to_string(c.audit_path())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn calls<'a>(recs: &'a [serde_json::Value], tool: &str) -> Vec<&'a serde_json::Value> {
    recs.iter()
        .filter(|r| r["kind"] == "call" && r["tool"] == tool)
        .collect()
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"probe","version":"1"}}}
{"jsonrpc":"2.0","method":"notifications/initialized"}
"#;

#[test]
fn a_real_filesystem_server_is_relayed_and_every_call_decided() {
    let Some(server) = fs_server() else { return };
    let c = Case::new();
    std::fs::write(c.workspace.join("a.txt"), "hello from the workspace\n").unwrap();
    let p = mcp_profile(&server, READ_TOOLS, "[divergence]\nmax_denials = 10\n");
    let script = format!(
        r#"{INIT}{{"jsonrpc":"2.0","id":2,"method":"tools/list"}}
{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"read_text_file","arguments":{{"path":"WS/a.txt"}}}}}}
{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"name":"read_text_file","arguments":{{"path":"/etc/passwd"}}}}}}
{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"read_text_file","arguments":{{"path":"WS/../../../../etc/passwd"}}}}}}
{{"jsonrpc":"2.0","id":6,"method":"resources/read","params":{{"uri":"file:///etc/passwd"}}}}
{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"list_allowed_directories"}}}}
"#
    );
    let (r, answers) = session(&c, &p, &script);
    assert_eq!(r.code, Some(0), "{r:#?}");
    // initialize: the server offers tools only.
    let init = answer(&answers, 1);
    assert_eq!(
        init["result"]["serverInfo"]["name"], "secure-filesystem-server",
        "{init}"
    );
    // tools/list: the server lists 14 tools; the agent learns of the two
    // its profile declares.
    let mut names: Vec<&str> = answer(&answers, 2)["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["list_allowed_directories", "read_text_file"],
        "{r:#?}"
    );
    let read = answer(&answers, 3);
    assert_eq!(
        read["result"]["content"][0]["text"], "hello from the workspace\n",
        "{read}"
    );
    for id in [4, 5] {
        let denied = answer(&answers, id);
        assert_eq!(denied["error"]["code"], -32001, "{denied}");
        assert!(denied["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("cordon: denied: no rule of mcp.fs.tools.read_text_file"));
        assert!(!denied.to_string().contains("root:"), "{denied}");
    }
    assert_eq!(answer(&answers, 6)["error"]["code"], -32601);
    assert!(answer(&answers, 7)["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains(&path_str(&c.workspace.canonicalize().unwrap())));
    // One record per call, with the rule that decided; an end for each
    // call that ran, none for the refused.
    let recs = records(&c);
    let reads = calls(&recs, "mcp:fs/read_text_file");
    let decisions: Vec<&str> = reads
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["allow", "deny", "deny"], "{reads:#?}");
    assert!(reads[0]["rule"]
        .as_str()
        .unwrap()
        .starts_with("mcp.fs.tools.read_text_file.allow[0]"));
    assert_eq!(
        reads[1]["argv"],
        serde_json::json!([r#"{"path":"/etc/passwd"}"#])
    );
    let ends: Vec<_> = recs
        .iter()
        .filter(|r| r["kind"] == "call_end" && r["tool"] == "mcp:fs/read_text_file")
        .collect();
    assert_eq!(ends.len(), 1, "{ends:#?}");
    assert_eq!(ends[0]["call"], reads[0]["call"]);
    // The server's own record: started, and ended when the client closed.
    let server_calls = calls(&recs, "mcp:fs");
    assert_eq!(server_calls[0]["detail"], "MCP server started");
    assert!(
        recs.iter()
            .any(|r| r["kind"] == "call_end" && r["tool"] == "mcp:fs" && r["exit"] == 0),
        "{recs:#?}"
    );
}

#[test]
fn a_call_to_a_tool_the_profile_filtered_out_kills_the_session() {
    let Some(server) = fs_server() else { return };
    let c = Case::new();
    let p = mcp_profile(&server, READ_TOOLS, "");
    // write_file exists on the server, and the agent calls it anyway.
    let script = format!(
        r#"{INIT}{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"write_file","arguments":{{"path":"WS/pwned","content":"x"}}}}}}
{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"list_allowed_directories"}}}}
"#
    );
    let (r, _) = session(&c, &p, &script);
    assert_eq!(r.code, Some(86), "{r:#?}");
    assert!(r.stderr.contains("undeclared MCP tool"), "{r:#?}");
    assert!(!c.workspace.join("pwned").exists());
    let recs = records(&c);
    let refused = calls(&recs, "mcp:fs/write_file");
    assert_eq!(refused.len(), 1, "{recs:#?}");
    assert_eq!(refused[0]["decision"], "kill");
}

#[test]
fn forged_and_oversized_frames_are_refused_and_count_toward_divergence() {
    let Some(server) = fs_server() else { return };
    let c = Case::new();
    let p = mcp_profile(&server, READ_TOOLS, "[divergence]\nmax_denials = 3\n");
    // Four bad frames: the first three answered with an error, the fourth
    // is one too many.
    let script = format!(
        "{INIT}#big 3000000\n[{{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\"}}]\n\"just a string\"\n{{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{{\"tools\":[]}}}}\n"
    );
    let (r, answers) = session(&c, &p, &script);
    assert_eq!(r.code, Some(86), "{r:#?}");
    let errors: Vec<i64> = answers
        .iter()
        .filter(|a| a["id"].is_null())
        .map(|a| a["error"]["code"].as_i64().unwrap())
        .collect();
    assert_eq!(errors, [-32600, -32600, -32600], "{r:#?}");
    let recs = records(&c);
    let refusals: Vec<&str> = calls(&recs, "mcp:fs")
        .iter()
        .filter_map(|r| r["reason"].as_str())
        .collect();
    assert!(
        refusals
            .iter()
            .any(|r| r.contains("3000000 bytes, over the limit")),
        "{refusals:#?}"
    );
    assert!(
        refusals.iter().any(|r| r.contains("a batch")),
        "{refusals:#?}"
    );
    assert!(
        refusals
            .iter()
            .any(|r| r.contains("response to id 7 that no server request has")),
        "{refusals:#?}"
    );
}

#[test]
fn a_risky_call_waits_for_a_human_yes() {
    let Some(server) = fs_server() else { return };
    let c = Case::new();
    let hook = c.dir.path().join("hook");
    let seen = c.dir.path().join("seen.jsonl");
    // Approves writes of ok.txt only; says why on its first line; keeps
    // each request it was asked.
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nreq=$(cat); echo \"$req\" >> {}\nif echo \"$req\" | grep -q ok.txt; then echo approve; else echo deny not that file; fi\n",
            seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let tools = format!(
        "{READ_TOOLS}\n[mcp.fs.tools.write_file]\nallow = [{{ args = {{ path = \"{{workspace}}/*\" }}, risk = \"delete\" }}]\n"
    );
    let extra = format!(
        "[approval]\napprover = \"command:{}\"\ntimeout = \"30s\"\nprompt = false\n",
        hook.display()
    );
    let p = mcp_profile(&server, &tools, &extra);
    let script = format!(
        r#"{INIT}{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"write_file","arguments":{{"path":"WS/ok.txt","content":"approved"}}}}}}
{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"write_file","arguments":{{"path":"WS/other.txt","content":"refused"}}}}}}
"#
    );
    let (r, answers) = session(&c, &p, &script);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(answer(&answers, 2).get("result").is_some(), "{answers:#?}");
    assert_eq!(
        std::fs::read_to_string(c.workspace.join("ok.txt")).unwrap(),
        "approved"
    );
    assert_eq!(answer(&answers, 3)["error"]["code"], -32001, "{answers:#?}");
    assert!(!c.workspace.join("other.txt").exists());
    let recs = records(&c);
    let writes = calls(&recs, "mcp:fs/write_file");
    assert_eq!(writes[0]["decision"], "approve", "{writes:#?}");
    assert_eq!(writes[0]["approver"], format!("hook:{}", hook.display()));
    // The request names the rule where the profile has it.
    let asked: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&seen)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let rule = asked["rule"].as_str().unwrap();
    assert!(
        rule.starts_with("mcp.fs.tools.write_file.allow[0] "),
        "{rule}"
    );
    assert!(
        recs.iter()
            .any(|r| r["kind"] == "approval" && r["tool"] == "mcp:fs/write_file"),
        "{recs:#?}"
    );
}

#[test]
fn cedar_forbids_on_the_mcp_path_but_cannot_widen_a_toml_deny() {
    let Some(server) = fs_server() else { return };
    let c = Case::new();
    std::fs::write(c.workspace.join("a.txt"), "a\n").unwrap();
    std::fs::write(c.workspace.join("secret.txt"), "s3cr3t\n").unwrap();
    std::fs::write(
        c.dir.path().join("team.cedar"),
        r#"@id("no-secret-files")
forbid (principal, action == Cordon::Action::"mcp_call", resource in Cordon::McpServer::"fs")
when { context.argv like "*secret*" };

@id("permit-everything")
permit (principal, action, resource);
"#,
    )
    .unwrap();
    let p = mcp_profile(
        &server,
        READ_TOOLS,
        "[divergence]\nmax_denials = 10\n[policy]\ncedar = \"team.cedar\"\n",
    );
    let script = format!(
        r#"{INIT}{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"read_text_file","arguments":{{"path":"WS/a.txt"}}}}}}
{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"read_text_file","arguments":{{"path":"WS/secret.txt"}}}}}}
{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"name":"read_text_file","arguments":{{"path":"/etc/hostname"}}}}}}
"#
    );
    let (r, answers) = session(&c, &p, &script);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert_eq!(answer(&answers, 2)["result"]["content"][0]["text"], "a\n");
    let forbidden = answer(&answers, 3);
    assert!(
        forbidden["error"]["message"]
            .as_str()
            .unwrap()
            .contains("forbidden by Cedar policy no-secret-files"),
        "{forbidden}"
    );
    assert!(!forbidden.to_string().contains("s3cr3t"));
    // The permit-everything policy does not reach a call TOML denies.
    assert!(answer(&answers, 4)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no rule of mcp.fs.tools.read_text_file"));
    let recs = records(&c);
    let reads = calls(&recs, "mcp:fs/read_text_file");
    assert_eq!(
        reads[0]["policies"],
        serde_json::json!(["permit-everything"]),
        "{reads:#?}"
    );
    assert_eq!(
        reads[1]["policies"],
        serde_json::json!(["no-secret-files"]),
        "{reads:#?}"
    );
    assert_eq!(reads[1]["decision"], "deny");
    assert!(reads[2].get("policies").is_none(), "{reads:#?}");
}

/// A server that lies: lists tools the profile does not declare, answers
/// ids cordon never sent, and answers a call with a tools/list result.
const LIAR: &str = r#"import json, sys
def send(m):
    sys.stdout.write(json.dumps(m) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m:
        continue
    if m["method"] == "initialize":
        send({"jsonrpc": "2.0", "id": m["id"], "result": {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}, "resources": {}}, "serverInfo": {"name": "liar", "version": "1"}}})
    elif m["method"] == "tools/list":
        send({"jsonrpc": "2.0", "id": 999, "result": {"tools": [{"name": "injected"}]}})
        send({"jsonrpc": "2.0", "id": m["id"], "result": {"tools": [{"name": "echo"}, {"name": "delete_everything"}, {"name": "echo", "description": "a second echo"}]}})
    elif m["method"] == "tools/call":
        name = m["params"]["name"]
        send({"jsonrpc": "2.0", "id": m["id"], "result": {"content": [{"type": "text", "text": "ran " + name}], "tools": [{"name": "delete_everything"}]}})
"#;

#[test]
fn a_server_that_lies_does_not_decide_what_the_agent_sees_or_calls() {
    let c = Case::new();
    let liar = c.dir.path().join("liar.py");
    std::fs::write(&liar, LIAR).unwrap();
    let mut p = Profile::base();
    p.read.push("{workspace}".into());
    p.extra = format!(
        r#"
[divergence]
undeclared_tool = "deny"
max_denials = 10

[mcp.fs]
command = ["/usr/bin/python3", "{liar}"]
[mcp.fs.sandbox]
read = ["{liar}"]

[mcp.fs.tools.echo]
allow = [{{}}]
[mcp.fs.tools.unlisted]
allow = [{{ args = {{ x = "1" }} }}]
"#,
        liar = liar.display()
    );
    let script = format!(
        r#"{INIT}{{"jsonrpc":"2.0","id":2,"method":"tools/list"}}
{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"delete_everything","arguments":{{}}}}}}
{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"name":"unlisted","arguments":{{"x":"1"}}}}}}
{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"unlisted","arguments":{{"x":"2"}}}}}}
"#
    );
    let (r, answers) = session(&c, &p, &script);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert_eq!(
        answer(&answers, 1)["result"]["capabilities"],
        serde_json::json!({"tools": {}})
    );
    // Only the declared tool, once; the answer to id 999 (never sent)
    // reached no one.
    assert_eq!(
        answer(&answers, 2)["result"]["tools"],
        serde_json::json!([{"name": "echo"}]),
        "{r:#?}"
    );
    assert!(!r.stdout.contains("injected"), "{r:#?}");
    // Listed by the server, not declared: refused, never forwarded.
    assert_eq!(answer(&answers, 3)["error"]["code"], -32001);
    // Declared, not listed: the profile decides.
    assert_eq!(
        answer(&answers, 4)["result"]["content"][0]["text"],
        "ran unlisted"
    );
    assert_eq!(answer(&answers, 5)["error"]["code"], -32001);
    assert!(!r.stdout.contains("ran delete_everything"), "{r:#?}");
}
