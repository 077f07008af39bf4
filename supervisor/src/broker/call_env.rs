//! What every brokered call (an exec'd tool or an MCP server) takes from
//! its caller and ends with, the same for both: the variables it may see,
//! and its `call_end` record.

use super::Session;
use crate::audit::{Kind, Record};

/// The caller's variables the call may see: its profile table's `env`
/// names, plus the terminal's size and the locale.
pub(super) fn pass_env(names: &[String], env: &[(Vec<u8>, Vec<u8>)]) -> Vec<(String, String)> {
    let wanted = |k: &str| {
        names.iter().any(|n| n == k) || ["TERM", "LANG", "LC_ALL", "COLUMNS", "LINES"].contains(&k)
    };
    env.iter()
        .filter_map(|(k, v)| {
            Some((
                String::from_utf8(k.clone()).ok()?,
                String::from_utf8(v.clone()).ok()?,
            ))
        })
        .filter(|(k, _)| wanted(k))
        .collect()
}

/// The `call_end` record of call `call` to `tool` (an MCP server is
/// `mcp:NAME`).
pub(super) fn end_record(session: &Session, call: u64, tool: &str) -> Record {
    Record::new(Kind::CallEnd, &session.id)
        .profile(&session.profile.name)
        .call(call)
        .tool(tool.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(k: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
        (k.as_bytes().to_vec(), v.as_bytes().to_vec())
    }

    #[test]
    fn only_named_variables_and_the_terminal_pass() {
        let env = vec![
            pair("GOPATH", "/go"),
            pair("AWS_SECRET_ACCESS_KEY", "agent-held"),
            pair("TERM", "xterm"),
            pair("COLUMNS", "80"),
            (b"BAD".to_vec(), vec![0xff]),
        ];
        let passed = pass_env(&["GOPATH".into(), "BAD".into()], &env);
        assert_eq!(
            passed,
            vec![
                ("GOPATH".to_string(), "/go".to_string()),
                ("TERM".to_string(), "xterm".to_string()),
                ("COLUMNS".to_string(), "80".to_string()),
            ]
        );
    }
}
