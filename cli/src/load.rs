//! Loading a model given on the command line: `.onnx` / `.tflite` through the importer,
//! `.clio` (with its sidecar) through the text loader.

use clap::Args;
use clio::import::{import_path, ImportOptions, InputShape};
use clio::io::{load_module, LoadOptions};
use clio::{Error, Module};
use std::path::Path;

/// Options shared by every command that reads a model.
#[derive(Args, Clone, Debug, Default)]
pub struct InputArgs {
    /// Fix a symbolic input dimension: `1x3x32x32` (the only input) or `name=1x3x32x32`;
    /// repeat for several inputs.
    #[arg(long = "input-shape", value_name = "[NAME=]DIMS")]
    pub input_shapes: Vec<String>,
    /// For .clio files without a weights sidecar and ONNX files with missing external data:
    /// fill missing weights with zeros (structure-only work such as `stats`) instead of failing.
    #[arg(long)]
    pub allow_missing_weights: bool,
}

/// Loads `path` according to its extension.
pub fn load_model(path: &Path, args: &InputArgs) -> Result<Module, Error> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "clio" => {
            let opts = LoadOptions {
                missing: if args.allow_missing_weights {
                    clio::text::MissingWeights::Zeros
                } else {
                    clio::text::MissingWeights::Error
                },
                ..Default::default()
            };
            load_module(path, &opts)
        }
        "onnx" | "tflite" => {
            let mut opts = ImportOptions::default();
            for s in &args.input_shapes {
                opts.input_shapes.push(InputShape::parse(s).map_err(Error::Import)?);
            }
            if args.allow_missing_weights {
                opts.missing_external_data = clio::import::MissingExternalData::Zeros;
            }
            Ok(import_path(path, &opts)?)
        }
        _ => Err(Error::Format(format!(
            "{}: unknown model format (expected a .onnx, .tflite or .clio file)",
            path.display()
        ))),
    }
}

/// Reads a plan (`clio plan -o` JSON) and an accuracy profile (`{"entries": [...]}` or CSV),
/// the inputs `clio simulate` and `clio device` share; errors name the file.
pub fn load_plan_and_profile(
    plan: &Path,
    profile: &Path,
) -> Result<(clio_passes::plan::Plan, clio_passes::plan::simulate::AccuracyProfile), Error> {
    let read =
        |p: &Path| std::fs::read_to_string(p).map_err(|e| Error::from(clio::error::IoError::new(p, "cannot read", e)));
    let parsed = serde_json::from_str(&read(plan)?)
        .map_err(|e| Error::Format(format!("{}: not a plan: {e}", plan.display())))?;
    let prof = clio_passes::plan::simulate::AccuracyProfile::parse(&read(profile)?, &profile.display().to_string())
        .map_err(Error::Format)?;
    Ok((parsed, prof))
}
