//! Pass infrastructure: pipeline syntax, registry, option validation, verify-each, IR dumps,
//! disabling, bisection and statistics.

use clio::ir::{Op, TensorType};
use clio::pass::*;
use clio::text::{parse_module, print_module, PrintOptions};
use clio::Module;
use std::cell::RefCell;
use std::rc::Rc;

fn module() -> Module {
    parse_module(
        "module @m {\n  graph @main(%x: tensor<1x2x3x3xf32>) -> (tensor<1x2x3x3xf32>) {\n    %a = relu(%x) : tensor<1x2x3x3xf32>\n    %b = sigmoid(%a) : tensor<1x2x3x3xf32>\n    return %b\n  }\n}\n",
        &Default::default(),
    )
    .unwrap()
}

static RELU_TO_CLIP: PassInfo = PassInfo {
    name: "relu-to-clip",
    summary: "Rewrites relu as clip{min=0} (a test pass).",
    options: &[
        OptionInfo { name: "max", kind: OptionKind::Float, default: Some("inf"), help: "upper bound" },
        OptionInfo { name: "mode", kind: OptionKind::Enum(&["fast", "slow"]), default: Some("fast"), help: "mode" },
    ],
    statistics: &[StatInfo { name: "rewritten", help: "relus rewritten" }],
};

struct ReluToClip {
    max: f32,
}

impl Pass for ReluToClip {
    fn info(&self) -> &'static PassInfo {
        &RELU_TO_CLIP
    }
    fn run(&mut self, m: &mut Module, cx: &mut PassContext) -> Result<(), PassError> {
        for g in m.graphs_mut() {
            let ids: Vec<_> = g.node_ids().filter(|n| matches!(g.node(*n).op, Op::Relu)).collect();
            for id in ids {
                g.node_mut(id).op = Op::Clip(clio::ops::Clip { min: 0.0, max: self.max });
                cx.stat("rewritten", 1);
            }
        }
        Ok(())
    }
}

static BREAKER: PassInfo =
    PassInfo { name: "breaker", summary: "Corrupts a type (a test pass).", options: &[], statistics: &[] };
struct Breaker;
impl Pass for Breaker {
    fn info(&self) -> &'static PassInfo {
        &BREAKER
    }
    fn run(&mut self, m: &mut Module, _: &mut PassContext) -> Result<(), PassError> {
        let g = m.graph_mut("main").unwrap();
        let id = g.find("b").unwrap();
        g.node_mut(id).results[0] = TensorType::f32([1, 2, 3, 4]);
        Ok(())
    }
}

fn registry() -> PassRegistry {
    let mut reg = PassRegistry::new();
    reg.register(&RELU_TO_CLIP, |o| {
        let max = o.float("max")? as f32;
        Ok(Box::new(ReluToClip { max }))
    });
    reg.register(&BREAKER, |_| Ok(Box::new(Breaker)));
    reg
}

#[test]
fn pipelines_print_back_identically() {
    for text in [
        "",
        "fuse-bn",
        "fuse-bn,canonicalize,quantize{scheme=int8}",
        "canonicalize{max-iters=8,rules=/tmp/r.txt},dce",
        "quantize{scheme=int8,calib=\"a,b c.npy\"},slice{sizes=4:8:16}",
    ] {
        let p = Pipeline::parse(text).unwrap();
        assert_eq!(p.to_string(), text);
        assert_eq!(Pipeline::parse(&p.to_string()).unwrap(), p);
    }
    // Spacing is normalised.
    assert_eq!(
        Pipeline::parse(" fuse-bn , quantize{ scheme = int8 } ").unwrap().to_string(),
        "fuse-bn,quantize{scheme=int8}"
    );
}

