//! The shared run-time policy (`plan::policy::Policy`) against a reference copy of the choice
//! rule the simulator used before the policy existed, and against the simulator's own per-frame
//! decisions: the device program and `clio simulate` decide alike.

use clio::cost::LinkModel;
use clio::quant::math::SplitMix64;
use clio::trace::BandwidthTrace;
use clio_passes::plan::policy::{Framing, Policy};
use clio_passes::plan::simulate::{simulate_span, AccuracyProfile, ProfileEntry, SimSettings, Span};
use clio_passes::plan::{CutPlan, Plan};

#[path = "support/synthetic_plan.rs"]
mod synthetic_plan;
use synthetic_plan::{cut_plan, plan};

fn cut(k: usize, channels: usize, bytes_per_channel: u64, budget: f64) -> CutPlan {
    cut_plan(k, vec![1, channels, 4, 4], bytes_per_channel, budget, 0.1 - budget, 2)
}

/// Three cuts with overlapping curves (equal accuracies included, to exercise the tie rule).
fn setup() -> (Plan, AccuracyProfile) {
    let plan = plan(0.1, (20e3, 500e3), 2, vec![cut(3, 8, 196, 0.095), cut(8, 16, 49, 0.093), cut(9, 32, 49, 0.092)]);
    let mut entries = vec![];
    let mut r = SplitMix64::new(5);
    for (k, n, top) in [(3usize, 4usize, 0.8), (8, 8, 0.75), (9, 16, 0.85)] {
        for i in 1..=n {
            // Rounded to 0.05 so that equal accuracies across cuts happen.
            let a = (top * (0.5 + 0.5 * i as f64 / n as f64) + 0.1 * (r.uniform() - 0.5)).min(1.0);
            entries.push(ProfileEntry { cut: k, channels: 2 * i, accuracy: (a * 20.0).round() / 20.0 });
        }
    }
    (plan, AccuracyProfile { model: "m".into(), entries })
}

/// The choice rule, written out independently: every cut scored by its best deliverable slice
/// *without* the switch cost (fold over cuts, ties keep the current cut, else the later one);
/// the decision then carries what the chosen cut delivers in this frame, switch cost included.
fn reference_choice(
    plan: &Plan,
    profile: &AccuracyProfile,
    link: &dyn LinkModel,
    cuts: &[usize],
    switch_s: f64,
    bw: f64,
    current: Option<usize>,
) -> Option<(usize, f64)> {
    let best_slice = |k: usize, bytes: u64| {
        let c = plan.cut(k).unwrap();
        profile
            .curve(k)
            .into_iter()
            .filter(|(ch, _)| *ch as u64 * c.bytes_per_channel <= bytes)
            .fold((0, 0.0), |b, (ch, acc)| if acc > b.1 || (acc == b.1 && ch < b.0) { (ch, acc) } else { b })
    };
    let score = |k: usize, switching: bool| {
        let budget = plan.cut(k).unwrap().radio_budget_s - if switching { switch_s } else { 0.0 };
        best_slice(k, link.bytes_within(budget, bw)).1
    };
    let chosen = cuts.iter().copied().map(|k| (k, score(k, false))).fold(None, |best, (k, sc)| match best {
        Some((bk, bs)) if bs > sc || (bs == sc && Some(bk) == current) => Some((bk, bs)),
        _ => Some((k, sc)),
    })?;
    Some((chosen.0, score(chosen.0, current.is_some_and(|c| c != chosen.0))))
}

#[test]
fn policy_matches_the_reference_rule_everywhere() {
    let (plan, profile) = setup();
    let link = clio_targets::load_link("ble").unwrap();
    let cuts = vec![3, 8, 9];
    let policy = Policy::new(&plan, &profile, link.as_ref(), cuts.clone(), 0.02);
    let mut switches_seen = 0;
    for i in 0..2000 {
        let bw = 5e3 * (1000f64).powf(i as f64 / 1999.0);
        for current in [None, Some(3), Some(8), Some(9)] {
            let want = reference_choice(&plan, &profile, link.as_ref(), &cuts, 0.02, bw, current).unwrap();
            let got = policy.choose(bw, current).unwrap();
            assert_eq!((got.cut, got.expected_accuracy), want, "bw {bw}, current {current:?}");
            assert_eq!(got.switching, current.is_some_and(|c| c != got.cut));
            let budget = plan.cut(got.cut).unwrap().radio_budget_s - if got.switching { 0.02 } else { 0.0 };
            assert!((got.radio_budget_s - budget).abs() < 1e-12);
            // The planned slice fits the budget at that bandwidth.
            assert!(
                got.channels as u64 * plan.cut(got.cut).unwrap().bytes_per_channel <= link.bytes_within(budget, bw)
            );
            switches_seen += got.switching as usize;
        }
    }
    assert!(switches_seen > 0, "the sweep must exercise switching");
    // No deployed cut: no decision.
    assert!(Policy::new(&plan, &profile, link.as_ref(), vec![], 0.02).choose(1e5, None).is_none());
}

