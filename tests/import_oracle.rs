//! The numerical oracle: for every small model with a committed `.input.npy`, tract runs the
//! original ONNX file, clio's interpreter runs the imported module, and the outputs agree
//! within 1e-4 of the output range. Also checks against the committed framework /
//! onnxruntime outputs where present.

use clio::import::{import_path, ImportOptions, InputShape};
use clio::Tensor;
use std::path::{Path, PathBuf};
use tract_onnx::prelude::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Models with an `.input.npy` next to them.
fn models() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["testdata/models", "testdata/models/pretrained", "testdata/import"] {
        let Ok(rd) = std::fs::read_dir(root().join(dir)) else { continue };
        let mut v: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "onnx") && p.with_extension("input.npy").exists())
            .collect();
        v.sort();
        out.extend(v);
    }
    out
}

fn tract_run(path: &Path, input: &Tensor) -> Vec<f32> {
    let shape = input.shape().to_vec();
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .and_then(|m| m.with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), shape.clone())))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .unwrap_or_else(|e| panic!("tract cannot run {}: {e:#}", path.display()));
    let x = tract_onnx::prelude::Tensor::from_shape(&shape, input.as_f32().unwrap()).unwrap();
    let out = model.run(tvec![x.into()]).unwrap_or_else(|e| panic!("tract run failed on {}: {e:#}", path.display()));
    out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect()
}

fn compare(what: &str, got: &[f32], want: &[f32], rel: f32) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{what}: output sizes differ ({} vs {})", got.len(), want.len()));
    }
    let (lo, hi) = want.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), x| (l.min(*x), h.max(*x)));
    let tol = (rel * (hi - lo)).max(1e-6);
    let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    if worst > tol {
        return Err(format!("{what}: max |diff| {worst} > {tol} (range {lo}..{hi})"));
    }
    Ok(())
}

#[test]
fn interpreter_on_imported_module_matches_tract_on_the_file() {
    let list = models();
    assert!(!list.is_empty(), "no models with inputs");
    for p in list {
        let x = clio::io::read_npy(&p.with_extension("input.npy")).unwrap();
        let opts = ImportOptions {
            input_shapes: vec![InputShape { name: None, shape: x.shape().to_vec() }],
            ..Default::default()
        };
        let m = import_path(&p, &opts).unwrap_or_else(|e| panic!("{e}"));
        let ours = clio::interp::run(&m, "main", std::slice::from_ref(&x))
            .unwrap_or_else(|e| panic!("{}: interpreter failed: {e}", p.display()));
        let ours = ours[0].as_f32().unwrap().to_vec();
        let theirs = tract_run(&p, &x);
        let vs_tract = compare(&format!("{} vs tract", p.display()), &ours, &theirs, 1e-4);
        // The framework's own output, where committed (torch, Keras, onnxruntime).
        let mut references = 0;
        for suffix in ["torch_out.npy", "keras_out.npy", "ort_out.npy"] {
            let f = p.with_extension(suffix);
            if let Ok(t) = clio::io::read_npy(&f) {
                let want = t.as_f32().unwrap();
                compare(&format!("{} vs {suffix}", p.display()), &ours, want, 1e-4).unwrap();
                if let Err(e) = &vs_tract {
                    // Only acceptable when tract itself disagrees with the independent reference.
                    let tract_vs_ref = compare("tract vs reference", &theirs, want, 1e-4);
                    assert!(tract_vs_ref.is_err(), "{e}, while tract agrees with {suffix}");
                    eprintln!(
                        "note: {e}; clio agrees with {suffix} and tract does not ({})",
                        tract_vs_ref.unwrap_err()
                    );
                }
                references += 1;
            }
        }
        if references == 0 {
            vs_tract.unwrap();
        }
    }
}
