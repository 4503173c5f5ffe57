//! One IR graph as a standard ONNX model (opset 14): what the cloud runs with any ONNX runtime,
//! and the route to NNEF through tract ([`super::nnef`]).
//!
//! Every builtin float op maps to the ONNX op it was imported from (conv2d -> Conv, batch_norm
//! -> BatchNormalization, gemm -> Gemm, ...); attributes that ONNX takes as inputs since opset 13
//! (Clip bounds, Pad pads, Reshape / Squeeze / Unsqueeze / Slice arguments) become int64 or f32
//! initializers. `dequantize` becomes `Cast -> Sub(zero point) -> Mul(scale)`: the same single
//! f32 rounding as clio's interpreter, and plain ops every runtime (and tract's NNEF writer)
//! supports. `scale_shift` becomes `Mul` and `Add` with `[C, 1, ...]` constants.
//!
//! Not exported (typed [`ExportError::Unsupported`] naming the node): `quantize` and integer
//! arithmetic (the cloud part is float), `transmit` (a device op), custom ops.
//!
//! `max_pool` with `ceil_mode` is written as explicit end padding (the same windows; tract's NNEF
//! writer drops `ceil_mode`). `avg_pool` keeps ONNX's `ceil_mode` attribute: exact in ONNX, not
//! covered by the NNEF round trip.
//!
//! Value names are the IR's node names (`name:i` for result `i > 0`); initializers keep weight
//! names, so the exported file is easy to relate to the IR.

use clio::ir::{DType, Graph, Module, NodeId, Op, QScheme, TensorType, Value};
use clio::ops::PadMode;
use prost::Message;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::type_proto;
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// The ONNX opset the exporter writes.
pub const OPSET: i64 = 14;

/// Why a graph cannot be exported.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The module has no such graph.
    #[error("export: no graph @{0}")]
    NoGraph(String),
    /// An op (or an operand type) has no ONNX equivalent here.
    #[error("export @{graph}: node %{node} ({op}): {reason}")]
    Unsupported {
        /// Graph name.
        graph: String,
        /// Node name.
        node: String,
        /// Op name.
        op: String,
        /// Why.
        reason: String,
    },
    /// The graph is malformed (a cycle, a missing operand or weight).
    #[error("export @{graph}: {message}")]
    Malformed {
        /// Graph name.
        graph: String,
        /// What is wrong.
        message: String,
    },
    /// tract could not load or convert the exported model.
    #[error("export @{graph}: tract: {message}")]
    Tract {
        /// Graph name.
        graph: String,
        /// tract's message.
        message: String,
    },
}

fn onnx_dtype(d: DType) -> i32 {
    match d {
        DType::F32 => DataType::Float as i32,
        DType::I8 => DataType::Int8 as i32,
        DType::I16 => DataType::Int16 as i32,
        DType::I32 => DataType::Int32 as i32,
    }
}

fn value_info(name: &str, ty: &TensorType) -> ValueInfoProto {
    let dim =
        ty.shape.iter().map(|d| Dimension { value: Some(dimension::Value::DimValue(*d as i64)), ..Default::default() });
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: onnx_dtype(ty.dtype),
                shape: Some(TensorShapeProto { dim: dim.collect() }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.iter().map(|x| *x as i64).collect(),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: v, ..Default::default() }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Float as i32, f: v, ..Default::default() }
}

fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// The graph being written: nodes, initializers and fresh names for helper values.
struct Writer<'a> {
    graph: &'a Graph,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    fresh: usize,
}

