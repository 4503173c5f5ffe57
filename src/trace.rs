//! Bandwidth traces: one sample per line, `time_s <whitespace> throughput_Mbit_per_s` (the
//! format of the HSDPA 3G traces in `../shared/traces/`), read into bit/s with an optional
//! scale factor (e.g. 1/8 to map 3G traces into the BLE band). Blank lines and `#` comments
//! are skipped; anything else malformed is an error naming the file and line.

// Decodes user text: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use crate::error::IoError;
use crate::{Error, Limits};
use std::path::Path;

/// A piecewise-constant bandwidth over time: sample `i` holds from its time until the next.
#[derive(Clone, Debug, PartialEq)]
pub struct BandwidthTrace {
    /// `(time_s, bit/s)`, times strictly increasing from the first sample.
    pub samples: Vec<(f64, f64)>,
}

impl BandwidthTrace {
    /// Reads a trace file, multiplying every bandwidth by `scale`.
    pub fn load(path: &Path, scale: f64) -> Result<BandwidthTrace, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| IoError::new(path, "cannot read", e))?;
        BandwidthTrace::parse(&text, &path.display().to_string(), scale)
    }

    /// Parses trace text; `file` names it in errors.
    pub fn parse(text: &str, file: &str, scale: f64) -> Result<BandwidthTrace, Error> {
        let err = |line: usize, m: String| Error::Format(format!("{file}:{line}: {m}"));
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::Format(format!("{file}: scale factor {scale} must be positive")));
        }
        let mut samples: Vec<(f64, f64)> = vec![];
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if samples.len() >= Limits::default().max_tensor_elements {
                return Err(err(i + 1, "too many samples".into()));
            }
            let mut parts = line.split_whitespace();
            let (Some(t), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(err(i + 1, format!("expected `time_s throughput_Mbit_per_s`, found `{line}`")));
            };
            let t: f64 = t.parse().map_err(|_| err(i + 1, format!("time `{t}` is not a number")))?;
            let b: f64 = b.parse().map_err(|_| err(i + 1, format!("throughput `{b}` is not a number")))?;
            if !t.is_finite() || !b.is_finite() || b < 0.0 {
                return Err(err(i + 1, format!("time {t} / throughput {b} must be finite, throughput >= 0")));
            }
            if let Some((prev, _)) = samples.last() {
                if t <= *prev {
                    return Err(err(i + 1, format!("time {t} does not increase (previous {prev})")));
                }
            }
            samples.push((t, b * 1e6 * scale));
        }
        if samples.len() < 2 {
            return Err(Error::Format(format!("{file}: a trace needs at least two samples")));
        }
        Ok(BandwidthTrace { samples })
    }

    // `samples` is a public field, so the methods below do not assume the two samples `parse`
    // guarantees: a trace built without samples starts and ends at 0 s with no bandwidth.

    /// Time of the first sample (0 for a trace without samples).
    pub fn start(&self) -> f64 {
        self.samples.first().map_or(0.0, |s| s.0)
    }

    /// Time of the last sample (the trace ends there; 0 for a trace without samples).
    pub fn end(&self) -> f64 {
        self.samples.last().map_or(0.0, |s| s.0)
    }

    /// The sample in force at time `t` (the first one before the trace starts).
    fn sample_at(&self, t: f64) -> Option<&(f64, f64)> {
        let i = self.samples.partition_point(|(s, _)| *s <= t);
        self.samples.get(i.saturating_sub(1))
    }

    /// Bandwidth at time `t` (clamped to the trace; 0 for a trace without samples).
    pub fn at(&self, t: f64) -> f64 {
        self.sample_at(t).map_or(0.0, |s| s.1)
    }

    /// Time-weighted mean bandwidth over `[from, to]` (clamped to the trace; a zero-length
    /// window gives the bandwidth at `from`).
    pub fn mean(&self, from: f64, to: f64) -> f64 {
        let (from, to) = (from.max(self.start()), to.min(self.end()));
        if to <= from {
            return self.at(from);
        }
        let mut acc = 0.0;
        let mut t = from;
        while t < to {
            let i = self.samples.partition_point(|(s, _)| *s <= t).saturating_sub(1);
            let next = self.samples.get(i + 1).map(|(s, _)| *s).unwrap_or(f64::INFINITY).min(to);
            acc += self.samples.get(i).map_or(0.0, |s| s.1) * (next - t);
            t = next;
        }
        acc / (to - from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_integrate() {
        let t = BandwidthTrace::parse("0.0\t1.0\n# comment\n1.0 3.0\n\n2.0 5.0\n", "t", 0.5).unwrap();
        assert_eq!(t.samples, vec![(0.0, 0.5e6), (1.0, 1.5e6), (2.0, 2.5e6)]);
        assert_eq!(t.at(1.5), 1.5e6);
        assert_eq!(t.at(-1.0), 0.5e6);
        assert!((t.mean(0.5, 1.5) - 1.0e6).abs() < 1e-6);
        assert!((t.mean(0.0, 2.0) - 1.0e6).abs() < 1e-6);
        assert_eq!(t.mean(1.2, 1.2), 1.5e6);
    }

    #[test]
    fn malformed_traces_name_file_and_line() {
        for (text, want) in [
            ("0 1\n1 x\n", "t:2: throughput `x` is not a number"),
            ("0 1\n0 2\n", "t:2: time 0 does not increase"),
            ("0 1 2\n", "t:1: expected `time_s throughput_Mbit_per_s`"),
            ("0 -1\n1 1\n", "t:1: time 0 / throughput -1 must be finite"),
            ("0 1\n", "t: a trace needs at least two samples"),
        ] {
            let e = BandwidthTrace::parse(text, "t", 1.0).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}");
        }
    }
}
