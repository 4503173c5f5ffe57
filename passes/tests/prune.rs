//! `prune` on small hand-written graphs: option handling, selection (ratio, min-channels,
//! round-to, scope, layers, explicit channels), dependency propagation (depthwise multipliers,
//! concat on other axes, shared weights, per-channel constants), frozen groups and statistics.

use clio::ir::Op;
use clio::pass::{PassError, PassManager, RunReport};
use clio::text::{parse_module, print_module, PrintOptions};
use clio::{Module, Tensor};

fn parse(src: &str) -> Module {
    parse_module(src, &Default::default()).unwrap()
}

fn run(m: &mut Module, pipeline: &str) -> Result<RunReport, PassError> {
    PassManager::from_pipeline(&clio_passes::registry(), pipeline)?.run(m)
}

fn shape(m: &Module, node: &str) -> Vec<usize> {
    let g = m.main_graph().unwrap();
    g.node(g.find(node).unwrap()).ty().shape.clone()
}

fn wshape(m: &Module, w: &str) -> Vec<usize> {
    m.weight(w).unwrap().data().shape().to_vec()
}

fn input(m: &Module) -> Tensor {
    let g = m.main_graph().unwrap();
    let s = g.node(g.inputs()[0]).ty().shape.clone();
    let n: usize = s.iter().product();
    Tensor::from_f32(s, (0..n).map(|i| ((i * 37) % 17) as f32 / 8.0 - 1.0).collect()).unwrap()
}

/// A chain of 1x1 convs: %a (8 channels, filter row i has mean |w| = i + 1), %b (8 -> 8,
/// rows weighted the other way), %out (8 -> 2, frozen by the graph output).
fn chain() -> Module {
    let a: Vec<String> = (0..8).flat_map(|i| vec![format!("{}.0", i + 1); 2]).collect();
    let b: Vec<String> = (0..8).flat_map(|i| vec![format!("{}.0", 8 - i); 8]).collect();
    let o: Vec<String> = (0..16).map(|i| format!("{}.0", i % 5)).collect();
    parse(&format!(
        "module @chain {{
  weight @a.w : tensor<8x2x1x1xf32> = dense<[{}]>
  weight @b.w : tensor<8x8x1x1xf32> = dense<[{}]>
  weight @o.w : tensor<2x8x1x1xf32> = dense<[{}]>
  graph @main(%x: tensor<1x2x3x3xf32>) -> (tensor<1x2x3x3xf32>) {{
    %a = conv2d(%x, @a.w) {{groups = 1}} : tensor<1x8x3x3xf32>
    %ra = relu(%a) : tensor<1x8x3x3xf32>
    %b = conv2d(%ra, @b.w) {{groups = 1}} : tensor<1x8x3x3xf32>
    %rb = relu(%b) : tensor<1x8x3x3xf32>
    %out = conv2d(%rb, @o.w) {{groups = 1}} : tensor<1x2x3x3xf32>
    return %out
  }}
}}",
        a.join(", "),
        b.join(", "),
        o.join(", ")
    ))
}

#[test]
fn ratio_zero_changes_nothing() {
    for pipeline in ["prune", "prune{ratio=0}", "prune{ratio=0.0,scope=global,criterion=bn-gamma,round-to=8}"] {
        let mut m = chain();
        let before = print_module(&m, &PrintOptions::default());
        let r = run(&mut m, pipeline).unwrap();
        assert_eq!(print_module(&m, &PrintOptions::default()), before, "{pipeline}");
        let s = &r.passes[0].stats;
        assert_eq!(s["params-before"], s["params-after"]);
        assert_eq!(s["channels-pruned"], 0);
    }
}

