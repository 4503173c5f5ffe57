//! What is trained: the device graph and the per-slice heads with their loss weights `pi_i`,
//! read from the `clio.slice` module attribute that the `slice` pass writes; or, for a module that
//! was not sliced, one graph (`@main`) with weight 1.

use crate::error::TrainError;
use clio::ir::{Attr, Module};
use serde::Deserialize;

/// One loss term: a head graph fed with the first `size` channels of the cut tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadTerm {
    /// The head graph.
    pub graph: String,
    /// Channels of the cut tensor it receives (the full width for an unsliced module).
    pub size: usize,
    /// Weight of its loss, normalised so the weights sum to 1.
    pub pi: f64,
}

/// The training objective `sum_i pi_i * L_i`.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    /// The device graph producing the cut tensor (`None`: the heads take the image).
    pub device: Option<String>,
    /// Cut index of the sliced module.
    pub cut_k: Option<usize>,
    /// The loss terms, smallest slice first.
    pub heads: Vec<HeadTerm>,
}

#[derive(Deserialize)]
struct SliceJson {
    cut_k: usize,
    device: String,
    heads: Vec<HeadJson>,
}

#[derive(Deserialize)]
struct HeadJson {
    size: usize,
    graph: String,
    pi: f64,
}

impl Objective {
    /// The objective of `m`: from its `clio.slice` attribute, else `@main` alone.
    pub fn from_module(m: &Module) -> Result<Objective, TrainError> {
        let Some(attr) = m.attrs.get("clio.slice") else {
            if m.graph("main").is_none() {
                return Err(TrainError::Module(
                    "neither a `clio.slice` attribute (run the slice pass) nor a graph @main to train".into(),
                ));
            }
            return Ok(Objective {
                device: None,
                cut_k: None,
                heads: vec![HeadTerm { graph: "main".into(), size: 0, pi: 1.0 }],
            });
        };
        let Attr::Str(json) = attr else {
            return Err(TrainError::Module("attribute `clio.slice` is not a string".into()));
        };
        let s: SliceJson = serde_json::from_str(json)
            .map_err(|e| TrainError::Module(format!("attribute `clio.slice` is not slice-pass JSON: {e}")))?;
        let mut heads: Vec<HeadTerm> =
            s.heads.into_iter().map(|h| HeadTerm { graph: h.graph, size: h.size, pi: h.pi }).collect();
        for h in &heads {
            if m.graph(&h.graph).is_none() {
                return Err(TrainError::Module(format!("`clio.slice` names head @{} that the module lacks", h.graph)));
            }
        }
        if m.graph(&s.device).is_none() {
            return Err(TrainError::Module(format!(
                "`clio.slice` names device graph @{} that the module lacks",
                s.device
            )));
        }
        normalise(&mut heads)?;
        Ok(Objective { device: Some(s.device), cut_k: Some(s.cut_k), heads })
    }

    /// Keeps only the head of slice size `size` (weight 1): a separately trained model of that
    /// width, the upper bound progressive slicing is compared with.
    pub fn only(&self, size: usize) -> Result<Objective, TrainError> {
        let h = self.heads.iter().find(|h| h.size == size).ok_or_else(|| {
            let sizes: Vec<usize> = self.heads.iter().map(|h| h.size).collect();
            TrainError::Config(format!("no head of slice size {size} (sizes: {sizes:?})"))
        })?;
        Ok(Objective { heads: vec![HeadTerm { pi: 1.0, ..h.clone() }], ..self.clone() })
    }

    /// Replaces the weights by equal ones.
    pub fn uniform(&self) -> Objective {
        let n = self.heads.len().max(1) as f64;
        let heads = self.heads.iter().map(|h| HeadTerm { pi: 1.0 / n, ..h.clone() }).collect();
        Objective { heads, ..self.clone() }
    }

    /// Every graph the objective runs (device first).
    pub fn graphs(&self) -> Vec<String> {
        self.device.iter().cloned().chain(self.heads.iter().map(|h| h.graph.clone())).collect()
    }
}

/// Scales the weights to sum to 1 (the slice pass's `pi` sum to `1 - P(nothing fits)`).
fn normalise(heads: &mut [HeadTerm]) -> Result<(), TrainError> {
    let total: f64 = heads.iter().map(|h| h.pi).sum();
    if heads.is_empty() || !(total.is_finite() && total > 0.0) || heads.iter().any(|h| h.pi < 0.0) {
        return Err(TrainError::Module(format!("`clio.slice` has no usable loss weights (pi sum {total})")));
    }
    for h in heads.iter_mut() {
        h.pi /= total;
    }
    Ok(())
}
