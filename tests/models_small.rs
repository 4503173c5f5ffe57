//! The small 28x28 builders (`clio::models::small_mobilenet_v2`, `small_resnet`): parameter and
//! MAC counts computed by hand from the architecture, layer names and shapes, determinism,
//! configuration errors, and progressive slicing (`slice`) at an early, a middle and a late
//! block cut of each, with the widest head computing exactly what the original model computes.

use clio::analysis::{cut_points, graph_cost, node_cost, CutPoint, Granularity};
use clio::ir::Attr;
use clio::models::{small_mobilenet_v2, small_resnet, SmallMobileNetV2Config, SmallResNetConfig};
use clio::pass::PassManager;
use clio::text::{print_module, PrintOptions};
use clio::verify::verify_module;
use clio::{Module, Tensor};
use std::collections::HashSet;

/// Parameters of a bias-free conv: `cout x cin/groups x k x k`.
fn conv_p(cout: u64, cin_per_group: u64, k: u64) -> u64 {
    cout * cin_per_group * k * k
}

/// Learnable parameters of a batch norm (gamma, beta; the running statistics are buffers).
fn bn_p(c: u64) -> u64 {
    2 * c
}

/// MACs of a conv producing `cout x hw x hw` from `cin/groups x k x k` windows.
fn conv_m(cout: u64, cin_per_group: u64, k: u64, hw: u64) -> u64 {
    cout * hw * hw * cin_per_group * k * k
}

/// (params, MACs) of one inverted residual (t, inp -> oup, stride) at input size `hw`.
fn inverted_residual_cost(t: u64, inp: u64, oup: u64, stride: u64, hw: u64) -> (u64, u64) {
    let hidden = inp * t;
    let out_hw = hw.div_ceil(stride);
    let (mut p, mut m) = (0, 0);
    if t != 1 {
        p += conv_p(hidden, inp, 1) + bn_p(hidden);
        m += conv_m(hidden, inp, 1, hw);
    }
    p += conv_p(hidden, 1, 3) + bn_p(hidden) + conv_p(oup, hidden, 1) + bn_p(oup);
    m += conv_m(hidden, 1, 3, out_hw) + conv_m(oup, hidden, 1, out_hw);
    (p, m)
}

/// (params, MACs) of one BasicBlock (inp -> planes, stride) at input size `hw`.
fn basic_block_cost(inp: u64, planes: u64, stride: u64, hw: u64) -> (u64, u64) {
    let out_hw = hw.div_ceil(stride);
    let mut p = conv_p(planes, inp, 3) + bn_p(planes) + conv_p(planes, planes, 3) + bn_p(planes);
    let mut m = conv_m(planes, inp, 3, out_hw) + conv_m(planes, planes, 3, out_hw);
    if stride != 1 || inp != planes {
        p += conv_p(planes, inp, 1) + bn_p(planes);
        m += conv_m(planes, inp, 1, out_hw);
    }
    (p, m)
}

/// Params and MACs of the node named `name` on its own.
fn node_params(m: &Module, name: &str) -> (u64, u64) {
    let g = m.main_graph().unwrap();
    let id = g.find(name).unwrap_or_else(|| panic!("no node %{name}"));
    let c = node_cost(m, g, id, &mut HashSet::new());
    (c.params, c.macs)
}

fn out_shape(m: &Module, name: &str) -> Vec<usize> {
    let g = m.main_graph().unwrap();
    let id = g.find(name).unwrap_or_else(|| panic!("no node %{name}"));
    g.node(id).ty().shape.clone()
}

fn count(m: &Module, op: &str) -> usize {
    let g = m.main_graph().unwrap();
    g.node_ids().filter(|id| g.node(*id).op.name() == op).count()
}

/// A deterministic input in [-1, 1) of the model's input shape.
fn input_of(m: &Module, salt: usize) -> Tensor {
    let g = m.main_graph().unwrap();
    let shape = g.node(g.inputs()[0]).ty().shape.clone();
    let n: usize = shape.iter().product();
    Tensor::from_f32(shape, (0..n).map(|i| ((i * 7919 + salt * 131) % 1000) as f32 / 500.0 - 1.0).collect()).unwrap()
}

