//! The e-graph language of `canonicalize`: clio ops with their operands *and* attributes as
//! children, attribute literals, region anchors (leaves) and the helper functions rules use.
//!
//! * `Leaf(k)`: anchor `k` of the region (a graph input, a weight, a value with several readers,
//!   the result of an op the language does not model). Leaves never come from rule files.
//! * `Lit(l)`: an attribute value (`0.0`, `inf`, `1`, `[0,2,3,1]`, `true`, `constant`) or `none`
//!   (an absent optional operand such as a conv bias).
//! * `Call(Op(k), children)`: clio op `OPS[k]`; children are the operands (optional ones padded
//!   with `none`, so every conv2d has 3) followed by the attributes in printing order, e.g.
//!   `(conv2d x w b strides pads dilations groups)`.
//! * `Call(Fn(f), children)`: a helper: an attribute function folded by the analysis (`fmax`,
//!   `compose-perm` ...), a predicate used in rule conditions (`is-zero` ...), or a constant
//!   function computing new weight data (`scale-filter`, `scale-bias`).

use clio::ir::Attr;
use egg::{Id, Language};
use std::fmt;

/// The kind of an attribute value, for checking literals in rule patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AttrKind {
    Float,
    Int,
    Ints,
    Bool,
    Str,
}

/// How the e-graph spells one clio op: its operand names (`?` suffix: optional, `...` suffix:
/// variadic) and its attributes in `Op::attrs()` order.
#[derive(Debug)]
pub(crate) struct OpSpec {
    pub name: &'static str,
    pub operands: &'static [&'static str],
    pub attrs: &'static [(&'static str, AttrKind)],
}

impl OpSpec {
    /// True for variadic ops (`concat`).
    pub fn variadic(&self) -> bool {
        self.operands.iter().any(|o| o.ends_with("..."))
    }

    /// Number of operand children for a node with `children` children.
    pub fn operand_count(&self, children: usize) -> usize {
        if self.variadic() {
            children.saturating_sub(self.attrs.len())
        } else {
            self.operands.len()
        }
    }

    /// Whether operand slot `slot` may be `none`.
    pub fn optional(&self, slot: usize) -> bool {
        self.operands.get(slot).is_some_and(|o| o.ends_with('?'))
    }

    /// The operand's name without markers (`bias` for `bias?`).
    pub fn operand_name(&self, slot: usize) -> &'static str {
        self.operands.get(slot).map(|o| o.trim_end_matches(['?', '.'])).unwrap_or("operand")
    }

    /// `x, w, b (or none), strides, ...`, for error messages.
    pub fn signature(&self) -> String {
        let ops = self.operands.iter().map(|o| match o.strip_suffix('?') {
            Some(n) => format!("{n} (or none)"),
            None => o.to_string(),
        });
        ops.chain(self.attrs.iter().map(|(n, _)| n.to_string())).collect::<Vec<_>>().join(", ")
    }
}

use AttrKind as K;

