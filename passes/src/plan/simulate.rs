//! Runtime selection and trace replay: given a plan, accuracy profiles and a bandwidth trace,
//! choose `<cut, slice>` per frame and compare fixed-cut progressive slicing, adaptive
//! partitioning and an oracle that knows the whole trace.
//!
//! Model of one frame at time `t` (frames every `period_s`):
//! * the device estimates the bandwidth as the mean of the trace over the last `window_s`
//!   seconds (Clio uses the last minute) and picks the deployed cut whose best deliverable
//!   slice has the highest profiled accuracy (ties keep the current cut; [`super::policy`]);
//! * changing cut costs `switch_s` (about 20 ms on GAP8), taken from that frame's radio time;
//! * the oracle knows the bandwidth of every frame in advance and takes the sequence of cuts
//!   with the highest total accuracy, switch costs included;
//! * the device streams the cut tensor channel by channel; what arrives by the deadline is what
//!   the actual bandwidth (mean of the trace over the radio window) delivers, and the cloud
//!   uses the largest profiled slice that arrived completely;
//! * if not even the smallest slice arrives, the frame misses its deadline: accuracy 0.

// Parses user accuracy profiles and traces: no panicking indexing or slicing (docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::policy::{Decision, Framing, Policy};
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
    /// How the device turns the window's bandwidth into a choice.
    pub estimator: Estimator,
}

/// How adaptive partitioning reads the bandwidth of the last `window_s` seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum Estimator {
    /// Its mean (Clio's rule): [`Policy::choose`].
    #[default]
    Mean,
    /// Its distribution, one sample per second: [`Policy::choose_over`].
    Distribution,
}

