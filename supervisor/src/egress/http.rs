//! The proxy's side of HTTP/1.x: reading a request head, and what it asks
//! for (pure). Only two forms are served: `CONNECT host:port` (a tunnel,
//! for TLS) and an absolute-URI request for plain HTTP
//! (`GET http://host/path`), whose head is rewritten to origin form with
//! `Connection: close` so one connection carries one request to one host.

/// Longest request head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header lines accepted.
pub const MAX_HEADERS: usize = 100;

/// What a client asked the proxy for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A tunnel; `rest` is what the client sent after the head.
    Connect { host: String, port: u16 },
    /// A plain-HTTP request; `head` is the rewritten head to send upstream.
    Forward {
        host: String,
        port: u16,
        head: Vec<u8>,
    },
}

impl Request {
    pub fn host(&self) -> &str {
        match self {
            Request::Connect { host, .. } | Request::Forward { host, .. } => host,
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            Request::Connect { port, .. } | Request::Forward { port, .. } => *port,
        }
    }
}

/// Why a head was refused; each becomes a 4xx answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("the request head is over {MAX_HEAD} bytes")]
    TooLarge,
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("this is a proxy: send `CONNECT host:port` or an absolute `http://` URL, not `{0}`")]
    NotProxyForm(String),
    #[error("`https://` URLs must go through CONNECT (set HTTPS_PROXY)")]
    HttpsUrl,
    #[error("only http:// URLs can be forwarded, not `{0}`")]
    Scheme(String),
}

impl HeadError {
    /// The status line's code and phrase.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            HeadError::TooLarge => (431, "Request Header Fields Too Large"),
            _ => (400, "Bad Request"),
        }
    }
}

/// Where the head ends (just past `\r\n\r\n`), if it is complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Parses a complete head (up to and including the blank line).
pub fn parse(head: &[u8]) -> Result<Request, HeadError> {
    if head.len() > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let text = std::str::from_utf8(head)
        .map_err(|_| HeadError::Malformed("the head is not valid UTF-8".into()))?;
    let body = text
        .strip_suffix("\r\n\r\n")
        .ok_or_else(|| HeadError::Malformed("the head does not end with a blank line".into()))?;
    let mut lines = body.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed(format!(
            "the request line `{}` is not `METHOD TARGET HTTP/1.x`",
            line.escape_debug()
        )));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(HeadError::Malformed(format!(
            "unsupported version `{}`",
            version.escape_debug()
        )));
    }
    if method.is_empty() || !method.bytes().all(is_token) {
        return Err(HeadError::Malformed("the method is not a token".into()));
    }
    let headers = headers(lines)?;
    if method == "CONNECT" {
        let (host, port) = authority(target, None)?;
        return Ok(Request::Connect { host, port });
    }
    let lower = target.to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &target["http://".len()..]
    } else if lower.starts_with("https://") {
        return Err(HeadError::HttpsUrl);
    } else if target.starts_with('/') || target == "*" {
        return Err(HeadError::NotProxyForm(target.escape_debug().to_string()));
    } else {
        let scheme = target.split(':').next().unwrap_or(target);
        return Err(HeadError::Scheme(scheme.escape_debug().to_string()));
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (auth, path) = rest.split_at(split);
    let (host, port) = authority(auth, Some(80))?;
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    if path.contains('#') {
        return Err(HeadError::Malformed(
            "a fragment (`#`) in the request target".into(),
        ));
    }
    Ok(Request::Forward {
        head: rewrite(method, &path, version, &headers, auth),
        host,
        port,
    })
}

pub(super) fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Header lines as (name, value), checked.
pub(super) fn headers<'a>(
    lines: impl Iterator<Item = &'a str>,
) -> Result<Vec<(&'a str, &'a str)>, HeadError> {
    let mut out = Vec::new();
    for line in lines {
        if out.len() >= MAX_HEADERS {
            return Err(HeadError::Malformed(format!(
                "more than {MAX_HEADERS} header lines"
            )));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(HeadError::Malformed(format!(
                "header line without `:`: `{}`",
                line.escape_debug()
            )));
        };
        if name.is_empty() || !name.bytes().all(is_token) {
            // Also refuses obsolete line folding (a line starting with a space).
            return Err(HeadError::Malformed(format!(
                "bad header name `{}`",
                name.escape_debug()
            )));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(HeadError::Malformed(
                "control characters in a header value".into(),
            ));
        }
        out.push((name, value.trim()));
    }
    Ok(out)
}

/// `host:port` (or `host`, with `default_port`); IPv6 in brackets. The
/// host keeps to the characters of names and addresses, so nothing like
/// userinfo (`user@host`) or percent-encoding reaches a decision.
fn authority(auth: &str, default_port: Option<u16>) -> Result<(String, u16), HeadError> {
    let bad =
        |why: &str| HeadError::Malformed(format!("authority `{}`: {why}", auth.escape_debug()));
    if auth.contains('@') {
        return Err(bad("userinfo (`user@host`) is not accepted"));
    }
    let (host, port) = if let Some(rest) = auth.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(bad("junk after `]`")),
        }
    } else {
        match auth.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(bad("an IPv6 address must be in brackets"))
            }
            Some((h, p)) => (h, Some(p)),
            None => (auth, None),
        }
    };
    if host.is_empty() || host.len() > crate::profile::hosts::MAX_NAME {
        return Err(bad("the host must be 1-253 characters"));
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    {
        return Err(bad("the host has characters no host name or address has"));
    }
    let port = match (port, default_port) {
        (Some(p), _) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the port must be 1-65535"))?,
        (None, Some(d)) => d,
        (None, None) => return Err(bad("CONNECT needs host:port")),
    };
    Ok((host.to_string(), port))
}