#[test]
fn the_simulator_decides_with_the_policy() {
    let (plan, profile) = setup();
    let link = clio_targets::load_link("ble").unwrap();
    // A trace that wanders across the band every few seconds.
    let mut r = SplitMix64::new(9);
    let text: String = (0..300).map(|t| format!("{t} {:.4}\n", 0.01 + 0.4 * r.uniform())).collect();
    let trace = BandwidthTrace::parse(&text, "wander", 1.0).unwrap();
    let s = SimSettings { period_s: 1.0, window_s: 3.0, switch_s: 0.02, fixed_cut: None, ..Default::default() };
    let span = Span { offset_s: 20.0, frames: Some(100), ..Default::default() };
    let res = simulate_span(&plan, &profile, &trace, link.as_ref(), &s, span).unwrap();
    let adaptive = &res[1];
    assert_eq!(adaptive.frames.len(), 100);
    assert!((adaptive.frames[0].t - 20.0).abs() < 1e-12);
    assert!(adaptive.switches > 0, "the trace must make the device switch");
    let policy = Policy::new(&plan, &profile, link.as_ref(), vec![3, 8, 9], 0.02);
    let mut current = None;
    for f in &adaptive.frames {
        let d = policy.choose(f.estimate_bps, current).unwrap();
        assert_eq!((d.cut, d.channels, d.switching), (f.cut, f.planned_channels, f.switched), "t = {}", f.t);
        assert_eq!(f.expected_accuracy, d.expected_accuracy);
        // What arrived is what the policy says the actual bandwidth delivers.
        assert_eq!((f.channels, f.accuracy), policy.delivered(f.cut, f.switched, f.actual_bps));
        assert_eq!(policy.accuracy_of(f.cut, f.channels), f.accuracy);
        current = Some(d.cut);
    }
}

#[test]
fn framing_counts_against_the_budget_by_whole_groups() {
    let (plan, profile) = setup();
    let link = clio_targets::load_link("ble").unwrap();
    let plain = Policy::new(&plan, &profile, link.as_ref(), vec![8], 0.02);
    assert_eq!(plain.wire_bytes(8, 4), 4 * 49);
    let framed = Policy::new(&plan, &profile, link.as_ref(), vec![8], 0.02)
        .with_framing(Framing { begin_bytes: 57, group_bytes: 17 });
    // Cut 8 sends groups of 2 channels (its slice step): Begin + 2 frame heads + 4 channels.
    assert_eq!(framed.group(8), 2);
    assert_eq!(framed.wire_bytes(8, 4), 57 + 2 * 17 + 4 * 49);
    assert_eq!(framed.wire_bytes(8, 3), 57 + 2 * 17 + 3 * 49);
    let curve = profile.curve(8);
    let acc = |ch: usize| curve.iter().find(|(c, _)| *c == ch).unwrap().1;
    // One byte short of the 4-channel slice: at most 2 channels count; exactly enough: 4.
    let (ch, _) = framed.best_slice(8, 57 + 2 * 17 + 4 * 49 - 1);
    assert!(ch <= 2 && (ch == 0 || framed.wire_bytes(8, ch) < 57 + 2 * 17 + 4 * 49));
    let best_upto4 = curve.iter().filter(|(c, _)| *c <= 4).map(|(_, a)| *a).fold(0.0, f64::max);
    assert_eq!(framed.best_slice(8, 57 + 2 * 17 + 4 * 49).1, best_upto4);
    // Unframed, the same bytes hold more channels.
    assert!(plain.best_slice(8, 287).0 >= framed.best_slice(8, 287).0);
    // Streaming whole groups: 287 bytes carry 4 channels, one byte less only 2; the plain
    // policy counts payload only.
    assert_eq!(framed.sendable(8, 287), 4);
    assert_eq!(framed.sendable(8, 286), 2);
    assert_eq!(framed.sendable(8, 10_000), 16);
    assert_eq!(plain.sendable(8, 287), 4);
    // Less than Begin itself: nothing.
    assert_eq!(framed.best_slice(8, 56), (0, 0.0));
    assert!(acc(2) > 0.0);
}