fn run(m: &Module, graph: &str, x: &Tensor) -> Tensor {
    clio::interp::run(m, graph, std::slice::from_ref(x)).unwrap().remove(0)
}

/// Max |a - b| divided by the range of `b`.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let (lo, hi) = b.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), x| (l.min(*x), h.max(*x)));
    let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    worst / (hi - lo).max(1e-6)
}

#[test]
fn small_mobilenet_v2_counts_match_the_architecture() {
    let m = small_mobilenet_v2(&SmallMobileNetV2Config::default()).unwrap();
    verify_module(&m).unwrap();
    assert_eq!(m.name, "mobilenet_v2_small_w1_28");
    assert_eq!(m.attrs.get("model"), Some(&Attr::Str("mobilenet_v2_small".into())));
    assert_eq!(m.attrs.get("in_channels"), Some(&Attr::Int(1)));

    // By hand: stem 1 -> 16 at 28x28, blocks (t, c, n, s) = (1,8,1,1) (4,16,2,2) (4,24,2,2)
    // (4,32,2,1), last conv 32 -> 128 at 7x7, Linear(128, 10).
    let mut params = conv_p(16, 1, 3) + bn_p(16);
    let mut macs = conv_m(16, 1, 3, 28);
    let (mut inp, mut hw) = (16, 28);
    for [t, c, n, s] in [[1, 8, 1, 1], [4, 16, 2, 2], [4, 24, 2, 2], [4, 32, 2, 1]] {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let (p, mm) = inverted_residual_cost(t, inp, c, stride, hw);
            params += p;
            macs += mm;
            inp = c;
            hw = hw.div_ceil(stride);
        }
    }
    assert_eq!(hw, 7);
    params += conv_p(128, 32, 1) + bn_p(128) + 128 * 10 + 10;
    macs += conv_m(128, 32, 1, 7) + 128 * 10;
    let cost = graph_cost(&m, m.main_graph().unwrap());
    assert_eq!((cost.params, cost.macs), (params, macs));
    // The numbers documented on `small_mobilenet_v2`.
    assert_eq!((cost.params, cost.macs), (36_218, 2_735_872));

    // Single layers, with literal numbers.
    assert_eq!(node_params(&m, "features.0.0"), (144, 144 * 784));
    assert_eq!(node_params(&m, "features.2.conv.0.0"), (8 * 32, 8 * 32 * 784)); // expand at 28x28
    assert_eq!(node_params(&m, "features.2.conv.1.0"), (32 * 9, 32 * 9 * 196)); // depthwise, stride 2
    assert_eq!(node_params(&m, "features.7.conv.2"), (32 * 128, 32 * 128 * 49)); // project
    assert_eq!(node_params(&m, "features.8.0"), (32 * 128, 32 * 128 * 49));
    assert_eq!(node_params(&m, "classifier.1"), (1290, 1280));
    // Spatial sizes 28 -> 14 -> 7, residual adds in blocks 3, 5 and 7 only.
    assert_eq!(out_shape(&m, "features.1.conv.2"), [1, 8, 28, 28]);
    assert_eq!(out_shape(&m, "features.3.add"), [1, 16, 14, 14]);
    assert_eq!(out_shape(&m, "features.7.add"), [1, 32, 7, 7]);
    assert_eq!(out_shape(&m, "features.8.2"), [1, 128, 7, 7]);
    assert_eq!(count(&m, "add"), 3);
    assert_eq!((count(&m, "conv2d"), count(&m, "batch_norm"), count(&m, "clip")), (22, 22, 15));
}