/// Headers that concern only the hop to the proxy.
pub(super) const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
];

/// The head sent upstream: origin form, hop-by-hop headers (and those
/// `Connection` names) dropped, `Host` set to the request target's
/// authority (the one that was decided, whatever `Host` the client sent:
/// an upstream that routes by `Host` must not be steered elsewhere),
/// `Connection: close`.
fn rewrite(
    method: &str,
    path: &str,
    version: &str,
    headers: &[(&str, &str)],
    auth: &str,
) -> Vec<u8> {
    let named: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    let mut out = format!("{method} {path} {version}\r\nHost: {auth}\r\n");
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if HOP_BY_HOP.contains(&lower.as_str()) || named.contains(&lower) || lower == "host" {
            continue;
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// A complete answer from the proxy itself (a refusal or an error).
pub fn answer(code: u16, phrase: &str, message: &str) -> Vec<u8> {
    let body = format!("cordon: {message}\n");
    format!(
        "HTTP/1.1 {code} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(head: &str) -> (String, u16, String) {
        match parse(head.as_bytes()) {
            Ok(Request::Forward { host, port, head }) => {
                (host, port, String::from_utf8(head).unwrap())
            }
            other => panic!("{head:?}: {other:?}"),
        }
    }

    #[test]
    fn connect_is_parsed() {
        let r = parse(b"CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\n\r\n");
        assert_eq!(
            r,
            Ok(Request::Connect {
                host: "api.github.com".into(),
                port: 443
            })
        );
        let r = parse(b"CONNECT [::1]:8443 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((r.host(), r.port()), ("::1", 8443));
        assert!(parse(b"CONNECT api.github.com HTTP/1.1\r\n\r\n").is_err());
        assert!(parse(b"CONNECT api.github.com:0 HTTP/1.1\r\n\r\n").is_err());
    }

    #[test]
    fn absolute_urls_are_rewritten_to_origin_form() {
        let (host, port, head) = forward(
            "GET http://Example.com:8080/a/b?c=d HTTP/1.1\r\nHost: Example.com:8080\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nAccept: */*\r\n\r\n",
        );
        assert_eq!((host.as_str(), port), ("Example.com", 8080));
        assert_eq!(
            head,
            "GET /a/b?c=d HTTP/1.1\r\nHost: Example.com:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        let (_, port, head) = forward("POST http://h.test HTTP/1.0\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(port, 80);
        assert_eq!(
            head,
            "POST / HTTP/1.0\r\nHost: h.test\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
        let (_, _, head) = forward("GET http://h.test?q=1 HTTP/1.1\r\n\r\n");
        assert!(head.starts_with("GET /?q=1 HTTP/1.1\r\n"), "{head}");
    }

    #[test]
    fn the_decided_target_is_the_host_upstream_whatever_the_client_says() {
        // One Host header, the request target's, in every casing and count.
        let (host, _, head) = forward(
            "GET http://allowed.test/x HTTP/1.1\r\nHost: internal.test\r\nhOsT: other.test\r\nAccept: */*\r\n\r\n",
        );
        assert_eq!(host, "allowed.test");
        assert_eq!(
            head,
            "GET /x HTTP/1.1\r\nHost: allowed.test\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        let lower = head.to_ascii_lowercase();
        assert_eq!(lower.matches("\r\nhost:").count(), 1, "{head}");
    }

    #[test]
    fn what_a_proxy_must_not_accept_is_refused() {
        for (head, says) in [
            ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "this is a proxy"),
            ("GET https://x.test/ HTTP/1.1\r\n\r\n", "CONNECT"),
            ("GET ftp://x.test/ HTTP/1.1\r\n\r\n", "only http"),
            ("GET http://user:pw@x.test/ HTTP/1.1\r\n\r\n", "userinfo"),
            ("CONNECT a:b:443 HTTP/1.1\r\n\r\n", "brackets"),
            ("GET http://x%2etest/ HTTP/1.1\r\n\r\n", "characters"),
            ("GET http://x.test/ HTTP/2.0\r\n\r\n", "version"),
            ("GET  http://x.test/ HTTP/1.1\r\n\r\n", "request line"),
            ("GET http://x.test/ HTTP/1.1\r\n folded\r\n\r\n", "header"),
            (
                "GET http://x.test/ HTTP/1.1\r\nBad Name: v\r\n\r\n",
                "header name",
            ),
            ("GET http://x.test/#f HTTP/1.1\r\n\r\n", "fragment"),
            ("G(T http://x.test/ HTTP/1.1\r\n\r\n", "token"),
            ("CONNECT x.test:443 HTTP/1.1\r\n", "blank line"),
        ] {
            let e = parse(head.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(says), "{head:?}: {e}");
        }
        let big = format!(
            "GET http://x.test/ HTTP/1.1\r\nA: {}\r\n\r\n",
            "a".repeat(MAX_HEAD)
        );
        assert_eq!(parse(big.as_bytes()), Err(HeadError::TooLarge));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("H{i}: v\r\n")).collect();
        let e = parse(format!("GET http://x.test/ HTTP/1.1\r\n{many}\r\n").as_bytes());
        assert!(e.is_err());
    }

    #[test]
    fn head_end_finds_the_blank_line() {
        assert_eq!(head_end(b"CONNECT a:1 HTTP/1.1\r\n\r\nTLS"), Some(24));
        assert_eq!(head_end(b"CONNECT a:1 HTTP/1.1\r\n"), None);
    }
}
