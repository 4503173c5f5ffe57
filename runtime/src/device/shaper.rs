//! A link shaper: bytes written through it reach the socket when a link following a bandwidth
//! trace would have delivered them.
//!
//! The link is a [`LinkModel`] (set-up latency before the first byte of each request, framing
//! overhead as a fraction of the bytes) whose bandwidth at trace time `t` is `trace.at(t)`. A
//! send of `n` bytes starts when the link is free (now, or when the previous send ends), after
//! the set-up latency if it is the first send of a request, and ends at the time `T` where the
//! trace's bandwidth integrated from the start reaches `8 n (1 + overhead)` bits; the bandwidth
//! may change inside a send. Bytes go out in small chunks, each written when the link would have
//! delivered its last byte, so the receiver sees them arrive at the trace's rate.

use super::clock::TraceClock;
use clio::cost::LinkModel;
use clio::trace::BandwidthTrace;
use std::io::Write;

/// Default chunk: 32 bytes (about 1 ms at 250 kbit/s).
pub const DEFAULT_CHUNK_BYTES: usize = 32;

/// What one [`LinkShaper::send`] did, in trace time.
#[derive(Clone, Debug, PartialEq)]
pub struct SendReport {
    /// Bytes sent.
    pub bytes: usize,
    /// Bits the link carried for them (framing overhead included).
    pub wire_bits: f64,
    /// When the link started carrying them (after any set-up latency).
    pub start_s: f64,
    /// When the last byte was delivered.
    pub end_s: f64,
    /// Set-up latency paid by this send (the first of a request), else 0.
    pub setup_s: f64,
    /// Wall-clock duration of the call.
    pub duration_s: f64,
}

/// A trace-following link in front of a byte stream.
#[derive(Clone, Debug)]
pub struct LinkShaper {
    trace: BandwidthTrace,
    setup_s: f64,
    wire_factor: f64,
    clock: TraceClock,
    chunk: usize,
    busy_until: f64,
    setup_pending: bool,
}

impl LinkShaper {
    /// A shaper for `trace` (already scaled) with `link`'s set-up latency and framing overhead,
    /// on `clock`.
    pub fn new(trace: BandwidthTrace, link: &dyn LinkModel, clock: TraceClock) -> LinkShaper {
        // transfer_time_s(bytes, bw) = setup + 8 bytes (1 + overhead) / bw: read both back.
        let setup_s = link.transfer_time_s(1, f64::INFINITY).max(0.0);
        let wire_factor = (link.transfer_time_s(1, 8.0) - setup_s).max(1.0);
        LinkShaper::with_params(trace, setup_s, wire_factor - 1.0, clock)
    }

    /// A shaper with an explicit set-up latency and overhead fraction.
    pub fn with_params(trace: BandwidthTrace, setup_s: f64, overhead_fraction: f64, clock: TraceClock) -> LinkShaper {
        LinkShaper {
            trace,
            setup_s,
            wire_factor: 1.0 + overhead_fraction,
            clock,
            chunk: DEFAULT_CHUNK_BYTES,
            busy_until: f64::NEG_INFINITY,
            setup_pending: true,
        }
    }

    /// Sets the chunk size (bytes written per socket write, at least 1).
    pub fn with_chunk(mut self, bytes: usize) -> LinkShaper {
        self.chunk = bytes.max(1);
        self
    }

    /// The trace followed.
    pub fn trace(&self) -> &BandwidthTrace {
        &self.trace
    }

    /// The clock.
    pub fn clock(&self) -> &TraceClock {
        &self.clock
    }

    /// Starts a new request: its first send pays the set-up latency.
    pub fn begin_request(&mut self) {
        self.setup_pending = true;
    }

    /// Bits the link carries for `bytes` bytes.
    pub fn wire_bits(&self, bytes: usize) -> f64 {
        bytes as f64 * 8.0 * self.wire_factor
    }

    /// Trace time at which `bits` bits starting at `from` have been delivered (infinite if the
    /// bandwidth stays zero).
    pub fn deliver_time(&self, from: f64, bits: f64) -> f64 {
        let s = &self.trace.samples;
        let (mut t, mut left) = (from, bits);
        loop {
            if left <= 0.0 {
                return t;
            }
            let bw = self.trace.at(t);
            let next = s.partition_point(|(st, _)| *st <= t);
            let seg_end = s.get(next).map_or(f64::INFINITY, |(st, _)| *st);
            if bw > 0.0 {
                let need = left / bw;
                if t + need <= seg_end {
                    return t + need;
                }
                left -= bw * (seg_end - t);
            } else if seg_end.is_infinite() {
                return f64::INFINITY;
            }
            t = seg_end;
        }
    }

    /// When `n_bytes` would be delivered if the link started at `from` (paying the set-up latency
    /// first when `with_setup`; nothing to send is delivered at once, as in the link model).
    pub fn delivery_end(&self, from: f64, n_bytes: usize, with_setup: bool) -> f64 {
        if n_bytes == 0 {
            return from;
        }
        let start = from + if with_setup { self.setup_s } else { 0.0 };
        self.deliver_time(start, self.wire_bits(n_bytes))
    }

    /// When `n_bytes` sent now would be delivered.
    pub fn finish_time(&self, n_bytes: usize) -> f64 {
        self.delivery_end(self.clock.now().max(self.busy_until), n_bytes, self.setup_pending)
    }

    /// Whether `n_bytes` sent now would be delivered by trace time `deadline`.
    pub fn can_finish_by(&self, n_bytes: usize, deadline: f64) -> bool {
        self.finish_time(n_bytes) <= deadline
    }

    /// Sends `bytes` at the trace's rate: sleeps until each chunk's delivery time, then writes
    /// it. Returns when the last byte is written.
    pub fn send(&mut self, w: &mut impl Write, bytes: &[u8]) -> std::io::Result<SendReport> {
        let wall = std::time::Instant::now();
        let setup_s = if self.setup_pending { self.setup_s } else { 0.0 };
        self.setup_pending = false;
        let start = self.clock.now().max(self.busy_until) + setup_s;
        let mut cursor = start;
        for chunk in bytes.chunks(self.chunk) {
            cursor = self.deliver_time(cursor, self.wire_bits(chunk.len()));
            if !cursor.is_finite() {
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the link's bandwidth stays zero"));
            }
            self.clock.sleep_until(cursor);
            w.write_all(chunk)?;
        }
        w.flush()?;
        self.busy_until = cursor;
        Ok(SendReport {
            bytes: bytes.len(),
            wire_bits: self.wire_bits(bytes.len()),
            start_s: start,
            end_s: cursor,
            setup_s,
            duration_s: wall.elapsed().as_secs_f64(),
        })
    }
}
