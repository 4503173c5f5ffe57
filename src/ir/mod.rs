//! The graph IR: element types, tensor types, tensors, ops, graphs and modules.

mod attr;
mod builder;
mod digest;
mod dtype;
mod graph;
mod ids;
mod module;
mod name_index;
mod op;
mod quant;
mod tensor;
mod types;

pub use attr::{Attr, AttrMap, AttrReader};
pub use builder::Builder;
pub use digest::{Digest, DigestAlgorithm};
pub use dtype::DType;
pub use graph::{CycleAt, Graph, Node, OperandList, Use};
pub use ids::{NodeId, Value};
pub use module::{Module, Weight, WeightMap};
pub use op::{Arity, Op, BUILTIN_OP_NAMES};
pub use quant::{QScheme, Quant};
pub(crate) use tensor::all_finite;
pub use tensor::{ShapeMismatch, Tensor, TensorData};
pub use types::{checked_product, Shape, TensorType};
