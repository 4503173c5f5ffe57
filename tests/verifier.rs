//! The verifier rejects each kind of malformed IR with a message naming graph, node and op.

use clio::ir::{Builder, DType, Module, Op, Quant, Tensor, TensorData, TensorType, Value, Weight};
use clio::ops::Conv2d;
use clio::verify::verify_module;

fn base() -> Module {
    let mut m = Module::new("m");
    let mut b = Builder::new(&mut m, "main");
    let x = b.input("x", TensorType::f32([1, 2, 4, 4]));
    let w = b.weight("w", Tensor::from_f32([2, 2, 1, 1], vec![1.0, 0.0, 0.0, 1.0]).unwrap());
    let c = b.op("conv", Op::Conv2d(Conv2d::default()), &[x, w]).unwrap();
    let r = b.op("relu", Op::Relu, &[c]).unwrap();
    b.output(r);
    b.finish();
    verify_module(&m).unwrap();
    m
}

fn err(m: &Module) -> String {
    verify_module(m).expect_err("should not verify").to_string()
}

#[test]
fn cycles_are_found() {
    let mut m = base();
    let g = m.graph_mut("main").unwrap();
    let (conv, relu) = (g.find("conv").unwrap(), g.find("relu").unwrap());
    g.set_operand(conv, 0, Value::of(relu));
    assert_eq!(err(&m), "verifier: graph @main, node %conv (conv2d): the graph has a cycle through this node");
}

#[test]
fn arity_and_operand_slots() {
    let mut m = base();
    let g = m.graph_mut("main").unwrap();
    let (x, relu) = (Value::of(g.inputs()[0]), g.find("relu").unwrap());
    g.set_operand(relu, 1, x);
    assert_eq!(err(&m), "verifier: graph @main, node %relu (relu): takes 1 operands, has 2");
    let mut m = base();
    let g = m.graph_mut("main").unwrap();
    let (x, relu) = (Value::of(g.inputs()[0]), g.find("relu").unwrap());
    g.set_operands(relu, &[]);
    g.set_operand(relu, 3, x);
    assert!(err(&m).contains("node %relu (relu): operand slots [3] are not 0..1"), "{}", err(&m));
}

#[test]
fn shapes_and_dtypes_agree_with_rules() {
    let mut m = base();
    let g = m.graph_mut("main").unwrap();
    let conv = g.find("conv").unwrap();
    g.node_mut(conv).results[0].dtype = DType::I32;
    assert!(err(&m).contains("node %conv (conv2d): result 0 is declared tensor<1x2x4x4xi32> but the op produces shape [1, 2, 4, 4] of f32"), "{}", err(&m));
}

#[test]
fn weights_exist_and_match_their_nodes() {
    let mut m = base();
    m.set_weight("w", Weight::new(Tensor::from_f32([2, 2, 3, 3], vec![0.0; 36]).unwrap()));
    assert!(
        err(&m).contains("node %@w (weight): type tensor<2x2x1x1xf32> differs from weight @w's tensor<2x2x3x3xf32>"),
        "{}",
        err(&m)
    );
    let mut m = base();
    m.remove_weight("w");
    assert!(err(&m).contains("reads undeclared weight @w"), "{}", err(&m));
}

#[test]
fn quantization_present_exactly_on_quantized_types() {
    let mut m = base();
    let g = m.graph_mut("main").unwrap();
    let relu = g.find("relu").unwrap();
    g.node_mut(relu).results[0].quant = Some(Quant::affine(0.1, 0));
    assert!(err(&m).contains("is f32 but carries quantization parameters"), "{}", err(&m));

    let mut m = base();
    let t = Tensor::new([2], TensorData::I8(vec![1, 2])).unwrap();
    m.set_weight("q", Weight::new(t.clone()));
    assert!(
        err(&m).contains("weight @q: tensor<2xi8> is an integer activation type without quantization parameters"),
        "{}",
        err(&m)
    );
    m.set_weight("q", Weight::quantized(t.clone(), Quant { axis: Some(0), ..Quant::affine(0.5, 0) }));
    assert!(err(&m).contains("quantization has 1 entries, expected 2 (one per index of axis 0)"), "{}", err(&m));
    m.set_weight("q", Weight::quantized(t.clone(), Quant::affine(-0.5, 0)));
    assert!(err(&m).contains("scale -0.5 is not a positive finite number"), "{}", err(&m));
    m.set_weight("q", Weight::quantized(t, Quant::affine(0.5, 200)));
    assert!(err(&m).contains("zero point 200 outside the element range [-128, 127]"), "{}", err(&m));
}

