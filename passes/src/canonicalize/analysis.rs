//! The e-class analysis: every class knows its tensor type (computed with the clio op's own
//! shape rule, `Op::infer`), and for constants the data (weights of the module, shared through
//! their `Arc`, or the result of a constant function; whether every element is the same "splat"
//! value is computed when a condition asks); attribute classes know their literal value, so
//! attribute functions such as `(fmax ?a ?c)` fold to a literal as soon as they are added.

use super::lang::{ENode, F32Bits, Func, Helper, Lit, OpSpec, OPS};
use clio::ir::{AttrMap, DType, Op, Tensor, TensorType};
use egg::{Analysis, DidMerge, EGraph, ENodeOrVar, Id, PatternAst, Subst, Var};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

/// What the analysis knows about a tensor class.
#[derive(Clone)]
pub(crate) struct TData {
    /// The class's type (unquantized f32 inside regions).
    pub ty: TensorType,
    /// The data, when constant.
    pub value: Option<Arc<Tensor>>,
}

impl TData {
    /// A non-constant tensor of type `ty`.
    pub fn of_type(ty: TensorType) -> TData {
        TData { ty, value: None }
    }

    /// A constant tensor.
    pub fn constant(t: Arc<Tensor>, quant: Option<clio::ir::Quant>) -> TData {
        let ty = TensorType { shape: t.shape().to_vec(), dtype: t.dtype(), quant };
        TData { ty, value: Some(t) }
    }
}

impl fmt::Debug for TData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", clio::text::type_string(&self.ty))?;
        if self.value.is_some() {
            f.write_str(" const")?;
        }
        Ok(())
    }
}

/// Analysis data of a class.
#[derive(Clone, Debug)]
pub(crate) enum Data {
    Tensor(TData),
    Attr(Lit),
    /// Not computable (a shape rule rejected the operands, an attribute function is undefined
    /// for its arguments ...). Never enters the e-graph: the rule applier checks first.
    Invalid,
}

impl Data {
    pub fn tensor(&self) -> Option<&TData> {
        match self {
            Data::Tensor(t) => Some(t),
            _ => None,
        }
    }

    pub fn lit(&self) -> Option<&Lit> {
        match self {
            Data::Attr(l) => Some(l),
            _ => None,
        }
    }
}

/// The single value of every element of an f32 tensor, if they are all equal.
pub(crate) fn splat_of(t: &Tensor) -> Option<f32> {
    let d = t.as_f32()?;
    let first = *d.first()?;
    d.iter().all(|x| *x == first).then_some(first)
}

/// The analysis state of one region's e-graph.
#[derive(Default)]
pub(crate) struct ClioAnalysis {
    /// Data of each leaf (anchor), indexed by `ENode::Leaf`.
    pub leaves: Vec<Data>,
    /// Boolean pass options visible to `(option NAME)`.
    pub options: BTreeMap<&'static str, bool>,
    /// (rule, class) pairs where a rule matched and its conditions held but its right-hand side
    /// would not have had the matched class's type (or was not computable): not applied.
    pub type_rejections: HashSet<(String, Id)>,
}

impl Analysis<ENode> for ClioAnalysis {
    type Data = Data;

    fn make(egraph: &mut EGraph<ENode, Self>, enode: &ENode, _id: Id) -> Data {
        match enode {
            ENode::Leaf(k) => egraph.analysis.leaves.get(*k as usize).cloned().unwrap_or(Data::Invalid),
            ENode::Lit(l) => Data::Attr(l.clone()),
            ENode::Call(f, ch) => {
                let args: Vec<&Data> = ch.iter().map(|c| &egraph[*c].data).collect();
                compute(&egraph.analysis, *f, &args)
            }
        }
    }

    fn merge(&mut self, a: &mut Data, b: Data) -> DidMerge {
        match (&mut *a, b) {
            (Data::Invalid, Data::Invalid) => DidMerge(false, false),
            (Data::Invalid, b) => {
                *a = b;
                DidMerge(true, false)
            }
            (_, Data::Invalid) => DidMerge(false, true),
            (Data::Tensor(x), Data::Tensor(y)) => match (&x.value, y.value) {
                (None, Some(v)) => {
                    x.value = Some(v);
                    DidMerge(true, false)
                }
                (Some(_), None) => DidMerge(false, true),
                _ => DidMerge(false, false),
            },
            // Attribute classes only merge with equal values (functions fold to literals), and
            // the applier never unions a tensor class with an attribute class.
            _ => DidMerge(false, false),
        }
    }

    fn modify(egraph: &mut EGraph<ENode, Self>, id: Id) {
        // Constant folding of attribute functions: the class gets the literal itself, so
        // patterns with literals (`(clip ?x 0.0 inf)`) match folded results too.
        if let Data::Attr(l) = &egraph[id].data {
            let lit = egraph.add(ENode::Lit(l.clone()));
            egraph.union(id, lit);
        }
    }
}

