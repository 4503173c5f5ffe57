//! Runtime selection and trace replay: given a plan, accuracy profiles and a bandwidth trace,
//! choose `<cut, slice>` per frame and compare fixed-cut progressive slicing, adaptive
//! partitioning and an oracle that knows the bandwidth.
//!
//! Model of one frame at time `t` (frames every `period_s`):
//! * the device estimates the bandwidth as the mean of the trace over the last `window_s`
//!   seconds (Clio uses the last minute) and picks the deployed cut whose best deliverable
//!   slice has the highest profiled accuracy (ties keep the current cut);
//! * changing cut costs `switch_s` (about 20 ms on GAP8), taken from that frame's radio time;
//! * the device streams the cut tensor channel by channel; what arrives by the deadline is what
//!   the actual bandwidth (mean of the trace over the radio window) delivers, and the cloud
//!   uses the largest profiled slice that arrived completely;
//! * if not even the smallest slice arrives, the frame misses its deadline: accuracy 0.

// Parses user accuracy profiles and traces: no panicking indexing or slicing (docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::policy::{Framing, Policy};
use super::Plan;
use clio::cost::LinkModel;
use clio::trace::BandwidthTrace;
use std::collections::BTreeMap;

/// Accuracy per `<cut k, channels sent>`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AccuracyProfile {
    /// Model the profile belongs to (informative).
    #[serde(default)]
    pub model: String,
    /// The measurements.
    pub entries: Vec<ProfileEntry>,
}

/// One measured accuracy.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProfileEntry {
    /// Cut index `k` of the plan.
    pub cut: usize,
    /// Channels of the cut tensor sent (slice size).
    pub channels: usize,
    /// Top-1 accuracy in [0, 1].
    pub accuracy: f64,
}

impl AccuracyProfile {
    /// Parses JSON (`{"entries": [{"cut", "channels", "accuracy"}]}`) or CSV with a
    /// `cut,channels,accuracy` header; `file` names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<AccuracyProfile, String> {
        let p: AccuracyProfile = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| format!("{file}: {e}"))?
        } else {
            let mut lines =
                text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
            let header = lines.next().map(|(_, l)| l.replace(' ', "")).unwrap_or_default();
            if header != "cut,channels,accuracy" {
                return Err(format!("{file}:1: expected the CSV header `cut,channels,accuracy`, found `{header}`"));
            }
            let mut entries = vec![];
            for (i, l) in lines {
                let f: Vec<&str> = l.split(',').map(str::trim).collect();
                let bad = || format!("{file}:{}: expected `cut,channels,accuracy`, found `{l}`", i + 1);
                let [cut, channels, accuracy] = f.as_slice() else {
                    return Err(bad());
                };
                entries.push(ProfileEntry {
                    cut: cut.parse().map_err(|_| bad())?,
                    channels: channels.parse().map_err(|_| bad())?,
                    accuracy: accuracy.parse().map_err(|_| bad())?,
                });
            }
            AccuracyProfile { model: String::new(), entries }
        };
        for e in &p.entries {
            if !(0.0..=1.0).contains(&e.accuracy) || e.channels == 0 {
                return Err(format!(
                    "{file}: entry cut {} channels {}: accuracy must be in [0, 1] and channels > 0",
                    e.cut, e.channels
                ));
            }
        }
        if p.entries.is_empty() {
            return Err(format!("{file}: the profile has no entries"));
        }
        Ok(p)
    }

    /// `(channels, accuracy)` of cut `k`, by increasing channels.
    pub fn curve(&self, k: usize) -> Vec<(usize, f64)> {
        let mut v: Vec<(usize, f64)> =
            self.entries.iter().filter(|e| e.cut == k).map(|e| (e.channels, e.accuracy)).collect();
        v.sort_by_key(|(c, _)| *c);
        v
    }
}

/// Simulation settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SimSettings {
    /// Seconds between frames.
    pub period_s: f64,
    /// Bandwidth-estimate window (mean of the last `window_s` seconds).
    pub window_s: f64,
    /// Partition-switch cost.
    pub switch_s: f64,
    /// The fixed-cut baseline's cut (`None`: the best fixed cut in hindsight).
    pub fixed_cut: Option<usize>,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings { period_s: 1.0, window_s: 60.0, switch_s: 0.020, fixed_cut: None }
    }
}

