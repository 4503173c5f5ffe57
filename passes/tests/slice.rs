//! `slice` (progressive slicing) on real models: every block cut of every test model and of the
//! Rust-built MobileNetV2 / ResNet-18 (CIFAR) slices into a device graph and per-slice heads
//! that verify; the channel reorder keeps the full-width function (widest head == original,
//! within 1e-5); a narrower head computes what the full model computes with the missing
//! channels zeroed (when its first layers read the cut tensor directly); later weights are tied.

mod common;
use clio::analysis::{cut_points, Granularity};
use clio::ir::{Module, Op, Tensor};
use clio::pass::PassManager;
use clio::verify::verify_module;
use common::*;

/// The first `i` channels of an NCHW (or NC) tensor.
fn first_channels(t: &Tensor, i: usize) -> Tensor {
    let s = t.shape();
    let inner: usize = s[2..].iter().product();
    let data = t.as_f32().unwrap();
    let mut out = vec![];
    for n in 0..s[0] {
        let base = n * s[1] * inner;
        out.extend_from_slice(&data[base..base + i * inner]);
    }
    let mut shape = s.to_vec();
    shape[1] = i;
    Tensor::from_f32(shape, out).unwrap()
}

/// `t` with channels `i..` set to zero.
fn zero_from(t: &Tensor, i: usize) -> Tensor {
    let s = t.shape();
    let inner: usize = s[2..].iter().product();
    let mut data = t.as_f32().unwrap().to_vec();
    for n in 0..s[0] {
        for c in i..s[1] {
            let base = (n * s[1] + c) * inner;
            data[base..base + inner].iter_mut().for_each(|v| *v = 0.0);
        }
    }
    Tensor::from_f32(s.to_vec(), data).unwrap()
}

fn report(m: &Module) -> serde_json::Value {
    match m.attrs.get("clio.slice") {
        Some(clio::ir::Attr::Str(s)) => serde_json::from_str(s).unwrap(),
        other => panic!("no clio.slice attribute: {other:?}"),
    }
}

fn out(m: &Module, graph: &str, x: &Tensor) -> Vec<f32> {
    clio::interp::run(m, graph, std::slice::from_ref(x)).unwrap()[0].as_f32().unwrap().to_vec()
}

/// True when every reader of the head's input is a dense conv or gemm.
fn first_layers_read_input(m: &Module, head: &str) -> bool {
    let g = m.graph(head).unwrap();
    let input = clio::ir::Value::of(g.inputs()[0]);
    g.uses(input).iter().all(|(n, _)| match &g.node(*n).op {
        Op::Conv2d(c) => c.groups == 1,
        Op::Gemm(_) | Op::MatMul => true,
        _ => false,
    })
}

