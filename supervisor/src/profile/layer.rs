//! One file's worth of profile settings, before `extends` is resolved.
//!
//! Unlike [`Profile`], every scalar is an `Option` (so a child can tell
//! "not set" from "set to the default") and every list entry keeps its
//! location (so per-file rules can point at it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::remove::{apply, Removal};
use super::{
    Approval, Audit, Diagnostic, Divergence, DivergenceAction, Environment, Filesystem, HomeMode,
    HostRule, Limits, Location, McpServer, Network, OnViolation, PathRule, PathTemplate,
    PolicyConfig, Profile, SecretSpec, SyscallRule, Syscalls, Tool, DEFAULT_STOP_GRACE,
};

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Located<T> {
    pub value: T,
    pub origin: Location,
}

/// A `[secrets.NAME]` as one file wrote it.
#[derive(Debug, Clone)]
pub(super) struct LayerSecret {
    /// `None` when a value of the table was wrong (already reported); the
    /// name still counts as declared, so tools naming it get no second error.
    pub spec: Option<SecretSpec>,
    /// The `[secrets.NAME]` table.
    pub origin: Location,
    /// The `from` value, where problems with the source are reported.
    pub from_at: Option<Location>,
    /// The `revoke` value.
    pub revoke_at: Option<Location>,
}

#[derive(Debug, Clone)]
pub(super) struct Layer {
    pub file: Arc<Path>,
    /// The `[profile]` table, where a missing `name` is reported.
    pub profile_at: Option<Location>,
    pub name: Option<String>,
    /// `name` was written, even if invalid (then it was reported already).
    pub name_written: bool,
    pub description: Option<String>,
    pub extends: Option<Located<String>>,
    pub best_effort: Option<bool>,
    pub stop_grace: Option<Duration>,
    pub filesystem: Filesystem,
    pub connect_tcp: Vec<Located<u16>>,
    pub bind_tcp: Vec<Located<u16>>,
    pub allow_hosts: Vec<HostRule>,
    pub deny_hosts: Vec<HostRule>,
    pub unix: Vec<PathRule>,
    pub syscall_deny: Vec<SyscallRule>,
    pub on_violation: Option<OnViolation>,
    pub undeclared_tool: Option<DivergenceAction>,
    pub denied_action: Option<Located<DivergenceAction>>,
    pub max_denials: Option<Located<u32>>,
    pub sub_agent: Option<DivergenceAction>,
    pub tolerated_hosts: Vec<HostRule>,
    pub tolerated_execs: Vec<PathRule>,
    pub env_pass: Vec<Located<String>>,
    /// Keyed by variable name; the location is the key's.
    pub env_set: BTreeMap<String, Located<String>>,
    /// `[environment] secrets`: placeholders the agent holds.
    pub env_secrets: Vec<Located<String>>,
    /// `[environment] home`.
    pub env_home: Option<Located<HomeMode>>,
    pub limits: Limits,
    /// `[tools.NAME]`, each whole (a child's replaces the parent's).
    pub tools: BTreeMap<String, Tool>,
    /// `[secrets.NAME]`, each whole (a child's replaces the parent's).
    pub secrets: BTreeMap<String, LayerSecret>,
    pub audit_path: Option<PathTemplate>,
    /// `[approval]`, whole (a child's replaces the parent's).
    pub approval: Option<Approval>,
    /// `[mcp.NAME]`, each whole (a child's replaces the parent's).
    pub mcp: BTreeMap<String, McpServer>,
    /// `[policy]`, whole (a child's replaces the parent's).
    pub policy: Option<PolicyConfig>,
    /// Entries this file drops from the lists it inherits.
    pub removals: Vec<Removal>,
}

impl Layer {
    pub fn new(file: Arc<Path>) -> Layer {
        Layer {
            file,
            profile_at: None,
            name: None,
            name_written: false,
            description: None,
            extends: None,
            best_effort: None,
            stop_grace: None,
            filesystem: Filesystem::default(),
            connect_tcp: Vec::new(),
            bind_tcp: Vec::new(),
            allow_hosts: Vec::new(),
            deny_hosts: Vec::new(),
            unix: Vec::new(),
            syscall_deny: Vec::new(),
            on_violation: None,
            undeclared_tool: None,
            denied_action: None,
            max_denials: None,
            sub_agent: None,
            tolerated_hosts: Vec::new(),
            tolerated_execs: Vec::new(),
            env_pass: Vec::new(),
            env_set: BTreeMap::new(),
            env_secrets: Vec::new(),
            env_home: None,
            limits: Limits::default(),
            tools: BTreeMap::new(),
            secrets: BTreeMap::new(),
            audit_path: None,
            approval: None,
            mcp: BTreeMap::new(),
            policy: None,
            removals: Vec::new(),
        }
    }

