//! `transmit(x) {to}`: marks the tensor that crosses the link from the device to the graph
//! named `to`. Semantically the identity; backends lower it to the wire format.

// Shape rules run on unverified user input (parser, importer): no panicking indexing or
// slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::{operands, Inferred, RuleResult};
use crate::ir::{Attr, AttrReader, TensorType};

/// Attributes of `transmit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Name of the receiving graph in the same module.
    pub to: String,
}

impl Transmit {
    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("to", Attr::Str(self.to.clone()))]
    }
    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        Ok(Transmit { to: r.string("to")? })
    }
    /// Shape rule: the identity.
    pub fn infer(&self, ins: &[&TensorType]) -> RuleResult {
        let [x] = operands("transmit", ins)?;
        Ok(vec![Inferred::new(x.shape.clone(), x.dtype)])
    }
}
