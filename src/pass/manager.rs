//! [`PassManager`]: runs a pipeline over a module, verifying after every pass (by default),
//! dumping IR before/after chosen passes, timing each pass, collecting statistics, and
//! supporting `disable` and bisection (run only the first N passes, as LLVM's
//! `-opt-bisect-limit`).

// Parses user pipelines and pass options: no panicking indexing or slicing (docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::{Pass, PassContext, PassError, PassRegistry, Pipeline, PipelineEntry};
use crate::text::{print_module, PrintOptions};
use crate::verify::verify_module;
use crate::{Limits, Module};
use indexmap::IndexMap;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Receives IR dumps as `(header, ir text)`.
pub type DumpSink = Box<dyn FnMut(&str, &str)>;

/// Pass-manager settings.
pub struct ManagerConfig {
    /// Verify the module before the pipeline and after every pass (default: on).
    pub verify_each: bool,
    /// Dump the IR after every pass.
    pub print_ir_after_all: bool,
    /// Dump the IR after these passes (by id).
    pub print_ir_after: HashSet<String>,
    /// Dump the IR before these passes (by id).
    pub print_ir_before: HashSet<String>,
    /// Skip these passes (by id).
    pub disabled: HashSet<String>,
    /// Run only the first N passes of the pipeline; the rest are reported as skipped.
    pub bisect_limit: Option<usize>,
    /// How dumps print weights.
    pub print_options: PrintOptions,
    /// Resource limits handed to passes.
    pub limits: Limits,
    /// Cost models of the compilation target, for passes that need them.
    pub target: Option<crate::cost::TargetContext>,
    /// Where dumps go (default: stderr). Receives `(header, ir)`.
    pub dump: DumpSink,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            verify_each: true,
            print_ir_after_all: false,
            print_ir_after: HashSet::new(),
            print_ir_before: HashSet::new(),
            disabled: HashSet::new(),
            bisect_limit: None,
            print_options: PrintOptions::default(),
            limits: Limits::default(),
            target: None,
            dump: Box::new(|header, ir| eprint!("// -----// {header} //----- //\n{ir}")),
        }
    }
}

/// What happened to one pass of a run.
#[derive(Clone, Debug)]
pub struct PassRecord {
    /// The pipeline entry as written (`quantize{scheme=int8}`).
    pub entry: String,
    /// Pass id.
    pub name: String,
    /// Why it did not run, if it did not (`disabled`, `bisect limit`, `not enabled`).
    pub skipped: Option<String>,
    /// Wall time of `run` (zero when skipped).
    pub elapsed: Duration,
    /// Wall time of the verifier after it.
    pub verify_elapsed: Duration,
    /// Declared statistics and their values.
    pub stats: IndexMap<String, i64>,
    /// Remarks the pass recorded.
    pub notes: Vec<String>,
}

/// The outcome of [`PassManager::run`].
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    /// One record per pipeline entry, in order.
    pub passes: Vec<PassRecord>,
}

impl RunReport {
    /// A `--timing` style table: pass, wall time, verify time, statistics.
    pub fn timing_table(&self) -> String {
        let total: Duration = self.passes.iter().map(|p| p.elapsed + p.verify_elapsed).sum();
        let mut out = String::from("===-------------------------------------------------------------===\n");
        out += "  pass                               time (ms)   verify (ms)   statistics\n";
        for p in &self.passes {
            let stats: Vec<String> = p.stats.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let stats = match &p.skipped {
                Some(why) => format!("skipped: {why}"),
                None => stats.join(" "),
            };
            out += &format!(
                "  {:<34} {:>9.3}   {:>11.3}   {}\n",
                p.entry,
                p.elapsed.as_secs_f64() * 1e3,
                p.verify_elapsed.as_secs_f64() * 1e3,
                stats
            );
        }
        out += &format!("  {:<34} {:>9.3}\n", "total", total.as_secs_f64() * 1e3);
        out
    }
}

/// A pipeline of instantiated passes plus the manager settings.
pub struct PassManager {
    passes: Vec<(PipelineEntry, Box<dyn Pass>)>,
    /// Settings; adjust before [`PassManager::run`].
    pub config: ManagerConfig,
}

impl PassManager {
    /// An empty manager.
    pub fn new() -> Self {
        PassManager { passes: vec![], config: ManagerConfig::default() }
    }

    /// Builds the passes of a textual pipeline from a registry.
    pub fn from_pipeline(registry: &PassRegistry, pipeline: &str) -> Result<Self, PassError> {
        let p = Pipeline::parse(pipeline).map_err(PassError::Pipeline)?;
        let mut pm = PassManager::new();
        for e in p.entries {
            let pass = registry.create(&e.name, &e.options)?;
            pm.passes.push((e, pass));
        }
        Ok(pm)
    }

    /// Appends an already-built pass (options recorded as none).
    pub fn add(&mut self, pass: Box<dyn Pass>) {
        let entry = PipelineEntry { name: pass.info().name.to_string(), options: IndexMap::new() };
        self.passes.push((entry, pass));
    }

    /// The pipeline this manager runs, in canonical text.
    pub fn pipeline(&self) -> Pipeline {
        Pipeline { entries: self.passes.iter().map(|(e, _)| e.clone()).collect() }
    }

    /// Runs every pass in order. On error the module may hold the partial result of the
    /// failing pass; callers that must not expose it keep a copy (modules clone cheaply).
    pub fn run(&mut self, module: &mut Module) -> Result<RunReport, PassError> {
        if self.config.verify_each {
            verify_module(module).map_err(PassError::VerifyBefore)?;
        }
        let mut report = RunReport::default();
        for (i, (entry, pass)) in self.passes.iter_mut().enumerate() {
            let info = pass.info();
            let mut record = PassRecord {
                entry: entry.to_string(),
                name: info.name.to_string(),
                skipped: None,
                elapsed: Duration::ZERO,
                verify_elapsed: Duration::ZERO,
                stats: IndexMap::new(),
                notes: vec![],
            };
            record.skipped = if self.config.disabled.contains(info.name) {
                Some("disabled".into())
            } else if self.config.bisect_limit.is_some_and(|n| i >= n) {
                Some("bisect limit".into())
            } else if !pass.is_enabled(module) {
                Some("not enabled for this module".into())
            } else {
                None
            };
            if record.skipped.is_some() {
                report.passes.push(record);
                continue;
            }
            if self.config.print_ir_before.contains(info.name) {
                (self.config.dump)(
                    &format!("IR Dump Before {entry}"),
                    &print_module(module, &self.config.print_options),
                );
            }
            let mut cx = PassContext::new(info, self.config.limits).with_target(self.config.target.clone());
            let start = Instant::now();
            pass.run(module, &mut cx)?;
            record.elapsed = start.elapsed();
            (record.stats, record.notes) = cx.finish();
            if self.config.verify_each {
                let start = Instant::now();
                verify_module(module).map_err(|error| PassError::VerifyAfter { pass: info.name.to_string(), error })?;
                record.verify_elapsed = start.elapsed();
            }
            if self.config.print_ir_after_all || self.config.print_ir_after.contains(info.name) {
                (self.config.dump)(
                    &format!("IR Dump After {entry}"),
                    &print_module(module, &self.config.print_options),
                );
            }
            report.passes.push(record);
        }
        Ok(report)
    }
}

impl Default for PassManager {
    fn default() -> Self {
        Self::new()
    }
}
