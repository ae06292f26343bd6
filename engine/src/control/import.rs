//! GetParametersForImport, ImportKeyMaterial and DeleteImportedKeyMaterial (bring your own key
//! material), and the expiry of imported material when its date comes.
//!
//! A key created with origin EXTERNAL waits in PendingImport. GetParametersForImport hands out a
//! fresh RSA wrapping public key and an import token that carries the wrapping private key,
//! sealed under the store's import secret (see [`crate::crypto::key_import`]) and bound to the key,
//! valid for 24 hours. ImportKeyMaterial opens the token, unwraps the material, checks that it
//! fits the key spec, and stores it as a key version whose [`ImportedMaterial`] record holds its
//! expiration terms. Material has an id derived from the key and the material, so a re-import of
//! the same material is recognised and different material is refused.
//!
//! Symmetric keys can hold several imported materials: NEW_KEY_MATERIAL into a key that has
//! material waits as PENDING_ROTATION until RotateKeyOnDemand makes it current. When any material
//! the key decrypts with expires or is deleted, the key is PendingImport (unless it is pending
//! deletion) until the same material is imported again.

use uuid::Uuid;

use super::working_copy::ControlState;
use crate::access::request_facts::RequestFacts;
use crate::access::Action;
use crate::clock::Timestamp;
use crate::crypto::key_import::{self, TokenTerms, IMPORT_SECRET_BYTES};
use crate::dataplane::keyring::VersionEntry;
use crate::engine::Engine;
use crate::error::{validation, Error, Result};
use crate::key::state::KeyOperation;
use crate::key::{
    ExpirationModel, ImportType, ImportedMaterial, KeyRecord, KeySpec, KeyState, Origin,
    VersionRecord, WrappingAlgorithm, WrappingKeySpec,
};
use crate::locked_memory::LockedBytes;
use crate::store::StoreChange;
use crate::validation::Value;

/// How long import parameters (the wrapping key and its token) stay valid.
pub const PARAMETERS_VALID_MS: i64 = 24 * 60 * 60 * 1000;
/// The latest `ValidTo` an import may set, from the time of the request.
pub const MAX_VALID_TO_DAYS: u32 = 365;
/// The name of the store secret behind import tokens and imported-material ids.
pub const IMPORT_SECRET_NAME: &str = "keyplane.import";

/// Whether material can be imported into keys of `spec`: symmetric, HMAC, RSA and ECC keys
/// (not SM2 or ML-DSA, which this build does not support at all).
pub(crate) fn importable(spec: KeySpec) -> bool {
    spec.is_supported()
        && !matches!(
            spec,
            KeySpec::Sm2 | KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87
        )
}

/// GetParametersForImport's answer.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersForImportResponse {
    /// The key's ARN.
    pub key_id: String,
    /// The token to send with ImportKeyMaterial (opaque; sealed by the engine).
    pub import_token: Vec<u8>,
    /// The wrapping public key, DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    pub parameters_valid_to: Timestamp,
}

impl std::fmt::Debug for GetParametersForImportResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetParametersForImportResponse")
            .field("key_id", &self.key_id)
            .field(
                "import_token",
                &format_args!("<{} bytes>", self.import_token.len()),
            )
            .field(
                "public_key",
                &format_args!("<{} bytes>", self.public_key.len()),
            )
            .field("parameters_valid_to", &self.parameters_valid_to)
            .finish()
    }
}

/// An ImportKeyMaterial request.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportKeyMaterialRequest<'a> {
    pub key_id: &'a str,
    pub import_token: &'a [u8],
    /// The material wrapped with the public key (and algorithm) of the token's parameters.
    pub encrypted_key_material: &'a [u8],
    /// Required with KEY_MATERIAL_EXPIRES (the default); a future date at most 365 days away.
    pub valid_to: Option<Timestamp>,
    pub expiration_model: Option<ExpirationModel>,
    /// NEW_KEY_MATERIAL for the first import; EXISTING_KEY_MATERIAL by default afterwards.
    pub import_type: Option<ImportType>,
    pub key_material_description: Option<&'a str>,
    /// For a re-import: the id the material must have.
    pub key_material_id: Option<&'a str>,
}

/// ImportKeyMaterial's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportKeyMaterialResponse {
    /// The key's ARN.
    pub key_id: String,
    pub key_material_id: String,
}

