//! STM32 backend, one op at a time with random quantization parameters (scales, zero points
//! from -128 to 127, per-channel and per-tensor weights, SAME/VALID padding, strides, dilation,
//! channel multipliers, batches): every case is lowered from a one-node int8 graph, all of them
//! are compiled into one program with `cc` and run, and each output must equal the integer
//! interpreter's byte for byte. The one-node cases tflite-micro can express (conv, depthwise
//! with multiplier 1, fully connected, pooling, MEAN, softmax) are also run through
//! tflite-micro's reference kernels (`tests/oracle/tflm/run_cases.py`, as in
//! `tests/quant_tflm_oracle.rs`) and the C outputs must equal them too. tflite-micro must be
//! importable (`.ci/run` installs it): the test fails, never skips, when it is not.

mod stm32_common;

use clio::interp::run_int;
use clio::ir::{DType, Graph, Module, Op, QScheme, Quant, Tensor, TensorData, TensorType, Value, Weight};
use clio::ops::{AvgPool, Conv2d, Gemm, MaxPool, Softmax, Window2d};
use clio::quant::math::SplitMix64;
use clio_targets::stm32::{lower, shim_files, CmsisApi, Stm32Options};
use std::fmt::Write;
use std::process::Command;

fn loguniform(r: &mut SplitMix64, lo: f64, hi: f64) -> f32 {
    (lo.ln() + r.uniform() * (hi.ln() - lo.ln())).exp() as f32
}

fn act(shape: &[usize], scale: f32, zp: i32) -> TensorType {
    TensorType { shape: shape.to_vec(), dtype: DType::I8, quant: Some(Quant::affine(scale, zp)) }
}

fn zp(r: &mut SplitMix64) -> i32 {
    r.range_i64(-128, 127) as i32
}

/// A one-node module over i8 inputs.
fn one_node(op: Op, inputs: &[TensorType], weights: Vec<(&str, Weight)>, out: TensorType) -> Module {
    let mut m = Module::new("case");
    let mut g = Graph::new("main");
    let mut ops: Vec<Value> =
        inputs.iter().enumerate().map(|(i, t)| g.add_input(&format!("x{i}"), t.clone())).collect();
    for (wn, w) in weights {
        let ty = w.ty();
        m.set_weight(wn, w);
        ops.push(g.weight_value(wn, ty));
    }
    let y = g.add_node("y", op, &ops, vec![out]);
    g.set_outputs(vec![Value::of(y)]);
    m.add_graph(g);
    clio::verify::verify_module(&m).unwrap();
    m
}

/// TFLite's output size and (before, after) padding for SAME / VALID.
fn tfl_dim(size: usize, k: usize, stride: usize, dil: usize, same: bool) -> Option<(usize, usize, usize)> {
    let eff = (k - 1) * dil + 1;
    if same {
        let out = size.div_ceil(stride);
        let total = ((out - 1) * stride + eff).saturating_sub(size);
        Some((out, total / 2, total - total / 2))
    } else if size < eff {
        None
    } else {
        Some(((size - eff) / stride + 1, 0, 0))
    }
}

