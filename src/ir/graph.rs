//! [`Graph`]: a DAG of [`Node`]s on petgraph's `StableDiGraph`, the source of truth of the IR.
//!
//! Every edge goes from a producer to a consumer and records which result it reads and which
//! operand slot it fills, so operand order is explicit. Node names are unique inside a graph
//! (they are the `%names` of the text format and usually the source model's names).

use super::name_index::NameIndex;
use super::{NodeId, Op, TensorType, Value};
use petgraph::stable_graph::{EdgeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences, NodeIndexable};
use petgraph::Direction;
use std::collections::BinaryHeap;

/// An operation instance with its result types.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    name: String,
    /// The operation.
    pub op: Op,
    /// One type per result.
    pub results: Vec<TensorType>,
}

impl Node {
    /// The unique (within its graph) node name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The type of result 0.
    pub fn ty(&self) -> &TensorType {
        &self.results[0]
    }
}

/// Edge payload: the producer's result index and the consumer's operand slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Use {
    /// Result index of the producer.
    pub result: u32,
    /// Operand slot of the consumer.
    pub operand: u32,
}

/// Operands kept inline by [`OperandList`]; nodes with more use the heap.
const INLINE_OPERANDS: usize = 6;

/// The operands of a node in slot order, as [`Graph::operand_list`] returns them: up to six
/// (enough for `batch_norm`'s five) are kept inline (no heap allocation, unlike
/// [`Graph::operands`]); dereferences to `&[Value]`.
#[derive(Clone, Debug)]
pub struct OperandList {
    inline: [Value; INLINE_OPERANDS],
    len: usize,
    /// Every operand, when there are more than fit inline (else empty, not allocated).
    heap: Vec<Value>,
}

impl std::ops::Deref for OperandList {
    type Target = [Value];

    fn deref(&self) -> &[Value] {
        if self.len > INLINE_OPERANDS {
            &self.heap
        } else {
            &self.inline[..self.len]
        }
    }
}

impl<'a> IntoIterator for &'a OperandList {
    type Item = &'a Value;
    type IntoIter = std::slice::Iter<'a, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A named dataflow graph with ordered inputs and outputs.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    name: String,
    g: StableDiGraph<Node, Use, u32>,
    inputs: Vec<NodeId>,
    outputs: Vec<Value>,
    /// Every node by its name.
    by_name: NameIndex,
    /// Index of the `weight` nodes by weight name: every node added as a `weight` op, plus
    /// nodes that became one through [`Graph::node_mut`] (folded in by the next `&mut` call).
    /// Entries may be stale (the op was edited away); lookups check them.
    weight_nodes: NameIndex,
    /// The node last handed out by [`Graph::node_mut`], whose op edits are not indexed yet.
    pending_edit: Option<NodeId>,
}

/// A cycle was found; holds one node on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CycleAt(pub NodeId);

impl Graph {
    /// An empty graph.
    pub fn new(name: impl Into<String>) -> Graph {
        Graph { name: name.into(), ..Default::default() }
    }

    /// The graph name (`@main`, `@device`, `@cloud` ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the graph (the module keeps its key in sync through [`crate::ir::Module`]).
    pub(crate) fn set_name(&mut self, name: String) {
        self.name = name;
    }

    /// Number of nodes, including inputs and weight references.
    pub fn len(&self) -> usize {
        self.g.node_count()
    }

    /// An upper bound of the node indices (`NodeId::index`): the length of a side table indexed
    /// by node.
    pub fn node_bound(&self) -> usize {
        self.g.node_bound()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.g.node_count() == 0
    }

    /// The underlying petgraph graph, for algorithms (read-only).
    pub fn petgraph(&self) -> &StableDiGraph<Node, Use, u32> {
        &self.g
    }

