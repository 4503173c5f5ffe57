//! `partition`: every cut point splits a model into a device graph and a cloud graph that verify
//! and whose composition computes exactly the original output.

mod common;
use clio::analysis::{cut_points, Granularity};
use clio::verify::verify_module;
use common::*;

fn compose(m: &clio::Module, x: &clio::Tensor) -> Vec<f32> {
    let sent = clio::interp::run(m, "device", std::slice::from_ref(x)).unwrap();
    assert_eq!(sent.len(), 1);
    clio::interp::run(m, "cloud", &sent).unwrap()[0].as_f32().unwrap().to_vec()
}

#[test]
fn every_cut_of_every_test_model_composes_exactly() {
    for (name, mut m, x) in test_models() {
        run_pipeline(&mut m, "fuse-bn");
        let want = run(&m, &x);
        for granularity in ["block", "layer"] {
            let cuts = cut_points(&m, "main", Granularity::parse(granularity).unwrap()).unwrap();
            assert!(cuts.len() >= 3, "{name}: {} cuts", cuts.len());
            for c in &cuts {
                let mut p = m.clone();
                let report = run_pipeline(&mut p, &format!("partition{{cut={},granularity={granularity}}}", c.k));
                verify_module(&p).unwrap();
                assert_eq!(p.graph_names(), vec!["device", "cloud"]);
                let got = compose(&p, &x);
                assert_eq!(got, want, "{name}: cut {} (%{}) changes the output", c.k, c.node);
                assert_eq!(report.passes[0].stats["cut-bytes-q8"] as u64, c.bytes_q8);
            }
        }
    }
}

#[test]
fn cut_by_name_and_errors() {
    let (_, mut m, x) = test_models().into_iter().find(|(n, _, _)| n == "resnet_tiny").unwrap();
    let cuts = cut_points(&m, "main", Granularity::Block).unwrap();
    let c = &cuts[3];
    let mut p = m.clone();
    run_pipeline(&mut p, &format!("partition{{cut=\"{}\"}}", c.node));
    assert_eq!(compose(&p, &x), run(&m, &x));
    let g = p.graph("device").unwrap();
    let out = g.node(g.outputs()[0].node);
    assert_eq!(out.op.name(), "transmit");
    assert_eq!(p.graph("cloud").unwrap().node(p.graph("cloud").unwrap().inputs()[0]).name(), c.node);

    let reg = clio_passes::registry();
    let err = |pipeline: &str, m: &mut clio::Module| {
        clio::pass::PassManager::from_pipeline(&reg, pipeline).unwrap().run(m).unwrap_err().to_string()
    };
    let e = err("partition{cut=999}", &mut m.clone());
    assert!(
        e.starts_with("pass `partition` failed: no cut point `999` in graph @main (cut points: 0 (%input),"),
        "{e}"
    );
    let e = err("partition{cut=/layer1/layer1.0/conv1/Conv}", &mut m.clone());
    assert!(e.contains("no cut point `/layer1/layer1.0/conv1/Conv`"), "{e}");
    let e = err("partition{cut=2},partition{cut=2}", &mut m);
    assert!(e.contains("pass `partition` failed: cut points: no graph @main"), "{e}");
    let e = clio::pass::PassManager::from_pipeline(&reg, "partition").err().unwrap().to_string();
    assert!(e.contains("option `cut` is required"), "{e}");
}
