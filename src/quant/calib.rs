//! Calibration: activation ranges from sample inputs.
//!
//! * **Samples** ([`CalibSource`]): `.npy` files or a directory of them (sorted by name, read
//!   one file at a time), or, only when asked for (`random`, `random:SEED`), seeded random
//!   inputs. A file whose leading dimension is a multiple of the model's batch is split into
//!   samples ([`split_samples`]).
//! * **Observation** ([`Calibrator`]): each sample runs through the float interpreter
//!   (`Interpreter::run_observed`); every f32 result 0 of every node (graph inputs included,
//!   weight reads excluded) updates that node's [`Histogram`]: exact min/max plus a fixed
//!   number of bins centred on 0 whose width doubles (merging bin pairs) whenever a value
//!   falls outside. Memory is bounded by `bins` counters per node, whatever the number of
//!   samples.
//! * **Ranges** ([`Histogram::range`]): `minmax` (observed extremes), `percentile` (the
//!   `p`-th and `(100 - p)`-th percentiles, interpolated within a bin) or `mse` (the clipping
//!   range minimising the histogram's quantisation MSE for the target format: a grid over
//!   shrunken lower and upper bounds for affine int8, the candidate fractional bits for Q
//!   formats).

use super::math::{choose_affine, pow2_frac, SplitMix64};
use crate::interp::Interpreter;
use crate::io::read_npy;
use crate::ir::{DType, Op, Tensor, TensorType};
use crate::{Error, Module};
use indexmap::IndexMap;
use std::path::{Path, PathBuf};

/// How a calibrated range is chosen from a histogram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RangeMethod {
    /// The observed minimum and maximum.
    MinMax,
    /// The `p`-th percentile (and `100 - p`-th for the lower bound), `p` in `(50, 100]`.
    Percentile(f64),
    /// The clipping range that minimises the quantisation MSE of the histogram.
    Mse,
}

/// The integer format a range is chosen for (the MSE search quantizes with it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RangeTarget {
    /// Asymmetric affine over `qmin..=qmax`.
    Affine {
        /// Smallest integer.
        qmin: i32,
        /// Largest integer.
        qmax: i32,
    },
    /// Power-of-two format over `-qmax-1..=qmax`.
    Pow2 {
        /// Largest integer.
        qmax: i32,
    },
}

/// Value distribution of one tensor over all samples, in bounded memory.
#[derive(Clone, Debug)]
pub struct Histogram {
    bins: Vec<u64>,
    width: f64,
    pending_zeros: u64,
    min: f64,
    max: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram with `bins` bins (rounded up to an even number, at least 16).
    pub fn new(bins: usize) -> Histogram {
        let n = bins.max(16).div_ceil(2) * 2;
        Histogram {
            bins: vec![0; n],
            width: 0.0,
            pending_zeros: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            count: 0,
        }
    }

    /// Number of finite values seen.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Observed minimum (`+inf` if empty).
    pub fn min(&self) -> f64 {
        self.min
    }

    /// Observed maximum (`-inf` if empty).
    pub fn max(&self) -> f64 {
        self.max
    }

    fn half(&self) -> usize {
        self.bins.len() / 2
    }

