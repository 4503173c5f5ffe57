//! Import failures are typed `ImportError`s naming the file, the node and op type, and what
//! was expected; corrupted input never panics.

use clio::import::{
    import_onnx_bytes, import_path, import_tflite_bytes, ImportError, ImportErrorKind, ImportOptions, InputShape,
    MissingExternalData,
};
use clio::Limits;
use std::path::{Path, PathBuf};

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/import").join(name)
}

fn fail(name: &str, opts: &ImportOptions) -> ImportError {
    match import_path(&case(name), opts) {
        Ok(_) => panic!("{name} imported but should fail"),
        Err(e) => {
            let text = e.to_string();
            assert!(text.starts_with(&case(name).display().to_string()), "error does not name the file: {text}");
            assert!(!text.contains('\n'), "error is not one line: {text}");
            e
        }
    }
}

fn node_of(e: &ImportError) -> (&str, &str) {
    let n = e.node.as_ref().unwrap_or_else(|| panic!("no node in {e}"));
    (n.name.as_str(), n.op_type.as_str())
}

#[test]
fn unsupported_op_names_op_and_node() {
    let e = fail("unsupported_lstm.onnx", &ImportOptions::default());
    assert!(matches!(&e.kind, ImportErrorKind::UnsupportedOp { op_type, .. } if op_type == "LSTM"), "{e:?}");
    assert_eq!(node_of(&e), ("lstm_1", "LSTM"));
    assert!(e.to_string().contains("unsupported op `LSTM` at node `lstm_1`"), "{e}");
}

#[test]
fn attribute_and_semantic_errors_name_node_and_attribute() {
    let o = ImportOptions::default();
    let e = fail("bad_auto_pad.onnx", &o);
    assert_eq!(node_of(&e), ("conv_bad_pad", "Conv"));
    assert!(
        matches!(&e.kind, ImportErrorKind::Attribute { attr, message } if attr == "auto_pad" && message.contains("SAME_MIDDLE"))
    );
    assert!(e.to_string().contains("node `conv_bad_pad` (Conv): attribute `auto_pad`"), "{e}");

    let e = fail("bn_training.onnx", &o);
    assert_eq!(node_of(&e), ("bn_train", "BatchNormalization"));
    assert!(matches!(&e.kind, ImportErrorKind::Attribute { attr, .. } if attr == "training_mode"), "{e}");
    assert!(e.to_string().contains("inference mode"), "{e}");

    let e = fail("softmax_flatten.onnx", &o);
    assert_eq!(node_of(&e), ("softmax_2d", "Softmax"));
    assert!(e.to_string().contains("opset >= 13"), "{e}");

    let e = fail("int_data.onnx", &o);
    assert_eq!(node_of(&e), ("mul_int", "Mul"));
    assert!(matches!(&e.kind, ImportErrorKind::DType { tensor, .. } if tensor == "k"), "{e}");

    let e = fail("f16_input.onnx", &o);
    assert!(matches!(&e.kind, ImportErrorKind::DType { tensor, dtype, .. } if tensor == "x" && dtype == "FLOAT16"));
}

