//! The operator control socket's protocol: one JSON object per line, one
//! request and one reply per connection.

use serde::{Deserialize, Serialize};

use super::RequestInfo;

/// The longest request or reply line accepted.
pub const MAX_LINE: u64 = 1 << 20;

/// What an operator command asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlRequest {
    /// The pending requests.
    List,
    Approve {
        id: String,
        #[serde(default)]
        for_session: bool,
        #[serde(default)]
        count: Option<u32>,
        #[serde(default)]
        ttl_ms: Option<u64>,
    },
    Deny {
        id: String,
        #[serde(default)]
        reason: Option<String>,
    },
}

/// The answer: `ok`, and an error or the pending requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlReply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<RequestInfo>,
    /// What an approval covers, as recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted: Option<String>,
}

impl ControlReply {
    pub fn error(message: impl Into<String>) -> ControlReply {
        ControlReply {
            ok: false,
            error: Some(message.into()),
            ..ControlReply::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_and_strict() {
        let r: ControlRequest =
            serde_json::from_str(r#"{"op":"approve","id":"ab-1","count":3}"#).unwrap();
        assert_eq!(
            r,
            ControlRequest::Approve {
                id: "ab-1".into(),
                for_session: false,
                count: Some(3),
                ttl_ms: None
            }
        );
        assert!(
            serde_json::from_str::<ControlRequest>(r#"{"op":"approve","id":"x","as":"root"}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<ControlRequest>(r#"{"op":"grant_all"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&ControlRequest::List).unwrap(),
            r#"{"op":"list"}"#
        );
    }
}