    /// Where to report a problem about the `[profile]` table as a whole.
    pub fn profile_location(&self) -> Location {
        self.profile_at
            .clone()
            .unwrap_or_else(|| Location::whole_file(&self.file))
    }

    /// Applies `child` on top of `self` (the parent); see docs/profiles.md.
    /// A removal of the child's that matches nothing inherited goes to
    /// `diags`.
    pub fn merge(self, child: Layer, diags: &mut Vec<Diagnostic>) -> Layer {
        let mut p = self;
        let gone = &child.removals;
        let path = |r: &PathRule| r.path.as_str().to_string();
        let host = |r: &HostRule| r.text.clone();
        let port = |l: &Located<u16>| l.value.to_string();
        p.filesystem.read = apply(p.filesystem.read, "[filesystem] read", gone, path, diags);
        p.filesystem.write = apply(p.filesystem.write, "[filesystem] write", gone, path, diags);
        p.filesystem.exec = apply(p.filesystem.exec, "[filesystem] exec", gone, path, diags);
        p.filesystem.deny = apply(p.filesystem.deny, "[filesystem] deny", gone, path, diags);
        p.connect_tcp = apply(p.connect_tcp, "[network] connect_tcp", gone, port, diags);
        p.bind_tcp = apply(p.bind_tcp, "[network] bind_tcp", gone, port, diags);
        p.allow_hosts = apply(p.allow_hosts, "[network] allow_hosts", gone, host, diags);
        p.deny_hosts = apply(p.deny_hosts, "[network] deny_hosts", gone, host, diags);
        p.unix = apply(p.unix, "[network] unix", gone, path, diags);
        p.env_pass = apply(
            p.env_pass,
            "[environment] pass",
            gone,
            |l| l.value.clone(),
            diags,
        );
        p.tolerated_hosts = apply(
            p.tolerated_hosts,
            "[divergence] tolerated_hosts",
            gone,
            host,
            diags,
        );
        p.tolerated_execs = apply(
            p.tolerated_execs,
            "[divergence] tolerated_execs",
            gone,
            path,
            diags,
        );
        Layer {
            file: child.file,
            profile_at: child.profile_at,
            // Never inherited: a profile derived from another is a new profile.
            name: child.name,
            name_written: child.name_written,
            description: child.description.or(p.description),
            extends: child.extends,
            best_effort: child.best_effort.or(p.best_effort),
            stop_grace: child.stop_grace.or(p.stop_grace),
            filesystem: Filesystem {
                read: merge_paths(p.filesystem.read, child.filesystem.read),
                write: merge_paths(p.filesystem.write, child.filesystem.write),
                exec: merge_paths(p.filesystem.exec, child.filesystem.exec),
                deny: merge_paths(p.filesystem.deny, child.filesystem.deny),
            },
            connect_tcp: concat_unique(p.connect_tcp, child.connect_tcp, |l| l.value),
            bind_tcp: concat_unique(p.bind_tcp, child.bind_tcp, |l| l.value),
            allow_hosts: concat_unique(p.allow_hosts, child.allow_hosts, |r| r.text.clone()),
            deny_hosts: concat_unique(p.deny_hosts, child.deny_hosts, |r| r.text.clone()),
            unix: merge_paths(p.unix, child.unix),
            syscall_deny: concat_unique(p.syscall_deny, child.syscall_deny, |r| r.number),
            on_violation: child.on_violation.or(p.on_violation),
            undeclared_tool: child.undeclared_tool.or(p.undeclared_tool),
            denied_action: child.denied_action.or(p.denied_action),
            max_denials: child.max_denials.or(p.max_denials),
            sub_agent: child.sub_agent.or(p.sub_agent),
            tolerated_hosts: concat_unique(p.tolerated_hosts, child.tolerated_hosts, |r| {
                r.text.clone()
            }),
            tolerated_execs: merge_paths(p.tolerated_execs, child.tolerated_execs),
            env_pass: concat_unique(p.env_pass, child.env_pass, |l| l.value.clone()),
            env_set: {
                let mut set = p.env_set;
                set.extend(child.env_set);
                set
            },
            env_secrets: concat_unique(p.env_secrets, child.env_secrets, |l| l.value.clone()),
            env_home: child.env_home.or(p.env_home),
            limits: Limits {
                nofile: child.limits.nofile.or(p.limits.nofile),
                nproc: child.limits.nproc.or(p.limits.nproc),
                fsize: child.limits.fsize.or(p.limits.fsize),
                address_space: child.limits.address_space.or(p.limits.address_space),
                cpu: child.limits.cpu.or(p.limits.cpu),
                core: child.limits.core.or(p.limits.core),
            },
            tools: {
                let mut tools = p.tools;
                tools.extend(child.tools);
                tools
            },
            secrets: {
                let mut secrets = p.secrets;
                secrets.extend(child.secrets);
                secrets
            },
            audit_path: child.audit_path.or(p.audit_path),
            approval: child.approval.or(p.approval),
            mcp: {
                let mut mcp = p.mcp;
                mcp.extend(child.mcp);
                mcp
            },
            policy: child.policy.or(p.policy),
            // Applied above: what the merged profile inherits is final.
            removals: Vec::new(),
        }
    }

