//! The generated STM32 device C, compiled for the host into a shared library and called through
//! `DeviceModule`: its wire message equals the integer interpreter's byte for byte (header and
//! payload), two modules with the same symbol names loaded together each give their own result,
//! and build failures are typed errors naming the file or symbol.

use clio::ir::{DType, Tensor};
use clio::pass::PassManager;
use clio::quant::math::SplitMix64;
use clio::text::{parse_module, ParseOptions};
use clio::Module;
use clio_runtime::device::module::{DeviceModule, ModuleError};
use clio_targets::stm32::{lower, shim_files, Stm32Options};
use std::path::{Path, PathBuf};

/// The small test CNN, int8-quantized (seeded random calibration) and cut at `cut`.
fn device_part(cut: &str, seed: u64) -> Module {
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/ir/quantize_int8_cnn.clio")).unwrap();
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    let pipe =
        format!("quantize{{scheme=int8,calib=random:{seed},samples=4}},partition{{cut={cut},granularity=layer}}");
    PassManager::from_pipeline(&clio_passes::registry(), &pipe).unwrap().run(&mut m).unwrap();
    m
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("clio-device-module-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes what `clio compile --target stm32f7` writes for the device part: the C module, the
/// shims under `cmsis_nn/` and the manifest's `device` section.
fn compile_dir(m: &Module, dir: &Path) {
    let c = lower(m, &Stm32Options::default()).unwrap();
    c.write_to(dir).unwrap();
    std::fs::create_dir_all(dir.join("cmsis_nn")).unwrap();
    for (name, text) in shim_files(c.api) {
        std::fs::write(dir.join("cmsis_nn").join(name), text).unwrap();
    }
    let manifest = serde_json::json!({
        "device": { "source": c.source_name(), "input": c.report.input, "output": c.report.output }
    });
    std::fs::write(dir.join("manifest.json"), serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
}

fn inputs(m: &Module, n: usize, seed: u64) -> Vec<Tensor> {
    let g = m.graph("device").unwrap();
    let shape = g.node(g.inputs()[0]).ty().shape.clone();
    let numel: usize = shape.iter().product();
    let mut r = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            Tensor::from_f32(shape.clone(), (0..numel).map(|_| r.normal().clamp(-3.0, 3.0) as f32).collect()).unwrap()
        })
        .collect()
}

/// The wire message of the integer interpreter's `@device` output.
fn expected(m: &Module, x: &Tensor) -> Vec<u8> {
    let y = clio::interp::run_int(m, "device", std::slice::from_ref(x)).unwrap();
    assert_eq!(y[0].dtype(), DType::I8);
    let g = m.graph("device").unwrap();
    let ty = g.value_type(g.outputs()[0]).unwrap();
    clio::quant::wire::encode(&y[0], ty.quant.as_ref(), 1, y[0].shape()[1]).unwrap()
}

#[test]
fn invoke_is_bit_exact_and_two_modules_coexist() {
    let root = scratch("two");
    let a = device_part("add", 1);
    let b = device_part("mp", 2);
    compile_dir(&a, &root.join("a"));
    compile_dir(&b, &root.join("b"));
    // Both libraries export clio_device_init / clio_device_invoke.
    let mut ma = DeviceModule::build(&root.join("a"), &root.join("work")).unwrap();
    let mut mb = DeviceModule::build(&root.join("b"), &root.join("work")).unwrap();
    assert_ne!(ma.library_path(), mb.library_path());
    let xs = inputs(&a, 5, 7);
    let mut differ = false;
    for (i, x) in xs.iter().enumerate() {
        // Interleaved calls: each module keeps its own code and arena.
        let ga = ma.invoke(&ma.input().quantize(x.as_f32().unwrap()).unwrap()).unwrap();
        let gb = mb.invoke(&mb.input().quantize(x.as_f32().unwrap()).unwrap()).unwrap();
        let (wa, wb) = (expected(&a, x), expected(&b, x));
        assert_eq!(ga, wa, "cut add, input {i}");
        assert_eq!(gb, wb, "cut mp, input {i}");
        differ |= ga != gb;
        // The header the module wrote parses and announces every channel of its cut tensor.
        for (msg, shape) in [(&ga, vec![1, 4, 8, 8]), (&gb, vec![1, 4, 4, 4])] {
            let h = clio::quant::wire::parse_header(msg, &clio::Limits::default()).unwrap();
            assert_eq!(h.shape, shape);
            assert_eq!(h.channels, 4);
            assert_eq!(msg.len(), h.payload_at + 4 * h.channel_bytes());
        }
    }
    assert!(differ, "the two cuts must give different messages");
    assert_eq!(ma.output_bytes(), expected(&a, &xs[0]).len());
    // A wrong input size is an error, not a buffer overrun.
    assert!(matches!(ma.invoke(&[0i8; 3]), Err(ModuleError::InputSize { expected: 192, got: 3 })));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn build_failures_name_the_file_or_symbol() {
    let root = scratch("fail");
    let m = device_part("add", 1);
    let dir = root.join("ok");
    compile_dir(&m, &dir);
    // A source that does not compile: the error names it and quotes the compiler.
    let broken = root.join("broken");
    compile_dir(&m, &broken);
    std::fs::write(broken.join("clio_device.c"), "this is not C\n").unwrap();
    let e = DeviceModule::build(&broken, &root.join("work")).unwrap_err();
    assert!(matches!(e, ModuleError::Compile { .. }), "{e}");
    assert!(e.to_string().contains("clio_device.c") && e.to_string().contains("error"), "{e}");
    // The same code under another file name: `renamed_init` is missing.
    let renamed = root.join("renamed");
    compile_dir(&m, &renamed);
    std::fs::rename(renamed.join("clio_device.c"), renamed.join("renamed.c")).unwrap();
    let text = std::fs::read_to_string(renamed.join("manifest.json")).unwrap().replace("clio_device.c", "renamed.c");
    std::fs::write(renamed.join("manifest.json"), text).unwrap();
    let e = DeviceModule::build(&renamed, &root.join("work")).unwrap_err();
    assert!(matches!(&e, ModuleError::Symbol { symbol, .. } if symbol == "renamed_init"), "{e}");
    // No manifest.
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    let e = DeviceModule::build(&dir, &root.join("work")).unwrap_err();
    assert!(matches!(e, ModuleError::Io { .. }) && e.to_string().contains("manifest.json"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}
