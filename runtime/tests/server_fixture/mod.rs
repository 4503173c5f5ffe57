//! The cloud-server tests' fixture: a tiny sliced, int8-quantized model (a 3-layer conv chain
//! on 8x8x8 inputs, cut after the first layer, heads for 2, 4 and 8 channels), the device's
//! real wire messages (integer interpreter on `@device`) and the expected answers (integer
//! interpreter on each head, fed the first channels of the device's output directly, not
//! through the wire decoder). Shared by `runtime/tests/server.rs` and `cli/tests/serve_load.rs`.

#![allow(dead_code)]

use clio::ir::{Module, Tensor, TensorData};
use clio::models::{chain, ChainConfig};
use clio::pass::PassManager;

/// Slice sizes of the fixture's heads.
pub const SIZES: [usize; 3] = [2, 4, 8];
/// Channels of the cut tensor.
pub const CHANNELS: usize = 8;

/// The fixture.
pub struct Fixture {
    /// The cloud part (heads only), as `clio compile` writes it.
    pub cloud: Module,
    /// The cut index the heads serve.
    pub cut: u32,
    /// One full wire message (all channels) per input.
    pub messages: Vec<Vec<u8>>,
    /// The device outputs (i8, 1 x 8 x 8 x 8) the messages encode.
    pub sent: Vec<Tensor>,
}

fn run(m: &mut Module, pipeline: &str) {
    PassManager::from_pipeline(&clio_passes::registry(), pipeline).unwrap().run(m).unwrap();
}

/// A seeded pseudo-random input in [-1, 1).
pub fn input(seed: u64) -> Tensor {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data = (0..CHANNELS * 64)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    Tensor::from_f32(vec![1, CHANNELS, 8, 8], data).unwrap()
}

/// Builds the fixture with `inputs` device messages.
pub fn build(inputs: usize) -> Fixture {
    let cfg =
        ChainConfig { layers: 3, channels: CHANNELS, spatial: 8, kernel: 3, batch_norm: false, classes: 10, seed: 7 };
    let mut m = chain(&cfg).unwrap();
    run(&mut m, "slice{cut=1,sizes=2:4:8,bandwidth=none}");
    run(&mut m, "quantize{scheme=int8,calib=random:3,samples=8,graph=device}");
    let report: serde_json::Value = match m.attrs.get("clio.slice") {
        Some(clio::ir::Attr::Str(s)) => serde_json::from_str(s).unwrap(),
        other => panic!("no clio.slice: {other:?}"),
    };
    let cut = report["cut_k"].as_u64().unwrap() as u32;
    let g = m.graph("device").unwrap();
    let quant = g.value_type(g.outputs()[0]).unwrap().quant.clone().unwrap();
    let mut messages = vec![];
    let mut sent = vec![];
    for i in 0..inputs {
        let t = clio::interp::run_int(&m, "device", &[input(i as u64 + 1)]).unwrap().remove(0);
        assert_eq!(t.shape(), &[1, CHANNELS, 8, 8]);
        messages.push(clio::quant::wire::encode(&t, Some(&quant), 1, CHANNELS).unwrap());
        sent.push(t);
    }
    let mut cloud = m.clone();
    cloud.remove_graph("device");
    let names: Vec<String> = cloud.weights().keys().cloned().collect();
    for n in names {
        cloud.remove_weight_if_unread(&n);
    }
    Fixture { cloud, cut, messages, sent }
}

impl Fixture {
    /// The widest head size at most `received` (0: none).
    pub fn used(received: usize) -> usize {
        SIZES.iter().rev().copied().find(|s| *s <= received).unwrap_or(0)
    }

    /// The head `@cloud.s<used>` on the first `used` channels of input `i`'s device output:
    /// (class, scores), (-1, []) for `used` = 0.
    pub fn expected(&self, i: usize, used: usize) -> (i32, Vec<f32>) {
        if used == 0 {
            return (-1, vec![]);
        }
        let t = &self.sent[i];
        let TensorData::I8(v) = t.data() else { panic!("device output is not i8") };
        let x = Tensor::new(vec![1, used, 8, 8], TensorData::I8(v[..used * 64].to_vec())).unwrap();
        let out = clio::interp::run_int(&self.cloud, &format!("cloud.s{used}"), &[x]).unwrap();
        let scores = out[0].as_f32().unwrap().to_vec();
        let mut best = 0;
        for (j, s) in scores.iter().enumerate() {
            if *s > scores[best] {
                best = j;
            }
        }
        (best as i32, scores)
    }

    /// Input `i`'s message cut to its first `channels` channels.
    pub fn prefix(&self, i: usize, channels: usize) -> Vec<u8> {
        clio::quant::wire::truncate_channels(&self.messages[i], channels, &clio::Limits::default()).unwrap()
    }
}
