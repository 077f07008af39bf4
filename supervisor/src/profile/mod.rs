//! Capability profiles: the TOML a developer writes, parsed into plain data.
//!
//! This module is pure: it reads files and checks them, it never touches the
//! kernel. `parse` walks the TOML tree by hand (instead of serde) so that one
//! pass can report *every* mistake of a file with its line and column, and
//! `validate` holds the cross-field rules. The sandbox turns a [`Profile`]
//! into kernel objects.

mod approval;
mod deliver;
mod diagnostic;
mod extends;
pub mod find;
mod grammar;
pub mod hosts;
mod identity;
mod layer;
mod mcp;
mod parse;
mod paths;
mod policy;
mod raw_risk;
mod remove;
mod secrets;
mod sections;
mod subset;
mod subset_mcp;
mod tool_defaults;
mod tools;
mod validate;
mod validate_proxy;
pub(crate) mod walk;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use deliver::DEFAULT_HEADER;
pub use diagnostic::{Diagnostic, Location, ProfileError};
pub use find::{find, FindError};
pub use grammar::{shipped_grammar, SHIPPED_GRAMMARS};
pub use paths::{ExpandError, PathTemplate, Placeholders};
pub use secrets::is_secret_name;
pub use subset::{pattern_within, widenings, Widening};
pub use tool_defaults::{default_tool_sandbox, DEFAULT_TOOL_SANDBOX_FILE};
pub use validate::{exec_on_writable_message, secret_source_reachable};

pub use hosts::HostRule;
pub use mcp::{
    with_example_workspace, DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_MESSAGE, EXAMPLE_WORKSPACE,
};
pub use policy::file_name as policy_file_name;
pub use raw_risk::{raw_risks, RawRisk};
/// Loads a sub-agent's profile from its text (`name` is for messages);
/// `extends` is refused.
pub fn load_text(name: &Path, text: &str) -> Result<Profile, ProfileError> {
    parse::load_text(name, text)
}

/// Loads a profile file, follows `extends`, and checks it.
///
/// Every problem found is returned, not just the first.
pub fn load(path: &Path) -> Result<Profile, ProfileError> {
    parse::load_file(path)
}

/// A fully parsed and validated profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The file this profile was loaded from (the child, when `extends` is used).
    pub source: PathBuf,
    pub name: String,
    pub description: Option<String>,
    /// Run even when the kernel cannot enforce everything, warning loudly.
    pub best_effort: bool,
    /// How long a stopping agent gets between the forwarded signal and SIGKILL.
    pub stop_grace: Duration,
    pub filesystem: Filesystem,
    pub network: Network,
    pub syscalls: Syscalls,
    pub divergence: Divergence,
    pub environment: Environment,
    pub limits: Limits,
    /// `[tools.NAME]`: brokered tools, by name.
    pub tools: BTreeMap<String, Tool>,
    /// `[secrets.NAME]`, by name.
    pub secrets: BTreeMap<String, SecretSpec>,
    /// `[audit]`: where decisions are recorded.
    pub audit: Audit,
    /// `[approval]`: how calls that need a human yes are asked and answered.
    pub approval: Approval,
    /// `[mcp.NAME]`: MCP servers the agent reaches through cordon, by name.
    pub mcp: BTreeMap<String, McpServer>,
    /// `[policy]`: Cedar policies on the decision path.
    pub policy: PolicyConfig,
}

/// `[policy]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyConfig {
    /// `cedar = "FILE"`: the policy file, read and validated at load.
    pub cedar: Option<CedarFile>,
    /// What a request no policy speaks to gets.
    pub unmatched: crate::policy::cedar::Unmatched,
}

/// A Cedar policy file as loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CedarFile {
    pub path: PathBuf,
    pub text: String,
    /// The `cedar = ...` value.
    pub origin: Location,
}

