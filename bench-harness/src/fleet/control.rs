//! Control-plane calls per second on a shared store: each operation timed over `ops` calls per
//! caller, with 1 caller (one node) and 2 callers (two nodes, each an engine on its own store
//! handle, calling at once: their commits serialise in the store, and a node that finds the store
//! moved on catches up and runs its call again, as in a fleet).

use std::time::Instant;

use keyplane::{
    CreateGrantRequest, CreateKeyRequest, Engine, ErrorKind, GrantOperation, LockPolicy, Tag,
};

use super::latency::{latencies, Latencies};
use super::nodes::{failed, node, Opener};
use crate::BenchError;

/// The operations measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    CreateKey,
    CreateAlias,
    UpdateAlias,
    /// DisableKey and EnableKey alternately on one key.
    DisableEnable,
    TagResource,
    CreateGrant,
}

impl Operation {
    pub const ALL: [Operation; 6] = [
        Operation::CreateKey,
        Operation::CreateAlias,
        Operation::UpdateAlias,
        Operation::DisableEnable,
        Operation::TagResource,
        Operation::CreateGrant,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateKey => "CreateKey",
            Operation::CreateAlias => "CreateAlias",
            Operation::UpdateAlias => "UpdateAlias",
            Operation::DisableEnable => "DisableKey/EnableKey",
            Operation::TagResource => "TagResource",
            Operation::CreateGrant => "CreateGrant",
        }
    }
}

/// One measured operation on one store with some callers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ControlRow {
    pub store: String,
    pub operation: String,
    pub callers: u32,
    /// Calls made, all callers together.
    pub calls: usize,
    /// Calls per second, all callers together (wall clock).
    pub ops_per_sec: f64,
    /// Each call's latency (with the repeats below).
    pub latency_ms: Latencies,
    /// Calls the engine refused with ConflictException after its own retries, which the
    /// caller then repeated (2 callers only: the other node kept committing first).
    pub conflicts_repeated: u64,
}

/// Keys each caller works on (untimed set-up).
const KEYS_PER_CALLER: usize = 8;

/// What one caller needs: its node and its keys.
struct Caller {
    engine: Engine,
    keys: Vec<String>,
    alias: String,
}

fn call(
    caller: &Caller,
    op: Operation,
    i: usize,
    tag: &str,
    grantee: &str,
) -> keyplane::Result<()> {
    let key = &caller.keys[i % caller.keys.len()];
    let e = &caller.engine;
    match op {
        Operation::CreateKey => e.create_key(CreateKeyRequest::default()).map(|_| ()),
        Operation::CreateAlias => e.create_alias(&format!("{}-{tag}-{i}", caller.alias), key),
        Operation::UpdateAlias => e.update_alias(&caller.alias, key),
        Operation::DisableEnable if i % 2 == 0 => e.disable_key(&caller.keys[0]),
        Operation::DisableEnable => e.enable_key(&caller.keys[0]),
        Operation::TagResource => e.tag_resource(
            key,
            vec![Tag {
                tag_key: format!("bench-{}", i % 4),
                tag_value: i.to_string(),
            }],
        ),
        Operation::CreateGrant => e
            .create_grant(CreateGrantRequest {
                key_id: key.clone(),
                grantee_principal: grantee.to_owned(),
                retiring_principal: None,
                operations: vec![GrantOperation::Encrypt, GrantOperation::Decrypt],
                constraints: None,
                name: None,
            })
            .map(|_| ()),
    }
}

/// Most times a caller repeats a call the engine gave up on with ConflictException (its own
/// retries exhausted by the other node's commits), as a service's client would.
const CLIENT_RETRIES: u32 = 100;

/// Makes the call, repeating it on ConflictException; returns how many times it was repeated.
fn call_retrying(
    caller: &Caller,
    op: Operation,
    i: usize,
    tag: &str,
    grantee: &str,
) -> Result<u32, BenchError> {
    let mut repeated = 0;
    loop {
        match call(caller, op, i, tag, grantee) {
            Ok(()) => return Ok(repeated),
            Err(e) if e.kind() == ErrorKind::Conflict && repeated < CLIENT_RETRIES => {
                repeated += 1;
            }
            Err(e) => return Err(failed(op.name(), e)),
        }
    }
}

/// Measures every operation on the store `open` gives, with 1 and 2 callers.
pub fn measure(
    label: &str,
    open: Opener<'_>,
    ops: usize,
    lock_policy: LockPolicy,
    max_keys: usize,
) -> Result<Vec<ControlRow>, BenchError> {
    let mut run_tag = [0u8; 4];
    keyplane::sealing::fill_random(&mut run_tag).map_err(|e| failed("a random tag", e))?;
    let run_tag: String = run_tag.iter().map(|b| format!("{b:02x}")).collect();
    let mut rows = Vec::new();
    for callers in [1u32, 2] {
        let mut nodes = Vec::new();
        for c in 0..callers {
            let engine = node(open()?, lock_policy, None, max_keys)?;
            let mut keys = Vec::new();
            for _ in 0..KEYS_PER_CALLER {
                let meta = engine
                    .create_key(CreateKeyRequest::default())
                    .map_err(|e| failed("CreateKey (set-up)", e))?;
                keys.push(meta.key_id);
            }
            let alias = format!("alias/fleet-bench/{run_tag}-{callers}-{c}");
            engine
                .create_alias(&alias, &keys[0])
                .map_err(|e| failed("CreateAlias (set-up)", e))?;
            nodes.push(Caller {
                engine,
                keys,
                alias,
            });
        }
        let grantee = "arn:aws:iam::111122223333:role/fleet-bench";
        for op in Operation::ALL {
            let started = Instant::now();
            let per_caller: Vec<Result<(Vec<f64>, u64), BenchError>> = std::thread::scope(|s| {
                let handles: Vec<_> = nodes
                    .iter()
                    .map(|caller| {
                        let tag = format!("{}", op as u8);
                        s.spawn(move || {
                            let mut samples = Vec::with_capacity(ops);
                            let mut repeated = 0u64;
                            for i in 0..ops {
                                let t = Instant::now();
                                repeated += u64::from(call_retrying(caller, op, i, &tag, grantee)?);
                                samples.push(t.elapsed().as_secs_f64() * 1e3);
                            }
                            Ok((samples, repeated))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(BenchError::Run("a caller panicked".into())))
                    })
                    .collect()
            });
            let wall = started.elapsed().as_secs_f64();
            let mut samples = Vec::new();
            let mut conflicts_repeated = 0;
            for s in per_caller {
                let (s, repeated) = s.map_err(|e| BenchError::Run(format!("{label}: {e}")))?;
                samples.extend(s);
                conflicts_repeated += repeated;
            }
            rows.push(ControlRow {
                store: label.to_owned(),
                operation: op.name().to_owned(),
                callers,
                calls: samples.len(),
                ops_per_sec: samples.len() as f64 / wall,
                latency_ms: latencies(&mut samples),
                conflicts_repeated,
            });
        }
        drop(nodes);
    }
    Ok(rows)
}
