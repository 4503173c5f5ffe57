//! Parameter and MAC counts of the real torchvision architectures (graph-only exports, weights
//! zero-filled): within 2% of the published figures, and equal to torch's own counts recorded
//! by the generator in testdata/models/graph_only/manifest.json.

use clio::analysis::{graph_cost, liveness};
use clio::import::{import_path, ImportOptions, MissingExternalData};
use std::path::Path;

fn within(actual: u64, expected: f64, tol: f64) -> bool {
    ((actual as f64 - expected) / expected).abs() <= tol
}

fn manifest_entry(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string("testdata/models/graph_only/manifest.json").unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["models"].as_array().unwrap().iter().find(|m| m["file"] == file).cloned().unwrap()
}

#[test]
fn published_mac_and_parameter_counts() {
    let opts = ImportOptions { missing_external_data: MissingExternalData::Zeros, ..Default::default() };
    for (file, macs, params) in [
        ("mobilenet_v2_224.onnx", 300e6, 3.5e6),
        ("resnet18_224.onnx", 1.82e9, 11.7e6),
        ("vgg16_bn_224.onnx", 15.5e9, 138e6),
    ] {
        let m = import_path(&Path::new("testdata/models/graph_only").join(file), &opts).unwrap();
        let c = graph_cost(&m, m.main_graph().unwrap());
        assert!(within(c.macs, macs, 0.02), "{file}: {} MACs, published {macs}", c.macs);
        assert!(within(c.params, params, 0.02), "{file}: {} params, published {params}", c.params);
        let entry = manifest_entry(file);
        assert_eq!(c.macs, entry["macs"].as_u64().unwrap(), "{file}: MACs differ from torch's forward hooks");
        assert_eq!(c.params, entry["params"].as_u64().unwrap(), "{file}: params differ from torch's numel()");
    }
}

#[test]
fn every_graph_only_model_matches_torch_counts() {
    let text = std::fs::read_to_string("testdata/models/graph_only/manifest.json").unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for entry in v["models"].as_array().unwrap() {
        let file = entry["file"].as_str().unwrap();
        // Inputs with a symbolic batch dimension are fixed to batch 1.
        let shape: Vec<usize> =
            entry["input_shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap_or(1) as usize).collect();
        let opts = ImportOptions {
            missing_external_data: MissingExternalData::Zeros,
            input_shapes: vec![clio::import::InputShape { name: None, shape }],
            ..Default::default()
        };
        let m = import_path(&Path::new("testdata/models/graph_only").join(file), &opts).unwrap();
        let g = m.main_graph().unwrap();
        let c = graph_cost(&m, g);
        assert_eq!(c.macs, entry["macs"].as_u64().unwrap(), "{file}: MACs");
        assert_eq!(c.params, entry["params"].as_u64().unwrap(), "{file}: params");
        // Liveness over the default schedule: the peak is at least the largest single
        // activation and at most the sum of all activations.
        let l = liveness(g, &g.topo_order().unwrap());
        let largest = l.intervals.iter().map(|i| i.bytes).max().unwrap();
        let total: usize = l.intervals.iter().map(|i| i.bytes).sum();
        assert!(
            l.peak_bytes >= largest && l.peak_bytes < total,
            "{file}: peak {} largest {largest} total {total}",
            l.peak_bytes
        );
    }
}
