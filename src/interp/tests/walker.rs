use super::*;
use crate::ir::{Graph, NodeId};
use crate::ops::{Clip, CustomOp};

#[test]
fn observer_sees_every_executed_node_in_order() {
    let mut m = Module::new("m");
    let mut g = Graph::new("main");
    let x = g.add_input("x", TensorType::f32([3]));
    let w = g.weight_value("w", TensorType::f32([3]));
    let a = g.add_op("a", Op::Add, &[x, w]).unwrap();
    let r = g.add_op("r", Op::Relu, &[a]).unwrap();
    let c = g.add_op("c", Op::Clip(Clip { min: 0.0, max: 1.0 }), &[r]).unwrap();
    // Dead code: a custom op without implementation that no output needs is not executed.
    let dead = g.add_node(
        "dead",
        Op::Custom(CustomOp { name: "x.y".into(), attrs: Default::default() }),
        &[a],
        vec![TensorType::f32([3])],
    );
    g.set_outputs(vec![c, r, c, x]);
    m.add_graph(g);
    m.set_weight("w", crate::ir::Weight::new(t(&[3], &[1., -5., 0.])));
    let interp = Interpreter::new(&m, "main").unwrap();
    let mut seen: Vec<(NodeId, Vec<f32>)> = Vec::new();
    let out = interp
        .run_observed(&[t(&[3], &[0.5, 2., 0.25])], &mut |id, t| seen.push((id, t.as_f32().unwrap().to_vec())))
        .unwrap();
    let g = interp.graph();
    let names: Vec<&str> = seen.iter().map(|(id, _)| g.node(*id).name()).collect();
    assert_eq!(names, ["x", "@w", "a", "r", "c"]);
    assert!(!seen.iter().any(|(id, _)| *id == dead));
    assert_eq!(seen[2].1, vec![1.5, -3., 0.25]);
    assert_eq!(out.len(), 4);
    assert_f32(&out[0], &[3], &[1., 0., 0.25]);
    assert_f32(&out[1], &[3], &[1.5, 0., 0.25]);
    assert_eq!(out[0], out[2]);
    assert_f32(&out[3], &[3], &[0.5, 2., 0.25]);
    // The same interpreter runs again.
    let again = interp.run(&[t(&[3], &[0., 0., 0.])]).unwrap();
    assert_f32(&again[0], &[3], &[1., 0., 0.]);
}

#[test]
fn multi_result_custom_op_feeds_different_consumers() {
    let mut m = Module::new("m");
    let mut g = Graph::new("main");
    let x = g.add_input("x", TensorType::f32([4]));
    let split = g.add_node(
        "split",
        Op::Custom(CustomOp { name: "t.split".into(), attrs: Default::default() }),
        &[x],
        vec![TensorType::f32([2]), TensorType::f32([2])],
    );
    let (lo, hi) = (Value { node: split, result: 0 }, Value { node: split, result: 1 });
    let s = g.add_op("s", Op::Sub, &[hi, lo]).unwrap();
    let d = g.add_op("d", Op::Mul, &[s, hi]).unwrap();
    g.set_outputs(vec![d]);
    m.add_graph(g);
    let interp = Interpreter::new(&m, "main").unwrap().with_custom("t.split", |ins, _| {
        let v = ins[0].as_f32().ok_or("f32")?;
        Ok(vec![t(&[2], &v[..2]), t(&[2], &v[2..])])
    });
    let out = interp.run(&[t(&[4], &[1., 2., 5., 7.])]).unwrap();
    assert_f32(&out[0], &[2], &[20., 35.]);
}

#[test]
fn a_graph_output_may_be_a_weight() {
    let mut m = Module::new("m");
    {
        let mut b = Builder::new(&mut m, "main");
        let x = b.input("x", TensorType::f32([1]));
        let w = b.weight("w", t(&[2], &[4., 5.]));
        b.output(w);
        b.output(x);
    }
    let out = crate::interp::run(&m, "main", &[t(&[1], &[9.])]).unwrap();
    assert_f32(&out[0], &[2], &[4., 5.]);
    assert_f32(&out[1], &[1], &[9.]);
}