    /// A name not used by any node, derived from `base`.
    pub fn fresh_name(&self, base: &str) -> String {
        let base = if base.is_empty() { "v" } else { base };
        if self.find(base).is_none() {
            return base.to_string();
        }
        (1..).map(|i| format!("{base}.{i}")).find(|n| self.find(n).is_none()).unwrap_or_default()
    }

    /// Adds a node with explicit result types; the name is made unique if taken. Operands are
    /// wired in order. Nothing is checked here: the verifier checks.
    pub fn add_node(&mut self, name: &str, op: Op, operands: &[Value], results: Vec<TensorType>) -> NodeId {
        self.index_pending_edit();
        let name = self.fresh_name(name);
        let weight = match &op {
            Op::Weight { name } => Some(NameIndex::hash(name)),
            _ => None,
        };
        let name_hash = NameIndex::hash(&name);
        let id = NodeId(self.g.add_node(Node { name, op, results }));
        self.by_name.insert(name_hash, id);
        if let Some(w) = weight {
            self.weight_nodes.insert(w, id);
        }
        for (i, v) in operands.iter().enumerate() {
            self.g.add_edge(v.node.0, id.0, Use { result: v.result, operand: i as u32 });
        }
        id
    }

    /// Appends a graph input.
    pub fn add_input(&mut self, name: &str, ty: TensorType) -> Value {
        let id = self.add_node(name, Op::Input, &[], vec![ty]);
        self.inputs.push(id);
        Value::of(id)
    }

    /// The node reading module weight `weight`, created on first use (one per weight per graph).
    pub fn weight_value(&mut self, weight: &str, ty: TensorType) -> Value {
        self.index_pending_edit();
        if let Some(id) = self.weight_node(weight) {
            return Value::of(id);
        }
        // Weight nodes are never printed by name; the `@` prefix keeps them out of the way of
        // `%names`.
        Value::of(self.add_node(&format!("@{weight}"), Op::Weight { name: weight.to_string() }, &[], vec![ty]))
    }

    /// The node reading module weight `weight`, if this graph has one.
    ///
    /// Constant time: when several nodes read it (the verifier rejects that), the one with the
    /// smallest index, as a scan in index order would find.
    pub fn weight_node(&self, weight: &str) -> Option<NodeId> {
        let is_it = |id: &NodeId| matches!(self.g.node_weight(id.0).map(|n| &n.op), Some(Op::Weight { name }) if name == weight);
        let indexed = self.weight_nodes.candidates(NameIndex::hash(weight));
        indexed.chain(self.pending_edit).filter(is_it).min_by_key(|id| id.0.index())
    }

    /// Indexes the node last handed out by [`Graph::node_mut`] if its op is now a `weight`
    /// read (its edits are complete: `&mut self` means the borrow ended).
    fn index_pending_edit(&mut self) {
        if let Some(id) = self.pending_edit.take() {
            if let Some(Op::Weight { name }) = self.g.node_weight(id.0).map(|n| &n.op) {
                let hash = NameIndex::hash(name);
                self.weight_nodes.insert(hash, id);
            }
        }
    }

    /// The module weight a value reads, if it is produced by a `weight` node.
    pub fn weight_name(&self, v: Value) -> Option<&str> {
        match &self.g.node_weight(v.node.0)?.op {
            Op::Weight { name } => Some(name),
            _ => None,
        }
    }

    /// Removes `id` if it is a `weight` node nothing reads any more; returns the weight name it
    /// read when it was removed.
    pub fn remove_if_unused_weight(&mut self, id: NodeId) -> Option<String> {
        let name = match &self.g.node_weight(id.0)?.op {
            Op::Weight { name } => name.clone(),
            _ => return None,
        };
        if self.use_count(Value::of(id)) > 0 {
            return None;
        }
        self.remove_node(id);
        Some(name)
    }

    /// The graph inputs, in order.
    pub fn inputs(&self) -> &[NodeId] {
        &self.inputs
    }

    /// The graph outputs, in order.
    pub fn outputs(&self) -> &[Value] {
        &self.outputs
    }

