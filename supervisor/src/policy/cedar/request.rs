//! One request to the policies, as plain data (principal, action,
//! resource, context as docs/policy.md lists them), and its Cedar form.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use cedar_policy::{Context, Entities, Entity, EntityTypeName, EntityUid, RestrictedExpression};

use super::index::{Needed, CONTEXT};
use super::schema::{Parsed, Types};
use crate::policy::Verdict;
use crate::profile::Risk;

/// What is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Exec,
    McpCall,
    Connect,
    Secret,
    Spawn,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Exec => "exec",
            Action::McpCall => "mcp_call",
            Action::Connect => "connect",
            Action::Secret => "secret",
            Action::Spawn => "spawn",
        }
    }
}

/// The session asking.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    pub session: &'a str,
    pub profile: &'a str,
    pub intent: Option<&'a str>,
    /// Ancestor session ids, root first.
    pub chain: &'a [String],
}

/// One request, before it is put in Cedar's terms.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub principal: Principal<'a>,
    pub action: Action,
    /// The tool, `SERVER/TOOL`, host, secret or sub-profile name.
    pub resource: &'a str,
    pub argv: String,
    pub args: Vec<String>,
    /// The arguments in the canonical form of the tool's grammar (what
    /// the TOML rules were matched against); the exact ones when the tool
    /// has no grammar, or the grammar could not classify the call.
    pub canonical: String,
    pub canonical_args: Vec<String>,
    pub argv_sha256: String,
    pub cwd: &'a str,
    /// The tool a request is made for: the tool of an exec (or
    /// `SERVER/TOOL`), the tool whose sandbox connects or receives a
    /// secret; `""` for the agent itself.
    pub tool: &'a str,
    pub risk: Option<Risk>,
    /// The TOML rule that matched, e.g. `tools.git.allow[0]`.
    pub rule: String,
    /// The TOML verdict (never a deny: those are final).
    pub toml: Verdict,
    pub time: SystemTime,
    pub port: u16,
}

