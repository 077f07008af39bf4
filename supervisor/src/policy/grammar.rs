//! Option grammars: how a tool reads its argv, so that rules can be matched
//! against what the tool will understand rather than how the agent spelled
//! it.
//!
//! A [`Grammar`] is plain data: the options of the tool's main command and
//! of each subcommand, each option with its names, whether it takes a value
//! and how, and the parsing conventions of the command (unique-prefix
//! abbreviation, bundled short flags, options after operands...). Options
//! are written in a small spec language close to the tools' own `--help`:
//!
//! ```text
//! -f, --[no-]force            a flag; --no-force is its negation
//! -m, --message <msg>         a value: -mX, -m X, --message=X, --message X
//! --format=<fmt>              a value attached only: --format=X
//! -u, --untracked[=<mode>]    an optional value, attached only: -uno, --untracked=no
//! -l<n>                       a short option whose value is attached: -l5
//! -j, --jobs[=<n>] !numeric   optional; the next argument is taken when all digits
//! -l, --load[=<n>] !float     optional; the next argument is taken when it starts
//!                             with a digit or `.`
//! -C <path> !separate         the value only as the next argument
//! -K, --config <file> !opaque reads more arguments from elsewhere: never classified
//! -exec <command> !command    find: arguments up to `;` (or `{} +`)
//! -fprintf <file> <format>    two values
//! ```
//!
//! Parsing a grammar (from a shipped file or a profile) lives in
//! `profile::grammar`; canonicalising an argv with one in `canonical`.

use std::collections::HashMap;

use super::pattern::compile_pattern;

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

/// The flags a spec may end with.
const FLAGS: [&str; 6] = [
    "!separate",
    "!attached",
    "!numeric",
    "!float",
    "!opaque",
    "!leading",
];

