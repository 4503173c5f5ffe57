//! Oracle check of the int8 integer interpreter against tflite-micro's reference kernels
//! (which CMSIS-NN states it is bit-exact with).
//!
//! Generates 1300 random one-op cases (conv with strides, SAME/VALID padding and dilation;
//! depthwise conv with channel multiplier 1; fully connected; add; average and max pooling;
//! global average pooling as TFLite's MEAN over H and W; softmax) with random quantization parameters and zero points, runs each through
//! `clio::interp::run_int` on a one-node quantized graph, then runs all of them in one
//! `python3 tests/oracle/tflm/run_cases.py` invocation that builds each .tflite and runs it with
//! tflite-micro. Zero mismatches are required.
//!
//! tflite-micro must be importable: `pip install tflite-micro numpy flatbuffers pyyaml`
//! (`.ci/run` installs it). The test fails, never skips, when it is not.

use clio::interp::run_int;
use clio::ir::{DType, Graph, Module, Op, QScheme, Quant, Tensor, TensorData, TensorType, Value, Weight};
use clio::ops::{AvgPool, Conv2d, Gemm, MaxPool, Softmax, Window2d};
use clio::quant::math::SplitMix64;
use serde_json::{json, Value as J};
use std::path::PathBuf;
use std::process::Command;

/// One generated case: the clio module (NCHW), its int8 input(s), and the JSON for Python.
struct Case {
    module: Module,
    inputs: Vec<Tensor>,
    json: J,
    /// Result shape in NCHW (converted to NHWC for comparison when rank 4).
    desc: String,
}

fn loguniform(r: &mut SplitMix64, lo: f64, hi: f64) -> f32 {
    (lo.ln() + r.uniform() * (hi.ln() - lo.ln())).exp() as f32
}

fn rand_i8(r: &mut SplitMix64, n: usize) -> Vec<i8> {
    (0..n).map(|_| r.range_i64(-128, 127) as i8).collect()
}

fn act_ty(shape: &[usize], scale: f32, zp: i32) -> TensorType {
    TensorType { shape: shape.to_vec(), dtype: DType::I8, quant: Some(Quant::affine(scale, zp)) }
}

fn nchw_to_nhwc<T: Copy>(v: &[T], s: &[usize]) -> Vec<T> {
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let mut out = Vec::with_capacity(v.len());
    for ni in 0..n {
        for y in 0..h {
            for x in 0..w {
                for ci in 0..c {
                    out.push(v[((ni * c + ci) * h + y) * w + x]);
                }
            }
        }
    }
    out
}

fn nhwc(s: &[usize]) -> Vec<usize> {
    vec![s[0], s[2], s[3], s[1]]
}

/// TFLite output size and (before, after) padding of one spatial axis.
fn tfl_dim(size: usize, k: usize, stride: usize, dil: usize, same: bool) -> Option<(usize, usize, usize)> {
    let eff = (k - 1) * dil + 1;
    if same {
        let out = size.div_ceil(stride);
        let total = ((out - 1) * stride + eff).saturating_sub(size);
        Some((out, total / 2, total - total / 2))
    } else {
        if size < eff {
            return None;
        }
        Some(((size - eff) / stride + 1, 0, 0))
    }
}

fn one_node(
    name: &str,
    op: Op,
    inputs: &[TensorType],
    weights: Vec<(&str, Weight)>,
    out: TensorType,
) -> (Module, Vec<Value>) {
    let mut m = Module::new("case");
    let mut g = Graph::new("main");
    let mut ops: Vec<Value> =
        inputs.iter().enumerate().map(|(i, t)| g.add_input(&format!("x{i}"), t.clone())).collect();
    for (wn, w) in weights {
        let ty = w.ty();
        m.set_weight(wn, w);
        ops.push(g.weight_value(wn, ty));
    }
    let y = g.add_node(name, op, &ops, vec![out]);
    g.set_outputs(vec![Value::of(y)]);
    m.add_graph(g);
    clio::verify::verify_module(&m).unwrap_or_else(|e| panic!("case module invalid: {e}"));
    (m, ops)
}

