//! The rewrite: slice every weight site, update depthwise `groups` and reshape targets, then
//! re-infer result types.

use super::channels::{Analysis, Map, Ref, Site};
use clio::ir::{Module, NodeId, Op, Tensor, Value, Weight};
use std::collections::{BTreeMap, HashSet};

/// Keeps positions `keep` of `axis` of an f32 tensor.
pub fn slice_axis(t: &Tensor, axis: usize, keep: &[usize]) -> Option<Tensor> {
    let shape = t.shape();
    let data = t.as_f32()?;
    let d = *shape.get(axis)?;
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(outer * keep.len() * inner);
    for o in 0..outer {
        for k in keep {
            let start = (o * d + k) * inner;
            out.extend_from_slice(&data[start..start + inner]);
        }
    }
    let mut new_shape = shape.to_vec();
    new_shape[axis] = keep.len();
    Tensor::from_f32(new_shape, out).ok()
}

/// What the rewrite did.
#[derive(Default)]
pub struct Applied {
    /// Weights that had other readers and were copied before slicing.
    pub weights_copied: usize,
}

fn kept(map: &Map, dead: &[bool]) -> Vec<usize> {
    map.iter().enumerate().filter(|(_, r)| !dead[**r as usize]).map(|(i, _)| i).collect()
}

/// Applies the pruning of the groups `pruned` (roots) to graph `graph` of `m`.
pub fn apply(m: &mut Module, graph: &str, a: &mut Analysis, pruned: &HashSet<Ref>) -> Result<Applied, String> {
    let dead: Vec<bool> = (0..a.uf.len() as Ref).map(|r| pruned.contains(&a.uf.find(r))).collect();
    let mut applied = Applied::default();
    // Weight slices grouped per (node, operand slot), in site order.
    let mut per_operand: BTreeMap<(NodeId, usize), Vec<(usize, Map)>> = BTreeMap::new();
    let mut groups: Vec<(NodeId, usize)> = vec![];
    let mut reshapes: Vec<(NodeId, usize)> = vec![];
    for site in &a.sites {
        match site {
            Site::Weight { node, slot, axis, map } => {
                per_operand.entry((*node, *slot)).or_default().push((*axis, map.clone()));
            }
            Site::Groups { node, map } => groups.push((*node, kept(map, &dead).len())),
            Site::Reshape { node, map } => reshapes.push((*node, kept(map, &dead).len())),
        }
    }
    for ((node, slot), slices) in per_operand {
        let g = m.graph(graph).ok_or("graph vanished")?;
        let v = g.operand(node, slot).ok_or("operand vanished")?;
        let name =
            g.weight_name(v).ok_or_else(|| format!("operand {slot} of %{} is not a weight", g.node(node).name()))?;
        let name = name.to_string();
        let mut t = m.weight(&name).ok_or_else(|| format!("weight @{name} missing"))?.data().clone();
        let mut changed = false;
        for (axis, map) in slices {
            if t.shape().get(axis) != Some(&map.len()) {
                return Err(format!(
                    "weight @{name} axis {axis} has {:?} positions, channel map has {}",
                    t.shape().get(axis),
                    map.len()
                ));
            }
            let keep = kept(&map, &dead);
            if keep.len() == map.len() {
                continue;
            }
            t = slice_axis(&t, axis, &keep).ok_or_else(|| format!("weight @{name} is not f32"))?;
            changed = true;
        }
        if !changed {
            continue;
        }
        write_weight(m, graph, node, slot, &name, t, &mut applied)?;
    }
    let g = m.graph_mut(graph).ok_or("graph vanished")?;
    for (node, n) in groups {
        if let Op::Conv2d(c) = &mut g.node_mut(node).op {
            c.groups = n;
        }
    }
    for (node, n) in reshapes {
        if let Op::Reshape(r) = &mut g.node_mut(node).op {
            r.shape[1] = n;
        }
    }
    clio::analysis::refresh_types(g).map_err(|e| e.to_string())?;
    Ok(applied)
}

/// Stores the sliced tensor: in place when `node`'s operand is the weight's only reader in the
/// module, else as a copy `<name>.pruned` that only this operand reads.
fn write_weight(
    m: &mut Module,
    graph: &str,
    node: NodeId,
    slot: usize,
    name: &str,
    t: Tensor,
    applied: &mut Applied,
) -> Result<(), String> {
    if m.weight_use_count(name) == 1 {
        let w = Weight::new(t);
        let ty = w.ty();
        m.set_weight(name, w);
        let g = m.graph_mut(graph).ok_or("graph vanished")?;
        let wnode = g.weight_node(name).ok_or("weight node vanished")?;
        g.node_mut(wnode).results[0] = ty;
        return Ok(());
    }
    applied.weights_copied += 1;
    let new = m.add_weight(&format!("{name}.pruned"), Weight::new(t));
    let ty = m.weight(&new).ok_or("weight vanished")?.ty();
    let g = m.graph_mut(graph).ok_or("graph vanished")?;
    let nv: Value = g.weight_value(&new, ty);
    g.set_operand(node, slot, nv);
    if let Some(old) = g.weight_node(name) {
        g.remove_if_unused_weight(old);
    }
    m.remove_weight_if_unread(name);
    Ok(())
}
