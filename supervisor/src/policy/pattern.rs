//! Argv patterns: compiling the tokens of a rule and matching arguments.
//!
//! A token `"**"` matches zero or more arguments and `"*"` exactly one;
//! any other token is a glob over one argument: `*` any run of bytes, `?`
//! one byte, `[abc]`, `[a-z]` and `[!abc]` classes, `\` escapes the next
//! character. Matching never backtracks (see `seq`), so its cost is bounded
//! by arguments × tokens × bytes whatever the input.

use super::seq::{Item, Seq};

/// Why a token of an argv pattern is not valid. `index` is the token's
/// position in the pattern (0-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("token {index} {token:?}: unclosed `[`; end the class with `]`, or write `\\[` for a literal bracket")]
    UnclosedClass { index: usize, token: String },
    #[error("token {index} {token:?}: `\\` at the end escapes nothing; write `\\\\` for a literal backslash")]
    DanglingEscape { index: usize, token: String },
    #[error("token {index} {token:?}: range `{from}-{to}` is backwards; write `{to}-{from}`")]
    ReversedRange {
        index: usize,
        token: String,
        from: char,
        to: char,
    },
    #[error("token {index} {token:?}: a `[...]` class may only list ASCII characters")]
    NonAsciiClass { index: usize, token: String },
    #[error("token {index} {token:?}: contains a NUL byte, which no argument can contain")]
    Nul { index: usize, token: String },
    #[error("tool `{tool}`, rule {list}[{rule}]: {source}")]
    InRule {
        tool: String,
        list: &'static str,
        rule: usize,
        source: Box<PatternError>,
    },
}

impl PatternError {
    /// The index of the offending token, when the error is about one.
    pub fn index(&self) -> usize {
        match self {
            PatternError::UnclosedClass { index, .. }
            | PatternError::DanglingEscape { index, .. }
            | PatternError::ReversedRange { index, .. }
            | PatternError::NonAsciiClass { index, .. }
            | PatternError::Nul { index, .. } => *index,
            PatternError::InRule { source, .. } => source.index(),
        }
    }
}

/// One byte position of a glob.
#[derive(Debug, Clone)]
enum Byte {
    Is(u8),
    Any,
    /// A 256-bit set, negation already applied.
    In(Box<[u64; 4]>),
}

impl Byte {
    fn accepts(&self, b: &u8) -> bool {
        match self {
            Byte::Is(x) => x == b,
            Byte::Any => true,
            Byte::In(set) => set[usize::from(*b >> 6)] & (1u64 << (b & 63)) != 0,
        }
    }
}

/// One argument position of a pattern.
#[derive(Debug, Clone)]
enum Arg {
    /// `"*"`: any one argument.
    Any,
    Literal(Box<[u8]>),
    Glob(Seq<Byte>),
}

impl Arg {
    fn accepts(&self, arg: &&[u8]) -> bool {
        match self {
            Arg::Any => true,
            Arg::Literal(l) => **l == **arg,
            Arg::Glob(g) => g.matches(arg, Byte::accepts),
        }
    }
}

/// A compiled argv pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    seq: Seq<Arg>,
}

impl Pattern {
    /// True when `args` (the argv after the tool name) matches.
    pub fn matches(&self, args: &[&[u8]]) -> bool {
        self.seq.matches(args, Arg::accepts)
    }
}

/// Compiles the tokens of one rule, as written in a profile.
pub fn compile_pattern(tokens: &[String]) -> Result<Pattern, PatternError> {
    let mut items = Vec::with_capacity(tokens.len());
    for (index, token) in tokens.iter().enumerate() {
        let item = match token.as_str() {
            "**" => Item::Star,
            "*" => Item::One(Arg::Any),
            _ => Item::One(glob(index, token)?),
        };
        items.push(item);
    }
    Ok(Pattern {
        seq: Seq::new(items),
    })
}

/// Compiles one token; a token without wildcards becomes a literal.
fn glob(index: usize, token: &str) -> Result<Arg, PatternError> {
    let err_token = || token.to_string();
    let b = token.as_bytes();
    if b.contains(&0) {
        return Err(PatternError::Nul {
            index,
            token: err_token(),
        });
    }
    let mut items = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        i += 1;
        match c {
            b'*' => items.push(Item::Star),
            b'?' => items.push(Item::One(Byte::Any)),
            b'\\' => {
                let Some(&next) = b.get(i) else {
                    return Err(PatternError::DanglingEscape {
                        index,
                        token: err_token(),
                    });
                };
                i += 1;
                items.push(Item::One(Byte::Is(next)));
            }
            b'[' => {
                let (set, next) = class(index, token, i)?;
                i = next;
                items.push(Item::One(Byte::In(Box::new(set))));
            }
            _ => items.push(Item::One(Byte::Is(c))),
        }
    }
    let seq = Seq::new(items);
    if let Some(fixed) = seq.fixed() {
        if let Some(lit) = fixed
            .iter()
            .map(|e| match e {
                Byte::Is(x) => Some(*x),
                _ => None,
            })
            .collect::<Option<Vec<u8>>>()
        {
            return Ok(Arg::Literal(lit.into_boxed_slice()));
        }
    }
    Ok(Arg::Glob(seq))
}

/// Parses a class whose `[` ends just before `start`; returns the set and
/// the index after its `]`. A `]` first in the class is a member.
fn class(index: usize, token: &str, start: usize) -> Result<([u64; 4], usize), PatternError> {
    let b = token.as_bytes();
    let err_token = || token.to_string();
    let mut i = start;
    let negated = b.get(i) == Some(&b'!');
    if negated {
        i += 1;
    }
    let mut set = [0u64; 4];
    let mut first = true;
    loop {
        let Some(&c) = b.get(i) else {
            return Err(PatternError::UnclosedClass {
                index,
                token: err_token(),
            });
        };
        if c == b']' && !first {
            i += 1;
            break;
        }
        first = false;
        let (lo, after) = class_char(index, token, i)?;
        i = after;
        let mut hi = lo;
        if b.get(i) == Some(&b'-') && b.get(i + 1).is_some_and(|&n| n != b']') {
            let (to, after) = class_char(index, token, i + 1)?;
            if to < lo {
                return Err(PatternError::ReversedRange {
                    index,
                    token: err_token(),
                    from: char::from(lo),
                    to: char::from(to),
                });
            }
            hi = to;
            i = after;
        }
        for x in lo..=hi {
            set[usize::from(x >> 6)] |= 1u64 << (x & 63);
        }
    }
    if negated {
        for word in &mut set {
            *word = !*word;
        }
    }
    Ok((set, i))
}

/// One member character of a class at `i` (maybe escaped): its byte and
/// the index after it.
fn class_char(index: usize, token: &str, i: usize) -> Result<(u8, usize), PatternError> {
    let b = token.as_bytes();
    let (c, after) = match b.get(i) {
        Some(b'\\') => match b.get(i + 1) {
            Some(&n) => (n, i + 2),
            None => {
                return Err(PatternError::DanglingEscape {
                    index,
                    token: token.to_string(),
                })
            }
        },
        Some(&c) => (c, i + 1),
        None => {
            return Err(PatternError::UnclosedClass {
                index,
                token: token.to_string(),
            })
        }
    };
    if !c.is_ascii() {
        return Err(PatternError::NonAsciiClass {
            index,
            token: token.to_string(),
        });
    }
    Ok((c, after))
}
