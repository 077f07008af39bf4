//! The forms a secret value may take in a tool's output: raw, base64 (two
//! alphabets, with and without padding, at the three alignments inside a
//! longer blob), percent-encoded, JSON-escaped, hex.
//!
//! Every form is built in a [`Zeroizing`] vector whose capacity is
//! reserved up front, so no reallocation leaves a copy on the heap.

use zeroize::Zeroizing;

/// One derived form of a secret value.
pub(crate) type Form = Zeroizing<Vec<u8>>;

/// Values, lines and forms shorter than this are not masked.
pub const MIN_MASKED_LEN: usize = 4;

const BASE64_STANDARD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL_SAFE: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The byte strings to mask for one value: the value itself and, if it
/// spans several lines, each line (without its `\r`) of at least
/// [`MIN_MASKED_LEN`] bytes.
pub(crate) fn pieces(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let lines = value
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| line.len() >= MIN_MASKED_LEN && line.len() < value.len());
    std::iter::once(value).chain(lines)
}

/// Appends every form of `piece` (raw included) to `out`. Forms shorter
/// than [`MIN_MASKED_LEN`] are left out; duplicates are not removed here.
pub(crate) fn derive(piece: &[u8], out: &mut Vec<Form>) {
    let start = out.len();
    out.push(copy(piece));
    for alphabet in [BASE64_STANDARD, BASE64_URL_SAFE] {
        base64_forms(piece, alphabet, out);
    }
    for (upper, plus_space) in [(true, false), (false, false), (true, true), (false, true)] {
        out.push(percent(piece, upper, plus_space));
    }
    for bits in 0..16u8 {
        out.push(json(piece, JsonStyle::from_bits(bits)));
    }
    out.push(hex(piece, b"0123456789abcdef"));
    out.push(hex(piece, b"0123456789ABCDEF"));
    let mut i = start;
    while i < out.len() {
        if out[i].len() < MIN_MASKED_LEN {
            out.swap_remove(i);
        } else {
            i += 1;
        }
    }
}

fn copy(bytes: &[u8]) -> Form {
    let mut v = Zeroizing::new(Vec::with_capacity(bytes.len()));
    v.extend_from_slice(bytes);
    v
}

/// Base64 of `input` (RFC 4648 §4 or §5 alphabet).
pub(crate) fn base64(input: &[u8], alphabet: &[u8; 64], pad: bool) -> Form {
    let mut out = Zeroizing::new(Vec::with_capacity(input.len().div_ceil(3) * 4));
    for group in input.chunks(3) {
        let byte = |i: usize| usize::from(group.get(i).copied().unwrap_or(0));
        let bits = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        // A group of n bytes yields n + 1 significant characters.
        for i in 0..4 {
            if i <= group.len() {
                out.push(alphabet[(bits >> (18 - 6 * i)) & 0x3f]);
            } else if pad {
                out.push(b'=');
            }
        }
    }
    out
}

/// The base64 forms of `value` at each alignment inside a longer encoded
/// blob.
///
/// Put `value` at byte offset `p` of a blob and let `s = p mod 3`; since
/// base64 works on 3-byte groups, only `s` matters. Take the encoding of
/// `s` zero bytes followed by `value` (n bytes). Character k of it covers
/// bits 6k..6k+6 of the input, and the value occupies bits 8s..8(s+n), so
/// character k depends on nothing but the value exactly when
/// `6k >= 8s` and `6k + 6 <= 8(s+n)`, i.e. for k in
/// `ceil(4s/3) .. floor(4(s+n)/3)`: drop the first 0, 2 or 3 characters
/// (for s = 0, 1, 2) and everything from the last partial character on.
/// That core is masked wherever the value sits in the blob.
///
/// When the value ends the blob, the characters after the core depend
/// only on the value and the encoder's zero fill: the core extended to the
/// end of the encoding is masked too, with and without `=` padding.
fn base64_forms(value: &[u8], alphabet: &[u8; 64], out: &mut Vec<Form>) {
    for shift in 0..3 {
        out.extend(base64_shifted(value, alphabet, shift));
    }
}

