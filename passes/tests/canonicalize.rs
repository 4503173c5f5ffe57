//! `canonicalize`: numeric equivalence and idempotence on every golden input and on the real
//! test models, the rule contract, rule-file errors, custom cost functions and saturation
//! limits.

mod canonicalize_support;

use canonicalize_support::*;
use clio::ir::{Op, TensorType};
use clio::pass::{PassError, PassManager};
use clio_passes::canonicalize::{default_cost, Canonicalize, CostFn, RuleSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Golden inputs: the pipeline of the header keeps the outputs (3 random inputs each) and is
/// idempotent (a second run prints the same IR).
#[test]
fn golden_inputs_numerics_and_idempotence() {
    let files = files(&root().join("testdata/ir"), "canonicalize_", "clio");
    assert!(files.len() >= 6, "canonicalize golden files: {files:?}");
    for path in files {
        let what = path.file_name().unwrap().to_string_lossy().into_owned();
        let pipeline = run_header(&std::fs::read_to_string(&path).unwrap());
        let before = parse_file(&path);
        let mut after = before.clone();
        run_pipeline(&mut after, &pipeline);
        for seed in 1..=3 {
            let inputs = random_inputs(&before, seed, 4.0);
            assert_close(&what, &eval(&before, &inputs), &eval(&after, &inputs), 1e-6);
        }
        let once = printed(&after);
        run_pipeline(&mut after, &pipeline);
        assert_eq!(once, printed(&after), "{what}: a second `{pipeline}` changed the IR");
    }
}

/// The real test models: `fuse-bn,canonicalize,dce` keeps the outputs within 1e-5 of the
/// output range on the committed inputs, and canonicalize is idempotent on the result.
#[test]
fn models_numerics_and_idempotence() {
    let models = files(&root().join("testdata/models"), "", "onnx");
    assert!(models.len() >= 5);
    for path in models {
        let what = path.file_name().unwrap().to_string_lossy().into_owned();
        let original = import_model(&path);
        let input = clio::io::read_npy(&path.with_extension("input.npy"))
            .map(|t| vec![t])
            .unwrap_or_else(|_| random_inputs(&original, 7, 1.0));
        let mut m = original.clone();
        let report = run_pipeline(&mut m, "fuse-bn,canonicalize,dce");
        let stats = &report.passes[1].stats;
        eprintln!("{what}: canonicalize {:?} {stats:?} {:?}", report.passes[1].elapsed, report.passes[1].notes);
        assert_eq!(stats["regions-skipped"], 0, "{what}: {:?}", report.passes[1].notes);
        assert_close(&what, &eval(&original, &input), &eval(&m, &input), 1e-5);
        let once = printed(&m);
        let again = run_pipeline(&mut m, "canonicalize");
        assert_eq!(once, printed(&m), "{what}: a second canonicalize changed the IR");
        assert_eq!(again.passes[0].stats["regions-changed"], 0, "{what}");
    }
}

/// Canonicalize alone (no fuse-bn first) on the models: numerics and idempotence too.
#[test]
fn models_canonicalize_alone() {
    for path in files(&root().join("testdata/models"), "", "onnx") {
        let what = path.file_name().unwrap().to_string_lossy().into_owned();
        let original = import_model(&path);
        let inputs = random_inputs(&original, 3, 1.0);
        let mut m = original.clone();
        run_pipeline(&mut m, "canonicalize{remove-identity-convs=true}");
        assert_close(&what, &eval(&original, &inputs), &eval(&m, &inputs), 1e-5);
        let once = printed(&m);
        run_pipeline(&mut m, "canonicalize{remove-identity-convs=true}");
        assert_eq!(once, printed(&m), "{what}: not idempotent");
    }
}

/// After skip-to-conv, the identity convs it adds survive canonicalize by default and are
/// removed with remove-identity-convs=true; the outputs never change.
#[test]
fn identity_convs_from_skip_to_conv() {
    let path = root().join("testdata/models/resnet_tiny.onnx");
    let original = import_model(&path);
    let input = vec![clio::io::read_npy(&path.with_extension("input.npy")).unwrap()];
    let mut m = original.clone();
    let r = run_pipeline(&mut m, "fuse-bn,skip-to-conv,canonicalize,dce");
    let added = r.passes[1].stats["rewritten"];
    assert!(added > 0);
    let count = |m: &clio::Module| {
        let g = m.graph("main").unwrap();
        g.node_ids().filter(|n| g.node(*n).name().ends_with(".skip")).count() as i64
    };
    assert_eq!(count(&m), added, "identity convs are kept by default");
    let r = run_pipeline(&mut m, "canonicalize{remove-identity-convs=true},dce");
    assert_eq!(count(&m), 0, "{:?}", r.passes[0].notes);
    assert_close("resnet_tiny", &eval(&original, &input), &eval(&m, &input), 1e-5);
}

/// Every op the language models lowers and raises back exactly: with no rules, a graph using
/// all of them comes out unchanged and no region is skipped.
#[test]
fn every_modelled_op_round_trips() {
    let src = r#"module @all {
  weight @w : tensor<4x2x3x3xf32> = dense<[0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 0.5, -0.5]>
  weight @c4 : tensor<4xf32> = dense<[1.0, 0.5, 2.0, 0.25]>
  weight @fc : tensor<3x4xf32> = dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]>
  weight @m : tensor<4x3xf32> = dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]>
  weight @slope : tensor<4x1x1xf32> = dense<[0.1, 0.2, 0.3, 0.4]>
  graph @main(%x: tensor<1x2x6x6xf32>) -> (tensor<1x3xf32>, tensor<1x4x4x4xf32>, tensor<1x3xf32>, tensor<2x1x4x4xf32>) {
    %conv = conv2d(%x, @w, @c4) {strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], groups = 1} : tensor<1x4x4x4xf32>
    %bn = batch_norm(%conv, @c4, @c4, @c4, @c4) {epsilon = 1e-3} : tensor<1x4x4x4xf32>
    %ss = scale_shift(%bn, @c4, @c4) : tensor<1x4x4x4xf32>
    %hs = hard_sigmoid(%ss) {alpha = 0.2, beta = 0.5} : tensor<1x4x4x4xf32>
    %hw = hard_swish(%hs) : tensor<1x4x4x4xf32>
    %sg = sigmoid(%hw) : tensor<1x4x4x4xf32>
    %pr = prelu(%sg, @slope) : tensor<1x4x4x4xf32>
    %pd = pad(%pr) {pads = [0, 0, 1, 1, 0, 0, 1, 1], mode = "edge", value = 0.0} : tensor<1x4x6x6xf32>
    %mp = max_pool(%pd) {kernel = [3, 3], strides = [1, 1], pads = [0, 0, 0, 0], ceil_mode = false} : tensor<1x4x4x4xf32>
    %ap = avg_pool(%mp) {kernel = [3, 3], strides = [1, 1], pads = [1, 1, 1, 1], ceil_mode = false, count_include_pad = true} : tensor<1x4x4x4xf32>
    %cat = concat(%ap, %mp) {axis = 0} : tensor<2x4x4x4xf32>
    %cs = channel_slice(%cat) {axis = 1, start = 1, end = 2} : tensor<2x1x4x4xf32>
    %gp = global_avg_pool(%ap) : tensor<1x4x1x1xf32>
    %fl = flatten(%gp) {axis = 1} : tensor<1x4xf32>
    %sq = squeeze(%gp) {axes = [2, 3]} : tensor<1x4xf32>
    %us = unsqueeze(%sq) {axes = [0]} : tensor<1x1x4xf32>
    %rs = reshape(%us) {shape = [1, 4]} : tensor<1x4xf32>
    %a = add(%fl, %rs) : tensor<1x4xf32>
    %s = sub(%a, %fl) : tensor<1x4xf32>
    %mu = mul(%s, %a) : tensor<1x4xf32>
    %dv = div(%mu, %a) : tensor<1x4xf32>
    %gm = gemm(%dv, @fc) {alpha = 1.0, beta = 1.0, trans_a = false, trans_b = true} : tensor<1x3xf32>
    %sm = softmax(%gm) {axis = 1} : tensor<1x3xf32>
    %mm = matmul(%dv, @m) : tensor<1x3xf32>
    %tr = transpose(%mm) {perm = [1, 0]} : tensor<3x1xf32>
    %tr2 = transpose(%tr) {perm = [1, 0]} : tensor<1x3xf32>
    %cl = clip(%tr2) {min = -1.0, max = 1.0} : tensor<1x3xf32>
    %rl = relu(%ap) : tensor<1x4x4x4xf32>
    return %sm, %rl, %cl, %cs
  }
}"#;
    let m0 = clio::text::parse_module(src, &Default::default()).unwrap();
    let mut m = m0.clone();
    let r = run_pipeline(&mut m, "canonicalize{builtin-rules=false}");
    assert_eq!(r.passes[0].stats["regions-skipped"], 0, "{:?}", r.passes[0].notes);
    assert!(r.passes[0].stats["regions"] >= 6);
    assert_eq!(printed(&m0), printed(&m));
    // With the rules, the transpose pair and the reshape chain collapse; the outputs stay.
    let r = run_pipeline(&mut m, "canonicalize");
    assert_eq!(r.passes[0].stats["regions-changed"], 2, "{}", printed(&m));
    let text = printed(&m);
    assert!(!text.contains("transpose") && !text.contains("unsqueeze") && !text.contains("%rs"), "{text}");
    let inputs = random_inputs(&m0, 5, 2.0);
    assert_close("all ops", &eval(&m0, &inputs), &eval(&m, &inputs), 1e-6);
}

