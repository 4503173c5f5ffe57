//! HWCE planning: which convolutions run on the HWCE, how their filters are packed and how
//! the engine's 16-bit outputs are made exact.
//!
//! The HWCE computes a "valid" KxK convolution (K in 3, 5, 7) of one 16-bit input plane into
//! 16-bit output planes, in vertical stripes at most 32 input pixels wide (even widths). clio
//! runs it with `Norm = 0` and the y_in accumulation disabled, so each call returns the exact
//! per-plane partial sums, as long as they fit 16 bits; the cluster cores add them into an int32
//! accumulator, which is rounded once (the integer interpreter's single rounding; the
//! engine's own per-plane rounding would differ).
//!
//! *Overflow proof.* q8 inputs are in [-128, 127], so a plane's partial sum is bounded by
//! `128 * sum |w|` over its filter. When a filter's bound exceeds 32767, every filter of the
//! layer is split into base-2^b digits (`w = sum_i d_i 2^(b i)`, low digits in `[0, 2^b)`, the
//! top one signed), run as separate HWCE passes and recombined with shifts. The smallest digit
//! count whose bounds all fit is chosen, from the actual weights; one digit when possible.
//!
//! *q16.* 16-bit inputs are split into two balanced 8-bit digits, `x = 256 xh + xl` with
//! `xl = ((x + 128) mod 256) - 128` in [-128, 127] and `xh = (x - xl) / 256` in [-128, 128],
//! so each input digit obeys the same `128 * sum |w|` bound; the weights (as many bits as the
//! layer's largest weight needs) are split as above, and every (input digit, weight digit)
//! pair is one HWCE pass, recombined with shifts `8 e + b i`. That costs at least twice the
//! passes of q8, so the lowering takes the HWCE for a q16 layer only when the cost model rates
//! its passes faster than the cluster cores' 16-bit rate.
//!
//! *Modes.* 3x3 layers use the multi-output mode with 3 output planes per call (27 MAC/cycle
//! peak), then 2 or 1 for the remainder; 5x5 and 7x7 produce one plane per call.

/// Largest input stripe width of the HWCE (pixels).
pub(crate) const STRIPE: usize = 32;

/// How a convolution runs on the HWCE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HwcePlan {
    /// Kernel size (3, 5 or 7).
    pub k: usize,
    /// Number of weight digits.
    pub digits: usize,
    /// Number of input digits: 1 (q8), 2 (q16: balanced 8-bit digits).
    pub in_digits: usize,
    /// Bits per digit.
    pub bits: u32,
    /// Coefficients per packed filter (3x3: 10, 5x5: 26, 7x7: 56).
    pub flen: usize,
    /// Packed filters, `[digit][cin][cout][flen]` (consecutive output planes of one input plane
    /// are adjacent, as the 3x3 multi-output mode reads them).
    pub filters: Vec<i16>,
    /// Output columns per stripe.
    pub stripe_out: usize,
    /// Width and height of the zero-padded int16 input plane.
    pub wp: usize,
    /// Height of the padded plane (= tile height).
    pub hp: usize,
    /// Largest partial-sum bound over all filters and digits (<= 32767).
    pub max_bound: i64,
}

impl HwcePlan {
    /// HWCE passes per input plane: input digits x weight digits.
    pub fn passes(&self) -> usize {
        self.digits * self.in_digits
    }

    /// Output planes per call in 3x3 mode (3) or 1.
    pub fn outs_per_call(&self) -> usize {
        if self.k == 3 {
            3
        } else {
            1
        }
    }
}

fn digit(w: i32, i: usize, n: usize, b: u32) -> i32 {
    if i + 1 == n {
        w >> (b * i as u32)
    } else {
        (w >> (b * i as u32)) & ((1 << b) - 1)
    }
}

/// Bits of the two's-complement form of the widest of `weights` (at least 1).
pub(crate) fn weight_bits(weights: &[i16]) -> u32 {
    let widest = weights.iter().map(|w| if *w < 0 { !(*w as i32) } else { *w as i32 }).max().unwrap_or(0);
    33 - (widest as u32).leading_zeros().min(32)
}

