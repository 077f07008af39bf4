//! Option grammars: how a tool reads its argv, so that rules can be matched
//! against what the tool will understand rather than how the agent spelled
//! it.
//!
//! A [`Grammar`] is plain data: the options of the tool's main command and
//! of each subcommand, each option with its names, whether it takes a value
//! and how, and the parsing conventions of the command (unique-prefix
//! abbreviation, bundled short flags, options after operands...). Options
//! are written in a small spec language close to the tools' own `--help`
//! (`spec`). Parsing a grammar (from a shipped file or a profile) lives in
//! `profile::grammar`; canonicalising an argv with one in `canonical`;
//! checking rules against one in `lint`.

use std::collections::HashMap;

pub use super::spec::parse_spec;

/// A tool's option grammar.
#[derive(Debug, Clone, PartialEq)]
pub struct Grammar {
    /// `git`, or the tool's name for a grammar written in a profile.
    pub name: String,
    pub description: Option<String>,
    /// The options before a subcommand (or all of them, without subcommands).
    pub main: Command,
    /// `git push`...: the first operand of the main command picks one.
    /// Sorted by name. Empty: the tool has no subcommands.
    pub subcommands: Vec<(String, Command)>,
}

/// How a command's arguments are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `--long` and `-s` options (git, getopt_long tools, curl).
    Gnu,
    /// find: leading options, then paths, then an expression of
    /// single-dash primaries and operators.
    Find,
}

/// The conventions of one command's parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syntax {
    pub style: Style,
    /// A unique prefix of a long option names it (`--forc` is `--force`).
    pub abbrev: bool,
    /// Short flags may be bundled (`-uf` is `-u -f`).
    pub bundle: bool,
    /// Options may follow operands; without it the first operand ends the
    /// options (a subcommand always does).
    pub permute: bool,
    /// A long option's value may be attached with `=`.
    pub equals: bool,
    /// `--end-of-options` ends the options like `--` (git).
    pub end_of_options: bool,
}

impl Default for Syntax {
    fn default() -> Self {
        Syntax {
            style: Style::Gnu,
            abbrev: false,
            bundle: false,
            permute: true,
            equals: true,
            end_of_options: false,
        }
    }
}

/// Whether and how an option takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    Nothing,
    /// A required value; `attached` allows `--opt=v` / `-ov`, `separate`
    /// allows `--opt v` / `-o v`.
    Value {
        attached: bool,
        separate: bool,
    },
    /// An optional value, attached only, unless the next argument looks
    /// like a number (make's `-j 4`, `-l 2.5`).
    Optional {
        next: NextValue,
    },
    /// find's `-exec`: every argument up to `;`, or up to `+` right after
    /// `{}`.
    Command,
}

/// When an optional value may be the next argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextValue {
    Never,
    /// `!numeric`: the next argument is all digits.
    Digits,
    /// `!float`: the next argument starts with a digit or `.`.
    Float,
}

impl NextValue {
    pub(super) fn takes(self, arg: &[u8]) -> bool {
        match self {
            NextValue::Never => false,
            NextValue::Digits => !arg.is_empty() && arg.iter().all(u8::is_ascii_digit),
            NextValue::Float => arg
                .first()
                .is_some_and(|b| b.is_ascii_digit() || *b == b'.'),
        }
    }
}

/// One option of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptSpec {
    /// The spelling in the canonical form: the first long name, else the
    /// short one (`--force`, `-D`, `-name`).
    pub canonical: String,
    /// Every long (or single-dash) name, with its dashes.
    pub longs: Vec<String>,
    /// Short letters (`f` of `-f`).
    pub shorts: Vec<u8>,
    /// The canonical spelling of the negation (`--no-force`), when the
    /// option may be negated.
    pub negation: Option<String>,
    /// Every negated name (`--no-force`; one per `--[no-]` name).
    pub negations: Vec<String>,
    pub takes: Takes,
    /// How many values (2 for find's `-fprintf FILE FORMAT`).
    pub arity: u8,
    /// Makes the tool read more arguments from somewhere cordon cannot see
    /// (curl's `--config`): a call using it is never classified.
    pub opaque: bool,
    /// find: valid only before the paths (`-H`, `-L`, `-P`, `-D`, `-O`).
    pub leading: bool,
}

