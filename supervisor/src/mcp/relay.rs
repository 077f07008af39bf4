//! The relay between the agent's MCP client and the real server: a pure
//! state machine fed one frame at a time from either side, answering with
//! what to send where.
//!
//! What it guarantees:
//! - every `tools/call` is decided by the profile (the tool's name and
//!   arguments), whatever the server listed; an undeclared tool is a
//!   refusal that counts toward divergence;
//! - `tools/list` answers only name tools the profile declares;
//! - ids are cordon's on the server side: every request the agent sends
//!   is forwarded under a fresh id, and only an answer to an id cordon
//!   issued reaches the agent (under the agent's own id again), so
//!   neither side can answer for the other or for cordon;
//! - only tools cross: `resources/*`, `prompts/*` and `roots` are not
//!   relayed, and `initialize` is edited so neither side offers them;
//! - what is forwarded is cordon's serialisation of what it decided on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::frame::Frame;
use super::message::{self, code, error_line, Message, Outcome};
use super::rules::ServerPolicy;
use crate::policy::Decision;

/// Requests the agent may have waiting on the server at once.
pub const MAX_PENDING: usize = 64;

/// Methods the agent may send to the server.
const AGENT_REQUESTS: [&str; 4] = ["initialize", "ping", "tools/list", "tools/call"];
const AGENT_NOTIFICATIONS: [&str; 3] = [
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
];
/// Methods the server may send to the agent.
const SERVER_REQUESTS: [&str; 3] = ["ping", "sampling/createMessage", "elicitation/create"];
const SERVER_NOTIFICATIONS: [&str; 4] = [
    "notifications/tools/list_changed",
    "notifications/message",
    "notifications/progress",
    "notifications/cancelled",
];

/// What to do with a frame from the agent.
#[derive(Debug)]
pub enum AgentStep {
    ToServer(Vec<u8>),
    ToAgent(Vec<u8>),
    /// A refusal of the agent's doing: answer it (when it asked
    /// something) and count it toward divergence.
    Refused {
        reply: Option<Vec<u8>>,
        reason: String,
        /// The undeclared tool called, when that is the refusal (the
        /// profile's `undeclared_tool` action applies, not
        /// `denied_action`).
        undeclared: Option<String>,
    },
    /// A `tools/call` to decide: `decision` is the profile's verdict;
    /// the caller records it, asks a person if needed, then calls
    /// [`Relay::admit`] or [`Relay::refuse`].
    Call(Box<ToolCall>),
    /// Nothing to send (a notification not relayed), and why.
    Dropped(String),
}

/// A `tools/call` the agent sent.
#[derive(Debug, Clone)]
pub struct ToolCall {
    pub agent_id: Value,
    pub tool: String,
    /// The call's `arguments` (`{}` when it had none).
    pub arguments: Value,
    pub decision: Decision,
    /// The whole `params`, forwarded as decided.
    params: Value,
}

impl ToolCall {
    /// The agent's answer when this call is refused for `reason` (a
    /// JSON-RPC error under the agent's id; no relay state is involved).
    pub fn refusal(&self, reason: &str) -> Vec<u8> {
        denied_line(&self.agent_id, reason)
    }

    /// The canonical JSON of the arguments (keys sorted, no whitespace):
    /// the call's one "argument" in its audit record.
    pub fn canonical_arguments(&self) -> String {
        canonical(&self.arguments)
    }
}

/// `v` as canonical JSON: object keys sorted (serde_json's map is
/// ordered), no whitespace.
pub fn canonical(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// What to do with a frame from the server.
#[derive(Debug)]
pub enum ServerStep {
    /// Send to the agent; `ended` when it answers an admitted call.
    ToAgent(Vec<u8>, Option<Ended>),
    /// Answer the server (a request cordon does not relay).
    ToServer(Vec<u8>),
    /// Nothing sent, and why (a lie, a stray answer, a malformed line).
    Dropped(String),
}

/// An admitted call got its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub call: u64,
    pub tool: String,
    /// The server reported a failure (`isError` or a JSON-RPC error).
    pub failed: bool,
    /// When it was admitted.
    pub since: Instant,
}

/// A call the server did not answer in time: tell the agent, cancel it
/// on the server.
#[derive(Debug)]
pub struct Expired {
    pub to_agent: Vec<u8>,
    pub to_server: Vec<u8>,
    pub call: u64,
    pub tool: String,
}

