//! Printing modules, graphs and types as text.

// Part of the text format: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::is_bare_name;
use crate::ir::{
    Attr, Digest, DigestAlgorithm, Graph, Module, Op, QScheme, Quant, Tensor, TensorData, TensorType, Value,
};
use std::fmt::{self, Write};

/// How weight data are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WeightStyle {
    /// Every weight as `dense<[...]>`: lossless, self-contained, verbose.
    Inline,
    /// Every weight as `blob<"digest">`: for snapshots and for text saved next to a sidecar.
    #[default]
    Digest,
    /// Weights with at most this many elements inline, the others as digests.
    InlineUpTo(usize),
}

/// Printer settings.
#[derive(Clone, Debug, Default)]
pub struct PrintOptions {
    /// How weight data are printed.
    pub weights: WeightStyle,
}

impl PrintOptions {
    /// Self-contained, lossless text.
    pub fn inline() -> Self {
        PrintOptions { weights: WeightStyle::Inline }
    }
}

/// Writes `tensor<...>` for a type.
pub fn print_type(f: &mut impl Write, t: &TensorType) -> fmt::Result {
    f.write_str("tensor<")?;
    for d in &t.shape {
        write!(f, "{d}x")?;
    }
    f.write_str(t.dtype.as_str())?;
    if let Some(q) = &t.quant {
        f.write_str(", ")?;
        print_quant(f, q)?;
    }
    f.write_char('>')
}

/// A type as a string.
pub fn type_string(t: &TensorType) -> String {
    let mut s = String::new();
    let _ = print_type(&mut s, t);
    s
}

fn print_quant(f: &mut impl Write, q: &Quant) -> fmt::Result {
    let (kw, entries): (&str, Vec<String>) = match &q.scheme {
        QScheme::Pow2 { frac_bits } => ("pow2", frac_bits.iter().map(|b| b.to_string()).collect()),
        QScheme::Affine { scales, zero_points } => {
            ("affine", scales.iter().zip(zero_points).map(|(s, z)| format!("{}:{z}", float(*s))).collect())
        }
    };
    write!(f, "{kw}<")?;
    if let Some(a) = q.axis {
        write!(f, "axis={a}: ")?;
    }
    write!(f, "{}>", entries.join(", "))
}

/// Shortest round-trip spelling of an f32 that always reads back as a float (`1.0`, `1e-5`,
/// `inf`, `-inf`, `NaN`).
pub(crate) fn float(v: f32) -> String {
    format!("{v:?}")
}

pub(crate) fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `%name`, `@name`, quoted when needed.
pub(crate) fn sigil_name(sigil: char, name: &str) -> String {
    if is_bare_name(name) {
        format!("{sigil}{name}")
    } else {
        format!("{sigil}{}", quoted(name))
    }
}

