//! The weights sidecar: a safetensors file holding every module weight by name.

// Decodes user bytes: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::atomic::write_atomic_with;
use crate::ir::{DType, Module, Tensor, TensorData};
use crate::{Error, Limits};
use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorView, View};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

fn st_dtype(d: DType) -> StDtype {
    match d {
        DType::F32 => StDtype::F32,
        DType::I8 => StDtype::I8,
        DType::I16 => StDtype::I16,
        DType::I32 => StDtype::I32,
    }
}

/// Serialises every weight of `m` as safetensors bytes. On little-endian hosts the weights'
/// storage is viewed in place: the result is the only copy of the data.
pub fn write_sidecar_bytes(m: &Module) -> Result<Vec<u8>, Error> {
    let bytes: Vec<(&String, &Tensor, Cow<'_, [u8]>)> =
        m.weights().iter().map(|(n, w)| (n, w.data(), w.data().data().le_bytes())).collect();
    let views: Vec<(&String, TensorView)> = bytes
        .iter()
        .map(|(n, t, b)| {
            TensorView::new(st_dtype(t.dtype()), t.shape().to_vec(), b)
                .map(|v| (*n, v))
                .map_err(|e| Error::Format(format!("weight @{n}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    safetensors::serialize(views, Some(metadata())).map_err(|e| Error::Format(format!("cannot serialise weights: {e}")))
}

/// Writes every weight of `m` to `path` as a safetensors file, atomically, streaming each
/// weight's bytes from its storage: no copy of the data is assembled in memory. The file is
/// byte-identical to [`write_sidecar_bytes`].
pub fn write_sidecar(m: &Module, path: &Path) -> Result<(), Error> {
    // safetensors' own order: descending dtype, then name.
    let mut order: Vec<(&String, &Tensor)> = m.weights().iter().map(|(n, w)| (n, w.data())).collect();
    order.sort_by(|(ln, lt), (rn, rt)| st_dtype(rt.dtype()).cmp(&st_dtype(lt.dtype())).then(ln.cmp(rn)));
    let header = safetensors::serialize(order.iter().map(|(n, t)| (*n, HeaderOnly(t))), Some(metadata()))
        .map_err(|e| Error::Format(format!("cannot serialise weights: {e}")))?;
    write_atomic_with(path, |w| {
        w.write_all(&header)?;
        order.iter().try_for_each(|(_, t)| w.write_all(&t.data().le_bytes()))
    })?;
    Ok(())
}

/// A weight as the safetensors header sees it: dtype, shape and byte length, without data (so
/// that serialising these views yields the header alone).
struct HeaderOnly<'a>(&'a Tensor);

impl View for HeaderOnly<'_> {
    fn dtype(&self) -> StDtype {
        st_dtype(self.0.dtype())
    }

    fn shape(&self) -> &[usize] {
        self.0.shape()
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&[])
    }

    fn data_len(&self) -> usize {
        self.0.len() * self.0.dtype().size_bytes()
    }
}

/// The sidecar's safetensors metadata.
fn metadata() -> HashMap<String, String> {
    HashMap::from([("format".to_string(), "clio-weights".to_string())])
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
