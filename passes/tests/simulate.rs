//! Runtime selection and trace replay on hand-made plans, profiles and traces whose outcome is
//! known.

use clio::trace::BandwidthTrace;
use clio_passes::plan::simulate::{accuracy_curves, simulate, AccuracyProfile, ProfileEntry, SimSettings};
use clio_passes::plan::{CutPlan, Plan};

#[path = "support/synthetic_plan.rs"]
mod synthetic_plan;
use synthetic_plan::{cut_plan, plan};

fn cut(k: usize, bytes_per_channel: u64, budget: f64) -> CutPlan {
    cut_plan(k, vec![1, 8, 4, 4], bytes_per_channel, budget, 0.3 - budget, 2)
}

/// Cut 1 (8 channels of 4000 bytes, 200 ms of radio, top accuracy 0.9) and a cut 2 with the
/// given bytes per channel, radio budget and top accuracy; accuracy grows linearly with the
/// channels sent (2, 4, 6, 8).
fn two_cuts(bytes_2: u64, budget_2: f64, top_2: f64) -> (Plan, AccuracyProfile) {
    let plan = plan(0.3, (50e3, 2e6), 2, vec![cut(1, 4000, 0.2), cut(2, bytes_2, budget_2)]);
    let mut entries = vec![];
    for (k, top) in [(1usize, 0.9), (2, top_2)] {
        for i in 1..=4 {
            entries.push(ProfileEntry { cut: k, channels: 2 * i, accuracy: top * i as f64 / 4.0 });
        }
    }
    (plan, AccuracyProfile { model: "m".into(), entries })
}

/// Cut 1: big tensor, high accuracy; cut 2: small tensor, lower accuracy.
fn setup() -> (Plan, AccuracyProfile) {
    two_cuts(200, 0.1, 0.7)
}

fn link() -> Box<dyn clio::cost::LinkModel> {
    clio_targets::load_link("ble").unwrap()
}

#[test]
fn adaptive_switches_on_a_step_trace_and_beats_fixed() {
    let (plan, profile) = setup();
    // 100 s at 2 Mbit/s, then 100 s at 50 kbit/s.
    let trace = BandwidthTrace::parse("0 2.0\n100 0.05\n200 0.05\n", "step", 1.0).unwrap();
    let s = SimSettings { period_s: 1.0, window_s: 5.0, switch_s: 0.02, fixed_cut: None, ..Default::default() };
    let r = simulate(&plan, &profile, &trace, link().as_ref(), &s).unwrap();
    let (fixed, adaptive, oracle) = (&r[0], &r[1], &r[2]);
    assert_eq!(adaptive.strategy, "adaptive");
    // Adaptive uses cut 1 while the link is fast and cut 2 once the estimate drops.
    assert_eq!(adaptive.frames[50].cut, 1);
    assert_eq!(adaptive.frames[150].cut, 2);
    assert_eq!(adaptive.switches, 1);
    assert!(
        adaptive.mean_accuracy > fixed.mean_accuracy + 0.05,
        "{} vs {}",
        adaptive.mean_accuracy,
        fixed.mean_accuracy
    );
    // The oracle switches at once; adaptive lags by about the estimate window.
    assert!(oracle.mean_accuracy >= adaptive.mean_accuracy);
    assert!(adaptive.deadline_misses >= oracle.deadline_misses);
    // Frame invariants: accuracy is a profile value (or 0 on a miss), misses are counted.
    for res in &r {
        for f in &res.frames {
            let ok = f.channels == 0 && f.accuracy == 0.0
                || profile
                    .entries
                    .iter()
                    .any(|e| e.cut == f.cut && e.channels == f.channels && e.accuracy == f.accuracy);
            assert!(ok, "{f:?}");
        }
        assert_eq!(res.deadline_misses, res.frames.iter().filter(|f| f.channels == 0).count());
    }
    // The switch frame pays the switch cost: it gets a smaller radio budget.
    let sw = adaptive.frames.iter().find(|f| f.switched).unwrap();
    assert_eq!(sw.cut, 2);
}

#[test]
fn a_stable_link_never_switches_and_fixed_equals_adaptive() {
    let (plan, profile) = setup();
    let trace = BandwidthTrace::parse("0 0.3\n300 0.3\n", "flat", 1.0).unwrap();
    let r = simulate(&plan, &profile, &trace, link().as_ref(), &SimSettings::default()).unwrap();
    assert_eq!(r[1].switches, 0);
    assert!((r[0].mean_accuracy - r[1].mean_accuracy).abs() < 1e-12);
}

