//! `canonicalize` on random graphs built from the ops its rules touch (relu, clip, transposes,
//! reshapes, flattens, pads, convs, scale_shift, arithmetic with zero/one/random weights, shared
//! values): the result verifies, computes the same outputs and is idempotent.

mod canonicalize_support;

use canonicalize_support::*;
use clio::ir::{Builder, Module, Op, Tensor, TensorType, Value};
use clio::ops::{Clip, Conv2d, Flatten, Pad, PadMode, Reshape, Transpose};

struct Gen {
    r: Rng,
}

impl Gen {
    fn below(&mut self, n: usize) -> usize {
        (((self.r.f32() + 1.0) / 2.0 * n as f32) as usize).min(n.saturating_sub(1))
    }

    fn pick<T: Clone>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())].clone()
    }

    fn values(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| (self.r.f32() * 4.0).round() / 4.0).collect()
    }
}

fn build(seed: u64) -> Module {
    let mut gen = Gen { r: Rng::new(seed) };
    let mut m = Module::new(format!("random{seed}"));
    let mut b = Builder::new(&mut m, "main");
    let c = 1 + gen.below(3);
    let (h, w) = (2 + gen.below(3), 2 + gen.below(3));
    let x = b.input("x", TensorType::f32([1, c, h, w]));
    let mut vals: Vec<Value> = vec![x];
    let bounds = [f32::NEG_INFINITY, -1.0, 0.0, 1.0, 6.0, f32::INFINITY];
    for step in 0..(4 + gen.below(10)) {
        let v = *vals.last().unwrap();
        let v = if gen.below(4) == 0 { vals[gen.below(vals.len())] } else { v };
        let ty = b.graph().value_type(v).unwrap().clone();
        let n: usize = ty.shape.iter().product();
        let name = format!("n{step}");
        let choice = gen.below(14);
        let out = match choice {
            0 => b.op(&name, Op::Relu, &[v]),
            1 => {
                let (lo, hi) = (gen.pick(&bounds), gen.pick(&bounds));
                b.op(&name, Op::Clip(Clip { min: lo.min(hi), max: lo.max(hi) }), &[v])
            }
            2 => {
                let mut perm: Vec<usize> = (0..ty.rank()).collect();
                for i in (1..perm.len()).rev() {
                    let j = gen.below(i + 1);
                    perm.swap(i, j);
                }
                b.op(&name, Op::Transpose(Transpose { perm }), &[v])
            }
            3 => {
                let shape = match gen.below(3) {
                    0 => vec![n],
                    1 => vec![1, n],
                    _ => vec![1, c, h, w],
                };
                b.op(&name, Op::Reshape(Reshape { shape }), &[v])
            }
            4 => {
                let axis = gen.below(ty.rank() + 1);
                b.op(&name, Op::Flatten(Flatten { axis }), &[v])
            }
            5 | 6 => {
                // add/sub/mul/div with a zero, one or random weight, of the full shape or of
                // the last dimension (broadcast).
                let wshape = if gen.below(2) == 0 { ty.shape.clone() } else { vec![*ty.shape.last().unwrap_or(&1)] };
                let k: usize = wshape.iter().product();
                let data = match gen.below(3) {
                    0 => vec![0.0; k],
                    1 => vec![1.0; k],
                    _ => gen.values(k).into_iter().map(|x| x + 2.0).collect(),
                };
                let wv = b.weight(&format!("{name}.c"), Tensor::from_f32(wshape, data).unwrap());
                let op = gen.pick(&[Op::Add, Op::Sub, Op::Mul, Op::Div]);
                // Never divide by an activation (zeros from relu).
                if gen.below(2) == 0 || op == Op::Div {
                    b.op(&name, op, &[v, wv])
                } else {
                    b.op(&name, op, &[wv, v])
                }
            }
            7 if ty.rank() == 4 => {
                let (p, value, mode) = (
                    gen.below(2),
                    gen.pick(&[0.0, 0.0, 0.5]),
                    gen.pick(&[PadMode::Constant, PadMode::Constant, PadMode::Edge]),
                );
                let c_pad = if gen.below(4) == 0 { 1 } else { 0 };
                let pads = vec![0, c_pad, p, p, 0, 0, p, 1 - p];
                b.op(&name, Op::Pad(Pad { pads, mode, value }), &[v])
            }
            8..=10 if ty.rank() == 4 => {
                let cin = ty.shape[1];
                let identity = gen.below(3) == 0;
                let (cout, k, groups) = if identity {
                    if gen.below(2) == 0 {
                        (cin, 1, 1)
                    } else {
                        (cin, 1, cin)
                    }
                } else {
                    (1 + gen.below(3), gen.pick(&[1, 3]), 1)
                };
                let per = cin / groups;
                let wdata = if identity {
                    (0..cout * per).map(|i| if groups > 1 || i / per == i % per { 1.0 } else { 0.0 }).collect()
                } else {
                    gen.values(cout * per * k * k)
                };
                let wv = b.weight(&format!("{name}.w"), Tensor::from_f32([cout, per, k, k], wdata).unwrap());
                let mut ops = vec![v, wv];
                if gen.below(2) == 0 {
                    let bias = if identity { vec![0.0; cout] } else { gen.values(cout) };
                    ops.push(b.weight(&format!("{name}.b"), Tensor::from_f32([cout], bias).unwrap()));
                }
                let p = if k == 3 && gen.below(2) == 0 { 1 } else { 0 };
                b.op(&name, Op::Conv2d(Conv2d { pads: [p; 4], groups, ..Default::default() }), &ops)
            }
            11 if ty.rank() == 4 => {
                let ch = ty.shape[1];
                let (s, t) =
                    if gen.below(3) == 0 { (vec![1.0; ch], vec![0.0; ch]) } else { (gen.values(ch), gen.values(ch)) };
                let sv = b.weight(&format!("{name}.s"), Tensor::from_f32([ch], s).unwrap());
                let tv = b.weight(&format!("{name}.t"), Tensor::from_f32([ch], t).unwrap());
                b.op(&name, Op::ScaleShift, &[v, sv, tv])
            }
            12 => {
                // Combine with an earlier value of the same type (shared values).
                match vals.iter().rev().find(|o| **o != v && b.graph().value_type(**o) == Some(&ty)).copied() {
                    Some(o) => b.op(&name, Op::Add, &[v, o]),
                    None => b.op(&name, Op::Relu, &[v]),
                }
            }
            _ => b.op(&name, Op::Relu, &[v]),
        };
        if let Ok(out) = out {
            vals.push(out);
        }
    }
    let last = *vals.last().unwrap();
    b.output(last);
    if vals.len() > 2 && gen.below(2) == 0 {
        let extra = vals[1 + gen.below(vals.len() - 2)];
        b.output(extra);
    }
    b.finish();
    m
}

