//! The device program: one frame per period on the trace clock, each
//!
//! 1. choose `<cut, slice>` with the shared [`Policy`] from the bandwidth estimate;
//! 2. on a cut switch, pay the switch cost (sleep);
//! 3. run the cut's [`DeviceModule`] on the quantized image and (optionally) wait out the
//!    target's modelled device latency from the plan;
//! 4. send `Begin` (radio budget of the cut, less the switch cost), then the cut tensor's
//!    channels group by group (group = the plan's slice step) through the [`LinkShaper`] until
//!    all are sent or the next group cannot arrive by the deadline, then `Done`;
//! 5. read the cloud's answer and log the frame.
//!
//! The bandwidth estimate learns from the sends ([`BandwidthEstimator`]). Every decision and
//! every frame is one JSON line handed to the caller's log sink.

use super::clock::TraceClock;
use super::estimator::BandwidthEstimator;
use super::module::{DeviceModule, ModuleError};
use super::shaper::LinkShaper;
use crate::protocol::{read_frame, Frame, ReadError, DEFAULT_MAX_FRAME};
use clio::quant::wire;
use clio::Limits;
use clio_passes::plan::policy::{Framing, Policy};
pub use clio_passes::plan::simulate::Estimator;
use std::collections::BTreeMap;
use std::io::Write;

/// Why the device program stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The device module failed.
    #[error("device module: {0}")]
    Module(#[from] ModuleError),
    /// Writing to the server failed.
    #[error("sending to the server: {0}")]
    Send(std::io::Error),
    /// Reading the server's answer failed.
    #[error("reading the server's answer: {0}")]
    Receive(ReadError),
    /// The server answered with an error frame.
    #[error("server error {code} on request {request}: {message}")]
    Server {
        /// Request.
        request: u32,
        /// Error code name.
        code: String,
        /// Its message.
        message: String,
    },
    /// The server answered with something other than this request's result.
    #[error("unexpected {0} frame from the server")]
    Unexpected(String),
    /// The policy chose a cut with no module, or the plan does not know it.
    #[error("cut {0} has no deployed device module or no plan entry")]
    NoModule(usize),
    /// The module's output is not a valid wire message.
    #[error("cut {cut}: bad wire message: {message}")]
    Wire {
        /// The cut.
        cut: usize,
        /// The wire error.
        message: String,
    },
    /// Nothing to do.
    #[error("{0}")]
    Config(String),
}

/// Bytes of a frame's length prefix, type byte and the three `u32` fields `Begin` and
/// `Channels` start with.
pub const FRAME_HEAD_BYTES: u64 = (crate::protocol::LENGTH_BYTES + 1 + 12) as u64;

/// The protocol's framing as the policy counts it: `Begin` carries the wire header
/// (`header_bytes`), every channel group its own frame head.
pub fn protocol_framing(header_bytes: usize) -> Framing {
    Framing { begin_bytes: FRAME_HEAD_BYTES + header_bytes as u64, group_bytes: FRAME_HEAD_BYTES }
}

/// One deployed cut: its device module and how many channels go in one `Channels` frame.
#[derive(Debug)]
pub struct Deployed {
    /// The compiled device part.
    pub module: DeviceModule,
    /// Channels per group (the plan's slice step at this cut).
    pub group: usize,
}

/// One input image with its label.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Float pixels, NCHW, normalised as in training.
    pub nchw: Vec<f32>,
    /// True class.
    pub label: usize,
}

/// Settings of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramConfig {
    /// Frames to run.
    pub frames: usize,
    /// Seconds between frame starts (trace clock).
    pub period_s: f64,
    /// Wait out the plan's device latency after running the module.
    pub emulate_device_latency: bool,
    /// How the policy reads the recent sends: their mean throughput (Clio's rule) or their
    /// distribution (each send's throughput; `Policy::choose_over`).
    pub estimator: Estimator,
}

/// The log of one frame.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FrameLog {
    /// Frame index.
    pub frame: usize,
    /// Frame start, trace time.
    pub t: f64,
    /// Bandwidth estimate the decision used.
    pub estimate_bps: f64,
    /// Mean trace bandwidth over the send window.
    pub actual_bps: f64,
    /// Cut used.
    pub cut: usize,
    /// Channels the policy planned at the estimate.
    pub planned_channels: usize,
    /// Whether the cut changed.
    pub switched: bool,
    /// Channels sent.
    pub sent: usize,
    /// Channels the server had received.
    pub received: u32,
    /// Slice size whose head ran (0: deadline miss).
    pub used: u32,
    /// Predicted class (-1: none).
    pub class: i32,
    /// True class.
    pub label: usize,
    /// `class == label`.
    pub correct: bool,
    /// Profiled accuracy of the slice used.
    pub expected_accuracy: f64,
    /// Frame start to answer, ms.
    pub latency_ms: f64,
    /// Server: Begin to head start, us.
    pub wait_us: u32,
    /// Server: head compute, us.
    pub compute_us: u32,
    /// No head ran.
    pub miss: bool,
    /// The answer came after the plan's deadline.
    pub late: bool,
}

