//! Rules as data: the rule-file parser, the rule contract check, and the egg applier that
//! checks a rule's conditions and the type of its right-hand side before adding anything.
//!
//! File format (the built-in rules, `builtin.rules`, are the reference example):
//!
//! ```text
//! # a comment (anywhere on a line)
//! name: LHS => RHS
//! name: LHS => RHS if COND COND ...
//!     an indented line continues the rule above
//! ```
//!
//! `LHS` and `RHS` are egg patterns over the canonicalize language: `(op operand... attr...)`
//! with every operand and attribute of the clio op in printing order (optional operands as
//! `none` when absent), variables `?x`, and literals (`0.0`, `inf`, `1`, `[0,2,3,1]`, `true`,
//! `constant`). `RHS` may also use attribute functions (`fmax` ...) and constant functions
//! (`scale-filter` ...); `COND`s are predicates (`is-zero` ...), which may also name the matched
//! class as `root`.

// Parses user rule files: no panicking indexing or slicing (docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::analysis::{eval_pattern, ClioAnalysis, Data};
use super::lang::{op_index, AttrKind, ENode, F32Bits, FnKind, Func, Helper, Lit, OPS, RULE_OPTIONS};
use egg::{Applier, ENodeOrVar, Id, PatternAst, Rewrite, Subst, Symbol, Var};
use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// The built-in rules, shipped with the crate.
pub const BUILTIN_RULES: &str = include_str!("builtin.rules");

/// The file name the built-in rules are reported under.
pub const BUILTIN_FILE: &str = "builtin.rules";

/// A rule file that does not parse or breaks the rule contract. Displays as
/// `file:line: rule `name`: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// The rule file.
    pub file: String,
    /// 1-based line of the problem (0 when the file could not be read).
    pub line: usize,
    /// The rule's name, when it got that far.
    pub rule: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if let Some(r) = &self.rule {
            write!(f, ": rule `{r}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RuleError {}

/// One parsed rewrite rule.
#[derive(Clone)]
pub struct Rule {
    /// Rule name (unique in a rule set).
    pub name: String,
    /// File it came from.
    pub file: String,
    /// 1-based line it starts on.
    pub line: usize,
    /// The rule as written (whitespace normalised).
    pub text: String,
    pub(crate) lhs: PatternAst<ENode>,
    pub(crate) rhs: PatternAst<ENode>,
    pub(crate) conds: Vec<PatternAst<ENode>>,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.text)
    }
}

/// The size measure of the rule contract: (clio ops, all pattern nodes).
pub type RuleSize = (usize, usize);

fn size_of(ast: &PatternAst<ENode>) -> RuleSize {
    let ops = ast.as_ref().iter().filter(|n| matches!(n, ENodeOrVar::ENode(ENode::Call(Func::Op(_), _)))).count();
    (ops, ast.as_ref().len())
}

impl Rule {
    /// Size of the left-hand side: (clio ops, pattern nodes).
    pub fn lhs_size(&self) -> RuleSize {
        size_of(&self.lhs)
    }

    /// Size of the right-hand side: (clio ops, pattern nodes).
    pub fn rhs_size(&self) -> RuleSize {
        size_of(&self.rhs)
    }

    /// Number of conditions.
    pub fn condition_count(&self) -> usize {
        self.conds.len()
    }
}

