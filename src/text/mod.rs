//! The MLIR-like text format: [`print_module`] and [`parse_module`].
//!
//! ```text
//! // Lines starting with // are comments.
//! module @tiny {
//!   weight @conv.w : tensor<4x3x3x3xf32> = blob<"xxh3:5f2a9c01d3e4b6a7">
//!   weight @conv.b : tensor<4xf32> = dense<[0.1, -0.2, 0.3, 0.0]>
//!
//!   graph @main(%x: tensor<1x3x8x8xf32>) -> (tensor<1x4x8x8xf32>) {
//!     %conv = conv2d(%x, @conv.w, @conv.b) {strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], groups = 1} : tensor<1x4x8x8xf32>
//!     %relu = relu(%conv) : tensor<1x4x8x8xf32>
//!     return %relu
//!   }
//! }
//! ```
//! Weights are declared once per module and read by any graph as `@name` operands. Their data
//! are printed inline (`dense<[...]>`) or as a content digest (`blob<"xxh3:...">`, see
//! [`crate::ir::Digest`]) whose bytes live in a safetensors sidecar (see [`crate::io`]). `parse(print(m))` prints identically.

// Decodes user text: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

pub(crate) mod lexer;
mod parser;
pub(crate) mod printer;

pub(crate) use parser::parse_module_taking;
pub use parser::{parse_module, MissingWeights, ParseOptions};
pub use printer::{print_graph, print_module, print_type, type_string, PrintOptions, WeightStyle};

/// True if `s` can be printed after `%` or `@` without quotes.
pub fn is_bare_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_name_char)
}

/// Characters allowed in unquoted `%names` and `@names`.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$' | '-' | '/')
}