impl<'a> Request<'a> {
    /// A request with an empty context, as the TOML rules allowed it.
    fn bare(principal: Principal<'a>, action: Action, resource: &'a str) -> Request<'a> {
        Request {
            principal,
            action,
            resource,
            argv: String::new(),
            args: Vec::new(),
            canonical: String::new(),
            canonical_args: Vec::new(),
            argv_sha256: argv_digest(&[]),
            cwd: "",
            tool: "",
            risk: None,
            rule: String::new(),
            toml: Verdict::Allow,
            time: SystemTime::now(),
            port: 0,
        }
    }

    /// The TOML verdict, the rule that gave it (as the audit record names
    /// it) and that rule's risk tag.
    #[must_use]
    pub fn decided(mut self, toml: Verdict, rule: String, risk: Option<Risk>) -> Request<'a> {
        self.toml = toml;
        self.rule = rule;
        self.risk = risk;
        self
    }

    /// An exec call of `tool` with `args` (argv after the tool name), and
    /// the canonical form its grammar gave them, if any.
    pub fn exec(
        principal: Principal<'a>,
        tool: &'a str,
        args: &[&[u8]],
        canonical: Option<&[Vec<u8>]>,
        cwd: &'a str,
    ) -> Request<'a> {
        let shown = crate::audit::argv_text(args);
        let canonical_args = match canonical {
            Some(c) => crate::audit::argv_text(&c.iter().map(Vec::as_slice).collect::<Vec<_>>()),
            None => shown.clone(),
        };
        Request {
            argv: shown.join(" "),
            args: shown,
            canonical: canonical_args.join(" "),
            canonical_args,
            argv_sha256: argv_digest(args),
            cwd,
            tool,
            ..Request::bare(principal, Action::Exec, tool)
        }
    }

    /// A `tools/call` of `resource` (`SERVER/TOOL`) with `arguments`.
    pub fn mcp_call(
        principal: Principal<'a>,
        resource: &'a str,
        arguments: &serde_json::Value,
    ) -> Request<'a> {
        let canonical = crate::mcp::relay::canonical(arguments);
        let mut args = Vec::new();
        scalars(arguments, &mut args);
        Request {
            // As the call's audit record digests it: one argument, the
            // canonical JSON.
            argv_sha256: argv_digest(&[canonical.as_bytes()]),
            canonical: canonical.clone(),
            canonical_args: args.clone(),
            argv: canonical,
            args,
            tool: resource,
            ..Request::bare(principal, Action::McpCall, resource)
        }
    }

    /// A connection to `host` (as the egress proxy names it: lower case,
    /// or an address) on `port`, from the sandbox of `tool` (`None`: the
    /// agent's).
    pub fn connect(
        principal: Principal<'a>,
        host: &'a str,
        port: u16,
        tool: Option<&'a str>,
    ) -> Request<'a> {
        Request {
            port,
            tool: tool.unwrap_or(""),
            ..Request::bare(principal, Action::Connect, host)
        }
    }

    /// Secret `name` handed to `tool`'s call (`None`: to the agent, by
    /// `cordon-shim secret`).
    pub fn secret(principal: Principal<'a>, name: &'a str, tool: Option<&'a str>) -> Request<'a> {
        Request {
            tool: tool.unwrap_or(""),
            ..Request::bare(principal, Action::Secret, name)
        }
    }

    /// A sub-agent under profile `profile` running `argv`.
    pub fn spawn(principal: Principal<'a>, profile: &'a str, argv: &[&[u8]]) -> Request<'a> {
        let shown = crate::audit::argv_text(argv);
        Request {
            argv: shown.join(" "),
            canonical: shown.join(" "),
            canonical_args: shown.clone(),
            args: shown,
            argv_sha256: argv_digest(argv),
            ..Request::bare(principal, Action::Spawn, profile)
        }
    }

    /// The request's entity uids, and what its principal and resource
    /// are in.
    pub fn parts(&self, p: &Parsed) -> Parts {
        let t = &p.types;
        let mut principal_in: Vec<EntityUid> = self
            .principal
            .chain
            .iter()
            .map(|s| Types::uid(&t.session, s))
            .collect();
        principal_in.push(Types::uid(&t.profile, self.principal.profile));
        let (resource, resource_type, resource_in) = match self.action {
            Action::Exec => (Types::uid(&t.tool, self.resource), &t.tool, vec![]),
            Action::McpCall => {
                let server = self
                    .resource
                    .split_once('/')
                    .map_or(self.resource, |(s, _)| s);
                let parent = Types::uid(&t.mcp_server, server);
                (
                    Types::uid(&t.mcp_tool, self.resource),
                    &t.mcp_tool,
                    vec![parent],
                )
            }
            Action::Connect => (Types::uid(&t.host, self.resource), &t.host, vec![]),
            Action::Secret => (Types::uid(&t.secret, self.resource), &t.secret, vec![]),
            Action::Spawn => (Types::uid(&t.profile, self.resource), &t.profile, vec![]),
        };
        Parts {
            principal: Types::uid(&t.session, self.principal.session),
            principal_in,
            action: Types::uid(&t.action, self.action.as_str()),
            resource,
            resource_type: resource_type.clone(),
            resource_in,
        }
    }

    /// The entities a request needs: the session (in its profile and
    /// ancestors) and the resource (an MCP tool in its server). Action
    /// entities are left out: the schema has no action groups, so no
    /// policy can depend on them.
    pub fn entities(&self, parts: &Parts) -> Result<Entities, String> {
        let depth = i64::try_from(self.principal.chain.len()).unwrap_or(i64::MAX);
        let attrs = HashMap::from([
            (
                "identity".to_string(),
                RestrictedExpression::new_string(crate::audit::identity(
                    self.principal.profile,
                    self.principal.session,
                )),
            ),
            (
                "profile".to_string(),
                RestrictedExpression::new_string(self.principal.profile.to_string()),
            ),
            ("depth".to_string(), RestrictedExpression::new_long(depth)),
        ]);
        let parents: HashSet<EntityUid> = parts.principal_in.iter().cloned().collect();
        let session =
            Entity::new(parts.principal.clone(), attrs, parents).map_err(|e| e.to_string())?;
        let resource = (!parts.resource_in.is_empty()).then(|| {
            Entity::new_no_attrs(
                parts.resource.clone(),
                parts.resource_in.iter().cloned().collect(),
            )
        });
        Entities::from_entities(std::iter::once(session).chain(resource), None)
            .map_err(|e| e.to_string())
    }

    /// The context, with the attributes in `needed` only.
    pub fn context(&self, needed: &Needed) -> Result<Context, String> {
        Context::from_pairs(self.context_pairs(needed)).map_err(|e| e.to_string())
    }

    fn context_pairs(&self, needed: &Needed) -> Vec<(String, RestrictedExpression)> {
        let s = |v: &str| RestrictedExpression::new_string(v.to_string());
        let set = |v: &[String]| RestrictedExpression::new_set(v.iter().map(|x| s(x)));
        let long = |n: usize| RestrictedExpression::new_long(i64::try_from(n).unwrap_or(i64::MAX));
        let secs = self
            .time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let toml = match self.toml {
            Verdict::Allow => "allow",
            Verdict::Approve => "approve",
            Verdict::Deny => "deny",
        };
        let mut out = Vec::with_capacity(CONTEXT.len());
        for name in CONTEXT {
            if !needed.wants(name) {
                continue;
            }
            let value = match name {
                "argv" => s(&self.argv),
                "args" => set(&self.args),
                "canonical" => s(&self.canonical),
                "canonical_args" => set(&self.canonical_args),
                "tool" => s(self.tool),
                "host" => s(if self.action == Action::Connect {
                    self.resource
                } else {
                    ""
                }),
                "argc" => long(self.args.len()),
                "argv_sha256" => s(&self.argv_sha256),
                "cwd" => s(self.cwd),
                "intent" => s(self.principal.intent.unwrap_or("")),
                "risk" => s(self.risk.map(Risk::as_str).unwrap_or("")),
                "rule" => s(&self.rule),
                "toml" => s(toml),
                // The audit log's timestamp form (milliseconds, UTC).
                "time" => {
                    RestrictedExpression::new_datetime(crate::audit::time::rfc3339(self.time))
                }
                "hour_utc" => long(usize::try_from(secs % 86_400 / 3600).unwrap_or(0)),
                "port" => long(usize::from(self.port)),
                "ancestors" => set(self.principal.chain),
                _ => continue,
            };
            out.push((name.to_string(), value));
        }
        out
    }
}

/// A request's uids and what they are in.
pub struct Parts {
    pub principal: EntityUid,
    pub principal_in: Vec<EntityUid>,
    pub action: EntityUid,
    pub resource: EntityUid,
    pub resource_type: EntityTypeName,
    pub resource_in: Vec<EntityUid>,
}

/// The audit record's `argv_sha256` of `args`.
pub fn argv_digest(args: &[&[u8]]) -> String {
    crate::audit::Record::new(crate::audit::Kind::Call, "")
        .argv_bytes(args)
        .argv_sha256
        .unwrap_or_default()
}

/// Every scalar of `v` as text (strings as they are).
fn scalars(v: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Bool(b) => out.push(b.to_string()),
        Value::Null => out.push("null".into()),
        Value::Array(a) => a.iter().for_each(|x| scalars(x, out)),
        Value::Object(m) => m.values().for_each(|x| scalars(x, out)),
    }
}
