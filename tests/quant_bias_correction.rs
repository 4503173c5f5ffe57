//! `quantize{bias-correction=true}` on the MobileNetV2 and ResNet test models: every conv/gemm
//! bias is corrected, the mean output error of the quantized model shrinks, int8 output SQNR
//! rises, and a calibration without mean maps is refused naming the layer.

#[path = "common/quant.rs"]
mod common_quant;

use clio::interp::{run, run_int};
use clio::ir::{Module, Op, Tensor};
use clio::pass::{Pass, PassContext};
use clio::quant::calib::{CalibOptions, Calibration};
use clio_passes::quantize::{Config, Quantize, Scheme, INFO};
use common_quant::{calibrated_with, import_fused, output_sqnr, smooth_inputs};

fn calibration(m: &Module, samples: &[Tensor], mean_maps: bool) -> Calibration {
    calibrated_with(m, samples, CalibOptions { progress: false, mean_maps, ..CalibOptions::default() })
}

/// Quantizes `float` with `cfg` on a precomputed calibration; the module and the
/// `bias-corrected` statistic.
fn quantize(float: &Module, cfg: Config, calib: Calibration) -> Result<(Module, i64), String> {
    let mut m = float.clone();
    let mut cx = PassContext::new(&INFO, clio::Limits::default());
    Quantize::new(cfg).with_calibration(calib).run(&mut m, &mut cx).map_err(|e| e.to_string())?;
    clio::verify::verify_module(&m).map_err(|e| e.to_string())?;
    let (stats, _) = cx.finish();
    Ok((m, stats.get("bias-corrected").copied().unwrap_or(0)))
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
        let calib = calibration(&float, &calib_in, true);
        let eval = smooth_inputs(&float, 16, 2);
        let cfg = |bc| Config { scheme: Scheme::Int8, graph: "main".into(), bias_correction: bc, ..Config::default() };
        let (plain, n0) = quantize(&float, cfg(false), calib.clone()).unwrap();
        let (corrected, n1) = quantize(&float, cfg(true), calib).unwrap();
        assert_eq!(n0, 0, "{model}");
        assert_eq!(n1, biased_layers(&float), "{model}: every conv/gemm with a bias is corrected");
        // On the calibration samples (where the means were measured) the systematic error of
        // the outputs shrinks; on other samples the SQNR does not drop.
        let (b0, b1) = (mean_output_bias(&float, &plain, &calib_in), mean_output_bias(&float, &corrected, &calib_in));
        let (s0, s1) = (output_sqnr(&float, &plain, &eval), output_sqnr(&float, &corrected, &eval));
        eprintln!("{model}: mean output bias {b0:.3e} -> {b1:.3e}; int8 output SQNR {s0:.2} -> {s1:.2} dB");
        assert!(b1 < 0.7 * b0, "{model}: systematic error {b0:.3e} -> {b1:.3e}");
        assert!(s1 > s0 - 0.25, "{model}: SQNR {s0:.2} -> {s1:.2}");
        if model == "mobilenet_v2_tiny" {
            assert!(s1 > s0 + 2.0, "{model}: bias correction should gain over 2 dB: {s0:.2} -> {s1:.2}");
        }
    }
}

#[test]
fn bias_correction_needs_the_calibration_means() {
    let float = import_fused("resnet_tiny");
    let calib = calibration(&float, &smooth_inputs(&float, 2, 1), false);
    let cfg = Config { scheme: Scheme::Q8, graph: "main".into(), bias_correction: true, ..Config::default() };
    let err = quantize(&float, cfg, calib).unwrap_err();
    assert!(err.contains("bias-correction") && err.contains("%/conv1/Conv"), "{err}");
}
