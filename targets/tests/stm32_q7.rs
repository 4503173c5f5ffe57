//! STM32 backend, legacy CMSIS_5 q7 API (`CmsisApi::LegacyQ7`): q8 (power-of-two) device
//! graphs lowered to arm_convolve_HWC_q7_{basic,fast,RGB}, arm_depthwise_separable_conv_HWC_q7,
//! arm_fully_connected_q7, arm_relu_q7 and arm_maxpool_q7_HWC, compiled with `cc` against the
//! q7 shims and run: bit-exact with the integer interpreter's Q-format arithmetic.

mod stm32_common;

use clio::models::{mobilenet_v2, resnet18, vgg16_bn, MobileNetV2Config, ResNetConfig, Variant, VggConfig};
use clio::text::{parse_module, ParseOptions};
use clio::Module;
use clio_targets::stm32::{lower, CmsisApi, Stm32Options};
use stm32_common::{check_bit_exact_with, run_pipeline};

fn q7() -> Stm32Options {
    Stm32Options { api: CmsisApi::LegacyQ7, ..Default::default() }
}

fn q8_device(mut m: Module, cut: &str, seed: u64) -> Module {
    run_pipeline(
        &mut m,
        &format!(
            "fuse-bn,quantize{{scheme=q8,weights=per-tensor,calib=random:{seed},samples=3}},partition{{cut={cut}}}"
        ),
    );
    m
}

fn functions(c: &clio_targets::stm32::CModule) -> Vec<String> {
    c.report.layers.iter().map(|l| l.function.clone()).collect()
}

