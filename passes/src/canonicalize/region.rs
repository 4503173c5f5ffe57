//! Regions: finding them in the petgraph graph, lowering one to an e-graph, and writing the
//! extracted term back.
//!
//! A node is *modelled* when its op is in the language ([`super::lang::OPS`]) and it reads and
//! produces unquantized f32 tensors (one result). A modelled node is *internal* when its
//! result is read exactly once, by a modelled node, and is not a graph output; every other
//! modelled node is a region *root*. A region is a root plus the internal nodes that feed it,
//! transitively: a tree. Everything a region reads from outside (graph inputs, weights, values
//! with several readers, results of unmodelled ops) is a leaf.

use super::analysis::{raise_op, ClioAnalysis, Data, TData};
use super::cost::{CostFn, EggCost, Extraction};
use super::lang::{op_index, ENode, FnKind, Func, Lit, OPS};
use clio::ir::{DType, Graph, Module, NodeId, Op, Tensor, TensorType, Value, Weight};
use egg::{EGraph, Id, Language};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

/// One region: its root and its nodes in post-order (root last).
#[derive(Clone, Debug)]
pub(crate) struct Region {
    pub root: NodeId,
    pub nodes: Vec<NodeId>,
}

/// The language index of `n`'s op if `n` is modelled.
pub(crate) fn modelled(g: &Graph, n: NodeId) -> Option<u8> {
    let node = g.node(n);
    if !node.op.is_builtin() || node.results.len() != 1 {
        return None;
    }
    let k = op_index(node.op.name())?;
    let plain = |t: &TensorType| t.dtype == DType::F32 && t.quant.is_none();
    if !plain(&node.results[0]) || !g.operand_list(n).iter().all(|v| g.value_type(*v).is_some_and(plain)) {
        return None;
    }
    Some(k)
}

/// Every region of `g`, roots in topological order.
///
/// A region holds at most about `max_nodes` nodes per operand of its root: walking in
/// topological order, a node whose tree of internal producers reaches `max_nodes` becomes a
/// root itself (egg's extraction is quadratic in a region's depth, so one region spanning a
/// 100k-layer chain would not finish; rewrites across such a boundary are not found).
pub(crate) fn find_regions(g: &Graph, max_nodes: usize) -> Result<Vec<Region>, String> {
    let order = g.topo_order().map_err(|c| format!("@{}: cycle at {}", g.name(), c.0))?;
    let modelled: FxHashSet<NodeId> = order.iter().copied().filter(|n| modelled(g, *n).is_some()).collect();
    let outputs: FxHashSet<Value> = g.outputs().iter().copied().collect();
    let absorbable = |n: NodeId| {
        if !modelled.contains(&n) || outputs.contains(&Value::of(n)) {
            return false;
        }
        let uses = g.uses(Value::of(n));
        uses.len() == 1 && modelled.contains(&uses[0].0)
    };
    // Size of the tree of internal producers rooted at each modelled node; a node whose tree
    // reached the cap is not absorbed into its reader.
    let mut tree: FxHashMap<NodeId, usize> = FxHashMap::default();
    let mut capped: FxHashSet<NodeId> = FxHashSet::default();
    for &n in order.iter().filter(|n| modelled.contains(n)) {
        let size = 1 + g
            .operand_list(n)
            .iter()
            .filter(|v| v.result == 0 && absorbable(v.node) && !capped.contains(&v.node))
            .map(|v| tree.get(&v.node).copied().unwrap_or(1))
            .sum::<usize>();
        if size >= max_nodes.max(1) {
            capped.insert(n);
        }
        tree.insert(n, size);
    }
    let internal = |n: NodeId| absorbable(n) && !capped.contains(&n);
    let mut regions = vec![];
    for &root in order.iter().filter(|n| modelled.contains(n) && !internal(**n)) {
        let mut nodes = vec![];
        // Iterative post-order over internal producers.
        let mut stack: Vec<(NodeId, bool)> = vec![(root, false)];
        while let Some((n, expanded)) = stack.pop() {
            if expanded {
                nodes.push(n);
                continue;
            }
            stack.push((n, true));
            for &v in g.operand_list(n).iter().rev() {
                if v.result == 0 && internal(v.node) {
                    stack.push((v.node, false));
                }
            }
        }
        regions.push(Region { root, nodes });
    }
    Ok(regions)
}

