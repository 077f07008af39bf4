// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;
use crate::policy::Verdict;
use crate::profile::{ArgMatch, ArgRule, Location, McpServer, McpTool, ToolSandbox};

fn at() -> Location {
    Location {
        file: Arc::from(Path::new("t.toml")),
        line: 1,
        column: 1,
    }
}

fn allow(path: Option<&str>) -> ArgRule {
    ArgRule {
        args: path
            .map(|g| ArgMatch {
                path: "path".into(),
                globs: vec![g.into()],
                origin: at(),
            })
            .into_iter()
            .collect(),
        examples_match: vec![],
        examples_no_match: vec![],
        risk: None,
        pre_approved: false,
        origin: at(),
    }
}

/// A profile with `read_file` (workspace paths) and `list_allowed` (any).
fn relay() -> Relay {
    let mut tools = BTreeMap::new();
    for (name, rule) in [
        ("read_file", allow(Some("/ws/*"))),
        ("list_allowed", allow(None)),
    ] {
        tools.insert(
            name.to_string(),
            McpTool {
                name: name.into(),
                allow: vec![rule],
                approve: vec![],
                deny: vec![],
                origin: at(),
            },
        );
    }
    let server = McpServer {
        name: "fs".into(),
        command: vec!["/bin/true".into()],
        secrets: vec![],
        env: vec![],
        sandbox: ToolSandbox::default(),
        call_timeout: Duration::from_secs(5),
        max_calls: None,
        max_message: 4096,
        tools,
        origin: at(),
    };
    Relay::new(ServerPolicy::compile(&server, "/ws").unwrap(), 4096)
}

fn line(v: Value) -> Frame {
    Frame::Line(serde_json::to_vec(&v).unwrap())
}

fn json_of(bytes: &[u8]) -> Value {
    assert_eq!(bytes.last(), Some(&b'\n'), "a frame ends its line");
    assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
    serde_json::from_slice(bytes).unwrap()
}

fn to_server(step: AgentStep) -> Value {
    match step {
        AgentStep::ToServer(b) => json_of(&b),
        other => panic!("expected a frame to the server, got {other:?}"),
    }
}

fn to_agent(step: ServerStep) -> (Value, Option<Ended>) {
    match step {
        ServerStep::ToAgent(b, e) => (json_of(&b), e),
        other => panic!("expected a frame to the agent, got {other:?}"),
    }
}

