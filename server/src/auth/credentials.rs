//! Access keys: kept in the durable store, each secret sealed under the root key like key
//! material; in process memory for a `memory:` store.
//!
//! In a SQLite store a credential is the store secret `credential.<AccessKeyId>` (store secret
//! names allow no `/`), whose sealed value is a compact record: version `1`, status byte
//! (`1` active, `0` inactive), creation time (u64 big-endian epoch seconds), principal length
//! (u16 big-endian), principal ARN, then the 40-byte secret access key. Being a store secret it is
//! wrapped under the root key, kept in two copies, rewrapped on root-key rotation, and covered by
//! the store's contents digest (a deleted or disabled credential cannot be put back by restoring an
//! older file without the store noticing the replay).
//!
//! Secrets never leave this module: [`CredentialStore::check_signature`] derives the SigV4 signing
//! key (the HMAC chain over `"AWS4" + secret`) and compares the signature in constant time. Derived
//! keys are cached per (access key, date, region, service) as keyed HMAC states in locked memory,
//! zeroed when evicted, so a warm request costs one HMAC. Lookups are cached per access key and
//! follow the store's generation (polled at most every [`GENERATION_POLL`]), so a credential that
//! another process creates, disables or deletes takes effect here within a second.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use keyplane::sealing::{constant_time_eq, MacKey};
use keyplane::store::KeyStore;
use keyplane::{Caller, Error, LockPolicy, LockedBytes, Result, SecretAccess};
use keyplane_sqlite::SqliteKeyStore;
use zeroize::Zeroizing;

/// How often a lookup checks whether another process changed the store.
pub const GENERATION_POLL: Duration = Duration::from_millis(500);
/// Prefix of a credential's store secret name.
pub const SECRET_PREFIX: &str = "credential.";
/// Length of a secret access key.
pub const SECRET_LEN: usize = 40;
/// Derived signing keys kept per credential (dates and regions in use at once).
const KEYS_PER_CREDENTIAL: usize = 4;

/// A SigV4 signature to check: who claims to have signed which string to sign, for which scope.
#[derive(Debug, Clone, Copy)]
pub struct SignatureClaim<'a> {
    /// The access key id the request names.
    pub access_key_id: &'a str,
    /// The scope: `yyyymmdd`, Region and service.
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    /// What the signature signs.
    pub string_to_sign: &'a [u8],
    /// The signature the request carries.
    pub signature: [u8; 32],
}

/// Where a server's credentials live.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    policy: LockPolicy,
}

#[derive(Debug)]
enum Backend {
    Sqlite {
        store: Arc<SqliteKeyStore>,
        cache: RwLock<Cache>,
    },
    Memory(RwLock<HashMap<String, Arc<Entry>>>),
}

/// What a SQLite-backed store knows as of one store generation.
#[derive(Debug, Default)]
struct Cache {
    generation: Option<u64>,
    checked: Option<Instant>,
    /// Access key ids that exist at `generation`.
    known: HashSet<String>,
    /// Those read so far.
    entries: HashMap<String, Arc<Entry>>,
}

/// One credential in memory. No `Clone`; the secret is in locked memory.
struct Entry {
    principal: String,
    active: AtomicBool,
    created: u64,
    secret: LockedBytes,
    /// `date/region/service` → the keyed signing HMAC, newest last.
    keys: RwLock<Vec<(String, Arc<MacKey>)>>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("principal", &self.principal)
            .field("active", &self.active.load(Ordering::Relaxed))
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A credential just created: the only time its secret is shown.
pub struct NewCredential {
    pub access_key_id: String,
    /// Shown once; the caller prints it and drops it.
    pub secret_access_key: zeroize::Zeroizing<String>,
    pub principal: String,
    /// Seconds since the epoch.
    pub create_date: u64,
}

impl std::fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCredential")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("principal", &self.principal)
            .field("create_date", &self.create_date)
            .finish()
    }
}

/// A credential as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    pub access_key_id: String,
    pub principal: String,
    /// `Active` or `Inactive`.
    pub status: &'static str,
    /// Seconds since the epoch.
    pub create_date: u64,
}

/// Why a signature check failed.
#[derive(Debug)]
pub enum CheckError {
    /// No such access key, or it is disabled.
    Unrecognized,
    /// The signature is not the one the secret gives.
    Mismatch,
    /// The store could not be read.
    Store(Error),
}

