//! GAP8 backend on small hand-written q8 graphs: a net with 5x5 and 7x7 convolutions (HWCE,
//! several 32-pixel stripes, digit splitting), max pooling, a strided depthwise conv with a
//! standalone ReLU6, a 1x1 conv, a residual add and a fully connected layer, bit-exact in C
//! against the integer interpreter; the golden C of a small model; errors naming node and op.

mod gap8_common;

use clio::quant::math::SplitMix64;
use clio::text::{parse_module, ParseOptions};
use clio::Module;
use clio_targets::gap8::{lower, Gap8Error, Gap8Options};
use gap8_common::{check_bit_exact, check_bit_exact_with, functions, run_pipeline};

fn dense(n: usize, seed: u64, scale: f64) -> String {
    let mut r = SplitMix64::new(seed);
    let v: Vec<String> = (0..n).map(|_| format!("{:.4}", (r.uniform() * 2.0 - 1.0) * scale)).collect();
    format!("dense<[{}]>", v.join(", "))
}

fn five_by_five() -> Module {
    let src = format!(
        "module @k5 {{
  weight @c5.w : tensor<8x3x5x5xf32> = {}
  weight @c5.b : tensor<8xf32> = {}
  weight @c7.w : tensor<4x8x7x7xf32> = {}
  weight @dw.w : tensor<4x1x3x3xf32> = {}
  weight @dw.b : tensor<4xf32> = {}
  weight @pw.w : tensor<4x4x1x1xf32> = {}
  weight @fc.w : tensor<5x100xf32> = {}
  weight @fc.b : tensor<5xf32> = {}
  graph @main(%x: tensor<1x3x40x40xf32>) -> (tensor<1x5xf32>) {{
    %c5 = conv2d(%x, @c5.w, @c5.b) {{strides = [1, 1], pads = [2, 2, 2, 2], dilations = [1, 1], groups = 1}} : tensor<1x8x40x40xf32>
    %r5 = relu(%c5) : tensor<1x8x40x40xf32>
    %mp = max_pool(%r5) {{kernel = [2, 2], strides = [2, 2], pads = [0, 0, 0, 0], ceil_mode = false}} : tensor<1x8x20x20xf32>
    %c7 = conv2d(%mp, @c7.w) {{strides = [1, 1], pads = [3, 3, 3, 3], dilations = [1, 1], groups = 1}} : tensor<1x4x20x20xf32>
    %dw = conv2d(%c7, @dw.w, @dw.b) {{strides = [2, 2], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 4}} : tensor<1x4x10x10xf32>
    %r6 = clip(%dw) {{min = 0.0, max = 6.0}} : tensor<1x4x10x10xf32>
    %pw = conv2d(%r6, @pw.w) {{strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], groups = 1}} : tensor<1x4x10x10xf32>
    %add = add(%pw, %r6) : tensor<1x4x10x10xf32>
    %ap = max_pool(%add) {{kernel = [2, 2], strides = [2, 2], pads = [0, 0, 0, 0], ceil_mode = false}} : tensor<1x4x5x5xf32>
    %fl = flatten(%ap) {{axis = 1}} : tensor<1x100xf32>
    %fc = gemm(%fl, @fc.w, @fc.b) {{alpha = 1.0, beta = 1.0, trans_a = false, trans_b = true}} : tensor<1x5xf32>
    return %fc
  }}
}}",
        dense(600, 1, 0.4),
        dense(8, 2, 0.2),
        dense(1568, 3, 0.1),
        dense(36, 4, 0.6),
        dense(4, 5, 0.2),
        dense(16, 6, 0.8),
        dense(500, 7, 0.3),
        dense(5, 8, 0.1),
    );
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    run_pipeline(&mut m, "quantize{scheme=q8,calib=random:2,samples=4},partition{cut=fc,granularity=layer}");
    m
}

