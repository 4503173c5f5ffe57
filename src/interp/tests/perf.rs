//! Whole-network smoke tests and timings on programmatically built MobileNetV2 (32x32) and
//! ResNet-18 (224x224) with random weights. The timed runs are `#[ignore]`d; run them with
//! `cargo test --release -p clio interp::tests::perf -- --ignored --nocapture`.

use super::*;
use crate::ops::{BatchNorm, Clip, Conv2d, Flatten, Gemm, MaxPool, Window2d};
use std::time::Instant;

struct Net<'a> {
    b: Builder<'a>,
    rng: Rng,
    n: usize,
}

impl Net<'_> {
    fn name(&mut self, base: &str) -> String {
        self.n += 1;
        format!("{base}{}", self.n)
    }
    fn weight(&mut self, shape: &[usize], scale: f32) -> Value {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = self.rng.vec(n).into_iter().map(|x| x * scale).collect();
        let name = self.name("w");
        self.b.weight(&name, Tensor::from_f32(shape.to_vec(), v).unwrap())
    }
    /// conv (no bias) + batch_norm + optional activation.
    #[allow(clippy::too_many_arguments)]
    fn conv_bn(
        &mut self,
        x: Value,
        cin: usize,
        cout: usize,
        k: usize,
        s: usize,
        groups: usize,
        act: Option<Op>,
    ) -> Value {
        let fan_in = (cin / groups * k * k) as f32;
        let w = self.weight(&[cout, cin / groups, k, k], (3.0 / fan_in).sqrt());
        let p = k / 2;
        let name = self.name("conv");
        let y = self
            .b
            .op(&name, Op::Conv2d(Conv2d { strides: [s, s], pads: [p; 4], dilations: [1, 1], groups }), &[x, w])
            .unwrap();
        let gamma = self.weight(&[cout], 0.5);
        let beta = self.weight(&[cout], 0.1);
        let mean = self.weight(&[cout], 0.1);
        let var = self.weight(&[cout], 0.0);
        let name = self.name("bn");
        let mut y = self.b.op(&name, Op::BatchNorm(BatchNorm { epsilon: 1e-5 }), &[y, gamma, beta, mean, var]).unwrap();
        if let Some(a) = act {
            let name = self.name("act");
            y = self.b.op(&name, a, &[y]).unwrap();
        }
        y
    }
    fn head(&mut self, x: Value, c: usize) -> Value {
        let x = self.b.op("gap", Op::GlobalAvgPool, &[x]).unwrap();
        let x = self.b.op("flatten", Op::Flatten(Flatten { axis: 1 }), &[x]).unwrap();
        let w = self.weight(&[1000, c], (1.0 / c as f32).sqrt());
        let bias = self.weight(&[1000], 0.1);
        self.b.op("fc", Op::Gemm(Gemm { trans_b: true, ..Default::default() }), &[x, w, bias]).unwrap()
    }
}

fn mobilenet_v2(hw: usize) -> Module {
    let mut m = Module::new("mobilenet_v2");
    {
        let mut net = Net { b: Builder::new(&mut m, "main"), rng: Rng::new(7), n: 0 };
        let relu6 = || Some(Op::Clip(Clip::RELU6));
        let x = net.b.input("input", TensorType::f32([1, 3, hw, hw]));
        let mut x = net.conv_bn(x, 3, 32, 3, 2, 1, relu6());
        let mut c = 32;
        for (t, cout, n, s) in
            [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        {
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                let hidden = c * t;
                let mut y = x;
                if t != 1 {
                    y = net.conv_bn(y, c, hidden, 1, 1, 1, relu6());
                }
                y = net.conv_bn(y, hidden, hidden, 3, stride, hidden, relu6());
                y = net.conv_bn(y, hidden, cout, 1, 1, 1, None);
                if stride == 1 && c == cout {
                    let name = net.name("add");
                    y = net.b.op(&name, Op::Add, &[x, y]).unwrap();
                }
                x = y;
                c = cout;
            }
        }
        let x = net.conv_bn(x, c, 1280, 1, 1, 1, relu6());
        let y = net.head(x, 1280);
        net.b.output(y);
    }
    m
}

