//! The JPEG baseline: quality/size/PSNR trends, progressive streams cut after whole scans, errors.

use clio_train::jpeg::{decode, decode_prefix, encode, encode_progressive, header_len, psnr, scan_prefixes, JpegError};

const SIDE: usize = 28;

/// A 28x28 test image: a diagonal gradient, a bright square with sharp edges and a dark stripe.
fn synthetic() -> Vec<u8> {
    let mut img = vec![0u8; SIDE * SIDE];
    for y in 0..SIDE {
        for x in 0..SIDE {
            let mut v = 20 + (x + y) * 4;
            if (6..16).contains(&x) && (8..20).contains(&y) {
                v = 240;
            }
            if x == 21 || x == 22 {
                v = 5;
            }
            img[y * SIDE + x] = v as u8;
        }
    }
    img
}

/// A few real Fashion-MNIST images when the dataset is installed.
fn real_images() -> Vec<Vec<u8>> {
    match clio_train::data::load("fashion-mnist", clio_train::data::Split::Test) {
        Ok(data) => (0..5).map(|i| data.image(i).to_vec()).collect(),
        Err(err) => {
            println!("Fashion-MNIST images skipped: {err}");
            Vec::new()
        }
    }
}

/// All test images: the synthetic one first.
fn images() -> Vec<Vec<u8>> {
    let mut all = vec![synthetic()];
    all.extend(real_images());
    all
}

/// Decodes and checks the size.
fn roundtrip(bytes: &[u8]) -> Vec<u8> {
    let (pixels, w, h) = decode(bytes).unwrap();
    assert_eq!((w, h), (SIDE, SIDE));
    pixels
}

#[test]
fn psnr_and_size_grow_with_quality() {
    for img in images() {
        for progressive in [false, true] {
            let mut last = (0.0, 0);
            for q in [10, 50, 90] {
                let bytes = encode(&img, SIDE, SIDE, q, progressive).unwrap();
                let p = psnr(&img, &roundtrip(&bytes)).unwrap();
                assert!(
                    p > last.0 && bytes.len() > last.1,
                    "q={q} progressive={progressive}: {p} dB, {} B",
                    bytes.len()
                );
                last = (p, bytes.len());
            }
            assert!(last.0 > 30.0, "q=90 gives only {} dB", last.0);
        }
    }
}

#[test]
fn progressive_and_baseline_decode_alike() {
    for img in images() {
        for q in [25, 75, 95] {
            let base = roundtrip(&encode(&img, SIDE, SIDE, q, false).unwrap());
            let prog = roundtrip(&encode(&img, SIDE, SIDE, q, true).unwrap());
            let p = psnr(&base, &prog).unwrap();
            assert!(p > 45.0, "q={q}: baseline vs progressive {p} dB");
        }
    }
}

#[test]
fn baseline_has_one_cut() {
    let bytes = encode(&synthetic(), SIDE, SIDE, 75, false).unwrap();
    assert_eq!(scan_prefixes(&bytes).unwrap(), vec![bytes.len()]);
    // The tables and frame header come before the first SOS marker.
    let header = header_len(&bytes).unwrap();
    assert!(header > 100 && header < bytes.len(), "{header} of {}", bytes.len());
    assert_eq!(bytes[header..header + 2], [0xff, 0xda]);
    assert_eq!(decode_prefix(&bytes, bytes.len()).unwrap(), roundtrip(&bytes));
}