#[derive(Debug)]
enum Kind {
    Initialize,
    ToolsList,
    Call {
        call: u64,
        tool: String,
        since: Instant,
    },
    Other,
}

#[derive(Debug)]
struct Pending {
    agent_id: Value,
    kind: Kind,
}

/// One agent-server conversation.
pub struct Relay {
    policy: ServerPolicy,
    max_message: usize,
    next_id: u64,
    /// Agent requests forwarded to the server, by cordon's id.
    pending: HashMap<u64, Pending>,
    /// Server requests forwarded to the agent: cordon's id -> the server's.
    from_server: HashMap<u64, Value>,
}

impl Relay {
    pub fn new(policy: ServerPolicy, max_message: usize) -> Relay {
        Relay {
            policy,
            max_message,
            next_id: 0,
            pending: HashMap::new(),
            from_server: HashMap::new(),
        }
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Calls admitted and not answered yet.
    pub fn calls_in_flight(&self) -> usize {
        self.pending
            .values()
            .filter(|p| matches!(p.kind, Kind::Call { .. }))
            .count()
    }

    /// A frame the agent sent.
    pub fn from_agent(&mut self, frame: Frame) -> AgentStep {
        let line = match frame {
            Frame::Line(l) => l,
            Frame::Oversized(n) => {
                let e = message::Invalid::TooLarge(n, self.max_message);
                return refused(None, e.code(), &format!("malformed MCP message: {e}"));
            }
        };
        let msg = match message::parse(&line) {
            Ok(m) => m,
            Err(e) => return refused(None, e.code(), &format!("malformed MCP message: {e}")),
        };
        match msg {
            Message::Request { id, method, params } => self.agent_request(id, method, params),
            Message::Notification { method, params } => self.agent_notification(method, params),
            Message::Response { id, outcome } => {
                // Only an answer to a request the server sent (under
                // cordon's id) goes back, under the server's id.
                let server_id = id.as_u64().and_then(|n| self.from_server.remove(&n));
                match server_id {
                    Some(sid) => {
                        AgentStep::ToServer(Message::Response { id: sid, outcome }.to_line())
                    }
                    None => AgentStep::Refused {
                        reply: None,
                        reason: format!(
                            "sent an MCP response to id {} that no server request has",
                            String::from_utf8_lossy(&message::line(&id)).trim_end()
                        ),
                        undeclared: None,
                    },
                }
            }
        }
    }

    fn agent_request(&mut self, id: Value, method: String, params: Option<Value>) -> AgentStep {
        if !AGENT_REQUESTS.contains(&method.as_str()) {
            // Not the agent's divergence (clients probe for resources and
            // prompts), just not relayed.
            let msg = format!(
                "cordon relays MCP tools only; `{}` is not relayed",
                method.escape_debug()
            );
            return AgentStep::ToAgent(error_line(Some(&id), code::METHOD_NOT_FOUND, &msg, None));
        }
        if self.pending.len() >= MAX_PENDING {
            let msg = format!("more than {MAX_PENDING} requests are waiting on the server");
            return AgentStep::ToAgent(error_line(Some(&id), code::DENIED, &msg, None));
        }
        let (kind, params) = match method.as_str() {
            "tools/call" => return self.tool_call(id, params),
            "tools/list" => (Kind::ToolsList, params),
            "initialize" => (Kind::Initialize, params.map(without_client_extras)),
            _ => (Kind::Other, params),
        };
        AgentStep::ToServer(self.forward(id, kind, method, params))
    }

    fn forward(
        &mut self,
        agent_id: Value,
        kind: Kind,
        method: String,
        params: Option<Value>,
    ) -> Vec<u8> {
        let ours = self.fresh_id();
        self.pending.insert(ours, Pending { agent_id, kind });
        Message::Request {
            id: json!(ours),
            method,
            params,
        }
        .to_line()
    }

    fn tool_call(&mut self, id: Value, params: Option<Value>) -> AgentStep {
        let params = params.unwrap_or_else(|| json!({}));
        let Some(tool) = params
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return refused(
                Some(&id),
                code::INVALID_PARAMS,
                "malformed MCP tools/call: `params.name` must be a string",
            );
        };
        let arguments = match params.get("arguments") {
            None => json!({}),
            Some(a @ Value::Object(_)) => a.clone(),
            Some(_) => {
                return refused(
                    Some(&id),
                    code::INVALID_PARAMS,
                    "malformed MCP tools/call: `params.arguments` must be an object",
                )
            }
        };
        let decision = self.policy.decide(&tool, &arguments);
        if !self.policy.declares(&tool) {
            let reason = format!("called undeclared MCP tool: {}", decision.reason);
            return AgentStep::Refused {
                reply: Some(denied_line(&id, &reason)),
                reason,
                undeclared: Some(tool),
            };
        }
        AgentStep::Call(Box::new(ToolCall {
            agent_id: id,
            tool,
            arguments,
            decision,
            params,
        }))
    }

