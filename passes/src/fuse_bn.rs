//! `fuse-bn`: fold inference-mode batch normalisation into the producing convolution or gemm.
//!
//! Matches: `batch_norm(x, gamma, beta, mean, var) {epsilon}` whose four parameters are f32
//! module weights.
//! * When `x` is produced by a `conv2d` (plain, grouped or depthwise) or a `gemm` with constant
//!   f32 weights, and nothing else reads `x`, the batch norm is folded into the producer:
//!   with `s = gamma / sqrt(var + eps)`, `w'[c] = w[c] * s[c]` and
//!   `b'[c] = (b[c] - mean[c]) * s[c] + beta[c]` (a bias is created where there was none; for
//!   gemm, `alpha` and `beta` are folded too). Arithmetic is done in f64 and rounded once.
//! * When `x` comes from anything else (an `add`, a graph input, ...), the batch norm becomes
//!   `scale_shift(x, s, beta - mean * s)`, a per-channel affine the backends lower
//!   (option `standalone=keep` leaves it alone instead).
//! * A batch norm whose producer has other readers, or whose producer is not foldable
//!   (non-constant or quantized weights, an unsupported gemm bias shape), is left alone and
//!   counted in a `left-*` statistic; a remark names it.
//!
//! Produces: the producer with rewritten weights (updated in place when nothing else reads
//! them, copied to a fresh weight otherwise); the batch norm and its now-unread parameters are
//! removed. Preconditions: none. Idempotent.
//!
//! ```text
//! %c = conv2d(%x, @w) {...} : tensor<1x8x4x4xf32>                 %c = conv2d(%x, @w, @c.bias) {...} : tensor<1x8x4x4xf32>
//! %bn = batch_norm(%c, @g, @b, @m, @v) {epsilon = 1e-5} : ... =>  return %c
//! return %bn
//! ```

use clio::ir::{Graph, Module, NodeId, Op, Tensor, Value, Weight};
use clio::pass::{OptionInfo, OptionKind, Pass, PassContext, PassError, PassInfo, PassOptions, PassRegistry, StatInfo};

/// Declaration of `fuse-bn`.
pub static INFO: PassInfo = PassInfo {
    name: "fuse-bn",
    summary: "Fold batch_norm into the preceding conv2d/gemm; turn other batch norms into scale_shift",
    options: &[OptionInfo {
        name: "standalone",
        kind: OptionKind::Enum(&["scale-shift", "keep"]),
        default: Some("scale-shift"),
        help: "what to do with a batch norm that has no foldable producer (after an add, on an input)",
    }],
    statistics: &[
        StatInfo { name: "fused-conv", help: "batch norms folded into a conv2d" },
        StatInfo { name: "fused-gemm", help: "batch norms folded into a gemm" },
        StatInfo { name: "to-scale-shift", help: "batch norms without a foldable producer turned into scale_shift" },
        StatInfo { name: "left-shared-producer", help: "left alone: the producer's result has other readers" },
        StatInfo {
            name: "left-not-foldable",
            help: "left alone: non-constant or non-f32 parameters or producer weights",
        },
        StatInfo { name: "weights-copied", help: "producer weights copied because other nodes also read them" },
    ],
};

/// Registers `fuse-bn`.
pub fn register(reg: &mut PassRegistry) {
    reg.register(&INFO, |o: &PassOptions| {
        Ok(Box::new(FuseBn { standalone_to_scale_shift: o.str("standalone")? == "scale-shift", dead_weights: vec![] }))
    });
}

/// The `fuse-bn` pass.
pub struct FuseBn {
    standalone_to_scale_shift: bool,
    /// Weights whose last reader went away during this run, removed together at its end.
    dead_weights: Vec<String>,
}

impl FuseBn {
    /// An instance with default options.
    pub fn new() -> Self {
        FuseBn { standalone_to_scale_shift: true, dead_weights: vec![] }
    }
}

impl Default for FuseBn {
    fn default() -> Self {
        Self::new()
    }
}

/// Per-channel `s` and `t` of `y = x * s + t`, in f64.
struct Affine {
    scale: Vec<f64>,
    shift: Vec<f64>,
}

