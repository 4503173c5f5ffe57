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

/// Cut 1: big tensor, high accuracy; cut 2: small tensor, lower accuracy.
fn setup() -> (Plan, AccuracyProfile) {
    let plan = plan(0.3, (50e3, 2e6), 2, vec![cut(1, 4000, 0.2), cut(2, 200, 0.1)]);
    let mut entries = vec![];
    for (k, top) in [(1usize, 0.9), (2, 0.7)] {
        for i in 1..=4 {
            entries.push(ProfileEntry { cut: k, channels: 2 * i, accuracy: top * i as f64 / 4.0 });
        }
    }
    (plan, AccuracyProfile { model: "m".into(), entries })
}

fn link() -> Box<dyn clio::cost::LinkModel> {
    clio_targets::load_link("ble").unwrap()
}

#[test]
fn adaptive_switches_on_a_step_trace_and_beats_fixed() {
    let (plan, profile) = setup();
    // 100 s at 2 Mbit/s, then 100 s at 50 kbit/s.
    let trace = BandwidthTrace::parse("0 2.0\n100 0.05\n200 0.05\n", "step", 1.0).unwrap();
    let s = SimSettings { period_s: 1.0, window_s: 5.0, switch_s: 0.02, fixed_cut: None };
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
