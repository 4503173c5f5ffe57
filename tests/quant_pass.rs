//! The `quantize` pass end to end: refusals and error messages, float-ops, and numerics of the
//! integer model (run by the bit-exact integer interpreter, dequantized) against the float
//! model on small IR files and on the MobileNetV2 / ResNet test models.

#[path = "common/quant.rs"]
mod common_quant;

use clio::ir::{DType, Module, Op, Tensor};
use clio::pass::PassManager;
use clio::quant::math::SplitMix64;
use clio::text::{parse_module, ParseOptions};
use common_quant::{import_fused, output_sqnr};

fn repo(p: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn parse_file(p: &str) -> Module {
    let src = std::fs::read_to_string(repo(p)).unwrap();
    parse_module(&src, &ParseOptions::default()).unwrap()
}

fn run_pipeline(m: &mut Module, p: &str) -> Result<(), String> {
    let mut pm = PassManager::from_pipeline(&clio_passes::registry(), p).map_err(|e| e.to_string())?;
    pm.run(m).map(|_| ()).map_err(|e| e.to_string())
}

fn random_inputs(m: &Module, n: usize, seed: u64) -> Vec<Tensor> {
    let g = m.main_graph().unwrap();
    let ty = g.node(g.inputs()[0]).ty().clone();
    let mut r = SplitMix64::new(seed);
    let numel: usize = ty.shape.iter().product();
    (0..n)
        .map(|_| {
            Tensor::from_f32(ty.shape.clone(), (0..numel).map(|_| r.normal().clamp(-3.0, 3.0) as f32).collect())
                .unwrap()
        })
        .collect()
}

const TINY: &str = "module @t {
  weight @w : tensor<2x1x1x1xf32> = dense<[0.5, -1.0]>
  weight @g : tensor<2xf32> = dense<[1.0, 1.0]>
  weight @b : tensor<2xf32> = dense<[0.0, 0.0]>
  weight @mu : tensor<2xf32> = dense<[0.0, 0.0]>
  weight @v : tensor<2xf32> = dense<[1.0, 1.0]>
  graph @main(%x: tensor<1x1x4x4xf32>) -> (tensor<1x2x4x4xf32>) {
    %c = conv2d(%x, @w) {strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], groups = 1} : tensor<1x2x4x4xf32>
    %bn = batch_norm(%c, @g, @b, @mu, @v) {epsilon = 0.0} : tensor<1x2x4x4xf32>
    %s = sigmoid(%bn) : tensor<1x2x4x4xf32>
    return %s
  }
}";

#[test]
fn refuses_without_calibration() {
    let mut m = parse_module(TINY, &ParseOptions::default()).unwrap();
    let err = run_pipeline(&mut m, "fuse-bn,quantize{float-ops=sigmoid}").unwrap_err();
    assert!(err.contains("no calibration data") && err.contains("calib=PATH"), "{err}");
    let err = run_pipeline(&mut m, "fuse-bn,quantize{float-ops=sigmoid,calib=\"/nonexistent/x.npy\"}").unwrap_err();
    assert!(err.contains("/nonexistent/x.npy"), "{err}");
}

#[test]
fn unsupported_ops_are_named() {
    let mut m = parse_module(TINY, &ParseOptions::default()).unwrap();
    let err = run_pipeline(&mut m, "quantize{calib=random}").unwrap_err();
    assert!(err.contains("node %bn (batch_norm)") && err.contains("fuse-bn"), "{err}");
    let mut m = parse_module(TINY, &ParseOptions::default()).unwrap();
    let err = run_pipeline(&mut m, "fuse-bn,quantize{calib=random}").unwrap_err();
    assert!(err.contains("node %s (sigmoid)") && err.contains("float-ops=sigmoid"), "{err}");
    // q8 has no softmax kernel.
    let mut m = parse_file("testdata/ir/quantize_int8_cnn.clio");
    let err = run_pipeline(&mut m, "quantize{scheme=q8,calib=random}").unwrap_err();
    assert!(err.contains("node %sm (softmax)") && err.contains("scheme q8"), "{err}");
    // Already quantized.
    let mut m = parse_file("testdata/ir/quantize_int8_cnn.clio");
    run_pipeline(&mut m, "quantize{calib=random}").unwrap();
    let err = run_pipeline(&mut m, "quantize{calib=random}").unwrap_err();
    assert!(err.contains("already quantized"), "{err}");
}

