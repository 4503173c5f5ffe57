//! The trace clock: trace time = wall time since a start instant + an offset, so a device
//! program replays a bandwidth trace from any point in real time.

use std::time::{Duration, Instant};

/// Maps wall time onto a bandwidth trace's time axis.
#[derive(Clone, Copy, Debug)]
pub struct TraceClock {
    origin: Instant,
    offset_s: f64,
}

impl TraceClock {
    /// A clock reading `offset_s` at `origin`.
    pub fn new(origin: Instant, offset_s: f64) -> TraceClock {
        TraceClock { origin, offset_s }
    }

    /// A clock reading `offset_s` now.
    pub fn starting_now(offset_s: f64) -> TraceClock {
        TraceClock::new(Instant::now(), offset_s)
    }

    /// The current trace time.
    pub fn now(&self) -> f64 {
        self.offset_s + self.origin.elapsed().as_secs_f64()
    }

    /// The wall instant of trace time `t`.
    pub fn instant(&self, t: f64) -> Instant {
        let d = t - self.offset_s;
        if d >= 0.0 {
            self.origin + Duration::from_secs_f64(d)
        } else {
            self.origin.checked_sub(Duration::from_secs_f64(-d)).unwrap_or(self.origin)
        }
    }

    /// Sleeps until trace time `t` (returns at once if it has passed).
    pub fn sleep_until(&self, t: f64) {
        let now = self.now();
        if t > now {
            std::thread::sleep(Duration::from_secs_f64(t - now));
        }
    }
}
