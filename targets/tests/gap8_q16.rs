//! GAP8 backend, q16 (16-bit Q format) device graphs: the cluster cores with 16-bit data
//! (clio's `_fp` kernels: int16 activations, weights and biases, int32 accumulation, one
//! rounding, 16-bit saturation), and the HWCE for dense 3x3/5x5/7x7 layers whose exact
//! input-digit x weight-digit split the cost model rates faster than the cores; the generated
//! C compiled with `cc` against the shims and run, bit-exact (byte for byte on the int16 wire
//! message) with the integer interpreter.

mod gap8_common;

use clio::models::{mobilenet_v2, MobileNetV2Config, Variant};
use clio::quant::math::SplitMix64;
use clio::text::{parse_module, ParseOptions};
use clio::Module;
use clio_targets::gap8::Gap8Module;
use gap8_common::{check_bit_exact, functions, run_pipeline, summary};

/// Every convolution runs with the q16 kernels (on the cluster, or on the HWCE in two input
/// digits), and its reason says so; the manifest names the scheme; the wire message carries
/// int16.
fn check_q16_report(c: &Gap8Module) {
    let r = &c.report;
    assert_eq!(r.scheme, "q16");
    for l in r.layers.iter().filter(|l| l.unit == "hwce") {
        assert!(l.reason.contains("q16 on the HWCE: 2 balanced 8-bit input digits"), "%{}: {}", l.node, l.reason);
        assert!(l.hwce_passes >= 2 && l.hwce_passes % 2 == 0, "%{}: {}", l.node, l.hwce_passes);
    }
    for l in r.layers.iter().filter(|l| l.unit != "hwce") {
        assert_eq!(l.hwce_passes, 0);
        assert!(l.function.ends_with("_fp") && !l.function.ends_with("_fps"), "%{}: {}", l.node, l.function);
        if l.op == "conv2d" || l.op == "gemm" {
            assert!(l.reason.starts_with("cluster (ClioKerParConvAcc32_fp)"), "%{}: {}", l.node, l.reason);
            if l.op == "conv2d" {
                assert!(l.reason.contains("q16"), "%{}: {}", l.node, l.reason);
            }
        }
    }
    assert!(c.manifest_json().contains("\"scheme\": \"q16\""));
    assert!(!c.source.contains("_fps("), "q8 kernels in q16 code");
    assert!(c.source.contains("static const int16_t clio_device_w"), "weights are not int16");
    assert!(c.header.contains("const int16_t *input"), "{}", c.header);
}

#[test]
fn mobilenet_v2_w035_q16_bit_exact_at_cuts_3_and_8() {
    let cfg = MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
    let m = mobilenet_v2(&cfg).unwrap();
    let mut reasons = vec![];
    for cut in ["3", "8"] {
        let mut d = m.clone();
        // Per-channel weight formats (the quantize pass's default): the q16 path takes them.
        run_pipeline(
            &mut d,
            &format!("fuse-bn,quantize{{scheme=q16,calib=random:1,samples=2}},partition{{cut={cut}}}"),
        );
        let c = check_bit_exact(&d, &format!("q16_mnv2_w035_cut{cut}"), 2);
        check_q16_report(&c);
        let r = &c.report;
        assert!(r.l1_bytes <= 64 * 1024 && r.l2_bytes <= 512 * 1024);
        eprintln!("q16 cut {cut}: {}", summary(&c));
        reasons.extend(r.layers.iter().map(|l| l.reason.clone()));
    }
    // The stem is a dense 3x3 stride-1 conv: its 13-bit weights split into 3 digits of 5 bits,
    // 6 passes with the 2 input digits, which the cost model rates just faster than the cores.
    assert!(
        reasons
            .iter()
            .any(|r| r
                .contains("q16 on the HWCE: 2 balanced 8-bit input digits x 3 weight digit(s) of 5 bits = 6 passes")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("double-buffered input planes")), "no streamed dense layer");
    assert!(reasons.iter().any(|r| r.contains("double-buffered input chunks")), "no streamed depthwise layer");
}

fn dense(n: usize, seed: u64, scale: f64) -> String {
    let mut r = SplitMix64::new(seed);
    let v: Vec<String> = (0..n).map(|_| format!("{:.4}", (r.uniform() * 2.0 - 1.0) * scale)).collect();
    format!("dense<[{}]>", v.join(", "))
}

