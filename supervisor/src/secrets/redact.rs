//! The output redactor: masks every known form of the call's secret values
//! in what a tool writes, before it reaches the agent.
//!
//! **Masking is a last line of defence, not the guarantee.** The guarantee
//! is that the agent never receives a value: cordon fetches it for one
//! approved call, hands it only to that tool process, and never to the
//! agent's processes, environment or files. Masking catches the common
//! accident of a tool echoing what it was given (a debug log, an error that
//! quotes a URL, `curl -v` printing an `Authorization` header).
//!
//! What is masked, for each value of at least [`MIN_MASKED_LEN`] bytes and
//! each of its lines of at least that length:
//! - the raw bytes;
//! - base64, standard and URL-safe alphabets, with and without `=`
//!   padding, at each of the three byte alignments inside a longer encoded
//!   blob (`base64("user:" + token)`): the characters that depend on the
//!   value alone (see `forms::base64_forms`). The one character on each
//!   side that mixes value bits with neighbouring bytes stays visible: at
//!   most 4 bits of the value each;
//! - percent-encoding of every byte outside the unreserved set, upper- or
//!   lower-case hex, `%20` or `+` for space;
//! - JSON string escaping, in the common encoders' styles (`\/` or `/`,
//!   `\u` hex case, ASCII-only, HTML-safe);
//! - hex, lower- or upper-case.
//!
//! What masking cannot catch: any other transformation of the value —
//! compression, encryption, hashing, reversal, a different encoding or a
//! mix of them (base32, a partial percent-encoding, mixed-case hex,
//! base64 of the JSON form...), and output produced a character at a time
//! in a way that separates the characters (one per line, interleaved with
//! other text). A tool that wants to leak its secret can always do so;
//! masking is for tools that do not mean to. Values shorter than
//! [`MIN_MASKED_LEN`] bytes are not masked at all: masking "a" would
//! destroy the output. [`Redactor::too_short`] names them so the caller
//! can warn.
//!
//! Matching is a multi-pattern search built once per redactor, with
//! leftmost-longest semantics: [`aho_corasick`]'s SIMD "Teddy" searcher
//! when the patterns allow it (up to a few dozen, x86-64 or aarch64),
//! otherwise its DFA with the prefilter off (on random-looking output the
//! crate's own prefilter choice ran at 190 MB/s, the plain DFA at 650).
//! The search structures keep copies of the patterns that are not zeroed
//! on drop (the crate offers no way to): build a redactor per call and
//! drop it with the call's secrets. Overlapping matches are masked as their
//! union, and each maximal masked run becomes one [`MARKER`]. A stream
//! holds back at most `longest pattern - 1` bytes, so a value split across
//! reads is still found, and memory stays bounded on a long output. The
//! output does not depend on how the input was split into chunks.

use aho_corasick::packed;
use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind, Span};
use zeroize::Zeroizing;

pub use super::forms::MIN_MASKED_LEN;
use super::forms::{self, Form};
use super::SecretValue;

/// What replaces each masked run of output.
pub const MARKER: &[u8] = b"[cordon: redacted]";

/// Why a redactor could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    /// The automaton outgrew aho-corasick's limits; the secrets are too
    /// large to be masked, and the call must not run.
    #[error(
        "secrets: cannot build the output redactor for {patterns} patterns \
         ({bytes} bytes in all; are the secret values unusually large?): {source}"
    )]
    Build {
        patterns: usize,
        bytes: usize,
        source: aho_corasick::BuildError,
    },
}

/// Masks the forms of a fixed set of secret values. Build once per call,
/// then [`Redactor::stream`] for each output stream.
pub struct Redactor {
    /// `None` when there is nothing to mask.
    searcher: Option<Searcher>,
    longest: usize,
    patterns: usize,
    too_short: Vec<usize>,
}

impl Redactor {
    /// A redactor for `values`. Values shorter than [`MIN_MASKED_LEN`] are
    /// not masked; their indices in `values` are in [`Self::too_short`].
    pub fn new(values: &[&SecretValue]) -> Result<Redactor, RedactError> {
        let mut patterns: Vec<Form> = Vec::new();
        let mut too_short = Vec::new();
        for (i, value) in values.iter().enumerate() {
            if value.len() < MIN_MASKED_LEN {
                too_short.push(i);
                continue;
            }
            for piece in forms::pieces(value.expose()) {
                forms::derive(piece, &mut patterns);
            }
        }
        patterns.sort_unstable_by(|a, b| a.as_slice().cmp(b.as_slice()));
        patterns.dedup_by(|a, b| a.as_slice() == b.as_slice());
        let longest = patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        let searcher = if patterns.is_empty() {
            None
        } else {
            Some(Searcher::build(&patterns)?)
        };
        Ok(Redactor {
            searcher,
            longest,
            patterns: patterns.len(),
            too_short,
        })
    }

    /// Indices (in the slice given to [`Self::new`]) of the values too
    /// short to be masked.
    #[must_use]
    pub fn too_short(&self) -> &[usize] {
        &self.too_short
    }

    /// How many distinct byte strings are masked.
    #[must_use]
    pub fn pattern_count(&self) -> usize {
        self.patterns
    }

    /// The length of the longest masked byte string: a stream holds back
    /// at most one byte less.
    #[must_use]
    pub fn longest_pattern(&self) -> usize {
        self.longest
    }

