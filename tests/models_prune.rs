//! `prune` on real models: the tiny torchvision-style models of testdata/models (imported from
//! ONNX) and the Rust-built MobileNetV2 / ResNet-18 / VGG-16-BN / chain.
//!
//! * ratio 0 leaves the printed module identical;
//! * every pruned model verifies, runs, keeps its input and output shapes, and its statistics
//!   equal `graph_cost` before and after;
//! * correctness beyond "it runs": channels made exactly zero (their producer's filter, bias and
//!   every batch-norm / bias / per-channel constant along their group set to 0, so the channel is
//!   0.0 after every activation) are removed, by an explicit `channels=` list and by the `l1`
//!   criterion with a global ratio that selects exactly them, and the output is unchanged within
//!   1e-5 (relative to the output's magnitude).

use clio::analysis::graph_cost;
use clio::import::{import_path, ImportOptions, InputShape};
use clio::ir::Op;
use clio::models::{
    chain, mobilenet_v2, resnet18, vgg16_bn, ChainConfig, MobileNetV2Config, ResNetConfig, Variant, VggConfig,
};
use clio::pass::{PassManager, RunReport};
use clio::text::{print_module, PrintOptions};
use clio::{Module, Tensor};
use clio_passes::prune::channels::{Analysis, Ref, Site};
use clio_passes::prune::select::{groups, Criterion};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// Tiny models of testdata/models whose activations all map 0 to 0 (relu, clip, pooling).
const TINY: [&str; 6] =
    ["mobilenet_v2_tiny", "mobilenet_v2_w050_tiny", "resnet_tiny", "vgg_tiny", "mlp_flatten_view", "keras_tiny_cnn"];

fn tiny(name: &str) -> (Module, Tensor) {
    let dir = Path::new("testdata/models");
    let x = clio::io::read_npy(&dir.join(format!("{name}.input.npy"))).unwrap();
    let opts = ImportOptions {
        input_shapes: vec![InputShape { name: None, shape: x.shape().to_vec() }],
        ..Default::default()
    };
    let m = import_path(&dir.join(format!("{name}.onnx")), &opts).unwrap();
    (m, x)
}

fn built() -> Vec<Module> {
    vec![
        mobilenet_v2(&MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 1, variant: Variant::Cifar })
            .unwrap(),
        resnet18(&ResNetConfig { width: 0.25, input: 32, classes: 10, seed: 2, variant: Variant::Cifar }).unwrap(),
        vgg16_bn(&VggConfig { width: 0.125, input: 32, classes: 10, seed: 3, variant: Variant::Cifar }).unwrap(),
        chain(&ChainConfig { layers: 12, channels: 8, seed: 4, ..Default::default() }).unwrap(),
    ]
}

fn input_for(m: &Module) -> Tensor {
    let g = m.main_graph().unwrap();
    let shape = g.node(g.inputs()[0]).ty().shape.clone();
    let n: usize = shape.iter().product();
    Tensor::from_f32(shape, (0..n).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect()).unwrap()
}

fn run(m: &mut Module, pipeline: &str) -> RunReport {
    PassManager::from_pipeline(&clio_passes::registry(), pipeline).unwrap().run(m).unwrap()
}

fn outputs(m: &Module, x: &Tensor) -> Vec<f32> {
    clio::interp::run(m, &m.graph_names()[0], std::slice::from_ref(x)).unwrap()[0].as_f32().unwrap().to_vec()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: sizes");
    let scale = want.iter().fold(1f32, |a, v| a.max(v.abs()));
    let diff = got.iter().zip(want).fold(0f32, |a, (g, w)| a.max((g - w).abs()));
    assert!(diff <= 1e-5 * scale, "{what}: max diff {diff} (output scale {scale})");
}

fn all_models() -> Vec<(String, Module, Tensor)> {
    let mut v: Vec<(String, Module, Tensor)> = TINY
        .iter()
        .chain(["hardswish_net"].iter())
        .map(|n| {
            let (m, x) = tiny(n);
            (n.to_string(), m, x)
        })
        .collect();
    for m in built() {
        let x = input_for(&m);
        v.push((m.name.clone(), m, x));
    }
    v
}

#[test]
fn ratio_zero_is_the_identity() {
    for (name, mut m, _) in all_models() {
        let before = print_module(&m, &PrintOptions::default());
        for p in ["prune{ratio=0}", "prune{ratio=0,scope=global,criterion=bn-gamma,round-to=8,min-channels=4}"] {
            let r = run(&mut m, p);
            assert_eq!(print_module(&m, &PrintOptions::default()), before, "{name}: {p}");
            let s = &r.passes[0].stats;
            assert_eq!((s["params-before"], s["macs-before"]), (s["params-after"], s["macs-after"]), "{name}");
        }
    }
}