fn conv(r: &mut SplitMix64) -> Option<Module> {
    let depthwise = r.uniform() < 0.4;
    let c = r.range_i64(1, 8) as usize;
    let mult = if depthwise { r.range_i64(1, 2) as usize } else { 1 };
    let o = if depthwise { c * mult } else { r.range_i64(1, 8) as usize };
    let (h, w) = (r.range_i64(3, 10) as usize, r.range_i64(3, 10) as usize);
    let (kh, kw) = (r.range_i64(1, 4) as usize, r.range_i64(1, 4) as usize);
    let stride = [r.range_i64(1, 3) as usize, r.range_i64(1, 3) as usize];
    let dil = if r.uniform() < 0.25 { [2, r.range_i64(1, 2) as usize] } else { [1, 1] };
    let same = r.uniform() < 0.5;
    let (oh, pt, pb) = tfl_dim(h, kh, stride[0], dil[0], same)?;
    let (ow, pl, pr) = tfl_dim(w, kw, stride[1], dil[1], same)?;
    let s_in = loguniform(r, 0.005, 0.1);
    let per_channel = r.uniform() < 0.8;
    let s0 = loguniform(r, 0.002, 0.05);
    let sw: Vec<f32> = (0..o).map(|_| if per_channel { loguniform(r, 0.002, 0.05) } else { s0 }).collect();
    let taps = if depthwise { kh * kw } else { c * kh * kw };
    let wq: Vec<i8> = (0..o * taps).map(|_| r.range_i64(-127, 127) as i8).collect();
    let acc_scale = 73.0 * 73.0 * (taps as f64).sqrt();
    let bias: Vec<i32> = (0..o).map(|_| ((r.uniform() * 2.0 - 1.0) * acc_scale) as i32).collect();
    let mean_sw = sw.iter().map(|s| *s as f64).sum::<f64>() / o as f64;
    let s_out = (s_in as f64 * mean_sw * acc_scale / 40.0 * (0.5 + 1.5 * r.uniform())) as f32;
    let wquant = if per_channel {
        Quant { scheme: QScheme::Affine { scales: sw.clone(), zero_points: vec![0; o] }, axis: Some(0) }
    } else {
        Quant::affine(s0, 0)
    };
    let bscales: Vec<f32> = sw.iter().map(|s| (s_in as f64 * *s as f64) as f32).collect();
    let bquant = Quant { scheme: QScheme::Affine { scales: bscales, zero_points: vec![0; o] }, axis: Some(0) };
    let wshape = vec![o, if depthwise { 1 } else { c }, kh, kw];
    let wt = Weight::quantized(Tensor::new(wshape, TensorData::I8(wq)).ok()?, wquant);
    let bt = Weight::quantized(Tensor::new(vec![o], TensorData::I32(bias)).ok()?, bquant);
    let op = Op::Conv2d(Conv2d {
        strides: stride,
        pads: [pt, pl, pb, pr],
        dilations: dil,
        groups: if depthwise { c } else { 1 },
    });
    let (zi, zo) = (zp(r), zp(r));
    Some(one_node(op, &[act(&[1, c, h, w], s_in, zi)], vec![("w", wt), ("b", bt)], act(&[1, o, oh, ow], s_out, zo)))
}

fn fc(r: &mut SplitMix64) -> Option<Module> {
    let m = r.range_i64(1, 3) as usize;
    let k = r.range_i64(1, 64) as usize;
    let n = r.range_i64(1, 16) as usize;
    let s_in = loguniform(r, 0.005, 0.1);
    let s_w = loguniform(r, 0.002, 0.05);
    let wq: Vec<i8> = (0..n * k).map(|_| r.range_i64(-127, 127) as i8).collect();
    let acc_scale = 73.0 * 73.0 * (k as f64).sqrt();
    let bias: Vec<i32> = (0..n).map(|_| ((r.uniform() * 2.0 - 1.0) * acc_scale) as i32).collect();
    let s_out = (s_in as f64 * s_w as f64 * acc_scale / 40.0 * (0.5 + 1.5 * r.uniform())) as f32;
    let mut weights =
        vec![("w", Weight::quantized(Tensor::new(vec![n, k], TensorData::I8(wq)).ok()?, Quant::affine(s_w, 0)))];
    if r.uniform() < 0.8 {
        let b = Tensor::new(vec![n], TensorData::I32(bias)).ok()?;
        weights.push(("b", Weight::quantized(b, Quant::affine((s_in as f64 * s_w as f64) as f32, 0))));
    }
    let op = Op::Gemm(Gemm { trans_b: true, ..Default::default() });
    let (zi, zo) = (zp(r), zp(r));
    Some(one_node(op, &[act(&[m, k], s_in, zi)], weights, act(&[m, n], s_out, zo)))
}

