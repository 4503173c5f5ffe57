//! Replays the runtime fuzz targets' corpus and artifacts on stable Rust, so past findings stay
//! fixed (see fuzz/src/runtime_targets.rs).

#[path = "../../fuzz/src/replay.rs"]
mod replay;
#[path = "../../fuzz/src/runtime_targets.rs"]
mod runtime_targets;

#[test]
fn replay_protocol_corpus_and_artifacts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let replayed = replay::replay_all(&root, runtime_targets::TARGETS);
    assert!(replayed >= 5, "expected a corpus, replayed {replayed} inputs");
}
