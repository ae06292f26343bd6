//! A connection to one token: a pool of logged-in sessions, the backing keys, salt keys and
//! random bytes.
//!
//! Backing keys are AES-256 secret keys generated in the token (`C_GenerateKey`,
//! `CKM_AES_KEY_GEN`) as token objects that are private, sensitive and not extractable, usable
//! only to encrypt; labelled with the keyplane key id and found by a random 16-byte `CKA_ID`
//! (the backing key id, in hex). A salt key is `C_Encrypt` with `CKM_AES_ECB` of the 32-byte
//! salt (two blocks) under the backing key: a pseudo-random function of the salt that only the
//! token can compute. The engine derives its data-plane key from it with HKDF and caches that per
//! salt, so the token is called once per salt, not per request.

use std::sync::{Condvar, Mutex};

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Limit, Slot};
use cryptoki::types::AuthPin;
use keyplane::custom_key_store::{BackingKeyId, ConnectFailure, Connection, ConnectionErrorCode};
use keyplane::LockedBytes;
use keyplane::{Error, LockPolicy, Result};
use uuid::Uuid;
use zeroize::Zeroize;

use crate::config::ClusterConfig;
use crate::errors::{call_failure, connect_failure};

/// Bytes of a backing key's CKA_ID.
const ID_BYTES: usize = 16;

/// A logged-in connection to one token.
pub struct Pkcs11Connection {
    ctx: Pkcs11,
    slot: Slot,
    /// Idle sessions; a call takes one (or opens one, up to `max_sessions`) and gives it back.
    idle: Mutex<Vec<Session>>,
    /// Signalled when a session is given back or closed.
    available: Condvar,
    /// Sessions open (idle or in use); locked only while `idle` is.
    open: Mutex<usize>,
    max_sessions: usize,
    label: String,
}

impl std::fmt::Debug for Pkcs11Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Connection")
            .field("token", &self.label)
            .field("slot", &self.slot)
            .finish()
    }
}

fn failure(code: ConnectionErrorCode, message: impl Into<String>) -> ConnectFailure {
    ConnectFailure::new(code, message)
}

impl Pkcs11Connection {
    /// Finds the token labelled as configured, opens a session and logs the crypto user in.
    pub(crate) fn open(
        ctx: Pkcs11,
        cluster: &ClusterConfig,
        pin: &str,
    ) -> std::result::Result<Self, ConnectFailure> {
        let slots = ctx.get_slots_with_token().map_err(connect_failure)?;
        let mut found = None;
        for slot in slots {
            let info = ctx.get_token_info(slot).map_err(connect_failure)?;
            if info.label().trim_end() == cluster.token_label {
                found = Some((slot, info.max_rw_session_count()));
                break;
            }
        }
        let (slot, token_limit) = found.ok_or_else(|| {
            failure(
                ConnectionErrorCode::ClusterNotFound,
                format!("no token labelled '{}' is present", cluster.token_label),
            )
        })?;
        let session = ctx.open_rw_session(slot).map_err(connect_failure)?;
        // A SecretString: zeroed when dropped.
        let auth = AuthPin::new(pin.to_owned());
        let slot_id = slot.id();
        match session.login(UserType::User, Some(&auth)) {
            Ok(()) => crate::logins::record(&cluster.module, slot_id, pin)?,
            // Another connection of this process already logged the user in (the token's login
            // state is per application, so this session is logged in too): the PIN must be the
            // one that login used, or any password would connect.
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => crate::logins::check(&cluster.module, slot_id, pin)?,
            Err(e) => return Err(connect_failure(e)),
        }
        let wanted = match cluster.max_sessions {
            0 => std::thread::available_parallelism().map_or(4, |n| n.get()),
            n => n,
        };
        // No more read/write sessions than the token says it allows.
        let max_sessions = match token_limit {
            Limit::Max(max) => wanted.min(usize::try_from(max).unwrap_or(usize::MAX).max(1)),
            Limit::Unavailable | Limit::Infinite => wanted,
        };
        Ok(Pkcs11Connection {
            ctx,
            slot,
            idle: Mutex::new(vec![session]),
            available: Condvar::new(),
            open: Mutex::new(1),
            max_sessions,
            label: cluster.token_label.clone(),
        })
    }

    fn poisoned() -> Error {
        Error::Internal("session pool lock poisoned".into())
    }

