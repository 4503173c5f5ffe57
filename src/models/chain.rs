//! A synthetic deep chain for scaling benchmarks (1k / 10k / 100k layers).

use super::net::Net;
use super::{tag, ModelError};
use crate::Module;

/// Configuration of [`chain`].
#[derive(Clone, Debug, PartialEq)]
pub struct ChainConfig {
    /// Number of layers (each one conv, optionally a batch norm, and a ReLU).
    pub layers: usize,
    /// Channels of every layer.
    pub channels: usize,
    /// Square spatial size of the input (kept by every layer: stride 1, same padding).
    pub spatial: usize,
    /// Conv kernel size (odd).
    pub kernel: usize,
    /// Put a batch norm after every conv (gives `fuse-bn` work); without it convs have a bias.
    pub batch_norm: bool,
    /// Classes of the head (global pool, flatten, gemm).
    pub classes: usize,
    /// Weight seed.
    pub seed: u64,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig { layers: 16, channels: 4, spatial: 8, kernel: 3, batch_norm: true, classes: 10, seed: 0 }
    }
}

/// The largest layer count [`chain`] accepts.
pub const MAX_CHAIN_LAYERS: usize = 10_000_000;

/// Builds `layers` repetitions of `layers.i.conv` (channels -> channels, kernel x kernel, same
/// padding), `layers.i.bn` (when `batch_norm`) and `layers.i.relu` on a
/// `1 x channels x spatial x spatial` input, then `pool` (global average pool), `flatten` and the
/// `fc` gemm to `classes`. The first conv reads the input directly (it has `channels` channels).
pub fn chain(c: &ChainConfig) -> Result<Module, ModelError> {
    if c.layers == 0 || c.layers > MAX_CHAIN_LAYERS {
        return Err(ModelError::new(format!("chain layer count {} must be in 1..={MAX_CHAIN_LAYERS}", c.layers)));
    }
    if c.channels == 0 || c.channels > 4096 || c.spatial == 0 || c.spatial > 4096 {
        return Err(ModelError::new(format!(
            "chain channels {} and spatial size {} must be in 1..=4096",
            c.channels, c.spatial
        )));
    }
    if c.kernel % 2 == 0 || c.kernel > c.spatial.max(1) * 2 + 1 {
        return Err(ModelError::new(format!("chain kernel {} must be odd and fit the input", c.kernel)));
    }
    if c.classes == 0 || c.classes > 1_000_000 {
        return Err(ModelError::new(format!("class count {} must be in 1..=1000000", c.classes)));
    }
    let mut m = Module::new(format!("chain_{}", c.layers));
    tag(&mut m, "chain", None, 1.0, c.spatial, c.classes, c.seed);
    m.attrs.insert("layers".into(), crate::ir::Attr::Int(c.layers as i64));
    let mut n = Net::new(&mut m, c.seed);
    let mut y = n.input("input", &[1, c.channels, c.spatial, c.spatial]);
    for i in 0..c.layers {
        y = n.conv(&format!("layers.{i}.conv"), y, c.channels, c.kernel, 1, 1, !c.batch_norm)?;
        if c.batch_norm {
            y = n.bn(&format!("layers.{i}.bn"), y)?;
        }
        y = n.relu(&format!("layers.{i}.relu"), y)?;
    }
    y = n.pool_flatten("pool", y)?;
    y = n.linear("fc", y, c.classes)?;
    n.finish(y);
    Ok(m)
}
