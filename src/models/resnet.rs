//! ResNet-18 (torchvision `resnet18`, and its CIFAR variant).

use super::mobilenet_v2::suffix;
use super::net::Net;
use super::{check_common, make_divisible, tag, ModelError, Variant};
use crate::ir::Op;
use crate::ops::{MaxPool, Window2d};
use crate::{Module, Value};

/// Configuration of [`resnet18`].
#[derive(Clone, Debug, PartialEq)]
pub struct ResNetConfig {
    /// Width multiplier on the stage widths 64/128/256/512 (1.0 = torchvision).
    pub width: f64,
    /// Square input size.
    pub input: usize,
    /// Number of classes.
    pub classes: usize,
    /// Weight seed.
    pub seed: u64,
    /// ImageNet (torchvision) or CIFAR variant.
    pub variant: Variant,
}

impl Default for ResNetConfig {
    fn default() -> Self {
        ResNetConfig { width: 1.0, input: 224, classes: 1000, seed: 0, variant: Variant::ImageNet }
    }
}

/// Builds ResNet-18: `conv1`/`bn1`/`relu`(/`maxpool`), four stages `layer1` .. `layer4` of two
/// `BasicBlock`s (`layerL.B.conv1`, `.bn1`, `.relu`, `.conv2`, `.bn2`, optional
/// `.downsample.0`/`.downsample.1`, `.add`, `.relu.1`), global average pool, flatten and `fc`.
pub fn resnet18(c: &ResNetConfig) -> Result<Module, ModelError> {
    check_common(c.width, c.input, c.classes)?;
    let mut m = Module::new(format!("resnet18_{}", suffix(c.width, c.input)));
    tag(&mut m, "resnet18", Some(c.variant), c.width, c.input, c.classes, c.seed);
    let mut n = Net::new(&mut m, c.seed);
    let x = n.input("input", &[1, 3, c.input, c.input]);
    let widths: Vec<usize> = [64.0, 128.0, 256.0, 512.0].iter().map(|w| make_divisible(w * c.width, 8)).collect();
    let mut y = match c.variant {
        Variant::ImageNet => n.conv("conv1", x, widths[0], 7, 2, 1, false)?,
        Variant::Cifar => n.conv("conv1", x, widths[0], 3, 1, 1, false)?,
    };
    y = n.bn("bn1", y)?;
    y = n.relu("relu", y)?;
    if c.variant == Variant::ImageNet {
        let window = Window2d { kernel: [3, 3], strides: [2, 2], pads: [1; 4], ceil_mode: false };
        y = n.op("maxpool", Op::MaxPool(MaxPool { window }), &[y])?;
    }
    y = basic_stages(&mut n, y, &widths)?;
    y = n.pool_flatten("avgpool", y)?;
    y = n.linear("fc", y, c.classes)?;
    n.finish(y);
    Ok(m)
}

/// Stages `layer1 ..` of two `BasicBlock`s each, of the given widths; every stage after the first
/// starts with stride 2. `y` has `widths[0]` channels.
pub(super) fn basic_stages(n: &mut Net, mut y: Value, widths: &[usize]) -> Result<Value, ModelError> {
    let mut inplanes = widths.first().copied().unwrap_or(0);
    for (l, planes) in widths.iter().copied().enumerate() {
        let stride = if l == 0 { 1 } else { 2 };
        for b in 0..2 {
            let s = if b == 0 { stride } else { 1 };
            y = basic_block(n, &format!("layer{}.{b}", l + 1), y, inplanes, planes, s)?;
            inplanes = planes;
        }
    }
    Ok(y)
}

/// torchvision's `BasicBlock(inplanes, planes, stride)` with its downsample branch.
pub(super) fn basic_block(
    n: &mut Net,
    p: &str,
    x: Value,
    inplanes: usize,
    planes: usize,
    stride: usize,
) -> Result<Value, ModelError> {
    let mut y = n.conv(&format!("{p}.conv1"), x, planes, 3, stride, 1, false)?;
    y = n.bn(&format!("{p}.bn1"), y)?;
    y = n.relu(&format!("{p}.relu"), y)?;
    y = n.conv(&format!("{p}.conv2"), y, planes, 3, 1, 1, false)?;
    y = n.bn(&format!("{p}.bn2"), y)?;
    let identity = if stride != 1 || inplanes != planes {
        let d = n.conv(&format!("{p}.downsample.0"), x, planes, 1, stride, 1, false)?;
        n.bn(&format!("{p}.downsample.1"), d)?
    } else {
        x
    };
    let s = n.op(&format!("{p}.add"), Op::Add, &[y, identity])?;
    n.relu(&format!("{p}.relu"), s)
}
