//! Helpers both backends' test suites share (included by `stm32_common` and `gap8_common`):
//! running pipelines, quantized partitioned device parts, seeded inputs, scratch directories.

#![allow(dead_code)]

use clio::pass::PassManager;
use clio::quant::math::SplitMix64;
use clio::{Module, Tensor};
use std::path::PathBuf;

/// Runs `pipeline` on `m`.
pub fn run_pipeline(m: &mut Module, pipeline: &str) {
    let mut pm = PassManager::from_pipeline(&clio_passes::registry(), pipeline).unwrap();
    pm.run(m).unwrap_or_else(|e| panic!("{pipeline}: {e}"));
}

/// Fuses BN, quantizes with `scheme` (seeded random calibration) and partitions at `cut`.
pub fn quantized_device(mut m: Module, scheme: &str, cut: &str, seed: u64) -> Module {
    run_pipeline(
        &mut m,
        &format!("fuse-bn,quantize{{scheme={scheme},calib=random:{seed},samples=3}},partition{{cut={cut}}}"),
    );
    m
}

/// Seeded f32 inputs for the device graph (standard normal, clamped to [-3, 3]).
pub fn inputs(m: &Module, n: usize, seed: u64) -> Vec<Tensor> {
    let g = m.graph("device").unwrap();
    let shape = g.node(g.inputs()[0]).ty().shape.clone();
    let numel: usize = shape.iter().product();
    let mut r = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            Tensor::from_f32(shape.clone(), (0..numel).map(|_| r.normal().clamp(-3.0, 3.0) as f32).collect()).unwrap()
        })
        .collect()
}

/// A fresh scratch directory `clio-<backend>-<pid>-<name>` under the system temp dir.
pub fn scratch_dir_for(backend: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("clio-{backend}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