impl Writer<'_> {
    fn name(&self, v: Value) -> String {
        let n = self.graph.node(v.node).name();
        if v.result == 0 {
            n.to_string()
        } else {
            format!("{n}:{}", v.result)
        }
    }

    fn helper(&mut self, base: &str, what: &str) -> String {
        self.fresh += 1;
        format!("{base}/{what}.{}", self.fresh)
    }

    fn const_i64(&mut self, base: &str, what: &str, v: &[i64]) -> String {
        let name = self.helper(base, what);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: vec![v.len() as i64],
            data_type: DataType::Int64 as i32,
            int64_data: v.to_vec(),
            ..Default::default()
        });
        name
    }

    fn const_f32(&mut self, base: &str, what: &str, dims: &[usize], v: &[f32]) -> String {
        let name = self.helper(base, what);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|d| *d as i64).collect(),
            data_type: DataType::Float as i32,
            float_data: v.to_vec(),
            ..Default::default()
        });
        name
    }

    fn node(&mut self, op: &str, name: String, inputs: Vec<String>, output: String, attribute: Vec<AttributeProto>) {
        self.nodes.push(NodeProto {
            op_type: op.into(),
            name,
            input: inputs,
            output: vec![output],
            attribute,
            ..Default::default()
        });
    }
}

/// Exports graph `@graph` of `m` as a serialized ONNX `ModelProto`.
pub fn export_onnx(m: &Module, graph: &str) -> Result<Vec<u8>, ExportError> {
    Ok(onnx_model(m, graph)?.encode_to_vec())
}

