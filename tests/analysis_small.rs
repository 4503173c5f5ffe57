//! Analyses on hand-built graphs with hand-computed answers.

use clio::analysis::{graph_cost, layer_table, liveness, refresh_types};
use clio::ir::{Builder, Module, Op, Tensor, TensorType};
use clio::ops::{BatchNorm, Conv2d, Flatten, Gemm};

fn t(shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f32(shape.to_vec(), vec![0.5; n]).unwrap()
}

/// x[1,3,8,8] -> conv 3x3 s1 p1 (8 out) -> bn -> relu -> conv dw 3x3 s2 p1 -> gap -> flatten -> fc(10)
fn net() -> Module {
    let mut m = Module::new("net");
    let mut b = Builder::new(&mut m, "main");
    let x = b.input("x", TensorType::f32([1, 3, 8, 8]));
    let w1 = b.weight("c1.w", t(&[8, 3, 3, 3]));
    let c1 = b.op("c1", Op::Conv2d(Conv2d { pads: [1; 4], ..Default::default() }), &[x, w1]).unwrap();
    let bn: Vec<_> = ["g", "b", "m", "v"].iter().map(|n| b.weight(&format!("bn.{n}"), t(&[8]))).collect();
    let y = b.op("bn", Op::BatchNorm(BatchNorm { epsilon: 1e-5 }), &[c1, bn[0], bn[1], bn[2], bn[3]]).unwrap();
    let y = b.op("relu", Op::Relu, &[y]).unwrap();
    let w2 = b.weight("dw.w", t(&[8, 1, 3, 3]));
    let b2 = b.weight("dw.b", t(&[8]));
    let y = b
        .op("dw", Op::Conv2d(Conv2d { pads: [1; 4], strides: [2, 2], groups: 8, ..Default::default() }), &[y, w2, b2])
        .unwrap();
    let y = b.op("gap", Op::GlobalAvgPool, &[y]).unwrap();
    let y = b.op("flat", Op::Flatten(Flatten { axis: 1 }), &[y]).unwrap();
    let fw = b.weight("fc.w", t(&[10, 8]));
    let fb = b.weight("fc.b", t(&[10]));
    let y = b.op("fc", Op::Gemm(Gemm { trans_b: true, ..Default::default() }), &[y, fw, fb]).unwrap();
    b.output(y);
    b.finish();
    m
}

#[test]
fn macs_and_params_by_hand() {
    let m = net();
    let g = m.main_graph().unwrap();
    let c = graph_cost(&m, g);
    let c1 = 8 * 8 * 8 * 3 * 9; // out elements * Cin * K*K
    let dw = 8 * 4 * 4 * 9; // depthwise: out elements * 1 * K*K
    let fc = 8 * 10;
    assert_eq!(c.macs, (c1 + dw + fc) as u64);
    // conv1 216, bn gamma+beta 16 (mean/var are buffers), dw 72+8, fc 80+10
    assert_eq!(c.params, 216 + 16 + 80 + 90);
    assert_eq!(c.buffers, 16);
    let s = layer_table(&m);
    assert_eq!(s.macs, c.macs);
    assert_eq!(s.params, c.params);
    assert_eq!(s.layers.len(), 7);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["layers"][0]["name"], "c1");
    assert_eq!(json["layers"][0]["macs"], c1);
}

#[test]
fn liveness_peak_by_hand() {
    let m = net();
    let g = m.main_graph().unwrap();
    let order = g.topo_order().unwrap();
    let l = liveness(g, &order);
    // Largest simultaneous pair: c1 output (8x8x8 f32 = 2048 B) with bn output (2048 B).
    assert_eq!(l.peak_bytes, 4096);
    let x = l.intervals.iter().find(|i| i.name == "x").unwrap();
    let c1 = l.intervals.iter().find(|i| i.name == "c1").unwrap();
    assert_eq!(x.end, c1.start, "the input dies where conv1 reads it");
    let fc = l.intervals.iter().find(|i| i.name == "fc").unwrap();
    assert_eq!(fc.end, l.live_bytes.len() - 1, "outputs live to the end");
}

#[test]
fn refresh_types_propagates_a_weight_change() {
    let mut m = net();
    // Prune conv1 to 4 output channels by hand: shapes downstream must follow.
    let g = m.graph_mut("main").unwrap();
    let wid = g.weight_node("c1.w").unwrap();
    g.node_mut(wid).results[0] = TensorType::f32([4, 3, 3, 3]);
    // The batch norm now rejects its 8-channel parameters; the error names it.
    let e = refresh_types(g).unwrap_err().to_string();
    assert!(e.contains("node %bn (batch_norm): batch_norm parameter 1 must have shape [4], got [8]"), "{e}");
    // conv1's type was refreshed before the failure.
    assert_eq!(g.node(g.find("c1").unwrap()).ty().shape, vec![1, 4, 8, 8]);
    // Pruning the batch norm's parameters too makes the whole graph consistent again.
    for w in ["bn.g", "bn.b", "bn.m", "bn.v"] {
        let id = g.weight_node(w).unwrap();
        g.node_mut(id).results[0] = TensorType::f32([4]);
    }
    // Now the next inconsistency is the depthwise conv, which still expects 8 channels.
    let e = refresh_types(g).unwrap_err().to_string();
    assert!(e.contains("node %dw (conv2d): groups = 8 must divide input channels 4"), "{e}");
    assert_eq!(g.node(g.find("relu").unwrap()).ty().shape, vec![1, 4, 8, 8]);
}
