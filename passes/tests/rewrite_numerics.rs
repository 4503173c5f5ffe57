//! fuse-bn and skip-to-conv preserve the model's output on every test model (through the
//! reference interpreter) and are idempotent.

mod common;
use clio::ir::Op;
use common::*;

fn count(m: &clio::Module, name: &str) -> usize {
    m.graphs().map(|g| g.node_ids().filter(|n| g.node(*n).op.name() == name).count()).sum()
}

#[test]
fn fuse_bn_preserves_outputs_within_1e_5() {
    for (name, m, x) in test_models() {
        let before = run(&m, &x);
        let bns = count(&m, "batch_norm");
        let mut fused = m.clone();
        let report = run_pipeline(&mut fused, "fuse-bn");
        let s = &report.passes[0].stats;
        let handled = s["fused-conv"]
            + s["fused-gemm"]
            + s["to-scale-shift"]
            + s["left-shared-producer"]
            + s["left-not-foldable"];
        assert_eq!(handled as usize, bns, "{name}: every batch norm is accounted for");
        assert_eq!(count(&fused, "batch_norm") as i64, s["left-shared-producer"] + s["left-not-foldable"], "{name}");
        let after = run(&fused, &x);
        let d = rel_diff(&after, &before);
        eprintln!("{name}: {bns} batch norms, {s:?}, max diff {d:.2e} of range");
        assert!(d <= 1e-5, "{name}: fused output differs by {d} of the output range");
        // Idempotent.
        let once = printed(&fused);
        run_pipeline(&mut fused, "fuse-bn");
        assert_eq!(printed(&fused), once, "{name}: second fuse-bn changed the IR");
    }
}

#[test]
fn fuse_bn_folds_every_conv_bn_of_the_torchvision_style_models() {
    for (name, m, _) in test_models() {
        if !(name.starts_with("mobilenet") || name.starts_with("resnet") || name.starts_with("vgg")) {
            continue;
        }
        let mut fused = m.clone();
        run_pipeline(&mut fused, "fuse-bn");
        assert_eq!(count(&fused, "batch_norm"), 0, "{name}");
        assert_eq!(count(&fused, "scale_shift"), 0, "{name}");
    }
}

#[test]
fn skip_to_conv_preserves_outputs_and_reports_cost() {
    for (name, m, x) in test_models() {
        let before = run(&m, &x);
        let mut rewritten = m.clone();
        let report = run_pipeline(&mut rewritten, "skip-to-conv");
        let s = &report.passes[0].stats;
        let after = run(&rewritten, &x);
        let d = rel_diff(&after, &before);
        assert!(d <= 1e-6, "{name}: {d}");
        if name.starts_with("mobilenet") || name.starts_with("resnet") {
            assert!(s["rewritten"] > 0, "{name}: residual blocks expected");
            let g = rewritten.main_graph().unwrap();
            let cost_before = clio::analysis::graph_cost(&m, m.main_graph().unwrap());
            let cost_after = clio::analysis::graph_cost(&rewritten, g);
            assert_eq!(cost_after.macs - cost_before.macs, s["macs-added"] as u64, "{name}");
            assert_eq!(cost_after.params - cost_before.params, s["params-added"] as u64, "{name}");
        }
        if name.starts_with("resnet") {
            assert!(s["projection-kept"] > 0, "{name}: projection shortcuts expected");
        }
        let once = printed(&rewritten);
        run_pipeline(&mut rewritten, "skip-to-conv");
        assert_eq!(printed(&rewritten), once, "{name}: second skip-to-conv changed the IR");
    }
}

#[test]
fn skip_to_conv_after_and_limit_pick_one_block() {
    let (_, m, x) = test_models().into_iter().find(|(n, _, _)| n == "mobilenet_v2_tiny").unwrap();
    let g = m.main_graph().unwrap();
    // The input of the second residual add in topological order.
    let adds: Vec<_> = g.topo_order().unwrap().into_iter().filter(|n| matches!(g.node(*n).op, Op::Add)).collect();
    assert!(adds.len() >= 2);
    let ops = g.operands(adds[1]);
    let block_input = ops.iter().find(|v| g.uses(**v).len() > 1).expect("identity branch");
    let cut = g.node(block_input.node).name().to_string();
    let mut one = m.clone();
    let report = run_pipeline(&mut one, &format!("skip-to-conv{{after=\"{cut}\",limit=1}}"));
    assert_eq!(report.passes[0].stats["rewritten"], 1);
    let skips: Vec<String> = one
        .main_graph()
        .unwrap()
        .node_ids()
        .map(|n| one.main_graph().unwrap().node(n).name().to_string())
        .filter(|n| n.ends_with(".skip"))
        .collect();
    assert_eq!(skips, vec![format!("{}.skip", g.node(adds[1]).name())]);
    assert!(rel_diff(&run(&one, &x), &run(&m, &x)) <= 1e-6);
}
