//! GenerateMac and VerifyMac (HMAC keys; RFC 2104).

use super::chunk::ChunkContext;
use super::item_outputs::Outputs;
use super::keyring::KeyEntry;
use super::plane::DataPlane;
use super::primitive::KeyPrimitive;
use super::tally::KeyTally;
use crate::access::request_facts::RequestFacts;
use crate::access::{Action, Caller};
use crate::crypto::hmac::{HmacKey, MAX_MAC_LEN};
use crate::error::{validation, Error, Result};
use crate::key::{KeyUsage, MacAlgorithm};
use crate::messages;

/// Largest message GenerateMac and VerifyMac take.
pub const MAX_MAC_MESSAGE: usize = 4096;

/// A GenerateMac request.
#[derive(Clone, Copy)]
pub struct GenerateMacRequest<'a> {
    pub key_id: &'a str,
    /// 1 to 4096 bytes.
    pub message: &'a [u8],
    pub mac_algorithm: MacAlgorithm,
}

/// GenerateMac's answer.
#[derive(Debug, Clone)]
pub struct GenerateMacResponse {
    pub key_id: String,
    pub mac: Vec<u8>,
    pub mac_algorithm: MacAlgorithm,
}

/// One MAC of a batch, held inline (HMAC-SHA-512's 64 bytes at most): a batch of MACs makes no
/// allocation per MAC, which on two threads was one `malloc` on the thread that computed it and
/// one `free` on the thread that dropped it (15% of a batch's samples, most of it in glibc's
/// slow paths). Reads as the MAC's bytes. It has no `==`: a MAC is checked with VerifyMac, or
/// in constant time.
#[derive(Clone, Copy)]
pub struct Mac {
    bytes: [u8; MAX_MAC_LEN],
    len: u8,
}

impl Mac {
    /// The MAC's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::ops::Deref for Mac {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Mac {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A MAC is not secret (the service returns it), but its length is all a log needs.
        write!(f, "Mac({} bytes)", self.len)
    }
}

/// A VerifyMac request.
#[derive(Clone, Copy)]
pub struct VerifyMacRequest<'a> {
    pub key_id: &'a str,
    pub message: &'a [u8],
    pub mac: &'a [u8],
    pub mac_algorithm: MacAlgorithm,
}

/// VerifyMac's answer; a MAC that does not verify is `Error::InvalidMac` instead.
#[derive(Debug, Clone)]
pub struct VerifyMacResponse {
    pub key_id: String,
    pub mac_valid: bool,
    pub mac_algorithm: MacAlgorithm,
}

macro_rules! redacted_debug {
    ($name:ident { $($field:ident),* }) => {
        impl std::fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("key_id", &self.key_id)
                    .field("message", &format_args!("<{} bytes, redacted>", self.message.len()))
                    $(.field(stringify!($field), &self.$field))*
                    .finish()
            }
        }
    };
}
redacted_debug!(GenerateMacRequest { mac_algorithm });
redacted_debug!(VerifyMacRequest { mac_algorithm });

/// Resolves the key a MAC request names, authorizes the request on it and takes its HMAC key
/// (the steps GenerateMac and VerifyMac share, in the service's order).
fn authorized_hmac_key<'k>(
    ctx: &mut ChunkContext<'k>,
    action: Action,
    key_id: &str,
    algorithm: MacAlgorithm,
    message: &[u8],
) -> Result<(&'k HmacKey, &'k KeyEntry)> {
    let key = ctx.resolve(key_id, action)?;
    ctx.authorize(key, action, || RequestFacts {
        identifier: Some(key_id),
        mac_algorithm: Some(algorithm.as_str()),
        ..RequestFacts::default()
    })?;
    Ok((hmac_key(key, action, algorithm, message)?, key))
}

/// GenerateMac's key for `request`, resolved, authorized and checked.
fn generate_mac_key<'k>(
    ctx: &mut ChunkContext<'k>,
    request: &GenerateMacRequest<'_>,
) -> Result<(&'k HmacKey, &'k KeyEntry)> {
    authorized_hmac_key(
        ctx,
        Action::GenerateMac,
        request.key_id,
        request.mac_algorithm,
        request.message,
    )
}

/// The HMAC key of `key`, checked for state, usage, algorithm and message size.
fn hmac_key<'k>(
    key: &'k KeyEntry,
    operation: Action,
    algorithm: MacAlgorithm,
    message: &[u8],
) -> Result<&'k HmacKey> {
    key.check_usage(KeyUsage::GenerateVerifyMac, operation)?;
    let KeyPrimitive::Hmac(hmac) = &key.current()?.primitive else {
        return Err(Error::InvalidKeyUsage(format!(
            "{} is not an HMAC key",
            key.arn
        )));
    };
    if hmac.algorithm() != algorithm {
        return Err(messages::algorithm_incompatible(
            algorithm.as_str(),
            key.spec,
        ));
    }
    if message.is_empty() || message.len() > MAX_MAC_MESSAGE {
        return Err(validation!(
            "a MAC message is 1 to {MAX_MAC_MESSAGE} bytes, not {}",
            message.len()
        ));
    }
    Ok(hmac)
}