#[test]
fn non_finite_external_weights_are_refused_with_tensor_and_element() {
    // The committed external-data model, with fc.w's element 5 (bytes 304 + 20) made NaN, then
    // conv.b's element 3 (bytes 288 + 12) made infinite: float data are read straight into the
    // tensor and scanned, and the first bad value is named.
    let dir = std::env::temp_dir().join(format!("clio-nonfinite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(case("external_data.onnx"), dir.join("external_data.onnx")).unwrap();
    let mut bin = std::fs::read(case("external_data.bin")).unwrap();
    for (offset, value, want) in
        [(324, f32::NAN, "tensor `fc.w`: element 5 is NaN"), (300, f32::INFINITY, "tensor `conv.b`: element 3 is inf")]
    {
        bin[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        std::fs::write(dir.join("external_data.bin"), &bin).unwrap();
        let e = import_path(&dir.join("external_data.onnx"), &ImportOptions::default()).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("weights must be finite"), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn external_data_problems() {
    let o = ImportOptions::default();
    let e = fail("external_missing.onnx", &o);
    match &e.kind {
        ImportErrorKind::ExternalData { initializer, file, message } => {
            assert_eq!(initializer, "scale");
            assert!(file.ends_with("weights_not_committed.bin"), "{}", file.display());
            assert!(message.contains("does not exist"), "{message}");
        }
        k => panic!("{k:?}"),
    }
    let zeros = ImportOptions { missing_external_data: MissingExternalData::Zeros, ..Default::default() };
    let m = import_path(&case("external_missing.onnx"), &zeros).unwrap();
    assert_eq!(m.weight("scale").unwrap().data().as_f32().unwrap(), &[0.0; 4]);

    for name in ["external_escape.onnx", "external_beyond_end.onnx"] {
        for opts in [&o, &zeros] {
            let e = fail(name, opts);
            assert!(
                matches!(&e.kind, ImportErrorKind::ExternalData { initializer, .. } if initializer == "scale"),
                "{e}"
            );
        }
    }
    // A declared 1e12-element tensor is a limit error, not an allocation, even when zero-filling.
    for opts in [&o, &zeros] {
        let e = fail("external_huge.onnx", opts);
        match &e.kind {
            ImportErrorKind::LimitExceeded { elements, limit, .. } => {
                assert_eq!((*elements, *limit), (Some(1_000_000_000_000), Limits::default().max_tensor_elements))
            }
            k => panic!("{k:?}"),
        }
    }
}

#[test]
fn limits_bound_every_tensor() {
    let tight = ImportOptions { limits: Limits { max_tensor_elements: 100 }, ..Default::default() };
    let e = fail("window_ops.onnx", &tight);
    assert!(matches!(e.kind, ImportErrorKind::LimitExceeded { .. }), "{e}");
    assert!(e.to_string().contains("max_tensor_elements"), "{e}");
}

#[test]
fn input_shape_errors() {
    let with = |shapes: &[&str]| ImportOptions {
        input_shapes: shapes.iter().map(|s| InputShape::parse(s).unwrap()).collect(),
        ..Default::default()
    };
    // Symbolic `a`, fixed `b`.
    let e = fail("two_inputs.onnx", &ImportOptions::default());
    assert!(matches!(&e.kind, ImportErrorKind::SymbolicDim { input, dim, .. } if input == "a" && dim == "N"));
    assert!(import_path(&case("two_inputs.onnx"), &with(&["2x3"])).is_ok());
    assert!(import_path(&case("two_inputs.onnx"), &with(&["a=1x3", "b=1x3"])).is_ok());
    for (bad, what) in [
        (&["c=1x3"][..], "names no graph input"),
        (&["a=1x3x1"][..], "rank"),
        (&["a=1x3", "b=2x3"][..], "fixed dimension 1 at index 0"),
        (&["1x3", "a=1x3"][..], "two shapes"),
    ] {
        let e = fail("two_inputs.onnx", &with(bad));
        assert!(matches!(e.kind, ImportErrorKind::InputShape { .. }), "{e}");
        assert!(e.to_string().contains(what), "{e}");
    }
    let e = InputShape::parse("1x?x3").unwrap_err();
    assert!(e.to_string().contains("`1x?x3`"), "{e}");
}

#[test]
fn missing_file_and_unknown_content() {
    let e = import_path(&case("no_such_model.onnx"), &ImportOptions::default()).unwrap_err();
    assert!(matches!(e.kind, ImportErrorKind::Io { .. }), "{e}");
    assert!(e.to_string().contains("no_such_model.onnx"), "{e}");
    let e = import_onnx_bytes(b"definitely not protobuf \xff\xff", "junk.onnx", None, &Default::default()).unwrap_err();
    assert!(matches!(e.kind, ImportErrorKind::Malformed { .. }), "{e}");
    assert!(e.to_string().starts_with("junk.onnx: malformed model"), "{e}");
}

/// xorshift, for reproducible corruption.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn import_no_panic(bytes: &[u8], what: &str) {
    let opts = ImportOptions {
        missing_external_data: MissingExternalData::Zeros,
        limits: Limits { max_tensor_elements: 1 << 22 },
        ..Default::default()
    };
    let r = std::panic::catch_unwind(|| import_onnx_bytes(bytes, "corrupt.onnx", None, &opts));
    match r {
        Err(_) => panic!("import panicked on {what}"),
        Ok(Ok(m)) => clio::verify::verify_module(&m).unwrap_or_else(|e| panic!("{what}: unverified module: {e}")),
        Ok(Err(e)) => assert!(e.to_string().starts_with("corrupt.onnx: "), "{e}"),
    }
}

#[test]
fn truncated_and_corrupted_protobuf_never_panics() {
    for name in ["window_ops.onnx", "shape_subgraph.onnx", "legacy_opset9.onnx"] {
        let bytes = std::fs::read(case(name)).unwrap();
        // Every truncation.
        for len in 0..bytes.len() {
            import_no_panic(&bytes[..len], &format!("{name} truncated to {len} bytes"));
        }
        let e = import_onnx_bytes(&bytes[..bytes.len() / 2], "half.onnx", None, &Default::default()).unwrap_err();
        assert!(matches!(e.kind, ImportErrorKind::Malformed { .. }), "{e}");
        // Random byte flips.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..1500 {
            let mut b = bytes.clone();
            for _ in 0..1 + i % 4 {
                let pos = (rng(&mut seed) as usize) % b.len();
                b[pos] = rng(&mut seed) as u8;
            }
            import_no_panic(&b, &format!("{name} corruption #{i}"));
        }
    }
}

#[test]
fn tflite_failures_are_typed() {
    // A file with the TFLite identifier but no valid flatbuffer.
    let mut junk = vec![0u8; 64];
    junk[4..8].copy_from_slice(b"TFL3");
    let e = import_tflite_bytes(&junk, "junk.tflite", &ImportOptions::default()).unwrap_err();
    assert!(matches!(e.kind, ImportErrorKind::Tflite { .. }), "{e}");
    assert!(e.to_string().contains("tract-tflite could not load the file"), "{e}");
    // Content sniffing sends TFL3 files to the TFLite path whatever their extension.
    let dir = std::env::temp_dir().join(format!("clio-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("junk.onnx");
    std::fs::write(&p, &junk).unwrap();
    let e = import_path(&p, &ImportOptions::default()).unwrap_err();
    assert!(matches!(e.kind, ImportErrorKind::Tflite { .. }), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tflite_files_from_the_tf_converter() {
    // tract-tflite 0.23.9 loads this one (conv + residual add + mean); clio does not convert
    // tract's typed model yet, and says so.
    let e = import_path(&case("tflite_residual.tflite"), &ImportOptions::default()).unwrap_err();
    assert!(matches!(e.kind, ImportErrorKind::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("tract-tflite loaded the model"), "{e}");
    // tract-tflite panics inside flatbuffers on this one (two Dense layers): caught, typed.
    let e = import_path(&case("tflite_dense.tflite"), &ImportOptions::default()).unwrap_err();
    match &e.kind {
        ImportErrorKind::Tflite { message } => {
            assert!(message.contains("panicked"), "{message}");
            assert!(message.contains("FULLY_CONNECTED"), "operator list missing: {message}");
        }
        k => panic!("{k:?}"),
    }
}

/// A tiny protobuf writer for hand-built ONNX models (field numbers from onnx.proto).
mod pb {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    /// A varint field (int32/int64; negative values as two's complement, as protobuf does).
    pub fn int(out: &mut Vec<u8>, field: u64, v: i64) {
        varint(out, field << 3);
        varint(out, v as u64);
    }
    /// A length-delimited field (string, bytes or message).
    pub fn bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
        varint(out, (field << 3) | 2);
        varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }
    /// TensorProto: dims (1), data_type (2), int64_data (7), name (8).
    pub fn tensor(name: &str, dims: &[i64], data_type: i64, int64_data: &[i64]) -> Vec<u8> {
        let mut t = Vec::new();
        for d in dims {
            int(&mut t, 1, *d);
        }
        int(&mut t, 2, data_type);
        for v in int64_data {
            int(&mut t, 7, *v);
        }
        bytes(&mut t, 8, name.as_bytes());
        t
    }
    /// NodeProto: input (1), output (2), name (3), op_type (4).
    pub fn node(name: &str, op_type: &str, inputs: &[&str], outputs: &[&str]) -> Vec<u8> {
        let mut n = Vec::new();
        for i in inputs {
            bytes(&mut n, 1, i.as_bytes());
        }
        for o in outputs {
            bytes(&mut n, 2, o.as_bytes());
        }
        bytes(&mut n, 3, name.as_bytes());
        bytes(&mut n, 4, op_type.as_bytes());
        n
    }
    /// ModelProto (ir_version 7, default-domain opset `opset`) of one graph: nodes (1),
    /// initializers (5) and float outputs (12) without shapes.
    pub fn model(opset: i64, nodes: &[Vec<u8>], inits: &[Vec<u8>], outputs: &[&str]) -> Vec<u8> {
        let mut g = Vec::new();
        for n in nodes {
            bytes(&mut g, 1, n);
        }
        bytes(&mut g, 2, b"g");
        for t in inits {
            bytes(&mut g, 5, t);
        }
        for o in outputs {
            let mut elem = Vec::new();
            int(&mut elem, 1, 1); // TypeProto.Tensor.elem_type = FLOAT
            let mut ty = Vec::new();
            bytes(&mut ty, 1, &elem); // TypeProto.tensor_type
            let mut vi = Vec::new();
            bytes(&mut vi, 1, o.as_bytes());
            bytes(&mut vi, 2, &ty);
            bytes(&mut g, 12, &vi);
        }
        let mut opset_id = Vec::new();
        int(&mut opset_id, 2, opset);
        let mut m = Vec::new();
        int(&mut m, 1, 7);
        bytes(&mut m, 7, &g);
        bytes(&mut m, 8, &opset_id);
        m
    }
}

/// Regression: folding a negative-step `Slice` of a constant with an empty (size-0) axis picked
/// element 0 of the empty constant (`SliceRange::indices` returned `[0]` for a dimension of
/// size 0) and the importer panicked with an index out of bounds.
#[test]
fn negative_step_slice_of_an_empty_constant_does_not_panic() {
    use tract_onnx::prelude::Framework;
    let inits = [
        pb::tensor("e", &[0], 1, &[]),
        pb::tensor("starts", &[1], 7, &[-1]),
        pb::tensor("ends", &[1], 7, &[i64::MIN]),
        pb::tensor("axes", &[1], 7, &[0]),
        pb::tensor("steps", &[1], 7, &[-1]),
    ];
    let nodes = [pb::node("rev", "Slice", &["e", "starts", "ends", "axes", "steps"], &["y"])];
    let bytes = pb::model(13, &nodes, &inits, &["y"]);
    // The model decodes (so the importer, not the protobuf layer, is under test).
    let m = tract_onnx::onnx().proto_model_for_read(&mut &bytes[..]).unwrap();
    assert_eq!(m.graph.as_ref().map(|g| g.node.len()), Some(1));
    import_no_panic(&bytes, "a reversed empty constant");
    // The slice folds to an empty constant, which cannot become a weight: a typed error naming it.
    let e = import_onnx_bytes(&bytes, "empty.onnx", None, &ImportOptions::default()).unwrap_err();
    assert!(matches!(e.kind, ImportErrorKind::Unsupported { .. }), "{e:?}");
    assert!(e.to_string().starts_with("empty.onnx: "), "{e}");
    assert!(e.to_string().contains("constant `y` of shape [0] is empty"), "{e}");
}
