//! The C ABI, module by module: conventions and handles ([`ffi`], [`handles`]), status codes
//! ([`status`]), results ([`record`]), the control plane ([`control`]), key policies, grants and
//! managed keys ([`grants`]), callers and rate quotas ([`access`]), the audit log ([`audit`]), the
//! symmetric data plane ([`data`]) and asymmetric and HMAC operations ([`asymmetric`]).
#![allow(non_camel_case_types)]
#![allow(clippy::too_many_arguments)]

pub mod access;
pub mod asymmetric;
pub mod audit;
mod caller;
pub mod control;
pub mod custom_key_stores;
pub mod data;
pub mod envelope;
mod failure;
pub mod ffi;
pub mod grants;
pub mod handles;
pub mod import;
pub mod limits;
mod overlap;
pub mod record;
pub mod status;
pub mod store;
mod store_open;
#[cfg(test)]
mod test_support;

use std::ffi::c_char;

pub use limits::{
    KP_CIPHERTEXT_MAX_WRAPPING_OVERHEAD, KP_CIPHERTEXT_OVERHEAD, KP_MAX_BATCH_ITEMS, KP_MAX_LENGTH,
    KP_MAX_MAC_LEN, KP_MAX_PRIVATE_KEY_CIPHERTEXT_LEN, KP_MAX_PUBLIC_KEY_LEN,
    KP_MAX_RSA_CIPHERTEXT_LEN, KP_MAX_SECRET_BUFFER, KP_MAX_SIGNATURE_LEN,
};

use caller::from_caller;
use ffi::bytes_arg;

/// Major version of libkeyplane (matches the crate version in Cargo).
pub const KP_VERSION_MAJOR: u32 = 0;
/// Minor version of libkeyplane.
pub const KP_VERSION_MINOR: u32 = 1;
/// Patch version of libkeyplane.
pub const KP_VERSION_PATCH: u32 = 0;
/// The version as one number, MAJOR * 10000 + MINOR * 100 + PATCH, for preprocessor comparisons.
pub const KP_VERSION_NUMBER: u32 =
    KP_VERSION_MAJOR * 10000 + KP_VERSION_MINOR * 100 + KP_VERSION_PATCH;

// The version constants are written out because cbindgen reads them (it does not expand `env!`);
// a version bump that forgets them, or the `KP_VERSION` string in ffi/cbindgen.toml, fails to
// build here.
const _: () = {
    assert!(
        KP_VERSION_MAJOR == parse_u32(env!("CARGO_PKG_VERSION_MAJOR"))
            && KP_VERSION_MINOR == parse_u32(env!("CARGO_PKG_VERSION_MINOR"))
            && KP_VERSION_PATCH == parse_u32(env!("CARGO_PKG_VERSION_PATCH")),
        "update the KP_VERSION_* constants in ffi/src/api/mod.rs and regenerate the header"
    );
    assert!(
        contains(
            include_str!("../../cbindgen.toml"),
            concat!("#define KP_VERSION \"", env!("CARGO_PKG_VERSION"), "\"\n"),
        ),
        "update KP_VERSION in ffi/cbindgen.toml and regenerate the header"
    );
};

/// A decimal number, at compile time (a version component: digits only, no sign).
const fn parse_u32(text: &str) -> u32 {
    let bytes = text.as_bytes();
    assert!(!bytes.is_empty(), "an empty version component");
    let mut value: u32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        assert!(
            bytes[i].is_ascii_digit(),
            "a version component that is not a number"
        );
        value = value * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    value
}

/// Whether `haystack` contains `needle`, at compile time.
const fn contains(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    let mut start = 0;
    while start + n.len() <= h.len() {
        let mut i = 0;
        while i < n.len() && h[start + i] == n[i] {
            i += 1;
        }
        if i == n.len() {
            return true;
        }
        start += 1;
    }
    false
}

/// The library's version, "MAJOR.MINOR.PATCH", as a static NUL-terminated string.
///
/// Ownership: the string is static; do not free it. Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn kp_version() -> *const c_char {
    const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => panic!("the crate version contains a NUL byte"),
    };
    VERSION.as_ptr()
}

/// Whether the library runs on AWS-LC's FIPS 140-3 validated module (built with the engine's
/// `fips` feature).
///
/// Ownership: nothing to free. Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn kp_fips_mode() -> bool {
    ffi::guard_value(false, || Ok(kp::fips_mode()))
}

/// Bytes of the ciphertext blob that a plaintext of `plaintext_len` bytes encrypts to under a
/// key keyplane or an HSM key store holds (`plaintext_len + KP_CIPHERTEXT_OVERHEAD`), the exact
/// size Encrypt writes for such a key, and the least room any symmetric Encrypt takes. A key in
/// an external key store writes a longer blob (double encryption, whose length depends on the XKS
/// proxy's answer): size for it, or for a key not known in advance, with
/// `kp_ciphertext_max_len`. Returns 0 when `plaintext_len` is 0 or larger than any engine
/// accepts (1 MiB).
///
/// Ownership: nothing to free. Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn kp_ciphertext_len(plaintext_len: usize) -> usize {
    data::ciphertext_len(plaintext_len).unwrap_or(0)
}