#[test]
fn more_scans_never_decode_worse() {
    for img in images() {
        for scans in [2u8, 4, 8, 33] {
            let bytes = encode_progressive(&img, SIDE, SIDE, 80, scans).unwrap();
            let cuts = scan_prefixes(&bytes).unwrap();
            assert_eq!(cuts.len(), usize::from(scans));
            assert!(cuts.windows(2).all(|w| w[0] < w[1]), "{cuts:?}");
            assert_eq!(cuts.last(), Some(&bytes.len()));
            assert!(header_len(&bytes).unwrap() < cuts[0]);
            let mut last = 0.0;
            for &cut in &cuts {
                let p = psnr(&img, &decode_prefix(&bytes, cut).unwrap()).unwrap();
                assert!(p >= last - 0.1, "scans={scans}, cut {cut} of {cuts:?}: {p} dB after {last} dB");
                last = p;
            }
            assert_eq!(decode_prefix(&bytes, bytes.len()).unwrap(), roundtrip(&bytes));
        }
        // The default progressive stream: DC scan plus three AC bands. The DC scan alone is the
        // image of 8x8 block averages (about 9-15 dB on high-contrast Fashion-MNIST items); each
        // band adds detail.
        let bytes = encode(&img, SIDE, SIDE, 90, true).unwrap();
        let cuts = scan_prefixes(&bytes).unwrap();
        assert_eq!(cuts.len(), 4);
        let dc = psnr(&img, &decode_prefix(&bytes, cuts[0]).unwrap()).unwrap();
        let full = psnr(&img, &decode_prefix(&bytes, cuts[3]).unwrap()).unwrap();
        assert!(dc > 5.0 && full > dc + 10.0, "DC only {dc} dB, full {full} dB");
    }
}

#[test]
fn bad_arguments_are_typed_errors() {
    let img = synthetic();
    assert!(matches!(encode(&img, 0, SIDE, 50, false), Err(JpegError::BadDimensions { .. })));
    assert!(matches!(encode(&img, SIDE, SIDE - 1, 50, false), Err(JpegError::BadDimensions { .. })));
    assert!(matches!(encode(&[0; 70000], 70000, 1, 50, false), Err(JpegError::BadDimensions { .. })));
    assert!(matches!(encode(&img, SIDE, SIDE, 0, false), Err(JpegError::BadQuality(0))));
    assert!(matches!(encode(&img, SIDE, SIDE, 101, true), Err(JpegError::BadQuality(101))));
    assert!(matches!(encode_progressive(&img, SIDE, SIDE, 50, 1), Err(JpegError::BadScans(1))));
    assert!(matches!(encode_progressive(&img, SIDE, SIDE, 50, 34), Err(JpegError::BadScans(34))));
    assert!(matches!(psnr(&img, &img[1..]), Err(JpegError::SizeMismatch { .. })));
    assert_eq!(psnr(&img, &img).unwrap(), f64::INFINITY);

    let bytes = encode(&img, SIDE, SIDE, 75, true).unwrap();
    let cuts = scan_prefixes(&bytes).unwrap();
    let err = decode_prefix(&bytes, cuts[0] + 1).unwrap_err();
    assert!(matches!(err, JpegError::NotAScanBoundary { .. }), "{err:?}");
    assert!(matches!(decode_prefix(&bytes, 0), Err(JpegError::NotAScanBoundary { .. })));
}

#[test]
fn corrupt_input_is_an_error_not_a_panic() {
    let img = synthetic();
    assert!(matches!(decode(&[]), Err(JpegError::Corrupt(_))));
    assert!(matches!(decode(b"not a jpeg at all"), Err(JpegError::Corrupt(_))));
    assert!(matches!(scan_prefixes(b"not a jpeg"), Err(JpegError::Malformed { offset: 0, .. })));
    assert!(matches!(scan_prefixes(&[0xff, 0xd8]), Err(JpegError::Malformed { .. })));
    assert!(matches!(scan_prefixes(&[0xff, 0xd8, 0xff, 0xd9]), Err(JpegError::Malformed { .. })));
    for progressive in [false, true] {
        let bytes = encode(&img, SIDE, SIDE, 75, progressive).unwrap();
        // Every truncation and a sweep of byte flips: errors or (for damaged entropy data) some
        // image, but never a panic.
        for len in 0..bytes.len() {
            let _ = decode(&bytes[..len]);
            assert!(scan_prefixes(&bytes[..len]).is_err(), "a stream cut at {len} has no EOI");
        }
        for i in 0..bytes.len() {
            let mut broken = bytes.clone();
            broken[i] ^= 0xa5;
            let _ = decode(&broken);
            if let Ok(cuts) = scan_prefixes(&broken) {
                for cut in cuts {
                    let _ = decode_prefix(&broken, cut);
                }
            }
        }
        // A damaged header is reported as corrupt.
        let mut broken = bytes.clone();
        broken[0] = 0;
        assert!(matches!(decode(&broken), Err(JpegError::Corrupt(_))));
    }
}