#[test]
fn layer_scope_prunes_the_ratio_of_every_layer() {
    let mut m = chain();
    let r = run(&mut m, "prune{ratio=0.5}").unwrap();
    assert_eq!(shape(&m, "a"), vec![1, 4, 3, 3]);
    assert_eq!(shape(&m, "b"), vec![1, 4, 3, 3]);
    assert_eq!(shape(&m, "out"), vec![1, 2, 3, 3]);
    assert_eq!(wshape(&m, "b.w"), vec![4, 4, 1, 1]);
    assert_eq!(wshape(&m, "o.w"), vec![2, 4, 1, 1]);
    // %a keeps its largest filters (rows 4..8), %b its largest (rows 0..4).
    let a = m.weight("a.w").unwrap().data().as_f32().unwrap().to_vec();
    assert_eq!(a, vec![5.0, 5.0, 6.0, 6.0, 7.0, 7.0, 8.0, 8.0]);
    let b = m.weight("b.w").unwrap().data().as_f32().unwrap().to_vec();
    assert_eq!(&b[..4], &[8.0; 4]);
    let s = &r.passes[0].stats;
    assert_eq!((s["channels-pruned"], s["layers-pruned"], s["groups-pruned"]), (8, 2, 8));
    assert_eq!(s["channels-frozen"], 2);
    // params: 16 + 64 + 16 before, 8 + 16 + 8 after.
    assert_eq!((s["params-before"], s["params-after"]), (96, 32));
    assert_eq!((s["macs-before"], s["macs-after"]), (96 * 9, 32 * 9));
    let notes = &r.passes[0].notes;
    assert!(
        notes.iter().any(|n| n == "@main %a (conv2d): channels 8 -> 4, params 16 -> 8, MACs 144 -> 72"),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n == "@main %out (conv2d): params 16 -> 8, MACs 144 -> 72"), "{notes:?}");
    clio::interp::run(&m, "main", &[input(&m)]).unwrap();
}

#[test]
fn min_channels_and_round_to() {
    let mut m = chain();
    run(&mut m, "prune{ratio=0.9,min-channels=3}").unwrap();
    assert_eq!(shape(&m, "a")[1], 3);
    let mut m = chain();
    run(&mut m, "prune{ratio=0.7,round-to=4}").unwrap();
    // 8 - floor(5.6) = 3 kept, rounded up to 4.
    assert_eq!(shape(&m, "a")[1], 4);
    let mut m = chain();
    run(&mut m, "prune{ratio=1.0}").unwrap();
    assert_eq!(shape(&m, "a")[1], 1, "a layer never loses every channel");
    let mut m = chain();
    run(&mut m, "prune{ratio=0.3,round-to=3}").unwrap();
    // 8 - 2 = 6 kept, already a multiple of 3.
    assert_eq!(shape(&m, "b")[1], 6);
}

#[test]
fn global_scope_ranks_all_layers_together() {
    let mut m = chain();
    // 16 prunable channels, 8 go: %a's scores are 1..8, %b's 8..1 (each row of %b has 8 inputs
    // with the same value): the lowest 8 are a:1..4 and b:1..4 (ties broken by position).
    let r = run(&mut m, "prune{ratio=0.5,scope=global}").unwrap();
    assert_eq!(r.passes[0].stats["channels-pruned"], 8);
    assert_eq!(shape(&m, "a")[1] + shape(&m, "b")[1], 8);
    let mut m = chain();
    run(&mut m, "prune{ratio=0.9,scope=global,min-channels=2}").unwrap();
    assert_eq!((shape(&m, "a")[1], shape(&m, "b")[1]), (2, 2));
}

#[test]
fn layers_option_restricts_pruning() {
    let mut m = chain();
    run(&mut m, "prune{ratio=0.5,layers=b}").unwrap();
    assert_eq!((shape(&m, "a")[1], shape(&m, "b")[1]), (8, 4));
    let mut m = chain();
    run(&mut m, "prune{ratio=0.5,layers=\"%a, nothing*\"}").unwrap();
    assert_eq!((shape(&m, "a")[1], shape(&m, "b")[1]), (4, 8));
    let mut m = chain();
    run(&mut m, "prune{ratio=0.5,layers=\"*\"}").unwrap();
    assert_eq!((shape(&m, "a")[1], shape(&m, "b")[1]), (4, 4));
}

#[test]
fn explicit_channels() {
    let mut m = chain();
    let r = run(&mut m, "prune{channels=\"a=0:7;%b=3\"}").unwrap();
    assert_eq!((shape(&m, "a")[1], shape(&m, "b")[1]), (6, 7));
    let a = m.weight("a.w").unwrap().data().as_f32().unwrap().to_vec();
    assert_eq!(a, vec![2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 6.0, 7.0, 7.0]);
    assert_eq!(r.passes[0].stats["channels-pruned"], 3);
    for (spec, needle) in [
        ("out=0", "cannot be pruned (graph output)"),
        ("nope=1", "no node %nope"),
        ("ra=1", "not a prunable"),
        ("a=8", "no channel 8"),
        ("a=x", "not a channel index"),
        ("a", "is not NODE=i:j"),
        ("a=0:1:2:3:4:5:6:7", "every channel of %a"),
    ] {
        let mut m = chain();
        let e = run(&mut m, &format!("prune{{channels=\"{spec}\"}}")).unwrap_err().to_string();
        assert!(e.contains(needle), "{spec}: {e}");
    }
}

