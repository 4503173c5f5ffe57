//! Pass infrastructure: the [`Pass`] trait, declarative options and statistics
//! ([`PassInfo`]), the [`PassRegistry`] embedders add their own passes to, the textual
//! [`Pipeline`] syntax (`fuse-bn,canonicalize,quantize{scheme=int8}`) and the
//! [`PassManager`] that runs a pipeline with verify-each, IR dumps, timing and bisection.
//!
//! A custom pass, end to end:
//! ```
//! use clio::pass::{Pass, PassContext, PassError, PassInfo, PassOptions, PassRegistry, StatInfo, PassManager};
//! use clio::Module;
//!
//! static COUNT_NODES: PassInfo = PassInfo {
//!     name: "count-nodes",
//!     summary: "Counts nodes (changes nothing).",
//!     options: &[],
//!     statistics: &[StatInfo { name: "nodes", help: "nodes in all graphs" }],
//! };
//! struct CountNodes;
//! impl Pass for CountNodes {
//!     fn info(&self) -> &'static PassInfo { &COUNT_NODES }
//!     fn run(&mut self, m: &mut Module, cx: &mut PassContext) -> Result<(), PassError> {
//!         let n: usize = m.graphs().map(|g| g.len()).sum();
//!         cx.stat("nodes", n as i64);
//!         Ok(())
//!     }
//! }
//! let mut reg = PassRegistry::new();
//! reg.register(&COUNT_NODES, |_opts: &PassOptions| Ok(Box::new(CountNodes)));
//! let mut pm = PassManager::from_pipeline(&reg, "count-nodes").unwrap();
//! let mut m: Module = clio::text::parse_module(
//!     "module @m { graph @main(%x: tensor<2xf32>) -> (tensor<2xf32>) { %y = relu(%x) : tensor<2xf32>\n return %y } }",
//!     &Default::default()).unwrap();
//! let report = pm.run(&mut m).unwrap();
//! assert_eq!(report.passes[0].stats["nodes"], 2);
//! ```

// Parses user pipelines and pass options: no panicking indexing or slicing (docs/robustness.md).
#![deny(clippy::indexing_slicing)]

mod context;
mod manager;
mod options;
mod pipeline;
mod registry;

pub use context::PassContext;
pub use manager::{DumpSink, ManagerConfig, PassManager, PassRecord, RunReport};
pub use options::{OptionInfo, OptionKind, PassOptions};
pub use pipeline::{Pipeline, PipelineEntry};
pub use registry::{PassConstructor, PassRegistry};

use crate::Module;

/// The static description of a pass: its id, what it does, its options and its statistics.
/// The CLI help, the pipeline parser and the docs all read this one declaration.
#[derive(Debug)]
pub struct PassInfo {
    /// The kebab-case id used in pipelines, dumps, statistics and snapshot names.
    pub name: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// Declared options.
    pub options: &'static [OptionInfo],
    /// Declared statistics.
    pub statistics: &'static [StatInfo],
}

/// A declared statistic.
#[derive(Debug)]
pub struct StatInfo {
    /// Kebab-case statistic name.
    pub name: &'static str,
    /// What it counts.
    pub help: &'static str,
}

/// A transformation (or analysis) over a whole module.
///
/// Passes must leave the module valid (the pass manager verifies after each one by default)
/// and should be idempotent. A pass sees only the IR crate; where it needs target costs it
/// receives a cost-model trait object through its constructor.
pub trait Pass {
    /// The static description (id, options, statistics).
    fn info(&self) -> &'static PassInfo;

    /// Whether the pass should run at all (rustc's `is_enabled`); default yes.
    fn is_enabled(&self, _module: &Module) -> bool {
        true
    }

    /// Runs the pass.
    fn run(&mut self, module: &mut Module, cx: &mut PassContext) -> Result<(), PassError>;
}

/// A failed pass, pipeline or pass-manager step.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The pipeline string does not parse.
    #[error("pipeline {0}")]
    Pipeline(crate::ParseError),
    /// No pass of this name is registered.
    #[error("unknown pass `{name}` (registered: {known})")]
    UnknownPass {
        /// The name asked for.
        name: String,
        /// Registered names, comma separated.
        known: String,
    },
    /// An option is unknown or has a bad value.
    #[error("pass `{pass}`: {message}")]
    Option {
        /// The pass.
        pass: String,
        /// What is wrong.
        message: String,
    },
    /// The pass itself failed.
    #[error("pass `{pass}` failed: {message}")]
    Failed {
        /// The pass.
        pass: String,
        /// Why (names the graph / node / op).
        message: String,
    },
    /// The module no longer verifies after a pass.
    #[error("IR invalid after pass `{pass}`: {error}")]
    VerifyAfter {
        /// The pass that broke the IR.
        pass: String,
        /// The verifier's error.
        error: crate::VerifyError,
    },
    /// The module did not verify before the pipeline ran.
    #[error("IR invalid before the pipeline: {0}")]
    VerifyBefore(crate::VerifyError),
}

impl PassError {
    /// A pass failure with a message.
    pub fn failed(pass: &str, message: impl Into<String>) -> PassError {
        PassError::Failed { pass: pass.to_string(), message: message.into() }
    }
}
