//! ONNX import of the committed test models: every model imports and verifies, the source's
//! BatchNormalization / Add / 1x1 Conv nodes survive one for one, names are kept, symbolic
//! dimensions are fixed by input shapes, and shape subgraphs fold into plain reshapes.

use clio::import::{import_path, ImportErrorKind, ImportOptions, InputShape, MissingExternalData};
use clio::ir::{Graph, Module, Op};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tract_onnx::prelude::Framework;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn models_dir() -> PathBuf {
    root().join("testdata/models")
}

fn cases_dir() -> PathBuf {
    root().join("testdata/import")
}

/// Every `.onnx` directly in `dir` (sorted).
fn onnx_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "onnx"));
    v.sort();
    v
}

/// The input shape of a model's committed `.input.npy`, if any (for symbolic inputs).
fn npy_shape(model: &Path) -> Option<Vec<usize>> {
    let npy = model.with_extension("input.npy");
    clio::io::read_npy(&npy).ok().map(|t| t.shape().to_vec())
}

fn opts_for(model: &Path) -> ImportOptions {
    let mut opts = ImportOptions { missing_external_data: MissingExternalData::Zeros, ..Default::default() };
    if let Some(s) = npy_shape(model) {
        opts.input_shapes.push(InputShape { name: None, shape: s });
    } else if model.file_name().is_some_and(|f| f.to_string_lossy().starts_with("keras")) {
        opts.input_shapes.push(InputShape::parse("1x32x32x3").unwrap());
    }
    opts
}

fn op_counts(g: &Graph) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for id in g.node_ids() {
        *c.entry(g.node(id).op.name().to_string()).or_insert(0) += 1;
    }
    c
}

/// Number of `conv2d` nodes with a 1x1 kernel.
fn conv1x1_ir(g: &Graph) -> usize {
    g.node_ids()
        .filter(|id| matches!(g.node(*id).op, Op::Conv2d(_)))
        .filter(|id| {
            g.operand(*id, 1)
                .and_then(|w| g.value_type(w))
                .is_some_and(|t| t.shape.len() == 4 && t.shape[2..] == [1, 1])
        })
        .count()
}

/// Op-type counts and the number of 1x1 Conv nodes of the raw ONNX file (read with tract's
/// prost types, independently of the importer).
fn onnx_counts(path: &Path) -> (BTreeMap<String, usize>, usize) {
    let proto = tract_onnx::onnx().proto_model_for_path(path).expect("tract decodes the file");
    let g = proto.graph.expect("graph");
    let mut dims: BTreeMap<String, Vec<i64>> = g.initializer.iter().map(|t| (t.name.clone(), t.dims.clone())).collect();
    for n in &g.node {
        if n.op_type == "Constant" {
            if let Some(t) = n.attribute.iter().find(|a| a.name == "value").and_then(|a| a.t.as_ref()) {
                dims.insert(n.output[0].clone(), t.dims.clone());
            }
        }
    }
    let mut counts = BTreeMap::new();
    let mut c1 = 0;
    for n in &g.node {
        *counts.entry(n.op_type.clone()).or_insert(0) += 1;
        if n.op_type == "Conv" && dims.get(&n.input[1]).is_some_and(|d| d.len() == 4 && d[2..] == [1, 1]) {
            c1 += 1;
        }
    }
    (counts, c1)
}

fn import_ok(path: &Path) -> Module {
    match import_path(path, &opts_for(path)) {
        Ok(m) => m,
        Err(e) => panic!("{} failed to import: {e}", path.display()),
    }
}

#[test]
fn every_committed_model_imports_and_verifies() {
    let mut files = onnx_files(&models_dir());
    files.extend(onnx_files(&models_dir().join("pretrained")));
    files.extend(onnx_files(&models_dir().join("graph_only")));
    if files.is_empty() {
        eprintln!("no models in testdata/models yet");
        return;
    }
    for p in files {
        let m = import_ok(&p);
        clio::verify::verify_module(&m).unwrap();
        assert_eq!(m.graph_names(), vec!["main".to_string()], "{}", p.display());
        assert_eq!(m.name, p.file_stem().unwrap().to_string_lossy(), "module named after the file stem");
        let g = m.graph("main").unwrap();
        assert!(!g.outputs().is_empty());
        // Nothing is left that the importer should have mapped away.
        for id in g.node_ids() {
            assert!(g.node(id).op.is_builtin(), "{}: custom op in the import", p.display());
        }
    }
}

