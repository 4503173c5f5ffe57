//! [`Module`]: named graphs plus the weight table they share.

use super::{all_finite, AttrMap, Graph, Quant, Tensor, TensorType};
use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;
use std::sync::{Arc, OnceLock};

/// A named tensor in the module's weight table. Data is reference-counted, so cloning a module
/// (e.g. to compare before and after a pass) does not copy weights; writers copy on write.
#[derive(Clone, Debug)]
pub struct Weight {
    data: Arc<Tensor>,
    /// Quantization parameters when the data are quantized integers.
    pub quant: Option<Quant>,
    /// Whether `data` holds only finite values, once [`Weight::is_finite`] was asked; every
    /// write to the data goes through `&mut self` and clears it. The verifier asks after every
    /// pass, and most passes leave most weights alone.
    finite: OnceLock<bool>,
}

impl PartialEq for Weight {
    fn eq(&self, other: &Weight) -> bool {
        self.data == other.data && self.quant == other.quant
    }
}

impl Weight {
    /// A weight without quantization.
    pub fn new(data: Tensor) -> Weight {
        Weight { data: Arc::new(data), quant: None, finite: OnceLock::new() }
    }

    /// A quantized weight.
    pub fn quantized(data: Tensor, quant: Quant) -> Weight {
        Weight { data: Arc::new(data), quant: Some(quant), finite: OnceLock::new() }
    }

    /// The data.
    pub fn data(&self) -> &Tensor {
        &self.data
    }

    /// The shared data handle.
    pub fn shared(&self) -> &Arc<Tensor> {
        &self.data
    }

    /// Mutable data (copied first if shared).
    pub fn data_mut(&mut self) -> &mut Tensor {
        self.finite.take();
        Arc::make_mut(&mut self.data)
    }

    /// Replaces the data (no copy of the old or the new data).
    pub fn set_data(&mut self, data: Tensor) {
        self.finite.take();
        self.data = Arc::new(data);
    }

    /// Records that the data are known to be finite (the caller has just checked them), so the
    /// verifier does not scan them again.
    pub(crate) fn known_finite(self) -> Weight {
        let _ = self.finite.set(true);
        self
    }

    /// Whether every element is finite (integer data always are). Scanned once per version of
    /// the data: the answer is kept until the data are written.
    pub fn is_finite(&self) -> bool {
        *self.finite.get_or_init(|| self.data.as_f32().is_none_or(all_finite))
    }

    /// The tensor type a `weight` node reading this weight must have.
    pub fn ty(&self) -> TensorType {
        TensorType { shape: self.data.shape().to_vec(), dtype: self.data.dtype(), quant: self.quant.clone() }
    }

    /// Whether `ty` equals [`Weight::ty`] (without building that type).
    pub fn has_type(&self, ty: &TensorType) -> bool {
        ty.shape == self.data.shape() && ty.dtype == self.data.dtype() && ty.quant == self.quant
    }
}

/// The module's weight table: weights by name, in insertion order (printing order). Hashed with
/// FxHash: passes look weights up by name for every weight read, and SipHash's DoS resistance
/// buys nothing for names the module itself holds.
pub type WeightMap = IndexMap<String, Weight, FxBuildHasher>;

/// A compilation unit: one or more graphs (`@main`; after partitioning `@device` and one or
/// more cloud graphs) and the weights they reference by name.
#[derive(Clone, Debug, Default)]
pub struct Module {
    /// Module name (`@name` in the text format).
    pub name: String,
    /// Free-form metadata printed in the module header (source file, producer ...).
    pub attrs: AttrMap,
    graphs: IndexMap<String, Graph>,
    weights: WeightMap,
}

impl Module {
    /// An empty module.
    pub fn new(name: impl Into<String>) -> Module {
        Module { name: name.into(), ..Default::default() }
    }

    /// Adds (or replaces) a graph under its own name.
    pub fn add_graph(&mut self, graph: Graph) {
        self.graphs.insert(graph.name().to_string(), graph);
    }

    /// Removes a graph.
    pub fn remove_graph(&mut self, name: &str) -> Option<Graph> {
        self.graphs.shift_remove(name)
    }

    /// Renames a graph, keeping its position.
    pub fn rename_graph(&mut self, old: &str, new: &str) -> bool {
        let Some(idx) = self.graphs.get_index_of(old) else { return false };
        if self.graphs.contains_key(new) {
            return false;
        }
        let Some(mut g) = self.graphs.shift_remove(old) else { return false };
        g.set_name(new.to_string());
        self.graphs.insert(new.to_string(), g);
        let last = self.graphs.len() - 1;
        self.graphs.move_index(last, idx);
        true
    }