#[test]
fn inputs_outputs_and_transmit() {
    let mut m = base();
    m.graph_mut("main").unwrap().set_outputs(vec![]);
    assert_eq!(err(&m), "verifier: graph @main: the graph has no outputs");
    let mut m = base();
    let g = m.graph_mut("main").unwrap();
    let relu = g.find("relu").unwrap();
    g.remove_node(relu);
    assert!(err(&m).contains("output 0 refers to a removed node"), "{}", err(&m));
    let mut m = base();
    let g = m.graph_mut("main").unwrap();
    let relu = g.find("relu").unwrap();
    let t = g.add_node(
        "tx",
        Op::Transmit(clio::ops::Transmit { to: "cloud".into() }),
        &[Value::of(relu)],
        vec![TensorType::f32([1, 2, 4, 4])],
    );
    g.set_outputs(vec![Value::of(t)]);
    assert!(
        err(&m).contains("node %tx (transmit): transmits to @cloud, which is not another graph of the module"),
        "{}",
        err(&m)
    );
    let mut m = base();
    let g = m.graph_mut("main").unwrap();
    let extra = g.add_node("stray", Op::Input, &[], vec![TensorType::f32([1])]);
    let _ = extra;
    assert!(err(&m).contains("node %stray (input): input node missing from the graph's input list"), "{}", err(&m));
    assert_eq!(
        verify_module(&Module::new("empty")).unwrap_err().to_string(),
        "verifier: module: module @empty has no graph"
    );
}

/// `Graph::operand_list` (no allocation up to six operands) gives what `Graph::operands` gives,
/// in slot order, whatever order the edges were added or rewired in, inline or not.
#[test]
fn operand_list_matches_operands() {
    let mut m = base();
    let g = m.graph_mut("main").unwrap();
    let (x, conv, relu) = (Value::of(g.inputs()[0]), g.find("conv").unwrap(), g.find("relu").unwrap());
    for n in [conv, relu] {
        assert_eq!(&*g.operand_list(n), g.operands(n).as_slice());
    }
    // Slots set out of order, with a gap (a corrupt graph), then more than fit inline.
    g.set_operands(relu, &[]);
    for slot in [3, 0, 2] {
        g.set_operand(relu, slot, Value::of(conv));
    }
    g.set_operand(relu, 2, x);
    assert_eq!(&*g.operand_list(relu), g.operands(relu).as_slice());
    assert_eq!(g.operand_list(relu).len(), 3);
    for slot in (0..9).rev() {
        g.set_operand(relu, slot, if slot % 2 == 0 { x } else { Value::of(conv) });
    }
    let list = g.operand_list(relu);
    assert_eq!(list.len(), 9);
    assert_eq!(&*list, g.operands(relu).as_slice());
}

#[test]
fn non_finite_weights_are_found_after_every_kind_of_write() {
    // base() verified the module once: the weight's "finite" answer is cached. Each way of
    // writing the data must drop it, or the verifier would miss the NaN.
    let mut m = base();
    m.weights_mut().get_mut("w").unwrap().data_mut().as_f32_mut().unwrap()[2] = f32::NAN;
    assert_eq!(err(&m), "verifier: module: weight @w: element 2 is NaN (weights must be finite)");

    let mut m = base();
    let w = m.weights_mut().get_mut("w").unwrap();
    w.set_data(Tensor::from_f32([2, 2, 1, 1], vec![1.0, f32::INFINITY, 0.0, 1.0]).unwrap());
    assert_eq!(err(&m), "verifier: module: weight @w: element 1 is inf (weights must be finite)");

    // A clone shares the data and the answer; writing the clone leaves the original valid.
    let m = base();
    let mut copy = m.clone();
    copy.weights_mut().get_mut("w").unwrap().data_mut().as_f32_mut().unwrap()[0] = f32::NEG_INFINITY;
    verify_module(&m).unwrap();
    assert!(err(&copy).contains("element 0 is -inf"), "{}", err(&copy));
    assert!(m.weight("w").unwrap().is_finite() && !copy.weight("w").unwrap().is_finite());
}
