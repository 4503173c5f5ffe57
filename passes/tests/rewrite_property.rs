//! Property test: on random conv / batch-norm / relu / add graphs, the standard rewrite pipeline
//! preserves the output (through the reference interpreter) and stays valid.

#[path = "../../tests/common/rng.rs"]
mod rng;

use clio::ir::{Builder, Module, Op, Tensor, TensorType, Value};
use clio::ops::{BatchNorm, Clip, Conv2d};
use clio::pass::PassManager;
use proptest::prelude::*;
use rng::Rng;

/// The pipeline under test (canonicalize joins when it lands).
fn pipeline() -> String {
    let reg = clio_passes::registry();
    let mut p = vec!["fuse-bn", "skip-to-conv"];
    if reg.info("canonicalize").is_some() {
        p.push("canonicalize");
    }
    p.push("dce");
    p.join(",")
}

fn weights(r: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| r.f32() * scale).collect()
}

fn random_net(seed: u64) -> (Module, Tensor) {
    let mut r = Rng::new(seed);
    let mut m = Module::new("random");
    let c = r.range(1, 6);
    let hw = r.range(3, 7);
    let x_t = Tensor::from_f32([1, c, hw, hw], weights(&mut r, c * hw * hw, 2.0)).unwrap();
    let mut b = Builder::new(&mut m, "main");
    let x = b.input("x", TensorType::f32([1, c, hw, hw]));
    let mut vals: Vec<(Value, usize)> = vec![(x, c)];
    for i in 0..r.range(2, 12) {
        let (v, ch) = *r.pick(&vals);
        let out = match r.below(5) {
            0 | 1 => {
                let groups = if r.chance(0.3) { ch } else { 1 };
                let cout = if groups > 1 { ch } else { r.range(1, 6) };
                let k = *r.pick(&[1usize, 3]);
                let w = b.weight(
                    &format!("c{i}.w"),
                    Tensor::from_f32([cout, ch / groups, k, k], weights(&mut r, cout * ch / groups * k * k, 0.7))
                        .unwrap(),
                );
                let mut ops = vec![v, w];
                if r.chance(0.5) {
                    ops.push(
                        b.weight(&format!("c{i}.b"), Tensor::from_f32([cout], weights(&mut r, cout, 0.5)).unwrap()),
                    );
                }
                let p = k / 2;
                (
                    b.op(&format!("c{i}"), Op::Conv2d(Conv2d { pads: [p; 4], groups, ..Default::default() }), &ops)
                        .unwrap(),
                    cout,
                )
            }
            2 => {
                let g = b.weight(&format!("bn{i}.g"), Tensor::from_f32([ch], weights(&mut r, ch, 1.0)).unwrap());
                let be = b.weight(&format!("bn{i}.b"), Tensor::from_f32([ch], weights(&mut r, ch, 1.0)).unwrap());
                let mu = b.weight(&format!("bn{i}.m"), Tensor::from_f32([ch], weights(&mut r, ch, 1.0)).unwrap());
                let var: Vec<f32> = (0..ch).map(|_| 0.2 + r.f32().abs()).collect();
                let va = b.weight(&format!("bn{i}.v"), Tensor::from_f32([ch], var).unwrap());
                (b.op(&format!("bn{i}"), Op::BatchNorm(BatchNorm { epsilon: 1e-5 }), &[v, g, be, mu, va]).unwrap(), ch)
            }
            3 => {
                let op = if r.chance(0.5) { Op::Relu } else { Op::Clip(Clip::RELU6) };
                (b.op(&format!("a{i}"), op, &[v]).unwrap(), ch)
            }
            _ => {
                // Residual add with an earlier value of the same width, if any.
                let same: Vec<Value> = vals.iter().filter(|(_, c2)| *c2 == ch).map(|(v2, _)| *v2).collect();
                let other = *r.pick(&same);
                (b.op(&format!("add{i}"), Op::Add, &[v, other]).unwrap(), ch)
            }
        };
        vals.push(out);
    }
    let last = vals.last().unwrap().0;
    b.output(last);
    b.finish();
    (m, x_t)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn standard_rewrites_preserve_outputs(seed in any::<u64>()) {
        let (m, x) = random_net(seed);
        clio::verify::verify_module(&m).unwrap();
        let before = clio::interp::run(&m, "main", std::slice::from_ref(&x)).unwrap();
        let mut after_m = m.clone();
        let pipeline = pipeline();
        let mut pm = PassManager::from_pipeline(&clio_passes::registry(), &pipeline).unwrap();
        pm.run(&mut after_m).map_err(|e| TestCaseError::fail(format!("{pipeline}: {e}")))?;
        let after = clio::interp::run(&after_m, "main", std::slice::from_ref(&x)).unwrap();
        let (a, b) = (after[0].as_f32().unwrap(), before[0].as_f32().unwrap());
        let scale = b.iter().fold(1.0f32, |s, v| s.max(v.abs()));
        for (p, q) in a.iter().zip(b) {
            prop_assert!((p - q).abs() <= 1e-5 * scale, "seed {seed}: {p} vs {q} (scale {scale})\n{}", clio::text::print_module(&m, &Default::default()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, failure_persistence: None, ..ProptestConfig::default() })]
    /// Every listed cut point (block and layer granularity) of a random graph partitions into a
    /// device and a cloud graph that verify and whose composition equals the original exactly.
    #[test]
    fn every_cut_of_random_graphs_composes(seed in any::<u64>()) {
        let (m, x) = random_net(seed);
        let want = clio::interp::run(&m, "main", std::slice::from_ref(&x)).unwrap();
        for granularity in ["block", "layer"] {
            let cuts = clio::analysis::cut_points(&m, "main", clio::analysis::Granularity::parse(granularity).unwrap()).unwrap();
            prop_assert!(!cuts.is_empty());
            for c in &cuts {
                let mut p = m.clone();
                let pipeline = format!("partition{{cut={},granularity={granularity}}}", c.k);
                let mut pm = PassManager::from_pipeline(&clio_passes::registry(), &pipeline).unwrap();
                pm.run(&mut p).map_err(|e| TestCaseError::fail(format!("seed {seed}: {pipeline}: {e}")))?;
                clio::verify::verify_module(&p).unwrap();
                let sent = clio::interp::run(&p, "device", std::slice::from_ref(&x)).unwrap();
                let got = clio::interp::run(&p, "cloud", &sent).unwrap();
                prop_assert_eq!(got[0].as_f32().unwrap(), want[0].as_f32().unwrap(), "seed {}: cut {}", seed, c.k);
            }
        }
    }
}
