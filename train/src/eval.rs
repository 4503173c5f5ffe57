//! Test accuracy of every head of an objective (batch norm in evaluation mode).

use crate::data::{Dataset, Normalize};
use crate::error::TrainError;
use crate::lower::Mode;
use crate::objective::Objective;
use crate::params::ParamStore;
use crate::trainer::{batch_tensors, fit_input, head_logits, input_chw};
use candle_core::Tensor;
use clio::ir::Module;

/// Accuracy of one head.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HeadAccuracy {
    /// The head graph.
    pub graph: String,
    /// Channels of the cut tensor it receives (0: the whole image, unsliced module).
    pub size: usize,
    /// Correct top-1 predictions.
    pub correct: usize,
    /// Images evaluated.
    pub total: usize,
    /// `correct / total`.
    pub accuracy: f64,
}

/// Top-1 class of each row of `logits` `[B, K]`.
pub fn argmax_rows(logits: &Tensor) -> Result<Vec<u32>, TrainError> {
    Ok(logits.argmax(1)?.to_vec1::<u32>()?)
}

/// Evaluates every head of `obj` on `data` in batches of `batch`.
pub fn evaluate(
    m: &Module,
    data: &Dataset,
    obj: &Objective,
    norm: Normalize,
    batch: usize,
) -> Result<Vec<HeadAccuracy>, TrainError> {
    let first = obj.device.clone().unwrap_or_else(|| obj.heads[0].graph.clone());
    let pad_to = fit_input(data, input_chw(m, &first)?)?;
    let mut params = ParamStore::from_module(m, &obj.graphs())?;
    let mut correct = vec![0usize; obj.heads.len()];
    let all: Vec<usize> = (0..data.count).collect();
    for idx in all.chunks(batch.max(1)) {
        let (x, y) = batch_tensors(data, idx, norm, pad_to)?;
        let labels = y.to_vec1::<u32>()?;
        for (i, logits) in head_logits(m, obj, &mut params, &x, Mode::Eval)?.iter().enumerate() {
            let pred = argmax_rows(logits)?;
            correct[i] += pred.iter().zip(&labels).filter(|(p, l)| p == l).count();
        }
    }
    Ok(obj
        .heads
        .iter()
        .zip(correct)
        .map(|(h, c)| HeadAccuracy {
            graph: h.graph.clone(),
            size: h.size,
            correct: c,
            total: data.count,
            accuracy: if data.count == 0 { 0.0 } else { c as f64 / data.count as f64 },
        })
        .collect())
}
