//! Golden IR of partitioned and sliced MobileNetV2 and ResNet (the tiny test models, batch norm
//! fused as for deployment): the device graph, the transmit, the cloud graph / per-slice heads
//! with their per-slice and tied weights. Weights print as digests, so a change in the channel
//! order or the weight slicing shows up as changed digests.

mod common;
use common::*;

fn snapshot(name: &str, text: String) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn partitioned_and_sliced_mobilenet_v2_and_resnet() {
    for (model, cut) in [("mobilenet_v2_tiny", 3), ("resnet_tiny", 2)] {
        let (_, m, _) = test_models().into_iter().find(|(n, _, _)| n == model).unwrap();
        let mut fused = m.clone();
        run_pipeline(&mut fused, "fuse-bn");
        let mut p = fused.clone();
        let pipeline = format!("partition{{cut={cut}}}");
        run_pipeline(&mut p, &pipeline);
        snapshot(&format!("partitioned_{model}"), format!("// pipeline: fuse-bn,{pipeline}\n{}", printed(&p)));
        let mut s = fused.clone();
        let pipeline = format!("slice{{cut={cut},sizes=4:8,radio-ms=20}}");
        run_pipeline(&mut s, &pipeline);
        snapshot(&format!("sliced_{model}"), format!("// pipeline: fuse-bn,{pipeline}\n{}", printed(&s)));
    }
}