fn shared<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn exclusive<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn status_name(active: bool) -> &'static str {
    if active {
        "Active"
    } else {
        "Inactive"
    }
}

impl CredentialStore {
    /// Credentials kept in `store` (as store secrets, sealed under its root key).
    pub fn sqlite(store: Arc<SqliteKeyStore>) -> CredentialStore {
        CredentialStore::with_backend(Backend::Sqlite {
            store,
            cache: RwLock::default(),
        })
    }

    /// Credentials kept in this process's memory (for a `memory:` store).
    pub fn in_memory() -> CredentialStore {
        CredentialStore::with_backend(Backend::Memory(RwLock::default()))
    }

    fn with_backend(backend: Backend) -> CredentialStore {
        CredentialStore {
            inner: Arc::new(Inner {
                backend,
                policy: LockPolicy::default(),
            }),
        }
    }

    /// The same store, taking locked memory under `policy` (default: require it). Call it on a
    /// store just made, before it is cloned (a clone keeps the policy it was made with).
    pub fn with_lock_policy(self, policy: LockPolicy) -> CredentialStore {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.policy = policy;
                CredentialStore {
                    inner: Arc::new(inner),
                }
            }
            Err(inner) => CredentialStore { inner },
        }
    }

    /// A new active credential for `principal_arn`.
    pub fn create(&self, principal_arn: &str) -> Result<NewCredential> {
        Caller::new(principal_arn)?;
        let access_key_id = new_access_key_id()?;
        let secret = new_secret(self.inner.policy)?;
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let entry = Entry {
            principal: principal_arn.to_owned(),
            active: AtomicBool::new(true),
            created,
            secret,
            keys: RwLock::default(),
        };
        let secret_access_key = Zeroizing::new(
            std::str::from_utf8(entry.secret.expose(SecretAccess::granted()))
                .map_err(|_| Error::Internal("generated secret is not text".into()))?
                .to_owned(),
        );
        match &self.inner.backend {
            Backend::Sqlite { store, cache } => {
                store.put_secret(&secret_name(&access_key_id), &encode(&entry))?;
                exclusive(cache).checked = None;
            }
            Backend::Memory(map) => {
                exclusive(map).insert(access_key_id.clone(), Arc::new(entry));
            }
        }
        Ok(NewCredential {
            access_key_id,
            secret_access_key,
            principal: principal_arn.to_owned(),
            create_date: created,
        })
    }

    /// Every credential, by access key id.
    pub fn list(&self) -> Result<Vec<CredentialInfo>> {
        let mut out: Vec<CredentialInfo> = match &self.inner.backend {
            Backend::Sqlite { store, .. } => {
                let mut out = Vec::new();
                for name in store.secret_names()? {
                    let Some(id) = name.strip_prefix(SECRET_PREFIX) else {
                        continue;
                    };
                    if let Some(record) = store.get_secret(&name)? {
                        out.push(info(
                            id,
                            &decode(record.expose(SecretAccess::granted()), self.inner.policy)?,
                        ));
                    }
                }
                out
            }
            Backend::Memory(map) => shared(map).iter().map(|(id, e)| info(id, e)).collect(),
        };
        out.sort_by(|a, b| a.access_key_id.cmp(&b.access_key_id));
        Ok(out)
    }

    /// Stops `access_key_id` from signing requests (it can be enabled again).
    pub fn disable(&self, access_key_id: &str) -> Result<()> {
        self.set_active(access_key_id, false)
    }

    /// Lets a disabled `access_key_id` sign requests again.
    pub fn enable(&self, access_key_id: &str) -> Result<()> {
        self.set_active(access_key_id, true)
    }

    /// Deletes `access_key_id` for good.
    pub fn delete(&self, access_key_id: &str) -> Result<()> {
        let deleted = match &self.inner.backend {
            Backend::Sqlite { store, cache } => {
                check_id(access_key_id)?;
                let deleted = store.delete_secret(&secret_name(access_key_id))?;
                exclusive(cache).checked = None;
                deleted
            }
            Backend::Memory(map) => exclusive(map).remove(access_key_id).is_some(),
        };
        if deleted {
            Ok(())
        } else {
            Err(not_found(access_key_id))
        }
    }

    fn set_active(&self, access_key_id: &str, active: bool) -> Result<()> {
        match &self.inner.backend {
            Backend::Sqlite { store, cache } => {
                check_id(access_key_id)?;
                let name = secret_name(access_key_id);
                let record = store
                    .get_secret(&name)?
                    .ok_or_else(|| not_found(access_key_id))?;
                let entry = decode(record.expose(SecretAccess::granted()), self.inner.policy)?;
                entry.active.store(active, Ordering::Relaxed);
                store.put_secret(&name, &encode(&entry))?;
                exclusive(cache).checked = None;
            }
            Backend::Memory(map) => shared(map)
                .get(access_key_id)
                .ok_or_else(|| not_found(access_key_id))?
                .active
                .store(active, Ordering::Relaxed),
        }
        Ok(())
    }

    /// The principal of the claim's access key id when the claim's signature is its SigV4
    /// signature of the claim's string to sign for the claim's `date/region/service`. The secret
    /// stays here: the signing key is derived (or taken from the cache) and the signature compared
    /// in constant time.
    pub fn check_signature(
        &self,
        claim: &SignatureClaim<'_>,
    ) -> std::result::Result<String, CheckError> {
        let entry = self
            .lookup(claim.access_key_id)
            .map_err(CheckError::Store)?;
        self.check_entry(entry, claim)
    }

    /// The principal of `access_key_id` when `secret` is its secret access key (the console's
    /// sign-in). Compared in constant time; an unknown or disabled key and a wrong secret take the
    /// same comparison, so the answer's timing does not tell which. May read the store.
    pub fn check_secret(
        &self,
        access_key_id: &str,
        secret: &[u8],
    ) -> std::result::Result<String, CheckError> {
        let entry = if check_id(access_key_id).is_ok() {
            self.lookup(access_key_id).map_err(CheckError::Store)?
        } else {
            None
        };
        // Compare against something of the right length whatever happens, so a missing key costs
        // what a wrong secret costs.
        let absent = [0u8; SECRET_LEN];
        let expected: &[u8] = entry
            .as_ref()
            .map_or(&absent[..], |e| e.secret.expose(SecretAccess::granted()));
        let same = secret.len() == SECRET_LEN && constant_time_eq(expected, secret);
        match entry {
            Some(entry) if same && entry.active.load(Ordering::Relaxed) => {
                Ok(entry.principal.clone())
            }
            Some(_) if same => Err(CheckError::Unrecognized),
            Some(_) => Err(CheckError::Mismatch),
            None => Err(CheckError::Unrecognized),
        }
    }

    /// As [`CredentialStore::check_signature`], but only from what is in memory: `None` when the
    /// answer needs a read of the store (a credential not read yet, or a generation check due),
    /// which may block on SQLite. Never reads the store, so a caller may run it on an async
    /// worker and send only the `None` case to a blocking thread.
    pub fn check_signature_cached(
        &self,
        claim: &SignatureClaim<'_>,
    ) -> Option<std::result::Result<String, CheckError>> {
        let entry = self.lookup_cached(claim.access_key_id)?;
        Some(self.check_entry(entry, claim))
    }

    fn check_entry(
        &self,
        entry: Option<Arc<Entry>>,
        claim: &SignatureClaim<'_>,
    ) -> std::result::Result<String, CheckError> {
        let entry = entry.ok_or(CheckError::Unrecognized)?;
        if !entry.active.load(Ordering::Relaxed) {
            return Err(CheckError::Unrecognized);
        }
        let key = entry
            .signing_key(claim.date, claim.region, claim.service, self.inner.policy)
            .map_err(CheckError::Store)?;
        if key
            .verify(claim.string_to_sign, &claim.signature)
            .map_err(CheckError::Store)?
        {
            Ok(entry.principal.clone())
        } else {
            Err(CheckError::Mismatch)
        }
    }

    /// The credential `access_key_id` when memory knows the answer without reading the store
    /// (`Some(None)`: it does not exist); `None` when only the store can tell.
    fn lookup_cached(&self, access_key_id: &str) -> Option<Option<Arc<Entry>>> {
        match &self.inner.backend {
            Backend::Memory(map) => Some(shared(map).get(access_key_id).cloned()),
            Backend::Sqlite { cache, .. } => {
                // Under a shared lock: a fresh cache that knows the answer.
                let cache = shared(cache);
                if cache
                    .checked
                    .is_none_or(|at| at.elapsed() >= GENERATION_POLL)
                {
                    return None;
                }
                if !cache.known.contains(access_key_id) {
                    return Some(None);
                }
                cache.entries.get(access_key_id).map(|e| Some(e.clone()))
            }
        }
    }

    /// The credential `access_key_id`, from memory or the store.
    fn lookup(&self, access_key_id: &str) -> Result<Option<Arc<Entry>>> {
        // The common case: a fresh cache that knows the answer.
        if let Some(known) = self.lookup_cached(access_key_id) {
            return Ok(known);
        }
        match &self.inner.backend {
            Backend::Memory(map) => Ok(shared(map).get(access_key_id).cloned()),
            Backend::Sqlite { store, cache } => {
                let mut cache = exclusive(cache);
                if cache
                    .checked
                    .is_none_or(|at| at.elapsed() >= GENERATION_POLL)
                {
                    let generation = store.generation()?;
                    if cache.generation != Some(generation) {
                        cache.entries.clear();
                        cache.known = store
                            .secret_names()?
                            .into_iter()
                            .filter_map(|n| n.strip_prefix(SECRET_PREFIX).map(str::to_owned))
                            .collect();
                        cache.generation = Some(generation);
                    }
                    cache.checked = Some(Instant::now());
                }
                if !cache.known.contains(access_key_id) {
                    return Ok(None);
                }
                if let Some(entry) = cache.entries.get(access_key_id) {
                    return Ok(Some(entry.clone()));
                }
                let Some(record) = store.get_secret(&secret_name(access_key_id))? else {
                    return Ok(None);
                };
                let entry = Arc::new(decode(
                    record.expose(SecretAccess::granted()),
                    self.inner.policy,
                )?);
                cache
                    .entries
                    .insert(access_key_id.to_owned(), entry.clone());
                Ok(Some(entry))
            }
        }
    }
}