#[test]
fn float_ops_stay_float() {
    let mut m = parse_module(TINY, &ParseOptions::default()).unwrap();
    run_pipeline(&mut m, "fuse-bn,quantize{float-ops=sigmoid,calib=random:3}").unwrap();
    let g = m.main_graph().unwrap();
    let s = g.node(g.find("s").unwrap());
    assert_eq!(s.ty().dtype, DType::F32);
    let c = g.node(g.find("c").unwrap());
    assert_eq!(c.ty().dtype, DType::I8);
    assert!(g.node_ids().any(|id| matches!(g.node(id).op, Op::Dequantize)));
    // Node names work too, with or without `%`.
    let mut m = parse_module(TINY, &ParseOptions::default()).unwrap();
    run_pipeline(&mut m, "fuse-bn,quantize{float-ops=\"%s:%c\",calib=random:3}").unwrap();
    let g = m.main_graph().unwrap();
    assert_eq!(g.node(g.find("c").unwrap()).ty().dtype, DType::F32);
}

#[test]
fn small_cnn_int8_q8_q16_close_to_float() {
    for (scheme, extra, min_db) in
        [("int8", "", 25.0), ("q8", ",float-ops=softmax", 18.0), ("q16", ",float-ops=softmax", 50.0)]
    {
        for weights in ["per-channel", "per-tensor"] {
            let float = parse_file("testdata/ir/quantize_int8_cnn.clio");
            let mut q = float.clone();
            run_pipeline(
                &mut q,
                &format!("quantize{{scheme={scheme},weights={weights},calib=random:5,samples=16{extra}}}"),
            )
            .unwrap();
            let db = output_sqnr(&float, &q, &random_inputs(&float, 16, 99));
            eprintln!("small cnn {scheme} {weights}: output SQNR {db:.1} dB");
            assert!(db > min_db, "{scheme} {weights}: output SQNR {db:.1} dB <= {min_db}");
        }
    }
}

#[test]
fn range_methods_all_work() {
    for range in ["minmax", "percentile", "mse"] {
        let float = parse_file("testdata/ir/quantize_int8_cnn.clio");
        for scheme in ["int8", "q8"] {
            let mut q = float.clone();
            let extra = if scheme == "q8" { ",float-ops=softmax" } else { "" };
            run_pipeline(
                &mut q,
                &format!("quantize{{scheme={scheme},range={range},calib=random:5,samples=16{extra}}}"),
            )
            .unwrap();
            let db = output_sqnr(&float, &q, &random_inputs(&float, 8, 7));
            eprintln!("small cnn {scheme} range={range}: {db:.1} dB");
            assert!(db > 15.0, "{scheme} range={range}: {db:.1} dB");
        }
    }
}

#[test]
fn test_models_quantize_with_good_sqnr() {
    for model in ["mobilenet_v2_tiny", "resnet_tiny"] {
        let float = import_fused(model);
        let inputs = random_inputs(&float, 8, 1234);
        for (scheme, min_db) in [("int8", 20.0), ("q8", 14.0), ("q16", 40.0)] {
            let mut q = float.clone();
            run_pipeline(&mut q, &format!("quantize{{scheme={scheme},calib=random:11,samples=16}}")).unwrap();
            let db = output_sqnr(&float, &q, &inputs);
            eprintln!("{model} {scheme}: output SQNR {db:.1} dB");
            assert!(db > min_db, "{model} {scheme}: output SQNR {db:.1} dB <= {min_db}");
        }
    }
}

#[test]
fn calibration_from_npy_file_and_directory() {
    let dir = std::env::temp_dir().join(format!("clio_quant_calib_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let float = parse_file("testdata/ir/quantize_int8_cnn.clio");
    // One file with a leading batch of 6 samples, split; and a directory of two files.
    let xs = random_inputs(&float, 6, 5);
    let all: Vec<f32> = xs.iter().flat_map(|t| t.as_f32().unwrap().to_vec()).collect();
    let batch = Tensor::from_f32([6, 3, 8, 8], all).unwrap();
    let file = dir.join("batch.npy");
    clio::io::write_npy(&file, &batch).unwrap();
    let sub = dir.join("many");
    std::fs::create_dir_all(&sub).unwrap();
    clio::io::write_npy(&sub.join("a.npy"), &xs[0]).unwrap();
    clio::io::write_npy(&sub.join("b.npy"), &xs[1]).unwrap();
    for path in [&file, &sub] {
        let mut q = float.clone();
        let mut pm =
            PassManager::from_pipeline(&clio_passes::registry(), &format!("quantize{{calib=\"{}\"}}", path.display()))
                .unwrap();
        let report = pm.run(&mut q).unwrap();
        let n = report.passes[0].stats["calib-samples"];
        assert_eq!(n, if path == &file { 6 } else { 2 });
    }
    // A tensor of the wrong shape is an error naming the file.
    let bad = dir.join("bad.npy");
    clio::io::write_npy(&bad, &Tensor::from_f32([5, 7], vec![0.0; 35]).unwrap()).unwrap();
    let mut q = float.clone();
    let err = run_pipeline(&mut q, &format!("quantize{{calib=\"{}\"}}", bad.display())).unwrap_err();
    assert!(err.contains("bad.npy") && err.contains("does not match"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