/// DeleteImportedKeyMaterial's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteImportedKeyMaterialResponse {
    /// The key's ARN.
    pub key_id: String,
    pub key_material_id: String,
}

fn not_external(record: &KeyRecord, operation: &str) -> Error {
    Error::UnsupportedOperation(format!(
        "{operation} is for keys with origin EXTERNAL; key {} has origin {}",
        record.id, record.origin
    ))
}

fn incorrect_material() -> Error {
    Error::IncorrectKeyMaterial(
        "The key material in the request is not the key material previously imported into this \
         KMS key"
            .into(),
    )
}

/// Checks that unwrapped `material` fits a key of `record`'s spec and usage (by building the
/// data-plane primitive from it); the refusal is IncorrectKeyMaterialException.
fn check_fits(record: &KeyRecord, material: &LockedBytes, engine: &Engine) -> Result<()> {
    let spec = record.key_spec;
    let unfit = |why: String| {
        Error::IncorrectKeyMaterial(format!(
            "the imported key material does not fit a {spec} key: {why}"
        ))
    };
    let len = material.len();
    let (min, max) = match spec {
        KeySpec::SymmetricDefault => (32, 32),
        KeySpec::Hmac224 => (28, 64),
        KeySpec::Hmac256 => (32, 64),
        KeySpec::Hmac384 => (48, 128),
        KeySpec::Hmac512 => (64, 128),
        _ => (1, usize::MAX),
    };
    if !(min..=max).contains(&len) {
        return Err(unfit(if min == max {
            format!("it must be {min} bytes, not {len}")
        } else {
            format!("it must be {min} to {max} bytes, not {len}")
        }));
    }
    if matches!(spec, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096) {
        let bits = key_import::rsa_private_key_bits(material)
            .ok_or_else(|| unfit("it is not a PKCS#8 DER RSA private key".into()))?;
        let want = match spec {
            KeySpec::Rsa2048 => 2048,
            KeySpec::Rsa3072 => 3072,
            _ => 4096,
        };
        if bits != want {
            return Err(unfit(format!("it is a {bits}-bit RSA key")));
        }
    }
    let copy = LockedBytes::copy_from(material.bytes(), engine.inner.config.lock_policy)?;
    VersionEntry::new(
        spec,
        record.key_usage,
        1,
        String::new(),
        copy,
        engine.inner.config.lock_policy,
    )
    .map(drop)
    .map_err(|_| {
        unfit(match spec.family() {
            "symmetric" | "HMAC" => "it is not a usable key".into(),
            _ => "it is not a PKCS#8 DER private key of this key spec (curve)".into(),
        })
    })
}

/// Moves a key whose active material is all there out of PendingImport, and one missing some
/// into it (a key pending deletion stays so).
fn settle_state(record: &mut KeyRecord) {
    if record.state == KeyState::PendingDeletion {
        return;
    }
    if !record.has_all_material() {
        record.state = KeyState::PendingImport;
    } else if record.state == KeyState::PendingImport {
        record.state = KeyState::Enabled;
    }
}

impl Engine {
    /// The store's import secret, made on first use.
    fn import_secret(&self) -> Result<LockedBytes> {
        let secret = self
            .inner
            .store
            .get_or_create_secret(IMPORT_SECRET_NAME, &mut || {
                LockedBytes::random(IMPORT_SECRET_BYTES, self.inner.config.lock_policy)
            })?;
        if secret.len() != IMPORT_SECRET_BYTES {
            return Err(Error::Internal(
                "the store's import secret has the wrong length".into(),
            ));
        }
        Ok(secret)
    }

    /// The secret under which `record`'s import tokens and imported-material ids are made: the
    /// store's, or for a multi-Region key its own, which every Region's store holds the same.
    fn import_secret_for(&self, record: &KeyRecord) -> Result<LockedBytes> {
        if record.multi_region.is_none() {
            return self.import_secret();
        }
        let secret = self.multi_region_import_secret(&record.id, self.inner.store.as_ref())?;
        if secret.len() != IMPORT_SECRET_BYTES {
            return Err(Error::Internal(
                "a multi-Region key's import secret has the wrong length".into(),
            ));
        }
        Ok(secret)
    }

