//! The trainer's candle lowering computes what the reference interpreter computes (which is
//! checked against tract elsewhere): on every ONNX test model and the Rust-built CIFAR
//! MobileNetV2 / ResNet-18 / VGG-16-BN, in evaluation mode, for a batch of different inputs,
//! within 1e-4 of the output range; and on a sliced module, device graph then each head.

use candle_core::{Device, Tensor as CTensor};
use clio::import::{import_path, ImportOptions};
use clio::ir::{Module, Tensor};
use clio::models::{
    mobilenet_v2, resnet18, small_mobilenet_v2, small_resnet, vgg16_bn, MobileNetV2Config, ResNetConfig,
    SmallMobileNetV2Config, SmallResNetConfig, Variant, VggConfig,
};
use clio::pass::PassManager;
use clio_train::lower::{forward, Mode};
use clio_train::objective::Objective;
use clio_train::params::ParamStore;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A deterministic input batch `[n, c, h, w]` with different images.
fn batch(shape: &[usize], n: usize) -> Vec<Tensor> {
    let len: usize = shape[1..].iter().product();
    (0..n)
        .map(|b| {
            let data = (0..len).map(|i| (((i * 7919 + b * 104_729) % 1000) as f32 / 500.0) - 1.0).collect();
            let mut s = shape.to_vec();
            s[0] = 1;
            Tensor::from_f32(s, data).unwrap()
        })
        .collect()
}

fn stack(images: &[Tensor]) -> CTensor {
    let mut shape = images[0].shape().to_vec();
    shape[0] = images.len();
    let data: Vec<f32> = images.iter().flat_map(|t| t.as_f32().unwrap().to_vec()).collect();
    CTensor::from_vec(data, shape, &Device::Cpu).unwrap()
}

/// Max |a - b| over the range of `b`.
fn rel(a: &[f32], b: &[f32]) -> f32 {
    let (lo, hi) = b.iter().fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    d / (hi - lo).max(1e-6)
}

fn candle_rows(t: &CTensor) -> Vec<Vec<f32>> {
    let n = t.dim(0).unwrap();
    (0..n).map(|i| t.get(i).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
}

fn check_graph(name: &str, m: &Module, graph: &str, images: &[Tensor]) -> Vec<Tensor> {
    let g = m.graph(graph).unwrap();
    let mut params = ParamStore::from_module(m, &[graph.to_string()]).unwrap();
    let got = forward(g, &[stack(images)], &mut params, Mode::Eval).unwrap_or_else(|e| panic!("{name}: {e}"));
    let rows = candle_rows(&got[0]);
    let mut outs = vec![];
    for (i, x) in images.iter().enumerate() {
        let want = clio::interp::run(m, graph, std::slice::from_ref(x)).unwrap().remove(0);
        let d = rel(&rows[i], want.as_f32().unwrap());
        assert!(d <= 1e-4, "{name} @{graph} image {i}: candle differs from the interpreter by {d} of the range");
        outs.push(want);
    }
    outs
}

fn models() -> Vec<(String, Module)> {
    let mut out = vec![];
    for name in
        ["mobilenet_v2_tiny", "mobilenet_v2_w050_tiny", "resnet_tiny", "vgg_tiny", "hardswish_net", "mlp_flatten_view"]
    {
        let path = root().join("testdata/models").join(format!("{name}.onnx"));
        let mut opts = ImportOptions::default();
        if name == "mlp_flatten_view" {
            opts.input_shapes.push(clio::import::InputShape::parse("1x3x32x32").unwrap());
        }
        out.push((name.to_string(), import_path(&path, &opts).unwrap()));
    }
    let v = Variant::Cifar;
    out.push((
        "mobilenet_v2 0.35 cifar".into(),
        mobilenet_v2(&MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 3, variant: v }).unwrap(),
    ));
    out.push((
        "resnet18 0.25 cifar".into(),
        resnet18(&ResNetConfig { width: 0.25, input: 32, classes: 10, seed: 4, variant: v }).unwrap(),
    ));
    out.push((
        "vgg16_bn 0.25 cifar".into(),
        vgg16_bn(&VggConfig { width: 0.25, input: 32, classes: 10, seed: 5, variant: v }).unwrap(),
    ));
    let small = SmallMobileNetV2Config { width: 1.0, input: 28, in_channels: 1, classes: 10, seed: 6 };
    out.push(("mobilenet_v2_small".into(), small_mobilenet_v2(&small).unwrap()));
    let small = SmallResNetConfig { width: 0.5, input: 28, in_channels: 1, classes: 10, seed: 7 };
    out.push(("resnet_small 0.5".into(), small_resnet(&small).unwrap()));
    out
}

#[test]
fn candle_forward_matches_the_interpreter_on_every_test_model() {
    for (name, m) in models() {
        let g = m.main_graph().unwrap();
        let shape = g.node(g.inputs()[0]).ty().shape.clone();
        check_graph(&name, &m, "main", &batch(&shape, 3));
    }
}

#[test]
fn sliced_device_and_heads_match_the_interpreter() {
    let v = Variant::Cifar;
    let base = mobilenet_v2(&MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 3, variant: v }).unwrap();
    let mut m = base.clone();
    let mut pm = PassManager::from_pipeline(&clio_passes::registry(), "slice{cut=3,step=4,bandwidth=none}").unwrap();
    pm.run(&mut m).unwrap();
    let obj = Objective::from_module(&m).unwrap();
    assert!(obj.heads.len() >= 2, "{:?}", obj.heads);
    let images = batch(&[1, 3, 32, 32], 2);
    let device = obj.device.clone().unwrap();
    let cut = check_graph("sliced", &m, &device, &images);
    for h in &obj.heads {
        let sliced: Vec<Tensor> = cut
            .iter()
            .map(|t| {
                let s = t.shape();
                let inner: usize = s[2..].iter().product();
                let data = t.as_f32().unwrap()[..h.size * inner].to_vec();
                Tensor::from_f32(vec![1, h.size, s[2], s[3]], data).unwrap()
            })
            .collect();
        check_graph("sliced", &m, &h.graph, &sliced);
    }
}
