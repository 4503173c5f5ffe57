//! plan-partitions: the greedy interval cover is optimal in count (checked against exhaustive
//! search), and plans of real models are consistent with their cost models.

#[path = "../../tests/common/rng.rs"]
mod rng;

use clio::cost::TargetContext;
use clio::import::{import_path, ImportOptions, MissingExternalData};
use clio::pass::PassManager;
use clio_passes::plan::{exhaustive_min_cover, greedy_cover, parse_band, plan, slice_sizes, Plan, PlanSettings};
use rng::Rng;
use std::sync::Arc;

fn covers(intervals: &[(f64, f64)], chosen: &[usize], uncovered: &[(f64, f64)], band: (f64, f64)) -> bool {
    // Every sampled point of the band is in a chosen interval or in an uncovered range.
    (0..=1000).all(|i| {
        let x = band.0 + (band.1 - band.0) * i as f64 / 1000.0;
        chosen.iter().any(|c| intervals[*c].0 <= x && x <= intervals[*c].1)
            || uncovered.iter().any(|(lo, hi)| *lo <= x && x <= *hi)
    })
}

#[test]
fn greedy_cover_is_optimal_on_random_instances() {
    let mut r = Rng::new(42);
    let mut coverable = 0;
    for case in 0..3000 {
        let n = r.range(1, 10);
        let band = (10.0, 10.0 + r.range(10, 100) as f64);
        let intervals: Vec<(f64, f64)> = (0..n)
            .map(|_| {
                let lo = r.range(0, 120) as f64;
                (lo, lo + r.range(0, 60) as f64)
            })
            .collect();
        let cover = greedy_cover(&intervals, band);
        assert!(covers(&intervals, &cover.chosen, &cover.uncovered, band), "case {case}: {intervals:?} {cover:?}");
        match exhaustive_min_cover(&intervals, band) {
            Some(best) => {
                coverable += 1;
                assert!(cover.uncovered.is_empty(), "case {case}: coverable but gaps {cover:?}");
                assert_eq!(cover.chosen.len(), best, "case {case}: {intervals:?} band {band:?}");
            }
            None => assert!(!cover.uncovered.is_empty(), "case {case}: not coverable, yet no gap reported"),
        }
    }
    assert!(coverable > 300, "the generator must produce coverable instances too ({coverable})");
}

#[test]
fn band_and_slice_parsing() {
    assert_eq!(parse_band("50k:2M").unwrap(), (50e3, 2e6));
    assert!(parse_band("2M:50k").is_err());
    assert!(parse_band("fast").unwrap_err().contains("LO:HI"));
    assert_eq!(slice_sizes(10, None), vec![2, 4, 6, 8, 10]);
    assert_eq!(slice_sizes(96, None).len(), 24);
    assert_eq!(slice_sizes(24, Some(8)), vec![8, 16, 24]);
    assert_eq!(slice_sizes(3, Some(4)), vec![3]);
}

fn target(device: &str) -> TargetContext {
    TargetContext {
        device: Arc::from(clio_targets::load_target(device).unwrap()),
        cloud: Arc::from(clio_targets::load_target("cloud-gpu").unwrap()),
        link: Arc::from(clio_targets::load_link("ble").unwrap()),
    }
}

fn mobilenet() -> clio::Module {
    let opts = ImportOptions { missing_external_data: MissingExternalData::Zeros, ..Default::default() };
    let mut m =
        import_path(std::path::Path::new("../testdata/models/graph_only/mobilenet_v2_224.onnx"), &opts).unwrap();
    PassManager::from_pipeline(&clio_passes::registry(), "fuse-bn").unwrap().run(&mut m).unwrap();
    m
}

fn check(p: &Plan) {
    let link = clio_targets::load_link("ble").unwrap();
    for c in &p.cuts {
        match c.range_bps {
            Some((lo, hi)) => {
                assert!(c.radio_budget_s > 0.0);
                assert!(lo <= hi);
                // R(smallest slice) and R(full tensor) from the link model.
                let smallest = &c.slices[0];
                assert!((link.bandwidth_needed_bps(smallest.bytes, c.radio_budget_s).unwrap() - lo).abs() < 1e-6);
                assert_eq!(c.slices.last().unwrap().channels, c.shape[1]);
            }
            None => assert!(!p.chosen.contains(&c.k), "an infeasible cut was chosen"),
        }
        let total = c.device_latency_s + c.cloud_latency_s + c.radio_budget_s;
        assert!((total - p.settings.latency_s).abs() < 1e-9);
    }
    let intervals: Vec<(f64, f64)> = p.chosen.iter().map(|k| p.cut(*k).unwrap().range_bps.unwrap()).collect();
    let idx: Vec<usize> = (0..intervals.len()).collect();
    assert!(covers(&intervals, &idx, &p.uncovered, p.settings.band));
}

#[test]
fn mobilenet_v2_plans_on_gap8_and_stm32() {
    let m = mobilenet();
    let s =
        PlanSettings { latency_s: 0.3, energy_j: None, band: (50e3, 2e6), step: None, granularity: Default::default() };
    let gap8 = plan(&m, "main", &target("gap8"), &s).unwrap();
    check(&gap8);
    assert!(!gap8.chosen.is_empty() && gap8.chosen.len() <= 3, "{:?}", gap8.chosen);
    // Later cuts are infeasible at 300 ms on GAP8.
    assert!(gap8.cuts.last().unwrap().range_bps.is_none());
    // The slower STM32F7 can afford fewer device layers.
    let stm = plan(&m, "main", &target("stm32f7"), &s).unwrap();
    check(&stm);
    let last_feasible = |p: &Plan| p.cuts.iter().filter(|c| c.range_bps.is_some()).map(|c| c.k).max().unwrap();
    assert!(last_feasible(&stm) < last_feasible(&gap8));
    // A longer deadline lowers every feasible cut's bandwidth needs.
    let relaxed = plan(&m, "main", &target("gap8"), &PlanSettings { latency_s: 0.6, ..s.clone() }).unwrap();
    for (a, b) in gap8.cuts.iter().zip(&relaxed.cuts) {
        if let (Some(x), Some(y)) = (a.range_bps, b.range_bps) {
            assert!(y.0 < x.0);
        }
    }
    // An energy budget removes slices that cost too much.
    let tight = plan(&m, "main", &target("gap8"), &PlanSettings { energy_j: Some(0.012), ..s }).unwrap();
    for c in &tight.cuts {
        assert!(c.slices.iter().all(|sl| sl.energy_j <= 0.012));
    }
}

#[test]
fn the_pass_needs_a_target_and_records_the_plan() {
    let mut m = mobilenet();
    let reg = clio_passes::registry();
    let e = PassManager::from_pipeline(&reg, "plan-partitions").unwrap().run(&mut m.clone()).unwrap_err().to_string();
    assert!(e.contains("pass `plan-partitions` failed: needs a compilation target"), "{e}");
    let mut pm = PassManager::from_pipeline(&reg, "plan-partitions{latency-ms=300,band=50k:2M}").unwrap();
    pm.config.target = Some(target("gap8"));
    let report = pm.run(&mut m).unwrap();
    let stored = match &m.attrs["clio.plan"] {
        clio::ir::Attr::Str(s) => serde_json::from_str::<Plan>(s).unwrap(),
        a => panic!("{a:?}"),
    };
    assert_eq!(report.passes[0].stats["chosen"] as usize, stored.chosen.len());
    check(&stored);
    let e = PassManager::from_pipeline(&reg, "plan-partitions{band=2M:1k}").err().unwrap().to_string();
    assert!(e.contains("need 0 < LO < HI"), "{e}");
}