/// Data of `f` applied to classes with data `args` (shared by `make`, the rule applier's dry
/// run, condition evaluation and the cost function).
pub(crate) fn compute(an: &ClioAnalysis, f: Func, args: &[&Data]) -> Data {
    if args.iter().any(|a| matches!(a, Data::Invalid)) {
        return Data::Invalid;
    }
    let out = match f {
        Func::Op(k) => OPS.get(k as usize).and_then(|spec| op_result(spec, args)).map(Data::Tensor),
        Func::Fn(h) => helper(an, h, args),
    };
    out.unwrap_or(Data::Invalid)
}

/// The clio op a `Call(Op)` node stands for, and its present operands' types.
pub(crate) fn raise_op<'a>(spec: &OpSpec, args: &[&'a Data]) -> Option<(Op, Vec<&'a TensorType>)> {
    let n = spec.operand_count(args.len());
    if args.len() != n + spec.attrs.len() || n == 0 {
        return None;
    }
    let mut attrs = AttrMap::new();
    for ((name, _), a) in spec.attrs.iter().zip(&args[n..]) {
        attrs.insert(name.to_string(), a.lit()?.to_attr()?);
    }
    let op = Op::from_parts(spec.name, attrs).ok()?;
    let mut types = Vec::with_capacity(n);
    let mut ended = false;
    for (slot, a) in args[..n].iter().enumerate() {
        match a {
            Data::Tensor(t) if !ended => types.push(&t.ty),
            Data::Attr(Lit::None) if spec.optional(slot) => ended = true,
            _ => return None,
        }
    }
    Some((op, types))
}

fn op_result(spec: &OpSpec, args: &[&Data]) -> Option<TData> {
    let (op, types) = raise_op(spec, args)?;
    let mut inferred = op.infer(&types)?.ok()?;
    if inferred.len() != 1 {
        return None;
    }
    let r = inferred.pop()?;
    let dtype = r.dtype.or_else(|| types.first().map(|t| t.dtype))?;
    Some(TData::of_type(TensorType::new(r.shape, dtype)))
}

fn f32_value(d: &Data) -> Option<(&Tensor, &[f32])> {
    let t = d.tensor()?.value.as_deref()?;
    Some((t, t.as_f32()?))
}

