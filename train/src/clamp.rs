//! ReLU and clip (ReLU6) as one fused operation with a one-pass backward.
//!
//! candle differentiates `relu` and `clamp` through comparison masks built from several
//! temporary tensors (`clamp` is a maximum and a minimum, each with an equality mask, a division
//! and an affine), which was about a quarter of a MobileNetV2 training step. [`Clamp`] keeps the
//! input and passes the gradient where it lies strictly inside `(min, max)`, as PyTorch's
//! `relu` / `hardtanh` do.

use crate::cpu::{elements, with_elements};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

type CResult<T> = candle_core::Result<T>;

/// `y = min(max(x, min), max)`.
struct Clamp {
    min: f32,
    max: f32,
}

impl CustomOp1 for Clamp {
    fn name(&self) -> &'static str {
        "clamp"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let y = elements(s, l, "clamp input")?.iter().map(|&v| v.max(self.min).min(self.max)).collect();
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, g: &Tensor) -> CResult<Option<Tensor>> {
        let dx = with_elements(x, "clamp input", |xv| {
            with_elements(g, "clamp gradient", |gv| {
                Ok(xv
                    .iter()
                    .zip(gv)
                    .map(|(&v, &d)| if v > self.min && v < self.max { d } else { 0.0 })
                    .collect::<Vec<f32>>())
            })
        })?;
        Ok(Some(Tensor::from_vec(dx, x.dims(), x.device())?))
    }
}

/// `x` clamped to `[min, max]` (`max = f32::INFINITY` for ReLU); gradient 1 strictly inside.
pub fn clamp(x: &Tensor, min: f32, max: f32) -> CResult<Tensor> {
    x.contiguous()?.apply_op1(Clamp { min, max })
}

/// ReLU: [`clamp`] to `[0, inf)`.
pub fn relu(x: &Tensor) -> CResult<Tensor> {
    clamp(x, 0.0, f32::INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{close, loss, ramp};

    #[test]
    fn clamp_and_relu_match_candle_away_from_the_kinks() {
        // ramp's values are multiples of 1/9, offset by 1/18 so that none sits on a kink, where
        // candle splits the gradient and this kernel (as PyTorch) passes none.
        let x = ramp(&[2, 3, 5, 5], 1);
        let shifted = x.as_tensor().affine(1.0, 1.0 / 18.0).unwrap();
        for (min, max) in [(0.0f32, 6.0f32), (-0.3, 0.4), (0.0, f32::INFINITY)] {
            let y = if max.is_finite() { clamp(&shifted, min, max).unwrap() } else { relu(&shifted).unwrap() };
            let r = if max.is_finite() { shifted.clamp(min, max).unwrap() } else { shifted.relu().unwrap() };
            close(&y, &r, "value");
            let (g1, g2) = (loss(&y).backward().unwrap(), loss(&r).backward().unwrap());
            close(g1.get(x.as_tensor()).unwrap(), g2.get(x.as_tensor()).unwrap(), &format!("dx, [{min}, {max}]"));
        }
    }

    #[test]
    fn no_gradient_flows_at_or_beyond_the_bounds() {
        let x = candle_core::Var::new(&[-1f32, 0.0, 0.5, 6.0, 7.0], &candle_core::Device::Cpu).unwrap();
        let grads = clamp(x.as_tensor(), 0.0, 6.0).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(grads.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap(), [0.0, 0.0, 1.0, 0.0, 0.0]);
    }
}
