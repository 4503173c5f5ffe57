//! The device's bandwidth estimate, as in Clio: bits sent divided by the time spent sending
//! them, over the sends of the last `window_s` seconds. Before the first send the estimate is an
//! initial value (the link's nominal bandwidth, or one given); when the window holds no send
//! any more, the last estimate stands.

use std::collections::VecDeque;

/// One send the estimator learns from.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    end_s: f64,
    bits: f64,
    seconds: f64,
}

/// Mean throughput of recent sends.
#[derive(Clone, Debug)]
pub struct BandwidthEstimator {
    window_s: f64,
    last_bps: f64,
    samples: VecDeque<Sample>,
}

impl BandwidthEstimator {
    /// An estimator over the last `window_s` seconds, reporting `initial_bps` until it has seen a
    /// send.
    pub fn new(window_s: f64, initial_bps: f64) -> BandwidthEstimator {
        BandwidthEstimator { window_s: window_s.max(0.0), last_bps: initial_bps, samples: VecDeque::new() }
    }

    /// Records that `bits` went out in `seconds` of sending, the last of them at `end_s`.
    /// Sends of no time or no bits are ignored.
    pub fn record(&mut self, end_s: f64, bits: f64, seconds: f64) {
        if bits > 0.0 && seconds > 0.0 && bits.is_finite() && seconds.is_finite() {
            self.samples.push_back(Sample { end_s, bits, seconds });
        }
    }

    /// Sends recorded within the window ending at `now`.
    pub fn samples_in_window(&self, now: f64) -> usize {
        self.samples.iter().filter(|s| s.end_s > now - self.window_s && s.end_s <= now).count()
    }

    /// Forgets the sends that ended before the window ending at `now`.
    fn expire(&mut self, now: f64) {
        while self.samples.front().is_some_and(|s| s.end_s <= now - self.window_s) {
            self.samples.pop_front();
        }
    }

    /// The throughput of each send that ended in `(now - window, now]` (bits / its sending
    /// time): the distribution `Policy::choose_over` scores cuts by. With no send in the window,
    /// the current estimate alone.
    pub fn throughputs(&mut self, now: f64) -> Vec<f64> {
        let mean = self.estimate(now);
        let v: Vec<f64> = self.samples.iter().filter(|s| s.end_s <= now).map(|s| s.bits / s.seconds).collect();
        if v.is_empty() {
            vec![mean]
        } else {
            v
        }
    }

    /// The estimate at trace time `now`: total bits / total sending time of the sends that ended
    /// in `(now - window, now]`, else the previous estimate.
    pub fn estimate(&mut self, now: f64) -> f64 {
        self.expire(now);
        let (bits, secs) =
            self.samples.iter().filter(|s| s.end_s <= now).fold((0.0, 0.0), |(b, t), s| (b + s.bits, t + s.seconds));
        if secs > 0.0 {
            self.last_bps = bits / secs;
        }
        self.last_bps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_start_reports_the_initial_value() {
        let mut e = BandwidthEstimator::new(10.0, 250e3);
        assert_eq!(e.estimate(0.0), 250e3);
        assert_eq!(e.estimate(100.0), 250e3);
    }

    #[test]
    fn estimate_is_bits_over_sending_time_within_the_window() {
        let mut e = BandwidthEstimator::new(10.0, 1.0);
        // 100 kbit in 1 s, then 300 kbit in 0.5 s: 400 kbit / 1.5 s.
        e.record(1.0, 100e3, 1.0);
        e.record(5.0, 300e3, 0.5);
        assert!((e.estimate(6.0) - 400e3 / 1.5).abs() < 1e-6);
        // At t = 11.5 only the second send (ended at 5.0 > 1.5) is in the window.
        assert!((e.estimate(11.5) - 600e3).abs() < 1e-6);
        assert_eq!(e.samples_in_window(11.5), 1);
        // Once the window is empty the last estimate stands.
        assert!((e.estimate(30.0) - 600e3).abs() < 1e-6);
        assert_eq!(e.samples_in_window(30.0), 0);
        // A send recorded after `now` does not count yet.
        e.record(40.0, 10e3, 1.0);
        assert!((e.estimate(35.0) - 600e3).abs() < 1e-6);
        assert!((e.estimate(40.0) - 10e3).abs() < 1e-6);
    }

    #[test]
    fn empty_sends_are_ignored() {
        let mut e = BandwidthEstimator::new(5.0, 7.0);
        e.record(1.0, 0.0, 1.0);
        e.record(1.0, 8.0, 0.0);
        assert_eq!(e.estimate(2.0), 7.0);
    }

    #[test]
    fn throughputs_are_per_send_within_the_window() {
        let mut e = BandwidthEstimator::new(10.0, 250e3);
        assert_eq!(e.throughputs(0.0), vec![250e3]);
        e.record(1.0, 100e3, 1.0);
        e.record(2.0, 300e3, 0.5);
        assert_eq!(e.throughputs(5.0), vec![100e3, 600e3]);
        // The first send leaves the window at 11 s; with none left, the last estimate stands.
        assert_eq!(e.throughputs(11.5), vec![600e3]);
        assert_eq!(e.throughputs(30.0), vec![600e3]);
    }
}
