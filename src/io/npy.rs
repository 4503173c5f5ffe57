//! NumPy `.npy` files (format versions 1-3, C order). Element types: `<f4`, `<f8` (converted to
//! f32), `|i1`, `<i2`, `<i4`, `<i8` (converted to i32 when every value fits). Anything else is
//! an error naming the dtype.

// Decodes user bytes: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use crate::error::IoError;
use crate::ir::{checked_product, DType, Tensor, TensorData};
use crate::{Error, Limits};
use std::path::Path;

const MAGIC: [u8; 6] = *b"\x93NUMPY";

fn fmt_err(file: &str, msg: impl std::fmt::Display) -> Error {
    Error::Format(format!("{file}: {msg}"))
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<Tensor, Error> {
    let bytes = std::fs::read(path).map_err(|e| IoError::new(path, "cannot read", e))?;
    read_npy_bytes(&bytes, &path.display().to_string(), &Limits::default())
}

/// Parses `.npy` bytes; `file` names the source in errors.
pub fn read_npy_bytes(bytes: &[u8], file: &str, limits: &Limits) -> Result<Tensor, Error> {
    // magic (6), major, minor, then the header length: u16 (version 1) or u32 (versions 2, 3).
    let Some(([m0, m1, m2, m3, m4, m5, major, _minor, l0, l1], after)) = bytes.split_first_chunk::<10>() else {
        return Err(fmt_err(file, "not a .npy file (bad magic)"));
    };
    if [*m0, *m1, *m2, *m3, *m4, *m5] != MAGIC {
        return Err(fmt_err(file, "not a .npy file (bad magic)"));
    }
    let (hlen, rest) = match major {
        1 => (u16::from_le_bytes([*l0, *l1]) as usize, after),
        2 | 3 => {
            let Some(([l2, l3], rest)) = after.split_first_chunk::<2>() else {
                return Err(fmt_err(file, "truncated header"));
            };
            (u32::from_le_bytes([*l0, *l1, *l2, *l3]) as usize, rest)
        }
        v => return Err(fmt_err(file, format!("unsupported .npy version {v}"))),
    };
    let (header, body) = rest.split_at_checked(hlen).ok_or_else(|| fmt_err(file, "truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| fmt_err(file, "header is not text"))?;
    let descr = dict_value(header, "descr").ok_or_else(|| fmt_err(file, "header has no 'descr'"))?;
    let fortran = dict_value(header, "fortran_order").ok_or_else(|| fmt_err(file, "header has no 'fortran_order'"))?;
    let shape_txt = dict_value(header, "shape").ok_or_else(|| fmt_err(file, "header has no 'shape'"))?;
    if fortran.trim() != "False" {
        return Err(fmt_err(file, "Fortran-order arrays are not supported (save with np.ascontiguousarray)"));
    }
    let shape = parse_shape(shape_txt).ok_or_else(|| fmt_err(file, format!("malformed shape {shape_txt}")))?;
    let n = checked_product(&shape).filter(|n| *n <= limits.max_tensor_elements).ok_or_else(|| {
        fmt_err(file, format!("shape {shape:?} exceeds the limit of {} elements", limits.max_tensor_elements))
    })?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let (size, kind) = match descr {
        "<f4" => (4, "f4"),
        "<f8" => (8, "f8"),
        "|i1" | "<i1" => (1, "i1"),
        "<i2" => (2, "i2"),
        "<i4" => (4, "i4"),
        "<i8" => (8, "i8"),
        d => {
            return Err(fmt_err(
                file,
                format!("unsupported dtype '{d}' (use float32, float64, int8, int16, int32 or int64)"),
            ))
        }
    };
    if body.len() != n * size {
        return Err(fmt_err(
            file,
            format!("expected {} data bytes for shape {shape:?}, found {}", n * size, body.len()),
        ));
    }
    let data = match kind {
        "f4" => TensorData::from_le_bytes(DType::F32, body),
        "i1" => TensorData::from_le_bytes(DType::I8, body),
        "i2" => TensorData::from_le_bytes(DType::I16, body),
        "i4" => TensorData::from_le_bytes(DType::I32, body),
        "f8" => Some(TensorData::F32(
            body.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32).collect(),
        )),
        _ => {
            let mut v = Vec::with_capacity(n);
            for c in body.chunks_exact(8) {
                let x = i64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
                v.push(i32::try_from(x).map_err(|_| fmt_err(file, format!("int64 value {x} does not fit in int32")))?);
            }
            Some(TensorData::I32(v))
        }
    }
    .ok_or_else(|| fmt_err(file, "data length is not a multiple of the element size"))?;
    Tensor::new(shape, data).map_err(|e| fmt_err(file, e))
}

/// The text of `'key': value` in a Python dict literal, up to the next top-level comma.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let k1 = format!("'{key}'");
    let (_, after) = header.split_once(&k1)?;
    let rest = after.trim_start().strip_prefix(':')?;
    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return rest.get(..i),
            _ => {}
        }
    }
    None
}

fn parse_shape(s: &str) -> Option<Vec<usize>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    inner.split(',').map(|p| p.trim()).filter(|p| !p.is_empty()).map(|p| p.parse().ok()).collect()
}

/// Encodes a tensor as `.npy` (version 1.0).
pub fn write_npy_bytes(t: &Tensor) -> Vec<u8> {
    let descr = match t.dtype() {
        DType::F32 => "<f4",
        DType::I8 => "|i1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
    };
    let shape = match t.shape() {
        [d] => format!("({d},)"),
        s => format!("({})", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad so that magic + version + length + header is a multiple of 64, ending in '\n'.
    let total = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + t.len() * t.dtype().size_bytes());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&t.data().to_le_bytes());
    out
}

/// Writes a tensor to a `.npy` file atomically.
pub fn write_npy(path: &Path, t: &Tensor) -> Result<(), Error> {
    Ok(super::write_atomic(path, &write_npy_bytes(t))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_dtype() {
        let ts = [
            Tensor::from_f32([2, 3], vec![1.0, -2.5, 3.25, 0.0, f32::MAX, 1e-7]).unwrap(),
            Tensor::new([4], TensorData::I8(vec![-128, 0, 1, 127])).unwrap(),
            Tensor::new([1, 2], TensorData::I16(vec![-300, 300])).unwrap(),
            Tensor::new(vec![], TensorData::I32(vec![42])).unwrap(),
        ];
        for t in ts {
            let b = write_npy_bytes(&t);
            assert_eq!((b.len() - t.len() * t.dtype().size_bytes()) % 64, 0);
            assert_eq!(read_npy_bytes(&b, "t.npy", &Limits::default()).unwrap(), t);
        }
    }

    #[test]
    fn rejects_truncated_and_huge() {
        let t = Tensor::from_f32([2, 2], vec![1.0; 4]).unwrap();
        let b = write_npy_bytes(&t);
        for cut in [0, 5, 9, 20, b.len() - 1] {
            let e = read_npy_bytes(b.get(..cut).unwrap(), "t.npy", &Limits::default()).unwrap_err().to_string();
            assert!(e.starts_with("t.npy: "), "{e}");
        }
        let at = b.windows(6).position(|w| w == b"(2, 2)").unwrap();
        let mut huge = b.get(..at).unwrap().to_vec();
        huge.extend_from_slice(b"(1000000, 1000000)");
        huge.extend_from_slice(b.get(at + 6..).unwrap());
        let e = read_npy_bytes(&huge, "h.npy", &Limits::default()).unwrap_err().to_string();
        assert!(e.contains("exceeds the limit"), "{e}");
    }
}
