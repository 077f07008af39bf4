//! OpenAI Responses: `POST /v1/responses`, the API Codex speaks
//! (`wire_api = "responses"`). Streamed as response.created,
//! response.output_item.added / .done per item (with output_text deltas for
//! a message), then response.completed; or one JSON response.

use crate::http::Reply;
use crate::script::{Action, ToolDecl};
use serde_json::{json, Value};

pub fn tools(body: &Value) -> Vec<ToolDecl> {
    body.get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            // Responses tools are flat ({type, name, parameters}); accept the
            // Chat Completions nesting ({type, function: {...}}) too.
            let f = t.get("function").unwrap_or(t);
            Some(ToolDecl {
                name: f.get("name")?.as_str()?.to_string(),
                schema: f.get("parameters").cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

pub fn calls_made(body: &Value) -> usize {
    body.get("input")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|i| {
            matches!(
                i.get("type").and_then(Value::as_str),
                Some("function_call" | "custom_tool_call" | "local_shell_call")
            )
        })
        .count()
}

pub fn reply(body: &Value, action: &Action, seq: u64) -> Reply {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("scripted");
    let id = format!("resp_{seq:08}");
    let item = match action {
        Action::Text(t) => json!({"type": "message", "id": format!("msg_{seq:08}"),
            "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": t, "annotations": []}]}),
        Action::Call { name, args } => json!({"type": "function_call",
            "id": format!("fc_{seq:08}"), "call_id": format!("call_{seq:08}"),
            "name": name, "arguments": args.to_string(), "status": "completed"}),
    };
    let usage = json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 15});
    let done = json!({"id": id, "object": "response", "model": model,
        "status": "completed", "output": [item.clone()], "usage": usage});
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        return Reply::Json(200, done);
    }
    let mut events = vec![(
        Some("response.created"),
        json!({"type": "response.created", "response": {"id": id, "object": "response",
               "model": model, "status": "in_progress", "output": []}}),
    )];
    let mut added = item.clone();
    if let Action::Text(t) = action {
        added["content"] = json!([]);
        added["status"] = json!("in_progress");
        events.push((
            Some("response.output_item.added"),
            json!({"type": "response.output_item.added", "output_index": 0, "item": added}),
        ));
        events.push((
            Some("response.output_text.delta"),
            json!({"type": "response.output_text.delta", "item_id": item["id"],
                   "output_index": 0, "content_index": 0, "delta": t}),
        ));
    } else {
        events.push((
            Some("response.output_item.added"),
            json!({"type": "response.output_item.added", "output_index": 0, "item": added}),
        ));
    }
    events.push((
        Some("response.output_item.done"),
        json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
    ));
    events.push((
        Some("response.completed"),
        json!({"type": "response.completed", "response": done}),
    ));
    Reply::Sse(events)
}