#[test]
fn profiles_parse_from_json_and_csv_with_clear_errors() {
    let csv = "cut,channels,accuracy\n1,2,0.5\n1,4,0.75\n";
    let p = AccuracyProfile::parse(csv, "p.csv").unwrap();
    assert_eq!(p.curve(1), vec![(2, 0.5), (4, 0.75)]);
    let json = r#"{"entries": [{"cut": 1, "channels": 2, "accuracy": 0.5}]}"#;
    assert_eq!(AccuracyProfile::parse(json, "p.json").unwrap().entries.len(), 1);
    for (text, want) in [
        ("a,b,c\n", "p:1: expected the CSV header"),
        ("cut,channels,accuracy\n1,2\n", "p:2: expected `cut,channels,accuracy`"),
        ("cut,channels,accuracy\n1,2,1.5\n", "accuracy must be in [0, 1]"),
        ("{\"entries\": []}", "the profile has no entries"),
    ] {
        let e = AccuracyProfile::parse(text, "p").unwrap_err();
        assert!(e.contains(want), "{e}");
    }
    let (plan, _) = setup();
    let bad =
        AccuracyProfile { model: String::new(), entries: vec![ProfileEntry { cut: 9, channels: 2, accuracy: 0.5 }] };
    let trace = BandwidthTrace::parse("0 1\n10 1\n", "t", 1.0).unwrap();
    let e = simulate(&plan, &bad, &trace, link().as_ref(), &SimSettings::default()).unwrap_err();
    assert_eq!(e, "the profile has cut 9, which the plan does not list");
}

#[test]
fn accuracy_curves_rise_with_bandwidth() {
    let (plan, profile) = setup();
    let curves = accuracy_curves(&plan, &profile, link().as_ref(), 50);
    for pts in curves.values() {
        assert!(pts.windows(2).all(|w| w[1].1 >= w[0].1));
    }
    // At the top of the band the big cut wins; at the bottom only the small one delivers.
    assert!(curves[&1].last().unwrap().1 > curves[&2].last().unwrap().1);
    assert!(curves[&1][0].1 < curves[&2][0].1);
    let svg = clio_passes::plan::svg::accuracy_vs_bandwidth("t", &curves);
    assert!(svg.starts_with("<svg") && svg.matches("<polyline").count() == 2);
}

/// Cut 1 early (8 channels of 4000 bytes, 200 ms of radio), cut 2 late (8 x 100 bytes) whose
/// spare radio time (25 ms) is just above BLE's 7.5-ms set-up: the 20-ms switch leaves it too
/// little to send anything in the switching frame.
fn tight_late_cut() -> (Plan, AccuracyProfile) {
    two_cuts(100, 0.025, 0.8)
}

#[test]
fn a_switch_that_costs_its_frame_is_still_taken() {
    let (plan, profile) = tight_late_cut();
    // Fast for 30 s (cut 1 sends everything), then 200 kbit/s: cut 1 cannot send its smallest
    // slice (8000 bytes) in 200 ms, cut 2 sends 2 of its channels in the 17.5 ms after set-up.
    let trace = BandwidthTrace::parse("0 2.0\n30 0.2\n200 0.2\n", "drop", 1.0).unwrap();
    let s = SimSettings { period_s: 1.0, window_s: 5.0, switch_s: 0.02, fixed_cut: None, ..Default::default() };
    let r = simulate(&plan, &profile, &trace, link().as_ref(), &s).unwrap();
    let (fixed, adaptive, oracle) = (&r[0], &r[1], &r[2]);
    assert_eq!(adaptive.frames[10].cut, 1);
    let sw = adaptive.frames.iter().find(|f| f.switched).expect("adaptive never left cut 1");
    // The switching frame misses (the switch eats cut 2's spare time); every later one delivers.
    assert_eq!((sw.cut, sw.channels), (2, 0));
    assert!(adaptive.frames.iter().filter(|f| f.t > sw.t).all(|f| f.cut == 2 && f.channels > 0));
    assert_eq!(adaptive.switches, 1);
    // Staying on cut 1 (what scoring every cut with the switch cost did) misses every slow frame.
    let slow = adaptive.frames.iter().filter(|f| f.t >= 40.0).count() as f64;
    assert!(adaptive.mean_accuracy > fixed.mean_accuracy, "{} vs {}", adaptive.mean_accuracy, fixed.mean_accuracy);
    assert!(slow > 100.0);
    assert!(oracle.mean_accuracy >= adaptive.mean_accuracy);
}

