//! wip
/// Interpreter failure.
#[derive(Debug, thiserror::Error)]
#[error("interp: {0}")]
pub struct InterpError(pub String);
