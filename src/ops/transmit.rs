//! `transmit(x) {to}`: marks the tensor that crosses the link from the device to the graph
//! named `to`. Semantically the identity; backends lower it to the wire format.

use super::{Inferred, RuleResult};
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
        Ok(vec![Inferred::new(ins[0].shape.clone(), ins[0].dtype)])
    }
}