#[test]
fn net_with_5x5_and_7x7_convs_bit_exact() {
    let c = check_bit_exact(&five_by_five(), "k5", 3);
    let f = functions(&c);
    for want in ["HWCE_ProcessOneTile5x5", "HWCE_ProcessOneTile7x7", "ClioKerParMaxPool_fps", "ClioKerParAdd_fps"] {
        assert!(f.iter().any(|u| u == want), "{want} not used: {f:?}");
    }
    assert!(c.source.contains("pi_cl_dma_cmd_2d") && c.source.contains("pi_cl_team_fork"));
    let manifest = c.manifest_json();
    assert!(manifest.contains("\"unit\": \"hwce\"") && manifest.contains("\"reason\""), "{manifest}");
    let r = &c.report;
    eprintln!(
        "k5: {} MACs ({} HWCE), arena {} B, acc {} B, L2 {} B, L1 {} B, consts {} B, est {} cycles",
        r.macs, r.hwce_macs, r.arena_bytes, r.acc_bytes, r.l2_bytes, r.l1_bytes, r.const_bytes, r.est_cycles
    );
    for l in &r.layers {
        eprintln!("  %{} -> {} ({} passes)", l.node, l.function, l.hwce_passes);
    }
}

/// The 5x5/7x7 net with an L2 budget just large enough for its buffers, its small constants
/// and the staging buffer, and 64-byte weight chunks: every layer with movable weights (HWCE
/// filters read as 2D chunks, the streamed depthwise and 1x1 layers, the fully connected layer
/// read from L2 by the cores) reads them from L3, several chunks each, double-buffered; the C
/// stays bit-exact. A budget below that is a typed error.
#[test]
fn every_engine_reads_its_weights_from_l3_in_chunks_bit_exact() {
    let m = five_by_five();
    let base = lower(&m, &Gap8Options::default()).unwrap().report.l2_bytes;
    let fits = |budget: usize| {
        let opts = Gap8Options { l2_budget_bytes: budget, l3_chunk_bytes: 64, ..Default::default() };
        lower(&m, &opts).map(|c| (c, opts))
    };
    let budget = (base..base + 16_384).step_by(64).find(|b| fits(*b).is_ok()).expect("no budget fits");
    let err = fits(budget - 64).err().unwrap();
    assert!(matches!(&err, Gap8Error::Graph { message, .. } if message.contains("do not fit L2 even with")), "{err}");
    let (c, opts) = fits(budget).unwrap();
    let r = &c.report;
    eprintln!("budget {budget} (buffers {base}):\n{}", r.memory_table());
    let moved: Vec<&str> = r.layers.iter().filter(|l| l.weights_in == "L3").map(|l| l.node.as_str()).collect();
    assert_eq!(moved, ["c5", "c7", "dw", "pw", "fc"], "{}", r.memory_table());
    for l in r.layers.iter().filter(|l| l.weights_in == "L3") {
        assert!(l.reason.contains("weights from L3 (HyperRAM) in chunks of"), "%{}: {}", l.node, l.reason);
        // The estimate covers the HyperRAM reads (50 MB/s at 175 MHz: 3.5 cycles per byte)
        // on top of the 12,000-cycle layer overhead.
        assert!(l.est_cycles >= 3.5 * l.l3_bytes as f64 + 12_000.0 - 1.0, "%{}: {}", l.node, l.est_cycles);
    }
    assert!(c.source.contains("pi_cl_ram_read_2d(") && c.source.contains("pi_cl_ram_read("));
    check_bit_exact_with(&m, "k5_l3", 3, &opts);
}

/// Planes too large for one output channel's L1 tile: a strided 3x3 conv over 160x160, a 1x1
/// conv, a dilated 3x3 conv and a depthwise 3x3 conv over 80x80 (none of them HWCE shapes) are
/// streamed in bands of
/// output rows, the band's input rows (window clipped, padding passed to the kernel) brought in
/// plane by plane, each band's outputs written back with a 2D DMA; bit-exact.
#[test]
fn large_planes_are_row_tiled_bit_exact() {
    let src = format!(
        "module @rows {{
  weight @a.w : tensor<8x4x3x3xf32> = {}
  weight @a.b : tensor<8xf32> = {}
  weight @b.w : tensor<4x8x1x1xf32> = {}
  weight @c.w : tensor<4x4x3x3xf32> = {}
  weight @d.w : tensor<4x1x3x3xf32> = {}
  graph @main(%x: tensor<1x4x160x160xf32>) -> (tensor<1x4x40x40xf32>) {{
    %a = conv2d(%x, @a.w, @a.b) {{strides = [2, 2], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 1}} : tensor<1x8x80x80xf32>
    %r = relu(%a) : tensor<1x8x80x80xf32>
    %b = conv2d(%r, @b.w) {{strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], groups = 1}} : tensor<1x4x80x80xf32>
    %c = conv2d(%b, @c.w) {{strides = [1, 1], pads = [2, 2, 2, 2], dilations = [2, 2], groups = 1}} : tensor<1x4x80x80xf32>
    %d = conv2d(%c, @d.w) {{strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 4}} : tensor<1x4x80x80xf32>
    %p = max_pool(%d) {{kernel = [2, 2], strides = [2, 2], pads = [0, 0, 0, 0], ceil_mode = false}} : tensor<1x4x40x40xf32>
    return %p
  }}
}}",
        dense(288, 21, 0.4),
        dense(8, 22, 0.2),
        dense(32, 23, 0.5),
        dense(144, 24, 0.4),
        dense(36, 25, 0.6),
    );
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    run_pipeline(&mut m, "quantize{scheme=q8,calib=random:3,samples=2},partition{cut=p,granularity=layer}");
    let c = check_bit_exact(&m, "rows", 2);
    for node in ["a", "b", "c", "d"] {
        let l = c.report.layers.iter().find(|l| l.node == node).unwrap();
        assert!(l.reason.contains("in bands of") && l.l1_bytes <= 40 * 1024, "%{node}: {}", l.reason);
    }
    assert!(c.source.contains("PI_CL_DMA_DIR_LOC2EXT") && c.source.contains("int rows ="));
}

