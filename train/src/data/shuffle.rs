//! Deterministic epoch shuffles: Fisher-Yates driven by splitmix64.
//!
//! Only 64-bit integer arithmetic is used, so the order depends on nothing but `(n, seed, epoch)`
//! and is the same on every platform.

/// A splitmix64 generator (Steele, Lea and Flood's 64-bit mixer over a Weyl sequence).
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound > 0`) by the multiply-high method; the bias is below
    /// `bound / 2^64`, irrelevant for dataset sizes.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

/// The indices `0..n` in a pseudo-random order determined by `seed` and `epoch`.
///
/// The same `(n, seed, epoch)` gives the same order on every platform; different epochs give
/// independent-looking orders.
pub fn shuffled_indices(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    // Derive the stream from both numbers through the mixer, so that (seed, epoch) and
    // (seed + 1, epoch - 1) do not share a stream.
    let mut rng = SplitMix64::new(SplitMix64::new(seed).next_u64() ^ epoch.wrapping_mul(0xd1b5_4a32_d192_ed03));
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}
