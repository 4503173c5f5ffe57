//! Saving and loading modules (text + safetensors sidecar), with digest checking and atomic
//! replacement.

use clio::io::{load_module, save_module, sidecar_path, LoadOptions};
use clio::ir::{Builder, Module, Op, Tensor, TensorType};
use clio::ops::Conv2d;
use clio::text::{print_module, MissingWeights, PrintOptions};

fn module() -> Module {
    let mut m = Module::new("saved");
    let mut b = Builder::new(&mut m, "main");
    let x = b.input("x", TensorType::f32([1, 2, 4, 4]));
    let w = b.weight("conv.w", Tensor::from_f32([3, 2, 3, 3], (0..54).map(|i| (i as f32).sin()).collect()).unwrap());
    let y = b.op("conv", Op::Conv2d(Conv2d { pads: [1; 4], ..Default::default() }), &[x, w]).unwrap();
    b.output(y);
    b.finish();
    m
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("clio-io-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn save_then_load_is_lossless() {
    let d = tmpdir("lossless");
    let path = d.join("m.clio");
    let m = module();
    save_module(&m, &path).unwrap();
    assert!(sidecar_path(&path).exists());
    let back = load_module(&path, &LoadOptions::default()).unwrap();
    assert_eq!(print_module(&back, &PrintOptions::inline()), print_module(&m, &PrintOptions::inline()));
    // No temporary files are left behind.
    let names: Vec<String> =
        std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn streamed_sidecar_is_byte_identical_to_the_in_memory_one() {
    use clio::io::{write_sidecar, write_sidecar_bytes};
    use clio::ir::{Quant, Weight};
    let mut m = module();
    // Several dtypes (safetensors orders by dtype, then name) and names out of order.
    m.add_weight(
        "b.i32",
        Weight::quantized(Tensor::new([3], clio::ir::TensorData::I32(vec![-7, 0, 9])).unwrap(), Quant::pow2(4)),
    );
    m.add_weight(
        "a.i8",
        Weight::quantized(
            Tensor::new([2, 2], clio::ir::TensorData::I8(vec![-128, -1, 0, 127])).unwrap(),
            Quant::pow2(7),
        ),
    );
    m.add_weight("0.f32", Weight::new(Tensor::from_f32([1], vec![-0.5]).unwrap()));
    let d = tmpdir("streamed");
    let path = d.join("w.safetensors");
    write_sidecar(&m, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes, write_sidecar_bytes(&m).unwrap());
    // And it reads back to the same tensors, every dtype.
    let back = clio::io::read_sidecar(&bytes, "w.safetensors", &clio::Limits::default()).unwrap();
    assert_eq!(back.len(), m.weights().len());
    for (name, w) in m.weights() {
        assert_eq!(&back[name.as_str()], w.data(), "{name}");
    }
    // Read from the file directly (what load_module does): the same tensors.
    let direct = clio::io::read_sidecar_file(&path, &clio::Limits::default()).unwrap();
    assert_eq!(direct, back);
    // Every truncation, one extra byte, and a header length past the end are errors naming the
    // file, never panics.
    let cut = d.join("cut.safetensors");
    for len in (0..bytes.len()).chain([bytes.len() + 1]) {
        let mut b = bytes.clone();
        b.resize(len, 0);
        std::fs::write(&cut, &b).unwrap();
        let e = clio::io::read_sidecar_file(&cut, &clio::Limits::default()).unwrap_err().to_string();
        assert!(e.contains("cut.safetensors"), "{len} bytes: {e}");
    }
    let mut b = bytes.clone();
    b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&cut, &b).unwrap();
    let e = clio::io::read_sidecar_file(&cut, &clio::Limits::default()).unwrap_err().to_string();
    assert!(e.contains("a header of 18446744073709551615 bytes"), "{e}");
    // The element limit holds before anything is allocated.
    let e = clio::io::read_sidecar_file(&path, &clio::Limits { max_tensor_elements: 17 }).unwrap_err().to_string();
    assert!(e.contains("above the limit"), "{e}");
    // A directory that does not exist: a typed error naming the file, nothing left behind.
    let missing = d.join("no/such/dir/w.safetensors");
    let e = write_sidecar(&m, &missing).unwrap_err().to_string();
    assert!(e.contains("no/such/dir/w.safetensors") && e.contains("cannot write"), "{e}");
}

#[test]
fn stale_or_missing_sidecar_is_an_error() {
    let d = tmpdir("stale");
    let path = d.join("m.clio");
    save_module(&module(), &path).unwrap();
    // Replace the sidecar with one holding different data.
    let mut other = module();
    other.weights_mut()["conv.w"].data_mut().as_f32_mut().unwrap()[0] = 42.0;
    let other_path = d.join("other.clio");
    save_module(&other, &other_path).unwrap();
    std::fs::copy(sidecar_path(&other_path), sidecar_path(&path)).unwrap();
    let e = load_module(&path, &LoadOptions::default()).unwrap_err().to_string();
    assert!(e.contains("m.clio:2:") && e.contains("stale or mismatched sidecar"), "{e}");

    std::fs::remove_file(sidecar_path(&path)).unwrap();
    let e = load_module(&path, &LoadOptions::default()).unwrap_err().to_string();
    assert!(e.contains("weight @conv.w is a blob but no data were supplied"), "{e}");
    // Structure-only loading is possible on request.
    let opts = LoadOptions { missing: MissingWeights::Zeros, ..Default::default() };
    let m = load_module(&path, &opts).unwrap();
    assert!(m.weight("conv.w").unwrap().data().as_f32().unwrap().iter().all(|v| *v == 0.0));
}

#[test]
fn corrupt_sidecar_is_an_error_not_a_panic() {
    let d = tmpdir("corrupt");
    let path = d.join("m.clio");
    save_module(&module(), &path).unwrap();
    let side = sidecar_path(&path);
    let bytes = std::fs::read(&side).unwrap();
    for cut in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&side, &bytes[..cut]).unwrap();
        let e = load_module(&path, &LoadOptions::default()).unwrap_err().to_string();
        assert!(e.contains("m.safetensors"), "{e}");
    }
}

