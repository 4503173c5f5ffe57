//! Declared pass options and the validated values a pass is constructed from.

// Parses user pipelines and pass options: no panicking indexing or slicing (docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::{PassError, PassInfo};
use indexmap::IndexMap;

/// The type of an option value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    /// `true` / `false`.
    Bool,
    /// A signed integer.
    Int,
    /// A floating-point number.
    Float,
    /// Free text.
    Str,
    /// A file or directory path.
    Path,
    /// One of the listed words.
    Enum(&'static [&'static str]),
    /// Comma-free list written with `:` separators, e.g. `sizes=4:8:16`.
    IntList,
}

impl OptionKind {
    /// Human-readable kind for help and errors.
    pub fn describe(&self) -> String {
        match self {
            OptionKind::Bool => "bool".into(),
            OptionKind::Int => "int".into(),
            OptionKind::Float => "float".into(),
            OptionKind::Str => "string".into(),
            OptionKind::Path => "path".into(),
            OptionKind::Enum(v) => v.join("|"),
            OptionKind::IntList => "int list (a:b:c)".into(),
        }
    }

    fn check(&self, v: &str) -> Result<(), String> {
        let ok = match self {
            OptionKind::Bool => matches!(v, "true" | "false"),
            OptionKind::Int => v.parse::<i64>().is_ok(),
            OptionKind::Float => v.parse::<f64>().is_ok_and(|f| !f.is_nan()),
            OptionKind::Str | OptionKind::Path => true,
            OptionKind::Enum(words) => words.contains(&v),
            OptionKind::IntList => !v.is_empty() && v.split(':').all(|p| p.parse::<i64>().is_ok()),
        };
        if ok {
            Ok(())
        } else {
            Err(format!("expected {}, got `{v}`", self.describe()))
        }
    }
}

/// One declared option.
#[derive(Debug)]
pub struct OptionInfo {
    /// Kebab-case option name.
    pub name: &'static str,
    /// Value type.
    pub kind: OptionKind,
    /// Default value as text; `None` makes the option required.
    pub default: Option<&'static str>,
    /// One-line help.
    pub help: &'static str,
}

/// Validated option values for one pass instance: every declared option has a value (given or
/// default, except required ones that were given), nothing undeclared is present.
#[derive(Clone, Debug)]
pub struct PassOptions {
    pass: &'static str,
    values: IndexMap<String, String>,
}

impl PassOptions {
    /// Validates `given` against the declaration in `info`.
    pub fn validate(info: &'static PassInfo, given: &IndexMap<String, String>) -> Result<PassOptions, PassError> {
        let err = |message: String| PassError::Option { pass: info.name.to_string(), message };
        for k in given.keys() {
            if !info.options.iter().any(|o| o.name == k) {
                let known: Vec<&str> = info.options.iter().map(|o| o.name).collect();
                return Err(err(format!(
                    "unknown option `{k}` (options: {})",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                )));
            }
        }
        let mut values = IndexMap::new();
        for o in info.options {
            let v = match (given.get(o.name), o.default) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => d.to_string(),
                (None, None) => return Err(err(format!("option `{}` is required ({})", o.name, o.help))),
            };
            o.kind.check(&v).map_err(|e| err(format!("option `{}`: {e}", o.name)))?;
            values.insert(o.name.to_string(), v);
        }
        Ok(PassOptions { pass: info.name, values })
    }

    fn raw(&self, name: &str) -> Result<&str, PassError> {
        self.values.get(name).map(|s| s.as_str()).ok_or_else(|| PassError::Option {
            pass: self.pass.to_string(),
            message: format!("option `{name}` is not declared"),
        })
    }

    /// True if an option was given a value (declared options without defaults may be absent
    /// only if the declaration was changed; this is for optional `Str`/`Path` options whose
    /// default is the empty string).
    pub fn is_set(&self, name: &str) -> bool {
        self.values.get(name).is_some_and(|v| !v.is_empty())
    }

    /// A string or path option.
    pub fn str(&self, name: &str) -> Result<&str, PassError> {
        self.raw(name)
    }

    /// A bool option.
    pub fn bool(&self, name: &str) -> Result<bool, PassError> {
        Ok(self.raw(name)? == "true")
    }

    /// An int option.
    pub fn int(&self, name: &str) -> Result<i64, PassError> {
        let v = self.raw(name)?;
        v.parse().map_err(|_| PassError::Option {
            pass: self.pass.into(),
            message: format!("option `{name}`: `{v}` is not an int"),
        })
    }

    /// A non-negative int option.
    pub fn usize(&self, name: &str) -> Result<usize, PassError> {
        let v = self.int(name)?;
        usize::try_from(v).map_err(|_| PassError::Option {
            pass: self.pass.into(),
            message: format!("option `{name}` must be >= 0, got {v}"),
        })
    }

    /// A float option.
    pub fn float(&self, name: &str) -> Result<f64, PassError> {
        let v = self.raw(name)?;
        v.parse().map_err(|_| PassError::Option {
            pass: self.pass.into(),
            message: format!("option `{name}`: `{v}` is not a number"),
        })
    }

    /// An int-list option (`4:8:16`).
    pub fn int_list(&self, name: &str) -> Result<Vec<i64>, PassError> {
        let v = self.raw(name)?;
        v.split(':')
            .map(|p| {
                p.parse().map_err(|_| PassError::Option {
                    pass: self.pass.into(),
                    message: format!("option `{name}`: `{p}` is not an int"),
                })
            })
            .collect()
    }
}
