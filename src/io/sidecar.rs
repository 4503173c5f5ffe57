//! The weights sidecar: a safetensors file holding every module weight by name.

// Decodes user bytes: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::atomic::write_atomic_preallocated;
use crate::error::IoError;
use crate::ir::{DType, Module, Tensor, TensorData};
use crate::{Error, Limits};
use safetensors::tensor::{Dtype as StDtype, Metadata, SafeTensors, TensorView, View};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
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
    let len = header.len() as u64 + order.iter().map(|(_, t)| (t.len() * t.dtype().size_bytes()) as u64).sum::<u64>();
    write_atomic_preallocated(path, len, |w| {
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
        let dtype = clio_dtype(file, name, view.dtype())?;
        check_elements(file, name, view.shape(), limits)?;
        let data = TensorData::from_le_bytes(dtype, view.data())
            .ok_or_else(|| Error::Format(format!("{file}: tensor `{name}` has a truncated buffer")))?;
        let t = Tensor::new(view.shape().to_vec(), data)
            .map_err(|e| Error::Format(format!("{file}: tensor `{name}`: {e}")))?;
        out.insert(name.to_string(), t);
    }
    Ok(out)
}

/// The largest header [`read_sidecar_file`] accepts (safetensors' own limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// [`read_sidecar`] from a file, reading each tensor's bytes straight into its storage: the file
/// is never held in memory as a whole (half the peak memory of loading a module, one copy of
/// the weights fewer). Checks the same things: a well-formed header, contiguous in-bounds
/// offsets that match every shape and dtype, a file exactly as long as the header says, and the
/// element limit.
pub fn read_sidecar_file(path: &Path, limits: &Limits) -> Result<HashMap<String, Tensor>, Error> {
    let file = path.display().to_string();
    let bad = |what: String| Error::Format(format!("{file}: not a safetensors file: {what}"));
    let io = |e: std::io::Error| Error::Io(Box::new(IoError::new(path, "cannot read", e)));
    let mut f = File::open(path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    let mut n = [0u8; 8];
    f.read_exact(&mut n).map_err(|_| bad(format!("{size} bytes, shorter than the 8-byte header length")))?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER_BYTES || n > size.saturating_sub(8) {
        return Err(bad(format!("a header of {n} bytes in a file of {size}")));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(io)?;
    let header = std::str::from_utf8(&header).map_err(|e| bad(format!("header: {e}")))?;
    let meta: Metadata = serde_json::from_str(header).map_err(|e| bad(format!("header: {e}")))?;
    let described = u64::try_from(meta.data_len()).ok().and_then(|d| d.checked_add(8 + n));
    if described != Some(size) {
        let described = described.map(|d| d.to_string()).unwrap_or_else(|| "too many".into());
        return Err(bad(format!("the header describes {described} bytes, the file has {size}")));
    }
    let mut out = HashMap::new();
    // Offsets are contiguous from 0 (the metadata checked that): read in offset order.
    for name in meta.offset_keys() {
        let info = meta.info(&name).ok_or_else(|| bad(format!("tensor `{name}` vanished from its header")))?;
        let dtype = clio_dtype(&file, &name, info.dtype)?;
        let count = check_elements(&file, &name, &info.shape, limits)?;
        let data = read_elements(&mut f, dtype, count).map_err(io)?;
        let t = Tensor::new(info.shape.clone(), data)
            .map_err(|e| Error::Format(format!("{file}: tensor `{name}`: {e}")))?;
        out.insert(name, t);
    }
    Ok(out)
}

/// `count` little-endian elements of `dtype` read into their storage.
fn read_elements(f: &mut File, dtype: DType, count: usize) -> std::io::Result<TensorData> {
    fn read<T: bytemuck::Pod>(f: &mut File, count: usize) -> std::io::Result<Vec<T>> {
        let mut v = vec![T::zeroed(); count];
        f.read_exact(bytemuck::cast_slice_mut(&mut v))?;
        Ok(v)
    }
    if cfg!(target_endian = "big") {
        let mut bytes = vec![0u8; count * dtype.size_bytes()];
        f.read_exact(&mut bytes)?;
        return TensorData::from_le_bytes(dtype, &bytes)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "partial element"));
    }
    Ok(match dtype {
        DType::F32 => TensorData::F32(read(f, count)?),
        DType::I8 => TensorData::I8(read(f, count)?),
        DType::I16 => TensorData::I16(read(f, count)?),
        DType::I32 => TensorData::I32(read(f, count)?),
    })
}

/// The clio element type of a safetensors dtype, or an error naming the tensor.
fn clio_dtype(file: &str, name: &str, d: StDtype) -> Result<DType, Error> {
    match d {
        StDtype::F32 => Ok(DType::F32),
        StDtype::I8 => Ok(DType::I8),
        StDtype::I16 => Ok(DType::I16),
        StDtype::I32 => Ok(DType::I32),
        other => Err(Error::Format(format!("{file}: tensor `{name}` has unsupported dtype {other:?}"))),
    }
}

/// The element count of `shape`, unless it is above the limit.
fn check_elements(file: &str, name: &str, shape: &[usize], limits: &Limits) -> Result<usize, Error> {
    let n = crate::ir::checked_product(shape).unwrap_or(usize::MAX);
    if n > limits.max_tensor_elements {
        return Err(Error::Format(format!("{file}: tensor `{name}` has {n} elements, above the limit")));
    }
    Ok(n)
}
