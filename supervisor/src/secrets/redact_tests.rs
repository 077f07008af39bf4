use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use proptest::prelude::*;

use super::*;

const TOKEN: &[u8] = b"ghp_Canary/0123456789+abcdefghij\"klmnop";

/// Enough other values to exceed what Teddy takes, so the automaton is
/// used.
fn many_values() -> Vec<Vec<u8>> {
    (0..20)
        .map(|i| format!("unrelated-secret-{i:04}-xyzzy").into_bytes())
        .collect()
}

fn redactor(values: &[&[u8]]) -> Redactor {
    let values: Vec<SecretValue> = values
        .iter()
        .map(|v| SecretValue::new(v.to_vec()))
        .collect();
    let refs: Vec<&SecretValue> = values.iter().collect();
    Redactor::new(&refs).unwrap()
}

/// Every byte string the redactor masks for `value`.
fn all_forms(value: &[u8]) -> Vec<Form> {
    let mut out = Vec::new();
    for piece in forms::pieces(value) {
        forms::derive(piece, &mut out);
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Output through a stream, the input cut at `cuts` (positions, any
/// order, out of range ones ignored).
fn chunked(r: &Redactor, input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut cuts: Vec<usize> = cuts.iter().copied().filter(|&c| c <= input.len()).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut stream = r.stream();
    let mut from = 0;
    for cut in cuts.into_iter().chain([input.len()]) {
        stream.push(&input[from..cut], &mut out);
        from = cut;
    }
    stream.finish(&mut out);
    out
}

fn redacted(r: &Redactor, input: &str) -> String {
    String::from_utf8(r.redact(input.as_bytes())).unwrap()
}

#[test]
fn raw_value_is_masked() {
    let r = redactor(&[b"s3cr3t-value"]);
    assert_eq!(
        redacted(&r, "token=s3cr3t-value; again s3cr3t-values"),
        "token=[cordon: redacted]; again [cordon: redacted]s"
    );
}

#[test]
fn overlapping_and_adjacent_matches_become_one_marker() {
    let r = redactor(&[b"abcdef", b"defghi"]);
    assert_eq!(redacted(&r, "x abcdefghi y"), "x [cordon: redacted] y");
    assert_eq!(redacted(&r, "x abcdefdefghi y"), "x [cordon: redacted] y");
    let r = redactor(&[b"aaaa"]);
    assert_eq!(redacted(&r, "<aaaaaaa>"), "<[cordon: redacted]>");
}

#[test]
fn each_line_of_a_multi_line_value_is_masked_alone() {
    let key = b"-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASC\n-----END KEY-----\n";
    let r = redactor(&[key]);
    let out = redacted(
        &r,
        "line 2 is MIIEvQIBADANBgkqhkiG9w0B and line 3 AQEFAASC.",
    );
    assert_eq!(
        out,
        "line 2 is [cordon: redacted] and line 3 [cordon: redacted]."
    );
    // With CRLF line endings, as a terminal might print them.
    let crlf = String::from_utf8(key.to_vec())
        .unwrap()
        .replace('\n', "\r\n");
    assert!(!redacted(&r, &crlf).contains("MIIEvQ"));
}

#[test]
fn base64_forms_are_masked_at_every_alignment() {
    let r = redactor(&[TOKEN]);
    for user in ["", "u:", "user:", "x-access-token:"] {
        let blob = [user.as_bytes(), TOKEN].concat();
        for (encoded, name) in [
            (STANDARD.encode(&blob), "standard"),
            (URL_SAFE_NO_PAD.encode(&blob), "url-safe"),
        ] {
            let header = format!("Authorization: Basic {encoded}\n");
            let out = redacted(&r, &header);
            assert!(out.contains("[cordon: redacted]"), "{user:?} {name}: {out}");
            // At most one character on each side of the value survives.
            let shown = out.len() - "Authorization: Basic \n".len() - MARKER.len();
            let prefix_chars = (user.len() * 4).div_ceil(3);
            assert!(shown <= prefix_chars + 4, "{user:?} {name}: {out}");
        }
    }
}

#[test]
fn url_json_and_hex_forms_are_masked() {
    let r = redactor(&[TOKEN]);
    let url = format!(
        "GET /?t={}&u={}",
        String::from_utf8(forms_by(TOKEN, |f| contains(f, b"%2F"))).unwrap(),
        String::from_utf8(forms_by(TOKEN, |f| contains(f, b"%2f"))).unwrap()
    );
    assert_eq!(
        redacted(&r, &url),
        "GET /?t=[cordon: redacted]&u=[cordon: redacted]"
    );
    let json = serde_json::json!({ "token": String::from_utf8(TOKEN.to_vec()).unwrap() });
    assert_eq!(
        redacted(&r, &json.to_string()),
        r#"{"token":"[cordon: redacted]"}"#
    );
    let hex: String = TOKEN.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(redacted(&r, &hex), "[cordon: redacted]");
    assert_eq!(redacted(&r, &hex.to_uppercase()), "[cordon: redacted]");
}

fn forms_by(value: &[u8], pick: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    all_forms(value).iter().find(|f| pick(f)).unwrap().to_vec()
}

#[test]
fn a_value_split_at_every_boundary_is_masked() {
    let others = many_values();
    let mut with_many: Vec<&[u8]> = others.iter().map(|v| v.as_slice()).collect();
    with_many.push(TOKEN);
    let teddy = redactor(&[TOKEN]);
    let automaton = redactor(&with_many);
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        assert!(matches!(teddy.searcher, Some(Searcher::Teddy(_))));
    }
    assert!(matches!(automaton.searcher, Some(Searcher::Automaton(_))));
    let input = [b"before ".as_slice(), TOKEN, b" after"].concat();
    let want = b"before [cordon: redacted] after";
    for r in [&teddy, &automaton] {
        for a in 0..=input.len() {
            for b in a..=input.len() {
                assert_eq!(chunked(r, &input, &[a, b]), want, "cuts {a} {b}");
            }
        }
        let bytewise: Vec<usize> = (0..input.len()).collect();
        assert_eq!(chunked(r, &input, &bytewise), want);
    }
}

#[test]
fn short_values_are_reported_not_masked() {
    let r = redactor(&[b"abc", b"long-enough", b""]);
    assert_eq!(r.too_short(), [0, 2]);
    assert_eq!(redacted(&r, "abc long-enough"), "abc [cordon: redacted]");
    let none = redactor(&[]);
    assert_eq!(none.pattern_count(), 0);
    assert_eq!(redacted(&none, "anything"), "anything");
}

#[test]
fn a_long_stream_is_held_back_by_less_than_the_longest_pattern() {
    let r = redactor(&[TOKEN]);
    let mut stream = r.stream();
    let mut out = Vec::new();
    let chunk: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz"
        .iter()
        .copied()
        .cycle()
        .take(4096)
        .collect();
    for _ in 0..256 {
        out.clear();
        stream.push(&chunk, &mut out);
        assert!(stream.held.len() < r.longest_pattern());
    }
    stream.finish(&mut out);
    assert!(stream.held.is_empty());
}

fn printable(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(prop_oneof![32u8..127, Just(b'\n')], len)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The secret in any of its forms, or base64-encoded inside a longer
    /// blob, surrounded by anything, cut anywhere: no form survives.
    #[test]
    fn no_form_survives_any_chunking(
        secret in proptest::collection::vec(any::<u8>(), 4..40),
        prefix in printable(0..40),
        suffix in printable(0..40),
        inner_before in proptest::collection::vec(any::<u8>(), 0..8),
        inner_after in proptest::collection::vec(any::<u8>(), 0..8),
        pick in any::<prop::sample::Index>(),
        cuts in proptest::collection::vec(0usize..160, 0..8),
        many in any::<bool>(),
    ) {
        let others = if many { many_values() } else { Vec::new() };
        let values: Vec<&[u8]> = std::iter::once(secret.as_slice())
            .chain(others.iter().map(|v| v.as_slice()))
            .collect();
        let r = redactor(&values);
        let forms = all_forms(&secret);
        let mut middle: Vec<Vec<u8>> = forms.iter().map(|f| f.to_vec()).collect();
        let blob = [inner_before.as_slice(), &secret, &inner_after].concat();
        middle.push(STANDARD.encode(&blob).into_bytes());
        middle.push(URL_SAFE_NO_PAD.encode(&blob).into_bytes());
        let input = [prefix.as_slice(), pick.get(&middle).as_slice(), &suffix].concat();
        let out = chunked(&r, &input, &cuts);
        prop_assert_eq!(&out, &r.redact(&input), "output depends on chunking");
        for segment in split(&out, MARKER) {
            for form in &forms {
                prop_assert!(!contains(segment, form));
            }
        }
    }

    /// Text with no secret in it comes out byte for byte, however cut.
    #[test]
    fn text_without_secrets_is_unchanged(
        secret in "[a-zA-Z0-9_]{20,40}",
        text in printable(0..400),
        cuts in proptest::collection::vec(0usize..400, 0..12),
        many in any::<bool>(),
    ) {
        let others = if many { many_values() } else { Vec::new() };
        let values: Vec<&[u8]> = std::iter::once(secret.as_bytes())
            .chain(others.iter().map(|v| v.as_slice()))
            .collect();
        let r = redactor(&values);
        prop_assume!(all_forms(secret.as_bytes()).iter().all(|f| !contains(&text, f)));
        prop_assert_eq!(chunked(&r, &text, &cuts), text);
    }
}

/// `hay` cut at each occurrence of `sep`.
fn split<'a>(hay: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut from = 0;
    let mut i = 0;
    while i + sep.len() <= hay.len() {
        if &hay[i..i + sep.len()] == sep {
            parts.push(&hay[from..i]);
            i += sep.len();
            from = i;
        } else {
            i += 1;
        }
    }
    parts.push(&hay[from..]);
    parts
}

#[test]
fn flush_emits_what_is_held_back_and_masks_whole_values_in_it() {
    let r = redactor(&[TOKEN]);
    let mut stream = r.stream();
    let mut out = Vec::new();
    let mut input = b"data: ".to_vec();
    input.extend_from_slice(TOKEN);
    input.extend_from_slice(b"\n\n");
    stream.push(&input, &mut out);
    assert!(out.len() < input.len(), "a stream holds back a tail");
    stream.flush(&mut out);
    assert_eq!(out, b"data: [cordon: redacted]\n\n");
    // The stream goes on after a flush.
    stream.push(TOKEN, &mut out);
    stream.finish(&mut out);
    assert_eq!(out, b"data: [cordon: redacted]\n\n[cordon: redacted]");
}