fn lit_eq(a: &Lit, b: &Lit) -> bool {
    match (a.number(), b.number()) {
        (Some(x), Some(y)) => x == y,
        _ => match (a.numbers(), b.numbers()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

fn is_perm(p: &[i64]) -> bool {
    let mut seen = vec![false; p.len()];
    p.iter().all(|x| {
        usize::try_from(*x).ok().filter(|i| *i < p.len()).is_some_and(|i| !std::mem::replace(&mut seen[i], true))
    })
}

fn helper(an: &ClioAnalysis, h: Helper, args: &[&Data]) -> Option<Data> {
    let lit = |i: usize| args.get(i).and_then(|a| a.lit());
    let num = |i: usize| lit(i)?.number();
    let ints = |i: usize| match lit(i)? {
        Lit::Ints(v) => Some(v.to_vec()),
        _ => None,
    };
    let boolean = |v: bool| Some(Data::Attr(Lit::Bool(v)));
    let float = |v: f64| Some(Data::Attr(Lit::Float(F32Bits::new(v as f32))));
    let list = |v: Vec<i64>| Some(Data::Attr(Lit::Ints(v.into())));
    let splat = |i: usize| match args.get(i)? {
        Data::Tensor(t) => t.value.as_deref().and_then(splat_of).map(|v| v as f64),
        Data::Attr(l) => l.number(),
        Data::Invalid => None,
    };
    let truth = |i: usize| match lit(i) {
        Some(Lit::Bool(v)) => Some(*v),
        _ => None,
    };
    match h {
        Helper::FMax => float(num(0)?.max(num(1)?)),
        Helper::FMin => float(num(0)?.min(num(1)?)),
        Helper::ComposePerm => {
            let (p, q) = (ints(0)?, ints(1)?);
            if p.len() != q.len() || !is_perm(&p) || !is_perm(&q) {
                return None;
            }
            list(q.iter().map(|i| p[*i as usize]).collect())
        }
        Helper::ConvPadsAdd => {
            let (cp, pp) = (ints(0)?, ints(1)?);
            if cp.len() != 4 || pp.len() != 8 || [0, 1, 4, 5].iter().any(|i| pp[*i] != 0) {
                return None;
            }
            list(vec![cp[0] + pp[2], cp[1] + pp[3], cp[2] + pp[6], cp[3] + pp[7]])
        }
        Helper::FlattenShape => {
            let (s, a) = (ints(0)?, num(1)?);
            if a < 0.0 || a as usize > s.len() || a.fract() != 0.0 {
                return None;
            }
            let prod = |v: &[i64]| v.iter().try_fold(1i64, |acc, d| acc.checked_mul(*d));
            list(vec![prod(&s[..a as usize])?, prod(&s[a as usize..])?])
        }
        Helper::Shape => list(args.first()?.tensor()?.ty.shape.iter().map(|d| *d as i64).collect()),
        Helper::Rank => Some(Data::Attr(Lit::Int(args.first()?.tensor()?.ty.rank() as i64))),
        Helper::Eq => boolean(lit_eq(lit(0)?, lit(1)?)),
        Helper::Ne => boolean(!lit_eq(lit(0)?, lit(1)?)),
        Helper::Lt => boolean(num(0)? < num(1)?),
        Helper::Le => boolean(num(0)? <= num(1)?),
        Helper::And => boolean((0..args.len()).map(truth).collect::<Option<Vec<bool>>>()?.iter().all(|v| *v)),
        Helper::Or => boolean((0..args.len()).map(truth).collect::<Option<Vec<bool>>>()?.iter().any(|v| *v)),
        Helper::Not => boolean(!truth(0)?),
        Helper::IsZero => boolean(splat(0) == Some(0.0)),
        Helper::IsOne => boolean(splat(0) == Some(1.0)),
        Helper::IsNone => boolean(matches!(lit(0), Some(Lit::None))),
        Helper::IsConst => boolean(args.first()?.tensor().is_some_and(|t| t.value.is_some())),
        Helper::IdentityPerm => boolean(ints(0)?.iter().enumerate().all(|(i, p)| i as i64 == *p)),
        Helper::IdentityFilter => {
            let Some((t, w)) = f32_value(args.first()?) else { return boolean(false) };
            let g = match lit(1)? {
                Lit::Int(g) if *g > 0 => *g as usize,
                _ => return boolean(false),
            };
            let s = t.shape();
            if s.len() != 4 || s[2] != 1 || s[3] != 1 || s[0] != s[1] * g {
                return boolean(false);
            }
            let (o, i) = (s[0], s[1]);
            let ok = (0..o).all(|oc| {
                let base = (oc / i) * i;
                (0..i).all(|ic| w[oc * i + ic] == if base + ic == oc { 1.0 } else { 0.0 })
            });
            boolean(ok)
        }
        Helper::PadsHwOnly => {
            let pp = ints(0)?;
            boolean(pp.len() == 8 && [0, 1, 4, 5].iter().all(|i| pp[*i] == 0))
        }
        Helper::Option => match lit(0)? {
            Lit::Str(name) => boolean(an.options.get(name.as_ref()).copied().unwrap_or(false)),
            _ => None,
        },
        Helper::ScaleFilter => {
            let ((wt, w), (_, s)) = (f32_value(args.first()?)?, f32_value(args.get(1)?)?);
            let o = *wt.shape().first()?;
            if o != s.len() || o == 0 {
                return None;
            }
            let per = w.len() / o;
            let data: Vec<f32> = w.iter().enumerate().map(|(i, x)| (*x as f64 * s[i / per] as f64) as f32).collect();
            constant(wt.shape(), data)
        }
        Helper::ScaleBias => {
            let (s, t) = (f32_value(args.get(1)?)?.1, f32_value(args.get(2)?)?.1);
            let c = s.len();
            if t.len() != c || args.get(2)?.tensor()?.ty.rank() != 1 {
                return None;
            }
            let b: Vec<f64> = match args.first()? {
                Data::Attr(Lit::None) => vec![0.0; c],
                d => f32_value(d)?.1.iter().map(|x| *x as f64).collect(),
            };
            if b.len() != c {
                return None;
            }
            constant(&[c], (0..c).map(|i| (b[i] * s[i] as f64 + t[i] as f64) as f32).collect())
        }
    }
}

fn constant(shape: &[usize], data: Vec<f32>) -> Option<Data> {
    let t = Tensor::from_f32(shape.to_vec(), data).ok()?;
    debug_assert_eq!(t.dtype(), DType::F32);
    Some(Data::Tensor(TData::constant(Arc::new(t), None)))
}

/// Evaluates a pattern (a rule's right-hand side or condition) under `subst` without adding
/// anything to the e-graph; `root_var` stands for the matched class.
pub(crate) fn eval_pattern(
    ast: &PatternAst<ENode>,
    egraph: &EGraph<ENode, ClioAnalysis>,
    subst: &Subst,
    root: Id,
    root_var: Var,
) -> Data {
    let nodes = ast.as_ref();
    let mut vals: Vec<Data> = Vec::with_capacity(nodes.len());
    for n in nodes {
        let d = match n {
            ENodeOrVar::Var(v) => {
                let id = if *v == root_var {
                    root
                } else {
                    match subst.get(*v) {
                        Some(id) => *id,
                        None => return Data::Invalid,
                    }
                };
                egraph[id].data.clone()
            }
            ENodeOrVar::ENode(ENode::Lit(l)) => Data::Attr(l.clone()),
            ENodeOrVar::ENode(ENode::Leaf(_)) => Data::Invalid,
            ENodeOrVar::ENode(ENode::Call(f, ch)) => {
                let args: Vec<&Data> = ch.iter().map(|c| &vals[usize::from(*c)]).collect();
                compute(&egraph.analysis, *f, &args)
            }
        };
        vals.push(d);
    }
    vals.pop().unwrap_or(Data::Invalid)
}