/// A region lowered into an e-graph.
pub(crate) struct Lowered {
    /// The root's class.
    pub root: Id,
    /// Leaf `k` reads this value.
    pub leaves: Vec<Value>,
    /// Each region node's class (as added).
    pub classes: Vec<(NodeId, Id)>,
    /// Each region node's e-node (as added; canonicalise children before comparing).
    pub enodes: Vec<ENode>,
    /// Each region node's op and operands before the rewrite.
    pub orig: FxHashMap<NodeId, (Op, Vec<Value>)>,
}

/// Adds `region` to `eg` (whose analysis must be fresh).
pub(crate) fn lower(
    m: &Module,
    g: &Graph,
    region: &Region,
    eg: &mut EGraph<ENode, ClioAnalysis>,
) -> Result<Lowered, String> {
    let mut low =
        Lowered { root: Id::from(0), leaves: vec![], classes: vec![], enodes: vec![], orig: FxHashMap::default() };
    let mut leaf_of: FxHashMap<Value, Id> = FxHashMap::default();
    let mut class_of: FxHashMap<NodeId, Id> = FxHashMap::default();
    for &n in &region.nodes {
        let node = g.node(n);
        let k = modelled(g, n).ok_or_else(|| format!("%{} is not modelled", node.name()))?;
        let spec = &OPS[k as usize];
        let operands = g.operand_list(n);
        let n_ops = if spec.variadic() { operands.len() } else { spec.operands.len() };
        if operands.len() > n_ops {
            return Err(format!("%{}: {} operands", node.name(), operands.len()));
        }
        let mut ch: Vec<Id> = Vec::with_capacity(n_ops + spec.attrs.len());
        for slot in 0..n_ops {
            let id = match operands.get(slot) {
                Some(v) => match class_of.get(&v.node) {
                    Some(id) if v.result == 0 => *id,
                    _ => {
                        if let Some(id) = leaf_of.get(v) {
                            *id
                        } else {
                            let id = add_leaf(m, g, *v, eg, &mut low.leaves)?;
                            leaf_of.insert(*v, id);
                            id
                        }
                    }
                },
                None if spec.optional(slot) => eg.add(ENode::Lit(Lit::None)),
                None => return Err(format!("%{}: operand {slot} is missing", node.name())),
            };
            ch.push(id);
        }
        let attrs = node.op.attrs();
        if attrs.len() != spec.attrs.len() || attrs.iter().zip(spec.attrs).any(|((a, _), (b, _))| a != b) {
            return Err(format!("%{}: {} attributes differ from the language's table", node.name(), spec.name));
        }
        for (_, a) in &attrs {
            ch.push(eg.add(ENode::Lit(Lit::from_attr(a))));
        }
        let enode = ENode::Call(Func::Op(k), ch.into());
        let id = eg.add(enode.clone());
        low.enodes.push(enode);
        match eg[id].data.tensor() {
            Some(t) if t.ty.shape == node.ty().shape && t.ty.dtype == node.ty().dtype => {}
            _ => return Err(format!("%{}: the shape rule disagrees with the declared type", node.name())),
        }
        class_of.insert(n, id);
        low.classes.push((n, id));
        low.orig.insert(n, (node.op.clone(), operands.to_vec()));
    }
    low.root = *class_of.get(&region.root).ok_or("empty region")?;
    Ok(low)
}

fn add_leaf(
    m: &Module,
    g: &Graph,
    v: Value,
    eg: &mut EGraph<ENode, ClioAnalysis>,
    leaves: &mut Vec<Value>,
) -> Result<Id, String> {
    let ty = g.value_type(v).cloned().ok_or("a leaf without a type")?;
    let data = match g.weight_name(v).and_then(|w| m.weight(w)) {
        Some(w) if w.quant.is_none() && w.has_type(&ty) => TData::constant(w.shared().clone(), None),
        _ => TData::of_type(ty),
    };
    eg.analysis.leaves.push(Data::Tensor(data));
    leaves.push(v);
    Ok(eg.add(ENode::Leaf((leaves.len() - 1) as u32)))
}

