//! The modules that decode raw user bytes or text, and the op shape rules and the verifier that
//! run on what they decode before it is verified, deny `clippy::indexing_slicing` (see
//! docs/robustness.md, "No panics in library code"). Clippy enforces the lint where the attribute
//! is; this test keeps the attribute there: every file of those modules, including files added
//! later, must carry it.

use std::path::{Path, PathBuf};

const ATTR: &str = "#![deny(clippy::indexing_slicing)]";

/// Folders whose every `.rs` file (recursively) must deny the lint.
const FOLDERS: &[&str] = &["src/text", "src/io", "src/import", "src/pass", "src/ops"];
/// Single files that must deny the lint.
const FILES: &[&str] = &[
    "src/quant/wire.rs",
    "src/trace.rs",
    "src/verify.rs",
    "runtime/src/protocol.rs",
    "passes/src/canonicalize/rules.rs",
    "passes/src/plan/simulate.rs",
    "targets/src/desc.rs",
];

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn input_decoding_modules_deny_indexing_slicing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for d in FOLDERS {
        rs_files(&root.join(d), &mut files);
    }
    files.extend(FILES.iter().map(|f| root.join(f)));
    assert!(files.len() >= 32, "expected the input-decoding modules, found {files:?}");
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
            // An inner attribute: at the start of a line, before any item.
            !text.lines().any(|l| l.trim_end() == ATTR)
        })
        .map(|f| f.strip_prefix(root).unwrap_or(f).display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without `{ATTR}`: {missing:?}");
}
