//! `clio`: the command-line driver over the clio crates.
//!
//! Every command prints one line `error: ...` and exits with status 1 on failure, and writes
//! no partial output file.

mod commands;
mod load;
mod target_args;

use clap::{Parser, Subcommand};

// Training allocates and frees activation-sized tensors at every step; the system allocator
// returns them to the kernel and page-faults them back in (a third of `clio train`'s step time
// under perf). mimalloc with purging disabled keeps them: 27 s -> 17 s per 20 steps measured.
#[cfg(feature = "train")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc v2's `mi_option_purge_delay` (`mimalloc.h`; `libmimalloc-sys` names no constant).
#[cfg(feature = "train")]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
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
    /// Serve the cloud part: answer device connections with the slice head the received
    /// channels cover (until SIGINT / SIGTERM).
    Serve(commands::serve::ServeArgs),
    /// Run the device program: the compiled device part, a trace-shaped link and adaptive
    /// <cut, slice> choice, against a `clio serve` server.
    Device(commands::device::DeviceArgs),
    /// Train a module (sliced: Clio's expected loss over its heads) on an IDX dataset.
    #[cfg(feature = "train")]
    Train(commands::train::TrainArgs),
    /// Test accuracy of a module's heads (or @main) on an IDX dataset.
    #[cfg(feature = "train")]
    Evaluate(commands::train::EvaluateArgs),
    /// Write dataset images as normalised .npy inputs with their labels (calibration, `run`).
    #[cfg(feature = "train")]
    Samples(commands::train::SamplesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A report piped into `head` ends quietly, as other Unix tools do, instead of panicking on
    // a closed stdout. Not for the networked commands, whose sockets must not raise SIGPIPE.
    #[cfg(target_os = "linux")]
    if !matches!(cli.command, Command::Serve(_) | Command::Device(_)) {
        // SAFETY: restoring the default disposition of one signal before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // Batch commands keep freed memory until they exit: returning it to the kernel and faulting
    // it back in (zeroed) cost half of building a 100k-layer module (0.77 s instead of 1.3-2.0 s,
    // docs/benchmarks.md "Scaling") and a third of a training step. The long-running threaded
    // commands (`serve`, `device`) return it: each thread's freed pages would stay resident.
    // SAFETY: setting an option is allowed at any time; -1 = never return freed memory to the OS.
    #[cfg(feature = "train")]
    if !matches!(cli.command, Command::Serve(_) | Command::Device(_)) {
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    let result = match cli.command {
        Command::Opt(a) => commands::opt::run(a),
        Command::Run(a) => commands::run::run(a),
        Command::Stats(a) => commands::stats::run(a),
        Command::Passes(a) => commands::passes::run(a),
        Command::Quantize(a) => commands::quantize::run(a),
        Command::BuildModel(a) => commands::build_model::run(a),
        Command::Compile(a) => commands::compile::run(a),
        Command::Serve(a) => commands::serve::run(a),
        Command::Device(a) => commands::device::run(a),
        Command::Cuts(a) => commands::cuts::run(a),
        Command::Plan(a) => commands::plan::run(a),
        Command::Simulate(a) => commands::simulate::run(a),
        #[cfg(feature = "train")]
        Command::Train(a) => commands::train::run_train(a),
        #[cfg(feature = "train")]
        Command::Evaluate(a) => commands::train::run_evaluate(a),
        #[cfg(feature = "train")]
        Command::Samples(a) => commands::train::run_samples(a),
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
