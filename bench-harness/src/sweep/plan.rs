//! What a sweep measures: the (workload, key spec, size) groups, the thread, batch and caller
//! counts, and the timing, decided once from the arguments.

use std::time::Duration;

use keyplane::KeySpec;

use crate::args::{CompareWith, RsaPadding, SweepArgs};
use crate::measure::Amount;
use crate::workload::{self, bench_context, KeyFamily, Workload, MAX_SIGN_OR_MAC_MESSAGE};
use crate::{dedup, BenchError};

/// Everything one measurement needs to know about timing.
pub(super) struct Timing {
    pub amount: Amount,
    pub warmup: Duration,
    pub repeats: u32,
}

/// The sweep as decided from its arguments.
pub(super) struct Plan {
    pub groups: Vec<Group>,
    pub threads: Vec<u32>,
    pub batches: Vec<usize>,
    pub callers: Vec<u32>,
    pub context: Option<keyplane::EncryptionContext>,
    pub compare_c: bool,
    pub compare_python: bool,
    pub timing: Timing,
    /// The engines' plaintext limit: the largest plaintext measured, at least the default.
    pub max_plaintext: usize,
}

impl Plan {
    pub fn new(args: &SweepArgs) -> Result<Plan, BenchError> {
        let groups = plan(args)?;
        let max_plaintext = groups
            .iter()
            .filter(|g| g.workload.size_is_plaintext())
            .map(|g| g.size)
            .max()
            .unwrap_or(0)
            .max(keyplane::dataplane::DEFAULT_MAX_PLAINTEXT);
        Ok(Plan {
            groups,
            threads: dedup(args.threads.clone()),
            batches: dedup(args.batch.clone()),
            callers: dedup(args.callers.clone()),
            context: (!args.no_context).then(bench_context),
            compare_c: args.compare.contains(&CompareWith::C),
            compare_python: args.compare.contains(&CompareWith::Python),
            timing: Timing {
                amount: match args.ops {
                    Some(n) => Amount::Ops(n as u64),
                    None => Amount::Time(args.duration),
                },
                warmup: args.warmup,
                repeats: args.repeats,
            },
            max_plaintext,
        })
    }

    /// Progress units: per measured thing, one for warm-up and one per repeat (a Python
    /// comparison counts one).
    pub fn progress_units(&self, baseline: bool) -> u64 {
        let per = u64::from(self.timing.repeats) + 1;
        let threads = self.threads.len() as u64;
        let mut total = 0u64;
        for g in &self.groups {
            for batch in &self.batches {
                if baseline {
                    // The raw loop, and its bare split over each thread count above one that
                    // the batch has items for.
                    let splits = self
                        .threads
                        .iter()
                        .filter(|&&t| t > 1 && t as usize <= *batch)
                        .count() as u64;
                    total += per * (1 + splits);
                }
                total += per * threads * self.callers.len() as u64;
                if g.workload == Workload::Encrypt && self.compare_c {
                    total += 2 * per * threads;
                }
                if python_compared(g.workload) && self.compare_python {
                    total += threads;
                }
            }
        }
        total
    }
}

/// One (workload, key spec, message size) of the sweep.
#[derive(Debug, Clone, Copy)]
pub(super) struct Group {
    pub workload: Workload,
    pub spec: KeySpec,
    pub size: usize,
}

fn plan(args: &SweepArgs) -> Result<Vec<Group>, BenchError> {
    let mut groups = Vec::new();
    for workload in args.workload_list() {
        let specs: Vec<KeySpec> = match workload.family() {
            KeyFamily::Symmetric => vec![KeySpec::SymmetricDefault],
            KeyFamily::Signing => args.sign_spec.clone(),
            KeyFamily::Mac => args.mac_spec.clone(),
        };
        let sizes: Vec<usize> = if workload.uses_size() {
            args.size.clone()
        } else {
            vec![workload::DATA_KEY_BYTES]
        };
        for spec in dedup(specs) {
            for &size in &dedup(sizes.clone()) {
                if matches!(workload.family(), KeyFamily::Signing | KeyFamily::Mac)
                    && size > MAX_SIGN_OR_MAC_MESSAGE
                {
                    return Err(BenchError::Usage(format!(
                        "{workload} takes messages of at most {MAX_SIGN_OR_MAC_MESSAGE} bytes \
                         (the service's limit), not {size}; give smaller --size values or run \
                         it separately"
                    )));
                }
                if workload.size_is_plaintext() && size > keyplane::ciphertext::MAX_PLAINTEXT_LIMIT
                {
                    return Err(BenchError::Usage(format!(
                        "{workload}: {size} bytes is over the engine's largest plaintext limit \
                         ({} bytes)",
                        keyplane::ciphertext::MAX_PLAINTEXT_LIMIT
                    )));
                }
                groups.push(Group {
                    workload,
                    spec,
                    size,
                });
            }
        }
    }
    if groups.is_empty() {
        return Err(BenchError::Usage("no workload to run".into()));
    }
    Ok(groups)
}

pub(super) fn algorithm_name(workload: Workload, spec: KeySpec, padding: RsaPadding) -> String {
    match workload.family() {
        KeyFamily::Symmetric => "AES-256-GCM".into(),
        KeyFamily::Signing => workload::signing_algorithm(spec, padding)
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
        KeyFamily::Mac => workload::mac_algorithm(spec)
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
    }
}

/// Whether `--compare python` measures `workload`.
pub(super) fn python_compared(workload: Workload) -> bool {
    matches!(workload, Workload::Encrypt | Workload::Decrypt)
}
