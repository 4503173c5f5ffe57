//! Channel dependency analysis for structured pruning.
//!
//! Every channel of every activation is described by a *channel reference*: an element of a
//! union-find. Each `conv2d` (groups = 1), `gemm` and `matmul` with constant weights creates a
//! *source space*: one fresh reference per output channel. Other values reuse the references of
//! their operands (a relu's output channel `i` is its input's channel `i`), concatenate them
//! (`concat` on the channel axis), repeat them (`flatten` of NCHW into contiguous feature blocks,
//! depthwise convs with a channel multiplier), or union them (both operands of a residual `add`
//! must keep the same channels). A union-find class is a *channel group*: removing it removes
//! every position, in every value, that holds one of its references, and the weight slices that
//! read or write those positions.
//!
//! A group is *frozen* (never pruned) when one of its references reaches something whose channel
//! semantics are unknown or must not change: a graph input or output, a custom op, a softmax
//! over channels, a transpose, a quantized tensor, a non-constant weight operand, a grouped (not
//! depthwise) conv, a reshape that mixes channels with other axes, ...
//!
//! The analysis also records the *sites* the rewrite must touch: weight operands to slice along
//! an axis, depthwise convs whose `groups` follows their input, reshapes whose target shape
//! follows their output.

use clio::ir::{Graph, Module, NodeId, Op, Value};
use rustc_hash::FxHashMap;
use std::rc::Rc;

/// A channel reference (an element of the union-find).
pub type Ref = u32;

/// The channel references of one value's axis 1, position by position.
pub type Map = Rc<Vec<Ref>>;

/// Union-find over channel references, with a frozen reason per class.
#[derive(Default)]
pub struct UnionFind {
    parent: Vec<Ref>,
    frozen: Vec<Option<&'static str>>,
}

impl UnionFind {
    fn add(&mut self, n: usize) -> Ref {
        let first = self.parent.len() as Ref;
        for i in 0..n {
            self.parent.push(first + i as Ref);
            self.frozen.push(None);
        }
        first
    }

    /// The class representative of `r`.
    pub fn find(&mut self, r: Ref) -> Ref {
        let mut root = r;
        while self.parent[root as usize] != root {
            root = self.parent[root as usize];
        }
        let mut x = r;
        while self.parent[x as usize] != root {
            let next = self.parent[x as usize];
            self.parent[x as usize] = root;
            x = next;
        }
        root
    }

    fn union(&mut self, a: Ref, b: Ref) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        let (keep, gone) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[gone as usize] = keep;
        if self.frozen[keep as usize].is_none() {
            self.frozen[keep as usize] = self.frozen[gone as usize];
        }
    }

    fn freeze(&mut self, r: Ref, why: &'static str) {
        let root = self.find(r);
        if self.frozen[root as usize].is_none() {
            self.frozen[root as usize] = Some(why);
        }
    }

    /// Why the class of `r` is frozen, if it is.
    pub fn frozen(&mut self, r: Ref) -> Option<&'static str> {
        let root = self.find(r);
        self.frozen[root as usize]
    }

    /// Number of references.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// True when there is no reference.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }
}

/// A block of fresh references created by one node.
#[derive(Clone, Debug)]
pub struct Space {
    /// The node whose output channels these are.
    pub node: NodeId,
    /// First reference; the space holds `first .. first + len`.
    pub first: Ref,
    /// Number of channels.
    pub len: usize,
    /// True for prunable producers (conv2d with groups = 1, gemm, matmul with constant weights);
    /// false for graph inputs and results of ops with unknown channel semantics (always frozen).
    pub source: bool,
}