/// A name that leads to an option: which one, and whether negated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Target {
    pub option: u16,
    pub negated: bool,
}

/// One command (the main one, or a subcommand) with its lookup tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// `git push`, for messages.
    pub name: String,
    pub syntax: Syntax,
    pub options: Vec<OptSpec>,
    /// `-NUM` means this option with the digits as its value (`git log -5`,
    /// `grep -3`).
    pub digits: Option<String>,
    /// Long names (with dashes, negations included) to options.
    long: HashMap<Box<[u8]>, Target>,
    /// The same, sorted, for prefix search.
    sorted: Vec<(Box<[u8]>, Target)>,
    /// Short letters to options (`u16::MAX`: none).
    short: Box<[u16; 256]>,
    digits_target: Option<u16>,
}

/// A mistake in a grammar, for the person writing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("option spec {spec:?}: {why}; write it like \"-f, --[no-]force\", \"-m, --message <msg>\", \"--format=<fmt>\" or \"-u, --untracked[=<mode>]\"")]
    Syntax { spec: String, why: String },
    #[error("`{name}` is declared twice in {command} (options {first} and {second})")]
    Duplicate {
        command: String,
        name: String,
        first: usize,
        second: usize,
    },
    #[error("`digits` names `{0}`, which is not an option of this command that takes a value")]
    Digits(String),
    #[error("{command} has more than 65000 options")]
    TooMany { command: String },
}

impl Command {
    /// Builds a command and its lookup tables; every name must be unique.
    pub fn new(
        name: String,
        syntax: Syntax,
        options: Vec<OptSpec>,
        digits: Option<String>,
    ) -> Result<Command, SpecError> {
        if options.len() >= usize::from(u16::MAX) - 1 {
            return Err(SpecError::TooMany { command: name });
        }
        let mut long: HashMap<Box<[u8]>, Target> = HashMap::new();
        let mut short = Box::new([u16::MAX; 256]);
        let mut first_of: HashMap<String, usize> = HashMap::new();
        let mut claim = |n: &str, i: usize| match first_of.get(n) {
            Some(&first) if first != i => Err(SpecError::Duplicate {
                command: name.clone(),
                name: n.to_string(),
                first,
                second: i,
            }),
            _ => {
                first_of.insert(n.to_string(), i);
                Ok(())
            }
        };
        for (i, o) in options.iter().enumerate() {
            // Bounded above: fewer than u16::MAX options.
            let option = u16::try_from(i).unwrap_or(u16::MAX);
            for l in &o.longs {
                claim(l, i)?;
                long.insert(
                    l.as_bytes().into(),
                    Target {
                        option,
                        negated: false,
                    },
                );
            }
            for neg in &o.negations {
                claim(neg, i)?;
                long.insert(
                    neg.as_bytes().into(),
                    Target {
                        option,
                        negated: true,
                    },
                );
            }
            for &c in &o.shorts {
                claim(&format!("-{}", char::from(c)), i)?;
                short[usize::from(c)] = option;
            }
        }
        let digits_target = match &digits {
            None => None,
            Some(d) => {
                let t = long
                    .get(d.as_bytes())
                    .copied()
                    .filter(|t| !t.negated)
                    .filter(|t| {
                        options
                            .get(usize::from(t.option))
                            .is_some_and(|o| !matches!(o.takes, Takes::Nothing | Takes::Command))
                    })
                    .ok_or_else(|| SpecError::Digits(d.clone()))?;
                Some(t.option)
            }
        };
        let mut sorted: Vec<(Box<[u8]>, Target)> =
            long.iter().map(|(k, v)| (k.clone(), *v)).collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Command {
            name,
            syntax,
            options,
            digits,
            long,
            sorted,
            short,
            digits_target,
        })
    }

    pub(super) fn exact(&self, name: &[u8]) -> Option<Target> {
        self.long.get(name).copied()
    }

    /// Every long name that `prefix` starts, in order.
    pub(super) fn prefixed<'a>(
        &'a self,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = (&'a [u8], Target)> + 'a {
        let start = self.sorted.partition_point(|(k, _)| &**k < prefix);
        self.sorted[start..]
            .iter()
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, t)| (&**k, *t))
    }

    pub(super) fn short(&self, c: u8) -> Option<Target> {
        let option = self.short[usize::from(c)];
        (option != u16::MAX).then_some(Target {
            option,
            negated: false,
        })
    }

    pub(super) fn digits_target(&self) -> Option<u16> {
        self.digits_target
    }

    pub(super) fn option(&self, t: Target) -> &OptSpec {
        // Targets are only made in `new`, from indexes of `options`.
        &self.options[usize::from(t.option)]
    }

    /// The canonical spelling of an option reached through `t`.
    pub(super) fn spelling(&self, t: Target) -> &str {
        let o = self.option(t);
        match (&o.negation, t.negated) {
            (Some(n), true) => n,
            _ => &o.canonical,
        }
    }

    /// Every canonical spelling of this command's options (negations
    /// included): what a rule token may name.
    pub fn spellings(&self) -> impl Iterator<Item = (&str, &OptSpec)> {
        self.options.iter().flat_map(|o| {
            std::iter::once((o.canonical.as_str(), o)).chain(o.negation.as_deref().map(|n| (n, o)))
        })
    }

    /// The option a canonical spelling names (negations included).
    pub fn by_spelling(&self, spelling: &str) -> Option<(u16, &OptSpec)> {
        let t = self.long.get(spelling.as_bytes()).copied().or_else(|| {
            let b = spelling.as_bytes();
            (b.len() == 2 && b[0] == b'-')
                .then(|| self.short(b[1]))
                .flatten()
        })?;
        let o = self.option(t);
        (self.spelling(t) == spelling).then_some((t.option, o))
    }
}