fn gen_conv(r: &mut SplitMix64, depthwise: bool) -> Option<Case> {
    let c = r.range_i64(1, 8) as usize;
    let o = if depthwise { c } else { r.range_i64(1, 8) as usize };
    let (h, w) = (r.range_i64(3, 10) as usize, r.range_i64(3, 10) as usize);
    let (kh, kw) = (r.range_i64(1, 4) as usize, r.range_i64(1, 4) as usize);
    let stride = [r.range_i64(1, 3) as usize, r.range_i64(1, 3) as usize];
    let dil = if r.uniform() < 0.25 { [r.range_i64(1, 2) as usize, r.range_i64(1, 2) as usize] } else { [1, 1] };
    let same = r.uniform() < 0.5;
    let (oh, pt, pb) = tfl_dim(h, kh, stride[0], dil[0], same)?;
    let (ow, pl, pr) = tfl_dim(w, kw, stride[1], dil[1], same)?;
    let s_in = loguniform(r, 0.005, 0.1);
    let zp_in = r.range_i64(-128, 127) as i32;
    let per_channel = depthwise || r.uniform() < 0.8;
    let sw: Vec<f32> = if per_channel {
        (0..o).map(|_| loguniform(r, 0.002, 0.05)).collect()
    } else {
        vec![loguniform(r, 0.002, 0.05); o]
    };
    let taps = if depthwise { kh * kw } else { c * kh * kw };
    let wq: Vec<i8> = (0..o * taps).map(|_| r.range_i64(-127, 127) as i8).collect();
    let acc_scale = 73.0 * 73.0 * (taps as f64).sqrt();
    let bias: Vec<i32> = (0..o).map(|_| (r.uniform() * 2.0 - 1.0) * acc_scale).map(|v| v as i32).collect();
    let mean_sw = sw.iter().map(|s| *s as f64).sum::<f64>() / o as f64;
    let s_out = (s_in as f64 * mean_sw * acc_scale / 40.0 * (0.5 + 1.5 * r.uniform())) as f32;
    let zp_out = r.range_i64(-128, 127) as i32;
    let x = rand_i8(r, c * h * w);
    let in_shape = [1, c, h, w];
    let out_shape = [1, o, oh, ow];
    let wshape = if depthwise { vec![o, 1, kh, kw] } else { vec![o, c, kh, kw] };
    let wquant = if per_channel {
        Quant { scheme: QScheme::Affine { scales: sw.clone(), zero_points: vec![0; o] }, axis: Some(0) }
    } else {
        Quant::affine(sw[0], 0)
    };
    let bscales: Vec<f32> = sw.iter().map(|s| (s_in as f64 * *s as f64) as f32).collect();
    let bquant = Quant { scheme: QScheme::Affine { scales: bscales.clone(), zero_points: vec![0; o] }, axis: Some(0) };
    let wt = Weight::quantized(Tensor::new(wshape.clone(), TensorData::I8(wq.clone())).ok()?, wquant);
    let bt = Weight::quantized(Tensor::new(vec![o], TensorData::I32(bias.clone())).ok()?, bquant);
    let op = Op::Conv2d(Conv2d {
        strides: stride,
        pads: [pt, pl, pb, pr],
        dilations: dil,
        groups: if depthwise { c } else { 1 },
    });
    let (module, _) = one_node(
        "conv",
        op,
        &[act_ty(&in_shape, s_in, zp_in)],
        vec![("w", wt), ("b", bt)],
        act_ty(&out_shape, s_out, zp_out),
    );
    // Filters in TFLite layout: OHWI (conv) or [1, KH, KW, C] (depthwise).
    let tfl_w: Vec<i8> = if depthwise {
        let mut v = Vec::with_capacity(wq.len());
        for y in 0..kh {
            for xk in 0..kw {
                for ch in 0..o {
                    v.push(wq[(ch * kh + y) * kw + xk]);
                }
            }
        }
        v
    } else {
        nchw_to_nhwc(&wq, &wshape)
    };
    let tfl_wshape = if depthwise { vec![1, kh, kw, o] } else { vec![o, kh, kw, c] };
    let scales_json: Vec<f32> = if per_channel { sw.clone() } else { vec![sw[0]] };
    let bscales_json: Vec<f32> = if per_channel { bscales.clone() } else { vec![bscales[0]] };
    let json = json!({
        "op": if depthwise { "depthwise" } else { "conv" },
        "input": {"shape": nhwc(&in_shape), "scale": s_in, "zp": zp_in, "data": nchw_to_nhwc(&x, &in_shape)},
        "filter": {"shape": tfl_wshape, "scales": scales_json, "zps": vec![0; scales_json.len()],
                   "axis": if depthwise { 3 } else { 0 }, "data": tfl_w},
        "bias": {"shape": [o], "scales": bscales_json, "zps": vec![0; bscales_json.len()], "axis": 0, "data": bias},
        "output": {"shape": nhwc(&out_shape), "scale": s_out, "zp": zp_out},
        "padding": if same { "SAME" } else { "VALID" },
        "stride": stride, "dilation": dil,
    });
    let x = Tensor::new(in_shape.to_vec(), TensorData::I8(x)).ok()?;
    Some(Case {
        module,
        inputs: vec![x],
        json,
        desc: format!(
            "{} c={c} o={o} {h}x{w} k={kh}x{kw} s={stride:?} d={dil:?} {}",
            if depthwise { "depthwise" } else { "conv" },
            if same { "SAME" } else { "VALID" }
        ),
    })
}