    /// GetParametersForImport: a fresh RSA wrapping public key of `wrapping_key_spec` and an
    /// import token for key `key_id` (origin EXTERNAL), both valid for 24 hours.
    pub fn get_parameters_for_import(
        &self,
        key_id: &str,
        wrapping_algorithm: WrappingAlgorithm,
        wrapping_key_spec: WrappingKeySpec,
    ) -> Result<GetParametersForImportResponse> {
        self.audited(Action::GetParametersForImport, Some(key_id), || {
            crate::validation::key_id(Action::GetParametersForImport, key_id)?;
            let facts = RequestFacts {
                wrapping_algorithm: Some(wrapping_algorithm.as_str()),
                wrapping_key_spec: Some(wrapping_key_spec.as_str()),
                ..RequestFacts::default()
            };
            let record = {
                let state = self.control()?;
                self.key_for_request(
                    &state,
                    key_id,
                    KeyOperation::ImportKeyMaterial,
                    Action::GetParametersForImport,
                    facts,
                )?
            };
            if record.origin != Origin::External {
                return Err(not_external(&record, "GetParametersForImport"));
            }
            key_import::check_supported(wrapping_algorithm, wrapping_key_spec)?;
            let secret = self.import_secret_for(&record)?;
            let policy = self.inner.config.lock_policy;
            let (private_key, public_key) =
                key_import::generate_wrapping_key(wrapping_key_spec, policy)?;
            let valid_to = Timestamp(self.inner.clock.now().0 + PARAMETERS_VALID_MS);
            let terms = TokenTerms {
                key_id: record.id,
                valid_to,
                spec: wrapping_key_spec,
                algorithm: wrapping_algorithm,
                private_key,
            };
            let import_token = key_import::seal_token(&secret, &terms, policy)?;
            Ok(GetParametersForImportResponse {
                key_id: self.inner.scope.key_arn(&record.id),
                import_token,
                public_key,
                parameters_valid_to: valid_to,
            })
        })
    }