/// The log of one decision.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DecisionLog {
    /// Frame index.
    pub frame: usize,
    /// Trace time.
    pub t: f64,
    /// Estimate used.
    pub estimate_bps: f64,
    /// Sends in the estimate's window.
    pub sends_in_window: usize,
    /// Cut before.
    pub from: Option<usize>,
    /// Cut chosen.
    pub cut: usize,
    /// Channels planned.
    pub channels: usize,
    /// Expected accuracy at the estimate.
    pub expected_accuracy: f64,
    /// Whether this switches cut.
    pub switching: bool,
    /// Radio budget after the switch cost.
    pub radio_budget_s: f64,
}

/// One log line.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum LogLine {
    /// A decision.
    Decision(DecisionLog),
    /// A finished frame.
    Frame(FrameLog),
}

/// Totals of a run.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Frames run.
    pub frames: usize,
    /// Frames answered with the right class.
    pub correct: usize,
    /// Mean profiled accuracy of the slices used.
    pub expected_accuracy: f64,
    /// Frames where no head ran.
    pub misses: usize,
    /// Answers after the deadline.
    pub late: usize,
    /// Cut switches.
    pub switches: usize,
    /// Mean slice size used.
    pub mean_channels: f64,
    /// Mean end-to-end latency, ms.
    pub mean_latency_ms: f64,
    /// 95th percentile latency, ms.
    pub p95_latency_ms: f64,
}

impl Summary {
    /// Fraction of frames answered correctly.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.frames.max(1) as f64
    }

    fn of(frames: &[FrameLog]) -> Summary {
        let n = frames.len().max(1) as f64;
        let mut lat: Vec<f64> = frames.iter().map(|f| f.latency_ms).collect();
        lat.sort_by(f64::total_cmp);
        let p95 = lat.get(((lat.len() as f64 * 0.95).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
        Summary {
            frames: frames.len(),
            correct: frames.iter().filter(|f| f.correct).count(),
            expected_accuracy: frames.iter().map(|f| f.expected_accuracy).sum::<f64>() / n,
            misses: frames.iter().filter(|f| f.miss).count(),
            late: frames.iter().filter(|f| f.late).count(),
            switches: frames.iter().filter(|f| f.switched).count(),
            mean_channels: frames.iter().map(|f| f.used as f64).sum::<f64>() / n,
            mean_latency_ms: lat.iter().sum::<f64>() / n,
            p95_latency_ms: p95,
        }
    }
}

/// A device: deployed modules, policy, link shaper and estimator, talking to one server.
pub struct Device<'a, S: std::io::Read + Write> {
    /// The connection to the server.
    pub stream: S,
    /// The choice rule.
    pub policy: &'a Policy<'a>,
    /// Modules by cut.
    pub deployed: BTreeMap<usize, Deployed>,
    /// The shaped link.
    pub shaper: LinkShaper,
    /// The bandwidth estimate.
    pub estimator: BandwidthEstimator,
}