/// `add(x, conv1x1(x))`: the second operand comes from a 1x1 conv so that both operands have
/// their own random scale and zero point (the module has one input).
fn add(r: &mut SplitMix64) -> Option<Module> {
    let c = r.range_i64(1, 6) as usize;
    let shape = [1, c, r.range_i64(1, 6) as usize, r.range_i64(1, 6) as usize];
    let (sa, sb) = (loguniform(r, 0.005, 0.2), loguniform(r, 0.005, 0.2));
    let sy = (sa.max(sb) as f64 * (0.8 + 1.5 * r.uniform())) as f32;
    let (za, zb, zy) = (zp(r), zp(r), zp(r));
    let sw = (sb as f64 / sa as f64 / c as f64 * 0.05) as f32;
    let wq: Vec<i8> = (0..c * c).map(|_| r.range_i64(-127, 127) as i8).collect();
    let mut m = Module::new("case");
    let mut g = Graph::new("main");
    let x = g.add_input("x0", act(&shape, sa, za));
    m.set_weight("w", Weight::quantized(Tensor::new(vec![c, c, 1, 1], TensorData::I8(wq)).ok()?, Quant::affine(sw, 0)));
    let w = g.weight_value("w", m.weight("w")?.ty());
    let conv = Op::Conv2d(Conv2d { strides: [1, 1], pads: [0; 4], dilations: [1, 1], groups: 1 });
    let b = g.add_node("b", conv, &[x, w], vec![act(&shape, sb, zb)]);
    let y = g.add_node("y", Op::Add, &[x, Value::of(b)], vec![act(&shape, sy, zy)]);
    g.set_outputs(vec![Value::of(y)]);
    m.add_graph(g);
    clio::verify::verify_module(&m).unwrap();
    Some(m)
}

fn pool(r: &mut SplitMix64) -> Option<Module> {
    let avg = r.uniform() < 0.5;
    let c = r.range_i64(1, 6) as usize;
    let (h, w) = (r.range_i64(2, 9) as usize, r.range_i64(2, 9) as usize);
    let k = [r.range_i64(1, 3) as usize, r.range_i64(1, 3) as usize];
    let s = [r.range_i64(1, 3) as usize, r.range_i64(1, 3) as usize];
    let same = r.uniform() < 0.5;
    let (oh, pt, pb) = tfl_dim(h, k[0], s[0], 1, same)?;
    let (ow, pl, pr) = tfl_dim(w, k[1], s[1], 1, same)?;
    let window = Window2d { kernel: k, strides: s, pads: [pt, pl, pb, pr], ceil_mode: false };
    let op =
        if avg { Op::AvgPool(AvgPool { window, count_include_pad: false }) } else { Op::MaxPool(MaxPool { window }) };
    let (sc, z) = (loguniform(r, 0.005, 0.1), zp(r));
    Some(one_node(op, &[act(&[1, c, h, w], sc, z)], vec![], act(&[1, c, oh, ow], sc, z)))
}

fn mean(r: &mut SplitMix64) -> Option<Module> {
    let c = r.range_i64(1, 8) as usize;
    let (h, w) = (r.range_i64(1, 9) as usize, r.range_i64(1, 9) as usize);
    let s_in = loguniform(r, 0.005, 0.1);
    let s_out = (s_in as f64 * (0.1 + 1.4 * r.uniform())) as f32;
    let (zi, zo) = (zp(r), zp(r));
    Some(one_node(Op::GlobalAvgPool, &[act(&[1, c, h, w], s_in, zi)], vec![], act(&[1, c, 1, 1], s_out, zo)))
}

fn softmax(r: &mut SplitMix64) -> Option<Module> {
    let (m, n) = (r.range_i64(1, 3) as usize, r.range_i64(1, 40) as usize);
    let s_in = loguniform(r, 0.01, 0.5);
    let z = zp(r);
    let op = Op::Softmax(Softmax { axis: 1 });
    Some(one_node(op, &[act(&[m, n], s_in, z)], vec![], act(&[m, n], 1.0 / 256.0, -128)))
}