impl Grammar {
    /// The main command and the subcommands, with their scope names
    /// (`""` for the main command).
    pub fn commands(&self) -> impl Iterator<Item = (&str, &Command)> {
        std::iter::once(("", &self.main))
            .chain(self.subcommands.iter().map(|(k, v)| (k.as_str(), v)))
    }

    /// A command by scope name (`""`: the main command), with its scope
    /// number (0 for the main command, 1 + position for a subcommand).
    pub fn command(&self, scope: &str) -> Option<(u16, &Command)> {
        if scope.is_empty() {
            return Some((0, &self.main));
        }
        let (i, c) = self.subcommand(scope.as_bytes())?;
        Some((i, c))
    }

    /// The subcommand named exactly `word`, with its scope number.
    pub(super) fn subcommand(&self, word: &[u8]) -> Option<(u16, &Command)> {
        let i = self
            .subcommands
            .binary_search_by(|(k, _)| k.as_bytes().cmp(word))
            .ok()?;
        let scope = u16::try_from(i + 1).ok()?;
        Some((scope, &self.subcommands[i].1))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    fn gnu(s: &str) -> OptSpec {
        parse_spec(s, Style::Gnu).unwrap()
    }

    #[test]
    fn duplicate_names_are_refused_and_lookups_work() {
        let opts = vec![
            gnu("-f, --[no-]force"),
            gnu("--force-with-lease[=<x>]"),
            gnu("--follow-tags"),
        ];
        let c = Command::new("git push".into(), Syntax::default(), opts, None).unwrap();
        assert_eq!(
            c.exact(b"--no-force"),
            Some(Target {
                option: 0,
                negated: true
            })
        );
        let p: Vec<&[u8]> = c.prefixed(b"--fo").map(|(k, _)| k).collect();
        assert_eq!(
            p,
            [&b"--follow-tags"[..], b"--force", b"--force-with-lease"]
        );
        assert_eq!(
            c.short(b'f'),
            Some(Target {
                option: 0,
                negated: false
            })
        );
        assert_eq!(c.short(b'x'), None);
        assert_eq!(c.by_spelling("--no-force").map(|(i, _)| i), Some(0));
        assert_eq!(c.by_spelling("-f"), None, "-f is not canonical");
        let dup = vec![gnu("-f, --force"), gnu("-f, --file <x>")];
        let err = Command::new("make".into(), Syntax::default(), dup, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`-f` is declared twice in make (options 0 and 1)"
        );
        let err = Command::new(
            "x".into(),
            Syntax::default(),
            vec![gnu("--a")],
            Some("--a".into()),
        );
        assert!(matches!(err, Err(SpecError::Digits(_))));
    }
}
