//! HTTP/1.1 messages inside a TLS-terminated tunnel: request and response
//! heads, and bodies by their framing (RFC 9112). The parsing is pure;
//! reading takes any [`BufRead`].
//!
//! Strict where ambiguity could smuggle a second request past the
//! injector: a request with both `Transfer-Encoding` and
//! `Content-Length`, several different `Content-Length`s, a transfer
//! coding other than `chunked`, obsolete line folding or a bare LF is
//! refused. Bodies are decoded and framed again on the way out, so the
//! peer sees exactly the framing the proxy understood.

use std::io::{self, BufRead, Read, Write};

use super::http::{self, HeadError};

/// Longest response head accepted from a real host.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Longest chunk-size line (with extensions) or trailer section.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;
/// Body bytes handed on per piece.
const PIECE: usize = 64 * 1024;

/// A request read inside the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Origin form (`/path?query`) or `*`.
    pub target: String,
    pub version: Version,
    pub headers: Vec<(String, String)>,
}

/// A response read from the real host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub version: Version,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }

    fn parse(text: &str) -> Result<Version, HeadError> {
        match text {
            "HTTP/1.1" => Ok(Version::Http11),
            "HTTP/1.0" => Ok(Version::Http10),
            "HTTP/2.0" | "HTTP/2" => Err(HeadError::Malformed(
                "HTTP/2 is not spoken on a connection whose requests get credentials injected; use HTTP/1.1".into(),
            )),
            v => Err(HeadError::Malformed(format!(
                "unsupported version `{}`",
                v.escape_debug()
            ))),
        }
    }
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the connection closes (responses only).
    Close,
}

/// Finds every value of header `name` (any case).
pub fn values<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether some comma-separated element of header `name` is `token`.
pub fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    values(headers, name).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

impl Request {
    /// `METHOD TARGET VERSION`, for records and messages.
    pub fn line(&self) -> String {
        format!("{} {} {}", self.method, self.target, self.version.as_str())
    }

    /// The body's framing; refuses what could be read two ways.
    pub fn framing(&self) -> Result<Framing, HeadError> {
        let te: Vec<&str> = values(&self.headers, "transfer-encoding").collect();
        let cl = content_length(&self.headers)?;
        if !te.is_empty() {
            if cl.is_some() {
                return Err(HeadError::Malformed(
                    "both Transfer-Encoding and Content-Length".into(),
                ));
            }
            let codings: Vec<String> = te
                .iter()
                .flat_map(|v| v.split(','))
                .map(|t| t.trim().to_ascii_lowercase())
                .collect();
            if codings != ["chunked"] {
                return Err(HeadError::Malformed(format!(
                    "Transfer-Encoding `{}`: only `chunked` is relayed",
                    te.join(", ").escape_debug()
                )));
            }
            return Ok(Framing::Chunked);
        }
        Ok(cl.map_or(Framing::None, Framing::Length))
    }

    /// The client wants the connection closed after this exchange.
    pub fn wants_close(&self) -> bool {
        match self.version {
            Version::Http11 => has_token(&self.headers, "connection", "close"),
            Version::Http10 => !has_token(&self.headers, "connection", "keep-alive"),
        }
    }
}

impl Response {
    /// The body's framing for a response to `method` (RFC 9112 6.3).
    pub fn framing(&self, method: &str) -> Result<Framing, HeadError> {
        if method.eq_ignore_ascii_case("HEAD")
            || (100..200).contains(&self.status)
            || self.status == 204
            || self.status == 304
        {
            return Ok(Framing::None);
        }
        let te: Vec<String> = values(&self.headers, "transfer-encoding")
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .collect();
        if !te.is_empty() {
            return Ok(if te.last().is_some_and(|t| t == "chunked") {
                Framing::Chunked
            } else {
                Framing::Close
            });
        }
        Ok(content_length(&self.headers)?.map_or(Framing::Close, Framing::Length))
    }

    /// The server closes the connection after this response.
    pub fn closes(&self) -> bool {
        match self.version {
            Version::Http11 => has_token(&self.headers, "connection", "close"),
            Version::Http10 => !has_token(&self.headers, "connection", "keep-alive"),
        }
    }
}