    /// A graph by name.
    pub fn graph(&self, name: &str) -> Option<&Graph> {
        self.graphs.get(name)
    }

    /// A graph by name, mutably.
    pub fn graph_mut(&mut self, name: &str) -> Option<&mut Graph> {
        self.graphs.get_mut(name)
    }

    /// All graphs in order.
    pub fn graphs(&self) -> impl Iterator<Item = &Graph> {
        self.graphs.values()
    }

    /// All graphs in order, mutably.
    pub fn graphs_mut(&mut self) -> impl Iterator<Item = &mut Graph> {
        self.graphs.values_mut()
    }

    /// Graph names in order.
    pub fn graph_names(&self) -> Vec<String> {
        self.graphs.keys().cloned().collect()
    }

    /// The first graph (the model itself before partitioning).
    pub fn main_graph(&self) -> Option<&Graph> {
        self.graphs.values().next()
    }

    /// Split borrow: a graph mutably and the weight table mutably at once (for passes that
    /// rewrite both).
    pub fn graph_and_weights_mut(&mut self, name: &str) -> Option<(&mut Graph, &mut WeightMap)> {
        let g = self.graphs.get_mut(name)?;
        Some((g, &mut self.weights))
    }

    /// The weight table.
    pub fn weights(&self) -> &WeightMap {
        &self.weights
    }

    /// The weight table, mutably.
    pub fn weights_mut(&mut self) -> &mut WeightMap {
        &mut self.weights
    }

    /// A weight by name.
    pub fn weight(&self, name: &str) -> Option<&Weight> {
        self.weights.get(name)
    }

    /// A name not used by any weight, derived from `base`.
    pub fn fresh_weight_name(&self, base: &str) -> String {
        if !self.weights.contains_key(base) {
            return base.to_string();
        }
        (1..).map(|i| format!("{base}.{i}")).find(|n| !self.weights.contains_key(n)).unwrap_or_default()
    }

    /// Adds a weight under a fresh name derived from `name`; returns the name used.
    pub fn add_weight(&mut self, name: &str, weight: Weight) -> String {
        let name = self.fresh_weight_name(name);
        self.weights.insert(name.clone(), weight);
        name
    }

    /// Inserts or replaces the weight called `name`.
    pub fn set_weight(&mut self, name: &str, weight: Weight) {
        self.weights.insert(name.to_string(), weight);
    }

    /// How many operand slots, over all graphs, read weight `name` (graph outputs included).
    pub fn weight_use_count(&self, name: &str) -> usize {
        self.graphs().filter_map(|g| g.weight_node(name).map(|id| g.use_count(super::Value::of(id)))).sum()
    }

    /// Removes weight `name` if no graph has a node reading it; returns whether it was removed.
    pub fn remove_weight_if_unread(&mut self, name: &str) -> bool {
        if self.graphs().any(|g| g.weight_node(name).is_some()) {
            return false;
        }
        self.weights.shift_remove(name).is_some()
    }

    /// Removes every weight of `names` that no graph has a node reading, in one pass over the
    /// weight table (removing weights one by one with [`Module::remove_weight_if_unread`] shifts
    /// the table each time: quadratic for passes that drop many weights). Returns how many were
    /// removed; the others keep their order.
    pub fn remove_weights_if_unread<S: AsRef<str>>(&mut self, names: impl IntoIterator<Item = S>) -> usize {
        // Dead weights by index in the table (no set of names to build and hash again).
        let mut dead = vec![false; self.weights.len()];
        let mut any = false;
        for n in names {
            let n = n.as_ref();
            if let Some(i) = self.weights.get_index_of(n) {
                if !self.graphs().any(|g| g.weight_node(n).is_some()) {
                    if let Some(d) = dead.get_mut(i) {
                        *d = true;
                        any = true;
                    }
                }
            }
        }
        if !any {
            return 0;
        }
        let before = self.weights.len();
        // `retain` visits the entries in order.
        let mut i = 0;
        self.weights.retain(|_, _| {
            let keep = !dead.get(i).copied().unwrap_or(false);
            i += 1;
            keep
        });
        before - self.weights.len()
    }

    /// Removes a weight (graphs still referring to it fail verification).
    pub fn remove_weight(&mut self, name: &str) -> Option<Weight> {
        self.weights.shift_remove(name)
    }
}
