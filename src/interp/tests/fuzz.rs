//! Random single-op graphs with random attributes, operand shapes (zero-sized axes included)
//! and declared types: the interpreter must return Ok or an error, never panic.

use super::*;
use crate::ir::{Graph, Quant, TensorData};
use crate::ops::*;

fn shape(rng: &mut Rng) -> Vec<usize> {
    let rank = rng.range(0, 5);
    (0..rank).map(|_| if rng.range(0, 9) == 0 { 0 } else { rng.range(1, 4) }).collect()
}

fn usizes(rng: &mut Rng, n: usize, hi: usize) -> Vec<usize> {
    (0..n).map(|_| rng.range(0, hi)).collect()
}

/// Mostly small values, sometimes huge ones (overflow hunting).
fn arr<const N: usize>(rng: &mut Rng, lo: usize, hi: usize) -> [usize; N] {
    std::array::from_fn(|_| match rng.range(0, 40) {
        0 => usize::MAX / 2,
        1 => 1 << 40,
        2 => usize::MAX,
        _ => rng.range(lo, hi),
    })
}

fn random_op(rng: &mut Rng) -> Op {
    let win = |rng: &mut Rng| Window2d {
        kernel: arr(rng, 0, 3),
        strides: arr(rng, 0, 2),
        pads: arr(rng, 0, 2),
        ceil_mode: rng.bool(),
    };
    match rng.range(0, 30) {
        0 => Op::Conv2d(Conv2d {
            strides: arr(rng, 0, 2),
            pads: arr(rng, 0, 2),
            dilations: arr(rng, 0, 2),
            groups: rng.range(0, 3),
        }),
        1 => Op::BatchNorm(BatchNorm { epsilon: 1e-5 }),
        2 => Op::ScaleShift,
        3 => Op::Relu,
        4 => Op::Clip(Clip::RELU6),
        5 => Op::Sigmoid,
        6 => Op::HardSigmoid(HardSigmoid { alpha: 0.2, beta: 0.5 }),
        7 => Op::HardSwish,
        8 => Op::PRelu,
        9 => Op::Softmax(Softmax { axis: rng.range(0, 4) }),
        10 => Op::Add,
        11 => Op::Sub,
        12 => Op::Mul,
        13 => Op::Div,
        14 => Op::Concat(Concat { axis: rng.range(0, 4) }),
        15 => Op::MaxPool(MaxPool { window: win(rng) }),
        16 => Op::AvgPool(AvgPool { window: win(rng), count_include_pad: rng.bool() }),
        17 => Op::GlobalAvgPool,
        18 => Op::Gemm(Gemm { alpha: 1.0, beta: 0.5, trans_a: rng.bool(), trans_b: rng.bool() }),
        19 => Op::MatMul,
        20 => Op::Flatten(Flatten { axis: rng.range(0, 5) }),
        21 => {
            let n = rng.range(0, 3);
            Op::Reshape(Reshape { shape: usizes(rng, n, 4) })
        }
        22 => {
            let n = rng.range(0, 2);
            Op::Squeeze(Squeeze { axes: usizes(rng, n, 4) })
        }
        23 => {
            let n = rng.range(0, 2);
            Op::Unsqueeze(Unsqueeze { axes: usizes(rng, n, 5) })
        }
        24 => {
            let n = rng.range(0, 4);
            Op::Transpose(Transpose { perm: usizes(rng, n, 4) })
        }
        25 => {
            let n = 2 * rng.range(0, 4);
            let mode = [PadMode::Constant, PadMode::Reflect, PadMode::Edge][rng.range(0, 2)];
            Op::Pad(Pad { pads: usizes(rng, n, 3), mode, value: 1.0 })
        }
        26 => Op::Quantize,
        27 => Op::Dequantize,
        28 => Op::ChannelSlice(ChannelSlice { axis: rng.range(0, 3), start: rng.range(0, 2), end: rng.range(0, 4) }),
        _ => Op::Transmit(Transmit { to: "cloud".into() }),
    }
}

fn random_type(rng: &mut Rng, shape: Vec<usize>) -> TensorType {
    match rng.range(0, 6) {
        0 => TensorType::new(shape, DType::I8).with_quant(Quant::affine(0.5, 1)),
        1 => TensorType::new(shape, DType::I32),
        _ => TensorType::f32(shape),
    }
}

#[test]
fn random_graphs_never_panic() {
    let seed = std::env::var("CLIO_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(99);
    let mut rng = Rng::new(seed);
    let mut ok = 0;
    for case in 0..20000 {
        let op = random_op(&mut rng);
        let arity = op.arity();
        let n = if rng.range(0, 9) == 0 { rng.range(0, 4) } else { rng.range(arity.min, arity.max.min(arity.min + 2)) };
        let first = shape(&mut rng);
        let types: Vec<TensorType> = (0..n)
            .map(|i| {
                let s = match (i, rng.range(0, 3)) {
                    (0, _) => first.clone(),
                    (_, 0) => shape(&mut rng),
                    (_, 1) => first.get(1).map(|c| vec![*c]).unwrap_or_default(),
                    _ => first.clone(),
                };
                if rng.range(0, 5) == 0 {
                    random_type(&mut rng, s)
                } else {
                    TensorType::f32(s)
                }
            })
            .collect();
        let mut g = Graph::new("main");
        let ins: Vec<Value> =
            types.iter().enumerate().map(|(i, ty)| g.add_input(&format!("x{i}"), ty.clone())).collect();
        let refs: Vec<&TensorType> = types.iter().collect();
        let inferred = if arity.accepts(n) {
            // Some shape rules of `crate::ops` panic on degenerate operands (concat of rank-0
            // tensors); the interpreter guards against those, the test only needs a type.
            std::panic::catch_unwind(|| op.infer(&refs)).unwrap_or(None)
        } else {
            None
        };
        let results = match (arity.accepts(n), rng.range(0, 5)) {
            (true, 0..=3) => match inferred {
                Some(Ok(inf)) => inf
                    .into_iter()
                    .map(|i| {
                        let d = i.dtype.unwrap_or(DType::I8);
                        let ty = TensorType::new(i.shape, d);
                        if d == DType::I8 {
                            ty.with_quant(Quant::pow2(3))
                        } else {
                            ty
                        }
                    })
                    .collect(),
                _ => {
                    let s = shape(&mut rng);
                    vec![random_type(&mut rng, s)]
                }
            },
            _ => {
                let s = shape(&mut rng);
                vec![random_type(&mut rng, s)]
            }
        };
        let y = g.add_node("y", op.clone(), &ins, results);
        g.set_outputs(vec![Value::of(y)]);
        let mut m = Module::new("fuzz");
        m.add_graph(g);
        let inputs: Vec<Tensor> = types
            .iter()
            .map(|ty| {
                let len: usize = ty.shape.iter().product();
                let data = match ty.dtype {
                    DType::F32 => TensorData::F32(rng.vec(len)),
                    DType::I8 => TensorData::I8((0..len).map(|_| rng.range(0, 255) as i8).collect()),
                    DType::I16 => TensorData::I16(vec![1; len]),
                    DType::I32 => TensorData::I32(vec![-3; len]),
                };
                Tensor::new(ty.shape.clone(), data).unwrap()
            })
            .collect();
        let r = std::panic::catch_unwind(|| crate::interp::run(&m, "main", &inputs));
        match r {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(_)) => {}
            Err(_) => panic!("case {case}: {op:?} on {types:?} panicked"),
        }
    }
    assert!(ok > 4000, "only {ok} random cases ran successfully");
}