/// Slices `m` at every block cut `k >= 1` and checks the heads; returns how many cuts sliced.
/// With `allow_unsupported`, cuts the pass refuses with "cannot slice" (e.g. a gate that
/// multiplies the cut tensor by a full-width tensor computed from it) are skipped.
fn check_model(name: &str, m: &Module, x: &Tensor, step: usize, allow_unsupported: bool) -> (usize, usize) {
    let want = run(m, x);
    let cuts = cut_points(m, "main", Granularity::Block).unwrap();
    let mut sliced = 0;
    let mut narrow_checked = 0;
    let g = m.graph("main").unwrap();
    let outputs: Vec<_> = g.outputs().to_vec();
    for c in cuts.iter().filter(|c| c.k >= 1 && !outputs.contains(&c.value)) {
        let mut p = m.clone();
        let mut result = Err(String::new());
        // A cut tensor whose channels cannot move (coupled to each other) keeps its order.
        for order in ["l1", "none"] {
            p = m.clone();
            let pipeline = format!("slice{{cut={},step={step},bandwidth=none,order={order}}}", c.k);
            let mut pm = PassManager::from_pipeline(&clio_passes::registry(), &pipeline).unwrap();
            result = pm.run(&mut p).map(|_| ()).map_err(|e| e.to_string());
            match &result {
                Err(e) if allow_unsupported && e.contains("use order=none") => continue,
                _ => break,
            }
        }
        if let Err(e) = result {
            if allow_unsupported && e.contains("cannot slice at cut") {
                continue;
            }
            panic!("{name}: cut {} (%{}): {e}", c.k, c.node);
        }
        verify_module(&p).unwrap_or_else(|e| panic!("{name}: cut {}: {e}", c.k));
        let r = report(&p);
        let heads = r["heads"].as_array().unwrap();
        let sizes: Vec<usize> = heads.iter().map(|h| h["size"].as_u64().unwrap() as usize).collect();
        assert_eq!(*sizes.last().unwrap(), c.channels, "{name}: widest head");
        let sent = clio::interp::run(&p, "device", std::slice::from_ref(x)).unwrap().remove(0);
        assert_eq!(sent.shape(), &c.shape[..]);
        let widest = format!("cloud.s{}", c.channels);
        let full = out(&p, &widest, &sent);
        let d = rel_diff(&full, &want);
        assert!(d <= 1e-5, "{name}: cut {} (%{}): widest head differs from the original by {d}", c.k, c.node);
        // Tied weights: every head reads the same later weights; per-slice names are its own.
        let tied0 = &heads[0]["weights"]["tied"];
        for h in heads {
            assert_eq!(&h["weights"]["tied"], tied0, "{name}: cut {}: heads tie different weights", c.k);
            let size = h["size"].as_u64().unwrap();
            for w in h["weights"]["per_slice"].as_array().unwrap() {
                assert!(w.as_str().unwrap().ends_with(&format!(".s{size}")), "{name}: {w}");
            }
        }
        if first_layers_read_input(&p, &widest) {
            for s in &sizes[..sizes.len() - 1] {
                let narrow = out(&p, &format!("cloud.s{s}"), &first_channels(&sent, *s));
                let zeroed = out(&p, &widest, &zero_from(&sent, *s));
                let d = rel_diff(&narrow, &zeroed);
                assert!(d <= 1e-5, "{name}: cut {}: head s{s} differs from the zeroed full model by {d}", c.k);
            }
            narrow_checked += 1;
        }
        sliced += 1;
    }
    (sliced, narrow_checked)
}

#[test]
fn every_block_cut_of_the_test_models_slices() {
    for (name, m, x) in test_models() {
        // Residual and plain CNNs slice at every block cut; the others where their ops allow.
        let strict = ["mobilenet", "resnet", "vgg"].iter().any(|p| name.starts_with(p));
        let (n, _) = check_model(&name, &m, &x, 2, !strict);
        assert!(n >= 2, "{name}: only {n} cuts");
    }
}

#[test]
fn built_mobilenet_v2_and_resnet18_slice_at_every_block_cut() {
    use clio::models::*;
    let mb = mobilenet_v2(&MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 3, variant: Variant::Cifar })
        .unwrap();
    let rn = resnet18(&ResNetConfig { width: 0.25, input: 32, classes: 10, seed: 4, variant: Variant::Cifar }).unwrap();
    for (name, m) in [("mobilenet_v2_w035_cifar", mb), ("resnet18_w025_cifar", rn)] {
        let g = m.graph("main").unwrap();
        let shape = g.node(g.inputs()[0]).ty().shape.clone();
        let n: usize = shape.iter().product();
        let x = Tensor::from_f32(shape, (0..n).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect()).unwrap();
        let (k, narrow) = check_model(name, &m, &x, 4, false);
        assert!(k >= 8, "{name}: only {k} cuts sliced");
        assert!(narrow >= 6, "{name}: narrow heads checked at only {narrow} cuts");
    }
}

fn tiny(name: &str) -> (Module, Tensor) {
    let (_, m, x) = test_models().into_iter().find(|(n, _, _)| n == name).unwrap();
    (m, x)
}

fn try_slice(m: &mut Module, pipeline: &str, target: Option<clio::cost::TargetContext>) -> Result<(), String> {
    let mut pm = PassManager::from_pipeline(&clio_passes::registry(), pipeline).map_err(|e| e.to_string())?;
    pm.config.target = target;
    pm.run(m).map(|_| ()).map_err(|e| e.to_string())
}

