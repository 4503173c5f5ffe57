//! Single ops against tract running the equivalent ONNX node (built in memory as a
//! `ModelProto`), on random inputs: the same oracle the model-level tests use, applied to the
//! semantic corners (asymmetric pads, ceil-mode pooling, count_include_pad, groups, dilation,
//! broadcasting, reflect padding ...).

use super::*;
use crate::ops::*;
use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::prelude::{Framework, InferenceModelExt, IntoRunnable, IntoTValue, Tensor as TTensor};

const OPSET: i64 = 14;

fn attr(name: &str) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), ..Default::default() }
}
fn ai(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto { r#type: AttributeType::Int as i32, i: v, ..attr(name) }
}
fn af(name: &str, v: f32) -> pb::AttributeProto {
    pb::AttributeProto { r#type: AttributeType::Float as i32, f: v, ..attr(name) }
}
fn ints(name: &str, v: &[usize]) -> pb::AttributeProto {
    pb::AttributeProto { r#type: AttributeType::Ints as i32, ints: v.iter().map(|x| *x as i64).collect(), ..attr(name) }
}
fn astr(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto { r#type: AttributeType::String as i32, s: v.as_bytes().to_vec(), ..attr(name) }
}

fn value_info(name: &str, shape: &[usize]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value as D, Dimension};
    let dim = shape.iter().map(|d| Dimension { value: Some(D::DimValue(*d as i64)), ..Default::default() }).collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An ONNX constant input (initializer).
enum Init {
    F32(Vec<usize>, Vec<f32>),
    I64(Vec<usize>, Vec<i64>),
}

/// Runs one ONNX node in tract: `inputs` are runtime f32 inputs, `inits` initializers; the
/// node reads them in the order of `order` (names).
fn tract_node(
    op_type: &str,
    attrs: Vec<pb::AttributeProto>,
    inputs: &[(&str, &Tensor)],
    inits: &[(&str, Init)],
    order: &[&str],
) -> (Vec<usize>, Vec<f64>) {
    let node = pb::NodeProto {
        input: order.iter().map(|s| s.to_string()).collect(),
        output: vec!["y".into()],
        name: "n".into(),
        op_type: op_type.into(),
        attribute: attrs,
        ..Default::default()
    };
    let initializer = inits
        .iter()
        .map(|(name, i)| match i {
            Init::F32(s, v) => pb::TensorProto {
                dims: s.iter().map(|d| *d as i64).collect(),
                data_type: 1,
                float_data: v.clone(),
                name: name.to_string(),
                ..Default::default()
            },
            Init::I64(s, v) => pb::TensorProto {
                dims: s.iter().map(|d| *d as i64).collect(),
                data_type: 7,
                int64_data: v.clone(),
                name: name.to_string(),
                ..Default::default()
            },
        })
        .collect();
    let graph = pb::GraphProto {
        node: vec![node],
        name: "g".into(),
        initializer,
        input: inputs.iter().map(|(n, t)| value_info(n, t.shape())).collect(),
        output: vec![pb::ValueInfoProto { name: "y".into(), ..Default::default() }],
        ..Default::default()
    };
    let proto = pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
        graph: Some(graph),
        ..Default::default()
    };
    let model = tract_onnx::onnx()
        .model_for_proto_model(&proto)
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .unwrap_or_else(|e| panic!("tract rejects {op_type}: {e:?}"));
    let ins = inputs
        .iter()
        .map(|(_, t)| TTensor::from_shape(t.shape(), t.as_f32().unwrap()).unwrap().into_tvalue())
        .collect();
    let out = model.run(ins).unwrap_or_else(|e| panic!("tract fails on {op_type}: {e:?}"));
    let y = out[0].to_plain_array_view::<f32>().unwrap();
    (y.shape().to_vec(), y.iter().map(|v| *v as f64).collect())
}

/// Compares our op on `ins` with tract's node `op_type` on the same runtime inputs.
#[track_caller]
fn check(
    op: Op,
    ins: &[Tensor],
    op_type: &str,
    attrs: Vec<pb::AttributeProto>,
    inits: &[(&str, Init)],
    order: &[&str],
) {
    let names: Vec<String> = (0..ins.len()).map(|i| format!("x{i}")).collect();
    let named: Vec<(&str, &Tensor)> = names.iter().map(|s| s.as_str()).zip(ins).collect();
    let (shape, want) = tract_node(op_type, attrs, &named, inits, order);
    let got = run1(op, ins);
    assert_close(&got, &shape, &want, 1e-5);
}

#[test]
fn conv_matches_tract() {
    let mut rng = Rng::new(200);
    for _ in 0..40 {
        let groups = [1, 2, 3][rng.range(0, 2)];
        let cg = rng.range(1, 3);
        let dw = rng.bool();
        let (groups, cg) = if dw { (rng.range(2, 4), 1) } else { (groups, cg) };
        let og = rng.range(1, 2);
        let k = [rng.range(1, 3), rng.range(1, 3)];
        let p = Conv2d {
            strides: [rng.range(1, 2), rng.range(1, 3)],
            pads: [rng.range(0, 2), rng.range(0, 1), rng.range(0, 1), rng.range(0, 2)],
            dilations: [rng.range(1, 2), rng.range(1, 2)],
            groups,
        };
        let (h, w) = (rng.range(5, 9), rng.range(5, 9));
        let x = rng.tensor(&[1, cg * groups, h, w]);
        let w = rng.tensor(&[og * groups, cg, k[0], k[1]]);
        let b = rng.tensor(&[og * groups]);
        let attrs = vec![
            ints("strides", &p.strides),
            ints("pads", &p.pads),
            ints("dilations", &p.dilations),
            ai("group", groups as i64),
            ints("kernel_shape", &k),
        ];
        check(Op::Conv2d(p), &[x, w, b], "Conv", attrs, &[], &["x0", "x1", "x2"]);
    }
}

#[test]
fn pools_match_tract() {
    let mut rng = Rng::new(201);
    let mut n = 0;
    while n < 60 {
        let k = [rng.range(1, 3), rng.range(2, 3)];
        let pads = [rng.range(0, k[0] - 1), rng.range(0, k[1] - 1), rng.range(0, k[0] - 1), rng.range(0, k[1] - 1)];
        let s = [rng.range(1, 3), rng.range(1, 3)];
        let ceil = rng.bool();
        let win = Window2d { kernel: k, strides: s, pads, ceil_mode: ceil };
        let (h, w) = (rng.range(3, 8), rng.range(3, 8));
        let x = rng.tensor(&[1, 2, h, w]);
        n += 1;
        let base =
            || vec![ints("kernel_shape", &k), ints("strides", &s), ints("pads", &pads), ai("ceil_mode", ceil as i64)];
        check(Op::MaxPool(MaxPool { window: win.clone() }), std::slice::from_ref(&x), "MaxPool", base(), &[], &["x0"]);
        for include in [false, true] {
            let mut attrs = base();
            attrs.push(ai("count_include_pad", include as i64));
            let op = Op::AvgPool(AvgPool { window: win.clone(), count_include_pad: include });
            check(op, std::slice::from_ref(&x), "AveragePool", attrs, &[], &["x0"]);
        }
    }
    let x = rng.tensor(&[2, 3, 5, 4]);
    check(Op::GlobalAvgPool, &[x], "GlobalAveragePool", vec![], &[], &["x0"]);
}

#[test]
fn activations_and_norms_match_tract() {
    let mut rng = Rng::new(202);
    let mut x = rng.tensor(&[2, 3, 4, 5]);
    x.as_f32_mut().unwrap().iter_mut().for_each(|v| *v *= 6.0);
    let one = std::slice::from_ref(&x);
    check(Op::Relu, one, "Relu", vec![], &[], &["x0"]);
    check(Op::Sigmoid, one, "Sigmoid", vec![], &[], &["x0"]);
    check(Op::HardSwish, one, "HardSwish", vec![], &[], &["x0"]);
    check(
        Op::HardSigmoid(HardSigmoid { alpha: 0.3, beta: 0.4 }),
        one,
        "HardSigmoid",
        vec![af("alpha", 0.3), af("beta", 0.4)],
        &[],
        &["x0"],
    );
    let clip_inits = [("lo", Init::F32(vec![], vec![-1.5])), ("hi", Init::F32(vec![], vec![2.5]))];
    check(Op::Clip(Clip { min: -1.5, max: 2.5 }), one, "Clip", vec![], &clip_inits, &["x0", "lo", "hi"]);
    for axis in 0..4 {
        check(Op::Softmax(Softmax { axis }), one, "Softmax", vec![ai("axis", axis as i64)], &[], &["x0"]);
    }
    let slope = rng.tensor(&[3, 1, 1]);
    check(Op::PRelu, &[x.clone(), slope], "PRelu", vec![], &[], &["x0", "x1"]);
    let c = 3;
    let (g, b, m) = (rng.tensor(&[c]), rng.tensor(&[c]), rng.tensor(&[c]));
    let mut v = rng.tensor(&[c]);
    v.as_f32_mut().unwrap().iter_mut().for_each(|x| *x = x.abs() + 0.05);
    // tract wants constant batch-norm parameters: initializers there, module weights here.
    let init = |t: &Tensor| Init::F32(t.shape().to_vec(), t.as_f32().unwrap().to_vec());
    let inits = [("g", init(&g)), ("b", init(&b)), ("m", init(&m)), ("v", init(&v))];
    let (shape, want) =
        tract_node("BatchNormalization", vec![af("epsilon", 1e-3)], &[("x0", &x)], &inits, &["x0", "g", "b", "m", "v"]);
    let got = run_op_weights(Op::BatchNorm(BatchNorm { epsilon: 1e-3 }), &x, &[g, b, m, v]).unwrap();
    assert_close(&got[0], &shape, &want, 1e-5);
}

#[test]
fn arithmetic_and_linear_match_tract() {
    let mut rng = Rng::new(203);
    let a = rng.tensor(&[2, 1, 4, 1]);
    let b = rng.tensor(&[3, 1, 5]);
    for (op, ty) in [(Op::Add, "Add"), (Op::Sub, "Sub"), (Op::Mul, "Mul"), (Op::Div, "Div")] {
        check(op, &[a.clone(), b.clone()], ty, vec![], &[], &["x0", "x1"]);
    }
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let (m, k, n) = (3, 5, 4);
        let a = rng.tensor(&if ta { [k, m] } else { [m, k] });
        let b = rng.tensor(&if tb { [n, k] } else { [k, n] });
        let c = rng.tensor(&[n]);
        let p = Gemm { alpha: 0.7, beta: -1.3, trans_a: ta, trans_b: tb };
        let attrs = vec![af("alpha", 0.7), af("beta", -1.3), ai("transA", ta as i64), ai("transB", tb as i64)];
        check(Op::Gemm(p), &[a, b, c], "Gemm", attrs, &[], &["x0", "x1", "x2"]);
    }
    let a = rng.tensor(&[2, 1, 3, 4]);
    let b = rng.tensor(&[5, 4, 2]);
    check(Op::MatMul, &[a, b], "MatMul", vec![], &[], &["x0", "x1"]);
}

#[test]
fn layout_matches_tract() {
    let mut rng = Rng::new(204);
    let x = rng.tensor(&[2, 3, 4, 5]);
    let one = std::slice::from_ref(&x);
    check(Op::Flatten(Flatten { axis: 2 }), one, "Flatten", vec![ai("axis", 2)], &[], &["x0"]);
    check(
        Op::Transpose(Transpose { perm: vec![2, 0, 3, 1] }),
        one,
        "Transpose",
        vec![ints("perm", &[2, 0, 3, 1])],
        &[],
        &["x0"],
    );
    check(
        Op::Reshape(Reshape { shape: vec![6, 20] }),
        one,
        "Reshape",
        vec![],
        &[("s", Init::I64(vec![2], vec![6, 20]))],
        &["x0", "s"],
    );
    let y = rng.tensor(&[2, 1, 4, 5]);
    check(Op::Concat(Concat { axis: 1 }), &[x.clone(), y], "Concat", vec![ai("axis", 1)], &[], &["x0", "x1"]);
    for (mode, m) in [(PadMode::Constant, "constant"), (PadMode::Reflect, "reflect"), (PadMode::Edge, "edge")] {
        let pads = vec![0, 1, 2, 3, 1, 0, 1, 2];
        let op = Op::Pad(Pad { pads: pads.clone(), mode, value: 0.5 });
        let inits =
            [("p", Init::I64(vec![8], pads.iter().map(|v| *v as i64).collect())), ("v", Init::F32(vec![], vec![0.5]))];
        // tract 0.23 pads with `constant_value` whenever that input is present, whatever the
        // mode (ONNX ignores it outside constant mode): pass it in constant mode only.
        let order: &[&str] = if mode == PadMode::Constant { &["x0", "p", "v"] } else { &["x0", "p"] };
        check(op, one, "Pad", vec![astr("mode", m)], &inits, order);
    }
    let z = rng.tensor(&[2, 1, 4]);
    check(
        Op::Squeeze(Squeeze { axes: vec![1] }),
        std::slice::from_ref(&z),
        "Squeeze",
        vec![],
        &[("a", Init::I64(vec![1], vec![1]))],
        &["x0", "a"],
    );
    check(
        Op::Unsqueeze(Unsqueeze { axes: vec![0, 3] }),
        &[z],
        "Unsqueeze",
        vec![],
        &[("a", Init::I64(vec![2], vec![0, 3]))],
        &["x0", "a"],
    );
}
