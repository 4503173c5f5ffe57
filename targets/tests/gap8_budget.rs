//! GAP8 backend: the per-layer memory budget (L1 tiles, L2 live activations + scratch +
//! resident weights, L3 weights) on MobileNetV2 0.35 CIFAR at cut 8: every layer within the
//! 64 KB L1 and 512 KB L2, the L2 activation figure equal to the arena liveness recomputed here
//! from the IR graph, the constants placed consistently, and the table in the manifest, the
//! public renderer and the generated `.c`.

mod gap8_common;

use clio::ir::NodeId;
use clio::models::{mobilenet_v2, MobileNetV2Config, Variant};
use clio::Module;
use clio_targets::gap8::{lower, Gap8Layer, Gap8Options};
use gap8_common::q8_device;
use std::collections::HashMap;

/// The activation bytes live at each layer, from the device graph and the manifest alone:
/// a layer's result is live from the layer to its last reader (nodes that move no data, such
/// as `flatten` or a ReLU fused into its producer, read through to the buffer they alias); the
/// cut tensor stays live to the end. The caller's input is not in the arena.
fn liveness_from_ir(m: &Module, layers: &[Gap8Layer]) -> Vec<usize> {
    let g = m.graph("device").unwrap();
    let step_of: HashMap<&str, usize> = layers.iter().enumerate().map(|(i, l)| (l.node.as_str(), i)).collect();
    let mut buffer_of: HashMap<NodeId, usize> = HashMap::new();
    let mut last: Vec<usize> = (0..layers.len()).collect();
    for id in g.topo_order().unwrap() {
        let read: Vec<usize> = g.operands(id).iter().filter_map(|v| buffer_of.get(&v.node).copied()).collect();
        match step_of.get(g.node(id).name()) {
            Some(&i) => {
                for b in read {
                    last[b] = last[b].max(i);
                }
                buffer_of.insert(id, i);
            }
            None => {
                if let Some(b) = read.first() {
                    buffer_of.insert(id, *b);
                }
            }
        }
    }
    for out in g.outputs() {
        let b = buffer_of[&out.node];
        last[b] = layers.len();
    }
    (0..layers.len()).map(|i| (0..=i).filter(|b| last[*b] >= i).map(|b| layers[b].out_bytes).sum()).collect()
}

#[test]
fn mobilenet_v2_w035_cut8_per_layer_budget() {
    let cfg = MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
    let m = q8_device(mobilenet_v2(&cfg).unwrap(), "8", 5);
    let c = lower(&m, &Gap8Options::default()).unwrap();
    let r = &c.report;
    assert_eq!((r.l1_budget_bytes, r.l2_budget_bytes), (40960, 524288));
    let live = liveness_from_ir(&m, &r.layers);
    assert!(live.iter().any(|b| *b > 0));
    for (l, want) in r.layers.iter().zip(&live) {
        assert!(l.l1_bytes <= r.l1_budget_bytes, "%{}: L1 {}", l.node, l.l1_bytes);
        assert!(l.l2_bytes <= 524288, "%{}: L2 {}", l.node, l.l2_bytes);
        assert_eq!(l.l2_act_bytes, *want, "%{}: L2 activations vs the arena liveness", l.node);
        assert!(l.l2_act_bytes <= r.arena_bytes, "%{}", l.node);
        let in_l2 = if l.weights_in == "L2" { l.const_bytes } else { 0 };
        assert_eq!(l.l2_bytes, l.l2_act_bytes + l.l2_scratch_bytes + in_l2, "%{}", l.node);
        let expect_in = match (l.const_bytes, l.l3_bytes) {
            (0, _) => "none",
            (_, 0) => "L2",
            _ => "L3",
        };
        assert_eq!(l.weights_in, expect_in, "%{}", l.node);
        assert!(l.l3_bytes == 0 || l.l3_bytes == l.const_bytes, "%{}", l.node);
    }
    // The arena holds at least the largest live set; the planner's lower bound is that set
    // with every buffer aligned to 4 bytes.
    let peak = live.iter().copied().max().unwrap_or(0);
    assert!(peak <= r.arena_lower_bound_bytes && r.arena_lower_bound_bytes <= r.arena_bytes);
    // Everything fits L2 at this cut: no weights in L3.
    assert_eq!(r.weights_in, "L2");
    assert!(r.layers.iter().all(|l| l.l3_bytes == 0));
    let table = r.memory_table();
    for l in &r.layers {
        assert!(table.contains(&format!("%{} ", l.node)), "{table}");
    }
    assert!(c.source.contains("Per-layer memory budget") && c.manifest_json().contains("\"l2_act_bytes\""));
    eprintln!("{table}");
}