fn gen_fc(r: &mut SplitMix64) -> Option<Case> {
    let m = r.range_i64(1, 3) as usize;
    let k = r.range_i64(1, 64) as usize;
    let n = r.range_i64(1, 16) as usize;
    let s_in = loguniform(r, 0.005, 0.1);
    let zp_in = r.range_i64(-128, 127) as i32;
    let s_w = loguniform(r, 0.002, 0.05);
    let wq: Vec<i8> = (0..n * k).map(|_| r.range_i64(-127, 127) as i8).collect();
    let acc_scale = 73.0 * 73.0 * (k as f64).sqrt();
    let has_bias = r.uniform() < 0.8;
    let bias: Vec<i32> = (0..n).map(|_| ((r.uniform() * 2.0 - 1.0) * acc_scale) as i32).collect();
    let s_out = (s_in as f64 * s_w as f64 * acc_scale / 40.0 * (0.5 + 1.5 * r.uniform())) as f32;
    let zp_out = r.range_i64(-128, 127) as i32;
    let x = rand_i8(r, m * k);
    let bscale = (s_in as f64 * s_w as f64) as f32;
    let wt = Weight::quantized(Tensor::new(vec![n, k], TensorData::I8(wq.clone())).ok()?, Quant::affine(s_w, 0));
    let mut weights = vec![("w", wt)];
    if has_bias {
        weights.push((
            "b",
            Weight::quantized(Tensor::new(vec![n], TensorData::I32(bias.clone())).ok()?, Quant::affine(bscale, 0)),
        ));
    }
    let op = Op::Gemm(Gemm { trans_b: true, ..Default::default() });
    let (module, _) = one_node("fc", op, &[act_ty(&[m, k], s_in, zp_in)], weights, act_ty(&[m, n], s_out, zp_out));
    let json = json!({
        "op": "fc",
        "input": {"shape": [m, k], "scale": s_in, "zp": zp_in, "data": x.clone()},
        "filter": {"shape": [n, k], "scales": [s_w], "zps": [0], "data": wq},
        "bias": if has_bias { json!({"shape": [n], "scales": [bscale], "zps": [0], "data": bias}) } else { J::Null },
        "output": {"shape": [m, n], "scale": s_out, "zp": zp_out},
    });
    let x = Tensor::new(vec![m, k], TensorData::I8(x)).ok()?;
    Some(Case { module, inputs: vec![x], json, desc: format!("fc m={m} k={k} n={n} bias={has_bias}") })
}

fn gen_add(r: &mut SplitMix64) -> Option<Case> {
    let (c, h, w) = (r.range_i64(1, 8) as usize, r.range_i64(1, 6) as usize, r.range_i64(1, 6) as usize);
    let shape = [1, c, h, w];
    let sa = loguniform(r, 0.005, 0.2);
    let sb = loguniform(r, 0.005, 0.2);
    let sy = ((sa + sb) as f64 * (0.5 + r.uniform())) as f32;
    let (za, zb, zy) = (r.range_i64(-128, 127) as i32, r.range_i64(-128, 127) as i32, r.range_i64(-128, 127) as i32);
    let a = rand_i8(r, c * h * w);
    let b = rand_i8(r, c * h * w);
    let (module, _) =
        one_node("add", Op::Add, &[act_ty(&shape, sa, za), act_ty(&shape, sb, zb)], vec![], act_ty(&shape, sy, zy));
    let json = json!({
        "op": "add",
        "input": {"shape": nhwc(&shape), "scale": sa, "zp": za, "data": nchw_to_nhwc(&a, &shape)},
        "input2": {"shape": nhwc(&shape), "scale": sb, "zp": zb, "data": nchw_to_nhwc(&b, &shape)},
        "output": {"shape": nhwc(&shape), "scale": sy, "zp": zy},
    });
    let inputs = vec![
        Tensor::new(shape.to_vec(), TensorData::I8(a)).ok()?,
        Tensor::new(shape.to_vec(), TensorData::I8(b)).ok()?,
    ];
    Some(Case { module, inputs, json, desc: format!("add {shape:?} sa={sa} sb={sb} sy={sy}") })
}

