//! parse(print(m)) prints identically, on random modules covering every op family, quantized
//! types, custom ops with several results, odd names and several graphs.

#[path = "common/rng.rs"]
mod common_rng;

use clio::ir::{
    Attr, AttrMap, DType, Graph, Module, Op, QScheme, Quant, Tensor, TensorData, TensorType, Value, Weight,
};
use clio::ops::*;
use clio::text::{parse_module, print_module, ParseOptions, PrintOptions};
use common_rng::Rng;
use proptest::prelude::*;

fn odd_name(r: &mut Rng, base: &str) -> String {
    match r.below(6) {
        0 => format!("{base}::{}", r.below(100)),
        1 => format!("/features/{base}.{}/Conv", r.below(9)),
        2 => format!("{base} with \"quotes\" \\ and\ttab"),
        _ => format!("{base}_{}", r.below(1000)),
    }
}

fn special_f32(r: &mut Rng) -> f32 {
    match r.below(12) {
        0 => 0.0,
        1 => -0.0,
        2 => 1e-30,
        3 => f32::MAX,
        4 => f32::MIN_POSITIVE,
        5 => 1.0 / 3.0,
        _ => r.f32() * 10.0,
    }
}

fn f32_weight(m: &mut Module, g: &mut Graph, r: &mut Rng, name: &str, shape: Vec<usize>) -> Value {
    let n: usize = shape.iter().product();
    let t = Tensor::from_f32(shape, (0..n).map(|_| special_f32(r)).collect()).unwrap();
    let name = m.add_weight(&odd_name(r, name), Weight::new(t));
    let ty = m.weight(&name).unwrap().ty();
    g.weight_value(&name, ty)
}

fn random_graph(m: &mut Module, r: &mut Rng, name: &str) -> Graph {
    let mut g = Graph::new(name);
    let c = r.range(1, 4);
    let x = g.add_input(&odd_name(r, "x"), TensorType::f32([1, c, r.range(3, 6), r.range(3, 6)]));
    let mut four_d = vec![x];
    let mut all = vec![x];
    for i in 0..r.range(1, 10) {
        // Ops that do not fit the randomly chosen operand are skipped.
        let _ = step(m, &mut g, r, &mut four_d, &mut all, i);
    }
    let mut outs = vec![*all.last().unwrap()];
    if r.chance(0.3) {
        outs.push(*r.pick(&all));
    }
    g.set_outputs(outs);
    g
}