/// A planned value: an existing one, or the result of step `i`.
#[derive(Clone, Copy, Debug)]
enum Pv {
    Val(Value),
    Step(usize),
}

enum Step {
    /// A new weight with computed data.
    Weight { base: String, derived_from: Option<String>, data: Arc<Tensor> },
    /// An original node of the same e-class, given another op and operands (same value, same
    /// type: its readers stay valid).
    Recycle { node: NodeId, op: Op, operands: Vec<Pv> },
    /// A new node.
    New { name: String, op: Op, operands: Vec<Pv>, ty: TensorType },
}

struct Planner<'a, 'e> {
    g: &'a Graph,
    eg: &'a EGraph<ENode, ClioAnalysis>,
    ex: &'a Extraction<'e>,
    low: &'a Lowered,
    region: &'a Region,
    class_origs: FxHashMap<Id, Vec<NodeId>>,
    claimed: FxHashSet<NodeId>,
    memo: FxHashMap<Id, Pv>,
    on_path: FxHashSet<Id>,
    steps: Vec<Step>,
}

impl Planner<'_, '_> {
    fn name_for(&self, class: Id) -> String {
        let n = self.class_origs.get(&class).and_then(|v| v.first()).copied().unwrap_or(self.region.root);
        self.g.node(n).name().to_string()
    }

    fn plan(&mut self, class: Id, hint: Option<(&str, &str)>) -> Result<Pv, String> {
        let class = self.eg.find(class);
        if let Some(pv) = self.memo.get(&class) {
            return Ok(*pv);
        }
        if !self.on_path.insert(class) {
            return Err("the extracted term is cyclic".into());
        }
        let node = self.ex.find_best_node(class).clone();
        let pv = match &node {
            ENode::Leaf(k) => Pv::Val(*self.low.leaves.get(*k as usize).ok_or("unknown leaf")?),
            ENode::Lit(_) => return Err("an attribute where a tensor is expected".into()),
            ENode::Call(Func::Fn(h), ch) if h.kind() == FnKind::Const => self.plan_const(class, ch, hint)?,
            ENode::Call(Func::Fn(h), _) => return Err(format!("`{}` where a tensor is expected", h.name())),
            ENode::Call(Func::Op(k), ch) => self.plan_op(class, *k, ch)?,
        };
        self.on_path.remove(&class);
        self.memo.insert(class, pv);
        Ok(pv)
    }

    fn plan_const(&mut self, class: Id, ch: &[Id], hint: Option<(&str, &str)>) -> Result<Pv, String> {
        let data = self.eg[class].data.tensor().and_then(|t| t.value.clone()).ok_or("a constant without data")?;
        // Named after the weight it transforms (same type), else after its reader and slot.
        let derived = ch.first().and_then(|c| match self.ex.find_best_node(*c) {
            ENode::Leaf(k) => {
                let v = *self.low.leaves.get(*k as usize)?;
                let same = self.g.value_type(v).is_some_and(|t| t.shape == data.shape() && t.dtype == data.dtype());
                self.g.weight_name(v).filter(|_| same).map(str::to_string)
            }
            _ => None,
        });
        let base = match (&derived, hint) {
            (Some(w), _) => w.clone(),
            (None, Some((reader, slot))) => format!("{reader}.{slot}"),
            (None, None) => format!("{}.const", self.g.node(self.region.root).name()),
        };
        self.steps.push(Step::Weight { base, derived_from: derived, data });
        Ok(Pv::Step(self.steps.len() - 1))
    }

