//! `quantize{bias-correction=weights|measured}` on the MobileNetV2 and ResNet test models:
//! every conv/gemm bias is corrected, the systematic output error of the quantized model
//! shrinks, int8 (weights) and q8 (measured) output SQNR rise, and a calibration without mean
//! maps is refused naming the layer.

#[path = "common/quant.rs"]
mod common_quant;

use clio::interp::{run, run_int};
use clio::ir::{Module, Op, Tensor};
use clio::pass::{Pass, PassContext};
use clio::quant::calib::{CalibOptions, Calibration};
use clio_passes::quantize::{BiasCorrection, Config, Quantize, Scheme, INFO};
use common_quant::{calibrated_with, import_fused, output_sqnr, sample_dir, smooth_inputs};

fn calibration(m: &Module, samples: &[Tensor], mean_maps: bool) -> Calibration {
    calibrated_with(m, samples, CalibOptions { progress: false, mean_maps, ..CalibOptions::default() })
}

/// Quantizes `float` with `cfg` on a precomputed calibration; the module and the
/// `bias-corrected` and `bias-measured` statistics.
fn quantize(float: &Module, cfg: Config, calib: Calibration) -> Result<(Module, [i64; 2]), String> {
    let mut m = float.clone();
    let mut cx = PassContext::new(&INFO, clio::Limits::default());
    Quantize::new(cfg).with_calibration(calib).run(&mut m, &mut cx).map_err(|e| e.to_string())?;
    clio::verify::verify_module(&m).map_err(|e| e.to_string())?;
    let (stats, _) = cx.finish();
    let stat = |k: &str| stats.get(k).copied().unwrap_or(0);
    Ok((m, [stat("bias-corrected"), stat("bias-measured")]))
}

/// Mean absolute value, over output elements, of the mean error (quantized - float) over the
/// samples: the systematic part of the output error.
fn mean_output_bias(float: &Module, quant: &Module, inputs: &[Tensor]) -> f64 {
    let mut sum: Vec<f64> = vec![];
    for x in inputs {
        let f = run(float, "main", std::slice::from_ref(x)).unwrap();
        let q = run_int(quant, "main", std::slice::from_ref(x)).unwrap();
        let (f, q) = (f[0].as_f32().unwrap(), q[0].as_f32().unwrap());
        sum.resize(f.len(), 0.0);
        for (s, (a, b)) in sum.iter_mut().zip(f.iter().zip(q)) {
            *s += (*b - *a) as f64;
        }
    }
    sum.iter().map(|s| (s / inputs.len() as f64).abs()).sum::<f64>() / sum.len() as f64
}

fn biased_layers(m: &Module) -> i64 {
    let g = m.main_graph().unwrap();
    g.node_ids().filter(|id| matches!(g.node(*id).op, Op::Conv2d(_) | Op::Gemm(_)) && g.operands(*id).len() > 2).count()
        as i64
}

#[test]
fn bias_correction_removes_the_systematic_output_error() {
    for model in ["mobilenet_v2_tiny", "resnet_tiny"] {
        let float = import_fused(model);
        let calib_in = smooth_inputs(&float, 32, 1);
        let dir = sample_dir(&format!("clio_bc_{model}"), &calib_in);
        let calib = calibration(&float, &calib_in, true);
        let eval = smooth_inputs(&float, 16, 2);
        let cfg = |scheme, bias_correction| Config {
            scheme,
            graph: "main".into(),
            bias_correction,
            calib: dir.display().to_string(),
            ..Config::default()
        };
        let mut row = vec![];
        for (scheme, bc) in [
            (Scheme::Int8, BiasCorrection::None),
            (Scheme::Int8, BiasCorrection::Weights),
            (Scheme::Q8, BiasCorrection::None),
            (Scheme::Q8, BiasCorrection::Measured),
        ] {
            let (q, [corrected, measured]) = quantize(&float, cfg(scheme, bc), calib.clone()).unwrap();
            let expect_corrected = if bc.is_on() { biased_layers(&float) } else { 0 };
            assert_eq!(corrected, expect_corrected, "{model} {scheme:?} {bc:?}: every conv/gemm with a bias");
            assert_eq!(measured > 0, bc == BiasCorrection::Measured, "{model} {scheme:?} {bc:?}: {measured} moved");
            row.push((mean_output_bias(&float, &q, &calib_in), output_sqnr(&float, &q, &eval)));
        }
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!(
            "{model}: (mean output bias, SQNR dB) int8 {:?} -> weights {:?}; q8 {:?} -> measured {:?}",
            row[0], row[1], row[2], row[3]
        );
        // On the calibration samples (where the means were measured) the systematic error of
        // the outputs shrinks; on other samples the SQNR does not drop.
        for (before, after, what) in [(row[0], row[1], "int8 weights"), (row[2], row[3], "q8 measured")] {
            assert!(after.0 < 0.7 * before.0, "{model} {what}: systematic error {:.3e} -> {:.3e}", before.0, after.0);
            assert!(after.1 > before.1 - 0.25, "{model} {what}: SQNR {:.2} -> {:.2}", before.1, after.1);
        }
        if model == "mobilenet_v2_tiny" {
            assert!(row[1].1 > row[0].1 + 2.0, "{model}: int8 weights correction should gain over 2 dB: {row:?}");
        }
        // The measured correction removes most of q8's systematic error on both models.
        assert!(row[3].1 > row[2].1 + 1.5, "{model}: q8 measured correction should gain over 1.5 dB: {row:?}");
    }
}

#[test]
fn bias_correction_needs_the_calibration_means() {
    let float = import_fused("resnet_tiny");
    let calib = calibration(&float, &smooth_inputs(&float, 2, 1), false);
    let cfg = Config {
        scheme: Scheme::Q8,
        graph: "main".into(),
        bias_correction: BiasCorrection::Weights,
        ..Config::default()
    };
    let err = quantize(&float, cfg, calib).unwrap_err();
    assert!(err.contains("bias-correction") && err.contains("%/conv1/Conv"), "{err}");
}
