//! `clio`: the command-line driver over the clio crates.
//!
//! Every command prints one line `error: ...` and exits with status 1 on failure, and writes
//! no partial output file.

mod commands;
mod load;
mod target_args;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// clio: split neural networks between a microcontroller and the cloud.
#[derive(Parser)]
#[command(name = "clio", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pass pipeline over a model and print or save the result.
    Opt(commands::opt::OptArgs),
    /// Run a model on .npy inputs with the reference interpreter.
    Run(commands::run::RunArgs),
    /// Per-layer shapes, parameters, MACs and activation bytes.
    Stats(commands::stats::StatsArgs),
    /// List the registered passes with their options and statistics.
    Passes(commands::passes::PassesArgs),
    /// Quantize a model (int8, q8, q16) on calibration samples and report per-layer SQNR.
    Quantize(commands::quantize::QuantizeArgs),
    /// List the partition points of a model with device / cloud costs.
    Cuts(commands::cuts::CutsArgs),
    /// Choose partition points covering a bandwidth band for a deadline.
    Plan(commands::plan::PlanArgs),
    /// Replay bandwidth traces: fixed-cut slicing vs adaptive partitioning vs an oracle.
    Simulate(commands::simulate::SimulateArgs),
    /// Build MobileNetV2 / ResNet-18 / VGG-16-BN / a deep chain with seeded random weights.
    BuildModel(commands::build_model::BuildModelArgs),
    /// Compile a model for a device: quantize, partition, lower the device part to C (STM32F7,
    /// CMSIS-NN), save the cloud part and a manifest.
    Compile(commands::compile::CompileArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Opt(a) => commands::opt::run(a),
        Command::Run(a) => commands::run::run(a),
        Command::Stats(a) => commands::stats::run(a),
        Command::Passes(a) => commands::passes::run(a),
        Command::Quantize(a) => commands::quantize::run(a),
        Command::BuildModel(a) => commands::build_model::run(a),
        Command::Compile(a) => commands::compile::run(a),
        Command::Cuts(a) => commands::cuts::run(a),
        Command::Plan(a) => commands::plan::run(a),
        Command::Simulate(a) => commands::simulate::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the error's own formatting.
            let msg = e.to_string().replace('\n', " | ");
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