impl Profile {
    /// True when some call could need a human yes: an `approve` rule, an
    /// `allow` rule with a `risk` that is not `pre_approved`, or a Cedar
    /// policy file that names `@approve` (read as text: a mention in a
    /// comment only makes cordon ready to ask, which costs nothing).
    pub fn asks_for_approval(&self) -> bool {
        let cedar = self
            .policy
            .cedar
            .as_ref()
            .is_some_and(|c| c.text.contains("@approve"));
        let tools = self.tools.values().any(|t| {
            !t.approve.is_empty() || t.allow.iter().any(|r| r.risk.is_some() && !r.pre_approved)
        });
        let mcp = self.mcp.values().flat_map(|s| s.tools.values()).any(|t| {
            !t.approve.is_empty() || t.allow.iter().any(|r| r.risk.is_some() && !r.pre_approved)
        });
        tools || mcp || cedar
    }
}

/// `[tools.NAME]`: a tool the agent may only run through the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// The name the agent calls it by (the key after `tools.`).
    pub name: String,
    /// The real binary: absolute, existing, executable.
    pub path: PathBuf,
    pub allow: Vec<ArgvRule>,
    /// Calls that need a human yes, per call (see [`Approval`]).
    pub approve: Vec<ArgvRule>,
    pub deny: Vec<ArgvRule>,
    /// Longest a call may run; it is killed after that.
    pub timeout: Option<Duration>,
    /// Calls of this tool allowed per session.
    pub max_calls: Option<u32>,
    /// Names of environment variables the agent's call may pass through.
    pub env: Vec<String>,
    /// Secrets injected into each call of this tool (names of
    /// `[secrets.NAME]` entries, and how each is delivered).
    pub secrets: Vec<ToolSecret>,
    /// The sandbox the tool process runs in.
    pub sandbox: ToolSandbox,
    /// `grammar = ...`: the argv is canonicalised with it before rules are
    /// matched. None: rules match the argv as written.
    pub grammar: Option<ToolGrammar>,
    /// Where `[tools.NAME]` was written.
    pub origin: Location,
}

/// A tool's option grammar and what the profile says about options.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolGrammar {
    pub grammar: std::sync::Arc<crate::policy::grammar::Grammar>,
    /// The shipped grammar's name (`grammar = "git"`); None for one
    /// written in the profile.
    pub shipped: Option<String>,
    /// `unknown = "deny" | "approve"`: what happens to an argv the grammar
    /// cannot classify.
    pub unknown: Unknown,
    /// Where `unknown` was written (else where `grammar` was).
    pub unknown_origin: Location,
    /// `[tools.NAME.options]`: value rules and neutral flags.
    pub options: Vec<OptionRule>,
    /// Where `grammar` was written.
    pub origin: Location,
}

/// What happens to an argv a tool's grammar cannot classify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    Deny,
    /// A person decides, seeing the exact argv; deny rules still apply.
    Approve,
}

impl Unknown {
    pub const ALL: [(&'static str, Unknown); 2] =
        [("deny", Unknown::Deny), ("approve", Unknown::Approve)];

    pub fn as_str(self) -> &'static str {
        match self {
            Unknown::Deny => "deny",
            Unknown::Approve => "approve",
        }
    }
}

/// One entry of `[tools.NAME.options]`: `"-c" = { allow = [...] }`.
///
/// An occurrence of the option whose value an `allow` glob matches (or of
/// a `neutral` flag) is accepted and left out of the argv the rules see;
/// an `approve` glob asks a person; any other value is denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionRule {
    /// `""` for the main command's options, else the subcommand (`push`).
    pub scope: String,
    /// The option's canonical spelling (`-c`, `--no-optional-locks`).
    pub option: String,
    pub allow: Vec<String>,
    pub approve: Vec<String>,
    pub neutral: bool,
    pub origin: Location,
}

impl OptionRule {
    /// `"push --push-option"`, as written as the key.
    pub fn key(&self) -> String {
        if self.scope.is_empty() {
            self.option.clone()
        } else {
            format!("{} {}", self.scope, self.option)
        }
    }
}