/// Every op the language models. Not modelled (they are anchors): `input`, `weight`,
/// `quantize`, `dequantize` (their types come from declarations), `transmit` (a cut) and custom
/// ops. A unit test checks the attribute lists against `Op::attrs()`.
pub(crate) static OPS: &[OpSpec] = &[
    OpSpec {
        name: "conv2d",
        operands: &["input", "weight", "bias?"],
        attrs: &[("strides", K::Ints), ("pads", K::Ints), ("dilations", K::Ints), ("groups", K::Int)],
    },
    OpSpec {
        name: "batch_norm",
        operands: &["input", "gamma", "beta", "mean", "var"],
        attrs: &[("epsilon", K::Float)],
    },
    OpSpec { name: "scale_shift", operands: &["input", "scale", "shift"], attrs: &[] },
    OpSpec { name: "relu", operands: &["input"], attrs: &[] },
    OpSpec { name: "clip", operands: &["input"], attrs: &[("min", K::Float), ("max", K::Float)] },
    OpSpec { name: "sigmoid", operands: &["input"], attrs: &[] },
    OpSpec { name: "hard_sigmoid", operands: &["input"], attrs: &[("alpha", K::Float), ("beta", K::Float)] },
    OpSpec { name: "hard_swish", operands: &["input"], attrs: &[] },
    OpSpec { name: "prelu", operands: &["input", "slope"], attrs: &[] },
    OpSpec { name: "softmax", operands: &["input"], attrs: &[("axis", K::Int)] },
    OpSpec { name: "add", operands: &["a", "b"], attrs: &[] },
    OpSpec { name: "sub", operands: &["a", "b"], attrs: &[] },
    OpSpec { name: "mul", operands: &["a", "b"], attrs: &[] },
    OpSpec { name: "div", operands: &["a", "b"], attrs: &[] },
    OpSpec { name: "concat", operands: &["inputs..."], attrs: &[("axis", K::Int)] },
    OpSpec {
        name: "max_pool",
        operands: &["input"],
        attrs: &[("kernel", K::Ints), ("strides", K::Ints), ("pads", K::Ints), ("ceil_mode", K::Bool)],
    },
    OpSpec {
        name: "avg_pool",
        operands: &["input"],
        attrs: &[
            ("kernel", K::Ints),
            ("strides", K::Ints),
            ("pads", K::Ints),
            ("ceil_mode", K::Bool),
            ("count_include_pad", K::Bool),
        ],
    },
    OpSpec { name: "global_avg_pool", operands: &["input"], attrs: &[] },
    OpSpec {
        name: "gemm",
        operands: &["a", "b", "c?"],
        attrs: &[("alpha", K::Float), ("beta", K::Float), ("trans_a", K::Bool), ("trans_b", K::Bool)],
    },
    OpSpec { name: "matmul", operands: &["a", "b"], attrs: &[] },
    OpSpec { name: "flatten", operands: &["input"], attrs: &[("axis", K::Int)] },
    OpSpec { name: "reshape", operands: &["input"], attrs: &[("shape", K::Ints)] },
    OpSpec { name: "squeeze", operands: &["input"], attrs: &[("axes", K::Ints)] },
    OpSpec { name: "unsqueeze", operands: &["input"], attrs: &[("axes", K::Ints)] },
    OpSpec { name: "transpose", operands: &["input"], attrs: &[("perm", K::Ints)] },
    OpSpec { name: "pad", operands: &["input"], attrs: &[("pads", K::Ints), ("mode", K::Str), ("value", K::Float)] },
    OpSpec {
        name: "channel_slice",
        operands: &["input"],
        attrs: &[("axis", K::Int), ("start", K::Int), ("end", K::Int)],
    },
];

/// The index of op `name` in [`OPS`].
pub(crate) fn op_index(name: &str) -> Option<u8> {
    OPS.iter().position(|s| s.name == name).map(|i| i as u8)
}

/// What a helper function returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FnKind {
    /// An attribute value, folded to a literal by the analysis.
    Attr,
    /// A boolean, for rule conditions.
    Pred,
    /// A constant tensor (new weight data), computed by the analysis.
    Const,
}

macro_rules! helpers {
    ($($variant:ident = $name:literal, $kind:ident, $arity:expr, $doc:literal;)*) => {
        /// Helper functions of rule files (see the table in the module docs).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(crate) enum Helper { $($variant,)* }

        impl Helper {
            pub const ALL: &'static [Helper] = &[$(Helper::$variant,)*];
            pub fn name(self) -> &'static str { match self { $(Helper::$variant => $name,)* } }
            pub fn kind(self) -> FnKind { match self { $(Helper::$variant => FnKind::$kind,)* } }
            /// Exact arity, or `None` for variadic (at least one argument).
            pub fn arity(self) -> Option<usize> { match self { $(Helper::$variant => $arity,)* } }
            pub fn doc(self) -> &'static str { match self { $(Helper::$variant => $doc,)* } }
        }
    };
}