/// An ordered set of rules with unique names.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// An empty set.
    pub fn new() -> RuleSet {
        RuleSet::default()
    }

    /// The built-in rules ([`BUILTIN_RULES`]).
    pub fn builtin() -> RuleSet {
        match RuleSet::parse(BUILTIN_RULES, BUILTIN_FILE) {
            Ok(r) => r,
            Err(e) => panic!("the built-in rules must parse and keep the contract: {e}"),
        }
    }

    /// Parses rule text; `file` names it in errors. Every rule is checked against the rule
    /// contract; a violation is an error (rules are never silently dropped).
    pub fn parse(text: &str, file: &str) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::new();
        for chunk in chunks(text) {
            let rule = parse_rule(&chunk, file)?;
            set.push(rule)?;
        }
        Ok(set)
    }

    /// Reads and parses a rule file.
    pub fn load(path: &Path) -> Result<RuleSet, RuleError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RuleError {
            file: file.clone(),
            line: 0,
            rule: None,
            message: format!("cannot read the rules file: {e}"),
        })?;
        RuleSet::parse(&text, &file)
    }

    fn push(&mut self, rule: Rule) -> Result<(), RuleError> {
        if let Some(old) = self.rules.iter().find(|r| r.name == rule.name) {
            return Err(RuleError {
                file: rule.file.clone(),
                line: rule.line,
                rule: Some(rule.name.clone()),
                message: format!("a rule of this name already exists ({}:{})", old.file, old.line),
            });
        }
        self.rules.push(rule);
        Ok(())
    }

    /// Appends the rules of `other` (names must stay unique).
    pub fn extend(&mut self, other: RuleSet) -> Result<(), RuleError> {
        other.rules.into_iter().try_for_each(|r| self.push(r))
    }

    /// Removes rule `name`; returns whether it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        let n = self.rules.len();
        self.rules.retain(|r| r.name != name);
        self.rules.len() != n
    }

    /// The rules in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Rule names in order.
    pub fn names(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.name.as_str()).collect()
    }

    /// The egg rewrites.
    pub(crate) fn rewrites(&self) -> Vec<Rewrite<ENode, ClioAnalysis>> {
        let root: Var = root_var();
        self.rules
            .iter()
            .map(|r| {
                let applier = RuleApplier { rhs: r.rhs.clone(), conds: Arc::new(r.conds.clone()), root };
                Rewrite::new(r.name.as_str(), egg::Pattern::new(r.lhs.clone()), applier)
                    .unwrap_or_else(|e| panic!("rule {} was checked at parse time: {e}", r.name))
            })
            .collect()
    }
}

/// The variable conditions use for the matched class (`root` in rule files).
pub(crate) const ROOT_VAR: &str = "?root";

/// [`ROOT_VAR`] as an egg variable.
fn root_var() -> Var {
    // A constant `?name`, which egg always parses.
    #[allow(clippy::expect_used)]
    ROOT_VAR.parse().expect("valid variable")
}

/// The applier of every rule: conditions first, then the right-hand side is evaluated without
/// touching the e-graph; only if its type equals the matched class's type is it added and
/// unioned. So a rule can never change a value's type, whatever its conditions say.
struct RuleApplier {
    rhs: PatternAst<ENode>,
    conds: Arc<Vec<PatternAst<ENode>>>,
    root: Var,
}

impl Applier<ENode, ClioAnalysis> for RuleApplier {
    fn apply_one(
        &self,
        egraph: &mut egg::EGraph<ENode, ClioAnalysis>,
        eclass: Id,
        subst: &Subst,
        _searcher_ast: Option<&PatternAst<ENode>>,
        rule_name: Symbol,
    ) -> Vec<Id> {
        for c in self.conds.iter() {
            if !matches!(eval_pattern(c, egraph, subst, eclass, self.root), Data::Attr(Lit::Bool(true))) {
                return vec![];
            }
        }
        let want = egraph[eclass].data.tensor().map(|t| (t.ty.shape.clone(), t.ty.dtype));
        let got = eval_pattern(&self.rhs, egraph, subst, eclass, self.root);
        let same = match (want, got.tensor()) {
            (Some((shape, dtype)), Some(t)) => t.ty.shape == shape && t.ty.dtype == dtype,
            _ => false,
        };
        if !same {
            egraph.analysis.type_rejections.insert((rule_name.to_string(), egraph.find(eclass)));
            return vec![];
        }
        let id = egraph.add_instantiation(&self.rhs, subst);
        if egraph.union(eclass, id) {
            vec![eclass]
        } else {
            vec![]
        }
    }
}

/// One rule's tokens: (token, line).
type Chunk = Vec<(String, usize)>;

/// Splits a rule file into rules: a rule starts on a line that is not indented and continues on
/// indented lines; `#` starts a comment (outside quotes).
fn chunks(text: &str) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = vec![];
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let toks = tokenize(raw);
        if toks.is_empty() {
            continue;
        }
        let continues = raw.starts_with([' ', '\t']) && !out.is_empty();
        if !continues {
            out.push(vec![]);
        }
        if let Some(c) = out.last_mut() {
            c.extend(toks.into_iter().map(|t| (t, line)));
        }
    }
    out
}

fn tokenize(line: &str) -> Vec<String> {
    let mut toks = vec![];
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let flush = |cur: &mut String, toks: &mut Vec<String>| {
        if !cur.is_empty() {
            toks.push(std::mem::take(cur));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' => break,
            '(' | ')' => {
                flush(&mut cur, &mut toks);
                toks.push(c.to_string());
            }
            '"' => {
                cur.push(c);
                for d in chars.by_ref() {
                    cur.push(d);
                    if d == '"' {
                        break;
                    }
                }
            }
            c if c.is_whitespace() => flush(&mut cur, &mut toks),
            c => cur.push(c),
        }
    }
    flush(&mut cur, &mut toks);
    toks
}

