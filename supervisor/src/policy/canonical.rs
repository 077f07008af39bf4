//! Canonicalising an argv with a [`Grammar`]: every spelling the tool
//! accepts for the same call becomes one form, which rules are matched
//! against.
//!
//! The canonical form keeps the order of the arguments and changes only
//! how options are written:
//! - each option is written by its canonical name (`-f`, `--forc`, `-uf`
//!   give `--force`), a negation by its canonical negation (`--no-force`);
//! - an option's value is attached with `=`, in one argument
//!   (`-m msg`, `-mmsg`, `--message msg` give `--message=msg`);
//! - `--` (and git's `--end-of-options`) stays, and everything after it is
//!   an operand, as written;
//! - operands stay as written, so in the canonical form an argument that
//!   starts with `-` is an option, unless it follows `--`.
//!
//! Whatever the grammar cannot classify for sure (an unknown option, an
//! ambiguous prefix, a missing value, an unknown subcommand, an option that
//! reads arguments from elsewhere) is an [`Unclassified`], never a guess.

use std::fmt;

use super::grammar::{Command, Grammar, Style, Takes, Target};

/// The canonical argv, and the options in it (for value rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    pub tokens: Vec<Vec<u8>>,
    pub options: Vec<Hit>,
}

/// One option of a canonical argv.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// 0: the main command; 1 + n: subcommand n of the grammar.
    pub scope: u16,
    pub option: u16,
    pub negated: bool,
    /// Its index in `tokens`.
    pub token: usize,
    /// Where its value starts in that token (after the `=`), if it has one.
    pub value_at: Option<usize>,
}

impl Hit {
    /// The option's value, from the canonical tokens.
    pub fn value<'t>(&self, tokens: &'t [Vec<u8>]) -> Option<&'t [u8]> {
        let at = self.value_at?;
        tokens.get(self.token).and_then(|t| t.get(at..))
    }
}

/// Why an argv could not be classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    UnknownOption(Vec<u8>),
    Ambiguous {
        written: Vec<u8>,
        candidates: Vec<String>,
    },
    MissingValue(String),
    UnexpectedValue(String),
    UnknownSubcommand(Vec<u8>),
    /// The option makes the tool read arguments cordon cannot see.
    Opaque(String),
    /// find's `-exec` without its `;` or `+`.
    Unterminated(String),
    /// find: an operand where the expression expects a primary, or a
    /// leading option after the paths.
    Misplaced(Vec<u8>),
}

/// An argv the grammar cannot classify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unclassified {
    /// `git push`: the command being parsed.
    pub command: String,
    /// Index of the argument (after the tool name) where parsing stopped.
    pub at: usize,
    pub why: Why,
    /// The canonical form up to `at`, then the rest as written: what deny
    /// rules are still matched against.
    pub partial: Vec<Vec<u8>>,
}

/// An argument in a message: escaped, and cut after [`SHOWN`] characters
/// (the agent chooses its length).
pub(super) fn shown(b: &[u8]) -> String {
    let text = String::from_utf8_lossy(b).escape_debug().to_string();
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The most of one argument a message shows.
const SHOWN: usize = 80;

/// The most candidates of an ambiguous prefix a message lists.
const CANDIDATES: usize = 6;

impl fmt::Display for Unclassified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.command;
        match &self.why {
            Why::UnknownOption(o) => write!(f, "{c}: unknown option `{}`", shown(o)),
            Why::Ambiguous {
                written,
                candidates,
            } => {
                let mut list = candidates
                    .iter()
                    .take(CANDIDATES)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                if candidates.len() > CANDIDATES {
                    list.push_str(&format!(", and {} more", candidates.len() - CANDIDATES));
                }
                write!(f, "{c}: `{}` is an ambiguous abbreviation ({list})", shown(written))
            }
            Why::MissingValue(o) => write!(f, "{c}: `{o}` needs a value"),
            Why::UnexpectedValue(o) => write!(f, "{c}: `{o}` takes no value"),
            Why::UnknownSubcommand(s) => {
                write!(f, "{c}: `{}` is not a subcommand the grammar knows", shown(s))
            }
            Why::Opaque(o) => write!(
                f,
                "{c}: `{o}` makes the tool read more arguments from elsewhere, which cordon cannot see"
            ),
            Why::Unterminated(o) => write!(f, "{c}: `{o}` is not ended by `;` or `+`"),
            Why::Misplaced(a) => write!(f, "{c}: `{}` is out of place", shown(a)),
        }
    }
}

