//! cordon's default tool sandbox: what a brokered tool process gets when
//! its `[tools.NAME.sandbox]` keeps `inherit_defaults = true` (the default).
//!
//! A tool reads and executes no more than the agent may, plus its own
//! binary (and what the loader needs for it, `sandbox::loader`): the
//! broker protects a tool's rights (its secrets, its sandbox, its
//! network, its audit), so a tool's default sandbox must not be wider
//! than the agent's, or an allowed call (`grep -r`, `cat` through a tool)
//! would read for the agent what it cannot read itself. It writes what
//! the agent may write, its own TMPDIR, /dev/null, and the workspace when
//! the agent may read it (changing the workspace is what brokered tools
//! are for: `git commit` for an agent that may only read). Whatever more a
//! tool needs (git's helpers in /usr/lib/git-core, a compiler for make)
//! its table says explicitly. docs/profiles.md describes it; keep the two
//! in step.

use std::path::Path;
use std::sync::Arc;

use super::{Filesystem, Location, PathRule, PathTemplate, ToolSandbox};

/// The file name of the synthetic location of cordon's own entries in a
/// tool's sandbox.
pub const DEFAULT_TOOL_SANDBOX_FILE: &str = "<cordon default tool sandbox>";

/// The default tool sandbox for a session whose agent has `agent`'s grants:
/// the same `read`, `write` and `exec` (their placeholders expand to the
/// call's own HOME and TMPDIR), `cwd` the workspace, no network. The
/// tool's own entries are added to these. `cwd` is *not* merged: a tool's
/// `cwd` list is always its own (`["{workspace}"]` when not written), so a
/// profile can narrow it.
pub fn default_tool_sandbox(agent: &Filesystem) -> ToolSandbox {
    let file: Arc<Path> = Arc::from(Path::new(DEFAULT_TOOL_SANDBOX_FILE));
    let ours = |line: u32, path: &str| -> Option<PathRule> {
        Some(PathRule {
            path: PathTemplate::parse(path).ok()?,
            optional: false,
            origin: Location {
                file: file.clone(),
                line,
                column: 1,
            },
        })
    };
    let workspace_visible = agent
        .read
        .iter()
        .chain(&agent.write)
        .any(|r| r.path.as_str().trim_end_matches('/') == "{workspace}");
    let mut write = agent.write.clone();
    let extra = [
        (1, "{tmp}", true),
        (2, "/dev/null", true),
        (3, "{workspace}", workspace_visible),
    ];
    for (line, path, wanted) in extra {
        let already = write
            .iter()
            .any(|r| r.path.as_str().trim_end_matches('/') == path);
        if wanted && !already {
            write.extend(ours(line, path));
        }
    }
    ToolSandbox {
        unmask: Vec::new(),
        inherit_defaults: true,
        read: agent.read.clone(),
        write,
        exec: agent.exec.clone(),
        cwd: Vec::new(),
        connect_tcp: Vec::new(),
        bind_tcp: Vec::new(),
        allow_hosts: Vec::new(),
        deny_hosts: Vec::new(),
        unix: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Location, PathTemplate};
    use std::path::Path;

    #[test]
    fn the_default_is_the_agents_grants_and_nothing_more() {
        let rule = |p: &str| PathRule {
            path: PathTemplate::parse(p).unwrap(),
            optional: false,
            origin: Location::whole_file(Path::new("a.toml")),
        };
        let agent = Filesystem {
            read: vec![rule("/usr/lib/python3")],
            write: vec![rule("{workspace}")],
            exec: vec![rule("/usr/bin/python3")],
            deny: vec![rule("{workspace}/.env")],
        };
        let sb = default_tool_sandbox(&agent);
        assert_eq!(sb.read, agent.read);
        assert_eq!(sb.exec, agent.exec);
        let writes: Vec<&str> = sb.write.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(writes, ["{workspace}", "{tmp}", "/dev/null"]);
        // A workspace the agent cannot see is not the tool's either.
        let blind = Filesystem {
            read: vec![rule("/usr/lib/python3")],
            ..agent.clone()
        };
        let blind = Filesystem {
            write: vec![],
            ..blind
        };
        let writes: Vec<String> = default_tool_sandbox(&blind)
            .write
            .iter()
            .map(|r| r.path.as_str().to_string())
            .collect();
        assert_eq!(writes, ["{tmp}", "/dev/null"]);
        // Denies are the runtime's to apply (minus `unmask`), never widened.
        assert!(sb.connect_tcp.is_empty() && sb.allow_hosts.is_empty());
    }
}