/// Reads the batch norm's parameters; `None` if any is not an f32 weight of the right length.
fn bn_affine(m: &Module, g: &Graph, bn: NodeId, eps: f32) -> Option<Affine> {
    let ops = g.operand_list(bn);
    let mut p: Vec<&[f32]> = Vec::with_capacity(4);
    for v in ops.get(1..5)? {
        let w = m.weight(g.weight_name(*v)?)?;
        if w.quant.is_some() {
            return None;
        }
        p.push(w.data().as_f32()?);
    }
    let c = p[0].len();
    if p.iter().any(|x| x.len() != c) {
        return None;
    }
    let scale: Vec<f64> = (0..c).map(|i| p[0][i] as f64 / (p[3][i] as f64 + eps as f64).sqrt()).collect();
    let shift: Vec<f64> = (0..c).map(|i| p[1][i] as f64 - p[2][i] as f64 * scale[i]).collect();
    Some(Affine { scale, shift })
}

/// Applies `edit` to the weight read by `user`'s operand `slot`: in place when that read is the
/// weight's only one, else to a copy, a fresh weight that the operand switches to.
fn rewrite_weight(
    m: &mut Module,
    graph: &str,
    user: NodeId,
    slot: usize,
    edit: FilterEdit,
    cx: &mut PassContext,
) -> Option<()> {
    let g = m.graph(graph)?;
    let v = g.operand(user, slot)?;
    let name = g.weight_name(v)?.to_string();
    let exclusive = m.weight_use_count(&name) == 1;
    if exclusive {
        let w = m.weights_mut().get_mut(&name)?;
        return match edit {
            // No copy of the old data, even when a clone of the module still shares them.
            FilterEdit::Replace(new) => {
                w.set_data(new);
                Some(())
            }
            scale => scale.apply(w.data_mut()),
        };
    }
    let mut data = m.weight(&name)?.data().clone();
    edit.apply(&mut data)?;
    cx.stat("weights-copied", 1);
    let new = m.add_weight(&format!("{name}.fused"), Weight::new(data));
    let ty = m.weight(&new)?.ty();
    let g = m.graph_mut(graph)?;
    let nv = g.weight_value(&new, ty);
    g.set_operand(user, slot, nv);
    if let Some(old) = g.weight_node(&name) {
        g.remove_if_unused_weight(old);
    }
    Some(())
}

fn f32_weight<'m>(m: &'m Module, g: &Graph, v: Option<Value>) -> Option<&'m Tensor> {
    let w = m.weight(g.weight_name(v?)?)?;
    if w.quant.is_some() || w.data().as_f32().is_none() {
        return None;
    }
    Some(w.data())
}

/// How a producer's filter (or bias) changes when a batch norm is folded into it.
enum FilterEdit {
    /// A new filter (gemm).
    Replace(Tensor),
    /// Each output channel (a contiguous run of the filter) times its factor (conv2d): done in
    /// place when the filter has no other reader, so a fold allocates nothing for it.
    ScaleOutputChannels(Vec<f64>),
}

impl FilterEdit {
    fn apply(self, t: &mut Tensor) -> Option<()> {
        match self {
            FilterEdit::Replace(new) => *t = new,
            FilterEdit::ScaleOutputChannels(scale) => {
                let d = t.as_f32_mut()?;
                let per = d.len() / scale.len().max(1);
                for (channel, s) in d.chunks_exact_mut(per.max(1)).zip(&scale) {
                    channel.iter_mut().for_each(|x| *x = (*x as f64 * s) as f32);
                }
            }
        }
        Some(())
    }
}

/// Filter edit and new bias of a conv2d followed by `a` (output channels on axis 0 of OIHW).
fn fold_conv(w: &Tensor, b: Option<&Tensor>, a: &Affine) -> Option<(FilterEdit, Tensor)> {
    let o = *w.shape().first()?;
    if o != a.scale.len() || o == 0 || w.as_f32().is_none() {
        return None;
    }
    let bias = |c: usize| b.and_then(|t| t.as_f32()).map(|d| d[c] as f64).unwrap_or(0.0);
    let nb: Vec<f32> = (0..o).map(|c| (bias(c) * a.scale[c] + a.shift[c]) as f32).collect();
    Some((FilterEdit::ScaleOutputChannels(a.scale.clone()), Tensor::from_f32([o], nb).ok()?))
}

