//! `clio compile`: a float model in, the device C module (compiled and run on the host against
//! the shims, bit-exact with the integer interpreter's wire message), the cloud part and the
//! manifest out; failures leave no output directory.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;

/// `clio build-model` of a MobileNetV2 (width 0.35, 32x32, 10 classes) as `dir/m.clio`.
fn build_mobilenet_v2(dir: &std::path::Path) {
    ok(&clio_in(
        dir,
        &["build-model", "mobilenet_v2", "--width", "0.35", "--input", "32", "--classes", "10", "-o", "m.clio"],
    ));
}

#[test]
fn compile_writes_device_cloud_and_manifest() {
    let d = tmp("mnv2");
    build_mobilenet_v2(&d);
    let out = ok(&clio_in(
        &d,
        &[
            "compile",
            "m.clio",
            "--target",
            "stm32f7",
            "--cut",
            "5",
            "--calib",
            "random:1",
            "--samples",
            "2",
            "--bias-correction",
            "weights",
            "-o",
            "out",
        ],
    ));
    assert!(out.contains("compiled @device for stm32f7") && out.contains("arena"), "{out}");
    for f in [
        "clio_device.c",
        "clio_device.h",
        "cloud.clio",
        "cloud.safetensors",
        "manifest.json",
        "cmsis_nn/arm_nnfunctions.h",
        "cloud.onnx",
        "cloud.nnef.tar",
    ] {
        assert!(d.join("out").join(f).exists(), "{f} missing");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("out/manifest.json")).unwrap()).unwrap();
    // The cloud part as ONNX and NNEF (their numerics: targets/tests/cloud_export.rs).
    assert_eq!(manifest["cloud"]["exports"]["cloud"]["onnx"], "cloud.onnx");
    assert_eq!(manifest["cloud"]["exports"]["cloud"]["nnef"], "cloud.nnef.tar");
    let dev = &manifest["device"];
    assert!(dev["arena_bytes"].as_u64().unwrap() >= dev["arena_lower_bound_bytes"].as_u64().unwrap());
    assert!(dev["flash_const_bytes"].as_u64().unwrap() > 0);
    assert!(dev["estimate"]["latency_s"].as_f64().unwrap() > 0.0);
    // `--cut 5` is the 6th block cut point `clio cuts` lists.
    assert_eq!(manifest["cut_node"], "features.4.conv.2");
    // --bias-correction goes into the default pipeline's quantize.
    let pipeline = manifest["pipeline"].as_str().unwrap_or_default();
    assert!(pipeline.contains("quantize{scheme=int8,") && pipeline.contains(",bias-correction=weights,"), "{pipeline}");
    // The generated C compiles against the shipped shims.
    let cc = Command::new("cc")
        .current_dir(d.join("out"))
        .args(["-std=c99", "-Wall", "-Werror", "-Icmsis_nn", "-c", "clio_device.c", "-o", "clio_device.o"])
        .output()
        .unwrap();
    assert!(cc.status.success(), "{}", String::from_utf8_lossy(&cc.stderr));
    // The cloud part loads and holds the rest of the network.
    let stats = ok(&clio_in(&d, &["stats", "out/cloud.clio"]));
    assert!(stats.contains("classifier.1"), "{stats}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn compile_legacy_q7() {
    let d = tmp("q7");
    ok(&clio_in(&d, &["build-model", "vgg16", "--width", "0.25", "--input", "32", "--classes", "10", "-o", "m.clio"]));
    let out = ok(&clio_in(
        &d,
        &[
            "compile",
            "m.clio",
            "--cut",
            "5",
            "--calib",
            "random:1",
            "--samples",
            "2",
            "--cmsis",
            "legacy-q7",
            "-o",
            "out",
        ],
    ));
    assert!(out.contains("compiled @device"), "{out}");
    let src = std::fs::read_to_string(d.join("out/clio_device.c")).unwrap();
    assert!(src.contains("arm_convolve_HWC_q7_RGB") && src.contains("arm_maxpool_q7_HWC"));
    assert!(d.join("out/cmsis_nn/arm_nn_q7_host.c").exists());
    let cc = Command::new("cc")
        .current_dir(d.join("out"))
        .args(["-std=c99", "-Wall", "-Werror", "-Icmsis_nn", "-c", "clio_device.c", "-o", "clio_device.o"])
        .output()
        .unwrap();
    assert!(cc.status.success(), "{}", String::from_utf8_lossy(&cc.stderr));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn compile_failures_leave_nothing() {
    let d = tmp("fail");
    build_mobilenet_v2(&d);
    let o = clio_in(&d, &["compile", "m.clio", "--cut", "5", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--calib"));
    // A device part the backend cannot lower (the float classifier head is kept on the device).
    let o = clio_in(&d, &["compile", "m.clio", "--pipeline", "fuse-bn,partition{cut=3}", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.starts_with("error: stm32:") && e.contains("quantize"), "{e}");
    assert!(!d.join("out").exists());
    // --bias-correction with a pipeline of one's own would be ignored: refused instead.
    let o = clio_in(&d, &["compile", "m.clio", "--pipeline", "fuse-bn", "--bias-correction", "weights", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.lines().count() == 1 && e.contains("--bias-correction applies to the default pipeline"), "{e}");
    assert!(!d.join("out").exists());
    // A failed compile into an existing output directory leaves the previous output intact.
    ok(&clio_in(&d, &["compile", "m.clio", "--cut", "5", "--calib", "random:1", "-o", "out"]));
    let before: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(d.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    assert!(before.len() >= 3);
    let o = clio_in(&d, &["compile", "m.clio", "--pipeline", "fuse-bn,partition{cut=3}", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    for (p, bytes) in &before {
        assert_eq!(&std::fs::read(p).unwrap(), bytes, "{} changed by a failed compile", p.display());
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// The generated `clio_device.c` in `dir` compiles against the shipped host shims.
fn compiles_against_gap8_shims(dir: &std::path::Path) {
    let cc = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Werror", "-c", "-I.", "-Igap8_shims", "clio_device.c", "-o", "dev.o"])
        .current_dir(dir)
        .output()
        .expect("run cc");
    assert!(cc.status.success(), "{}", String::from_utf8_lossy(&cc.stderr));
}

#[test]
fn compile_for_gap8() {
    let d = tmp("gap8");
    build_mobilenet_v2(&d);
    let out =
        ok(&clio_in(&d, &["compile", "m.clio", "--target", "gap8", "--cut", "5", "--calib", "random:1", "-o", "out"]));
    assert!(out.contains("compiled @device for gap8") && out.contains("on the HWCE"), "{out}");
    let o = d.join("out");
    for f in ["clio_device.c", "clio_device.h", "clio_device.manifest.json", "cloud.clio", "manifest.json"] {
        assert!(o.join(f).exists(), "{f} missing");
    }
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(o.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["target"], "gap8");
    assert!(m["pipeline"].as_str().unwrap().contains("scheme=q8"));
    let layers = m["device"]["report"]["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    compiles_against_gap8_shims(&o);
    let _ = std::fs::remove_dir_all(&d);
}

/// The whole MobileNetV2 0.35 on the device: its weights do not all fit L2, so the compile
/// writes the L3 weight image next to the C, names it in the manifest and says so.
#[test]
fn compile_for_gap8_writes_the_l3_weight_image_when_weights_exceed_l2() {
    let d = tmp("gap8-l3");
    build_mobilenet_v2(&d);
    let out =
        ok(&clio_in(&d, &["compile", "m.clio", "--target", "gap8", "--cut", "21", "--calib", "random:1", "-o", "out"]));
    assert!(out.contains("of them in L3: clio_device_l3.bin"), "{out}");
    let o = d.join("out");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(o.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["device"]["l3_image"], "clio_device_l3.bin");
    let image = std::fs::read(o.join("clio_device_l3.bin")).unwrap();
    assert_eq!(m["device"]["report"]["l3_image_bytes"].as_u64().unwrap() as usize, image.len());
    assert_eq!(image.len(), 143_360, "features.18.0 (1280 x 112 int8)");
    compiles_against_gap8_shims(&o);
    let _ = std::fs::remove_dir_all(&d);
}

/// `--scheme q16`: the default pipeline quantizes the device part to 16-bit Q formats; the
/// GAP8 code is the q16 path (cluster `_fp` kernels, HWCE digit passes where faster);
/// `--scheme` with another target is refused.
#[test]
fn compile_for_gap8_in_q16() {
    let d = tmp("gap8-q16");
    build_mobilenet_v2(&d);
    let args =
        ["compile", "m.clio", "--target", "gap8", "--cut", "3", "--calib", "random:1", "--scheme", "q16", "-o", "out"];
    let out = ok(&clio_in(&d, &args));
    let o = d.join("out");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(o.join("manifest.json")).unwrap()).unwrap();
    let hwce = m["device"]["report"]["hwce_macs"].as_u64().unwrap();
    assert!(out.contains(&format!("({hwce} on the HWCE)")), "{out}");
    assert!(m["pipeline"].as_str().unwrap().contains("scheme=q16"));
    assert_eq!(m["quantization"], "q16 (power-of-two Q formats)");
    assert_eq!(m["device"]["report"]["scheme"], "q16");
    assert!(std::fs::read_to_string(o.join("clio_device.h")).unwrap().contains("const int16_t *input"));
    let bad = clio_in(
        &d,
        &[
            "compile", "m.clio", "--target", "stm32f7", "--cut", "3", "--calib", "random:1", "--scheme", "q16", "-o",
            "o2",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--scheme is for --target gap8"));
    assert!(!d.join("o2").exists());
    let _ = std::fs::remove_dir_all(&d);
}

/// `--l1-budget` / `--l2-budget` reach the GAP8 backend (smaller tiles, the manifest's
/// budgets); out-of-range values and other targets are refused with one line and no output.
#[test]
fn compile_for_gap8_takes_l1_and_l2_budgets() {
    let d = tmp("gap8-budgets");
    build_mobilenet_v2(&d);
    let base = ["compile", "m.clio", "--target", "gap8", "--cut", "3", "--calib", "random:1"];
    ok(&clio_in(&d, &[&base[..], &["--l1-budget", "16384", "--l2-budget", "400000", "-o", "out"]].concat()));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("out/manifest.json")).unwrap()).unwrap();
    let r = &m["device"]["report"];
    assert_eq!(r["l2_budget_bytes"], 400000);
    assert!(r["l1_bytes"].as_u64().unwrap() <= 16384, "{r}");
    compiles_against_gap8_shims(&d.join("out"));
    for (flags, msg) in [
        (vec!["--target", "gap8", "--l1-budget", "70000"], "l1_budget_bytes 70000 must be between 1 and 65536"),
        (vec!["--target", "stm32f7", "--l1-budget", "8192"], "--l1-budget and --l2-budget are for --target gap8"),
    ] {
        let args: Vec<&str> =
            [&["compile", "m.clio", "--cut", "3", "--calib", "random:1", "-o", "o2"][..], &flags[..]].concat();
        let bad = clio_in(&d, &args);
        assert_eq!(bad.status.code(), Some(1));
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(err.contains(msg) && err.lines().count() == 1, "{err}");
        assert!(!d.join("o2").exists());
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn compile_for_gap8_with_several_cuts_builds_one_switching_program() {
    let d = tmp("gap8-variants");
    build_mobilenet_v2(&d);
    let out = ok(&clio_in(
        &d,
        &["compile", "m.clio", "--target", "gap8", "--cut", "3,5", "--calib", "random:1", "-o", "out"],
    ));
    assert!(out.contains("compiled 2 variants for gap8 (cuts 3, 5)"), "{out}");
    let o = d.join("out");
    for f in [
        "clio_device.c",
        "clio_device.h",
        "clio_device_k3.c",
        "clio_device_k5.c",
        "cloud_k3/cloud.clio",
        "cloud_k5/cloud.onnx",
        "manifest.json",
    ] {
        assert!(o.join(f).exists(), "{f} missing");
    }
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(o.join("manifest.json")).unwrap()).unwrap();
    let v = &m["device"]["variants"];
    assert_eq!(v["variants"].as_array().unwrap().len(), 2);
    assert!(v["shared_l2_bytes"].as_u64().unwrap() < v["unshared_l2_bytes"].as_u64().unwrap());
    // Dispatcher and variants compile together against the shims.
    for f in ["clio_device.c", "clio_device_k3.c", "clio_device_k5.c"] {
        let cc = Command::new("cc")
            .args(["-std=c99", "-Wall", "-Werror", "-c", "-I.", "-Igap8_shims", f, "-o", "x.o"])
            .current_dir(&o)
            .output()
            .expect("run cc");
        assert!(cc.status.success(), "{f}: {}", String::from_utf8_lossy(&cc.stderr));
    }
    // Bad lists are one-line errors, and leave no output.
    let e = clio_in(&d, &["compile", "m.clio", "--target", "gap8", "--cut", "3,x", "--calib", "random:1", "-o", "bad"]);
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("`x` is not a cut index"));
    assert!(!d.join("bad").exists());
    let _ = std::fs::remove_dir_all(&d);
}
