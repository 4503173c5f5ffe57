//! Stable replay of fuzz inputs: every file of `fuzz/corpus/<target>/` and
//! `fuzz/artifacts/<target>/` through the target bodies. Included by the replay tests
//! (`passes/tests/fuzz_replay.rs`, `runtime/tests/fuzz_replay.rs`) with `#[path]`.

/// A target: its directory name and its body.
pub type Named = (&'static str, fn(&[u8]));

/// Runs every stored input of each `(directory name, body)` target; returns how many ran.
pub fn replay_all(fuzz_dir: &std::path::Path, targets: &[Named]) -> usize {
    let mut replayed = 0;
    for (name, run) in targets {
        for dir in ["corpus", "artifacts"] {
            let Ok(entries) = std::fs::read_dir(fuzz_dir.join(dir).join(name)) else { continue };
            for e in entries.flatten() {
                let data = std::fs::read(e.path()).unwrap();
                run(&data);
                replayed += 1;
            }
        }
    }
    replayed
}
