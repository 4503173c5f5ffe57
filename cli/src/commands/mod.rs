//! One module per subcommand.

pub mod opt;
pub mod passes;
pub mod run;
pub mod stats;
