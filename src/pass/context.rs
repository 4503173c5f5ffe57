//! [`PassContext`]: what a running pass may use besides the module: statistics and limits.

// Parses user pipelines and pass options: no panicking indexing or slicing (docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::PassInfo;
use crate::cost::TargetContext;
use crate::Limits;
use indexmap::IndexMap;

/// Per-run context handed to [`super::Pass::run`].
pub struct PassContext {
    info: &'static PassInfo,
    stats: IndexMap<String, i64>,
    /// Resource limits the pass must respect.
    pub limits: Limits,
    target: Option<TargetContext>,
    notes: Vec<String>,
}

impl PassContext {
    /// A context for a run of the pass described by `info`.
    pub fn new(info: &'static PassInfo, limits: Limits) -> Self {
        let stats = info.statistics.iter().map(|s| (s.name.to_string(), 0)).collect();
        PassContext { info, stats, limits, target: None, notes: vec![] }
    }

    /// The same context with a compilation target attached.
    pub fn with_target(mut self, target: Option<TargetContext>) -> Self {
        self.target = target;
        self
    }

    /// The compilation target (device and cloud cost models, link), or an error naming the
    /// pass when the driver set none.
    pub fn target(&self) -> Result<&TargetContext, super::PassError> {
        self.target.as_ref().ok_or_else(|| {
            super::PassError::failed(self.info.name, "needs a compilation target (device, cloud and link cost models; `--target`/`--link` on the command line)")
        })
    }

    /// Adds `delta` to a declared statistic. Undeclared names are a bug in the pass: they are
    /// still recorded (so nothing is lost) under their own name, and debug builds assert.
    pub fn stat(&mut self, name: &str, delta: i64) {
        debug_assert!(
            self.info.statistics.iter().any(|s| s.name == name),
            "pass `{}` records undeclared statistic `{name}`",
            self.info.name
        );
        *self.stats.entry(name.to_string()).or_insert(0) += delta;
    }

    /// Records a human-readable remark (e.g. why a pattern was not rewritten).
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Consumes the context, returning statistics and remarks.
    pub fn finish(self) -> (IndexMap<String, i64>, Vec<String>) {
        (self.stats, self.notes)
    }
}
