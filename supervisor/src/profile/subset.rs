//! Delegation: is a sub-agent's profile a subset of its parent's?
//!
//! A sub-agent may only get narrower. This check is structural and
//! conservative: it may refuse a profile that is in fact narrower (pattern
//! inclusion is decided token by token, not over the full glob language),
//! but it never accepts one that grants a path, a port, a syscall, a tool
//! call, a secret or an approver the parent lacks. Each widening is named
//! with where the sub-profile wrote it.
//!
//! Pure: with `values`, paths are expanded and (when they exist)
//! canonicalized, so a symlink in a granted tree cannot smuggle a grant out
//! of it; without, templates are compared as written (`cordon check`).

use std::fmt;
use std::path::PathBuf;

use super::hosts::{rule_ports_within, rule_within};
use super::{
    ArgvRule, Location, Network, OnViolation, PathRule, Placeholders, Profile, SecretSpec, Tool,
    ToolSandbox,
};
use crate::policy::compile_pattern;
use crate::profile::DivergenceAction;

/// One way the sub-profile grants more than its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widening {
    /// Where the sub-profile wrote it (its section, when no entry).
    pub at: Location,
    /// The part that widens: "`[filesystem] write` entry `/etc`".
    pub part: String,
    pub why: String,
}

impl fmt::Display for Widening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.at, self.part, self.why)
    }
}

/// Every widening of `child` over `parent`; empty when it is a subset.
pub fn widenings(
    child: &Profile,
    parent: &Profile,
    values: Option<&Placeholders>,
) -> Vec<Widening> {
    let mut c = Check {
        out: Vec::new(),
        values,
        whole: Location::whole_file(&child.source),
    };
    c.filesystem(child, parent);
    c.network(child, parent);
    c.syscalls(child, parent);
    c.divergence(child, parent);
    c.environment(child, parent);
    c.tools(child, parent);
    c.secrets(child, parent);
    c.approval(child, parent);
    super::subset_mcp::widenings(child, parent, &mut c.out);
    if child.stop_grace > parent.stop_grace {
        c.push(
            None,
            "`[profile] stop_grace`",
            format!(
                "gives the sub-agent longer than the parent's {} before it is killed",
                humantime::format_duration(parent.stop_grace)
            ),
        );
    }
    if child.best_effort && !parent.best_effort {
        c.push(
            None,
            "`[profile] best_effort = true`",
            "would run weaker than the parent, which requires full enforcement",
        );
    }
    if child.audit.path.is_some() && child.audit.path != parent.audit.path {
        c.push(
            None,
            "`[audit] path`",
            "would move the sub-agent's records out of the parent's log",
        );
    }
    c.out
}

struct Check<'v> {
    out: Vec<Widening>,
    values: Option<&'v Placeholders>,
    whole: Location,
}

/// A path as compared: expanded and canonical when the values are known.
fn resolved(rule: &PathRule, values: Option<&Placeholders>) -> String {
    match values {
        None => rule.path.as_str().to_string(),
        Some(v) => {
            let p: PathBuf = rule.path.expand(v);
            std::fs::canonicalize(&p)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        }
    }
}