#[test]
fn small_resnet_counts_match_the_architecture() {
    let m = small_resnet(&SmallResNetConfig::default()).unwrap();
    verify_module(&m).unwrap();
    assert_eq!(m.name, "resnet_small_w1_28");
    assert_eq!(m.attrs.get("model"), Some(&Attr::Str("resnet_small".into())));

    let mut params = conv_p(16, 1, 3) + bn_p(16);
    let mut macs = conv_m(16, 1, 3, 28);
    let (mut inp, mut hw) = (16, 28);
    for (planes, stride) in [(16, 1), (32, 2), (64, 2)] {
        for b in 0..2 {
            let s = if b == 0 { stride } else { 1 };
            let (p, mm) = basic_block_cost(inp, planes, s, hw);
            params += p;
            macs += mm;
            inp = planes;
            hw = hw.div_ceil(s);
        }
    }
    assert_eq!(hw, 7);
    params += 64 * 10 + 10;
    macs += 64 * 10;
    let cost = graph_cost(&m, m.main_graph().unwrap());
    assert_eq!((cost.params, cost.macs), (params, macs));
    assert_eq!((cost.params, cost.macs), (174_970, 20_183_936));

    assert_eq!(node_params(&m, "conv1"), (144, 144 * 784));
    assert_eq!(node_params(&m, "layer1.0.conv1"), (16 * 16 * 9, 16 * 16 * 9 * 784));
    assert_eq!(node_params(&m, "layer2.0.conv1"), (32 * 16 * 9, 32 * 16 * 9 * 196));
    assert_eq!(node_params(&m, "layer2.0.downsample.0"), (32 * 16, 32 * 16 * 196));
    assert_eq!(node_params(&m, "layer3.1.conv2"), (64 * 64 * 9, 64 * 64 * 9 * 49));
    assert_eq!(node_params(&m, "fc"), (650, 640));
    assert_eq!(out_shape(&m, "layer1.1.relu.1"), [1, 16, 28, 28]);
    assert_eq!(out_shape(&m, "layer2.1.relu.1"), [1, 32, 14, 14]);
    assert_eq!(out_shape(&m, "layer3.1.relu.1"), [1, 64, 7, 7]);
    assert!(m.weight("layer1.0.downsample.0.weight").is_none());
    assert!(m.weight("layer3.0.downsample.1.running_var").is_some());
    assert_eq!((count(&m, "conv2d"), count(&m, "batch_norm"), count(&m, "add")), (15, 15, 6));
}

#[test]
fn other_widths_channels_and_classes() {
    let m =
        small_mobilenet_v2(&SmallMobileNetV2Config { width: 0.5, in_channels: 3, classes: 7, ..Default::default() })
            .unwrap();
    verify_module(&m).unwrap();
    // make_divisible(16 * 0.5) = 8, make_divisible(8 * 0.5) = 8, the last conv stays 128.
    assert_eq!(m.weight("features.0.0.weight").unwrap().ty().shape, [8, 3, 3, 3]);
    assert_eq!(m.weight("features.1.conv.1.weight").unwrap().ty().shape, [8, 8, 1, 1]);
    assert_eq!(m.weight("features.8.0.weight").unwrap().ty().shape, [128, 16, 1, 1]);
    assert_eq!(m.weight("classifier.1.weight").unwrap().ty().shape, [7, 128]);
    let r = small_resnet(&SmallResNetConfig { width: 2.0, input: 32, in_channels: 3, ..Default::default() }).unwrap();
    verify_module(&r).unwrap();
    assert_eq!(r.weight("conv1.weight").unwrap().ty().shape, [32, 3, 3, 3]);
    assert_eq!(r.weight("fc.weight").unwrap().ty().shape, [10, 128]);
    assert_eq!(out_shape(&r, "layer3.1.relu.1"), [1, 128, 8, 8]);
    // The smallest input: 4 -> 2 -> 1.
    let t = small_resnet(&SmallResNetConfig { input: 4, ..Default::default() }).unwrap();
    assert_eq!(out_shape(&t, "layer3.1.relu.1"), [1, 64, 1, 1]);
}

