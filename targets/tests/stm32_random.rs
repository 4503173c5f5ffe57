//! STM32 backend on random small graphs: chains of convolutions (kernel 1/3/5, stride 1/2,
//! dilation 1/2, asymmetric padding, fused ReLU/ReLU6), depthwise convolutions with channel
//! multipliers, residual adds, max/avg pooling (with padding and ceil mode), channel concats,
//! and heads (global pooling or flatten of a spatial map, gemm, softmax). Each graph is
//! quantized, lowered whole, compiled with `cc` and run on seeded inputs: the wire message must
//! equal the integer interpreter's byte for byte.

mod stm32_common;

use clio::ir::{Builder, Module, Op, Tensor, TensorType, Value};
use clio::ops::{AvgPool, Clip, Concat, Conv2d, Flatten, Gemm, MaxPool, Softmax, Window2d};
use clio::quant::math::SplitMix64;
use stm32_common::{check_bit_exact, run_pipeline};

struct Gen<'a, 'm> {
    b: Builder<'m>,
    r: &'a mut SplitMix64,
    n: usize,
}

impl Gen<'_, '_> {
    fn pick(&mut self, hi: usize) -> usize {
        self.r.range_i64(0, hi as i64 - 1) as usize
    }

    fn weight(&mut self, shape: &[usize], scale: f64) -> Value {
        let len: usize = shape.iter().product();
        let v: Vec<f32> = (0..len).map(|_| ((self.r.uniform() * 2.0 - 1.0) * scale) as f32).collect();
        self.n += 1;
        let name = format!("w{}", self.n);
        self.b.weight(&name, Tensor::from_f32(shape.to_vec(), v).unwrap())
    }

    fn shape(&mut self, v: Value) -> Vec<usize> {
        self.b.graph().value_type(v).unwrap().shape.clone()
    }

    fn op(&mut self, op: Op, operands: &[Value]) -> Result<Value, String> {
        self.n += 1;
        let name = format!("n{}", self.n);
        self.b.op(&name, op, operands)
    }

    /// A convolution with `out` channels, kernel `k`, `(stride, dilation)` and pads
    /// (depthwise when `dw`), plus a random fused activation.
    fn conv(
        &mut self,
        x: Value,
        out: usize,
        k: usize,
        sd: (usize, usize),
        pads: [usize; 4],
        dw: bool,
    ) -> Result<Value, String> {
        let (s, d) = sd;
        let c = self.shape(x)[1];
        let cg = if dw { 1 } else { c };
        let fan_in = (cg * k * k) as f64;
        let w = self.weight(&[out, cg, k, k], (6.0 / fan_in).sqrt());
        let mut ops = vec![x, w];
        if self.pick(2) == 0 {
            let b = self.weight(&[out], 0.2);
            ops.push(b);
        }
        let p = Conv2d { strides: [s, s], pads, dilations: [d, d], groups: if dw { c } else { 1 } };
        let y = self.op(Op::Conv2d(p), &ops)?;
        Ok(match self.pick(3) {
            0 => self.op(Op::Relu, &[y])?,
            1 => self.op(Op::Clip(Clip { min: 0.0, max: 6.0 }), &[y])?,
            _ => y,
        })
    }

    fn layer(&mut self, x: Value) -> Result<Value, String> {
        let c = self.shape(x)[1];
        match self.pick(6) {
            0 | 1 => {
                let k = [1, 3, 5][self.pick(3)];
                let s = 1 + self.pick(2);
                let d = if k > 1 { 1 + self.pick(2) } else { 1 };
                let pads = [self.pick(3), self.pick(3), self.pick(3), self.pick(3)];
                let out = 1 + self.pick(8);
                self.conv(x, out, k, (s, d), pads, false)
            }
            2 => {
                let mult = 1 + self.pick(2);
                let s = 1 + self.pick(2);
                let pads = [1, 1, self.pick(2), self.pick(2)];
                self.conv(x, c * mult, 3, (s, 1), pads, true)
            }
            3 => {
                let y = self.conv(x, c, 3, (1, 1), [1, 1, 1, 1], false)?;
                let a = self.op(Op::Add, &[x, y])?;
                if self.pick(2) == 0 {
                    self.op(Op::Relu, &[a])
                } else {
                    Ok(a)
                }
            }
            4 => {
                let k = 2 + self.pick(2);
                let s = 1 + self.pick(2);
                let pads = [self.pick(2), self.pick(2), self.pick(2), self.pick(2)];
                let window = Window2d { kernel: [k, k], strides: [s, s], pads, ceil_mode: self.pick(2) == 0 };
                if self.pick(2) == 0 {
                    self.op(Op::MaxPool(MaxPool { window }), &[x])
                } else {
                    self.op(Op::AvgPool(AvgPool { window, count_include_pad: false }), &[x])
                }
            }
            _ => {
                let out = 1 + self.pick(4);
                let y = self.conv(x, out, 1, (1, 1), [0; 4], false)?;
                self.op(Op::Concat(Concat { axis: 1 }), &[x, y])
            }
        }
    }