/// Parses one option spec (see the module documentation). `style` decides
/// whether `-name` is a short option (Gnu, one letter only) or a name
/// (Find).
pub fn parse_spec(spec: &str, style: Style) -> Result<OptSpec, SpecError> {
    let err = |why: &str| SpecError::Syntax {
        spec: spec.to_string(),
        why: why.to_string(),
    };
    let mut words: Vec<&str> = spec.split(' ').filter(|w| !w.is_empty()).collect();
    let mut flags = Vec::new();
    while let Some(last) = words.last() {
        if !last.starts_with('!') || last.len() == 1 {
            break;
        }
        if !FLAGS.contains(last) && *last != "!command" {
            return Err(err(&format!(
                "unknown flag `{last}` (flags: {}, !command)",
                FLAGS.join(", ")
            )));
        }
        flags.push(*last);
        words.pop();
    }
    let has = |f: &str| flags.contains(&f);
    // Names are separated by ", "; values follow the last name, attached
    // (`=<v>`, `[=<v>]`, `<v>` after a short) or as separate words.
    let mut names: Vec<&str> = Vec::new();
    let mut separate_values = 0u8;
    let mut attached: Option<&str> = None;
    let mut names_done = false;
    for word in &words {
        if names_done {
            if word.starts_with('<') && word.ends_with('>') && word.len() > 2 {
                separate_values += 1;
                continue;
            }
            if *word == "[<n>]" || (word.starts_with("[<") && word.ends_with(">]")) {
                return Err(err("an optional value is attached: write `-j[<n>] !numeric` or `--jobs[=<n>] !numeric`"));
            }
            return Err(err(&format!(
                "`{word}` is neither a value `<...>` nor a flag"
            )));
        }
        // find's `,` operator is a name, not a separator.
        let (name, more) = match word.strip_suffix(',') {
            Some(n) if !n.is_empty() => (n, true),
            _ => (*word, false),
        };
        // A value attached to the name: `--x=<v>`, `--x[=<v>]`, `-x<v>`, `-x[<v>]`.
        let (bare, tail) = split_attached(name);
        if tail.is_some() && more {
            return Err(err("only the last name may carry the value"));
        }
        names.push(bare);
        attached = tail;
        if !more {
            names_done = true;
        }
    }
    if names.is_empty() || !names_done {
        return Err(err("no option name"));
    }
    let mut longs = Vec::new();
    let mut shorts = Vec::new();
    let mut negations = Vec::new();
    for name in &names {
        match classify_name(name, style) {
            Some(Name::Short(c)) => shorts.push(c),
            Some(Name::Long(l)) => longs.push(l),
            Some(Name::Negatable(l)) => {
                negations.push(format!("--no-{}", &l[2..]));
                longs.push(l);
            }
            None => return Err(err(&format!("`{name}` is not an option name"))),
        }
    }
    let takes = match (attached, separate_values, has("!command")) {
        (None, 0, true) => Takes::Command,
        (_, _, true) => return Err(err("`!command` takes no value spec")),
        (None, 0, false) => Takes::Nothing,
        (None, _, false) => Takes::Value {
            attached: !has("!separate"),
            separate: !has("!attached"),
        },
        (Some(t), 0, false) if t.starts_with('[') => Takes::Optional {
            next: match (has("!numeric"), has("!float")) {
                (true, true) => return Err(err("`!numeric` and `!float` exclude each other")),
                (true, false) => NextValue::Digits,
                (false, true) => NextValue::Float,
                (false, false) => NextValue::Never,
            },
        },
        (Some(_), 0, false) => Takes::Value {
            attached: true,
            separate: false,
        },
        (Some(_), _, false) => return Err(err("a value is either attached or separate, not both")),
    };
    if (has("!numeric") || has("!float")) && !matches!(takes, Takes::Optional { .. }) {
        return Err(err("`!numeric`/`!float` apply to an optional value only"));
    }
    if (has("!separate") || has("!attached")) && !matches!(takes, Takes::Value { .. }) {
        return Err(err(
            "`!separate`/`!attached` apply to a value written ` <v>`",
        ));
    }
    if has("!separate") && has("!attached") {
        return Err(err("`!separate` and `!attached` exclude each other"));
    }
    if separate_values > 2 {
        return Err(err("at most two values"));
    }
    if style == Style::Gnu && has("!leading") {
        return Err(err("`!leading` is for find-style grammars"));
    }
    let canonical = longs
        .first()
        .cloned()
        .or_else(|| shorts.first().map(|c| format!("-{}", char::from(*c))))
        .ok_or_else(|| err("no option name"))?;
    Ok(OptSpec {
        canonical,
        longs,
        shorts,
        negation: negations.first().cloned(),
        negations,
        takes,
        arity: separate_values.max(1),
        opaque: has("!opaque"),
        leading: has("!leading"),
    })
}

enum Name {
    Short(u8),
    Long(String),
    /// `--[no-]x`: the positive name `--x`.
    Negatable(String),
}

fn classify_name(name: &str, style: Style) -> Option<Name> {
    let word_ok = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && !w.starts_with('-')
    };
    if let Some(rest) = name.strip_prefix("--[no-]") {
        return (style == Style::Gnu && word_ok(rest))
            .then(|| Name::Negatable(format!("--{rest}")));
    }
    if let Some(rest) = name.strip_prefix("--") {
        return word_ok(rest).then(|| Name::Long(name.to_string()));
    }
    if let Some(rest) = name.strip_prefix('-') {
        let b = rest.as_bytes();
        return match (style, b) {
            (Style::Gnu, [c]) if c.is_ascii_graphic() && *c != b'-' => Some(Name::Short(*c)),
            (Style::Find, _) if word_ok(rest) => Some(Name::Long(name.to_string())),
            _ => None,
        };
    }
    // find's operators: `!`, `(`, `)`, `,`.
    (style == Style::Find && matches!(name, "!" | "(" | ")" | ","))
        .then(|| Name::Long(name.to_string()))
}

