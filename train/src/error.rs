//! The error type of training.

use crate::data::DataError;

/// Why training (or evaluating) a module failed. One line each, naming the graph, node or file.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The module is not trainable as given (missing graph, non-f32 weight, bad `clio.slice`).
    #[error("module: {0}")]
    Module(String),
    /// An op the trainer cannot differentiate, or a shape it does not support.
    #[error("graph @{graph}, node %{node} ({op}): {message}")]
    Unsupported {
        /// The graph.
        graph: String,
        /// The node.
        node: String,
        /// Its op.
        op: String,
        /// What is unsupported.
        message: String,
    },
    /// The training configuration is invalid.
    #[error("training option: {0}")]
    Config(String),
    /// A dataset problem.
    #[error(transparent)]
    Data(#[from] DataError),
    /// JPEG coding of a dataset failed.
    #[error(transparent)]
    Jpeg(#[from] crate::jpeg::JpegError),
    /// A tensor operation failed inside candle.
    #[error("tensor engine: {0}")]
    Engine(#[from] candle_core::Error),
    /// The loss became NaN or infinite.
    #[error("the loss diverged ({value}) at epoch {epoch}, step {step}: lower the learning rate")]
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Step within the epoch.
        step: usize,
        /// The loss value.
        value: f32,
    },
    /// Reading or writing a checkpoint or module.
    #[error(transparent)]
    Clio(#[from] clio::Error),
}