fn gap8_ble() -> clio::cost::TargetContext {
    use std::sync::Arc;
    clio::cost::TargetContext {
        device: Arc::from(clio_targets::load_target("gap8").unwrap()),
        cloud: Arc::from(clio_targets::load_target("cloud-gpu").unwrap()),
        link: Arc::from(clio_targets::load_link("ble").unwrap()),
    }
}

#[test]
fn objective_weights_follow_the_bandwidth_distribution() {
    use clio_passes::slice::objective::{objective, BandwidthDist};
    // Uniform on [0, 100]: slices need 20, 50, 80 -> fit with 0.8, 0.5, 0.2.
    let o = objective(&[Some(20.0), Some(50.0), Some(80.0)], &BandwidthDist::Uniform(0.0, 100.0)).unwrap();
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
    assert!(close(&o.p_fits, &[0.8, 0.5, 0.2]), "{o:?}");
    // Head i answers when slice i fits and i+1 does not: 0.3, 0.3, 0.2, normalised by 0.8.
    assert!(close(&o.pi, &[0.375, 0.375, 0.25]), "{o:?}");
    assert!((o.p_none - 0.2).abs() < 1e-12);
    // A slice that never fits gets no weight; log-uniform puts more mass at low bandwidth.
    let o = objective(&[Some(10.0), None], &BandwidthDist::LogUniform(1.0, 100.0)).unwrap();
    assert!(close(&o.pi, &[1.0, 0.0]) && (o.p_none - 0.5).abs() < 1e-12, "{o:?}");
    // A trace: 2 s at 1 Mbit/s, 1 s at 100 kbit/s (time-weighted).
    let t = clio::trace::BandwidthTrace::parse("0 1.0\n2 0.1\n3 0.1\n", "t", 1.0).unwrap();
    let o = objective(&[Some(50e3), Some(500e3)], &BandwidthDist::from_trace(&t)).unwrap();
    assert!(close(&o.pi, &[1.0 / 3.0, 2.0 / 3.0]), "{o:?}");
    assert!(objective(&[Some(5e6)], &BandwidthDist::Uniform(1.0, 2.0)).unwrap_err().contains("ever deliverable"));
}

#[test]
fn radio_budget_comes_from_the_target_and_pi_sums_to_one() {
    let (m, _) = tiny("mobilenet_v2_tiny");
    let mut p = m.clone();
    try_slice(&mut p, "slice{cut=3,step=2,latency-ms=300}", Some(gap8_ble())).unwrap();
    let r = report(&p);
    let budget = r["radio_budget_s"].as_f64().unwrap();
    assert!(budget > 0.0 && budget < 0.3, "{budget}");
    let heads = r["heads"].as_array().unwrap();
    let pi: f64 = heads.iter().map(|h| h["pi"].as_f64().unwrap()).sum();
    assert!((pi - 1.0).abs() < 1e-9, "{pi}");
    let needed: Vec<f64> = heads.iter().map(|h| h["bandwidth_bps"].as_f64().unwrap()).collect();
    assert!(needed.windows(2).all(|w| w[0] < w[1]), "{needed:?}");
    // A tighter deadline leaves less radio time: every slice needs more bandwidth.
    let mut q = m.clone();
    try_slice(&mut q, "slice{cut=3,step=2,latency-ms=100}", Some(gap8_ble())).unwrap();
    let tight = report(&q);
    let b2 = tight["heads"][0]["bandwidth_bps"].as_f64().unwrap();
    assert!(b2 > needed[0], "{b2} vs {}", needed[0]);
}