/// The one Content-Length, if any; several equal ones count as one.
fn content_length(headers: &[(String, String)]) -> Result<Option<u64>, HeadError> {
    let mut found: Option<u64> = None;
    for v in values(headers, "content-length") {
        for part in v.split(',') {
            let part = part.trim();
            let n =
                (!part.is_empty() && part.len() <= 19 && part.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| part.parse::<u64>().ok())
                    .flatten()
                    .ok_or_else(|| {
                        HeadError::Malformed(format!("Content-Length `{}`", v.escape_debug()))
                    })?;
            if found.is_some_and(|f| f != n) {
                return Err(HeadError::Malformed(
                    "several different Content-Lengths".into(),
                ));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

/// Why reading a message failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Head(#[from] HeadError),
    #[error("the connection ended inside a message")]
    Truncated,
    #[error("malformed chunked body: {0}")]
    Chunked(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads one head (through its blank line), at most `max` bytes.
/// `Ok(None)`: the peer closed cleanly before sending anything. Empty
/// lines before the head are skipped (RFC 9112 2.2).
pub fn read_head<R: BufRead>(r: &mut R, max: usize) -> Result<Option<Vec<u8>>, ReadError> {
    let mut head = Vec::new();
    loop {
        let budget = max.saturating_sub(head.len());
        if budget == 0 {
            return Err(HeadError::TooLarge.into());
        }
        let start = head.len();
        let n = r
            .by_ref()
            .take(budget as u64 + 1)
            .read_until(b'\n', &mut head)?;
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Truncated)
            };
        }
        if head.len() > max {
            return Err(HeadError::TooLarge.into());
        }
        let line = &head[start..];
        if !line.ends_with(b"\r\n") {
            if line.ends_with(b"\n") {
                return Err(HeadError::Malformed("a line ends in a bare LF".into()).into());
            }
            return Err(ReadError::Truncated);
        }
        if line == b"\r\n" {
            if start == 0 {
                head.clear();
                continue;
            }
            return Ok(Some(head));
        }
    }
}

/// Header lines as (name, value), in order.
pub type Headers = Vec<(String, String)>;

/// Splits a head into its first line and checked headers.
fn split(head: &[u8]) -> Result<(&str, Headers), HeadError> {
    let text = std::str::from_utf8(head)
        .map_err(|_| HeadError::Malformed("the head is not valid UTF-8".into()))?;
    let body = text
        .strip_suffix("\r\n\r\n")
        .ok_or_else(|| HeadError::Malformed("the head does not end with a blank line".into()))?;
    if body.split("\r\n").any(|l| l.contains(['\r', '\n', '\0'])) {
        return Err(HeadError::Malformed(
            "a bare CR or LF, or a NUL, in the head".into(),
        ));
    }
    let mut lines = body.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let headers = http::headers(lines)?
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    Ok((first, headers))
}

/// Parses a request head read inside the tunnel.
pub fn parse_request(head: &[u8]) -> Result<Request, HeadError> {
    let (line, headers) = split(head)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed(format!(
            "the request line `{}` is not `METHOD TARGET HTTP/1.x`",
            line.escape_debug()
        )));
    };
    let version = Version::parse(version)?;
    if method.is_empty() || !method.bytes().all(http::is_token) {
        return Err(HeadError::Malformed("the method is not a token".into()));
    }
    if method == "CONNECT" {
        return Err(HeadError::Malformed("CONNECT inside a tunnel".into()));
    }
    let origin = target.starts_with('/') || (target == "*" && method == "OPTIONS");
    if !origin || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(HeadError::Malformed(format!(
            "inside the tunnel the target must be a path (`/...`), not `{}`",
            target.escape_debug()
        )));
    }
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        version,
        headers,
    })
}

/// Parses a response head from the real host.
pub fn parse_response(head: &[u8]) -> Result<Response, HeadError> {
    let (line, headers) = split(head)?;
    let mut parts = line.splitn(3, ' ');
    let (Some(version), Some(status)) = (parts.next(), parts.next()) else {
        return Err(HeadError::Malformed("no status line".into()));
    };
    let version = Version::parse(version)?;
    let status = status
        .parse::<u16>()
        .ok()
        .filter(|s| (100..=999).contains(s) && status.len() == 3)
        .ok_or_else(|| HeadError::Malformed(format!("status `{}`", status.escape_debug())))?;
    Ok(Response {
        version,
        status,
        reason: parts.next().unwrap_or_default().to_string(),
        headers,
    })
}