    /// The final profile; call only once validation found nothing.
    pub fn into_profile(self, source: PathBuf) -> Profile {
        let defaults = Divergence::default();
        let on_violation = self
            .on_violation
            .unwrap_or(Syscalls::default().on_violation);
        Profile {
            source,
            name: self.name.unwrap_or_default(),
            description: self.description,
            best_effort: self.best_effort.unwrap_or(false),
            stop_grace: self.stop_grace.unwrap_or(DEFAULT_STOP_GRACE),
            filesystem: self.filesystem,
            network: Network {
                connect_tcp: self.connect_tcp.into_iter().map(|l| l.value).collect(),
                bind_tcp: self.bind_tcp.into_iter().map(|l| l.value).collect(),
                allow_hosts: self.allow_hosts,
                deny_hosts: self.deny_hosts,
                unix: self.unix,
            },
            syscalls: Syscalls {
                deny: self.syscall_deny,
                on_violation,
            },
            divergence: Divergence {
                undeclared_tool: self.undeclared_tool.unwrap_or(defaults.undeclared_tool),
                denied_action: self
                    .denied_action
                    .map_or(defaults.denied_action, |l| l.value),
                max_denials: self.max_denials.map_or(defaults.max_denials, |l| l.value),
                sub_agent: self.sub_agent.unwrap_or(defaults.sub_agent),
                tolerated_hosts: self.tolerated_hosts,
                tolerated_execs: self.tolerated_execs,
            },
            environment: Environment {
                pass: self.env_pass.into_iter().map(|l| l.value).collect(),
                set: self
                    .env_set
                    .into_iter()
                    .map(|(k, v)| (k, v.value))
                    .collect(),
                secrets: self.env_secrets.into_iter().map(|l| l.value).collect(),
                home: self.env_home.map(|l| l.value).unwrap_or_default(),
            },
            limits: self.limits,
            tools: self.tools,
            secrets: self
                .secrets
                .into_iter()
                .filter_map(|(name, s)| Some((name, s.spec?)))
                .collect(),
            audit: Audit {
                path: self.audit_path,
            },
            approval: self.approval.unwrap_or_default(),
            mcp: self.mcp,
            policy: self.policy.unwrap_or_default(),
        }
    }
}

/// Parent entries first, then the child's that are new.
fn concat_unique<T, K: PartialEq>(parent: Vec<T>, child: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(parent.len() + child.len());
    let mut keys: Vec<K> = Vec::with_capacity(out.capacity());
    for item in parent.into_iter().chain(child) {
        let k = key(&item);
        if !keys.contains(&k) {
            keys.push(k);
            out.push(item);
        }
    }
    out
}

/// Like [`concat_unique`] on the template, but a path written both as
/// optional and as required stays required: the stricter reading wins.
fn merge_paths(parent: Vec<PathRule>, child: Vec<PathRule>) -> Vec<PathRule> {
    let mut out: Vec<PathRule> = Vec::with_capacity(parent.len() + child.len());
    for rule in parent.into_iter().chain(child) {
        match out.iter_mut().find(|r| r.path == rule.path) {
            Some(first) => first.optional &= rule.optional,
            None => out.push(rule),
        }
    }
    out
}