/// `[mcp.NAME]`: a stdio MCP server that cordon runs under its own
/// sandbox and relays to, deciding each `tools/call` (see docs/mcp.md).
#[derive(Debug, Clone, PartialEq)]
pub struct McpServer {
    /// The name the agent reaches it by (`cordon-shim mcp NAME`).
    pub name: String,
    /// The server's argv: an absolute executable, then its arguments
    /// (which may use `{workspace}`).
    pub command: Vec<String>,
    /// Secrets the server process holds for as long as it runs.
    pub secrets: Vec<ToolSecret>,
    /// Names of the agent's variables the server may see.
    pub env: Vec<String>,
    pub sandbox: ToolSandbox,
    /// Longest a `tools/call` may wait for the server's answer.
    pub call_timeout: Duration,
    /// `tools/call`s allowed per session.
    pub max_calls: Option<u32>,
    /// Largest JSON-RPC message either side may send, in bytes.
    pub max_message: usize,
    /// `[mcp.NAME.tools.TOOL]`: the tools the agent may call, by name.
    pub tools: BTreeMap<String, McpTool>,
    pub origin: Location,
}

/// `[mcp.NAME.tools.TOOL]`: argument rules of one MCP tool.
#[derive(Debug, Clone, PartialEq)]
pub struct McpTool {
    pub name: String,
    pub allow: Vec<ArgRule>,
    pub approve: Vec<ArgRule>,
    pub deny: Vec<ArgRule>,
    pub origin: Location,
}

/// One rule over a `tools/call`'s arguments: every listed JSON path must
/// match one of its globs (see docs/mcp.md for `[*]` and path values).
#[derive(Debug, Clone, PartialEq)]
pub struct ArgRule {
    pub args: Vec<ArgMatch>,
    /// Example argument objects the rule must / must not match; checked
    /// on every load.
    pub examples_match: Vec<serde_json::Value>,
    pub examples_no_match: Vec<serde_json::Value>,
    pub risk: Option<Risk>,
    pub pre_approved: bool,
    pub origin: Location,
}

/// `PATH = "GLOB"` or `PATH = ["GLOB", ...]` of an argument rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgMatch {
    /// The JSON path as written, e.g. `edits[*].oldText`.
    pub path: String,
    /// Globs (the argv token language); the value must match one.
    pub globs: Vec<String>,
    pub origin: Location,
}

/// A secret a tool receives, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSecret {
    pub name: String,
    pub delivery: Delivery,
    pub origin: Location,
}

/// How a secret reaches the tool process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// An environment variable named after the secret.
    Env,
    /// A 0400 file in a private directory of the call; the variable named
    /// after the secret holds its path.
    File,
}

/// `[secrets.NAME]`: where a secret comes from and how long it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub name: String,
    pub source: SecretSource,
    /// Run after each call that used the secret (the value, or the lease a
    /// command printed, on its stdin and in `CORDON_SECRET_VALUE`; never in
    /// argv).
    pub revoke: Option<Vec<String>>,
    /// How long a fetched value may live; a call still running at expiry is
    /// killed. None: for the length of the call.
    pub ttl: Option<Duration>,
    /// Calls that may receive the secret per session.
    pub max_uses: Option<u32>,
    /// `cordon-shim secret NAME` may print the value to the agent.
    pub expose: bool,
    /// Reuse a fetched value within its `ttl` instead of fetching per call.
    pub cache: bool,
    /// How long a provider may take before the call is refused.
    pub fetch_timeout: Duration,
    /// `deliver = "proxy"`: processes get a placeholder, and cordon's
    /// egress proxy puts the value into requests to the secret's hosts.
    /// `None`: `deliver = "raw"`, the value itself in the tool process
    /// (environment or file, per tool).
    pub proxy: Option<ProxyDelivery>,
    pub origin: Location,
}

