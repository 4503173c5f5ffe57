//! `clio quantize`: the quality report (per-layer and output SQNR, top-1 agreement), the
//! written module, `--align`, `--bias-correction`, and one-line errors that leave no output behind.

mod common;
use common::*;

fn report_db(out: &str) -> f64 {
    let line = out.lines().find(|l| l.starts_with("output 0: SQNR")).unwrap_or_else(|| panic!("{out}"));
    line.split_whitespace().nth(3).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

/// `clio quantize` of the MobileNetV2 test model to q8 on 4 random samples, written to `out`.
fn quantize_tiny_q8(extra: &[&str], out: &std::path::Path) -> std::process::Output {
    let mut args = vec!["quantize", "testdata/models/mobilenet_v2_tiny.onnx", "--scheme", "q8"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--calib", "random:3", "--samples", "4", "-o", out.to_str().unwrap()]);
    clio(&args)
}

#[test]
fn quantize_reports_quality_and_writes_the_module() {
    let dir = tmp("quantize-report");
    let out_base = dir.join("q8.clio");
    let o = quantize_tiny_q8(&[], &out_base);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.starts_with("quantize: scheme q8, weights per-channel, range minmax:"), "{s}");
    // One row per quantized value with its format, e.g. the first conv.
    let conv = s.lines().find(|l| l.contains("conv2d") && l.contains("pow2<")).unwrap_or_else(|| panic!("{s}"));
    let db: f64 = conv.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(db > 10.0 && db < 80.0, "{conv}");
    assert!(report_db(&s) > 10.0, "{s}");
    assert!(s.contains("top-1 agreement: "), "{s}");
    let m = clio::io::load_module(&out_base, &Default::default()).unwrap();
    assert!(clio::quant::first_quantized_node(m.main_graph().unwrap()).is_some());

    // --align: the report says what was rescaled; the module still loads and verifies.
    let aligned = dir.join("q8a.clio");
    let o = quantize_tiny_q8(&["--align"], &aligned);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.lines().any(|l| l.starts_with("align: ") && l.contains("free activation groups rescaled")), "{s}");
    assert!(s.contains("1 outputs compensated by a float mul") && s.contains("float-nodes=1"), "{s}");
    clio::io::load_module(&aligned, &Default::default()).unwrap();

    // --bias-correction: every conv/gemm with a bias is corrected (MobileNetV2 tiny: 26
    // conv/gemm layers, all with biases after fuse-bn); `measured` also moves integer biases.
    for (mode, measured) in [("weights", false), ("measured", true)] {
        let corrected = dir.join(format!("q8bc_{mode}.clio"));
        let o = quantize_tiny_q8(&["--bias-correction", mode], &corrected);
        assert!(o.status.success(), "{}", stderr(&o));
        let s = stdout(&o);
        let head = s.lines().next().unwrap_or_default();
        assert!(head.contains("bias-corrected=26") && head.contains("bias-measured=") == measured, "{s}");
        assert!(report_db(&s) > 10.0, "{s}");
        clio::io::load_module(&corrected, &Default::default()).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn quantize_errors_are_one_line_and_write_nothing() {
    let dir = tmp("quantize-errors");
    let out_base = dir.join("bad");
    let cases: [(&[&str], &str); 2] = [
        (&["--scheme", "int8", "--align", "--calib", "random:1"], "q8 and q16"),
        (&["--scheme", "q8", "--calib", "/nonexistent/calib.npy"], "/nonexistent/calib.npy"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["quantize", "testdata/models/resnet_tiny.onnx", "-o", out_base.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = clio(&args);
        let e = stderr(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
        assert!(e.starts_with("error: ") && e.contains(needle), "{e}");
        assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "{args:?} left files behind");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