impl Entry {
    /// The keyed HMAC of SigV4's signing key for `date/region/service`, derived once.
    fn signing_key(
        &self,
        date: &str,
        region: &str,
        service: &str,
        policy: LockPolicy,
    ) -> Result<Arc<MacKey>> {
        let matches = |s: &str| {
            let mut parts = s.split('/');
            parts.next() == Some(date)
                && parts.next() == Some(region)
                && parts.next() == Some(service)
        };
        if let Some((_, key)) = shared(&self.keys).iter().find(|(s, _)| matches(s)) {
            return Ok(key.clone());
        }
        let mut keys = exclusive(&self.keys);
        if let Some((_, key)) = keys.iter().find(|(s, _)| matches(s)) {
            return Ok(key.clone());
        }
        let scope = format!("{date}/{region}/{service}");
        // kSecret = "AWS4" ‖ secret; kDate, kRegion, kService, kSigning each the HMAC of the next
        // scope part under the one before: every step in locked memory.
        let mut seed = LockedBytes::zeroed(4 + SECRET_LEN, policy)?;
        {
            let seed = seed.expose_mut(SecretAccess::granted());
            seed[..4].copy_from_slice(b"AWS4");
            seed[4..].copy_from_slice(self.secret.expose(SecretAccess::granted()));
        }
        let mut step = seed;
        for part in [date, region, service, super::sigv4::TERMINATOR] {
            step = MacKey::new(&step, policy)?.mac_locked(part.as_bytes())?;
        }
        let key = Arc::new(MacKey::new(&step, policy)?);
        if keys.len() >= KEYS_PER_CREDENTIAL {
            keys.remove(0);
        }
        keys.push((scope, key.clone()));
        Ok(key)
    }
}

