//! The hash chain: how a record line is numbered, chained and read back.
//!
//! A record line is exactly
//!
//! ```text
//! {"seq":N,<members of the event>,"chain":"<64 lowercase hex digits>"}\n
//! ```
//!
//! Its *canonical bytes* are the line without its trailing `,"chain":"…"` member and without the
//! newline, i.e. `{"seq":N,<members of the event>}`: the record as JSON, without the chain field,
//! byte for byte as written (compact, members in a fixed order). Nobody re-serializes anything:
//! the canonical bytes are cut out of the line, so any change to any byte of a record shows.
//!
//! `chain(N) = SHA-256(chain(N-1) ‖ canonical(N))`, where `chain(N-1)` is the previous record's
//! chain as 32 raw bytes (not hex) and `chain(0)` is [`GENESIS_CHAIN`], 32 zero bytes. Records are
//! numbered from 1 with no gaps; digest lines are not part of the record chain.

use crate::crypto::digest::Sha256;

/// The chain value before the first record: 32 zero bytes.
pub const GENESIS_CHAIN: [u8; 32] = [0; 32];

/// What every record line starts with.
pub(crate) const RECORD_PREFIX: &[u8] = b"{\"seq\":";
/// What precedes the chain's hex digits at the end of a record line.
const CHAIN_MEMBER: &[u8] = b",\"chain\":\"";
/// Length of the trailing `,"chain":"<64 hex>"}` of a record line.
const CHAIN_SUFFIX_LEN: usize = CHAIN_MEMBER.len() + 64 + 2;

/// `SHA-256(previous ‖ canonical)`: the chain value of a record whose canonical bytes are
/// `canonical`, following a record whose chain value is `previous`.
pub fn chain_hash(previous: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    chain_hash_parts(previous, &[canonical])
}

/// [`chain_hash`] of canonical bytes given in pieces.
fn chain_hash_parts(previous: &[u8; 32], canonical: &[&[u8]]) -> [u8; 32] {
    let mut context = Sha256::new();
    context.update(previous);
    for part in canonical {
        context.update(part);
    }
    context.finish()
}

/// Appends the record line for `body` (an event's JSON object, `{…}`, at least 2 bytes) numbered
/// `seq` and chained to `previous` to `buf`, newline included; returns the record's chain value.
pub(crate) fn append_record_line(
    buf: &mut Vec<u8>,
    seq: u64,
    body: &[u8],
    previous: &[u8; 32],
) -> [u8; 32] {
    let start = buf.len();
    buf.extend_from_slice(RECORD_PREFIX);
    append_decimal(buf, seq);
    let inner = body
        .get(1..body.len().saturating_sub(1))
        .unwrap_or_default();
    if !inner.is_empty() {
        buf.push(b',');
        buf.extend_from_slice(inner);
    }
    buf.push(b'}');
    let chain = chain_hash(previous, &buf[start..]);
    buf.pop();
    buf.extend_from_slice(CHAIN_MEMBER);
    append_hex(buf, &chain);
    buf.extend_from_slice(b"\"}\n");
    chain
}

/// A record line taken apart (without its newline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecordLine<'a> {
    /// `seq`.
    pub seq: u64,
    /// The canonical bytes less their closing `}` (the line up to the chain member).
    pub head: &'a [u8],
    /// The chain value the line states.
    pub stated_chain: [u8; 32],
}

impl RecordLine<'_> {
    /// The chain value this record has when it follows a record whose chain is `previous`.
    pub fn chain_after(&self, previous: &[u8; 32]) -> [u8; 32] {
        chain_hash_parts(previous, &[self.head, b"}"])
    }

    /// Whether the stated chain is right after `previous`.
    pub fn follows(&self, previous: &[u8; 32]) -> bool {
        self.chain_after(previous) == self.stated_chain
    }
}

/// Takes a record line apart: `{"seq":N,` … `,"chain":"<64 hex>"}`. `None` when the line is not
/// shaped like a record line (its stated chain, if it has one, is still given by
/// [`stated_chain`]).
pub(crate) fn parse_record_line(line: &[u8]) -> Option<RecordLine<'_>> {
    let rest = line.strip_prefix(RECORD_PREFIX)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 20 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let after = *rest.get(digits)?;
    if after != b',' && after != b'}' {
        return None;
    }
    let seq: u64 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let stated_chain = stated_chain(line)?;
    let head = &line[..line.len() - CHAIN_SUFFIX_LEN];
    if head.len() < RECORD_PREFIX.len() + digits {
        return None;
    }
    Some(RecordLine {
        seq,
        head,
        stated_chain,
    })
}

