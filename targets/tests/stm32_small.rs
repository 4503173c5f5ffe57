//! STM32 backend on small hand-written graphs: every op family the backend lowers (conv,
//! depthwise with a channel multiplier, stride and dilation, fused and standalone ReLU/ReLU6,
//! residual add, max/avg pooling, global average pooling, channel concat, flatten of a spatial
//! tensor into a fully connected layer, softmax) runs bit-exactly in C against the integer
//! interpreter; the golden C of a small model; and the errors for graphs it cannot lower.

mod stm32_common;

use clio::quant::math::SplitMix64;
use clio::text::{parse_module, ParseOptions};
use clio::Module;
use clio_targets::stm32::{lower, LowerError, Stm32Options};
use stm32_common::{check_bit_exact, run_pipeline};

fn dense(n: usize, seed: u64, scale: f64) -> String {
    let mut r = SplitMix64::new(seed);
    let v: Vec<String> = (0..n).map(|_| format!("{:.4}", (r.uniform() * 2.0 - 1.0) * scale)).collect();
    format!("dense<[{}]>", v.join(", "))
}

fn small_cnn() -> Module {
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/ir/quantize_int8_cnn.clio")).unwrap();
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    // Everything on the device: cut at the softmax (the cloud part only dequantizes).
    run_pipeline(&mut m, "quantize{scheme=int8,calib=random:1,samples=4},partition{cut=sm,granularity=layer}");
    m
}

/// Concat, a standalone relu (after concat: not fusable), depthwise with ch_mult 2, stride 2 and
/// dilation 2, flatten of a 2x2 map into gemm (columns permuted at compile time), softmax.
fn concat_flatten() -> Module {
    let src = format!(
        "module @cat {{
  weight @a.w : tensor<4x3x3x3xf32> = {}
  weight @a.b : tensor<4xf32> = {}
  weight @b.w : tensor<4x3x1x1xf32> = {}
  weight @dw.w : tensor<16x1x3x3xf32> = {}
  weight @dw.b : tensor<16xf32> = {}
  weight @fc.w : tensor<5x64xf32> = {}
  weight @fc.b : tensor<5xf32> = {}
  graph @main(%x: tensor<1x3x6x6xf32>) -> (tensor<1x5xf32>) {{
    %a = conv2d(%x, @a.w, @a.b) {{strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 1}} : tensor<1x4x6x6xf32>
    %b = conv2d(%x, @b.w) {{strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], groups = 1}} : tensor<1x4x6x6xf32>
    %cat = concat(%a, %b) {{axis = 1}} : tensor<1x8x6x6xf32>
    %r = clip(%cat) {{min = 0.0, max = 6.0}} : tensor<1x8x6x6xf32>
    %dw = conv2d(%r, @dw.w, @dw.b) {{strides = [2, 2], pads = [1, 1, 1, 1], dilations = [2, 2], groups = 8}} : tensor<1x16x2x2xf32>
    %fl = flatten(%dw) {{axis = 1}} : tensor<1x64xf32>
    %fc = gemm(%fl, @fc.w, @fc.b) {{alpha = 1.0, beta = 1.0, trans_a = false, trans_b = true}} : tensor<1x5xf32>
    %sm = softmax(%fc) {{axis = 1}} : tensor<1x5xf32>
    return %sm
  }}
}}",
        dense(108, 1, 0.5),
        dense(4, 2, 0.2),
        dense(12, 3, 0.8),
        dense(144, 4, 0.6),
        dense(16, 5, 0.2),
        dense(320, 6, 0.3),
        dense(5, 7, 0.1),
    );
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    run_pipeline(&mut m, "quantize{scheme=int8,calib=random:2,samples=4},partition{cut=sm,granularity=layer}");
    m
}

#[test]
fn small_cnn_bit_exact() {
    let c = check_bit_exact(&small_cnn(), "small_cnn", 8);
    let fns: Vec<&str> = c.report.layers.iter().map(|l| l.function.as_str()).collect();
    for f in [
        "arm_convolve_wrapper_s8",
        "arm_depthwise_conv_wrapper_s8",
        "arm_elementwise_add_s8",
        "arm_max_pool_s8",
        "arm_avgpool_s8",
        "clio_mean_s8",
        "arm_fully_connected_s8",
        "arm_softmax_s8",
    ] {
        assert!(fns.contains(&f), "{f} not used: {fns:?}");
    }
}

#[test]
fn concat_flatten_bit_exact() {
    let m = concat_flatten();
    let c = check_bit_exact(&m, "concat_flatten", 8);
    let fns: Vec<&str> = c.report.layers.iter().map(|l| l.function.as_str()).collect();
    assert!(fns.contains(&"arm_concatenation_s8_z") && fns.contains(&"clio_clamp_s8"), "{fns:?}");
    assert!(c.source.contains(".ch_mult = 2"), "depthwise multiplier");
    assert!(c.source.contains(".dilation = {.w = 2, .h = 2}"));
}

#[test]
fn golden_small_cnn_c() {
    let c = lower(&small_cnn(), &Stm32Options { prefix: "small_cnn".into(), ..Default::default() }).unwrap();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::assert_snapshot!("stm32_small_cnn.h", c.header);
        insta::assert_snapshot!("stm32_small_cnn.c", c.source);
    });
}

