//! The engines a sweep measures: one per thread count, all on one store whose keys a setup engine
//! made (or found) first, and the C ABI engines of `--compare c`.

use std::collections::BTreeMap;
use std::sync::Arc;

use keyplane::store::{KeyStore, MemoryKeyStore};
use keyplane::{Engine, KeySpec, LockPolicy};

use super::plan::Plan;
use crate::compare;
use crate::workload::{alias_for, ensure_key, KeyFamily, Workload, REENCRYPT_DESTINATION_ALIAS};
use crate::{dedup, BenchError, RunOptions, StoreChoice};

pub(super) struct Rig {
    /// The engine that made the keys and prepares each group's inputs.
    pub setup: Engine,
    /// The measured engines, by worker thread count.
    pub engines: BTreeMap<u32, Engine>,
    /// The C ABI engines of `--compare c`, by worker thread count.
    pub c_engines: BTreeMap<u32, compare::CEngine>,
    /// Whether the Python comparison can run, and why not.
    pub python: Result<(), String>,
    pub store_label: String,
}

impl Rig {
    pub fn start(plan: &Plan, options: &RunOptions, python: &str) -> Result<Rig, BenchError> {
        let (store, store_label): (Arc<dyn KeyStore>, String) = match &options.store {
            StoreChoice::Memory => (
                Arc::new(MemoryKeyStore::new(options.lock_policy)),
                "memory".into(),
            ),
            StoreChoice::Shared { store, label } => (Arc::clone(store), label.clone()),
        };
        let build = |threads: u32| build_engine(&store, threads, plan.max_plaintext, options);
        let setup = build(1)?;
        make_keys(&setup, plan)?;
        let mut engines = BTreeMap::new();
        for &t in &plan.threads {
            engines.insert(t, build(t)?);
        }
        let mut c_engines = BTreeMap::new();
        if plan.compare_c && plan.groups.iter().any(|g| g.workload == Workload::Encrypt) {
            for &t in &plan.threads {
                let engine = compare::CEngine::new(
                    t as usize,
                    plan.max_plaintext,
                    options.lock_policy == LockPolicy::Warn,
                    plan.context.is_some(),
                )
                .map_err(|e| BenchError::Setup(format!("C ABI: {e}")))?;
                c_engines.insert(t, engine);
            }
        }
        let python = if plan.compare_python {
            compare::python_available(python)
        } else {
            Ok(())
        };
        Ok(Rig {
            setup,
            engines,
            c_engines,
            python,
            store_label,
        })
    }
}

fn build_engine(
    store: &Arc<dyn KeyStore>,
    threads: u32,
    max_plaintext: usize,
    options: &RunOptions,
) -> Result<Engine, BenchError> {
    Engine::builder()
        .store(Arc::clone(store))
        .worker_threads(threads as usize)
        .max_plaintext_bytes(max_plaintext)
        .lock_policy(options.lock_policy)
        .build()
        .map_err(|e| {
            BenchError::Setup(format!(
                "starting an engine with {threads} worker threads: {e}{}",
                if matches!(e, keyplane::Error::MemoryLock(_)) {
                    " (raise RLIMIT_MEMLOCK, or pass --allow-unlocked-memory)"
                } else {
                    ""
                }
            ))
        })
}

/// Makes (or finds) the key of every spec the sweep uses, and ReEncrypt's destination.
fn make_keys(setup: &Engine, plan: &Plan) -> Result<(), BenchError> {
    let mut specs: Vec<KeySpec> = plan.groups.iter().map(|g| g.spec).collect();
    if plan
        .groups
        .iter()
        .any(|g| g.workload.family() == KeyFamily::Symmetric)
    {
        specs.push(KeySpec::SymmetricDefault);
    }
    for spec in dedup(specs) {
        ensure_key(setup, &alias_for(spec), spec)?;
    }
    if plan
        .groups
        .iter()
        .any(|g| g.workload == Workload::ReEncrypt)
    {
        ensure_key(
            setup,
            REENCRYPT_DESTINATION_ALIAS,
            KeySpec::SymmetricDefault,
        )?;
    }
    Ok(())
}
