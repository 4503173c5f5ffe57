//! `custom<"dialect.name">(...)`: an op clio does not know, carried with its attribute
//! dictionary and its declared result types, so embedders can round-trip their own ops
//! through clio's passes (which treat it as opaque).

// Like every file of `ops/` (built from unverified user input by the parser and importer): no
// panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use crate::ir::AttrMap;

/// A custom op.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomOp {
    /// The op name, conventionally `dialect.op`.
    pub name: String,
    /// Attributes, kept in order.
    pub attrs: AttrMap,
}
