//! The learned profile as TOML, with comments saying where each part came
//! from. With a base profile, only what the base does not already grant is
//! written (the file `extends` the base), and each addition is reported.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use super::argv;
use super::grants::{covered_by, grants, Grants};
use super::Observations;
use crate::profile::{PathRule, Placeholders, Profile};

/// Examples kept per rule.
const EXAMPLES: usize = 3;
/// Port 53: name resolution, which `connect_tcp` already opens (UDP).
const DNS: u16 = 53;

/// A profile to extend.
pub struct Base<'a> {
    pub profile: &'a Profile,
    /// What to write after `extends =`.
    pub extends: String,
}

/// Everything besides the observations that goes into the profile.
pub struct Setting<'a> {
    pub name: &'a str,
    pub command: &'a [String],
    /// The session's values (canonical), to turn paths into placeholders.
    pub values: &'a Placeholders,
    pub base: Option<Base<'a>>,
    /// Names of credential-like variables in cordon's environment.
    pub secrets: &'a [String],
    /// Their values: replaced wherever an observed argument contains one.
    pub redact: &'a [String],
    /// `--pass` variables: the agent's own, passed in the profile.
    pub pass: &'a [String],
}

/// What a learned profile hides from the agent whenever it grants the
/// workspace: the project's secrets and the git files that make git run
/// programs (so the agent cannot plant code a brokered git would run).
/// Optional: a workspace without them is fine.
const WORKSPACE_DENIES: [&str; 3] = [
    "{workspace}/.env",
    "{workspace}/.git/hooks",
    "{workspace}/.git/config",
];

/// The profile text, and one line per thing added (for stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learned {
    pub text: String,
    pub additions: Vec<String>,
}

/// TOML basic string.
fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    if items.is_empty() {
        return "[]".into();
    }
    let mut out = String::from("[\n");
    for i in items {
        let _ = writeln!(out, "    {i},");
    }
    out.push(']');
    out
}

fn ports(p: &BTreeSet<u16>) -> String {
    let v: Vec<String> = p.iter().map(u16::to_string).collect();
    format!("[{}]", v.join(", "))
}

fn templates(rules: &[PathRule]) -> Vec<String> {
    rules.iter().map(|r| r.path.as_str().to_string()).collect()
}

fn redact(arg: &str, values: &[String]) -> String {
    if values
        .iter()
        .any(|v| !v.is_empty() && arg.contains(v.as_str()))
    {
        "<redacted>".into()
    } else {
        arg.to_string()
    }
}

