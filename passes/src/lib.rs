//! # clio-passes
//!
//! The standard pass library of clio: one pass per file, each named by its kebab-case id,
//! declaring its options and statistics next to its code. [`registry`] returns a
//! [`PassRegistry`] holding every standard pass; embedders add their own to it.

// No unwrap/expect in library code: user input must end in a typed error, never a panic
// (tests may; see clippy.toml). Invariants the code itself guarantees use `unreachable!`-free
// fallbacks or a documented `#[allow]` at the site.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use clio::pass::PassRegistry;

pub mod canonicalize;
pub mod dce;
pub mod fold_constants;
pub mod fuse_bn;
pub mod partition;
pub mod plan;
pub mod prune;
pub mod quantize;
pub mod skip_to_conv;
pub mod slice;
pub mod sparsify;

/// Adds every standard pass to `reg`.
pub fn register_all(reg: &mut PassRegistry) {
    canonicalize::register(reg);
    dce::register(reg);
    fold_constants::register(reg);
    fuse_bn::register(reg);
    prune::register(reg);
    partition::register(reg);
    plan::register(reg);
    quantize::register(reg);
    skip_to_conv::register(reg);
    slice::register(reg);
    sparsify::register(reg);
}

/// A registry with every standard pass.
pub fn registry() -> PassRegistry {
    let mut reg = PassRegistry::new();
    register_all(&mut reg);
    reg
}