    /// Sends an admitted call to the server as call `call` (the audit
    /// record's id). The caller must have decided it may run.
    pub fn admit(&mut self, call: &ToolCall, call_id: u64, now: Instant) -> Vec<u8> {
        let kind = Kind::Call {
            call: call_id,
            tool: call.tool.clone(),
            since: now,
        };
        self.forward(
            call.agent_id.clone(),
            kind,
            "tools/call".into(),
            Some(call.params.clone()),
        )
    }

    /// The agent's answer to a refused call (as [`ToolCall::refusal`]).
    pub fn refuse(&self, call: &ToolCall, reason: &str) -> Vec<u8> {
        call.refusal(reason)
    }

    fn agent_notification(&mut self, method: String, params: Option<Value>) -> AgentStep {
        if !AGENT_NOTIFICATIONS.contains(&method.as_str()) {
            return AgentStep::Dropped(format!(
                "agent notification `{}` is not relayed",
                method.escape_debug()
            ));
        }
        let params = if method == "notifications/cancelled" {
            // The agent cancels by its id; the server knows cordon's.
            let Some(ours) = params
                .as_ref()
                .and_then(|p| p.get("requestId"))
                .and_then(|rid| self.ours_for_agent(rid))
            else {
                return AgentStep::Dropped("a cancel for no pending request".into());
            };
            let mut p = params.unwrap_or_else(|| json!({}));
            p["requestId"] = json!(ours);
            Some(p)
        } else {
            params
        };
        AgentStep::ToServer(Message::Notification { method, params }.to_line())
    }

    fn ours_for_agent(&self, agent_id: &Value) -> Option<u64> {
        self.pending
            .iter()
            .find(|(_, p)| p.agent_id == *agent_id)
            .map(|(k, _)| *k)
    }

    /// A frame the server sent.
    pub fn from_server(&mut self, frame: Frame) -> ServerStep {
        let line = match frame {
            Frame::Line(l) => l,
            Frame::Oversized(n) => {
                return ServerStep::Dropped(format!("an oversized message ({n} bytes)"))
            }
        };
        let msg = match message::parse(&line) {
            Ok(m) => m,
            Err(e) => return ServerStep::Dropped(format!("a malformed message: {e}")),
        };
        match msg {
            Message::Response { id, outcome } => self.server_response(id, outcome),
            Message::Request { id, method, params } => {
                if !SERVER_REQUESTS.contains(&method.as_str()) {
                    let msg = format!(
                        "cordon does not relay `{}` to the agent",
                        method.escape_debug()
                    );
                    return ServerStep::ToServer(error_line(
                        Some(&id),
                        code::METHOD_NOT_FOUND,
                        &msg,
                        None,
                    ));
                }
                let ours = self.fresh_id();
                self.from_server.insert(ours, id);
                ServerStep::ToAgent(
                    Message::Request {
                        id: json!(ours),
                        method,
                        params,
                    }
                    .to_line(),
                    None,
                )
            }
            Message::Notification { method, params } => {
                if !SERVER_NOTIFICATIONS.contains(&method.as_str()) {
                    return ServerStep::Dropped(format!(
                        "server notification `{}` is not relayed",
                        method.escape_debug()
                    ));
                }
                let mut params = params;
                if method == "notifications/cancelled" {
                    // The server cancels one of its own requests to the agent.
                    let rid = params.as_ref().and_then(|p| p.get("requestId")).cloned();
                    let ours = self
                        .from_server
                        .iter()
                        .find(|(_, sid)| Some(*sid) == rid.as_ref())
                        .map(|(k, _)| *k);
                    let Some(ours) = ours else {
                        return ServerStep::Dropped("a cancel for no request of the server".into());
                    };
                    self.from_server.remove(&ours);
                    if let Some(p) = params.as_mut() {
                        p["requestId"] = json!(ours);
                    }
                }
                ServerStep::ToAgent(Message::Notification { method, params }.to_line(), None)
            }
        }
    }