/// New B and C of `gemm(A, B, C) {alpha, beta}` followed by `a`, with alpha = beta = 1 after.
fn fold_gemm(gm: &clio::ops::Gemm, bw: &Tensor, c: Option<&Tensor>, a: &Affine) -> Option<(Tensor, Tensor)> {
    let n = a.scale.len();
    let s = bw.shape();
    if s.len() != 2 {
        return None;
    }
    let (rows, cols) = (s[0], s[1]);
    let out_dim = if gm.trans_b { rows } else { cols };
    if out_dim != n {
        return None;
    }
    let cval: Vec<f64> = match c {
        None => vec![0.0; n],
        Some(t) if t.shape() == [n] || t.shape() == [1, n] => t.as_f32()?.iter().map(|x| *x as f64).collect(),
        Some(t) if t.len() == 1 => vec![t.as_f32()?[0] as f64; n],
        Some(_) => return None,
    };
    let bd = bw.as_f32()?;
    let nb: Vec<f32> = bd
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let ch = if gm.trans_b { i / cols } else { i % cols };
            (*x as f64 * gm.alpha as f64 * a.scale[ch]) as f32
        })
        .collect();
    let nc: Vec<f32> = (0..n).map(|j| (cval[j] * gm.beta as f64 * a.scale[j] + a.shift[j]) as f32).collect();
    Some((Tensor::from_f32(s.to_vec(), nb).ok()?, Tensor::from_f32([n], nc).ok()?))
}

enum Outcome {
    FusedConv,
    FusedGemm,
    ScaleShift,
    Shared,
    NotFoldable,
    Kept,
}

impl FuseBn {
    fn one(&mut self, m: &mut Module, graph: &str, bn: NodeId, cx: &mut PassContext) -> Option<Outcome> {
        let g = m.graph(graph)?;
        let Op::BatchNorm(attrs) = &g.node(bn).op else { return None };
        let eps = attrs.epsilon;
        let bn_name = g.node(bn).name().to_string();
        if g.node(bn).ty().quant.is_some() {
            return Some(Outcome::NotFoldable);
        }
        let Some(aff) = bn_affine(m, g, bn, eps) else {
            cx.note(format!("@{graph} %{bn_name}: batch_norm parameters are not f32 weights; left alone"));
            return Some(Outcome::NotFoldable);
        };
        let x = g.operand(bn, 0)?;
        let producer = x.node;
        // The producer's kind (a gemm's attributes are needed to fold; a conv's are not).
        let pop = match &g.node(producer).op {
            Op::Conv2d(_) => Some(None),
            Op::Gemm(gm) => Some(Some(gm.clone())),
            _ => None,
        };
        match pop {
            Some(gemm) => {
                if g.use_count(x) != 1 || x.result != 0 {
                    cx.note(format!(
                        "@{graph} %{bn_name}: producer %{} has other readers; left alone",
                        g.node(producer).name()
                    ));
                    return Some(Outcome::Shared);
                }
                let w = f32_weight(m, g, g.operand(producer, 1));
                let b_operand = g.operand(producer, 2);
                let b = match b_operand {
                    Some(v) => match f32_weight(m, g, Some(v)) {
                        Some(t) => Some(t),
                        None => return Some(Outcome::NotFoldable),
                    },
                    None => None,
                };
                let Some(w) = w else {
                    cx.note(format!("@{graph} %{bn_name}: producer weights are not f32 constants; left alone"));
                    return Some(Outcome::NotFoldable);
                };
                let folded = match &gemm {
                    None => fold_conv(w, b, &aff),
                    Some(gm) => fold_gemm(gm, w, b, &aff).map(|(nw, nb)| (FilterEdit::Replace(nw), nb)),
                };
                let Some((nw, nb)) = folded else {
                    cx.note(format!("@{graph} %{bn_name}: producer shapes do not allow folding; left alone"));
                    return Some(Outcome::NotFoldable);
                };
                let producer_name = g.node(producer).name().to_string();
                rewrite_weight(m, graph, producer, 1, nw, cx)?;
                if b_operand.is_some() {
                    rewrite_weight(m, graph, producer, 2, FilterEdit::Replace(nb), cx)?;
                } else {
                    let name = m.add_weight(&format!("{producer_name}.bias"), Weight::new(nb));
                    let ty = m.weight(&name)?.ty();
                    let g = m.graph_mut(graph)?;
                    let bv = g.weight_value(&name, ty);
                    g.set_operand(producer, 2, bv);
                }
                let g = m.graph_mut(graph)?;
                if let Op::Gemm(gm) = &mut g.node_mut(producer).op {
                    gm.alpha = 1.0;
                    gm.beta = 1.0;
                }
                g.replace_all_uses(Value::of(bn), x);
                self.remove_bn(m, graph, bn)?;
                Some(if gemm.is_none() { Outcome::FusedConv } else { Outcome::FusedGemm })
            }
            _ if self.standalone_to_scale_shift => {
                let to_t = |v: &[f64]| Tensor::from_f32([v.len()], v.iter().map(|x| *x as f32).collect()).ok();
                let scale = m.add_weight(&format!("{bn_name}.scale"), Weight::new(to_t(&aff.scale)?));
                let shift = m.add_weight(&format!("{bn_name}.shift"), Weight::new(to_t(&aff.shift)?));
                let (sty, tty) = (m.weight(&scale)?.ty(), m.weight(&shift)?.ty());
                let g = m.graph_mut(graph)?;
                let old_params: Vec<NodeId> = g.operands(bn).iter().skip(1).map(|v| v.node).collect();
                let sv = g.weight_value(&scale, sty);
                let tv = g.weight_value(&shift, tty);
                g.node_mut(bn).op = Op::ScaleShift;
                g.set_operands(bn, &[x, sv, tv]);
                self.drop_params(m, graph, &old_params);
                Some(Outcome::ScaleShift)
            }
            _ => Some(Outcome::Kept),
        }
    }