#[test]
fn bad_options_are_rejected() {
    for (p, needle) in [
        ("prune{ratio=1.5}", "ratio"),
        ("prune{ratio=-0.1}", "ratio"),
        ("prune{round-to=0}", "round-to"),
        ("prune{criterion=l2}", "criterion"),
        ("prune{scope=net}", "scope"),
        ("prune{min-channels=-1}", "min-channels"),
    ] {
        let e = match PassManager::from_pipeline(&clio_passes::registry(), p) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{p} accepted"),
        };
        assert!(e.contains(needle), "{p}: {e}");
    }
}

#[test]
fn depthwise_multiplier_and_shared_weights() {
    // %dw has channel multiplier 2 (4 -> 8): pruning input channel i removes outputs 2i, 2i+1.
    // @s.w is read by two convs on different inputs: the pruned copy goes to the one that changes.
    let mut m = parse(
        "module @m {
  weight @a.w : tensor<4x1x1x1xf32> = dense<[1.0, 0.01, 2.0, 0.02]>
  weight @dw.w : tensor<8x1x1x1xf32> = dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]>
  weight @dw.b : tensor<8xf32> = dense<[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]>
  weight @s.w : tensor<2x8x1x1xf32> = dense<[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]>
  graph @main(%x: tensor<1x1x2x2xf32>, %y: tensor<1x8x2x2xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) {
    %a = conv2d(%x, @a.w) {groups = 1} : tensor<1x4x2x2xf32>
    %dw = conv2d(%a, @dw.w, @dw.b) {groups = 4} : tensor<1x8x2x2xf32>
    %s1 = conv2d(%dw, @s.w) {groups = 1} : tensor<1x2x2x2xf32>
    %s2 = conv2d(%y, @s.w) {groups = 1} : tensor<1x2x2x2xf32>
    return %s1, %s2
  }
}",
    );
    let r = run(&mut m, "prune{ratio=0.5}").unwrap();
    assert_eq!(shape(&m, "a"), vec![1, 2, 2, 2]);
    assert_eq!(shape(&m, "dw"), vec![1, 4, 2, 2]);
    let g = m.main_graph().unwrap();
    let Op::Conv2d(c) = &g.node(g.find("dw").unwrap()).op else { panic!() };
    assert_eq!(c.groups, 2);
    assert_eq!(m.weight("dw.w").unwrap().data().as_f32().unwrap(), &[1.0, 2.0, 5.0, 6.0]);
    assert_eq!(m.weight("dw.b").unwrap().data().as_f32().unwrap(), &[0.1, 0.2, 0.5, 0.6]);
    assert_eq!(wshape(&m, "s.w"), vec![2, 8, 1, 1]);
    assert_eq!(wshape(&m, "s.w.pruned"), vec![2, 4, 1, 1]);
    assert_eq!(r.passes[0].stats["weights-copied"], 1);
    clio::verify::verify_module(&m).unwrap();
}

#[test]
fn concat_on_other_axes_and_broadcast_operands() {
    // A concat along the height axis couples channel i of both inputs; a mul by a [N,1,H,W]
    // activation (broadcast over channels) freezes that activation's single channel only.
    let mut m = parse(
        "module @m {
  weight @a.w : tensor<4x1x1x1xf32> = dense<[1.0, 0.01, 2.0, 0.02]>
  weight @b.w : tensor<4x1x1x1xf32> = dense<[0.03, 3.0, 0.04, 4.0]>
  weight @g.w : tensor<1x1x1x1xf32> = dense<[0.5]>
  weight @o.w : tensor<2x4x1x1xf32> = dense<[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]>
  graph @main(%x: tensor<1x1x2x2xf32>) -> (tensor<1x2x4x2xf32>) {
    %a = conv2d(%x, @a.w) {groups = 1} : tensor<1x4x2x2xf32>
    %b = conv2d(%x, @b.w) {groups = 1} : tensor<1x4x2x2xf32>
    %cat = concat(%a, %b) {axis = 2} : tensor<1x4x4x2xf32>
    %gate = conv2d(%x, @g.w) {groups = 1} : tensor<1x1x2x2xf32>
    %gcat = concat(%gate, %gate) {axis = 2} : tensor<1x1x4x2xf32>
    %m = mul(%cat, %gcat) : tensor<1x4x4x2xf32>
    %o = conv2d(%m, @o.w) {groups = 1} : tensor<1x2x4x2xf32>
    return %o
  }
}",
    );
    let r = run(&mut m, "prune{ratio=0.5}").unwrap();
    // Group scores are the means of %a's and %b's: (0.515, 1.505, 1.02, 2.01): 0 and 2 go.
    assert_eq!(m.weight("a.w").unwrap().data().as_f32().unwrap(), &[0.01, 0.02]);
    assert_eq!(m.weight("b.w").unwrap().data().as_f32().unwrap(), &[3.0, 4.0]);
    assert_eq!(shape(&m, "gate"), vec![1, 1, 2, 2]);
    assert_eq!(r.passes[0].stats["channels-frozen"], 3);
    clio::interp::run(&m, "main", &[input(&m)]).unwrap();
}

