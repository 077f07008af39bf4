//! A warning, not an error: a raw secret (`deliver = "raw"`, the value
//! itself in the process) given to a tool whose sandbox can read files
//! the agent can write. Such a tool often runs what it reads there (git a
//! repository's config and hooks, make a Makefile, a test runner the
//! tests), so code the agent wrote runs with the value and can copy it
//! where the agent reads it. cordon ends the call's whole pid namespace
//! with the call and scans what it wrote for the value, but only
//! `deliver = "proxy"` keeps the value out of the tool.
//!
//! Grants are compared as written (pure: `cordon check` runs before any
//! session exists): two paths overlap when one contains the other,
//! `{workspace}` with `{workspace}`, absolute with absolute, and `/`
//! with everything. A tool's `{home}` and `{tmp}` are its call's own
//! directories, never the agent's.

use std::fmt;
use std::path::Path;

use super::{default_tool_sandbox, Delivery, Location, PathRule, Profile, ToolSandbox, ToolSecret};

/// One raw secret that goes to a sandbox that reads what the agent writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRisk {
    /// `tool `git`` or `MCP server `fs``.
    pub who: String,
    pub secret: String,
    pub delivery: Delivery,
    /// Where the tool lists the secret.
    pub origin: Location,
    /// The agent's write grant, and the tool's grant that reaches it.
    pub agent_write: PathRule,
    pub tool_read: PathRule,
}

impl fmt::Display for RawRisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.delivery {
            Delivery::Env => "an environment variable",
            Delivery::File => "a file",
        };
        write!(
            f,
            "{}: warning: secret `{}` goes to {} raw ({how} holding the value), and its sandbox can read `{}` (granted at {}), which the agent can write (`{}` at {}): code the agent puts there that the tool runs or reads (a git config's core.fsmonitor, a hook, a nested repository, a Makefile) can copy the value where the agent reads it. cordon ends the call's whole pid namespace with the call and scans the files it changed there for the value, but that only tells you afterwards; if the tool uses the secret toward an HTTPS service, give [secrets.{}] deliver = \"proxy\" (the tool then holds a placeholder), or narrow the tool's sandbox (inherit_defaults = false)",
            self.origin,
            self.secret,
            self.who,
            self.tool_read.path.as_str(),
            self.tool_read.origin,
            self.agent_write.path.as_str(),
            self.agent_write.origin,
            self.secret,
        )
    }
}

/// Every raw secret of `profile` that goes to a tool (or MCP server)
/// whose sandbox can read what the agent can write.
pub fn raw_risks(profile: &Profile) -> Vec<RawRisk> {
    let tools = profile
        .tools
        .values()
        .map(|t| (format!("tool `{}`", t.name), &t.secrets, &t.sandbox));
    let servers = profile
        .mcp
        .values()
        .map(|m| (format!("MCP server `{}`", m.name), &m.secrets, &m.sandbox));
    let mut out = Vec::new();
    for (who, secrets, sandbox) in tools.chain(servers) {
        let raw: Vec<&ToolSecret> = secrets
            .iter()
            .filter(|s| {
                profile
                    .secrets
                    .get(&s.name)
                    .is_some_and(|spec| spec.proxy.is_none())
            })
            .collect();
        if raw.is_empty() {
            continue;
        }
        let Some((agent_write, tool_read)) = reach(profile, sandbox) else {
            continue;
        };
        out.extend(raw.into_iter().map(|s| RawRisk {
            who: who.clone(),
            secret: s.name.clone(),
            delivery: s.delivery,
            origin: s.origin.clone(),
            agent_write: agent_write.clone(),
            tool_read: tool_read.clone(),
        }));
    }
    out
}

/// The first agent write grant a tool's grant reaches, and that grant.
fn reach(profile: &Profile, own: &ToolSandbox) -> Option<(PathRule, PathRule)> {
    let defaults = own
        .inherit_defaults
        .then(|| default_tool_sandbox(&profile.filesystem));
    let tool: Vec<&PathRule> = defaults
        .iter()
        .chain(std::iter::once(own))
        .flat_map(|s| s.read.iter().chain(&s.write).chain(&s.exec))
        .collect();
    profile
        .filesystem
        .write
        .iter()
        .filter(|w| w.path.as_str() != "/dev/null")
        .find_map(|w| {
            tool.iter()
                .find(|t| overlap(w.path.as_str(), t.path.as_str()))
                .map(|t| (w.clone(), (*t).clone()))
        })
}

/// Whether the agent's `agent` and the tool's `tool` (as written) can
/// name the same files.
fn overlap(agent: &str, tool: &str) -> bool {
    fn base(p: &str) -> &str {
        if p.starts_with('{') {
            p.split('/').next().unwrap_or(p)
        } else {
            "/"
        }
    }
    let (a, t) = (Path::new(agent), Path::new(tool));
    match (base(agent), base(tool)) {
        // Both absolute, or both under the one workspace.
        ("/", "/") | ("{workspace}", "{workspace}") => a.starts_with(t) || t.starts_with(a),
        // The tool reads the whole file system.
        (_, "/") => tool == "/",
        // Different placeholders, or the tool's own {home}/{tmp}.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(tool_extra: &str, secret_extra: &str) -> Profile {
        let text = format!(
            "[profile]\nname = \"p\"\n[filesystem]\nread = [\"/usr\"]\nwrite = [\"{{workspace}}\", \"/dev/null\"]\n\
             [tools.t]\npath = \"/usr/bin/git\"\nallow = [[\"**\"]]\nsecrets = [\"S\"]\n{tool_extra}\n\
             [secrets.S]\nfrom = \"env:S\"\n{secret_extra}\n"
        );
        super::super::load_text(Path::new("p.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_raw_secret_for_a_tool_that_reads_the_workspace_is_a_warning() {
        let risks = raw_risks(&profile("", ""));
        assert_eq!(risks.len(), 1);
        let w = risks[0].to_string();
        assert!(w.starts_with("p.toml:"), "{w}");
        for says in [
            "warning: secret `S` goes to tool `t` raw",
            "can read `{workspace}`",
            "core.fsmonitor",
            "deliver = \"proxy\"",
            "whole pid namespace",
        ] {
            assert!(w.contains(says), "{says}: {w}");
        }
    }

    #[test]
    fn a_proxied_secret_or_a_narrow_sandbox_is_no_warning() {
        let proxied = profile(
            "[tools.t.sandbox]\nallow_hosts = [\"api.test:443\"]",
            "deliver = \"proxy\"\nhosts = [\"api.test:443\"]\nformat = \"Bearer {}\"",
        );
        assert!(raw_risks(&proxied).is_empty());
        let narrow = profile(
            "[tools.t.sandbox]\ninherit_defaults = false\nread = [\"/usr\"]\nwrite = [\"{tmp}\"]",
            "",
        );
        assert!(raw_risks(&narrow).is_empty(), "{:?}", raw_risks(&narrow));
    }

    #[test]
    fn grants_overlap_as_paths() {
        assert!(overlap("{workspace}", "{workspace}/src"));
        assert!(overlap("{workspace}/build", "{workspace}"));
        assert!(!overlap("{workspace}/a", "{workspace}/b"));
        assert!(overlap("/srv/data", "/srv"));
        assert!(!overlap("/srv/data", "/srv/database"));
        assert!(overlap("{workspace}", "/"));
        assert!(!overlap("{workspace}", "/usr"));
        assert!(!overlap("{home}", "{home}"));
        assert!(!overlap("/tmp/x", "{workspace}"));
    }
}
