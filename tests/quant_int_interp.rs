//! The integer interpreter on hand-computed cases: Q-format conv / add / pooling arithmetic,
//! integer clamps, constant padding with the zero point, and errors for inconsistent formats.

use clio::interp::run_int;
use clio::ir::{Tensor, TensorData};
use clio::text::{parse_module, ParseOptions};

fn run1(src: &str, x: Tensor) -> Result<Tensor, String> {
    let m = parse_module(src, &ParseOptions::default()).map_err(|e| e.to_string())?;
    clio::verify::verify_module(&m).map_err(|e| e.to_string())?;
    run_int(&m, "main", &[x]).map(|mut v| v.remove(0)).map_err(|e| e.to_string())
}

fn i8s(shape: &[usize], v: &[i8]) -> Tensor {
    Tensor::new(shape.to_vec(), TensorData::I8(v.to_vec())).unwrap()
}

#[test]
fn q8_conv_is_q7_arithmetic() {
    // in_Q 4, w_Q 6, bias_Q 3, out_Q 5: out_shift 5, bias_shift 7.
    // x = 16 (1.0): 16*64 + (8 << 7) + 16 = 2064 >> 5 = 64 (2.0)
    // x = -3 (-0.1875): -192 + 1024 + 16 = 848 >> 5 = 26 (0.8125)
    // x = 127: 8128 + 1040 = 9168 >> 5 = 286 -> saturates to 127
    let src = "module @m {
      weight @w : tensor<1x1x1x1xi8, pow2<6>> = dense<[64]>
      weight @b : tensor<1xi8, pow2<3>> = dense<[8]>
      graph @main(%x: tensor<1x1x1x3xi8, pow2<4>>) -> (tensor<1x1x1x3xi8, pow2<5>>) {
        %c = conv2d(%x, @w, @b) {strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], groups = 1} : tensor<1x1x1x3xi8, pow2<5>>
        return %c } }";
    let y = run1(src, i8s(&[1, 1, 1, 3], &[16, -3, 127])).unwrap();
    assert_eq!(y.data(), &TensorData::I8(vec![64, 26, 127]));
}

#[test]
fn q8_negative_out_shift_is_an_error() {
    let src = "module @m {
      weight @w : tensor<1x1x1x1xi8, pow2<1>> = dense<[1]>
      graph @main(%x: tensor<1x1x1x1xi8, pow2<1>>) -> (tensor<1x1x1x1xi8, pow2<5>>) {
        %c = conv2d(%x, @w) {strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], groups = 1} : tensor<1x1x1x1xi8, pow2<5>>
        return %c } }";
    let e = run1(src, i8s(&[1, 1, 1, 1], &[1])).unwrap_err();
    assert!(e.contains("%c (conv2d)") && e.contains("out_shift"), "{e}");
}

#[test]
fn q16_add_shifts_up_and_saturates() {
    let src = "module @m {
      graph @main(%x: tensor<3xi16, pow2<8>>) -> (tensor<3xi16, pow2<9>>) {
        %s = add(%x, %x) : tensor<3xi16, pow2<9>>
        return %s } }";
    // x + x at Q8 -> Q9: acc = (x<<0)+(x<<0) = 2x at Q8; out Q9 > F=8 -> shift left 1: 4x.
    let x = Tensor::new(vec![3], TensorData::I16(vec![100, -7, 20000])).unwrap();
    let y = run1(src, x).unwrap();
    assert_eq!(y.data(), &TensorData::I16(vec![400, -28, 32767]));
}

#[test]
fn int8_relu6_and_constant_pad_use_the_zero_point() {
    let src = "module @m {
      graph @main(%x: tensor<1x1x1x4xi8, affine<0.05:-10>>) -> (tensor<1x1x1x6xi8, affine<0.05:-10>>) {
        %r = clip(%x) {min = 0.0, max = 6.0} : tensor<1x1x1x4xi8, affine<0.05:-10>>
        %p = pad(%r) {pads = [0, 0, 0, 1, 0, 0, 0, 1], mode = \"constant\", value = 0.0} : tensor<1x1x1x6xi8, affine<0.05:-10>>
        return %p } }";
    // relu6 bounds: [zp, zp + round(6 / 0.05)] = [-10, 110].
    let y = run1(src, i8s(&[1, 1, 1, 4], &[-128, -10, 50, 127])).unwrap();
    assert_eq!(y.data(), &TensorData::I8(vec![-10, -10, -10, 50, 110, -10]));
}

#[test]
fn int8_avg_pool_rounds_half_away_from_zero() {
    let src = "module @m {
      graph @main(%x: tensor<1x1x1x4xi8, affine<0.1:0>>) -> (tensor<1x1x1x2xi8, affine<0.1:0>>) {
        %p = avg_pool(%x) {kernel = [1, 2], strides = [1, 2], pads = [0, 0, 0, 0], ceil_mode = false, count_include_pad = false} : tensor<1x1x1x2xi8, affine<0.1:0>>
        return %p } }";
    let y = run1(src, i8s(&[1, 1, 1, 4], &[1, 2, -1, -2])).unwrap();
    assert_eq!(y.data(), &TensorData::I8(vec![2, -2]));
}

#[test]
fn moving_values_between_formats_is_an_error() {
    let src = "module @m {
      graph @main(%x: tensor<1x1x2x2xi8, affine<0.1:0>>) -> (tensor<1x1x1x1xi8, affine<0.2:0>>) {
        %p = max_pool(%x) {kernel = [2, 2], strides = [2, 2], pads = [0, 0, 0, 0], ceil_mode = false} : tensor<1x1x1x1xi8, affine<0.2:0>>
        return %p } }";
    let e = run1(src, i8s(&[1, 1, 2, 2], &[1, 2, 3, 4])).unwrap_err();
    assert!(e.contains("%p (max_pool)") && e.contains("same quantization"), "{e}");
}

#[test]
fn unsupported_integer_op_names_the_op() {
    let src = "module @m {
      graph @main(%x: tensor<2xi8, affine<0.1:0>>) -> (tensor<2xi8, affine<0.1:0>>) {
        %s = sigmoid(%x) : tensor<2xi8, affine<0.1:0>>
        return %s } }";
    let e = run1(src, i8s(&[2], &[1, 2])).unwrap_err();
    assert!(e.contains("%s (sigmoid)") && e.contains("no integer implementation"), "{e}");
}
