//! The `Engine` pyclass: construction, the caller it acts as, and how calls run (with or without
//! the GIL).

use std::collections::HashMap;
use std::sync::Arc;

use keyplane::{Caller, LockPolicy, RateQuotas};
use keyplane_store_address::audit::AuditLock;
use pyo3::prelude::*;

use crate::errors::{validation, Failure, Result};
use crate::kept::Kept;
use crate::store::StoreArgs;

/// Inputs at least this large are processed with the GIL released even in single calls.
pub(crate) const LARGE_INPUT: usize = 16 * 1024;

/// A keyplane engine handle: shared by every thread, cheap to copy with `for_principal`.
#[pyclass(module = "keyplane._keyplane", frozen)]
pub struct Engine {
    pub(crate) inner: keyplane::Engine,
    /// While a data directory's audit log takes one writing process at a time: its lock, shared by
    /// every handle of the engine and released with the last.
    lock: Option<Arc<AuditLock>>,
    /// Batch output buffers kept from call to call, shared by every handle of the engine.
    pub(crate) kept: Arc<Kept>,
}

impl Engine {
    /// Runs `f` with the GIL released when `release` is set (batches, control-plane calls, large
    /// inputs, asymmetric work), so other Python threads run meanwhile.
    pub(crate) fn run<T: Send>(
        &self,
        py: Python<'_>,
        release: bool,
        f: impl FnOnce(&keyplane::Engine) -> T + Send,
    ) -> T {
        let engine = &self.inner;
        if release {
            py.detach(|| f(engine))
        } else {
            f(engine)
        }
    }

    /// Runs one operation (as [`Self::run`]); its error names the operation.
    pub(crate) fn call<T: Send>(
        &self,
        py: Python<'_>,
        operation: &'static str,
        release: bool,
        f: impl FnOnce(&keyplane::Engine) -> keyplane::Result<T> + Send,
    ) -> Result<T> {
        self.run(py, release, f)
            .map_err(|e| Failure::Engine(e, operation))
    }
}

