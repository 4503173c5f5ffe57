//! Helpers shared by the canonicalize and fold-constants tests (included with `mod`).
#![allow(dead_code)]

use clio::import::{import_path, ImportOptions, InputShape, MissingExternalData};
use clio::interp::Interpreter;
use clio::ir::{Module, Tensor};
use clio::pass::{PassManager, RunReport};
use clio::text::{parse_module, print_module, ParseOptions, PrintOptions};
use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// Files `dir/PREFIX*.EXT`, sorted.
pub fn files(dir: &Path, prefix: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            name.starts_with(prefix) && name.ends_with(&format!(".{ext}"))
        })
        .collect();
    v.sort();
    v
}

/// A golden file's `// RUN:` pipeline.
pub fn run_header(src: &str) -> String {
    src.lines()
        .take_while(|l| l.starts_with("//"))
        .find_map(|l| l.strip_prefix("//")?.trim().strip_prefix("RUN:").map(|s| s.trim().to_string()))
        .expect("a `// RUN:` header")
}

/// Parses a `.clio` file.
pub fn parse_file(path: &Path) -> Module {
    let src = std::fs::read_to_string(path).unwrap();
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    parse_module(&src, &ParseOptions { file, ..Default::default() }).unwrap_or_else(|e| panic!("{e}"))
}

/// Imports a test model with the shapes of its committed input (keras models are NHWC).
pub fn import_model(path: &Path) -> Module {
    let mut opts = ImportOptions { missing_external_data: MissingExternalData::Zeros, ..Default::default() };
    if let Ok(t) = clio::io::read_npy(&path.with_extension("input.npy")) {
        opts.input_shapes.push(InputShape { name: None, shape: t.shape().to_vec() });
    } else if path.file_name().is_some_and(|f| f.to_string_lossy().starts_with("keras")) {
        opts.input_shapes.push(InputShape::parse("1x32x32x3").unwrap());
    }
    import_path(path, &opts).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a textual pipeline (verify-each on).
pub fn run_pipeline(m: &mut Module, pipeline: &str) -> RunReport {
    let mut pm = PassManager::from_pipeline(&clio_passes::registry(), pipeline).unwrap_or_else(|e| panic!("{e}"));
    pm.run(m).unwrap_or_else(|e| panic!("{pipeline}: {e}"))
}

/// The module's text with weight digests (a changed weight shows).
pub fn printed(m: &Module) -> String {
    print_module(m, &PrintOptions::default())
}

/// A deterministic xorshift generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// Random f32 inputs for graph `main` of `m`, in [-scale, scale).
pub fn random_inputs(m: &Module, seed: u64, scale: f32) -> Vec<Tensor> {
    let g = m.graph("main").expect("graph @main");
    let mut r = Rng::new(seed);
    g.inputs()
        .iter()
        .map(|id| {
            let ty = g.node(*id).ty();
            let n: usize = ty.shape.iter().product();
            Tensor::from_f32(ty.shape.clone(), (0..n).map(|_| r.f32() * scale).collect()).unwrap()
        })
        .collect()
}

/// Runs graph `main` with the float interpreter (the custom op `acme.id` of the golden files is
/// the identity).
pub fn eval(m: &Module, inputs: &[Tensor]) -> Vec<Tensor> {
    Interpreter::new(m, "main")
        .unwrap()
        .with_custom("acme.id", |ins, _| Ok(vec![ins[0].clone()]))
        .run(inputs)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Asserts that every output agrees within `rel` of the reference output's range.
pub fn assert_close(what: &str, want: &[Tensor], got: &[Tensor], rel: f64) {
    assert_eq!(want.len(), got.len(), "{what}: output count");
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        assert_eq!(w.shape(), g.shape(), "{what}: output {i} shape");
        let (w, g) = (w.to_f64_vec(), g.to_f64_vec());
        let (lo, hi) = w.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| (l.min(*x), h.max(*x)));
        let range = (hi - lo).max(1e-6);
        let worst = w.iter().zip(&g).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst <= rel * range, "{what}: output {i} differs by {worst} (range {range}, tolerance {rel})");
    }
}
