// (shared by the quantization integration tests through `#[path]`)
//! Loading the test models with batch norms folded, and the output SQNR of a quantized module.

use clio::import::{import_path, ImportOptions};
use clio::interp::{run, run_int};
use clio::ir::{Module, Tensor};
use clio::pass::PassManager;
use clio::quant::calib::{calibrate, CalibOptions, CalibSource, Calibration};
use clio::quant::math::{SplitMix64, SqnrAcc};
use std::path::PathBuf;

/// `testdata/models/NAME.onnx`, imported, after `fuse-bn`.
#[allow(dead_code)]
pub fn import_fused(name: &str) -> Module {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/models/{name}.onnx"));
    let mut m = import_path(&p, &ImportOptions::default()).unwrap();
    PassManager::from_pipeline(&clio_passes::registry(), "fuse-bn").unwrap().run(&mut m).unwrap();
    m
}

/// Output SQNR (dB) of the quantized module (integer interpreter) vs the float one on `inputs`.
#[allow(dead_code)]
pub fn output_sqnr(float: &Module, quant: &Module, inputs: &[Tensor]) -> f64 {
    let mut acc = SqnrAcc::default();
    for x in inputs {
        let f = run(float, "main", std::slice::from_ref(x)).unwrap();
        let q = run_int(quant, "main", std::slice::from_ref(x)).unwrap();
        acc.add(f[0].as_f32().unwrap(), q[0].as_f32().unwrap());
    }
    acc.db()
}

/// Smooth inputs for the main graph of `m` (sums of random low-frequency waves per channel),
/// closer to images than white noise.
#[allow(dead_code)]
pub fn smooth_inputs(m: &Module, n: usize, seed: u64) -> Vec<Tensor> {
    let g = m.main_graph().unwrap();
    let shape = g.node(g.inputs()[0]).ty().shape.clone();
    let (c, h, w) = (shape[1], shape[2], shape[3]);
    let mut r = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let mut v = vec![0f32; c * h * w];
            for ch in 0..c {
                for _ in 0..3 {
                    let (fy, fx, ph, a) = (r.normal() * 0.3, r.normal() * 0.3, r.normal() * 3.0, r.normal() * 0.8);
                    for y in 0..h {
                        for x in 0..w {
                            v[(ch * h + y) * w + x] += (a * (fy * y as f64 + fx * x as f64 + ph).sin()) as f32;
                        }
                    }
                }
            }
            Tensor::from_f32(shape.clone(), v).unwrap()
        })
        .collect()
}

/// A fresh temporary directory (named after `tag` and the process) holding `samples` as
/// `000.npy`, `001.npy`, ...: a calibration source.
#[allow(dead_code)]
pub fn sample_dir(tag: &str, samples: &[Tensor]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{tag}_{}_{}", std::process::id(), samples.len()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, s) in samples.iter().enumerate() {
        clio::io::write_npy(&dir.join(format!("{i:03}.npy")), s).unwrap();
    }
    dir
}

/// The calibration of the main graph of `m` on `samples` (through .npy files, as users give
/// them) with `opts`.
#[allow(dead_code)]
pub fn calibrated_with(m: &Module, samples: &[Tensor], opts: CalibOptions) -> Calibration {
    let dir = sample_dir("clio_calib", samples);
    let source = CalibSource::parse(dir.to_str().unwrap(), 0, 0).unwrap();
    let c = calibrate(m, "main", &source, &opts).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    c
}
