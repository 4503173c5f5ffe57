use super::reference as r;
use super::*;

#[test]
fn binary_hand_computed() {
    let a = t(&[2, 1], &[1., 2.]);
    let b = t(&[3], &[10., 20., 30.]);
    assert_f32(&run1(Op::Add, &[a.clone(), b.clone()]), &[2, 3], &[11., 21., 31., 12., 22., 32.]);
    assert_f32(&run1(Op::Sub, &[a.clone(), b.clone()]), &[2, 3], &[-9., -19., -29., -8., -18., -28.]);
    assert_f32(&run1(Op::Mul, &[b.clone(), a.clone()]), &[2, 3], &[10., 20., 30., 20., 40., 60.]);
    assert_f32(&run1(Op::Div, &[b, a]), &[2, 3], &[10., 20., 30., 5., 10., 15.]);
    // IEEE division by zero, rank-0 operands.
    let y = run1(Op::Div, &[t(&[3], &[1., -1., 0.]), Tensor::scalar_f32(0.0)]);
    let v = y.as_f32().unwrap();
    assert!(v[0] == f32::INFINITY && v[1] == f32::NEG_INFINITY && v[2].is_nan());
    assert_f32(&run1(Op::Add, &[Tensor::scalar_f32(1.5), Tensor::scalar_f32(2.0)]), &[], &[3.5]);
}

fn random_pair(rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
    let rank = rng.range(0, 5);
    let full: Vec<usize> = (0..rank).map(|_| rng.range(1, 4)).collect();
    let mut a = full.clone();
    let mut b = full;
    for d in 0..rank {
        match rng.range(0, 3) {
            0 => a[d] = 1,
            1 => b[d] = 1,
            _ => {}
        }
    }
    // Drop some leading axes of one side.
    let drop = rng.range(0, rank);
    if rng.bool() {
        a.drain(..drop);
    } else {
        b.drain(..drop);
    }
    (a, b)
}

#[test]
fn binary_random_broadcasting_against_reference() {
    let mut rng = Rng::new(20);
    for _ in 0..300 {
        let (ash, bsh) = random_pair(&mut rng);
        let a = rng.tensor(&ash);
        let b = rng.tensor(&bsh);
        let (ad, bd) = (a.as_f32().unwrap(), b.as_f32().unwrap());
        type F = fn(f64, f64) -> f64;
        let ops: [(Op, F); 4] =
            [(Op::Add, |x, y| x + y), (Op::Sub, |x, y| x - y), (Op::Mul, |x, y| x * y), (Op::Div, |x, y| x / y)];
        for (op, f) in ops {
            let (shape, want) = r::binary(ad, &ash, bd, &bsh, f);
            // Division by values near 0 magnifies rounding: compare with a relative tolerance.
            let y = run1(op.clone(), &[a.clone(), b.clone()]);
            let got = y.as_f32().unwrap();
            assert_eq!(y.shape(), shape.as_slice(), "{op:?} {ash:?} {bsh:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!((*g as f64 - w).abs() <= 1e-6 * w.abs().max(1.0), "{op:?} {ash:?} {bsh:?}: {g} vs {w}");
            }
        }
    }
}

#[test]
fn prelu_slopes_broadcast_to_input() {
    let x = t(&[1, 2, 1, 2], &[-1., 2., -3., 4.]);
    // Per-channel slope [C, 1, 1].
    let y = run1(Op::PRelu, &[x.clone(), t(&[2, 1, 1], &[0.5, 0.25])]);
    assert_f32(&y, &[1, 2, 1, 2], &[-0.5, 2., -0.75, 4.]);
    // Single slope [1].
    let y = run1(Op::PRelu, &[x.clone(), t(&[1], &[0.1])]);
    assert_f32(&y, &[1, 2, 1, 2], &[-0.1, 2., -0.3, 4.]);
    // Full-shape slope from the module's weights.
    let y = run_op_weights(Op::PRelu, &x, &[t(&[1, 2, 1, 2], &[1., 1., 2., 2.])]).unwrap();
    assert_f32(&y[0], &[1, 2, 1, 2], &[-1., 2., -6., 4.]);
}