/// Past L2: from the cut after the global average pool (21) to the whole network (23, after
/// the classifier), the constants (~420 KB) do not fit next to the buffers. The largest weight
/// array, the 112 -> 1280 channel 1x1 conv `features.18.0` (143,360 B), moves to L3 and is read
/// chunk by chunk into a staging buffer of two halves of at most 16 KB; the rest fits. Each
/// layer says where its weights are, the image holds exactly the L3 layers' arrays, the L3
/// layer's chunks are cut to the staging halves, and the static L2 total fits.
#[test]
fn mobilenet_v2_w035_whole_net_streams_the_largest_weights_from_l3() {
    let cfg = MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
    let m = mobilenet_v2(&cfg).unwrap();
    for cut in ["21", "23"] {
        let c = lower(&q8_device(m.clone(), cut, 5), &Gap8Options::default()).unwrap();
        let r = &c.report;
        assert_eq!(r.weights_in, "L3");
        let l3_layers: Vec<&Gap8Layer> = r.layers.iter().filter(|l| l.weights_in == "L3").collect();
        let names: Vec<&str> = l3_layers.iter().map(|l| l.node.as_str()).collect();
        assert_eq!(names, ["features.18.0"], "cut {cut}:\n{}", r.memory_table());
        // Largest first: every array left in L2 is at most the smallest one moved.
        let smallest_moved = l3_layers.iter().map(|l| l.weight_bytes).min().unwrap();
        let largest_kept = r.layers.iter().filter(|l| l.weights_in == "L2").map(|l| l.weight_bytes).max().unwrap();
        assert!(largest_kept <= smallest_moved, "{largest_kept} > {smallest_moved}");
        // Two halves of one chunk each: 146 output channels x 112 B = 16,352 B <= 16 KB.
        assert_eq!(r.l3_stage_bytes, 2 * 16_352);
        let l = l3_layers[0];
        assert_eq!((l.weight_bytes, l.l3_bytes), (143_360, 143_360));
        assert!(l.weight_bytes < l.const_bytes, "its per-channel constants stay in L2");
        assert!(
            l.reason.contains("weights from L3 (HyperRAM) in chunks of 146 output channel(s), 16352 B"),
            "{}",
            l.reason
        );
        assert!(l.reason.contains("L1 tiles: 146 output channel(s)"), "{}", l.reason);
        // Its L2 figure counts the staging buffer, not its whole array.
        assert_eq!(l.l2_bytes, l.l2_act_bytes + l.l2_scratch_bytes + (l.const_bytes - l.l3_bytes) + r.l3_stage_bytes);
        // The cost comment states the HyperRAM reads, and the estimate covers them (they
        // overlap the compute: 143,360 B at 50 MB/s are 501,760 cycles at 175 MHz).
        assert!(c.source.contains("L3 reads 143360 B (501760 cycles at 50 MB/s, overlapped)"));
        assert!(l.est_cycles >= 501_760.0, "{}", l.est_cycles);
        // The image is the L3 array and nothing else.
        assert_eq!(c.l3_image.len(), 143_360);
        assert_eq!(r.l3_image_bytes, c.l3_image.len());
        // Buffers + wire header + constants resident in L2 + the staging buffer fit the 512 KB.
        let static_l2 = r.l2_bytes + (r.const_bytes - l.l3_bytes) + r.l3_stage_bytes;
        assert!(static_l2 <= 524288, "{static_l2}\n{}", r.memory_table());
        for l in &r.layers {
            assert!(l.l1_bytes <= 65536 && l.l2_bytes <= 524288, "%{}", l.node);
            // Every layer works on L1 tiles moved by DMA (none reads L2 directly): convolutions,
            // the classifier, residual adds and the global average pool.
            if !matches!(l.op.as_str(), "flatten" | "reshape" | "transmit") {
                assert!(
                    l.l1_bytes > 0 && l.reason.contains("L1 tiles") && l.dma_in_bytes > 0 && l.dma_out_bytes > 0,
                    "%{}: {}",
                    l.node,
                    l.reason
                );
            }
        }
        // The generated code declares no array for the L3 layer's weights and reads them in
        // 2D chunks (one line per input plane of the streamed dense layer): the first before
        // the program starts, each next one at the start of a chunk.
        for (i, l) in r.layers.iter().enumerate() {
            let declared = c.source.contains(&format!("PI_L2 static const int8_t clio_device_w{i}["))
                || c.source.contains(&format!("PI_L2 static const short int clio_device_f{i}["));
            assert_eq!(declared, l.weights_in == "L2" && l.weight_bytes > 0, "%{}", l.node);
        }
        assert_eq!(c.source.matches("pi_cl_ram_read_2d(clio_device_l3_ram").count(), 2);
        assert_eq!(c.source.matches("pi_cl_ram_read_wait(&clio_device_l3_req[lb])").count(), 1);
        eprintln!("cut {cut}: in L3 {names:?}; {}", r.memory_table().lines().last().unwrap_or_default());
    }
}
