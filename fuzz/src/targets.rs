//! The bodies of the fuzz targets. `cargo fuzz` runs them through `fuzz_targets/*.rs`; the
//! stable replay test (`tests/fuzz_replay.rs` in the main crate) runs every file of
//! `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/` through the same functions, so past
//! findings stay fixed in `cargo test`.
//!
//! Each body must never panic: any failure is an `Err` and is ignored.

/// A fuzz target body: takes the raw input, must never panic.
pub type Target = fn(&[u8]);

/// Every target, by directory name.
pub const TARGETS: &[(&str, Target)] = &[
    ("parse_text", parse_text),
    ("pipeline", pipeline),
    ("import_onnx", import_onnx),
    ("wire_decode", wire_decode),
    ("graph_pipeline", graph_pipeline),
    ("sidecar_decode", sidecar_decode),
];

/// IR text: parse, and if it parses, verify and check that printing round-trips.
pub fn parse_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let opts = clio::text::ParseOptions { missing: clio::text::MissingWeights::Zeros, ..Default::default() };
    let Ok(m) = clio::text::parse_module(text, &opts) else { return };
    let _ = clio::verify::verify_module(&m);
    let printed = clio::text::print_module(&m, &clio::text::PrintOptions::inline());
    let again = clio::text::parse_module(&printed, &Default::default()).expect("printed IR must parse");
    assert_eq!(
        clio::text::print_module(&again, &clio::text::PrintOptions::inline()),
        printed,
        "print is not a fixed point"
    );
}

/// Pipeline strings: parse; if they parse, printing round-trips.
pub fn pipeline(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(p) = clio::pass::Pipeline::parse(text) else { return };
    let printed = p.to_string();
    assert_eq!(clio::pass::Pipeline::parse(&printed).expect("printed pipeline must parse"), p);
}

/// ONNX bytes: import must return a module or an error, never panic or allocate unboundedly.
pub fn import_onnx(data: &[u8]) {
    let opts =
        clio::import::ImportOptions { limits: clio::Limits { max_tensor_elements: 1 << 22 }, ..Default::default() };
    let _ = clio::import::import_onnx_bytes(data, "fuzz", None, &opts);
}

/// Cut-tensor wire format: decoding arbitrary bytes is an error or a tensor of bounded size;
/// a decoded tensor re-encodes to the same bytes, and truncation keeps a prefix of channels.
pub fn wire_decode(data: &[u8]) {
    let limits = clio::Limits { max_tensor_elements: 1 << 20 };
    let Ok(t) = clio::quant::wire::decode(data, &limits) else { return };
    let elements: usize = t.data.shape().iter().product();
    assert!(elements <= limits.max_tensor_elements, "decoded {elements} elements past the limit");
    if let Ok(fewer) = clio::quant::wire::truncate_channels(data, 1, &limits) {
        let again = clio::quant::wire::decode(&fewer, &limits).expect("a truncated frame must decode");
        assert!(again.data.shape().iter().product::<usize>() <= elements);
        assert!(again.channels <= t.channels.max(1));
    }
}

