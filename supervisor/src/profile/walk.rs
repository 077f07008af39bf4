//! Helpers for walking a spanned TOML tree: typed getters that record a
//! diagnostic instead of stopping, and "did you mean" suggestions.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{Diagnostic, Location};

pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// One file being walked: its name and text, and the problems found so far.
pub(crate) struct Walker<'s> {
    pub file: Arc<Path>,
    pub src: &'s str,
    pub diags: Vec<Diagnostic>,
    /// The text came from inside a sandbox (a sub-agent's profile): no
    /// file it names may be read.
    pub from_agent: bool,
}

impl<'s> Walker<'s> {
    pub fn new(file: Arc<Path>, src: &'s str) -> Walker<'s> {
        Walker {
            file,
            src,
            diags: Vec::new(),
            from_agent: false,
        }
    }

    pub fn loc(&self, span: &Range<usize>) -> Location {
        Location::from_offset(self.file.clone(), self.src, span.start)
    }

    pub fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let location = self.loc(span);
        self.diags.push(Diagnostic {
            location,
            message: message.into(),
        });
    }

    /// Reports every key of `table` not in `valid`, naming `section`.
    pub fn unknown_keys(&mut self, table: &DeTable<'_>, valid: &[&str], section: &str) {
        for key in table.keys() {
            let name = key.get_ref().as_ref();
            if !valid.contains(&name) {
                let hint = did_you_mean(name, valid.iter().copied())
                    .map(|s| format!("did you mean `{s}`? "))
                    .unwrap_or_default();
                let msg = format!(
                    "unknown key `{name}` in {section}; {hint}valid keys: {}",
                    valid.join(", ")
                );
                self.error(&key.span(), msg);
            }
        }
    }

    /// The value as a table, or an error naming what was expected.
    pub fn table<'v, 'i>(&mut self, value: &'v Value<'i>, what: &str) -> Option<&'v DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                let msg = format!("{what} must be a table, got {}", article(other));
                self.error(&value.span(), msg);
                None
            }
        }
    }

    /// A duration longer than 0 and at most `max` (`max_text` for people);
    /// the messages show `examples` (such as `("\"5s\"", "\"1m 30s\"")`).
    pub fn duration(
        &mut self,
        key: &str,
        v: &Value<'_>,
        max: std::time::Duration,
        max_text: &str,
        examples: (&str, &str),
    ) -> Option<std::time::Duration> {
        let (first, second) = examples;
        let text = self.string(key, v, &format!("a duration such as {first}"))?;
        let shown = text.escape_debug();
        match humantime::parse_duration(&text) {
            Ok(d) if d.is_zero() => {
                self.error(&v.span(), format!("`{key}` must be longer than 0s"))
            }
            Ok(d) if d > max => {
                let msg = format!("`{key}` must be at most {max_text}, got \"{shown}\"");
                self.error(&v.span(), msg);
            }
            Ok(d) => return Some(d),
            Err(e) => {
                let msg = format!(
                    "`{key}` must be a duration such as {first} or {second}, got \"{shown}\" ({e})"
                );
                self.error(&v.span(), msg);
            }
        }
        None
    }

    pub fn string(&mut self, key: &str, value: &Value<'_>, expects: &str) -> Option<String> {
        match value.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                let msg = format!("`{key}` expects {expects}, got {}", article(other));
                self.error(&value.span(), msg);
                None
            }
        }
    }

    pub fn boolean(&mut self, key: &str, value: &Value<'_>) -> Option<bool> {
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                let msg = format!("`{key}` expects true or false, got {}", article(other));
                self.error(&value.span(), msg);
                None
            }
        }
    }

    /// An integer in `min..=max`; `expects` describes the range for people.
    pub fn integer(
        &mut self,
        key: &str,
        value: &Value<'_>,
        min: u64,
        max: u64,
        expects: &str,
    ) -> Option<u64> {
        let DeValue::Integer(i) = value.get_ref() else {
            let msg = format!(
                "`{key}` expects {expects}, got {}",
                article(value.get_ref())
            );
            self.error(&value.span(), msg);
            return None;
        };
        // TOML integers are i64, but the parser hands us digits; i128 holds
        // anything a person would plausibly write, and fails cleanly beyond.
        match i128::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) if n >= i128::from(min) && n <= i128::from(max) => u64::try_from(n).ok(),
            Ok(n) => {
                let msg = format!("`{key}` expects {expects}, got {n}");
                self.error(&value.span(), msg);
                None
            }
            Err(_) => {
                let shown = self.src.get(value.span()).unwrap_or("").to_string();
                let msg = format!("`{key}` expects {expects}, got {shown} (out of range)");
                self.error(&value.span(), msg);
                None
            }
        }
    }

    /// The elements of an array, or an error saying the array was expected.
    pub fn array<'v, 'i>(
        &mut self,
        key: &str,
        value: &'v Value<'i>,
        expects: &str,
    ) -> &'v [Value<'i>] {
        match value.get_ref() {
            DeValue::Array(a) => a,
            other => {
                let msg = format!("`{key}` expects {expects}, got {}", article(other));
                self.error(&value.span(), msg);
                &[]
            }
        }
    }

    /// One of a few fixed words, such as "kill" or "deny".
    pub fn word<T: Copy>(
        &mut self,
        key: &str,
        value: &Value<'_>,
        words: &[(&str, T)],
    ) -> Option<T> {
        let names: Vec<String> = words.iter().map(|(w, _)| format!("\"{w}\"")).collect();
        let expected = names.join(" or ");
        let got = match value.get_ref() {
            DeValue::String(s) => {
                if let Some((_, v)) = words.iter().find(|(w, _)| *w == s.as_ref()) {
                    return Some(*v);
                }
                format!("\"{s}\"")
            }
            other => article(other),
        };
        self.error(
            &value.span(),
            format!("`{key}` must be {expected}, got {got}"),
        );
        None
    }
}

