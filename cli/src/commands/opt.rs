//! `clio opt`: run a pipeline, print or save the module.

use crate::load::{load_model, InputArgs};
use clap::Args;
use clio::pass::PassManager;
use clio::text::{print_module, PrintOptions, WeightStyle};
use clio::Error;
use std::path::PathBuf;

/// Arguments of `clio opt`.
#[derive(Args, Debug)]
pub struct OptArgs {
    /// The model: .onnx, .tflite or .clio (with its .safetensors sidecar).
    pub input: PathBuf,
    /// Pass pipeline, e.g. `fuse-bn,canonicalize,quantize{scheme=int8}` (see `clio passes`).
    #[arg(short = 'p', long = "pipeline", default_value = "")]
    pub pipeline: String,
    /// Write the result to OUT.clio plus OUT.safetensors (atomically); without it, print the IR.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Print the IR after every pass (to stderr).
    #[arg(long)]
    pub print_ir_after_all: bool,
    /// Print the IR after the named pass (repeatable).
    #[arg(long, value_name = "PASS")]
    pub print_ir_after: Vec<String>,
    /// Print the IR before the named pass (repeatable).
    #[arg(long, value_name = "PASS")]
    pub print_ir_before: Vec<String>,
    /// Print per-pass wall time and statistics (to stderr).
    #[arg(long)]
    pub timing: bool,
    /// Do not run the verifier after every pass.
    #[arg(long)]
    pub no_verify_each: bool,
    /// Skip the named pass wherever it appears (repeatable).
    #[arg(long, value_name = "PASS")]
    pub disable_pass: Vec<String>,
    /// Run only the first N passes of the pipeline (bisecting a miscompile).
    #[arg(long, value_name = "N")]
    pub bisect_limit: Option<usize>,
    /// Print weights inline as dense<[...]> instead of digests when printing to stdout.
    #[arg(long)]
    pub inline_weights: bool,
    /// Compilation target for passes that use cost models (`plan-partitions`, `slice`): a
    /// built-in device (gap8, stm32f7) or a .json description. Without it such passes refuse
    /// (or, like `slice{radio-ms=...}`, take explicit values).
    #[arg(long)]
    pub target: Option<String>,
    /// With --target: the cloud executor (cloud-gpu, cloud-cpu or a .json description).
    #[arg(long, default_value = "cloud-gpu", requires = "target")]
    pub cloud: String,
    /// With --target: the link (ble, wifi or a .json description).
    #[arg(long, default_value = "ble", requires = "target")]
    pub link: String,
    #[command(flatten)]
    pub input_args: InputArgs,
}

/// Runs `clio opt`.
pub fn run(a: OptArgs) -> Result<(), Error> {
    let mut m = load_model(&a.input, &a.input_args)?;
    let reg = clio_passes::registry();
    let mut pm = PassManager::from_pipeline(&reg, &a.pipeline)?;
    pm.config.verify_each = !a.no_verify_each;
    pm.config.print_ir_after_all = a.print_ir_after_all;
    pm.config.print_ir_after = a.print_ir_after.iter().cloned().collect();
    pm.config.print_ir_before = a.print_ir_before.iter().cloned().collect();
    pm.config.disabled = a.disable_pass.iter().cloned().collect();
    pm.config.bisect_limit = a.bisect_limit;
    if let Some(target) = &a.target {
        let t = crate::target_args::TargetArgs { target: target.clone(), cloud: a.cloud.clone(), link: a.link.clone() };
        pm.config.target = Some(t.load()?);
    }
    for name in a.print_ir_after.iter().chain(&a.print_ir_before).chain(&a.disable_pass) {
        if reg.info(name).is_none() {
            return Err(Error::Format(format!("unknown pass `{name}` (see `clio passes`)")));
        }
    }
    let report = pm.run(&mut m)?;
    if a.timing {
        eprint!("{}", report.timing_table());
    }
    match &a.output {
        Some(path) => clio::io::save_module(&m, path)?,
        None => {
            let style = if a.inline_weights { WeightStyle::Inline } else { WeightStyle::Digest };
            print!("{}", print_module(&m, &PrintOptions { weights: style }));
        }
    }
    Ok(())
}
