//! GAP8 backend: average pooling, global average pooling (Q formats) and channel concatenation
//! on clio's own cluster kernels, bit-exact in C against the integer interpreter: a small
//! calibrated q8 net using every new op, global average pools quantized by hand to cover both
//! directions of the format change (and saturation), and the typed errors of what stays
//! unsupported (other concat axes, mixed formats, softmax).

mod gap8_common;

use clio::quant::math::SplitMix64;
use clio::text::{parse_module, ParseOptions};
use clio::Module;
use clio_targets::gap8::{lower, Gap8Error, Gap8Options};
use gap8_common::{check_bit_exact, functions, run_pipeline};

fn dense(n: usize, seed: u64, scale: f64) -> String {
    let mut r = SplitMix64::new(seed);
    let v: Vec<String> = (0..n).map(|_| format!("{:.4}", (r.uniform() * 2.0 - 1.0) * scale)).collect();
    format!("dense<[{}]>", v.join(", "))
}

/// conv -> padded avg_pool (signed values) -> 1x1 conv + ReLU -> concat of both along channels
/// -> ceil-mode avg_pool with partial windows -> two global average pools -> flattened and
/// concatenated (rank 2) -> fully connected.
fn pool_concat_net() -> Module {
    let src = format!(
        "module @pc {{
  weight @c.w : tensor<6x3x3x3xf32> = {}
  weight @c.b : tensor<6xf32> = {}
  weight @pw.w : tensor<4x6x1x1xf32> = {}
  weight @fc.w : tensor<5x20xf32> = {}
  weight @fc.b : tensor<5xf32> = {}
  graph @main(%x: tensor<1x3x12x12xf32>) -> (tensor<1x5xf32>) {{
    %c = conv2d(%x, @c.w, @c.b) {{strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 1}} : tensor<1x6x12x12xf32>
    %ap = avg_pool(%c) {{kernel = [3, 3], strides = [2, 2], pads = [1, 1, 1, 1], ceil_mode = false, count_include_pad = false}} : tensor<1x6x6x6xf32>
    %pw = conv2d(%ap, @pw.w) {{strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], groups = 1}} : tensor<1x4x6x6xf32>
    %r = relu(%pw) : tensor<1x4x6x6xf32>
    %cat = concat(%ap, %r) {{axis = 1}} : tensor<1x10x6x6xf32>
    %ap2 = avg_pool(%cat) {{kernel = [4, 4], strides = [4, 4], pads = [0, 0, 0, 0], ceil_mode = true, count_include_pad = false}} : tensor<1x10x2x2xf32>
    %g1 = global_avg_pool(%ap2) : tensor<1x10x1x1xf32>
    %g2 = global_avg_pool(%cat) : tensor<1x10x1x1xf32>
    %f1 = flatten(%g1) {{axis = 1}} : tensor<1x10xf32>
    %f2 = flatten(%g2) {{axis = 1}} : tensor<1x10xf32>
    %cat2 = concat(%f1, %f2) {{axis = 1}} : tensor<1x20xf32>
    %fc = gemm(%cat2, @fc.w, @fc.b) {{alpha = 1.0, beta = 1.0, trans_a = false, trans_b = true}} : tensor<1x5xf32>
    return %fc
  }}
}}",
        dense(162, 21, 0.5),
        dense(6, 22, 0.3),
        dense(24, 23, 0.7),
        dense(100, 24, 0.5),
        dense(5, 25, 0.1),
    );
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    run_pipeline(&mut m, "quantize{scheme=q8,calib=random:4,samples=4},partition{cut=fc,granularity=layer}");
    m
}

#[test]
fn avg_pool_global_avg_pool_and_concat_bit_exact() {
    let c = check_bit_exact(&pool_concat_net(), "pool_concat", 6);
    let f = functions(&c);
    for want in ["ClioKerParAvgPool_fps", "ClioKerParGlobalAvgPool_fps"] {
        assert!(f.iter().any(|u| u == want), "{want} not used: {f:?}");
    }
    // The concats are copies through L1 by the cluster DMA; every pool works on L1 tiles.
    assert_eq!(f.iter().filter(|u| *u == "pi_cl_dma_cmd").count(), 2, "{f:?}");
    for l in c.report.layers.iter().filter(|l| l.op != "conv2d") {
        assert!(l.l1_bytes > 0 && l.dma_in_bytes > 0 && l.dma_out_bytes > 0, "%{}: {}", l.node, l.reason);
    }
    assert_eq!(f.iter().filter(|u| *u == "ClioKerParGlobalAvgPool_fps").count(), 2, "{f:?}");
    let gap = c.report.layers.iter().find(|l| l.node == "g2").unwrap();
    assert!(gap.reason.contains("36 cells") && gap.reason.contains("64 bits"), "{}", gap.reason);
}

