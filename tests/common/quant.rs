// (shared by the quantization integration tests through `#[path]`)
//! Loading the test models with batch norms folded, and the output SQNR of a quantized module.

use clio::import::{import_path, ImportOptions};
use clio::interp::{run, run_int};
use clio::ir::{Module, Tensor};
use clio::pass::PassManager;
use clio::quant::math::SqnrAcc;

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