/// `inner` is `outer` or lies under it, component-wise.
pub fn within(inner: &str, outer: &str) -> bool {
    let outer = outer.trim_end_matches('/');
    outer.is_empty()
        || inner == outer
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl Check<'_> {
    fn push(&mut self, at: Option<&Location>, part: impl Into<String>, why: impl Into<String>) {
        self.out.push(Widening {
            at: at.cloned().unwrap_or_else(|| self.whole.clone()),
            part: part.into(),
            why: why.into(),
        });
    }

    /// Each of `child` lies within one of `parent`.
    fn paths(&mut self, what: &str, child: &[PathRule], parent: &[&PathRule]) {
        let parents: Vec<String> = parent.iter().map(|r| resolved(r, self.values)).collect();
        for rule in child {
            let p = resolved(rule, self.values);
            if !parents.iter().any(|q| within(&p, q)) {
                self.push(
                    Some(&rule.origin),
                    format!("{what} entry `{}`", rule.path),
                    format!("is not within any of the parent's ({})", list(&parents)),
                );
            }
        }
    }

    /// Every parent deny that a child grant reaches is denied in the child
    /// too (by the same path or one above it).
    fn denies(
        &mut self,
        what: &str,
        child_deny: &[PathRule],
        child_grants: &[&PathRule],
        parent_deny: &[PathRule],
    ) {
        let denied: Vec<String> = child_deny
            .iter()
            .map(|r| resolved(r, self.values))
            .collect();
        let grants: Vec<String> = child_grants
            .iter()
            .map(|r| resolved(r, self.values))
            .collect();
        for d in parent_deny {
            let dp = resolved(d, self.values);
            let reached = grants.iter().any(|g| within(&dp, g) || within(g, &dp));
            if reached && !denied.iter().any(|c| within(&dp, c)) {
                self.push(
                    None,
                    format!("{what} (missing `{}`)", d.path),
                    format!("drops the parent's deny of `{}` ({}) while granting a tree that reaches it", d.path, d.origin),
                );
            }
        }
    }

    fn filesystem(&mut self, child: &Profile, parent: &Profile) {
        let (c, p) = (&child.filesystem, &parent.filesystem);
        let readable: Vec<&PathRule> = p.read.iter().chain(&p.write).chain(&p.exec).collect();
        self.paths("`[filesystem] read`", &c.read, &readable);
        self.paths(
            "`[filesystem] write`",
            &c.write,
            &p.write.iter().collect::<Vec<_>>(),
        );
        self.paths(
            "`[filesystem] exec`",
            &c.exec,
            &p.exec.iter().collect::<Vec<_>>(),
        );
        let grants: Vec<&PathRule> = c.read.iter().chain(&c.write).chain(&c.exec).collect();
        self.denies("`[filesystem] deny`", &c.deny, &grants, &p.deny);
    }

    fn ports(&mut self, what: &str, child: &[u16], parent: &[u16]) {
        for port in child.iter().filter(|port| !parent.contains(port)) {
            self.push(
                None,
                format!("{what} port {port}"),
                format!("is not granted to the parent ({parent:?})"),
            );
        }
    }

    fn network(&mut self, child: &Profile, parent: &Profile) {
        self.ports(
            "`[network] connect_tcp`",
            &child.network.connect_tcp,
            &parent.network.connect_tcp,
        );
        self.ports(
            "`[network] bind_tcp`",
            &child.network.bind_tcp,
            &parent.network.bind_tcp,
        );
        self.hosts("`[network]`", &child.network, &parent.network);
        // A Unix socket the sub-agent may reach must be one the parent may:
        // in its `unix` list or its write grants (its own sockets).
        let reachable: Vec<&PathRule> = parent
            .network
            .unix
            .iter()
            .chain(&parent.filesystem.write)
            .collect();
        self.paths("`[network] unix`", &child.network.unix, &reachable);
    }

    /// Host rules. A sub-agent with them reaches, through its own proxy,
    /// only hosts its rules allow: each must lie within a parent rule (or,
    /// for a parent with port rules only, name only the parent's ports).
    /// A sub-agent without them reaches hosts directly on its ports, which
    /// a parent behind a proxy cannot.
    fn hosts(&mut self, what: &str, c: &Network, p: &Network) {
        if !c.has_host_rules() {
            if p.has_host_rules() && !c.connect_tcp.is_empty() {
                self.push(
                    None,
                    format!("{what} connect_tcp without host rules"),
                    "reaches hosts directly, while the parent reaches them only through its proxy; add the parent's allow_hosts",
                );
            }
            return;
        }
        for r in &c.allow_hosts {
            let within = if p.has_host_rules() {
                p.allow_hosts.iter().any(|o| rule_within(r, o))
            } else {
                rule_ports_within(r, &p.connect_tcp)
            };
            if !within {
                let parents: Vec<String> = if p.has_host_rules() {
                    p.allow_hosts.iter().map(|o| o.text.clone()).collect()
                } else {
                    p.connect_tcp
                        .iter()
                        .map(|port| format!("any host on port {port}"))
                        .collect()
                };
                self.push(
                    Some(&r.origin),
                    format!("{what} allow_hosts entry `{}`", r.text),
                    format!("is not within any of the parent's ({})", list(&parents)),
                );
            }
        }
        for d in &p.deny_hosts {
            if !c.deny_hosts.iter().any(|x| x.text == d.text) {
                self.push(
                    None,
                    format!("{what} deny_hosts (missing `{}`)", d.text),
                    format!("drops the parent's deny rule ({})", d.origin),
                );
            }
        }
    }

    fn syscalls(&mut self, child: &Profile, parent: &Profile) {
        for rule in &parent.syscalls.deny {
            if !child.syscalls.deny.iter().any(|r| r.number == rule.number) {
                self.push(
                    None,
                    format!("`[syscalls] deny` (missing `{}`)", rule.name),
                    format!(
                        "drops the parent's deny of `{}` ({})",
                        rule.name, rule.origin
                    ),
                );
            }
        }
        if parent.syscalls.on_violation == OnViolation::Kill
            && child.syscalls.on_violation != OnViolation::Kill
        {
            self.push(
                None,
                "`[syscalls] on_violation = \"deny\"`",
                "lets the sub-agent survive violations the parent is killed for",
            );
        }
    }

    fn divergence(&mut self, child: &Profile, parent: &Profile) {
        let (c, p) = (&child.divergence, &parent.divergence);
        let kill = DivergenceAction::Kill;
        if p.undeclared_tool == kill && c.undeclared_tool != kill {
            self.push(
                None,
                "`[divergence] undeclared_tool = \"deny\"`",
                "is looser than the parent's \"kill\"",
            );
        }
        if p.denied_action == kill && c.denied_action != kill {
            self.push(
                None,
                "`[divergence] denied_action = \"deny\"`",
                "is looser than the parent's \"kill\"",
            );
        }
        if p.sub_agent == kill && c.sub_agent != kill {
            self.push(
                None,
                "`[divergence] sub_agent = \"deny\"`",
                "is looser than the parent's \"kill\"",
            );
        }
        if c.max_denials > p.max_denials {
            self.push(
                None,
                format!("`[divergence] max_denials = {}`", c.max_denials),
                format!("is more than the parent's {}", p.max_denials),
            );
        }
        // A tolerated refusal costs the sub-agent (and its ancestors, who
        // count its refusals) nothing: only the parent's may be tolerated.
        for r in &c.tolerated_hosts {
            if !p.tolerated_hosts.iter().any(|o| rule_within(r, o)) {
                let parents: Vec<String> =
                    p.tolerated_hosts.iter().map(|o| o.text.clone()).collect();
                self.push(
                    Some(&r.origin),
                    format!("`[divergence] tolerated_hosts` entry `{}`", r.text),
                    format!("is not within any of the parent's ({})", list(&parents)),
                );
            }
        }
        let parent_tolerated: Vec<&PathRule> = p.tolerated_execs.iter().collect();
        self.paths(
            "`[divergence] tolerated_execs`",
            &c.tolerated_execs,
            &parent_tolerated,
        );
        let lim = |name: &str, c: Option<u64>, p: Option<u64>, out: &mut Self| {
            if let Some(pv) = p {
                if c.is_none_or(|cv| cv > pv) {
                    let shown = c.map_or("unlimited".to_string(), |v| v.to_string());
                    out.push(
                        None,
                        format!("`[limits] {name}` ({shown})"),
                        format!("is more than the parent's {pv}"),
                    );
                }
            }
        };
        let (cl, pl) = (&child.limits, &parent.limits);
        lim("nofile", cl.nofile, pl.nofile, self);
        lim("nproc", cl.nproc, pl.nproc, self);
        lim("fsize", cl.fsize, pl.fsize, self);
        lim("as", cl.address_space, pl.address_space, self);
        lim("cpu", cl.cpu, pl.cpu, self);
        lim("core", cl.core, pl.core, self);
    }

    fn environment(&mut self, child: &Profile, parent: &Profile) {
        for name in &child.environment.pass {
            if !parent.environment.pass.contains(name) {
                self.push(
                    None,
                    format!("`[environment] pass` of `{name}`"),
                    "passes a variable of cordon's environment the parent does not get",
                );
            }
        }
        for name in &child.environment.secrets {
            if !parent.environment.secrets.contains(name) {
                self.push(
                    None,
                    format!("`[environment] secrets` entry `{name}`"),
                    "gives the sub-agent a placeholder the parent's agent does not hold",
                );
            }
        }
    }

    fn tools(&mut self, child: &Profile, parent: &Profile) {
        for (name, ct) in &child.tools {
            let Some(pt) = parent.tools.get(name) else {
                self.push(
                    Some(&ct.origin),
                    format!("tool `[tools.{name}]`"),
                    "is not a tool of the parent",
                );
                continue;
            };
            self.tool(name, ct, pt);
        }
    }

    fn tool(&mut self, name: &str, c: &Tool, p: &Tool) {
        let canon = |path: &std::path::Path| {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        };
        if canon(&c.path) != canon(&p.path) {
            self.push(
                Some(&c.origin),
                format!("`[tools.{name}] path`"),
                format!(
                    "is `{}`, not the parent's `{}`",
                    c.path.display(),
                    p.path.display()
                ),
            );
        }
        if let Some(pt) = p.timeout {
            if c.timeout.is_none_or(|ct| ct > pt) {
                self.push(
                    Some(&c.origin),
                    format!("`[tools.{name}] timeout`"),
                    format!(
                        "is longer than the parent's {}",
                        humantime::format_duration(pt)
                    ),
                );
            }
        }
        if let Some(pm) = p.max_calls {
            if c.max_calls.is_none_or(|cm| cm > pm) {
                self.push(
                    Some(&c.origin),
                    format!("`[tools.{name}] max_calls`"),
                    format!("is more than the parent's {pm}"),
                );
            }
        }
        for e in c.env.iter().filter(|e| !p.env.contains(e)) {
            self.push(
                Some(&c.origin),
                format!("`[tools.{name}] env` of `{e}`"),
                "passes a variable the parent's tool does not get",
            );
        }
        for s in &c.secrets {
            if !p
                .secrets
                .iter()
                .any(|ps| ps.name == s.name && ps.delivery == s.delivery)
            {
                self.push(
                    Some(&s.origin),
                    format!("`[tools.{name}] secrets` entry `{}`", s.name),
                    "is not a secret the parent's tool receives (so delivered)",
                );
            }
        }
        self.grammar(name, c, p);
        self.rules(name, c, p);
        self.tool_sandbox(name, &c.sandbox, &p.sandbox, &c.origin);
    }

    /// The grammar: the same as the parent's (the rules of both then see
    /// the same canonical argv), `unknown` no looser, and the option rules
    /// each within the parent's for the same option: a value the parent
    /// refuses or asks about must not become allowed, and no option the
    /// parent's rules see may be hidden from the sub-agent's.
    fn grammar(&mut self, name: &str, c: &Tool, p: &Tool) {
        let what = format!("`[tools.{name}] grammar`");
        let (cg, pg) = match (&c.grammar, &p.grammar) {
            (None, None) => return,
            (Some(cg), Some(pg)) => (cg, pg),
            (Some(cg), None) => {
                let why = format!("canonicalises the argv with grammar {} while the parent's tool matches it as written; drop the grammar or give the parent the same", cg.grammar.name);
                self.push(Some(&cg.origin), what, why);
                return;
            }
            (None, Some(pg)) => {
                let why = format!("is missing: the parent's tool canonicalises the argv with grammar {} ({}), and the sub-agent's rules would see other spellings", pg.grammar.name, pg.origin);
                self.push(Some(&c.origin), what, why);
                return;
            }
        };
        if cg.grammar != pg.grammar {
            let why = format!(
                "is grammar {}, not the parent's grammar {} ({})",
                cg.grammar.name, pg.grammar.name, pg.origin
            );
            self.push(Some(&cg.origin), what, why);
            return;
        }
        if cg.unknown == super::Unknown::Approve && pg.unknown == super::Unknown::Deny {
            self.push(
                Some(&cg.unknown_origin),
                format!("`[tools.{name}] unknown = \"approve\"`"),
                "asks a person about calls the parent refuses (its `unknown` is \"deny\")",
            );
        }
        let within_all = |inner: &[String], outer: &[&String]| {
            inner
                .iter()
                .all(|g| outer.iter().any(|o| token_within(g, o)))
        };
        for pr in &pg.options {
            let Some(cr) = cg.options.iter().find(|r| r.key() == pr.key()) else {
                self.push(
                    Some(&cg.origin),
                    format!("`[tools.{name}.options]` (missing {:?})", pr.key()),
                    format!("drops the parent's option rule ({})", pr.origin),
                );
                continue;
            };
            let allow: Vec<&String> = pr.allow.iter().collect();
            let asked: Vec<&String> = pr.allow.iter().chain(&pr.approve).collect();
            let ok = within_all(&cr.allow, &allow)
                && within_all(&cr.approve, &asked)
                && (!cr.neutral || pr.neutral);
            if !ok {
                self.push(
                    Some(&cr.origin),
                    format!("`[tools.{name}.options]` {:?}", cr.key()),
                    format!(
                        "accepts values the parent's rule ({}) refuses or asks about",
                        pr.origin
                    ),
                );
            }
        }
        for cr in &cg.options {
            if !pg.options.iter().any(|r| r.key() == cr.key()) {
                self.push(
                    Some(&cr.origin),
                    format!("`[tools.{name}.options]` {:?}", cr.key()),
                    "is not an option rule of the parent (it would hide arguments the parent's rules see)",
                );
            }
        }
    }

    /// Argv rules, so that for every argv the sub-agent's decision is at
    /// most the parent's (deny < approve < allow):
    /// - the parent's deny rules are all in the child's deny list;
    /// - the parent's approve rules, and its allow rules that ask (risk,
    ///   not pre-approved), are each in the child's approve or deny list,
    ///   or among its asking allow rules;
    /// - each child allow rule lies within a parent allow rule, and each
    ///   child approve rule within a parent allow or approve rule.
    fn rules(&mut self, name: &str, c: &Tool, p: &Tool) {
        let asks = |r: &ArgvRule| r.risk.is_some() && !r.pre_approved;
        for d in &p.deny {
            if !c.deny.iter().any(|r| r.tokens == d.tokens) {
                self.push(
                    Some(&c.origin),
                    format!("`[tools.{name}] deny` (missing {:?})", d.tokens),
                    format!("drops the parent's deny rule ({})", d.origin),
                );
            }
        }
        let must_ask = p.approve.iter().chain(p.allow.iter().filter(|r| asks(r)));
        for a in must_ask {
            let kept = c
                .deny
                .iter()
                .chain(&c.approve)
                .any(|r| r.tokens == a.tokens)
                || c.allow.iter().any(|r| asks(r) && r.tokens == a.tokens);
            if !kept {
                self.push(Some(&c.origin), format!("`[tools.{name}]` (missing {:?})", a.tokens), format!("drops the parent's need for approval ({}); copy the rule to `approve` or `deny`", a.origin));
            }
        }
        for r in &c.allow {
            if !p.allow.iter().any(|q| pattern_within(&r.tokens, &q.tokens)) {
                self.push(
                    Some(&r.origin),
                    format!("`[tools.{name}] allow` rule {:?}", r.tokens),
                    "is not within any allow rule of the parent",
                );
            }
        }
        for r in &c.approve {
            if !p
                .allow
                .iter()
                .chain(&p.approve)
                .any(|q| pattern_within(&r.tokens, &q.tokens))
            {
                self.push(Some(&r.origin), format!("`[tools.{name}] approve` rule {:?}", r.tokens), "is not within any allow or approve rule of the parent (a person could approve what the parent may never do)");
            }
        }
    }

    fn tool_sandbox(&mut self, name: &str, c: &ToolSandbox, p: &ToolSandbox, at: &Location) {
        if c.inherit_defaults && !p.inherit_defaults {
            self.push(
                Some(at),
                format!("`[tools.{name}.sandbox] inherit_defaults`"),
                "adds cordon's default tool sandbox, which the parent's tool does not have",
            );
        }
        let what = |k: &str| format!("`[tools.{name}.sandbox] {k}`");
        let readable: Vec<&PathRule> = p.read.iter().chain(&p.write).chain(&p.exec).collect();
        self.paths(&what("read"), &c.read, &readable);
        self.paths(
            &what("write"),
            &c.write,
            &p.write.iter().collect::<Vec<_>>(),
        );
        self.paths(&what("exec"), &c.exec, &p.exec.iter().collect::<Vec<_>>());
        self.paths(&what("cwd"), &c.cwd, &p.cwd.iter().collect::<Vec<_>>());
        let sockets: Vec<&PathRule> = p.unix.iter().chain(&p.write).collect();
        self.paths(&what("unix"), &c.unix, &sockets);
        self.paths(
            &what("unmask"),
            &c.unmask,
            &p.unmask.iter().collect::<Vec<_>>(),
        );
        self.ports(&what("connect_tcp"), &c.connect_tcp, &p.connect_tcp);
        self.ports(&what("bind_tcp"), &c.bind_tcp, &p.bind_tcp);
        self.hosts(
            &format!("`[tools.{name}.sandbox]`"),
            &c.network(),
            &p.network(),
        );
    }

    fn secrets(&mut self, child: &Profile, parent: &Profile) {
        for (name, c) in &child.secrets {
            let Some(p) = parent.secrets.get(name) else {
                self.push(
                    Some(&c.origin),
                    format!("secret `[secrets.{name}]`"),
                    "is not a secret of the parent",
                );
                continue;
            };
            if let Some(why) = secret_wider(c, p) {
                self.push(Some(&c.origin), format!("secret `[secrets.{name}]`"), why);
            }
        }
    }

    fn approval(&mut self, child: &Profile, parent: &Profile) {
        let (c, p) = (&child.approval, &parent.approval);
        let kill = DivergenceAction::Kill;
        if c.approver.is_some() && c.approver != p.approver {
            self.push(
                None,
                "`[approval] approver`",
                "names a hook the parent does not use (it could approve the sub-agent's calls)",
            );
        }
        if c.prompt && !p.prompt {
            self.push(
                None,
                "`[approval] prompt = true`",
                "asks on the terminal where the parent does not",
            );
        }
        if c.max_pending > p.max_pending || c.max_per_minute > p.max_per_minute {
            self.push(
                None,
                "`[approval] max_pending`/`max_per_minute`",
                "allow more requests than the parent's",
            );
        }
        if p.on_limit == kill && c.on_limit != kill {
            self.push(
                None,
                "`[approval] on_limit = \"deny\"`",
                "is looser than the parent's \"kill\"",
            );
        }
        if p.self_approval == kill && c.self_approval != kill {
            self.push(
                None,
                "`[approval] self_approval = \"deny\"`",
                "is looser than the parent's \"kill\"",
            );
        }
    }
}

