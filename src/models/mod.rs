//! Model builders: MobileNetV2, ResNet-18 and VGG-16-BN as clio modules with deterministic random
//! weights, plus a synthetic deep chain for scaling benchmarks. They let experiments and
//! benchmarks generate the compression baselines (the width multiplier) without Python.
//!
//! The ImageNet variants ([`Variant::ImageNet`]) mirror torchvision 0.29 exactly: the same layers in
//! the same order (`conv2d` / `batch_norm` kept unfused / `clip {min = 0.0, max = 6.0}` for ReLU6 /
//! residual `add` / `global_avg_pool` / `flatten` / `gemm`), the same weight shapes and the same
//! parameter names as torchvision's `state_dict()` (`features.1.conv.0.0.weight`,
//! `layer1.0.bn1.running_var`, ...). At width 1.0 and 224x224 their parameter and MAC counts equal
//! torchvision's (3,504,872 params / 300,774,272 MACs for MobileNetV2; 11,689,512 / 1,814,073,344
//! for ResNet-18; 138,365,992 / 15,470,264,320 for VGG-16-BN).
//!
//! The CIFAR variants ([`Variant::Cifar`]) are the ones the CIFAR literature trains (those of
//! kuangliu/pytorch-cifar), built from the same torchvision blocks:
//! * MobileNetV2: the stem conv has stride 1 instead of 2, and so has the first block of the
//!   `c = 24` stage (torchvision: stride 2); everything else (blocks, widths, the 1280-channel last
//!   conv, global pool, classifier) is torchvision's. A 32x32 input reaches 4x4 before the pool.
//! * ResNet-18: the stem is a 3x3 stride-1 conv (padding 1, no bias) + BN + ReLU without the max
//!   pool; the four stages, global pool and classifier are torchvision's. 32x32 reaches 4x4.
//! * VGG-16-BN: torchvision's `features` (13 conv3x3 + BN + ReLU, 5 max pools) unchanged; no
//!   adaptive pool, and the classifier is one `Linear(512 * h * w, classes)` on the flattened
//!   features (`512` at 32x32), instead of torchvision's 4096-4096 MLP.
//!
//! Small variants for 28x28 grayscale datasets (MNIST, Fashion-MNIST), built from the same
//! blocks and with the same naming: [`small_mobilenet_v2`] (`mobilenet_v2_small`: a 16-channel
//! stride-1 stem, seven inverted residuals of 8..32 channels, a 128-channel last conv; 36,218
//! params) and [`small_resnet`] (`resnet_small`: a 3x3 stem and three stages of two
//! `BasicBlock`s at 16/32/64 channels; 174,970 params). Both take an `in_channels` count (1 by
//! default), downsample 28 -> 14 -> 7, and are tagged with it (`in_channels` attribute).
//!
//! Width multiplier: every channel count `c` becomes torchvision's `_make_divisible(c * width, 8)`
//! ([`make_divisible`]); MobileNetV2's last conv keeps `_make_divisible(1280 * max(1, width), 8)`
//! as torchvision does. ResNet and VGG use the same rule for their stage widths (not a torchvision
//! feature: at width 1.0 they are torchvision's).
//!
//! Weights: seeded and deterministic across platforms (only integer arithmetic and IEEE f32
//! multiplication/addition/square root), drawn independently per weight from the seed and the
//! weight name. Conv filters are He-uniform (`U(-sqrt(6 / fan_in), +sqrt(6 / fan_in))`), linear
//! layers and conv biases use PyTorch's default `U(-1/sqrt(fan_in), +1/sqrt(fan_in))`, and every
//! batch norm gets random affine parameters and running statistics (`gamma ~ U(0.5, 1.5)`,
//! `beta ~ U(-0.2, 0.2)`, `mean ~ U(-0.2, 0.2)`, `var ~ U(0.5, 2)`), so that BN folding and
//! pruning have something to get wrong.
//!
//! ```
//! use clio::models::{mobilenet_v2, MobileNetV2Config, Variant};
//! let m = mobilenet_v2(&MobileNetV2Config { width: 0.5, input: 32, classes: 10, seed: 1, variant: Variant::Cifar })
//!     .unwrap();
//! assert!(clio::verify::verify_module(&m).is_ok());
//! let cost = clio::analysis::graph_cost(&m, m.main_graph().unwrap());
//! assert!(cost.params > 0 && cost.macs > 0);
//! ```

mod chain;
mod init;
mod mobilenet_v2;
mod net;
mod resnet;
mod small;
mod vgg;

pub use chain::{chain, ChainConfig, MAX_CHAIN_LAYERS};
pub use init::WeightRng;
pub use mobilenet_v2::{mobilenet_v2, MobileNetV2Config};
pub use resnet::{resnet18, ResNetConfig};
pub use small::{
    small_mobilenet_v2, small_resnet, SmallMobileNetV2Config, SmallResNetConfig, MAX_IN_CHANNELS, MIN_SMALL_INPUT,
};
pub use vgg::{vgg16_bn, VggConfig};

