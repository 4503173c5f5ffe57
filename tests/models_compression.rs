//! Golden tests of compressed models: pruned MobileNetV2 and ResNet-18 (Rust-built, CIFAR
//! variants with seeded weights) and the tiny MobileNetV2 / ResNet of testdata/models, each as
//! the pipeline, its statistics, its per-layer remarks and the resulting IR (weights as content
//! digests). Re-bless with `INSTA_UPDATE=always cargo test --test models_compression` after
//! reviewing the change.

use clio::import::{import_path, ImportOptions, InputShape};
use clio::models::{mobilenet_v2, resnet18, MobileNetV2Config, ResNetConfig, Variant};
use clio::pass::PassManager;
use clio::text::{print_module, PrintOptions};
use clio::Module;
use std::path::Path;

fn golden(name: &str, mut m: Module, pipeline: &str) {
    let report = PassManager::from_pipeline(&clio_passes::registry(), pipeline).unwrap().run(&mut m).unwrap();
    clio::verify::verify_module(&m).unwrap();
    let mut text = format!("// pipeline: {pipeline}\n");
    for p in &report.passes {
        for (k, v) in &p.stats {
            text += &format!("// stat {}.{k} = {v}\n", p.name);
        }
        for n in &p.notes {
            text += &format!("// remark {}: {n}\n", p.name);
        }
    }
    text += &print_module(&m, &PrintOptions::default());
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.bind(|| insta::assert_snapshot!(name, text));
}

fn tiny(file: &str) -> Module {
    let opts = ImportOptions {
        input_shapes: vec![InputShape { name: None, shape: vec![1, 3, 32, 32] }],
        ..Default::default()
    };
    import_path(&Path::new("testdata/models").join(file), &opts).unwrap()
}

#[test]
fn pruned_mobilenet_v2_cifar() {
    let m = mobilenet_v2(&MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 1, variant: Variant::Cifar })
        .unwrap();
    golden("pruned_mobilenet_v2_w035_cifar", m, "prune{ratio=0.5,round-to=8}");
}

#[test]
fn pruned_resnet18_cifar() {
    let m = resnet18(&ResNetConfig { width: 0.25, input: 32, classes: 10, seed: 1, variant: Variant::Cifar }).unwrap();
    golden("pruned_resnet18_w025_cifar", m, "prune{ratio=0.5,criterion=bn-gamma}");
}

#[test]
fn pruned_tiny_models() {
    golden("pruned_mobilenet_v2_tiny", tiny("mobilenet_v2_tiny.onnx"), "prune{ratio=0.5,scope=global,round-to=4}");
    golden("pruned_resnet_tiny", tiny("resnet_tiny.onnx"), "prune{ratio=0.5},sparsify{sparsity=0.5}");
}