    /// Doubles the bin width, merging pairs of bins (the origin stays at a bin edge).
    fn widen(&mut self) {
        let n = self.bins.len();
        let h = self.half() as i64;
        let mut merged = vec![0u64; n];
        for (i, c) in self.bins.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            let k = (i as i64 - h).div_euclid(2) + h;
            merged[k.clamp(0, n as i64 - 1) as usize] += c;
        }
        self.bins = merged;
        self.width *= 2.0;
    }

    /// Adds values (NaN and infinities are ignored).
    pub fn add(&mut self, values: &[f32]) {
        let mut absmax = 0f64;
        let (mut lo, mut hi) = (self.min, self.max);
        for v in values {
            let v = *v as f64;
            if v.is_finite() {
                absmax = absmax.max(v.abs());
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if lo > hi {
            return;
        }
        self.min = lo;
        self.max = hi;
        if self.width == 0.0 {
            if absmax == 0.0 {
                let zeros = values.iter().filter(|v| v.is_finite()).count() as u64;
                self.pending_zeros += zeros;
                self.count += zeros;
                return;
            }
            self.width = absmax * (1.0 + 1e-6) / self.half() as f64;
            let h = self.half();
            self.bins[h] += std::mem::take(&mut self.pending_zeros);
        }
        while absmax >= self.width * self.half() as f64 {
            self.widen();
        }
        let h = self.half() as f64;
        let n = self.bins.len() as f64 - 1.0;
        let inv = 1.0 / self.width;
        for v in values {
            let v = *v as f64;
            if v.is_finite() {
                let i = ((v * inv).floor() + h).clamp(0.0, n) as usize;
                self.bins[i] += 1;
                self.count += 1;
            }
        }
    }

    /// `(center, count)` of every non-empty bin, centres clamped to the observed range.
    fn cells(&self) -> Vec<(f64, f64)> {
        if self.width == 0.0 {
            return if self.count > 0 { vec![(0.0, self.count as f64)] } else { vec![] };
        }
        let h = self.half() as f64;
        self.bins
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (((i as f64 - h + 0.5) * self.width).clamp(self.min, self.max), *c as f64))
            .collect()
    }

    /// The value below which a fraction `q` of the samples lies (linear within a bin).
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        if self.width == 0.0 {
            return 0.0;
        }
        let target = q.clamp(0.0, 1.0) * self.count as f64;
        let h = self.half() as f64;
        let mut acc = 0.0;
        for (i, c) in self.bins.iter().enumerate() {
            let c = *c as f64;
            if c > 0.0 && acc + c >= target {
                let frac = ((target - acc) / c).clamp(0.0, 1.0);
                let v = (i as f64 - h + frac) * self.width;
                return v.clamp(self.min, self.max);
            }
            acc += c;
        }
        self.max
    }

    /// The calibrated real range `[lo, hi]` for `method` and `target`. Empty histograms give
    /// `[0, 0]`.
    pub fn range(&self, method: RangeMethod, target: RangeTarget) -> (f64, f64) {
        if self.count == 0 {
            return (0.0, 0.0);
        }
        match method {
            RangeMethod::MinMax => (self.min, self.max),
            RangeMethod::Percentile(p) => {
                let p = (p / 100.0).clamp(0.5, 1.0);
                let lo = if self.min < 0.0 { self.quantile(1.0 - p).min(0.0) } else { self.min };
                let hi = if self.max > 0.0 { self.quantile(p).max(0.0) } else { self.max };
                (lo, hi)
            }
            RangeMethod::Mse => self.mse_range(target),
        }
    }

    /// The distribution of `factor * x` (`factor > 0` and finite): bin width and extremes are
    /// scaled, the counts are unchanged, so ranges and errors computed from the result are
    /// exactly those of a calibration of the scaled tensor (up to bin placement).
    pub fn scaled(&self, factor: f64) -> Histogram {
        assert!(factor > 0.0 && factor.is_finite(), "histogram scale factor must be positive and finite");
        let mut h = self.clone();
        h.width *= factor;
        if h.count > 0 {
            h.min *= factor;
            h.max *= factor;
        }
        h
    }

    /// Mean of `x^2` over the recorded values (bin centres), 0 when empty.
    pub fn mean_square(&self) -> f64 {
        let cells = self.cells();
        let n: f64 = cells.iter().map(|(_, c)| c).sum();
        if n == 0.0 {
            return 0.0;
        }
        cells.iter().map(|(x, c)| x * x * c).sum::<f64>() / n
    }

    /// Mean squared error of quantizing the recorded values (bin centres) to the power-of-two
    /// format with `frac` fractional bits over `-qmax-1..=qmax` (rounding, then saturation).
    pub fn pow2_mse(&self, frac: i32, qmax: i32) -> f64 {
        let cells = self.cells();
        let n: f64 = cells.iter().map(|(_, c)| c).sum();
        if n == 0.0 {
            return 0.0;
        }
        pow2_sq_error(&cells, frac, qmax) / n
    }

    fn mse_range(&self, target: RangeTarget) -> (f64, f64) {
        let cells = self.cells();
        let (lo0, hi0) = (self.min.min(0.0), self.max.max(0.0));
        match target {
            RangeTarget::Affine { qmin, qmax } => {
                let err = |lo: f64, hi: f64| -> f64 {
                    let (s, z) = choose_affine(lo, hi, qmin, qmax);
                    let s = s as f64;
                    cells
                        .iter()
                        .map(|(x, c)| {
                            let q = ((x / s).round() + z as f64).clamp(qmin as f64, qmax as f64);
                            let d = x - s * (q - z as f64);
                            d * d * c
                        })
                        .sum()
                };
                // Geometric grid of shrink factors, 1.0 first (ties keep the full range).
                let factors: Vec<f64> = (0..40).map(|i| 0.97f64.powi(i)).collect();
                let mut best = (err(lo0, hi0), lo0, hi0);
                let los: Vec<f64> = if lo0 < 0.0 { factors.iter().map(|f| lo0 * f).collect() } else { vec![lo0] };
                let his: Vec<f64> = if hi0 > 0.0 { factors.iter().map(|f| hi0 * f).collect() } else { vec![hi0] };
                for lo in &los {
                    for hi in &his {
                        let e = err(*lo, *hi);
                        if e < best.0 {
                            best = (e, *lo, *hi);
                        }
                    }
                }
                (best.1, best.2)
            }
            RangeTarget::Pow2 { qmax } => {
                let absmax = lo0.abs().max(hi0.abs());
                let f0 = pow2_frac(absmax, qmax);
                let err = |f: i32| pow2_sq_error(&cells, f, qmax);
                let mut best = (err(f0), f0);
                for f in f0 + 1..=f0 + 6 {
                    let e = err(f);
                    if e < best.0 {
                        best = (e, f);
                    }
                }
                // The range whose format is `best.1`.
                let r = qmax as f64 * 2f64.powi(-best.1);
                (-r.min(-lo0).max(0.0), r.min(hi0).max(0.0))
            }
        }
    }
}