use crate::Module;

/// The most weight elements a built model may have (2^29, 2 GiB of f32; VGG-16 has 138M).
/// Building stops with an error before allocating more.
pub const MAX_MODEL_ELEMENTS: usize = 1 << 29;

/// Which architecture family variant to build (see the module documentation for the exact
/// differences).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// torchvision's architecture, exactly (designed for 224x224 ImageNet inputs, any size works).
    ImageNet,
    /// The usual CIFAR variant (32x32 inputs): less downsampling at the start.
    Cifar,
}

impl Variant {
    /// Text spelling (`imagenet`, `cifar`).
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::ImageNet => "imagenet",
            Variant::Cifar => "cifar",
        }
    }

    /// Parses `imagenet` or `cifar`.
    pub fn parse(s: &str) -> Result<Variant, ModelError> {
        match s {
            "imagenet" => Ok(Variant::ImageNet),
            "cifar" => Ok(Variant::Cifar),
            _ => Err(ModelError::new(format!("unknown variant `{s}` (expected imagenet or cifar)"))),
        }
    }

    /// The variant a square input size suggests: CIFAR up to 64x64, ImageNet above.
    pub fn for_input(input: usize) -> Variant {
        if input <= 64 {
            Variant::Cifar
        } else {
            Variant::ImageNet
        }
    }
}

/// A model that cannot be built with the given configuration (bad width, input too small for
/// the architecture's downsampling, a tensor over the element limit ...). One line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("model builder: {message}")]
pub struct ModelError {
    /// What is wrong.
    pub message: String,
}

impl ModelError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        ModelError { message: message.into() }
    }
}

/// torchvision's `_make_divisible(v, divisor)` (min_value = divisor): `v` rounded to the nearest
/// multiple of `divisor`, never below `divisor`, and never more than 10% below `v`.
///
/// ```
/// use clio::models::make_divisible;
/// assert_eq!(make_divisible(32.0 * 0.35, 8), 16);
/// assert_eq!(make_divisible(24.0 * 0.5, 8), 16);
/// assert_eq!(make_divisible(96.0 * 1.0, 8), 96);
/// ```
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor.max(1) as f64;
    let rounded = ((v + d / 2.0) / d).floor() * d;
    let mut new_v = rounded.max(d);
    if new_v < 0.9 * v {
        new_v += d;
    }
    new_v as usize
}

/// The architectures [`build`] knows, with their configurations.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSpec {
    /// MobileNetV2.
    MobileNetV2(MobileNetV2Config),
    /// ResNet-18.
    ResNet18(ResNetConfig),
    /// VGG-16 with batch norm.
    Vgg16Bn(VggConfig),
    /// The synthetic deep chain.
    Chain(ChainConfig),
}

/// Builds the model a [`ModelSpec`] describes.
pub fn build(spec: &ModelSpec) -> Result<Module, ModelError> {
    match spec {
        ModelSpec::MobileNetV2(c) => mobilenet_v2(c),
        ModelSpec::ResNet18(c) => resnet18(c),
        ModelSpec::Vgg16Bn(c) => vgg16_bn(c),
        ModelSpec::Chain(c) => chain(c),
    }
}

/// Common checks of width, input size and class count.
fn check_common(width: f64, input: usize, classes: usize) -> Result<(), ModelError> {
    if !(width.is_finite() && width > 0.0 && width <= 16.0) {
        return Err(ModelError::new(format!("width multiplier {width} must be in (0, 16]")));
    }
    if input == 0 || input > 4096 {
        return Err(ModelError::new(format!("input size {input} must be in 1..=4096")));
    }
    if classes == 0 || classes > 1_000_000 {
        return Err(ModelError::new(format!("class count {classes} must be in 1..=1000000")));
    }
    Ok(())
}

/// Records how a model was built in its module attributes (`model`, `variant`, `width`, `input`,
/// `classes`, `seed`), so a saved `.clio` file says what it is.
fn tag(m: &mut Module, model: &str, variant: Option<Variant>, width: f64, input: usize, classes: usize, seed: u64) {
    use crate::ir::Attr;
    m.attrs.insert("model".into(), Attr::Str(model.into()));
    if let Some(v) = variant {
        m.attrs.insert("variant".into(), Attr::Str(v.as_str().into()));
    }
    m.attrs.insert("width".into(), Attr::Float(width as f32));
    m.attrs.insert("input".into(), Attr::Int(input as i64));
    m.attrs.insert("classes".into(), Attr::Int(classes as i64));
    m.attrs.insert("seed".into(), Attr::Int(seed as i64));
}