#[test]
fn pruned_models_verify_run_and_keep_their_interfaces() {
    for (name, m, x) in all_models() {
        let out_shape = |m: &Module| {
            let g = m.main_graph().unwrap();
            g.outputs().iter().map(|v| g.value_type(*v).unwrap().shape.clone()).collect::<Vec<_>>()
        };
        for p in [
            "prune{ratio=0.5}",
            "prune{ratio=0.3,scope=global}",
            "prune{ratio=0.5,criterion=bn-gamma,round-to=4}",
            "prune{ratio=0.75,min-channels=2,round-to=2}",
        ] {
            let mut pm = m.clone();
            let before = graph_cost(&m, m.main_graph().unwrap());
            let r = run(&mut pm, p);
            clio::verify::verify_module(&pm).unwrap();
            let after = graph_cost(&pm, pm.main_graph().unwrap());
            let s = &r.passes[0].stats;
            assert_eq!(
                (s["params-before"] as u64, s["macs-before"] as u64),
                (before.params, before.macs),
                "{name} {p}"
            );
            assert_eq!((s["params-after"] as u64, s["macs-after"] as u64), (after.params, after.macs), "{name} {p}");
            assert!(after.params <= before.params && after.macs <= before.macs, "{name} {p}");
            assert_eq!(out_shape(&pm), out_shape(&m), "{name} {p}");
            let y = outputs(&pm, &x);
            assert!(y.iter().all(|v| v.is_finite()), "{name} {p}");
            if p == "prune{ratio=0.5}" && name != "keras_tiny_cnn" && name != "hardswish_net" {
                assert!(s["channels-pruned"] > 0 && after.params < before.params, "{name}: nothing pruned");
                // One remark per changed layer.
                assert!(r.passes[0].notes.iter().any(|n| n.contains("channels ") && n.contains(" -> ")), "{name}");
            }
        }
    }
}

/// Roughly a third of every prunable layer's channel groups (never all of them): those at
/// positions `i % 3 == phase` in each layer.
fn choose(m: &Module, a: &mut Analysis, phase: usize) -> Vec<Ref> {
    let g = m.main_graph().unwrap();
    let gs = groups(m, g, a, Criterion::L1);
    let mut by_layer: BTreeMap<Vec<u32>, Vec<Ref>> = BTreeMap::new();
    for gr in gs.iter().filter(|gr| gr.frozen.is_none()) {
        by_layer.entry(gr.spaces.clone()).or_default().push(gr.root);
    }
    by_layer
        .values()
        .flat_map(|roots| roots.iter().copied().enumerate().filter(|(i, _)| i % 3 == phase).map(|(_, r)| r))
        .collect()
}

/// Makes the chosen groups exactly zero everywhere: producer filters and biases, and every
/// batch-norm gamma/beta, scale_shift, depthwise bias and per-channel additive constant along
/// the group. Consumers' input weights are left alone (they multiply zeros).
fn zero_groups(m: &mut Module, a: &mut Analysis, chosen: &HashSet<Ref>) {
    let graph = m.graph_names()[0].clone();
    for site in a.sites.clone() {
        let Site::Weight { node, slot, axis, map } = site else { continue };
        let g = m.graph(&graph).unwrap();
        let zero = match &g.node(node).op {
            Op::Conv2d(_) => (slot == 1 && axis == 0) || slot == 2,
            Op::Gemm(gm) => (slot == 1 && axis == if gm.trans_b { 0 } else { 1 }) || slot == 2,
            Op::MatMul => slot == 1 && axis == 1,
            Op::BatchNorm(_) => slot == 1 || slot == 2,
            Op::ScaleShift | Op::Add | Op::Sub => true,
            _ => false,
        };
        if !zero {
            continue;
        }
        let positions: Vec<usize> =
            map.iter().enumerate().filter(|(_, r)| chosen.contains(&a.uf.find(**r))).map(|(i, _)| i).collect();
        let name = g.weight_name(g.operand(node, slot).unwrap()).unwrap().to_string();
        let w = m.weights_mut().get_mut(&name).unwrap();
        let shape = w.data().shape().to_vec();
        let inner: usize = shape[axis + 1..].iter().product();
        let d = shape[axis];
        let data = w.data_mut().as_f32_mut().unwrap();
        for (i, x) in data.iter_mut().enumerate() {
            if positions.contains(&((i / inner) % d)) {
                *x = 0.0;
            }
        }
    }
}

/// `NODE=i` for one producer channel of every chosen group.
fn channel_spec(m: &Module, a: &mut Analysis, chosen: &[Ref]) -> String {
    let g = m.main_graph().unwrap();
    let mut per: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for root in chosen {
        let r = (0..a.uf.len() as Ref)
            .find(|r| a.uf.find(*r) == *root && a.spaces[a.space_of[*r as usize] as usize].source)
            .unwrap();
        let s = &a.spaces[a.space_of[r as usize] as usize];
        per.entry(g.node(s.node).name().to_string()).or_default().push((r - s.first) as usize);
    }
    per.iter()
        .map(|(n, idx)| format!("{n}={}", idx.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(":")))
        .collect::<Vec<_>>()
        .join(";")
}

