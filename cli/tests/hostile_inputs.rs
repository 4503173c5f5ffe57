//! Every file of testdata/bad/ fails with a one-line error naming the file, exit status 1, and
//! no output; the error text is snapshotted per file (see testdata/bad/README.md).

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// A valid plan and profile for the simulate cases.
fn good_plan_and_profile(d: &Path) -> (String, String) {
    let plan = d.join("plan.json");
    let o = clio(&["plan", "testdata/models/mobilenet_v2_tiny.onnx", "-o", plan.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let profile = d.join("profile.csv");
    std::fs::write(&profile, "cut,channels,accuracy\n1,2,0.5\n1,16,0.7\n3,8,0.8\n").unwrap();
    (plan.display().to_string(), profile.display().to_string())
}

#[test]
fn every_hostile_input_fails_cleanly() {
    let d = tmp("hostile");
    let (plan, profile) = good_plan_and_profile(&d);
    let trace = "testdata/traces/norway_bus_1";
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("testdata/bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{} files", files.len());
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let rel = format!("testdata/bad/{name}");
        let out = d.join(format!("out-{name}"));
        let out_s = out.to_str().unwrap();
        let o = if name.ends_with(".clio") || name.ends_with(".onnx") {
            clio(&["opt", &rel, "-p", "fuse-bn", "-o", out_s])
        } else if name.ends_with(".npy") {
            clio(&["run", "testdata/models/resnet_tiny.onnx", "--input", &rel, "-o", out_s])
        } else if name.ends_with(".trace") {
            clio(&["simulate", "--plan", &plan, "--profile", &profile, "--trace", &rel, "--svg-dir", out_s])
        } else if name.ends_with(".plan.json") {
            clio(&["simulate", "--plan", &rel, "--profile", &profile, "--trace", trace])
        } else if name.ends_with(".profile.csv") {
            clio(&["simulate", "--plan", &plan, "--profile", &rel, "--trace", trace])
        } else {
            panic!("{name}: no command for this kind of file (see testdata/bad/README.md)");
        };
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{name}: stderr {err}");
        assert_eq!(err.lines().count(), 1, "{name}: one line expected: {err}");
        assert!(err.starts_with("error: "), "{name}: {err}");
        assert!(err.contains(&name), "{name}: the error does not name the file: {err}");
        assert!(!out.exists() && !out.with_extension("safetensors").exists(), "{name}: partial output written");
        // Temporary paths vary between runs.
        let err = err.replace(&d.display().to_string(), "$TMP");
        snapshot("hostile_inputs", Some(&name), err);
    }
    std::fs::remove_dir_all(&d).unwrap();
}