    /// A stream that masks one output (stdout, say) chunk by chunk.
    #[must_use]
    pub fn stream(&self) -> RedactStream<'_> {
        RedactStream {
            redactor: self,
            held: Zeroizing::new(Vec::new()),
            masked: 0,
            in_run: false,
        }
    }

    /// Whether `hay` holds any form of a value (the leak scan).
    #[must_use]
    pub fn finds(&self, hay: &[u8]) -> bool {
        self.searcher
            .as_ref()
            .is_some_and(|s| s.find(hay, 0).is_some())
    }

    /// `input` with every form masked, in one go (error messages, short
    /// outputs).
    #[must_use]
    pub fn redact(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        let mut stream = self.stream();
        stream.push(input, &mut out);
        stream.finish(&mut out);
        out
    }

    /// Calls `run(start, end)` for each match in `hay` starting before
    /// `limit`, in order of start. Every position where a pattern starts
    /// is visited (the search resumes one byte after the previous match's
    /// start, not at its end), with its longest match, so the union of the
    /// ranges is the union of all matches, overlapping ones included.
    fn matches(&self, hay: &[u8], limit: usize, mut run: impl FnMut(usize, usize)) {
        let Some(searcher) = &self.searcher else {
            return;
        };
        let mut at = 0;
        while at < limit {
            let Some((start, end)) = searcher.find(hay, at) else {
                return;
            };
            if start >= limit {
                return;
            }
            run(start, end);
            at = start + 1;
        }
    }
}

/// The leftmost-longest search, by the fastest means the patterns allow.
enum Searcher {
    Teddy(packed::Searcher),
    Automaton(AhoCorasick),
}

impl Searcher {
    fn build(patterns: &[Form]) -> Result<Searcher, RedactError> {
        let mut teddy = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostLongest)
            .builder();
        teddy.extend(patterns.iter().map(|p| p.as_slice()));
        if let Some(searcher) = teddy.build() {
            return Ok(Searcher::Teddy(searcher));
        }
        let mut builder = AhoCorasick::builder();
        builder
            .match_kind(MatchKind::LeftmostLongest)
            .prefilter(false);
        let patterns_bytes = || patterns.iter().map(|p| p.as_slice());
        // A DFA is the fastest automaton; if it is too large, the crate's
        // choice (a contiguous NFA).
        if let Ok(dfa) = builder
            .kind(Some(AhoCorasickKind::DFA))
            .build(patterns_bytes())
        {
            return Ok(Searcher::Automaton(dfa));
        }
        builder
            .kind(None)
            .build(patterns_bytes())
            .map(Searcher::Automaton)
            .map_err(|source| RedactError::Build {
                patterns: patterns.len(),
                bytes: patterns.iter().map(|p| p.len()).sum(),
                source,
            })
    }

    /// The leftmost-longest match in `hay` starting at `at` or later.
    fn find(&self, hay: &[u8], at: usize) -> Option<(usize, usize)> {
        let span = Span {
            start: at,
            end: hay.len(),
        };
        let m = match self {
            Searcher::Teddy(s) => s.find_in(hay, span),
            Searcher::Automaton(s) => s.find(Input::new(hay).span(span)),
        }?;
        Some((m.start(), m.end()))
    }
}

/// Masks one output stream: [`push`](Self::push) each chunk read, then
/// [`finish`](Self::finish) at end of stream.
pub struct RedactStream<'r> {
    redactor: &'r Redactor,
    /// Bytes not yet emitted: they may be the start of a match. Zeroed on
    /// drop, since they may be part of a value.
    held: Zeroizing<Vec<u8>>,
    /// `held[..masked]` is known to be masked (a match that began in
    /// emitted output runs into it).
    masked: usize,
    /// The last thing emitted is a marker whose run may continue.
    in_run: bool,
}

impl RedactStream<'_> {
    /// Adds `chunk` to the stream and appends to `out` what can no longer
    /// be part of a match.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.held.extend_from_slice(chunk);
        self.emit(out, false);
    }

    /// Appends everything held back to `out` now, for a stream whose
    /// reader would otherwise wait (an idle server-sent event stream, say).
    /// A value split exactly across a flush is no longer recognised as a
    /// whole: flush only when nothing more is available to read.
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        self.emit(out, true);
    }

    /// Ends the stream: appends the rest to `out`. The stream is then
    /// empty and may be reused for a new one.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.emit(out, true);
        self.in_run = false;
    }

    fn emit(&mut self, out: &mut Vec<u8>, last: bool) {
        let len = self.held.len();
        // A match starting before `ready` ends within `held`: bytes before
        // it are settled. At the end of the stream, all are.
        let ready = if last {
            len
        } else {
            len.saturating_sub(self.redactor.longest.saturating_sub(1))
        };
        if ready == 0 {
            return;
        }
        let held = self.held.as_slice();
        let in_run = &mut self.in_run;
        // Bytes of `held` before `cursor` are emitted or masked.
        let mut cursor = 0;
        let mut mask = |start: usize, end: usize| {
            if end <= cursor {
                return;
            }
            if start > cursor {
                out.extend_from_slice(&held[cursor..start]);
                *in_run = false;
            }
            if !*in_run {
                out.extend_from_slice(MARKER);
                *in_run = true;
            }
            cursor = end;
        };
        if self.masked > 0 {
            mask(0, self.masked);
        }
        self.redactor.matches(held, ready, &mut mask);
        if cursor < ready {
            out.extend_from_slice(&held[cursor..ready]);
            self.in_run = false;
        }
        self.masked = cursor.saturating_sub(ready);
        self.held.drain(..ready);
    }
}

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;