#[test]
fn atomic_dir_keeps_previous_output_on_failure() {
    use clio::io::AtomicDir;
    let d = tmpdir("atomicdir");
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("old.txt"), "old").unwrap();
    {
        let a = AtomicDir::new(&out).unwrap();
        std::fs::write(a.path().join("new.txt"), "new").unwrap();
        // Dropped without commit: a failed run.
    }
    assert_eq!(std::fs::read_to_string(out.join("old.txt")).unwrap(), "old");
    assert!(!out.join("new.txt").exists());
    let a = AtomicDir::new(&out).unwrap();
    std::fs::write(a.path().join("new.txt"), "new").unwrap();
    a.commit().unwrap();
    assert!(out.join("new.txt").exists() && !out.join("old.txt").exists());
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "temporary directories are cleaned up");
}

#[test]
fn little_endian_decoding_round_trips_at_any_alignment() {
    use clio::ir::{DType, TensorData};
    let cases = [
        TensorData::F32(vec![1.5, -0.0, f32::MIN_POSITIVE, 3.0e38]),
        TensorData::I8(vec![-128, -1, 0, 127]),
        TensorData::I16(vec![-32768, -2, 1, 32767]),
        TensorData::I32(vec![i32::MIN, -3, 7, i32::MAX]),
    ];
    for data in cases {
        let le = data.to_le_bytes();
        // The same bytes at offset 1 of a buffer: not aligned for the element type.
        let mut shifted = vec![0u8; le.len() + 1];
        shifted[1..].copy_from_slice(&le);
        for bytes in [&le[..], &shifted[1..]] {
            assert_eq!(TensorData::from_le_bytes(data.dtype(), bytes).as_ref(), Some(&data));
        }
        if data.dtype() != DType::I8 {
            assert_eq!(TensorData::from_le_bytes(data.dtype(), &le[1..]), None, "a partial element is refused");
        }
    }
    // Little-endian means the least significant byte first, whatever the host.
    assert_eq!(TensorData::I32(vec![0x0102_0304]).to_le_bytes(), [4, 3, 2, 1]);
    assert_eq!(TensorData::from_le_bytes(DType::I16, &[0x34, 0x12]), Some(TensorData::I16(vec![0x1234])));
}

#[test]
fn preallocated_writes_end_exactly_at_what_was_written() {
    let d = tmpdir("prealloc");
    let out = d.join("w.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    // Over an existing longer file, with the exact length, a length too large (the
    // reserved tail is cut off) and too small (the file still holds everything).
    std::fs::write(&out, vec![1u8; 1_000_000]).unwrap();
    for len in [data.len() as u64, data.len() as u64 + 123_457, 10] {
        let (head, tail) = data.split_at(1000);
        clio::io::write_atomic_preallocated(&out, len, |w| {
            w.write_all(head)?;
            w.write_all(tail)
        })
        .unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), data, "len hint {len}");
    }
    // A failing writer leaves the previous file and no temporary behind.
    let err = clio::io::write_atomic_preallocated(&out, 5_000_000, |w| {
        w.write_all(&data)?;
        Err(std::io::Error::other("disk on fire"))
    })
    .unwrap_err();
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), data);
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "no temporary file left");
    let _ = std::fs::remove_dir_all(&d);
}
