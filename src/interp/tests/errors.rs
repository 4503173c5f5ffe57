use super::*;
use crate::interp::InterpErrorKind;
use crate::ir::{AttrMap, Graph, TensorData, Weight};
use crate::ops::{Conv2d, CustomOp};
use crate::Limits;

fn relu_module(shape: &[usize]) -> Module {
    let mut m = Module::new("m");
    let mut b = Builder::new(&mut m, "main");
    let x = b.input("x", TensorType::f32(shape.to_vec()));
    let y = b.op("act", Op::Relu, &[x]).unwrap();
    b.output(y);
    b.finish();
    m
}

#[test]
fn wrong_input_count() {
    let m = relu_module(&[1, 2]);
    let e = crate::interp::run(&m, "main", &[]).unwrap_err();
    assert_eq!(e.kind, InterpErrorKind::InputCount { expected: 1, got: 0 });
    assert_eq!(e.to_string(), "interp: graph @main: the graph takes 1 inputs, got 0");
    let x = t(&[1, 2], &[1., 2.]);
    let e = crate::interp::run(&m, "main", &[x.clone(), x]).unwrap_err();
    assert_eq!(e.kind, InterpErrorKind::InputCount { expected: 1, got: 2 });
}

#[test]
fn wrong_input_shape_or_dtype() {
    let m = relu_module(&[1, 2]);
    let e = crate::interp::run(&m, "main", &[t(&[2, 1], &[1., 2.])]).unwrap_err();
    assert_eq!(e.kind, InterpErrorKind::Input { index: 0 });
    let s = e.to_string();
    assert!(s.starts_with("interp: graph @main, node %x (input): input 0: expected shape [1, 2]"), "{s}");
    assert!(s.contains("got shape [2, 1] (f32)"), "{s}");
    let xi = Tensor::new(vec![1, 2], TensorData::I32(vec![1, 2])).unwrap();
    let e = crate::interp::run(&m, "main", &[xi]).unwrap_err();
    assert_eq!(e.kind, InterpErrorKind::Input { index: 0 });
    assert!(e.to_string().contains("(i32)"), "{e}");
}

#[test]
fn unknown_graph() {
    let m = relu_module(&[1]);
    let e = Interpreter::new(&m, "nope").err().unwrap();
    assert_eq!(e.kind, InterpErrorKind::Graph);
    assert!(e.to_string().contains("no graph @nope"), "{e}");
}

fn custom_module(name: &str, attrs: AttrMap, results: Vec<TensorType>) -> Module {
    let mut m = Module::new("m");
    let mut g = Graph::new("main");
    let x = g.add_input("x", TensorType::f32([2]));
    let c = g.add_node("mystery", Op::Custom(CustomOp { name: name.into(), attrs }), &[x], results);
    let outs = (0..g.node(c).results.len() as u32).map(|r| Value { node: c, result: r }).collect();
    g.set_outputs(outs);
    m.add_graph(g);
    m
}

#[test]
fn custom_op_without_implementation_names_node_and_op() {
    let m = custom_module("acme.warp", AttrMap::new(), vec![TensorType::f32([2])]);
    let e = crate::interp::run(&m, "main", &[t(&[2], &[1., 2.])]).unwrap_err();
    assert_eq!(e.kind, InterpErrorKind::Eval);
    assert_eq!(e.node, Some(("mystery".into(), "acme.warp".into())));
    let s = e.to_string();
    assert!(s.starts_with("interp: graph @main, node %mystery (acme.warp): no implementation registered"), "{s}");
}

#[test]
fn custom_op_hook() {
    let mut attrs = AttrMap::new();
    attrs.insert("k".into(), crate::ir::Attr::Float(3.0));
    let m = custom_module("acme.scale", attrs, vec![TensorType::f32([2]), TensorType::f32([1])]);
    let interp = Interpreter::new(&m, "main").unwrap().with_custom("acme.scale", |ins, attrs| {
        let k = match attrs.get("k") {
            Some(crate::ir::Attr::Float(k)) => *k,
            _ => return Err("missing k".into()),
        };
        let x = ins[0].as_f32().ok_or("f32 only")?;
        let y: Vec<f32> = x.iter().map(|v| v * k).collect();
        let s = y.iter().sum();
        Ok(vec![Tensor::from_f32([2], y).unwrap(), Tensor::from_f32([1], vec![s]).unwrap()])
    });
    let out = interp.run(&[t(&[2], &[1., 2.])]).unwrap();
    assert_f32(&out[0], &[2], &[3., 6.]);
    assert_f32(&out[1], &[1], &[9.]);

    // A closure's error is reported with the node, and wrong result types are caught.
    let failing = Interpreter::new(&m, "main").unwrap().with_custom("acme.scale", |_, _| Err("boom".into()));
    let e = failing.run(&[t(&[2], &[1., 2.])]).unwrap_err();
    assert!(e.to_string().contains("node %mystery (acme.scale): custom op `acme.scale` failed: boom"), "{e}");
    let wrong = Interpreter::new(&m, "main").unwrap().with_custom("acme.scale", |_, _| {
        Ok(vec![Tensor::from_f32([3], vec![0.; 3]).unwrap(), Tensor::scalar_f32(0.)])
    });
    let e = wrong.run(&[t(&[2], &[1., 2.])]).unwrap_err();
    assert_eq!(e.kind, InterpErrorKind::Type);
    assert!(e.to_string().contains("result 0 is declared"), "{e}");
    let few = Interpreter::new(&m, "main").unwrap().with_custom("acme.scale", |_, _| Ok(vec![]));
    assert_eq!(few.run(&[t(&[2], &[1., 2.])]).unwrap_err().kind, InterpErrorKind::Type);
}

