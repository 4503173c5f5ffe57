//! VGG-16 with batch norm (torchvision `vgg16_bn`, and its CIFAR variant).

use super::mobilenet_v2::suffix;
use super::net::Net;
use super::{check_common, make_divisible, tag, ModelError, Variant};
use crate::ir::Op;
use crate::ops::{AvgPool, Flatten, MaxPool, Window2d};
use crate::Module;

/// Configuration of [`vgg16_bn`].
#[derive(Clone, Debug, PartialEq)]
pub struct VggConfig {
    /// Width multiplier on the conv widths 64 .. 512 (1.0 = torchvision; the 4096-wide hidden
    /// classifier layers of the ImageNet variant are scaled too).
    pub width: f64,
    /// Square input size. The ImageNet variant needs the final feature map (input / 32) to be a
    /// multiple of 7, so that torchvision's `AdaptiveAvgPool2d((7, 7))` is an ordinary pool.
    pub input: usize,
    /// Number of classes.
    pub classes: usize,
    /// Weight seed.
    pub seed: u64,
    /// ImageNet (torchvision) or CIFAR variant.
    pub variant: Variant,
}

impl Default for VggConfig {
    fn default() -> Self {
        VggConfig { width: 1.0, input: 224, classes: 1000, seed: 0, variant: Variant::ImageNet }
    }
}

/// torchvision's configuration "D"; 0 is a max pool.
const CFG_D: [usize; 18] = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];

/// Builds VGG-16-BN: `features.i` (conv3x3 with bias, BN, ReLU; max pools), then for ImageNet
/// `avgpool` (the 7x7 adaptive pool), flatten and `classifier.0/1/3/4/6` (gemm, relu, gemm, relu,
/// gemm); for CIFAR flatten and one `classifier` gemm.
pub fn vgg16_bn(c: &VggConfig) -> Result<Module, ModelError> {
    check_common(c.width, c.input, c.classes)?;
    let mut m = Module::new(format!("vgg16_bn_{}", suffix(c.width, c.input)));
    tag(&mut m, "vgg16_bn", Some(c.variant), c.width, c.input, c.classes, c.seed);
    let mut n = Net::new(&mut m, c.seed);
    let mut y = n.input("input", &[1, 3, c.input, c.input]);
    let mut i = 0;
    for v in CFG_D {
        if v == 0 {
            let window = Window2d { kernel: [2, 2], strides: [2, 2], pads: [0; 4], ceil_mode: false };
            y = n.op(&format!("features.{i}"), Op::MaxPool(MaxPool { window }), &[y])?;
            i += 1;
            continue;
        }
        let out = make_divisible(v as f64 * c.width, 8);
        y = n.conv(&format!("features.{i}"), y, out, 3, 1, 1, true)?;
        y = n.bn(&format!("features.{}", i + 1), y)?;
        y = n.relu(&format!("features.{}", i + 2), y)?;
        i += 3;
    }
    match c.variant {
        Variant::ImageNet => {
            let f = n.shape(y)[2];
            if f == 0 || f % 7 != 0 {
                return Err(ModelError::new(format!(
                    "VGG-16 ImageNet variant: the {f}x{f} feature map of a {}x{} input is not a multiple of 7 \
                     (AdaptiveAvgPool2d((7, 7)) would not be a plain pool); use an input that is a multiple of 224 \
                     or the cifar variant",
                    c.input, c.input
                )));
            }
            let k = f / 7;
            let window = Window2d { kernel: [k, k], strides: [k, k], pads: [0; 4], ceil_mode: false };
            y = n.op("avgpool", Op::AvgPool(AvgPool { window, count_include_pad: false }), &[y])?;
            y = n.op("flatten", Op::Flatten(Flatten { axis: 1 }), &[y])?;
            let hidden = make_divisible(4096.0 * c.width, 8);
            y = n.linear("classifier.0", y, hidden)?;
            y = n.relu("classifier.1", y)?;
            y = n.linear("classifier.3", y, hidden)?;
            y = n.relu("classifier.4", y)?;
            y = n.linear("classifier.6", y, c.classes)?;
        }
        Variant::Cifar => {
            y = n.op("flatten", Op::Flatten(Flatten { axis: 1 }), &[y])?;
            y = n.linear("classifier", y, c.classes)?;
        }
    }
    n.finish(y);
    Ok(m)
}