/// The rule contract holds for every built-in rule (smaller right-hand side, in clio ops and
/// then pattern nodes), and the documentation lists every built-in rule.
#[test]
fn builtin_rules_keep_the_contract() {
    let rules = RuleSet::builtin();
    assert!(rules.rules().len() >= 25);
    let docs = include_str!("../src/canonicalize/mod.rs");
    for r in rules.rules() {
        let (l, rr) = (r.lhs_size(), r.rhs_size());
        assert!(rr.0 <= l.0, "{}: rhs has more ops than lhs", r.name);
        assert!(rr < l, "{}: rhs {rr:?} is not smaller than lhs {l:?}", r.name);
        assert!(docs.contains(&format!("`{}`", r.name)), "rule {} is not listed in the module docs", r.name);
    }
}

/// User rules that break the contract are rejected with the file, line and rule name.
#[test]
fn contract_violations_are_rejected() {
    let cases = [
        ("add-comm: (add ?a ?b) => (add ?b ?a)", "rule contract"),
        ("grow: (relu ?x) => (relu (relu ?x))", "rule contract"),
        ("assoc: (add (add ?a ?b) ?c) => (add ?a (add ?b ?c))", "rule contract"),
        ("same: (sigmoid ?x) => (sigmoid ?x)", "rule contract"),
        ("unbound: (relu ?x) => ?y", "does not bind"),
        ("cond-unbound: (relu ?x) => ?x if (is-zero ?z)", "does not bind"),
    ];
    for (text, want) in cases {
        let e = RuleSet::parse(&format!("# header\n{text}\n"), "user.rules").unwrap_err();
        let msg = e.to_string();
        let name = text.split(':').next().unwrap();
        assert!(msg.starts_with(&format!("user.rules:2: rule `{name}`: ")), "{msg}");
        assert!(msg.contains(want), "{msg}");
    }
}

