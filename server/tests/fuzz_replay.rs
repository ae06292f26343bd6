//! Replays the committed corpora of the fuzz targets `sigv4_parse` and `xks_request`
//! (`fuzz/corpus/<target>/` seeds and `fuzz/regressions/<target>/` crash reproducers) through the
//! targets' bodies on stable, so `cargo test -p keyplane-server` keeps a crash once found fixed.
//! See docs/assurance.md.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/targets/common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../../fuzz/targets/sigv4_parse.rs"]
mod sigv4_parse;
#[path = "../../fuzz/targets/xks_request.rs"]
mod xks_request;

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

#[test]
fn the_xks_request_corpus_replays() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let seeds = files(&fuzz.join("corpus/xks_request"));
    assert!(seeds.len() >= 10, "the xks_request seed corpus is missing");
    let regressions = files(&fuzz.join("regressions/xks_request"));
    for file in seeds.iter().chain(&regressions) {
        let data = std::fs::read(file).unwrap();
        if std::panic::catch_unwind(|| xks_request::run(&data)).is_err() {
            panic!("{} fails", file.display());
        }
    }
    println!(
        "assurance: fuzz replay xks_request: {} seeds, {} regressions, 0 failing",
        seeds.len(),
        regressions.len()
    );
}