/// A case generator (`None`: the drawn parameters do not make a valid case).
type Gen = fn(&mut SplitMix64) -> Option<Module>;

/// Per-tensor `(scale, zero point)` of an affine type.
fn aff(ty: &TensorType) -> (f32, i32) {
    match ty.quant.as_ref().map(|q| &q.scheme) {
        Some(QScheme::Affine { scales, zero_points }) => (scales[0], zero_points[0]),
        _ => panic!("affine type expected"),
    }
}

/// `(scales, zero points, axis)` of a weight.
fn wq(ty: &TensorType) -> (Vec<f32>, Vec<i32>, Option<usize>) {
    match ty.quant.as_ref() {
        Some(Quant { scheme: QScheme::Affine { scales, zero_points }, axis }) => {
            (scales.clone(), zero_points.clone(), *axis)
        }
        _ => panic!("affine weight expected"),
    }
}

fn ints(t: &Tensor) -> Vec<i32> {
    match t.data() {
        TensorData::I8(v) => v.iter().map(|x| *x as i32).collect(),
        TensorData::I32(v) => v.clone(),
        _ => panic!("integer tensor expected"),
    }
}

/// The tflite-micro case (TFLite layouts) of a one-node module, or `None` for what
/// `run_cases.py` cannot express (two-node add cases, depthwise multipliers above 1).
fn tflm_case(m: &Module, x: &Tensor) -> Option<serde_json::Value> {
    use serde_json::json;
    let g = m.graph("main")?;
    let y = g.outputs()[0].node;
    let node = g.node(y);
    let in_ty = g.node(*g.inputs().first()?).ty();
    let shape = |s: &[usize]| if s.len() == 4 { vec![s[0], s[2], s[3], s[1]] } else { s.to_vec() };
    let (si, zi) = aff(in_ty);
    let (so, zo) = aff(node.ty());
    let xs: Vec<i32> = nhwc(x).iter().map(|b| *b as i8 as i32).collect();
    let input = json!({"shape": shape(&in_ty.shape), "scale": si, "zp": zi, "data": xs});
    let output = json!({"shape": shape(&node.ty().shape), "scale": so, "zp": zo});
    let weight = |slot: usize| -> Option<(Tensor, TensorType)> {
        let v = g.operand(y, slot)?;
        let name = g.weight_name(v)?;
        Some((m.weight(name)?.data().clone(), g.value_type(v)?.clone()))
    };
    let padding = |pads: &[usize; 4]| if pads.iter().any(|p| *p > 0) { "SAME" } else { "VALID" };
    Some(match &node.op {
        Op::Conv2d(p) => {
            let (w, w_ty) = weight(1)?;
            let [o, cg, kh, kw] = <[usize; 4]>::try_from(w.shape()).ok()?;
            let dw = p.groups > 1;
            if dw && o != p.groups {
                return None;
            }
            let wv = ints(&w);
            let mut t = vec![0; wv.len()];
            for oc in 0..o {
                for ci in 0..cg {
                    for yy in 0..kh {
                        for xx in 0..kw {
                            let v = wv[((oc * cg + ci) * kh + yy) * kw + xx];
                            if dw {
                                t[(yy * kw + xx) * o + oc] = v;
                            } else {
                                t[((oc * kh + yy) * kw + xx) * cg + ci] = v;
                            }
                        }
                    }
                }
            }
            let (ws, wz, _) = wq(&w_ty);
            let (b, b_ty) = weight(2)?;
            let (bs, bz, _) = wq(&b_ty);
            json!({
                "op": if dw { "depthwise" } else { "conv" },
                "input": input, "output": output,
                "filter": {"shape": if dw { vec![1, kh, kw, o] } else { vec![o, kh, kw, cg] }, "scales": ws, "zps": wz,
                           "axis": if dw { 3 } else { 0 }, "data": t},
                "bias": {"shape": [o], "scales": bs, "zps": bz, "axis": 0, "data": ints(&b)},
                "padding": padding(&p.pads), "stride": p.strides, "dilation": p.dilations,
            })
        }
        Op::Gemm(_) => {
            let (w, w_ty) = weight(1)?;
            let (ws, wz, _) = wq(&w_ty);
            let bias = match weight(2) {
                Some((b, b_ty)) => {
                    let (bs, bz, _) = wq(&b_ty);
                    json!({"shape": b.shape(), "scales": bs, "zps": bz, "data": ints(&b)})
                }
                None => serde_json::Value::Null,
            };
            json!({"op": "fc", "input": input, "output": output,
                   "filter": {"shape": w.shape(), "scales": ws, "zps": wz, "data": ints(&w)}, "bias": bias})
        }
        Op::MaxPool(MaxPool { window }) | Op::AvgPool(AvgPool { window, .. }) => json!({
            "op": if matches!(node.op, Op::MaxPool(_)) { "maxpool" } else { "avgpool" },
            "input": input, "output": output,
            "padding": padding(&window.pads), "stride": window.strides, "kernel": window.kernel,
        }),
        Op::GlobalAvgPool => json!({"op": "mean", "input": input, "output": output}),
        Op::Softmax(_) => json!({"op": "softmax", "input": input, "output": output}),
        _ => return None,
    })
}