#[test]
fn sizes_step_pow2_and_errors() {
    let (m, _) = tiny("resnet_tiny");
    let cuts = cut_points(&m, "main", Granularity::Block).unwrap();
    let c = cuts.iter().find(|c| c.k == 2).unwrap();
    let sizes_of = |pipeline: &str| {
        let mut p = m.clone();
        try_slice(&mut p, pipeline, None).unwrap();
        report(&p)["heads"].as_array().unwrap().iter().map(|h| h["size"].as_u64().unwrap()).collect::<Vec<_>>()
    };
    let w = c.channels as u64;
    assert_eq!(sizes_of("slice{cut=2,sizes=1:3,bandwidth=none}"), vec![1, 3]);
    let step = sizes_of("slice{cut=2,step=3,bandwidth=none}");
    assert_eq!(step.last(), Some(&w));
    assert!(step[..step.len() - 1].iter().all(|s| s % 3 == 0));
    let pow2 = sizes_of("slice{cut=2,pow2=true,bandwidth=none}");
    assert!(pow2[..pow2.len() - 1].iter().all(|s| s.is_power_of_two()) && pow2.last() == Some(&w));
    // The cut can be named by its node.
    assert_eq!(sizes_of(&format!("slice{{cut={},sizes=2,bandwidth=none}}", c.node)), vec![2]);

    let before = printed(&m);
    for (pipeline, expect) in [
        ("slice{cut=2,sizes=4:2,bandwidth=none}", "strictly increasing"),
        (&format!("slice{{cut=2,sizes={},bandwidth=none}}", w + 1), "only"),
        ("slice{cut=2,sizes=2,step=2,bandwidth=none}", "at most one"),
        ("slice{cut=2}", "radio budget"),
        ("slice{cut=2,bandwidth=gamma:1:2}", "unknown distribution"),
        ("slice{cut=2,bandwidth=trace:/nonexistent/trace.txt,radio-ms=10}", "/nonexistent/trace.txt"),
        ("slice{cut=0,bandwidth=none}", "graph input"),
        ("slice{cut=99,bandwidth=none}", "99"),
        ("slice{cut=2,radio-ms=0.001}", "ever deliverable"),
    ] {
        let mut p = m.clone();
        let e = try_slice(&mut p, pipeline, None).unwrap_err();
        assert!(e.contains(expect), "{pipeline}: {e}");
        assert_eq!(printed(&p), before, "{pipeline}: a failed slice changed the module");
    }
    // order=bn-gamma needs batch norms: after fuse-bn there are none to rank by.
    let mut p = m.clone();
    run_pipeline(&mut p, "fuse-bn");
    let e = try_slice(&mut p, "slice{cut=2,order=bn-gamma,bandwidth=none}", None).unwrap_err();
    assert!(e.contains("no score"), "{e}");
    // The graph output itself is no place to slice: nothing would run in the cloud.
    let last = cuts.last().unwrap().k;
    let mut p = m.clone();
    let e = try_slice(&mut p, &format!("slice{{cut={last},bandwidth=none}}"), None).unwrap_err();
    assert!(e.contains("cannot slice") || e.contains("output"), "{e}");
}

/// A slice that fails at its very end (the objective file cannot be written, after the channel
/// reorder, the skip rewrites, the split and the heads) leaves the module exactly as it was:
/// `slice` undoes its edits instead of working on a copy of the module.
#[test]
fn a_slice_failing_after_the_split_leaves_the_module_untouched() {
    let bad = std::env::temp_dir().join(format!("clio-slice-missing-{}", std::process::id())).join("o.json");
    let mut skips_covered = false;
    for name in ["resnet_tiny", "mobilenet_v2_tiny"] {
        let (m, _) = tiny(name);
        let before = printed(&m);
        for c in cut_points(&m, "main", Granularity::Block).unwrap() {
            // Only cuts that slice: the failure must come from the file.
            let mut ok = m.clone();
            if try_slice(&mut ok, &format!("slice{{cut={},bandwidth=none}}", c.k), None).is_err() {
                continue;
            }
            skips_covered |= !report(&ok)["skips_rewritten"].as_array().unwrap().is_empty();
            let mut p = m.clone();
            let pipeline = format!("slice{{cut={},bandwidth=none,objective={}}}", c.k, bad.display());
            let e = try_slice(&mut p, &pipeline, None).unwrap_err();
            assert!(e.contains("o.json") || e.contains("No such file"), "{name} cut {}: {e}", c.k);
            assert_eq!(printed(&p), before, "{name} cut {}: a failed slice changed the module", c.k);
            assert_eq!(p.graph_names(), m.graph_names());
            assert_eq!(p.weights().keys().collect::<Vec<_>>(), m.weights().keys().collect::<Vec<_>>());
        }
    }
    assert!(skips_covered, "no cut of the test models rewrote an identity skip");
}

