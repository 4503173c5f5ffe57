//! One module per subcommand.

pub mod build_model;
pub mod compile;
pub mod cuts;
pub mod device;
pub mod opt;
pub mod passes;
pub mod plan;
pub mod quantize;
pub mod run;
pub mod serve;
pub mod simulate;
pub mod stats;
#[cfg(feature = "train")]
pub mod train;