fn step(
    m: &mut Module,
    g: &mut Graph,
    r: &mut Rng,
    four_d: &mut Vec<Value>,
    all: &mut Vec<Value>,
    i: usize,
) -> Result<(), String> {
    {
        let v = *r.pick(four_d);
        let ty = g.value_type(v).unwrap().clone();
        let (cin, h, w) = (ty.shape[1], ty.shape[2], ty.shape[3]);
        let nm = odd_name(r, &format!("n{i}"));
        let out = match r.below(14) {
            0 => {
                let groups = if r.chance(0.5) { cin } else { 1 };
                let cout = groups * r.range(1, 2);
                let k = r.range(1, 3).min(h).min(w);
                let wt = f32_weight(m, g, r, "conv.w", vec![cout, cin / groups, k, k]);
                let mut ops = vec![v, wt];
                if r.chance(0.5) {
                    ops.push(f32_weight(m, g, r, "conv.b", vec![cout]));
                }
                let p = r.below(2);
                g.add_op(&nm, Op::Conv2d(Conv2d { pads: [p, p, p, p], groups, ..Default::default() }), &ops)?
            }
            1 => {
                let ps: Vec<Value> = ["g", "b", "m", "v"].iter().map(|n| f32_weight(m, g, r, n, vec![cin])).collect();
                g.add_op(&nm, Op::BatchNorm(BatchNorm { epsilon: 1e-5 }), &[v, ps[0], ps[1], ps[2], ps[3]])?
            }
            2 => {
                g.add_op(&nm, Op::Clip(Clip { min: 0.0, max: if r.chance(0.5) { 6.0 } else { f32::INFINITY } }), &[v])?
            }
            3 => {
                let other = *r.pick(four_d);
                let op = r.pick(&[Op::Add, Op::Mul, Op::Sub, Op::Div]).clone();
                match g.add_op(&nm, op.clone(), &[v, other]) {
                    Ok(o) => o,
                    Err(_) => g.add_op(&nm, op, &[v, v])?,
                }
            }
            4 => g.add_op(
                &nm,
                Op::MaxPool(MaxPool {
                    window: Window2d { kernel: [2, 2], strides: [2, 2], pads: [0; 4], ceil_mode: r.chance(0.5) },
                }),
                &[v],
            )?,
            5 => g.add_op(
                &nm,
                Op::AvgPool(AvgPool {
                    window: Window2d { kernel: [2, 2], strides: [1, 1], pads: [1, 1, 0, 0], ceil_mode: false },
                    count_include_pad: r.chance(0.5),
                }),
                &[v],
            )?,
            6 => g.add_op(&nm, Op::Concat(Concat { axis: 1 }), &[v, v])?,
            7 => g.add_op(
                &nm,
                Op::Pad(Pad {
                    pads: vec![0, 0, 1, 1, 0, 0, 1, 1],
                    mode: *r.pick(&[PadMode::Constant, PadMode::Edge]),
                    value: special_f32(r),
                }),
                &[v],
            )?,
            8 => g.add_op(&nm, Op::HardSigmoid(HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5 }), &[v])?,
            9 => g.add_op(&nm, Op::ChannelSlice(ChannelSlice { axis: 1, start: 0, end: r.range(1, cin) }), &[v])?,
            10 => {
                // A quantized island: quantize -> i8 conv -> dequantize.
                let q = Quant {
                    scheme: QScheme::Affine { scales: vec![0.05], zero_points: vec![r.below(20) as i32 - 10] },
                    axis: None,
                };
                let qt = TensorType { shape: ty.shape.clone(), dtype: DType::I8, quant: Some(q.clone()) };
                let qv = Value::of(g.add_node(&format!("{nm}.q"), Op::Quantize, &[v], vec![qt]));
                let wq = Quant {
                    scheme: QScheme::Affine {
                        scales: (0..2).map(|_| 0.01 + r.f32().abs()).collect(),
                        zero_points: vec![0, 0],
                    },
                    axis: Some(0),
                };
                let wt =
                    Tensor::new([2, cin, 1, 1], TensorData::I8((0..2 * cin).map(|_| r.below(255) as i8).collect()))
                        .unwrap();
                let wname = m.add_weight("qconv.w", Weight::quantized(wt, wq));
                let wv = g.weight_value(&wname, m.weight(&wname).unwrap().ty());
                let out_t = TensorType { shape: vec![1, 2, h, w], dtype: DType::I8, quant: Some(q) };
                let cv =
                    Value::of(g.add_node(&format!("{nm}.conv"), Op::Conv2d(Conv2d::default()), &[qv, wv], vec![out_t]));
                Value::of(g.add_node(&nm, Op::Dequantize, &[cv], vec![TensorType::f32([1, 2, h, w])]))
            }
            11 => {
                let mut attrs = AttrMap::new();
                attrs.insert("alpha".into(), Attr::Float(special_f32(r)));
                attrs.insert("mode".into(), Attr::Str("fancy \"x\"".into()));
                attrs.insert("sizes".into(), Attr::Ints(vec![-1, 0, 7]));
                attrs.insert("gains".into(), Attr::Floats(vec![0.5, -2.0]));
                attrs.insert("on".into(), Attr::Bool(true));
                attrs.insert("odd key".into(), Attr::Int(-3));
                let n = g.add_node(
                    &nm,
                    Op::Custom(CustomOp { name: "acme.split".into(), attrs }),
                    &[v],
                    vec![ty.clone(), ty.clone()],
                );
                let second = Value { node: n, result: 1 };
                g.add_op(&format!("{nm}.relu"), Op::Relu, &[second])?
            }
            12 => {
                let f = g.add_op(&nm, Op::Flatten(Flatten { axis: 1 }), &[v])?;
                let k = g.value_type(f).unwrap().shape[1];
                let wt = f32_weight(m, g, r, "fc.w", vec![3, k]);
                let fc =
                    g.add_op(&format!("{nm}.fc"), Op::Gemm(Gemm { trans_b: true, ..Default::default() }), &[f, wt])?;
                all.push(g.add_op(&format!("{nm}.sm"), Op::Softmax(Softmax { axis: 1 }), &[fc])?);
                return Ok(());
            }
            _ => g.add_op(&nm, r.pick(&[Op::Relu, Op::Sigmoid, Op::HardSwish, Op::GlobalAvgPool]).clone(), &[v])?,
        };
        four_d.push(out);
        all.push(out);
    }
    Ok(())
}

fn random_module(seed: u64) -> Module {
    let mut r = Rng::new(seed);
    let mut m = Module::new(if r.chance(0.5) { "m".to_string() } else { odd_name(&mut r, "model") });
    if r.chance(0.5) {
        m.attrs.insert("source".into(), Attr::Str("x.onnx".into()));
        m.attrs.insert("opset".into(), Attr::Int(13));
        // Keys the parser cannot read bare (dotted, dashed) are printed quoted.
        m.attrs.insert("clio.plan".into(), Attr::Str("{\"chosen\": [1]}".into()));
        m.attrs.insert("max-iters".into(), Attr::Int(2));
    }
    for gi in 0..r.range(1, 2) {
        let g = random_graph(&mut m, &mut r, if gi == 0 { "main" } else { "cloud" });
        m.add_graph(g);
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn parse_print_round_trips(seed in any::<u64>()) {
        let m = random_module(seed);
        clio::verify::verify_module(&m).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let text = print_module(&m, &PrintOptions::inline());
        let back = parse_module(&text, &ParseOptions::default()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        clio::verify::verify_module(&back).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(print_module(&back, &PrintOptions::inline()), text);
        // Weight data survive bit for bit (NaN-free generator, -0.0 included).
        for (name, w) in m.weights() {
            let b = back.weight(name).unwrap();
            prop_assert_eq!(b.data().digest(), w.data().digest());
            prop_assert_eq!(&b.quant, &w.quant);
        }
    }
}

#[test]
fn generator_covers_the_interesting_cases() {
    // Guard against a generator that silently degenerates: across seeds we must see custom ops,
    // quantized types, quoted names, several graphs and weights.
    let texts: Vec<String> = (0..200).map(|s| print_module(&random_module(s), &PrintOptions::inline())).collect();
    let all = texts.join("\n");
    for needle in [
        "custom<\"acme.split\">",
        "affine<axis=0:",
        "%\"",
        "graph @cloud",
        "conv2d(",
        "batch_norm(",
        "#1)",
        "-0.0",
        "dense<[",
    ] {
        assert!(all.contains(needle), "no generated module contains {needle}");
    }
    let avg_lines = all.lines().count() / texts.len();
    assert!(avg_lines >= 8, "modules are too small on average ({avg_lines} lines)");
}
