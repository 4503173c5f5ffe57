//! The models the compile-speed benches measure (`benches/compile.rs` and
//! `targets/benches/backends.rs` include this file with `#[path]`): torchvision's MobileNetV2
//! (width 1.0) and ResNet-18 at 224x224 and at CIFAR input (32x32), 1000 classes, seeded random
//! weights, batch norms unfused.

use clio::models::{mobilenet_v2, resnet18, MobileNetV2Config, ResNetConfig, Variant};
use clio::Module;

/// `(label, module)` for each benchmarked model.
pub fn models() -> Vec<(&'static str, Module)> {
    let mnv2 = |input, variant| {
        mobilenet_v2(&MobileNetV2Config { width: 1.0, input, classes: 1000, seed: 1, variant }).unwrap()
    };
    let r18 = |input, variant| resnet18(&ResNetConfig { input, classes: 1000, seed: 1, variant, ..Default::default() });
    vec![
        ("mobilenet_v2_224", mnv2(224, Variant::ImageNet)),
        ("mobilenet_v2_cifar32", mnv2(32, Variant::Cifar)),
        ("resnet18_224", r18(224, Variant::ImageNet).unwrap()),
        ("resnet18_cifar32", r18(32, Variant::Cifar).unwrap()),
    ]
}