impl DataPlane {
    fn generate_mac_item<'k>(
        ctx: &mut ChunkContext<'k>,
        request: &GenerateMacRequest<'_>,
    ) -> Result<(Vec<u8>, &'k KeyEntry)> {
        let (hmac, key) = generate_mac_key(ctx, request)?;
        let mut mac = vec![0u8; MAX_MAC_LEN];
        let len = hmac.compute(ctx.hmac_work()?, request.message, &mut mac)?;
        mac.truncate(len);
        Ok((mac, key))
    }

    /// As [`Self::generate_mac_item`], into `out` (at least the algorithm's MAC length); returns
    /// the bytes written.
    fn generate_mac_item_into(
        ctx: &mut ChunkContext<'_>,
        request: &GenerateMacRequest<'_>,
        out: &mut [u8],
    ) -> Result<usize> {
        let (hmac, _) = generate_mac_key(ctx, request)?;
        if out.len() < crate::crypto::hmac::mac_len(request.mac_algorithm) {
            return Err(validation!(
                "the output buffer holds {} bytes; this MAC needs {}",
                out.len(),
                crate::crypto::hmac::mac_len(request.mac_algorithm)
            ));
        }
        hmac.compute(ctx.hmac_work()?, request.message, out)
    }

    fn verify_mac_item<'k>(
        ctx: &mut ChunkContext<'k>,
        request: &VerifyMacRequest<'_>,
    ) -> Result<&'k KeyEntry> {
        let (hmac, key) = authorized_hmac_key(
            ctx,
            Action::VerifyMac,
            request.key_id,
            request.mac_algorithm,
            request.message,
        )?;
        if !hmac.verify(ctx.hmac_work()?, request.message, request.mac)? {
            return Err(Error::InvalidMac(format!(
                "the MAC is not valid for this message under {} with {}",
                key.arn, request.mac_algorithm
            )));
        }
        Ok(key)
    }

    pub(crate) fn generate_mac(
        &self,
        caller: &Caller,
        request: &GenerateMacRequest<'_>,
    ) -> Result<GenerateMacResponse> {
        self.run_one(caller, |ctx| {
            let (mac, key) = Self::generate_mac_item(ctx, request)?;
            Ok(GenerateMacResponse {
                key_id: key.arn.clone(),
                mac,
                mac_algorithm: request.mac_algorithm,
            })
        })
    }

    pub(crate) fn generate_mac_batch(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        requests: &[GenerateMacRequest<'_>],
        check: impl Fn(&GenerateMacRequest<'_>) -> Result<()> + Sync,
    ) -> Vec<Result<Mac>> {
        self.run_batch(caller, tally, requests, check, |ctx, request| {
            let mut mac = Mac {
                bytes: [0; MAX_MAC_LEN],
                len: 0,
            };
            let len = Self::generate_mac_item_into(ctx, request, &mut mac.bytes)?;
            mac.len =
                u8::try_from(len).map_err(|_| Error::Internal(format!("a MAC of {len} bytes")))?;
            Ok(mac)
        })
    }

    /// GenerateMac of every request into its buffer `outputs[i]` (at least the algorithm's MAC
    /// length); returns the bytes written per item.
    pub(crate) fn generate_mac_batch_into<'o>(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        requests: &[GenerateMacRequest<'_>],
        outputs: impl Outputs<&'o mut [u8]>,
        check: impl Fn(&GenerateMacRequest<'_>) -> Result<()> + Sync,
    ) -> super::WrittenItems {
        self.run_batch_into_buffers(caller, tally, requests, outputs, check, |ctx, r, out| {
            Self::generate_mac_item_into(ctx, r, out)
        })
    }

    pub(crate) fn verify_mac(
        &self,
        caller: &Caller,
        request: &VerifyMacRequest<'_>,
    ) -> Result<VerifyMacResponse> {
        self.run_one(caller, |ctx| {
            let key = Self::verify_mac_item(ctx, request)?;
            Ok(VerifyMacResponse {
                key_id: key.arn.clone(),
                mac_valid: true,
                mac_algorithm: request.mac_algorithm,
            })
        })
    }

    pub(crate) fn verify_mac_batch(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        requests: &[VerifyMacRequest<'_>],
        check: impl Fn(&VerifyMacRequest<'_>) -> Result<()> + Sync,
    ) -> Vec<Result<()>> {
        self.run_batch(caller, tally, requests, check, |ctx, request| {
            Self::verify_mac_item(ctx, request).map(|_| ())
        })
    }
}