/// Writes the profile for `obs`.
pub fn write_profile(obs: &Observations, s: &Setting<'_>) -> Learned {
    let mut additions = Vec::new();
    let mut g = grants(&obs.agent.read, &obs.agent.write, &obs.agent.exec, s.values);
    // Behind the recording proxy, the connects to the proxy itself are
    // how the hosts below were reached, not ports to grant.
    let behind_proxy = !obs.hosts.is_empty();
    let mut connect: BTreeSet<u16> = obs
        .agent
        .connect
        .iter()
        .copied()
        .filter(|p| *p != DNS && !(behind_proxy && *p == crate::egress::PROXY_PORT))
        .collect();
    let mut bind = obs.agent.bind.clone();
    if let Some(base) = &s.base {
        let fs = &base.profile.filesystem;
        let (r, w, x) = (
            templates(&fs.read),
            templates(&fs.write),
            templates(&fs.exec),
        );
        let any = |t: &str, lists: &[&Vec<String>]| {
            lists.iter().any(|l| l.iter().any(|e| covered_by(t, e)))
        };
        g.read.retain(|t| !any(t, &[&r, &w, &x]));
        g.write.retain(|t| !any(t, &[&w]));
        g.exec.retain(|t| !any(t, &[&x]));
        g.exec_outside(&w.iter().cloned().collect());
        connect.retain(|p| !base.profile.network.connect_tcp.contains(p));
        bind.retain(|p| !base.profile.network.bind_tcp.contains(p));
    }

    let mut out = String::new();
    let _ = writeln!(out, "# Written by `cordon learn` from one observed run of:");
    let _ = writeln!(
        out,
        "#   {}",
        s.command
            .iter()
            .map(|a| redact(a, s.redact))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(
        out,
        "# It grants what that run did, generalised (docs/learn.md); review it,"
    );
    let _ = writeln!(
        out,
        "# then check it with `cordon check` and try it with `cordon run`."
    );
    let _ = writeln!(out, "\n[profile]");
    let _ = writeln!(out, "name = {}", q(s.name));
    if let Some(base) = &s.base {
        let _ = writeln!(out, "extends = {}", q(&base.extends));
        let _ = writeln!(
            out,
            "description = {}",
            q(&format!(
                "{} plus what one observed run also needed",
                base.profile.name
            ))
        );
    } else {
        let _ = writeln!(out, "description = {}", q("learned from an observed run"));
    }

    let _ = writeln!(out, "\n[filesystem]");
    let _ = writeln!(
        out,
        "# Files and trees the run read; the workspace, HOME and TMPDIR are"
    );
    let _ = writeln!(out, "# placeholders, package trees are granted whole.");
    let _ = writeln!(out, "read = {}", list(g.read.iter().map(|t| q(t))));
    let _ = writeln!(out, "write = {}", list(g.write.iter().map(|t| q(t))));
    let _ = writeln!(
        out,
        "# Programs the agent ran itself, and their `#!` programs (cordon grants"
    );
    let _ = writeln!(out, "# the dynamic loader and libraries itself).");
    let _ = writeln!(out, "exec = {}", list(g.exec.iter().map(|t| q(t))));
    let sees_workspace = g
        .read
        .iter()
        .chain(&g.write)
        .any(|t| t == "{workspace}" || t.starts_with("{workspace}/"))
        || s.base.as_ref().is_some_and(|b| {
            let fs = &b.profile.filesystem;
            fs.read
                .iter()
                .chain(&fs.write)
                .any(|r| r.path.as_str() == "{workspace}")
        });
    let denies: Vec<&str> = WORKSPACE_DENIES
        .into_iter()
        .filter(|d| sees_workspace && !g.write.contains(*d) && !g.read.contains(*d))
        .filter(|d| {
            !s.base.as_ref().is_some_and(|b| {
                b.profile
                    .filesystem
                    .deny
                    .iter()
                    .any(|r| r.path.as_str() == *d)
            })
        })
        .collect();
    // Of those, what the merged profile denies (the base's included).
    let denied: Vec<&str> = WORKSPACE_DENIES
        .into_iter()
        .filter(|d| {
            denies.contains(d)
                || s.base.as_ref().is_some_and(|b| {
                    b.profile
                        .filesystem
                        .deny
                        .iter()
                        .any(|r| r.path.as_str() == *d)
                })
        })
        .collect();
    if !denies.is_empty() {
        let _ = writeln!(
            out,
            "# Hidden from the agent always (cordon learn's default): the project's\n# secrets, and the git files that make git run programs."
        );
        let entries = denies
            .iter()
            .map(|d| format!("{{ path = {}, optional = true }}", q(d)));
        let _ = writeln!(out, "deny = {}", list(entries));
        for d in &denies {
            additions.push(format!("[filesystem] deny {d}"));
        }
    }
    for t in &g.left_out {
        let _ = writeln!(out, "# Read by the run, NOT granted: {t}.");
        additions.push(format!("NOT granted: read {t}"));
    }
    for t in &g.exec_in_writable {
        let _ = writeln!(
            out,
            "# NOT granted: the run executed {t}, which lies in a tree it may write;\n# an exec grant there would let the agent run anything it writes. Run it\n# through its interpreter (`sh script`, `python3 script.py`) or move it\n# out of the writable trees."
        );
        additions.push(format!(
            "NOT granted: exec {t} (it lies in a writable tree; run it through its interpreter)"
        ));
    }
    for (list_name, set) in [("read", &g.read), ("write", &g.write), ("exec", &g.exec)] {
        for t in set {
            additions.push(format!("[filesystem] {list_name} {t}"));
        }
    }

    let _ = writeln!(out, "\n[network]");
    if behind_proxy {
        let _ = writeln!(
            out,
            "# Hosts the run reached through cordon's proxy (learn --hosts); a name"
        );
        let _ = writeln!(
            out,
            "# that resolved to internal addresses carries them after `via`. The ports"
        );
        let _ = writeln!(out, "# below are on the sandbox's own loopback.");
        let rules: Vec<String> = obs.hosts.iter().map(host_rule).collect();
        for r in &rules {
            additions.push(format!("[network] allow_hosts {r}"));
        }
        let _ = writeln!(out, "allow_hosts = {}", list(rules.iter().map(|r| q(r))));
    } else {
        let _ = writeln!(
            out,
            "# TCP ports the run connected to and bound. cordon learn sees ports, not"
        );
        let _ = writeln!(
            out,
            "# host names (`cordon learn --hosts` does, for clients that use a proxy)."
        );
    }
    let _ = writeln!(out, "connect_tcp = {}", ports(&connect));
    let _ = writeln!(out, "bind_tcp = {}", ports(&bind));
    for p in &connect {
        additions.push(format!("[network] connect_tcp {p}"));
    }
    for p in &bind {
        additions.push(format!("[network] bind_tcp {p}"));
    }

    let base_tools = s.base.as_ref().map(|b| &b.profile.tools);
    let mut tool_names = Vec::new();
    for (name, run) in &obs.tools {
        if base_tools.is_some_and(|t| t.contains_key(name)) {
            additions.push(format!(
                "tool `{name}` is declared by the base profile; left as it is ({} calls seen)",
                run.calls.len()
            ));
            continue;
        }
        let Ok(path) = std::fs::canonicalize(&run.path) else {
            continue;
        };
        tool_names.push(name.clone());
        additions.push(format!("[tools.{name}] {}", path.display()));
        let calls: Vec<Vec<String>> = run
            .calls
            .iter()
            .map(|c| c.iter().map(|a| redact(a, s.redact)).collect())
            .collect();
        let _ = writeln!(out, "\n[tools.{name}]");
        let _ = writeln!(
            out,
            "# Seen {} time(s); each rule comes from the calls in its examples.",
            calls.len()
        );
        let _ = writeln!(out, "path = {}", q(&path.display().to_string()));
        // A tool cordon ships a grammar for is learned through it: rules
        // on the canonical argv, and exact option values (argv::GrammarRules).
        let through_grammar = crate::profile::shipped_grammar(name)
            .and_then(Result::ok)
            .and_then(|g| argv::grammar_rules(&g, &calls, EXAMPLES));
        let (learned_rules, options) = match through_grammar {
            Some(g) => {
                let _ = writeln!(out, "grammar = {}", q(name));
                (g.rules, g.options)
            }
            None => (argv::rules(&calls, EXAMPLES), Vec::new()),
        };
        let mut rules = Vec::new();
        for (pattern, examples) in learned_rules {
            let pat: Vec<String> = pattern.iter().map(|t| q(t)).collect();
            let ex: Vec<String> = examples
                .iter()
                .map(|e| {
                    format!(
                        "[{}]",
                        e.iter().map(|a| q(a)).collect::<Vec<_>>().join(", ")
                    )
                })
                .collect();
            rules.push(format!(
                "{{ argv = [{}], examples = {{ match = [{}] }} }}",
                pat.join(", "),
                ex.join(", ")
            ));
        }
        let _ = writeln!(out, "allow = {}", list(rules));
        if !s.secrets.is_empty() {
            let _ = writeln!(
                out,
                "# cordon cannot see which tool reads a secret: keep each only where needed."
            );
            let names: Vec<String> = s.secrets.iter().map(|n| q(n)).collect();
            let _ = writeln!(out, "secrets = [{}]", names.join(", "));
        }
        if !options.is_empty() {
            let _ = writeln!(out, "\n[tools.{name}.options]");
            let _ = writeln!(
                out,
                "# The values the run gave these options, exactly: any other is refused."
            );
            for (option, values) in &options {
                let _ = writeln!(
                    out,
                    "{} = {{ allow = {} }}",
                    q(option),
                    list(values.iter().map(|v| q(v)))
                );
            }
        }
        tool_sandbox(&mut out, name, run, s.values, &g, &denied);
    }

    for secret in s.secrets {
        let _ = writeln!(
            out,
            "\n# cordon learn saw `{secret}` in its environment; its value is not"
        );
        let _ = writeln!(
            out,
            "# written anywhere. Replace the source with where it really lives"
        );
        let _ = writeln!(
            out,
            "# (file:PATH, command:ARGV), so the agent's caller need not hold it."
        );
        if tool_names.is_empty() {
            let _ = writeln!(
                out,
                "# No tool was seen to give it to, so the entry is left commented out."
            );
            let _ = writeln!(
                out,
                "# [secrets.{secret}]\n# from = {}",
                q(&format!("env:{secret}"))
            );
        } else {
            let _ = writeln!(
                out,
                "[secrets.{secret}]\nfrom = {}",
                q(&format!("env:{secret}"))
            );
            additions.push(format!(
                "[secrets.{secret}] (placeholder source env:{secret})"
            ));
        }
    }

    let pass: Vec<&String> = s
        .pass
        .iter()
        .filter(|v| {
            !s.base
                .as_ref()
                .is_some_and(|b| b.profile.environment.pass.contains(v))
        })
        .collect();
    if !pass.is_empty() {
        let _ = writeln!(out, "\n[environment]");
        let _ = writeln!(
            out,
            "# The agent's own variables (cordon learn --pass), copied from cordon's\n# environment at each run."
        );
        let _ = writeln!(out, "pass = {}", list(pass.iter().map(|v| q(v))));
        for v in &pass {
            additions.push(format!("[environment] pass {v}"));
        }
    }

    if s.base.is_none() {
        let _ = writeln!(out, "\n[divergence]");
        let _ = writeln!(
            out,
            "# cordon's defaults: an exec outside the profile kills the tree; a refused"
        );
        let _ = writeln!(
            out,
            "# call or connection is answered, and the fourth kills."
        );
        let _ = writeln!(
            out,
            "undeclared_tool = \"kill\"\ndenied_action = \"deny\"\nmax_denials = 3"
        );
    }
    Learned {
        text: out,
        additions,
    }
}

/// The allow_hosts rule for a host seen through the proxy.
fn host_rule(h: &super::HostSeen) -> String {
    let literal = h.host.parse::<std::net::IpAddr>().is_ok();
    let target = if h.host.contains(':') {
        format!("[{}]", h.host)
    } else {
        h.host.clone()
    };
    if h.internal.is_empty() || literal {
        return format!("{target}:{}", h.port);
    }
    let via: Vec<String> = h.internal.iter().map(ToString::to_string).collect();
    format!("{target}:{} via {}", h.port, via.join(", "))
}

/// `[tools.NAME.sandbox]`: what the tool needed beyond cordon's default
/// tool sandbox (the agent's grants, `agent`), if anything.
fn tool_sandbox(
    out: &mut String,
    name: &str,
    run: &super::ToolRun,
    values: &Placeholders,
    agent: &Grants,
    denies: &[&str],
) {
    // A tool that used the git directory (git itself, or a build running
    // it) gets the git files the agent is denied back: it is the broker's
    // checked call, not the agent, that reads them.
    let git_dir = values.workspace.join(".git");
    let uses_git = name == "git"
        || run
            .access
            .read
            .iter()
            .chain(&run.access.write)
            .any(|p| p.starts_with(&git_dir));
    let unmask: Vec<&str> = denies
        .iter()
        .copied()
        .filter(|d| uses_git && d.starts_with("{workspace}/.git/"))
        .collect();
    let mut g: Grants = grants(
        &run.access.read,
        &run.access.write,
        &run.access.exec,
        values,
    );
    let set = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
    let (r, w, x) = (set(&agent.read), set(&agent.write), set(&agent.exec));
    let any =
        |t: &str, lists: &[&Vec<String>]| lists.iter().any(|l| l.iter().any(|e| covered_by(t, e)));
    g.read.retain(|t| !any(t, &[&r, &w, &x]));
    g.write.retain(|t| !any(t, &[&w]));
    g.exec.retain(|t| !any(t, &[&x]));
    let connect: BTreeSet<u16> = run
        .access
        .connect
        .iter()
        .copied()
        .filter(|p| *p != DNS)
        .collect();
    if g.read.is_empty()
        && g.write.is_empty()
        && g.exec.is_empty()
        && connect.is_empty()
        && run.access.bind.is_empty()
        && unmask.is_empty()
    {
        return;
    }
    let _ = writeln!(out, "\n[tools.{name}.sandbox]");
    let _ = writeln!(
        out,
        "# Beyond cordon's default tool sandbox (docs/profiles.md)."
    );
    if !unmask.is_empty() {
        let _ = writeln!(
            out,
            "# The git files the agent may not see; this tool reads them."
        );
        let _ = writeln!(out, "unmask = {}", list(unmask.iter().map(|d| q(d))));
    }
    for (key, set) in [("read", &g.read), ("write", &g.write), ("exec", &g.exec)] {
        if !set.is_empty() {
            let _ = writeln!(out, "{key} = {}", list(set.iter().map(|t| q(t))));
        }
    }
    if !connect.is_empty() {
        let _ = writeln!(out, "connect_tcp = {}", ports(&connect));
    }
    if !run.access.bind.is_empty() {
        let _ = writeln!(out, "bind_tcp = {}", ports(&run.access.bind));
    }
}

/// `path` relative to `from` when it is below it, else as it is.
pub fn relative_to(path: &Path, from: &Path) -> String {
    path.strip_prefix(from)
        .map_or_else(|_| path.display().to_string(), |p| p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::{Access, ToolRun};

    #[test]
    fn a_learned_profile_parses_and_never_holds_a_secret_value() {
        let dir = tempfile::tempdir().unwrap();
        let ws = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::write(ws.join("in.txt"), "x").unwrap();
        let values = Placeholders {
            workspace: ws.clone(),
            home: "/nonexistent-home".into(),
            tmp: "/nonexistent-tmp".into(),
        };
        let mut obs = Observations::default();
        obs.agent.read.insert(ws.join("in.txt"));
        obs.agent.read.insert("/etc/hosts".into());
        obs.agent.read.insert("/no/such/file".into());
        obs.agent.write.insert(ws.join("out.txt"));
        obs.agent.exec.insert("/bin/sh".into());
        obs.agent.connect.extend([8080, 53]);
        obs.tools.insert(
            "git".into(),
            ToolRun {
                path: "/usr/bin/git".into(),
                calls: vec![
                    vec!["commit".into(), "-m".into(), "token=hunter2-secret".into()],
                    vec!["status".into()],
                ],
                access: Access::default(),
            },
        );
        let learned = write_profile(
            &obs,
            &Setting {
                name: "learned",
                command: &["sh".into(), "agent.sh".into()],
                values: &values,
                base: None,
                secrets: &["GIT_TOKEN".into()],
                redact: &["hunter2-secret".into()],
                pass: &["MODEL_API_KEY".into()],
            },
        );
        assert!(!learned.text.contains("hunter2"), "{}", learned.text);
        assert!(learned.text.contains("<redacted>"));
        assert!(learned.text.contains("\"{workspace}\""), "{}", learned.text);
        assert!(!learned.text.contains("/no/such/file"));
        assert!(
            learned.text.contains("connect_tcp = [8080]"),
            "{}",
            learned.text
        );
        assert!(learned.text.contains("[secrets.GIT_TOKEN]"));
        let file = dir.path().join("learned.toml");
        std::fs::write(&file, &learned.text).unwrap();
        let p = crate::profile::load(&file).unwrap_or_else(|e| panic!("{e}\n{}", learned.text));
        assert_eq!(p.tools["git"].allow.len(), 2);
        assert_eq!(p.tools["git"].secrets[0].name, "GIT_TOKEN");
        // The agent's own variable is passed; the workspace's secrets and
        // git's program-running files are hidden.
        assert_eq!(p.environment.pass, ["MODEL_API_KEY"]);
        let denies: Vec<&str> = p.filesystem.deny.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(denies, WORKSPACE_DENIES);
        assert!(p.filesystem.deny.iter().all(|r| r.optional));
        assert!(p
            .filesystem
            .write
            .iter()
            .any(|r| r.path.as_str() == "{workspace}"));
    }
}