/// Summed squared error of quantizing weighted `(value, count)` cells to the power-of-two
/// format with `frac` fractional bits over `-qmax-1..=qmax` (rounding, then saturation).
fn pow2_sq_error(cells: &[(f64, f64)], frac: i32, qmax: i32) -> f64 {
    let step = 2f64.powi(-frac);
    cells
        .iter()
        .map(|(x, c)| {
            let q = (x / step).round().clamp(-(qmax as f64) - 1.0, qmax as f64);
            let d = x - q * step;
            d * d * c
        })
        .sum()
}

/// Where calibration samples come from.
#[derive(Clone, Debug, PartialEq)]
pub enum CalibSource {
    /// `.npy` files, in order.
    Files(Vec<PathBuf>),
    /// Seeded standard-normal inputs (clipped to [-3, 3]); for tests and smoke runs only.
    Random {
        /// Number of samples.
        count: usize,
        /// PRNG seed.
        seed: u64,
    },
}

impl CalibSource {
    /// Parses a `calib=` value: `random`, `random:SEED` (with `count` samples), or a path to an
    /// `.npy` file or a directory of `.npy` files.
    pub fn parse(spec: &str, count: usize, default_seed: u64) -> Result<CalibSource, Error> {
        if spec == "random" {
            return Ok(CalibSource::Random { count, seed: default_seed });
        }
        if let Some(seed) = spec.strip_prefix("random:").or_else(|| spec.strip_prefix("random=")) {
            let seed =
                seed.parse().map_err(|_| Error::Format(format!("calib: `{spec}`: the seed must be an integer")))?;
            return Ok(CalibSource::Random { count, seed });
        }
        Ok(CalibSource::Files(npy_files(Path::new(spec))?))
    }
}

/// The `.npy` files at `path`: the file itself, or the directory's `*.npy` sorted by name.
pub fn npy_files(path: &Path) -> Result<Vec<PathBuf>, Error> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::Format(format!(
            "calibration data {}: {e} (expected an .npy file or a directory of them)",
            path.display()
        ))
    })?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::Format(format!("calibration data {}: {e}", path.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("npy")) && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Format(format!("calibration data {}: the directory has no .npy files", path.display())));
    }
    Ok(files)
}