#[test]
fn pipeline_syntax_errors_have_columns() {
    for (text, want) in [
        ("fuse-bn,,dce", "<pipeline>:1:9: expected a pass name, found `,`"),
        ("quantize{scheme}", "<pipeline>:1:16: expected `=`, found `}`"),
        ("quantize{scheme=int8", "<pipeline>:1:21: expected `,` or `}`, found end of input"),
        ("a{x=1,x=2}", "option `x` of pass `a` is given twice"),
        ("fuse-bn dce", "expected `,` between passes"),
    ] {
        let e = Pipeline::parse(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
}

#[test]
fn registry_and_option_errors_are_specific() {
    let reg = registry();
    let e = |p: &str| PassManager::from_pipeline(&reg, p).err().expect("should fail").to_string();
    assert_eq!(e("nope"), "unknown pass `nope` (registered: relu-to-clip, breaker)");
    assert_eq!(e("relu-to-clip{maxx=1}"), "pass `relu-to-clip`: unknown option `maxx` (options: max, mode)");
    assert_eq!(e("relu-to-clip{max=big}"), "pass `relu-to-clip`: option `max`: expected float, got `big`");
    assert_eq!(e("relu-to-clip{mode=medium}"), "pass `relu-to-clip`: option `mode`: expected fast|slow, got `medium`");
    assert_eq!(e("breaker{x=1}"), "pass `breaker`: unknown option `x` (options: none)");
}

#[test]
fn runs_with_stats_and_records_the_pipeline() {
    let reg = registry();
    let mut pm = PassManager::from_pipeline(&reg, "relu-to-clip{max=6.0}").unwrap();
    assert_eq!(pm.pipeline().to_string(), "relu-to-clip{max=6.0}");
    let mut m = module();
    let report = pm.run(&mut m).unwrap();
    assert_eq!(report.passes[0].stats["rewritten"], 1);
    assert!(print_module(&m, &PrintOptions::default()).contains("%a = clip(%x) {min = 0.0, max = 6.0}"));
    assert!(report.timing_table().contains("relu-to-clip{max=6.0}"));
}

#[test]
fn verify_each_names_the_pass_and_the_node() {
    let reg = registry();
    let mut pm = PassManager::from_pipeline(&reg, "relu-to-clip,breaker").unwrap();
    let e = pm.run(&mut module()).unwrap_err().to_string();
    assert_eq!(
        e,
        "IR invalid after pass `breaker`: verifier: graph @main, node %b (sigmoid): result 0 is declared tensor<1x2x3x4xf32> but the op produces shape [1, 2, 3, 3] of f32"
    );
    // With verify-each off the broken module gets through (the caller asked for it).
    let mut pm = PassManager::from_pipeline(&reg, "breaker").unwrap();
    pm.config.verify_each = false;
    assert!(pm.run(&mut module()).is_ok());
}

#[test]
fn dumps_disable_and_bisect() {
    let reg = registry();
    let dumps: Rc<RefCell<Vec<(String, String)>>> = Rc::default();
    let sink = dumps.clone();
    let mut pm = PassManager::from_pipeline(&reg, "relu-to-clip,breaker").unwrap();
    pm.config.print_ir_after_all = true;
    pm.config.print_ir_before.insert("relu-to-clip".into());
    pm.config.disabled.insert("breaker".into());
    pm.config.dump = Box::new(move |h, ir| sink.borrow_mut().push((h.to_string(), ir.to_string())));
    let report = pm.run(&mut module()).unwrap();
    let d = dumps.borrow();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].0, "IR Dump Before relu-to-clip");
    assert!(d[0].1.contains("relu(%x)"));
    assert_eq!(d[1].0, "IR Dump After relu-to-clip");
    assert!(d[1].1.contains("clip(%x)"));
    assert_eq!(report.passes[1].skipped.as_deref(), Some("disabled"));

    let mut pm = PassManager::from_pipeline(&reg, "breaker,relu-to-clip").unwrap();
    pm.config.bisect_limit = Some(0);
    let mut m = module();
    let before = print_module(&m, &PrintOptions::default());
    let report = pm.run(&mut m).unwrap();
    assert_eq!(print_module(&m, &PrintOptions::default()), before);
    assert!(report.passes.iter().all(|p| p.skipped.as_deref() == Some("bisect limit")));
}

#[test]
fn invalid_input_module_is_rejected_before_running() {
    let reg = registry();
    let mut pm = PassManager::from_pipeline(&reg, "relu-to-clip").unwrap();
    let mut m = module();
    let g = m.graph_mut("main").unwrap();
    let a = g.find("a").unwrap();
    g.node_mut(a).results[0] = TensorType::f32([9]);
    let e = pm.run(&mut m).unwrap_err().to_string();
    assert!(e.starts_with("IR invalid before the pipeline: verifier: graph @main, node %a (relu)"), "{e}");
}
