//! Gemini: `POST /v1beta/models/M:streamGenerateContent?alt=sse` (data-only
//! SSE, one GenerateContentResponse per event) and `:generateContent`.
//! Gemini CLI also asks side questions with a JSON `responseSchema` (who
//! speaks next, loop detection): those get an object shaped by the schema.

use crate::http::Reply;
use crate::script::{Action, ToolDecl};
use serde_json::{json, Map, Value};

pub fn tools(body: &Value) -> Vec<ToolDecl> {
    let decls = |t: &Value| {
        t.get("functionDeclarations")
            .or_else(|| t.get("function_declarations"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    body.get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(decls)
        .filter_map(|d| {
            Some(ToolDecl {
                name: d.get("name")?.as_str()?.to_string(),
                schema: d
                    .get("parameters")
                    .or_else(|| d.get("parametersJsonSchema"))
                    .cloned()
                    .unwrap_or(Value::Null),
            })
        })
        .collect()
}

pub fn calls_made(body: &Value) -> usize {
    body.get("contents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("role").and_then(Value::as_str) == Some("model"))
        .filter_map(|c| c.get("parts").and_then(Value::as_array))
        .flatten()
        .filter(|p| p.get("functionCall").is_some())
        .count()
}

/// The JSON schema a side question wants its answer in, if any.
pub fn response_schema(body: &Value) -> Option<&Value> {
    let g = body.get("generationConfig")?;
    g.get("responseJsonSchema")
        .or_else(|| g.get("responseSchema"))
        .or_else(|| g.get("response_schema"))
}

/// A value that satisfies `schema`: the first enum value, empty strings,
/// the minimum or 1 (scores are often 1-100), false; `next_speaker` is always "user", so the CLI ends its turn.
pub fn fill(schema: &Value, key: &str) -> Value {
    if key == "next_speaker" {
        return json!("user");
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let ty = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("object")
        .to_ascii_lowercase();
    match ty.as_str() {
        "string" => json!("scripted"),
        "number" | "integer" => schema.get("minimum").cloned().unwrap_or(json!(1)),
        "boolean" => json!(false),
        "array" => json!([]),
        _ => {
            let mut m = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    m.insert(k.clone(), fill(s, k));
                }
            }
            Value::Object(m)
        }
    }
}

pub fn reply(action: &Action, stream: bool) -> Reply {
    let part = match action {
        Action::Text(t) => json!({"text": t}),
        Action::Call { name, args } => json!({"functionCall": {"name": name, "args": args}}),
    };
    let resp = json!({
        "candidates": [{"content": {"role": "model", "parts": [part]},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
        "modelVersion": "scripted"
    });
    if stream {
        Reply::Sse(vec![(None, resp)])
    } else {
        Reply::Json(200, resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_questions_get_an_answer_their_schema_accepts() {
        let schema = json!({"type": "OBJECT", "properties": {
            "next_speaker": {"type": "STRING", "enum": ["model", "user"]},
            "complexity_score": {"type": "INTEGER"},
            "confidence": {"type": "NUMBER", "minimum": 0.5},
            "flag": {"type": "BOOLEAN"},
            "mode": {"type": "STRING", "enum": ["fast", "slow"]}}});
        assert_eq!(
            fill(&schema, ""),
            json!({"next_speaker": "user", "complexity_score": 1, "confidence": 0.5,
                   "flag": false, "mode": "fast"})
        );
    }

    #[test]
    fn calls_made_counts_the_model_function_calls_only() {
        let body = json!({"contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "a", "response": {}}}]},
            {"role": "model", "parts": [{"text": "hm"}, {"functionCall": {"name": "b", "args": {}}}]}]});
        assert_eq!(calls_made(&body), 2);
    }
}
