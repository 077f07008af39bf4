use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use proptest::prelude::*;

use super::*;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Our alphabets and padding against the `base64` crate's engines.
fn engines() -> [(&'static [u8; 64], bool, base64::engine::GeneralPurpose); 4] {
    [
        (BASE64_STANDARD, true, STANDARD),
        (BASE64_STANDARD, false, STANDARD_NO_PAD),
        (BASE64_URL_SAFE, true, URL_SAFE),
        (BASE64_URL_SAFE, false, URL_SAFE_NO_PAD),
    ]
}

proptest! {
    #[test]
    fn base64_matches_the_base64_crate(input in proptest::collection::vec(any::<u8>(), 0..64)) {
        for (alphabet, pad, engine) in engines() {
            let ours = base64(&input, alphabet, pad);
            let theirs = engine.encode(&input).into_bytes();
            prop_assert_eq!(ours.as_slice(), theirs.as_slice());
        }
    }

    /// The derivation of the shifted forms, checked against a real
    /// encoder: wherever the value sits in the blob, its core is in the
    /// encoding at character ceil(4p/3)-ish, and when it ends the blob,
    /// the extended forms end the encoding.
    #[test]
    fn shifted_base64_is_in_any_blob_holding_the_value(
        value in proptest::collection::vec(any::<u8>(), 4..48),
        before in proptest::collection::vec(any::<u8>(), 0..12),
        after in proptest::collection::vec(any::<u8>(), 0..12),
    ) {
        let shift = before.len() % 3;
        let blob = [before.as_slice(), &value, &after].concat();
        for (alphabet, pad, engine) in engines() {
            let encoded = engine.encode(&blob);
            let [core, tail_padded, tail_unpadded] = base64_shifted(&value, alphabet, shift);
            let at = before.len() / 3 * 4 + (4 * shift).div_ceil(3);
            prop_assert_eq!(&encoded.as_bytes()[at..at + core.len()], core.as_slice());
            if after.is_empty() {
                let tail = if pad { &tail_padded } else { &tail_unpadded };
                prop_assert!(encoded.as_bytes().ends_with(tail));
            }
        }
    }

    #[test]
    fn json_default_style_matches_serde_json(s in "\\PC{0,40}|[\\x00-\\x7f]{0,40}") {
        let quoted = serde_json::to_string(&s).unwrap();
        let want = &quoted.as_bytes()[1..quoted.len() - 1];
        let ours = json(s.as_bytes(), JsonStyle::from_bits(0));
        prop_assert_eq!(ours.as_slice(), want);
    }

    #[test]
    fn no_form_is_shorter_than_the_minimum(value in proptest::collection::vec(any::<u8>(), 4..20)) {
        let mut out = Vec::new();
        derive(&value, &mut out);
        prop_assert!(out.iter().all(|f| f.len() >= MIN_MASKED_LEN));
    }
}

/// The core is as long as it can be: the character before it depends on
/// the bytes before the value, the one after it on the bytes after.
#[test]
fn shifted_core_is_maximal() {
    let value = b"0123456789abcdefghij";
    for shift in 1..3 {
        let [core, _, _] = base64_shifted(value, BASE64_STANDARD, shift);
        let at = (4 * shift).div_ceil(3);
        let enc = |fill: u8| {
            let blob = [vec![fill; shift], value.to_vec(), vec![fill; 2]].concat();
            STANDARD.encode(blob).into_bytes()
        };
        let (zeros, ones) = (enc(0), enc(0xff));
        assert_ne!(zeros[at - 1], ones[at - 1], "shift {shift}");
        assert_eq!(zeros[at..at + core.len()], ones[at..at + core.len()]);
        if (shift + value.len()) % 3 != 0 {
            let end = at + core.len();
            assert_ne!(zeros[end], ones[end], "shift {shift}");
        }
    }
}

#[test]
fn base64_user_colon_token() {
    let token = b"ghp_canary0123456789abcdefghijklmnopqrstu";
    let mut forms = Vec::new();
    derive(token, &mut forms);
    for user in ["user:", "x-access-token:", "ab:", ""] {
        let blob = STANDARD.encode([user.as_bytes(), token].concat());
        assert!(
            forms
                .iter()
                .any(|f| contains(blob.as_bytes(), f) && f.len() >= 50),
            "{user}"
        );
    }
}

#[test]
fn percent_encoding() {
    let v = b"a b/c~d+";
    assert_eq!(percent(v, true, false).as_slice(), b"a%20b%2Fc~d%2B");
    assert_eq!(percent(v, false, false).as_slice(), b"a%20b%2fc~d%2b");
    assert_eq!(percent(v, true, true).as_slice(), b"a+b%2Fc~d%2B");
    assert_eq!(percent(v, false, true).as_slice(), b"a+b%2fc~d%2b");
    assert_eq!(percent(b"\xff\x00", true, false).as_slice(), b"%FF%00");
}

#[test]
fn json_styles() {
    let style = |escape_slash, upper_hex, ascii_only, html_safe| JsonStyle {
        escape_slash,
        upper_hex,
        ascii_only,
        html_safe,
    };
    let v = "a/\"\\\n\t\u{1f}<&>é😀".as_bytes();
    let cases: [(JsonStyle, &str); 4] = [
        (
            style(false, false, false, false),
            "a/\\\"\\\\\\n\\t\\u001f<&>é😀",
        ),
        (
            style(true, true, false, false),
            "a\\/\\\"\\\\\\n\\t\\u001F<&>é😀",
        ),
        (
            style(false, false, true, false),
            "a/\\\"\\\\\\n\\t\\u001f<&>\\u00e9\\ud83d\\ude00",
        ),
        (
            style(false, false, false, true),
            "a/\\\"\\\\\\n\\t\\u001f\\u003c\\u0026\\u003eé😀",
        ),
    ];
    for (style, want) in cases {
        assert_eq!(String::from_utf8_lossy(&json(v, style)), want);
    }
    // Bytes that are not UTF-8 are kept.
    assert_eq!(
        json(b"ab\xffcd", style(false, false, true, false)).as_slice(),
        b"ab\xffcd"
    );
}

#[test]
fn hex_both_cases() {
    assert_eq!(hex(b"\x01\xab", b"0123456789abcdef").as_slice(), b"01ab");
    assert_eq!(hex(b"\x01\xab", b"0123456789ABCDEF").as_slice(), b"01AB");
}

#[test]
fn pieces_are_the_value_and_its_long_lines() {
    let v = b"line-one\r\nln\nline-three\n";
    let got: Vec<&[u8]> = pieces(v).collect();
    assert_eq!(got, [&v[..], b"line-one", b"line-three"]);
    let single: Vec<&[u8]> = pieces(b"token").collect();
    assert_eq!(single, [b"token"]);
}