#[test]
fn small_models_run_and_are_deterministic() {
    let mb = |seed| small_mobilenet_v2(&SmallMobileNetV2Config { seed, ..Default::default() }).unwrap();
    let rn = |seed| small_resnet(&SmallResNetConfig { seed, ..Default::default() }).unwrap();
    let text = |m: &Module| print_module(m, &PrintOptions::default());
    for (a, b, c) in [(mb(5), mb(5), mb(6)), (rn(5), rn(5), rn(6))] {
        assert_eq!(text(&a), text(&b), "{}", a.name);
        assert_ne!(text(&a), text(&c), "{}", a.name);
        let y = run(&a, "main", &input_of(&a, 0));
        assert_eq!(y.shape(), [1, 10]);
        let y = y.as_f32().unwrap();
        let max = y.iter().fold(0f32, |acc, v| acc.max(v.abs()));
        assert!(max.is_finite() && max > 1e-3 && max < 1e4, "{}: output magnitude {max}", a.name);
        let digest = |m: &Module| m.weights().values().map(|w| w.data().digest()).collect::<Vec<_>>();
        assert_eq!(digest(&a), digest(&b));
    }
}

#[test]
fn bad_small_configurations_are_one_line_errors() {
    let cases = [
        (small_mobilenet_v2(&SmallMobileNetV2Config { in_channels: 0, ..Default::default() }), "input channel count 0"),
        (small_resnet(&SmallResNetConfig { in_channels: 0, ..Default::default() }), "input channel count 0"),
        (small_mobilenet_v2(&SmallMobileNetV2Config { input: 3, ..Default::default() }), "too small"),
        (small_resnet(&SmallResNetConfig { input: 2, ..Default::default() }), "too small"),
        (small_resnet(&SmallResNetConfig { input: 0, ..Default::default() }), "input size 0"),
        (small_mobilenet_v2(&SmallMobileNetV2Config { width: 0.0, ..Default::default() }), "width multiplier 0"),
        (small_resnet(&SmallResNetConfig { width: 17.0, ..Default::default() }), "width multiplier 17"),
        (small_resnet(&SmallResNetConfig { width: f64::NAN, ..Default::default() }), "width multiplier NaN"),
        (small_mobilenet_v2(&SmallMobileNetV2Config { classes: 0, ..Default::default() }), "class count 0"),
    ];
    for (r, needle) in cases {
        let e = r.unwrap_err().to_string();
        assert!(e.contains(needle) && !e.contains('\n'), "wanted `{needle}`: {e}");
    }
}

/// Block cuts strictly between the input and the output.
fn inner_cuts(m: &Module) -> Vec<CutPoint> {
    let outputs = m.main_graph().unwrap().outputs().to_vec();
    let cuts = cut_points(m, "main", Granularity::Block).unwrap();
    cuts.into_iter().filter(|c| c.k >= 1 && !outputs.contains(&c.value)).collect()
}

/// Slices `m` at the cut producing `node` with heads of a quarter, half and all channels;
/// checks the module verifies, the device sends the cut tensor and the widest head equals the
/// original model. Returns the cut.
fn slice_at(m: &Module, node: &str, x: &Tensor) -> CutPoint {
    let cuts = inner_cuts(m);
    let c = cuts.iter().find(|c| c.node == node).unwrap_or_else(|| panic!("{}: no block cut at %{node}", m.name));
    let ch = c.channels;
    let sizes = format!("{}:{}:{ch}", ch / 4, ch / 2);
    let pipeline = format!("slice{{cut={},sizes={sizes},bandwidth=none}}", c.k);
    let mut p = m.clone();
    let mut pm = PassManager::from_pipeline(&clio_passes::registry(), &pipeline).unwrap();
    pm.run(&mut p).unwrap_or_else(|e| panic!("{}: {pipeline}: {e}", m.name));
    verify_module(&p).unwrap_or_else(|e| panic!("{}: cut {}: {e}", m.name, c.k));
    let sent = run(&p, "device", x);
    assert_eq!(sent.shape(), &c.shape[..], "{}: cut {}", m.name, c.k);
    let want = run(m, "main", x);
    let full = run(&p, &format!("cloud.s{ch}"), &sent);
    let d = rel_diff(full.as_f32().unwrap(), want.as_f32().unwrap());
    assert!(d <= 1e-4, "{}: cut {} (%{node}): widest head differs from the original by {d}", m.name, c.k);
    // The narrower heads run on their first channels and give class scores.
    for s in [ch / 4, ch / 2] {
        let g = p.graph(&format!("cloud.s{s}")).unwrap();
        assert_eq!(g.node(g.inputs()[0]).ty().shape[1], s, "{}: head s{s}", m.name);
    }
    eprintln!("{}: sliced at cut k={} %{node} ({} channels, shape {:?}), heads {sizes}", m.name, c.k, ch, c.shape);
    c.clone()
}

