//! The Rust model builders (`clio::models`) against torchvision: at width 1.0 and 224x224 the
//! parameter and MAC counts equal torch's (testdata/models/graph_only/manifest.json), and the op
//! sequence, every result shape and every weight shape equal those of the torchvision ONNX
//! export imported by clio. Also: other widths and the 32x32 exports, determinism of the seeded
//! weights, the CIFAR variants, the chain builder, and configuration errors.

use clio::analysis::graph_cost;
use clio::import::{import_path, ImportOptions, InputShape, MissingExternalData};
use clio::ir::{Digest, DigestAlgorithm, Op};
use clio::models::{
    chain, make_divisible, mobilenet_v2, resnet18, vgg16_bn, ChainConfig, MobileNetV2Config, ResNetConfig, Variant,
    VggConfig,
};
use clio::text::{print_module, PrintOptions};
use clio::{Module, Tensor};
use std::path::Path;

fn manifest_entry(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string("testdata/models/graph_only/manifest.json").unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["models"].as_array().unwrap().iter().find(|m| m["file"] == file).cloned().unwrap()
}

fn import_graph_only(file: &str, input: usize) -> Module {
    let opts = ImportOptions {
        missing_external_data: MissingExternalData::Zeros,
        input_shapes: vec![InputShape { name: None, shape: vec![1, 3, input, input] }],
        ..Default::default()
    };
    import_path(&Path::new("testdata/models/graph_only").join(file), &opts).unwrap()
}

/// (op name, result shape, weight operand shapes) of every computing node, in topological order.
fn signature(m: &Module) -> Vec<(String, Vec<usize>, Vec<Vec<usize>>)> {
    let g = m.main_graph().unwrap();
    g.topo_order()
        .unwrap()
        .into_iter()
        .filter(|id| !matches!(g.node(*id).op, Op::Input | Op::Weight { .. }))
        .map(|id| {
            let n = g.node(id);
            let weights = g
                .operands(id)
                .into_iter()
                .filter(|v| g.weight_name(*v).is_some())
                .map(|v| g.value_type(v).unwrap().shape.clone())
                .collect();
            (n.op.name().to_string(), n.ty().shape.clone(), weights)
        })
        .collect()
}

fn assert_matches_torchvision(built: &Module, file: &str, input: usize) {
    let entry = manifest_entry(file);
    let c = graph_cost(built, built.main_graph().unwrap());
    assert_eq!(c.params, entry["params"].as_u64().unwrap(), "{file}: params");
    assert_eq!(c.macs, entry["macs"].as_u64().unwrap(), "{file}: MACs");
    let imported = import_graph_only(file, input);
    let (a, b) = (signature(built), signature(&imported));
    assert_eq!(a.len(), b.len(), "{file}: node count");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "{file}: node {i} differs");
    }
    // The weight names are torchvision's state_dict names: the same set as the ONNX initializers.
    let mut wa: Vec<&String> = built.weights().keys().collect();
    let mut wb: Vec<&String> = imported.weights().keys().collect();
    wa.sort();
    wb.sort();
    assert_eq!(wa, wb, "{file}: weight names");
    // Batch norms stay batch norms, ReLU6 is clip.
    let count = |m: &Module, op: &str| {
        m.main_graph().unwrap().node_ids().filter(|id| m.main_graph().unwrap().node(*id).op.name() == op).count()
    };
    let ops = &entry["op_counts"];
    assert_eq!(count(built, "batch_norm") as u64, ops["BatchNormalization"].as_u64().unwrap(), "{file}: BN count");
    assert_eq!(count(built, "conv2d") as u64, ops["Conv"].as_u64().unwrap(), "{file}: conv count");
    assert_eq!(count(built, "add") as u64, ops["Add"].as_u64().unwrap_or(0), "{file}: add count");
    assert_eq!(count(built, "clip") as u64, ops["Clip"].as_u64().unwrap_or(0), "{file}: clip count");
}

#[test]
fn mobilenet_v2_matches_torchvision_at_224() {
    for (width, file) in
        [(1.0, "mobilenet_v2_224.onnx"), (0.5, "mobilenet_v2_w050_224.onnx"), (0.35, "mobilenet_v2_w035_224.onnx")]
    {
        let m = mobilenet_v2(&MobileNetV2Config { width, ..Default::default() }).unwrap();
        clio::verify::verify_module(&m).unwrap();
        assert_matches_torchvision(&m, file, 224);
    }
    // The numbers the issue names, spelled out.
    let m = mobilenet_v2(&MobileNetV2Config::default()).unwrap();
    let c = graph_cost(&m, m.main_graph().unwrap());
    assert_eq!((c.params, c.macs), (3_504_872, 300_774_272));
}

#[test]
fn resnet18_matches_torchvision_at_224() {
    let m = resnet18(&ResNetConfig::default()).unwrap();
    clio::verify::verify_module(&m).unwrap();
    assert_matches_torchvision(&m, "resnet18_224.onnx", 224);
    let c = graph_cost(&m, m.main_graph().unwrap());
    assert_eq!((c.params, c.macs), (11_689_512, 1_814_073_344));
}