#[test]
fn objective_file_is_written() {
    let (m, _) = tiny("mobilenet_v2_tiny");
    let dir = std::env::temp_dir().join(format!("clio-slice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("objective.json");
    let mut p = m.clone();
    try_slice(&mut p, &format!("slice{{cut=2,radio-ms=50,objective={}}}", path.display()), None).unwrap();
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(file, report(&p));
    assert!(file["heads"][0]["graph"].as_str().unwrap().starts_with("cloud.s"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The weight names operand `slot` of every `batch_norm` in head `graph` reads.
fn bn_operand_names(m: &Module, graph: &str, slot: usize) -> Vec<String> {
    let g = m.graph(graph).unwrap();
    g.node_ids()
        .filter(|n| matches!(g.node(*n).op, Op::BatchNorm(_)))
        .map(|n| g.weight_name(g.operand_list(n)[slot]).unwrap().to_string())
        .collect()
}

#[test]
fn heads_have_their_own_batch_norm_statistics_unless_tied() {
    use clio::models::*;
    let m = resnet18(&ResNetConfig { width: 0.25, input: 32, classes: 10, seed: 4, variant: Variant::Cifar }).unwrap();
    let mut per_head = m.clone();
    try_slice(&mut per_head, "slice{cut=3,sizes=8:16,bandwidth=none}", None).unwrap();
    let mut tied = m.clone();
    try_slice(&mut tied, "slice{cut=3,sizes=8:16,bandwidth=none,bn-stats=tied}", None).unwrap();
    let (scale8, scale16) = (bn_operand_names(&per_head, "cloud.s8", 1), bn_operand_names(&per_head, "cloud.s16", 1));
    assert!(scale8.len() >= 8, "{scale8:?}");
    let report = report(&per_head);
    let per_slice: Vec<&str> =
        report["heads"][0]["weights"]["per_slice"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    for (slot, stat) in [(3, "mean"), (4, "var")] {
        let (s8, s16) = (bn_operand_names(&per_head, "cloud.s8", slot), bn_operand_names(&per_head, "cloud.s16", slot));
        let (t8, t16) = (bn_operand_names(&tied, "cloud.s8", slot), bn_operand_names(&tied, "cloud.s16", slot));
        let mut later = 0;
        for (((a, b), o), o16) in s8.iter().zip(&s16).zip(&t8).zip(&t16) {
            if o != o16 {
                continue; // inside the sliced region: per-slice in both modes
            }
            later += 1;
            // After the region: shared when tied, per-head copies of the original otherwise.
            assert_eq!((a.clone(), b.clone()), (format!("{o}.s8"), format!("{o}.s16")));
            let (copy, orig) = (per_head.weight(a).unwrap().data(), tied.weight(o).unwrap().data());
            assert_eq!(copy.as_f32().unwrap(), orig.as_f32().unwrap(), "{a} is not a copy of {o}");
            assert!(per_slice.contains(&a.as_str()), "{a} missing from the head's per-slice weights");
        }
        assert!(later >= 6, "only {later} {stat}s after the region");
    }
    // Scale and shift after the region stay tied.
    let later: Vec<_> = scale8.iter().zip(&scale16).filter(|(a, b)| a == b).collect();
    assert!(later.len() >= 6, "too few tied batch-norm scales: {later:?}");
    let stats_tied: Vec<_> = bn_operand_names(&tied, "cloud.s8", 3)
        .into_iter()
        .zip(bn_operand_names(&tied, "cloud.s16", 3))
        .filter(|(a, b)| a == b)
        .collect();
    assert_eq!(stats_tied.len(), later.len(), "bn-stats=tied shares the statistics where scales are shared");
}