/// "a string", "an integer", ... for messages.
pub(crate) fn article(value: &DeValue<'_>) -> String {
    let t = value.type_str();
    if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {t}")
    } else {
        format!("a {t}")
    }
}

/// The closest candidate within a small edit distance, if any.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// An array of strings with each one's span; `None` after reporting.
/// `what` completes "`key` expects ..." in the error.
pub(crate) fn string_array(
    w: &mut Walker<'_>,
    key: &str,
    v: &Value<'_>,
    what: &str,
) -> Option<Vec<(String, Range<usize>)>> {
    let DeValue::Array(items) = v.get_ref() else {
        let msg = format!("`{key}` expects {what}, got {}", article(v.get_ref()));
        w.error(&v.span(), msg);
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        match w.string(key, item, "strings") {
            Some(s) => out.push((s, item.span())),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ptrace", "ptrace"), 0);
        assert_eq!(edit_distance("conect_tcp", "connect_tcp"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn suggests_only_close_words() {
        let keys = ["connect_tcp", "bind_tcp", "allow_hosts"];
        assert_eq!(did_you_mean("conect_tcp", keys), Some("connect_tcp"));
        assert_eq!(did_you_mean("bind", keys), None);
        assert_eq!(did_you_mean("zzzzzzzz", keys), None);
    }

    #[test]
    fn integers_are_range_checked_without_panics() {
        let src =
            "a = 5\nb = -1\nc = 99999999999999999999999999999999999999999\nd = 0x10\ne = 1.5\n";
        let doc = DeTable::parse(src).unwrap();
        let mut w = Walker::new(Arc::from(Path::new("t.toml")), src);
        let get = |k: &str| doc.get_ref().get(k).unwrap().clone();
        assert_eq!(w.integer("a", &get("a"), 1, 10, "1-10"), Some(5));
        assert_eq!(w.integer("b", &get("b"), 0, 10, "0-10"), None);
        assert_eq!(w.integer("c", &get("c"), 0, 10, "0-10"), None);
        assert_eq!(w.integer("d", &get("d"), 0, 100, "0-100"), Some(16));
        assert_eq!(w.integer("e", &get("e"), 0, 100, "0-100"), None);
        let msgs: Vec<String> = w.diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(msgs[0], "t.toml:2:5: `b` expects 0-10, got -1");
        assert!(msgs[1].starts_with("t.toml:3:5: `c` expects 0-10, got 9999"));
        assert!(msgs[1].ends_with("(out of range)"));
        assert_eq!(msgs[2], "t.toml:5:5: `e` expects 0-100, got a float");
    }
}
