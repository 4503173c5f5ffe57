//! [`PassRegistry`]: pass ids to constructors. clio-passes fills one with the standard passes;
//! embedders add their own with [`PassRegistry::register`] and use them in pipelines.

// Parses user pipelines and pass options: no panicking indexing or slicing (docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::{Pass, PassError, PassInfo, PassOptions};
use indexmap::IndexMap;

/// Builds a pass instance from validated options.
pub type PassConstructor = fn(&PassOptions) -> Result<Box<dyn Pass>, PassError>;

/// Registered passes by id.
#[derive(Default, Clone)]
pub struct PassRegistry {
    entries: IndexMap<&'static str, (&'static PassInfo, PassConstructor)>,
}

impl PassRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) a pass under `info.name`.
    pub fn register(&mut self, info: &'static PassInfo, ctor: PassConstructor) {
        self.entries.insert(info.name, (info, ctor));
    }

    /// The declaration of a registered pass.
    pub fn info(&self, name: &str) -> Option<&'static PassInfo> {
        self.entries.get(name).map(|(i, _)| *i)
    }

    /// All declarations, in registration order.
    pub fn infos(&self) -> impl Iterator<Item = &'static PassInfo> + '_ {
        self.entries.values().map(|(i, _)| *i)
    }

    /// Instantiates pass `name` with raw options, validating them first.
    pub fn create(&self, name: &str, options: &IndexMap<String, String>) -> Result<Box<dyn Pass>, PassError> {
        let (info, ctor) = self.entries.get(name).ok_or_else(|| PassError::UnknownPass {
            name: name.to_string(),
            known: self.entries.keys().copied().collect::<Vec<_>>().join(", "),
        })?;
        let opts = PassOptions::validate(info, options)?;
        ctor(&opts)
    }
}