#[test]
fn random_graphs_keep_outputs_and_are_idempotent() {
    let mut changed = 0;
    let mut fired: std::collections::BTreeMap<String, usize> = Default::default();
    for seed in 1..=400u64 {
        let m0 = build(seed);
        clio::verify::verify_module(&m0).unwrap_or_else(|e| panic!("seed {seed}: generator: {e}"));
        let mut m = m0.clone();
        let r = run_pipeline(&mut m, "canonicalize{remove-identity-convs=true}");
        let s = &r.passes[0].stats;
        assert_eq!(s["regions-skipped"], 0, "seed {seed}: {:?}\n{}", r.passes[0].notes, printed(&m0));
        changed += (s["regions-changed"] > 0) as usize;
        for note in &r.passes[0].notes {
            if let Some(rule) = note.strip_prefix("rule `").and_then(|n| n.split('`').next()) {
                *fired.entry(rule.to_string()).or_default() += 1;
            }
        }
        for k in 0..2 {
            let inputs = random_inputs(&m0, seed * 10 + k, 3.0);
            let (want, got) = (eval(&m0, &inputs), eval(&m, &inputs));
            let what = format!("seed {seed}\n{}\n=>\n{}", printed(&m0), printed(&m));
            assert_close(&what, &want, &got, 1e-5);
        }
        let once = printed(&m);
        run_pipeline(&mut m, "canonicalize{remove-identity-convs=true}");
        assert_eq!(once, printed(&m), "seed {seed}: not idempotent");
    }
    eprintln!("{changed} of 400 graphs changed; graphs per rule fired: {fired:?}");
    assert!(changed > 100, "only {changed} graphs changed: the generator does not exercise the rules");
    assert!(fired.len() >= 15, "rules fired: {fired:?}");
}
