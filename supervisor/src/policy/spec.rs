//! The option spec language of grammars: one option per string, written
//! like a line of the tool's own `--help`.
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
//! -exec !command              find: arguments up to `;` (or `{} +`)
//! -fprintf <file> <format>    two values
//! ```

use super::grammar::{NextValue, OptSpec, SpecError, Style, Takes};

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
}
