use super::reference as r;
use super::*;
use crate::interp::float::conv2d_with_cap;
use crate::ops::Conv2d;

#[test]
fn conv_hand_computed() {
    // 1x1x3x3 input 1..9, one 2x2 all-ones filter, bias 10, pads [1, 0, 0, 1] (top, left,
    // bottom, right): output 3x2.
    let x = t(&[1, 1, 3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    let w = t(&[1, 1, 2, 2], &[1., 1., 1., 1.]);
    let b = t(&[1], &[10.]);
    let op = Op::Conv2d(Conv2d { pads: [1, 0, 0, 1], ..Default::default() });
    let y = run1(op, &[x, w, b]);
    // Padded rows: [0 0 0 (0)], [1 2 3 0], [4 5 6 0], [7 8 9 0] (right pad column), top pad row.
    // row 0 (pad + row0): 1+2, 2+3, 3+0 ; row 1: 1+2+4+5, 2+3+5+6, 3+6; row 2: 4+5+7+8, ...
    assert_f32(&y, &[1, 1, 3, 3], &[13., 15., 13., 22., 26., 19., 34., 38., 25.]);
}

#[test]
fn conv_hand_grouped_strided_dilated() {
    // Two groups, each a 1-channel 2x2 kernel with dilation 2, stride 2 on a 5x5 input.
    let xv: Vec<f32> = (0..50).map(|v| v as f32).collect();
    let x = t(&[1, 2, 5, 5], &xv);
    let w = t(&[2, 1, 2, 2], &[1., 0., 0., 1., 0., 1., 1., 0.]);
    let op = Op::Conv2d(Conv2d { strides: [2, 2], dilations: [2, 2], groups: 2, ..Default::default() });
    let y = run1(op, &[x, w]);
    // Group 0: x[y][x] + x[y+2][x+2] at (0,0),(0,2),(2,0),(2,2): 0+12, 2+14, 10+22, 12+24.
    // Group 1 (offset 25): x[y][x+2] + x[y+2][x]: 27+35, 29+37, 37+45, 39+47.
    assert_f32(&y, &[1, 2, 2, 2], &[12., 16., 32., 36., 62., 66., 82., 86.]);
}

/// A random convolution configuration.
struct Case {
    xs: [usize; 4],
    ws: [usize; 4],
    p: Conv2d,
    bias: bool,
}

fn random_case(rng: &mut Rng) -> Case {
    loop {
        let groups = match rng.range(0, 3) {
            0 => 1,
            1 => rng.range(1, 4),
            _ => 0, // depthwise
        };
        let cg = if groups == 0 { 1 } else { rng.range(1, 4) };
        let groups = if groups == 0 { rng.range(2, 6) } else { groups };
        let og = rng.range(1, 3);
        let (kh, kw) = (rng.range(1, 4), rng.range(1, 4));
        let p = Conv2d {
            strides: [rng.range(1, 3), rng.range(1, 3)],
            pads: [rng.range(0, 2), rng.range(0, 2), rng.range(0, 2), rng.range(0, 3)],
            dilations: [rng.range(1, 3), rng.range(1, 2)],
            groups,
        };
        let xs = [rng.range(1, 2), cg * groups, rng.range(1, 9), rng.range(1, 9)];
        let ws = [og * groups, cg, kh, kw];
        let fits = (0..2).all(|i| xs[2 + i] + p.pads[i] + p.pads[i + 2] > p.dilations[i] * (ws[2 + i] - 1));
        if fits {
            return Case { xs, ws, p, bias: rng.bool() };
        }
    }
}

#[test]
fn conv_random_against_reference() {
    let mut rng = Rng::new(1);
    for case in 0..300 {
        let c = random_case(&mut rng);
        let x = rng.tensor(&c.xs);
        let w = rng.tensor(&c.ws);
        let b = rng.tensor(&[c.ws[0]]);
        let (shape, want) = r::conv(
            x.as_f32().unwrap(),
            c.xs,
            w.as_f32().unwrap(),
            c.ws,
            c.bias.then(|| b.as_f32().unwrap()),
            c.p.strides,
            c.p.pads,
            c.p.dilations,
            c.p.groups,
        );
        let mut ins = vec![x.clone(), w.clone()];
        if c.bias {
            ins.push(b.clone());
        }
        let y = run_op(Op::Conv2d(c.p.clone()), &ins).unwrap_or_else(|e| panic!("case {case}: {e}"));
        assert_close(&y[0], &shape, &want, 1e-5);
        // The im2col path with tiny column budgets (blocks that split output rows).
        if !(c.ws[1] == 1 && c.p.groups > 1) {
            for budget in [1, 7, 40] {
                let y = conv2d_with_cap(&c.p, &x, &w, c.bias.then_some(&b), budget).unwrap();
                assert_close(&y, &shape, &want, 1e-5);
            }
        }
    }
}

#[test]
fn conv_pointwise_and_weights_from_module() {
    // 1x1 stride-1 unpadded: the direct (no im2col) path, weights read from the module.
    let mut rng = Rng::new(2);
    let x = rng.tensor(&[2, 6, 5, 7]);
    let w = rng.tensor(&[4, 6, 1, 1]);
    let b = rng.tensor(&[4]);
    let (shape, want) = r::conv(
        x.as_f32().unwrap(),
        [2, 6, 5, 7],
        w.as_f32().unwrap(),
        [4, 6, 1, 1],
        Some(b.as_f32().unwrap()),
        [1, 1],
        [0; 4],
        [1, 1],
        1,
    );
    let y = run_op_weights(Op::Conv2d(Conv2d::default()), &x, &[w, b]).unwrap();
    assert_close(&y[0], &shape, &want, 1e-5);
}

#[test]
fn conv_larger_shapes() {
    // Bigger channel counts (sgemm blocking inside matrixmultiply) and a 7x7 stride-2 stem.
    let mut rng = Rng::new(3);
    for (xs, ws, p) in [
        ([1, 3, 23, 19], [16, 3, 7, 7], Conv2d { strides: [2, 2], pads: [3, 3, 3, 3], ..Default::default() }),
        ([1, 64, 9, 9], [70, 64, 3, 3], Conv2d { pads: [1, 1, 1, 1], ..Default::default() }),
        (
            [1, 96, 10, 10],
            [96, 1, 3, 3],
            Conv2d { pads: [1, 1, 1, 1], groups: 96, strides: [2, 2], ..Default::default() },
        ),
    ] {
        let x = rng.tensor(&xs);
        let w = rng.tensor(&ws);
        let (shape, want) =
            r::conv(x.as_f32().unwrap(), xs, w.as_f32().unwrap(), ws, None, p.strides, p.pads, p.dilations, p.groups);
        let y = run1(Op::Conv2d(p), &[x, w]);
        assert_close(&y, &shape, &want, 1e-5);
    }
}
