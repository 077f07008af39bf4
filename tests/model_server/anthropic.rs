//! Anthropic Messages: `POST /v1/messages` (Claude Code adds `?beta=true`),
//! streamed (`"stream": true`, the event sequence message_start,
//! content_block_start/delta/stop, message_delta, message_stop) or not.

use crate::http::Reply;
use crate::script::{Action, ToolDecl};
use serde_json::{json, Value};

pub fn tools(body: &Value) -> Vec<ToolDecl> {
    body.get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(ToolDecl {
                name: t.get("name")?.as_str()?.to_string(),
                schema: t.get("input_schema").cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

/// The model's tool calls already in the conversation.
pub fn calls_made(body: &Value) -> usize {
    body.get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
        .count()
}

pub fn reply(body: &Value, action: &Action, seq: u64) -> Reply {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("scripted");
    let (block, stop) = match action {
        Action::Text(t) => (json!({"type": "text", "text": t}), "end_turn"),
        Action::Call { name, args } => (
            json!({"type": "tool_use", "id": format!("toolu_{seq:08}"), "name": name, "input": args}),
            "tool_use",
        ),
    };
    let usage = json!({"input_tokens": 10, "output_tokens": 5,
                       "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0});
    let id = format!("msg_{seq:08}");
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        return Reply::Json(
            200,
            json!({"id": id, "type": "message", "role": "assistant", "model": model,
                   "content": [block], "stop_reason": stop, "stop_sequence": null,
                   "usage": usage}),
        );
    }
    let (start, delta) = match action {
        Action::Text(t) => (
            json!({"type": "text", "text": ""}),
            json!({"type": "text_delta", "text": t}),
        ),
        Action::Call { name, args } => (
            json!({"type": "tool_use", "id": format!("toolu_{seq:08}"), "name": name, "input": {}}),
            json!({"type": "input_json_delta", "partial_json": args.to_string()}),
        ),
    };
    Reply::Sse(vec![
        (
            Some("message_start"),
            json!({"type": "message_start", "message": {"id": id, "type": "message",
                   "role": "assistant", "model": model, "content": [], "stop_reason": null,
                   "stop_sequence": null, "usage": usage}}),
        ),
        (
            Some("content_block_start"),
            json!({"type": "content_block_start", "index": 0, "content_block": start}),
        ),
        (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        ),
        (
            Some("content_block_stop"),
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            Some("message_delta"),
            json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
                   "usage": {"output_tokens": 5}}),
        ),
        (Some("message_stop"), json!({"type": "message_stop"})),
    ])
}
