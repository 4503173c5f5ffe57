//! The cut tensor's wire format: encode/decode round trips (property test), any channel prefix
//! is a valid message, and malformed or truncated messages fail with typed errors (never a
//! panic or an unbounded allocation).

use clio::ir::{Quant, Tensor, TensorData};
use clio::quant::wire::{decode, encode, truncate_channels, WireError, MAGIC};
use clio::Limits;
use proptest::prelude::*;

fn tensor_strategy() -> impl Strategy<Value = (Tensor, usize, usize, Option<Quant>)> {
    (prop::collection::vec(1usize..5, 1..5), any::<bool>(), any::<u64>(), 0u8..3).prop_flat_map(
        |(shape, wide, seed, qkind)| {
            let n: usize = shape.iter().product();
            let rank = shape.len();
            let data = if wide {
                prop::collection::vec(any::<i16>(), n).prop_map(TensorData::I16).boxed()
            } else {
                prop::collection::vec(any::<i8>(), n).prop_map(TensorData::I8).boxed()
            };
            (Just(shape), data, 0..rank, Just(seed), Just(qkind))
                .prop_flat_map(|(shape, data, axis, seed, qkind)| {
                    let dim = shape[axis];
                    (Just(shape), Just(data), Just(axis), 1..=dim, Just(seed), Just(qkind))
                })
                .prop_map(|(shape, data, axis, k, seed, qkind)| {
                    let t = Tensor::new(shape, data).unwrap();
                    let q = match qkind {
                        0 => None,
                        1 => Some(Quant::pow2((seed % 20) as i32 - 5)),
                        _ => Some(Quant::affine(0.001 + (seed % 1000) as f32 / 100.0, (seed % 200) as i32 - 100)),
                    };
                    (t, axis, k, q)
                })
        },
    )
}

/// The first `k` indices of `axis` of `t`.
fn prefix(t: &Tensor, axis: usize, k: usize) -> Vec<f64> {
    let s = t.shape();
    let outer: usize = s[..axis].iter().product();
    let inner: usize = s[axis + 1..].iter().product();
    let v = t.to_f64_vec();
    let mut out = Vec::new();
    for o in 0..outer {
        out.extend_from_slice(&v[o * s[axis] * inner..(o * s[axis] + k) * inner]);
    }
    out
}

proptest! {
    #[test]
    fn roundtrip((t, axis, k, q) in tensor_strategy()) {
        let lim = Limits::default();
        let b = encode(&t, q.as_ref(), axis, k).unwrap();
        let d = decode(&b, &lim).unwrap();
        prop_assert_eq!(&d.shape, &t.shape().to_vec());
        prop_assert_eq!(d.channels, k);
        prop_assert_eq!(&d.quant, &q);
        prop_assert_eq!(d.data.to_f64_vec(), prefix(&t, axis, k));
        // Any prefix of channels is a valid message holding the prefix.
        for j in 1..=k {
            let p = truncate_channels(&b, j, &lim).unwrap();
            prop_assert!(b.starts_with(&p[..p.len().min(16)]) || p.len() <= b.len());
            let dj = decode(&p, &lim).unwrap();
            prop_assert_eq!(dj.data.to_f64_vec(), prefix(&t, axis, j));
        }
        // Every strict truncation fails cleanly.
        for cut in 0..b.len() {
            prop_assert!(decode(&b[..cut], &lim).is_err());
        }
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode(&bytes, &Limits::default());
        let mut framed = MAGIC.to_vec();
        framed.extend_from_slice(&bytes);
        let _ = decode(&framed, &Limits::default());
    }
}

#[test]
fn typed_errors() {
    let lim = Limits::default();
    let t = Tensor::new(vec![1, 2, 2], TensorData::I8(vec![1, 2, 3, 4])).unwrap();
    let good = encode(&t, Some(&Quant::pow2(3)), 1, 2).unwrap();
    assert!(matches!(decode(b"nope", &lim), Err(WireError::Truncated { .. })));
    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(decode(&bad, &lim), Err(WireError::BadMagic));
    let mut bad = good.clone();
    bad[4] = 9;
    assert_eq!(decode(&bad, &lim), Err(WireError::UnsupportedVersion(9)));
    let mut bad = good.clone();
    bad[5] = 7;
    assert_eq!(decode(&bad, &lim), Err(WireError::BadDtype(7)));
    let mut bad = good.clone();
    bad[7] = 0;
    assert_eq!(decode(&bad, &lim), Err(WireError::BadRank(0)));
    let mut bad = good.clone();
    bad.push(0);
    assert_eq!(decode(&bad, &lim), Err(WireError::TrailingBytes(1)));
    // Channels present above the channel dimension.
    let mut bad = good.clone();
    let at = 12 + 4 * 3;
    bad[at..at + 4].copy_from_slice(&3u32.to_le_bytes());
    assert_eq!(decode(&bad, &lim), Err(WireError::BadChannels { present: 3, total: 2 }));
    // A huge declared shape is rejected before allocating.
    let mut huge = good.clone();
    for i in 0..3 {
        huge[12 + 4 * i..16 + 4 * i].copy_from_slice(&u32::MAX.to_le_bytes());
    }
    assert!(matches!(decode(&huge, &lim), Err(WireError::TooLarge { .. })));
    // Non-positive affine scale.
    let ta = encode(&t, Some(&Quant::affine(0.5, 0)), 1, 2).unwrap();
    let mut bad = ta.clone();
    let q_at = 12 + 4 * 3 + 4;
    bad[q_at..q_at + 4].copy_from_slice(&(-1.0f32).to_le_bytes());
    assert!(matches!(decode(&bad, &lim), Err(WireError::BadQuant(_))));
    // Encoding refuses f32 and per-channel quantization.
    let f = Tensor::from_f32([2], vec![1.0, 2.0]).unwrap();
    assert!(matches!(encode(&f, None, 0, 1), Err(WireError::Encode(_))));
    let pc = Quant { axis: Some(1), ..Quant::pow2(1) };
    assert!(matches!(encode(&t, Some(&pc), 1, 1), Err(WireError::Encode(_))));
    assert!(matches!(encode(&t, None, 1, 3), Err(WireError::BadChannels { .. })));
    assert!(matches!(truncate_channels(&good, 0, &lim), Err(WireError::BadChannels { .. })));
}

#[test]
fn channel_major_layout_sends_whole_channels_first() {
    // [1, 3, 1, 2] NCHW: channel 0 = (1, 2), channel 1 = (3, 4), channel 2 = (5, 6).
    let t = Tensor::new(vec![1, 3, 1, 2], TensorData::I8(vec![1, 2, 3, 4, 5, 6])).unwrap();
    let b = encode(&t, None, 1, 3).unwrap();
    assert_eq!(&b[b.len() - 6..], &[1, 2, 3, 4, 5, 6]);
    // N = 2, C = 2, 1 element each: channel-major means both images' channel 0 come first.
    let t = Tensor::new(vec![2, 2, 1, 1], TensorData::I8(vec![10, 20, 30, 40])).unwrap();
    let b = encode(&t, None, 1, 2).unwrap();
    assert_eq!(&b[b.len() - 4..], &[10, 30, 20, 40]);
}