#[test]
fn generated_code_has_no_malloc_float_or_vla() {
    for m in [small_cnn(), concat_flatten()] {
        let c = lower(&m, &Stm32Options::default()).unwrap();
        for text in [&c.header, &c.source] {
            // Comments may print real scales; code may not use float types.
            let code: String = strip_comments(text);
            for bad in ["malloc", "calloc", "realloc", "free(", "float", "double", "alloca"] {
                assert!(!code.contains(bad), "generated code contains `{bad}`");
            }
        }
    }
}

fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = match rest[i..].find("*/") {
            Some(j) => &rest[i + j + 2..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

#[test]
fn errors_name_node_and_op() {
    // A float device graph (not quantized).
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/ir/quantize_int8_cnn.clio")).unwrap();
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    run_pipeline(&mut m, "partition{cut=c1,granularity=layer}");
    let e = lower(&m, &Stm32Options::default()).unwrap_err();
    assert!(matches!(e, LowerError::Invalid { .. } | LowerError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("%c1 (conv2d)") && e.to_string().contains("quantize"), "{e}");
    // An op with no CMSIS-NN kernel, kept in float by the quantize pass.
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    run_pipeline(
        &mut m,
        "quantize{scheme=int8,calib=random:1,samples=2,float-ops=avg_pool},partition{cut=sm,granularity=layer}",
    );
    let e = lower(&m, &Stm32Options::default()).unwrap_err().to_string();
    assert!(e.contains("(dequantize)") && e.contains("unsupported"), "{e}");
    // q8 graphs are not int8.
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    run_pipeline(
        &mut m,
        "quantize{scheme=q8,calib=random:1,samples=2,float-ops=softmax},partition{cut=c1,granularity=layer}",
    );
    let e = lower(&m, &Stm32Options::default()).unwrap_err().to_string();
    assert!(e.contains("affine"), "{e}");
    // Missing graph, bad prefix.
    let e = lower(&m, &Stm32Options { graph: "nope".into(), ..Default::default() }).unwrap_err();
    assert_eq!(e, LowerError::NoGraph("nope".into()));
    let e = lower(&m, &Stm32Options { prefix: "1x".into(), ..Default::default() }).unwrap_err();
    assert!(matches!(e, LowerError::Options(_)), "{e}");
}

/// The bit-exact comparison is not vacuous: a one-character change to the generated code is
/// caught.
#[test]
fn a_corrupted_module_is_caught() {
    let m = small_cnn();
    let mut c = lower(&m, &Stm32Options::default()).unwrap();
    c.source = c.source.replacen(".input_offset = ", ".input_offset = 3 + ", 1);
    let xs = stm32_common::inputs(&m, 4, 1);
    let dir = stm32_common::scratch_dir("corrupted");
    let ins: Vec<Vec<i8>> = xs.iter().map(|x| stm32_common::input_nhwc(&m, x)).collect();
    let got = stm32_common::compile_and_run(&c, &dir, &ins);
    assert!(xs.iter().zip(&got).any(|(x, g)| &stm32_common::expected_message(&m, x) != g));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The generated `truncate` keeps a channel prefix exactly as the wire module's
/// `truncate_channels` does, and refuses 0 or too many channels.
#[test]
fn generated_truncate_matches_the_wire_format() {
    let m = small_cnn_cut_at_add();
    let c = lower(&m, &Stm32Options::default()).unwrap();
    let dir = stm32_common::scratch_dir("truncate");
    let x = stm32_common::inputs(&m, 1, 5).remove(0);
    let input = stm32_common::input_nhwc(&m, &x);
    let full = stm32_common::compile_and_run(&c, &dir, std::slice::from_ref(&input)).remove(0);
    let main = r#"#include <stdio.h>
#include "clio_device.h"
static int8_t in[CLIO_DEVICE_INPUT_BYTES];
static uint8_t out[CLIO_DEVICE_OUTPUT_BYTES];
int main(void)
{
    FILE *fi = fopen("in.bin", "rb");
    if (!fi || fread(in, 1, sizeof in, fi) != sizeof in) return 10;
    if (clio_device_invoke(in, out) != 0) return 11;
    if (clio_device_truncate(out, 0) != 0 || clio_device_truncate(out, CLIO_DEVICE_OUTPUT_CHANNELS + 1) != 0) return 12;
    uint32_t n = clio_device_truncate(out, 3);
    fwrite(out, 1, n, stdout);
    return 0;
}
"#;
    std::fs::write(dir.join("main.c"), main).unwrap();
    let cc = std::process::Command::new("cc")
        .current_dir(&dir)
        .args(["-std=c99", "-Wall", "-Werror", "-I.", "clio_device.c", "arm_nn_host.c", "main.c", "-o", "trunc"])
        .output()
        .unwrap();
    assert!(cc.status.success(), "{}", String::from_utf8_lossy(&cc.stderr));
    let run = std::process::Command::new(dir.join("trunc")).current_dir(&dir).output().unwrap();
    assert!(run.status.success());
    let want = clio::quant::wire::truncate_channels(&full, 3, &clio::Limits::default()).unwrap();
    assert_eq!(run.stdout, want);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The small CNN cut at its residual add (a spatial 1x4x8x8 cut tensor).
fn small_cnn_cut_at_add() -> Module {
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/ir/quantize_int8_cnn.clio")).unwrap();
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    run_pipeline(&mut m, "quantize{scheme=int8,calib=random:1,samples=4},partition{cut=add,granularity=layer}");
    m
}
