use super::reference as r;
use super::*;
use crate::ops::Gemm;

#[test]
fn gemm_hand_computed() {
    // A [2, 3], B^T given as [2, 3] (trans_b), C [2] broadcast along rows.
    let a = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let b = t(&[2, 3], &[1., 0., 1., 0., 1., 0.]);
    let c = t(&[2], &[100., 200.]);
    let op = Op::Gemm(Gemm { alpha: 2.0, beta: 0.5, trans_a: false, trans_b: true });
    let y = run1(op, &[a, b, c]);
    // A B^T = [[4, 2], [10, 5]]; 2 * that + 0.5 * [100, 200].
    assert_f32(&y, &[2, 2], &[58., 104., 70., 110.]);
}

#[test]
fn gemm_random_against_reference() {
    let mut rng = Rng::new(50);
    for _ in 0..200 {
        let (m, k, n) = (rng.range(1, 9), rng.range(1, 9), rng.range(1, 9));
        let p = Gemm {
            alpha: rng.uniform(-2.0, 2.0),
            beta: if rng.range(0, 4) == 0 { 0.0 } else { rng.uniform(-2.0, 2.0) },
            trans_a: rng.bool(),
            trans_b: rng.bool(),
        };
        let a = rng.tensor(&if p.trans_a { [k, m] } else { [m, k] });
        let b = rng.tensor(&if p.trans_b { [n, k] } else { [k, n] });
        let c_shape: Option<Vec<usize>> = match rng.range(0, 6) {
            0 => None,
            1 => Some(vec![]),
            2 => Some(vec![n]),
            3 => Some(vec![1, n]),
            4 => Some(vec![m, 1]),
            _ => Some(vec![m, n]),
        };
        let c = c_shape.as_ref().map(|s| rng.tensor(s));
        let (ad, bd) = (a.as_f32().unwrap(), b.as_f32().unwrap());
        let want: Vec<f64> = (0..m * n)
            .map(|idx| {
                let (i, j) = (idx / n, idx % n);
                let mut acc = 0.0;
                for l in 0..k {
                    let av = if p.trans_a { ad[l * m + i] } else { ad[i * k + l] } as f64;
                    let bv = if p.trans_b { bd[j * k + l] } else { bd[l * n + j] } as f64;
                    acc += av * bv;
                }
                let cv = match (&c, &c_shape) {
                    (Some(c), Some(s)) => c.as_f32().unwrap()[r::bidx(&[i, j], s)] as f64,
                    _ => 0.0,
                };
                p.alpha as f64 * acc + p.beta as f64 * cv
            })
            .collect();
        let mut ins = vec![a, b];
        ins.extend(c);
        let y = run1(Op::Gemm(p), &ins);
        assert_close(&y, &[m, n], &want, 1e-5);
    }
}

#[test]
fn matmul_shapes_against_reference() {
    let mut rng = Rng::new(51);
    let cases: &[(&[usize], &[usize])] = &[
        (&[4], &[4]),
        (&[4], &[4, 3]),
        (&[2, 4], &[4]),
        (&[2, 4], &[4, 3]),
        (&[5, 2, 4], &[4, 3]),
        (&[2, 4], &[5, 4, 3]),
        (&[5, 2, 4], &[5, 4, 3]),
        (&[2, 1, 3, 4], &[5, 4, 2]),
        (&[1, 3, 4], &[6, 4, 2]),
        (&[3], &[2, 3, 4]),
        (&[2, 2, 3], &[3]),
        (&[1, 1, 2, 3], &[1, 3, 1]),
        (&[65, 70], &[70, 33]),
    ];
    for (ash, bsh) in cases {
        let a = rng.tensor(ash);
        let b = rng.tensor(bsh);
        let (shape, want) = r::matmul(a.as_f32().unwrap(), ash, b.as_f32().unwrap(), bsh);
        let y = run1(Op::MatMul, &[a, b]);
        assert_close(&y, &shape, &want, 1e-5);
    }
}