    fn server_response(&mut self, id: Value, outcome: Outcome) -> ServerStep {
        let Some(pending) = id.as_u64().and_then(|n| self.pending.remove(&n)) else {
            return ServerStep::Dropped(format!(
                "an answer to id {}, which cordon never sent",
                String::from_utf8_lossy(&message::line(&id)).trim_end()
            ));
        };
        let agent_id = pending.agent_id;
        let (outcome, ended) = match (pending.kind, outcome) {
            (Kind::ToolsList, Outcome::Result(r)) => (Outcome::Result(self.filter_list(r)), None),
            (Kind::Initialize, Outcome::Result(r)) => {
                (Outcome::Result(without_server_extras(r)), None)
            }
            (Kind::Call { call, tool, since }, outcome) => {
                let failed = match &outcome {
                    Outcome::Error(_) => true,
                    Outcome::Result(r) => r.get("isError") == Some(&Value::Bool(true)),
                };
                (
                    outcome,
                    Some(Ended {
                        call,
                        tool,
                        failed,
                        since,
                    }),
                )
            }
            (_, outcome) => (outcome, None),
        };
        ServerStep::ToAgent(
            Message::Response {
                id: agent_id,
                outcome,
            }
            .to_line(),
            ended,
        )
    }

    /// Keeps only tools the profile declares, each once.
    fn filter_list(&self, mut result: Value) -> Value {
        let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) else {
            // No list at all: the agent learns of no tool.
            return json!({"tools": []});
        };
        let mut seen: Vec<String> = Vec::new();
        tools.retain(|t| {
            let Some(name) = t.get("name").and_then(Value::as_str) else {
                return false;
            };
            if !self.policy.declares(name) || seen.iter().any(|s| s == name) {
                return false;
            }
            seen.push(name.to_string());
            true
        });
        result
    }

    /// The calls still waiting when the server is gone: forgotten, and
    /// returned so their ends can be recorded.
    pub fn abandon(&mut self) -> Vec<Ended> {
        let mut out = Vec::new();
        for (_, p) in self.pending.drain() {
            if let Kind::Call { call, tool, since } = p.kind {
                out.push(Ended {
                    call,
                    tool,
                    failed: true,
                    since,
                });
            }
        }
        out
    }

    /// Calls waiting longer than `timeout` at `now`: each is answered to
    /// the agent with an error and cancelled on the server.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<Expired> {
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| matches!(p.kind, Kind::Call { since, .. } if now.duration_since(since) >= timeout))
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::new();
        for ours in late {
            let Some(p) = self.pending.remove(&ours) else {
                continue;
            };
            let Kind::Call { call, tool, .. } = p.kind else {
                continue;
            };
            let msg = format!(
                "cordon: the MCP server did not answer `{tool}` within {}",
                humantime::format_duration(timeout)
            );
            out.push(Expired {
                to_agent: error_line(Some(&p.agent_id), code::TIMEOUT, &msg, None),
                to_server: Message::Notification {
                    method: "notifications/cancelled".into(),
                    params: Some(json!({"requestId": ours, "reason": "timeout (cordon)"})),
                }
                .to_line(),
                call,
                tool,
            });
        }
        out
    }
}

fn refused(id: Option<&Value>, code: i64, reason: &str) -> AgentStep {
    AgentStep::Refused {
        reply: Some(error_line(
            id,
            code,
            &format!("cordon: denied: {reason}"),
            None,
        )),
        reason: reason.to_string(),
        undeclared: None,
    }
}

/// The agent's answer to a refused call: a JSON-RPC error it (and the
/// model behind it) can read.
fn denied_line(id: &Value, reason: &str) -> Vec<u8> {
    error_line(
        Some(id),
        code::DENIED,
        &format!("cordon: denied: {reason}"),
        None,
    )
}

/// The client's `initialize` without `roots` (a client that offers roots
/// could widen a server's own directory list) and without sampling or
/// elicitation offers it cannot be held to.
fn without_client_extras(mut params: Value) -> Value {
    if let Some(caps) = params
        .get_mut("capabilities")
        .and_then(Value::as_object_mut)
    {
        caps.remove("roots");
    }
    params
}

/// The server's `initialize` result offering tools (and logging) only.
fn without_server_extras(mut result: Value) -> Value {
    if let Some(caps) = result
        .get_mut("capabilities")
        .and_then(Value::as_object_mut)
    {
        caps.retain(|k, _| k == "tools" || k == "logging");
    }
    result
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