#[test]
fn vgg16_bn_matches_torchvision_at_224() {
    let m = vgg16_bn(&VggConfig::default()).unwrap();
    clio::verify::verify_module(&m).unwrap();
    assert_matches_torchvision(&m, "vgg16_bn_224.onnx", 224);
    let c = graph_cost(&m, m.main_graph().unwrap());
    assert_eq!((c.params, c.macs), (138_365_992, 15_470_264_320));
}

#[test]
fn imagenet_variants_match_torchvision_at_32() {
    // torchvision's own architectures on 32x32 inputs with 10 classes (not the CIFAR variants).
    let m = mobilenet_v2(&MobileNetV2Config { input: 32, classes: 10, ..Default::default() }).unwrap();
    assert_matches_torchvision(&m, "mobilenet_v2_32.onnx", 32);
    let m = resnet18(&ResNetConfig { input: 32, classes: 10, ..Default::default() }).unwrap();
    assert_matches_torchvision(&m, "resnet18_32.onnx", 32);
}

#[test]
fn make_divisible_is_torchvisions() {
    // Values of torchvision.models._utils._make_divisible (its formula, evaluated in Python).
    for (v, want) in [
        (32.0 * 0.35, 16),
        (16.0 * 0.35, 8),
        (24.0 * 0.35, 8),
        (32.0 * 0.5, 16),
        (96.0 * 0.35, 32),
        (160.0 * 0.35, 56),
        (320.0 * 0.35, 112),
        (64.0 * 0.75, 48),
        (1280.0, 1280),
        (24.0 * 1.4, 32),
        (3.0, 8),
        (20.0, 24),
        (28.0, 32),
    ] {
        assert_eq!(make_divisible(v, 8), want, "make_divisible({v})");
    }
}

#[test]
fn cifar_variants_have_the_documented_shapes() {
    let cfg = MobileNetV2Config { width: 1.0, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
    let m = mobilenet_v2(&cfg).unwrap();
    clio::verify::verify_module(&m).unwrap();
    let g = m.main_graph().unwrap();
    let shape = |name: &str| g.node(g.find(name).unwrap()).ty().shape.clone();
    // Stem and the c=24 stage keep stride 1; 32x32 reaches 4x4 before the pool.
    assert_eq!(shape("features.0.2"), vec![1, 32, 32, 32]);
    assert_eq!(shape("features.2.conv.1.0"), vec![1, 96, 32, 32]);
    assert_eq!(shape("features.4.conv.1.0"), vec![1, 144, 16, 16]);
    assert_eq!(shape("features.18.2"), vec![1, 1280, 4, 4]);
    assert_eq!(shape("classifier.1"), vec![1, 10]);
    // Only the strides differ from torchvision: same parameters as torchvision at 10 classes.
    assert_eq!(graph_cost(&m, g).params, manifest_entry("mobilenet_v2_32.onnx")["params"].as_u64().unwrap());

    let m = resnet18(&ResNetConfig { input: 32, classes: 10, variant: Variant::Cifar, ..Default::default() }).unwrap();
    let g = m.main_graph().unwrap();
    let shape = |name: &str| g.node(g.find(name).unwrap()).ty().shape.clone();
    assert!(g.find("maxpool").is_none());
    assert_eq!(shape("conv1"), vec![1, 64, 32, 32]);
    assert_eq!(shape("layer4.1.relu.1"), vec![1, 512, 4, 4]);
    // The usual CIFAR ResNet-18: 11,173,962 parameters (3x3 stem, 10 classes).
    assert_eq!(graph_cost(&m, g).params, 11_173_962);

    let m = vgg16_bn(&VggConfig { input: 32, classes: 10, variant: Variant::Cifar, ..Default::default() }).unwrap();
    let g = m.main_graph().unwrap();
    assert_eq!(g.node(g.find("flatten").unwrap()).ty().shape, vec![1, 512]);
    // The usual CIFAR VGG-16 with BN (kuangliu/pytorch-cifar's VGG('VGG16')): 14,728,266
    // parameters (convs with bias 14,714,688 + BN 8,448 + Linear(512, 10) 5,130).
    assert_eq!(graph_cost(&m, g).params, 14_728_266);
}

#[test]
fn width_multiplier_scales_every_stage() {
    let m = mobilenet_v2(&MobileNetV2Config { width: 0.5, input: 32, classes: 10, seed: 0, variant: Variant::Cifar })
        .unwrap();
    let g = m.main_graph().unwrap();
    let out_c = |name: &str| g.node(g.find(name).unwrap()).ty().shape[1];
    assert_eq!(out_c("features.0.0"), 16);
    assert_eq!(out_c("features.1.conv.1"), 8);
    assert_eq!(out_c("features.17.conv.2"), 160);
    // The last conv is never narrower than 1280.
    assert_eq!(out_c("features.18.0"), 1280);
    let m =
        resnet18(&ResNetConfig { width: 0.25, input: 32, classes: 10, variant: Variant::Cifar, ..Default::default() })
            .unwrap();
    let g = m.main_graph().unwrap();
    assert_eq!(g.node(g.find("fc").unwrap()).ty().shape, vec![1, 10]);
    assert_eq!(g.node(g.find("layer4.1.conv2").unwrap()).ty().shape[1], 128);
}

#[test]
fn weights_are_deterministic_and_seeded() {
    let cfg = MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 7, variant: Variant::Cifar };
    let a = print_module(&mobilenet_v2(&cfg).unwrap(), &PrintOptions::default());
    let b = print_module(&mobilenet_v2(&cfg).unwrap(), &PrintOptions::default());
    assert_eq!(a, b);
    let c =
        print_module(&mobilenet_v2(&MobileNetV2Config { seed: 8, ..cfg.clone() }).unwrap(), &PrintOptions::default());
    assert_ne!(a, c);
    // Pinned digests: the weights are the same bits on every platform and every run. (FNV-1a,
    // the text format's digest when these were pinned; the values have not changed since.)
    let m = mobilenet_v2(&cfg).unwrap();
    let digest = |name: &str| Digest::of(m.weight(name).unwrap().data(), DigestAlgorithm::Fnv1a).to_string();
    let pinned = format!(
        "{} {} {}",
        digest("features.0.0.weight"),
        digest("features.0.1.running_var"),
        digest("classifier.1.bias")
    );
    assert_eq!(pinned, "376cc6e20a1d4bbe e1cc6651b0e01f5f 804206b811096e04");
    // BN statistics are random, in their documented ranges.
    let var = m.weight("features.5.conv.1.1.running_var").unwrap().data().as_f32().unwrap().to_vec();
    assert!(var.iter().all(|v| (0.5..2.0).contains(v)) && var.windows(2).any(|w| w[0] != w[1]));
}

