//! JSON-RPC 2.0 messages as MCP uses them: what one line is, checked
//! strictly, and the error replies cordon writes.
//!
//! A message is parsed once, and what is forwarded is cordon's own
//! serialisation of what it parsed, never the peer's bytes: a frame with
//! duplicate keys, odd escapes or trailing garbage cannot mean one thing
//! to cordon's decision and another to the server.

use serde_json::{json, Map, Value};

/// JSON-RPC error codes.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// cordon refused the call (its policy, an approver, a limit).
    pub const DENIED: i64 = -32001;
    /// The server did not answer in time.
    pub const TIMEOUT: i64 = -32002;
}

/// One well-formed message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request {
        id: Value,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
    /// `result` or `error` (exactly one of them).
    Response { id: Value, outcome: Outcome },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Result(Value),
    Error(Value),
}

/// Why a line is not a message, with the JSON-RPC code for the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("the message is {0} bytes, over the limit of {1}")]
    TooLarge(usize, usize),
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("a batch (JSON array); MCP sends one message per line")]
    Batch,
    #[error("not a JSON-RPC object")]
    NotObject,
    #[error("`jsonrpc` must be \"2.0\"")]
    Version,
    #[error("`id` must be a string or an integer")]
    Id,
    #[error("`method` must be a string")]
    Method,
    #[error("`params` must be an object or an array")]
    Params,
    #[error("a response needs exactly one of `result` and `error`")]
    Outcome,
    #[error("unexpected member `{0}`")]
    Member(String),
}

impl Invalid {
    pub fn code(&self) -> i64 {
        match self {
            Invalid::NotJson(_) => code::PARSE_ERROR,
            _ => code::INVALID_REQUEST,
        }
    }
}

/// Parses one line.
pub fn parse(line: &[u8]) -> Result<Message, Invalid> {
    let v: Value = serde_json::from_slice(line).map_err(|e| Invalid::NotJson(e.to_string()))?;
    let obj = match v {
        Value::Object(o) => o,
        Value::Array(_) => return Err(Invalid::Batch),
        _ => return Err(Invalid::NotObject),
    };
    classify(obj)
}

fn classify(mut obj: Map<String, Value>) -> Result<Message, Invalid> {
    if obj.remove("jsonrpc") != Some(Value::String("2.0".into())) {
        return Err(Invalid::Version);
    }
    let id = obj.remove("id");
    let method = obj.remove("method");
    let params = obj.remove("params");
    let result = obj.remove("result");
    let error = obj.remove("error");
    if let Some((k, _)) = obj.into_iter().next() {
        return Err(Invalid::Member(k.escape_debug().to_string()));
    }
    if let Some(id) = &id {
        // MCP: ids are strings or integers, never null.
        let ok = id.is_string() || id.as_i64().is_some() || id.as_u64().is_some();
        if !ok {
            return Err(Invalid::Id);
        }
    }
    if let Some(p) = &params {
        if !p.is_object() && !p.is_array() {
            return Err(Invalid::Params);
        }
    }
    match (method, id) {
        (Some(Value::String(method)), id) => {
            if result.is_some() || error.is_some() {
                return Err(Invalid::Outcome);
            }
            Ok(match id {
                Some(id) => Message::Request { id, method, params },
                None => Message::Notification { method, params },
            })
        }
        (Some(_), _) => Err(Invalid::Method),
        (None, Some(id)) => {
            if params.is_some() {
                return Err(Invalid::Member("params".into()));
            }
            let outcome = match (result, error) {
                (Some(r), None) => Outcome::Result(r),
                (None, Some(e)) if e.is_object() => Outcome::Error(e),
                _ => return Err(Invalid::Outcome),
            };
            Ok(Message::Response { id, outcome })
        }
        (None, None) => Err(Invalid::Method),
    }
}

