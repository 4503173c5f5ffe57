//! The radio boundary of a quantized device graph: the transmitted cut tensor stays in the
//! integer domain (it crosses the link as 8-bit values, see `clio::quant::wire`), and the graphs
//! that receive it take the integer tensor and dequantize it themselves.
//!
//! After [`super::rewrite`], an output `dequantize(transmit(%q))` of the quantized graph becomes
//! `transmit(%q)`. The receivers are the transmit's `to` graph and, for a module the `slice` pass
//! made with this graph as its device, every per-slice head (each reads the first channels of
//! the same tensor, so with the same per-tensor format). A receiver's float input becomes the
//! integer type with that format, followed by a `dequantize` feeding every former reader.
//!
//! ```text
//! graph @device(...) { ... %c.tx = transmit(%c) : 1x4x8x8xi8 ; return %c.tx }
//! graph @cloud.s2(%c: tensor<1x2x8x8xi8, affine<...>>) { %c.dq = dequantize(%c) : 1x2x8x8xf32 ... }
//! ```

use clio::ir::{Attr, Graph, Module, NodeId, Op, Quant, TensorType, Value};

/// Keeps the transmitted outputs of `gname` quantized and retypes their receivers; returns the
/// receiving graphs rewritten.
pub fn keep_transmit_quantized(m: &mut Module, gname: &str) -> Result<Vec<String>, String> {
    let g = m.graph(gname).ok_or_else(|| format!("no graph @{gname}"))?;
    // (output position, dequantize node, transmit value, its integer type, destination)
    let mut found: Vec<(usize, NodeId, Value, TensorType, String)> = vec![];
    for (i, v) in g.outputs().iter().enumerate() {
        if !matches!(g.node(v.node).op, Op::Dequantize) {
            continue;
        }
        let Some(t) = g.operand(v.node, 0) else { continue };
        if let Op::Transmit(tx) = &g.node(t.node).op {
            let ty = g.value_type(t).cloned().ok_or("transmit without type")?;
            if ty.quant.is_some() {
                found.push((i, v.node, t, ty, tx.to.clone()));
            }
        }
    }
    if found.is_empty() {
        return Ok(vec![]);
    }
    let slice_heads = slice_heads_of(m, gname);
    let g = m.graph_mut(gname).ok_or("graph vanished")?;
    let mut outs = g.outputs().to_vec();
    for (i, dq, t, _, _) in &found {
        outs[*i] = *t;
        g.set_outputs(outs.clone());
        if g.uses(Value::of(*dq)).is_empty() {
            g.remove_node(*dq);
        }
    }
    let mut rewritten = vec![];
    for (_, _, _, ty, to) in &found {
        let mut receivers = vec![to.clone()];
        receivers.extend(slice_heads.iter().filter(|h| *h != to).cloned());
        for r in receivers {
            let Some(q) = ty.quant.clone() else { continue };
            let Some(rg) = m.graph_mut(&r) else { continue };
            if retype_input(rg, ty, &q)? {
                rewritten.push(r);
            }
        }
    }
    Ok(rewritten)
}

/// The head graphs of the `clio.slice` attribute when `device` is its device graph.
fn slice_heads_of(m: &Module, device: &str) -> Vec<String> {
    let Some(Attr::Str(json)) = m.attrs.get("clio.slice") else { return vec![] };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else { return vec![] };
    if v["device"].as_str() != Some(device) {
        return vec![];
    }
    v["heads"]
        .as_array()
        .map(|hs| hs.iter().filter_map(|h| h["graph"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// Makes the single float input of `g` an integer input of `ty`'s type and format (keeping its
/// own shape), dequantized before its readers. `false` when `g` does not take such an input.
fn retype_input(g: &mut Graph, ty: &TensorType, q: &Quant) -> Result<bool, String> {
    let [input] = g.inputs() else { return Ok(false) };
    let input = *input;
    let float_ty = g.node(input).ty().clone();
    if float_ty.quant.is_some()
        || float_ty.dtype.is_integer()
        || float_ty.shape.len() != ty.shape.len()
        || q.axis.is_some()
    {
        return Ok(false);
    }
    let int_ty = TensorType { shape: float_ty.shape.clone(), dtype: ty.dtype, quant: Some(q.clone()) };
    let readers = g.uses(Value::of(input));
    let name = g.fresh_name(&format!("{}.dq", g.node(input).name()));
    g.node_mut(input).results = vec![int_ty];
    let dq = Value::of(g.add_node(&name, Op::Dequantize, &[Value::of(input)], vec![float_ty]));
    for (user, slot) in readers {
        g.set_operand(user, slot, dq);
    }
    let outs: Vec<Value> = g.outputs().iter().map(|o| if *o == Value::of(input) { dq } else { *o }).collect();
    g.set_outputs(outs);
    Ok(true)
}
