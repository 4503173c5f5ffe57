//! Small MobileNetV2- and ResNet-style networks for 28x28 grayscale datasets (MNIST,
//! Fashion-MNIST): the blocks and naming of [`super::mobilenet_v2()`] and [`super::resnet18()`],
//! scaled down so that they train on a CPU in minutes.

use super::mobilenet_v2::{inverted_residual_stages, mobilenet_tail, suffix};
use super::net::Net;
use super::resnet::basic_stages;
use super::{check_common, make_divisible, tag, ModelError};
use crate::ir::Attr;
use crate::Module;

/// Both networks downsample twice by stride 2: the smallest input that still has a pixel
/// left for each stride-2 window without relying on padding alone.
pub const MIN_SMALL_INPUT: usize = 4;

/// The most input channels the small builders accept.
pub const MAX_IN_CHANNELS: usize = 4096;

/// Configuration of [`small_mobilenet_v2`].
#[derive(Clone, Debug, PartialEq)]
pub struct SmallMobileNetV2Config {
    /// Width multiplier on every channel count (torchvision's `_make_divisible(c * width, 8)`).
    pub width: f64,
    /// Square input size (28 for MNIST / Fashion-MNIST); at least [`MIN_SMALL_INPUT`].
    pub input: usize,
    /// Input channels (1 for grayscale).
    pub in_channels: usize,
    /// Number of classes.
    pub classes: usize,
    /// Weight seed.
    pub seed: u64,
}

impl Default for SmallMobileNetV2Config {
    fn default() -> Self {
        SmallMobileNetV2Config { width: 1.0, input: 28, in_channels: 1, classes: 10, seed: 0 }
    }
}

/// Configuration of [`small_resnet`].
#[derive(Clone, Debug, PartialEq)]
pub struct SmallResNetConfig {
    /// Width multiplier on the stage widths 16/32/64.
    pub width: f64,
    /// Square input size (28 for MNIST / Fashion-MNIST); at least [`MIN_SMALL_INPUT`].
    pub input: usize,
    /// Input channels (1 for grayscale).
    pub in_channels: usize,
    /// Number of classes.
    pub classes: usize,
    /// Weight seed.
    pub seed: u64,
}

impl Default for SmallResNetConfig {
    fn default() -> Self {
        SmallResNetConfig { width: 1.0, input: 28, in_channels: 1, classes: 10, seed: 0 }
    }
}

/// Expansion t, channels c, repeats n, stride s of the small MobileNetV2's inverted residuals.
const SMALL_SETTING: [[usize; 4]; 4] = [[1, 8, 1, 1], [4, 16, 2, 2], [4, 24, 2, 2], [4, 32, 2, 1]];

/// Builds a small MobileNetV2: `features.0` (conv3x3 stride 1 to `make_divisible(16 * width)`,
/// BN, ReLU6), seven inverted residuals `features.1` .. `features.7` (t, c, n, s = 1,8,1,1 /
/// 4,16,2,2 / 4,24,2,2 / 4,32,2,1; a residual `add` where the stride is 1 and the channels
/// agree, as torchvision), `features.8` (conv1x1 to `make_divisible(128 * max(1, width))`, BN,
/// ReLU6), global average pool, flatten and `classifier.1` (gemm). A 28x28 input goes 28 -> 14
/// -> 7. At width 1.0, 28x28, one input channel and 10 classes: 36,218 parameters and 2,735,872
/// MACs (`clio::analysis::graph_cost`).
pub fn small_mobilenet_v2(c: &SmallMobileNetV2Config) -> Result<Module, ModelError> {
    check_small(c.width, c.input, c.in_channels, c.classes)?;
    let mut m = Module::new(format!("mobilenet_v2_small_{}", suffix(c.width, c.input)));
    tag_small(&mut m, "mobilenet_v2_small", c.width, c.input, c.in_channels, c.classes, c.seed);
    let mut n = Net::new(&mut m, c.seed);
    let x = n.input("input", &[1, c.in_channels, c.input, c.input]);

    let input_channel = make_divisible(16.0 * c.width, 8);
    let last_channel = make_divisible(128.0 * c.width.max(1.0), 8);
    let mut y = n.conv("features.0.0", x, input_channel, 3, 1, 1, false)?;
    y = n.bn("features.0.1", y)?;
    y = n.relu6("features.0.2", y)?;
    (y, _) = inverted_residual_stages(&mut n, y, input_channel, &SMALL_SETTING, c.width, |_| false)?;
    y = mobilenet_tail(&mut n, y, SMALL_SETTING.iter().map(|r| r[2]).sum::<usize>() + 1, last_channel, c.classes)?;
    n.finish(y);
    Ok(m)
}

/// Builds a small ResNet: `conv1` (conv3x3 stride 1 to `make_divisible(16 * width)`), `bn1`,
/// `relu`, three stages `layer1` .. `layer3` of two ResNet-18 `BasicBlock`s (widths 16, 32, 64
/// times `width`, strides 1, 2, 2; a 1x1-conv + BN `downsample` skip where the shape changes),
/// global average pool, flatten and `fc`. A 28x28 input goes 28 -> 14 -> 7. At width 1.0,
/// 28x28, one input channel and 10 classes: 174,970 parameters and 20,183,936 MACs.
pub fn small_resnet(c: &SmallResNetConfig) -> Result<Module, ModelError> {
    check_small(c.width, c.input, c.in_channels, c.classes)?;
    let mut m = Module::new(format!("resnet_small_{}", suffix(c.width, c.input)));
    tag_small(&mut m, "resnet_small", c.width, c.input, c.in_channels, c.classes, c.seed);
    let mut n = Net::new(&mut m, c.seed);
    let x = n.input("input", &[1, c.in_channels, c.input, c.input]);
    let widths: Vec<usize> = [16.0, 32.0, 64.0].iter().map(|w| make_divisible(w * c.width, 8)).collect();
    let mut y = n.conv("conv1", x, widths[0], 3, 1, 1, false)?;
    y = n.bn("bn1", y)?;
    y = n.relu("relu", y)?;
    y = basic_stages(&mut n, y, &widths)?;
    y = n.pool_flatten("avgpool", y)?;
    y = n.linear("fc", y, c.classes)?;
    n.finish(y);
    Ok(m)
}

/// [`check_common`] plus the input channel count and the minimum input size.
fn check_small(width: f64, input: usize, in_channels: usize, classes: usize) -> Result<(), ModelError> {
    check_common(width, input, classes)?;
    if in_channels == 0 || in_channels > MAX_IN_CHANNELS {
        return Err(ModelError::new(format!("input channel count {in_channels} must be in 1..={MAX_IN_CHANNELS}")));
    }
    if input < MIN_SMALL_INPUT {
        return Err(ModelError::new(format!(
            "input size {input} is too small: the small networks downsample twice by stride 2 \
             (input at least {MIN_SMALL_INPUT})"
        )));
    }
    Ok(())
}

/// [`tag`] (no variant) plus the `in_channels` attribute.
fn tag_small(m: &mut Module, model: &str, width: f64, input: usize, in_channels: usize, classes: usize, seed: u64) {
    tag(m, model, None, width, input, classes, seed);
    m.attrs.insert("in_channels".into(), Attr::Int(in_channels as i64));
}