/// What the rewrite changes at one place.
#[derive(Clone, Debug)]
pub enum Site {
    /// Slice weight operand `slot` of `node` along `axis`, keeping the positions of `map` whose
    /// group survives (`map.len()` equals the axis length, or `map` is repeated over it).
    Weight {
        /// The reading node.
        node: NodeId,
        /// Its operand slot.
        slot: usize,
        /// The weight axis.
        axis: usize,
        /// The channel map of that axis.
        map: Map,
    },
    /// A depthwise conv: `groups` becomes the surviving channel count of its input `map`.
    Groups {
        /// The conv.
        node: NodeId,
        /// Its input's channel map.
        map: Map,
    },
    /// A reshape whose target dimension 1 becomes the surviving length of its output `map`.
    Reshape {
        /// The reshape.
        node: NodeId,
        /// Its output's map.
        map: Map,
    },
}

/// The result of the analysis of one graph.
pub struct Analysis {
    /// The channel groups.
    pub uf: UnionFind,
    /// The spaces, in creation (topological) order.
    pub spaces: Vec<Space>,
    /// Space of each reference (index into `spaces`).
    pub space_of: Vec<u32>,
    /// Channel map of each activation value of rank >= 2.
    pub maps: FxHashMap<Value, Map>,
    /// The places the rewrite touches.
    pub sites: Vec<Site>,
}

/// An f32, unquantized module weight read by operand `v`, with its shape.
fn const_weight(m: &Module, g: &Graph, v: Value) -> Option<Vec<usize>> {
    let w = m.weight(g.weight_name(v)?)?;
    if w.quant.is_some() {
        return None;
    }
    w.data().as_f32()?;
    Some(w.data().shape().to_vec())
}

impl Analysis {
    fn new_space(&mut self, node: NodeId, len: usize, source: bool, why: &'static str) -> Map {
        let first = self.uf.add(len);
        let idx = self.spaces.len() as u32;
        self.spaces.push(Space { node, first, len, source });
        self.space_of.extend(std::iter::repeat_n(idx, len));
        let map: Vec<Ref> = (0..len).map(|i| first + i as Ref).collect();
        if !source {
            for r in &map {
                self.uf.freeze(*r, why);
            }
        }
        Rc::new(map)
    }

    fn freeze_map(&mut self, map: &Map, why: &'static str) {
        for r in map.iter() {
            self.uf.freeze(*r, why);
        }
    }

    fn union_maps(&mut self, a: &Map, b: &Map) {
        for (x, y) in a.iter().zip(b.iter()) {
            self.uf.union(*x, *y);
        }
    }

    /// Runs the analysis over `g`.
    pub fn run(m: &Module, g: &Graph) -> Result<Analysis, String> {
        let order = g.topo_order().map_err(|c| format!("@{}: cycle at node {}", g.name(), c.0))?;
        let mut a = Analysis {
            uf: UnionFind::default(),
            spaces: vec![],
            space_of: vec![],
            maps: FxHashMap::default(),
            sites: vec![],
        };
        for id in order {
            a.node(m, g, id);
        }
        for o in g.outputs() {
            if let Some(map) = a.maps.get(o).cloned() {
                a.freeze_map(&map, "graph output");
            }
        }
        Ok(a)
    }

    fn map(&self, v: Value) -> Option<Map> {
        self.maps.get(&v).cloned()
    }

    /// Default rule: freeze every operand map, give every result a fresh frozen space.
    fn opaque(&mut self, g: &Graph, id: NodeId, why: &'static str) {
        for &v in g.operand_list(id).iter() {
            if let Some(map) = self.map(v) {
                self.freeze_map(&map, why);
            }
        }
        let n = g.node(id);
        for (r, t) in n.results.iter().enumerate() {
            if t.rank() >= 2 {
                let map = self.new_space(id, t.shape[1], false, why);
                self.maps.insert(Value { node: id, result: r as u32 }, map);
            }
        }
    }

    fn pass(&mut self, id: NodeId, map: Map) {
        self.maps.insert(Value::of(id), map);
    }

