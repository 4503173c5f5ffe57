use super::reference as r;
use super::*;
use crate::ops::{AvgPool, MaxPool, Window2d};

fn win(kernel: [usize; 2], strides: [usize; 2], pads: [usize; 4], ceil_mode: bool) -> Window2d {
    Window2d { kernel, strides, pads, ceil_mode }
}

#[test]
fn pools_hand_computed_ceil_mode() {
    // x = [1, 2, 3, 4], window 3, stride 2, pads 1/1, ceil mode: three windows over the padded
    // row [p 1 2 3 4 p]: {p,1,2}, {2,3,4}, {4,p,<past the padding>}.
    let x = t(&[1, 1, 1, 4], &[1., 2., 3., 4.]);
    let w = win([1, 3], [1, 2], [0, 1, 0, 1], true);
    let y = run1(Op::MaxPool(MaxPool { window: w.clone() }), std::slice::from_ref(&x));
    assert_f32(&y, &[1, 1, 1, 3], &[2., 4., 4.]);
    // count_include_pad: divisors 3, 3 and 2 (the last window clipped to the padded input),
    // as PyTorch's avg_pool2d(ceil_mode=True, count_include_pad=True) gives.
    let y = run1(Op::AvgPool(AvgPool { window: w.clone(), count_include_pad: true }), std::slice::from_ref(&x));
    assert_f32(&y, &[1, 1, 1, 3], &[1., 3., 2.]);
    let y = run1(Op::AvgPool(AvgPool { window: w, count_include_pad: false }), &[x]);
    assert_f32(&y, &[1, 1, 1, 3], &[1.5, 3., 4.]);
}

#[test]
fn max_pool_pads_are_minus_infinity() {
    let x = t(&[1, 1, 2, 2], &[-5., -6., -7., -8.]);
    let y = run1(Op::MaxPool(MaxPool { window: win([2, 2], [1, 1], [1, 1, 1, 1], false) }), &[x]);
    assert_f32(&y, &[1, 1, 3, 3], &[-5., -5., -6., -5., -5., -6., -7., -7., -8.]);
}

#[test]
fn pools_random_against_reference() {
    let mut rng = Rng::new(10);
    let mut done = 0;
    while done < 400 {
        let k = [rng.range(1, 4), rng.range(1, 4)];
        let pads = [rng.range(0, k[0] - 1), rng.range(0, k[1] - 1), rng.range(0, k[0] - 1), rng.range(0, k[1] - 1)];
        let s = [rng.range(1, 3), rng.range(1, 3)];
        let xs = [rng.range(1, 2), rng.range(1, 3), rng.range(1, 9), rng.range(1, 9)];
        let ceil = rng.bool();
        if xs[2] + pads[0] + pads[2] < k[0] || xs[3] + pads[1] + pads[3] < k[1] {
            continue;
        }
        done += 1;
        let x = rng.tensor(&xs);
        let w = win(k, s, pads, ceil);
        let (shape, want) = r::pool(x.as_f32().unwrap(), xs, k, s, pads, ceil, None);
        let y = run1(Op::MaxPool(MaxPool { window: w.clone() }), std::slice::from_ref(&x));
        assert_close(&y, &shape, &want, 1e-6);
        for include in [false, true] {
            let (shape, want) = r::pool(x.as_f32().unwrap(), xs, k, s, pads, ceil, Some(include));
            let y =
                run1(Op::AvgPool(AvgPool { window: w.clone(), count_include_pad: include }), std::slice::from_ref(&x));
            assert_close(&y, &shape, &want, 1e-5);
        }
    }
}

#[test]
fn global_avg_pool_means() {
    let x = t(&[1, 2, 2, 2], &[1., 2., 3., 4., -1., -1., 0., 6.]);
    let y = run1(Op::GlobalAvgPool, &[x]);
    assert_f32(&y, &[1, 2, 1, 1], &[2.5, 1.]);
    // Rank 3 and 5 inputs average over every trailing axis.
    let x = t(&[1, 1, 3], &[1., 2., 6.]);
    assert_f32(&run1(Op::GlobalAvgPool, &[x]), &[1, 1, 1], &[3.]);
    let mut rng = Rng::new(11);
    let x = rng.tensor(&[2, 3, 2, 3, 4]);
    let want: Vec<f64> =
        x.as_f32().unwrap().chunks(24).map(|c| c.iter().map(|v| *v as f64).sum::<f64>() / 24.0).collect();
    assert_close(&run1(Op::GlobalAvgPool, &[x]), &[2, 3, 1, 1, 1], &want, 1e-6);
}
