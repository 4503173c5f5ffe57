//! Helpers shared by the unit tests of the hand-written kernels ([`crate::fused`], [`crate::conv`]).

use candle_core::{Device, Tensor, Var};

/// A deterministic, irregular test tensor of `shape` (values in about [-1.6, 1.6]).
pub fn ramp(shape: &[usize], seed: usize) -> Var {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| (((i * 37 + seed * 11) % 29) as f32 - 14.0) / 9.0).collect();
    Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap()).unwrap()
}

/// Asserts `a` and `b` agree to 1e-4 relative to the larger of 1 and `b`'s largest magnitude.
pub fn close(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes differ");
    let d = a.sub(b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    let s = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1.0);
    assert!(d / s < 1e-4, "{what}: differs by {d} (scale {s})");
}

/// A loss that weights every output differently, so gradients are not symmetric.
pub fn loss(y: &Tensor) -> Tensor {
    let w = ramp(y.dims(), 5);
    y.mul(w.as_tensor()).unwrap().sum_all().unwrap()
}