/// `deliver = "proxy"`: where and how the egress proxy injects a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyDelivery {
    /// `hosts`: exact `NAME:PORT` rules (no wildcard, no `via`); the value
    /// is sent to these and nowhere else.
    pub hosts: Vec<HostRule>,
    /// The request header that carries the secret, as written (HTTP
    /// header names are compared without regard to case).
    pub header: String,
    pub form: Presentation,
}

impl ProxyDelivery {
    /// The hosts as (lower-case name, port).
    pub fn targets(&self) -> Vec<(String, u16)> {
        use crate::profile::hosts::{HostPattern, PortPattern};
        self.hosts
            .iter()
            .filter_map(|r| match (&r.host, r.port) {
                (HostPattern::Name(n), PortPattern::Is(p)) => Some((n.clone(), p)),
                _ => None,
            })
            .collect()
    }
}

/// How a proxy-delivered secret appears in its header. The process
/// writes the header with its placeholder in the secret's place; the
/// proxy swaps it only when the whole value has exactly this shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presentation {
    /// `format = "Bearer {}"`: the header's value is `before`, the
    /// secret, `after` (an authentication scheme word before a space is
    /// matched without regard to case, as HTTP says).
    Format { before: String, after: String },
    /// `basic = { user = "x-access-token" }`: `Authorization: Basic`
    /// with base64 of `user:secret` (what git and curl send for
    /// `https://user:secret@host` URLs and credential helpers).
    Basic { user: String },
}

/// The `from = "..."` of a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `env:VAR`: cordon's own environment (never the agent's).
    Env(String),
    /// `file:PATH`.
    File(PathBuf),
    /// `credential:NAME`: `$CREDENTIALS_DIRECTORY/NAME` (systemd).
    Credential(String),
    /// `command:ARGV`: stdout of a command (trailing newline removed).
    Command(Vec<String>),
    /// `identity:jwt?aud=...`: a token minted with cordon's workload
    /// identity, valid for the secret's `ttl`.
    Identity(IdentitySource),
}

/// What an `identity:` secret mints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySource {
    /// `aud` of the token (one or more).
    pub audiences: Vec<String>,
    pub bind: IdentityBind,
}

/// What an identity token is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityBind {
    /// Minted per call, naming the call (id, tool, argument digest).
    Call,
    /// Names the session only; may be cached for its `ttl`.
    Session,
}

/// One argv pattern of a tool's allow/approve/deny list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgvRule {
    /// The tokens as written, e.g. `["push", "**", "--force", "**"]`.
    pub tokens: Vec<String>,
    /// Example argvs (after the tool name) the rule must match / must not
    /// match; checked on every load.
    pub examples_match: Vec<Vec<String>>,
    pub examples_no_match: Vec<Vec<String>>,
    /// `risk = "delete"|...`: a call this rule allows still needs a human
    /// yes, unless `pre_approved`.
    pub risk: Option<Risk>,
    /// The operator approved this risky rule in advance, in the profile.
    pub pre_approved: bool,
    pub origin: Location,
}

/// Why a rule's calls are sensitive: each implies approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Risk {
    /// Deletes or overwrites what cannot be restored.
    Delete,
    /// Spends or moves money.
    Money,
    /// Shares data outside (publish, send, upload).
    Share,
    /// Grants or widens someone's privileges.
    Privilege,
}

impl Risk {
    pub const ALL: [(&'static str, Risk); 4] = [
        ("delete", Risk::Delete),
        ("money", Risk::Money),
        ("share", Risk::Share),
        ("privilege", Risk::Privilege),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Delete => "delete",
            Risk::Money => "money",
            Risk::Share => "share",
            Risk::Privilege => "privilege",
        }
    }
}

