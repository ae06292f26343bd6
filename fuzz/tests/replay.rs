//! Replays every committed corpus (`fuzz/corpus/<target>/`) through every target on the stable
//! toolchain, as ordinary tests, so that a crash once found and added to a corpus stays fixed.
//! `scripts/test-fuzz` runs this; the main workspace replays the same corpora (all targets but
//! the C ABI one) in `engine/tests/fuzz_replay.rs`.

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| path.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Runs every seed and regression input of `target`; returns the failures.
fn replay(target: &str, run: fn(&[u8])) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = files(&root.join("corpus").join(target));
    assert!(
        !seeds.is_empty(),
        "the seed corpus of {target} is missing or empty"
    );
    let regressions = files(&root.join("regressions").join(target));
    let mut failures = Vec::new();
    for file in seeds.iter().chain(&regressions) {
        let data = std::fs::read(file).expect("read corpus file");
        if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)")
                .to_string();
            failures.push(format!("{target}: {}: {message}", file.display()));
        }
    }
    println!(
        "assurance: fuzz replay {target}: {} seeds, {} regressions, {} failing",
        seeds.len(),
        regressions.len(),
        failures.len()
    );
    failures
}

#[test]
fn every_corpus_replays() {
    let failures: Vec<String> = keyplane_fuzz::TARGETS
        .iter()
        .flat_map(|(target, run)| replay(target, *run))
        .collect();
    assert!(
        failures.is_empty(),
        "{} corpus inputs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
