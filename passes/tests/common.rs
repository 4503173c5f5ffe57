//! Shared helpers of the pass tests: loading the test models, running pipelines, comparing.
#![allow(dead_code)]

use clio::import::{import_path, ImportOptions, InputShape};
use clio::pass::{PassManager, RunReport};
use clio::text::{print_module, PrintOptions};
use clio::{Module, Tensor};
use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every small test model with a committed input: (name, module, input).
pub fn test_models() -> Vec<(String, Module, Tensor)> {
    let mut out = vec![];
    for dir in ["testdata/models", "testdata/models/pretrained"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "onnx") && p.with_extension("input.npy").exists())
            .collect();
        files.sort();
        for p in files {
            let x = clio::io::read_npy(&p.with_extension("input.npy")).unwrap();
            let opts = ImportOptions {
                input_shapes: vec![InputShape { name: None, shape: x.shape().to_vec() }],
                ..Default::default()
            };
            let m = import_path(&p, &opts).unwrap();
            out.push((p.file_stem().unwrap().to_string_lossy().into_owned(), m, x));
        }
    }
    assert!(out.len() >= 7, "expected the committed test models");
    out
}

pub fn run_pipeline(m: &mut Module, pipeline: &str) -> RunReport {
    let mut pm = PassManager::from_pipeline(&clio_passes::registry(), pipeline).unwrap();
    pm.run(m).unwrap_or_else(|e| panic!("{pipeline}: {e}"))
}

pub fn run(m: &Module, x: &Tensor) -> Vec<f32> {
    let g = m.graph_names()[0].clone();
    clio::interp::run(m, &g, std::slice::from_ref(x)).unwrap()[0].as_f32().unwrap().to_vec()
}

/// Max |a - b| divided by the range of `b` (or by 1 when the range is tiny).
pub fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let (lo, hi) = b.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), x| (l.min(*x), h.max(*x)));
    let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    worst / (hi - lo).max(1e-6)
}

pub fn printed(m: &Module) -> String {
    print_module(m, &PrintOptions::default())
}