    fn node(&mut self, m: &Module, g: &Graph, id: NodeId) {
        let n = g.node(id);
        let ops = g.operand_list(id);
        let out_rank = n.results.first().map(|t| t.rank()).unwrap_or(0);
        let x = ops.first().and_then(|v| self.map(*v));
        // Quantized activations keep their channels (per-channel parameters would need slicing).
        if n.results.iter().any(|t| t.quant.is_some())
            || ops.iter().any(|v| g.value_type(*v).is_some_and(|t| t.quant.is_some()))
        {
            return self.opaque(g, id, "quantized tensor");
        }
        match &n.op {
            Op::Input => {
                if out_rank >= 2 {
                    let map = self.new_space(id, n.ty().shape[1], false, "graph input");
                    self.pass(id, map);
                }
            }
            Op::Weight { .. } => {}
            Op::Conv2d(c) => {
                let (Some(v1), ty) = (ops.get(1), n.ty()) else { return self.opaque(g, id, "conv2d without filter") };
                let Some(wshape) = const_weight(m, g, *v1) else {
                    return self.opaque(g, id, "conv2d filter is not a constant f32 weight");
                };
                if ops.get(2).is_some_and(|b| const_weight(m, g, *b).is_none()) {
                    return self.opaque(g, id, "conv2d bias is not a constant f32 weight");
                }
                let cin = g.value_type(ops[0]).map(|t| t.shape[1]).unwrap_or(0);
                let out = ty.shape[1];
                let has_bias = ops.len() > 2;
                if c.groups == 1 {
                    let om = self.new_space(id, out, true, "");
                    if let Some(xm) = &x {
                        self.sites.push(Site::Weight { node: id, slot: 1, axis: 1, map: xm.clone() });
                    }
                    self.sites.push(Site::Weight { node: id, slot: 1, axis: 0, map: om.clone() });
                    if has_bias {
                        self.sites.push(Site::Weight { node: id, slot: 2, axis: 0, map: om.clone() });
                    }
                    self.pass(id, om);
                } else if c.is_depthwise(cin) && wshape[1] == 1 && out % cin == 0 {
                    // Depthwise: output channel j reads input channel j / multiplier.
                    let Some(xm) = x else { return self.opaque(g, id, "depthwise conv on a constant") };
                    let mult = out / cin;
                    let om: Map = Rc::new(xm.iter().flat_map(|r| std::iter::repeat_n(*r, mult)).collect());
                    self.sites.push(Site::Weight { node: id, slot: 1, axis: 0, map: om.clone() });
                    if has_bias {
                        self.sites.push(Site::Weight { node: id, slot: 2, axis: 0, map: om.clone() });
                    }
                    self.sites.push(Site::Groups { node: id, map: xm });
                    self.pass(id, om);
                } else {
                    self.opaque(g, id, "grouped conv2d")
                }
            }
            Op::Gemm(gm) => {
                let b = ops.get(1).and_then(|v| const_weight(m, g, *v));
                let c = ops.get(2).map(|v| const_weight(m, g, *v));
                let n_out = n.ty().shape[1];
                let c_ok = match &c {
                    None => true,
                    Some(Some(s)) => s.last().is_some_and(|d| *d == n_out || *d == 1),
                    Some(None) => false,
                };
                if gm.trans_a || b.is_none() || !c_ok {
                    return self.opaque(g, id, "gemm with transposed A, non-constant B or an unsupported C");
                }
                let om = self.new_space(id, n_out, true, "");
                let (k_axis, n_axis) = if gm.trans_b { (1, 0) } else { (0, 1) };
                if let Some(xm) = &x {
                    self.sites.push(Site::Weight { node: id, slot: 1, axis: k_axis, map: xm.clone() });
                }
                self.sites.push(Site::Weight { node: id, slot: 1, axis: n_axis, map: om.clone() });
                if let Some(Some(s)) = &c {
                    if s.last() == Some(&n_out) && n_out != 1 {
                        self.sites.push(Site::Weight { node: id, slot: 2, axis: s.len() - 1, map: om.clone() });
                    }
                }
                self.pass(id, om);
            }
            Op::MatMul => {
                let a_rank = ops.first().and_then(|v| g.value_type(*v)).map(|t| t.rank()).unwrap_or(0);
                let b = ops.get(1).and_then(|v| const_weight(m, g, *v));
                if a_rank != 2 || b.as_ref().is_none_or(|s| s.len() != 2) {
                    return self.opaque(g, id, "matmul other than 2-D activations times a constant matrix");
                }
                let om = self.new_space(id, n.ty().shape[1], true, "");
                if let Some(xm) = &x {
                    self.sites.push(Site::Weight { node: id, slot: 1, axis: 0, map: xm.clone() });
                }
                self.sites.push(Site::Weight { node: id, slot: 1, axis: 1, map: om.clone() });
                self.pass(id, om);
            }
            Op::BatchNorm(_) | Op::ScaleShift => {
                let Some(xm) = x else { return self.opaque(g, id, "normalisation of a constant") };
                let c = xm.len();
                if ops[1..].iter().any(|v| const_weight(m, g, *v).as_deref() != Some(&[c][..])) {
                    return self.opaque(g, id, "normalisation parameters are not constant f32 weights");
                }
                for slot in 1..ops.len() {
                    self.sites.push(Site::Weight { node: id, slot, axis: 0, map: xm.clone() });
                }
                self.pass(id, xm);
            }
            Op::Relu
            | Op::Clip(_)
            | Op::Sigmoid
            | Op::HardSigmoid(_)
            | Op::HardSwish
            | Op::MaxPool(_)
            | Op::AvgPool(_)
            | Op::GlobalAvgPool => match x {
                Some(xm) if out_rank >= 2 => self.pass(id, xm),
                _ => self.opaque(g, id, "elementwise op on a constant"),
            },
            Op::PRelu | Op::Add | Op::Sub | Op::Mul | Op::Div => self.binary(m, g, id),
            Op::Concat(c) => {
                let mut maps = vec![];
                for v in &ops {
                    match self.map(*v) {
                        Some(mp) if g.value_type(*v).map(|t| t.rank()) == Some(out_rank) => maps.push(mp),
                        _ => return self.opaque(g, id, "concat of constants or mixed ranks"),
                    }
                }
                if c.axis == 1 {
                    let cat: Vec<Ref> = maps.iter().flat_map(|mp| mp.iter().copied()).collect();
                    self.pass(id, Rc::new(cat));
                } else {
                    for mp in &maps[1..] {
                        let first = maps[0].clone();
                        self.union_maps(&first, mp);
                    }
                    self.pass(id, maps[0].clone());
                }
            }
            Op::Pad(p) => {
                let r = g.value_type(ops[0]).map(|t| t.rank()).unwrap_or(0);
                match x {
                    Some(xm) if r >= 2 && p.pads[0] == 0 && p.pads[1] == 0 && p.pads[r] == 0 && p.pads[r + 1] == 0 => {
                        self.pass(id, xm)
                    }
                    _ => self.opaque(g, id, "pad of the batch or channel axis"),
                }
            }
            Op::Flatten(f) => {
                let in_shape = g.value_type(ops[0]).map(|t| t.shape.clone()).unwrap_or_default();
                match x {
                    Some(xm) if f.axis == 1 => {
                        let block: usize = in_shape[2..].iter().product();
                        self.pass(id, repeat(&xm, block));
                    }
                    _ => self.opaque(g, id, "flatten other than from axis 1"),
                }
            }
            Op::Reshape(r) => {
                let in_shape = g.value_type(ops[0]).map(|t| t.shape.clone()).unwrap_or_default();
                let Some(xm) = x else { return self.opaque(g, id, "reshape of a constant") };
                let t = &r.shape;
                if t.len() == 2 && t[0] == in_shape[0] {
                    let block: usize = in_shape[2..].iter().product();
                    let om = repeat(&xm, block);
                    self.sites.push(Site::Reshape { node: id, map: om.clone() });
                    self.pass(id, om);
                } else if t.len() >= 2 && t[0] == in_shape[0] && t[1] == in_shape[1] {
                    self.sites.push(Site::Reshape { node: id, map: xm.clone() });
                    self.pass(id, xm);
                } else {
                    self.opaque(g, id, "reshape that mixes the channel axis with others")
                }
            }
            Op::Squeeze(s) => match x {
                Some(xm) if out_rank >= 2 && !s.axes.contains(&0) && !s.axes.contains(&1) => self.pass(id, xm),
                _ => self.opaque(g, id, "squeeze of the batch or channel axis"),
            },
            Op::Unsqueeze(u) => match x {
                Some(xm) if !u.axes.contains(&0) && !u.axes.contains(&1) => self.pass(id, xm),
                _ => self.opaque(g, id, "unsqueeze before the channel axis"),
            },
            Op::Transpose(t) => match x {
                Some(xm) if t.perm.len() >= 2 && t.perm[0] == 0 && t.perm[1] == 1 => self.pass(id, xm),
                _ => self.opaque(g, id, "transpose moving the channel axis"),
            },
            Op::Softmax(s) => match x {
                Some(xm) if s.axis != 1 && out_rank >= 2 => self.pass(id, xm),
                _ => self.opaque(g, id, "softmax over the channel axis"),
            },
            Op::ChannelSlice(s) => match x {
                Some(xm) if s.axis != 1 => self.pass(id, xm),
                _ => self.opaque(g, id, "channel_slice"),
            },
            Op::Transmit(_) => self.opaque(g, id, "transmit to another graph"),
            Op::Custom(_) => self.opaque(g, id, "custom op"),
            _ => self.opaque(g, id, "op with unknown channel semantics"),
        }
    }

