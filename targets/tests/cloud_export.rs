//! Cloud export (ONNX, and NNEF through tract) checked against clio's interpreter: every test
//! model imported from ONNX (conv, batch norm, depthwise, residual adds, pooling, gemm,
//! flatten, hard-swish ...), and the slice heads of sliced models whose device part was
//! quantized (int8 affine and q8 power-of-two: the heads take the integer cut tensor and
//! dequantize it). tract runs our ONNX and our NNEF archive; both must agree with the
//! interpreter within 1e-4 of the output's largest magnitude (float summation order differs).

use clio::import::{ImportOptions, InputShape};
use clio::ir::{DType, Module, Tensor, TensorData};
use clio::models::{small_mobilenet_v2, small_resnet, SmallMobileNetV2Config, SmallResNetConfig};
use clio::pass::PassManager;
use clio_targets::cloud::{export_nnef, export_onnx, ExportError};
use std::path::Path;
use tract_onnx::prelude::*;

fn run_pipeline(m: &mut Module, p: &str) {
    PassManager::from_pipeline(&clio_passes::registry(), p).unwrap().run(m).unwrap();
}

/// Deterministic input of the graph's input type: floats in [-2, 2], or integers over the
/// whole i8 range.
fn input_for(m: &Module, graph: &str, seed: u64) -> Tensor {
    let g = m.graph(graph).unwrap();
    let ty = g.node(g.inputs()[0]).ty().clone();
    let n: usize = ty.shape.iter().product();
    let mut rng = clio::quant::math::SplitMix64::new(seed);
    let data = match ty.dtype {
        DType::F32 => TensorData::F32((0..n).map(|_| (rng.next_u64() % 4001) as f32 / 1000.0 - 2.0).collect()),
        DType::I8 => TensorData::I8((0..n).map(|_| rng.next_u64() as u8 as i8).collect()),
        d => panic!("no test input for {d}"),
    };
    Tensor::new(ty.shape.clone(), data).unwrap()
}

fn to_tract(t: &Tensor) -> TValue {
    let shape = t.shape().to_vec();
    let tensor = match t.data() {
        TensorData::F32(v) => tract_ndarray::ArrayD::from_shape_vec(shape, v.clone()).unwrap().into_tensor(),
        TensorData::I8(v) => tract_ndarray::ArrayD::from_shape_vec(shape, v.clone()).unwrap().into_tensor(),
        _ => panic!("unsupported test input type"),
    };
    tensor.into()
}

fn run_tract(model: TypedModel, x: &Tensor) -> Vec<f32> {
    let out = model.into_runnable().unwrap().run(tvec![to_tract(x)]).unwrap();
    out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect()
}

fn assert_close(what: &str, want: &[f32], got: &[f32]) {
    assert_eq!(want.len(), got.len(), "{what}: output size");
    let scale = want.iter().fold(1e-3f32, |s, v| s.max(v.abs()));
    let worst = want.iter().zip(got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-4 * scale, "{what}: max |diff| {worst} vs scale {scale}");
}

/// Exports `@graph` to ONNX and NNEF, runs both with tract and compares with the interpreter.
fn check_graph(m: &Module, graph: &str) {
    check_graph_on(m, graph, &input_for(m, graph, 7));
}

fn check_graph_on(m: &Module, graph: &str, x: &Tensor) {
    let x = x.clone();
    let want = clio::interp::run(m, graph, std::slice::from_ref(&x)).unwrap();
    let want = want[0].as_f32().unwrap();

    let onnx = export_onnx(m, graph).unwrap();
    let model = tract_onnx::onnx().model_for_read(&mut &onnx[..]).unwrap().into_optimized().unwrap();
    assert_close(&format!("@{graph} via ONNX"), want, &run_tract(model, &x));

    let tar = export_nnef(m, graph).unwrap();
    let model = tract_nnef::nnef().with_onnx().model_for_read(&mut &tar[..]).unwrap().into_optimized().unwrap();
    assert_close(&format!("@{graph} via NNEF"), want, &run_tract(model, &x));
}

#[test]
fn every_imported_test_model_exports_and_runs_the_same_in_tract() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/models");
    let mut checked = vec![];
    for name in [
        "mobilenet_v2_tiny",
        "mobilenet_v2_w050_tiny",
        "resnet_tiny",
        "vgg_tiny",
        "keras_tiny_cnn",
        "hardswish_net",
        "mlp_flatten_view",
    ] {
        let path = dir.join(format!("{name}.onnx"));
        let x = clio::io::read_npy(&path.with_extension("input.npy")).unwrap();
        let opts = ImportOptions {
            input_shapes: vec![InputShape { name: None, shape: x.shape().to_vec() }],
            ..Default::default()
        };
        let m = clio::import::import_path(&path, &opts).unwrap_or_else(|e| panic!("{e}"));
        let graph = m.graph_names()[0].clone();
        check_graph_on(&m, &graph, &x);
        checked.push(name);
    }
    assert_eq!(checked.len(), 7);
}

#[test]
fn slice_heads_of_int8_and_q8_device_parts_export_and_run_the_same_in_tract() {
    let mb = SmallMobileNetV2Config { width: 0.5, input: 28, in_channels: 1, classes: 10, seed: 3 };
    let rn = SmallResNetConfig { input: 28, in_channels: 1, classes: 10, seed: 4, ..Default::default() };
    let cases: Vec<(Module, &str)> = vec![
        (
            small_mobilenet_v2(&mb).unwrap(),
            "fuse-bn,slice{cut=4,sizes=4:8,bandwidth=none},quantize{scheme=int8,calib=random:3,samples=8,graph=device}",
        ),
        (
            small_mobilenet_v2(&mb).unwrap(),
            "fuse-bn,slice{cut=6,sizes=8:16,bandwidth=none},quantize{scheme=q8,calib=random:3,samples=8,graph=device}",
        ),
        (
            small_resnet(&rn).unwrap(),
            "fuse-bn,slice{cut=2,step=8,bandwidth=none},quantize{scheme=int8,calib=random:3,samples=8,graph=device}",
        ),
    ];
    let mut heads = 0;
    for (mut m, pipeline) in cases {
        run_pipeline(&mut m, pipeline);
        for g in m.graph_names().into_iter().filter(|g| g.starts_with("cloud.s")) {
            let ty = m.graph(&g).unwrap();
            assert_eq!(ty.node(ty.inputs()[0]).ty().dtype, DType::I8, "@{g} takes the integer cut tensor");
            check_graph(&m, &g);
            heads += 1;
        }
    }
    assert!(heads >= 5, "checked {heads} heads");
}

#[test]
fn device_graphs_and_missing_graphs_are_refused_with_the_node_named() {
    let mb = SmallMobileNetV2Config { width: 0.5, input: 28, in_channels: 1, classes: 10, seed: 3 };
    let mut m = small_mobilenet_v2(&mb).unwrap();
    run_pipeline(
        &mut m,
        "fuse-bn,slice{cut=4,sizes=4:8,bandwidth=none},quantize{scheme=int8,calib=random:3,samples=8,graph=device}",
    );
    match export_onnx(&m, "device") {
        Err(ExportError::Unsupported { graph, node, op, .. }) => {
            assert_eq!(graph, "device");
            assert!(!node.is_empty());
            assert!(op == "quantize" || op == "conv2d", "first refused op: {op}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert_eq!(export_onnx(&m, "nope"), Err(ExportError::NoGraph("nope".into())));
    let msg = export_nnef(&m, "device").unwrap_err().to_string();
    assert!(msg.starts_with("export @device: node %"), "{msg}");
}
