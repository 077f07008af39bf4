//! `from = "identity:jwt?aud=AUD[&aud=AUD2][&bind=call|session]"`: a
//! secret whose value is a token cordon mints with its workload identity
//! (see `identity`), for the audiences named, valid for the secret's
//! `ttl`.
//!
//! `bind=call` (the default) mints a fresh token for each call, carrying
//! the call's id, tool and argument digest; `bind=session` mints one that
//! names only the session, which `cache = true` may reuse across calls.
//! The query is split on `&` and `=`; `%XX` escapes the rare audience
//! that contains either.

use std::ops::Range;

use super::walk::Walker;
use super::{IdentityBind, IdentitySource, SecretSource};

/// Audiences one token may carry.
const MAX_AUDIENCES: usize = 8;
const MAX_AUDIENCE_LEN: usize = 256;

/// The part after `identity:`.
pub(super) fn identity_source(
    w: &mut Walker<'_>,
    rest: &str,
    span: &Range<usize>,
) -> Option<SecretSource> {
    let example = "as in \"identity:jwt?aud=https://api.example.com\"";
    let (kind, query) = rest.split_once('?').unwrap_or((rest, ""));
    if kind != "jwt" {
        let msg = format!(
            "`identity:{}`: the only identity kind is `jwt`, {example}",
            kind.escape_debug()
        );
        w.error(span, msg);
        return None;
    }
    let mut audiences = Vec::new();
    let mut bind = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(value) = percent_decode(value) else {
            let msg = format!(
                "`identity:jwt`: `{}` has a broken %-escape; write %XX with two hex digits",
                pair.escape_debug()
            );
            w.error(span, msg);
            return None;
        };
        match key {
            "aud" => {
                if let Some(problem) = audience_problem(&value) {
                    w.error(span, format!("`identity:jwt`: audience {problem}"));
                    return None;
                }
                if audiences.contains(&value) {
                    let msg = format!("`identity:jwt`: audience `{value}` is named twice");
                    w.error(span, msg);
                    return None;
                }
                audiences.push(value);
            }
            "bind" => {
                let words = [
                    ("call", IdentityBind::Call),
                    ("session", IdentityBind::Session),
                ];
                let Some((_, b)) = words.iter().find(|(k, _)| *k == value) else {
                    let msg = format!(
                        "`identity:jwt`: `bind` must be `call` or `session`, got `{}`",
                        value.escape_debug()
                    );
                    w.error(span, msg);
                    return None;
                };
                if bind.replace(*b).is_some() {
                    w.error(span, "`identity:jwt`: `bind` is given twice");
                    return None;
                }
            }
            other => {
                let msg = format!(
                    "`identity:jwt`: unknown parameter `{}`; the parameters are `aud` and `bind`",
                    other.escape_debug()
                );
                w.error(span, msg);
                return None;
            }
        }
    }
    if audiences.is_empty() {
        let msg = format!("`identity:jwt` needs an audience (who the token is for), {example}");
        w.error(span, msg);
        return None;
    }
    if audiences.len() > MAX_AUDIENCES {
        let msg = format!("`identity:jwt`: at most {MAX_AUDIENCES} audiences per token");
        w.error(span, msg);
        return None;
    }
    Some(SecretSource::Identity(IdentitySource {
        audiences,
        bind: bind.unwrap_or(IdentityBind::Call),
    }))
}

fn audience_problem(aud: &str) -> Option<String> {
    if aud.is_empty() {
        return Some("is empty".into());
    }
    if aud.len() > MAX_AUDIENCE_LEN {
        return Some(format!("is longer than {MAX_AUDIENCE_LEN} bytes"));
    }
    if aud.chars().any(char::is_control) {
        return Some(format!(
            "`{}` contains a control character",
            aud.escape_debug()
        ));
    }
    None
}

/// `%XX` to its byte; `None` for a broken escape or a result that is not
/// UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_escapes() {
        assert_eq!(percent_decode("a%26b%3dc").as_deref(), Some("a&b=c"));
        assert_eq!(
            percent_decode("plain://x/y").as_deref(),
            Some("plain://x/y")
        );
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
    }
}
