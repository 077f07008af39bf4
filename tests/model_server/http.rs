//! Just enough HTTP/1.1 for the three CLIs: one request per connection
//! (every answer says `Connection: close`), bodies by Content-Length or
//! chunked, answers as JSON or as a chunked Server-Sent-Events stream.

use serde_json::Value;
use std::io::{self, BufRead, BufReader, Read, Write};

/// A request body larger than this is refused: the CLIs send a few hundred
/// KiB at most (system prompt, tool schemas, history).
const MAX_BODY: usize = 64 << 20;
const MAX_HEAD_LINES: usize = 200;

pub struct Request {
    pub method: String,
    /// Origin form (`/v1/messages?beta=true`), also when the client sent an
    /// absolute URL.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one request; `Ok(None)` when the peer closed before sending one.
pub fn read_request(stream: &mut impl Read) -> io::Result<Option<Request>> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(bad(format!("bad request line {line:?}")));
    };
    let method = method.to_string();
    // An absolute URL (a client that talks to us as if we were a proxy).
    let target = match target.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or_else(|| "/".to_string(), |i| rest[i..].to_string()),
        None => target.to_string(),
    };
    let mut headers = Vec::new();
    for _ in 0..MAX_HEAD_LINES {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("connection closed inside the request head"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            let mut req = Request {
                method,
                target,
                headers,
                body: Vec::new(),
            };
            req.body = read_body(&mut r, &req)?;
            return Ok(Some(req));
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Err(bad("request head has too many lines"))
}

fn read_body(r: &mut impl BufRead, req: &Request) -> io::Result<Vec<u8>> {
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            let n = usize::from_str_radix(size, 16)
                .map_err(|_| bad(format!("bad chunk size {size:?}")))?;
            if body.len() + n > MAX_BODY {
                return Err(bad("request body too large"));
            }
            if n == 0 {
                // Trailers, up to the empty line.
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        return Ok(body);
                    }
                }
            }
            let start = body.len();
            body.resize(start + n, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    }
    let n = match req.header("content-length") {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| bad(format!("bad Content-Length {v:?}")))?,
        None => 0,
    };
    if n > MAX_BODY {
        return Err(bad("request body too large"));
    }
    let mut body = vec![0; n];
    r.read_exact(&mut body)?;
    Ok(body)
}

/// What the server answers.
pub enum Reply {
    Json(u16, Value),
    /// Events as (event name, data); written as a chunked SSE stream, one
    /// chunk per event, so the client parses it as it arrives.
    Sse(Vec<(Option<&'static str>, Value)>),
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        400 => "Bad Request",
        _ => "Status",
    }
}

pub fn write_reply(w: &mut impl Write, reply: &Reply) -> io::Result<()> {
    match reply {
        Reply::Json(status, v) => {
            let body = v.to_string();
            write!(
                w,
                "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                reason(*status),
                body.len()
            )?;
        }
        Reply::Sse(events) => {
            write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                 Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\
                 Connection: close\r\n\r\n"
            )?;
            for (event, data) in events {
                let mut chunk = String::new();
                if let Some(e) = event {
                    chunk.push_str("event: ");
                    chunk.push_str(e);
                    chunk.push('\n');
                }
                chunk.push_str("data: ");
                chunk.push_str(&data.to_string());
                chunk.push_str("\n\n");
                write!(w, "{:x}\r\n{chunk}\r\n", chunk.len())?;
                w.flush()?;
            }
            write!(w, "0\r\n\r\n")?;
        }
    }
    w.flush()
}
