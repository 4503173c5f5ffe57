//! Deterministic weight initialisation: one SplitMix64 stream per weight, seeded from the model
//! seed and the weight name, so a weight's values do not depend on which other weights exist.
//! Only integer arithmetic and IEEE f32 `+ * sqrt` are used: the same seed gives the same bits on
//! every platform.

use crate::ir::Tensor;

/// A SplitMix64 generator producing uniform f32 values.
#[derive(Clone, Debug)]
pub struct WeightRng(u64);

impl WeightRng {
    /// The stream for weight `name` of a model seeded with `seed`.
    pub fn for_weight(seed: u64, name: &str) -> Self {
        // FNV-1a over the name, mixed with the seed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.as_bytes() {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        WeightRng(h ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 24 random bits.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// A tensor of `shape` with elements uniform in `[lo, hi)`.
    pub fn tensor(&mut self, shape: &[usize], lo: f32, hi: f32) -> Tensor {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| self.uniform(lo, hi)).collect();
        // The data has exactly `product(shape)` elements by construction; the model builders
        // bound every shape (MAX_MODEL_ELEMENTS) before calling this.
        #[allow(clippy::expect_used)]
        Tensor::from_f32(shape.to_vec(), data).expect("element count matches the shape")
    }
}

/// How a weight is initialised.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Init {
    /// He-uniform from the fan-in: `U(-sqrt(6 / fan_in), sqrt(6 / fan_in))`.
    HeUniform { fan_in: usize },
    /// PyTorch's default for linear layers and biases: `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
    TorchDefault { fan_in: usize },
    /// Uniform in a fixed range.
    Uniform(f32, f32),
}

impl Init {
    pub(crate) fn range(self) -> (f32, f32) {
        match self {
            Init::HeUniform { fan_in } => {
                let b = (6.0f32 / fan_in.max(1) as f32).sqrt();
                (-b, b)
            }
            Init::TorchDefault { fan_in } => {
                let b = 1.0f32 / (fan_in.max(1) as f32).sqrt();
                (-b, b)
            }
            Init::Uniform(lo, hi) => (lo, hi),
        }
    }
}
