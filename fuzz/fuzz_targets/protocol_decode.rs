#![no_main]
#[path = "../src/runtime_targets.rs"]
mod runtime_targets;
libfuzzer_sys::fuzz_target!(|data: &[u8]| runtime_targets::protocol_decode(data));
