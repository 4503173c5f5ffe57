//! `clio run`: execute a graph with the reference interpreters: the float one, or for quantized
//! graphs the bit-exact integer one (`--interp`, chosen from the graph's types by default).

use crate::load::{load_model, InputArgs};
use clap::Args;
use clio::io::{read_npy, write_npy};
use clio::{Error, Tensor};
use std::path::PathBuf;

/// Arguments of `clio run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The model: .onnx, .tflite or .clio.
    pub input: PathBuf,
    /// An input tensor (.npy), one per graph input, in order.
    #[arg(long = "input", value_name = "X.npy", required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where to write each graph output (.npy), one per output, in order.
    #[arg(short = 'o', long = "output", value_name = "Y.npy", required = true)]
    pub outputs: Vec<PathBuf>,
    /// The graph to run (default: the module's first graph).
    #[arg(long)]
    pub graph: Option<String>,
    /// Which interpreter: `float`, `int` (the bit-exact integer arithmetic of quantized graphs,
    /// the one generated C matches), or `auto`: `int` when any node of the graph has a non-f32
    /// result, else `float`.
    #[arg(long, value_enum, default_value_t = InterpChoice::Auto)]
    pub interp: InterpChoice,
    #[command(flatten)]
    pub input_args: InputArgs,
}

/// The interpreter `clio run` uses.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterpChoice {
    /// `int` for quantized graphs, else `float`.
    Auto,
    /// The float reference interpreter.
    Float,
    /// The bit-exact integer interpreter.
    Int,
}

/// Runs `clio run`.
pub fn run(a: RunArgs) -> Result<(), Error> {
    let m = load_model(&a.input, &a.input_args)?;
    let graph = match &a.graph {
        Some(g) => g.clone(),
        None => m.graph_names().into_iter().next().unwrap_or_default(),
    };
    let g = m.graph(&graph).ok_or_else(|| Error::Format(format!("module has no graph @{graph}")))?;
    if a.outputs.len() != g.outputs().len() {
        return Err(Error::Format(format!(
            "graph @{graph} has {} output(s) but {} -o path(s) were given",
            g.outputs().len(),
            a.outputs.len()
        )));
    }
    let inputs: Vec<Tensor> = a.inputs.iter().map(|p| read_npy(p)).collect::<Result<_, _>>()?;
    let int = match a.interp {
        InterpChoice::Auto => clio::quant::first_quantized_node(g).is_some(),
        InterpChoice::Float => false,
        InterpChoice::Int => true,
    };
    let results =
        if int { clio::interp::run_int(&m, &graph, &inputs)? } else { clio::interp::run(&m, &graph, &inputs)? };
    for (path, t) in a.outputs.iter().zip(&results) {
        write_npy(path, t)?;
    }
    Ok(())
}