#[pymethods]
impl Engine {
    /// Starts an engine on the durable store named by `store` (an address: `sqlite:PATH` or
    /// `memory:`), else `home` (a data directory), else `KEYPLANE_STORE`, else `KEYPLANE_HOME`;
    /// with none of them the key store is in memory. A missing store is created (root key file
    /// `root.key`, mode 0600) unless `open_only`. The root key: `root_key_file`, `root_key_env`,
    /// `passphrase` or `root_key` (a callable returning the 32 key bytes), else as the CLI
    /// (`KEYPLANE_ROOT_KEY_FILE`, `KEYPLANE_ROOT_KEY`, the data directory's `root.key`). Requests
    /// are recorded in the data directory's audit log unless `audit=False`. On a durable store the
    /// engine looks for other processes' changes (and runs due deletions and rotations) every
    /// `scheduler_interval_ms` (0: 1000), so that their rotations, disables and policy changes
    /// reach its data plane within that interval plus one reload. `rate_quotas` maps
    /// operation families (`symmetric_crypto`, `asymmetric_crypto`, `data_key_pair`,
    /// `control_plane`) to requests per second; over them, calls fail with ThrottlingException.
    /// `region_stores` maps other Regions to their stores (`{"eu-west-1": "sqlite:/srv/eu"}`), for
    /// multi-Region keys: ReplicateKey creates replicas there (`docs/multi-region.md`).
    /// `max_staleness_ms` (0: off) is the staleness bound, fail closed: once the engine could not
    /// follow its store for longer, data-plane calls raise KeyUnavailableException until it
    /// answers again; it needs a scheduler interval shorter than it (`docs/store.md`).
    #[new]
    #[pyo3(signature = (*, region = "us-east-1", account_id = "111122223333", worker_threads = 0, max_plaintext_bytes = 4096, max_keys = 100_000, lock_policy = "require", rate_quotas = None, principal = None, store = None, home = None, root_key_file = None, root_key_env = None, passphrase = None, root_key = None, open_only = false, audit = true, audit_log = None, audit_durability = "synced", audit_digest_interval_ms = 0, scheduler_interval_ms = 0, region_stores = None, max_staleness_ms = 0, pkcs11_tokens = None, xks_ca_bundle = None, xks_timeout_ms = None))]
    fn py_new(
        py: Python<'_>,
        region: &str,
        account_id: &str,
        worker_threads: usize,
        max_plaintext_bytes: usize,
        max_keys: usize,
        lock_policy: &str,
        rate_quotas: Option<HashMap<String, u32>>,
        principal: Option<&str>,
        store: Option<&str>,
        home: Option<std::path::PathBuf>,
        root_key_file: Option<std::path::PathBuf>,
        root_key_env: Option<String>,
        passphrase: Option<Vec<u8>>,
        root_key: Option<Py<PyAny>>,
        open_only: bool,
        audit: bool,
        audit_log: Option<std::path::PathBuf>,
        audit_durability: &str,
        audit_digest_interval_ms: u64,
        scheduler_interval_ms: u64,
        region_stores: Option<std::collections::BTreeMap<String, String>>,
        max_staleness_ms: u64,
        pkcs11_tokens: Option<std::collections::BTreeMap<String, String>>,
        xks_ca_bundle: Option<std::path::PathBuf>,
        xks_timeout_ms: Option<u64>,
    ) -> Result<Self> {
        let store = StoreArgs {
            store,
            home,
            root_key_file,
            root_key_env,
            passphrase: passphrase.map(zeroize::Zeroizing::new),
            root_key,
            open_only,
            audit,
            audit_log,
            audit_durability,
            audit_digest_interval_ms,
            scheduler_interval_ms,
            region_stores: region_stores.unwrap_or_default(),
        };
        let lock_policy = match lock_policy {
            "require" => LockPolicy::Require,
            "warn" => LockPolicy::Warn,
            other => {
                return Err(validation(format!(
                    "lock_policy must be 'require' or 'warn', not '{other}'"
                )))
            }
        };
        let mut quotas = RateQuotas::off();
        for (family, rate) in rate_quotas.unwrap_or_default() {
            let slot = match family.as_str() {
                "symmetric_crypto" => &mut quotas.symmetric_crypto,
                "asymmetric_crypto" => &mut quotas.asymmetric_crypto,
                "data_key_pair" => &mut quotas.data_key_pair,
                "control_plane" => &mut quotas.control_plane,
                other => {
                    return Err(validation(format!(
                        "rate_quotas: unknown family '{other}' (symmetric_crypto, \
                         asymmetric_crypto, data_key_pair, control_plane)"
                    )))
                }
            };
            *slot = Some(rate);
        }
        let caller = principal.map(Caller::new).transpose()?;
        let mut builder = keyplane::Engine::builder()
            .region(region)
            .account_id(account_id)
            .worker_threads(worker_threads)
            .max_plaintext_bytes(max_plaintext_bytes)
            .max_keys(max_keys)
            .lock_policy(lock_policy)
            .rate_quotas(quotas);
        if max_staleness_ms > 0 {
            builder = builder.max_staleness(std::time::Duration::from_millis(max_staleness_ms));
        }
        let builder = crate::backends::with_backends(
            builder,
            region,
            pkcs11_tokens.unwrap_or_default(),
            xks_ca_bundle,
            xks_timeout_ms,
        )?;
        let (engine, lock) = store.build(py, builder, lock_policy)?;
        Ok(Engine {
            inner: match caller {
                Some(caller) => engine.for_caller(caller),
                None => engine,
            },
            lock: lock.map(Arc::new),
            kept: Arc::default(),
        })
    }