    /// ImportKeyMaterial: unwraps material with the token's wrapping key and imports it (see the
    /// module documentation for the rules).
    pub fn import_key_material(
        &self,
        request: &ImportKeyMaterialRequest<'_>,
    ) -> Result<ImportKeyMaterialResponse> {
        let r = request;
        let members: &[(&str, Value)] = &[
            ("KeyId", r.key_id.into()),
            ("ImportToken", r.import_token.into()),
            ("EncryptedKeyMaterial", r.encrypted_key_material.into()),
            ("KeyMaterialDescription", r.key_material_description.into()),
            ("KeyMaterialId", r.key_material_id.into()),
        ];
        self.audited_request(Action::ImportKeyMaterial, Some(r.key_id), members, || {
            let now = self.inner.clock.now();
            let model = r
                .expiration_model
                .unwrap_or(ExpirationModel::KeyMaterialExpires);
            match (model, r.valid_to) {
                (ExpirationModel::KeyMaterialExpires, None) => {
                    return Err(validation!(
                        "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
                    ))
                }
                (ExpirationModel::KeyMaterialDoesNotExpire, Some(_)) => {
                    return Err(validation!(
                        "A validTo date must not be set if the ExpirationModel is \
                         KEY_MATERIAL_DOES_NOT_EXPIRE"
                    ))
                }
                (_, Some(valid_to)) if valid_to <= now => {
                    return Err(validation!("ValidTo must be a date in the future"))
                }
                (_, Some(valid_to)) if valid_to > now.plus_days(MAX_VALID_TO_DAYS) => {
                    return Err(validation!(
                        "ValidTo must be at most {MAX_VALID_TO_DAYS} days from now"
                    ))
                }
                _ => {}
            }
            if r.import_type == Some(ImportType::NewKeyMaterial) && r.key_material_id.is_some() {
                return Err(validation!(
                    "KeyMaterialId cannot be specified with ImportType NEW_KEY_MATERIAL"
                ));
            }
            let valid_to_text = r.valid_to.map(|t| (t.0.div_euclid(1000)).to_string());
            let facts = RequestFacts {
                expiration_model: Some(model.as_str()),
                valid_to: valid_to_text.as_deref(),
                ..RequestFacts::default()
            };
            let policy = self.inner.config.lock_policy;
            let (op, action) = (KeyOperation::ImportKeyMaterial, Action::ImportKeyMaterial);
            self.change_key_request(r.key_id, op, action, facts, |state, mut record| {
                if self.is_replica_here(&record) && record.versions.is_empty() {
                    return Err(Error::UnsupportedOperation(format!(
                    "{} is a multi-Region replica key whose primary key has no key material yet: \
                     import the key material into the primary key first, then the same key \
                     material into each replica.",
                    self.inner.scope.key_arn(&record.id)
                )));
                }
                let secret = self.import_secret_for(&record)?;
                if record.origin != Origin::External {
                    return Err(not_external(&record, "ImportKeyMaterial"));
                }
                let terms = key_import::open_token(&secret, &record.id, r.import_token, policy)?;
                if now >= terms.valid_to {
                    return Err(Error::ExpiredImportToken(
                        "The import token that you used has expired. Get new parameters with \
                     GetParametersForImport"
                            .into(),
                    ));
                }
                let material = key_import::unwrap_material(
                    &terms.private_key,
                    terms.algorithm,
                    r.encrypted_key_material,
                    policy,
                )?;
                drop(terms);
                check_fits(&record, &material, self)?;
                let material_id = key_import::material_id(&secret, &record.id, &material, policy)?;
                if let Some(given) = r.key_material_id {
                    if !crate::crypto::hmac::constant_time_eq(
                        given.as_bytes(),
                        material_id.as_bytes(),
                    ) {
                        return Err(incorrect_material());
                    }
                }
                let import_type = r.import_type.unwrap_or(if record.versions.is_empty() {
                    ImportType::NewKeyMaterial
                } else {
                    ImportType::ExistingKeyMaterial
                });
                if record.multi_region.is_some()
                    && import_type == ImportType::NewKeyMaterial
                    && !record.versions.is_empty()
                {
                    return Err(Error::UnsupportedOperation(format!(
                    "{} is a multi-Region key: keyplane does not rotate multi-Region keys with \
                     imported key material (new key material after the first import).",
                    self.inner.scope.key_arn(&record.id)
                )));
                }
                let terms = ImportedMaterial {
                    imported: true,
                    expiration_model: model,
                    valid_to: r.valid_to,
                    description: r.key_material_description.map(str::to_owned),
                    pending_rotation: false,
                };
                let existing = record.versions.iter().position(|v| {
                    crate::crypto::hmac::constant_time_eq(
                        v.material_id.as_bytes(),
                        material_id.as_bytes(),
                    )
                });
                let version = match (import_type, existing) {
                (ImportType::ExistingKeyMaterial, Some(i)) => {
                    let v = &mut record.versions[i];
                    let pending = v.is_pending_rotation();
                    let description = terms
                        .description
                        .clone()
                        .or_else(|| v.import.as_ref().and_then(|i| i.description.clone()));
                    v.import = Some(ImportedMaterial {
                        pending_rotation: pending,
                        description,
                        ..terms
                    });
                    v.version
                }
                (ImportType::ExistingKeyMaterial, None) => {
                    if record.versions.is_empty() {
                        return Err(validation!(
                            "key {} has no key material to re-import; import it with ImportType \
                             NEW_KEY_MATERIAL",
                            record.id
                        ));
                    }
                    return Err(incorrect_material());
                }
                (ImportType::NewKeyMaterial, Some(_)) => {
                    return Err(Error::IncorrectKeyMaterial(
                        "this key material was imported into this KMS key before; re-import it \
                         with ImportType EXISTING_KEY_MATERIAL"
                            .into(),
                    ))
                }
                (ImportType::NewKeyMaterial, None) if record.versions.is_empty() => {
                    record.versions.push(VersionRecord {
                        version: 1,
                        material_id: material_id.clone(),
                        created: now,
                        rotation_type: None,
                        import: Some(terms),
                    });
                    1
                }
                (ImportType::NewKeyMaterial, None) => {
                    if record.key_spec != KeySpec::SymmetricDefault {
                        return Err(Error::UnsupportedOperation(format!(
                            "key {} is a {} key: only symmetric encryption keys take new key \
                             material after the first import",
                            record.id, record.key_spec
                        )));
                    }
                    // New material waits for RotateKeyOnDemand; it replaces material that was
                    // already waiting.
                    if record
                        .versions
                        .last()
                        .is_some_and(|v| v.is_pending_rotation())
                    {
                        record.versions.pop();
                    }
                    let version = record.versions.last().map_or(1, |v| v.version + 1);
                    record.versions.push(VersionRecord {
                        version,
                        material_id: material_id.clone(),
                        created: now,
                        rotation_type: None,
                        import: Some(ImportedMaterial {
                            pending_rotation: true,
                            ..terms
                        }),
                    });
                    version
                }
            };
                settle_state(&mut record);
                let arn = self.inner.scope.key_arn(&record.id);
                // A primary key's first material is a new version for its replicas too (to be
                // imported there, the same material).
                self.write_shared_through(state.keys.get(&record.id), &record, None)?;
                self.commit(
                    state,
                    &[
                        StoreChange::PutKey(&record),
                        StoreChange::PutMaterial {
                            key_id: record.id,
                            version,
                            material: &material,
                        },
                    ],
                )?;
                self.reload(state)?;
                Ok(ImportKeyMaterialResponse {
                    key_id: arn,
                    key_material_id: material_id,
                })
            })
        })
    }

