//! `clio build-model`: build MobileNetV2, ResNet-18, VGG-16-BN, their small 28x28 variants
//! (`mobilenet_v2_small`, `resnet_small`) or a deep chain with deterministic random weights (see
//! `clio::models`), print or save it.

use clap::{Args, ValueEnum};
use clio::models::{
    build, small_mobilenet_v2, small_resnet, ChainConfig, MobileNetV2Config, ModelSpec, ResNetConfig,
    SmallMobileNetV2Config, SmallResNetConfig, Variant, VggConfig,
};
use clio::text::{print_module, PrintOptions};
use clio::Error;
use std::path::PathBuf;

/// The architectures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Arch {
    /// torchvision MobileNetV2 (`--width` is its width multiplier).
    #[value(name = "mobilenet_v2")]
    MobileNetV2,
    /// torchvision ResNet-18.
    #[value(name = "resnet18")]
    ResNet18,
    /// torchvision VGG-16 with batch norm.
    #[value(name = "vgg16", alias = "vgg16_bn")]
    Vgg16,
    /// Small MobileNetV2 for 28x28 grayscale inputs (MNIST / Fashion-MNIST): 16-channel stem,
    /// seven inverted residuals of 8..32 channels, a 128-channel last conv.
    #[value(name = "mobilenet_v2_small")]
    MobileNetV2Small,
    /// Small ResNet for 28x28 grayscale inputs: 3x3 stem and three stages of two BasicBlocks
    /// at 16/32/64 channels.
    #[value(name = "resnet_small")]
    ResNetSmall,
    /// A synthetic chain of `--layers` conv + BN + ReLU layers (scaling benchmarks).
    #[value(name = "chain")]
    Chain,
}

/// The CIFAR or ImageNet layout of the first layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VariantArg {
    /// CIFAR for inputs up to 64x64, ImageNet above.
    Auto,
    /// torchvision's architecture exactly.
    Imagenet,
    /// Stride 1 in the stem and first stage (MobileNetV2), 3x3 stem without max pool (ResNet),
    /// one linear classifier (VGG).
    Cifar,
}

/// Arguments of `clio build-model`.
#[derive(Args, Debug)]
pub struct BuildModelArgs {
    /// The architecture.
    #[arg(value_enum)]
    pub arch: Arch,
    /// Width multiplier (channels become torchvision's _make_divisible(c * width, 8)).
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    /// Square input size: 224 (ImageNet) or 32 (CIFAR); 28 by default for the small archs; for
    /// `chain`, the spatial size (default 8).
    #[arg(long)]
    pub input: Option<usize>,
    /// Number of classes [default: 1000; 10 for the small archs].
    #[arg(long)]
    pub classes: Option<usize>,
    /// Input channels [default: 1]; only for the small archs (`mobilenet_v2_small`,
    /// `resnet_small`), an error with the others (they take 3-channel images).
    #[arg(long)]
    pub in_channels: Option<usize>,
    /// Weight seed (the same seed gives the same weights everywhere).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// CIFAR or ImageNet variant of the first layers (see `clio::models`); not for the small
    /// archs, which have one layout.
    #[arg(long, value_enum, default_value_t = VariantArg::Auto)]
    pub variant: VariantArg,
    /// `chain` only: number of layers.
    #[arg(long, default_value_t = 16)]
    pub layers: usize,
    /// `chain` only: channels per layer.
    #[arg(long, default_value_t = 4)]
    pub channels: usize,
    /// `chain` only: no batch norms (convs get a bias instead).
    #[arg(long)]
    pub no_batch_norm: bool,
    /// Write OUT.clio plus OUT.safetensors (atomically); without it, print the IR.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

/// Runs `clio build-model`.
pub fn run(a: BuildModelArgs) -> Result<(), Error> {
    let small = matches!(a.arch, Arch::MobileNetV2Small | Arch::ResNetSmall);
    if !small && a.in_channels.is_some() {
        return Err(Error::Format(
            "build-model: --in-channels is only for the small archs (mobilenet_v2_small, resnet_small)".into(),
        ));
    }
    if small && a.variant != VariantArg::Auto {
        return Err(Error::Format("build-model: --variant does not apply to the small archs".into()));
    }
    let input = a.input.unwrap_or(match a.arch {
        Arch::Chain => 8,
        Arch::MobileNetV2Small | Arch::ResNetSmall => 28,
        _ => 224,
    });
    let variant = match a.variant {
        VariantArg::Auto => Variant::for_input(input),
        VariantArg::Imagenet => Variant::ImageNet,
        VariantArg::Cifar => Variant::Cifar,
    };
    let (width, seed) = (a.width, a.seed);
    let classes = a.classes.unwrap_or(if small { 10 } else { 1000 });
    let in_channels = a.in_channels.unwrap_or(1);
    let built = match a.arch {
        Arch::MobileNetV2Small => {
            small_mobilenet_v2(&SmallMobileNetV2Config { width, input, in_channels, classes, seed })
        }
        Arch::ResNetSmall => small_resnet(&SmallResNetConfig { width, input, in_channels, classes, seed }),
        Arch::MobileNetV2 => build(&ModelSpec::MobileNetV2(MobileNetV2Config { width, input, classes, seed, variant })),
        Arch::ResNet18 => build(&ModelSpec::ResNet18(ResNetConfig { width, input, classes, seed, variant })),
        Arch::Vgg16 => build(&ModelSpec::Vgg16Bn(VggConfig { width, input, classes, seed, variant })),
        Arch::Chain => build(&ModelSpec::Chain(ChainConfig {
            layers: a.layers,
            channels: a.channels,
            spatial: input,
            kernel: 3,
            batch_norm: !a.no_batch_norm,
            classes,
            seed,
        })),
    };
    let m = built.map_err(|e| Error::Format(e.to_string()))?;
    match &a.output {
        Some(path) => clio::io::save_module(&m, path)?,
        None => print!("{}", print_module(&m, &PrintOptions::default())),
    }
    Ok(())
}