/// The first few items, for a message.
fn list(items: &[String]) -> String {
    const SHOWN: usize = 5;
    match items.len() {
        0 => "none".into(),
        n if n <= SHOWN => items.join(", "),
        n => format!("{}, and {} more", items[..SHOWN].join(", "), n - SHOWN),
    }
}

/// Why a sub-profile's secret gives more than the parent's, if it does.
fn secret_wider(c: &SecretSpec, p: &SecretSpec) -> Option<String> {
    if c.source != p.source {
        return Some("comes from another source than the parent's".into());
    }
    if c.revoke != p.revoke {
        return Some("has another `revoke` than the parent's".into());
    }
    if c.expose && !p.expose {
        return Some("is exposed to the agent where the parent's is not".into());
    }
    if c.cache && !p.cache {
        return Some("is cached where the parent's is not".into());
    }
    if p.ttl.is_some_and(|pt| c.ttl.is_none_or(|ct| ct > pt)) {
        return Some("lives longer than the parent's `ttl`".into());
    }
    if p.max_uses
        .is_some_and(|pm| c.max_uses.is_none_or(|cm| cm > pm))
    {
        return Some("may be used more often than the parent's `max_uses`".into());
    }
    proxy_wider(c, p)
}

/// Why a sub-profile's delivery gives more than the parent's, if it does:
/// raw where the parent injects, another shape, or more hosts.
fn proxy_wider(c: &SecretSpec, p: &SecretSpec) -> Option<String> {
    match (&c.proxy, &p.proxy) {
        (None, None) | (Some(_), None) => None,
        (None, Some(_)) => Some(
            "is delivered raw where the parent's is injected by the proxy (deliver = \"proxy\")"
                .into(),
        ),
        (Some(cp), Some(pp)) => {
            if !cp.header.eq_ignore_ascii_case(&pp.header) || cp.form != pp.form {
                return Some("is injected in another header or shape than the parent's".into());
            }
            let parent = pp.targets();
            let extra: Vec<String> = cp
                .targets()
                .into_iter()
                .filter(|t| !parent.contains(t))
                .map(|(h, port)| format!("{h}:{port}"))
                .collect();
            (!extra.is_empty()).then(|| {
                format!(
                    "is injected toward hosts the parent's is not: {}",
                    list(&extra)
                )
            })
        }
    }
}

