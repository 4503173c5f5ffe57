//! The `clio` binary end to end: help for every command, the happy paths on bundled models,
//! and failure behaviour (one-line error, non-zero exit, no partial output file).

mod common;
use common::*;
use std::path::Path;

#[test]
fn every_command_has_help() {
    for cmd in ["opt", "run", "stats", "passes"] {
        let o = clio(&[cmd, "--help"]);
        assert!(o.status.success(), "{cmd}");
        let h = stdout(&o);
        assert!(h.contains("Usage: clio") && h.contains("Options:"), "{cmd}: {h}");
    }
    let h = stdout(&clio(&["opt", "--help"]));
    for flag in [
        "--pipeline",
        "--output",
        "--print-ir-after-all",
        "--print-ir-after",
        "--timing",
        "--input-shape",
        "--bisect-limit",
    ] {
        assert!(h.contains(flag), "opt --help lacks {flag}");
    }
    assert!(stdout(&clio(&["passes"])).contains("fuse-bn  -  Fold batch_norm"));
}

#[test]
fn opt_runs_a_pipeline_and_saves_losslessly() {
    let d = tmp("opt");
    let out = d.join("m.clio");
    let o = clio(&[
        "opt",
        "testdata/models/resnet_tiny.onnx",
        "-p",
        "fuse-bn,dce",
        "--timing",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("fuse-bn") && stderr(&o).contains("fused-conv=13"), "{}", stderr(&o));
    assert!(out.exists() && d.join("m.safetensors").exists());
    // The saved module runs and gives the model's output (BN folded: tolerance 1e-4 of range).
    let y = d.join("y.npy");
    let o = clio(&[
        "run",
        out.to_str().unwrap(),
        "--input",
        "testdata/models/resnet_tiny.input.npy",
        "-o",
        y.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = clio::io::read_npy(&y).unwrap();
    let want = clio::io::read_npy(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/models/resnet_tiny.torch_out.npy"
    )))
    .unwrap();
    let (g, w) = (got.as_f32().unwrap(), want.as_f32().unwrap());
    let range = w.iter().cloned().fold(f32::MIN, f32::max) - w.iter().cloned().fold(f32::MAX, f32::min);
    let worst = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst <= 1e-4 * range, "{worst} vs range {range}");
}

#[test]
fn opt_prints_ir_and_dumps_after_passes() {
    let o = clio(&["opt", "testdata/ir/fuse_bn_conv.clio", "-p", "fuse-bn", "--print-ir-after-all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("module @fuse_bn_conv"));
    assert!(stderr(&o).contains("// -----// IR Dump After fuse-bn //----- //"));
    let o = clio(&["opt", "testdata/ir/fuse_bn_conv.clio", "-p", "fuse-bn", "--print-ir-after", "no-such-pass"]);
    one_line_error(&o, "unknown pass `no-such-pass`");
}

#[test]
fn stats_table_and_json() {
    let o = clio(&["stats", "testdata/models/mobilenet_v2_tiny.onnx"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("total: 74170 params"), "{}", stdout(&o));
    let o = clio(&["stats", "testdata/models/graph_only/mobilenet_v2_224.onnx", "--allow-missing-weights", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["params"], 3504872);
    assert_eq!(v["macs"], 300774272u64);
    let layers = v["layers"].as_array().unwrap();
    assert!(layers.len() > 100);
    assert!(layers.iter().all(|l| l["name"].is_string() && l["op"].is_string() && l["macs"].is_u64()));
}

#[test]
fn bad_input_gives_one_line_and_no_output_file() {
    let d = tmp("bad");
    let out = d.join("never.clio");
    let o_str = out.to_str().unwrap();
    let bad_text = d.join("bad.clio");
    std::fs::write(
        &bad_text,
        "module @m {\n  graph @g(%x: tensor<2xf32>) -> (tensor<2xf32>) {\n    %y = frob(%x) : tensor<2xf32>\n",
    )
    .unwrap();
    let truncated = d.join("trunc.onnx");
    let full = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/models/vgg_tiny.onnx")).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 3]).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["opt", "missing.onnx", "-o", o_str], "missing.onnx"),
        (vec!["opt", bad_text.to_str().unwrap(), "-o", o_str], "bad.clio:3:10: unknown op `frob`"),
        (vec!["opt", truncated.to_str().unwrap(), "-o", o_str], "trunc.onnx"),
        (vec!["opt", "testdata/models/vgg_tiny.onnx", "-p", "fuse-bn{x=1}", "-o", o_str], "unknown option `x`"),
        (vec!["opt", "testdata/models/vgg_tiny.onnx", "-p", "fuse-bn,,dce", "-o", o_str], "<pipeline>:1:9"),
        (vec!["opt", "testdata/models/mlp_flatten_view.onnx", "-o", o_str], "--input-shape"),
        (vec!["stats", "README.md"], "unknown model format"),
        (vec!["run", "testdata/models/vgg_tiny.onnx", "--input", "Cargo.toml", "-o", o_str], "not a .npy file"),
    ];
    for (args, needle) in cases {
        let o = clio(&args);
        one_line_error(&o, needle);
        assert!(!out.exists(), "{args:?} left an output file");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 2, "{args:?} left temporary files");
    }
}

#[test]
fn failed_run_keeps_the_previous_output() {
    let d = tmp("keep");
    let out = d.join("m.clio");
    assert!(clio(&["opt", "testdata/models/vgg_tiny.onnx", "-o", out.to_str().unwrap()]).status.success());
    let before = std::fs::read(&out).unwrap();
    let o = clio(&["opt", "testdata/models/vgg_tiny.onnx", "-p", "nope", "-o", out.to_str().unwrap()]);
    one_line_error(&o, "unknown pass `nope`");
    assert_eq!(std::fs::read(&out).unwrap(), before);
}

#[test]
fn symbolic_dims_are_fixed_on_the_command_line() {
    let o = clio(&["stats", "testdata/models/mlp_flatten_view.onnx", "--input-shape", "2x3x32x32", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let reshapes: Vec<&serde_json::Value> =
        v["layers"].as_array().unwrap().iter().filter(|l| l["op"] == "reshape").collect();
    assert_eq!(reshapes.len(), 1, "the shape subgraph folds into one reshape");
    assert!(reshapes[0]["output"].as_str().unwrap().starts_with("tensor<2x"));
}

/// `clio run` picks the integer interpreter for a quantized module (the arithmetic generated C
/// matches) and the float one otherwise; `--interp float` on a quantized module is a one-line
/// error naming the node.
#[test]
fn run_uses_the_integer_interpreter_for_quantized_modules() {
    let d = tmp("run_int");
    let q = d.join("q.clio");
    let o = clio(&[
        "opt",
        "testdata/models/resnet_tiny.onnx",
        "-p",
        "fuse-bn,quantize{scheme=q8,calib=random:2,samples=3}",
        "-o",
        q.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let x = "testdata/models/resnet_tiny.input.npy";
    let y = d.join("y.npy");
    let o = clio(&["run", q.to_str().unwrap(), "--input", x, "-o", y.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = clio::io::load_module(&q, &Default::default()).unwrap();
    let input = clio::io::read_npy(&root().join(x)).unwrap();
    let want = clio::interp::run_int(&m, "main", &[input]).unwrap().remove(0);
    assert_eq!(clio::io::read_npy(&y).unwrap(), want);
    std::fs::remove_file(&y).unwrap();
    let o = clio(&["run", q.to_str().unwrap(), "--interp", "float", "--input", x, "-o", y.to_str().unwrap()]);
    one_line_error(&o, "integer interpreter");
    assert!(!y.exists());
}