#[test]
fn the_oracle_takes_the_best_sequence_of_cuts() {
    use clio_passes::plan::policy::Policy;
    let (plan, profile) = tight_late_cut();
    // A link that drops and recovers every few seconds, and one fast second inside a slow
    // stretch (t = 13), where leaving cut 2 gains 0.1 but coming back costs a whole frame.
    let trace = BandwidthTrace::parse("0 2.0\n3 0.2\n7 2.0\n10 0.2\n13 2.0\n14 0.2\n17 0.2\n", "zigzag", 1.0).unwrap();
    let s = SimSettings { period_s: 1.0, window_s: 3.0, switch_s: 0.02, fixed_cut: None, ..Default::default() };
    let r = simulate(&plan, &profile, &trace, link().as_ref(), &s).unwrap();
    let oracle = &r[2];
    let n = oracle.frames.len();
    assert_eq!(n, 18);
    let link = link();
    let policy = Policy::new(&plan, &profile, link.as_ref(), vec![1, 2], 0.02);
    // Accuracy of frame `f` on cut `k`, switching or not, at the bandwidth its transfer sees.
    let acc: Vec<[[f64; 2]; 2]> = (0..n)
        .map(|f| {
            let t = f as f64;
            let at = |k: usize, switching: bool| {
                let bw = trace.mean(t, t + policy.radio_budget_s(k, switching));
                policy.delivered(k, switching, bw).1
            };
            [[at(1, false), at(1, true)], [at(2, false), at(2, true)]]
        })
        .collect();
    let mut best = f64::NEG_INFINITY;
    for bits in 0u32..(1 << n) {
        let cut = |f: usize| ((bits >> f) & 1) as usize;
        let total: f64 = (0..n).map(|f| acc[f][cut(f)][(f > 0 && cut(f) != cut(f - 1)) as usize]).sum();
        best = best.max(total);
    }
    let got: f64 = oracle.frames.iter().map(|f| f.accuracy).sum();
    assert!((got - best).abs() < 1e-9, "oracle {got}, best sequence {best}");
    for other in &r[..2] {
        assert!(got >= other.frames.iter().map(|f| f.accuracy).sum::<f64>() - 1e-9, "{}", other.strategy);
    }
    assert!(oracle.switches >= 2, "the zigzag should make switching pay: {} switches", oracle.switches);
}

#[test]
fn the_distribution_estimator_avoids_a_cut_that_needs_the_mean_bandwidth() {
    use clio_passes::plan::simulate::Estimator;
    let plan = plan(0.3, (50e3, 2e6), 2, vec![cut(1, 4000, 0.2), cut(2, 200, 0.1)]);
    // Cut 1 is better when its slices arrive; cut 2 delivers 0.8 at any of the trace's rates.
    let mut entries: Vec<ProfileEntry> =
        (1..=4).map(|i| ProfileEntry { cut: 1, channels: 2 * i, accuracy: 0.85 + 0.05 * (i / 2) as f64 }).collect();
    entries.extend((1..=4).map(|i| ProfileEntry { cut: 2, channels: 2 * i, accuracy: 0.8 }));
    let profile = AccuracyProfile { model: "m".into(), entries };
    // 2 Mbit/s and 100 kbit/s, alternating every second: the mean (1.05 Mbit/s) lets cut 1 send
    // 4 channels, but in every slow second it sends none.
    let text: String = (0..=120).map(|t| format!("{t} {}\n", if t % 2 == 0 { 2.0 } else { 0.1 })).collect();
    let trace = BandwidthTrace::parse(&text, "alternating", 1.0).unwrap();
    let run = |estimator| {
        let s = SimSettings { window_s: 10.0, estimator, ..Default::default() };
        simulate(&plan, &profile, &trace, link().as_ref(), &s).unwrap().remove(1)
    };
    let (mean, dist) = (run(Estimator::Mean), run(Estimator::Distribution));
    let late = |r: &clio_passes::plan::simulate::StrategyResult| -> Vec<usize> {
        r.frames.iter().filter(|f| f.t >= 20.0).map(|f| f.cut).collect()
    };
    assert!(late(&mean).iter().all(|k| *k == 1), "the mean estimate should pick cut 1");
    assert!(late(&dist).iter().all(|k| *k == 2), "the distribution should pick cut 2");
    assert!(dist.mean_accuracy > mean.mean_accuracy + 0.2, "{} vs {}", dist.mean_accuracy, mean.mean_accuracy);
    // Once the window holds both rates: every slow second misses on cut 1, none on cut 2.
    let late_misses = |r: &clio_passes::plan::simulate::StrategyResult| {
        r.frames.iter().filter(|f| f.t >= 20.0 && f.channels == 0).count()
    };
    assert_eq!((late_misses(&mean), late_misses(&dist)), (50, 0));
}

#[test]
fn a_window_longer_than_the_trace_samples_only_the_trace() {
    use clio_passes::plan::simulate::Estimator;
    let (plan, profile) = setup();
    let trace = BandwidthTrace::parse("0 2.0\n100 0.05\n200 0.05\n", "step", 1.0).unwrap();
    // A window of 1e12 s would be 1e12 samples if it were not clipped to the trace.
    let s = SimSettings { window_s: 1e12, estimator: Estimator::Distribution, ..Default::default() };
    let r = simulate(&plan, &profile, &trace, link().as_ref(), &s).unwrap();
    assert_eq!(r[1].frames.len(), 201);
}
