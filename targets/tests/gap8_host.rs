//! GAP8 backend, host emulation: q8 MobileNetV2 (width 0.35, CIFAR input) device parts at
//! several cut points, lowered to HWCE + cluster-kernel C, compiled with `cc` against the GAP8
//! shims (one core, DMA as memcpy) and run: bit-exact with the integer interpreter.

mod gap8_common;

use clio::models::{mobilenet_v2, MobileNetV2Config, Variant};
use gap8_common::{check_bit_exact, functions, q8_device, summary};

#[test]
fn mobilenet_v2_w035_bit_exact_at_three_cuts() {
    let cfg = MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
    let m = mobilenet_v2(&cfg).unwrap();
    let mut used = vec![];
    for cut in ["3", "5", "8"] {
        let c = check_bit_exact(&q8_device(m.clone(), cut, 5), &format!("mnv2_w035_cut{cut}"), 2);
        assert!(c.report.l1_bytes <= 64 * 1024);
        eprintln!("cut {cut}: {}", summary(&c));
        used.extend(functions(&c));
        used.extend(c.report.layers.iter().map(|l| l.reason.clone()));
    }
    assert!(used.iter().any(|u| u.contains("double-buffered input planes")), "no streamed dense layer");
    assert!(used.iter().any(|u| u.contains("double-buffered input chunks")), "no streamed depthwise layer");
    for f in ["HWCE_ProcessOneTile3x3_MultiOut", "ClioKerParConvAcc32_fps", "ClioKerParAdd_fps"] {
        assert!(used.iter().any(|u| u == f), "{f} not used: {used:?}");
    }
}

/// Width 0.5 with per-tensor weight formats: depthwise layers whose bias is exactly
/// representable in the output format run on AutoTiler's `KerParConvDW3x3Stride{1,2}_fps`.
#[test]
fn mobilenet_v2_w050_per_tensor_bit_exact() {
    let cfg = MobileNetV2Config { width: 0.5, input: 32, classes: 10, seed: 4, variant: Variant::Cifar };
    let m = mobilenet_v2(&cfg).unwrap();
    let mut used = vec![];
    for cut in ["3", "8"] {
        let mut d = m.clone();
        gap8_common::run_pipeline(
            &mut d,
            &format!(
                "fuse-bn,quantize{{scheme=q8,weights=per-tensor,calib=random:7,samples=3}},partition{{cut={cut}}}"
            ),
        );
        let c = check_bit_exact(&d, &format!("mnv2_w050_pt_cut{cut}"), 2);
        eprintln!("w0.5 cut {cut}: {} = {:.2} ms", summary(&c), c.report.est_cycles / 175e3);
        assert!(c.report.l1_bytes <= 64 * 1024 && c.report.l2_bytes <= 512 * 1024, "{:?}", c.report.l2_bytes);
        used.extend(functions(&c));
    }
    assert!(used.iter().any(|u| u == "ClioKerParAdd_fps"), "{used:?}");
}

/// A q8 model quantized with `align=true` (activation groups rescaled to fill their pow2
/// formats, weights compensating) is an ordinary q8 graph to the backend: bit-exact too.
#[test]
fn mobilenet_v2_w050_aligned_bit_exact() {
    let cfg = MobileNetV2Config { width: 0.5, input: 32, classes: 10, seed: 6, variant: Variant::Cifar };
    let mut d = mobilenet_v2(&cfg).unwrap();
    let pipeline = "fuse-bn,quantize{scheme=q8,align=true,calib=random:8,samples=3},partition{cut=8}";
    let report =
        clio::pass::PassManager::from_pipeline(&clio_passes::registry(), pipeline).unwrap().run(&mut d).unwrap();
    assert!(report.passes[1].stats["aligned-layers"] > 0, "{:?}", report.passes[1].stats);
    let c = check_bit_exact(&d, "mnv2_w050_aligned_cut8", 2);
    eprintln!("w0.5 aligned cut 8: {}", summary(&c));
}

/// Bias correction (`bias-correction=measured`) only changes integer bias values, some moved
/// to the edge of their 8-bit range: the generated C must still match the interpreter bit for
/// bit.
#[test]
fn mobilenet_v2_w050_bias_corrected_bit_exact() {
    let cfg = MobileNetV2Config { width: 0.5, input: 32, classes: 10, seed: 6, variant: Variant::Cifar };
    let mut d = mobilenet_v2(&cfg).unwrap();
    let pipeline =
        "fuse-bn,quantize{scheme=q8,align=true,bias-correction=measured,calib=random:8,samples=3},partition{cut=8}";
    let report =
        clio::pass::PassManager::from_pipeline(&clio_passes::registry(), pipeline).unwrap().run(&mut d).unwrap();
    let stats = &report.passes[1].stats;
    assert!(stats["bias-corrected"] > 0 && stats["bias-measured"] > 0, "{stats:?}");
    let c = check_bit_exact(&d, "mnv2_w050_bias_corrected_cut8", 2);
    eprintln!("w0.5 bias-corrected cut 8: {}", summary(&c));
}

/// The whole CIFAR MobileNetV2 0.35 on the device: the last cut point (after the classifier),
/// whose device part ends in `global_avg_pool` -> `flatten` -> `gemm`; the cut after the
/// average pool too. Cut ids come from `clio::analysis::cut_points` on the quantized graph.
#[test]
fn mobilenet_v2_w035_with_global_avg_pool_and_classifier_bit_exact() {
    let cfg = MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
    let m = mobilenet_v2(&cfg).unwrap();
    // Cut ids are counted on the graph `partition` sees (fused and quantized: the input's
    // `quantize` is a cut of its own).
    let mut fused = m.clone();
    gap8_common::run_pipeline(&mut fused, "fuse-bn,quantize{scheme=q8,calib=random:5,samples=3}");
    let cuts = clio::analysis::cut_points(&fused, "main", clio::analysis::Granularity::Block).unwrap();
    eprintln!("cuts: {:?}", cuts.iter().map(|c| (c.k, c.node.as_str())).collect::<Vec<_>>());
    let k_of =
        |node: &str| cuts.iter().find(|c| c.node == node).map(|c| c.k).unwrap_or_else(|| panic!("{node}: {cuts:?}"));
    for k in [k_of("avgpool"), k_of("classifier.1")] {
        let c = check_bit_exact(&q8_device(m.clone(), &k.to_string(), 5), &format!("mnv2_w035_head_k{k}"), 2);
        let f = functions(&c);
        assert!(f.iter().any(|u| u == "ClioKerParGlobalAvgPool_fps"), "cut {k}: {f:?}");
        assert!(c.report.l1_bytes <= 64 * 1024);
        eprintln!("cut {k}: {}", summary(&c));
    }
}