#[test]
fn hwce_layers_on_tall_planes_are_row_tiled_bit_exact() {
    // 232 rows: a full-height HWCE stripe would need more than 64 KB of L1 (before row tiling
    // this was a typed error); an odd width exercises the even-width stripe padding. Then a
    // padded average pool whose single plane does not fit L1 (row bands), a residual add in
    // several flat chunks and a max pool in whole-plane tiles.
    let src = format!(
        "module @tall {{
  weight @a.w : tensor<6x2x3x3xf32> = {}
  weight @a.b : tensor<6xf32> = {}
  weight @b.w : tensor<4x6x5x5xf32> = {}
  weight @c.w : tensor<2x4x7x7xf32> = {}
  graph @main(%x: tensor<1x2x232x63xf32>) -> (tensor<1x2x116x31xf32>) {{
    %a = conv2d(%x, @a.w, @a.b) {{strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 1}} : tensor<1x6x232x63xf32>
    %r = relu(%a) : tensor<1x6x232x63xf32>
    %b = conv2d(%r, @b.w) {{strides = [1, 1], pads = [2, 2, 2, 2], dilations = [1, 1], groups = 1}} : tensor<1x4x232x63xf32>
    %c = conv2d(%b, @c.w) {{strides = [1, 1], pads = [3, 3, 3, 3], dilations = [1, 1], groups = 1}} : tensor<1x2x232x63xf32>
    %p = avg_pool(%c) {{kernel = [3, 3], strides = [1, 1], pads = [1, 1, 1, 1], ceil_mode = false, count_include_pad = false}} : tensor<1x2x232x63xf32>
    %s = add(%c, %p) : tensor<1x2x232x63xf32>
    %m = max_pool(%s) {{kernel = [2, 2], strides = [2, 2], pads = [0, 0, 0, 0], ceil_mode = false}} : tensor<1x2x116x31xf32>
    return %m
  }}
}}",
        dense(108, 31, 0.4),
        dense(6, 32, 0.2),
        dense(600, 33, 0.2),
        dense(392, 34, 0.1),
    );
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    run_pipeline(&mut m, "quantize{scheme=q8,calib=random:3,samples=2},partition{cut=m,granularity=layer}");
    let c = check_bit_exact(&m, "tall", 2);
    let layer = |node: &str| c.report.layers.iter().find(|l| l.node == node).unwrap();
    for node in ["a", "b", "c"] {
        let l = layer(node);
        assert_eq!(l.unit, "hwce", "%{node}: {}", l.reason);
        assert!(l.reason.contains("in bands of") && l.l1_bytes <= 40 * 1024, "%{node}: {}", l.reason);
    }
    assert!(layer("p").reason.contains("in bands of"), "{}", layer("p").reason);
    assert!(layer("s").reason.contains("L1 tiles: chunks of 6824 elements"), "{}", layer("s").reason);
    assert!(layer("m").reason.contains("L1 tiles: 1 channel(s), input"), "{}", layer("m").reason);
    assert!(c.report.l1_bytes <= 40 * 1024, "{}", c.report.l1_bytes);

    // A smaller L1 budget: smaller tiles everywhere (more bands), still bit-exact.
    let opts = Gap8Options { l1_budget_bytes: 8 * 1024, ..Default::default() };
    let small = check_bit_exact_with(&m, "tall_8k", 1, &opts);
    assert!(small.report.l1_bytes <= 8 * 1024, "{}", small.report.l1_bytes);
    for node in ["a", "b", "c"] {
        let (big, l) = (layer(node), small.report.layers.iter().find(|l| l.node == node).unwrap());
        assert_eq!(l.unit, "hwce", "%{node}: {}", l.reason);
        assert!(l.l1_bytes <= 8 * 1024 && l.l1_bytes < big.l1_bytes, "%{node}: {}", l.reason);
    }
    for bad in [0, 64 * 1024 + 1] {
        let e = lower(&m, &Gap8Options { l1_budget_bytes: bad, ..Default::default() }).unwrap_err();
        assert!(matches!(&e, Gap8Error::Options(msg) if msg.contains("l1_budget_bytes")), "{e}");
    }
}