impl Message {
    /// The message as one line, with its newline.
    pub fn to_line(&self) -> Vec<u8> {
        let v = match self {
            Message::Request { id, method, params } => {
                let mut m = json!({"jsonrpc": "2.0", "id": id, "method": method});
                if let (Some(p), Some(o)) = (params, m.as_object_mut()) {
                    o.insert("params".into(), p.clone());
                }
                m
            }
            Message::Notification { method, params } => {
                let mut m = json!({"jsonrpc": "2.0", "method": method});
                if let (Some(p), Some(o)) = (params, m.as_object_mut()) {
                    o.insert("params".into(), p.clone());
                }
                m
            }
            Message::Response { id, outcome } => match outcome {
                Outcome::Result(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
                Outcome::Error(e) => json!({"jsonrpc": "2.0", "id": id, "error": e}),
            },
        };
        line(&v)
    }
}

/// `v` as one line (compact JSON never holds a raw newline).
pub fn line(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    out.push(b'\n');
    out
}

/// An error response; `id` is `null` when the request's could not be read.
pub fn error_line(id: Option<&Value>, code: i64, message: &str, data: Option<Value>) -> Vec<u8> {
    let mut error = json!({"code": code, "message": message});
    if let (Some(d), Some(o)) = (data, error.as_object_mut()) {
        o.insert("data".into(), d);
    }
    line(&json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error}))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    #[test]
    fn the_three_kinds() {
        let r = parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#)
            .unwrap();
        assert!(matches!(r, Message::Request { ref method, .. } if method == "tools/call"));
        let n = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(n, Message::Notification { .. }));
        let s = parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert!(matches!(
            s,
            Message::Response {
                outcome: Outcome::Result(_),
                ..
            }
        ));
        let e = parse(br#"{"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"m"}}"#).unwrap();
        assert!(matches!(
            e,
            Message::Response {
                outcome: Outcome::Error(_),
                ..
            }
        ));
    }

    #[test]
    fn malformed_frames_are_named_never_panics() {
        let cases: [(&[u8], Invalid); 12] = [
            (b"", Invalid::NotJson(String::new())),
            (b"{", Invalid::NotJson(String::new())),
            (
                b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
                Invalid::Batch,
            ),
            (b"42", Invalid::NotObject),
            (b"\"x\"", Invalid::NotObject),
            (br#"{"id":1,"method":"ping"}"#, Invalid::Version),
            (
                br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
                Invalid::Version,
            ),
            (
                br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
                Invalid::Id,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
                Invalid::Id,
            ),
            (br#"{"jsonrpc":"2.0","id":1,"method":7}"#, Invalid::Method),
            (
                br#"{"jsonrpc":"2.0","id":1,"result":1,"error":{}}"#,
                Invalid::Outcome,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"x","extra":1}"#,
                Invalid::Member("extra".into()),
            ),
        ];
        for (line, want) in cases {
            let got = parse(line).unwrap_err();
            match want {
                Invalid::NotJson(_) => assert!(matches!(got, Invalid::NotJson(_)), "{got}"),
                w => assert_eq!(got, w, "{}", String::from_utf8_lossy(line)),
            }
        }
        // Deep nesting is an error (serde_json's recursion limit), not a
        // stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(deep.as_bytes()).is_err());
        let params = br#"{"jsonrpc":"2.0","id":1,"method":"x","params":5}"#;
        assert_eq!(parse(params).unwrap_err(), Invalid::Params);
    }

    #[test]
    fn duplicate_keys_are_resolved_once_and_forwarded_as_decided() {
        // serde_json keeps the last; what is forwarded says the same.
        let m = parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","name":"delete"}}"#).unwrap();
        let Message::Request { params, .. } = &m else {
            panic!()
        };
        assert_eq!(params.as_ref().unwrap()["name"], "delete");
        let out = String::from_utf8(m.to_line()).unwrap();
        assert_eq!(out.matches("\"name\"").count(), 1, "{out}");
        assert!(out.contains("delete") && !out.contains("read") && out.ends_with('\n'));
    }
}
