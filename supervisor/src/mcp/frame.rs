//! MCP's stdio framing: one JSON-RPC message per line, `\n`-terminated
//! (a message never contains a raw newline; JSON escapes them).
//!
//! Reading is bounded: a line longer than the limit is never held whole;
//! it is reported as oversized and skipped up to its newline, so one
//! huge frame costs the reader its limit in memory, not the frame's size.

use std::io::{self, Read};

/// One thing read from a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A line, without its `\n` (and without a `\r` before it).
    Line(Vec<u8>),
    /// A line longer than the limit (this many bytes seen before giving
    /// up on it); its rest up to the newline was discarded.
    Oversized(usize),
}

/// Reads frames of at most `max` bytes from `inner`.
pub struct FrameReader<R> {
    inner: R,
    max: usize,
    buf: Vec<u8>,
    /// Bytes read but not yet returned, from `start`.
    start: usize,
    /// Skipping the rest of an oversized line.
    skipping: Option<usize>,
    eof: bool,
}

const CHUNK: usize = 64 * 1024;

impl<R: Read> FrameReader<R> {
    pub fn new(inner: R, max: usize) -> FrameReader<R> {
        FrameReader {
            inner,
            max,
            buf: Vec::new(),
            start: 0,
            skipping: None,
            eof: false,
        }
    }

    /// The next frame; `None` at the end of the stream. A last line
    /// without a newline is still a frame.
    pub fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.take_line() {
                return Ok(Some(frame));
            }
            if self.eof {
                let rest = self.buf.split_off(self.start);
                self.buf.clear();
                self.start = 0;
                if let Some(seen) = self.skipping.take() {
                    return Ok(Some(Frame::Oversized(seen + rest.len())));
                }
                return Ok((!rest.is_empty()).then(|| Frame::Line(trim_cr(rest))));
            }
            self.fill()?;
        }
    }

    /// A complete line from the buffer, or an oversized verdict.
    fn take_line(&mut self) -> Option<Frame> {
        let pending = &self.buf[self.start..];
        match pending.iter().position(|&b| b == b'\n') {
            Some(n) => {
                let line = pending[..n].to_vec();
                self.start += n + 1;
                if let Some(seen) = self.skipping.take() {
                    return Some(Frame::Oversized(seen + line.len()));
                }
                if line.len() > self.max {
                    return Some(Frame::Oversized(line.len()));
                }
                Some(Frame::Line(trim_cr(line)))
            }
            None => {
                if pending.len() > self.max || self.skipping.is_some() {
                    // Too long already: drop what is held, keep skipping.
                    let seen = self.skipping.unwrap_or(0) + pending.len();
                    self.skipping = Some(seen);
                    self.buf.clear();
                    self.start = 0;
                }
                None
            }
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + CHUNK, 0);
        let n = loop {
            match self.inner.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }
}

fn trim_cr(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    /// Hands out its bytes a few at a time, as a pipe may.
    struct Trickle(Vec<u8>, usize);

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }

    fn frames(input: &[u8], max: usize, step: usize) -> Vec<Frame> {
        let mut r = FrameReader::new(Trickle(input.to_vec(), step), max);
        let mut out = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            out.push(f);
        }
        out
    }

    #[test]
    fn lines_come_whole_however_they_are_split() {
        for step in [1, 3, 1000] {
            let got = frames(b"{\"a\":1}\n{\"b\":2}\r\n\nlast", 100, step);
            assert_eq!(
                got,
                vec![
                    Frame::Line(b"{\"a\":1}".to_vec()),
                    Frame::Line(b"{\"b\":2}".to_vec()),
                    Frame::Line(vec![]),
                    Frame::Line(b"last".to_vec()),
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn an_oversized_line_is_skipped_and_the_next_one_read() {
        let mut input = vec![b'x'; 300_000];
        input.extend_from_slice(b"\n{\"ok\":true}\n");
        for step in [7, 100_000] {
            let got = frames(&input, 1000, step);
            assert_eq!(got.len(), 2, "step {step}");
            assert_eq!(got[0], Frame::Oversized(300_000));
            assert_eq!(got[1], Frame::Line(b"{\"ok\":true}".to_vec()));
        }
        // Exactly the limit is fine; one more is not.
        assert_eq!(
            frames(b"12345\n", 5, 2),
            vec![Frame::Line(b"12345".to_vec())]
        );
        assert_eq!(frames(b"123456\n", 5, 2), vec![Frame::Oversized(6)]);
        // An oversized line cut off by the end of the stream.
        assert_eq!(frames(&[b'y'; 50], 10, 4), vec![Frame::Oversized(50)]);
    }

    #[test]
    fn memory_stays_bounded_while_skipping() {
        let mut r = FrameReader::new(Trickle(vec![b'z'; 2_000_000], CHUNK), 1000);
        assert_eq!(r.next_frame().unwrap(), Some(Frame::Oversized(2_000_000)));
        assert!(r.buf.capacity() <= 4 * CHUNK, "{}", r.buf.capacity());
    }
}