#[test]
fn grouped_convs_stream_through_l1_bit_exact() {
    // Grouped (not depthwise) convs whose whole input does not fit L1: chunks of output
    // channels inside one group read that group's planes, in row bands when one output plane
    // does not fit (a: 112x112) and in whole planes otherwise (b: one channel per chunk, c: two).
    let src = format!(
        "module @grp {{
  weight @a.w : tensor<4x2x3x3xf32> = {}
  weight @a.b : tensor<4xf32> = {}
  weight @b.w : tensor<4x2x3x3xf32> = {}
  weight @c.w : tensor<4x2x3x3xf32> = {}
  graph @main(%x: tensor<1x4x112x112xf32>) -> (tensor<1x4x56x56xf32>) {{
    %a = conv2d(%x, @a.w, @a.b) {{strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 2}} : tensor<1x4x112x112xf32>
    %r = relu(%a) : tensor<1x4x112x112xf32>
    %b = conv2d(%r, @b.w) {{strides = [2, 2], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 2}} : tensor<1x4x56x56xf32>
    %c = conv2d(%b, @c.w) {{strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 2}} : tensor<1x4x56x56xf32>
    return %c
  }}
}}",
        dense(72, 41, 0.5),
        dense(4, 42, 0.2),
        dense(72, 43, 0.5),
        dense(72, 44, 0.5),
    );
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    run_pipeline(&mut m, "quantize{scheme=q8,calib=random:3,samples=2},partition{cut=c,granularity=layer}");
    let c = check_bit_exact(&m, "grouped", 2);
    let layer = |node: &str| c.report.layers.iter().find(|l| l.node == node).unwrap();
    assert!(layer("a").reason.contains("in bands of"), "{}", layer("a").reason);
    assert!(layer("b").reason.contains("L1 tiles: 1 output channel(s)"), "{}", layer("b").reason);
    assert!(layer("c").reason.contains("L1 tiles: 2 output channel(s)"), "{}", layer("c").reason);
    for l in &c.report.layers {
        assert!(l.l1_bytes > 0 && l.l1_bytes <= 40 * 1024 && l.dma_in_bytes > 0, "%{}: {}", l.node, l.reason);
    }
}

fn small() -> Module {
    let src = format!(
        "module @small {{
  weight @c.w : tensor<3x2x3x3xf32> = {}
  weight @c.b : tensor<3xf32> = {}
  weight @dw.w : tensor<3x1x3x3xf32> = {}
  weight @pw.w : tensor<4x3x1x1xf32> = {}
  graph @main(%x: tensor<1x2x8x8xf32>) -> (tensor<1x4x4x4xf32>) {{
    %c = conv2d(%x, @c.w, @c.b) {{strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 1}} : tensor<1x3x8x8xf32>
    %r = relu(%c) : tensor<1x3x8x8xf32>
    %dw = conv2d(%r, @dw.w) {{strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 3}} : tensor<1x3x8x8xf32>
    %r6 = clip(%dw) {{min = 0.0, max = 6.0}} : tensor<1x3x8x8xf32>
    %mp = max_pool(%r6) {{kernel = [2, 2], strides = [2, 2], pads = [0, 0, 0, 0], ceil_mode = false}} : tensor<1x3x4x4xf32>
    %pw = conv2d(%mp, @pw.w) {{strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], groups = 1}} : tensor<1x4x4x4xf32>
    return %pw
  }}
}}",
        dense(54, 11, 0.5),
        dense(3, 12, 0.2),
        dense(27, 13, 0.6),
        dense(12, 14, 0.8),
    );
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    run_pipeline(&mut m, "quantize{scheme=q8,calib=random:3,samples=4},partition{cut=pw,granularity=layer}");
    m
}

