//! `clio build-model mobilenet_v2_small | resnet_small`: the small 28x28 architectures, their
//! defaults (28x28, one input channel, 10 classes), `--in-channels`, saving, and the errors.

mod common;
use common::*;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn mobilenet_v2_small_prints_with_the_small_defaults() {
    let ir = ok(&clio(&["build-model", "mobilenet_v2_small"]));
    let head = ir.lines().next().unwrap();
    assert!(head.starts_with("module @mobilenet_v2_small_w1_28 attributes {"), "{head}");
    for attr in ["model = \"mobilenet_v2_small\"", "input = 28", "in_channels = 1", "classes = 10", "seed = 0"] {
        assert!(head.contains(attr), "{attr} missing: {head}");
    }
    assert!(!head.contains("variant"), "{head}");
    assert!(ir.contains("graph @main(%input: tensor<1x1x28x28xf32>) -> (tensor<1x10xf32>)"), "{ir}");
    assert!(ir.contains("weight @features.0.0.weight : tensor<16x1x3x3xf32>"), "{ir}");
    assert!(ir.contains("%features.7.add = add("), "{ir}");
    assert!(ir.contains("weight @classifier.1.weight : tensor<10x128xf32>"), "{ir}");
    // Deterministic: the same command prints the same module.
    assert_eq!(ok(&clio(&["build-model", "mobilenet_v2_small"])), ir);
}

#[test]
fn resnet_small_saves_with_in_channels_and_runs_through_stats() {
    let d = tmp("build-small");
    let out = d.join("r.clio");
    let args = [
        "build-model",
        "resnet_small",
        "--width",
        "0.5",
        "--input",
        "32",
        "--in-channels",
        "3",
        "--classes",
        "5",
        "--seed",
        "2",
        "-o",
        s(&out),
    ];
    ok(&clio(&args));
    assert!(out.exists() && d.join("r.safetensors").exists());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("module @resnet_small_w05_32 attributes {model = \"resnet_small\""), "{}", &text[..120]);
    assert!(text.contains("in_channels = 3") && text.contains("classes = 5"), "{}", &text[..200]);
    assert!(text.contains("weight @conv1.weight : tensor<8x3x3x3xf32>"));
    assert!(text.contains("weight @layer3.0.downsample.0.weight : tensor<32x16x1x1xf32>"));
    assert!(text.contains("graph @main(%input: tensor<1x3x32x32xf32>) -> (tensor<1x5xf32>)"));
    // Loading checks the sidecar digests; stats sees the layers.
    let st = ok(&clio(&["stats", s(&out)]));
    assert!(st.contains("layer3.1.conv2") && st.contains("fc"), "{st}");
    // Width 1.0 at the defaults: the documented counts.
    let full = d.join("full.clio");
    ok(&clio(&["build-model", "resnet_small", "-o", s(&full)]));
    let st = ok(&clio(&["stats", s(&full)]));
    assert!(st.contains("total: 174970 params") && st.contains("20183936 MACs"), "{st}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn small_arch_errors_are_one_line() {
    let o = clio(&["build-model", "resnet18", "--in-channels", "3"]);
    one_line_error(&o, "only for the small archs");
    let o = clio(&["build-model", "resnet_small", "--in-channels", "0"]);
    one_line_error(&o, "input channel count 0");
    let o = clio(&["build-model", "mobilenet_v2_small", "--input", "2"]);
    one_line_error(&o, "too small");
    let o = clio(&["build-model", "mobilenet_v2_small", "--variant", "cifar"]);
    one_line_error(&o, "does not apply to the small archs");
    let help = ok(&clio(&["build-model", "--help"]));
    assert!(help.contains("mobilenet_v2_small") && help.contains("resnet_small") && help.contains("--in-channels"));
}
