// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use std::io::BufReader;

use super::*;

fn request(text: &str) -> Result<Request, String> {
    parse_request(text.as_bytes()).map_err(|e| e.to_string())
}

/// The whole decoded body of `wire` with `framing`, and what is left.
fn body(framing: Framing, wire: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut r = BufReader::with_capacity(7, wire);
    let mut b = Body::new(framing);
    let mut out = Vec::new();
    while let Some(piece) = b.next(&mut r).map_err(|e| e.to_string())? {
        out.extend_from_slice(piece);
    }
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut rest).unwrap();
    Ok((out, rest))
}

#[test]
fn heads_are_read_through_the_blank_line_only() {
    let wire = b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n\r\n";
    let mut r = BufReader::with_capacity(5, &wire[..]);
    let first = read_head(&mut r, 1024).unwrap().unwrap();
    assert_eq!(first, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let second = read_head(&mut r, 1024).unwrap().unwrap();
    assert_eq!(second, b"GET /2 HTTP/1.1\r\n\r\n");
    assert!(read_head(&mut r, 1024).unwrap().is_none(), "clean end");
    let mut r = BufReader::new(&b"GET / HTTP/1.1\r\nHost: a\r\n"[..]);
    assert!(matches!(read_head(&mut r, 1024), Err(ReadError::Truncated)));
    let mut r = BufReader::new(&b"GET / HTTP/1.1\nHost: a\r\n\r\n"[..]);
    assert!(read_head(&mut r, 1024)
        .unwrap_err()
        .to_string()
        .contains("bare LF"));
    let big = format!("GET / HTTP/1.1\r\nA: {}\r\n\r\n", "a".repeat(100));
    let mut r = BufReader::new(big.as_bytes());
    assert!(matches!(
        read_head(&mut r, 64),
        Err(ReadError::Head(HeadError::TooLarge))
    ));
}

#[test]
fn requests_inside_the_tunnel_are_origin_form_http1() {
    let r = request("POST /a?b=c HTTP/1.1\r\nHost: api.test\r\nContent-Length: 3\r\n\r\n").unwrap();
    assert_eq!(r.line(), "POST /a?b=c HTTP/1.1");
    assert_eq!(r.framing().unwrap(), Framing::Length(3));
    assert!(!r.wants_close());
    let r = request("OPTIONS * HTTP/1.0\r\n\r\n").unwrap();
    assert!(r.wants_close(), "HTTP/1.0 closes unless keep-alive");
    for (text, says) in [
        ("PRI * HTTP/2.0\r\n\r\n", "HTTP/2 is not spoken"),
        ("GET https://evil.test/ HTTP/1.1\r\n\r\n", "must be a path"),
        (
            "CONNECT evil.test:443 HTTP/1.1\r\n\r\n",
            "CONNECT inside a tunnel",
        ),
        ("GET * HTTP/1.1\r\n\r\n", "must be a path"),
        ("GET / HTTP/1.1\r\n folded: x\r\n\r\n", "header"),
        ("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", "bare CR"),
        ("GET / HTTP/1.1\r\nA: \0\r\n\r\n", "NUL"),
        ("GET /a b HTTP/1.1\r\n\r\n", "request line"),
    ] {
        let e = request(text).unwrap_err();
        assert!(e.contains(says), "{text:?}: {e}");
    }
}

#[test]
fn ambiguous_request_framing_is_refused() {
    let framing = |h: &str| {
        request(&format!("POST / HTTP/1.1\r\n{h}\r\n"))
            .unwrap()
            .framing()
    };
    assert_eq!(
        framing("Transfer-Encoding: Chunked\r\n").unwrap(),
        Framing::Chunked
    );
    assert_eq!(
        framing("Content-Length: 5\r\nContent-Length: 5\r\n").unwrap(),
        Framing::Length(5)
    );
    assert_eq!(framing("").unwrap(), Framing::None);
    for h in [
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 6\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: 99999999999999999999\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    ] {
        assert!(framing(h).is_err(), "{h:?}");
    }
}

#[test]
fn response_framing_follows_rfc_9112() {
    let resp = |t: &str| parse_response(t.as_bytes()).unwrap();
    let r = resp("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n");
    assert_eq!(r.framing("GET").unwrap(), Framing::Length(4));
    assert_eq!(r.framing("HEAD").unwrap(), Framing::None);
    assert_eq!(
        resp("HTTP/1.1 204 No Content\r\n\r\n")
            .framing("GET")
            .unwrap(),
        Framing::None
    );
    assert_eq!(
        resp("HTTP/1.1 100 Continue\r\n\r\n")
            .framing("POST")
            .unwrap(),
        Framing::None
    );
    assert_eq!(
        resp("HTTP/1.1 200 OK\r\n\r\n").framing("GET").unwrap(),
        Framing::Close
    );
    let r =
        resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n");
    assert_eq!(r.framing("GET").unwrap(), Framing::Chunked);
    assert!(resp("HTTP/1.0 200 OK\r\n\r\n").closes());
    assert!(!resp("HTTP/1.1 200 OK\r\n\r\n").closes());
    assert_eq!(resp("HTTP/1.1 404 \r\n\r\n").reason, "");
    assert!(parse_response(b"HTTP/1.1 20 OK\r\n\r\n").is_err());
    assert!(parse_response(b"HTTP/2 200\r\n\r\n").is_err());
}

#[test]
fn bodies_are_decoded_exactly_and_leave_the_next_message_alone() {
    let (b, rest) = body(Framing::Length(5), b"helloGET /").unwrap();
    assert_eq!(
        (b.as_slice(), rest.as_slice()),
        (&b"hello"[..], &b"GET /"[..])
    );
    let wire =
        b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
    let (b, rest) = body(Framing::Chunked, wire).unwrap();
    assert_eq!(b, b"helloabcdefghijklmnopqrstuvwxyz");
    assert_eq!(rest, b"NEXT");
    let (b, _) = body(Framing::Close, b"all of it").unwrap();
    assert_eq!(b, b"all of it");
    assert_eq!(body(Framing::None, b"x").unwrap().1, b"x");
    for (wire, says) in [
        (&b"5\r\nhel"[..], "ended inside"),
        (b"5\r\nhelloXX0\r\n\r\n", "no CRLF"),
        (b"zz\r\n", "chunk size"),
        (b"-1\r\n", "chunk size"),
        (b"ffffffffffffffffff\r\n", "chunk size"),
        (b"5\nhello\r\n", "bare LF"),
    ] {
        let e = body(Framing::Chunked, wire).unwrap_err();
        assert!(e.contains(says), "{:?}: {e}", String::from_utf8_lossy(wire));
    }
    let mut out = Vec::new();
    write_chunk(&mut out, b"").unwrap();
    write_chunk(&mut out, b"hello world").unwrap();
    end_chunks(&mut out).unwrap();
    assert_eq!(out, b"b\r\nhello world\r\n0\r\n\r\n");
}
