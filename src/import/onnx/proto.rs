//! Reading the raw ONNX protobuf: typed node-attribute access and tensor decoding (inline,
//! typed fields, raw little-endian bytes, or external data files next to the model).

// Decodes user protobuf: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::konst::{check_limit, safe_count, unsupported, KData, KResult, Konst};
use crate::import::{ImportErrorKind, ImportOptions, MissingExternalData};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use tract_onnx::pb::{AttributeProto, TensorProto};

// AttributeProto.type values.
const A_FLOAT: i32 = 1;
const A_INT: i32 = 2;
const A_STRING: i32 = 3;
const A_TENSOR: i32 = 4;
const A_FLOATS: i32 = 6;
const A_INTS: i32 = 7;

/// The ONNX name of a TensorProto data type.
pub(crate) fn dtype_name(t: i32) -> String {
    tract_onnx::pb::tensor_proto::DataType::try_from(t)
        .map(|d| d.as_str_name().to_string())
        .unwrap_or_else(|_| format!("<unknown data type {t}>"))
}

/// Typed access to a node's attributes.
pub(crate) struct Attrs<'a> {
    list: &'a [AttributeProto],
}

fn bad(attr: &str, message: impl Into<String>) -> ImportErrorKind {
    ImportErrorKind::Attribute { attr: attr.to_string(), message: message.into() }
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(list: &'a [AttributeProto]) -> Self {
        Attrs { list }
    }

    fn get(&self, name: &str, ty: i32, what: &str) -> KResult<Option<&'a AttributeProto>> {
        match self.list.iter().find(|a| a.name == name) {
            None => Ok(None),
            // Some old exporters leave the type unset: trust the field then.
            Some(a) if a.r#type == ty || a.r#type == 0 => Ok(Some(a)),
            Some(a) => Err(bad(
                name,
                format!(
                    "expected {what}, got a {} attribute",
                    tract_onnx::pb::attribute_proto::AttributeType::try_from(a.r#type)
                        .map(|t| t.as_str_name())
                        .unwrap_or("malformed")
                ),
            )),
        }
    }

    /// True if the attribute is present.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.list.iter().any(|a| a.name == name)
    }

    pub(crate) fn int(&self, name: &str) -> KResult<Option<i64>> {
        Ok(self.get(name, A_INT, "an int")?.map(|a| a.i))
    }

    pub(crate) fn int_or(&self, name: &str, default: i64) -> KResult<i64> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    /// An int attribute that must be 0 or 1.
    pub(crate) fn flag(&self, name: &str, default: bool) -> KResult<bool> {
        match self.int(name)? {
            None => Ok(default),
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(v) => Err(bad(name, format!("expected 0 or 1, got {v}"))),
        }
    }

    pub(crate) fn float(&self, name: &str) -> KResult<Option<f32>> {
        Ok(self.get(name, A_FLOAT, "a float")?.map(|a| a.f))
    }

    pub(crate) fn float_or(&self, name: &str, default: f32) -> KResult<f32> {
        Ok(self.float(name)?.unwrap_or(default))
    }

    pub(crate) fn ints(&self, name: &str) -> KResult<Option<Vec<i64>>> {
        Ok(self.get(name, A_INTS, "a list of ints")?.map(|a| a.ints.clone()))
    }

    pub(crate) fn floats(&self, name: &str) -> KResult<Option<Vec<f32>>> {
        Ok(self.get(name, A_FLOATS, "a list of floats")?.map(|a| a.floats.clone()))
    }

    /// A list of non-negative ints with exactly `N` entries.
    pub(crate) fn usizes<const N: usize>(&self, name: &str) -> KResult<Option<[usize; N]>> {
        let Some(v) = self.ints(name)? else { return Ok(None) };
        if v.len() != N {
            return Err(bad(name, format!("expected {N} entries, got {v:?}")));
        }
        let out = v
            .iter()
            .map(|x| usize::try_from(*x).map_err(|_| bad(name, format!("expected non-negative entries, got {v:?}"))))
            .collect::<KResult<Vec<_>>>()?;
        <[usize; N]>::try_from(out).map(Some).map_err(|_| bad(name, format!("expected {N} entries, got {v:?}")))
    }

    pub(crate) fn string(&self, name: &str) -> KResult<Option<String>> {
        match self.get(name, A_STRING, "a string")? {
            None => Ok(None),
            Some(a) => String::from_utf8(a.s.clone()).map(Some).map_err(|_| bad(name, "the string is not valid UTF-8")),
        }
    }

    pub(crate) fn tensor(&self, name: &str) -> KResult<Option<&'a TensorProto>> {
        match self.get(name, A_TENSOR, "a tensor")? {
            None => Ok(None),
            Some(a) => a.t.as_ref().map(Some).ok_or_else(|| bad(name, "the tensor attribute holds no tensor")),
        }
    }
}

