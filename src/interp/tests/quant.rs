use super::*;
use crate::ir::{Graph, QScheme, Quant, TensorData};

/// `quantize` to `ty`, then `dequantize` back; returns (integers, reals).
fn round_trip(x: &Tensor, ty: TensorType) -> (Tensor, Tensor) {
    let mut m = Module::new("q");
    let mut g = Graph::new("main");
    let xin = g.add_input("x", TensorType::f32(x.shape().to_vec()));
    let q = Value::of(g.add_node("q", Op::Quantize, &[xin], vec![ty]));
    let d = g.add_op("d", Op::Dequantize, &[q]).unwrap();
    g.set_outputs(vec![q, d]);
    m.add_graph(g);
    crate::verify::verify_module(&m).unwrap();
    let mut out = super::super::run(&m, "main", std::slice::from_ref(x)).unwrap();
    let d = out.pop().unwrap();
    (out.pop().unwrap(), d)
}

#[test]
fn affine_quantize_rounds_half_away_and_clamps() {
    let x = t(&[6], &[0.25, -0.25, 0.75, 100., -100., f32::NAN]);
    let ty = TensorType::new(vec![6], DType::I8).with_quant(Quant::affine(0.5, 3));
    let (q, d) = round_trip(&x, ty);
    // 0.25 / 0.5 = 0.5 -> 1 (+3); -0.5 -> -1; 1.5 -> 2; clamps at 127 / -128; NaN -> zero point.
    assert_eq!(q.data(), &TensorData::I8(vec![4, 2, 5, 127, -128, 3]));
    assert_f32(&d, &[6], &[0.5, -0.5, 1.0, 62.0, -65.5, 0.0]);
}

#[test]
fn pow2_quantize_and_dequantize() {
    let x = t(&[5], &[0.125, -0.125, 0.3, 1000., -0.0625]);
    let ty = TensorType::new(vec![5], DType::I16).with_quant(Quant::pow2(2));
    let (q, d) = round_trip(&x, ty);
    // x * 4: 0.5 -> 1, -0.5 -> -1, 1.2 -> 1, 4000, -0.25 -> 0.
    assert_eq!(q.data(), &TensorData::I16(vec![1, -1, 1, 4000, 0]));
    assert_f32(&d, &[5], &[0.25, -0.25, 0.25, 1000., 0.]);
    // Negative fractional bits: steps of 4.
    let ty = TensorType::new(vec![5], DType::I8).with_quant(Quant::pow2(-2));
    let (q, _) = round_trip(&x, ty);
    assert_eq!(q.data(), &TensorData::I8(vec![0, 0, 0, 127, 0]));
}

#[test]
fn per_channel_quantization_uses_the_axis() {
    let x = t(&[1, 2, 2], &[1., 2., 1., 2.]);
    let quant = Quant { scheme: QScheme::Affine { scales: vec![0.5, 0.25], zero_points: vec![0, -10] }, axis: Some(1) };
    let ty = TensorType::new(vec![1, 2, 2], DType::I32).with_quant(quant);
    let (q, d) = round_trip(&x, ty);
    assert_eq!(q.data(), &TensorData::I32(vec![2, 4, -6, -2]));
    assert_f32(&d, &[1, 2, 2], &[1., 2., 1., 2.]);
    let quant = Quant { scheme: QScheme::Pow2 { frac_bits: vec![0, 1, 2] }, axis: Some(1) };
    let x = t(&[1, 3], &[1.3, 1.3, 1.3]);
    let (q, d) = round_trip(&x, TensorType::new(vec![1, 3], DType::I8).with_quant(quant));
    assert_eq!(q.data(), &TensorData::I8(vec![1, 3, 5]));
    assert_f32(&d, &[1, 3], &[1., 1.5, 1.25]);
}

#[test]
fn dequantize_reads_an_integer_input() {
    let mut m = Module::new("q");
    let mut g = Graph::new("main");
    let x = g.add_input("x", TensorType::new(vec![3], DType::I8).with_quant(Quant::affine(0.1, -2)));
    let d = g.add_op("d", Op::Dequantize, &[x]).unwrap();
    g.set_outputs(vec![d]);
    m.add_graph(g);
    let xin = Tensor::new(vec![3], TensorData::I8(vec![-2, 8, -128])).unwrap();
    let y = super::super::run(&m, "main", &[xin]).unwrap();
    assert_close(&y[0], &[3], &[0.0, 1.0, -12.6], 1e-6);
}
