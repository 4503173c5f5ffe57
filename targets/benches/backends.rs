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
use clio::pass::PassManager;
use clio::Module;
use clio_targets::{gap8, stm32};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion};
use std::sync::Arc;
use std::time::Duration;

#[path = "../../benches/support/models.rs"]
mod bench_models;
use bench_models::models;

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

/// Times `lower` under `label`, or says on stderr why the backend rejected the model.
fn bench_lowering<T, E: std::fmt::Display>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    label: &str,
    lower: impl Fn() -> Result<T, E>,
) {
    match lower() {
        Ok(_) => {
            group.bench_function(label, |b| b.iter(|| lower().ok()));
        }
        Err(e) => eprintln!("{label} skipped: {e}"),
    }
}

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
        bench_lowering(&mut group, &format!("{name}/stm32_lower"), || stm32::lower(&s8, &opts));
        let mut q8 = m.clone();
        run(&mut q8, &format!("{QUANTIZE_Q8},partition{{cut=3}}"));
        let opts = gap8::Gap8Options::default();
        bench_lowering(&mut group, &format!("{name}/gap8_lower"), || gap8::lower(&q8, &opts));
    }
    group.finish();
}

criterion_group!(backends, benches);
criterion_main!(backends);
