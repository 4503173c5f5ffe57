//! `sparsify`: per-layer and global magnitude sparsification, the achieved sparsity in the
//! statistics and the module attribute, sparsity 0, idempotence, `min-size` and `layers`.

use clio::ir::Attr;
use clio::pass::{PassError, PassManager, RunReport};
use clio::text::{parse_module, print_module, PrintOptions};
use clio::{Module, Tensor};

fn run(m: &mut Module, pipeline: &str) -> Result<RunReport, PassError> {
    PassManager::from_pipeline(&clio_passes::registry(), pipeline)?.run(m)
}

/// Two convs (36 and 72 elements, distinct magnitudes), a depthwise conv (4 elements) and a gemm
/// (24 elements) whose matrix is also read by a second gemm.
fn model() -> Module {
    let vals = |n: usize, scale: f32| -> String {
        (0..n)
            .map(|i| format!("{:?}", scale * (((i * 7) % n) as f32 + 1.0) * if i % 2 == 0 { 1.0 } else { -1.0 }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    parse_module(
        &format!(
            "module @m {{
  weight @a.w : tensor<4x1x3x3xf32> = dense<[{}]>
  weight @a.b : tensor<4xf32> = dense<[0.0, 0.001, 0.002, 0.003]>
  weight @dw.w : tensor<4x1x1x1xf32> = dense<[{}]>
  weight @b.w : tensor<2x4x3x3xf32> = dense<[{}]>
  weight @fc.w : tensor<3x8xf32> = dense<[{}]>
  graph @main(%x: tensor<1x1x5x5xf32>) -> (tensor<1x3xf32>, tensor<1x3xf32>) {{
    %a = conv2d(%x, @a.w, @a.b) {{pads = [1, 1, 1, 1]}} : tensor<1x4x5x5xf32>
    %dw = conv2d(%a, @dw.w) {{groups = 4}} : tensor<1x4x5x5xf32>
    %b = conv2d(%dw, @b.w) {{strides = [2, 2]}} : tensor<1x2x2x2xf32>
    %f = flatten(%b) {{axis = 1}} : tensor<1x8xf32>
    %fc = gemm(%f, @fc.w) {{trans_b = true}} : tensor<1x3xf32>
    %fc2 = gemm(%f, @fc.w) {{trans_b = true}} : tensor<1x3xf32>
    return %fc, %fc2
  }}
}}",
            vals(36, 0.01),
            vals(4, 1.0),
            vals(72, 0.0001),
            vals(24, 0.1)
        ),
        &Default::default(),
    )
    .unwrap()
}

fn zeros(m: &Module, w: &str) -> usize {
    m.weight(w).unwrap().data().as_f32().unwrap().iter().filter(|x| **x == 0.0).count()
}

#[test]
fn layer_scope_hits_the_target_in_every_weight() {
    let mut m = model();
    let r = run(&mut m, "sparsify{sparsity=0.5}").unwrap();
    assert_eq!((zeros(&m, "a.w"), zeros(&m, "dw.w"), zeros(&m, "b.w"), zeros(&m, "fc.w")), (18, 2, 36, 12));
    // Biases are untouched; the smallest magnitudes went.
    assert_eq!(zeros(&m, "a.b"), 1);
    let a = m.weight("a.w").unwrap().data().as_f32().unwrap();
    let kept_min = a.iter().filter(|x| **x != 0.0).fold(f32::INFINITY, |acc, x| acc.min(x.abs()));
    assert!(kept_min > 0.18 - 1e-6, "{kept_min}");
    let s = &r.passes[0].stats;
    assert_eq!((s["weights"], s["elements"], s["zeros-before"], s["zeros-after"]), (4, 136, 0, 68));
    assert_eq!(s["sparsity-permille"], 500);
    assert_eq!(m.attrs.get("sparsity"), Some(&Attr::Float(0.5)));
    let notes = &r.passes[0].notes;
    assert!(notes.contains(&"@main %a (conv2d) @a.w: 18 of 36 weights zero (50.0%)".to_string()), "{notes:?}");
    // The shared matrix is sparsified once, under its first reader.
    assert_eq!(notes.iter().filter(|n| n.contains("@fc.w")).count(), 1);
    let x = Tensor::from_f32([1, 1, 5, 5], (0..25).map(|i| i as f32 / 25.0).collect()).unwrap();
    clio::interp::run(&m, "main", &[x]).unwrap();
}

#[test]
fn global_scope_ranks_all_weights_together() {
    let mut m = model();
    let r = run(&mut m, "sparsify{sparsity=0.25,scope=global}").unwrap();
    let total = zeros(&m, "a.w") + zeros(&m, "dw.w") + zeros(&m, "b.w") + zeros(&m, "fc.w");
    assert_eq!(total, 34);
    // @b.w has the smallest magnitudes (<= 0.0072): all its elements go before anything else.
    assert_eq!(zeros(&m, "b.w"), 34);
    assert_eq!(zeros(&m, "dw.w"), 0);
    assert_eq!(r.passes[0].stats["sparsity-permille"], 250);
}

#[test]
fn zero_sparsity_changes_nothing_and_the_pass_is_idempotent() {
    let mut m = model();
    let before = print_module(&m, &PrintOptions::default());
    run(&mut m, "sparsify{sparsity=0.0}").unwrap();
    assert_eq!(print_module(&m, &PrintOptions::default()), before);
    run(&mut m, "sparsify{sparsity=0.6}").unwrap();
    let once = print_module(&m, &PrintOptions::default());
    let r = run(&mut m, "sparsify{sparsity=0.6}").unwrap();
    assert_eq!(print_module(&m, &PrintOptions::default()), once);
    assert_eq!(r.passes[0].stats["zeros-before"], r.passes[0].stats["zeros-after"]);
}

#[test]
fn min_size_and_layers_filter_the_weights() {
    let mut m = model();
    run(&mut m, "sparsify{sparsity=0.5,min-size=10}").unwrap();
    assert_eq!(zeros(&m, "dw.w"), 0);
    assert_eq!(zeros(&m, "a.w"), 18);
    let mut m = model();
    run(&mut m, "sparsify{sparsity=0.5,layers=\"b, fc*\"}").unwrap();
    assert_eq!((zeros(&m, "a.w"), zeros(&m, "b.w"), zeros(&m, "fc.w")), (0, 36, 12));
    let w = clio_passes::sparsify::weight_zeros(&m);
    assert_eq!(
        w.iter().map(|z| (z.node.as_str(), z.zeros, z.elements)).collect::<Vec<_>>(),
        vec![("a", 0, 36), ("dw", 0, 4), ("b", 36, 72), ("fc", 12, 24)]
    );
}

#[test]
fn sparsity_is_required_and_bounded() {
    for (p, needle) in
        [("sparsify", "required"), ("sparsify{sparsity=2}", "[0, 1]"), ("sparsify{sparsity=0.5,scope=x}", "scope")]
    {
        let e = match PassManager::from_pipeline(&clio_passes::registry(), p) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{p} accepted"),
        };
        assert!(e.contains(needle), "{p}: {e}");
    }
}
