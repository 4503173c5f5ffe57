//! NNEF export of a cloud graph through tract: the graph is exported to ONNX
//! ([`super::onnx::export_onnx`]), loaded by tract-onnx, typed and decluttered, and written by
//! tract-nnef (with tract's ONNX operator extensions) as an NNEF tar archive that
//! `tract_nnef::nnef().with_onnx().model_for_read(...)` (or the `tract` command line) runs.

use super::onnx::{export_onnx, ExportError};
use clio::Module;
use tract_onnx::prelude::*;

/// Exports graph `@graph` of `m` as an NNEF tar archive (tract's dialect).
pub fn export_nnef(m: &Module, graph: &str) -> Result<Vec<u8>, ExportError> {
    let tract = |e: TractError| ExportError::Tract { graph: graph.to_string(), message: format!("{e:#}") };
    let onnx = export_onnx(m, graph)?;
    let model = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .and_then(|m| m.into_typed())
        .and_then(|m| m.into_decluttered())
        .map_err(tract)?;
    tract_nnef::nnef().with_onnx().write_to_tar(&model, Vec::new()).map_err(tract)
}