    /// Replaces the output list.
    pub fn set_outputs(&mut self, outputs: Vec<Value>) {
        self.outputs = outputs;
    }

    /// Replaces the input list (each must be an `input` node of this graph).
    pub fn set_inputs(&mut self, inputs: Vec<NodeId>) {
        self.inputs = inputs;
    }

    /// Whether `id` names a live node.
    pub fn contains(&self, id: NodeId) -> bool {
        self.g.contains_node(id.0)
    }

    /// The node. Panics on a removed id (a programming error, not user input).
    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id.0]
    }

    /// The node, mutably (op and result types; the name changes through [`Graph::rename`]).
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        self.index_pending_edit();
        self.pending_edit = Some(id);
        &mut self.g[id.0]
    }

    /// The node, if `id` is live.
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.g.node_weight(id.0)
    }

    /// Renames a node (made unique); returns the name it got.
    pub fn rename(&mut self, id: NodeId, name: &str) -> String {
        let old = self.g[id.0].name.clone();
        if old == name {
            return old;
        }
        self.by_name.remove(NameIndex::hash(&old), id);
        let new = self.fresh_name(name);
        self.by_name.insert(NameIndex::hash(&new), id);
        self.g[id.0].name = new.clone();
        new
    }

    /// Looks a node up by name.
    pub fn find(&self, name: &str) -> Option<NodeId> {
        let mut ids = self.by_name.candidates(NameIndex::hash(name));
        ids.find(|id| self.g.node_weight(id.0).is_some_and(|n| n.name == name))
    }

    /// Every live node id, in index order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.g.node_indices().map(NodeId)
    }

    /// The type of a value, if its node and result exist.
    pub fn value_type(&self, v: Value) -> Option<&TensorType> {
        self.g.node_weight(v.node.0)?.results.get(v.result as usize)
    }

    /// The operands of `id`, ordered by operand slot.
    pub fn operands(&self, id: NodeId) -> Vec<Value> {
        let mut e: Vec<(u32, Value)> = self
            .g
            .edges_directed(id.0, Direction::Incoming)
            .map(|e| (e.weight().operand, Value { node: NodeId(e.source()), result: e.weight().result }))
            .collect();
        e.sort_by_key(|(slot, _)| *slot);
        e.into_iter().map(|(_, v)| v).collect()
    }

    /// The operands of `id`, ordered by operand slot, as [`Graph::operands`] gives them but
    /// without a heap allocation for up to six operands (the common case: hot loops over
    /// every node should use this).
    pub fn operand_list(&self, id: NodeId) -> OperandList {
        let placeholder = Value { node: id, result: 0 };
        let mut slots = [(0u32, placeholder); INLINE_OPERANDS];
        let mut len = 0usize;
        for e in self.g.edges_directed(id.0, Direction::Incoming) {
            if len == INLINE_OPERANDS {
                return OperandList { inline: [placeholder; INLINE_OPERANDS], len: len + 1, heap: self.operands(id) };
            }
            let v = (e.weight().operand, Value { node: NodeId(e.source()), result: e.weight().result });
            // Insertion sort by slot, stable like the sort in `operands`.
            let mut i = len;
            while i > 0 && slots[i - 1].0 > v.0 {
                slots[i] = slots[i - 1];
                i -= 1;
            }
            slots[i] = v;
            len += 1;
        }
        let mut inline = [placeholder; INLINE_OPERANDS];
        for (dst, (_, v)) in inline.iter_mut().zip(&slots[..len]) {
            *dst = *v;
        }
        OperandList { inline, len, heap: Vec::new() }
    }

    /// The operands of `id` with their slots, in no particular order (no allocation; for
    /// scans that do not need the slot order).
    pub fn operand_edges(&self, id: NodeId) -> impl Iterator<Item = (u32, Value)> + '_ {
        self.g
            .edges_directed(id.0, Direction::Incoming)
            .map(|e| (e.weight().operand, Value { node: NodeId(e.source()), result: e.weight().result }))
    }

    /// The operand in slot `slot` of `id`.
    pub fn operand(&self, id: NodeId, slot: usize) -> Option<Value> {
        self.g
            .edges_directed(id.0, Direction::Incoming)
            .find(|e| e.weight().operand as usize == slot)
            .map(|e| Value { node: NodeId(e.source()), result: e.weight().result })
    }

    /// Raw operand slots of `id` (for the verifier: slot numbers may have gaps or repeats in a
    /// corrupt graph).
    pub fn operand_slots(&self, id: NodeId) -> Vec<u32> {
        let mut s: Vec<u32> = self.g.edges_directed(id.0, Direction::Incoming).map(|e| e.weight().operand).collect();
        s.sort_unstable();
        s
    }

    /// Replaces the operand in slot `slot` of `id` (adding it if absent).
    pub fn set_operand(&mut self, id: NodeId, slot: usize, v: Value) {
        let old: Vec<EdgeIndex<u32>> = self
            .g
            .edges_directed(id.0, Direction::Incoming)
            .filter(|e| e.weight().operand as usize == slot)
            .map(|e| e.id())
            .collect();
        for e in old {
            self.g.remove_edge(e);
        }
        self.g.add_edge(v.node.0, id.0, Use { result: v.result, operand: slot as u32 });
    }

    /// Replaces all operands of `id` with `operands`, in order.
    pub fn set_operands(&mut self, id: NodeId, operands: &[Value]) {
        let old: Vec<EdgeIndex<u32>> = self.g.edges_directed(id.0, Direction::Incoming).map(|e| e.id()).collect();
        for e in old {
            self.g.remove_edge(e);
        }
        for (i, v) in operands.iter().enumerate() {
            self.g.add_edge(v.node.0, id.0, Use { result: v.result, operand: i as u32 });
        }
    }

    /// Every `(consumer, operand slot)` reading `v`, sorted.
    pub fn uses(&self, v: Value) -> Vec<(NodeId, usize)> {
        let mut u: Vec<(NodeId, usize)> = self
            .g
            .edges_directed(v.node.0, Direction::Outgoing)
            .filter(|e| e.weight().result == v.result)
            .map(|e| (NodeId(e.target()), e.weight().operand as usize))
            .collect();
        u.sort();
        u
    }

    /// Distinct consumer nodes of any result of `id`, sorted.
    pub fn users(&self, id: NodeId) -> Vec<NodeId> {
        let mut u: Vec<NodeId> = self.g.neighbors_directed(id.0, Direction::Outgoing).map(NodeId).collect();
        u.sort();
        u.dedup();
        u
    }

    /// Number of reads of `v` by nodes plus its appearances among the graph outputs.
    pub fn use_count(&self, v: Value) -> usize {
        let reads = self.g.edges_directed(v.node.0, Direction::Outgoing).filter(|e| e.weight().result == v.result);
        reads.count() + self.outputs.iter().filter(|o| **o == v).count()
    }

    /// Distinct producer nodes of `id`'s operands.
    pub fn producers(&self, id: NodeId) -> Vec<NodeId> {
        let mut p: Vec<NodeId> = self.g.neighbors_directed(id.0, Direction::Incoming).map(NodeId).collect();
        p.sort();
        p.dedup();
        p
    }

    /// Redirects every read of `old` (operands and graph outputs) to `new`.
    pub fn replace_all_uses(&mut self, old: Value, new: Value) {
        for (user, slot) in self.uses(old) {
            self.set_operand(user, slot, new);
        }
        for o in &mut self.outputs {
            if *o == old {
                *o = new;
            }
        }
    }

    /// Removes a node and all its edges. Callers make sure nothing still reads it (the verifier
    /// reports dangling outputs); removing an input also drops it from the input list.
    pub fn remove_node(&mut self, id: NodeId) -> Option<Node> {
        self.index_pending_edit();
        let node = self.g.remove_node(id.0)?;
        self.by_name.remove(NameIndex::hash(&node.name), id);
        if let Op::Weight { name } = &node.op {
            self.weight_nodes.remove(NameIndex::hash(name), id);
        }
        self.inputs.retain(|i| *i != id);
        Some(node)
    }

    /// Number of incoming edges of every node, by node index (one sequential scan of the edges).
    fn in_edge_counts(&self) -> Vec<u32> {
        let mut indeg = vec![0u32; self.g.node_bound()];
        for e in self.g.edge_references() {
            if let Some(d) = indeg.get_mut(e.target().index()) {
                *d += 1;
            }
        }
        indeg
    }

    /// Consumes the edges leaving `n` in `indeg`; calls `ready` on every node whose last
    /// incoming edge that was.
    fn release(&self, n: NodeId, indeg: &mut [u32], mut ready: impl FnMut(NodeId)) {
        for u in self.g.neighbors_directed(n.0, Direction::Outgoing) {
            if let Some(d) = indeg.get_mut(u.index()) {
                *d -= 1;
                if *d == 0 {
                    ready(NodeId(u));
                }
            }
        }
    }

    /// The first node (by index) that Kahn's algorithm could not reach, i.e. on or below a
    /// cycle.
    fn stuck(&self, indeg: &[u32]) -> Option<NodeId> {
        self.node_ids().find(|n| indeg.get(n.index()).is_some_and(|d| *d > 0))
    }

    /// A deterministic topological order (Kahn's algorithm, smallest node index first among
    /// ready nodes), or the first node found on a cycle.
    ///
    /// Linear apart from the heap of nodes released by their last producer: the nodes ready
    /// from the start (inputs and weight reads, most of a graph) are already in index order and
    /// are merged with that heap instead of being pushed into it. Edges are counted with their
    /// multiplicity: a node is released when its last incoming edge is consumed, i.e. when its
    /// last distinct producer is ordered.
    pub fn topo_order(&self) -> Result<Vec<NodeId>, CycleAt> {
        use std::cmp::Reverse;
        let mut indeg = self.in_edge_counts();
        let initial: Vec<NodeId> = self.node_ids().filter(|n| indeg.get(n.index()) == Some(&0)).collect();
        let mut next_initial = 0usize;
        let mut released: BinaryHeap<Reverse<NodeId>> = BinaryHeap::new();
        let mut order = Vec::with_capacity(self.len());
        loop {
            let from_initial = initial.get(next_initial).copied();
            let n = match (from_initial, released.peek()) {
                (Some(a), Some(Reverse(b))) if *b < a => released.pop().map(|Reverse(b)| b),
                (Some(a), _) => {
                    next_initial += 1;
                    Some(a)
                }
                (None, Some(_)) => released.pop().map(|Reverse(b)| b),
                (None, None) => None,
            };
            let Some(n) = n else { break };
            order.push(n);
            self.release(n, &mut indeg, |u| released.push(Reverse(u)));
        }
        match self.stuck(&indeg) {
            Some(stuck) => Err(CycleAt(stuck)),
            None => Ok(order),
        }
    }

    /// Whether the graph is acyclic, with the same error as [`Graph::topo_order`] (the first
    /// node, by index, on or below a cycle) but without building the order.
    pub fn check_acyclic(&self) -> Result<(), CycleAt> {
        let mut indeg = self.in_edge_counts();
        let mut ready: Vec<NodeId> = self.node_ids().filter(|n| indeg.get(n.index()) == Some(&0)).collect();
        while let Some(n) = ready.pop() {
            self.release(n, &mut indeg, |u| ready.push(u));
        }
        match self.stuck(&indeg) {
            Some(stuck) => Err(CycleAt(stuck)),
            None => Ok(()),
        }
    }
}
