//! The typed error of the STM32 (CMSIS-NN) lowering.

/// Why a device graph could not be lowered to C calling CMSIS-NN. Messages are one line and
/// name the graph, the node (`%name`) and its op where one is involved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LowerError {
    /// The module has no graph of that name.
    #[error("stm32: the module has no graph @{0} (run `partition` first, or name the graph)")]
    NoGraph(String),
    /// An op CMSIS-NN (and this backend) has no kernel for.
    #[error("stm32: graph @{graph}, node %{node} ({op}): unsupported: {message}")]
    Unsupported {
        /// Graph name.
        graph: String,
        /// Node name.
        node: String,
        /// Op name.
        op: String,
        /// What is not supported and what would be.
        message: String,
    },
    /// A node whose types or attributes are not what the int8 (CMSIS-NN s8) lowering expects.
    #[error("stm32: graph @{graph}, node %{node} ({op}): expected {message}")]
    Invalid {
        /// Graph name.
        graph: String,
        /// Node name.
        node: String,
        /// Op name.
        op: String,
        /// What was expected and what was found.
        message: String,
    },
    /// An invalid backend option (module prefix ...).
    #[error("stm32: invalid option: {0}")]
    Options(String),
    /// A problem with the graph as a whole (inputs, outputs, cycles, sizes).
    #[error("stm32: graph @{graph}: {message}")]
    Graph {
        /// Graph name.
        graph: String,
        /// What is wrong.
        message: String,
    },
}
