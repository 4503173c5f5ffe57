//! The weights sidecar: a safetensors file holding every module weight by name.

// Decodes user bytes: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use crate::ir::{DType, Module, Tensor, TensorData};
use crate::{Error, Limits};
use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorView};
use std::collections::HashMap;

fn st_dtype(d: DType) -> StDtype {
    match d {
        DType::F32 => StDtype::F32,
        DType::I8 => StDtype::I8,
        DType::I16 => StDtype::I16,
        DType::I32 => StDtype::I32,
    }
}

/// Serialises every weight of `m` as safetensors bytes.
pub fn write_sidecar_bytes(m: &Module) -> Result<Vec<u8>, Error> {
    let bytes: Vec<(String, Vec<usize>, DType, Vec<u8>)> = m
        .weights()
        .iter()
        .map(|(n, w)| (n.clone(), w.data().shape().to_vec(), w.data().dtype(), w.data().data().to_le_bytes()))
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(n, s, d, b)| {
            TensorView::new(st_dtype(*d), s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Format(format!("weight @{n}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "clio-weights".to_string());
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::Format(format!("cannot serialise weights: {e}")))
}

/// Reads a sidecar into tensors by name. `file` names the file in errors.
pub fn read_sidecar(bytes: &[u8], file: &str, limits: &Limits) -> Result<HashMap<String, Tensor>, Error> {
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| Error::Format(format!("{file}: not a safetensors file: {e}")))?;
    let mut out = HashMap::new();
    for (name, view) in st.iter() {
        let dtype = match view.dtype() {
            StDtype::F32 => DType::F32,
            StDtype::I8 => DType::I8,
            StDtype::I16 => DType::I16,
            StDtype::I32 => DType::I32,
            other => return Err(Error::Format(format!("{file}: tensor `{name}` has unsupported dtype {other:?}"))),
        };
        let n = crate::ir::checked_product(view.shape()).unwrap_or(usize::MAX);
        if n > limits.max_tensor_elements {
            return Err(Error::Format(format!("{file}: tensor `{name}` has {n} elements, above the limit")));
        }
        let data = TensorData::from_le_bytes(dtype, view.data())
            .ok_or_else(|| Error::Format(format!("{file}: tensor `{name}` has a truncated buffer")))?;
        let t = Tensor::new(view.shape().to_vec(), data)
            .map_err(|e| Error::Format(format!("{file}: tensor `{name}`: {e}")))?;
        out.insert(name.to_string(), t);
    }
    Ok(out)
}