    /// Removes the batch norm node and the parameter weights nothing reads any more.
    fn remove_bn(&mut self, m: &mut Module, graph: &str, bn: NodeId) -> Option<()> {
        let g = m.graph_mut(graph)?;
        let params: Vec<NodeId> = g.operands(bn).iter().skip(1).map(|v| v.node).collect();
        g.remove_node(bn);
        self.drop_params(m, graph, &params);
        Some(())
    }

    /// Removes the weight reads among `params` nothing reads any more; their weights are
    /// removed from the module at the end of the run (one pass over the weight table).
    fn drop_params(&mut self, m: &mut Module, graph: &str, params: &[NodeId]) {
        if let Some(g) = m.graph_mut(graph) {
            for p in params {
                if let Some(name) = g.remove_if_unused_weight(*p) {
                    self.dead_weights.push(name);
                }
            }
        }
    }
}

impl Pass for FuseBn {
    fn info(&self) -> &'static PassInfo {
        &INFO
    }

    fn run(&mut self, m: &mut Module, cx: &mut PassContext) -> Result<(), PassError> {
        for graph in m.graph_names() {
            let g = m.graph(&graph).ok_or_else(|| PassError::failed("fuse-bn", format!("graph @{graph} vanished")))?;
            let order =
                g.topo_order().map_err(|c| PassError::failed("fuse-bn", format!("@{graph}: cycle at {}", c.0)))?;
            let bns: Vec<NodeId> = order.into_iter().filter(|n| matches!(g.node(*n).op, Op::BatchNorm(_))).collect();
            for bn in bns {
                let stat = match self.one(m, &graph, bn, cx) {
                    Some(Outcome::FusedConv) => "fused-conv",
                    Some(Outcome::FusedGemm) => "fused-gemm",
                    Some(Outcome::ScaleShift) => "to-scale-shift",
                    Some(Outcome::Shared) => "left-shared-producer",
                    Some(Outcome::NotFoldable) => "left-not-foldable",
                    Some(Outcome::Kept) | None => continue,
                };
                cx.stat(stat, 1);
            }
        }
        m.remove_weights_if_unread(std::mem::take(&mut self.dead_weights));
        Ok(())
    }
}