/// An s-expression with the line it starts on.
#[derive(Debug)]
enum Sx {
    Atom(String, usize),
    List(Vec<Sx>, usize),
}

impl Sx {
    fn line(&self) -> usize {
        match self {
            Sx::Atom(_, l) | Sx::List(_, l) => *l,
        }
    }
}

impl fmt::Display for Sx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sx::Atom(a, _) => f.write_str(a),
            Sx::List(items, _) => {
                f.write_str("(")?;
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{it}")?;
                }
                f.write_str(")")
            }
        }
    }
}

fn parse_sexprs(toks: &[(String, usize)]) -> Result<Vec<Sx>, (usize, String)> {
    let mut stack: Vec<(Vec<Sx>, usize)> = vec![(vec![], toks.first().map(|t| t.1).unwrap_or(0))];
    for (t, line) in toks {
        match t.as_str() {
            "(" => stack.push((vec![], *line)),
            ")" => {
                if stack.len() < 2 {
                    return Err((*line, "unbalanced `)`".into()));
                }
                let (items, start) = stack.pop().unwrap_or_default();
                if items.is_empty() {
                    return Err((start, "empty `()`".into()));
                }
                if let Some(top) = stack.last_mut() {
                    top.0.push(Sx::List(items, start));
                }
            }
            _ => {
                if let Some(top) = stack.last_mut() {
                    top.0.push(Sx::Atom(t.clone(), *line));
                }
            }
        }
    }
    if stack.len() > 1 {
        let start = stack.last().map(|s| s.1).unwrap_or(0);
        return Err((start, "unbalanced `(`: missing `)`".into()));
    }
    Ok(stack.pop().map(|s| s.0).unwrap_or_default())
}

fn parse_rule(chunk: &Chunk, file: &str) -> Result<Rule, RuleError> {
    let first_line = chunk.first().map(|t| t.1).unwrap_or(0);
    let err = |line: usize, rule: Option<&str>, message: String| RuleError {
        file: file.to_string(),
        line,
        rule: rule.map(str::to_string),
        message,
    };
    // `name:` (or `name :`).
    let (name, rest) = match chunk.first().map(|t| t.0.as_str()) {
        Some(t) if t.ends_with(':') && t.len() > 1 => {
            (t.trim_end_matches(':').to_string(), chunk.get(1..).unwrap_or(&[]))
        }
        Some(t) if chunk.get(1).is_some_and(|n| n.0 == ":") => (t.to_string(), chunk.get(2..).unwrap_or(&[])),
        _ => {
            return Err(err(
                first_line,
                None,
                "a rule starts with `name:` (e.g. `relu-relu: (relu (relu ?x)) => (relu ?x)`)".into(),
            ))
        }
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(err(first_line, None, format!("`{name}` is not a rule name (letters, digits, `-`, `_`, `.`)")));
    }
    let rerr = |line: usize, message: String| err(line, Some(&name), message);
    let items = parse_sexprs(rest).map_err(|(l, m)| rerr(l, m))?;
    let is_atom = |sx: Option<&Sx>, word: &str| matches!(sx, Some(Sx::Atom(a, _)) if a == word);
    let [lhs_sx, arrow, rhs_sx, tail @ ..] = items.as_slice() else {
        return Err(rerr(first_line, "expected `LHS => RHS [if CONDITION ...]`".into()));
    };
    if !is_atom(Some(arrow), "=>") {
        return Err(rerr(first_line, "expected `LHS => RHS [if CONDITION ...]`".into()));
    }
    let conds: &[Sx] = match tail.split_first() {
        None => &[],
        Some((sx, rest)) if is_atom(Some(sx), "if") => {
            if rest.is_empty() {
                return Err(rerr(sx.line(), "`if` needs at least one condition".into()));
            }
            rest
        }
        Some((sx, _)) => {
            return Err(rerr(
                sx.line(),
                format!("unexpected `{sx}` after the right-hand side (conditions start with `if`)"),
            ))
        }
    };

    let lhs = build_pattern(lhs_sx, Side::Lhs).map_err(|(l, m)| rerr(l, format!("left-hand side: {m}")))?;
    let rhs = build_pattern(rhs_sx, Side::Rhs).map_err(|(l, m)| rerr(l, format!("right-hand side: {m}")))?;
    let mut cond_asts = vec![];
    for c in conds {
        let ast = build_pattern(c, Side::Cond).map_err(|(l, m)| rerr(l, format!("condition `{c}`: {m}")))?;
        cond_asts.push(ast);
    }

    // Variables: the right-hand side and the conditions may only use what the left-hand side
    // binds (plus `root` in conditions).
    let bound: HashSet<Var> = vars_of(&lhs);
    let root: Var = root_var();
    for (what, ast, sx) in std::iter::once(("right-hand side", &rhs, rhs_sx))
        .chain(cond_asts.iter().zip(conds).map(|(a, sx)| ("condition", a, sx)))
    {
        if let Some(v) = vars_of(ast).into_iter().find(|v| !bound.contains(v) && *v != root) {
            return Err(rerr(sx.line(), format!("{what} uses {v}, which the left-hand side does not bind")));
        }
    }

    // The rule contract: strictly smaller right-hand side (clio ops first, then all nodes).
    let (ls, rs) = (size_of(&lhs), size_of(&rhs));
    if rs >= ls {
        return Err(rerr(
            rhs_sx.line(),
            format!(
                "violates the rule contract: the right-hand side must be smaller than the left-hand side \
                 (clio ops, then pattern nodes); lhs has {} ops / {} nodes, rhs {} ops / {} nodes \
                 (no commutativity, associativity or other size-keeping or growing rules)",
                ls.0, ls.1, rs.0, rs.1
            ),
        ));
    }
    let text = format!(
        "{name}: {} => {}{}",
        lhs_sx,
        rhs_sx,
        if conds.is_empty() {
            String::new()
        } else {
            format!(" if {}", conds.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" "))
        }
    );
    Ok(Rule { name, file: file.to_string(), line: first_line, text, lhs, rhs, conds: cond_asts })
}