/// `[approval]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// How long a call waits for an answer; then it is denied.
    pub timeout: Duration,
    /// `approver = "command:ARGV"`: a hook asked for each request.
    pub approver: Option<Vec<String>>,
    /// Ask on cordon's terminal, when that is safe (see docs/profiles.md).
    pub prompt: bool,
    /// Requests waiting at once; more are over the limit.
    pub max_pending: u32,
    /// Requests put to approvers per minute; more are over the limit.
    pub max_per_minute: u32,
    /// Beyond the limit: deny the request, or kill the session.
    pub on_limit: DivergenceAction,
    /// The agent tried to answer its own request (control socket, forged
    /// frame): kill the session, or only refuse.
    pub self_approval: DivergenceAction,
}

/// Default `[approval] timeout`.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(300);

impl Default for Approval {
    fn default() -> Self {
        Approval {
            timeout: DEFAULT_APPROVAL_TIMEOUT,
            approver: None,
            prompt: true,
            max_pending: 4,
            max_per_minute: 10,
            on_limit: DivergenceAction::Deny,
            self_approval: DivergenceAction::Kill,
        }
    }
}

/// `[tools.NAME.sandbox]`: filesystem and network of the tool process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolSandbox {
    /// Start from cordon's default tool sandbox (documented in
    /// docs/profiles.md) and add these; `false` starts from nothing.
    pub inherit_defaults: bool,
    pub read: Vec<PathRule>,
    pub write: Vec<PathRule>,
    pub exec: Vec<PathRule>,
    /// Directories the call's working directory must lie in (default:
    /// `{workspace}`).
    pub cwd: Vec<PathRule>,
    /// Entries of the profile's `[filesystem] deny` this tool may see
    /// (written exactly as there). Every other deny entry is masked in the
    /// tool's sandbox too, so a tool cannot be the agent's way around one.
    pub unmask: Vec<PathRule>,
    pub connect_tcp: Vec<u16>,
    pub bind_tcp: Vec<u16>,
    /// Host rules for the tool's own egress proxy, as in `[network]`.
    pub allow_hosts: Vec<HostRule>,
    pub deny_hosts: Vec<HostRule>,
    /// Pathname Unix sockets the tool may connect and send to.
    pub unix: Vec<PathRule>,
}

impl ToolSandbox {
    /// The tool's network grants, as a [`Network`].
    pub fn network(&self) -> Network {
        Network {
            connect_tcp: self.connect_tcp.clone(),
            bind_tcp: self.bind_tcp.clone(),
            allow_hosts: self.allow_hosts.clone(),
            deny_hosts: self.deny_hosts.clone(),
            unix: self.unix.clone(),
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// The hash-chained JSONL file; `None`: cordon's default location.
    pub path: Option<PathTemplate>,
}

/// One path entry of `[filesystem]`, as written (placeholders unexpanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRule {
    pub path: PathTemplate,
    /// A missing path is skipped instead of being an error.
    pub optional: bool,
    /// Where the entry was written, so run-time errors can point at it.
    pub origin: Location,
}

/// `[filesystem]`: Landlock grants plus the masked `deny` paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filesystem {
    pub read: Vec<PathRule>,
    /// Write implies read.
    pub write: Vec<PathRule>,
    /// Exec implies read.
    pub exec: Vec<PathRule>,
    /// Hidden from the agent even inside a granted tree.
    pub deny: Vec<PathRule>,
}

/// `[network]`: Landlock TCP port rules, and host rules decided per
/// connection by cordon's egress proxy. Everything else is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    /// Without host rules: any host on these ports. With them: ports on
    /// the sandbox's own loopback only.
    pub connect_tcp: Vec<u16>,
    pub bind_tcp: Vec<u16>,
    /// `HOST:PORT` rules the proxy allows (see `egress::rules`).
    pub allow_hosts: Vec<HostRule>,
    /// Rules the proxy refuses, whatever allows them.
    pub deny_hosts: Vec<HostRule>,
    /// Pathname Unix sockets (or trees of them) the sandbox may connect
    /// and send to, besides those in its write grants (its own) and the
    /// session's broker. Every other one is refused.
    pub unix: Vec<PathRule>,
}

