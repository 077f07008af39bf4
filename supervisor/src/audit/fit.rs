//! Keeping a record under [`MAX_LINE`] without dropping it.
//!
//! Only fields whose size the agent controls are shortened: `detail`,
//! `argv` (and its `canonical` form), `intent`, `reason`, `cwd` and the
//! paths of `leaked_to`. Each cut string ends with
//! [`CUT_MARK`]; an argv with too many elements keeps its first half and
//! gains a last element [`ARGS_MARK`]. The record stays valid JSON and its
//! reader can see that it was cut, and where.

use super::record::Record;
use super::MAX_LINE;

/// Appended to a string that was cut to fit.
pub const CUT_MARK: &str = "…[cordon: truncated]";
/// Last element of an argv whose tail was dropped to fit.
pub const ARGS_MARK: &str = "[cordon: arguments truncated]";

/// Strings this short are not worth cutting; dropping argv elements or
/// another field frees more.
const MIN_CUT: usize = 64;

/// Encodes with `encode` and shortens `rec` until the result fits in
/// [`MAX_LINE`] bytes. `None` if the unshortenable fields alone are too big.
pub fn fit<E>(
    rec: &mut Record,
    mut encode: impl FnMut(&Record) -> Result<Vec<u8>, E>,
) -> Result<Option<Vec<u8>>, E> {
    loop {
        let line = encode(rec)?;
        if line.len() <= MAX_LINE {
            return Ok(Some(line));
        }
        if !shrink(rec, line.len() - MAX_LINE) {
            return Ok(None);
        }
    }
}

/// Makes the encoded record at least `excess` bytes shorter, or makes
/// progress towards it; false when nothing is left to cut. Each step
/// strictly shortens a field, so the loop in [`fit`] terminates.
fn shrink(rec: &mut Record, excess: usize) -> bool {
    if let Some(s) = longest(rec) {
        let keep = s.len().saturating_sub(excess + CUT_MARK.len());
        cut(s, keep);
        return true;
    }
    // The longer of the two argv forms loses its tail first.
    let argv_len = rec.argv.as_ref().map_or(0, Vec::len);
    let canonical_len = rec.canonical.as_ref().map_or(0, Vec::len);
    let list = if canonical_len > argv_len {
        rec.canonical.as_mut()
    } else {
        rec.argv.as_mut()
    };
    match list {
        Some(argv) if argv.len() > 1 => {
            if argv.last().is_some_and(|a| a == ARGS_MARK) {
                argv.pop();
            }
            argv.truncate(argv.len() / 2);
            argv.push(ARGS_MARK.to_owned());
            true
        }
        _ => false,
    }
}

/// The longest shortenable string, if it is worth cutting.
fn longest(rec: &mut Record) -> Option<&mut String> {
    let argv = rec
        .argv
        .iter_mut()
        .flatten()
        .chain(rec.canonical.iter_mut().flatten())
        .chain(rec.leaked_to.iter_mut().flatten());
    let fields = [
        &mut rec.detail,
        &mut rec.intent,
        &mut rec.reason,
        &mut rec.cwd,
    ];
    fields
        .into_iter()
        .flatten()
        .chain(argv)
        .filter(|s| s.len() > MIN_CUT + CUT_MARK.len())
        .max_by_key(|s| s.len())
}

/// Cuts `s` to at most `keep` bytes (on a char boundary) plus the marker,
/// replacing an earlier marker rather than stacking them.
fn cut(s: &mut String, keep: usize) {
    if s.ends_with(CUT_MARK) {
        s.truncate(s.len() - CUT_MARK.len());
    }
    let mut at = keep.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    s.truncate(at);
    s.push_str(CUT_MARK);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::Kind;

    fn encode(r: &Record) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(r)
    }

    #[test]
    fn small_records_are_untouched() {
        let mut r = Record::new(Kind::Call, "s").detail("short");
        let before = r.clone();
        let line = fit(&mut r, encode).unwrap().unwrap();
        assert_eq!(r, before);
        assert_eq!(line, encode(&before).unwrap());
    }

    #[test]
    fn long_detail_and_argument_are_cut_with_a_marker() {
        let big = "é".repeat(MAX_LINE); // two bytes each: also tests boundaries
        let mut r = Record::new(Kind::Call, "s")
            .detail(big.clone())
            .argv(vec!["push".to_owned(), big]);
        let line = fit(&mut r, encode).unwrap().unwrap();
        assert!(line.len() <= MAX_LINE);
        assert!(line.len() > MAX_LINE - 1024, "cut too much: {}", line.len());
        assert!(r.detail.as_deref().unwrap().ends_with(CUT_MARK));
        assert_eq!(r.argv.as_ref().unwrap()[0], "push");
        let back: Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn many_small_arguments_are_dropped_from_the_end() {
        let argv: Vec<String> = (0..40_000).map(|i| format!("a{i}")).collect();
        let mut r = Record::new(Kind::Call, "s").argv(argv);
        let line = fit(&mut r, encode).unwrap().unwrap();
        assert!(line.len() <= MAX_LINE);
        let argv = r.argv.unwrap();
        assert_eq!(argv[0], "a0");
        assert_eq!(argv.last().map(String::as_str), Some(ARGS_MARK));
    }

    #[test]
    fn a_long_canonical_argv_is_shortened_too() {
        let argv: Vec<String> = (0..40_000).map(|i| format!("a{i}")).collect();
        let canonical: Vec<String> = argv.iter().map(|a| format!("--x={a}")).collect();
        let mut r = Record::new(Kind::Call, "s").argv(argv).canonical(canonical);
        let line = fit(&mut r, encode).unwrap().unwrap();
        assert!(line.len() <= MAX_LINE);
        assert_eq!(
            r.canonical.unwrap().last().map(String::as_str),
            Some(ARGS_MARK)
        );
    }

    #[test]
    fn escaping_heavy_text_still_fits() {
        // Control characters encode as \u00XX: six bytes each in JSON.
        let mut r = Record::new(Kind::Violation, "s").detail("\u{1}".repeat(MAX_LINE));
        let line = fit(&mut r, encode).unwrap().unwrap();
        assert!(line.len() <= MAX_LINE);
    }

    #[test]
    fn unshortenable_fields_give_none() {
        let mut r = Record::new(Kind::Call, "s").rule("r".repeat(MAX_LINE + 1));
        assert!(fit(&mut r, encode).unwrap().is_none());
    }
}