/// A 5x5 conv (+ ReLU), max pool, a 3x3 conv, a residual add, a 1x1 conv, global average pool
/// and a fully connected layer, quantized q16.
fn small_q16() -> Module {
    let src = format!(
        "module @q16 {{
  weight @c5.w : tensor<6x3x5x5xf32> = {}
  weight @c5.b : tensor<6xf32> = {}
  weight @c3.w : tensor<6x6x3x3xf32> = {}
  weight @c3.b : tensor<6xf32> = {}
  weight @pw.w : tensor<8x6x1x1xf32> = {}
  weight @fc.w : tensor<5x8xf32> = {}
  weight @fc.b : tensor<5xf32> = {}
  graph @main(%x: tensor<1x3x20x20xf32>) -> (tensor<1x5xf32>) {{
    %c5 = conv2d(%x, @c5.w, @c5.b) {{strides = [1, 1], pads = [2, 2, 2, 2], dilations = [1, 1], groups = 1}} : tensor<1x6x20x20xf32>
    %r5 = relu(%c5) : tensor<1x6x20x20xf32>
    %mp = max_pool(%r5) {{kernel = [2, 2], strides = [2, 2], pads = [0, 0, 0, 0], ceil_mode = false}} : tensor<1x6x10x10xf32>
    %c3 = conv2d(%mp, @c3.w, @c3.b) {{strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 1}} : tensor<1x6x10x10xf32>
    %add = add(%c3, %mp) : tensor<1x6x10x10xf32>
    %pw = conv2d(%add, @pw.w) {{strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], groups = 1}} : tensor<1x8x10x10xf32>
    %gp = global_avg_pool(%pw) : tensor<1x8x1x1xf32>
    %fl = flatten(%gp) {{axis = 1}} : tensor<1x8xf32>
    %fc = gemm(%fl, @fc.w, @fc.b) {{alpha = 1.0, beta = 1.0, trans_a = false, trans_b = true}} : tensor<1x5xf32>
    return %fc
  }}
}}",
        dense(450, 21, 0.4),
        dense(6, 22, 0.2),
        dense(324, 23, 0.3),
        dense(6, 24, 0.2),
        dense(48, 25, 0.8),
        dense(40, 26, 0.5),
        dense(5, 27, 0.1),
    );
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    run_pipeline(&mut m, "quantize{scheme=q16,calib=random:1,samples=2},partition{cut=fc,granularity=layer}");
    m
}

#[test]
fn small_net_q16_bit_exact() {
    let m = small_q16();
    let c = check_bit_exact(&m, "q16_small", 6);
    check_q16_report(&c);
    let f = functions(&c);
    for want in ["ClioKerParConvAcc32_fp", "ClioKerParMaxPool_fp", "ClioKerParAdd_fp", "ClioKerParGlobalAvgPool_fp"] {
        assert!(f.iter().any(|u| u == want), "{want} not used: {f:?}");
    }
    // Both KxK convs are HWCE shapes; each goes where the cost model rates it faster, and its
    // reason gives the passes and both rates either way.
    for node in ["c5", "c3"] {
        let l = c.report.layers.iter().find(|l| l.node == node).expect(node);
        assert!(l.reason.contains("passes") && l.reason.contains("cycles per MAC"), "%{node}: {}", l.reason);
    }
    // The cut tensor goes on the wire as int16: 5 values, 10 payload bytes after the header.
    assert!(c.header.contains("int16 Q") && c.header.contains("little endian"), "{}", c.header);
}

/// Hand-quantized q16 layers whose results saturate: a 1x1 conv whose results exceed the
/// int16 range after the shift (Q12 inputs up to 3, weights up to 117 in Q8, result Q10), an
/// add into Q12 that saturates again, and a standalone ReLU, so that the 16-bit saturation of
/// the reduction and of the add show in the output.
#[test]
fn hand_quantized_q16_saturation_bit_exact() {
    let src = "module @sat {
  weight @pw.w : tensor<2x2x1x1xi16, pow2<8>> = dense<[30000, 20000, -30000, 100]>
  weight @pw.b : tensor<2xi16, pow2<8>> = dense<[1000, -1000]>
  graph @device(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x4x4xi16, pow2<12>>) {
    %q = quantize(%x) : tensor<1x2x4x4xi16, pow2<12>>
    %pw = conv2d(%q, @pw.w, @pw.b) {strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], groups = 1} : tensor<1x2x4x4xi16, pow2<10>>
    %add = add(%pw, %q) : tensor<1x2x4x4xi16, pow2<12>>
    %r = relu(%add) : tensor<1x2x4x4xi16, pow2<12>>
    return %r
  }
}";
    let m = parse_module(src, &ParseOptions::default()).unwrap();
    let c = check_bit_exact(&m, "q16_sat", 8);
    assert_eq!(functions(&c), ["ClioKerParConvAcc32_fp", "ClioKerParAdd_fp", "ClioKerParClamp_fp"]);
}

/// `n` seeded integers in `[-max, max]`, as IR dense-literal text.
fn ints(n: usize, max: i64, seed: u64) -> String {
    let mut r = SplitMix64::new(seed);
    let v: Vec<String> = (0..n).map(|_| ((r.next_u64() % (2 * max as u64 + 1)) as i64 - max).to_string()).collect();
    v.join(", ")
}