#[test]
fn bn_add_and_1x1_convs_survive_one_for_one() {
    let mut files = onnx_files(&models_dir());
    files.extend(onnx_files(&models_dir().join("pretrained")));
    files.extend(onnx_files(&models_dir().join("graph_only")));
    let (mut total_1x1, mut total_bn) = (0, 0);
    for p in files {
        let m = import_ok(&p);
        let g = m.graph("main").unwrap();
        let ir = op_counts(g);
        let (src, src_1x1) = onnx_counts(&p);
        let n = |k: &str| ir.get(k).copied().unwrap_or(0);
        let s = |k: &str| src.get(k).copied().unwrap_or(0);
        assert_eq!(n("batch_norm"), s("BatchNormalization"), "{}: BN count", p.display());
        assert_eq!(n("conv2d"), s("Conv"), "{}: Conv count", p.display());
        assert_eq!(conv1x1_ir(g), src_1x1, "{}: 1x1 conv count", p.display());
        // Every Add of the source is data-path here (shape arithmetic uses no Add in these files).
        assert_eq!(n("add"), s("Add"), "{}: Add count", p.display());
        total_1x1 += src_1x1;
        total_bn += s("BatchNormalization");
    }
    if total_bn > 0 {
        assert!(total_1x1 > 0, "the test models should contain 1x1 convolutions");
    }
}

#[test]
fn residual_adds_read_two_activations() {
    let p = models_dir().join("resnet_tiny.onnx");
    if !p.exists() {
        return;
    }
    let m = import_ok(&p);
    let g = m.graph("main").unwrap();
    let adds: Vec<_> = g.node_ids().filter(|id| matches!(g.node(*id).op, Op::Add)).collect();
    assert_eq!(adds.len(), 5);
    for a in adds {
        for v in g.operands(a) {
            assert!(!matches!(g.node(v.node).op, Op::Weight { .. }), "residual add reads a weight");
        }
    }
}

#[test]
fn source_names_and_attributes_are_kept() {
    let p = models_dir().join("mobilenet_v2_tiny.onnx");
    if !p.exists() {
        return;
    }
    let m = import_ok(&p);
    let proto = tract_onnx::onnx().proto_model_for_path(&p).unwrap();
    let pg = proto.graph.unwrap();
    let g = m.graph("main").unwrap();
    // Inputs keep their names; initializers listed as inputs are not inputs.
    let inputs: Vec<&str> = g.inputs().iter().map(|i| g.node(*i).name()).collect();
    assert_eq!(inputs, vec!["input"]);
    // Node names are the ONNX node names.
    for n in pg.node.iter().filter(|n| matches!(n.op_type.as_str(), "Conv" | "BatchNormalization" | "Add")) {
        assert!(g.find(&n.name).is_some(), "node `{}` lost its name", n.name);
    }
    // Weights are the initializer names.
    for t in &pg.initializer {
        assert!(m.weight(&t.name).is_some(), "initializer `{}` is not a weight", t.name);
    }
    let attr = |k: &str| m.attrs.get(k).cloned();
    assert_eq!(attr("source"), Some(clio::ir::Attr::Str("mobilenet_v2_tiny.onnx".into())));
    assert_eq!(attr("opset"), Some(clio::ir::Attr::Int(13)));
    assert!(matches!(attr("producer"), Some(clio::ir::Attr::Str(s)) if s.starts_with("pytorch")));
    // Outputs in order, named by the producing node.
    assert_eq!(g.outputs().len(), pg.output.len());
}

#[test]
fn symbolic_batch_needs_an_input_shape() {
    let p = models_dir().join("mlp_flatten_view.onnx");
    if !p.exists() {
        return;
    }
    let e = import_path(&p, &ImportOptions::default()).unwrap_err();
    match &e.kind {
        ImportErrorKind::SymbolicDim { input, index, dim, .. } => {
            assert_eq!((input.as_str(), *index, dim.as_str()), ("input", 0, "batch"));
        }
        k => panic!("unexpected error {k:?}"),
    }
    let text = e.to_string();
    assert!(text.contains("mlp_flatten_view.onnx") && text.contains("`input`") && text.contains("`batch`"), "{text}");
    assert!(text.contains("--input-shape"), "{text}");

    for (spec, batch) in [("1x3x32x32", 1), ("input=3x3x32x32", 3)] {
        let opts = ImportOptions { input_shapes: vec![InputShape::parse(spec).unwrap()], ..Default::default() };
        let m = import_path(&p, &opts).unwrap();
        let g = m.graph("main").unwrap();
        assert_eq!(g.value_type(g.outputs()[0]).unwrap().shape, vec![batch, 10]);
        // x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape is one reshape.
        let c = op_counts(g);
        assert_eq!(c.get("reshape"), Some(&1), "{c:?}");
        let r = g.node_ids().find(|id| matches!(g.node(*id).op, Op::Reshape(_))).unwrap();
        match &g.node(r).op {
            Op::Reshape(rs) => assert_eq!(rs.shape, vec![batch, 256]),
            _ => unreachable!(),
        }
    }
    // A contradicting fixed dimension is an error.
    let opts = ImportOptions { input_shapes: vec![InputShape::parse("1x3x16x32").unwrap()], ..Default::default() };
    let e = import_path(&p, &opts).unwrap_err();
    assert!(matches!(e.kind, ImportErrorKind::InputShape { .. }), "{e}");
    assert!(e.to_string().contains("fixed dimension 32 at index 2"), "{e}");
}