/// True when every argv the pattern `inner` matches, `outer` matches too.
///
/// Token by token: `**` in `outer` absorbs any run of `inner`'s tokens;
/// `*` in `outer` absorbs one token of `inner` that is not `**`; any other
/// token of `outer` absorbs the identical token, or a literal token (no
/// glob characters) that it matches. Conservative: some true inclusions
/// between globs are refused, none is accepted wrongly.
pub fn pattern_within(inner: &[String], outer: &[String]) -> bool {
    let (n, m) = (inner.len(), outer.len());
    // ok[i][j]: inner[i..] within outer[j..]
    let mut ok = vec![vec![false; m + 1]; n + 1];
    ok[n][m] = true;
    for i in (0..=n).rev() {
        for j in (0..m).rev() {
            ok[i][j] = if outer[j] == "**" {
                ok[i][j + 1] || (i < n && ok[i + 1][j])
            } else if i == n || inner[i] == "**" {
                false
            } else {
                token_within(&inner[i], &outer[j]) && ok[i + 1][j + 1]
            };
        }
    }
    ok[0][0]
}

fn token_within(inner: &str, outer: &str) -> bool {
    if outer == "*" || inner == outer {
        return true;
    }
    let literal = !inner.contains(['*', '?', '[', '\\']);
    literal && compile_pattern(&[outer.to_string()]).is_ok_and(|p| p.matches(&[inner.as_bytes()]))
}

#[cfg(test)]
#[path = "subset_tests.rs"]
mod tests;
