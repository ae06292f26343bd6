//! What one data-plane item costs, estimated before it runs, so that [`super::batch_plan`] can
//! decide whether a batch is worth waking worker threads for and cut it into jobs of similar work.
//!
//! The numbers are one core's nanoseconds, rounded from `keyplane-bench` profiles (release,
//! AES-NI/AVX-512 machines): an AES-256-GCM item costs ~250 ns of fixed work (header, key lookup,
//! authorisation, context, tag) plus ~0.2 ns per byte; an HMAC item ~350 ns plus ~0.5 ns per byte;
//! an asymmetric operation tens of microseconds (Ed25519 and P-256 signing) to milliseconds (RSA
//! private-key operations). They only need to be right within a small factor: a wrong guess costs
//! an unneeded wake-up or a missed split, never a wrong result.

use super::{
    DecryptRequest, EncryptRequest, GenerateDataKeyRequest, GenerateMacRequest, ReEncryptRequest,
    SignRequest, VerifyMacRequest, VerifyRequest,
};
use crate::key::EncryptionAlgorithm;

/// Fixed work of one AES-256-GCM item.
const AEAD_ITEM_NS: u64 = 250;
/// Fixed work of one HMAC item.
const MAC_ITEM_NS: u64 = 350;
/// The cheapest asymmetric operation (Ed25519 and P-256 signing); the dearer ones only make a
/// split more worthwhile, so one floor serves them all.
const ASYMMETRIC_ITEM_NS: u64 = 20_000;

/// An item's estimated cost in nanoseconds of one core.
pub(crate) trait ItemCost {
    fn cost_ns(&self) -> u64;
}

/// The kinds of data-plane item the scheduler tells apart, for tools that ask how a batch would
/// run ([`crate::batch_schedule`]) without making one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemWork {
    /// AES-256-GCM under a symmetric key: Encrypt, Decrypt, ReEncrypt, GenerateDataKey.
    Aead,
    /// HMAC: GenerateMac, VerifyMac.
    Mac,
    /// An asymmetric operation: Sign, Verify, RSA encryption and decryption.
    Asymmetric,
}

impl ItemWork {
    /// The estimated cost of one item over `bytes` bytes, as the scheduler counts it.
    pub(crate) fn cost_ns(self, bytes: usize) -> u64 {
        match self {
            ItemWork::Aead => aead_ns(bytes),
            ItemWork::Mac => mac_ns(bytes),
            ItemWork::Asymmetric => ASYMMETRIC_ITEM_NS,
        }
    }
}

/// AES-256-GCM over `bytes` bytes: ~5 GB/s per core.
fn aead_ns(bytes: usize) -> u64 {
    AEAD_ITEM_NS + bytes as u64 / 5
}

/// HMAC over `bytes` bytes: ~2 GB/s per core.
fn mac_ns(bytes: usize) -> u64 {
    MAC_ITEM_NS + bytes as u64 / 2
}

fn by_algorithm(algorithm: Option<EncryptionAlgorithm>, bytes: usize) -> u64 {
    match algorithm {
        None | Some(EncryptionAlgorithm::SymmetricDefault) => aead_ns(bytes),
        Some(_) => ASYMMETRIC_ITEM_NS,
    }
}

impl ItemCost for EncryptRequest<'_> {
    fn cost_ns(&self) -> u64 {
        by_algorithm(Some(self.encryption_algorithm), self.plaintext.len())
    }
}

/// A plaintext of a one-key batch, sealed under the batch's symmetric key.
impl ItemCost for &[u8] {
    fn cost_ns(&self) -> u64 {
        aead_ns(self.len())
    }
}

impl ItemCost for DecryptRequest<'_> {
    fn cost_ns(&self) -> u64 {
        by_algorithm(self.encryption_algorithm, self.ciphertext_blob.len())
    }
}

impl ItemCost for ReEncryptRequest<'_> {
    fn cost_ns(&self) -> u64 {
        by_algorithm(self.source_encryption_algorithm, self.ciphertext_blob.len())
            + by_algorithm(
                Some(self.destination_encryption_algorithm),
                self.ciphertext_blob.len(),
            )
    }
}

impl ItemCost for GenerateDataKeyRequest<'_> {
    fn cost_ns(&self) -> u64 {
        // Drawing the key and sealing it; the generator is read 4 KiB at a time per chunk.
        aead_ns(self.number_of_bytes.unwrap_or(32)) + 100
    }
}

impl ItemCost for SignRequest<'_> {
    fn cost_ns(&self) -> u64 {
        ASYMMETRIC_ITEM_NS
    }
}

impl ItemCost for VerifyRequest<'_> {
    fn cost_ns(&self) -> u64 {
        ASYMMETRIC_ITEM_NS
    }
}

impl ItemCost for GenerateMacRequest<'_> {
    fn cost_ns(&self) -> u64 {
        mac_ns(self.message.len())
    }
}

impl ItemCost for VerifyMacRequest<'_> {
    fn cost_ns(&self) -> u64 {
        mac_ns(self.message.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn larger_and_asymmetric_items_cost_more() {
        let small = EncryptRequest::new("k", &[0u8; 64]);
        let large = EncryptRequest::new("k", &[0u8; 16 * 1024]);
        assert!(large.cost_ns() > 10 * small.cost_ns());
        let mut rsa = EncryptRequest::new("k", &[0u8; 64]);
        rsa.encryption_algorithm = EncryptionAlgorithm::RsaesOaepSha256;
        assert!(rsa.cost_ns() > 50 * small.cost_ns());
    }
}