/// A message body being read: [`Body::next`] gives the decoded content
/// piece by piece.
pub struct Body {
    state: State,
    buf: Vec<u8>,
}

enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Close,
    Done,
}

impl Body {
    pub fn new(framing: Framing) -> Body {
        let state = match framing {
            Framing::None | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::Close => State::Close,
        };
        Body {
            state,
            buf: vec![0u8; PIECE],
        }
    }

    /// Whether the whole body has been read.
    pub fn done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The next piece of content; `None` at the end of the body. Chunk
    /// extensions and trailers are read and dropped.
    pub fn next<R: BufRead>(&mut self, r: &mut R) -> Result<Option<&[u8]>, ReadError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Length(left) | State::ChunkData(left) => {
                    let want = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(self.buf.len());
                    let n = r.read(&mut self.buf[..want])?;
                    if n == 0 {
                        return Err(ReadError::Truncated);
                    }
                    let left = left - n as u64;
                    self.state = match (&self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), l) => State::Length(l),
                        (_, 0) => State::ChunkEnd,
                        (_, l) => State::ChunkData(l),
                    };
                    return Ok(Some(&self.buf[..n]));
                }
                State::Close => {
                    let n = r.read(&mut self.buf)?;
                    if n == 0 {
                        self.state = State::Done;
                        return Ok(None);
                    }
                    return Ok(Some(&self.buf[..n]));
                }
                State::ChunkSize => {
                    let line = read_line(r, MAX_CHUNK_LINE)?;
                    let size = line
                        .split(';')
                        .next()
                        .unwrap_or_default()
                        .trim_end_matches([' ', '\t']);
                    if size.is_empty()
                        || size.len() > 15
                        || !size.bytes().all(|b| b.is_ascii_hexdigit())
                    {
                        return Err(ReadError::Chunked(format!(
                            "chunk size `{}`",
                            size.escape_debug()
                        )));
                    }
                    let n = u64::from_str_radix(size, 16)
                        .map_err(|_| ReadError::Chunked("chunk size".into()))?;
                    if n == 0 {
                        skip_trailers(r)?;
                        self.state = State::Done;
                        return Ok(None);
                    }
                    self.state = State::ChunkData(n);
                }
                State::ChunkEnd => {
                    let mut crlf = [0u8; 2];
                    r.read_exact(&mut crlf).map_err(|e| match e.kind() {
                        io::ErrorKind::UnexpectedEof => ReadError::Truncated,
                        _ => ReadError::Io(e),
                    })?;
                    if &crlf != b"\r\n" {
                        return Err(ReadError::Chunked("no CRLF after a chunk".into()));
                    }
                    self.state = State::ChunkSize;
                }
            }
        }
    }
}

/// One CRLF-terminated line, without its CRLF.
fn read_line<R: BufRead>(r: &mut R, max: usize) -> Result<String, ReadError> {
    let mut line = Vec::new();
    r.by_ref()
        .take(max as u64 + 2)
        .read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(if line.len() > max {
            ReadError::Chunked("an over-long line".into())
        } else {
            ReadError::Truncated
        });
    }
    if !line.ends_with(b"\r\n") {
        return Err(ReadError::Chunked("a line ends in a bare LF".into()));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| ReadError::Chunked("a line is not UTF-8".into()))
}

fn skip_trailers<R: BufRead>(r: &mut R) -> Result<(), ReadError> {
    let mut total = 0;
    loop {
        let line = read_line(r, MAX_CHUNK_LINE)?;
        if line.is_empty() {
            return Ok(());
        }
        total += line.len();
        if total > MAX_TRAILERS {
            return Err(ReadError::Chunked("trailers over 16 KiB".into()));
        }
    }
}

/// Writes `data` as one chunk (nothing for empty data: an empty chunk
/// would end the body).
pub fn write_chunk<W: Write>(w: &mut W, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    w.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
    w.write_all(data)?;
    w.write_all(b"\r\n")
}

/// Ends a chunked body (no trailers).
pub fn end_chunks<W: Write>(w: &mut W) -> io::Result<()> {
    w.write_all(b"0\r\n\r\n")
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