fn nhwc(t: &Tensor) -> Vec<u8> {
    let v: Vec<i8> = match t.data() {
        TensorData::I8(v) => v.clone(),
        _ => panic!("i8 expected"),
    };
    let s = t.shape();
    if s.len() != 4 {
        return v.iter().map(|x| *x as u8).collect();
    }
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let mut out = Vec::with_capacity(v.len());
    for b in 0..n {
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    out.push(v[((b * c + ch) * h + y) * w + x] as u8);
                }
            }
        }
    }
    out
}

#[test]
fn random_one_op_cases_bit_exact() {
    let mut r = SplitMix64::new(2024);
    let dir = stm32_common::scratch_dir("ops");
    for (name, text) in shim_files(CmsisApi::S8) {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let mut sources = vec!["arm_nn_host.c".to_string(), "main.c".to_string()];
    let mut main_decl = String::from("#include <stdio.h>\n#include <stdint.h>\n");
    let mut main_body = String::new();
    let mut inputs = vec![];
    let mut expected = vec![];
    let mut kinds = vec![];
    let mut tflm = vec![];
    let gens: [(&str, Gen); 6] =
        [("conv", conv), ("fc", fc), ("add", add), ("pool", pool), ("mean", mean), ("softmax", softmax)];
    let mut i = 0;
    while i < 180 {
        let (kind, gen) = gens[i % gens.len()];
        let Some(m) = gen(&mut r) else { continue };
        let g = m.graph("main").unwrap();
        // Random int8 inputs, in NCHW for the interpreter and NHWC for C.
        let xs: Vec<Tensor> = g
            .inputs()
            .iter()
            .map(|id| {
                let shape = g.node(*id).ty().shape.clone();
                let len: usize = shape.iter().product();
                Tensor::new(shape, TensorData::I8((0..len).map(|_| r.range_i64(-128, 127) as i8).collect())).unwrap()
            })
            .collect();
        let y = run_int(&m, "main", &xs).unwrap();
        let out_ty = g.value_type(g.outputs()[0]).unwrap();
        expected.push(clio::quant::wire::encode(&y[0], out_ty.quant.as_ref(), 1, y[0].shape()[1]).unwrap());
        let prefix = format!("case{i}");
        let c = lower(&m, &Stm32Options { graph: "main".into(), prefix: prefix.clone(), ..Default::default() })
            .unwrap_or_else(|e| panic!("{kind} case {i}: {e}"));
        c.write_to(&dir).unwrap();
        sources.push(c.source_name());
        let u = prefix.to_ascii_uppercase();
        let _ = writeln!(main_decl, "#include \"{prefix}.h\"");
        let _ = writeln!(main_body, "    {{ static int8_t in[{u}_INPUT_BYTES]; static uint8_t out[{u}_OUTPUT_BYTES];");
        let _ = writeln!(main_body, "      if (fread(in, 1, sizeof in, fi) != sizeof in) return 20;");
        let _ = writeln!(main_body, "      if ({prefix}_init() != 0 || {prefix}_invoke(in, out) != 0) return 21;");
        let _ = writeln!(main_body, "      fwrite(out, 1, sizeof out, fo); }}");
        inputs.extend(nhwc(&xs[0]));
        if let Some(case) = tflm_case(&m, &xs[0]) {
            tflm.push((i, case));
        }
        kinds.push(kind);
        i += 1;
    }
    let main = format!(
        "{main_decl}int main(int argc, char **argv)\n{{\n    if (argc != 3) return 10;\n    FILE *fi = fopen(argv[1], \"rb\");\n    FILE *fo = fopen(argv[2], \"wb\");\n    if (!fi || !fo) return 11;\n{main_body}    fclose(fi);\n    fclose(fo);\n    return 0;\n}}\n"
    );
    std::fs::write(dir.join("main.c"), main).unwrap();
    std::fs::write(dir.join("in.bin"), &inputs).unwrap();
    let cc = Command::new("cc")
        .current_dir(&dir)
        .args(["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-Wvla", "-I."])
        .args(&sources)
        .args(["-o", "run"])
        .output()
        .unwrap();
    assert!(cc.status.success(), "{}", String::from_utf8_lossy(&cc.stderr));
    let run = Command::new(dir.join("run")).current_dir(&dir).args(["in.bin", "out.bin"]).output().unwrap();
    assert!(run.status.success(), "exit {:?}: {}", run.status.code(), String::from_utf8_lossy(&run.stderr));
    let got = std::fs::read(dir.join("out.bin")).unwrap();
    let mut at = 0;
    for (i, (want, kind)) in expected.iter().zip(&kinds).enumerate() {
        let g = &got[at..at + want.len()];
        assert_eq!(g, &want[..], "{kind} case {i} differs from the integer interpreter");
        at += want.len();
    }
    assert_eq!(at, got.len());
    // The same C outputs against tflite-micro's reference kernels.
    let cases: Vec<serde_json::Value> = tflm.iter().map(|(_, c)| c.clone()).collect();
    assert!(cases.len() > 100, "only {} tflite-micro cases", cases.len());
    std::fs::write(dir.join("cases.json"), serde_json::to_vec(&cases).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/oracle/tflm/run_cases.py");
    let py =
        Command::new("python3").arg(script).arg(dir.join("cases.json")).arg(dir.join("tflm.json")).output().unwrap();
    assert!(py.status.success(), "tflite-micro oracle failed: {}", String::from_utf8_lossy(&py.stderr));
    let tflm_out: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("tflm.json")).unwrap()).unwrap();
    let limits = clio::Limits::default();
    let mut starts = vec![0];
    for e in &expected {
        starts.push(starts.last().unwrap() + e.len());
    }
    for ((i, _), t) in tflm.iter().zip(&tflm_out) {
        let msg = &got[starts[*i]..starts[*i + 1]];
        let decoded = clio::quant::wire::decode(msg, &limits).unwrap().data;
        let c_nhwc: Vec<i64> = nhwc(&decoded).iter().map(|b| *b as i8 as i64).collect();
        let t: Vec<i64> = serde_json::from_value(t.clone())
            .unwrap_or_else(|_| panic!("{} case {i}: tflite-micro failed: {t}", kinds[*i]));
        assert_eq!(c_nhwc, t, "{} case {i}: C output differs from tflite-micro", kinds[*i]);
    }
    println!("{} cases bit-exact with the interpreter, {} also with tflite-micro", expected.len(), tflm.len());
    let _ = std::fs::remove_dir_all(&dir);
}
