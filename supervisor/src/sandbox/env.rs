//! The agent's environment: built from nothing, never inherited.

use std::collections::BTreeMap;
use std::ffi::OsString;

use crate::profile::{Environment, Placeholders};

pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Names the broker socket in the agent's environment (read by the shim).
pub const SOCKET_VAR: &str = "CORDON_SOCKET";

/// The agent's environment: PATH, HOME={home}, TMPDIR={tmp}, LANG and TERM
/// (from cordon's environment when set), CORDON_SESSION, then the names the
/// profile passes through and the values it sets. Nothing else of cordon's
/// environment reaches the agent.
pub fn build(
    environment: &Environment,
    values: &Placeholders,
    session_id: &str,
    caller_env: &dyn Fn(&str) -> Option<OsString>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let caller = |name: &str| caller_env(name).and_then(|v| v.into_string().ok());
    env.insert("PATH".to_string(), DEFAULT_PATH.to_string());
    env.insert("HOME".to_string(), values.home.display().to_string());
    env.insert("TMPDIR".to_string(), values.tmp.display().to_string());
    env.insert(
        "LANG".to_string(),
        caller("LANG").unwrap_or_else(|| "C.UTF-8".to_string()),
    );
    if let Some(term) = caller("TERM") {
        env.insert("TERM".to_string(), term);
    }
    env.insert("CORDON_SESSION".to_string(), session_id.to_string());
    for name in &environment.pass {
        if let Some(v) = caller(name) {
            env.insert(name.clone(), v);
        }
    }
    for (name, value) in &environment.set {
        env.insert(name.clone(), expand(value, values));
    }
    env
}

/// Replaces `{workspace}`, `{home}` and `{tmp}` anywhere in a value.
fn expand(value: &str, values: &Placeholders) -> String {
    value
        .replace("{workspace}", &values.workspace.display().to_string())
        .replace("{home}", &values.home.display().to_string())
        .replace("{tmp}", &values.tmp.display().to_string())
}