#[test]
fn removing_zero_channels_leaves_the_output_unchanged() {
    let mut cases: Vec<(String, Module, Tensor)> = TINY
        .iter()
        .map(|n| {
            let (m, x) = tiny(n);
            (n.to_string(), m, x)
        })
        .collect();
    for m in built() {
        let x = input_for(&m);
        cases.push((m.name.clone(), m, x));
    }
    for (name, mut m, x) in cases {
        let mut a = Analysis::run(&m, m.main_graph().unwrap()).unwrap();
        let chosen = choose(&m, &mut a, 1);
        let prunable =
            groups(&m, m.main_graph().unwrap(), &mut a, Criterion::L1).iter().filter(|g| g.frozen.is_none()).count();
        if name == "keras_tiny_cnn" {
            // NHWC behind transposes: only the dense layers are prunable.
            assert!(prunable > 0 && !chosen.is_empty(), "{name}");
        } else {
            assert!(chosen.len() >= 3, "{name}: only {} groups chosen of {prunable}", chosen.len());
        }
        let set: HashSet<Ref> = chosen.iter().copied().collect();
        zero_groups(&mut m, &mut a, &set);
        let want = outputs(&m, &x);
        let before = graph_cost(&m, m.main_graph().unwrap());

        // 1. The exact list.
        let spec = channel_spec(&m, &mut a, &chosen);
        let mut p1 = m.clone();
        let r = run(&mut p1, &format!("prune{{channels=\"{spec}\"}}"));
        assert_eq!(r.passes[0].stats["groups-pruned"] as usize, chosen.len(), "{name}");
        let after = graph_cost(&p1, p1.main_graph().unwrap());
        assert!(after.params < before.params && after.macs < before.macs, "{name}");
        assert_close(&format!("{name} channels="), &outputs(&p1, &x), &want);

        // 2. l1 with a global ratio selecting exactly the zero groups (score 0, all others > 0).
        let ratio = (chosen.len() as f64 + 0.5) / prunable as f64;
        let mut p2 = m.clone();
        let r = run(&mut p2, &format!("prune{{ratio={ratio},scope=global}}"));
        assert_eq!(r.passes[0].stats["groups-pruned"] as usize, chosen.len(), "{name}");
        assert_eq!(print_module(&p2, &PrintOptions::default()), print_module(&p1, &PrintOptions::default()), "{name}");
        assert_close(&format!("{name} l1"), &outputs(&p2, &x), &want);
        eprintln!(
            "{name}: {} of {prunable} groups zeroed and pruned, params {} -> {}, MACs {} -> {}",
            chosen.len(),
            before.params,
            after.params,
            before.macs,
            after.macs
        );

        // Negative control: removing other channels, which are not zero, changes the output.
        let live = choose(&m, &mut a, 2);
        let spec = channel_spec(&m, &mut a, &live);
        let mut p3 = m.clone();
        run(&mut p3, &format!("prune{{channels=\"{spec}\"}}"));
        let got = outputs(&p3, &x);
        let scale = want.iter().fold(1f32, |a, v| a.max(v.abs()));
        let diff = got.iter().zip(&want).fold(0f32, |a, (g, w)| a.max((g - w).abs()));
        assert!(diff > 1e-3 * scale, "{name}: pruning live channels should change the output ({diff})");
    }
}

#[test]
fn residual_groups_are_pruned_identically() {
    let mut m =
        resnet18(&ResNetConfig { width: 0.25, input: 32, classes: 10, seed: 5, variant: Variant::Cifar }).unwrap();
    run(&mut m, "prune{ratio=0.5}");
    let g = m.main_graph().unwrap();
    let c = |n: &str| g.node(g.find(n).unwrap()).ty().shape[1];
    // The stem and every block output of a stage share their channels through the adds.
    assert_eq!(c("bn1"), 8);
    assert_eq!(c("layer1.0.bn2"), 8);
    assert_eq!(c("layer1.1.bn2"), 8);
    assert_eq!(c("layer2.0.downsample.1"), c("layer2.0.bn2"));
    assert_eq!(c("layer2.0.bn2"), c("layer2.1.bn2"));
    assert_eq!(c("layer1.0.conv1"), 8);
    // Group membership: the same channel indices survive in every member.
    let mut original =
        resnet18(&ResNetConfig { width: 0.25, input: 32, classes: 10, seed: 5, variant: Variant::Cifar }).unwrap();
    let a = Analysis::run(&original, original.main_graph().unwrap()).unwrap();
    assert!(a.spaces.iter().filter(|s| s.source).count() >= 20);
    let _ = &mut original;
    let x = input_for(&m);
    outputs(&m, &x);
}

#[test]
fn prune_and_sparsify_scale_linearly() {
    // A 100k-layer chain (800k nodes): both passes plus verification in seconds, not minutes.
    let mut m = chain(&ChainConfig { layers: 100_000, ..Default::default() }).unwrap();
    let start = std::time::Instant::now();
    let r = run(&mut m, "prune{ratio=0.5},sparsify{sparsity=0.5}");
    let took = start.elapsed();
    eprintln!("prune + sparsify of 100k layers: {took:?}");
    assert_eq!(r.passes[0].stats["layers-pruned"], 100_000);
    // One remark per conv and per batch norm, and one for the classifier that loses inputs.
    assert_eq!(r.passes[0].notes.len(), 100_000 * 2 + 1);
    assert!(took.as_secs() < 120, "{took:?}");
}
