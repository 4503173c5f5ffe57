//! The radio boundary after `quantize` of a device graph: the transmitted cut tensor stays
//! integer, and every receiving graph (the partition's cloud graph, or every head of a `slice`)
//! takes it quantized and dequantizes it first. The composition device (integer interpreter)
//! then head (float interpreter) stays close to the float model.

mod common;
use clio::ir::{DType, Module, Op, Tensor};
use clio::models::{small_mobilenet_v2, SmallMobileNetV2Config};
use clio::verify::verify_module;
use common::*;

fn input() -> Tensor {
    let data = (0..784).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    Tensor::from_f32(vec![1, 1, 28, 28], data).unwrap()
}

/// Checks the boundary of device graph `dev` and receivers `heads` of `m`.
fn check(m: &Module, dev: &str, heads: &[String]) {
    verify_module(m).unwrap();
    let d = m.graph(dev).unwrap();
    let out = d.outputs()[0];
    assert!(matches!(d.node(out.node).op, Op::Transmit(_)), "the device graph ends in transmit");
    let ty = d.value_type(out).unwrap();
    assert_eq!(ty.dtype, DType::I8);
    let q = ty.quant.clone().expect("the transmitted tensor keeps its format");
    for h in heads {
        let g = m.graph(h).unwrap();
        let inp = g.node(g.inputs()[0]).ty();
        assert_eq!((inp.dtype, inp.quant.as_ref()), (DType::I8, Some(&q)), "@{h} input");
        let readers = g.uses(clio::ir::Value::of(g.inputs()[0]));
        assert!(readers.iter().all(|(n, _)| matches!(g.node(*n).op, Op::Dequantize)), "@{h} reads it dequantized");
    }
}

fn sqnr_db(reference: &[f32], got: &[f32]) -> f64 {
    let sig: f64 = reference.iter().map(|v| (*v as f64).powi(2)).sum();
    let noise: f64 = reference.iter().zip(got).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum();
    10.0 * (sig / noise.max(1e-30)).log10()
}

#[test]
fn sliced_heads_receive_the_quantized_cut_tensor() {
    let cfg = SmallMobileNetV2Config { width: 0.5, input: 28, in_channels: 1, classes: 10, seed: 2 };
    let float = small_mobilenet_v2(&cfg).unwrap();
    let mut m = float.clone();
    run_pipeline(&mut m, "fuse-bn,slice{cut=4,sizes=4:8,bandwidth=none}");
    let reference = clio::interp::run(&m, "cloud.s8", &clio::interp::run(&m, "device", &[input()]).unwrap()).unwrap();
    run_pipeline(&mut m, "quantize{scheme=int8,calib=random:3,samples=16,graph=device}");
    let heads = vec!["cloud.s4".to_string(), "cloud.s8".to_string()];
    check(&m, "device", &heads);
    let sent = clio::interp::run_int(&m, "device", &[input()]).unwrap();
    assert_eq!(sent[0].dtype(), DType::I8);
    let got = clio::interp::run(&m, "cloud.s8", &sent).unwrap();
    let db = sqnr_db(reference[0].as_f32().unwrap(), got[0].as_f32().unwrap());
    assert!(db > 15.0, "device int8 + widest head vs float: {db:.1} dB");
}

#[test]
fn a_partitions_cloud_graph_receives_the_quantized_cut_tensor() {
    let cfg = SmallMobileNetV2Config { width: 0.5, input: 28, in_channels: 1, classes: 10, seed: 2 };
    let mut m = small_mobilenet_v2(&cfg).unwrap();
    run_pipeline(&mut m, "fuse-bn,partition{cut=4}");
    run_pipeline(&mut m, "quantize{scheme=q8,calib=random:3,samples=16,graph=device}");
    check(&m, "device", &["cloud".to_string()]);
}

#[test]
fn align_keeps_the_cut_tensor_scale() {
    // The transmitted tensor pins its group to factor 1: the cloud graph is not rewritten and
    // still receives the cut tensor at its float scale.
    let cfg = SmallMobileNetV2Config { width: 0.5, input: 28, in_channels: 1, classes: 10, seed: 2 };
    let mut m = small_mobilenet_v2(&cfg).unwrap();
    run_pipeline(&mut m, "fuse-bn,partition{cut=4}");
    let reference = clio::interp::run(&m, "cloud", &clio::interp::run(&m, "device", &[input()]).unwrap()).unwrap();
    let ops = |m: &Module| {
        let g = m.graph("cloud").unwrap();
        g.node_ids()
            .map(|id| {
                let n = g.node(id);
                let data = match &n.op {
                    Op::Weight { name } => Some(m.weight(name).unwrap().data().digest()),
                    _ => None,
                };
                (n.name().to_string(), n.op.clone(), data)
            })
            .collect::<Vec<_>>()
    };
    let cloud_before = ops(&m);
    let report = run_pipeline(&mut m, "quantize{scheme=q8,align=true,calib=random:3,samples=16,graph=device}");
    assert!(report.passes[0].stats["aligned-layers"] > 0, "the device graph has groups to align");
    check(&m, "device", &["cloud".to_string()]);
    let d = m.graph("device").unwrap();
    assert!(d.node_ids().all(|id| !d.node(id).name().ends_with(".unalign")), "no compensation in front of transmit");
    let sent = clio::interp::run_int(&m, "device", &[input()]).unwrap();
    let got = clio::interp::run(&m, "cloud", &sent).unwrap();
    let db = sqnr_db(reference[0].as_f32().unwrap(), got[0].as_f32().unwrap());
    assert!(db > 15.0, "device q8 (aligned) + cloud vs float: {db:.1} dB");
    // The cloud graph only gains the dequantize of its input.
    let after: Vec<_> = ops(&m).into_iter().filter(|(_, op, _)| !matches!(op, Op::Dequantize)).collect();
    assert_eq!(cloud_before, after, "the cloud graph's ops and weights are unchanged");
}
