//! The proxy's external keys, kept as keyplane keys in the engine's store.
//!
//! External key `ID` is the symmetric keyplane key the alias `alias/xks/ID` names (`.` in the id,
//! which alias names do not allow, is written `:`, which external key ids do not allow, so the
//! mapping is one to one). Its AES-256 key material for the XKS operations is a data key made by
//! GenerateDataKeyWithoutPlaintext under that keyplane key, with the encryption context
//! `{"keyplane:xks-key-id": ID}`, and kept (encrypted) in the key's tag `keyplane:xks-material`.
//! Each request decrypts it through the engine (so the keyplane key's state, policy and audit
//! log govern every use) into locked memory for one AES-GCM operation; the plaintext data key is
//! zeroed as soon as the AES context holds it. Disabling the keyplane key makes the external key
//! `DISABLED`; scheduling its deletion makes it unusable; deleting the alias makes it unknown.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use keyplane::sealing::SealingKey;
use keyplane::{
    CreateKeyRequest, DataKeySpec, DecryptRequest, EncryptionContext, Engine, ErrorKind,
    GenerateDataKeyRequest, KeyMetadata, KeySpec, KeyState, KeyUsage, Tag,
};
use keyplane_xks::api;
use keyplane_xks::XksErrorKind;

/// Alias names of external keys start with this.
pub const ALIAS_PREFIX: &str = "alias/xks/";
/// The tag holding the encrypted AES-256 material.
pub const MATERIAL_TAG: &str = "keyplane:xks-material";
/// The encryption context key binding the material to its external key id.
pub const CONTEXT_KEY: &str = "keyplane:xks-key-id";

/// The alias naming external key `id` (a valid external key id).
pub fn alias_for(id: &str) -> String {
    format!("{ALIAS_PREFIX}{}", id.replace('.', ":"))
}

fn context_for(id: &str) -> EncryptionContext {
    EncryptionContext::from([(CONTEXT_KEY.to_owned(), id.to_owned())])
}

/// Creates external key `id`: a new symmetric keyplane key, its material, its alias.
pub fn create_external_key(engine: &Engine, id: &str) -> keyplane::Result<KeyMetadata> {
    if !api::valid_key_id(id) {
        return Err(keyplane::Error::Validation(format!(
            "an external key id is 1 to {} characters of A-Z a-z 0-9 - . _",
            api::MAX_KEY_ID_CHARS
        )));
    }
    let alias = alias_for(id);
    match engine.describe_key(&alias) {
        Ok(_) => {
            return Err(keyplane::Error::AlreadyExists(format!(
                "An alias with the name {} already exists: external key {id} exists",
                engine_alias_arn(engine, &alias)
            )))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let created = engine.create_key(CreateKeyRequest {
        description: Some(format!("XKS external key {id} (keyplane xks-proxy)")),
        ..CreateKeyRequest::default()
    })?;
    let context = context_for(id);
    let wrapped = engine.generate_data_key_without_plaintext(
        &GenerateDataKeyRequest::new(&created.key_id, DataKeySpec::Aes256).with_context(&context),
    )?;
    engine.tag_resource(
        &created.key_id,
        vec![Tag {
            tag_key: MATERIAL_TAG.into(),
            tag_value: STANDARD.encode(&wrapped.ciphertext_blob),
        }],
    )?;
    engine.create_alias(&alias, &created.key_id)?;
    engine.describe_key(&created.key_id)
}

fn engine_alias_arn(engine: &Engine, alias: &str) -> String {
    let config = engine.config();
    format!(
        "arn:aws:kms:{}:{}:{alias}",
        config.region, config.account_id
    )
}

/// An external key as the proxy sees it.
pub(crate) struct ExternalKey {
    pub metadata: KeyMetadata,
}

impl ExternalKey {
    /// Whether the keyplane key is usable (ENABLED); anything else reads as DISABLED.
    pub fn enabled(&self) -> bool {
        self.metadata.key_state == KeyState::Enabled
    }

    /// Whether it is a key version 1 can use: SYMMETRIC_DEFAULT for encryption.
    pub fn is_aes_256(&self) -> bool {
        self.metadata.key_spec == KeySpec::SymmetricDefault
            && self.metadata.key_usage == KeyUsage::EncryptDecrypt
    }
}

/// Finds external key `id`.
pub(crate) fn find(engine: &Engine, id: &str) -> Result<ExternalKey, (XksErrorKind, String)> {
    match engine.describe_key(&alias_for(id)) {
        Ok(metadata) => Ok(ExternalKey { metadata }),
        Err(e) if e.kind() == ErrorKind::NotFound => Err((
            XksErrorKind::KeyNotFound,
            format!("no external key {id} in this proxy"),
        )),
        Err(e) => Err(engine_failure(&e)),
    }
}

/// The AES-256-GCM context of an enabled external key, its material decrypted by the engine.
pub(crate) fn material(
    engine: &Engine,
    id: &str,
    key: &ExternalKey,
) -> Result<SealingKey, (XksErrorKind, String)> {
    let tags = engine
        .list_resource_tags(&key.metadata.key_id, None, None)
        .map_err(|e| engine_failure(&e))?;
    let Some(tag) = tags.items.iter().find(|t| t.tag_key == MATERIAL_TAG) else {
        return Err((
            XksErrorKind::KeyNotFound,
            format!(
                "the keyplane key named by {} holds no XKS key material",
                alias_for(id)
            ),
        ));
    };
    let blob = STANDARD.decode(&tag.tag_value).map_err(|_| {
        (
            XksErrorKind::Internal,
            "the stored XKS key material is not Base64".to_owned(),
        )
    })?;
    let context = context_for(id);
    let mut request = DecryptRequest::new(&blob).with_context(&context);
    request.key_id = Some(&key.metadata.arn);
    let plaintext = engine
        .decrypt(&request)
        .map_err(|e| match e.kind() {
            // Material bound to another keyplane key or another external key id (a re-pointed
            // alias, a copied tag): this key is not usable as external key `id`.
            ErrorKind::InvalidCiphertext | ErrorKind::IncorrectKey => (
                XksErrorKind::InvalidState,
                format!(
                    "the XKS key material kept with the key named by {} belongs to another key",
                    alias_for(id)
                ),
            ),
            _ => engine_failure(&e),
        })?
        .plaintext;
    // `plaintext` (a SecretBytes) is zeroed when it drops at the end of this function.
    SealingKey::new(plaintext.expose(), engine.config().lock_policy).map_err(|e| engine_failure(&e))
}

/// An engine failure as the proxy reports it.
pub(crate) fn engine_failure(e: &keyplane::Error) -> (XksErrorKind, String) {
    let kind = match e.kind() {
        ErrorKind::NotFound => XksErrorKind::KeyNotFound,
        ErrorKind::Disabled | ErrorKind::InvalidState | ErrorKind::KeyUnavailable => {
            XksErrorKind::InvalidState
        }
        ErrorKind::AccessDenied | ErrorKind::NotAuthorized => XksErrorKind::AccessDenied,
        ErrorKind::Throttling | ErrorKind::LimitExceeded => XksErrorKind::Throttling,
        ErrorKind::InvalidKeyUsage => XksErrorKind::InvalidKeyUsage,
        ErrorKind::InvalidCiphertext | ErrorKind::IncorrectKey => XksErrorKind::Internal,
        _ => XksErrorKind::Internal,
    };
    (kind, format!("{}: {}", e.kind().code(), e.message()))
}
