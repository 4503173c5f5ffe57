//! `clio train` and `clio evaluate` end to end on a tiny configuration: a small MobileNetV2
//! sliced at a cut, 128 Fashion-MNIST images; the trained module, the accuracy profile (the
//! format `clio simulate` reads), the JSON report, the JPEG baseline evaluation, and one-line
//! errors that leave no output behind.
//!
//! Needs Debian's `dataset-fashion-mnist`; skipped with a note without it, unless
//! `CLIO_REQUIRE_DATASETS=1` (set by `.ci/run`).

mod common;
use common::*;
use std::path::Path;

fn have_data() -> bool {
    let present = Path::new("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists();
    if !present && std::env::var("CLIO_REQUIRE_DATASETS").is_ok_and(|v| v == "1") {
        panic!("CLIO_REQUIRE_DATASETS=1 but /usr/share/datasets/fashion-mnist is missing");
    }
    if !present {
        eprintln!("skipping: Fashion-MNIST missing (apt-get install dataset-fashion-mnist)");
    }
    present
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A sliced small MobileNetV2 (width 0.25) in `d`.
fn sliced(d: &Path) -> std::path::PathBuf {
    let base = d.join("base.clio");
    ok(&clio(&["build-model", "mobilenet_v2_small", "--width", "0.25", "-o", s(&base)]));
    let out = d.join("sliced.clio");
    ok(&clio(&["opt", s(&base), "-p", "slice{cut=4,sizes=2:4:8,bandwidth=none}", "-o", s(&out)]));
    out
}

#[test]
fn train_writes_the_module_profile_and_report_and_evaluate_reads_them() {
    if !have_data() {
        return;
    }
    let d = tmp("train-cli");
    let m = sliced(&d);
    let (out, profile, report) = (d.join("trained.clio"), d.join("profile.json"), d.join("report.json"));
    let args = [
        "train",
        s(&m),
        "--train-limit",
        "128",
        "--test-limit",
        "64",
        "--batch",
        "32",
        "--quiet",
        "-o",
        s(&out),
        "--profile",
        s(&profile),
        "--report",
        s(&report),
    ];
    let text = ok(&clio(&args));
    assert!(text.contains("heads (channels:pi) [2:0.333, 4:0.333, 8:0.333]"), "{text}");
    assert!(text.contains("epoch   1: loss"), "{text}");
    for head in ["cloud.s2", "cloud.s4", "cloud.s8"] {
        assert!(text.contains(head), "{text}");
    }
    assert!(out.exists() && d.join("trained.safetensors").exists());
    let p: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    let entries = p["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for (e, size) in entries.iter().zip([2, 4, 8]) {
        assert_eq!(e["cut"], 4);
        assert_eq!(e["channels"], size);
        let a = e["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&a), "{e}");
    }
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["train"]["epochs"].as_array().unwrap().len(), 1);
    assert_eq!(r["train"]["step_losses"].as_array().unwrap().len(), 4);
    assert_eq!(r["train_images"], 128);
    // The trained module records its input normalisation; evaluate reproduces train's numbers.
    let printed = ok(&clio(&["opt", s(&out)]));
    assert!(printed.contains("\"clio.input_normalize\" = \""), "{}", &printed[..300.min(printed.len())]);
    let eval = ok(&clio(&["evaluate", s(&out), "--test-limit", "64", "--json"]));
    let acc: serde_json::Value = serde_json::from_str(&eval).unwrap();
    for (a, e) in acc.as_array().unwrap().iter().zip(entries) {
        assert_eq!(a["accuracy"], e["accuracy"], "evaluate disagrees with train's profile");
    }
    // JPEG baseline: bytes per image reported, accuracy for every head.
    let jpeg = ok(&clio(&["evaluate", s(&out), "--test-limit", "16", "--jpeg-quality", "40", "--jpeg-scans", "4"]));
    assert!(jpeg.contains("bytes per image on average"), "{jpeg}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_training_input_is_one_line_and_writes_nothing() {
    if !have_data() {
        return;
    }
    let d = tmp("train-cli-errors");
    let m = sliced(&d);
    let out = d.join("never.clio");
    let run = |extra: &[&str]| {
        let mut args = vec!["train", s(&m), "--train-limit", "64", "--quiet", "-o", s(&out)];
        args.extend_from_slice(extra);
        clio(&args)
    };
    one_line_error(&run(&["--data", "/nonexistent/idx"]), "/nonexistent/idx");
    one_line_error(&run(&["--only-slice", "3"]), "no head of slice size 3");
    one_line_error(&run(&["--batch", "100"]), "batch size 100 exceeds the 64 training images");
    one_line_error(&run(&["--optimizer", "rmsprop"]), "unknown optimizer `rmsprop`");
    one_line_error(&run(&["--schedule", "step:0:2"]), "EVERY >= 1");
    one_line_error(&run(&["--lr", "nan"]), "lr must be positive");
    one_line_error(&run(&["--normalize", "0.5"]), "expected MEAN:STD");
    assert!(!out.exists(), "a failed run wrote {}", out.display());
    // A 3-channel model does not take 1-channel images.
    let rgb = d.join("rgb.clio");
    ok(&clio(&["build-model", "mobilenet_v2_small", "--width", "0.25", "--in-channels", "3", "-o", s(&rgb)]));
    let o = clio(&["train", s(&rgb), "--train-limit", "64", "--batch", "32", "--quiet", "-o", s(&out)]);
    one_line_error(&o, "takes 3 input channels");
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&d);
}