    /// `add`/`sub`/`mul`/`div`/`prelu`: activations of the output's rank are unioned position by
    /// position (or frozen when they broadcast over channels); constant weights with a channel
    /// axis are sliced along it.
    fn binary(&mut self, m: &Module, g: &Graph, id: NodeId) {
        let n = g.node(id);
        let out = n.ty().shape.clone();
        if out.len() < 2 {
            return self.opaque(g, id, "elementwise op on rank < 2");
        }
        let c = out[1];
        let ops = g.operand_list(id);
        let mut result: Option<Map> = None;
        let mut broadcast: Vec<Map> = vec![];
        let mut consts: Vec<(usize, usize)> = vec![];
        for (slot, v) in ops.iter().enumerate() {
            let Some(ty) = g.value_type(*v) else { return self.opaque(g, id, "dangling operand") };
            if g.weight_name(*v).is_some() {
                if const_weight(m, g, *v).is_none() {
                    return self.opaque(g, id, "non-f32 constant operand");
                }
                // Right-aligned broadcast: the constant's axis facing the channel axis.
                let shift = out.len() - ty.rank().min(out.len());
                if ty.rank() + shift == out.len() && shift <= 1 {
                    let axis = 1 - shift;
                    match ty.shape[axis] {
                        d if d == c && c != 1 => consts.push((slot, axis)),
                        1 => {}
                        _ => return self.opaque(g, id, "constant operand with an odd channel axis"),
                    }
                }
                continue;
            }
            let Some(mp) = self.map(*v) else { return self.opaque(g, id, "operand without channel map") };
            if ty.rank() != out.len() {
                return self.opaque(g, id, "elementwise op on mixed ranks");
            }
            if ty.shape[1] != c {
                broadcast.push(mp);
                continue;
            }
            match &result {
                None => result = Some(mp),
                Some(r) => {
                    let r = r.clone();
                    self.union_maps(&r, &mp);
                }
            }
        }
        let Some(result) = result else { return self.opaque(g, id, "elementwise op without a full-width operand") };
        for b in broadcast {
            self.freeze_map(&b, "broadcast over channels");
        }
        for (slot, axis) in consts {
            self.sites.push(Site::Weight { node: id, slot, axis, map: result.clone() });
        }
        self.pass(id, result);
    }
}

/// Each reference repeated `block` times (flattening channels into contiguous feature blocks).
fn repeat(map: &Map, block: usize) -> Map {
    if block == 1 {
        return map.clone();
    }
    Rc::new(map.iter().flat_map(|r| std::iter::repeat_n(*r, block)).collect())
}