/// A rules file with errors: the message names the file, the line and the rule, through the
/// pipeline too.
#[test]
fn rule_file_parse_errors() {
    let cases: &[(&str, usize, &str, &str)] = &[
        (
            "ok: (relu (relu ?x)) => (relu ?x)\n\nbad-op: (rleu ?x) => ?x\n",
            3,
            "bad-op",
            "unknown op or function `rleu`",
        ),
        ("arity: (clip ?x 0.0) => ?x\n", 1, "arity", "`clip` takes 3 children (input, min, max), got 2"),
        ("kind: (clip ?x [1,2] 6.0) => ?x\n", 1, "kind", "is not a float"),
        ("cont: (relu (relu ?x))\n   =>\n   (relu ?x\n", 3, "cont", "missing `)`"),
        ("noarrow: (relu ?x) ?x\n", 1, "noarrow", "expected `LHS => RHS"),
        ("pred-rhs: (relu ?x) => (is-zero ?x)\n", 1, "pred-rhs", "belongs in a condition"),
        ("lhs-fn: (fmax ?a ?b) => ?a\n", 1, "lhs-fn", "matches clio ops only"),
        ("opt: (relu ?x) => ?x if (option keep-everything)\n", 1, "opt", "`option` reads one of"),
        ("dup: (relu (relu ?x)) => (relu ?x)\ndup: (sigmoid (relu ?x)) => (relu ?x)\n", 2, "dup", "already exists"),
    ];
    for (text, line, rule, want) in cases {
        let e = RuleSet::parse(text, "x.rules").unwrap_err();
        assert_eq!((e.file.as_str(), e.line, e.rule.as_deref()), ("x.rules", *line, Some(*rule)), "{e}");
        assert!(e.message.contains(want), "{e}");
    }
    // Through a pipeline: the pass fails to build, naming file, line and rule.
    let dir = std::env::temp_dir().join(format!("clio-canon-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.rules");
    std::fs::write(&file, "# my rules\nok: (relu (relu ?x)) => (relu ?x)\nbroken: (relu ?x => ?x\n").unwrap();
    let pipeline = format!("canonicalize{{rules=\"{}\"}}", file.display());
    let err = match PassManager::from_pipeline(&clio_passes::registry(), &pipeline) {
        Err(e) => e,
        Ok(_) => panic!("a broken rules file must be rejected"),
    };
    let msg = err.to_string();
    assert!(matches!(err, PassError::Option { .. }), "{msg}");
    assert!(msg.contains(&format!("{}:3: rule `broken`", file.display())), "{msg}");
    // A missing file is an error naming it.
    let missing = format!("canonicalize{{rules=\"{}\"}}", dir.join("none.rules").display());
    let err = PassManager::from_pipeline(&clio_passes::registry(), &missing).err().expect("missing file");
    assert!(err.to_string().contains("none.rules: cannot read"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A user rule file adds rules (here: a relu of a sigmoid or hard_sigmoid is the sigmoid), and
/// `disable-rules` removes a built-in rule.
#[test]
fn user_rules_apply() {
    let dir = std::env::temp_dir().join(format!("clio-canon-user-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("user.rules");
    // Activations that are already non-negative need no relu.
    std::fs::write(
        &file,
        "# user rules\nrelu-of-sigmoid: (relu (sigmoid ?x)) => (sigmoid ?x)   # sigmoid >= 0\n\
         hs-relu: (relu (hard_sigmoid ?x ?a ?b)) => (hard_sigmoid ?x ?a ?b)\n",
    )
    .unwrap();
    let src = "module @u { graph @main(%x: tensor<1x4xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>) {\n\
        %s = sigmoid(%x) : tensor<1x4xf32>\n %r = relu(%s) : tensor<1x4xf32>\n\
        %c = clip(%x) {min = 0.0, max = inf} : tensor<1x4xf32>\n return %r, %c } }";
    let m0 = clio::text::parse_module(src, &Default::default()).unwrap();
    let mut m = m0.clone();
    let p = format!("canonicalize{{rules=\"{}\",disable-rules=clip-to-relu}}", file.display());
    run_pipeline(&mut m, &p);
    let text = printed(&m);
    assert!(!text.contains("relu(%s)"), "{text}");
    assert!(text.contains("clip(%x)"), "clip-to-relu was disabled: {text}");
    let inputs = random_inputs(&m0, 9, 3.0);
    assert_close("user rules", &eval(&m0, &inputs), &eval(&m, &inputs), 0.0);
    let err = PassManager::from_pipeline(&clio_passes::registry(), "canonicalize{disable-rules=no-such-rule}");
    assert!(err.err().is_some_and(|e| e.to_string().contains("no rule `no-such-rule`")));
    std::fs::remove_dir_all(&dir).ok();
}

/// scale-shift-into-conv on a conv whose filter another conv also reads: the shared filter
/// stays, the folded one is a new weight; outputs unchanged; scale and shift weights go away.
#[test]
fn scale_shift_fold_with_shared_filter() {
    let src = "module @s {\n\
        weight @w : tensor<2x2x1x1xf32> = dense<[1.0, -1.0, 0.5, 2.0]>\n\
        weight @s : tensor<2xf32> = dense<[3.0, -0.5]>\n\
        weight @t : tensor<2xf32> = dense<[0.5, 1.0]>\n\
        graph @main(%x: tensor<1x2x3x3xf32>) -> (tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>) {\n\
        %a = conv2d(%x, @w) {strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], groups = 1} : tensor<1x2x3x3xf32>\n\
        %a.ss = scale_shift(%a, @s, @t) : tensor<1x2x3x3xf32>\n\
        %b = conv2d(%x, @w) {strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], groups = 1} : tensor<1x2x3x3xf32>\n\
        return %a.ss, %b } }";
    let m0 = clio::text::parse_module(src, &Default::default()).unwrap();
    let mut m = m0.clone();
    let r = run_pipeline(&mut m, "canonicalize");
    assert_eq!(r.passes[0].stats["weights-created"], 2);
    let names: Vec<&String> = m.weights().keys().collect();
    assert_eq!(names, ["w", "w.1", "a.ss.bias"], "{}", printed(&m));
    let inputs = random_inputs(&m0, 2, 2.0);
    assert_close("shared filter", &eval(&m0, &inputs), &eval(&m, &inputs), 1e-6);
    let once = printed(&m);
    run_pipeline(&mut m, "canonicalize");
    assert_eq!(once, printed(&m));
}

fn clip_module() -> clio::Module {
    let src = "module @c { graph @main(%x: tensor<1x16xf32>) -> (tensor<1x16xf32>) {\n\
        %c = clip(%x) {min = 0.0, max = inf} : tensor<1x16xf32>\n\
        %t = transpose(%c) {perm = [0, 1]} : tensor<1x16xf32>\n return %t } }";
    clio::text::parse_module(src, &Default::default()).unwrap()
}

/// The caller's cost function decides what is extracted: the default turns
/// `clip {0, inf}` into `relu` and drops the identity transpose; a cost that prices `relu` and
/// `clip` the other way round keeps the clip (the rewrite happened in the e-graph, extraction
/// chose), and a cost that makes every op free still removes the transpose (ties go to the
/// smaller term).
#[test]
fn custom_cost_function_changes_extraction() {
    let run = |pass: Canonicalize| {
        let mut m = clip_module();
        let mut pm = PassManager::new();
        pm.add(Box::new(pass));
        let r = pm.run(&mut m).unwrap();
        (printed(&m), r.passes[0].stats.clone(), r.passes[0].notes.clone())
    };
    let (default, stats, notes) = run(Canonicalize::new());
    assert!(default.contains("relu(%x)") && !default.contains("transpose"), "{default}");
    assert!(stats["rewrites"] >= 2);
    // Per-rule counts are the pass's remarks.
    for rule in ["clip-to-relu", "transpose-identity"] {
        assert!(notes.iter().any(|n| n.starts_with(&format!("rule `{rule}` applied"))), "{notes:?}");
    }

    let prefer_clip: CostFn = Arc::new(|op: &Op, ins: &[&TensorType], out: &TensorType| match op {
        Op::Relu => 1e9,
        _ => default_cost(op, ins, out),
    });
    let (kept, stats, _) = run(Canonicalize::new().with_cost(prefer_clip));
    assert!(kept.contains("clip(%x)") && !kept.contains("relu") && !kept.contains("transpose"), "{kept}");
    assert!(stats["rewrites"] >= 2, "the rules still fired: {stats:?}");

    let free: CostFn = Arc::new(|_: &Op, _: &[&TensorType], _: &TensorType| 0.0);
    let (free, _, _) = run(Canonicalize::new().with_cost(free));
    assert!(free.contains("relu(%x)") && !free.contains("transpose"), "{free}");

    // A cost that returns NaN or negative values does not break extraction.
    let weird: CostFn = Arc::new(|op: &Op, _: &[&TensorType], _: &TensorType| match op {
        Op::Relu => f64::NAN,
        _ => -5.0,
    });
    let (weird, _, _) = run(Canonicalize::new().with_cost(weird));
    assert!(weird.contains("clip(%x)"), "NaN counts as infinite: {weird}");
}

/// Saturation limits: a tiny node limit stops saturation before any rewrite (counted in
/// `node-limit`), one iteration gets part of the way; the result always verifies (the pass
/// manager checks) and computes the same outputs.
#[test]
fn limits_stop_saturation_safely() {
    let path = root().join("testdata/ir/canonicalize_activations.clio");
    let m0 = parse_file(&path);
    let inputs = random_inputs(&m0, 11, 8.0);
    let want = eval(&m0, &inputs);

    let mut m = m0.clone();
    let r = run_pipeline(&mut m, "canonicalize{max-nodes=1}");
    let s = &r.passes[0].stats;
    assert_eq!(s["node-limit"], s["regions"], "{s:?}");
    assert_eq!(s["rewrites"], 0);
    assert_eq!(printed(&m), printed(&m0));
    assert_close("max-nodes=1", &want, &eval(&m, &inputs), 0.0);

    let mut m = m0.clone();
    let r = run_pipeline(&mut m, "canonicalize{max-iters=1}");
    let s = &r.passes[0].stats;
    assert!(s["iter-limit"] > 0, "{s:?}");
    assert_close("max-iters=1", &want, &eval(&m, &inputs), 0.0);

    let mut m = m0.clone();
    let r = run_pipeline(&mut m, "canonicalize{timeout-ms=0}");
    let s = &r.passes[0].stats;
    assert!(s["time-limit"] > 0, "{s:?}");
    assert_close("timeout-ms=0", &want, &eval(&m, &inputs), 0.0);

    // Through the Rust API too.
    let mut m = m0.clone();
    let mut pm = PassManager::new();
    pm.add(Box::new(Canonicalize::new().with_limits(2, 20, Duration::from_secs(1))));
    pm.run(&mut m).unwrap();
    assert_close("with_limits", &want, &eval(&m, &inputs), 0.0);
}

/// The graph-only MobileNetV2 at 224x224 (weights zero-filled): canonicalize runs, verifies and
/// is idempotent; prints the time it took.
#[test]
fn mobilenet_v2_224_graph_only() {
    let path = root().join("testdata/models/graph_only/mobilenet_v2_224.onnx");
    let opts = clio::import::ImportOptions {
        missing_external_data: clio::import::MissingExternalData::Zeros,
        input_shapes: vec![clio::import::InputShape::parse("1x3x224x224").unwrap()],
        ..Default::default()
    };
    let mut m = clio::import::import_path(&path, &opts).unwrap();
    run_pipeline(&mut m, "fuse-bn");
    let start = Instant::now();
    let r = run_pipeline(&mut m, "canonicalize");
    eprintln!("canonicalize on mobilenet_v2_224: {:?} ({:?})", start.elapsed(), r.passes[0].stats);
    let once = printed(&m);
    run_pipeline(&mut m, "canonicalize");
    assert_eq!(once, printed(&m));
}

/// A long single-reader chain is split into regions of at most `max-region-nodes` nodes; the
/// rounds of region discovery still fold the whole chain (relu-relu across the boundaries),
/// with the outputs unchanged. A cap of 0 is an option error.
#[test]
fn long_chains_are_split_into_bounded_regions() {
    let n = 300;
    let mut body = String::from("    %r0 = relu(%x) : tensor<1x4xf32>\n");
    for i in 1..n {
        body.push_str(&format!("    %r{i} = relu(%r{}) : tensor<1x4xf32>\n", i - 1));
    }
    let src = format!(
        "module @chain {{\n  graph @main(%x: tensor<1x4xf32>) -> (tensor<1x4xf32>) {{\n{body}    return %r{}\n  }}\n}}\n",
        n - 1
    );
    let m0 = clio::text::parse_module(&src, &Default::default()).unwrap();
    let inputs = random_inputs(&m0, 5, 4.0);
    let want = eval(&m0, &inputs);
    let relus = |m: &clio::Module| printed(m).matches("= relu(").count();
    let mut capped = m0.clone();
    let r = run_pipeline(&mut capped, "canonicalize{max-region-nodes=16}");
    let s = &r.passes[0].stats;
    assert!(s["regions"] >= (n / 16) as i64, "{s:?}");
    assert_eq!(relus(&capped), 1, "{}", printed(&capped));
    assert_close("max-region-nodes=16", &want, &eval(&capped, &inputs), 0.0);
    let mut whole = m0.clone();
    run_pipeline(&mut whole, "canonicalize");
    assert_eq!(printed(&whole), printed(&capped));
    let e = PassManager::from_pipeline(&clio_passes::registry(), "canonicalize{max-region-nodes=0}").err().unwrap();
    assert!(e.to_string().contains("max-region-nodes"), "{e}");
}