#[test]
fn mobilenet_v2_q7_bit_exact() {
    let mut used = vec![];
    for width in [0.35, 0.5] {
        let cfg = MobileNetV2Config { width, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
        let m = mobilenet_v2(&cfg).unwrap();
        for cut in ["3", "6"] {
            let name = format!("q7_mobilenet_v2_w{width}_cut{cut}");
            let c = check_bit_exact_with(&q8_device(m.clone(), cut, 5), &name, 3, &q7());
            used.extend(functions(&c));
        }
    }
    for f in ["arm_convolve_HWC_q7_RGB", "arm_depthwise_separable_conv_HWC_q7", "clio_clamp_s8", "clio_add_q7"] {
        assert!(used.iter().any(|u| u == f), "{f} not used: {used:?}");
    }
}

#[test]
fn resnet_and_vgg_q7_bit_exact() {
    let mut used = vec![];
    let cfg = ResNetConfig { width: 0.25, input: 32, classes: 10, seed: 4, variant: Variant::Cifar };
    let m = resnet18(&cfg).unwrap();
    for cut in ["3", "6"] {
        let c = check_bit_exact_with(&q8_device(m.clone(), cut, 6), &format!("q7_resnet18_cut{cut}"), 3, &q7());
        used.extend(functions(&c));
    }
    let cfg = VggConfig { width: 0.25, input: 32, classes: 10, seed: 5, variant: Variant::Cifar };
    let m = vgg16_bn(&cfg).unwrap();
    for cut in ["5", "9"] {
        let c = check_bit_exact_with(&q8_device(m.clone(), cut, 7), &format!("q7_vgg16_cut{cut}"), 3, &q7());
        used.extend(functions(&c));
    }
    for f in ["arm_convolve_HWC_q7_fast", "arm_relu_q7", "arm_maxpool_q7_HWC", "clio_add_q7"] {
        assert!(used.iter().any(|u| u == f), "{f} not used: {used:?}");
    }
}

#[test]
fn small_cnn_q7_with_fully_connected() {
    // conv (RGB), depthwise, 1x1 conv, add, max pool, then a classifier on the flattened map.
    let src = "module @q7 {
  weight @c1.w : tensor<4x3x3x3xf32> = dense<[0.1, -0.2, 0.3, 0.05, -0.1, 0.2, 0.0, 0.15, -0.25, 0.3, 0.1, -0.05, 0.2, -0.3, 0.1, 0.05, 0.0, -0.1, 0.25, 0.1, -0.2, 0.05, 0.3, -0.15, 0.1, 0.2, -0.1, 0.0, -0.3, 0.2, 0.1, 0.15, 0.05, -0.2, 0.25, -0.05, 0.1, -0.1, 0.2, 0.3, -0.2, 0.1, 0.0, 0.05, -0.15, 0.2, 0.1, -0.3, 0.25, 0.05, -0.1, 0.15, 0.2, -0.05, 0.3, -0.25, 0.1, 0.0, 0.2, -0.1, 0.05, 0.15, -0.2, 0.1, 0.3, -0.05, 0.2, 0.0, -0.15, 0.1, 0.25, -0.3, 0.05, 0.1, -0.2, 0.15, 0.0, 0.2, -0.1, 0.3, 0.05, -0.25, 0.1, 0.2, -0.05, 0.15, -0.1, 0.0, 0.3, 0.2, -0.2, 0.1, 0.05, -0.15, 0.25, 0.1, -0.3, 0.0, 0.2, 0.15, -0.1, 0.05, 0.3, -0.2, 0.1, 0.0, -0.05, 0.2]>
  weight @c1.b : tensor<4xf32> = dense<[0.1, -0.1, 0.05, 0.0]>
  weight @fc.w : tensor<3x64xf32> = dense<[0.1, -0.2, 0.3, 0.05, -0.1, 0.2, 0.0, 0.15, -0.25, 0.3, 0.1, -0.05, 0.2, -0.3, 0.1, 0.05, 0.0, -0.1, 0.25, 0.1, -0.2, 0.05, 0.3, -0.15, 0.1, 0.2, -0.1, 0.0, -0.3, 0.2, 0.1, 0.15, 0.05, -0.2, 0.25, -0.05, 0.1, -0.1, 0.2, 0.3, -0.2, 0.1, 0.0, 0.05, -0.15, 0.2, 0.1, -0.3, 0.25, 0.05, -0.1, 0.15, 0.2, -0.05, 0.3, -0.25, 0.1, 0.0, 0.2, -0.1, 0.05, 0.15, -0.2, 0.1, 0.3, -0.05, 0.2, 0.0, -0.15, 0.1, 0.25, -0.3, 0.05, 0.1, -0.2, 0.15, 0.0, 0.2, -0.1, 0.3, 0.05, -0.25, 0.1, 0.2, -0.05, 0.15, -0.1, 0.0, 0.3, 0.2, -0.2, 0.1, 0.05, -0.15, 0.25, 0.1, -0.3, 0.0, 0.2, 0.15, -0.1, 0.05, 0.3, -0.2, 0.1, 0.0, -0.05, 0.2, 0.1, -0.2, 0.3, 0.05, -0.1, 0.2, 0.0, 0.15, -0.25, 0.3, 0.1, -0.05, 0.2, -0.3, 0.1, 0.05, 0.0, -0.1, 0.25, 0.1, -0.2, 0.05, 0.3, -0.15, 0.1, 0.2, -0.1, 0.0, -0.3, 0.2, 0.1, 0.15, 0.05, -0.2, 0.25, -0.05, 0.1, -0.1, 0.2, 0.3, -0.2, 0.1, 0.0, 0.05, -0.15, 0.2, 0.1, -0.3, 0.25, 0.05, -0.1, 0.15, 0.2, -0.05, 0.3, -0.25, 0.1, 0.0, 0.2, -0.1, 0.05, 0.15, -0.2, 0.1, 0.3, -0.05, 0.2, 0.0, -0.15, 0.1, 0.25, -0.3, 0.05, 0.1, -0.2, 0.15, 0.0, 0.2, -0.1, 0.3, 0.05, -0.25, 0.1, 0.2]>
  weight @fc.b : tensor<3xf32> = dense<[0.05, -0.05, 0.1]>
  graph @main(%x: tensor<1x3x8x8xf32>) -> (tensor<1x3xf32>) {
    %c1 = conv2d(%x, @c1.w, @c1.b) {strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 1} : tensor<1x4x8x8xf32>
    %r1 = relu(%c1) : tensor<1x4x8x8xf32>
    %mp = max_pool(%r1) {kernel = [2, 2], strides = [2, 2], pads = [0, 0, 0, 0], ceil_mode = false} : tensor<1x4x4x4xf32>
    %fl = flatten(%mp) {axis = 1} : tensor<1x64xf32>
    %fc = gemm(%fl, @fc.w, @fc.b) {alpha = 1.0, beta = 1.0, trans_a = false, trans_b = true} : tensor<1x3xf32>
    return %fc
  }
}";
    let mut m = parse_module(src, &ParseOptions::default()).unwrap();
    run_pipeline(
        &mut m,
        "quantize{scheme=q8,weights=per-tensor,calib=random:3,samples=4},partition{cut=fc,granularity=layer}",
    );
    let c = check_bit_exact_with(&m, "q7_small", 6, &q7());
    let f = functions(&c);
    assert_eq!(f, ["arm_convolve_HWC_q7_RGB", "arm_relu_q7", "arm_maxpool_q7_HWC", "arm_fully_connected_q7"], "{f:?}");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!("stm32_q7_small.c", c.source));
}

