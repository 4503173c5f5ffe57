//! Training for clio modules: Clio's progressive-slicing objective `sum_i pi_i * L_i` on the
//! module that the `slice` pass produced, with candle as the autograd engine.
//!
//! * [`objective`]: the device graph, the per-slice heads and their weights `pi_i`, read from the
//!   module's `clio.slice` attribute (or `@main` alone for an unsliced module).
//! * [`lower`]: each clio op as a differentiable candle operation; weights with one name are one
//!   variable ([`params`]), so the heads' tied layers are trained jointly.
//! * [`trainer`]: minibatch SGD/Adam ([`optim`]) with a learning-rate schedule, seeded batch order,
//!   a progress bar and per-epoch [`checkpoint`]s; trained weights go back into the module.
//! * [`eval`]: test accuracy per head; [`data`]: IDX datasets (Fashion-MNIST, MNIST);
//!   [`jpeg`]: the JPEG / progressive-JPEG baselines.
//!
//! The core crates (`clio`, `clio-passes`) stay free of any training dependency; the CLI enables
//! this crate through its `train` feature (on by default).

pub mod checkpoint;
pub mod clamp;
pub mod conv;
mod cpu;
pub mod data;
pub mod error;
pub mod eval;
pub mod fused;
pub mod jpeg;
pub mod lower;
pub mod objective;
pub mod optim;
pub mod params;
#[cfg(test)]
mod test_util;
pub mod trainer;

pub use error::TrainError;
pub use eval::{evaluate, HeadAccuracy};
pub use objective::{HeadTerm, Objective};
pub use optim::{OptimizerKind, Schedule};
pub use trainer::{train, TrainConfig, TrainReport};