#[test]
fn per_channel_constants_and_scale_shift_follow() {
    let mut m = parse(
        "module @m {
  weight @a.w : tensor<4x1x1x1xf32> = dense<[1.0, 0.01, 2.0, 0.02]>
  weight @bias : tensor<1x4x1x1xf32> = dense<[1.0, 2.0, 3.0, 4.0]>
  weight @s : tensor<4xf32> = dense<[5.0, 6.0, 7.0, 8.0]>
  weight @t : tensor<4xf32> = dense<[9.0, 10.0, 11.0, 12.0]>
  weight @slope : tensor<4x1x1xf32> = dense<[0.1, 0.2, 0.3, 0.4]>
  weight @half : tensor<f32> = dense<[0.5]>
  weight @o.w : tensor<1x4xf32> = dense<[1.0, 2.0, 3.0, 4.0]>
  graph @main(%x: tensor<1x1x2x2xf32>) -> (tensor<1x1xf32>) {
    %a = conv2d(%x, @a.w) {groups = 1} : tensor<1x4x2x2xf32>
    %b = add(%a, @bias) : tensor<1x4x2x2xf32>
    %ss = scale_shift(%b, @s, @t) : tensor<1x4x2x2xf32>
    %pr = prelu(%ss, @slope) : tensor<1x4x2x2xf32>
    %h = mul(%pr, @half) : tensor<1x4x2x2xf32>
    %p = global_avg_pool(%h) : tensor<1x4x1x1xf32>
    %sq = squeeze(%p) {axes = [2, 3]} : tensor<1x4xf32>
    %o = gemm(%sq, @o.w) {alpha = 1.0, beta = 1.0, trans_a = false, trans_b = true} : tensor<1x1xf32>
    return %o
  }
}",
    );
    run(&mut m, "prune{ratio=0.5}").unwrap();
    let f = |w: &str| m.weight(w).unwrap().data().as_f32().unwrap().to_vec();
    assert_eq!(f("bias"), vec![1.0, 3.0]);
    assert_eq!(wshape(&m, "bias"), vec![1, 2, 1, 1]);
    assert_eq!((f("s"), f("t")), (vec![5.0, 7.0], vec![9.0, 11.0]));
    assert_eq!(f("slope"), vec![0.1, 0.3]);
    assert_eq!(f("half"), vec![0.5]);
    assert_eq!(f("o.w"), vec![1.0, 3.0]);
    assert_eq!(shape(&m, "sq"), vec![1, 2]);
    clio::interp::run(&m, "main", &[input(&m)]).unwrap();
}

#[test]
fn grouped_convs_and_quantized_weights_are_frozen() {
    let mut m = parse(
        "module @m {
  weight @a.w : tensor<4x1x1x1xf32> = dense<[1.0, 0.01, 2.0, 0.02]>
  weight @g.w : tensor<4x2x1x1xf32> = dense<[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]>
  weight @o.w : tensor<2x4x1x1xf32> = dense<[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]>
  graph @main(%x: tensor<1x1x2x2xf32>) -> (tensor<1x2x2x2xf32>) {
    %a = conv2d(%x, @a.w) {groups = 1} : tensor<1x4x2x2xf32>
    %g = conv2d(%a, @g.w) {groups = 2} : tensor<1x4x2x2xf32>
    %o = conv2d(%g, @o.w) {groups = 1} : tensor<1x2x2x2xf32>
    return %o
  }
}",
    );
    let before = print_module(&m, &PrintOptions::default());
    let r = run(&mut m, "prune{ratio=0.5}").unwrap();
    assert_eq!(print_module(&m, &PrintOptions::default()), before);
    assert_eq!(r.passes[0].stats["channels-frozen"], 6);
}

#[test]
fn bn_gamma_skips_producers_without_batch_norm() {
    let mut m = chain();
    let before = print_module(&m, &PrintOptions::default());
    let r = run(&mut m, "prune{ratio=0.5,criterion=bn-gamma}").unwrap();
    assert_eq!(print_module(&m, &PrintOptions::default()), before);
    assert!(
        r.passes[0].notes[0].contains("bn-gamma prunes nothing (run prune before fuse-bn"),
        "{:?}",
        r.passes[0].notes
    );
}