/// Splits one tensor read from `file` into samples of the model input type `input`:
/// the exact shape; a leading dimension that is a multiple of the model's batch; the shape
/// without the batch dimension (batch 1); or an extra leading sample dimension. Integer
/// tensors are converted to f32.
pub fn split_samples(t: Tensor, input: &TensorType, file: &str) -> Result<Vec<Tensor>, Error> {
    let s = input.shape.as_slice();
    let t = to_f32(t);
    let ts = t.shape().to_vec();
    let bad = || {
        Error::Format(format!(
            "{file}: calibration tensor of shape {ts:?} does not match the model input {s:?} \
             (expected {s:?}, [k*{}, ...] or {:?})",
            s.first().copied().unwrap_or(1),
            s.get(1..).unwrap_or(&[])
        ))
    };
    if ts == s {
        return Ok(vec![t]);
    }
    let data = t.as_f32().ok_or_else(bad)?.to_vec();
    let per: usize = s.iter().product();
    if per == 0 {
        return Err(bad());
    }
    let ok_split = (ts.len() == s.len() && !s.is_empty() && ts[1..] == s[1..] && s[0] > 0 && ts[0] % s[0] == 0)
        || (ts.len() == s.len() + 1 && ts[1..] == *s)
        || (s.first() == Some(&1) && ts == s[1..]);
    if !ok_split || data.len() % per != 0 {
        return Err(bad());
    }
    data.chunks_exact(per)
        .map(|c| Tensor::from_f32(s.to_vec(), c.to_vec()).map_err(|e| Error::Format(format!("{file}: {e}"))))
        .collect()
}

fn to_f32(t: Tensor) -> Tensor {
    if t.dtype() == DType::F32 {
        return t;
    }
    let shape = t.shape().to_vec();
    let v = t.to_f64_vec().into_iter().map(|x| x as f32).collect();
    Tensor::from_f32(shape, v).unwrap_or(t)
}

/// Options of a calibration run.
#[derive(Clone, Debug)]
pub struct CalibOptions {
    /// Histogram bins per tensor (default 2048).
    pub bins: usize,
    /// Use at most this many samples (`None`: all).
    pub max_samples: Option<usize>,
    /// Show a progress bar on stderr (hidden automatically when stderr is not a terminal).
    pub progress: bool,
    /// Also record every value's element-wise mean ([`Calibration::mean_maps`]; memory: one f64
    /// per element of one sample of every value).
    pub mean_maps: bool,
}

impl Default for CalibOptions {
    fn default() -> Self {
        CalibOptions { bins: 2048, max_samples: None, progress: true, mean_maps: false }
    }
}

/// Element-wise mean of one value over all samples (one mean per element of a sample: the
/// leading, batch dimension is averaged too), as bias correction needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeanMap {
    /// Shape of one sample (the value's shape without its leading dimension).
    shape: Vec<usize>,
    sums: Vec<f64>,
    /// Samples summed (batch entries included).
    samples: u64,
}

impl MeanMap {
    /// Adds one observed tensor of shape `shape` (row-major `values`); its leading dimension is
    /// the batch. A tensor whose per-sample shape differs from the earlier ones is ignored
    /// (shapes are static in a graph).
    pub fn add(&mut self, shape: &[usize], values: &[f32]) {
        let Some((&batch, sample)) = shape.split_first() else { return };
        let numel: usize = sample.iter().product();
        if batch == 0 || numel == 0 || values.len() != batch * numel {
            return;
        }
        if self.sums.is_empty() {
            self.shape = sample.to_vec();
            self.sums = vec![0.0; numel];
        } else if self.shape != sample {
            return;
        }
        for chunk in values.chunks(numel) {
            for (s, v) in self.sums.iter_mut().zip(chunk) {
                *s += *v as f64;
            }
        }
        self.samples += batch as u64;
    }

    /// The shape of one sample (`[C, H, W]` for an NCHW activation).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The mean of every element of a sample, row-major (empty before any tensor was added).
    pub fn means(&self) -> Vec<f64> {
        let n = self.samples.max(1) as f64;
        self.sums.iter().map(|s| s / n).collect()
    }

    /// The means of the values multiplied by `factor`.
    pub fn scaled(&self, factor: f64) -> MeanMap {
        MeanMap {
            shape: self.shape.clone(),
            sums: self.sums.iter().map(|s| s * factor).collect(),
            samples: self.samples,
        }
    }
}

/// The observed distributions of one graph's values, by node name.
#[derive(Clone, Debug, Default)]
pub struct Calibration {
    /// One histogram per observed node (result 0), by node name.
    pub histograms: IndexMap<String, Histogram>,
    /// With [`CalibOptions::mean_maps`]: the element-wise mean of every observed node (result
    /// 0), by node name; empty otherwise.
    pub mean_maps: IndexMap<String, MeanMap>,
    /// Number of samples observed.
    pub samples: usize,
}

