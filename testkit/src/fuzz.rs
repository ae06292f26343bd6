//! Replaying the fuzz targets' committed corpora on the stable toolchain, as ordinary tests: every
//! seed in `fuzz/corpus/<target>/` and every reproducer of a crash once found in
//! `fuzz/regressions/<target>/` runs through the target's body (`fuzz/targets/<target>.rs`), so a
//! crash once fixed stays fixed. See docs/assurance.md.

use std::path::{Path, PathBuf};

/// The fuzz crate's directory (`fuzz/` at the repository's root).
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files in `dir`, sorted; none when it does not exist.
pub fn corpus_files(dir: &Path) -> Vec<PathBuf> {
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

/// Runs every seed and regression input of `target` through `run`, catching panics, and reports
/// the counts on an `assurance:` line; returns the failing inputs with their panic messages. The
/// seeds must exist: the seed corpus is part of the repository.
pub fn replay(target: &str, run: fn(&[u8])) -> Vec<String> {
    let seeds = corpus_files(&fuzz_dir().join("corpus").join(target));
    assert!(
        !seeds.is_empty(),
        "fuzz/corpus/{target}/ is missing or empty: the seed corpus is part of the repository"
    );
    let regressions = corpus_files(&fuzz_dir().join("regressions").join(target));
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
    crate::report(&format!(
        "assurance: fuzz replay {target}: {} seeds, {} regressions, {} failing",
        seeds.len(),
        regressions.len(),
        failures.len()
    ));
    failures
}

/// [`replay`], failing the test if any input fails.
pub fn assert_replays(target: &str, run: fn(&[u8])) {
    let failures = replay(target, run);
    assert!(
        failures.is_empty(),
        "{} corpus inputs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
