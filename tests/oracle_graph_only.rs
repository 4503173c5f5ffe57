//! The numerical oracle on the real torchvision architectures: the graph-only exports get
//! deterministic random weights written to their external-data file (in a temporary
//! directory), then tract runs the ONNX file and clio's interpreter runs the imported module on
//! random inputs. Outputs must agree within 1e-4 of the output range.

#[path = "common/rng.rs"]
mod rng;

use clio::import::{import_path, ImportOptions};
use clio::Tensor;
use rng::Rng;
use std::path::{Path, PathBuf};
use tract_onnx::prelude::*;

/// Copies `model` into a fresh directory and writes its external weights there.
fn materialize(model: &Path, seed: u64) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clio-oracle-{}-{}", std::process::id(), seed));
    std::fs::create_dir_all(&dir).unwrap();
    let dst = dir.join(model.file_name().unwrap());
    std::fs::copy(model, &dst).unwrap();
    let proto = tract_onnx::onnx().proto_model_for_path(model).unwrap();
    let graph = proto.graph.unwrap();
    let mut r = Rng::new(seed);
    let mut file: Vec<u8> = vec![];
    let mut location = None;
    for t in &graph.initializer {
        let get = |k: &str| t.external_data.iter().find(|e| e.key == k).map(|e| e.value.clone());
        let Some(loc) = get("location") else { continue };
        location = Some(loc);
        let offset: usize = get("offset").map(|v| v.parse().unwrap()).unwrap_or(0);
        let n: usize = t.dims.iter().product::<i64>() as usize;
        let fan_in: usize = t.dims.iter().skip(1).product::<i64>().max(1) as usize;
        let name = t.name.as_str();
        let values: Vec<f32> = (0..n)
            .map(|_| {
                if name.ends_with("running_var") {
                    0.5 + r.f32().abs() * 1.5
                } else if t.dims.len() == 1 && name.ends_with("weight") {
                    0.5 + r.f32().abs()
                } else if t.dims.len() == 1 {
                    r.f32() * 0.1
                } else {
                    r.f32() * (3.0 / fan_in as f32).sqrt()
                }
            })
            .collect();
        if file.len() < offset + 4 * n {
            file.resize(offset + 4 * n, 0);
        }
        for (i, v) in values.iter().enumerate() {
            file[offset + 4 * i..offset + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    std::fs::write(dir.join(location.expect("no external data")), &file).unwrap();
    dst
}

fn compare(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: sizes");
    let (lo, hi) = want.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), x| (l.min(*x), h.max(*x)));
    let tol = 1e-4 * (hi - lo);
    let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= tol, "{what}: max |diff| {worst} > {tol} (range {lo}..{hi})");
    eprintln!("{what}: max |diff| {worst:.3e}, {:.2e} of the output range", worst / (hi - lo));
}

#[test]
fn torchvision_architectures_with_random_weights_match_tract() {
    for (file, hw) in [
        ("mobilenet_v2_224.onnx", 224),
        ("mobilenet_v2_w035_224.onnx", 224),
        ("mobilenet_v2_32.onnx", 32),
        ("resnet18_224.onnx", 224),
        ("resnet18_32.onnx", 32),
    ] {
        let path = materialize(&Path::new("testdata/models/graph_only").join(file), 7);
        let m = import_path(&path, &ImportOptions::default()).unwrap();
        let mut r = Rng::new(11);
        let shape = vec![1, 3, hw, hw];
        let x = Tensor::from_f32(shape.clone(), (0..3 * hw * hw).map(|_| r.f32() * 2.0).collect()).unwrap();
        let ours = clio::interp::run(&m, "main", std::slice::from_ref(&x)).unwrap();
        let model = tract_onnx::onnx()
            .model_for_path(&path)
            .and_then(|m| m.with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), shape.clone())))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .unwrap();
        let xt = tract_onnx::prelude::Tensor::from_shape(&shape, x.as_f32().unwrap()).unwrap();
        let theirs = model.run(tvec![xt.into()]).unwrap();
        let theirs: Vec<f32> = theirs[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect();
        compare(file, ours[0].as_f32().unwrap(), &theirs);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