/// Plans a dense stride-1 KxK (K in 3, 5, 7) convolution of `cin` planes of `h x w` (pads
/// top, left) into `cout x ho x wo`, weights `[cout][cin][k][k]`: q8 (`q16` false: int8 inputs,
/// weights split from 8 bits) or q16 (two balanced input digits, weights split from the bits
/// they need).
pub(crate) fn plan(
    k: usize,
    cin: usize,
    cout: usize,
    ho: usize,
    wo: usize,
    weights: &[i16],
    q16: bool,
) -> Option<HwcePlan> {
    if !matches!(k, 3 | 5 | 7) || weights.len() != cout * cin * k * k {
        return None;
    }
    let flen = match k {
        3 => 10,
        5 => 26,
        _ => 56,
    };
    let stripe_out = STRIPE - (k - 1);
    let last = wo - (wo.saturating_sub(1) / stripe_out) * stripe_out;
    let wp = wo + k - 1 + last % 2;
    let hp = ho + k - 1;
    let (total_bits, in_digits) = if q16 { (weight_bits(weights), 2) } else { (8, 1) };
    let mut tried = vec![];
    for n in 1..=total_bits as usize {
        let b = total_bits.div_ceil(n as u32);
        if tried.contains(&b) {
            continue;
        }
        tried.push(b);
        let mut max_bound = 0i64;
        for f in weights.chunks_exact(k * k) {
            for i in 0..n {
                let s: i64 = f.iter().map(|w| digit(*w as i32, i, n, b).abs() as i64).sum();
                max_bound = max_bound.max(128 * s);
            }
        }
        if max_bound > 32767 {
            continue;
        }
        let mut filters = vec![0i16; n * cin * cout * flen];
        for i in 0..n {
            for ic in 0..cin {
                for oc in 0..cout {
                    let src = &weights[(oc * cin + ic) * k * k..(oc * cin + ic + 1) * k * k];
                    let dst = ((i * cin + ic) * cout + oc) * flen;
                    for (j, w) in src.iter().enumerate() {
                        filters[dst + j] = digit(*w as i32, i, n, b) as i16;
                    }
                }
            }
        }
        return Some(HwcePlan { k, digits: n, in_digits, bits: b, flen, filters, stripe_out, wp, hp, max_bound });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_recompose_every_int8() {
        for n in [1usize, 2, 3, 4, 8] {
            let b = 8u32.div_ceil(n as u32);
            for w in -128..=127 {
                let r: i32 = (0..n).map(|i| digit(w, i, n, b) << (b * i as u32)).sum();
                assert_eq!(r, w, "n {n} w {w}");
            }
        }
    }

    #[test]
    fn large_filters_are_split() {
        let w = vec![127i16; 9];
        let p = plan(3, 1, 1, 4, 4, &w, false).unwrap();
        assert!(p.digits > 1 && p.max_bound <= 32767, "{p:?}");
        let small = vec![3i16; 25];
        let p = plan(5, 1, 1, 4, 4, &small, false).unwrap();
        assert_eq!((p.digits, p.flen, p.filters.len(), p.passes()), (1, 26, 26, 1));
    }

    #[test]
    fn q16_weights_split_from_the_bits_they_need() {
        assert_eq!(
            (weight_bits(&[3, -4]), weight_bits(&[127, -128]), weight_bits(&[-129]), weight_bits(&[i16::MIN])),
            (3, 8, 9, 16)
        );
        // 8-bit weights in q16: the q8 split, times two input digits.
        let w: Vec<i16> = (0..9).map(|i| [100, -100, 7][i % 3]).collect();
        let p = plan(3, 1, 1, 4, 4, &w, true).unwrap();
        assert_eq!((p.in_digits, p.passes()), (2, 2 * p.digits));
        assert!(p.max_bound <= 32767);
        // Full 16-bit weights need many digit passes.
        let wide = vec![i16::MAX; 9];
        let p = plan(3, 1, 1, 4, 4, &wide, true).unwrap();
        assert!(p.digits >= 4, "{p:?}");
    }
}