/// How one element type is stored.
#[derive(Clone, Copy)]
enum Elem {
    F32,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    U16,
    U32,
    U64,
    Bool,
}

impl Elem {
    fn of(data_type: i32) -> Option<Elem> {
        Some(match data_type {
            1 => Elem::F32,
            2 => Elem::U8,
            3 => Elem::I8,
            4 => Elem::U16,
            5 => Elem::I16,
            6 => Elem::I32,
            7 => Elem::I64,
            9 => Elem::Bool,
            11 => Elem::F64,
            12 => Elem::U32,
            13 => Elem::U64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Elem::F64 | Elem::I64 | Elem::U64 => 8,
            Elem::F32 | Elem::I32 | Elem::U32 => 4,
            Elem::I16 | Elem::U16 => 2,
            Elem::I8 | Elem::U8 | Elem::Bool => 1,
        }
    }

    /// Decodes little-endian bytes (`bytes.len()` is a multiple of the size).
    fn decode_le(self, b: &[u8]) -> KResult<KData> {
        fn chunks<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
            b.chunks_exact(N).map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                a
            })
        }
        Ok(match self {
            Elem::F32 => KData::F32(chunks::<4>(b).map(f32::from_le_bytes).collect()),
            Elem::F64 => KData::F32(chunks::<8>(b).map(|c| f64::from_le_bytes(c) as f32).collect()),
            Elem::I64 => KData::I64(chunks::<8>(b).map(i64::from_le_bytes).collect()),
            Elem::I32 => KData::I64(chunks::<4>(b).map(|c| i32::from_le_bytes(c) as i64).collect()),
            Elem::U32 => KData::I64(chunks::<4>(b).map(|c| u32::from_le_bytes(c) as i64).collect()),
            Elem::I16 => KData::I64(chunks::<2>(b).map(|c| i16::from_le_bytes(c) as i64).collect()),
            Elem::U16 => KData::I64(chunks::<2>(b).map(|c| u16::from_le_bytes(c) as i64).collect()),
            Elem::I8 => KData::I64(b.iter().map(|x| *x as i8 as i64).collect()),
            Elem::U8 | Elem::Bool => KData::I64(b.iter().map(|x| *x as i64).collect()),
            Elem::U64 => KData::I64(
                chunks::<8>(b)
                    .map(|c| {
                        i64::try_from(u64::from_le_bytes(c)).map_err(|_| unsupported("uint64 value exceeds int64"))
                    })
                    .collect::<KResult<_>>()?,
            ),
        })
    }
}

/// Decodes tensors of one model: knows the model directory (for external data), the limits
/// and the missing-data policy, and counts zero-filled tensors.
pub(crate) struct TensorDecoder<'a> {
    pub base_dir: Option<&'a Path>,
    pub opts: &'a ImportOptions,
    /// Initializers whose external file was missing and were zero-filled.
    pub zero_filled: Vec<String>,
}

impl<'a> TensorDecoder<'a> {
    /// Decodes a tensor (`what` names it in errors).
    pub(crate) fn decode(&mut self, t: &TensorProto, what: &str) -> KResult<Konst> {
        let limit = self.opts.limits.max_tensor_elements;
        let shape = t
            .dims
            .iter()
            .map(|d| {
                usize::try_from(*d).map_err(|_| ImportErrorKind::Malformed {
                    message: format!("tensor `{what}` has negative dimension {d} in {:?}", t.dims),
                })
            })
            .collect::<KResult<Vec<usize>>>()?;
        let n = check_limit(&format!("tensor `{what}` (shape {shape:?})"), safe_count(&shape), limit)?;
        let elem = Elem::of(t.data_type).ok_or_else(|| ImportErrorKind::DType {
            tensor: what.to_string(),
            dtype: dtype_name(t.data_type),
            message: "clio imports float32 tensors (and integer constants for shape computations)".into(),
        })?;
        if t.segment.is_some() {
            return Err(unsupported(format!("tensor `{what}` is segmented, which clio does not import")));
        }
        let data = if t.data_location == Some(1) {
            match self.external(t, what, elem, n)? {
                Some(data) => data,
                None => match elem {
                    Elem::F32 | Elem::F64 => KData::F32(vec![0.0; n]),
                    _ => KData::I64(vec![0; n]),
                },
            }
        } else if !t.raw_data.is_empty() {
            let want = n.checked_mul(elem.size());
            if want != Some(t.raw_data.len()) {
                return Err(ImportErrorKind::Malformed {
                    message: format!(
                        "tensor `{what}` of shape {shape:?} ({}) needs {} bytes of raw data, has {}",
                        dtype_name(t.data_type),
                        want.map(|w| w.to_string()).unwrap_or_else(|| "too many".into()),
                        t.raw_data.len()
                    ),
                });
            }
            elem.decode_le(&t.raw_data)?
        } else {
            let data = match elem {
                Elem::F32 => KData::F32(t.float_data.clone()),
                Elem::F64 => KData::F32(t.double_data.iter().map(|x| *x as f32).collect()),
                Elem::I64 => KData::I64(t.int64_data.clone()),
                Elem::I32 | Elem::I16 | Elem::I8 | Elem::U8 | Elem::U16 | Elem::Bool => {
                    KData::I64(t.int32_data.iter().map(|x| *x as i64).collect())
                }
                Elem::U32 | Elem::U64 => KData::I64(
                    t.uint64_data
                        .iter()
                        .map(|x| i64::try_from(*x).map_err(|_| unsupported("uint64 value exceeds int64")))
                        .collect::<KResult<_>>()?,
                ),
            };
            if data.len() != n {
                return Err(ImportErrorKind::Malformed {
                    message: format!(
                        "tensor `{what}` of shape {shape:?} ({}) has {} elements, needs {n}",
                        dtype_name(t.data_type),
                        data.len()
                    ),
                });
            }
            data
        };
        Konst::new(shape, data)
    }

