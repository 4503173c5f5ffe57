//! STM32 backend, host execution: the generated C (compiled with the system `cc` against the
//! CMSIS-NN shims and clio's host kernels) must produce exactly the integer interpreter's cut
//! tensor, byte for byte in the wire format, on MobileNetV2 (width 0.35 and 0.5, CIFAR 32x32),
//! ResNet-style and VGG-style device parts at several cut points.

mod stm32_common;

use clio::models::{mobilenet_v2, resnet18, vgg16_bn, MobileNetV2Config, ResNetConfig, Variant, VggConfig};
use stm32_common::{check_bit_exact, device_part};

fn report(name: &str, c: &clio_targets::stm32::CModule) {
    let r = &c.report;
    println!(
        "{name}: {} layers, arena {} B (lower bound {}, TFLM greedy {}, no reuse {}), scratch {} B, const {} B, out {} B",
        r.layers.len(),
        r.arena_bytes,
        r.arena_lower_bound_bytes,
        r.arena_tflm_greedy_bytes,
        r.arena_no_reuse_bytes,
        r.scratch_bytes,
        r.const_bytes,
        r.output_bytes
    );
    assert!(r.arena_bytes >= r.arena_lower_bound_bytes);
    assert!(r.arena_bytes <= r.arena_tflm_greedy_bytes);
}

#[test]
fn mobilenet_v2_cifar_bit_exact() {
    for width in [0.35, 0.5] {
        let cfg = MobileNetV2Config { width, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
        let m = mobilenet_v2(&cfg).unwrap();
        for cut in ["2", "4", "6", "9"] {
            let d = device_part(m.clone(), cut, 5);
            let name = format!("mobilenet_v2_w{width}_cut{cut}");
            let c = check_bit_exact(&d, &name, 3);
            report(&name, &c);
        }
    }
}

#[test]
fn resnet_cifar_bit_exact() {
    let cfg = ResNetConfig { width: 0.25, input: 32, classes: 10, seed: 4, variant: Variant::Cifar };
    let m = resnet18(&cfg).unwrap();
    for cut in ["3", "4", "6"] {
        let d = device_part(m.clone(), cut, 6);
        let name = format!("resnet18_w0.25_cut{cut}");
        let c = check_bit_exact(&d, &name, 3);
        report(&name, &c);
    }
}

#[test]
fn vgg_cifar_bit_exact() {
    let cfg = VggConfig { width: 0.25, input: 32, classes: 10, seed: 5, variant: Variant::Cifar };
    let m = vgg16_bn(&cfg).unwrap();
    for cut in ["3", "5", "9"] {
        let d = device_part(m.clone(), cut, 7);
        let name = format!("vgg16_bn_w0.25_cut{cut}");
        let c = check_bit_exact(&d, &name, 3);
        report(&name, &c);
    }
}

/// Split execution end to end: the C device part's message, decoded by the cloud side's wire
/// decoder and run through `@cloud`, gives exactly what the unpartitioned quantized model
/// gives; and a message truncated to its first channels (progressive slicing) decodes to those
/// channels.
#[test]
fn device_message_feeds_the_cloud_part() {
    use clio::quant::wire::{decode, truncate_channels};
    let cfg = MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
    let mut whole = mobilenet_v2(&cfg).unwrap();
    stm32_common::run_pipeline(&mut whole, "fuse-bn,quantize{scheme=int8,calib=random:5,samples=3}");
    let mut split = whole.clone();
    stm32_common::run_pipeline(&mut split, "partition{cut=6,graph=main}");
    let c = clio_targets::stm32::lower(&split, &Default::default()).unwrap();
    let xs = stm32_common::inputs(&split, 3, 11);
    let dir = stm32_common::scratch_dir("split");
    let ins: Vec<Vec<i8>> = xs.iter().map(|x| stm32_common::input_nhwc(&split, x)).collect();
    let msgs = stm32_common::compile_and_run(&c, &dir, &ins);
    let limits = clio::Limits::default();
    for (x, msg) in xs.iter().zip(&msgs) {
        let cut = decode(msg, &limits).unwrap();
        let from_cloud = clio::interp::run_int(&split, "cloud", std::slice::from_ref(&cut.data)).unwrap();
        let reference = clio::interp::run_int(&whole, "main", std::slice::from_ref(x)).unwrap();
        assert_eq!(from_cloud[0].as_f32().unwrap(), reference[0].as_f32().unwrap());
        let short = truncate_channels(msg, 4, &limits).unwrap();
        let part = decode(&short, &limits).unwrap();
        assert_eq!(part.channels, 4);
        assert_eq!(msg.len() - short.len(), (cut.shape[1] - 4) * cut.shape[2] * cut.shape[3]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
