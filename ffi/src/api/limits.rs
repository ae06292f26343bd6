//! The library's limits and the sizes callers allocate by: one leaf every export module reads.

/// Largest length the library accepts for any one buffer or byte string (1 GiB). Anything longer
/// is taken for a corrupt length and refused with `KP_STATUS_INVALID_LENGTH` before the memory is
/// touched; the engine's own limits (plaintext, ciphertext) are far lower.
pub const KP_MAX_LENGTH: usize = 1 << 30;
/// Most items one batch call takes (16,777,216).
pub const KP_MAX_BATCH_ITEMS: usize = 1 << 24;
/// Bytes a ciphertext blob adds to its plaintext: header (66) and GCM tag (16). See
/// `docs/ciphertext-format.md`.
pub const KP_CIPHERTEXT_OVERHEAD: usize = 82;
/// Most bytes a key in an external key store adds beyond `KP_CIPHERTEXT_OVERHEAD`: a length byte
/// and the XKS proxy's wrapping of the per-call secret (at most 255 bytes). See
/// `kp_ciphertext_max_len` and `docs/ciphertext-format.md`.
pub const KP_CIPHERTEXT_MAX_WRAPPING_OVERHEAD: usize = 256;
/// Largest secret buffer `kp_secret_buffer_new` allocates (2 MiB of locked memory).
pub const KP_MAX_SECRET_BUFFER: usize = 2 << 20;
/// Longest RSA-OAEP ciphertext (an RSA_4096 key's modulus): an RSA ciphertext is as long as its
/// key's modulus, 256, 384 or 512 bytes for RSA_2048, RSA_3072 and RSA_4096.
pub const KP_MAX_RSA_CIPHERTEXT_LEN: usize = 512;
/// Longest signature: an RSA_4096 key's. `kp_signature_max_len` gives the bound per key spec and
/// algorithm (RSA: the modulus size; ECDSA, DER-encoded: 72, 104 and 139 bytes for P-256 and
/// secp256k1, P-384 and P-521; Ed25519: 64).
pub const KP_MAX_SIGNATURE_LEN: usize = 512;
/// Longest MAC (HMAC_SHA_512); `kp_mac_len` gives each algorithm's (28, 32, 48, 64).
pub const KP_MAX_MAC_LEN: usize = 64;
/// Longest public key GetPublicKey and GenerateDataKeyPair return: an RSA_4096 key's DER
/// SubjectPublicKeyInfo (550 bytes; RSA_2048 294, RSA_3072 422, P-256 91, P-384 120, P-521 158,
/// secp256k1 88, Ed25519 44).
pub const KP_MAX_PUBLIC_KEY_LEN: usize = 550;
/// A buffer this long always holds a data key pair's encrypted private key: a PKCS#8 private key
/// of up to 2560 bytes (an RSA_4096 key takes about 2375; RSA sizes vary by a few bytes from key
/// to key) plus `KP_CIPHERTEXT_OVERHEAD` and, for a key in an external key store,
/// `KP_CIPHERTEXT_MAX_WRAPPING_OVERHEAD`.
pub const KP_MAX_PRIVATE_KEY_CIPHERTEXT_LEN: usize =
    2560 + KP_CIPHERTEXT_OVERHEAD + KP_CIPHERTEXT_MAX_WRAPPING_OVERHEAD;