/// The chain value stated at the end of a line (`,"chain":"<64 hex>"}`), if it ends so.
pub(crate) fn stated_chain(line: &[u8]) -> Option<[u8; 32]> {
    if line.len() < CHAIN_SUFFIX_LEN || !line.ends_with(b"\"}") {
        return None;
    }
    let suffix = &line[line.len() - CHAIN_SUFFIX_LEN..];
    if !suffix.starts_with(CHAIN_MEMBER) {
        return None;
    }
    parse_hex32(&suffix[CHAIN_MEMBER.len()..CHAIN_MEMBER.len() + 64])
}

/// `n` in decimal.
pub(crate) fn append_decimal(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`, appended.
pub(crate) fn append_hex(buf: &mut Vec<u8>, bytes: &[u8]) {
    for b in bytes {
        buf.push(HEX_DIGITS[usize::from(b >> 4)]);
        buf.push(HEX_DIGITS[usize::from(b & 0x0f)]);
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|b| {
            [
                char::from(HEX_DIGITS[usize::from(b >> 4)]),
                char::from(HEX_DIGITS[usize::from(b & 0x0f)]),
            ]
        })
        .collect()
}

/// Bytes from lowercase hex; `None` for odd length or any other character.
pub(crate) fn parse_hex(hex: &[u8]) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// 32 bytes from 64 lowercase hex digits.
pub(crate) fn parse_hex32(hex: &[u8]) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    parse_hex(hex)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shape_and_chain_definition() {
        let mut buf = Vec::new();
        let chain = append_record_line(&mut buf, 7, br#"{"eventName":"Encrypt"}"#, &GENESIS_CHAIN);
        let line = std::str::from_utf8(&buf).unwrap();
        let canonical = r#"{"seq":7,"eventName":"Encrypt"}"#;
        let expected = chain_hash(&GENESIS_CHAIN, canonical.as_bytes());
        assert_eq!(chain, expected);
        assert_eq!(
            line,
            format!(
                "{{\"seq\":7,\"eventName\":\"Encrypt\",\"chain\":\"{}\"}}\n",
                to_hex(&expected)
            )
        );
        // The chain is SHA-256 over 32 raw previous bytes then the canonical bytes.
        let mut context = Sha256::new();
        context.update(&[0u8; 32]);
        context.update(canonical.as_bytes());
        assert_eq!(context.finish(), expected);
    }

    #[test]
    fn parse_round_trips_and_follows() {
        let mut buf = Vec::new();
        let first = append_record_line(&mut buf, 1, br#"{"a":1}"#, &GENESIS_CHAIN);
        let start = buf.len();
        let second = append_record_line(&mut buf, 2, br#"{"a":2}"#, &first);
        let line = &buf[start..buf.len() - 1];
        let parsed = parse_record_line(line).unwrap();
        assert_eq!(parsed.seq, 2);
        assert_eq!(parsed.stated_chain, second);
        assert!(parsed.follows(&first));
        assert!(!parsed.follows(&GENESIS_CHAIN));
        assert_eq!(stated_chain(line), Some(second));
    }

    #[test]
    fn rejects_lines_of_other_shapes() {
        let hex = "0".repeat(64);
        for line in [
            String::new(),
            format!("{{\"seq\":,\"chain\":\"{hex}\"}}"),
            format!("{{\"seq\":01,\"chain\":\"{hex}\"}}"),
            format!("{{\"seq\":1,\"chain\":\"{}\"}}", "A".repeat(64)),
            format!("{{\"seq\":1,\"chain\":\"{}\"}}", "0".repeat(63)),
            format!("{{\"seqx\":1,\"chain\":\"{hex}\"}}"),
            "{\"seq\":1}".to_string(),
        ] {
            assert!(parse_record_line(line.as_bytes()).is_none(), "{line}");
        }
        let ok = format!("{{\"seq\":1,\"chain\":\"{hex}\"}}");
        assert!(parse_record_line(ok.as_bytes()).is_some());
    }

    #[test]
    fn decimal_and_hex() {
        let mut buf = Vec::new();
        append_decimal(&mut buf, 0);
        buf.push(b' ');
        append_decimal(&mut buf, u64::MAX);
        assert_eq!(buf, b"0 18446744073709551615");
        assert_eq!(to_hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(parse_hex(b"00abff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(parse_hex(b"0"), None);
        assert_eq!(parse_hex(b"0G"), None);
    }
}
