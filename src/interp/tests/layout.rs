use super::reference as r;
use super::*;
use crate::ir::TensorData;
use crate::ops::{ChannelSlice, Concat, Flatten, Pad, PadMode, Reshape, Squeeze, Transmit, Transpose, Unsqueeze};

#[test]
fn reshapes_keep_the_data() {
    let mut rng = Rng::new(60);
    let x = rng.tensor(&[2, 3, 1, 4]);
    let data = x.as_f32().unwrap().to_vec();
    let cases = [
        (Op::Flatten(Flatten { axis: 1 }), vec![2, 12]),
        (Op::Flatten(Flatten { axis: 0 }), vec![1, 24]),
        (Op::Flatten(Flatten { axis: 4 }), vec![24, 1]),
        (Op::Reshape(Reshape { shape: vec![6, 4] }), vec![6, 4]),
        (Op::Squeeze(Squeeze { axes: vec![2] }), vec![2, 3, 4]),
        (Op::Unsqueeze(Unsqueeze { axes: vec![0, 5] }), vec![1, 2, 3, 1, 4, 1]),
    ];
    for (op, shape) in cases {
        let y = run1(op, std::slice::from_ref(&x));
        assert_eq!(y.shape(), shape.as_slice());
        assert_eq!(y.as_f32().unwrap(), data.as_slice());
    }
}

#[test]
fn transpose_random_against_reference() {
    let mut rng = Rng::new(61);
    for _ in 0..100 {
        let rank = rng.range(1, 5);
        let shape: Vec<usize> = (0..rank).map(|_| rng.range(1, 4)).collect();
        let mut perm: Vec<usize> = (0..rank).collect();
        for i in (1..rank).rev() {
            perm.swap(i, rng.range(0, i));
        }
        let x = rng.tensor(&shape);
        let (s, want) = r::transpose(x.as_f32().unwrap(), &shape, &perm);
        let y = run1(Op::Transpose(Transpose { perm }), &[x]);
        assert_close(&y, &s, &want, 0.0);
    }
}

#[test]
fn pad_hand_computed() {
    let x = t(&[3], &[1., 2., 3.]);
    let p = |mode, value| Op::Pad(Pad { pads: vec![2, 2], mode, value });
    assert_f32(&run1(p(PadMode::Constant, 9.0), std::slice::from_ref(&x)), &[7], &[9., 9., 1., 2., 3., 9., 9.]);
    assert_f32(&run1(p(PadMode::Reflect, 0.0), std::slice::from_ref(&x)), &[7], &[3., 2., 1., 2., 3., 2., 1.]);
    assert_f32(&run1(p(PadMode::Edge, 0.0), &[x]), &[7], &[1., 1., 1., 2., 3., 3., 3.]);
    // 2-D: pad only the begin of axis 0 and the end of axis 1.
    let x = t(&[2, 2], &[1., 2., 3., 4.]);
    let y = run1(Op::Pad(Pad { pads: vec![1, 0, 0, 1], mode: PadMode::Reflect, value: 0.0 }), &[x]);
    assert_f32(&y, &[3, 3], &[3., 4., 3., 1., 2., 1., 3., 4., 3.]);
}

#[test]
fn pad_random_against_reference() {
    let mut rng = Rng::new(62);
    for _ in 0..150 {
        let rank = rng.range(1, 4);
        let shape: Vec<usize> = (0..rank).map(|_| rng.range(1, 5)).collect();
        let mode = [PadMode::Constant, PadMode::Reflect, PadMode::Edge][rng.range(0, 2)];
        let pads: Vec<usize> = (0..2 * rank)
            .map(|i| match mode {
                PadMode::Reflect => rng.range(0, shape[i % rank] - 1),
                _ => rng.range(0, 3),
            })
            .collect();
        let value = rng.uniform(-5.0, 5.0);
        let x = rng.tensor(&shape);
        let (s, want) = r::pad(x.as_f32().unwrap(), &shape, &pads, mode.as_str(), value);
        let y = run1(Op::Pad(Pad { pads, mode, value }), &[x]);
        assert_close(&y, &s, &want, 0.0);
    }
}

#[test]
fn concat_slice_and_transmit() {
    let a = t(&[1, 1, 2], &[1., 2.]);
    let b = t(&[1, 2, 2], &[3., 4., 5., 6.]);
    let c = t(&[1, 1, 2], &[7., 8.]);
    let y = run1(Op::Concat(Concat { axis: 1 }), &[a.clone(), b, c.clone()]);
    assert_f32(&y, &[1, 4, 2], &[1., 2., 3., 4., 5., 6., 7., 8.]);
    let y = run1(Op::Concat(Concat { axis: 2 }), &[a.clone(), c]);
    assert_f32(&y, &[1, 1, 4], &[1., 2., 7., 8.]);
    let x = t(&[1, 4, 2], &[1., 2., 3., 4., 5., 6., 7., 8.]);
    let y = run1(Op::ChannelSlice(ChannelSlice { axis: 1, start: 1, end: 3 }), std::slice::from_ref(&x));
    assert_f32(&y, &[1, 2, 2], &[3., 4., 5., 6.]);
    let y = run1(Op::ChannelSlice(ChannelSlice { axis: 2, start: 1, end: 2 }), std::slice::from_ref(&x));
    assert_f32(&y, &[1, 4, 1], &[2., 4., 6., 8.]);
    let y = run1(Op::Transmit(Transmit { to: "cloud".into() }), std::slice::from_ref(&x));
    assert_eq!(y, x);
}

#[test]
fn data_movement_on_integer_tensors() {
    let x = Tensor::new(vec![2, 3], TensorData::I8(vec![1, 2, 3, 4, 5, 6])).unwrap();
    let y = run1(Op::Transpose(Transpose { perm: vec![1, 0] }), std::slice::from_ref(&x));
    assert_eq!(y.data(), &TensorData::I8(vec![1, 4, 2, 5, 3, 6]));
    let y = run1(Op::Concat(Concat { axis: 0 }), &[x.clone(), x.clone()]);
    assert_eq!(y.shape(), &[4, 3]);
    let y = run1(Op::ChannelSlice(ChannelSlice { axis: 1, start: 0, end: 2 }), std::slice::from_ref(&x));
    assert_eq!(y.data(), &TensorData::I8(vec![1, 2, 4, 5]));
    let y = run1(Op::Pad(Pad { pads: vec![0, 1, 0, 0], mode: PadMode::Edge, value: 0.0 }), std::slice::from_ref(&x));
    assert_eq!(y.data(), &TensorData::I8(vec![1, 1, 2, 3, 4, 4, 5, 6]));
    let y = run1(Op::Flatten(Flatten { axis: 0 }), std::slice::from_ref(&x));
    assert_eq!(y.shape(), &[1, 6]);
    // Arithmetic on integers is the integer interpreter's job.
    let e = run_op(Op::Relu, &[x]).unwrap_err();
    assert!(e.to_string().contains("must be f32"), "{e}");
}
