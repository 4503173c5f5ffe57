//! The training objective of progressive slicing: weights `pi_i` of the per-slice losses.
//!
//! With bandwidth `B` drawn from a distribution and `r_i` the bandwidth slice `i` needs to reach
//! the cloud within the radio budget, the runtime sends the largest slice that fits, so head `i`
//! answers with probability `P(r_i <= B < r_{i+1})` (the last head: `P(B >= r_n)`). Those are
//! the weights of Clio's expected loss `sum_i pi_i L_i`; `pi` is normalised over the cases where
//! some slice fits (`p_none = P(B < r_1)` is reported separately: there nothing is sent in time).
//! `p_fits[i] = P(B >= r_i)` is the probability that slice `i` can be sent at all.

use clio::trace::BandwidthTrace;

/// A bandwidth distribution (bit/s).
#[derive(Clone, Debug, PartialEq)]
pub enum BandwidthDist {
    /// Uniform on `[lo, hi]`.
    Uniform(f64, f64),
    /// Log-uniform on `[lo, hi]`.
    LogUniform(f64, f64),
    /// The time-weighted empirical distribution of a trace: `(bit/s, seconds)` pairs.
    Empirical(Vec<(f64, f64)>),
}

impl BandwidthDist {
    /// Parses `uniform:LO:HI` or `loguniform:LO:HI` (rates like `50k`, `2M`).
    pub fn parse_parametric(s: &str) -> Result<BandwidthDist, String> {
        let (kind, band) = s.split_once(':').ok_or_else(|| format!("bandwidth `{s}`: expected KIND:LO:HI"))?;
        let (lo, hi) = crate::plan::parse_band(band)?;
        match kind {
            "uniform" => Ok(BandwidthDist::Uniform(lo, hi)),
            "loguniform" => Ok(BandwidthDist::LogUniform(lo, hi)),
            _ => Err(format!("bandwidth `{s}`: unknown distribution `{kind}` (uniform, loguniform, trace:PATH, none)")),
        }
    }

    /// The distribution of a trace's bandwidth over its duration.
    pub fn from_trace(t: &BandwidthTrace) -> BandwidthDist {
        let mut v = vec![];
        for w in t.samples.windows(2) {
            v.push((w[0].1, w[1].0 - w[0].0));
        }
        BandwidthDist::Empirical(v)
    }

    /// `P(B >= x)`.
    pub fn survival(&self, x: f64) -> f64 {
        match self {
            BandwidthDist::Uniform(lo, hi) => ((hi - x) / (hi - lo)).clamp(0.0, 1.0),
            BandwidthDist::LogUniform(lo, hi) => {
                if x <= *lo {
                    1.0
                } else {
                    ((hi.ln() - x.ln()) / (hi.ln() - lo.ln())).clamp(0.0, 1.0)
                }
            }
            BandwidthDist::Empirical(v) => {
                let total: f64 = v.iter().map(|(_, w)| w).sum();
                if total <= 0.0 {
                    return 0.0;
                }
                v.iter().filter(|(b, _)| *b >= x).map(|(_, w)| w).sum::<f64>() / total
            }
        }
    }

    /// A short description for reports.
    pub fn describe(&self) -> String {
        match self {
            BandwidthDist::Uniform(lo, hi) => format!("uniform {lo:.0}..{hi:.0} bit/s"),
            BandwidthDist::LogUniform(lo, hi) => format!("log-uniform {lo:.0}..{hi:.0} bit/s"),
            BandwidthDist::Empirical(v) => format!("trace ({} samples)", v.len()),
        }
    }
}

/// Objective weights for slices needing bandwidths `needed` (smallest slice first; `None`: the
/// slice never fits the budget).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Objective {
    /// `P(B >= r_i)` per slice.
    pub p_fits: Vec<f64>,
    /// `P(head i answers | some slice fits)` per slice: the loss weights.
    pub pi: Vec<f64>,
    /// `P(no slice fits)`.
    pub p_none: f64,
}

/// Computes the objective weights. Errors when no slice ever fits (every weight would be 0).
pub fn objective(needed: &[Option<f64>], dist: &BandwidthDist) -> Result<Objective, String> {
    let p_fits: Vec<f64> = needed.iter().map(|r| r.map(|r| dist.survival(r)).unwrap_or(0.0)).collect();
    // The runtime sends the largest slice that fits: head i answers when slice i fits and no
    // larger one does. `needed` grows with the slice, so the fitting slices are a prefix.
    let mut used = vec![0.0; p_fits.len()];
    for i in 0..p_fits.len() {
        let larger = p_fits[i + 1..].iter().copied().fold(0.0, f64::max);
        used[i] = (p_fits[i] - larger).max(0.0);
    }
    let fits_any = p_fits.iter().copied().fold(0.0, f64::max);
    if fits_any <= 0.0 {
        return Err(format!(
            "no slice size is ever deliverable under the bandwidth distribution ({})",
            dist.describe()
        ));
    }
    Ok(Objective { pi: used.iter().map(|u| u / fits_any).collect(), p_fits, p_none: 1.0 - fits_any })
}