    /// Runs `f` on a pooled session: an idle one, or a new one while fewer than `max_sessions`
    /// are open, or else the next one given back (waiting, not spinning). A session whose call
    /// failed is closed, not pooled again.
    fn with_session<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Session) -> cryptoki::error::Result<T>,
    ) -> Result<T> {
        let taken = {
            let mut idle = self.idle.lock().map_err(|_| Self::poisoned())?;
            loop {
                if let Some(session) = idle.pop() {
                    break Some(session);
                }
                let mut open = self.open.lock().map_err(|_| Self::poisoned())?;
                if *open < self.max_sessions {
                    *open += 1;
                    break None;
                }
                drop(open);
                idle = self.available.wait(idle).map_err(|_| Self::poisoned())?;
            }
        };
        let session = match taken {
            Some(session) => session,
            None => match self.ctx.open_rw_session(self.slot) {
                Ok(session) => session,
                Err(e) => {
                    self.forget_one();
                    return Err(call_failure("open a session", e));
                }
            },
        };
        match f(&session) {
            Ok(value) => {
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push(session);
                }
                self.available.notify_one();
                Ok(value)
            }
            Err(e) => {
                // The session may be dead (token gone): close it rather than hand it out again.
                drop(session);
                self.forget_one();
                Err(call_failure(what, e))
            }
        }
    }

    /// One session fewer is open (closed, or never opened): a waiter may open one.
    fn forget_one(&self) {
        if let Ok(_idle) = self.idle.lock() {
            if let Ok(mut open) = self.open.lock() {
                *open = open.saturating_sub(1);
            }
        }
        self.available.notify_one();
    }

    /// The object handle of backing key `backing_key` (hex CKA_ID).
    fn find_key(session: &Session, id: &[u8]) -> cryptoki::error::Result<Option<ObjectHandle>> {
        let found = session.find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Id(id.to_vec()),
        ])?;
        Ok(found.into_iter().next())
    }

    /// The attributes that show a backing key never leaves the token (for tests and audits).
    pub fn key_protection(&self, backing_key: &str) -> Result<KeyProtection> {
        let id = parse_id(backing_key)?;
        self.with_session("read a key's attributes", |session| {
            let Some(handle) = Self::find_key(session, &id)? else {
                return Ok(None);
            };
            let attributes = session.get_attributes(
                handle,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::Token,
                    AttributeType::Label,
                    AttributeType::ValueLen,
                ],
            )?;
            let mut protection = KeyProtection::default();
            for attribute in attributes {
                match attribute {
                    Attribute::Sensitive(b) => protection.sensitive = b,
                    Attribute::Extractable(b) => protection.extractable = b,
                    Attribute::Token(b) => protection.token_object = b,
                    Attribute::Label(l) => protection.label = String::from_utf8_lossy(&l).into(),
                    Attribute::ValueLen(n) => protection.value_len = u64::from(n),
                    _ => {}
                }
            }
            Ok(Some(protection))
        })?
        .ok_or_else(|| Error::KeyUnavailable(format!("no backing key {backing_key} in the token")))
    }

    /// Destroys a backing key (ScheduleKeyDeletion's best effort; tests).
    pub fn destroy_backing_key(&self, backing_key: &str) -> Result<()> {
        let id = parse_id(backing_key)?;
        self.with_session("destroy a key", |session| {
            if let Some(handle) = Self::find_key(session, &id)? {
                session.destroy_object(handle)?;
            }
            Ok(())
        })
    }

    /// Sessions opened so far (at most the pool's size).
    pub fn open_sessions(&self) -> usize {
        self.open.lock().map_or(0, |n| *n)
    }

    /// The most sessions the pool opens: one per core (or as configured), within the token's
    /// limit on read/write sessions.
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }
}

/// What the token says of a backing key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyProtection {
    pub sensitive: bool,
    pub extractable: bool,
    pub token_object: bool,
    pub label: String,
    pub value_len: u64,
}

fn parse_id(backing_key: &str) -> Result<Vec<u8>> {
    let valid =
        backing_key.len() == ID_BYTES * 2 && backing_key.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(Error::KeyUnavailable(format!(
            "'{backing_key}' is not a PKCS#11 backing key id"
        )));
    }
    (0..ID_BYTES)
        .map(|i| {
            u8::from_str_radix(&backing_key[2 * i..2 * i + 2], 16)
                .map_err(|_| Error::Internal("hex digits did not parse".into()))
        })
        .collect()
}

impl Connection for Pkcs11Connection {
    fn create_backing_key(&self, key_id: &Uuid) -> Result<BackingKeyId> {
        let id: Vec<u8> = self.with_session("draw a key id", |session| {
            session.generate_random_vec(ID_BYTES as u32)
        })?;
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(false),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Sign(false),
            Attribute::Verify(false),
            Attribute::Label(key_id.to_string().into_bytes()),
            Attribute::Id(id.clone()),
        ];
        self.with_session("generate a key", |session| {
            session.generate_key(&Mechanism::AesKeyGen, &template)
        })?;
        Ok(id.iter().map(|b| format!("{b:02x}")).collect())
    }

    fn check_backing_key(&self, backing_key: &str) -> Result<()> {
        self.key_protection(backing_key).map(|_| ())
    }

    fn salt_key(&self, backing_key: &str, salt: &[u8; 32]) -> Result<LockedBytes> {
        let id = parse_id(backing_key)?;
        let mut out = self
            .with_session("derive a data key", |session| {
                match Self::find_key(session, &id)? {
                    Some(handle) => session.encrypt(&Mechanism::AesEcb, handle, salt).map(Some),
                    None => Ok(None),
                }
            })?
            .ok_or_else(|| {
                Error::KeyUnavailable(format!("the backing key {backing_key} is not in the token"))
            })?;
        let result = if out.len() == 32 {
            LockedBytes::copy_from(&out, LockPolicy::Warn)
        } else {
            Err(Error::CloudHsmClusterInvalidConfiguration(
                "the token's AES-ECB answer has the wrong length".into(),
            ))
        };
        out.zeroize();
        result
    }

    fn delete_backing_key(&self, backing_key: &str) -> Result<()> {
        self.destroy_backing_key(backing_key)
    }

    fn random(&self, out: &mut [u8]) -> Result<()> {
        let len = u32::try_from(out.len())
            .map_err(|_| Error::Internal("too many random bytes asked".into()))?;
        let mut bytes = self.with_session("draw random bytes", |session| {
            session.generate_random_vec(len)
        })?;
        if bytes.len() != out.len() {
            return Err(Error::CloudHsmClusterInvalidConfiguration(
                "the token drew the wrong number of random bytes".into(),
            ));
        }
        out.copy_from_slice(&bytes);
        bytes.zeroize();
        Ok(())
    }

    fn health(&self) -> std::result::Result<(), ConnectFailure> {
        self.ctx
            .get_token_info(self.slot)
            .map(|_| ())
            .map_err(connect_failure)?;
        self.with_session("answer", |session| session.get_session_info().map(|_| ()))
            .map_err(|e| failure(ConnectionErrorCode::NetworkErrors, e.message()))
    }
}