fn call(r: &mut Relay, id: Value, name: &str, args: Value) -> AgentStep {
    r.from_agent(line(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": args}})))
}

#[test]
fn forged_oversized_and_batch_frames_are_refused_with_an_error() {
    let mut r = relay();
    let cases = [
        (Frame::Oversized(5_000_000), -32600, "over the limit"),
        (Frame::Line(b"{not json".to_vec()), -32700, "not JSON"),
        (
            Frame::Line(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.to_vec()),
            -32600,
            "a batch",
        ),
        (Frame::Line(b"17".to_vec()), -32600, "not a JSON-RPC object"),
        (
            Frame::Line(br#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#.to_vec()),
            -32600,
            "`id`",
        ),
        (Frame::Line(vec![0xff, 0xfe]), -32700, "not JSON"),
    ];
    for (frame, code, what) in cases {
        match r.from_agent(frame) {
            AgentStep::Refused {
                reply: Some(reply),
                reason,
                undeclared: None,
            } => {
                let v = json_of(&reply);
                assert_eq!(v["id"], Value::Null);
                assert_eq!(v["error"]["code"], code, "{v}");
                assert!(reason.contains(what), "{reason}");
                assert!(v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("cordon: denied: malformed MCP message"));
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn ids_are_cordons_on_the_server_side_and_the_agents_on_its_side() {
    let mut r = relay();
    // Two agent requests with the same id, one a string: the server sees
    // fresh numbers.
    let a = to_server(r.from_agent(line(json!({"jsonrpc": "2.0", "id": "x", "method": "ping"}))));
    let b = to_server(r.from_agent(line(json!({"jsonrpc": "2.0", "id": "x", "method": "ping"}))));
    assert_eq!((a["id"].clone(), b["id"].clone()), (json!(1), json!(2)));
    // Answers come back under the agent's id, each once.
    let (back, _) = to_agent(r.from_server(line(json!({"jsonrpc": "2.0", "id": 2, "result": {}}))));
    assert_eq!(back["id"], "x");
    assert!(matches!(
        r.from_server(line(json!({"jsonrpc": "2.0", "id": 2, "result": {}}))),
        ServerStep::Dropped(_)
    ));
    // An answer to an id cordon never sent is dropped, however plausible.
    for id in [json!(99), json!("x"), json!(-1)] {
        let s = r.from_server(line(
            json!({"jsonrpc": "2.0", "id": id, "result": {"tools": []}}),
        ));
        assert!(
            matches!(s, ServerStep::Dropped(ref why) if why.contains("never sent")),
            "{s:?}"
        );
    }
}

#[test]
fn the_agent_cannot_answer_for_the_server_or_for_cordon() {
    let mut r = relay();
    to_server(r.from_agent(line(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )));
    // The agent "answers" cordon's pending tools/list itself: refused.
    let forged = r.from_agent(line(
        json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "evil"}]}}),
    ));
    assert!(
        matches!(
            forged,
            AgentStep::Refused {
                reply: None,
                undeclared: None,
                ..
            }
        ),
        "{forged:?}"
    );
    // A server request to the agent: the agent's answer goes back under
    // the server's own id, once.
    let (req, _) = to_agent(r.from_server(line(
        json!({"jsonrpc": "2.0", "id": "srv-7", "method": "ping"}),
    )));
    let ours = req["id"].clone();
    assert_ne!(ours, json!("srv-7"));
    let back = to_server(r.from_agent(line(json!({"jsonrpc": "2.0", "id": ours, "result": {}}))));
    assert_eq!(back["id"], "srv-7");
    let again = r.from_agent(line(json!({"jsonrpc": "2.0", "id": ours, "result": {}})));
    assert!(matches!(again, AgentStep::Refused { .. }), "{again:?}");
}

#[test]
fn tools_list_names_only_what_the_profile_declares() {
    let mut r = relay();
    let sent = to_server(r.from_agent(line(
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
    )));
    let listed = json!({"tools": [
        {"name": "read_file", "inputSchema": {}},
        {"name": "write_file", "inputSchema": {}},
        {"name": "read_file", "description": "a second read_file, with other words"},
        {"description": "no name"},
        {"name": "list_allowed"}
    ], "nextCursor": "c2"});
    let (back, _) = to_agent(r.from_server(line(
        json!({"jsonrpc": "2.0", "id": sent["id"], "result": listed}),
    )));
    let names: Vec<&str> = back["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["read_file", "list_allowed"]);
    assert_eq!(back["result"]["nextCursor"], "c2");
    assert_eq!(back["id"], 5);
    // A result with no list at all lists nothing.
    let sent = to_server(r.from_agent(line(
        json!({"jsonrpc": "2.0", "id": 6, "method": "tools/list"}),
    )));
    let (back, _) = to_agent(r.from_server(line(
        json!({"jsonrpc": "2.0", "id": sent["id"], "result": {"tools": "everything"}}),
    )));
    assert_eq!(back["result"], json!({"tools": []}));
}

#[test]
fn a_lying_server_does_not_decide_what_may_be_called() {
    let mut r = relay();
    // The server listed write_file (the agent never saw it); calling it is
    // a call of an undeclared tool, whatever the server says.
    match call(&mut r, json!(1), "write_file", json!({"path": "/ws/a"})) {
        AgentStep::Refused {
            reply: Some(reply),
            reason,
            undeclared: Some(tool),
        } => {
            assert_eq!(tool, "write_file");
            let v = json_of(&reply);
            assert_eq!(v["id"], 1);
            assert_eq!(v["error"]["code"], code::DENIED);
            assert!(reason.contains("undeclared MCP tool"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A declared tool the server never listed is still decided by the
    // profile.
    let AgentStep::Call(c) = call(&mut r, json!(2), "read_file", json!({"path": "/ws/a"})) else {
        panic!()
    };
    assert_eq!(c.decision.verdict, Verdict::Allow);
    let AgentStep::Call(c) = call(
        &mut r,
        json!(3),
        "read_file",
        json!({"path": "/ws/../etc/shadow"}),
    ) else {
        panic!()
    };
    assert_eq!(c.decision.verdict, Verdict::Deny);
    // An answer to a call is passed on as the call's answer, whatever it
    // pretends to be.
    let AgentStep::Call(c) = call(&mut r, json!(4), "read_file", json!({"path": "/ws/b"})) else {
        panic!()
    };
    let sent = json_of(&r.admit(&c, 77, Instant::now()));
    assert_eq!(sent["params"]["name"], "read_file");
    let lie = json!({"tools": [{"name": "evil"}], "isError": true});
    let (back, ended) = to_agent(r.from_server(line(
        json!({"jsonrpc": "2.0", "id": sent["id"], "result": lie}),
    )));
    assert_eq!(back["id"], 4);
    let ended = ended.unwrap();
    assert_eq!(
        (ended.call, ended.tool.as_str(), ended.failed),
        (77, "read_file", true)
    );
}

#[test]
fn what_is_forwarded_is_what_was_decided() {
    let mut r = relay();
    // Duplicate keys: the last wins for the decision and for the server.
    let raw = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/ws/ok","path":"/etc/shadow"}}}"#;
    let AgentStep::Call(c) = r.from_agent(Frame::Line(raw.to_vec())) else {
        panic!()
    };
    assert_eq!(c.arguments["path"], "/etc/shadow");
    assert_eq!(c.decision.verdict, Verdict::Deny);
    // Bad params are refused and counted.
    for params in [
        json!({"arguments": {}}),
        json!({"name": 5}),
        json!({"name": "read_file", "arguments": [1]}),
    ] {
        let s = r.from_agent(line(
            json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": params}),
        ));
        assert!(
            matches!(
                s,
                AgentStep::Refused {
                    reply: Some(_),
                    undeclared: None,
                    ..
                }
            ),
            "{s:?}"
        );
    }
    // A refusal answers the agent under its id.
    let AgentStep::Call(c) = call(&mut r, json!("q"), "read_file", json!({"path": "/etc/x"}))
    else {
        panic!()
    };
    let v = json_of(&r.refuse(&c, "no"));
    assert_eq!(
        (v["id"].clone(), v["error"]["message"].clone()),
        (json!("q"), json!("cordon: denied: no"))
    );
    assert_eq!(c.canonical_arguments(), r#"{"path":"/etc/x"}"#);
}

#[test]
fn only_tools_cross() {
    let mut r = relay();
    for method in [
        "resources/read",
        "resources/list",
        "prompts/get",
        "completion/complete",
        "sampling/createMessage",
    ] {
        let s = r.from_agent(line(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"uri": "file:///etc/shadow"}})));
        match s {
            AgentStep::ToAgent(b) => {
                assert_eq!(json_of(&b)["error"]["code"], code::METHOD_NOT_FOUND)
            }
            other => panic!("{method}: {other:?}"),
        }
    }
    // The agent's initialize loses `roots`; the server's answer keeps
    // tools and logging only.
    let sent = to_server(r.from_agent(line(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {"roots": {"listChanged": true}, "sampling": {}}, "clientInfo": {"name": "c", "version": "1"}}}))));
    assert_eq!(sent["params"]["capabilities"], json!({"sampling": {}}));
    let caps =
        json!({"tools": {"listChanged": true}, "resources": {}, "prompts": {}, "logging": {}});
    let (back, _) = to_agent(r.from_server(line(json!({"jsonrpc": "2.0", "id": sent["id"], "result": {"protocolVersion": "2025-06-18", "capabilities": caps, "serverInfo": {"name": "s", "version": "1"}}}))));
    assert_eq!(
        back["result"]["capabilities"],
        json!({"tools": {"listChanged": true}, "logging": {}})
    );
    // The server asking the agent for its roots is answered by cordon.
    match r.from_server(line(
        json!({"jsonrpc": "2.0", "id": 3, "method": "roots/list"}),
    )) {
        ServerStep::ToServer(b) => assert_eq!(json_of(&b)["id"], 3),
        other => panic!("{other:?}"),
    }
    // Notifications not relayed are dropped, not counted.
    assert!(matches!(
        r.from_agent(line(
            json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})
        )),
        AgentStep::Dropped(_)
    ));
    assert!(matches!(
        r.from_server(line(
            json!({"jsonrpc": "2.0", "method": "notifications/resources/updated"})
        )),
        ServerStep::Dropped(_)
    ));
}