helpers! {
    FMax = "fmax", Attr, Some(2), "larger of two numbers (a float)";
    FMin = "fmin", Attr, Some(2), "smaller of two numbers (a float)";
    ComposePerm = "compose-perm", Attr, Some(2), "perm of transpose(transpose(x, p), q): r[i] = p[q[i]]";
    ConvPadsAdd = "conv-pads-add", Attr, Some(2), "conv pads [t,l,b,r] plus a rank-4 pad's H/W pads; undefined if the pad touches N or C";
    FlattenShape = "flatten-shape", Attr, Some(2), "the 2-D shape flatten(axis) makes of a shape";
    Shape = "shape", Attr, Some(1), "a tensor's shape";
    Rank = "rank", Attr, Some(1), "a tensor's rank";
    Eq = "=", Pred, Some(2), "equal (numbers compare by value: 0 = 0.0)";
    Ne = "!=", Pred, Some(2), "not equal";
    Lt = "<", Pred, Some(2), "less than (numbers)";
    Le = "<=", Pred, Some(2), "less than or equal (numbers)";
    And = "and", Pred, None, "all arguments hold";
    Or = "or", Pred, None, "some argument holds";
    Not = "not", Pred, Some(1), "negation";
    IsZero = "is-zero", Pred, Some(1), "a constant tensor whose elements are all 0.0";
    IsOne = "is-one", Pred, Some(1), "a constant tensor whose elements are all 1.0";
    IsNone = "is-none", Pred, Some(1), "an absent optional operand";
    IsConst = "is-const", Pred, Some(1), "a tensor whose data are known (a weight or a constant function)";
    IdentityPerm = "identity-perm", Pred, Some(1), "a permutation that keeps every axis";
    IdentityFilter = "identity-filter", Pred, Some(2), "a constant [O,I,1,1] conv filter that, with this groups value, maps channel c to c";
    PadsHwOnly = "pads-hw-only", Pred, Some(1), "rank-4 pad amounts that leave N and C alone";
    Option = "option", Pred, Some(1), "the value of a boolean pass option (remove-identity-convs)";
    ScaleFilter = "scale-filter", Const, Some(2), "filter w (output channels on axis 0) times a per-output-channel scale";
    ScaleBias = "scale-bias", Const, Some(3), "bias b (or none = 0) times scale plus shift, per channel";
}

impl Helper {
    /// Looks a helper up by its rule-file name.
    pub fn from_name(name: &str) -> Option<Helper> {
        Helper::ALL.iter().copied().find(|h| h.name() == name)
    }
}

/// Boolean pass options rules may read with `(option NAME)`.
pub(crate) const RULE_OPTIONS: &[&str] = &["remove-identity-convs"];

/// The operator of a `Call` node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Func {
    /// A clio op (index into [`OPS`]).
    Op(u8),
    /// A helper function.
    Fn(Helper),
}

impl Func {
    pub fn name(self) -> &'static str {
        match self {
            Func::Op(k) => OPS[k as usize].name,
            Func::Fn(h) => h.name(),
        }
    }

    /// The op spec, for clio ops.
    pub fn spec(self) -> Option<&'static OpSpec> {
        match self {
            Func::Op(k) => OPS.get(k as usize),
            Func::Fn(_) => None,
        }
    }
}

/// An `f32` stored by its bits, so literals are `Eq + Hash` (`-0.0` and `0.0` stay distinct,
/// so lowering and raising an op is exact).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct F32Bits(pub u32);

impl F32Bits {
    pub fn new(v: f32) -> Self {
        F32Bits(v.to_bits())
    }
    pub fn get(self) -> f32 {
        f32::from_bits(self.0)
    }
}

impl fmt::Debug for F32Bits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.get())
    }
}

