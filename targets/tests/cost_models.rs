//! Cost models: calibration against the figures the Clio paper measured, per-kernel rates,
//! links, and description loading errors.

use clio::analysis::{cut_points, Granularity};
use clio::import::{import_path, ImportOptions, MissingExternalData};
use clio::ir::{Graph, NodeId};
use clio::Module;
use clio_targets::{load_link, load_target};
use std::collections::HashSet;
use std::path::Path;

fn mobilenet_v2_224() -> Module {
    let opts = ImportOptions { missing_external_data: MissingExternalData::Zeros, ..Default::default() };
    let mut m = import_path(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/models/graph_only/mobilenet_v2_224.onnx"),
        &opts,
    )
    .unwrap();
    // Devices run BN-folded graphs.
    let mut pm = clio::pass::PassManager::from_pipeline(&clio_passes::registry(), "fuse-bn").unwrap();
    pm.run(&mut m).unwrap();
    m
}

fn upstream(g: &Graph, n: NodeId) -> Vec<NodeId> {
    let mut seen = HashSet::new();
    let mut stack = vec![n];
    while let Some(x) = stack.pop() {
        if seen.insert(x) {
            stack.extend(g.producers(x));
        }
    }
    g.topo_order().unwrap().into_iter().filter(|x| seen.contains(x)).collect()
}

#[test]
fn gap8_runs_mobilenet_v2_early_layers_near_525_mmacs() {
    let m = mobilenet_v2_224();
    let g = m.main_graph().unwrap();
    let gap8 = load_target("gap8").unwrap();
    let cuts = cut_points(&m, "main", Granularity::Block).unwrap();
    // The early layers: the device part up to Clio's partition points (after blocks 3..8).
    for k in [4, 6, 9] {
        let c = &cuts[k];
        let cost = gap8.nodes_cost(&m, g, &upstream(g, c.value.node));
        let rate = c.device_macs as f64 / cost.latency_s / 1e6;
        eprintln!(
            "cut {k} (%{}): {} MACs in {:.1} ms = {rate:.0} MMAC/s, {:.2} mJ",
            c.node,
            c.device_macs,
            cost.latency_s * 1e3,
            cost.energy_j * 1e3
        );
        assert!((rate - 525.0).abs() / 525.0 < 0.10, "cut {k}: {rate:.0} MMAC/s, expected ~525");
    }
}

#[test]
fn stm32f7_cycles_per_mac_follow_the_kernel_mix() {
    let m = mobilenet_v2_224();
    let g = m.main_graph().unwrap();
    let stm = load_target("stm32f7").unwrap();
    let cuts = cut_points(&m, "main", Granularity::Block).unwrap();
    let c = &cuts[4];
    let cost = stm.nodes_cost(&m, g, &upstream(g, c.value.node));
    let cycles_per_mac = cost.latency_s * 216e6 / c.device_macs as f64;
    eprintln!(
        "stm32f7 cut 4: {:.1} ms, {cycles_per_mac:.2} cycles/MAC, {:.1} mJ",
        cost.latency_s * 1e3,
        cost.energy_j * 1e3
    );
    // Between the 1x1 (0.9) and depthwise (2.0) rates, as the mix dictates.
    assert!(cycles_per_mac > 0.9 && cycles_per_mac < 2.0, "{cycles_per_mac}");
    assert!((cost.energy_j - cost.latency_s * 0.3).abs() < 1e-9);
    // GAP8 is faster than the Cortex-M7 on the same part (HWCE + 8 cores).
    let gap8 = load_target("gap8").unwrap().nodes_cost(&m, g, &upstream(g, c.value.node));
    assert!(gap8.latency_s < cost.latency_s);
}

#[test]
fn cloud_is_orders_of_magnitude_faster() {
    let m = mobilenet_v2_224();
    let g = m.main_graph().unwrap();
    let all = g.topo_order().unwrap();
    let gpu = load_target("cloud-gpu").unwrap().nodes_cost(&m, g, &all);
    let gap8 = load_target("gap8").unwrap().nodes_cost(&m, g, &all);
    assert!(gpu.latency_s < 0.01 && gap8.latency_s > 0.3, "gpu {} gap8 {}", gpu.latency_s, gap8.latency_s);
}

