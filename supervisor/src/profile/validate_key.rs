//! cordon's identity signing key must be out of reach of every sandbox of
//! a profile that mints tokens (an `identity:` secret): the agent's (with
//! the other secret sources) and the grants each tool and MCP server adds
//! in its own `[tools.NAME.sandbox]` / `[mcp.NAME.sandbox]`. Whoever reads
//! the key can mint any session's identity, and a tool runs whatever
//! arguments the agent gives it (`cat`, `git show`, a script), so a tool
//! that can read the key is the agent reading it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{literal, reaching_grants, Guard};
use crate::profile::layer::Layer;
use crate::profile::{
    Diagnostic, Filesystem, Location, McpServer, PathTemplate, Profile, SecretSource, Tool,
};

/// Where this cordon's signing key is (or would be created).
pub(super) fn key_path() -> Option<PathBuf> {
    crate::identity::key::KeyLocation::for_this_process()
        .ok()
        .map(|l| l.path().to_path_buf())
}

/// The grants each tool and MCP server adds to its sandbox, named as the
/// profile names their tables.
fn own_grants(
    tools: &BTreeMap<String, Tool>,
    mcp: &BTreeMap<String, McpServer>,
) -> Vec<(String, Filesystem)> {
    let fs = |s: &crate::profile::ToolSandbox| Filesystem {
        read: s.read.clone(),
        write: s.write.clone(),
        exec: s.exec.clone(),
        deny: Vec::new(),
    };
    let tools = tools
        .iter()
        .map(|(n, t)| (format!("[tools.{n}.sandbox]"), fs(&t.sandbox)));
    let servers = mcp
        .iter()
        .map(|(n, s)| (format!("[mcp.{n}.sandbox]"), fs(&s.sandbox)));
    tools.chain(servers).collect()
}

/// At check time (grants without placeholders): each identity secret, for
/// each tool or server grant that reaches the key at `key`.
pub(super) fn check_with(merged: &Layer, key: Option<&Path>, diags: &mut Vec<Diagnostic>) {
    let Some(key) = key else { return };
    let identities: Vec<(&String, Location)> = merged
        .secrets
        .iter()
        .filter(|(_, s)| {
            matches!(
                s.spec.as_ref().map(|s| &s.source),
                Some(SecretSource::Identity(_))
            )
        })
        .map(|(n, s)| (n, s.from_at.clone().unwrap_or_else(|| s.origin.clone())))
        .collect();
    let Some((name, at)) = identities.first() else {
        return;
    };
    for (table, fs) in own_grants(&merged.tools, &merged.mcp) {
        for hit in reaching_grants(&fs, key, Guard::Source, &literal) {
            diags.push(Diagnostic {
                location: at.clone(),
                message: format!(
                    "secret `{name}`: {table} could read cordon's identity signing key {} (granted by {} = \"{}\" at {}), and with it mint any session's identity; narrow the grant",
                    key.display(),
                    hit.list,
                    hit.rule.path,
                    hit.rule.origin
                ),
            });
        }
    }
}

/// At session start (placeholders expanded): the identity secrets and the
/// tool or server grants that reach the key at `key`.
pub(super) fn reachable(
    profile: &Profile,
    expand: &dyn Fn(&PathTemplate) -> Option<PathBuf>,
    key: Option<&Path>,
) -> Vec<(String, PathBuf, Location)> {
    let Some(key) = key else { return Vec::new() };
    let Some(name) = profile
        .secrets
        .iter()
        .find(|(_, s)| matches!(s.source, SecretSource::Identity(_)))
        .map(|(n, _)| n)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (_, fs) in own_grants(&profile.tools, &profile.mcp) {
        for hit in reaching_grants(&fs, key, Guard::Source, expand) {
            out.push((name.clone(), key.to_path_buf(), hit.rule.origin.clone()));
        }
    }
    out
}