/// Bytes that always suffice for the ciphertext blob of a plaintext of `plaintext_len` bytes
/// under a symmetric key of any kind (`kp_ciphertext_len(plaintext_len) +
/// KP_CIPHERTEXT_MAX_WRAPPING_OVERHEAD`: a key in an external key store adds a length byte and
/// the XKS proxy's wrapping, at most 255 bytes). Encrypt, ReEncrypt and GenerateDataKey write
/// this much or less and say how much. Returns 0 when `plaintext_len` is 0 or larger than any
/// engine accepts (1 MiB).
///
/// Ownership: nothing to free. Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn kp_ciphertext_max_len(plaintext_len: usize) -> usize {
    data::ciphertext_max_len(plaintext_len).unwrap_or(0)
}

/// The most plaintext a ciphertext blob of `ciphertext_len` bytes decrypts to
/// (`ciphertext_len - KP_CIPHERTEXT_OVERHEAD`): exact for a blob of a key keyplane or an HSM key
/// store holds, a bound for an external key store's (which `kp_blob_plaintext_len` reads exactly
/// from the blob). Returns 0 when no valid blob has that length.
///
/// Ownership: nothing to free. Thread safety: callable from any thread.
#[no_mangle]
pub extern "C" fn kp_plaintext_len(ciphertext_len: usize) -> usize {
    data::plaintext_len(ciphertext_len).unwrap_or(0)
}

/// The exact number of plaintext bytes the ciphertext blob at `ciphertext` (`ciphertext_len`
/// bytes) decrypts to, for a blob of any key kind (read from the blob's framing; decryption
/// authenticates it), the size Decrypt writes. Returns 0 when the bytes are no keyplane blob
/// (or `ciphertext` is NULL).
///
/// Ownership: the blob is only read. Thread safety: callable from any thread.
///
/// # Safety
/// `ciphertext` is NULL or points to `ciphertext_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_blob_plaintext_len(
    ciphertext: *const u8,
    ciphertext_len: usize,
) -> usize {
    ffi::guard_value(0, || {
        let blob = from_caller!(bytes_arg(ciphertext, ciphertext_len, "ciphertext"))?;
        Ok(kp::ciphertext::plaintext_len_of(blob).unwrap_or(0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_macros_match_cargo() {
        let major: u32 = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap();
        let minor: u32 = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap();
        let patch: u32 = env!("CARGO_PKG_VERSION_PATCH").parse().unwrap();
        assert_eq!(
            (KP_VERSION_MAJOR, KP_VERSION_MINOR, KP_VERSION_PATCH),
            (major, minor, patch)
        );
        assert_eq!(KP_VERSION_NUMBER, major * 10000 + minor * 100 + patch);
        // The header derives the number from the other three, as the constant does.
        let header = include_str!("../../../include/keyplane.h");
        assert!(header.contains(
            "#define KP_VERSION_NUMBER (((KP_VERSION_MAJOR * 10000) + (KP_VERSION_MINOR * 100)) + KP_VERSION_PATCH)\n"
        ));
        let define = format!("#define KP_VERSION \"{}\"\n", env!("CARGO_PKG_VERSION"));
        assert!(header.contains(&define));
    }

    /// The compile-time checks' helpers can say no (the checks themselves run at build time).
    #[test]
    fn version_check_helpers_can_fail() {
        assert_eq!(parse_u32("0"), 0);
        assert_eq!(parse_u32("107"), 107);
        assert_ne!(parse_u32("2"), parse_u32("1"));
        assert!(contains(
            "#define KP_VERSION \"0.1.0\"\n",
            "KP_VERSION \"0.1.0\"\n"
        ));
        assert!(!contains(
            "#define KP_VERSION \"0.1.0\"\n",
            "KP_VERSION \"0.1.1\"\n"
        ));
        assert!(!contains(
            "#define KP_VERSION \"0.1.0\"",
            "KP_VERSION \"0.1.0\"\n"
        ));
        assert!(!contains("", "x"));
        assert!(std::panic::catch_unwind(|| parse_u32("1a")).is_err());
        assert!(std::panic::catch_unwind(|| parse_u32("")).is_err());
    }

    #[test]
    fn constants_match_the_engine() {
        assert_eq!(KP_CIPHERTEXT_OVERHEAD, kp::ciphertext::OVERHEAD);
        assert_eq!(KP_MAX_SECRET_BUFFER, kp::MAX_DEDICATED_BYTES);
        assert_eq!(kp_ciphertext_len(1), 83);
        assert_eq!(kp_ciphertext_len(0), 0);
        assert_eq!(kp_plaintext_len(83), 1);
        assert_eq!(kp_plaintext_len(82), 0);
        assert_eq!(
            KP_CIPHERTEXT_MAX_WRAPPING_OVERHEAD,
            kp::ciphertext::max_blob_len(1) - kp::ciphertext::blob_len(1)
        );
        assert_eq!(
            kp_ciphertext_max_len(1),
            83 + KP_CIPHERTEXT_MAX_WRAPPING_OVERHEAD
        );
        assert_eq!(kp_ciphertext_max_len(0), 0);
        // The longest blob of either algorithm still has a plaintext length; one byte more not.
        let longest = kp::ciphertext::MAX_ANY_BLOB_LEN;
        assert_eq!(
            kp_plaintext_len(longest),
            kp::ciphertext::MAX_PLAINTEXT_LIMIT
        );
        assert_eq!(kp_plaintext_len(longest + 1), 0);
    }
}
