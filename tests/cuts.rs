//! Cut-point analysis on the torchvision architectures and hand-built graphs.

use clio::analysis::{cut_points, find_cut, graph_cost, Granularity};
use clio::import::{import_path, ImportOptions, MissingExternalData};
use clio::ir::{Builder, Module, Op, Tensor, TensorType};
use clio::ops::Concat;

fn load(file: &str) -> Module {
    let opts = ImportOptions { missing_external_data: MissingExternalData::Zeros, ..Default::default() };
    import_path(&std::path::Path::new("testdata/models/graph_only").join(file), &opts).unwrap()
}

#[test]
fn mobilenet_v2_block_cuts_are_the_torchvision_block_boundaries() {
    let m = load("mobilenet_v2_224.onnx");
    let cuts = cut_points(&m, "main", Granularity::Block).unwrap();
    assert_eq!(cuts.len(), 23);
    assert_eq!(cuts[0].node, "input");
    // Cut k (1..=19) is right after torchvision block features.{k-1}.
    for c in &cuts[1..=19] {
        assert!(c.node.starts_with(&format!("/features/features.{}/", c.k - 1)), "cut {} at {}", c.k, c.node);
    }
    // Never inside a bottleneck: no cut tensor is an expanded or depthwise intermediate.
    let g = m.main_graph().unwrap();
    let layer_cuts = cut_points(&m, "main", Granularity::Layer).unwrap();
    assert!(layer_cuts.len() > cuts.len());
    for c in &cuts {
        assert!(layer_cuts.iter().any(|l| l.node == c.node), "block cuts are single-tensor cuts");
        assert!(!c.node.contains("conv.1/"), "{} is inside a bottleneck", c.node);
    }
    // Costs split the model.
    let total = graph_cost(&m, g).macs;
    for w in cuts.windows(2) {
        assert!(w[0].device_macs <= w[1].device_macs);
    }
    for c in &cuts {
        assert_eq!(c.device_macs + c.cloud_macs, total);
        assert_eq!(c.bytes_f32, 4 * c.bytes_q8);
        assert_eq!(c.bytes_q8, c.bytes_per_channel_q8 * c.channels as u64);
    }
    assert_eq!(cuts[4].shape, vec![1, 24, 56, 56]);
    assert_eq!(cuts[0].device_macs, 0);
    assert_eq!(cuts.last().unwrap().cloud_macs, 0);
}

#[test]
fn resnet18_block_cuts_never_fall_inside_a_residual_block() {
    let m = load("resnet18_224.onnx");
    let cuts = cut_points(&m, "main", Granularity::Block).unwrap();
    let names: Vec<&str> = cuts.iter().map(|c| c.node.as_str()).collect();
    assert_eq!(names.len(), 14);
    for (k, layer) in
        [(3, "layer1.0"), (4, "layer1.1"), (5, "layer2.0"), (6, "layer2.1"), (9, "layer4.0"), (10, "layer4.1")]
    {
        assert_eq!(names[k], format!("/layer{}/{layer}/relu_1/Relu", &layer[5..6]), "cut {k}");
    }
    for c in cut_points(&m, "main", Granularity::Layer).unwrap() {
        // Layer granularity may split a block's add from its activation, nothing else.
        let inside = c.node.starts_with("/layer") && !c.node.ends_with("relu_1/Relu") && !c.node.ends_with("/Add");
        assert!(!inside, "{} is inside a block", c.node);
    }
}

#[test]
fn cuts_are_found_by_index_or_node_name() {
    let m = load("resnet18_224.onnx");
    let cuts = cut_points(&m, "main", Granularity::Block).unwrap();
    assert_eq!(find_cut(&cuts, "main", "2").unwrap().node, "/maxpool/MaxPool");
    assert_eq!(find_cut(&cuts, "main", "%/maxpool/MaxPool").unwrap().k, 2);
    let e = find_cut(&cuts, "main", "/layer1/layer1.0/conv1/Conv").unwrap_err().to_string();
    assert!(
        e.starts_with(
            "no cut point `/layer1/layer1.0/conv1/Conv` in graph @main (cut points: 0 (%input), 1 (%/relu/Relu)"
        ),
        "{e}"
    );
}

#[test]
fn several_inputs_use_a_virtual_source() {
    let mut m = Module::new("two");
    let mut b = Builder::new(&mut m, "main");
    let a = b.input("a", TensorType::f32([1, 2, 4, 4]));
    let c = b.input("c", TensorType::f32([1, 2, 4, 4]));
    let ra = b.op("ra", Op::Relu, &[a]).unwrap();
    let cat = b.op("cat", Op::Concat(Concat { axis: 1 }), &[ra, c]).unwrap();
    let w = b.weight("w", Tensor::from_f32([3, 4, 1, 1], vec![0.1; 12]).unwrap());
    let y = b.op("conv", Op::Conv2d(Default::default()), &[cat, w]).unwrap();
    let z = b.op("relu", Op::Relu, &[y]).unwrap();
    b.output(z);
    b.finish();
    let names: Vec<String> = cut_points(&m, "main", Granularity::Layer).unwrap().into_iter().map(|c| c.node).collect();
    // Neither input alone, nor `ra`, carries everything: the first cut is the concat.
    assert_eq!(names, vec!["cat", "conv", "relu"]);
    let names: Vec<String> = cut_points(&m, "main", Granularity::Block).unwrap().into_iter().map(|c| c.node).collect();
    assert_eq!(names, vec!["cat", "relu"], "not between the conv and its activation");
}

/// The device peak of every cut equals a direct computation: the liveness of the device part
/// alone (inputs live from step 0, a value until its last device reader, the cut tensor to the
/// end). `cut_points` computes it incrementally, cut after cut.
#[test]
fn device_peak_matches_a_direct_liveness_computation() {
    use std::collections::{HashMap, HashSet};
    for (file, granularity) in [
        ("mobilenet_v2_224.onnx", Granularity::Layer),
        ("mobilenet_v2_224.onnx", Granularity::Block),
        ("resnet18_224.onnx", Granularity::Layer),
        ("vgg11_bn_224.onnx", Granularity::Block),
    ] {
        let m = load(file);
        let g = m.main_graph().unwrap();
        let order = g.topo_order().unwrap();
        for c in cut_points(&m, "main", granularity).unwrap() {
            let mut device = HashSet::new();
            let mut stack = vec![c.value.node];
            while let Some(x) = stack.pop() {
                if device.insert(x) {
                    stack.extend(g.producers(x));
                }
            }
            let steps: Vec<_> = order
                .iter()
                .copied()
                .filter(|n| device.contains(n) && !matches!(g.node(*n).op, Op::Weight { .. }))
                .collect();
            let pos: HashMap<_, _> = steps.iter().enumerate().map(|(i, n)| (*n, i)).collect();
            let last = steps.len() - 1;
            let mut live = vec![0u64; steps.len()];
            for (i, n) in steps.iter().enumerate() {
                let node = g.node(*n);
                for (r, t) in node.results.iter().enumerate() {
                    let v = clio::Value { node: *n, result: r as u32 };
                    let start = if matches!(node.op, Op::Input) { 0 } else { i };
                    let end = if *n == c.value.node {
                        last
                    } else {
                        g.uses(v).iter().filter_map(|(u, _)| pos.get(u)).copied().max().unwrap_or(i).max(i)
                    };
                    for b in &mut live[start..=end] {
                        *b += t.size_bytes().unwrap() as u64;
                    }
                }
            }
            let want = live.into_iter().max().unwrap();
            assert_eq!(c.device_peak_activation_bytes, want, "{file} cut {} (%{})", c.k, c.node);
        }
    }
}
