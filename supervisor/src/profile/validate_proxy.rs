//! Cross-field rules of proxy-delivered secrets (`deliver = "proxy"`) and
//! of `[environment] secrets`, one function per rule.
//!
//! A placeholder is only swapped by the egress proxy of the sandbox that
//! holds it, so every place a proxy secret is delivered (the agent, each
//! tool that lists it) must route its connections through a proxy whose
//! host rules admit each of the secret's hosts. Otherwise the profile
//! would promise a credential that can never work.

use super::layer::Layer;
use super::walk::did_you_mean;
use super::{Delivery, Diagnostic, Location, Network, ProxyDelivery};
use crate::egress::rules::{Rules, Target};

pub(super) fn check(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    agent_secrets_declared(merged, diags);
    agent_secrets_are_proxied(merged, diags);
    agent_secrets_not_also_set(merged, diags);
    tool_proxy_secrets_in_env(merged, diags);
    hosts_reachable_where_delivered(merged, diags);
}

/// The spec of a secret, when it is declared and valid.
fn proxy_of<'a>(merged: &'a Layer, name: &str) -> Option<Option<&'a ProxyDelivery>> {
    let spec = merged.secrets.get(name)?.spec.as_ref()?;
    Some(spec.proxy.as_ref())
}

/// `[environment] secrets` must name `[secrets.NAME]` sections.
fn agent_secrets_declared(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    for s in &merged.env_secrets {
        if merged.secrets.contains_key(&s.value) {
            continue;
        }
        let hint = did_you_mean(&s.value, merged.secrets.keys().map(String::as_str))
            .map(|n| format!("did you mean `{n}`? "))
            .unwrap_or_default();
        diags.push(Diagnostic {
            location: s.origin.clone(),
            message: format!(
                "[environment] secrets: `{}` is not declared; {hint}declare it in a [secrets.{}] section with deliver = \"proxy\"",
                s.value.escape_debug(),
                s.value.escape_debug()
            ),
        });
    }
}

/// The agent may hold placeholders only: a raw secret in its environment
/// would be the value itself.
fn agent_secrets_are_proxied(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    for s in &merged.env_secrets {
        if let Some(None) = proxy_of(merged, &s.value) {
            diags.push(Diagnostic {
                location: s.origin.clone(),
                message: format!(
                    "[environment] secrets: `{}` is delivered raw, and the agent must never hold a value; give [secrets.{}] deliver = \"proxy\" and its hosts (or, if the agent truly needs the value, expose = true)",
                    s.value, s.value
                ),
            });
        }
    }
}

/// The placeholder's variable must have one source.
fn agent_secrets_not_also_set(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    for s in &merged.env_secrets {
        let other = merged
            .env_pass
            .iter()
            .find(|p| p.value == s.value)
            .map(|p| ("pass", p.origin.clone()))
            .or_else(|| {
                merged
                    .env_set
                    .get(&s.value)
                    .map(|l| ("set", l.origin.clone()))
            });
        if let Some((list, at)) = other {
            diags.push(Diagnostic {
                location: s.origin.clone(),
                message: format!(
                    "`{}` is both in [environment] secrets and in `{list}` (at {at}); keep one",
                    s.value
                ),
            });
        }
    }
}

/// A placeholder is a string for a request header; as a file it would
/// only be a file holding a placeholder.
fn tool_proxy_secrets_in_env(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    for tool in merged.tools.values() {
        for s in &tool.secrets {
            if s.delivery == Delivery::File && matches!(proxy_of(merged, &s.name), Some(Some(_))) {
                diags.push(Diagnostic {
                    location: s.origin.clone(),
                    message: format!(
                        "tool `{}`: secret `{}` has deliver = \"proxy\": the tool gets a placeholder in its environment, so `as = \"file\"` makes no sense; write \"{}\"",
                        tool.name, s.name, s.name
                    ),
                });
            }
        }
    }
}

/// Every host of a proxy secret must be admitted by the host rules of
/// each sandbox it is delivered to; a sandbox without host rules has no
/// proxy at all.
fn hosts_reachable_where_delivered(merged: &Layer, diags: &mut Vec<Diagnostic>) {
    let agent = Network {
        connect_tcp: Vec::new(),
        bind_tcp: Vec::new(),
        allow_hosts: merged.allow_hosts.clone(),
        deny_hosts: merged.deny_hosts.clone(),
        unix: Vec::new(),
    };
    for s in &merged.env_secrets {
        if let Some(Some(proxy)) = proxy_of(merged, &s.value) {
            let place = Place {
                who: "the agent".into(),
                section: "[network]".into(),
            };
            reachable(&s.value, proxy, &agent, &place, &s.origin, diags);
        }
    }
    let tools = merged.tools.values().map(|t| {
        let place = Place {
            who: format!("tool `{}`", t.name),
            section: format!("[tools.{}.sandbox]", t.name),
        };
        (place, &t.secrets, t.sandbox.network())
    });
    // An MCP server runs in a tool's sandbox, behind its own proxy.
    let servers = merged.mcp.values().map(|m| {
        let place = Place {
            who: format!("MCP server `{}`", m.name),
            section: format!("[mcp.{}.sandbox]", m.name),
        };
        (place, &m.secrets, m.sandbox.network())
    });
    for (place, secrets, network) in tools.chain(servers) {
        for s in secrets {
            if let Some(Some(proxy)) = proxy_of(merged, &s.name) {
                reachable(&s.name, proxy, &network, &place, &s.origin, diags);
            }
        }
    }
}

/// Where a secret is delivered, for messages.
struct Place {
    who: String,
    section: String,
}

fn reachable(
    name: &str,
    proxy: &ProxyDelivery,
    network: &Network,
    place: &Place,
    at: &Location,
    diags: &mut Vec<Diagnostic>,
) {
    let Place { who, section } = place;
    let hosts: Vec<String> = proxy
        .hosts
        .iter()
        .map(|h| format!("\"{}\"", h.text))
        .collect();
    if !network.has_host_rules() {
        diags.push(Diagnostic {
            location: at.clone(),
            message: format!(
                "secret `{name}` (deliver = \"proxy\") goes to {who}, which has no host rules, so its connections do not pass cordon's proxy and the placeholder would never be swapped; add allow_hosts = [{}] to {section}",
                hosts.join(", ")
            ),
        });
        return;
    }
    let rules = Rules::new(&network.allow_hosts, &network.deny_hosts, section);
    for (host, rule) in proxy.targets().into_iter().zip(&proxy.hosts) {
        let Ok(target) = Target::parse(&host.0) else {
            continue;
        };
        if let Err(refusal) = rules.admit(&target, host.1) {
            diags.push(Diagnostic {
                location: at.clone(),
                message: format!(
                    "secret `{name}` (deliver = \"proxy\") goes to {who}, whose host rules refuse its host `{}` ({}), so it could never be used there; allow that host in {section} or remove it from the secret's `hosts` (at {})",
                    rule.text, refusal.reason, rule.origin
                ),
            });
        }
    }
}