/// An attribute literal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Lit {
    /// An absent optional operand.
    None,
    Bool(bool),
    Int(i64),
    Float(F32Bits),
    Str(Box<str>),
    Ints(Box<[i64]>),
    Floats(Box<[F32Bits]>),
}

impl Lit {
    /// The literal of an attribute value.
    pub fn from_attr(a: &Attr) -> Lit {
        match a {
            Attr::Int(v) => Lit::Int(*v),
            Attr::Float(v) => Lit::Float(F32Bits::new(*v)),
            Attr::Bool(v) => Lit::Bool(*v),
            Attr::Str(s) => Lit::Str(s.as_str().into()),
            Attr::Ints(v) => Lit::Ints(v.clone().into()),
            Attr::Floats(v) => Lit::Floats(v.iter().map(|x| F32Bits::new(*x)).collect()),
        }
    }

    /// The attribute value of a literal (`none` has none).
    pub fn to_attr(&self) -> Option<Attr> {
        Some(match self {
            Lit::None => return None,
            Lit::Bool(v) => Attr::Bool(*v),
            Lit::Int(v) => Attr::Int(*v),
            Lit::Float(v) => Attr::Float(v.get()),
            Lit::Str(s) => Attr::Str(s.to_string()),
            Lit::Ints(v) => Attr::Ints(v.to_vec()),
            Lit::Floats(v) => Attr::Floats(v.iter().map(|x| x.get()).collect()),
        })
    }

    /// A number's value (ints and floats).
    pub fn number(&self) -> Option<f64> {
        match self {
            Lit::Int(v) => Some(*v as f64),
            Lit::Float(v) => Some(v.get() as f64),
            _ => None,
        }
    }

    /// A list's values as numbers (int and float lists).
    pub fn numbers(&self) -> Option<Vec<f64>> {
        match self {
            Lit::Ints(v) => Some(v.iter().map(|x| *x as f64).collect()),
            Lit::Floats(v) => Some(v.iter().map(|x| x.get() as f64).collect()),
            _ => None,
        }
    }

    /// The kind of attribute this literal can fill.
    pub fn kind(&self) -> Option<AttrKind> {
        match self {
            Lit::None => None,
            Lit::Bool(_) => Some(AttrKind::Bool),
            Lit::Int(_) => Some(AttrKind::Int),
            Lit::Float(_) => Some(AttrKind::Float),
            Lit::Str(_) => Some(AttrKind::Str),
            Lit::Ints(_) => Some(AttrKind::Ints),
            Lit::Floats(_) => None,
        }
    }

    /// Parses a rule-file atom: `none`, `true`/`false`, integers, floats (`0.0`, `1e-5`, `inf`,
    /// `-inf`), lists `[1,2]` (no spaces), quoted strings `"constant"` or bare words
    /// (`constant`). Variables (`?x`) are not literals.
    pub fn parse(atom: &str) -> Result<Lit, String> {
        if atom.starts_with('?') {
            return Err(format!("`{atom}` is a variable, not a literal"));
        }
        if let Some(s) = atom.strip_prefix('"') {
            let s = s.strip_suffix('"').ok_or_else(|| format!("unterminated string {atom}"))?;
            return Ok(Lit::Str(s.into()));
        }
        match atom {
            "none" => return Ok(Lit::None),
            "true" => return Ok(Lit::Bool(true)),
            "false" => return Ok(Lit::Bool(false)),
            "inf" | "+inf" => return Ok(Lit::Float(F32Bits::new(f32::INFINITY))),
            "-inf" => return Ok(Lit::Float(F32Bits::new(f32::NEG_INFINITY))),
            _ => {}
        }
        if let Some(body) = atom.strip_prefix('[') {
            let body = body
                .strip_suffix(']')
                .ok_or_else(|| format!("list `{atom}` lacks `]` (write lists without spaces)"))?;
            let parts: Vec<&str> = body.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
            if let Ok(v) = parts.iter().map(|p| p.parse::<i64>()).collect::<Result<Vec<_>, _>>() {
                return Ok(Lit::Ints(v.into()));
            }
            let v = parts
                .iter()
                .map(|p| parse_float(p).ok_or_else(|| format!("`{p}` in list `{atom}` is not a number")))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Lit::Floats(v.into_iter().map(F32Bits::new).collect()));
        }
        let first = atom.chars().next().unwrap_or(' ');
        if first.is_ascii_digit() || first == '-' || first == '+' || first == '.' {
            if let Ok(v) = atom.parse::<i64>() {
                return Ok(Lit::Int(v));
            }
            return parse_float(atom)
                .map(|v| Lit::Float(F32Bits::new(v)))
                .ok_or_else(|| format!("`{atom}` is not a number"));
        }
        if atom.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Ok(Lit::Str(atom.into()));
        }
        Err(format!("`{atom}` is not a literal"))
    }
}