    /// Reads and decodes external data; `None` when the file is missing and the policy says zeros.
    fn external(&mut self, t: &TensorProto, what: &str, elem: Elem, n: usize) -> KResult<Option<KData>> {
        let entry = |k: &str| t.external_data.iter().find(|e| e.key == k).map(|e| e.value.as_str());
        let location = entry("location").unwrap_or("");
        let err = |file: PathBuf, message: String| ImportErrorKind::ExternalData {
            initializer: what.to_string(),
            file,
            message,
        };
        let rel = Path::new(location);
        if location.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
            return Err(err(
                rel.to_path_buf(),
                "the location must be a relative path inside the model's directory".to_string(),
            ));
        }
        let parse = |k: &str| -> KResult<Option<u64>> {
            match entry(k) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| err(rel.to_path_buf(), format!("`{k}` = `{v}` is not a byte count"))),
            }
        };
        let offset = parse("offset")?.unwrap_or(0);
        let length = parse("length")?;
        let zeros = self.opts.missing_external_data == MissingExternalData::Zeros;
        let Some(dir) = self.base_dir else {
            if zeros {
                self.zero_filled.push(what.to_string());
                return Ok(None);
            }
            return Err(err(
                rel.to_path_buf(),
                "the model was loaded from memory, so external data files cannot be located (import from the file \
                 path instead)"
                    .to_string(),
            ));
        };
        let path = dir.join(rel);
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && zeros => {
                self.zero_filled.push(what.to_string());
                return Ok(None);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(err(
                    path,
                    "the file does not exist (to analyse the structure without the weights, import with missing \
                     external data filled with zeros: --allow-missing-weights, MissingExternalData::Zeros)"
                        .to_string(),
                ))
            }
            Err(e) => return Err(err(path, format!("cannot open: {e}"))),
        };
        let size = file.metadata().map_err(|e| err(path.clone(), format!("cannot stat: {e}")))?.len();
        let need =
            (n as u64).checked_mul(elem.size() as u64).ok_or_else(|| err(path.clone(), "size overflows".into()))?;
        let length = length.unwrap_or(need);
        if length != need {
            return Err(err(
                path,
                format!("length {length} does not match the tensor's {n} elements of {} bytes", elem.size()),
            ));
        }
        if offset.checked_add(length).is_none_or(|end| end > size) {
            return Err(err(
                path,
                format!(
                    "bytes {offset}..{} lie beyond the end of the file ({size} bytes)",
                    offset.saturating_add(length)
                ),
            ));
        }
        let len = usize::try_from(length).map_err(|_| err(path.clone(), "length overflows".into()))?;
        let mut read = |buf: &mut [u8]| {
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_exact(buf))
                .map_err(|e| err(path.clone(), format!("cannot read: {e}")))
        };
        if matches!(elem, Elem::F32) && cfg!(target_endian = "little") {
            // Straight into the elements: no byte buffer to decode from (a 45 MB copy on ResNet-18).
            let mut v = vec![0f32; n];
            read(bytemuck::cast_slice_mut(&mut v))?;
            return Ok(Some(KData::F32(v)));
        }
        let mut buf = vec![0u8; len];
        read(&mut buf)?;
        Ok(Some(elem.decode_le(&buf)?))
    }
}