    /// A handle to the same engine that calls as `principal` (an IAM principal ARN), optionally
    /// through an integrated service's endpoint (sets `kms:ViaService`).
    #[pyo3(signature = (principal, *, via_service = None))]
    fn for_principal(&self, principal: &str, via_service: Option<&str>) -> Result<Engine> {
        let mut caller = Caller::new(principal)?;
        if let Some(endpoint) = via_service {
            caller = caller.via_service(endpoint);
        }
        Ok(Engine {
            inner: self.inner.for_caller(caller),
            lock: self.lock.clone(),
            kept: self.kept.clone(),
        })
    }

    /// A handle to the same engine, as the same principal, whose calls are dry runs (the
    /// service's `DryRun`): each runs the real call's authorization and parameter checks and
    /// raises DryRunOperationException where the real call would have succeeded; nothing changes.
    fn dry_run(&self) -> Engine {
        Engine {
            inner: self.inner.dry_run(),
            lock: self.lock.clone(),
            kept: self.kept.clone(),
        }
    }

    /// The dry run of Decrypt (`keys`: the KeyId) or ReEncrypt (`keys`: SourceKeyId, then
    /// DestinationKeyId, either None when not given) with the `IGNORE_CIPHERTEXT` modifier:
    /// authorization only, no ciphertext. Raises DryRunOperationException when it passes.
    #[pyo3(signature = (operation, keys))]
    fn dry_run_authorization(
        &self,
        py: Python<'_>,
        operation: &str,
        keys: Vec<Option<String>>,
    ) -> Result<()> {
        let (event, actions): (&'static str, &[keyplane::access::Action]) = match operation {
            "Decrypt" => ("Decrypt", &[keyplane::access::Action::Decrypt]),
            "ReEncrypt" => (
                "ReEncrypt",
                &[
                    keyplane::access::Action::ReEncryptFrom,
                    keyplane::access::Action::ReEncryptTo,
                ],
            ),
            other => {
                return Err(Failure::Engine(
                    keyplane::Error::Validation(format!(
                        "IGNORE_CIPHERTEXT applies to Decrypt and ReEncrypt, not {other}"
                    )),
                    "",
                ))
            }
        };
        let pairs: Vec<(keyplane::access::Action, &str)> = actions
            .iter()
            .zip(&keys)
            .filter_map(|(action, key)| key.as_deref().map(|k| (*action, k)))
            .collect();
        let op = keyplane::operation::Operation::from_name(event)
            .ok_or_else(|| Failure::Engine(keyplane::Error::Internal(event.into()), ""))?;
        self.call(py, event, false, |e| e.dry_run_authorization(op, &pairs))
    }

    /// The principal ARN this handle calls as.
    #[getter]
    fn principal(&self) -> String {
        self.inner.caller().principal().to_owned()
    }

    /// The region in key ARNs.
    #[getter]
    fn region(&self) -> String {
        self.inner.config().region.clone()
    }

    /// The account in key ARNs.
    #[getter]
    fn account_id(&self) -> String {
        self.inner.config().account_id.clone()
    }

    /// Threads in the batch worker pool.
    #[getter]
    fn worker_threads(&self) -> usize {
        self.inner.worker_threads()
    }

    /// The largest plaintext Encrypt takes.
    #[getter]
    fn max_plaintext_bytes(&self) -> usize {
        self.inner.config().max_plaintext_bytes
    }

    /// Whether this handle and `other` share one engine (keys, aliases, grants).
    fn same_engine(&self, other: &Engine) -> bool {
        std::ptr::eq(self.inner.config(), other.inner.config())
    }

    /// Runs due key deletions and rotations now.
    fn run_due_tasks(&self, py: Python<'_>) -> Result<()> {
        self.call(py, "RunDueTasks", true, |e| e.run_due_tasks())
    }

    fn __repr__(&self) -> String {
        format!(
            "Engine(region={:?}, account_id={:?}, principal={:?})",
            self.inner.config().region,
            self.inner.config().account_id,
            self.inner.caller().principal()
        )
    }
}