/// A hand-quantized Q5 input averaged into Q`fy` by `global_avg_pool` after a padded average
/// pool, with the result formats chosen so that the mean's left shift, its divisor's shift and
/// 8-bit saturation are all exercised.
fn hand_quantized_mean(fy: i32) -> Module {
    let src = format!(
        "module @gq {{
  graph @device(%x: tensor<1x4x9x7xf32>) -> (tensor<1x4x1x1xi8, pow2<{fy}>>) {{
    %q = quantize(%x) : tensor<1x4x9x7xi8, pow2<5>>
    %ap = avg_pool(%q) {{kernel = [2, 3], strides = [1, 2], pads = [1, 1, 0, 1], ceil_mode = false, count_include_pad = false}} : tensor<1x4x9x4xi8, pow2<5>>
    %g = global_avg_pool(%ap) : tensor<1x4x1x1xi8, pow2<{fy}>>
    return %g
  }}
}}"
    );
    parse_module(&src, &ParseOptions::default()).unwrap()
}

#[test]
fn hand_quantized_global_avg_pool_both_directions_bit_exact() {
    // Q5 -> Q1 (divisor 36 << 4), Q5 (same), Q8 (left 3), Q12 (left 7: saturates).
    for fy in [1, 5, 8, 12] {
        let c = check_bit_exact(&hand_quantized_mean(fy), &format!("gap_q{fy}"), 8);
        assert_eq!(functions(&c), ["ClioKerParAvgPool_fps", "ClioKerParGlobalAvgPool_fps"]);
        let (left, div) = clio::interp::int::pow2_mean_params(5, fy, 36).unwrap();
        assert!(c.source.contains(&format!(".Left = {left}, .Divisor = {div}")), "{}", c.source);
    }
}

#[test]
fn unsupported_pool_and_concat_forms_are_typed_errors() {
    // Concatenation along the width axis.
    let src = "module @e {
  graph @device(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x4x8xi8, pow2<5>>) {
    %q = quantize(%x) : tensor<1x2x4x4xi8, pow2<5>>
    %cw = concat(%q, %q) {axis = 3} : tensor<1x2x4x8xi8, pow2<5>>
    return %cw } }";
    let m = parse_module(src, &ParseOptions::default()).unwrap();
    let e = lower(&m, &Gap8Options::default()).unwrap_err();
    assert!(matches!(e, Gap8Error::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("%cw (concat)") && e.to_string().contains("axis 3"), "{e}");
    // Operands in different formats (the interpreter requires the result's format).
    let src = "module @e {
  graph @device(%x: tensor<1x2x4x4xf32>) -> (tensor<1x4x4x4xi8, pow2<5>>) {
    %q = quantize(%x) : tensor<1x2x4x4xi8, pow2<5>>
    %m = max_pool(%q) {kernel = [1, 1], strides = [1, 1], pads = [0, 0, 0, 0], ceil_mode = false} : tensor<1x2x4x4xi8, pow2<5>>
    %a = add(%q, %m) : tensor<1x2x4x4xi8, pow2<4>>
    %cc = concat(%q, %a) {axis = 1} : tensor<1x4x4x4xi8, pow2<5>>
    return %cc } }";
    let m = parse_module(src, &ParseOptions::default()).unwrap();
    let e = lower(&m, &Gap8Options::default()).unwrap_err();
    assert!(matches!(e, Gap8Error::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("%cc (concat)") && e.to_string().contains("quantization"), "{e}");
    // Softmax has no Q-format integer definition to be bit-exact with.
    let src = "module @e {
  graph @device(%x: tensor<1x4xf32>) -> (tensor<1x4xi8, pow2<7>>) {
    %q = quantize(%x) : tensor<1x4xi8, pow2<5>>
    %sm = softmax(%q) {axis = 1} : tensor<1x4xi8, pow2<7>>
    return %sm } }";
    let m = parse_module(src, &ParseOptions::default()).unwrap();
    let e = lower(&m, &Gap8Options::default()).unwrap_err();
    assert!(matches!(e, Gap8Error::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("%sm (softmax)") && e.to_string().contains("affine int8 only"), "{e}");
}
