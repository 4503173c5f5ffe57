//! The typed error of the GAP8 lowering.

/// Why a device graph could not be lowered to GAP8 C. Messages are one line and name the
/// graph, the node (`%name`) and its op where one is involved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Gap8Error {
    /// The module has no graph of that name.
    #[error("gap8: the module has no graph @{0} (run `partition` first, or name the graph)")]
    NoGraph(String),
    /// An op (or an op configuration) this backend has no kernel for.
    #[error("gap8: graph @{graph}, node %{node} ({op}): unsupported: {message}")]
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
    /// A node whose types or attributes are not what the q8 lowering expects.
    #[error("gap8: graph @{graph}, node %{node} ({op}): expected {message}")]
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
    #[error("gap8: invalid option: {0}")]
    Options(String),
    /// A problem with the graph as a whole (inputs, outputs, cycles).
    #[error("gap8: graph @{graph}: {message}")]
    Graph {
        /// Graph name.
        graph: String,
        /// What is wrong.
        message: String,
    },
}