/// One simulated frame.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Frame {
    /// Frame time.
    pub t: f64,
    /// The device's bandwidth estimate.
    pub estimate_bps: f64,
    /// The bandwidth the transfer actually saw.
    pub actual_bps: f64,
    /// Cut used.
    pub cut: usize,
    /// Channels that arrived and were used (0: deadline missed).
    pub channels: usize,
    /// Accuracy credited.
    pub accuracy: f64,
    /// Whether the device switched cut for this frame.
    pub switched: bool,
    /// Channels the policy expected to deliver at the bandwidth it chose by.
    pub planned_channels: usize,
    /// Profiled accuracy of that expected slice.
    pub expected_accuracy: f64,
    /// Modelled end-to-end latency: switch cost, device compute, the radio time of the channel
    /// groups sent (the whole tensor, or as many as arrive within the radio budget) and cloud
    /// compute.
    pub latency_s: f64,
}

/// The outcome of one strategy.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StrategyResult {
    /// `fixed`, `adaptive` or `oracle`.
    pub strategy: String,
    /// Mean accuracy over frames.
    pub mean_accuracy: f64,
    /// Frames where not even the smallest slice arrived.
    pub deadline_misses: usize,
    /// Cut switches.
    pub switches: usize,
    /// Per-frame log.
    pub frames: Vec<Frame>,
}

/// Which frames a replay covers: from `trace.start() + offset_s`, every period, up to `frames`
/// frames (default: until the trace ends); and the transport framing counted against the radio
/// budget (default: none, the plan's model).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Span {
    /// Seconds after the trace's first sample of the first frame.
    pub offset_s: f64,
    /// At most this many frames.
    pub frames: Option<usize>,
    /// Protocol bytes per request and per channel group.
    pub framing: Framing,
}

/// What a replay needs besides the strategy.
struct Replay<'a> {
    plan: &'a Plan,
    profile: &'a AccuracyProfile,
    trace: &'a BandwidthTrace,
    link: &'a dyn LinkModel,
    s: &'a SimSettings,
    span: Span,
}

/// Replays the trace choosing among `cuts`, by the device's estimate or (oracle) by the
/// bandwidth the transfer will actually see.
fn replay(name: &str, r: &Replay, cuts: &[usize], oracle: bool) -> StrategyResult {
    let Replay { plan, profile, trace, link, s, span } = *r;
    let policy = Policy::new(plan, profile, link, cuts.to_vec(), s.switch_s).with_framing(span.framing);
    let mut frames = vec![];
    let mut current: Option<usize> = None;
    let mut t = trace.start() + span.offset_s;
    while t <= trace.end() && span.frames.is_none_or(|n| frames.len() < n) {
        let estimate = trace.mean(t - s.window_s, t);
        let actual_for = |k: usize, switching: bool| trace.mean(t, t + policy.radio_budget_s(k, switching).max(0.0));
        let pick = if oracle { policy.choose_by(current, actual_for) } else { policy.choose(estimate, current) };
        let Some(d) = pick else { break };
        let actual = actual_for(d.cut, d.switching);
        let (channels, accuracy) = policy.delivered(d.cut, d.switching, actual);
        let latency_s = plan.cut(d.cut).map_or(0.0, |c| {
            // The device streams whole channel groups while the next one still arrives by the
            // deadline (the whole tensor at most), then stops.
            let room = link.bytes_within(d.radio_budget_s.max(0.0), actual);
            let sent = policy.wire_bytes(d.cut, policy.sendable(d.cut, room)).max(policy.framing().begin_bytes);
            let radio = link.transfer_time_s(sent, actual).min(d.radio_budget_s.max(0.0));
            (if d.switching { s.switch_s } else { 0.0 }) + c.device_latency_s + radio + c.cloud_latency_s
        });
        frames.push(Frame {
            t,
            estimate_bps: estimate,
            actual_bps: actual,
            cut: d.cut,
            channels,
            accuracy,
            switched: d.switching,
            planned_channels: d.channels,
            expected_accuracy: d.expected_accuracy,
            latency_s,
        });
        current = Some(d.cut);
        t += s.period_s;
    }
    let n = frames.len().max(1) as f64;
    StrategyResult {
        strategy: name.to_string(),
        mean_accuracy: frames.iter().map(|f| f.accuracy).sum::<f64>() / n,
        deadline_misses: frames.iter().filter(|f| f.channels == 0).count(),
        switches: frames.iter().filter(|f| f.switched).count(),
        frames,
    }
}

