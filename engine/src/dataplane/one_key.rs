//! Encrypt of many small plaintexts under one key with one context (issue 14): the key is
//! resolved and authorised once per batch, on the calling thread, against the key snapshot every
//! item then runs on; an item only checks its plaintext and seals. Nothing is cached across
//! batches: each batch resolves its identifier and authorises its caller again.

use uuid::Uuid;

use super::keyring::Keyring;
use super::plane::DataPlane;
use super::tally::KeyTally;
use crate::access::request_facts::RequestFacts;
use crate::access::{Action, Caller};
use crate::context::EncryptionContext;
use crate::error::{Error, Result};
use crate::key::EncryptionAlgorithm;

/// A one-key batch's key, checked once for the batch.
struct BatchKey {
    /// The key the identifier names, if any: every item counts it as used (as an item of an
    /// ordinary batch that names the key does), refused or not.
    id: Option<Uuid>,
    /// Whether the caller may encrypt under it now, with the batch's context.
    allowed: Result<()>,
}

impl DataPlane {
    /// Resolves `key_id` on `keyring` and checks, as Encrypt does for each item of an ordinary
    /// batch, that the caller may encrypt under it with `context` and that it is an enabled
    /// symmetric encryption key.
    fn batch_key(
        &self,
        keyring: &Keyring,
        caller: &Caller,
        key_id: &str,
        context: Option<&EncryptionContext>,
    ) -> BatchKey {
        let key = match keyring.resolve(&self.scope, key_id, Action::Encrypt) {
            Ok(key) => key,
            Err(e) => {
                return BatchKey {
                    id: None,
                    allowed: Err(e),
                }
            }
        };
        let facts = RequestFacts {
            context,
            identifier: Some(key_id),
            encryption_algorithm: Some(EncryptionAlgorithm::SymmetricDefault.as_str()),
            ..RequestFacts::default()
        };
        let allowed = self
            .freshness
            .check(&key.arn)
            .and_then(|()| {
                key.access.check(
                    caller,
                    Action::Encrypt,
                    &key.arn,
                    key.spec,
                    key.usage,
                    &facts,
                )
            })
            .and_then(|()| key.check_encrypt_decrypt(Action::Encrypt));
        BatchKey {
            id: Some(key.id),
            allowed,
        }
    }

    /// Encrypts every plaintext under `key_id` (SYMMETRIC_DEFAULT) with `context` into its
    /// caller buffer (`outputs[i]`, at least `ciphertext::blob_len(plaintexts[i].len())` bytes;
    /// `ciphertext::max_blob_len` for a key in an external key store); returns the bytes written
    /// per item. A key that does not exist, or that the caller may not use, fails every item
    /// with that error (an item its `check` refuses fails with its own); no item seals.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn encrypt_batch_one_key(
        &self,
        caller: &Caller,
        tally: &KeyTally,
        key_id: &str,
        context: Option<&EncryptionContext>,
        plaintexts: &[&[u8]],
        outputs: &mut [&mut [u8]],
        check: impl Fn(&&[u8]) -> Result<()> + Sync,
    ) -> super::WrittenItems {
        let keyring = self.keyring.load();
        let batch = self.batch_key(&keyring, caller, key_id, context);
        self.run_batch_into_buffers_on(
            &keyring,
            caller,
            tally,
            plaintexts,
            outputs,
            check,
            |ctx, plaintext, out| {
                let key = batch.id.map(|id| ctx.batch_key(&id)).transpose()?;
                batch.allowed.clone()?;
                let key = key.ok_or_else(|| {
                    Error::Internal("a one-key batch was allowed without its key".into())
                })?;
                Self::encrypt_under_into(
                    ctx,
                    key,
                    Action::Encrypt,
                    EncryptionAlgorithm::SymmetricDefault,
                    plaintext,
                    context,
                    out,
                )
            },
        )
    }
}
