//! Which programs the agent ran become brokered tools, and which run
//! inside its own sandbox (pure).
//!
//! The agent's own program, interpreters, and anything in its workspace,
//! HOME or TMPDIR run inside the agent's sandbox (an exec grant). Programs
//! that reach outside the machine or change the system (git, curl, package
//! managers, container and cloud tools) become `[tools.NAME]`, and so does
//! any other program outside the interpreter's own tree, except for a
//! shell agent, whose own tree is the system's small programs (cat, mkdir).
//!
//! The agent's own tree includes its install: the `node_modules` its
//! program lies in (an npm CLI's native binary is a sibling package, as
//! Codex's `@openai/codex-linux-x64`), or its package tree (`/opt/X`,
//! `/usr/lib/X`). A CLI's own binaries are the agent, not tools: brokered,
//! they would run in a tool's sandbox without the agent's environment.

use std::path::Path;

/// Where an exec's program runs under `cordon run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// Inside the agent's sandbox: an exec grant.
    Agent,
    /// Through the broker, as `[tools.NAME]`.
    Tool(String),
}

/// Programs that are tools by what they do.
const TOOLS: &[&str] = &[
    "git",
    "gh",
    "curl",
    "wget",
    "ssh",
    "scp",
    "sftp",
    "rsync",
    "nc",
    "ncat",
    "socat",
    "pip",
    "pip3",
    "uv",
    "poetry",
    "npm",
    "npx",
    "yarn",
    "pnpm",
    "cargo",
    "rustup",
    "go",
    "gem",
    "bundle",
    "composer",
    "apt",
    "apt-get",
    "dpkg",
    "dnf",
    "yum",
    "apk",
    "brew",
    "docker",
    "podman",
    "kubectl",
    "helm",
    "terraform",
    "aws",
    "gcloud",
    "az",
    "make",
    "psql",
    "mysql",
    "redis-cli",
    "sqlite3",
    "openssl",
    "gpg",
    "sudo",
    "systemctl",
];

/// Interpreters and shells: the agent's own runtime.
const INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "busybox", "env", "python", "python3",
    "node", "nodejs", "deno", "bun", "perl", "ruby", "php", "lua", "java", "Rscript",
];

const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "busybox",
];

/// The name a program is called by: argv[0]'s last component when it is
/// a plausible command name, else the file's name.
pub fn program_name(target: &Path, argv0: Option<&str>) -> String {
    let from_argv = argv0
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .filter(|n| valid_tool_name(n));
    let from_path = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| valid_tool_name(n));
    from_argv
        .map(str::to_string)
        .or(from_path)
        .unwrap_or_else(|| "tool".to_string())
}

/// Letters, digits, `-`, `_`, `.`, `+`; 1-64 characters; not starting
/// with `.` or `-`.
pub fn valid_tool_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && !n.starts_with(['.', '-'])
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
}

fn is_interpreter(name: &str) -> bool {
    // python3.11, perl5.36...
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    INTERPRETERS.contains(&name) || INTERPRETERS.contains(&stem)
}

fn is_shell(program: &Path) -> bool {
    program
        .file_name()
        .is_some_and(|n| SHELLS.contains(&n.to_string_lossy().as_ref()))
}

/// Classifies an exec of `target` (called as `argv0`) by an agent whose
/// first program was `first` (None: this is the first).
pub fn classify(
    target: &Path,
    argv0: Option<&str>,
    first: Option<&Path>,
    agent_trees: &[impl AsRef<Path>],
) -> Program {
    let Some(first) = first else {
        return Program::Agent;
    };
    if agent_trees.iter().any(|t| target.starts_with(t)) {
        return Program::Agent;
    }
    let name = program_name(target, argv0);
    if TOOLS.contains(&name.as_str()) {
        return Program::Tool(name);
    }
    if is_interpreter(&name) || is_shell(first) {
        return Program::Agent;
    }
    // The interpreter's own tree: beside it (/usr/lib/python3.11/...).
    if let Some(dir) = first.parent().filter(|d| *d != Path::new("/usr/bin")) {
        if target.starts_with(dir) {
            return Program::Agent;
        }
    }
    if own_install(first).is_some_and(|tree| target.starts_with(tree)) {
        return Program::Agent;
    }
    Program::Tool(name)
}

/// Where the agent's program is installed: the nearest `node_modules`
/// above it, else its package tree.
fn own_install(first: &Path) -> Option<std::path::PathBuf> {
    first
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "node_modules"))
        .map(Path::to_path_buf)
        .or_else(|| super::grants::package_tree(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TREES: [&str; 1] = ["/work/ws"];

    fn c(target: &str, argv0: &str, first: &str) -> Program {
        classify(
            Path::new(target),
            Some(argv0),
            Some(Path::new(first)),
            &TREES,
        )
    }

    #[test]
    fn tools_by_kind_and_by_place() {
        assert_eq!(
            c("/usr/bin/git", "git", "/usr/bin/sh"),
            Program::Tool("git".into())
        );
        assert_eq!(
            c("/usr/bin/curl", "/usr/bin/curl", "/usr/bin/python3"),
            Program::Tool("curl".into())
        );
        // A shell agent's small programs run in its sandbox.
        assert_eq!(
            c("/usr/bin/mkdir", "mkdir", "/usr/bin/dash"),
            Program::Agent
        );
        // A Python agent running another program: a tool.
        assert_eq!(
            c("/usr/bin/uname", "uname", "/usr/bin/python3"),
            Program::Tool("uname".into())
        );
        // Interpreters, and the workspace's own programs, stay inside.
        assert_eq!(
            c("/usr/bin/python3.11", "python3", "/usr/bin/sh"),
            Program::Agent
        );
        assert_eq!(
            c("/work/ws/helper.sh", "./helper.sh", "/usr/bin/python3"),
            Program::Agent
        );
        // An npm CLI's native binary (a sibling package) and a helper of
        // an /opt install are the agent's own.
        let codex = "/p/node_modules/@openai/codex/bin/codex.js";
        assert_eq!(
            c(
                "/p/node_modules/@openai/codex-linux-x64/vendor/bin/codex",
                "codex",
                codex
            ),
            Program::Agent
        );
        assert_eq!(
            c("/opt/tool/libexec/helper", "helper", "/opt/tool/bin/tool"),
            Program::Agent
        );
        // ...but a tool by kind stays one, even inside the install.
        assert_eq!(
            c("/p/node_modules/.bin/git", "git", codex),
            Program::Tool("git".into())
        );
        assert_eq!(
            c("/usr/bin/uname", "uname", codex),
            Program::Tool("uname".into())
        );
        assert_eq!(
            classify(Path::new("/usr/bin/git"), Some("git"), None, &TREES),
            Program::Agent,
            "the first program is the agent"
        );
    }

    #[test]
    fn names_come_from_argv0_when_plausible() {
        assert_eq!(
            program_name(Path::new("/usr/bin/python3.11"), Some("python3")),
            "python3"
        );
        assert_eq!(
            program_name(Path::new("/usr/bin/git"), Some("-bash")),
            "git"
        );
        assert_eq!(program_name(Path::new("/x/y z"), Some("")), "tool");
        assert!(!valid_tool_name("a/b") && !valid_tool_name(".x") && valid_tool_name("g++"));
    }
}