/// Safetensors sidecars: the in-memory reader (`read_sidecar`, on the safetensors crate's parser)
/// and the file reader (`read_sidecar_file`, which reads tensors straight into their storage)
/// agree on every input: both refuse it, or both return the same tensors.
pub fn sidecar_decode(data: &[u8]) {
    let limits = clio::Limits { max_tensor_elements: 1 << 20 };
    let from_bytes = clio::io::read_sidecar(data, "fuzz", &limits);
    let path = std::env::temp_dir().join(format!(
        "clio-fuzz-sidecar-{}-{:?}.safetensors",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, data).expect("the fuzz input can be written to a temporary file");
    let from_file = clio::io::read_sidecar_file(&path, &limits);
    let _ = std::fs::remove_file(&path);
    // Bit for bit: a NaN element equals itself here (its float `==` would not).
    let bits = |t: &std::collections::HashMap<String, clio::ir::Tensor>| {
        let mut v: Vec<_> = t.iter().map(|(k, t)| (k.clone(), t.shape().to_vec(), t.data().to_le_bytes())).collect();
        v.sort();
        v
    };
    match (from_bytes, from_file) {
        (Ok(a), Ok(b)) => assert!(bits(&a) == bits(&b), "the two readers decode different tensors"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("the readers disagree: bytes {:?}, file {:?}", a.map(|t| t.len()), b.map(|t| t.len())),
    }
}

/// Structured: builds a random valid conv / depthwise / batch-norm / relu / relu6 / residual-add
/// / max-pool graph from the bytes, runs the standard float pipeline (`fuse-bn, skip-to-conv,
/// canonicalize, dce`) checking the verifier and numeric equivalence through the interpreter,
/// then partitions at a cut chosen by the bytes (the composition must equal the original) and
/// quantizes (int8, and q8 with power-of-two alignment, each with and without bias correction;
/// random calibration) checking that the result verifies and runs, and aligns the optimised
/// graph checking that its outputs stay put.
pub fn graph_pipeline(data: &[u8]) {
    let mut u = arbitrary::Unstructured::new(data);
    let Ok((m, x)) = random_graph(&mut u) else { return };
    clio::verify::verify_module(&m).expect("generated graphs verify");
    let want = clio::interp::run(&m, "main", std::slice::from_ref(&x)).expect("generated graphs run");
    let want = want[0].as_f32().expect("f32 output").to_vec();
    let scale = want.iter().fold(1.0f32, |s, v| s.max(v.abs()));
    let close = |got: &[f32], what: &str| {
        assert_eq!(got.len(), want.len(), "{what}: output size");
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-4 * scale, "{what}: {a} vs {b} (scale {scale})");
        }
    };
    let reg = clio_passes::registry();
    let mut opt = m.clone();
    let mut pm =
        clio::pass::PassManager::from_pipeline(&reg, "fuse-bn,skip-to-conv,canonicalize,dce").expect("pipeline");
    pm.run(&mut opt).expect("the standard pipeline accepts every generated graph");
    let got = clio::interp::run(&opt, "main", std::slice::from_ref(&x)).expect("optimised graph runs");
    close(got[0].as_f32().expect("f32"), "fuse-bn,skip-to-conv,canonicalize,dce");
    // Partition at a cut the bytes choose.
    let Ok(cuts) = clio::analysis::cut_points(&m, "main", clio::analysis::Granularity::Layer) else { return };
    if let Ok(i) = u.choose_index(cuts.len()) {
        let mut p = m.clone();
        let mut pm =
            clio::pass::PassManager::from_pipeline(&reg, &format!("partition{{cut={},granularity=layer}}", cuts[i].k))
                .expect("pipeline");
        pm.run(&mut p).expect("every listed cut partitions");
        let sent = clio::interp::run(&p, "device", std::slice::from_ref(&x)).expect("device runs");
        let got = clio::interp::run(&p, "cloud", &sent).expect("cloud runs");
        close(got[0].as_f32().expect("f32"), "partition");
    }
    // Quantize: the result verifies (the pass manager checks) and the integer interpreter runs it.
    for scheme in ["int8", "q8,align=true", "int8,bias-correction=weights", "q8,align=true,bias-correction=measured"] {
        let mut q = m.clone();
        let p = format!("fuse-bn,quantize{{scheme={scheme},calib=random:1}}");
        let mut pm = clio::pass::PassManager::from_pipeline(&reg, &p).expect("pipeline");
        if pm.run(&mut q).is_ok() {
            let _ = clio::interp::run_int(&q, "main", std::slice::from_ref(&x)).expect("quantized graph runs");
        }
    }
    // Power-of-two alignment rescales activations and compensates: same float outputs.
    let mut a = opt;
    let source = clio::quant::calib::CalibSource::parse("random:1", 2, 0).expect("random source");
    let opts = clio::quant::calib::CalibOptions { progress: false, ..Default::default() };
    if let Ok(mut calib) = clio::quant::calib::calibrate(&a, "main", &source, &opts) {
        let cfg = clio_passes::quantize::Config {
            scheme: clio_passes::quantize::Scheme::Q8,
            align: true,
            graph: "main".into(),
            ..Default::default()
        };
        clio_passes::quantize::align::align_pow2(&mut a, "main", &mut calib, &cfg).expect("align accepts float graphs");
        clio::verify::verify_module(&a).expect("aligned graphs verify");
        let got = clio::interp::run(&a, "main", std::slice::from_ref(&x)).expect("aligned graph runs");
        close(got[0].as_f32().expect("f32"), "align");
    }
}

/// Any construction error ends the generation (the input is skipped).
fn bad<E>(_: E) -> arbitrary::Error {
    arbitrary::Error::IncorrectFormat
}

