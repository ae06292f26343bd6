//! Replays the committed corpus of the fuzz target `sigv4_parse` (`fuzz/corpus/sigv4_parse/` seeds
//! and `fuzz/regressions/sigv4_parse/` crash reproducers) through the target's body on stable, so
//! `cargo test -p keyplane-server` keeps a crash once found fixed. See docs/assurance.md.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/targets/sigv4_parse.rs"]
mod sigv4_parse;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn the_sigv4_parse_corpus_replays() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let seeds = files(&fuzz.join("corpus/sigv4_parse"));
    assert!(seeds.len() >= 10, "the sigv4_parse seed corpus is missing");
    let regressions = files(&fuzz.join("regressions/sigv4_parse"));
    for file in seeds.iter().chain(&regressions) {
        let data = std::fs::read(file).unwrap();
        if std::panic::catch_unwind(|| sigv4_parse::run(&data)).is_err() {
            panic!("{} fails", file.display());
        }
    }
    println!(
        "assurance: fuzz replay sigv4_parse: {} seeds, {} regressions, 0 failing",
        seeds.len(),
        regressions.len()
    );
}
