//! Fuzz target bodies for the run-time protocol (crate `clio-runtime`). `cargo fuzz` runs them
//! through `fuzz_targets/*.rs`; `runtime/tests/fuzz_replay.rs` replays `fuzz/corpus/<target>/`
//! and `fuzz/artifacts/<target>/` through the same functions on stable Rust.
//!
//! Each body must never panic on any input: failures are errors and are ignored.

/// A fuzz target body: takes the raw input, must never panic.
pub type Target = fn(&[u8]);

/// Every runtime target, by directory name.
pub const TARGETS: &[(&str, Target)] = &[("protocol_decode", protocol_decode)];

/// Protocol frames: the first byte chooses how the rest is split into reads (a peer's bytes
/// arrive in arbitrary pieces); the incremental decoder must give the same frames whatever the
/// split, never buffer past its limit, and every decoded frame must encode to bytes that decode
/// to a frame encoding identically (a fixed point after one round).
pub fn protocol_decode(data: &[u8]) {
    use clio_runtime::protocol::{Frame, FrameDecoder};
    let Some((&split, bytes)) = data.split_first() else { return };
    let max = 4096;
    let decode_all = |piece: usize| {
        let mut d = FrameDecoder::new(max);
        let mut frames = vec![];
        for chunk in bytes.chunks(piece.max(1)) {
            d.push(chunk);
            loop {
                match d.next_frame() {
                    Ok(Some(f)) => frames.push(f.encode()),
                    Ok(None) => break,
                    Err(_) => return (frames, true),
                }
            }
            assert!(d.pending() <= max + 4 + piece.max(1), "decoder holds {} bytes", d.pending());
        }
        (frames, false)
    };
    let whole = decode_all(bytes.len());
    let pieces = decode_all(split as usize % 17 + 1);
    assert_eq!(whole, pieces, "frames depend on how the bytes were split");
    for encoded in whole.0 {
        let again = Frame::decode(&encoded[4..]).expect("an encoded frame decodes");
        assert_eq!(again.encode(), encoded, "encode is not a fixed point");
    }
}