#[test]
fn hardswish_net_constant_pad_subgraphs_fold() {
    let p = models_dir().join("hardswish_net.onnx");
    if !p.exists() {
        return;
    }
    let m = import_ok(&p);
    let c = op_counts(m.graph("main").unwrap());
    assert_eq!(c.get("pad"), Some(&2), "{c:?}");
    assert_eq!(c.get("prelu"), Some(&1), "{c:?}");
    assert_eq!(c.get("concat"), Some(&1), "{c:?}");
    let g = m.graph("main").unwrap();
    let mp = g.node_ids().find(|id| matches!(g.node(*id).op, Op::MaxPool(_))).unwrap();
    assert_eq!(g.node(mp).ty().shape[2..], [16, 16], "ceil_mode max pool");
}

#[test]
fn keras_nhwc_model_imports() {
    for p in [models_dir().join("keras_tiny_cnn.onnx"), models_dir().join("graph_only/keras_cifar10.onnx")] {
        if !p.exists() {
            continue;
        }
        let e =
            import_path(&p, &ImportOptions { missing_external_data: MissingExternalData::Zeros, ..Default::default() })
                .unwrap_err();
        assert!(matches!(e.kind, ImportErrorKind::SymbolicDim { .. }), "{e}");
        let m = import_ok(&p);
        let g = m.graph("main").unwrap();
        let first = g.users(g.inputs()[0]);
        assert_eq!(first.len(), 1);
        match &g.node(first[0]).op {
            Op::Transpose(t) => assert_eq!(t.perm, vec![0, 3, 1, 2]),
            op => panic!("expected the leading NHWC->NCHW transpose, got {op:?}"),
        }
        assert_eq!(g.value_type(g.outputs()[0]).unwrap().shape, vec![1, 10]);
    }
}

#[test]
fn graph_only_models_import_with_zero_weights() {
    let dir = models_dir().join("graph_only");
    for p in onnx_files(&dir) {
        let mut opts = opts_for(&p);
        opts.missing_external_data = MissingExternalData::Error;
        let e = import_path(&p, &opts).unwrap_err();
        match &e.kind {
            ImportErrorKind::ExternalData { initializer, file, message } => {
                assert!(!initializer.is_empty());
                assert!(file.to_string_lossy().ends_with(".weights.bin"), "{}", file.display());
                assert!(message.contains("does not exist"), "{message}");
            }
            k => panic!("{}: unexpected {k:?}", p.display()),
        }
        let m = import_ok(&p);
        assert!(matches!(m.attrs.get("external_data"), Some(clio::ir::Attr::Str(s)) if s.contains("zero-filled")));
        for w in m.weights().values() {
            if let Some(v) = w.data().as_f32() {
                assert!(v.iter().all(|x| *x == 0.0));
            }
        }
    }
    // Parameter counts of the real architectures (weights excluding BN running statistics).
    let p = dir.join("resnet18_224.onnx");
    if p.exists() {
        let m = import_ok(&p);
        let total: usize = m.weights().values().map(|w| w.data().len()).sum();
        let g = m.graph("main").unwrap();
        let bn_stats: usize = g
            .node_ids()
            .filter(|id| matches!(g.node(*id).op, Op::BatchNorm(_)))
            .map(|id| 2 * g.node(id).ty().shape[1])
            .sum();
        assert_eq!(total - bn_stats, 11_689_512);
    }
}

