//! How a `[secrets.NAME]` reaches the processes that use it: `deliver =
//! "raw"` (the value itself, in the tool's environment or a file) or
//! `deliver = "proxy"` (a placeholder, swapped for the value by cordon's
//! egress proxy in requests to the secret's `hosts` only).
//!
//! The proxy keys are a small closed set: `hosts`, `header` and exactly
//! one of `format` or `basic`. The value is only ever sent in exactly
//! that shape, so a process cannot make the proxy put it anywhere else
//! (another header, the URL, a body, a longer string it chose).

use toml::de::{DeTable, DeValue};

use super::walk::{article, Value, Walker};
use super::{HostRule, Presentation, ProxyDelivery};
use crate::profile::hosts::{parse_rule, HostPattern, PortPattern};

/// The keys this module reads from a `[secrets.NAME]` table.
pub(super) const KEYS: [&str; 5] = ["deliver", "hosts", "header", "format", "basic"];
/// Hosts per secret: a credential belongs to one service.
const MAX_HOSTS: usize = 32;
/// The header a proxy secret goes in unless `header` says otherwise.
pub const DEFAULT_HEADER: &str = "Authorization";
/// Headers the proxy itself owns: framing, routing and the hop to the
/// proxy. A secret there would change what the request is, not who sends it.
const RESERVED_HEADERS: [&str; 11] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Deliver {
    Raw,
    Proxy,
}

/// Reads the delivery keys of `[secrets.NAME]`: `Some` for a valid
/// `deliver = "proxy"`, `None` for raw delivery or after reporting errors
/// (the caller tells the two apart by the diagnostics).
pub(super) fn delivery(w: &mut Walker<'_>, name: &str, t: &DeTable<'_>) -> Option<ProxyDelivery> {
    let section = format!("[secrets.{name}]");
    let words = [("raw", Deliver::Raw), ("proxy", Deliver::Proxy)];
    let deliver = match t.get("deliver") {
        Some(v) => w.word("deliver", v, &words)?,
        None => Deliver::Raw,
    };
    if deliver == Deliver::Raw {
        for key in KEYS.iter().skip(1) {
            if let Some(v) = t.get(*key) {
                let msg = format!("`{key}` in {section} only applies to deliver = \"proxy\" (the value is injected by cordon's egress proxy); add deliver = \"proxy\" or remove `{key}`");
                w.error(&v.span(), msg);
            }
        }
        return None;
    }
    let exposed = |v: &&Value<'_>| matches!(v.get_ref(), DeValue::Boolean(true));
    if let Some(v) = t.get("expose").filter(exposed) {
        let msg = format!("`expose` makes no sense with deliver = \"proxy\" in {section}: the point is that no process holds the value; remove `expose`, or deliver it raw");
        w.error(&v.span(), msg);
    }
    let hosts = match t.get("hosts") {
        Some(v) => hosts(w, v),
        None => {
            let at = t.get("deliver").map(|v| v.span()).unwrap_or_default();
            let msg = format!("{section} with deliver = \"proxy\" needs `hosts`, the only places the value may be sent, as in hosts = [\"api.github.com:443\"]");
            w.error(&at, msg);
            None
        }
    };
    let header = match t.get("header") {
        Some(v) => header(w, v),
        None => Some(DEFAULT_HEADER.to_string()),
    };
    let form = presentation(w, &section, t, header.as_deref());
    Some(ProxyDelivery {
        hosts: hosts?,
        header: header?,
        form: form?,
    })
}

/// `hosts = ["NAME:PORT", ...]`: exact names and ports.
fn hosts(w: &mut Walker<'_>, v: &Value<'_>) -> Option<Vec<HostRule>> {
    let expects = "an array of \"NAME:PORT\" strings, e.g. [\"api.github.com:443\"]";
    let items = w.array("hosts", v, expects);
    if matches!(v.get_ref(), DeValue::Array(_)) && items.is_empty() {
        w.error(
            &v.span(),
            "`hosts` is empty: name at least one \"NAME:PORT\" the value may be sent to",
        );
        return None;
    }
    if items.len() > MAX_HOSTS {
        let msg = format!(
            "`hosts` lists {} entries; at most {MAX_HOSTS} (a credential belongs to one service)",
            items.len()
        );
        w.error(&v.span(), msg);
        return None;
    }
    let mut out: Vec<HostRule> = Vec::new();
    let mut ok = true;
    for item in items {
        let Some(text) = w.string("hosts", item, "\"NAME:PORT\" strings") else {
            ok = false;
            continue;
        };
        let origin = w.loc(&item.span());
        let rule = match parse_rule(&text, origin) {
            Ok(r) => r,
            Err(msg) => {
                w.error(&item.span(), format!("`hosts`: {msg}"));
                ok = false;
                continue;
            }
        };
        if let Some(why) = not_exact(&rule) {
            w.error(&item.span(), format!("`hosts`: `{}` {why}", rule.text));
            ok = false;
        } else if out
            .iter()
            .any(|r| r.host == rule.host && r.port == rule.port)
        {
            w.error(
                &item.span(),
                format!("`{}` is listed twice in `hosts`", rule.text),
            );
            ok = false;
        } else {
            out.push(rule);
        }
    }
    ok.then_some(out)
}