/// Feeds samples through the float interpreter and records histograms.
pub struct Calibrator<'m> {
    interp: Interpreter<'m>,
    calib: Calibration,
    bins: usize,
    mean_maps: bool,
}

impl<'m> Calibrator<'m> {
    /// A calibrator for graph `graph` of `module` (which must be a float graph with one input).
    pub fn new(module: &'m Module, graph: &str, bins: usize) -> Result<Self, Error> {
        let interp = Interpreter::new(module, graph)?;
        if interp.graph().inputs().len() != 1 {
            return Err(Error::Format(format!(
                "calibration supports graphs with one input; @{graph} has {}",
                interp.graph().inputs().len()
            )));
        }
        Ok(Calibrator { interp, calib: Calibration::default(), bins, mean_maps: false })
    }

    /// Also records the element-wise mean of every value ([`Calibration::mean_maps`]).
    pub fn with_mean_maps(mut self, on: bool) -> Self {
        self.mean_maps = on;
        self
    }

    /// The type of the graph's single input.
    pub fn input_type(&self) -> TensorType {
        let g = self.interp.graph();
        g.node(g.inputs()[0]).ty().clone()
    }

    /// Runs one sample and updates the histograms.
    pub fn observe(&mut self, sample: &Tensor) -> Result<(), Error> {
        let g = self.interp.graph();
        let hist = &mut self.calib.histograms;
        let mut means = self.mean_maps.then_some(&mut self.calib.mean_maps);
        let bins = self.bins;
        self.interp.run_observed(std::slice::from_ref(sample), &mut |id, t| {
            let node = g.node(id);
            if matches!(node.op, Op::Weight { .. }) {
                return;
            }
            if let Some(v) = t.as_f32() {
                hist.entry(node.name().to_string()).or_insert_with(|| Histogram::new(bins)).add(v);
                if let Some(means) = means.as_deref_mut() {
                    means.entry(node.name().to_string()).or_default().add(t.shape(), v);
                }
            }
        })?;
        self.calib.samples += 1;
        Ok(())
    }

    /// The histograms so far.
    pub fn finish(self) -> Calibration {
        self.calib
    }
}

