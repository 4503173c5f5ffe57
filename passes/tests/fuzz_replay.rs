//! Replays every fuzz corpus and artifact file through the fuzz targets' own code on stable
//! Rust, so past findings stay fixed (see fuzz/src/targets.rs).

#[path = "../../fuzz/src/replay.rs"]
mod replay;
#[path = "../../fuzz/src/targets.rs"]
mod targets;

#[test]
fn replay_corpus_and_artifacts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let replayed = replay::replay_all(&root, targets::TARGETS);
    assert!(replayed >= 5, "expected a corpus, replayed {replayed} inputs");
}