fn gen_pool(r: &mut SplitMix64, avg: bool) -> Option<Case> {
    let (c, h, w) = (r.range_i64(1, 8) as usize, r.range_i64(2, 10) as usize, r.range_i64(2, 10) as usize);
    let kernel = [r.range_i64(1, 4) as usize, r.range_i64(1, 4) as usize];
    let stride = [r.range_i64(1, 3) as usize, r.range_i64(1, 3) as usize];
    let same = r.uniform() < 0.5;
    let (oh, pt, pb) = tfl_dim(h, kernel[0], stride[0], 1, same)?;
    let (ow, pl, pr) = tfl_dim(w, kernel[1], stride[1], 1, same)?;
    let s = loguniform(r, 0.005, 0.2);
    let zp = r.range_i64(-128, 127) as i32;
    let x = rand_i8(r, c * h * w);
    let in_shape = [1, c, h, w];
    let out_shape = [1, c, oh, ow];
    let window = Window2d { kernel, strides: stride, pads: [pt, pl, pb, pr], ceil_mode: false };
    let op =
        if avg { Op::AvgPool(AvgPool { window, count_include_pad: false }) } else { Op::MaxPool(MaxPool { window }) };
    let (module, _) = one_node("pool", op, &[act_ty(&in_shape, s, zp)], vec![], act_ty(&out_shape, s, zp));
    let json = json!({
        "op": if avg { "avgpool" } else { "maxpool" },
        "input": {"shape": nhwc(&in_shape), "scale": s, "zp": zp, "data": nchw_to_nhwc(&x, &in_shape)},
        "output": {"shape": nhwc(&out_shape), "scale": s, "zp": zp},
        "padding": if same { "SAME" } else { "VALID" }, "stride": stride, "kernel": kernel,
    });
    let x = Tensor::new(in_shape.to_vec(), TensorData::I8(x)).ok()?;
    Some(Case {
        module,
        inputs: vec![x],
        json,
        desc: format!(
            "{} c={c} {h}x{w} k={kernel:?} s={stride:?} same={same}",
            if avg { "avgpool" } else { "maxpool" }
        ),
    })
}

fn gen_mean(r: &mut SplitMix64) -> Option<Case> {
    let (c, h, w) = (r.range_i64(1, 8) as usize, r.range_i64(1, 8) as usize, r.range_i64(1, 8) as usize);
    let s_in = loguniform(r, 0.005, 0.2);
    let s_out = (s_in as f64 * (0.1 + 1.4 * r.uniform())) as f32;
    let (zi, zo) = (r.range_i64(-128, 127) as i32, r.range_i64(-128, 127) as i32);
    let x = rand_i8(r, c * h * w);
    let in_shape = [1, c, h, w];
    let out_shape = [1, c, 1, 1];
    let (module, _) =
        one_node("gap", Op::GlobalAvgPool, &[act_ty(&in_shape, s_in, zi)], vec![], act_ty(&out_shape, s_out, zo));
    let json = json!({
        "op": "mean",
        "input": {"shape": nhwc(&in_shape), "scale": s_in, "zp": zi, "data": nchw_to_nhwc(&x, &in_shape)},
        "output": {"shape": nhwc(&out_shape), "scale": s_out, "zp": zo},
    });
    let x = Tensor::new(in_shape.to_vec(), TensorData::I8(x)).ok()?;
    Some(Case { module, inputs: vec![x], json, desc: format!("mean c={c} {h}x{w} s_in={s_in} s_out={s_out}") })
}

fn gen_softmax(r: &mut SplitMix64) -> Option<Case> {
    let m = r.range_i64(1, 4) as usize;
    let d = r.range_i64(1, 40) as usize;
    let s = loguniform(r, 0.01, 0.5);
    let zp = r.range_i64(-128, 127) as i32;
    let x = rand_i8(r, m * d);
    let (module, _) = one_node(
        "softmax",
        Op::Softmax(Softmax { axis: 1 }),
        &[act_ty(&[m, d], s, zp)],
        vec![],
        act_ty(&[m, d], 1.0 / 256.0, -128),
    );
    let json = json!({
        "op": "softmax",
        "input": {"shape": [m, d], "scale": s, "zp": zp, "data": x.clone()},
        "output": {"shape": [m, d], "scale": 1.0 / 256.0, "zp": -128},
    });
    let x = Tensor::new(vec![m, d], TensorData::I8(x)).ok()?;
    Some(Case { module, inputs: vec![x], json, desc: format!("softmax m={m} d={d} s={s} zp={zp}") })
}