/// Calibrates graph `graph` of `module` on `source`.
pub fn calibrate(
    module: &Module,
    graph: &str,
    source: &CalibSource,
    opts: &CalibOptions,
) -> Result<Calibration, Error> {
    let mut c = Calibrator::new(module, graph, opts.bins)?.with_mean_maps(opts.mean_maps);
    let input = c.input_type();
    let limit = opts.max_samples.unwrap_or(usize::MAX);
    let bar = |len: u64, what: &str| {
        let pb = if opts.progress { indicatif::ProgressBar::new(len) } else { indicatif::ProgressBar::hidden() };
        pb.set_style(
            indicatif::ProgressStyle::with_template("calibrating {bar:30} {pos}/{len} {msg} [{elapsed}<{eta}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb.set_message(what.to_string());
        pb
    };
    match source {
        CalibSource::Random { count, seed } => {
            let n = (*count).min(limit);
            let pb = bar(n as u64, "random samples");
            let mut rng = SplitMix64::new(*seed);
            let numel: usize = input.shape.iter().product();
            for _ in 0..n {
                let v: Vec<f32> = (0..numel).map(|_| rng.normal().clamp(-3.0, 3.0) as f32).collect();
                let t = Tensor::from_f32(input.shape.clone(), v).map_err(|e| Error::Format(e.to_string()))?;
                c.observe(&t)?;
                pb.inc(1);
            }
            pb.finish_and_clear();
        }
        CalibSource::Files(files) => {
            let pb = bar(files.len() as u64, "files");
            'files: for f in files {
                let t = read_npy(f)?;
                let samples = split_samples(t, &input, &f.display().to_string())?;
                if files.len() == 1 {
                    pb.set_length(samples.len().min(limit) as u64);
                    pb.set_message("samples");
                }
                for s in samples {
                    if c.calib.samples >= limit {
                        break 'files;
                    }
                    c.observe(&s)?;
                    if files.len() == 1 {
                        pb.inc(1);
                    }
                }
                if files.len() > 1 {
                    pb.inc(1);
                }
            }
            pb.finish_and_clear();
        }
    }
    if c.calib.samples == 0 {
        return Err(Error::Format("calibration saw no samples".into()));
    }
    Ok(c.finish())
}

/// Loads evaluation samples (same rules as calibration) into memory.
pub fn load_samples(source: &CalibSource, input: &TensorType, max: Option<usize>) -> Result<Vec<Tensor>, Error> {
    let limit = max.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    match source {
        CalibSource::Random { count, seed } => {
            let mut rng = SplitMix64::new(*seed);
            let numel: usize = input.shape.iter().product();
            for _ in 0..(*count).min(limit) {
                let v: Vec<f32> = (0..numel).map(|_| rng.normal().clamp(-3.0, 3.0) as f32).collect();
                out.push(Tensor::from_f32(input.shape.clone(), v).map_err(|e| Error::Format(e.to_string()))?);
            }
        }
        CalibSource::Files(files) => {
            for f in files {
                for s in split_samples(read_npy(f)?, input, &f.display().to_string())? {
                    if out.len() >= limit {
                        return Ok(out);
                    }
                    out.push(s);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_map_averages_samples_and_batch_entries() {
        let mut m = MeanMap::default();
        // A batch of two [1, 2] samples, then one more sample.
        m.add(&[2, 1, 2], &[1.0, 2.0, 3.0, 4.0]);
        m.add(&[1, 1, 2], &[5.0, 0.0]);
        assert_eq!(m.shape(), &[1, 2]);
        assert_eq!(m.means(), vec![3.0, 2.0]);
        // A value of another per-sample shape is ignored, not mixed in.
        m.add(&[1, 2, 2], &[9.0; 4]);
        assert_eq!(m.means(), vec![3.0, 2.0]);
        assert_eq!(m.scaled(2.0).means(), vec![6.0, 4.0]);
    }

    #[test]
    fn histogram_widens_and_keeps_extremes() {
        let mut h = Histogram::new(64);
        h.add(&[0.1, -0.2, 0.05]);
        h.add(&[10.0, -3.0]);
        assert_eq!(h.count(), 5);
        assert_eq!(h.min(), -3.0);
        assert_eq!(h.max(), 10.0);
        let q = h.quantile(1.0);
        assert!((q - 10.0).abs() < 1e-9);
        let (lo, hi) = h.range(RangeMethod::MinMax, RangeTarget::Affine { qmin: -128, qmax: 127 });
        assert_eq!((lo, hi), (-3.0, 10.0));
    }

    #[test]
    fn percentile_clips_outliers() {
        let mut h = Histogram::new(2048);
        let v: Vec<f32> = (0..10000).map(|i| (i % 100) as f32 / 100.0).collect();
        h.add(&v);
        h.add(&[1000.0]);
        let (_, hi) = h.range(RangeMethod::Percentile(99.0), RangeTarget::Affine { qmin: -128, qmax: 127 });
        assert!(hi < 2.0, "{hi}");
        // MSE keeps a single far outlier (clipping it costs more than the coarser grid) but never
        // leaves the observed range.
        let (lo, hi) = h.range(RangeMethod::Mse, RangeTarget::Affine { qmin: -128, qmax: 127 });
        assert!(lo >= 0.0 && hi <= 1000.0 && hi > 0.5, "{lo} {hi}");
        // Many moderate outliers: MSE clips below the maximum.
        let mut h = Histogram::new(2048);
        let v: Vec<f32> =
            (0..10000).map(|i| ((i % 100) as f32 / 100.0) * if i % 50 == 0 { 8.0 } else { 1.0 }).collect();
        h.add(&v);
        let (_, hi) = h.range(RangeMethod::Mse, RangeTarget::Affine { qmin: -128, qmax: 127 });
        assert!(hi < 7.9, "{hi}");
    }

    #[test]
    fn split_leading_batch() {
        let ty = TensorType::f32([1, 2, 2]);
        let t = Tensor::from_f32([3, 2, 2], (0..12).map(|x| x as f32).collect()).unwrap();
        let s = split_samples(t, &ty, "x.npy").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[2].as_f32().unwrap(), &[8.0, 9.0, 10.0, 11.0]);
        let bad = Tensor::from_f32([3, 2, 3], vec![0.0; 18]).unwrap();
        assert!(split_samples(bad, &ty, "x.npy").unwrap_err().to_string().contains("does not match"));
    }
}
