//! [`EggClock`]: the clock egg reads while `canonicalize` runs, without the start-up cost of
//! egg's own.
//!
//! egg times its runners (the time limit, per-phase statistics) with `quanta::Instant`, whose
//! global clock calibrates the CPU's time-stamp counter against the OS clock the first time any
//! code asks for the time: a busy loop of at least 500 rounds and up to 200 ms. Measured here,
//! it was 10-20 ms of a 35-ms `clio opt` on MobileNetV2 (30,000 `clock_gettime` calls), paid
//! by every process that runs `canonicalize`. This clock is a `quanta` mock that the pass
//! advances to the real elapsed time (from `std::time::Instant`) before each runner starts and
//! from a runner hook once per iteration, which is where egg checks its time limit anyway: the
//! `timeout-ms` limit holds at iteration granularity, as it did with egg's clock.

use quanta::{Clock, Mock};
use std::sync::Arc;
use std::time::Instant;

/// A mock `quanta` clock that follows the wall clock when told to.
#[derive(Clone)]
pub(crate) struct EggClock {
    clock: Clock,
    mock: Arc<Mock>,
    start: Instant,
}

impl EggClock {
    /// A clock reading zero now.
    pub(crate) fn new() -> EggClock {
        let (clock, mock) = Clock::mock();
        EggClock { clock, mock, start: Instant::now() }
    }

    /// Runs `f` with this clock as the one `quanta::Instant::now` (and so egg) reads on this thread.
    pub(crate) fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        quanta::with_clock(&self.clock, f)
    }

    /// A runner hook (egg runs hooks once per iteration) that calls [`EggClock::sync`].
    pub(crate) fn sync_hook<R>(&self) -> impl FnMut(&mut R) -> Result<(), String> + 'static {
        let clock = self.clone();
        move |_| {
            clock.sync();
            Ok(())
        }
    }

    /// Advances the clock to the real time elapsed since [`EggClock::new`].
    pub(crate) fn sync(&self) {
        let real = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let shown = self.mock.value();
        if real > shown {
            self.mock.increment(real - shown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_wall_clock_only_when_synced() {
        let c = EggClock::new();
        c.run(|| {
            let t0 = quanta::Instant::now();
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert_eq!(t0.elapsed(), std::time::Duration::ZERO, "a mock does not move by itself");
            c.sync();
            assert!(t0.elapsed() >= std::time::Duration::from_millis(20), "{:?}", t0.elapsed());
        });
    }
}