/// Canonicalises `args` (the argv after the tool name).
pub fn canonicalize(g: &Grammar, args: &[&[u8]]) -> Result<Canonical, Unclassified> {
    let mut p = Parser {
        g,
        args,
        i: 0,
        start: 0,
        scope: 0,
        cmd: &g.main,
        out: Canonical {
            tokens: Vec::with_capacity(args.len()),
            options: Vec::new(),
        },
    };
    let r = match g.main.syntax.style {
        Style::Gnu => p.gnu(),
        Style::Find => p.find(),
    };
    match r {
        Ok(()) => Ok(p.out),
        Err(why) => {
            let mut partial = p.out.tokens;
            partial.extend(args.iter().skip(p.start).map(|a| a.to_vec()));
            Err(Unclassified {
                command: p.cmd.name.clone(),
                at: p.start,
                why,
                partial,
            })
        }
    }
}

struct Parser<'g, 'a> {
    g: &'g Grammar,
    args: &'a [&'a [u8]],
    /// The next argument to read.
    i: usize,
    /// The argument being parsed (for errors).
    start: usize,
    scope: u16,
    cmd: &'g Command,
    out: Canonical,
}

impl<'g, 'a> Parser<'g, 'a> {
    fn next(&mut self) -> Option<&'a [u8]> {
        let a = self.args.get(self.i).copied();
        if a.is_some() {
            self.i += 1;
        }
        a
    }

    fn peek(&self) -> Option<&'a [u8]> {
        self.args.get(self.i).copied()
    }

    fn operand(&mut self, a: &[u8]) {
        self.out.tokens.push(a.to_vec());
    }

    /// Writes an option (with its value, if any) to the canonical form.
    fn emit(&mut self, t: Target, value: Option<&[u8]>) {
        let spelling = self.cmd.spelling(t);
        let mut token = Vec::with_capacity(spelling.len() + value.map_or(0, |v| v.len() + 1));
        token.extend_from_slice(spelling.as_bytes());
        let value_at = value.map(|v| {
            token.push(b'=');
            let at = token.len();
            token.extend_from_slice(v);
            at
        });
        self.out.options.push(Hit {
            scope: self.scope,
            option: t.option,
            negated: t.negated,
            token: self.out.tokens.len(),
            value_at,
        });
        self.out.tokens.push(token);
    }

    fn gnu(&mut self) -> Result<(), Why> {
        let mut ended = false;
        let mut need_sub = !self.g.subcommands.is_empty();
        while let Some(a) = self.next() {
            self.start = self.i - 1;
            if ended {
                self.operand(a);
                continue;
            }
            let ends = a == b"--" || (self.cmd.syntax.end_of_options && a == b"--end-of-options");
            if ends {
                if need_sub {
                    return Err(Why::UnknownOption(a.to_vec()));
                }
                self.operand(a);
                ended = true;
            } else if a.len() > 2 && a.starts_with(b"--") {
                self.long(a)?;
            } else if a.len() > 1 && a[0] == b'-' {
                self.short(a)?;
            } else if need_sub {
                let Some((scope, sub)) = self.g.subcommand(a) else {
                    return Err(Why::UnknownSubcommand(a.to_vec()));
                };
                self.operand(a);
                self.scope = scope;
                self.cmd = sub;
                need_sub = false;
            } else {
                self.operand(a);
                ended = !self.cmd.syntax.permute;
            }
        }
        Ok(())
    }

    /// `--name`, `--name=value`, `--name value`, or a unique prefix.
    fn long(&mut self, a: &[u8]) -> Result<(), Why> {
        let (name, value) = match a.iter().position(|&b| b == b'=') {
            Some(eq) if self.cmd.syntax.equals => (&a[..eq], Some(&a[eq + 1..])),
            _ => (a, None),
        };
        let t = self.resolve(name, a)?;
        let o = self.cmd.option(t);
        if o.opaque {
            return Err(Why::Opaque(o.canonical.clone()));
        }
        if t.negated {
            if value.is_some() {
                return Err(Why::UnexpectedValue(self.cmd.spelling(t).to_string()));
            }
            self.emit(t, None);
            return Ok(());
        }
        match o.takes {
            Takes::Nothing => {
                if value.is_some() {
                    return Err(Why::UnexpectedValue(o.canonical.clone()));
                }
                self.emit(t, None);
            }
            Takes::Value { attached, separate } => {
                let v = match value {
                    Some(v) if attached => v.to_vec(),
                    // `--opt=v` where only `--opt v` is accepted: the tool
                    // sees an option named `opt=v`.
                    Some(_) => return Err(Why::UnknownOption(a.to_vec())),
                    None if separate => self.separate(t)?,
                    None => return Err(Why::MissingValue(o.canonical.clone())),
                };
                self.emit(t, Some(&v));
                self.more_values(t)?;
            }
            Takes::Optional { next } => {
                let v = match value {
                    Some(v) => Some(v.to_vec()),
                    None => self.peek().filter(|n| next.takes(n)).map(<[u8]>::to_vec),
                };
                if value.is_none() && v.is_some() {
                    self.i += 1;
                }
                self.emit(t, v.as_deref());
            }
            Takes::Command => self.command(t)?,
        }
        Ok(())
    }

    /// The option a long name (or a unique prefix of one) names.
    fn resolve(&self, name: &[u8], written: &[u8]) -> Result<Target, Why> {
        if let Some(t) = self.cmd.exact(name) {
            return Ok(t);
        }
        if !self.cmd.syntax.abbrev {
            return Err(Why::UnknownOption(written.to_vec()));
        }
        let mut first: Option<Target> = None;
        let mut distinct = false;
        let mut candidates: Vec<String> = Vec::new();
        for (full, t) in self.cmd.prefixed(name) {
            candidates.push(String::from_utf8_lossy(full).into_owned());
            match first {
                None => first = Some(t),
                Some(f) => distinct |= f != t,
            }
        }
        match first {
            None => Err(Why::UnknownOption(written.to_vec())),
            Some(_) if distinct => Err(Why::Ambiguous {
                written: name.to_vec(),
                candidates,
            }),
            Some(t) => Ok(t),
        }
    }

    /// The next argument as the value of `t`.
    fn separate(&mut self, t: Target) -> Result<Vec<u8>, Why> {
        match self.next() {
            Some(v) => Ok(v.to_vec()),
            None => Err(Why::MissingValue(self.cmd.spelling(t).to_string())),
        }
    }

    /// The second value of a two-value option, as its own token.
    fn more_values(&mut self, t: Target) -> Result<(), Why> {
        for _ in 1..self.cmd.option(t).arity {
            let v = self.separate(t)?;
            self.operand(&v);
        }
        Ok(())
    }

    /// `-x`, `-xvalue`, `-x value`, bundles (`-uf`), `-NUM`.
    fn short(&mut self, a: &[u8]) -> Result<(), Why> {
        let body = &a[1..];
        let digits = self.cmd.digits_target();
        if let Some(d) = digits {
            if body.iter().all(u8::is_ascii_digit) {
                self.emit(
                    Target {
                        option: d,
                        negated: false,
                    },
                    Some(body),
                );
                return Ok(());
            }
        }
        let bundle = self.cmd.syntax.bundle;
        let mut j = 0;
        while j < body.len() {
            let c = body[j];
            if let (Some(d), true) = (digits, c.is_ascii_digit() && bundle) {
                let end = body[j..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .map_or(body.len(), |k| j + k);
                self.emit(
                    Target {
                        option: d,
                        negated: false,
                    },
                    Some(&body[j..end]),
                );
                j = end;
                continue;
            }
            let Some(t) = self.cmd.short(c) else {
                return Err(Why::UnknownOption(a.to_vec()));
            };
            let o = self.cmd.option(t);
            if o.opaque {
                return Err(Why::Opaque(o.canonical.clone()));
            }
            let rest = &body[j + 1..];
            match o.takes {
                Takes::Nothing => {
                    if !bundle && !rest.is_empty() {
                        return Err(Why::UnknownOption(a.to_vec()));
                    }
                    self.emit(t, None);
                    j += 1;
                    continue;
                }
                Takes::Value { attached, separate } => {
                    let v = if !rest.is_empty() {
                        if !attached {
                            return Err(Why::UnknownOption(a.to_vec()));
                        }
                        rest.to_vec()
                    } else if separate {
                        self.separate(t)?
                    } else {
                        return Err(Why::MissingValue(o.canonical.clone()));
                    };
                    self.emit(t, Some(&v));
                    self.more_values(t)?;
                }
                Takes::Optional { next } => {
                    let v = if !rest.is_empty() {
                        Some(rest.to_vec())
                    } else {
                        let v = self.peek().filter(|n| next.takes(n)).map(<[u8]>::to_vec);
                        if v.is_some() {
                            self.i += 1;
                        }
                        v
                    };
                    self.emit(t, v.as_deref());
                }
                Takes::Command => {
                    if !rest.is_empty() {
                        return Err(Why::UnknownOption(a.to_vec()));
                    }
                    self.command(t)?;
                }
            }
            // A value ends the bundle.
            break;
        }
        Ok(())
    }

    /// find's `-exec`: the arguments up to `;`, or `+` right after `{}`,
    /// each as written, then the terminator.
    fn command(&mut self, t: Target) -> Result<(), Why> {
        self.emit(t, None);
        let mut prev: Option<&[u8]> = None;
        while let Some(a) = self.next() {
            self.operand(a);
            if a == b";" || (a == b"+" && prev == Some(b"{}")) {
                return Ok(());
            }
            prev = Some(a);
        }
        Err(Why::Unterminated(self.cmd.spelling(t).to_string()))
    }

    /// find: leading options, paths, then the expression.
    fn find(&mut self) -> Result<(), Why> {
        let operator =
            |a: &[u8]| a.first() == Some(&b'-') || matches!(a, b"(" | b")" | b"!" | b",");
        // Leading options.
        while let Some(a) = self.peek() {
            let Some((t, value)) = self.find_name(a) else {
                break;
            };
            if !self.cmd.option(t).leading {
                break;
            }
            self.start = self.i;
            self.i += 1;
            self.find_option(t, value)?;
        }
        // Paths.
        while let Some(a) = self.peek() {
            if operator(a) {
                break;
            }
            self.start = self.i;
            self.i += 1;
            self.operand(a);
        }
        // The expression.
        while let Some(a) = self.next() {
            self.start = self.i - 1;
            let Some((t, value)) = self.find_name(a) else {
                return Err(if operator(a) {
                    Why::UnknownOption(a.to_vec())
                } else {
                    Why::Misplaced(a.to_vec())
                });
            };
            if self.cmd.option(t).leading {
                return Err(Why::Misplaced(a.to_vec()));
            }
            self.find_option(t, value)?;
        }
        Ok(())
    }

    /// A find name: exact, or a two-letter option with its value attached
    /// (`-O3`).
    fn find_name<'x>(&self, a: &'x [u8]) -> Option<(Target, Option<&'x [u8]>)> {
        if let Some(t) = self.cmd.exact(a) {
            return Some((t, None));
        }
        let (name, rest) = (a.get(..2)?, a.get(2..)?);
        let t = self.cmd.exact(name)?;
        matches!(
            self.cmd.option(t).takes,
            Takes::Value { attached: true, .. }
        )
        .then_some((t, Some(rest)))
    }

    fn find_option(&mut self, t: Target, attached: Option<&[u8]>) -> Result<(), Why> {
        let o = self.cmd.option(t);
        if o.opaque {
            return Err(Why::Opaque(o.canonical.clone()));
        }
        match (o.takes, attached) {
            (Takes::Nothing, _) => self.emit(t, None),
            (Takes::Value { .. }, Some(v)) => self.emit(t, Some(v)),
            (Takes::Value { separate: true, .. }, None) => {
                let v = self.separate(t)?;
                self.emit(t, Some(&v));
                self.more_values(t)?;
            }
            (Takes::Value { .. }, None) => return Err(Why::MissingValue(o.canonical.clone())),
            (Takes::Optional { .. }, v) => self.emit(t, v),
            (Takes::Command, _) => self.command(t)?,
        }
        Ok(())
    }
}