fn resnet18(hw: usize) -> Module {
    let mut m = Module::new("resnet18");
    {
        let mut net = Net { b: Builder::new(&mut m, "main"), rng: Rng::new(8), n: 0 };
        let x = net.b.input("input", TensorType::f32([1, 3, hw, hw]));
        let x = net.conv_bn(x, 3, 64, 7, 2, 1, Some(Op::Relu));
        let pool = Window2d { kernel: [3, 3], strides: [2, 2], pads: [1; 4], ceil_mode: false };
        let mut x = net.b.op("maxpool", Op::MaxPool(MaxPool { window: pool }), &[x]).unwrap();
        let mut c = 64;
        for (cout, s) in [(64, 1), (128, 2), (256, 2), (512, 2)] {
            for i in 0..2 {
                let stride = if i == 0 { s } else { 1 };
                let y = net.conv_bn(x, c, cout, 3, stride, 1, Some(Op::Relu));
                let y = net.conv_bn(y, cout, cout, 3, 1, 1, None);
                let short = if stride != 1 || c != cout { net.conv_bn(x, c, cout, 1, stride, 1, None) } else { x };
                let name = net.name("add");
                let y = net.b.op(&name, Op::Add, &[y, short]).unwrap();
                let name = net.name("relu");
                x = net.b.op(&name, Op::Relu, &[y]).unwrap();
                c = cout;
            }
        }
        let y = net.head(x, 512);
        net.b.output(y);
    }
    m
}

fn time(m: &Module, hw: usize, runs: usize) -> f64 {
    crate::verify::verify_module(m).unwrap();
    let interp = Interpreter::new(m, "main").unwrap();
    let x = Rng::new(1).tensor(&[1, 3, hw, hw]);
    let out = interp.run(std::slice::from_ref(&x)).unwrap();
    assert_eq!(out[0].shape(), &[1, 1000]);
    assert!(out[0].as_f32().unwrap().iter().all(|v| v.is_finite()));
    let t0 = Instant::now();
    for _ in 0..runs {
        interp.run(std::slice::from_ref(&x)).unwrap();
    }
    t0.elapsed().as_secs_f64() / runs as f64
}

#[test]
fn mobilenet_v2_32_runs() {
    let secs = time(&mobilenet_v2(32), 32, 1);
    eprintln!("mobilenet_v2 32x32: {:.2} ms", secs * 1e3);
}

#[test]
#[ignore]
fn timing_mobilenet_v2_32_and_224() {
    eprintln!("mobilenet_v2 32x32: {:.2} ms", time(&mobilenet_v2(32), 32, 20) * 1e3);
    eprintln!("mobilenet_v2 224x224: {:.2} ms", time(&mobilenet_v2(224), 224, 3) * 1e3);
}

#[test]
#[ignore]
fn timing_resnet18_224() {
    eprintln!("resnet18 224x224: {:.2} ms", time(&resnet18(224), 224, 3) * 1e3);
}

#[test]
#[ignore]
fn profile_mobilenet() {
    let hw: usize = std::env::var("CLIO_PROFILE_HW").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    let m = mobilenet_v2(hw);
    let interp = Interpreter::new(&m, "main").unwrap();
    let x = Rng::new(1).tensor(&[1, 3, hw, hw]);
    interp.run(std::slice::from_ref(&x)).unwrap();
    let mut last = Instant::now();
    let mut times = Vec::new();
    interp
        .run_observed(std::slice::from_ref(&x), &mut |id, t| {
            let now = Instant::now();
            times.push((now - last, id, t.shape().to_vec()));
            last = now;
        })
        .unwrap();
    times.sort_by_key(|t| std::cmp::Reverse(t.0));
    let g = interp.graph();
    for (d, id, s) in times.iter().take(15) {
        eprintln!("{:>10.3?} {} {} {:?}", d, g.node(*id).name(), g.node(*id).op.name(), s);
    }
    eprintln!("total {:?}", times.iter().map(|t| t.0).sum::<std::time::Duration>());
}

#[test]
#[ignore]
fn bench_sgemm_shapes() {
    use crate::interp::float::bench_sgemm;
    let mut rng = Rng::new(3);
    for (m, k, n, tb) in [
        (4, 1000, 1000, false),
        (1000, 1000, 4, false),
        (2, 1000, 1000, false),
        (1000, 1000, 2, false),
        (1, 1280, 1000, true),
        (1, 1280, 1000, false),
        (1000, 1280, 1, false),
        (320, 960, 1, false),
        (384, 64, 4, false),
        (64, 576, 3136, false),
    ] {
        let a = rng.vec(m * k);
        let b = rng.vec(k * n);
        let mut c = vec![0.0; m * n];
        bench_sgemm(m, k, n, &a, &b, tb, &mut c);
        let t0 = Instant::now();
        for _ in 0..10 {
            bench_sgemm(m, k, n, &a, &b, tb, &mut c);
        }
        let dt = t0.elapsed().as_secs_f64() / 10.0;
        eprintln!(
            "m {m} k {k} n {n} trans_b {tb}: {:.3} ms, {:.1} GFLOP/s",
            dt * 1e3,
            2.0 * (m * k * n) as f64 / dt / 1e9
        );
    }
}
