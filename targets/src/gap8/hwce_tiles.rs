//! L1 tiling of an HWCE layer: chunks of output channels times bands of output rows.
//!
//! Per (chunk, band) the layer accumulates in an int32 L1 tile: for every input plane the
//! cluster DMA brings the band's input rows (at most `rows + K - 1`) into one of two L1 raw
//! buffers, the cores build vertical stripes of the zero-padded int16 band from it (at most 32
//! pixels wide) in two L1 buffers in turn, the HWCE writes up to three int16 output tiles per
//! call and the cores add them into the accumulator.
//! After the last plane the cores round the accumulator into an L1 output tile, which the
//! DMA writes back to the L2 activation while the next (chunk, band) runs.
//!
//! Everything lives in the streamed layers' L1 pool, carved per layer; [`ConvStep::try_hwce_tiles`]
//! picks the chunk and band height with the least re-padded input that fits, and so proves the
//! tiles fit L1.

use super::hwce::{HwcePlan, STRIPE};
use super::program::{four, ConvStep, Engine};

/// Byte offsets of an HWCE layer's buffers in the L1 pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HwceL1 {
    /// Bytes of one raw input band (two, double-buffered, from offset 0).
    pub raw: usize,
    /// Offset and bytes of each of the two int16 input stripes.
    pub stripes_at: usize,
    pub stripe: usize,
    /// Offset and bytes of each of the three int16 HWCE output tiles.
    pub tiles_at: usize,
    pub tile: usize,
    /// Offset of the chunk's filters of one input plane, every weight digit (int16).
    pub filters_at: usize,
    /// Offset of the int32 accumulator (chunk x rows x wo).
    pub acc_at: usize,
    /// Offset of the 8-bit output tile (chunk x rows x wo).
    pub out_at: usize,
    /// Total bytes.
    pub total: usize,
}

impl HwceL1 {
    /// The layout for `chunk` output channels and bands of `rows` output rows.
    pub fn new(c: &ConvStep, h: &HwcePlan, chunk: usize, rows: usize) -> Self {
        let raw = four(c.w * (rows + h.k - 1).min(c.h) * c.es);
        let stripes_at = 2 * raw;
        let stripe = 2 * STRIPE * (rows + h.k - 1);
        let tile = four(2 * h.stripe_out * rows);
        let tiles_at = stripes_at + 2 * stripe;
        let filters_at = tiles_at + 3 * tile;
        let acc_at = filters_at + four(2 * h.digits * chunk * h.flen);
        let out_at = acc_at + 4 * chunk * rows * c.wo;
        let total = out_at + four(chunk * rows * c.wo * c.es);
        HwceL1 { raw, stripes_at, stripe, tiles_at, tile, filters_at, acc_at, out_at, total }
    }
}

impl ConvStep {
    /// The plan of an HWCE layer.
    pub fn hwce(&self) -> Option<&HwcePlan> {
        match &self.engine {
            Engine::Hwce(h) => Some(h),
            _ => None,
        }
    }

    /// The L1 layout of an HWCE layer at its chunk and band height.
    pub fn hwce_l1(&self) -> Option<HwceL1> {
        self.hwce().map(|h| HwceL1::new(self, h, self.chunk, self.rows))
    }

    /// Chooses the chunk (whole multi-out units, or every output channel) and band height of
    /// an HWCE layer so that its L1 tiles fit `budget` bytes, minimising the input rows padded
    /// and moved (`chunks x (ho + bands x (K - 1))`; ties: the larger chunk). `false` when not
    /// even one unit of one row fits.
    pub fn try_hwce_tiles(&mut self, budget: usize) -> bool {
        let Some(h) = self.hwce() else { return false };
        let unit = self.chunk_unit();
        let mut best: Option<(usize, usize, usize)> = None;
        let mut chunk = self.cout.max(1);
        loop {
            let fits = |rows: usize| HwceL1::new(self, h, chunk, rows).total <= budget;
            if let Some(rows) = (1..=self.ho).rev().find(|r| fits(*r)) {
                let cost = self.cout.div_ceil(chunk) * (self.ho + self.ho.div_ceil(rows) * (h.k - 1));
                if best.is_none_or(|(c, _, _)| cost < c) {
                    best = Some((cost, chunk, rows));
                }
            }
            if chunk <= unit {
                break;
            }
            chunk = ((chunk - 1) / unit * unit).max(unit);
        }
        let Some((_, chunk, rows)) = best else { return false };
        self.chunk = chunk;
        self.rows = rows;
        true
    }

    /// The reason text of an HWCE layer's L1 tiling (empty for other engines).
    pub fn hwce_note(&self) -> String {
        let Some(l1) = self.hwce_l1() else { return String::new() };
        let bands = if self.rows < self.ho {
            format!(" in bands of {} of {} output rows (row tiling)", self.rows, self.ho)
        } else {
            String::new()
        };
        format!(
            "; L1 tiles: {} output channel(s) of int32 accumulator{bands}, double-buffered input rows by DMA in, stripes padded in L1 by the cores, the output tile by DMA out ({} B of L1)",
            self.chunk, l1.total
        )
    }
}
