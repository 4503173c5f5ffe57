//! MobileNetV2 (torchvision `mobilenet_v2`, and its CIFAR variant).

use super::net::Net;
use super::{check_common, make_divisible, tag, ModelError, Variant};
use crate::ir::Op;
use crate::Module;

/// Configuration of [`mobilenet_v2`].
#[derive(Clone, Debug, PartialEq)]
pub struct MobileNetV2Config {
    /// Width multiplier (torchvision's `width_mult`).
    pub width: f64,
    /// Square input size (224 for ImageNet, 32 for CIFAR).
    pub input: usize,
    /// Number of classes.
    pub classes: usize,
    /// Weight seed.
    pub seed: u64,
    /// ImageNet (torchvision) or CIFAR variant.
    pub variant: Variant,
}

impl Default for MobileNetV2Config {
    fn default() -> Self {
        MobileNetV2Config { width: 1.0, input: 224, classes: 1000, seed: 0, variant: Variant::ImageNet }
    }
}

/// torchvision's `inverted_residual_setting`: expansion t, channels c, repeats n, stride s.
const SETTING: [[usize; 4]; 7] =
    [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]];

/// Builds MobileNetV2: `features.0` (conv3x3 + BN + ReLU6), 17 inverted-residual blocks
/// `features.1` .. `features.17`, `features.18` (conv1x1 to the last channel count + BN + ReLU6),
/// global average pool, flatten and `classifier.1` (gemm). Nodes are named after torchvision's
/// modules (`features.2.conv.1.0` is block 2's depthwise conv, `features.3.add` its residual add).
pub fn mobilenet_v2(c: &MobileNetV2Config) -> Result<Module, ModelError> {
    check_common(c.width, c.input, c.classes)?;
    let cifar = c.variant == Variant::Cifar;
    let mut m = Module::new(format!("mobilenet_v2_{}", suffix(c.width, c.input)));
    tag(&mut m, "mobilenet_v2", Some(c.variant), c.width, c.input, c.classes, c.seed);
    let mut n = Net::new(&mut m, c.seed);
    let x = n.input("input", &[1, 3, c.input, c.input]);

    let input_channel = make_divisible(32.0 * c.width, 8);
    let last_channel = make_divisible(1280.0 * c.width.max(1.0), 8);
    let stem_stride = if cifar { 1 } else { 2 };
    let mut y = n.conv("features.0.0", x, input_channel, 3, stem_stride, 1, false)?;
    y = n.bn("features.0.1", y)?;
    y = n.relu6("features.0.2", y)?;
    // CIFAR: the first downsampling stage (c = 24) keeps stride 1.
    let keep_stride_1 = |stage: usize| cifar && stage == 1;
    (y, _) = inverted_residual_stages(&mut n, y, input_channel, &SETTING, c.width, keep_stride_1)?;
    y = mobilenet_tail(&mut n, y, SETTING.iter().map(|r| r[2]).sum::<usize>() + 1, last_channel, c.classes)?;
    n.finish(y);
    Ok(m)
}

/// The inverted-residual stages `features.1 ..` for a `[t, c, n, s]` setting at `width`, from
/// `y` with `channels` channels; stages for which `keep_stride_1(stage)` holds do not
/// downsample. Returns the result and its channel count.
pub(super) fn inverted_residual_stages(
    n: &mut Net,
    mut y: crate::Value,
    mut channels: usize,
    setting: &[[usize; 4]],
    width: f64,
    keep_stride_1: impl Fn(usize) -> bool,
) -> Result<(crate::Value, usize), ModelError> {
    let mut idx = 1;
    for (stage, [t, ch, reps, s]) in setting.iter().copied().enumerate() {
        let out = make_divisible(ch as f64 * width, 8);
        for i in 0..reps {
            let stride = if i > 0 || keep_stride_1(stage) { 1 } else { s };
            y = inverted_residual(n, &format!("features.{idx}"), y, channels, out, stride, t)?;
            channels = out;
            idx += 1;
        }
    }
    Ok((y, channels))
}

/// `features.<idx>` (conv1x1 to `last_channel`, BN, ReLU6), global average pool, flatten and
/// the `classifier.1` gemm.
pub(super) fn mobilenet_tail(
    n: &mut Net,
    y: crate::Value,
    idx: usize,
    last_channel: usize,
    classes: usize,
) -> Result<crate::Value, ModelError> {
    let p = format!("features.{idx}");
    let mut y = n.conv(&format!("{p}.0"), y, last_channel, 1, 1, 1, false)?;
    y = n.bn(&format!("{p}.1"), y)?;
    y = n.relu6(&format!("{p}.2"), y)?;
    y = n.pool_flatten("avgpool", y)?;
    n.linear("classifier.1", y, classes)
}

/// torchvision's `InvertedResidual(inp, oup, stride, expand_ratio)`.
pub(super) fn inverted_residual(
    n: &mut Net,
    p: &str,
    x: crate::Value,
    inp: usize,
    oup: usize,
    stride: usize,
    t: usize,
) -> Result<crate::Value, ModelError> {
    let hidden = inp * t;
    let mut y = x;
    let mut j = 0;
    if t != 1 {
        y = n.conv(&format!("{p}.conv.0.0"), y, hidden, 1, 1, 1, false)?;
        y = n.bn(&format!("{p}.conv.0.1"), y)?;
        y = n.relu6(&format!("{p}.conv.0.2"), y)?;
        j = 1;
    }
    y = n.conv(&format!("{p}.conv.{j}.0"), y, hidden, 3, stride, hidden, false)?;
    y = n.bn(&format!("{p}.conv.{j}.1"), y)?;
    y = n.relu6(&format!("{p}.conv.{j}.2"), y)?;
    y = n.conv(&format!("{p}.conv.{}", j + 1), y, oup, 1, 1, 1, false)?;
    y = n.bn(&format!("{p}.conv.{}", j + 2), y)?;
    if stride == 1 && inp == oup {
        y = n.op(&format!("{p}.add"), Op::Add, &[x, y])?;
    }
    Ok(y)
}

/// `w050_32`-style name suffix.
pub(crate) fn suffix(width: f64, input: usize) -> String {
    let w = format!("{:.3}", width);
    let w = w.trim_end_matches('0').trim_end_matches('.').replace('.', "");
    format!("w{w}_{input}")
}
