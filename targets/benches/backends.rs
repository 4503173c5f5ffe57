//! Compile speed of the target-dependent half of the compiler (issue 10, point 1): the
//! `quantize` pass (int8 and q8, calibration included), `plan-partitions` (which needs the
//! targets' cost models) and both backends' lowering to C (STM32F7 / CMSIS-NN s8 and GAP8 q8),
//! on MobileNetV2 and ResNet-18 at 224x224 and at CIFAR input (32x32). The target-independent
//! passes and import are in the root crate's `benches/compile.rs`.
//!
//! ```sh
//! cargo bench -p clio-targets --bench backends
//! cargo bench -p clio-targets --bench backends -- stm32   # a criterion filter
//! ```
//!
//! Every item starts from the same module: built by `clio::models` (seeded random weights) with
//! `fuse-bn` applied. `quantize` calibrates on one seeded random sample (the pass's
//! `calib=random:1,samples=1`); the lowering items start from the device part at cut 3
//! (`partition{cut=3}` after quantization), prepared outside the timing. A backend that rejects
//! a model is reported on stderr and skipped, never silently timed.

use clio::cost::TargetContext;
use clio::models::{mobilenet_v2, resnet18, MobileNetV2Config, ResNetConfig, Variant};
use clio::pass::PassManager;
use clio::Module;
use clio_targets::{gap8, stm32};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::sync::Arc;
use std::time::Duration;

fn models() -> Vec<(&'static str, Module)> {
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

fn target() -> TargetContext {
    TargetContext {
        device: Arc::from(clio_targets::load_target("gap8").unwrap()),
        cloud: Arc::from(clio_targets::load_target("cloud-gpu").unwrap()),
        link: Arc::from(clio_targets::load_link("ble").unwrap()),
    }
}

fn manager(pipeline: &str) -> PassManager {
    let mut pm = PassManager::from_pipeline(&clio_passes::registry(), pipeline).unwrap();
    pm.config.verify_each = false;
    pm.config.target = Some(target());
    pm
}

fn run(m: &mut Module, pipeline: &str) {
    manager(pipeline).run(m).unwrap();
}

const QUANTIZE_INT8: &str = "quantize{scheme=int8,calib=random:1,samples=1}";
const QUANTIZE_Q8: &str = "quantize{scheme=q8,weights=per-tensor,calib=random:1,samples=1}";

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("backends");
    group.sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    for (name, mut m) in models() {
        run(&mut m, "fuse-bn");
        for (label, pipeline) in
            [("quantize_int8", QUANTIZE_INT8), ("quantize_q8", QUANTIZE_Q8), ("plan_partitions", "plan-partitions")]
        {
            group.bench_function(format!("{name}/{label}"), |b| {
                b.iter_batched(
                    || (m.clone(), manager(pipeline)),
                    |(mut m, mut pm)| pm.run(&mut m).unwrap(),
                    BatchSize::LargeInput,
                )
            });
        }
        let mut s8 = m.clone();
        run(&mut s8, &format!("{QUANTIZE_INT8},partition{{cut=3}}"));
        let opts = stm32::Stm32Options::default();
        match stm32::lower(&s8, &opts) {
            Ok(_) => {
                group.bench_function(format!("{name}/stm32_lower"), |b| b.iter(|| stm32::lower(&s8, &opts).unwrap()));
            }
            Err(e) => eprintln!("{name}/stm32_lower skipped: {e}"),
        }
        let mut q8 = m.clone();
        run(&mut q8, &format!("{QUANTIZE_Q8},partition{{cut=3}}"));
        let opts = gap8::Gap8Options::default();
        match gap8::lower(&q8, &opts) {
            Ok(_) => {
                group.bench_function(format!("{name}/gap8_lower"), |b| b.iter(|| gap8::lower(&q8, &opts).unwrap()));
            }
            Err(e) => eprintln!("{name}/gap8_lower skipped: {e}"),
        }
    }
    group.finish();
}

criterion_group!(backends, benches);
criterion_main!(backends);