#[test]
fn shape_subgraph_case_folds_every_shape_op() {
    let p = cases_dir().join("shape_subgraph.onnx");
    let e = import_path(&p, &ImportOptions::default()).unwrap_err();
    assert!(matches!(e.kind, ImportErrorKind::SymbolicDim { .. }));
    for batch in [1usize, 2] {
        let opts = ImportOptions {
            input_shapes: vec![InputShape { name: Some("x".into()), shape: vec![batch, 3, 4, 4] }],
            ..Default::default()
        };
        let m = import_path(&p, &opts).unwrap();
        let g = m.graph("main").unwrap();
        let c = op_counts(g);
        let expected: BTreeMap<String, usize> =
            [("conv2d", 1), ("gemm", 1), ("input", 1), ("reshape", 1), ("weight", 4)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        assert_eq!(c, expected);
        let r = g.find("view").unwrap();
        assert_eq!(g.node(r).ty().shape, vec![batch, 64]);
        // The integer constants of the subgraph did not become weights.
        assert_eq!(m.weights().keys().cloned().collect::<Vec<_>>(), vec!["c1.w", "c1.b", "fc.w", "fc.b"]);
    }
}

#[test]
fn legacy_and_window_cases_map_as_expected() {
    let m = import_path(&cases_dir().join("legacy_opset9.onnx"), &ImportOptions::default()).unwrap();
    let g = m.graph("main").unwrap();
    let op = |n: &str| g.node(g.find(n).unwrap()).op.clone();
    assert_eq!(op("relu6"), Op::Clip(clio::ops::Clip::RELU6));
    assert!(matches!(op("softmax"), Op::Softmax(s) if s.axis == 1));
    assert!(matches!(op("first_channels"), Op::ChannelSlice(s) if (s.axis, s.start, s.end) == (1, 0, 4)));
    assert!(matches!(op("bn"), Op::BatchNorm(b) if b.epsilon == 1e-3));
    assert!(matches!(op("pad"), Op::Pad(p) if p.value == 0.5 && p.pads == [0, 0, 1, 1, 0, 0, 1, 1]));

    let m = import_path(&cases_dir().join("window_ops.onnx"), &ImportOptions::default()).unwrap();
    let g = m.graph("main").unwrap();
    let op = |n: &str| g.node(g.find(n).unwrap()).op.clone();
    let shape = |n: &str| g.node(g.find(n).unwrap()).ty().shape.clone();
    match op("same_upper") {
        Op::Conv2d(c) => assert_eq!((c.strides, c.pads), ([2, 2], [0, 0, 1, 1])),
        o => panic!("{o:?}"),
    }
    match op("same_lower_dw") {
        Op::Conv2d(c) => assert_eq!((c.groups, c.pads), (8, [1, 1, 1, 1])),
        o => panic!("{o:?}"),
    }
    match op("valid_dilated") {
        Op::Conv2d(c) => assert_eq!((c.dilations, c.pads), ([2, 2], [0; 4])),
        o => panic!("{o:?}"),
    }
    assert_eq!(shape("valid_dilated"), vec![1, 8, 4, 4]);
    assert!(matches!(op("leaky"), Op::PRelu));
    assert!(matches!(op("pad_reflect"), Op::Pad(p) if p.mode == clio::ops::PadMode::Reflect));
    match op("avgpool_ceil") {
        Op::AvgPool(a) => assert!(a.count_include_pad && a.window.ceil_mode),
        o => panic!("{o:?}"),
    }
    assert!(matches!(op("maxpool_same"), Op::MaxPool(p) if p.window.pads == [1, 1, 1, 1]));
    assert!(g.find("identity").is_none() && g.find("dropout").is_none(), "pass-through ops vanish");
    assert!(matches!(op("reduce_mean.pool"), Op::GlobalAvgPool));
    assert_eq!(shape("reduce_mean"), vec![1, 10]);
    assert_eq!(g.value_type(g.outputs()[0]).unwrap().shape, vec![1, 4]);
}

#[test]
fn external_data_loads_next_to_the_model() {
    let p = cases_dir().join("external_data.onnx");
    let m = import_path(&p, &ImportOptions::default()).unwrap();
    let w = m.weight("conv.w").unwrap();
    assert_eq!(w.data().shape(), &[4, 2, 3, 3]);
    assert!(w.data().as_f32().unwrap().iter().any(|x| *x != 0.0));
    // From memory, without a directory: an error naming the initializer, or zeros on request.
    let bytes = std::fs::read(&p).unwrap();
    let e = clio::import::import_onnx_bytes(&bytes, "external_data.onnx", None, &ImportOptions::default()).unwrap_err();
    assert!(matches!(&e.kind, ImportErrorKind::ExternalData { initializer, .. } if initializer == "conv.w"), "{e}");
    let zeros = ImportOptions { missing_external_data: MissingExternalData::Zeros, ..Default::default() };
    let m = clio::import::import_onnx_bytes(&bytes, "external_data.onnx", None, &zeros).unwrap();
    assert!(m.weight("conv.w").unwrap().data().as_f32().unwrap().iter().all(|x| *x == 0.0));
    // With the directory given, the bytes import loads the data.
    let from_bytes =
        clio::import::import_onnx_bytes(&bytes, "external_data.onnx", Some(&cases_dir()), &Default::default()).unwrap();
    let from_path = import_path(&p, &ImportOptions::default()).unwrap();
    assert_eq!(from_bytes.weight("fc.w"), from_path.weight("fc.w"));
    assert_eq!(from_bytes.name, "external_data");
}
