//! wip
/// Import failure.
#[derive(Debug, thiserror::Error)]
#[error("import: {0}")]
pub struct ImportError(pub String);