/// For `value` at `shift` (0, 1 or 2) bytes past a 3-byte group boundary:
/// the core (characters that depend on the value alone), then the core
/// extended to the end of the encoding when the value ends the blob, with
/// and without padding.
pub(crate) fn base64_shifted(value: &[u8], alphabet: &[u8; 64], shift: usize) -> [Form; 3] {
    let mut shifted = Zeroizing::new(Vec::with_capacity(shift + value.len()));
    shifted.resize(shift, 0);
    shifted.extend_from_slice(value);
    let padded = base64(&shifted, alphabet, true);
    let first = (4 * shift).div_ceil(3).min(padded.len());
    let core_end = (4 * shifted.len() / 3).max(first);
    let tail = &padded[first..];
    let unpadded = tail.iter().rposition(|&c| c != b'=').map_or(0, |i| i + 1);
    [
        copy(&padded[first..core_end]),
        copy(tail),
        copy(&tail[..unpadded]),
    ]
}

/// Percent-encoding of every byte outside RFC 3986's unreserved set
/// (`A-Z a-z 0-9 - . _ ~`), the hex digits in upper or lower case; with
/// `plus_space`, a space is `+` as in form encoding.
fn percent(value: &[u8], upper: bool, plus_space: bool) -> Form {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 3));
    for &b in value {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else if plus_space && b == b' ' {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[
                b'%',
                digits[usize::from(b >> 4)],
                digits[usize::from(b & 0xf)],
            ]);
        }
    }
    out
}

/// How a JSON encoder escapes a string. All of them escape `"`, `\` and
/// the controls (`\b \f \n \r \t` short, others `\u00XX`).
#[derive(Clone, Copy)]
struct JsonStyle {
    /// `/` as `\/` (PHP, some Java encoders).
    escape_slash: bool,
    /// `\u` escapes with upper-case hex (Jackson, .NET).
    upper_hex: bool,
    /// Non-ASCII characters as `\uXXXX`, surrogate pairs above U+FFFF
    /// (Python's `json.dumps` default).
    ascii_only: bool,
    /// `<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes (Go's
    /// `encoding/json` default).
    html_safe: bool,
}

impl JsonStyle {
    fn from_bits(bits: u8) -> Self {
        JsonStyle {
            escape_slash: bits & 1 != 0,
            upper_hex: bits & 2 != 0,
            ascii_only: bits & 4 != 0,
            html_safe: bits & 8 != 0,
        }
    }
}

/// The JSON string escaping of `value`, without the surrounding quotes.
/// Bytes that are not UTF-8 are kept as they are.
fn json(value: &[u8], style: JsonStyle) -> Form {
    // At most 6 bytes out per byte in (a control as `\u00XX`; a 4-byte
    // character becomes 12).
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 6));
    let digits: &[u8; 16] = if style.upper_hex {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let unicode = |out: &mut Vec<u8>, unit: u16| {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(digits[usize::from((unit >> shift) & 0xf)]);
        }
    };
    for chunk in value.utf8_chunks() {
        for c in chunk.valid().chars() {
            let mut utf8 = [0u8; 4];
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{8}' => out.extend_from_slice(b"\\b"),
                '\u{c}' => out.extend_from_slice(b"\\f"),
                '/' if style.escape_slash => out.extend_from_slice(b"\\/"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' if style.html_safe => {
                    let mut units = [0u16; 2];
                    for &unit in c.encode_utf16(&mut units).iter() {
                        unicode(&mut out, unit);
                    }
                }
                c if c < ' ' || (style.ascii_only && !c.is_ascii()) => {
                    let mut units = [0u16; 2];
                    for &unit in c.encode_utf16(&mut units).iter() {
                        unicode(&mut out, unit);
                    }
                }
                c => out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes()),
            }
        }
        out.extend_from_slice(chunk.invalid());
    }
    out
}

/// Hex encoding with the given digits.
fn hex(value: &[u8], digits: &[u8; 16]) -> Form {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 2));
    for &b in value {
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 0xf)]);
    }
    out
}

#[cfg(test)]
#[path = "forms_tests.rs"]
mod tests;