#[test]
fn small_mobilenet_v2_slices_at_three_block_cuts() {
    let m = small_mobilenet_v2(&SmallMobileNetV2Config { seed: 11, ..Default::default() }).unwrap();
    for c in inner_cuts(&m) {
        eprintln!("cut k={} %{} {} channels {:?}", c.k, c.node, c.channels, c.shape);
    }
    let x = input_of(&m, 1);
    // Early: after the stem (16 x 28 x 28); middle: the 16-channel stage's residual (14 x 14);
    // late: the last inverted residual (32 x 7 x 7).
    let early = slice_at(&m, "features.0.2", &x);
    let mid = slice_at(&m, "features.3.add", &x);
    let late = slice_at(&m, "features.7.add", &x);
    assert_eq!([early.channels, mid.channels, late.channels], [16, 16, 32]);
    assert!(early.k < mid.k && mid.k < late.k);
    assert_eq!(late.shape, [1, 32, 7, 7]);
}

#[test]
fn small_resnet_slices_at_three_block_cuts() {
    let m = small_resnet(&SmallResNetConfig { seed: 12, ..Default::default() }).unwrap();
    for c in inner_cuts(&m) {
        eprintln!("cut k={} %{} {} channels {:?}", c.k, c.node, c.channels, c.shape);
    }
    let x = input_of(&m, 2);
    let early = slice_at(&m, "layer1.0.relu.1", &x);
    let mid = slice_at(&m, "layer2.1.relu.1", &x);
    let late = slice_at(&m, "layer3.0.relu.1", &x);
    assert_eq!([early.channels, mid.channels, late.channels], [16, 32, 64]);
    assert!(early.k < mid.k && mid.k < late.k);
    assert_eq!(mid.shape, [1, 32, 14, 14]);
}

#[test]
fn narrow_mobilenet_slice_heads_are_the_zeroed_model() {
    // At the late cut the first cloud layer (features.8.0, a dense 1x1 conv) reads the cut tensor
    // directly: the s8 head equals the full model with channels 8.. of the cut tensor zeroed.
    let m = small_mobilenet_v2(&SmallMobileNetV2Config { seed: 13, ..Default::default() }).unwrap();
    let c = inner_cuts(&m).into_iter().find(|c| c.node == "features.7.add").unwrap();
    let mut p = m.clone();
    let pipeline = format!("slice{{cut={},sizes=8:32,bandwidth=none}}", c.k);
    PassManager::from_pipeline(&clio_passes::registry(), &pipeline).unwrap().run(&mut p).unwrap();
    let sent = run(&p, "device", &input_of(&m, 3));
    let data = sent.as_f32().unwrap();
    let narrow: Vec<f32> = data[..8 * 49].to_vec();
    let mut zeroed = data.to_vec();
    zeroed[8 * 49..].iter_mut().for_each(|v| *v = 0.0);
    let a = run(&p, "cloud.s8", &Tensor::from_f32(vec![1, 8, 7, 7], narrow).unwrap());
    let b = run(&p, "cloud.s32", &Tensor::from_f32(vec![1, 32, 7, 7], zeroed).unwrap());
    let d = rel_diff(a.as_f32().unwrap(), b.as_f32().unwrap());
    assert!(d <= 1e-4, "{d}");
}
