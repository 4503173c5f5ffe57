use super::*;
use crate::ops::BatchNorm;

#[test]
fn batch_norm_against_formula() {
    let mut rng = Rng::new(40);
    for shape in [vec![2, 3, 4, 5], vec![3, 4], vec![1, 2, 7]] {
        let c = shape[1];
        let x = rng.tensor(&shape);
        let gamma = rng.tensor(&[c]);
        let beta = rng.tensor(&[c]);
        let mean = rng.tensor(&[c]);
        let mut var = rng.tensor(&[c]);
        var.as_f32_mut().unwrap().iter_mut().for_each(|v| *v = v.abs() + 0.1);
        let eps = 1e-3f32;
        let inner: usize = shape[2..].iter().product();
        let (g, b, m, v) =
            (gamma.as_f32().unwrap(), beta.as_f32().unwrap(), mean.as_f32().unwrap(), var.as_f32().unwrap());
        let want: Vec<f64> = x
            .as_f32()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let ch = (i / inner) % c;
                (*x as f64 - m[ch] as f64) / (v[ch] as f64 + eps as f64).sqrt() * g[ch] as f64 + b[ch] as f64
            })
            .collect();
        let y = run_op_weights(Op::BatchNorm(BatchNorm { epsilon: eps }), &x, &[gamma, beta, mean, var]).unwrap();
        assert_close(&y[0], &shape, &want, 1e-5);
    }
}

#[test]
fn scale_shift_hand_computed() {
    let x = t(&[1, 2, 1, 2], &[1., 2., 3., 4.]);
    let y = run1(Op::ScaleShift, &[x, t(&[2], &[2., -1.]), t(&[2], &[0.5, 10.])]);
    assert_f32(&y, &[1, 2, 1, 2], &[2.5, 4.5, 7., 6.]);
}