#[test]
fn cancels_are_mapped_and_late_calls_expire() {
    let mut r = relay();
    let AgentStep::Call(c) = call(&mut r, json!("c1"), "list_allowed", json!({})) else {
        panic!()
    };
    let t0 = Instant::now();
    let sent = json_of(&r.admit(&c, 1, t0));
    let cancel = to_server(r.from_agent(line(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "c1"}}))));
    assert_eq!(cancel["params"]["requestId"], sent["id"]);
    // A cancel for something not pending goes nowhere.
    let stray = r.from_agent(line(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "nope"}})));
    assert!(matches!(stray, AgentStep::Dropped(_)));
    assert!(r
        .expire(t0 + Duration::from_secs(1), Duration::from_secs(5))
        .is_empty());
    let late = r.expire(t0 + Duration::from_secs(5), Duration::from_secs(5));
    assert_eq!(late.len(), 1);
    assert_eq!(json_of(&late[0].to_agent)["id"], "c1");
    assert_eq!(json_of(&late[0].to_agent)["error"]["code"], code::TIMEOUT);
    assert_eq!(
        json_of(&late[0].to_server)["params"]["requestId"],
        sent["id"]
    );
    // Its answer, arriving after, reaches no one.
    assert!(matches!(
        r.from_server(line(
            json!({"jsonrpc": "2.0", "id": sent["id"], "result": {}})
        )),
        ServerStep::Dropped(_)
    ));
    assert_eq!(r.calls_in_flight(), 0);
    // A call still waiting when the server ends is handed back once.
    let AgentStep::Call(c) = call(&mut r, json!("c2"), "list_allowed", json!({})) else {
        panic!()
    };
    r.admit(&c, 2, t0);
    let left = r.abandon();
    assert_eq!((left.len(), left[0].call), (1, 2));
    assert!(r.abandon().is_empty());
}

#[test]
fn a_flood_of_requests_is_bounded() {
    let mut r = relay();
    for i in 0..MAX_PENDING {
        to_server(r.from_agent(line(json!({"jsonrpc": "2.0", "id": i, "method": "ping"}))));
    }
    match r.from_agent(line(
        json!({"jsonrpc": "2.0", "id": "one-more", "method": "ping"}),
    )) {
        AgentStep::ToAgent(b) => assert_eq!(json_of(&b)["error"]["code"], code::DENIED),
        other => panic!("{other:?}"),
    }
}