/// q16 layers on the HWCE: a hand-quantized 3x3 conv with 8-bit-wide weights (two balanced
/// input digits x two 4-bit weight digits = 4 passes, faster than the cores at 16 bits), a
/// 5x5 with 7-bit-wide weights over its ReLU, and a 3x3 with full 16-bit weights that stays on
/// the cores because its exact split would need many more passes. Full-range int16 inputs
/// exercise both input digits, including the high digit's +128.
#[test]
fn q16_convs_with_narrow_weights_run_on_the_hwce_bit_exact() {
    let src = format!(
        "module @q16h {{
  weight @a.w : tensor<4x2x3x3xi16, pow2<8>> = dense<[{}]>
  weight @a.b : tensor<4xi16, pow2<8>> = dense<[{}]>
  weight @b.w : tensor<3x4x5x5xi16, pow2<9>> = dense<[{}]>
  weight @c.w : tensor<2x3x3x3xi16, pow2<14>> = dense<[{}]>
  graph @device(%x: tensor<1x2x12x40xf32>) -> (tensor<1x2x12x40xi16, pow2<9>>) {{
    %q = quantize(%x) : tensor<1x2x12x40xi16, pow2<14>>
    %a = conv2d(%q, @a.w, @a.b) {{strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 1}} : tensor<1x4x12x40xi16, pow2<12>>
    %r = relu(%a) : tensor<1x4x12x40xi16, pow2<12>>
    %b = conv2d(%r, @b.w) {{strides = [1, 1], pads = [2, 2, 2, 2], dilations = [1, 1], groups = 1}} : tensor<1x3x12x40xi16, pow2<11>>
    %c = conv2d(%b, @c.w) {{strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 1}} : tensor<1x2x12x40xi16, pow2<9>>
    return %c
  }}
}}",
        ints(72, 120, 1),
        ints(4, 3000, 2),
        ints(300, 60, 3),
        ints(54, 30000, 4),
    );
    let m = parse_module(&src, &ParseOptions::default()).unwrap();
    let c = check_bit_exact(&m, "q16_hwce", 6);
    let layer = |node: &str| c.report.layers.iter().find(|l| l.node == node).unwrap();
    let a = layer("a");
    assert_eq!((a.unit.as_str(), a.hwce_passes), ("hwce", 4), "{}", a.reason);
    assert!(
        a.reason.contains("q16 on the HWCE: 2 balanced 8-bit input digits x 2 weight digit(s) of 4 bits = 4 passes"),
        "{}",
        a.reason
    );
    assert_eq!(layer("b").unit, "hwce", "{}", layer("b").reason);
    let wide = layer("c");
    assert_eq!(wide.unit, "cluster", "{}", wide.reason);
    assert!(
        wide.reason.contains("not the HWCE") && wide.reason.contains("its weights need 16 bits"),
        "{}",
        wide.reason
    );
    assert!(c.source.contains("ClioKerParStripe16D(&st);") && c.source.contains("ClioKerParReduct_fp(&rd);"));
    assert!(!c.source.contains("_fps("), "q8 kernels in q16 code");
}

/// `ClioKerParStripe16D` on every int16 value: digit 0 is in [-128, 127], digit 1 in
/// [-128, 128] (the bounds the q16 HWCE overflow proof assumes for both input digits), and
/// 256 * digit1 + digit0 gives the value back; cells outside the band are 0 in both digits.
#[test]
fn q16_input_digits_are_balanced_for_every_int16() {
    let dir = gap8_common::scratch_dir("q16_digits");
    clio_targets::gap8::write_shims(&dir).unwrap();
    let main = r#"#include <stdio.h>
#include "clio_gap8_kernels.h"
static int16_t band[256 * 256], lo[258 * 256], hi[258 * 256];
int main(void)
{
    for (int i = 0; i < 256 * 256; i++) band[i] = (int16_t)(i - 32768);
    /* The band as 256 rows of 256, one padded row above and one column on the left: the
     * stripe is 258 rows x 256 columns from padded column 0. */
    ClioStripe16D_T a = {.In = band, .Out = lo, .W = 256, .Hr = 256, .X0 = 0, .Sw = 256, .Hb = 258, .PadT = 1, .PadL = 1, .Digit = 0};
    ClioKerParStripe16D(&a);
    a.Out = hi;
    a.Digit = 1;
    ClioKerParStripe16D(&a);
    for (int y = 0; y < 258; y++)
        for (int x = 0; x < 256; x++) {
            int iy = y - 1, ix = x - 1, l = lo[y * 256 + x], h = hi[y * 256 + x];
            int v = (iy >= 0 && iy < 256 && ix >= 0) ? band[iy * 256 + ix] : 0;
            if (l < -128 || l > 127 || h < -128 || h > 128 || 256 * h + l != v) {
                printf("cell (%d, %d): value %d gave digits %d, %d\n", y, x, v, h, l);
                return 1;
            }
        }
    return 0;
}
"#;
    std::fs::write(dir.join("main.c"), main).unwrap();
    let out = std::process::Command::new("cc")
        .current_dir(&dir)
        .args([
            "-std=gnu99",
            "-O1",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I.",
            "main.c",
            "clio_gap8_kernels.c",
            "gap8_host.c",
            "-o",
            "run",
        ])
        .output()
        .expect("running cc");
    assert!(out.status.success(), "cc failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let run = std::process::Command::new(dir.join("run")).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}