/// The cuts adaptive partitioning deploys: the plan's chosen cuts that have a profile (all
/// profiled feasible cuts if none of the chosen ones has), and the profiled feasible cuts.
pub fn deployed_cuts(plan: &Plan, profile: &AccuracyProfile) -> Result<(Vec<usize>, Vec<usize>), String> {
    let profiled: Vec<usize> = {
        let mut v: Vec<usize> = profile.entries.iter().map(|e| e.cut).collect();
        v.sort();
        v.dedup();
        v
    };
    for k in &profiled {
        if plan.cut(*k).is_none() {
            return Err(format!("the profile has cut {k}, which the plan does not list"));
        }
    }
    let feasible: Vec<usize> =
        profiled.iter().copied().filter(|k| plan.cut(*k).is_some_and(|c| c.range_bps.is_some())).collect();
    let mut deployed: Vec<usize> = plan.chosen.iter().copied().filter(|k| profiled.contains(k)).collect();
    if deployed.is_empty() {
        deployed = feasible.clone();
    }
    if deployed.is_empty() {
        return Err("no profiled cut point is feasible under the plan's deadline".into());
    }
    Ok((deployed, feasible))
}

/// Runs the three strategies over the whole trace. Deployed cuts: see [`deployed_cuts`].
pub fn simulate(
    plan: &Plan,
    profile: &AccuracyProfile,
    trace: &BandwidthTrace,
    link: &dyn LinkModel,
    s: &SimSettings,
) -> Result<Vec<StrategyResult>, String> {
    simulate_span(plan, profile, trace, link, s, Span::default())
}

/// [`simulate`] over the frames of `span` only.
pub fn simulate_span(
    plan: &Plan,
    profile: &AccuracyProfile,
    trace: &BandwidthTrace,
    link: &dyn LinkModel,
    s: &SimSettings,
    span: Span,
) -> Result<Vec<StrategyResult>, String> {
    if !(s.period_s > 0.0 && s.window_s >= 0.0 && s.switch_s >= 0.0) {
        return Err("period must be positive, window and switch cost non-negative".into());
    }
    if !(span.offset_s.is_finite() && span.offset_s >= 0.0) {
        return Err(format!("start offset {} must be non-negative", span.offset_s));
    }
    let (deployed, feasible) = deployed_cuts(plan, profile)?;
    let profiled = |k: &usize| profile.entries.iter().any(|e| e.cut == *k);
    let r = Replay { plan, profile, trace, link, s, span };
    let fixed = match s.fixed_cut {
        Some(k) if profiled(&k) => replay("fixed", &r, &[k], false),
        Some(k) => return Err(format!("--fixed-cut {k} has no accuracy profile")),
        None => feasible
            .iter()
            .map(|k| replay("fixed", &r, &[*k], false))
            .max_by(|a, b| a.mean_accuracy.total_cmp(&b.mean_accuracy))
            .ok_or("no feasible cut for the fixed baseline")?,
    };
    Ok(vec![fixed, replay("adaptive", &r, &deployed, false), replay("oracle", &r, &deployed, true)])
}

/// Accuracy versus bandwidth of each profiled cut (what the plan's slicing delivers), on a
/// log-spaced grid over the band: `cut -> [(bandwidth, accuracy)]`.
pub fn accuracy_curves(
    plan: &Plan,
    profile: &AccuracyProfile,
    link: &dyn LinkModel,
    points: usize,
) -> BTreeMap<usize, Vec<(f64, f64)>> {
    let (lo, hi) = plan.settings.band;
    let grid: Vec<f64> = (0..points).map(|i| lo * (hi / lo).powf(i as f64 / (points.max(2) - 1) as f64)).collect();
    let mut out = BTreeMap::new();
    for e in &profile.entries {
        out.entry(e.cut).or_insert_with(Vec::new);
    }
    for (k, curve) in out.iter_mut() {
        let policy = Policy::new(plan, profile, link, vec![*k], 0.0);
        *curve = grid.iter().map(|bw| (*bw, policy.delivered(*k, false, *bw).1)).collect();
    }
    out
}