    fn head(&mut self, x: Value) -> Result<Value, String> {
        let x = match self.pick(3) {
            0 => {
                let out = 1 + self.pick(6);
                return self.conv(x, out, 1, (1, 1), [0; 4], false);
            }
            1 => self.op(Op::GlobalAvgPool, &[x])?,
            _ => x,
        };
        let f = self.op(Op::Flatten(Flatten { axis: 1 }), &[x])?;
        let depth = self.shape(f)[1];
        let classes = 2 + self.pick(6);
        let w = self.weight(&[classes, depth], 1.0 / (depth as f64).sqrt());
        let bias = self.weight(&[classes], 0.1);
        let g = Gemm { trans_b: true, ..Default::default() };
        let y = self.op(Op::Gemm(g), &[f, w, bias])?;
        if self.pick(2) == 0 {
            self.op(Op::Softmax(Softmax { axis: 1 }), &[y])
        } else {
            Ok(y)
        }
    }
}

fn random_model(seed: u64) -> (Module, String) {
    let mut r = SplitMix64::new(seed);
    let mut m = Module::new(format!("random{seed}"));
    let last = {
        let mut b = Builder::new(&mut m, "main");
        let c = 1 + r.range_i64(0, 3) as usize;
        let (h, w) = (6 + r.range_i64(0, 6) as usize, 6 + r.range_i64(0, 6) as usize);
        let x = b.input("x", TensorType::f32([1, c, h, w]));
        let mut g = Gen { b, r: &mut r, n: 0 };
        let mut v = x;
        let layers = 2 + g.pick(4);
        for _ in 0..layers {
            // An op that does not fit the current shape is simply skipped.
            if let Ok(y) = g.layer(v) {
                v = y;
            }
        }
        let y = match g.head(v) {
            Ok(y) => y,
            Err(_) => g.conv(v, 3, 1, (1, 1), [0; 4], false).unwrap(),
        };
        // End on a node that survives quantization (a trailing relu/clip is fused away).
        let y = match g.b.graph().node(y.node).op {
            Op::Relu | Op::Clip(_) => g.conv(y, 2, 1, (1, 1), [0; 4], false).unwrap(),
            _ => y,
        };
        let y = match g.b.graph().node(y.node).op {
            Op::Relu | Op::Clip(_) => g
                .op(
                    Op::MaxPool(MaxPool {
                        window: Window2d { kernel: [1, 1], strides: [1, 1], pads: [0; 4], ceil_mode: false },
                    }),
                    &[y],
                )
                .unwrap(),
            _ => y,
        };
        let last = g.b.graph().node(y.node).name().to_string();
        g.b.output(y);
        let Gen { b, .. } = g;
        b.finish();
        last
    };
    (m, last)
}

#[test]
fn random_graphs_bit_exact() {
    let mut used = std::collections::BTreeSet::new();
    for seed in 0..24u64 {
        let (mut m, last) = random_model(seed);
        run_pipeline(
            &mut m,
            &format!("quantize{{scheme=int8,calib=random:{seed},samples=3}},partition{{cut={last},granularity=layer}}"),
        );
        let c = check_bit_exact(&m, &format!("random{seed}"), 4);
        used.extend(c.report.layers.iter().map(|l| l.function.clone()));
    }
    println!("kernels exercised: {used:?}");
    for f in [
        "arm_convolve_wrapper_s8",
        "arm_depthwise_conv_wrapper_s8",
        "arm_elementwise_add_s8",
        "arm_max_pool_s8",
        "arm_avgpool_s8",
        "arm_concatenation_s8_z",
        "arm_fully_connected_s8",
        "arm_softmax_s8",
        "clio_mean_s8",
    ] {
        assert!(used.contains(f), "{f} never exercised: {used:?}");
    }
}