#[test]
fn q7_errors_name_node_and_op() {
    let cfg = MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
    // An int8 graph is not a q7 graph.
    let mut m = mobilenet_v2(&cfg).unwrap();
    run_pipeline(&mut m, "fuse-bn,quantize{scheme=int8,calib=random:1,samples=2},partition{cut=3}");
    let e = lower(&m, &q7()).unwrap_err().to_string();
    assert!(e.contains("pow2") && e.contains("scheme=q8"), "{e}");
    // Per-channel weight formats do not fit the q7 API's one shift per layer.
    let mut m = mobilenet_v2(&cfg).unwrap();
    run_pipeline(&mut m, "fuse-bn,quantize{scheme=q8,calib=random:1,samples=2},partition{cut=3}");
    match lower(&m, &q7()) {
        Ok(_) => {} // every channel happened to get the same format
        Err(e) => assert!(e.to_string().contains("weights=per-tensor"), "{e}"),
    }
}

/// A relu whose operand is still read afterwards (by the residual add) runs on a copy.
#[test]
fn relu_of_a_live_value_copies_first() {
    let w: Vec<String> = (0..36).map(|i| format!("{:.3}", ((i * 37 % 17) as f32 - 8.0) / 20.0)).collect();
    let src = format!(
        "module @r {{
  weight @c.w : tensor<4x1x3x3xf32> = dense<[{}]>
  graph @main(%x: tensor<1x1x6x6xf32>) -> (tensor<1x4x6x6xf32>) {{
    %c = conv2d(%x, @c.w) {{strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 1}} : tensor<1x4x6x6xf32>
    %r = relu(%c) : tensor<1x4x6x6xf32>
    %a = add(%c, %r) : tensor<1x4x6x6xf32>
    return %a
  }}
}}",
        w.join(", ")
    );
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    run_pipeline(
        &mut m,
        "quantize{scheme=q8,weights=per-tensor,calib=random:3,samples=4},partition{cut=a,granularity=layer}",
    );
    let c = check_bit_exact_with(&m, "q7_relu_copy", 6, &q7());
    assert!(c.source.contains("clio_copy_s8("), "{}", c.source);
    assert_eq!(functions(&c), ["arm_convolve_HWC_q7_basic", "arm_relu_q7", "clio_add_q7"]);
}

/// Global average pooling in Q formats rounds once (`clio_mean_q7`), bit-exact with the
/// interpreter, whatever formats calibration gives the pool's operand and result.
#[test]
fn global_avg_pool_q7_rounds_once() {
    let w: Vec<String> = (0..72).map(|i| format!("{:.3}", ((i * 29 % 23) as f32 - 11.0) / 15.0)).collect();
    let src = format!(
        "module @g {{
  weight @c.w : tensor<8x1x3x3xf32> = dense<[{}]>
  graph @main(%x: tensor<1x1x7x7xf32>) -> (tensor<1x8x1x1xf32>) {{
    %c = conv2d(%x, @c.w) {{strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 1}} : tensor<1x8x7x7xf32>
    %g = global_avg_pool(%c) : tensor<1x8x1x1xf32>
    return %g
  }}
}}",
        w.join(", ")
    );
    for seed in 1..=4 {
        let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
        run_pipeline(
            &mut m,
            &format!(
                "quantize{{scheme=q8,weights=per-tensor,calib=random:{seed},samples=4}},partition{{cut=g,granularity=layer}}"
            ),
        );
        let c = check_bit_exact_with(&m, &format!("q7_gap_{seed}"), 6, &q7());
        assert_eq!(functions(&c), ["arm_convolve_HWC_q7_basic", "clio_mean_q7"]);
    }
}