/// Builds the ONNX model of graph `@graph`.
pub fn onnx_model(m: &Module, graph: &str) -> Result<ModelProto, ExportError> {
    let g = m.graph(graph).ok_or_else(|| ExportError::NoGraph(graph.to_string()))?;
    let malformed = |message: String| ExportError::Malformed { graph: graph.to_string(), message };
    let order = g.topo_order().map_err(|c| malformed(format!("cycle at %{}", g.node(c.0).name())))?;
    let mut w = Writer { graph: g, nodes: vec![], initializers: vec![], fresh: 0 };
    for id in order {
        lower_node(m, &mut w, graph, id)?;
    }
    let inputs = g.inputs().iter().map(|id| value_info(g.node(*id).name(), g.node(*id).ty())).collect();
    let mut outputs = vec![];
    for v in g.outputs() {
        let ty = g.value_type(*v).ok_or_else(|| malformed("an output has no type".into()))?;
        outputs.push(value_info(&w.name(*v), ty));
    }
    Ok(ModelProto {
        ir_version: 7,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
        producer_name: "clio".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(GraphProto {
            name: graph.to_string(),
            node: w.nodes,
            initializer: w.initializers,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn lower_node(m: &Module, w: &mut Writer, graph: &str, id: NodeId) -> Result<(), ExportError> {
    let g = w.graph;
    let node = g.node(id);
    let name = node.name().to_string();
    let unsupported = |reason: &str| ExportError::Unsupported {
        graph: graph.to_string(),
        node: name.clone(),
        op: node.op.name().to_string(),
        reason: reason.to_string(),
    };
    let mut args = vec![];
    for v in g.operands(id) {
        args.push(w.name(v));
    }
    let arg_type = |i: usize| g.operand(id, i).and_then(|v| g.value_type(v));
    // Float arithmetic only: integer tensors reach nothing but `dequantize`.
    let float_only = !matches!(node.op, Op::Input | Op::Weight { .. } | Op::Dequantize);
    if float_only
        && (node.ty().dtype != DType::F32
            || (0..args.len()).any(|i| arg_type(i).is_some_and(|t| t.dtype != DType::F32)))
    {
        return Err(unsupported("integer arithmetic is not exported (the cloud part computes in float)"));
    }
    let out = name.clone();
    let simple = |w: &mut Writer, op: &str, attrs: Vec<AttributeProto>| {
        w.node(op, name.clone(), args.clone(), out.clone(), attrs)
    };
    match &node.op {
        Op::Input => {}
        Op::Weight { name: weight } => {
            let wt = m.weight(weight).ok_or_else(|| ExportError::Malformed {
                graph: graph.to_string(),
                message: format!("node %{name} reads missing weight @{weight}"),
            })?;
            let t = wt.data();
            w.initializers.push(TensorProto {
                name: out,
                dims: t.shape().iter().map(|d| *d as i64).collect(),
                data_type: onnx_dtype(t.dtype()),
                raw_data: t.data().to_le_bytes(),
                ..Default::default()
            });
        }
        Op::Conv2d(c) => {
            let kernel = arg_type(1).map(|t| t.shape[2..].to_vec()).unwrap_or_default();
            simple(
                w,
                "Conv",
                vec![
                    ints("kernel_shape", &kernel),
                    ints("strides", &c.strides),
                    ints("pads", &c.pads),
                    ints("dilations", &c.dilations),
                    int("group", c.groups as i64),
                ],
            );
        }
        Op::BatchNorm(b) => simple(w, "BatchNormalization", vec![float("epsilon", b.epsilon)]),
        Op::ScaleShift => {
            let rank = node.ty().shape.len();
            let shape: Vec<i64> = std::iter::once(-1).chain(std::iter::repeat_n(1, rank.saturating_sub(2))).collect();
            let shape = w.const_i64(&name, "per_channel_shape", &shape);
            let scale = w.helper(&name, "scale");
            let shift = w.helper(&name, "shift");
            let scaled = w.helper(&name, "scaled");
            w.node("Reshape", scale.clone(), vec![args[1].clone(), shape.clone()], scale.clone(), vec![]);
            w.node("Reshape", shift.clone(), vec![args[2].clone(), shape], shift.clone(), vec![]);
            w.node("Mul", scaled.clone(), vec![args[0].clone(), scale], scaled.clone(), vec![]);
            w.node("Add", name.clone(), vec![scaled, shift], out, vec![]);
        }
        Op::Relu => simple(w, "Relu", vec![]),
        Op::Sigmoid => simple(w, "Sigmoid", vec![]),
        Op::HardSwish => simple(w, "HardSwish", vec![]),
        Op::PRelu => simple(w, "PRelu", vec![]),
        Op::HardSigmoid(h) => simple(w, "HardSigmoid", vec![float("alpha", h.alpha), float("beta", h.beta)]),
        Op::Clip(c) => {
            let lo = w.const_f32(&name, "min", &[], &[c.min]);
            let hi = w.const_f32(&name, "max", &[], &[c.max]);
            w.node("Clip", name.clone(), vec![args[0].clone(), lo, hi], out, vec![]);
        }
        Op::Softmax(s) => simple(w, "Softmax", vec![int("axis", s.axis as i64)]),
        Op::Add => simple(w, "Add", vec![]),
        Op::Sub => simple(w, "Sub", vec![]),
        Op::Mul => simple(w, "Mul", vec![]),
        Op::Div => simple(w, "Div", vec![]),
        Op::Concat(c) => simple(w, "Concat", vec![int("axis", c.axis as i64)]),
        Op::MaxPool(p) => {
            // Ceil mode as explicit end padding (ignored by a max): the same windows, and
            // tract's NNEF writer loses ceil_mode.
            let input = arg_type(0).map(|t| t.shape.clone()).unwrap_or_default();
            let output = &node.ty().shape;
            let mut pads = p.window.pads;
            if p.window.ceil_mode && input.len() == 4 && output.len() == 4 {
                for axis in 0..2 {
                    let covered = (output[2 + axis] - 1) * p.window.strides[axis] + p.window.kernel[axis];
                    let have = input[2 + axis] + pads[axis] + pads[2 + axis];
                    pads[2 + axis] += covered.saturating_sub(have);
                }
            }
            simple(
                w,
                "MaxPool",
                vec![ints("kernel_shape", &p.window.kernel), ints("strides", &p.window.strides), ints("pads", &pads)],
            )
        }
        Op::AvgPool(p) => simple(
            w,
            "AveragePool",
            vec![
                ints("kernel_shape", &p.window.kernel),
                ints("strides", &p.window.strides),
                ints("pads", &p.window.pads),
                int("ceil_mode", p.window.ceil_mode as i64),
                int("count_include_pad", p.count_include_pad as i64),
            ],
        ),
        Op::GlobalAvgPool => simple(w, "GlobalAveragePool", vec![]),
        Op::Gemm(gm) => simple(
            w,
            "Gemm",
            vec![
                float("alpha", gm.alpha),
                float("beta", gm.beta),
                int("transA", gm.trans_a as i64),
                int("transB", gm.trans_b as i64),
            ],
        ),
        Op::MatMul => simple(w, "MatMul", vec![]),
        Op::Flatten(f) => simple(w, "Flatten", vec![int("axis", f.axis as i64)]),
        Op::Reshape(r) => {
            let shape: Vec<i64> = r.shape.iter().map(|d| *d as i64).collect();
            let shape = w.const_i64(&name, "shape", &shape);
            w.node("Reshape", name.clone(), vec![args[0].clone(), shape], out, vec![]);
        }
        Op::Squeeze(s) => {
            let axes: Vec<i64> = s.axes.iter().map(|a| *a as i64).collect();
            let axes = w.const_i64(&name, "axes", &axes);
            w.node("Squeeze", name.clone(), vec![args[0].clone(), axes], out, vec![]);
        }
        Op::Unsqueeze(s) => {
            let axes: Vec<i64> = s.axes.iter().map(|a| *a as i64).collect();
            let axes = w.const_i64(&name, "axes", &axes);
            w.node("Unsqueeze", name.clone(), vec![args[0].clone(), axes], out, vec![]);
        }
        Op::Transpose(t) => simple(w, "Transpose", vec![ints("perm", &t.perm)]),
        Op::Pad(p) => {
            let pads: Vec<i64> = p.pads.iter().map(|d| *d as i64).collect();
            let mut inputs = vec![args[0].clone(), w.const_i64(&name, "pads", &pads)];
            let mode = match p.mode {
                PadMode::Constant => {
                    inputs.push(w.const_f32(&name, "value", &[], &[p.value]));
                    "constant"
                }
                // No fill value: tract reads a present one as constant padding whatever the mode.
                PadMode::Reflect => "reflect",
                PadMode::Edge => "edge",
            };
            w.node("Pad", name.clone(), inputs, out, vec![string("mode", mode)]);
        }
        Op::ChannelSlice(s) => {
            let starts = w.const_i64(&name, "starts", &[s.start as i64]);
            let ends = w.const_i64(&name, "ends", &[s.end as i64]);
            let axes = w.const_i64(&name, "axes", &[s.axis as i64]);
            w.node("Slice", name.clone(), vec![args[0].clone(), starts, ends, axes], out, vec![]);
        }
        Op::Dequantize => {
            let ty = arg_type(0).ok_or_else(|| unsupported("operand has no type"))?;
            let quant = ty.quant.as_ref().ok_or_else(|| unsupported("operand is not quantized"))?;
            let rank = ty.shape.len();
            // Per-channel parameters broadcast along their axis.
            let dims = |n: usize| -> Vec<usize> {
                match quant.axis {
                    Some(a) => (0..rank).map(|i| if i == a { n } else { 1 }).collect(),
                    None => vec![],
                }
            };
            let (scales, zero_points): (Vec<f32>, Vec<f32>) = match &quant.scheme {
                QScheme::Affine { scales, zero_points } => {
                    (scales.clone(), zero_points.iter().map(|z| *z as f32).collect())
                }
                QScheme::Pow2 { frac_bits } => {
                    (frac_bits.iter().map(|f| 2f64.powi(-f) as f32).collect(), vec![0.0; frac_bits.len()])
                }
            };
            let as_float = w.helper(&name, "as_float");
            w.node(
                "Cast",
                as_float.clone(),
                vec![args[0].clone()],
                as_float.clone(),
                vec![int("to", DataType::Float as i64)],
            );
            let zp = w.const_f32(&name, "zero_point", &dims(zero_points.len()), &zero_points);
            let centred = w.helper(&name, "centred");
            w.node("Sub", centred.clone(), vec![as_float, zp], centred.clone(), vec![]);
            let scale = w.const_f32(&name, "scale", &dims(scales.len()), &scales);
            w.node("Mul", name.clone(), vec![centred, scale], out, vec![]);
        }
        Op::Quantize => return Err(unsupported("quantize is a device op; the cloud part computes in float")),
        Op::Transmit(_) => return Err(unsupported("transmit belongs to the device graph")),
        _ => return Err(unsupported("no ONNX mapping for this op")),
    }
    Ok(())
}