fn info(access_key_id: &str, entry: &Entry) -> CredentialInfo {
    CredentialInfo {
        access_key_id: access_key_id.to_owned(),
        principal: entry.principal.clone(),
        status: status_name(entry.active.load(Ordering::Relaxed)),
        create_date: entry.created,
    }
}

fn secret_name(access_key_id: &str) -> String {
    format!("{SECRET_PREFIX}{access_key_id}")
}

fn not_found(access_key_id: &str) -> Error {
    Error::NotFound(format!("Access key {access_key_id} does not exist."))
}

/// Refuses text that is no access key id before it reaches a store name.
fn check_id(access_key_id: &str) -> Result<()> {
    let ok = (16..=128).contains(&access_key_id.len())
        && access_key_id.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::Validation(format!(
            "'{}' is not an access key id: 16 to 128 letters and digits",
            access_key_id.chars().take(64).collect::<String>()
        )))
    }
}

/// `AKIA` and 16 base32 capitals (80 random bits), like the service's long-term keys.
fn new_access_key_id() -> Result<String> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut random = [0u8; 10];
    keyplane::sealing::fill_random(&mut random)?;
    let bits = random.iter().fold(0u128, |n, b| (n << 8) | u128::from(*b));
    let mut id = String::from("AKIA");
    for i in (0..16).rev() {
        id.push(ALPHABET[((bits >> (i * 5)) & 31) as usize] as char);
    }
    Ok(id)
}

