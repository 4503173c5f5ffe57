use super::reference as r;
use super::*;
use crate::ops::{Clip, HardSigmoid, Softmax};

#[test]
fn elementwise_activations_hand_computed() {
    let x = t(&[6], &[-4., -1., -0.5, 0., 1., 4.]);
    assert_f32(&run1(Op::Relu, std::slice::from_ref(&x)), &[6], &[0., 0., 0., 0., 1., 4.]);
    let y = run1(Op::Clip(Clip { min: -0.75, max: 2.0 }), std::slice::from_ref(&x));
    assert_f32(&y, &[6], &[-0.75, -0.75, -0.5, 0., 1., 2.]);
    let y = run1(Op::Clip(Clip::RELU6), &[t(&[3], &[-1., 3., 7.])]);
    assert_f32(&y, &[3], &[0., 3., 6.]);
    let y = run1(Op::HardSigmoid(HardSigmoid { alpha: 0.2, beta: 0.5 }), std::slice::from_ref(&x));
    assert_f32(&y, &[6], &[0., 0.3, 0.4, 0.5, 0.7, 1.]);
    // x * relu6(x + 3) / 6.
    let y = run1(Op::HardSwish, std::slice::from_ref(&x));
    assert_f32(&y, &[6], &[0., -1. / 3., -0.5 * 2.5 / 6., 0., 4. / 6., 4.]);
    let y = run1(Op::Sigmoid, &[t(&[5], &[0., 2., -2., 100., -100.])]);
    let e2 = 1.0 / (1.0 + (-2.0f64).exp());
    assert_close(&y, &[5], &[0.5, e2, 1.0 - e2, 1.0, 0.0], 1e-7);
}

#[test]
fn activations_propagate_nan() {
    let x = t(&[1], &[f32::NAN]);
    for op in [
        Op::Relu,
        Op::Clip(Clip::RELU6),
        Op::Sigmoid,
        Op::HardSwish,
        Op::HardSigmoid(HardSigmoid { alpha: 0.2, beta: 0.5 }),
    ] {
        assert!(run1(op.clone(), std::slice::from_ref(&x)).as_f32().unwrap()[0].is_nan(), "{op:?}");
    }
}

#[test]
fn softmax_hand_and_stability() {
    let y = run1(Op::Softmax(Softmax { axis: 1 }), &[t(&[1, 2], &[1000., 1001.])]);
    let a = 1.0 / (1.0 + 1f64.exp());
    assert_close(&y, &[1, 2], &[a, 1.0 - a], 1e-6);
    let y = run1(Op::Softmax(Softmax { axis: 0 }), &[t(&[2, 2], &[0., 1., 0., 1.])]);
    assert_f32(&y, &[2, 2], &[0.5, 0.5, 0.5, 0.5]);
}

#[test]
fn softmax_random_axes_against_reference() {
    let mut rng = Rng::new(30);
    for _ in 0..60 {
        let rank = rng.range(1, 4);
        let shape: Vec<usize> = (0..rank).map(|_| rng.range(1, 5)).collect();
        let axis = rng.range(0, rank - 1);
        let mut x = rng.tensor(&shape);
        x.as_f32_mut().unwrap().iter_mut().for_each(|v| *v *= 20.0);
        let want = r::softmax(x.as_f32().unwrap(), &shape, axis);
        let y = run1(Op::Softmax(Softmax { axis }), &[x]);
        assert_close(&y, &shape, &want, 1e-6);
    }
}