impl Estimator {
    /// `mean` or `distribution`.
    pub fn parse(s: &str) -> Option<Estimator> {
        match s {
            "mean" => Some(Estimator::Mean),
            "distribution" => Some(Estimator::Distribution),
            _ => None,
        }
    }
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings { period_s: 1.0, window_s: 60.0, switch_s: 0.020, fixed_cut: None, estimator: Estimator::Mean }
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

/// The frame times of a replay: from `trace.start() + offset_s`, every period, while inside the
/// trace and below the frame limit.
fn frame_times(r: &Replay) -> Vec<f64> {
    let mut times = vec![];
    let mut t = r.trace.start() + r.span.offset_s;
    while t <= r.trace.end() && r.span.frames.is_none_or(|n| times.len() < n) {
        times.push(t);
        t += r.s.period_s;
    }
    times
}

/// The bandwidth cut `k`'s transfer sees in the frame at `t`: the trace's mean over the cut's
/// radio window (less the switch cost when `switching`).
fn actual_bps(r: &Replay, policy: &Policy, t: f64, k: usize, switching: bool) -> f64 {
    r.trace.mean(t, t + policy.radio_budget_s(k, switching).max(0.0))
}

/// What happens in the frame at `t` when the device decided `d` (by `estimate`).
fn frame(r: &Replay, policy: &Policy, t: f64, estimate: f64, d: &Decision) -> Frame {
    let (plan, link) = (r.plan, r.link);
    let actual = actual_bps(r, policy, t, d.cut, d.switching);
    let (channels, accuracy) = policy.delivered(d.cut, d.switching, actual);
    let latency_s = plan.cut(d.cut).map_or(0.0, |c| {
        // The device streams whole channel groups while the next one still arrives by the
        // deadline (the whole tensor at most), then stops.
        let room = link.bytes_within(d.radio_budget_s.max(0.0), actual);
        let sent = policy.wire_bytes(d.cut, policy.sendable(d.cut, room)).max(policy.framing().begin_bytes);
        let radio = link.transfer_time_s(sent, actual).min(d.radio_budget_s.max(0.0));
        (if d.switching { r.s.switch_s } else { 0.0 }) + c.device_latency_s + radio + c.cloud_latency_s
    });
    Frame {
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
    }
}

fn summary(name: &str, frames: Vec<Frame>) -> StrategyResult {
    let n = frames.len().max(1) as f64;
    StrategyResult {
        strategy: name.to_string(),
        mean_accuracy: frames.iter().map(|f| f.accuracy).sum::<f64>() / n,
        deadline_misses: frames.iter().filter(|f| f.channels == 0).count(),
        switches: frames.iter().filter(|f| f.switched).count(),
        frames,
    }
}

/// The bandwidth of each second of the `window_s` seconds before `t` that lie inside the trace
/// (at least one sample; the trace's length bounds their number, whatever the window).
fn window_samples(trace: &BandwidthTrace, t: f64, window_s: f64) -> Vec<f64> {
    let from = (t - window_s).max(trace.start()).min(t);
    let span = if (t - from).is_finite() { t - from } else { 0.0 };
    let n = (span.ceil() as usize).max(1);
    let step = span / n as f64;
    (0..n).map(|i| trace.mean(from + i as f64 * step, from + (i + 1) as f64 * step)).collect()
}

/// Replays the trace choosing among `cuts` by the device's estimate (the policy).
fn replay(name: &str, r: &Replay, cuts: &[usize]) -> StrategyResult {
    let policy = Policy::new(r.plan, r.profile, r.link, cuts.to_vec(), r.s.switch_s).with_framing(r.span.framing);
    let mut frames = vec![];
    let mut current: Option<usize> = None;
    for t in frame_times(r) {
        let estimate = r.trace.mean(t - r.s.window_s, t);
        let pick = match r.s.estimator {
            Estimator::Mean => policy.choose(estimate, current),
            Estimator::Distribution => policy.choose_over(&window_samples(r.trace, t, r.s.window_s), current),
        };
        let Some(d) = pick else { break };
        frames.push(frame(r, &policy, t, estimate, &d));
        current = Some(d.cut);
    }
    summary(name, frames)
}

/// The oracle: knowing the whole trace, the sequence of cuts with the highest total accuracy,
/// switch costs included (dynamic programming over frames x cuts). An upper bound for any
/// policy switching among `cuts` with the same switch cost.
fn replay_oracle(r: &Replay, cuts: &[usize]) -> StrategyResult {
    let policy = Policy::new(r.plan, r.profile, r.link, cuts.to_vec(), r.s.switch_s).with_framing(r.span.framing);
    let times = frame_times(r);
    let decide =
        |t: f64, k: usize, switching: bool| policy.decision(k, switching, actual_bps(r, &policy, t, k, switching));
    // `best`: per cut, the highest total accuracy of the frames so far ending on that cut;
    // `back[f]`: per cut, the cut (index) of frame f-1 on that path.
    let mut best: Vec<f64> = vec![];
    let mut back: Vec<Vec<usize>> = vec![];
    for &t in &times {
        let row: Vec<(f64, usize)> = cuts
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                if best.is_empty() {
                    return (decide(t, k, false).expected_accuracy, i);
                }
                let (stay, switch) = (decide(t, k, false).expected_accuracy, decide(t, k, true).expected_accuracy);
                best.iter()
                    .enumerate()
                    .map(|(j, v)| (v + if i == j { stay } else { switch }, j))
                    .fold((f64::NEG_INFINITY, i), |a, b| if b.0 > a.0 { b } else { a })
            })
            .collect();
        best = row.iter().map(|(v, _)| *v).collect();
        back.push(row.iter().map(|(_, j)| *j).collect());
    }
    // Back from the best last cut (the later-listed one on a tie, as the policy).
    let mut i = best.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
    let mut path = Vec::with_capacity(times.len());
    for from in back.iter().rev() {
        path.push(i);
        i = from.get(i).copied().unwrap_or(i);
    }
    path.reverse();
    let mut previous = None;
    let mut frames = vec![];
    for (&t, &i) in times.iter().zip(&path) {
        let Some(&k) = cuts.get(i) else { break };
        let d = decide(t, k, previous.is_some_and(|p| p != k));
        frames.push(frame(r, &policy, t, r.trace.mean(t - r.s.window_s, t), &d));
        previous = Some(k);
    }
    summary("oracle", frames)
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
        Some(k) if profiled(&k) => replay("fixed", &r, &[k]),
        Some(k) => return Err(format!("--fixed-cut {k} has no accuracy profile")),
        None => feasible
            .iter()
            .map(|k| replay("fixed", &r, &[*k]))
            .max_by(|a, b| a.mean_accuracy.total_cmp(&b.mean_accuracy))
            .ok_or("no feasible cut for the fixed baseline")?,
    };
    Ok(vec![fixed, replay("adaptive", &r, &deployed), replay_oracle(&r, &deployed)])
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
