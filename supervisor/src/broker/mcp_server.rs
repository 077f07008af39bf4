//! An `[mcp.NAME]` server as the launcher sees it: a tool named
//! `mcp:NAME` (so its sandbox is planned with the tools' and found by
//! that name), and the working directories it may be started in.

use std::path::{Path, PathBuf};

use super::Session;
use crate::profile::{McpServer, Tool};

/// The server as the launcher's tool: its program, sandbox and secrets,
/// named `mcp:NAME` (its planned sandbox is found by that name).
pub(super) fn as_tool(server: &McpServer) -> Tool {
    let program = PathBuf::from(&server.command[0]);
    Tool {
        name: format!("mcp:{}", server.name),
        path: program,
        allow: Vec::new(),
        approve: Vec::new(),
        deny: Vec::new(),
        timeout: None,
        max_calls: None,
        env: server.env.clone(),
        secrets: server.secrets.clone(),
        sandbox: server.sandbox.clone(),
        grammar: None,
        origin: server.origin.clone(),
    }
}

/// The shim's working directory must lie in the server's `cwd` trees.
pub(super) fn cwd_refusal(session: &Session, server: &McpServer, cwd: &Path) -> Option<String> {
    let dirs: Vec<PathBuf> = server
        .sandbox
        .cwd
        .iter()
        .map(|r| r.path.expand(&session.placeholders))
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    let inside = !cwd.as_os_str().is_empty() && dirs.iter().any(|d| cwd.starts_with(d));
    (!inside).then(|| {
        format!(
            "working directory `{}` is outside what MCP server `{}` may run in",
            cwd.display(),
            server.name
        )
    })
}
