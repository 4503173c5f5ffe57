//! Replays the runtime fuzz targets' corpus and artifacts on stable Rust, so past findings stay
//! fixed (see fuzz/src/runtime_targets.rs).

#[path = "../../fuzz/src/runtime_targets.rs"]
mod runtime_targets;

#[test]
fn replay_protocol_corpus_and_artifacts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    for (name, run) in runtime_targets::TARGETS {
        for dir in ["corpus", "artifacts"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else { continue };
            for e in entries.flatten() {
                let data = std::fs::read(e.path()).unwrap();
                run(&data);
                replayed += 1;
            }
        }
    }
    assert!(replayed >= 5, "expected a corpus, replayed {replayed} inputs");
}
