//! `clio build-model`: build MobileNetV2, ResNet-18, VGG-16-BN or a deep chain with
//! deterministic random weights (see `clio::models`), print or save it.

use clap::{Args, ValueEnum};
use clio::models::{build, ChainConfig, MobileNetV2Config, ModelSpec, ResNetConfig, Variant, VggConfig};
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
    /// Square input size: 224 (ImageNet) or 32 (CIFAR); for `chain`, the spatial size (default 8).
    #[arg(long)]
    pub input: Option<usize>,
    /// Number of classes.
    #[arg(long, default_value_t = 1000)]
    pub classes: usize,
    /// Weight seed (the same seed gives the same weights everywhere).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// CIFAR or ImageNet variant of the first layers (see `clio::models`).
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
    let input = a.input.unwrap_or(if a.arch == Arch::Chain { 8 } else { 224 });
    let variant = match a.variant {
        VariantArg::Auto => Variant::for_input(input),
        VariantArg::Imagenet => Variant::ImageNet,
        VariantArg::Cifar => Variant::Cifar,
    };
    let (width, classes, seed) = (a.width, a.classes, a.seed);
    let spec = match a.arch {
        Arch::MobileNetV2 => ModelSpec::MobileNetV2(MobileNetV2Config { width, input, classes, seed, variant }),
        Arch::ResNet18 => ModelSpec::ResNet18(ResNetConfig { width, input, classes, seed, variant }),
        Arch::Vgg16 => ModelSpec::Vgg16Bn(VggConfig { width, input, classes, seed, variant }),
        Arch::Chain => ModelSpec::Chain(ChainConfig {
            layers: a.layers,
            channels: a.channels,
            spatial: input,
            kernel: 3,
            batch_norm: !a.no_batch_norm,
            classes,
            seed,
        }),
    };
    let m = build(&spec).map_err(|e| Error::Format(e.to_string()))?;
    match &a.output {
        Some(path) => clio::io::save_module(&m, path)?,
        None => print!("{}", print_module(&m, &PrintOptions::default())),
    }
    Ok(())
}
