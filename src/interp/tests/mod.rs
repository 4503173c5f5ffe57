//! Interpreter tests. Kernels are compared with hand-computed values and with the naive
//! direct-loop references of `reference.rs` (written independently of the kernels, in f64) on
//! random shapes drawn from a seeded xorshift generator.

mod activation;
mod conv;
mod elementwise;
mod errors;
mod fuzz;
mod layout;
mod linear;
mod norm;
mod perf;
mod pool;
mod quant;
mod reference;
mod tract_oracle;
mod walker;

use super::{InterpError, Interpreter};
use crate::ir::{Builder, DType, Module, Op, Tensor, TensorType, Value};

/// xorshift64* — deterministic, dependency-free.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
    /// `n` values in `[-1, 1)`.
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform(-1.0, 1.0)).collect()
    }
    /// A random f32 tensor of `shape`.
    pub fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f32(shape.to_vec(), self.vec(n)).unwrap()
    }
}

/// An f32 tensor.
pub(crate) fn t(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_f32(shape.to_vec(), data.to_vec()).unwrap()
}

fn ty_of(x: &Tensor) -> TensorType {
    TensorType::new(x.shape().to_vec(), x.dtype())
}

/// Builds `@main` applying `op` to graph inputs holding `inputs` and runs it.
pub(crate) fn run_op(op: Op, inputs: &[Tensor]) -> Result<Vec<Tensor>, InterpError> {
    let mut m = Module::new("t");
    {
        let mut b = Builder::new(&mut m, "main");
        let xs: Vec<Value> = inputs.iter().enumerate().map(|(i, x)| b.input(&format!("x{i}"), ty_of(x))).collect();
        let y = b.op("y", op, &xs).unwrap_or_else(|e| panic!("building the test graph: {e}"));
        b.output(y);
    }
    super::run(&m, "main", inputs)
}

/// Like [`run_op`] but the operands after the first are module weights.
pub(crate) fn run_op_weights(op: Op, x: &Tensor, weights: &[Tensor]) -> Result<Vec<Tensor>, InterpError> {
    let mut m = Module::new("t");
    {
        let mut b = Builder::new(&mut m, "main");
        let mut ops = vec![b.input("x", ty_of(x))];
        for (i, w) in weights.iter().enumerate() {
            ops.push(b.weight(&format!("w{i}"), w.clone()));
        }
        let y = b.op("y", op, &ops).unwrap_or_else(|e| panic!("building the test graph: {e}"));
        b.output(y);
    }
    Interpreter::new(&m, "main")?.run(std::slice::from_ref(x))
}

/// Runs a single-op graph and returns its only output as f32s.
pub(crate) fn run1(op: Op, inputs: &[Tensor]) -> Tensor {
    let mut out = run_op(op, inputs).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.len(), 1);
    out.remove(0)
}

/// Asserts `got` matches `want` within `tol` relative to the larger of 1 and the output range.
#[track_caller]
pub(crate) fn assert_close(got: &Tensor, want_shape: &[usize], want: &[f64], tol: f64) {
    assert_eq!(got.shape(), want_shape, "shape");
    assert_eq!(got.dtype(), DType::F32);
    let g = got.as_f32().unwrap();
    assert_eq!(g.len(), want.len());
    let range = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (a, b)) in g.iter().zip(want).enumerate() {
        let ok = (*a as f64 - b).abs() <= tol * range || (a.is_nan() && b.is_nan()) || (*a as f64 == *b);
        assert!(ok, "element {i}: got {a}, want {b} (range {range})");
    }
}

/// Exact comparison with f32 literals.
#[track_caller]
pub(crate) fn assert_f32(got: &Tensor, want_shape: &[usize], want: &[f32]) {
    let w: Vec<f64> = want.iter().map(|v| *v as f64).collect();
    assert_close(got, want_shape, &w, 1e-6);
}