#[test]
fn built_models_run_with_bounded_outputs() {
    let models = [
        mobilenet_v2(&MobileNetV2Config { width: 0.5, input: 32, classes: 10, seed: 1, variant: Variant::Cifar })
            .unwrap(),
        resnet18(&ResNetConfig { width: 0.25, input: 32, classes: 10, seed: 1, variant: Variant::Cifar }).unwrap(),
        vgg16_bn(&VggConfig { width: 0.25, input: 32, classes: 10, seed: 1, variant: Variant::Cifar }).unwrap(),
        chain(&ChainConfig { layers: 50, ..Default::default() }).unwrap(),
    ];
    for m in &models {
        let g = m.main_graph().unwrap();
        let shape = g.node(g.inputs()[0]).ty().shape.clone();
        let n: usize = shape.iter().product();
        let x = Tensor::from_f32(shape, (0..n).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect()).unwrap();
        let y = clio::interp::run(m, "main", &[x]).unwrap();
        let y = y[0].as_f32().unwrap();
        let max = y.iter().fold(0f32, |a, v| a.max(v.abs()));
        assert!(max.is_finite() && max > 1e-3 && max < 1e4, "{}: output magnitude {max}", m.name);
    }
}

#[test]
fn chain_scales_and_has_the_requested_layers() {
    let m = chain(&ChainConfig { layers: 1000, ..Default::default() }).unwrap();
    clio::verify::verify_module(&m).unwrap();
    let g = m.main_graph().unwrap();
    let convs = g.node_ids().filter(|id| matches!(g.node(*id).op, Op::Conv2d(_))).count();
    let bns = g.node_ids().filter(|id| matches!(g.node(*id).op, Op::BatchNorm(_))).count();
    assert_eq!((convs, bns), (1000, 1000));
    let c = graph_cost(&m, g);
    assert_eq!(c.macs, 1000 * 4 * 4 * 9 * 64 + 40);
    // Building is linear in the layer count: 100k layers (600k nodes) in well under a minute
    // even unoptimised.
    let start = std::time::Instant::now();
    let m = chain(&ChainConfig { layers: 100_000, ..Default::default() }).unwrap();
    assert_eq!(m.main_graph().unwrap().len(), 100_000 * 8 + 6);
    assert!(start.elapsed().as_secs() < 60, "{:?}", start.elapsed());
    let m = chain(&ChainConfig { layers: 3, batch_norm: false, channels: 2, ..Default::default() }).unwrap();
    assert!(m.weight("layers.2.conv.bias").is_some() && m.weight("layers.2.bn.weight").is_none());
}

#[test]
fn bad_configurations_are_one_line_errors() {
    let e = mobilenet_v2(&MobileNetV2Config { width: 0.0, ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("width multiplier 0"), "{e}");
    let e = vgg16_bn(&VggConfig { input: 32, ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("multiple of 7"), "{e}");
    let e = vgg16_bn(&VggConfig { input: 16, variant: Variant::Cifar, ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("features."), "{e}");
    let e = chain(&ChainConfig { layers: 0, ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("layer count 0"), "{e}");
    // Linear(512 * 128 * 128, 1000): over the per-tensor element limit, refused before allocating.
    let e = vgg16_bn(&VggConfig { input: 4096, variant: Variant::Cifar, ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("@classifier.weight") && e.to_string().contains("over the limit"), "{e}");
    assert!(!e.to_string().contains('\n'));
}