/// Splits `--x=<v>` / `--x[=<v>]` / `-x<v>` / `-x[<v>]` into the name and
/// the attached value spec.
fn split_attached(word: &str) -> (&str, Option<&str>) {
    for marker in ["[=<", "=<"] {
        if let Some(at) = word.find(marker) {
            return (&word[..at], Some(&word[at..]));
        }
    }
    // A short option with an attached value: `-l<n>`, `-O[<type>]`.
    if word.len() > 2 && word.starts_with('-') && !word.starts_with("--") {
        let rest = &word[2..];
        if rest.starts_with('<') || rest.starts_with("[<") {
            return (&word[..2], Some(rest));
        }
    }
    (word, None)
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

    /// Why some token of a rule can never match a canonical argv of this
    /// grammar, if one cannot: an option not written by its canonical
    /// spelling (`-f` where the canonical form has `--force`). Returns the
    /// token's index and the reason. Tokens that do not start with `-`
    /// are operands and are not checked, nor is anything after a `--`.
    /// Tokens before the first one naming a subcommand are checked against
    /// the main command, those after it against that subcommand; without
    /// one, against every command.
    pub fn rule_problem(&self, tokens: &[String]) -> Option<(usize, String)> {
        let sub = tokens
            .iter()
            .position(|t| self.subcommand(t.as_bytes()).is_some());
        // Without a subcommand named, the options a rule starts with are
        // still the main command's (the first operand is the subcommand).
        let leading = match (sub, self.subcommands.is_empty()) {
            (None, false) => tokens.iter().take_while(|t| t.starts_with('-')).count(),
            _ => 0,
        };
        for (i, t) in tokens.iter().enumerate() {
            if t == "--" {
                break;
            }
            let scope: Vec<(&str, &Command)> = match sub {
                None if i < leading => vec![("", &self.main)],
                Some(k) if i < k => vec![("", &self.main)],
                Some(k) if i > k => self
                    .subcommand(tokens[k].as_bytes())
                    .map(|(_, c)| (tokens[k].as_str(), c))
                    .into_iter()
                    .collect(),
                Some(_) => continue,
                None => self.commands().collect(),
            };
            if let Some(why) = self.token_problem(&scope, t) {
                return Some((i, why));
            }
        }
        None
    }

    fn token_problem(&self, scope: &[(&str, &Command)], token: &str) -> Option<String> {
        if !token.starts_with('-') || matches!(token, "-" | "--" | "--end-of-options") {
            return None;
        }
        let wild = |t: &str| t.contains(['*', '?', '[', '\\']);
        let valued = |o: &OptSpec, s: &str| {
            s == o.canonical && !matches!(o.takes, Takes::Nothing | Takes::Command)
        };
        // A spelling that may stand alone: a flag, a negation, an option
        // whose value is optional (a required value is always attached).
        let bare =
            |o: &OptSpec, s: &str| s != o.canonical || !matches!(o.takes, Takes::Value { .. });
        let mut spellings = scope.iter().flat_map(|(_, c)| c.spellings());
        let ok = match token.split_once('=') {
            Some((name, _)) if !wild(name) => spellings.any(|(s, o)| s == name && valued(o, s)),
            _ if !wild(token) => spellings.any(|(s, o)| s == token && bare(o, s)),
            _ => match compile_pattern(&[token.to_string()]) {
                // A broken glob is reported where patterns are compiled.
                Err(_) => true,
                Ok(p) => spellings.any(|(s, o)| {
                    (bare(o, s) && p.matches(&[s.as_bytes()]))
                        || (valued(o, s) && p.matches(&[format!("{s}=").as_bytes()]))
                }),
            },
        };
        if ok {
            return None;
        }
        let name = token.split('=').next().unwrap_or(token);
        let mut hints: Vec<String> = Vec::new();
        for (scope, c) in scope {
            let named = c.options.iter().find(|o| {
                o.longs.iter().any(|l| l == name)
                    || o.shorts
                        .iter()
                        .any(|&b| name.len() == 2 && name.as_bytes()[1] == b)
            });
            if let Some(o) = named {
                let spelled = match o.takes {
                    Takes::Value { .. } => format!("`{}=...`", o.canonical),
                    _ => format!("`{}`", o.canonical),
                };
                let hint = match *scope {
                    "" => spelled,
                    _ => format!("{spelled} in {scope}"),
                };
                if !hints.contains(&hint) {
                    hints.push(hint);
                }
            }
        }
        hints.truncate(4);
        let whose = match scope {
            [("", _)] => format!("grammar {}'s main command", self.name),
            [(s, _)] => format!("{} {s}", self.name),
            _ => format!("grammar {}", self.name),
        };
        Some(if hints.is_empty() {
            format!(
                "`{token}` can never match: no option of {whose} is spelled so in the canonical form (options are written by their canonical names, values attached with `=`)"
            )
        } else {
            format!(
                "`{token}` can never match: grammar {} writes that option {} in the canonical form",
                self.name,
                hints.join(", ")
            )
        })
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
    fn specs_read_like_help_lines() {
        let o = gnu("-f, --[no-]force");
        assert_eq!(o.canonical, "--force");
        assert_eq!(o.shorts, b"f");
        assert_eq!(o.negation.as_deref(), Some("--no-force"));
        assert_eq!(o.takes, Takes::Nothing);
        let o = gnu("-m, --message <msg>");
        assert_eq!(
            o.takes,
            Takes::Value {
                attached: true,
                separate: true
            }
        );
        assert_eq!(
            gnu("--format=<fmt>").takes,
            Takes::Value {
                attached: true,
                separate: false
            }
        );
        let o = gnu("-u, --[no-]untracked-files[=<mode>]");
        assert_eq!(
            o.takes,
            Takes::Optional {
                next: NextValue::Never
            }
        );
        assert_eq!(o.canonical, "--untracked-files");
        assert_eq!(
            gnu("-j, --jobs[=<n>] !numeric").takes,
            Takes::Optional {
                next: NextValue::Digits
            }
        );
        assert_eq!(
            gnu("-C <path> !separate").takes,
            Takes::Value {
                attached: false,
                separate: true
            }
        );
        let o = gnu("-l<n>");
        assert_eq!(
            (o.canonical.as_str(), o.takes),
            (
                "-l",
                Takes::Value {
                    attached: true,
                    separate: false
                }
            )
        );
        assert_eq!(
            gnu("-O[<type>]").takes,
            Takes::Optional {
                next: NextValue::Never
            }
        );
        assert!(gnu("-K, --config <file> !opaque").opaque);
        let o = gnu("-f, --file, --makefile <file>");
        assert_eq!(o.longs, ["--file", "--makefile"]);
        let o = parse_spec("-fprintf <file> <format> !separate", Style::Find).unwrap();
        assert_eq!((o.canonical.as_str(), o.arity), ("-fprintf", 2));
        let o = parse_spec("-exec !command", Style::Find).unwrap();
        assert_eq!(o.takes, Takes::Command);
        let o = parse_spec("-not, !", Style::Find).unwrap();
        assert_eq!(o.longs, ["-not", "!"]);
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let e = |s: &str| parse_spec(s, Style::Gnu).unwrap_err().to_string();
        assert!(e("").contains("no option name"), "{}", e(""));
        assert!(e("--x !frob").contains("unknown flag `!frob`"));
        assert!(e("-ab").contains("`-ab` is not an option name"));
        assert!(e("--x=<a> <b>").contains("either attached or separate"));
        assert!(e("--x !numeric").contains("optional value only"));
        assert!(e("--x [<n>]").contains("attached"));
        assert!(e("-x<v>, --y").contains("only the last name"));
        assert!(e("--x <a> <b> <c>").contains("at most two"));
        assert!(e("--x junk").contains("neither a value"));
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