fn print_attr(f: &mut impl Write, a: &Attr) -> fmt::Result {
    match a {
        Attr::Int(v) => write!(f, "{v}"),
        Attr::Float(v) => f.write_str(&float(*v)),
        Attr::Bool(v) => write!(f, "{v}"),
        Attr::Str(s) => f.write_str(&quoted(s)),
        Attr::Ints(v) => write!(f, "[{}]", v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")),
        Attr::Floats(v) => write!(f, "[{}]", v.iter().map(|x| float(*x)).collect::<Vec<_>>().join(", ")),
    }
}

/// Attribute keys the parser reads unquoted: `[A-Za-z_][A-Za-z0-9_]*`; others (e.g.
/// `clio.plan`) are printed as string literals.
fn is_bare_attr_key(k: &str) -> bool {
    k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn print_attrs(f: &mut impl Write, attrs: &[(String, Attr)]) -> fmt::Result {
    if attrs.is_empty() {
        return Ok(());
    }
    f.write_str(" {")?;
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        if is_bare_attr_key(k) {
            write!(f, "{k} = ")?;
        } else {
            write!(f, "{} = ", quoted(k))?;
        }
        print_attr(f, v)?;
    }
    f.write_char('}')
}

fn print_data(f: &mut impl Write, t: &Tensor, style: WeightStyle) -> fmt::Result {
    let inline = match style {
        WeightStyle::Inline => true,
        WeightStyle::Digest => false,
        WeightStyle::InlineUpTo(n) => t.len() <= n,
    };
    if !inline {
        return write!(f, "blob<\"{}\">", Digest::of(t, DigestAlgorithm::Xxh3));
    }
    let items: Vec<String> = match t.data() {
        TensorData::F32(v) => v.iter().map(|x| float(*x)).collect(),
        TensorData::I8(v) => v.iter().map(|x| x.to_string()).collect(),
        TensorData::I16(v) => v.iter().map(|x| x.to_string()).collect(),
        TensorData::I32(v) => v.iter().map(|x| x.to_string()).collect(),
    };
    write!(f, "dense<[{}]>", items.join(", "))
}

/// How an operand is spelled: `@weight`, `%node` or `%node#k`.
fn operand(g: &Graph, v: Value) -> String {
    let node = g.node(v.node);
    if let Op::Weight { name } = &node.op {
        return sigil_name('@', name);
    }
    let base = sigil_name('%', node.name());
    if v.result == 0 {
        base
    } else {
        format!("{base}#{}", v.result)
    }
}

/// Prints one graph (indented by two spaces, as inside a module).
pub fn print_graph(f: &mut impl Write, g: &Graph) -> fmt::Result {
    write!(f, "  graph {}(", sigil_name('@', g.name()))?;
    for (i, id) in g.inputs().iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        let n = g.node(*id);
        write!(f, "{}: ", sigil_name('%', n.name()))?;
        match n.results.first() {
            Some(t) => print_type(f, t)?,
            None => f.write_str("<no type>")?,
        }
    }
    f.write_str(") -> (")?;
    for (i, v) in g.outputs().iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        match g.get(v.node).and_then(|n| n.results.get(v.result as usize)) {
            Some(t) => print_type(f, t)?,
            None => f.write_str("<dangling>")?,
        }
    }
    f.write_str(") {\n")?;
    // A cyclic graph (only reachable through the API) still prints, in index order.
    let order = g.topo_order().unwrap_or_else(|_| g.node_ids().collect());
    for id in order {
        let n = g.node(id);
        match &n.op {
            Op::Input => continue,
            Op::Weight { .. } => continue,
            _ => {}
        }
        f.write_str("    ")?;
        f.write_str(&sigil_name('%', n.name()))?;
        if n.results.len() != 1 {
            write!(f, ":{}", n.results.len())?;
        }
        f.write_str(" = ")?;
        match &n.op {
            Op::Custom(c) => write!(f, "custom<{}>", quoted(&c.name))?,
            op => f.write_str(op.name())?,
        }
        f.write_char('(')?;
        let ops: Vec<String> = g.operand_list(id).iter().map(|v| operand(g, *v)).collect();
        f.write_str(&ops.join(", "))?;
        f.write_char(')')?;
        print_attrs(f, &n.op.attrs())?;
        f.write_str(" :")?;
        for (i, t) in n.results.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            print_type(f, t)?;
        }
        f.write_char('\n')?;
    }
    let outs: Vec<String> =
        g.outputs().iter().map(|v| if g.contains(v.node) { operand(g, *v) } else { "%<dangling>".into() }).collect();
    writeln!(f, "    return {}", outs.join(", "))?;
    f.write_str("  }\n")
}

/// Prints a whole module.
pub fn print_module(m: &Module, opts: &PrintOptions) -> String {
    let mut f = String::new();
    let _ = write_module(&mut f, m, opts);
    f
}

fn write_module(f: &mut String, m: &Module, opts: &PrintOptions) -> fmt::Result {
    write!(f, "module {}", sigil_name('@', &m.name))?;
    if !m.attrs.is_empty() {
        f.write_str(" attributes")?;
        let attrs: Vec<(String, Attr)> = m.attrs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        print_attrs(f, &attrs)?;
    }
    f.write_str(" {\n")?;
    for (name, w) in m.weights() {
        write!(f, "  weight {} : ", sigil_name('@', name))?;
        print_type(f, &w.ty())?;
        f.write_str(" = ")?;
        print_data(f, w.data(), opts.weights)?;
        f.write_char('\n')?;
    }
    for g in m.graphs() {
        f.write_char('\n')?;
        print_graph(f, g)?;
    }
    f.write_str("}\n")
}