    /// DeleteImportedKeyMaterial: deletes the imported material `key_material_id` (the current
    /// material when `None`) from an EXTERNAL key. The key is PendingImport until the same
    /// material is imported again (unless it is pending deletion, which it stays).
    pub fn delete_imported_key_material(
        &self,
        key_id: &str,
        key_material_id: Option<&str>,
    ) -> Result<DeleteImportedKeyMaterialResponse> {
        let members: &[(&str, Value)] = &[
            ("KeyId", key_id.into()),
            ("KeyMaterialId", Value::from(key_material_id)),
        ];
        let action = Action::DeleteImportedKeyMaterial;
        self.audited_request(action, Some(key_id), members, || {
            let op = KeyOperation::DeleteImportedKeyMaterial;
            self.change_key(key_id, op, action, |state, mut record| {
                if record.origin != Origin::External {
                    return Err(not_external(&record, "DeleteImportedKeyMaterial"));
                }
                let arn = self.inner.scope.key_arn(&record.id);
                let index = match key_material_id {
                    Some(id) => record
                        .versions
                        .iter()
                        .position(|v| v.material_id == id)
                        .ok_or_else(|| {
                            Error::NotFound(format!(
                                "key material '{id}' is not key material of {arn}"
                            ))
                        })?,
                    None => {
                        let current = record.current_version().map(|v| v.version);
                        record
                            .versions
                            .iter()
                            .position(|v| Some(v.version) == current)
                            .ok_or_else(|| {
                                Error::InvalidState(format!("{arn} has no imported key material."))
                            })?
                    }
                };
                let version = record.versions[index].version;
                let material_id = record.versions[index].material_id.clone();
                if let Some(import) = record.versions[index].import.as_mut() {
                    import.imported = false;
                }
                settle_state(&mut record);
                self.commit(
                    state,
                    &[
                        StoreChange::PutKey(&record),
                        StoreChange::DeleteMaterial {
                            key_id: record.id,
                            version,
                        },
                    ],
                )?;
                self.reload(state)?;
                Ok(DeleteImportedKeyMaterialResponse {
                    key_id: arn,
                    key_material_id: material_id,
                })
            })
        })
    }

    /// Deletes every imported material whose ValidTo has come, as the service does, recording a
    /// `DeleteExpiredKeyMaterial` audit event for each; the key becomes PendingImport.
    pub(crate) fn expire_imported_material(
        &self,
        state: &mut ControlState,
        now: Timestamp,
    ) -> Result<()> {
        // Only keys with a due date that has come (the index holds every ValidTo), in key id order.
        let due: Vec<(Uuid, u32)> = state
            .due_keys(now)
            .iter()
            .filter_map(|id| state.keys.get(id))
            .flat_map(|r| {
                r.versions.iter().filter_map(move |v| {
                    let import = v.import.as_ref()?;
                    (import.imported && import.valid_to.is_some_and(|t| t <= now))
                        .then_some((r.id, v.version))
                })
            })
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        for (id, version) in due {
            let mut record = state.record(&id)?.clone();
            let mut material_id = String::new();
            if let Some(v) = record.versions.iter_mut().find(|v| v.version == version) {
                material_id = v.material_id.clone();
                if let Some(import) = v.import.as_mut() {
                    import.imported = false;
                }
            }
            settle_state(&mut record);
            let key = id.to_string();
            self.record(
                crate::operation::Operation::DeleteExpiredKeyMaterial,
                &[Some(&key)],
                || serde_json::json!({"keyId": key, "keyMaterialId": material_id}),
                Ok(()),
            )?;
            self.commit(
                state,
                &[
                    StoreChange::PutKey(&record),
                    StoreChange::DeleteMaterial {
                        key_id: id,
                        version,
                    },
                ],
            )?;
            state.put_key(record);
        }
        self.reload(state)
    }
}