fn floats(u: &mut arbitrary::Unstructured, n: usize, scale: f32) -> arbitrary::Result<Vec<f32>> {
    (0..n).map(|_| Ok((u.int_in_range(-1000i32..=1000)? as f32 / 1000.0) * scale)).collect()
}

/// A random valid graph (at most 12 ops, 6 channels, 7x7) and an input for it.
fn random_graph(u: &mut arbitrary::Unstructured) -> arbitrary::Result<(clio::Module, clio::Tensor)> {
    use clio::ir::{Builder, Op, Tensor, TensorType, Value};
    use clio::ops::{BatchNorm, Clip, Conv2d, MaxPool, Window2d};
    let c = u.int_in_range(1usize..=6)?;
    let hw = u.int_in_range(3usize..=7)?;
    let x_t = Tensor::from_f32([1, c, hw, hw], floats(u, c * hw * hw, 2.0)?).map_err(bad)?;
    let mut m = clio::Module::new("fuzz");
    let mut b = Builder::new(&mut m, "main");
    let x = b.input("x", TensorType::f32([1, c, hw, hw]));
    // (value, channels, spatial)
    let mut vals: Vec<(Value, usize, usize)> = vec![(x, c, hw)];
    for i in 0..u.int_in_range(1usize..=12)? {
        let (v, ch, s) = vals[u.choose_index(vals.len())?];
        let out = match u.int_in_range(0u8..=5)? {
            0 | 1 => {
                let groups = if u.ratio(1u8, 3u8)? { ch } else { 1 };
                let cout = if groups > 1 { ch } else { u.int_in_range(1usize..=6)? };
                let k = if u.arbitrary::<bool>()? { 3 } else { 1 };
                let wt = Tensor::from_f32([cout, ch / groups, k, k], floats(u, cout * ch / groups * k * k, 0.7)?)
                    .map_err(bad)?;
                let w = b.weight(&format!("c{i}.w"), wt);
                let mut ops = vec![v, w];
                if u.arbitrary::<bool>()? {
                    ops.push(
                        b.weight(&format!("c{i}.b"), Tensor::from_f32([cout], floats(u, cout, 0.5)?).map_err(bad)?),
                    );
                }
                let conv = Conv2d { pads: [k / 2; 4], groups, ..Default::default() };
                (b.op(&format!("c{i}"), Op::Conv2d(conv), &ops).map_err(bad)?, cout, s)
            }
            2 => {
                let g = b.weight(&format!("bn{i}.g"), Tensor::from_f32([ch], floats(u, ch, 1.0)?).map_err(bad)?);
                let be = b.weight(&format!("bn{i}.b"), Tensor::from_f32([ch], floats(u, ch, 1.0)?).map_err(bad)?);
                let mu = b.weight(&format!("bn{i}.m"), Tensor::from_f32([ch], floats(u, ch, 1.0)?).map_err(bad)?);
                let var: Vec<f32> = floats(u, ch, 1.0)?.iter().map(|v| 0.2 + v.abs()).collect();
                let va = b.weight(&format!("bn{i}.v"), Tensor::from_f32([ch], var).map_err(bad)?);
                let bn = Op::BatchNorm(BatchNorm { epsilon: 1e-5 });
                (b.op(&format!("bn{i}"), bn, &[v, g, be, mu, va]).map_err(bad)?, ch, s)
            }
            3 => {
                let op = if u.arbitrary::<bool>()? { Op::Relu } else { Op::Clip(Clip::RELU6) };
                (b.op(&format!("a{i}"), op, &[v]).map_err(bad)?, ch, s)
            }
            4 if s >= 2 => {
                let window = Window2d { kernel: [2, 2], strides: [2, 2], pads: [0; 4], ceil_mode: false };
                (b.op(&format!("p{i}"), Op::MaxPool(MaxPool { window }), &[v]).map_err(bad)?, ch, s / 2)
            }
            _ => {
                let same: Vec<Value> = vals.iter().filter(|(_, c2, s2)| *c2 == ch && *s2 == s).map(|t| t.0).collect();
                let other = same[u.choose_index(same.len())?];
                (b.op(&format!("add{i}"), Op::Add, &[v, other]).map_err(bad)?, ch, s)
            }
        };
        vals.push(out);
    }
    let last = vals.last().map(|t| t.0).ok_or(arbitrary::Error::NotEnoughData)?;
    b.output(last);
    b.finish();
    Ok((m, x_t))
}
