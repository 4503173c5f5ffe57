//! The run-time choice of `<cut, slice>`: one rule shared by the trace replay
//! ([`super::simulate`]) and the device program (`clio-runtime`), so that what the simulator
//! predicts is what the device does.
//!
//! Given a bandwidth (the device's estimate), every deployed cut is scored by the profiled
//! accuracy of the most accurate slice the link delivers within that cut's radio budget; the
//! best score wins; an exact tie keeps the current cut, otherwise goes to the later-listed cut.
//! Cuts are scored without the switch cost: a switch costs the one frame it happens in (whose
//! radio budget loses `switch_s`; that frame may miss its deadline), while staying on a worse
//! cut costs every frame until the estimate moves, and the estimate (a mean over the last
//! minute) moves slowly. Charging the switch to every comparison instead would never leave a
//! cut whose spare radio time is below the switch cost: at a 50-ms deadline on STM32F7 a
//! ResNet-style model stayed on the cut it started on for a whole trace, 9 points of accuracy
//! below the better cut (docs/results.md, "Adaptive partitioning").

use super::simulate::AccuracyProfile;
use super::Plan;
use clio::cost::LinkModel;

/// The adaptive-partitioning policy: plan, profiles, link model, deployed cuts, switch cost.
pub struct Policy<'a> {
    plan: &'a Plan,
    profile: &'a AccuracyProfile,
    link: &'a dyn LinkModel,
    cuts: Vec<usize>,
    switch_s: f64,
    framing: Framing,
}

/// Bytes a transport adds around the cut tensor's payload within the radio budget: once per
/// request (`begin_bytes`, e.g. the protocol's `Begin` frame with the wire header) and once per
/// channel group (`group_bytes`, a `Channels` frame's header), a group being the plan's slice
/// step at the cut. The default (none) is the plan's model: payload bytes only.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Framing {
    /// Bytes sent before the first channel.
    pub begin_bytes: u64,
    /// Bytes added to every channel group.
    pub group_bytes: u64,
}

/// One choice of the policy.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Decision {
    /// The chosen cut `k`.
    pub cut: usize,
    /// Channels of the best slice deliverable at the bandwidth the choice was made for (0: none).
    pub channels: usize,
    /// Profiled accuracy of that slice (0 when none fits).
    pub expected_accuracy: f64,
    /// Whether the choice changes cut (the switch cost is charged).
    pub switching: bool,
    /// Radio time left for the cut tensor: the cut's budget minus the switch cost if switching.
    pub radio_budget_s: f64,
}

