//! Error types. Every failure is typed; each names where it happened (file and line:column,
//! graph and node, op) and what was expected, and prints as one line.

use std::path::PathBuf;

/// A position in a source text (1-based line and column, counted in chars).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A syntax or semantic error in clio IR text (or a pipeline string).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{file}:{pos}: {message}")]
pub struct ParseError {
    /// File name, or `<input>` for in-memory text.
    pub file: String,
    /// Where the problem starts.
    pub pos: Pos,
    /// What was expected and what was found.
    pub message: String,
}

/// An IR invariant violated: names the graph, the node (by `%name`) and its op.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("verifier: {}{}: {message}", if graph.is_empty() { "module".to_string() } else { format!("graph @{graph}") }, node.as_ref().map(|(n, op)| format!(", node %{n} ({op})")).unwrap_or_default())]
pub struct VerifyError {
    /// The graph (empty for module-level problems).
    pub graph: String,
    /// The node name and op name, when the problem is at a node.
    pub node: Option<(String, String)>,
    /// What is wrong.
    pub message: String,
}

/// Failure reading or writing a file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct IoError {
    /// The file.
    pub path: PathBuf,
    /// What was being done and the OS error.
    pub message: String,
}

impl IoError {
    /// Wraps an OS error with the path and the action (`"cannot read"` ...).
    pub fn new(path: impl Into<PathBuf>, action: &str, err: impl std::fmt::Display) -> IoError {
        IoError { path: path.into(), message: format!("{action}: {err}") }
    }
}

/// The umbrella error of the `clio` crate. Large payloads are boxed so `Result<T, Error>` stays
/// small on the happy path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// IR text could not be parsed.
    #[error(transparent)]
    Parse(Box<ParseError>),
    /// The IR is malformed.
    #[error(transparent)]
    Verify(Box<VerifyError>),
    /// A module loaded from a file is malformed (the verifier's finding, with the file).
    #[error("{}: {error}", file.display())]
    VerifyFile {
        /// The file the module came from.
        file: PathBuf,
        /// What the verifier found.
        error: Box<VerifyError>,
    },
    /// A file could not be read or written.
    #[error(transparent)]
    Io(Box<IoError>),
    /// A model could not be imported.
    #[error(transparent)]
    Import(#[from] crate::import::ImportError),
    /// The interpreter failed.
    #[error(transparent)]
    Interp(Box<crate::interp::InterpError>),
    /// A pass or pipeline failed.
    #[error(transparent)]
    Pass(Box<crate::pass::PassError>),
    /// A weights sidecar or `.npy` file is malformed.
    #[error("{0}")]
    Format(String),
}

macro_rules! boxed_from {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                Error::$variant(Box::new(e))
            }
        }
    )*};
}

boxed_from!(
    Parse(ParseError),
    Verify(VerifyError),
    Io(IoError),
    Interp(crate::interp::InterpError),
    Pass(crate::pass::PassError)
);

/// Result alias using [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
