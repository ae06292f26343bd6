//! Double encryption for keys in external key stores (the service's design for XKS keys, in
//! keyplane's blob; `docs/xks.md` states it and its security argument).
//!
//! Per call: a fresh random 32-byte secret `S` goes to the XKS proxy's Encrypt under the external
//! key, with associated data binding the key ARN, the blob header (key id, version, salt, nonce)
//! and a SHA-256 of the encryption context; what the proxy returns (its ciphertext, IV, tag and
//! metadata, CDIV checked by the client) is carried in the blob. The data is then sealed with
//! AES-256-GCM under `HKDF-SHA256(material ‖ S, salt, info)`, where `material` is the key
//! version's keyplane-held material and `info` names the key, version, store and external key.
//! Decrypting needs both: keyplane's material, and the proxy's Decrypt of the wrapped `S` (which
//! the proxy answers only while it holds the external key).

use uuid::Uuid;

use super::external_key::ExternalKey;
use crate::access::{Action, Caller};
use crate::crypto::aes_gcm::AesGcmKey;
use crate::error::{Error, Result};
use crate::locked_memory::{LockPolicy, LockedBytes};

/// Bytes of the per-call secret the external key wraps.
pub(crate) const SECRET_LEN: usize = 32;

const AAD_LABEL: &[u8] = b"keyplane v1 XKS double encryption";
const DERIVATION_LABEL: &[u8] = b"keyplane v1 AES-256-GCM external key store data key";

fn push_prefixed(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&u16::try_from(part.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(part);
}

/// The associated data sent to the proxy: label ‖ key ARN ‖ blob header ‖ SHA-256(canonical
/// encryption context), each length-prefixed. Under the spec's 8 KiB whatever the context.
pub(crate) fn proxy_aad(key_arn: &str, header: &[u8], context_encoding: &[u8]) -> Vec<u8> {
    let digest = crate::crypto::digest::sha256(context_encoding);
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + key_arn.len() + header.len() + 40);
    push_prefixed(&mut aad, AAD_LABEL);
    push_prefixed(&mut aad, key_arn.as_bytes());
    push_prefixed(&mut aad, header);
    push_prefixed(&mut aad, &digest);
    aad
}

/// The XKS `requestMetadata` of a cryptographic call (spec: awsPrincipalArn, kmsKeyArn,
/// kmsOperation, kmsRequestId), as JSON. `kmsRequestId` is `request_id`, the audit record id of
/// the call that caused the proxy request (through `keyplane serve`, the `x-amzn-RequestId` its
/// client was answered with); a fresh id when the engine keeps no audit log.
pub(crate) fn request_metadata(
    caller: &Caller,
    key_arn: &str,
    action: Action,
    request_id: Option<&str>,
) -> String {
    let operation = match action {
        Action::ReEncryptFrom | Action::ReEncryptTo => "ReEncrypt",
        other => other.operation(),
    };
    serde_json::json!({
        "awsPrincipalArn": caller.principal(),
        "kmsKeyArn": key_arn,
        "kmsOperation": operation,
        "kmsRequestId": request_id.map_or_else(|| Uuid::new_v4().to_string(), str::to_owned),
    })
    .to_string()
}

/// The data key of one double-encrypted blob: HKDF-SHA256 of `material ‖ secret` with the
/// blob's salt, and `info` = label ‖ key id ‖ version ‖ store id ‖ external key id.
pub(crate) fn derive(
    material: &LockedBytes,
    secret: &[u8],
    external: &ExternalKey,
    key_id: &Uuid,
    version: u32,
    salt: &[u8],
    policy: LockPolicy,
) -> Result<AesGcmKey> {
    if material.bytes().is_empty() || secret.len() != SECRET_LEN {
        return Err(Error::Internal(
            "an external key store key version without its material or secret".into(),
        ));
    }
    let mut ikm = LockedBytes::zeroed(material.bytes().len() + SECRET_LEN, policy)?;
    {
        let out = ikm.bytes_mut();
        let (a, b) = out.split_at_mut(material.bytes().len());
        a.copy_from_slice(material.bytes());
        b.copy_from_slice(secret);
    }
    let mut info = Vec::with_capacity(DERIVATION_LABEL.len() + 24 + 140);
    info.extend_from_slice(DERIVATION_LABEL);
    info.extend_from_slice(key_id.as_bytes());
    info.extend_from_slice(&version.to_be_bytes());
    push_prefixed(&mut info, external.store_id.as_bytes());
    push_prefixed(&mut info, external.backing_key.as_bytes());
    AesGcmKey::derive(&ikm, salt, &info, policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_aad_changes_with_each_bound_part() {
        let base = proxy_aad("arn:a", b"header", b"ctx");
        assert_ne!(base, proxy_aad("arn:b", b"header", b"ctx"));
        assert_ne!(base, proxy_aad("arn:a", b"headeR", b"ctx"));
        assert_ne!(base, proxy_aad("arn:a", b"header", b"ctx2"));
        // Length prefixes keep the parts apart.
        assert_ne!(proxy_aad("arn:ah", b"eader", b"ctx"), base);
        assert!(proxy_aad(&"a".repeat(2048), &[0; 400], &[0; 9000]).len() < 8192);
    }
}