#[test]
fn small_golden_c() {
    let c = check_bit_exact(&small(), "small", 4);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::assert_snapshot!("gap8_small.c", c.source);
        insta::assert_snapshot!("gap8_small.manifest.json", c.manifest_json());
    });
}

#[test]
fn errors_name_node_and_op() {
    // An int8 (affine) graph is not a q8 graph.
    let mut m = parse_module(
        "module @e { graph @main(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x4x4xf32>) {
    %r = relu(%x) : tensor<1x2x4x4xf32>
    return %r } }",
        &ParseOptions::default(),
    )
    .unwrap();
    run_pipeline(&mut m, "quantize{scheme=int8,calib=random:1,samples=2},partition{cut=r,granularity=layer}");
    let e = lower(&m, &Gap8Options::default()).unwrap_err();
    assert!(matches!(e, Gap8Error::Invalid { .. }), "{e}");
    let s = e.to_string();
    assert!(s.contains("scheme=q8") && s.contains('%'), "{s}");
    // Explicit padding has no GAP8 kernel in this backend.
    let mut m = parse_module(
        "module @e { graph @main(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x6x6xf32>) {
    %pd = pad(%x) {pads = [0, 0, 1, 1, 0, 0, 1, 1], mode = \"constant\", value = 0.0} : tensor<1x2x6x6xf32>
    return %pd } }",
        &ParseOptions::default(),
    )
    .unwrap();
    run_pipeline(&mut m, "quantize{scheme=q8,calib=random:1,samples=2},partition{cut=pd,granularity=layer}");
    let e = lower(&m, &Gap8Options::default()).unwrap_err();
    assert!(matches!(e, Gap8Error::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("%pd (pad)"), "{e}");
    let e = lower(&small(), &Gap8Options { prefix: "1bad".into(), ..Default::default() }).unwrap_err();
    assert!(matches!(e, Gap8Error::Options(_)));
    let e = lower(&small(), &Gap8Options { graph: "nope".into(), ..Default::default() }).unwrap_err();
    assert!(matches!(e, Gap8Error::NoGraph(_)));
}

/// A hand-quantized depthwise layer whose bias is exactly representable in the output format
/// (bias Q4 = output Q4) runs on AutoTiler's `KerParConvDW3x3Stride2_fps`, bit-exactly; the
/// standalone ReLU6 after it runs on the cores.
#[test]
fn vendor_depthwise_kernel_when_exact() {
    let w: Vec<String> = (0..36i32).map(|i| ((i * 37) % 61 - 30).to_string()).collect();
    let src = format!(
        "module @dwq {{
  weight @dw.w : tensor<4x1x3x3xi8, pow2<6>> = dense<[{}]>
  weight @dw.b : tensor<4xi8, pow2<4>> = dense<[5, -7, 100, -128]>
  graph @device(%x: tensor<1x4x12x12xf32>) -> (tensor<1x4x6x6xi8, pow2<4>>) {{
    %q = quantize(%x) : tensor<1x4x12x12xi8, pow2<5>>
    %dw = conv2d(%q, @dw.w, @dw.b) {{strides = [2, 2], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 4}} : tensor<1x4x6x6xi8, pow2<4>>
    %r6 = clip(%dw) {{min = 0.0, max = 6.0}} : tensor<1x4x6x6xi8, pow2<4>>
    return %r6
  }}
}}",
        w.join(", ")
    );
    let m = parse_module(&src, &ParseOptions::default()).unwrap();
    let c = check_bit_exact(&m, "vendor_dw", 4);
    assert_eq!(functions(&c), ["KerParConvDW3x3Stride2_fps", "ClioKerParClamp_fps"]);
    // Both run on L1 tiles: the vendor kernel on chunks of whole channels, the clamp on flat chunks.
    assert!(c.report.layers[0].reason.contains("whole channel(s)"), "{}", c.report.layers[0].reason);
    assert!(c.report.layers[1].reason.contains("L1 tiles: chunks of"), "{}", c.report.layers[1].reason);
    assert!(c.source.contains(".Norm = 7"), "{}", c.source);
}