    fn plan_op(&mut self, class: Id, k: u8, ch: &[Id]) -> Result<Pv, String> {
        let spec = &OPS[k as usize];
        let n_ops = spec.operand_count(ch.len());
        let name = self.name_for(class);
        let mut operands = Vec::with_capacity(n_ops);
        for (slot, c) in ch[..n_ops].iter().enumerate() {
            if matches!(self.eg[*c].data, Data::Attr(Lit::None)) {
                break;
            }
            operands.push(self.plan(*c, Some((&name, spec.operand_name(slot))))?);
        }
        let args: Vec<&Data> = ch.iter().map(|c| &self.eg[*c].data).collect();
        let (op, _) = raise_op(spec, &args).ok_or_else(|| format!("cannot rebuild a `{}`", spec.name))?;
        let ty = self.eg[class].data.tensor().map(|t| t.ty.clone()).ok_or("an op class without a type")?;
        let values: Option<Vec<Value>> = operands
            .iter()
            .map(|p| match p {
                Pv::Val(v) => Some(*v),
                Pv::Step(_) => None,
            })
            .collect();
        // 1. An original node computing exactly this (same op, same operands): keep it.
        if let Some(values) = values {
            let own = self.class_origs.get(&class).cloned().unwrap_or_default();
            let reuse = own.iter().chain(self.region.nodes.iter()).copied().find(|n| {
                !self.claimed.contains(n) && self.low.orig.get(n).is_some_and(|(o, vs)| *o == op && *vs == values)
            });
            if let Some(n) = reuse {
                self.claimed.insert(n);
                return Ok(Pv::Val(Value::of(n)));
            }
        }
        // 2. An original node of the same class: rewrite it in place (keeps its name and place).
        let recycle = self.class_origs.get(&class).and_then(|v| v.iter().copied().find(|n| !self.claimed.contains(n)));
        if let Some(n) = recycle {
            self.claimed.insert(n);
            self.steps.push(Step::Recycle { node: n, op, operands });
            return Ok(Pv::Val(Value::of(n)));
        }
        // 3. A new node, named after its class's original node (or the region root).
        self.steps.push(Step::New { name, op, operands, ty });
        Ok(Pv::Step(self.steps.len() - 1))
    }
}

/// What writing one region back did.
#[derive(Default, Debug)]
pub(crate) struct WriteBack {
    pub changed: bool,
    pub nodes_removed: usize,
    pub nodes_created: usize,
    pub weights_created: usize,
}