fn vars_of(ast: &PatternAst<ENode>) -> HashSet<Var> {
    ast.as_ref()
        .iter()
        .filter_map(|n| match n {
            ENodeOrVar::Var(v) => Some(*v),
            _ => None,
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Lhs,
    Rhs,
    Cond,
}

/// What a position in a pattern must hold.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A tensor (an op operand).
    Tensor,
    /// A tensor or `none` (an optional operand).
    OptTensor,
    /// An attribute of this kind.
    Attr(AttrKind),
    /// Anything (helper arguments, conditions).
    Any,
}

type BuildError = (usize, String);

fn build_pattern(sx: &Sx, side: Side) -> Result<PatternAst<ENode>, BuildError> {
    if side == Side::Lhs && !matches!(sx, Sx::List(..)) {
        return Err((sx.line(), format!("must be a clio op application, not `{sx}`")));
    }
    let mut ast = PatternAst::default();
    build(sx, side, Expect::Any, &mut ast)?;
    if side == Side::Cond {
        match ast.as_ref().last() {
            Some(ENodeOrVar::ENode(ENode::Call(Func::Fn(h), _))) if h.kind() == FnKind::Pred => {}
            _ => return Err((sx.line(), "a condition must be a predicate such as (is-zero ?z) or (= ?a 0.0)".into())),
        }
    }
    Ok(ast)
}

fn kind_name(k: AttrKind) -> &'static str {
    match k {
        AttrKind::Float => "a float",
        AttrKind::Int => "an int",
        AttrKind::Ints => "an int list",
        AttrKind::Bool => "a bool",
        AttrKind::Str => "a string",
    }
}