fn generate(count_per_op: &[(&str, usize)], seed: u64) -> Vec<Case> {
    let mut r = SplitMix64::new(seed);
    let mut cases = Vec::new();
    for (op, n) in count_per_op {
        let mut made = 0;
        while made < *n {
            let c = match *op {
                "conv" => gen_conv(&mut r, false),
                "depthwise" => gen_conv(&mut r, true),
                "fc" => gen_fc(&mut r),
                "add" => gen_add(&mut r),
                "avgpool" => gen_pool(&mut r, true),
                "maxpool" => gen_pool(&mut r, false),
                "mean" => gen_mean(&mut r),
                _ => gen_softmax(&mut r),
            };
            if let Some(c) = c {
                cases.push(c);
                made += 1;
            }
        }
    }
    cases
}

#[test]
fn int8_matches_tflite_micro() {
    let plan = [
        ("conv", 300),
        ("depthwise", 250),
        ("fc", 150),
        ("add", 150),
        ("avgpool", 125),
        ("maxpool", 100),
        ("mean", 100),
        ("softmax", 125),
    ];
    let cases = generate(&plan, 0x5eed_c110);
    assert!(cases.len() >= 1000);
    // Our side.
    let mut ours: Vec<Vec<i32>> = Vec::with_capacity(cases.len());
    for c in &cases {
        let out = run_int(&c.module, "main", &c.inputs).unwrap_or_else(|e| panic!("{}: {e}", c.desc));
        let t = &out[0];
        let v: Vec<i32> = t.to_f64_vec().into_iter().map(|x| x as i32).collect();
        ours.push(if t.shape().len() == 4 { nchw_to_nhwc(&v, t.shape()) } else { v });
    }
    // tflite-micro's side, in one Python run.
    let dir = std::env::temp_dir().join(format!("clio_tflm_oracle_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases_path = dir.join("cases.json");
    let out_path = dir.join("out.json");
    let all: Vec<&J> = cases.iter().map(|c| &c.json).collect();
    std::fs::write(&cases_path, serde_json::to_vec(&all).unwrap()).unwrap();
    let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "oracle", "tflm", "run_cases.py"].iter().collect();
    let run = Command::new("python3").arg(&script).arg(&cases_path).arg(&out_path).output();
    let run = match run {
        Ok(r) => r,
        Err(e) => panic!(
            "cannot run python3 ({e}): the int8 oracle needs Python with tflite-micro; \
             run `pip install tflite-micro numpy flatbuffers pyyaml` (CI installs it)"
        ),
    };
    assert!(
        run.status.success(),
        "the tflite-micro oracle failed ({}): {}\nrun `pip install tflite-micro numpy flatbuffers pyyaml` \
         (CI installs it through .ci/run)",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let theirs: Vec<J> = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(theirs.len(), cases.len());
    let mut mismatches = Vec::new();
    let mut counts: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for ((c, o), t) in cases.iter().zip(&ours).zip(&theirs) {
        let op = c.json["op"].as_str().unwrap_or("?").to_string();
        let e = counts.entry(op).or_default();
        e.0 += 1;
        let tv: Option<Vec<i32>> =
            t.as_array().map(|a| a.iter().map(|v| v.as_i64().unwrap_or(i64::MIN) as i32).collect());
        match tv {
            Some(tv) if &tv == o => {}
            Some(tv) => {
                e.1 += 1;
                let diffs = tv.iter().zip(o).filter(|(a, b)| a != b).count();
                let first = tv.iter().zip(o).position(|(a, b)| a != b).unwrap_or(0);
                mismatches.push(format!(
                    "{}: {diffs}/{} elements differ, first at {first}: tflm {} ours {}",
                    c.desc,
                    tv.len(),
                    tv.get(first).copied().unwrap_or(0),
                    o.get(first).copied().unwrap_or(0)
                ));
            }
            None => {
                e.1 += 1;
                mismatches.push(format!("{}: tflite-micro failed: {t}", c.desc));
            }
        }
    }
    eprintln!(
        "tflite-micro oracle: {} cases, {} mismatches; per op (cases, mismatches): {counts:?}",
        cases.len(),
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ from tflite-micro:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}
