//! Loading target and link descriptions: built-in names or JSON files.

// Reads user target and link descriptions: no panicking indexing or slicing (docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use crate::gap8::{Gap8Cost, Gap8Desc};
use crate::link::LinkDesc;
use crate::server::{ServerCost, ServerDesc};
use crate::stm32::{CortexMCost, CortexMDesc};
use clio::cost::{CostModel, LinkModel};
use std::path::Path;

const BUILTIN_TARGETS: &[(&str, &str)] = &[
    ("gap8", include_str!("../data/gap8.json")),
    ("stm32f7", include_str!("../data/stm32f7.json")),
    ("cloud-gpu", include_str!("../data/cloud-gpu.json")),
    ("cloud-cpu", include_str!("../data/cloud-cpu.json")),
];

const BUILTIN_LINKS: &[(&str, &str)] =
    &[("ble", include_str!("../data/ble.json")), ("wifi", include_str!("../data/wifi.json"))];

/// A target or link description could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Neither a built-in name nor a readable file.
    #[error("unknown {what} `{name}` (built-in: {known}; or a path to a .json description)")]
    Unknown {
        /// "target" or "link".
        what: &'static str,
        /// What was asked for.
        name: String,
        /// Built-in names.
        known: String,
    },
    /// The JSON is malformed or a field is missing / invalid.
    #[error("{file}: {message}")]
    Invalid {
        /// The file (or built-in name).
        file: String,
        /// What is wrong (serde's message includes line and column).
        message: String,
    },
}

/// Names of the built-in targets.
pub fn builtin_targets() -> Vec<&'static str> {
    BUILTIN_TARGETS.iter().map(|(n, _)| *n).collect()
}

/// Names of the built-in links.
pub fn builtin_links() -> Vec<&'static str> {
    BUILTIN_LINKS.iter().map(|(n, _)| *n).collect()
}

fn source(
    what: &'static str,
    name_or_path: &str,
    builtin: &[(&str, &'static str)],
) -> Result<(String, String), TargetError> {
    if let Some((n, text)) = builtin.iter().find(|(n, _)| *n == name_or_path) {
        return Ok((n.to_string(), text.to_string()));
    }
    let p = Path::new(name_or_path);
    match std::fs::read_to_string(p) {
        Ok(text) => Ok((p.display().to_string(), text)),
        Err(_) => Err(TargetError::Unknown {
            what,
            name: name_or_path.to_string(),
            known: builtin.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        }),
    }
}

fn invalid(file: &str, e: impl std::fmt::Display) -> TargetError {
    TargetError::Invalid { file: file.to_string(), message: e.to_string() }
}

/// Loads a device or server cost model by built-in name (`gap8`, `stm32f7`, `cloud-gpu`,
/// `cloud-cpu`) or from a JSON file whose `kind` is `gap8`, `cortex-m` or `server`.
pub fn load_target(name_or_path: &str) -> Result<Box<dyn CostModel>, TargetError> {
    let (file, text) = source("target", name_or_path, BUILTIN_TARGETS)?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(&file, e))?;
    let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    let model: Box<dyn CostModel> = match kind {
        "gap8" => {
            let m = Gap8Cost::new(serde_json::from_value::<Gap8Desc>(v).map_err(|e| invalid(&file, e))?);
            m.validate().map_err(|e| invalid(&file, e))?;
            Box::new(m)
        }
        "cortex-m" => {
            let m = CortexMCost::new(serde_json::from_value::<CortexMDesc>(v).map_err(|e| invalid(&file, e))?);
            m.validate().map_err(|e| invalid(&file, e))?;
            Box::new(m)
        }
        "server" => {
            let m = ServerCost::new(serde_json::from_value::<ServerDesc>(v).map_err(|e| invalid(&file, e))?);
            m.validate().map_err(|e| invalid(&file, e))?;
            Box::new(m)
        }
        k => return Err(invalid(&file, format!("`kind` must be gap8, cortex-m or server, got `{k}`"))),
    };
    Ok(model)
}

/// Loads a link by built-in name (`ble`, `wifi`) or from a JSON file.
pub fn load_link(name_or_path: &str) -> Result<Box<dyn LinkModel>, TargetError> {
    let (file, text) = source("link", name_or_path, BUILTIN_LINKS)?;
    let d: LinkDesc = serde_json::from_str(&text).map_err(|e| invalid(&file, e))?;
    d.validate().map_err(|e| invalid(&file, e))?;
    Ok(Box::new(d))
}

/// Checks that every listed number is finite and positive.
pub(crate) fn check_positive(fields: &[(&str, f64)]) -> Result<(), String> {
    for (name, v) in fields {
        if !(v.is_finite() && *v > 0.0) {
            return Err(format!("`{name}` must be a positive number, got {v}"));
        }
    }
    Ok(())
}
