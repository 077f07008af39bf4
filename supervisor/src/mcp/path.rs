//! The JSON paths of argument rules: `path`, `options.mode`,
//! `edits[*].oldText`, `paths[0]`, `["odd key"]`, with an optional `$.`
//! in front. Only what a rule needs: member names, one index, or every
//! element (`[*]`); no filters, no recursion.

use serde_json::Value;

/// The most steps a path may have (a rule is written by a person).
const MAX_STEPS: usize = 16;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
    /// `[*]`: every element of an array.
    Each,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    pub steps: Vec<Step>,
    pub text: String,
}

/// Why a path does not parse; `at` is the byte offset in the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JSON path `{text}`, at character {}: {what}", at + 1)]
pub struct PathError {
    pub text: String,
    pub at: usize,
    pub what: &'static str,
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, PathError> {
        let err = |at: usize, what: &'static str| PathError {
            text: text.escape_debug().to_string(),
            at,
            what,
        };
        let b = text.as_bytes();
        let mut i = if text.starts_with("$.") {
            2
        } else if text.starts_with("$[") {
            1
        } else {
            0
        };
        let mut steps = Vec::new();
        let mut first = true;
        while i < b.len() || first {
            if steps.len() >= MAX_STEPS {
                return Err(err(i, "a path may have at most 16 steps"));
            }
            match b.get(i) {
                Some(b'[') => {
                    let (step, next) = bracket(text, i).map_err(|w| err(i, w))?;
                    steps.push(step);
                    i = next;
                }
                Some(b'.') if !first => {
                    i += 1;
                    let (key, next) =
                        name(text, i).ok_or_else(|| err(i, "expected a member name after `.`"))?;
                    steps.push(Step::Key(key));
                    i = next;
                }
                Some(_) if first => {
                    let (key, next) = name(text, i).ok_or_else(|| {
                        err(
                            i,
                            "expected a member name (letters, digits, `_`, `-`), or `[\"...\"]`",
                        )
                    })?;
                    steps.push(Step::Key(key));
                    i = next;
                }
                None => return Err(err(i, "the path is empty; name an argument, e.g. `path`")),
                Some(_) => return Err(err(i, "expected `.`, `[N]`, `[*]` or `[\"...\"]`")),
            }
            first = false;
        }
        Ok(JsonPath {
            steps,
            text: text.to_string(),
        })
    }

    /// Every value the path reaches in `root` (none when a member is
    /// missing, an index is out of range, or a step meets the wrong type).
    pub fn lookup<'v>(&self, root: &'v Value) -> Vec<&'v Value> {
        let mut cur = vec![root];
        for step in &self.steps {
            let mut next = Vec::with_capacity(cur.len());
            for v in cur {
                match (step, v) {
                    (Step::Key(k), Value::Object(m)) => next.extend(m.get(k)),
                    (Step::Index(n), Value::Array(a)) => next.extend(a.get(*n)),
                    (Step::Each, Value::Array(a)) => next.extend(a.iter()),
                    _ => {}
                }
            }
            cur = next;
        }
        cur
    }
}

/// A bare member name at `i`: its text and the index after it.
fn name(text: &str, i: usize) -> Option<(String, usize)> {
    let rest = text.get(i..)?;
    let len = rest
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
        .count();
    (len > 0).then(|| (rest[..len].to_string(), i + len))
}

/// `[N]`, `[*]` or `["key"]` starting at `i`.
fn bracket(text: &str, i: usize) -> Result<(Step, usize), &'static str> {
    let rest = text.get(i + 1..).ok_or("unclosed `[`")?;
    if let Some(after) = rest.strip_prefix("*]") {
        return Ok((Step::Each, text.len() - after.len()));
    }
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut key = String::new();
        let mut chars = quoted.char_indices();
        while let Some((j, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\'))) => key.push(e),
                    _ => return Err("in a quoted name only `\\\"` and `\\\\` are escapes"),
                },
                '"' => {
                    let after = quoted.get(j + 1..).unwrap_or("");
                    let Some(after) = after.strip_prefix(']') else {
                        return Err("expected `]` after the quoted name");
                    };
                    return Ok((Step::Key(key), text.len() - after.len()));
                }
                c => key.push(c),
            }
        }
        return Err("unclosed quoted name");
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || rest.as_bytes().get(digits) != Some(&b']') {
        return Err("a `[...]` step is `[N]`, `[*]` or `[\"name\"]`");
    }
    let n = rest[..digits]
        .parse::<usize>()
        .map_err(|_| "index too large")?;
    Ok((Step::Index(n), i + 1 + digits + 1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;
    use serde_json::json;

    fn steps(t: &str) -> Vec<Step> {
        JsonPath::parse(t).unwrap().steps
    }

    #[test]
    fn paths_parse() {
        let k = |s: &str| Step::Key(s.into());
        assert_eq!(steps("path"), vec![k("path")]);
        assert_eq!(steps("$.path"), vec![k("path")]);
        assert_eq!(
            steps("edits[*].oldText"),
            vec![k("edits"), Step::Each, k("oldText")]
        );
        assert_eq!(steps("a.b-c[2]"), vec![k("a"), k("b-c"), Step::Index(2)]);
        assert_eq!(steps(r#"["odd key"].x"#), vec![k("odd key"), k("x")]);
        assert_eq!(steps(r#"$["q\"uote"]"#), vec![k("q\"uote")]);
    }

    #[test]
    fn bad_paths_say_where() {
        for (t, at) in [
            ("", 0),
            ("a.", 2),
            (".a", 0),
            ("a..b", 2),
            ("a[", 1),
            ("a[x]", 1),
            ("a[1", 1),
            (r#"a["b"#, 1),
            ("a b", 1),
            ("a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q", 31),
        ] {
            let e = JsonPath::parse(t).unwrap_err();
            assert_eq!(e.at, at, "{t}: {e}");
        }
    }

    #[test]
    fn lookup_collects_every_reached_value() {
        let v = json!({"path": "/w/a", "edits": [{"oldText": "x"}, {"oldText": "y"}, {"new": 1}], "n": 3});
        let p = |t: &str| JsonPath::parse(t).unwrap();
        assert_eq!(p("path").lookup(&v), vec![&json!("/w/a")]);
        assert_eq!(
            p("edits[*].oldText").lookup(&v),
            vec![&json!("x"), &json!("y")]
        );
        assert_eq!(p("edits[1].oldText").lookup(&v), vec![&json!("y")]);
        assert!(p("edits[9]").lookup(&v).is_empty());
        assert!(p("n.x").lookup(&v).is_empty());
        assert!(p("missing").lookup(&v).is_empty());
        assert!(p("path[*]").lookup(&v).is_empty());
    }
}