fn parse_float(s: &str) -> Option<f32> {
    s.parse::<f32>().ok().filter(|v| !v.is_nan())
}

impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |v: Vec<String>| v.join(",");
        match self {
            Lit::None => f.write_str("none"),
            Lit::Bool(v) => write!(f, "{v}"),
            Lit::Int(v) => write!(f, "{v}"),
            Lit::Float(v) => write!(f, "{:?}", v.get()),
            Lit::Str(s) => write!(f, "\"{s}\""),
            Lit::Ints(v) => write!(f, "[{}]", join(v.iter().map(|x| x.to_string()).collect())),
            Lit::Floats(v) => write!(f, "[{}]", join(v.iter().map(|x| format!("{:?}", x.get())).collect())),
        }
    }
}

/// An e-node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ENode {
    /// Region anchor `k`.
    Leaf(u32),
    /// An attribute literal.
    Lit(Lit),
    /// An op or helper applied to children.
    Call(Func, Box<[Id]>),
}

/// Discriminant: variant plus operator (arity is checked by [`Language::matches`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Disc {
    Leaf,
    Lit,
    Call(Func),
}

impl Language for ENode {
    type Discriminant = Disc;

    fn discriminant(&self) -> Disc {
        match self {
            ENode::Leaf(_) => Disc::Leaf,
            ENode::Lit(_) => Disc::Lit,
            ENode::Call(f, _) => Disc::Call(*f),
        }
    }

    fn matches(&self, other: &Self) -> bool {
        match (self, other) {
            (ENode::Leaf(a), ENode::Leaf(b)) => a == b,
            (ENode::Lit(a), ENode::Lit(b)) => a == b,
            (ENode::Call(f, a), ENode::Call(g, b)) => f == g && a.len() == b.len(),
            _ => false,
        }
    }

    fn children(&self) -> &[Id] {
        match self {
            ENode::Call(_, c) => c,
            _ => &[],
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            ENode::Call(_, c) => c,
            _ => &mut [],
        }
    }
}

impl fmt::Display for ENode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ENode::Leaf(k) => write!(f, "leaf{k}"),
            ENode::Lit(l) => write!(f, "{l}"),
            ENode::Call(func, _) => f.write_str(func.name()),
        }
    }
}

impl egg::FromOp for ENode {
    type Error = String;

    fn from_op(op: &str, children: Vec<Id>) -> Result<Self, String> {
        if children.is_empty() {
            if let Some(k) = op.strip_prefix("leaf").and_then(|k| k.parse().ok()) {
                return Ok(ENode::Leaf(k));
            }
            if op_index(op).is_none() && Helper::from_name(op).is_none() {
                return Lit::parse(op).map(ENode::Lit);
            }
        }
        let func = match (op_index(op), Helper::from_name(op)) {
            (Some(k), _) => Func::Op(k),
            (None, Some(h)) => Func::Fn(h),
            (None, None) => return Err(format!("unknown op or function `{op}`")),
        };
        Ok(ENode::Call(func, children.into()))
    }
}