#[test]
fn declared_types_that_contradict_the_shape_rule() {
    // A conv whose declared result shape is wrong: a type error, not a panic.
    let mut m = Module::new("m");
    let mut g = Graph::new("main");
    let x = g.add_input("x", TensorType::f32([1, 1, 4, 4]));
    let w = g.add_input("w", TensorType::f32([1, 1, 3, 3]));
    let c = g.add_node("conv1", Op::Conv2d(Conv2d::default()), &[x, w], vec![TensorType::f32([1, 1, 4, 4])]);
    g.set_outputs(vec![Value::of(c)]);
    m.add_graph(g);
    let e = crate::interp::run(
        &m,
        "main",
        &[Tensor::zeros([1, 1, 4, 4], DType::F32), Tensor::zeros([1, 1, 3, 3], DType::F32)],
    )
    .unwrap_err();
    assert_eq!(e.kind, InterpErrorKind::Type);
    assert!(e.to_string().starts_with("interp: graph @main, node %conv1 (conv2d): result 0 is declared"), "{e}");
}

#[test]
fn wrong_operand_count_and_types() {
    let mut m = Module::new("m");
    let mut g = Graph::new("main");
    let x = g.add_input("x", TensorType::f32([2]));
    let a = g.add_node("a", Op::Add, &[x], vec![TensorType::f32([2])]);
    g.set_outputs(vec![Value::of(a)]);
    m.add_graph(g);
    let e = crate::interp::run(&m, "main", &[t(&[2], &[1., 2.])]).unwrap_err();
    assert!(e.to_string().contains("node %a (add): takes 2 operands, got 1"), "{e}");

    // Integer operands to a float kernel.
    let mut m = Module::new("m");
    let mut g = Graph::new("main");
    let x = g.add_input("x", TensorType::new([1, 1, 3, 3], DType::I8));
    let w = g.add_input("w", TensorType::new([1, 1, 1, 1], DType::I8));
    let y = g.add_op("conv", Op::Conv2d(Conv2d::default()), &[x, w]).unwrap();
    g.set_outputs(vec![y]);
    m.add_graph(g);
    let e = crate::interp::run(
        &m,
        "main",
        &[Tensor::zeros([1, 1, 3, 3], DType::I8), Tensor::zeros([1, 1, 1, 1], DType::I8)],
    )
    .unwrap_err();
    assert_eq!(e.kind, InterpErrorKind::Eval);
    assert!(e.to_string().contains("node %conv (conv2d): conv2d input must be f32"), "{e}");
}

#[test]
fn weights_missing_or_mismatched() {
    let mut m = Module::new("m");
    {
        let mut b = Builder::new(&mut m, "main");
        let x = b.input("x", TensorType::f32([2]));
        let w = b.weight("w", t(&[2], &[1., 1.]));
        let y = b.op("sum", Op::Add, &[x, w]).unwrap();
        b.output(y);
    }
    let x = t(&[2], &[1., 2.]);
    assert_f32(&crate::interp::run(&m, "main", std::slice::from_ref(&x)).unwrap()[0], &[2], &[2., 3.]);
    let mut bad = m.clone();
    bad.set_weight("w", Weight::new(t(&[3], &[1., 1., 1.])));
    let e = crate::interp::run(&bad, "main", std::slice::from_ref(&x)).unwrap_err();
    assert_eq!(e.kind, InterpErrorKind::Type);
    assert!(e.to_string().contains("weight @w has shape [3]"), "{e}");
    let mut gone = m.clone();
    gone.remove_weight("w");
    let e = crate::interp::run(&gone, "main", &[x]).unwrap_err();
    assert_eq!(e.kind, InterpErrorKind::Graph);
    assert!(e.to_string().contains("undeclared weight @w"), "{e}");
}

#[test]
fn limits_bound_results() {
    let m = relu_module(&[4, 4]);
    let interp = Interpreter::new(&m, "main").unwrap().with_limits(Limits { max_tensor_elements: 10 });
    let e = interp.run(&[Tensor::zeros([4, 4], DType::F32)]).unwrap_err();
    assert_eq!(e.kind, InterpErrorKind::Limit);
    assert!(e.to_string().contains("node %act (relu): result 0"), "{e}");
}

#[test]
fn cycles_are_reported() {
    let mut m = Module::new("m");
    let mut g = Graph::new("main");
    let x = g.add_input("x", TensorType::f32([2]));
    let a = g.add_op("a", Op::Relu, &[x]).unwrap();
    let b = g.add_op("b", Op::Relu, &[a]).unwrap();
    g.set_operand(a.node, 0, b);
    g.set_outputs(vec![b]);
    m.add_graph(g);
    let e = crate::interp::run(&m, "main", &[t(&[2], &[1., 2.])]).unwrap_err();
    assert_eq!(e.kind, InterpErrorKind::Graph);
    assert!(e.to_string().contains("cycle"), "{e}");
}
