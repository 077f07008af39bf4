//! cordon's default tool sandbox: what a brokered tool process gets when
//! its `[tools.NAME.sandbox]` keeps `inherit_defaults = true` (the default).
//!
//! Enough for a dynamically linked program from /usr to start, resolve
//! users and time, use TLS certificates, and work in the workspace; no
//! network. docs/profiles.md lists it; keep the two in step.

use std::path::Path;
use std::sync::Arc;

use super::{Location, PathRule, PathTemplate, ToolSandbox};

/// The file name of the synthetic location of the defaults' entries.
pub const DEFAULT_TOOL_SANDBOX_FILE: &str = "<cordon default tool sandbox>";

const READ: [(&str, bool); 16] = [
    ("/usr", false),
    ("/lib", false),
    ("/lib64", true),
    ("/etc/ld.so.cache", false),
    ("/etc/localtime", false),
    ("/etc/ssl", true),
    ("/etc/ca-certificates", true),
    ("/etc/resolv.conf", true),
    ("/etc/hosts", false),
    ("/etc/nsswitch.conf", true),
    ("/etc/passwd", false),
    ("/etc/group", false),
    ("/etc/gitconfig", true),
    ("/dev/null", false),
    ("/dev/urandom", false),
    ("{workspace}", false),
];
const WRITE: [(&str, bool); 3] = [
    ("{workspace}", false),
    ("{tmp}", false),
    ("/dev/null", false),
];
const EXEC: [(&str, bool); 5] = [
    ("/usr/bin", false),
    ("/usr/lib", false),
    ("/usr/libexec", true),
    ("/usr/lib64", true),
    ("/lib64", true),
];

/// The default tool sandbox, for the runtime to merge under a tool's own
/// (`inherit_defaults = true`): the tool's `read`/`write`/`exec` and ports
/// are added to these. `cwd` is *not* merged: a tool's `cwd` list is always
/// its own (`["{workspace}"]` when not written), so a profile can narrow it.
/// Entries marked optional are skipped when missing on the host.
pub fn default_tool_sandbox() -> ToolSandbox {
    let file: Arc<Path> = Arc::from(Path::new(DEFAULT_TOOL_SANDBOX_FILE));
    let rules = |entries: &[(&str, bool)]| -> Vec<PathRule> {
        entries
            .iter()
            .enumerate()
            .filter_map(|(i, (path, optional))| {
                let path = PathTemplate::parse(path).ok()?;
                Some(PathRule {
                    path,
                    optional: *optional,
                    origin: Location {
                        file: file.clone(),
                        line: u32::try_from(i + 1).unwrap_or(u32::MAX),
                        column: 1,
                    },
                })
            })
            .collect()
    };
    ToolSandbox {
        unmask: Vec::new(),
        inherit_defaults: true,
        read: rules(&READ),
        write: rules(&WRITE),
        exec: rules(&EXEC),
        cwd: rules(&[("{workspace}", false)]),
        connect_tcp: Vec::new(),
        bind_tcp: Vec::new(),
        allow_hosts: Vec::new(),
        deny_hosts: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_entry_is_a_valid_template() {
        let sb = default_tool_sandbox();
        assert_eq!(sb.read.len(), READ.len());
        assert_eq!(sb.write.len(), WRITE.len());
        assert_eq!(sb.exec.len(), EXEC.len());
        assert_eq!(sb.cwd[0].path.as_str(), "{workspace}");
        assert!(sb.connect_tcp.is_empty() && sb.bind_tcp.is_empty());
        // Required entries exist on any Linux host cordon supports.
        for r in sb.read.iter().chain(&sb.exec) {
            if !r.optional && !r.path.has_placeholder() {
                assert!(Path::new(r.path.as_str()).exists(), "{}", r.path);
            }
        }
    }
}
