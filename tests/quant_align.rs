//! `quantize{align=true}` (power-of-two range alignment) on the MobileNetV2 and ResNet test
//! models: the rescaled float graph computes the same outputs, the calibrated ranges fill their
//! power-of-two formats better, the q8 output SQNR improves, and the option is refused where it
//! has no meaning.

#[path = "common/quant.rs"]
mod common_quant;

use clio::interp::run;
use clio::ir::{Module, Op, Tensor};
use clio::pass::PassManager;
use clio::quant::calib::{CalibOptions, Calibration, RangeMethod, RangeTarget};
use clio::quant::math::pow2_frac;
use clio_passes::quantize::align::align_pow2;
use clio_passes::quantize::{Config, Scheme};
use common_quant::{calibrated_with, import_fused, output_sqnr, sample_dir, smooth_inputs};

fn calibrated(m: &Module, samples: &[Tensor]) -> Calibration {
    calibrated_with(m, samples, CalibOptions { progress: false, ..CalibOptions::default() })
}

fn q8() -> Config {
    Config { scheme: Scheme::Q8, align: true, graph: "main".into(), ..Config::default() }
}

/// Mean fraction of the q8 grid used by the calibrated minmax ranges of `names`.
fn occupancy(c: &Calibration, names: &[String]) -> f64 {
    let used: Vec<f64> = names
        .iter()
        .filter_map(|n| c.histograms.get(n))
        .map(|h| {
            let (lo, hi) = h.range(RangeMethod::MinMax, RangeTarget::Pow2 { qmax: 127 });
            let a = lo.abs().max(hi.abs());
            a * 2f64.powi(pow2_frac(a, 127)) / 127.0
        })
        .collect();
    used.iter().sum::<f64>() / used.len() as f64
}

#[test]
fn alignment_keeps_outputs_and_fills_formats() {
    for model in ["mobilenet_v2_tiny", "resnet_tiny"] {
        let float = import_fused(model);
        let calib_in = smooth_inputs(&float, 16, 1);
        let before = calibrated(&float, &calib_in);
        let mut m = float.clone();
        let mut after = before.clone();
        let a = align_pow2(&mut m, "main", &mut after, &q8()).unwrap();
        clio::verify::verify_module(&m).unwrap();
        assert!(a.rescaled_groups > 0 && a.rescaled_layers > 0, "{model}: {a:?}");
        assert!(a.factors.iter().all(|(_, f)| (1.0..2.0).contains(f)), "{model}: factors in [1, 2)");
        // The graph output is rescaled (the classifier is in a free group) and compensated.
        assert_eq!(a.compensations.len(), 1, "{model}");
        // Same outputs: only f32 rounding of the rescaled weights differs.
        for x in smooth_inputs(&float, 4, 9) {
            let (f, g) = (run(&float, "main", std::slice::from_ref(&x)).unwrap(), run(&m, "main", &[x]).unwrap());
            let (f, g) = (f[0].as_f32().unwrap(), g[0].as_f32().unwrap());
            let range = f.iter().fold(0f32, |acc, v| acc.max(v.abs()));
            let err = f.iter().zip(g).fold(0f32, |acc, (a, b)| acc.max((a - b).abs()));
            assert!(err <= 1e-5 * range, "{model}: max |diff| {err} vs output range {range}");
        }
        // The rescaled histograms are those of the rescaled graph, and fill q8 better.
        let recal = calibrated(&m, &calib_in);
        let names: Vec<String> = a.factors.iter().map(|(n, _)| n.clone()).collect();
        for n in &names {
            let (x, y) = (after.histograms[n].max(), recal.histograms[n].max());
            assert!((x - y).abs() <= 1e-4 * x.abs().max(1e-6), "{model} %{n}: scaled max {x} vs recalibrated {y}");
        }
        let (o0, o1) = (occupancy(&before, &names), occupancy(&after, &names));
        eprintln!("{model}: q8 grid occupancy of rescaled values {o0:.3} -> {o1:.3}");
        assert!(o1 > o0 + 0.05, "{model}: occupancy {o0:.3} -> {o1:.3}");
    }
}

#[test]
fn alignment_improves_q8_output_sqnr_on_mobilenet_v2() {
    let float = import_fused("mobilenet_v2_tiny");
    let dir = sample_dir("clio_align_sqnr", &smooth_inputs(&float, 32, 3));
    let eval = smooth_inputs(&float, 16, 4);
    let mut db = vec![];
    for align in [false, true] {
        let mut q = float.clone();
        let p = format!("quantize{{scheme=q8,align={align},calib=\"{}\"}}", dir.display());
        let report = PassManager::from_pipeline(&clio_passes::registry(), &p).unwrap().run(&mut q).unwrap();
        if align {
            assert!(report.passes[0].stats["aligned-values"] > 0);
            // The output's compensation stays float, after the output's dequantize.
            let g = q.main_graph().unwrap();
            let out = g.node(g.outputs()[0].node);
            assert!(matches!(out.op, Op::Mul) && out.name().ends_with(".unalign"), "{}", out.name());
            let src = g.operand(g.outputs()[0].node, 0).unwrap();
            assert!(matches!(g.node(src.node).op, Op::Dequantize));
        }
        db.push(output_sqnr(&float, &q, &eval));
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("mobilenet_v2_tiny q8 output SQNR: {:.2} dB, aligned {:.2} dB", db[0], db[1]);
    assert!(db[1] > db[0] + 1.5, "alignment should gain over 1.5 dB: {:.2} -> {:.2}", db[0], db[1]);
}

#[test]
fn alignment_is_refused_for_int8() {
    let mut m = import_fused("resnet_tiny");
    let err = PassManager::from_pipeline(&clio_passes::registry(), "quantize{scheme=int8,align=true,calib=random}")
        .map_err(|e| e.to_string())
        .and_then(|mut pm| pm.run(&mut m).map(|_| ()).map_err(|e| e.to_string()))
        .unwrap_err();
    assert!(err.contains("align") && err.contains("q8"), "{err}");
    let mut c = Calibration::default();
    let err = align_pow2(&mut m, "main", &mut c, &Config { align: true, ..Config::default() }).unwrap_err();
    assert!(err.contains("q8 and q16"), "{err}");
}