impl<'a> Policy<'a> {
    /// A policy choosing among `cuts` (on an exact tie not involving the current cut, the later one
    /// wins).
    pub fn new(
        plan: &'a Plan,
        profile: &'a AccuracyProfile,
        link: &'a dyn LinkModel,
        cuts: Vec<usize>,
        switch_s: f64,
    ) -> Policy<'a> {
        Policy { plan, profile, link, cuts, switch_s, framing: Framing::default() }
    }

    /// The policy counting `framing` bytes against the radio budget.
    pub fn with_framing(mut self, framing: Framing) -> Policy<'a> {
        self.framing = framing;
        self
    }

    /// The framing counted.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Channels per group at cut `k`: the plan's slice step (the smallest slice), at least 1.
    pub fn group(&self, k: usize) -> usize {
        self.plan.cut(k).and_then(|c| c.slices.first()).map_or(1, |s| s.channels).max(1)
    }

    /// Bytes on the link to send the first `channels` channels of cut `k`, framing included.
    pub fn wire_bytes(&self, k: usize, channels: usize) -> u64 {
        let Some(c) = self.plan.cut(k) else { return 0 };
        let f = self.framing;
        if f == Framing::default() {
            return channels as u64 * c.bytes_per_channel;
        }
        let groups = channels.div_ceil(self.group(k)) as u64;
        f.begin_bytes + groups * f.group_bytes + channels as u64 * c.bytes_per_channel
    }

    /// Channels of cut `k` a device streaming whole groups in order gets through `bytes` of link
    /// capacity (the whole tensor at most).
    pub fn sendable(&self, k: usize, bytes: u64) -> usize {
        let Some(c) = self.plan.cut(k) else { return 0 };
        let (total, g) = (c.shape.get(1).copied().unwrap_or(0), self.group(k));
        let mut n = 0;
        while n < total && self.wire_bytes(k, (n + g).min(total)) <= bytes {
            n = (n + g).min(total);
        }
        n
    }

    /// Whether the first `channels` channels of cut `k` fit in `bytes` of link capacity.
    fn fits(&self, k: usize, channels: usize, bytes: u64) -> bool {
        if self.framing == Framing::default() {
            return self.plan.cut(k).is_some_and(|c| channels as u64 * c.bytes_per_channel <= bytes);
        }
        // Groups go out whole, in order: a slice fits when the groups covering it do.
        let g = self.group(k);
        let total = self.plan.cut(k).and_then(|c| c.shape.get(1).copied()).unwrap_or(channels);
        self.wire_bytes(k, (channels.div_ceil(g) * g).min(total.max(channels))) <= bytes
    }

    /// The deployed cuts.
    pub fn cuts(&self) -> &[usize] {
        &self.cuts
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        self.plan
    }

    /// The link model.
    pub fn link(&self) -> &dyn LinkModel {
        self.link
    }

    /// Partition-switch cost in seconds.
    pub fn switch_s(&self) -> f64 {
        self.switch_s
    }

    /// Radio budget of cut `k`, less the switch cost when `switching` (0 for an unknown cut).
    pub fn radio_budget_s(&self, k: usize, switching: bool) -> f64 {
        self.plan.cut(k).map(|c| c.radio_budget_s - if switching { self.switch_s } else { 0.0 }).unwrap_or(0.0)
    }

    /// Best `(channels, accuracy)` of cut `k` when `bytes` can be delivered: the most
    /// accurate profiled slice that fits (the smaller one on equal accuracy); `(0, 0.0)` if none.
    pub fn best_slice(&self, k: usize, bytes: u64) -> (usize, f64) {
        if self.plan.cut(k).is_none() {
            return (0, 0.0);
        }
        self.profile.curve(k).into_iter().filter(|(ch, _)| self.fits(k, *ch, bytes)).fold(
            (0, 0.0),
            |best, (ch, acc)| if acc > best.1 || (acc == best.1 && ch < best.0) { (ch, acc) } else { best },
        )
    }

    /// Profiled accuracy when the cloud ran cut `k`'s head for `channels` channels: the entry of
    /// the largest profiled slice not above `channels` (0 if none).
    pub fn accuracy_of(&self, k: usize, channels: usize) -> f64 {
        self.profile.curve(k).into_iter().rfind(|(ch, _)| *ch <= channels).map_or(0.0, |(_, a)| a)
    }

    /// What cut `k` delivers at `bandwidth_bps` within its budget: `(channels, accuracy)`.
    pub fn delivered(&self, k: usize, switching: bool, bandwidth_bps: f64) -> (usize, f64) {
        let budget = self.radio_budget_s(k, switching);
        self.best_slice(k, self.link.bytes_within(budget, bandwidth_bps))
    }

    /// Chooses by the device's bandwidth estimate, `current` being the cut in use (`None`
    /// before the first frame). `None` only when no cut is deployed.
    pub fn choose(&self, estimate_bps: f64, current: Option<usize>) -> Option<Decision> {
        self.choose_by(current, |_, _| estimate_bps)
    }

    /// Chooses with a bandwidth per candidate: `bandwidth(k, switching)` is the bandwidth cut
    /// `k`'s transfer is scored at (the estimate for every cut in [`Policy::choose`]). The cut
    /// is chosen by its accuracy without the switch cost; the decision then carries what it
    /// delivers in this frame, with the switch cost when it changes cut.
    pub fn choose_by(&self, current: Option<usize>, bandwidth: impl Fn(usize, bool) -> f64) -> Option<Decision> {
        let k = self.best_cut(current, |k| self.delivered(k, false, bandwidth(k, false)).1)?;
        let switching = current.is_some_and(|c| c != k);
        Some(self.decision(k, switching, bandwidth(k, switching)))
    }

    /// Chooses by a distribution of bandwidths rather than one estimate: each cut is scored by
    /// its mean accuracy over `samples_bps` (e.g. the last minute, one sample per second), so
    /// a cut that needs the mean bandwidth loses to one that also delivers in the slow
    /// seconds. The decision carries what the chosen cut delivers at the samples' mean.
    pub fn choose_over(&self, samples_bps: &[f64], current: Option<usize>) -> Option<Decision> {
        if samples_bps.is_empty() {
            return None;
        }
        let n = samples_bps.len() as f64;
        let k =
            self.best_cut(current, |k| samples_bps.iter().map(|b| self.delivered(k, false, *b).1).sum::<f64>() / n)?;
        let switching = current.is_some_and(|c| c != k);
        Some(self.decision(k, switching, samples_bps.iter().sum::<f64>() / n))
    }

    /// The deployed cut with the highest `score`; an exact tie keeps `current`, otherwise goes
    /// to the later-listed cut. `None` when no cut is deployed.
    fn best_cut(&self, current: Option<usize>, score: impl Fn(usize) -> f64) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for &k in &self.cuts {
            let acc = score(k);
            let keep = match best {
                Some((b, b_acc)) => b_acc > acc || (b_acc == acc && Some(b) == current),
                None => false,
            };
            if !keep {
                best = Some((k, acc));
            }
        }
        best.map(|(k, _)| k)
    }

    /// Cut `k` at `bandwidth_bps` in one frame, `switching` to it or not: the slice it
    /// delivers within its (switch-reduced) radio budget.
    pub fn decision(&self, k: usize, switching: bool, bandwidth_bps: f64) -> Decision {
        let (channels, expected_accuracy) = self.delivered(k, switching, bandwidth_bps);
        Decision { cut: k, channels, expected_accuracy, switching, radio_budget_s: self.radio_budget_s(k, switching) }
    }
}
