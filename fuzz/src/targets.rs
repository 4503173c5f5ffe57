//! The bodies of the fuzz targets. `cargo fuzz` runs them through `fuzz_targets/*.rs`; the
//! stable replay test (`tests/fuzz_replay.rs` in the main crate) runs every file of
//! `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/` through the same functions, so past
//! findings stay fixed in `cargo test`.
//!
//! Each body must never panic: any failure is an `Err` and is ignored.

/// A fuzz target body: takes the raw input, must never panic.
pub type Target = fn(&[u8]);

/// Every target, by directory name.
pub const TARGETS: &[(&str, Target)] =
    &[("parse_text", parse_text), ("pipeline", pipeline), ("import_onnx", import_onnx)];

/// IR text: parse, and if it parses, verify and check that printing round-trips.
pub fn parse_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let opts = clio::text::ParseOptions { missing: clio::text::MissingWeights::Zeros, ..Default::default() };
    let Ok(m) = clio::text::parse_module(text, &opts) else { return };
    let _ = clio::verify::verify_module(&m);
    let printed = clio::text::print_module(&m, &clio::text::PrintOptions::inline());
    let again = clio::text::parse_module(&printed, &Default::default()).expect("printed IR must parse");
    assert_eq!(
        clio::text::print_module(&again, &clio::text::PrintOptions::inline()),
        printed,
        "print is not a fixed point"
    );
}

/// Pipeline strings: parse; if they parse, printing round-trips.
pub fn pipeline(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(p) = clio::pass::Pipeline::parse(text) else { return };
    let printed = p.to_string();
    assert_eq!(clio::pass::Pipeline::parse(&printed).expect("printed pipeline must parse"), p);
}

/// ONNX bytes: import must return a module or an error, never panic or allocate unboundedly.
pub fn import_onnx(data: &[u8]) {
    let opts =
        clio::import::ImportOptions { limits: clio::Limits { max_tensor_elements: 1 << 22 }, ..Default::default() };
    let _ = clio::import::import_onnx_bytes(data, "fuzz", None, &opts);
}