fn build(sx: &Sx, side: Side, expect: Expect, ast: &mut PatternAst<ENode>) -> Result<Id, BuildError> {
    let line = sx.line();
    match sx {
        Sx::Atom(a, _) => {
            if a == "root" || a == ROOT_VAR {
                if side != Side::Cond {
                    return Err((line, "`root` (the matched class) may only appear in conditions".into()));
                }
                return Ok(ast.add(ENodeOrVar::Var(root_var())));
            }
            if a.starts_with('?') {
                let v: Var = a.parse().map_err(|e| (line, format!("bad variable `{a}`: {e:?}")))?;
                return Ok(ast.add(ENodeOrVar::Var(v)));
            }
            if a == "=>" || a == "if" {
                return Err((line, format!("unexpected `{a}`")));
            }
            let mut lit = Lit::parse(a).map_err(|m| (line, m))?;
            match expect {
                Expect::Tensor => {
                    return Err((line, format!("`{a}` cannot be an operand (operands are tensors: use a variable)")))
                }
                Expect::OptTensor if lit != Lit::None => {
                    return Err((line, format!("`{a}` cannot be an operand (use a variable, or `none` for absent)")))
                }
                Expect::Attr(k) => {
                    if let (AttrKind::Float, Lit::Int(v)) = (k, &lit) {
                        lit = Lit::Float(F32Bits::new(*v as f32));
                    }
                    if lit.kind() != Some(k) {
                        return Err((line, format!("`{a}` is not {}", kind_name(k))));
                    }
                }
                _ => {}
            }
            Ok(ast.add(ENodeOrVar::ENode(ENode::Lit(lit))))
        }
        Sx::List(items, _) => {
            let (head, args) = match items.split_first() {
                Some((Sx::Atom(h, _), args)) => (h.as_str(), args),
                _ => return Err((line, format!("`{sx}` must start with an op or function name"))),
            };
            if let Some((k, spec)) = op_index(head).and_then(|k| OPS.get(k as usize).map(|spec| (k, spec))) {
                if matches!(expect, Expect::Attr(_)) {
                    return Err((line, format!("`{head}` computes a tensor, but an attribute is expected here")));
                }
                let n_attrs = spec.attrs.len();
                let n_ops = if spec.variadic() {
                    if args.len() <= n_attrs {
                        return Err((line, format!("`{head}` takes at least one operand then {}", spec.signature())));
                    }
                    args.len() - n_attrs
                } else {
                    if args.len() != spec.operands.len() + n_attrs {
                        return Err((
                            line,
                            format!(
                                "`{head}` takes {} children ({}), got {}",
                                spec.operands.len() + n_attrs,
                                spec.signature(),
                                args.len()
                            ),
                        ));
                    }
                    spec.operands.len()
                };
                let mut ch = Vec::with_capacity(args.len());
                for (i, a) in args.iter().enumerate() {
                    let e = if i < n_ops {
                        if spec.optional(i) {
                            Expect::OptTensor
                        } else {
                            Expect::Tensor
                        }
                    } else {
                        // `args.len() == n_ops + n_attrs` (checked above), so the attribute exists.
                        match spec.attrs.get(i - n_ops) {
                            Some(attr) => Expect::Attr(attr.1),
                            None => return Err((line, format!("`{head}`: no attribute {}", i - n_ops))),
                        }
                    };
                    ch.push(build(a, side, e, ast)?);
                }
                return Ok(ast.add(ENodeOrVar::ENode(ENode::Call(Func::Op(k), ch.into()))));
            }
            let Some(h) = Helper::from_name(head) else {
                return Err((line, format!("unknown op or function `{head}`")));
            };
            match (side, h.kind()) {
                (Side::Lhs, _) => {
                    return Err((line, format!("`{head}` is a function; a left-hand side matches clio ops only")))
                }
                (Side::Rhs, FnKind::Pred) => {
                    return Err((line, format!("`{head}` is a predicate: it belongs in a condition after `if`")))
                }
                _ => {}
            }
            match (expect, h.kind()) {
                (Expect::Tensor | Expect::OptTensor, FnKind::Attr | FnKind::Pred) => {
                    return Err((line, format!("`{head}` computes an attribute, but a tensor is expected here")))
                }
                (Expect::Attr(_), FnKind::Const) => {
                    return Err((line, format!("`{head}` computes a tensor, but an attribute is expected here")))
                }
                _ => {}
            }
            match h.arity() {
                Some(n) if args.len() != n => {
                    return Err((line, format!("`{head}` takes {n} argument(s), got {}", args.len())))
                }
                None if args.is_empty() => return Err((line, format!("`{head}` takes at least one argument"))),
                _ => {}
            }
            if h == Helper::Option {
                let name = match args.first() {
                    Some(Sx::Atom(o, _)) if RULE_OPTIONS.contains(&o.as_str()) => o.clone(),
                    _ => {
                        return Err((line, format!("`option` reads one of: {}", RULE_OPTIONS.join(", "))));
                    }
                };
                let id = ast.add(ENodeOrVar::ENode(ENode::Lit(Lit::Str(name.into()))));
                return Ok(ast.add(ENodeOrVar::ENode(ENode::Call(Func::Fn(h), vec![id].into()))));
            }
            let mut ch = Vec::with_capacity(args.len());
            for a in args {
                ch.push(build(a, side, Expect::Any, ast)?);
            }
            Ok(ast.add(ENodeOrVar::ENode(ENode::Call(Func::Fn(h), ch.into()))))
        }
    }
}
