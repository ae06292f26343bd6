//! Fuzz target `context_encode`: `keyplane::context::encode` against the documented format.
//!
//! Two encryption contexts are read from the input. Each encodes exactly as a reference decoder
//! reads back (count, then length-prefixed keys and values in byte order of keys), or is refused
//! with `ValidationException` exactly when its encoding would pass 8192 bytes; and two contexts
//! encode alike exactly when they are equal (the encoding is injective), an absent and an empty
//! context alike (`00 00`).

use keyplane::context::{self, MAX_ENCODED_CONTEXT};
use keyplane::EncryptionContext;

use crate::common::Input;

/// Reads the canonical encoding back: `None` if `bytes` are not one.
pub fn decode(bytes: &[u8]) -> Option<EncryptionContext> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let piece = bytes.get(at..at.checked_add(n)?)?;
        at += n;
        Some(piece)
    };
    let count = u16::from_be_bytes(take(2)?.try_into().ok()?);
    let mut map = EncryptionContext::new();
    let mut previous: Option<String> = None;
    for _ in 0..count {
        let mut part = || -> Option<String> {
            let len = u16::from_be_bytes(take(2)?.try_into().ok()?);
            String::from_utf8(take(usize::from(len))?.to_vec()).ok()
        };
        let key = part()?;
        let value = part()?;
        // Keys strictly ascending in byte order: unique and canonical.
        if previous
            .as_ref()
            .is_some_and(|p| p.as_bytes() >= key.as_bytes())
        {
            return None;
        }
        previous = Some(key.clone());
        map.insert(key, value);
    }
    (at == bytes.len()).then_some(map)
}

/// The length the canonical encoding of `context` has.
pub fn encoded_len(context: &EncryptionContext) -> usize {
    2 + context
        .iter()
        .map(|(k, v)| 4 + k.len() + v.len())
        .sum::<usize>()
}

/// A context read from the input: up to 15 pairs of short strings, or one large pair near the
/// size limit.
fn read_context(input: &mut Input<'_>) -> EncryptionContext {
    let mut context = EncryptionContext::new();
    let head = input.byte();
    if head == 0xFF {
        // One pair whose value is about as long as the limit allows.
        let key = input.short_string();
        let len = usize::from(input.u16()) % (MAX_ENCODED_CONTEXT + 64);
        let fill = char::from(b'a' + input.byte() % 26);
        context.insert(key, fill.to_string().repeat(len));
        return context;
    }
    for _ in 0..head % 16 {
        let key = input.short_string();
        let value = input.short_string();
        context.insert(key, value);
    }
    context
}

fn check_one(context: &EncryptionContext) -> Option<Vec<u8>> {
    let expected_len = encoded_len(context);
    match context::encode(Some(context)) {
        Ok(encoded) => {
            assert!(
                expected_len <= MAX_ENCODED_CONTEXT,
                "oversized context accepted"
            );
            assert_eq!(encoded.len(), expected_len);
            assert_eq!(
                decode(&encoded).as_ref(),
                Some(context),
                "the encoding does not read back"
            );
            let mut appended = vec![0xEE];
            context::encode_into(Some(context), &mut appended).expect("encode_into");
            assert_eq!(
                &appended[1..],
                &encoded[..],
                "encode_into differs from encode"
            );
            Some(encoded)
        }
        Err(error) => {
            assert_eq!(error.code(), "ValidationException");
            assert!(
                expected_len > MAX_ENCODED_CONTEXT,
                "a context of {expected_len} encoded bytes was refused"
            );
            let mut out = vec![1, 2, 3];
            assert!(context::encode_into(Some(context), &mut out).is_err());
            assert_eq!(out, [1, 2, 3], "a refused encoding left bytes behind");
            None
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let first = read_context(&mut input);
    let second = read_context(&mut input);
    let a = check_one(&first);
    let b = check_one(&second);
    if let (Some(a), Some(b)) = (a, b) {
        assert_eq!(a == b, first == second, "the encoding is not injective");
    }
    let none = context::encode(None).expect("encode(None)");
    assert_eq!(none, [0, 0]);
    assert_eq!(
        context::encode(Some(&EncryptionContext::new())).expect("empty"),
        none
    );
}