impl Network {
    /// Host rules put the process in its own network namespace, with the
    /// proxy as its only way out.
    pub fn has_host_rules(&self) -> bool {
        !self.allow_hosts.is_empty() || !self.deny_hosts.is_empty()
    }
}

/// `[syscalls]`: extra syscalls denied on top of cordon's default deny-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syscalls {
    pub deny: Vec<SyscallRule>,
    pub on_violation: OnViolation,
}

impl Default for Syscalls {
    fn default() -> Self {
        Syscalls {
            deny: Vec::new(),
            on_violation: OnViolation::Kill,
        }
    }
}

/// A syscall named in `[syscalls] deny`, resolved for this architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallRule {
    pub name: String,
    pub number: u32,
    pub origin: Location,
}

/// What happens when the agent makes a denied syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnViolation {
    /// Kill the agent's whole tree; `cordon run` exits 86.
    Kill,
    /// Fail the syscall with EPERM and report it.
    Deny,
}

/// `[divergence]`: when leaving the profile becomes a kill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    pub undeclared_tool: DivergenceAction,
    pub denied_action: DivergenceAction,
    /// With `denied_action = "deny"`, the number of refusals tolerated
    /// before the session is killed.
    pub max_denials: u32,
    /// A sub-agent of this session diverged: `Deny` kills only the
    /// sub-agent; `Kill` kills this session too.
    pub sub_agent: DivergenceAction,
    /// Connections to these hosts are refused as the host rules say, and
    /// recorded, but never counted toward `max_denials`: what a CLI sends
    /// that the agent cannot help (telemetry, update checks).
    pub tolerated_hosts: Vec<HostRule>,
    /// Execs of these files (or trees) are refused with EACCES and
    /// recorded, never divergence, whatever `undeclared_tool` says: what a
    /// CLI only probes for at start.
    pub tolerated_execs: Vec<PathRule>,
}

impl Default for Divergence {
    fn default() -> Self {
        Divergence {
            undeclared_tool: DivergenceAction::Kill,
            denied_action: DivergenceAction::Deny,
            max_denials: 3,
            sub_agent: DivergenceAction::Deny,
            tolerated_hosts: Vec::new(),
            tolerated_execs: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DivergenceAction {
    Kill,
    Deny,
}

/// `[environment]`: the agent starts from an empty environment plus these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// Names copied from cordon's own environment when set there.
    pub pass: Vec<String>,
    /// Fixed values; placeholders are expanded.
    pub set: BTreeMap<String, String>,
    /// `secrets`: proxy-delivered secrets whose placeholder the agent
    /// itself holds, in the variable named after each (its own API key,
    /// say). Only `deliver = "proxy"` secrets: the agent never holds a
    /// value.
    pub secrets: Vec<String>,
    /// `home`: a new, empty HOME per session, or one kept per profile.
    pub home: HomeMode,
}

/// `[environment] home`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HomeMode {
    /// A new, empty HOME for each session, removed at its end.
    #[default]
    Fresh,
    /// The profile's own HOME, kept across its sessions (for CLIs that
    /// keep settings and state there): `STATE/homes/NAME`, mode 0700, one
    /// session at a time. Never a sub-agent's.
    Persistent,
}

/// `[limits]`: resource limits (soft = hard) applied to the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// RLIMIT_NOFILE: open file descriptors.
    pub nofile: Option<u64>,
    /// RLIMIT_NPROC: processes of the agent's user.
    pub nproc: Option<u64>,
    /// RLIMIT_FSIZE: largest file, bytes.
    pub fsize: Option<u64>,
    /// RLIMIT_AS: address space, bytes.
    pub address_space: Option<u64>,
    /// RLIMIT_CPU: CPU seconds.
    pub cpu: Option<u64>,
    /// RLIMIT_CORE: core file size, bytes. Defaults to 0.
    pub core: Option<u64>,
}

/// The default grace period between a forwarded stop signal and SIGKILL.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(5);
