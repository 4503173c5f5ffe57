//! Compile speed (issue 10, point 1): criterion benches for ONNX import, every standard pass on
//! its own and the whole pipeline, on MobileNetV2 and ResNet-18 at 224x224 and at CIFAR input
//! (32x32).
//!
//! ```sh
//! cargo bench --bench compile                 # everything (a few minutes)
//! cargo bench --bench compile -- import       # a criterion filter
//! ```
//!
//! Import reads the graph-only torchvision exports in `testdata/models/graph_only` with their
//! (absent) external weights zero-filled, as the tests do. Passes run on modules built by
//! `clio::models` (torchvision's architectures, seeded random weights, batch norms unfused),
//! each pass on a fresh clone of the module (cloning is outside the timing) without verify-each;
//! the pipeline runs through the pass manager with verify-each on. Whole-process comparisons
//! with onnxoptimizer, onnxsim and onnxruntime are in `scripts/bench/compile_speed.py`.

use clio::import::{import_path, ImportOptions, InputShape, MissingExternalData};
use clio::pass::PassManager;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::path::Path;
use std::time::Duration;

#[path = "support/models.rs"]
mod bench_models;
use bench_models::models;

/// The standard passes measured one by one (the module is unfused unless the name says so).
const PASSES: &[&str] = &[
    "fuse-bn",
    "skip-to-conv",
    "canonicalize",
    "dce",
    "fold-constants",
    "prune{ratio=0.5}",
    "sparsify{sparsity=0.5}",
    "partition{cut=3}",
    "slice{cut=3,bandwidth=none}",
];

/// The whole float pipeline (as in the scaling bench).
const PIPELINE: &str =
    "fuse-bn,skip-to-conv,canonicalize,fold-constants,dce,prune{ratio=0.5},slice{cut=3,bandwidth=none},sparsify{sparsity=0.5},dce";

fn manager(pipeline: &str, verify_each: bool) -> PassManager {
    let mut pm = PassManager::from_pipeline(&clio_passes::registry(), pipeline).unwrap();
    pm.config.verify_each = verify_each;
    pm
}

fn import(c: &mut Criterion) {
    let mut group = c.benchmark_group("import");
    for (file, shape) in [
        ("mobilenet_v2_224.onnx", "1x3x224x224"),
        ("mobilenet_v2_32.onnx", "1x3x32x32"),
        ("resnet18_224.onnx", "1x3x224x224"),
        ("resnet18_32.onnx", "1x3x32x32"),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/models/graph_only").join(file);
        let opts = ImportOptions {
            missing_external_data: MissingExternalData::Zeros,
            input_shapes: vec![InputShape::parse(shape).unwrap()],
            ..Default::default()
        };
        group.bench_function(file.trim_end_matches(".onnx"), |b| b.iter(|| import_path(&path, &opts).unwrap()));
    }
    group.finish();
}

fn passes(c: &mut Criterion) {
    for (name, module) in models() {
        let mut group = c.benchmark_group(name);
        for pass in PASSES {
            let label = pass.split('{').next().unwrap();
            group.bench_function(label, |b| {
                b.iter_batched(
                    || (module.clone(), manager(pass, false)),
                    |(mut m, mut pm)| {
                        pm.run(&mut m).unwrap();
                        m
                    },
                    BatchSize::LargeInput,
                )
            });
        }
        group.bench_function("pipeline", |b| {
            b.iter_batched(
                || (module.clone(), manager(PIPELINE, true)),
                |(mut m, mut pm)| {
                    pm.run(&mut m).unwrap();
                    m
                },
                BatchSize::LargeInput,
            )
        });
        group.finish();
    }
}

fn config() -> Criterion {
    // Few, short samples: the whole suite stays within minutes on a 2-core machine.
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = import, passes }
criterion_main!(benches);