#[test]
fn link_time_energy_and_inverse() {
    let ble = load_link("ble").unwrap();
    let t = ble.transfer_time_s(10_000, 250e3);
    assert!((t - (0.0075 + 10_000.0 * 8.0 * 1.1 / 250e3)).abs() < 1e-12);
    assert_eq!(ble.transfer_time_s(0, 250e3), 0.0);
    let b = ble.bytes_within(t, 250e3);
    assert!((9_999..=10_000).contains(&b), "{b}");
    let bw = ble.bandwidth_needed_bps(10_000, t).unwrap();
    assert!((bw - 250e3).abs() < 1e-6);
    assert_eq!(ble.bandwidth_needed_bps(10, 0.005), None, "set-up alone exceeds the deadline");
    assert!((ble.transfer_energy_j(1000) - 8000.0 * 4e-8).abs() < 1e-15);
}

#[test]
fn descriptions_are_data_with_clear_errors() {
    let dir = std::env::temp_dir().join(format!("clio-targets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A user copy of a built-in description loads by path.
    let mine = dir.join("my-gap8.json");
    let text = include_str!("../data/gap8.json").replace("\"cluster_hz\": 175000000.0", "\"cluster_hz\": 87500000.0");
    std::fs::write(&mine, text).unwrap();
    let slow = load_target(mine.to_str().unwrap()).unwrap();
    let m = mobilenet_v2_224();
    let g = m.main_graph().unwrap();
    let all = g.topo_order().unwrap();
    let fast = load_target("gap8").unwrap().nodes_cost(&m, g, &all).latency_s;
    assert!(slow.nodes_cost(&m, g, &all).latency_s > 1.5 * fast);
    let e = load_target("gap9").err().unwrap().to_string();
    assert_eq!(
        e,
        "unknown target `gap9` (built-in: gap8, stm32f7, cloud-gpu, cloud-cpu; or a path to a .json description)"
    );
    std::fs::write(
        &mine,
        include_str!("../data/gap8.json").replace("\"active_power_w\": 0.075", "\"active_power_w\": -1"),
    )
    .unwrap();
    let e = load_target(mine.to_str().unwrap()).err().unwrap().to_string();
    assert!(e.ends_with("`active_power_w` must be a positive number, got -1"), "{e}");
    std::fs::write(&mine, include_str!("../data/gap8.json").replace("\"cluster_hz\"", "\"cluster_mhz\"")).unwrap();
    let e = load_target(mine.to_str().unwrap()).err().unwrap().to_string();
    assert!(e.contains("unknown field `cluster_mhz`"), "{e}");
    let e = load_link("lora").err().unwrap().to_string();
    assert!(e.starts_with("unknown link `lora` (built-in: ble, wifi"), "{e}");
}

/// q16 graphs run on the cluster cores only, at half the 8-bit SIMD rate: a dense 3x3 conv the
/// HWCE takes in q8 is charged as a cluster conv, `cluster_i16_slowdown` (2) times slower.
#[test]
fn gap8_charges_q16_convolutions_at_the_16_bit_cluster_rate() {
    let w: Vec<String> = (0..576).map(|i| format!("{:.3}", ((i * 37 % 19) as f32 - 9.0) / 50.0)).collect();
    let src = format!(
        "module @c {{
  weight @w : tensor<8x8x3x3xf32> = dense<[{}]>
  graph @main(%x: tensor<1x8x16x16xf32>) -> (tensor<1x8x16x16xf32>) {{
    %c = conv2d(%x, @w) {{strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 1}} : tensor<1x8x16x16xf32>
    return %c
  }}
}}",
        w.join(", ")
    );
    let gap8 = load_target("gap8").unwrap();
    let cost = |scheme: &str| {
        let mut m = clio::text::parse_module(&src, &Default::default()).unwrap();
        let p = format!("quantize{{scheme={scheme},calib=random:1,samples=1}}");
        clio::pass::PassManager::from_pipeline(&clio_passes::registry(), &p).unwrap().run(&mut m).unwrap();
        let g = m.main_graph().unwrap();
        let conv = g.node_ids().find(|n| g.node(*n).name() == "c").unwrap();
        gap8.op_cost(&m, g, conv)
    };
    let (q8, q16) = (cost("q8"), cost("q16"));
    assert_eq!(q8.unit, "hwce");
    assert_eq!(q16.unit, "cluster-conv");
    let desc: serde_json::Value = serde_json::from_str(include_str!("../data/gap8.json")).unwrap();
    let f = |k: &str| desc[k].as_f64().unwrap();
    let macs = (8 * 8 * 9 * 16 * 16) as f64;
    let want = (macs / f("cluster_conv_macs_per_cycle") * f("cluster_i16_slowdown") + f("layer_overhead_cycles"))
        / f("cluster_hz")
        + (8 * 8 * 9 * 2) as f64 / f("weight_load_bytes_per_s");
    assert!((q16.latency_s - want).abs() < 1e-9 * want.max(1.0), "{} vs {want}", q16.latency_s);
    assert!(q16.latency_s > q8.latency_s);
}