/// Why a rule cannot name where a secret is sent, if it cannot.
///
/// Wildcards are refused: the proxy would mint a certificate for, and
/// send the value to, every name below the pattern, and the names below
/// a service's domain often serve other people's content
/// (`*.githubusercontent.com`). Literal addresses are refused because the
/// client's TLS check is then against an address, not the service's name.
fn not_exact(rule: &HostRule) -> Option<&'static str> {
    if !rule.via.is_empty() {
        return Some("has `via`: which addresses a name may resolve to belongs in the `allow_hosts` of where the secret is delivered");
    }
    if rule.port == PortPattern::Any {
        return Some("needs an exact port (the value goes to that port only), e.g. `:443`");
    }
    match rule.host {
        HostPattern::Name(_) => None,
        HostPattern::Block(_) => Some("is an address: a proxy-delivered secret goes to host names only (the TLS certificate is checked against the name)"),
        HostPattern::AnyName | HostPattern::Below(_) => Some("is a wildcard: name each host exactly (names below a service's domain may serve other people's content, which would receive the value)"),
    }
}

/// `header = "X-Api-Key"`: an HTTP header name the proxy does not own.
fn header(w: &mut Walker<'_>, v: &Value<'_>) -> Option<String> {
    let name = w.string("header", v, "an HTTP header name such as \"Authorization\"")?;
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        let msg = format!(
            "`header = \"{}\"` is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)",
            name.escape_debug()
        );
        w.error(&v.span(), msg);
        return None;
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        let msg = format!("`header = \"{name}\"`: cordon's proxy owns that header (framing, routing or the hop to the proxy); put the secret in the header the service reads, e.g. \"Authorization\"");
        w.error(&v.span(), msg);
        return None;
    }
    Some(name)
}

/// `format = "Bearer {}"` or `basic = { user = "..." }`, exactly one.
fn presentation(
    w: &mut Walker<'_>,
    section: &str,
    t: &DeTable<'_>,
    header: Option<&str>,
) -> Option<Presentation> {
    match (t.get("format"), t.get("basic")) {
        (Some(f), Some(b)) => {
            let msg = format!(
                "{section} has both `format` and `basic` (at line {}); keep one",
                w.loc(&f.span()).line
            );
            w.error(&b.span(), msg);
            None
        }
        (Some(f), None) => format(w, f),
        (None, Some(b)) => {
            let user = basic(w, b)?;
            if header.is_some_and(|h| !h.eq_ignore_ascii_case(DEFAULT_HEADER)) {
                let at = t
                    .get("header")
                    .map(|v| v.span())
                    .unwrap_or_else(|| b.span());
                w.error(
                    &at,
                    "`basic` credentials go in the `Authorization` header; remove `header`",
                );
                return None;
            }
            Some(Presentation::Basic { user })
        }
        (None, None) => {
            let at = t.get("deliver").map(|v| v.span()).unwrap_or_default();
            let msg = format!("{section} with deliver = \"proxy\" needs how the value is written in its header: format = \"Bearer {{}}\" (`{{}}` is the secret; \"{{}}\" for the bare value) or basic = {{ user = \"x-access-token\" }}");
            w.error(&at, msg);
            None
        }
    }
}

fn format(w: &mut Walker<'_>, v: &Value<'_>) -> Option<Presentation> {
    let text = w.string(
        "format",
        v,
        "a string with one `{}` where the secret goes, e.g. \"Bearer {}\"",
    )?;
    let mut parts = text.split("{}");
    let (Some(before), Some(after), None) = (parts.next(), parts.next(), parts.next()) else {
        let msg = format!(
            "`format = \"{}\"` must contain `{{}}` exactly once, where the secret goes",
            text.escape_debug()
        );
        w.error(&v.span(), msg);
        return None;
    };
    let printable = |s: &str| s.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !printable(&text) || text.starts_with(' ') || text.ends_with(' ') {
        let msg = format!("`format = \"{}\"`: only printable ASCII, without leading or trailing spaces (the header value is matched exactly)", text.escape_debug());
        w.error(&v.span(), msg);
        return None;
    }
    Some(Presentation::Format {
        before: before.to_string(),
        after: after.to_string(),
    })
}

fn basic(w: &mut Walker<'_>, v: &Value<'_>) -> Option<String> {
    let DeValue::Table(t) = v.get_ref() else {
        let msg = format!(
            "`basic` expects a table such as {{ user = \"x-access-token\" }}, got {}",
            article(v.get_ref())
        );
        w.error(&v.span(), msg);
        return None;
    };
    w.unknown_keys(t, &["user"], "`basic`");
    let Some(u) = t.get("user") else {
        w.error(&v.span(), "`basic` needs `user`, the user name sent with the secret as password, as in { user = \"x-access-token\" }");
        return None;
    };
    let user = w.string("user", u, "a user name")?;
    if user.is_empty() || user.contains(':') || !user.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        let msg = format!(
            "`user = \"{}\"`: a basic-auth user name is printable ASCII without spaces or `:`",
            user.escape_debug()
        );
        w.error(&u.span(), msg);
        return None;
    }
    Some(user)
}

#[cfg(test)]
#[path = "deliver_tests.rs"]
mod tests;