/// Extracts the cheapest term of the region's root class and writes it into graph `graph`.
pub(crate) fn write_back(
    m: &mut Module,
    graph: &str,
    region: &Region,
    low: &Lowered,
    eg: &EGraph<ENode, ClioAnalysis>,
    cost: &CostFn,
) -> Result<WriteBack, String> {
    let g = m.graph(graph).ok_or("graph vanished")?;
    let originals: FxHashSet<ENode> = low.enodes.iter().map(|e| e.clone().map_children(|c| eg.find(c))).collect();
    let ex = Extraction::new(eg, EggCost { egraph: eg, cost, originals: &originals });
    let mut class_origs: FxHashMap<Id, Vec<NodeId>> = FxHashMap::default();
    for (n, id) in &low.classes {
        class_origs.entry(eg.find(*id)).or_default().push(*n);
    }
    let mut p = Planner {
        g,
        eg,
        ex: &ex,
        low,
        region,
        class_origs,
        claimed: FxHashSet::default(),
        memo: FxHashMap::default(),
        on_path: FxHashSet::default(),
        steps: vec![],
    };
    let root_pv = p.plan(low.root, None)?;
    let (steps, claimed) = (std::mem::take(&mut p.steps), std::mem::take(&mut p.claimed));
    let mut out = WriteBack::default();
    if steps.is_empty() && matches!(root_pv, Pv::Val(v) if v == Value::of(region.root)) {
        return Ok(out);
    }
    out.changed = true;

    // Apply the plan.
    let (g, weights) = m.graph_and_weights_mut(graph).ok_or("graph vanished")?;
    let mut resolved: Vec<Value> = Vec::with_capacity(steps.len());
    let mut created: Vec<(String, Option<String>, NodeId)> = vec![];
    let mut new_nodes: Vec<(NodeId, String)> = vec![];
    for step in steps {
        let r = |pv: &Pv, resolved: &[Value]| match pv {
            Pv::Val(v) => *v,
            Pv::Step(i) => resolved[*i],
        };
        let v = match step {
            Step::Weight { base, derived_from, data } => {
                let name = fresh_weight_name(|n| weights.contains_key(n), &base);
                weights.insert(name.clone(), Weight::new(Arc::unwrap_or_clone(data)));
                let ty = weights[&name].ty();
                let v = g.weight_value(&name, ty);
                created.push((name, derived_from, v.node));
                out.weights_created += 1;
                v
            }
            Step::Recycle { node, op, operands } => {
                let vals: Vec<Value> = operands.iter().map(|p| r(p, &resolved)).collect();
                g.node_mut(node).op = op;
                g.set_operands(node, &vals);
                Value::of(node)
            }
            Step::New { name, op, operands, ty } => {
                let vals: Vec<Value> = operands.iter().map(|p| r(p, &resolved)).collect();
                let id = g.add_node(&name, op, &vals, vec![ty]);
                new_nodes.push((id, name));
                out.nodes_created += 1;
                Value::of(id)
            }
        };
        resolved.push(v);
    }
    let root_val = match root_pv {
        Pv::Val(v) => v,
        Pv::Step(i) => resolved[i],
    };
    if root_val != Value::of(region.root) {
        g.replace_all_uses(Value::of(region.root), root_val);
    }

    // Remove the original nodes nothing reads any more, then the weights they alone read.
    let mut pending: Vec<NodeId> = region.nodes.iter().copied().filter(|n| !claimed.contains(n)).collect();
    loop {
        let before = pending.len();
        pending.retain(|n| {
            if g.use_count(Value::of(*n)) == 0 {
                g.remove_node(*n);
                out.nodes_removed += 1;
                false
            } else {
                true
            }
        });
        if pending.len() == before {
            break;
        }
    }
    // Every replaced node is read only by other replaced nodes or by the old root, whose
    // readers were redirected; anything left would be dead code for `dce`, never wrong code.
    debug_assert!(pending.is_empty(), "replaced nodes are still read: {pending:?}");
    // A computed weight derived from a weight nothing reads any more (nor any other graph)
    // takes over that weight's name, place in the weight table and weight node (so the printed
    // order of the graph does not move).
    let mut swaps = vec![];
    for (new, old, new_node) in &created {
        let Some(old) = old else { continue };
        if let Some(old_node) = g.weight_node(old).filter(|n| g.use_count(Value::of(*n)) == 0) {
            swaps.push((new.clone(), old.clone(), *new_node, old_node));
        }
    }
    swaps.retain(|(_, old, _, _)| m.graphs().filter(|gr| gr.name() != graph).all(|gr| gr.weight_node(old).is_none()));
    let (g, weights) = m.graph_and_weights_mut(graph).ok_or("graph vanished")?;
    for (new, old, new_node, old_node) in swaps {
        if let Some(w) = weights.shift_remove(&new) {
            weights.insert(old, w);
            g.replace_all_uses(Value::of(new_node), Value::of(old_node));
            g.remove_node(new_node);
        }
    }
    let mut dead_weights = vec![];
    for v in &low.leaves {
        if g.contains(v.node) {
            if let Some(w) = g.remove_if_unused_weight(v.node) {
                dead_weights.push(w);
            }
        }
    }
    for w in dead_weights {
        m.remove_weight_if_unread(&w);
    }
    // New nodes take their intended names once the nodes they replace are gone.
    let g = m.graph_mut(graph).ok_or("graph vanished")?;
    for (id, name) in new_nodes {
        if g.contains(id) && g.node(id).name() != name && g.find(&name).is_none() {
            g.rename(id, &name);
        }
    }
    Ok(out)
}

fn fresh_weight_name(taken: impl Fn(&str) -> bool, base: &str) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (1..).map(|i| format!("{base}.{i}")).find(|n| !taken(n)).unwrap_or_default()
}