impl<S: std::io::Read + Write> Device<'_, S> {
    /// Runs `cfg.frames` frames over `images` (cycled), handing every log line to `log`.
    pub fn run(
        &mut self,
        images: &[Image],
        cfg: &ProgramConfig,
        log: &mut dyn FnMut(&LogLine),
    ) -> Result<(Summary, Vec<FrameLog>), DeviceError> {
        if images.is_empty() || cfg.frames == 0 || cfg.period_s.is_nan() || cfg.period_s <= 0.0 {
            return Err(DeviceError::Config("need images, frames > 0 and a positive period".into()));
        }
        let clock: TraceClock = *self.shaper.clock();
        let t0 = clock.now();
        let mut current: Option<usize> = None;
        let mut frames = vec![];
        for i in 0..cfg.frames {
            let t = t0 + i as f64 * cfg.period_s;
            clock.sleep_until(t);
            let image = &images[i % images.len()];
            let f = self.frame(i, t, image, current, cfg, &clock, log)?;
            current = Some(f.cut);
            log(&LogLine::Frame(f.clone()));
            frames.push(f);
        }
        Ok((Summary::of(&frames), frames))
    }

    #[allow(clippy::too_many_arguments)]
    fn frame(
        &mut self,
        i: usize,
        t: f64,
        image: &Image,
        current: Option<usize>,
        cfg: &ProgramConfig,
        clock: &TraceClock,
        log: &mut dyn FnMut(&LogLine),
    ) -> Result<FrameLog, DeviceError> {
        let estimate = self.estimator.estimate(t);
        let sends_in_window = self.estimator.samples_in_window(t);
        let d = match cfg.estimator {
            Estimator::Mean => self.policy.choose(estimate, current),
            Estimator::Distribution => self.policy.choose_over(&self.estimator.throughputs(t), current),
        }
        .ok_or(DeviceError::Config("no cut is deployed".into()))?;
        log(&LogLine::Decision(DecisionLog {
            frame: i,
            t,
            estimate_bps: estimate,
            sends_in_window,
            from: current,
            cut: d.cut,
            channels: d.channels,
            expected_accuracy: d.expected_accuracy,
            switching: d.switching,
            radio_budget_s: d.radio_budget_s,
        }));
        let cut_plan = self.policy.plan().cut(d.cut).ok_or(DeviceError::NoModule(d.cut))?;
        let switch_s = if d.switching { self.policy.switch_s() } else { 0.0 };
        if d.switching {
            clock.sleep_until(t + switch_s);
        }
        let dep = self.deployed.get_mut(&d.cut).ok_or(DeviceError::NoModule(d.cut))?;
        let x = dep.module.input().quantize(&image.nchw)?;
        let message = dep.module.invoke(&x)?;
        if cfg.emulate_device_latency {
            clock.sleep_until(t + switch_s + cut_plan.device_latency_s);
        }
        let wire_err = |e: wire::WireError| DeviceError::Wire { cut: d.cut, message: e.to_string() };
        let h = wire::parse_header(&message, &Limits::default()).map_err(wire_err)?;
        let (cb, total) = (h.channel_bytes(), h.shape.get(h.axis).copied().unwrap_or(0));
        let group = dep.group.max(1);
        // The radio window starts now; the deadline is the budget after it.
        let send_start = clock.now();
        let budget = d.radio_budget_s.max(0.0);
        let deadline = send_start + budget;
        let request = i as u32;
        self.shaper.begin_request();
        let begin = Frame::Begin {
            request,
            cut: d.cut as u32,
            budget_us: (budget * 1e6).round() as u32,
            header: message[..h.payload_at].to_vec(),
        };
        let (mut bits, mut busy, mut first_start, mut last_end) = (0.0, 0.0, f64::INFINITY, send_start);
        let mut account = |r: &super::shaper::SendReport| {
            bits += r.wire_bits;
            busy += r.end_s - r.start_s;
            first_start = first_start.min(r.start_s);
            last_end = r.end_s;
        };
        let r = self.shaper.send(&mut self.stream, &begin.encode()).map_err(DeviceError::Send)?;
        account(&r);
        let mut sent = 0;
        while sent < total {
            let count = group.min(total - sent);
            let at = h.payload_at + sent * cb;
            let payload = message.get(at..at + count * cb).ok_or(DeviceError::Wire {
                cut: d.cut,
                message: format!(
                    "message is {} bytes, channel {} needs {}",
                    message.len(),
                    sent + count,
                    at + count * cb
                ),
            })?;
            let f = Frame::Channels { request, first: sent as u32, count: count as u32, payload: payload.to_vec() };
            let bytes = f.encode();
            if !self.shaper.can_finish_by(bytes.len(), deadline) {
                break;
            }
            let r = self.shaper.send(&mut self.stream, &bytes).map_err(DeviceError::Send)?;
            account(&r);
            sent += count;
        }
        let r = self.shaper.send(&mut self.stream, &Frame::Done { request }.encode()).map_err(DeviceError::Send)?;
        account(&r);
        self.estimator.record(last_end, bits, busy);
        let answer = loop {
            match read_frame(&mut self.stream, DEFAULT_MAX_FRAME).map_err(DeviceError::Receive)? {
                Frame::Result(a) if a.request == request => break a,
                // An answer to an older request (cannot happen one request at a time): skip it.
                Frame::Result(_) => continue,
                Frame::Error { request, code, message } => {
                    return Err(DeviceError::Server { request, code: code.to_string(), message })
                }
                other => return Err(DeviceError::Unexpected(other.name().to_string())),
            }
        };
        let latency_s = clock.now() - t;
        let trace = self.shaper.trace();
        let actual = if first_start.is_finite() { trace.mean(first_start, last_end) } else { trace.at(send_start) };
        Ok(FrameLog {
            frame: i,
            t,
            estimate_bps: estimate,
            actual_bps: actual,
            cut: d.cut,
            planned_channels: d.channels,
            switched: d.switching,
            sent,
            received: answer.received,
            used: answer.used,
            class: answer.class,
            label: image.label,
            correct: answer.class >= 0 && answer.class as usize == image.label,
            expected_accuracy: self.policy.accuracy_of(d.cut, answer.used as usize),
            latency_ms: latency_s * 1e3,
            wait_us: answer.wait_us,
            compute_us: answer.compute_us,
            miss: answer.used == 0,
            late: latency_s > self.policy.plan().settings.latency_s,
        })
    }
}