/// 40 characters of base64 (240 random bits), written straight into locked memory.
fn new_secret(policy: LockPolicy) -> Result<LockedBytes> {
    let random = LockedBytes::random(30, policy)?;
    let mut secret = LockedBytes::zeroed(SECRET_LEN, policy)?;
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(
            random.expose(SecretAccess::granted()),
            secret.expose_mut(SecretAccess::granted()),
        )
        .map_err(|_| Error::Internal("secret encoding".into()))?;
    debug_assert_eq!(written, SECRET_LEN);
    Ok(secret)
}

/// The sealed record of a credential (see the module documentation).
fn encode(entry: &Entry) -> Zeroizing<Vec<u8>> {
    let principal = entry.principal.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(12 + principal.len() + SECRET_LEN));
    out.push(1);
    out.push(u8::from(entry.active.load(Ordering::Relaxed)));
    out.extend_from_slice(&entry.created.to_be_bytes());
    out.extend_from_slice(&(principal.len() as u16).to_be_bytes());
    out.extend_from_slice(principal);
    out.extend_from_slice(entry.secret.expose(SecretAccess::granted()));
    out
}

fn decode(record: &[u8], policy: LockPolicy) -> Result<Entry> {
    let bad = || Error::Store("a credential record in the store is malformed".into());
    if record.len() < 12 || record[0] != 1 || record[1] > 1 {
        return Err(bad());
    }
    let created = u64::from_be_bytes(record[2..10].try_into().map_err(|_| bad())?);
    let len = usize::from(u16::from_be_bytes([record[10], record[11]]));
    if record.len() != 12 + len + SECRET_LEN {
        return Err(bad());
    }
    let principal = std::str::from_utf8(&record[12..12 + len])
        .map_err(|_| bad())?
        .to_owned();
    Ok(Entry {
        principal,
        active: AtomicBool::new(record[1] == 1),
        created,
        secret: LockedBytes::copy_from(&record[12 + len..], policy)?,
        keys: RwLock::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_look_like_the_services() {
        let store = CredentialStore::in_memory();
        let new = store
            .create("arn:aws:iam::111122223333:user/alice")
            .unwrap();
        assert_eq!(new.access_key_id.len(), 20);
        assert!(new.access_key_id.starts_with("AKIA"));
        assert!(new.access_key_id[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(new.secret_access_key.len(), SECRET_LEN);
        let debug = format!("{new:?}");
        assert!(!debug.contains(new.secret_access_key.as_str()), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn records_round_trip() {
        let entry = Entry {
            principal: "arn:aws:iam::111122223333:role/r".into(),
            active: AtomicBool::new(false),
            created: 1_700_000_000,
            secret: LockedBytes::copy_from(&[b'x'; SECRET_LEN], LockPolicy::default()).unwrap(),
            keys: RwLock::default(),
        };
        let back = decode(&encode(&entry), LockPolicy::default()).unwrap();
        assert_eq!(back.principal, entry.principal);
        assert!(!back.active.load(Ordering::Relaxed));
        assert_eq!(back.created, entry.created);
        assert_eq!(
            back.secret.expose(keyplane::SecretAccess::granted()),
            entry.secret.expose(keyplane::SecretAccess::granted())
        );
        assert!(decode(&encode(&entry)[..20], LockPolicy::default()).is_err());
    }
}
