//! Verification against every kind of tampering, on logs written by
//! [`AuditLog`] and then edited in memory.

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;

/// The lines (without newlines) of a real `n`-record log.
fn write_log(n: usize) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    for i in 0..n {
        let rec = Record::new(Kind::Call, "0123456789abcdef0123456789abcdef")
            .profile("coding-agent")
            .call(i as u64)
            .tool("git")
            .argv(vec!["push".to_owned(), format!("branch-{i}")])
            .decision(Decision::Allow);
        log.append(&rec).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn base() -> &'static [Vec<u8>] {
    static BASE: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    BASE.get_or_init(|| write_log(12))
}

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out
}

fn check_bytes(bytes: &[u8], head: Option<&str>) -> Result<Summary, Problem> {
    match verify_reader(Path::new("t"), bytes, head) {
        Ok(s) => Ok(s),
        Err(VerifyFailure::Broken { problem, .. }) => Err(problem),
        Err(e) => panic!("{e}"),
    }
}

fn check(lines: &[Vec<u8>]) -> Result<Summary, Problem> {
    check_bytes(&join(lines), None)
}

/// Replaces the first occurrence of `from` in `line`.
fn edit(line: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = String::from_utf8(line.to_vec()).unwrap();
    assert!(s.contains(from), "{s}");
    s.replacen(from, to, 1).into_bytes()
}

#[test]
fn an_untouched_log_verifies() {
    let lines = base().to_vec();
    let s = check(&lines).unwrap();
    assert_eq!((s.records, s.lines), (12, 12));
    assert_eq!(s.head, line_hash(&lines[11]));
    assert_eq!(check_bytes(&join(&lines), Some(&s.head)), Ok(s));
    let empty = check_bytes(b"", None).unwrap();
    assert_eq!((empty.records, empty.head.as_str()), (0, ZERO_HASH));
}

#[test]
fn each_tampering_names_its_line() {
    let b = base();
    let mut l = b.to_vec();
    l[5] = edit(&l[5], "\"allow\"", "\"deny\"");
    assert_eq!(check(&l), Err(Problem::PrevMismatch { line: 7, seq: 7 }));

    let mut l = b.to_vec();
    l.remove(5);
    assert_eq!(
        check(&l),
        Err(Problem::Gap {
            line: 6,
            seq: 7,
            after: 5
        })
    );

    let mut l = b.to_vec();
    l.swap(5, 6);
    assert_eq!(check(&l), Err(Problem::Swapped { line: 6, first: 7 }));

    // A forgery with the right seq and prev for its place.
    let mut l = b.to_vec();
    let forged = edit(&l[5], "branch-5", "forged");
    l.insert(5, forged);
    assert_eq!(check(&l), Err(Problem::Inserted { line: 6, seq: 6 }));

    let mut l = b.to_vec();
    l.remove(0);
    assert_eq!(check(&l), Err(Problem::StartsLate { line: 1, seq: 2 }));

    let mut l = b.to_vec();
    l.push(b"garbage".to_vec());
    assert!(matches!(
        check(&l),
        Err(Problem::NotRecord { line: 13, .. })
    ));

    let mut bytes = join(b);
    bytes.truncate(bytes.len() - 10);
    assert_eq!(
        check_bytes(&bytes, None),
        Err(Problem::TornTail { line: 12 })
    );
    bytes = join(b);
    bytes.pop();
    assert_eq!(
        check_bytes(&bytes, None),
        Err(Problem::NoFinalNewline { line: 12, seq: 12 })
    );
}

#[test]
fn the_last_line_needs_the_head() {
    let b = base();
    let head = line_hash(&b[11]);
    let mut l = b.to_vec();
    l[11] = edit(&l[11], "\"allow\"", "\"deny\"");
    assert!(check(&l).is_ok(), "the chain alone cannot see this");
    let got = check_bytes(&join(&l), Some(&head));
    assert!(
        matches!(got, Err(Problem::HeadMismatch { line: 12, .. })),
        "{got:?}"
    );
    l.pop();
    assert!(check(&l).is_ok());
    let got = check_bytes(&join(&l), Some(&head));
    assert!(
        matches!(got, Err(Problem::HeadMismatch { line: 11, .. })),
        "{got:?}"
    );
}

#[test]
fn a_torn_line_is_recovered_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl");
    let log = AuditLog::open(&path).unwrap();
    for _ in 0..3 {
        log.append(&Record::new(Kind::Call, "s")).unwrap();
    }
    // A crash in the middle of the fourth write.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(br#"{"seq":4,"prev":"ab"#).unwrap();
    let head = log.append(&Record::new(Kind::SessionEnd, "s")).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        check_bytes(&bytes, None),
        Err(Problem::Torn {
            line: 4,
            records: 4
        })
    );
    let last = bytes[..bytes.len() - 1]
        .rsplit(|&b| b == b'\n')
        .next()
        .unwrap();
    assert!(
        last.starts_with(br#"{"seq":4,"#),
        "seq follows the last whole record"
    );
    assert_eq!(line_hash(last), head);
}

/// One tampering of a log of `n` lines that leaves its last line alone.
#[derive(Debug, Clone)]
enum Tamper {
    /// Set byte `at` (modulo its length) of line `line` to `to`.
    Edit {
        line: usize,
        at: usize,
        to: u8,
    },
    Delete {
        line: usize,
    },
    /// Insert before `line` a copy of another line with its seq made
    /// `seq` and its prev made right for its new place (the best forgery).
    Insert {
        line: usize,
        from: usize,
        seq: u64,
    },
    Swap {
        a: usize,
        b: usize,
    },
}

fn tamper(n: usize) -> impl Strategy<Value = Tamper> {
    let last = n - 1;
    prop_oneof![
        (0..last, any::<usize>(), any::<u8>()).prop_map(|(line, at, to)| Tamper::Edit {
            line,
            at,
            to
        }),
        (0..last).prop_map(|line| Tamper::Delete { line }),
        (0..=last, 0..n, 1..=n as u64 + 1).prop_map(|(line, from, seq)| Tamper::Insert {
            line,
            from,
            seq
        }),
        (0..n, 0..n)
            .prop_filter("two lines", |(a, b)| a != b)
            .prop_map(|(a, b)| Tamper::Swap { a, b }),
    ]
}

fn apply(lines: &mut Vec<Vec<u8>>, t: &Tamper) -> bool {
    match *t {
        Tamper::Edit { line, at, to } => {
            let l = &mut lines[line];
            let at = at % l.len();
            if l[at] == to {
                return false; // not an edit
            }
            l[at] = to;
        }
        Tamper::Delete { line } => {
            lines.remove(line);
        }
        Tamper::Insert { line, from, seq } => {
            let prev = if line == 0 {
                ZERO_HASH.to_owned()
            } else {
                line_hash(&lines[line - 1])
            };
            let src = String::from_utf8(lines[from].clone()).unwrap();
            let body = &src[src.find(",\"kind\"").unwrap()..];
            let forged = format!(r#"{{"seq":{seq},"prev":"{prev}"{body}"#);
            lines.insert(line, forged.into_bytes());
        }
        Tamper::Swap { a, b } => lines.swap(a, b),
    }
    true
}

proptest! {
    #[test]
    fn any_single_tampering_before_the_last_line_is_detected(t in tamper(12)) {
        let mut lines = base().to_vec();
        prop_assume!(apply(&mut lines, &t));
        let got = check(&lines);
        prop_assert!(got.is_err(), "{t:?} went unnoticed");
    }
}
