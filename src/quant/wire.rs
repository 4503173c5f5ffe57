//! The wire format of the cut tensor: what the device sends over the radio.
//!
//! Channel-major, so that any prefix of channels is itself a valid message (progressive
//! slicing sends as many channels as the bandwidth allows, in order). Little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `CLQW` |
//! | 4 | 1 | version (1) |
//! | 5 | 1 | element type: 1 = i8, 2 = i16 |
//! | 6 | 1 | quantization: 0 = none, 1 = pow2, 2 = affine |
//! | 7 | 1 | rank `r` (1..=8) |
//! | 8 | 1 | channel axis (< r) |
//! | 9 | 3 | reserved, zero |
//! | 12 | 4r | full shape, u32 each |
//! | 12+4r | 4 | channels present `k` (1..=shape[axis]) |
//! | 16+4r | 0/4/8 | pow2: i32 fractional bits; affine: f32 scale, i32 zero point |
//! | ... | | payload: `k * (elements / shape[axis])` values; channel `c` (in order) holds that channel's elements in row-major order of the other axes |
//!
//! [`decode`] validates everything before allocating (the payload size follows from the header
//! and must match the message exactly, and is bounded by [`crate::Limits`]), and reports
//! problems as a typed [`WireError`], never a panic. [`truncate_channels`] cuts a message to
//! its first `k` channels without decoding it.

// Decodes bytes from the radio: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use crate::ir::{DType, QScheme, Quant, Tensor, TensorData};
use crate::Limits;

/// The four magic bytes.
pub const MAGIC: [u8; 4] = *b"CLQW";
/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Largest rank accepted.
pub const MAX_RANK: usize = 8;

/// Why a message could not be encoded or decoded.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The message ends before a field or the payload is complete.
    #[error("wire: truncated message: {needed} bytes needed, {got} present")]
    Truncated {
        /// Bytes required so far.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The message does not start with `CLQW`.
    #[error("wire: bad magic (not a clio tensor message)")]
    BadMagic,
    /// Another format version.
    #[error("wire: unsupported version {0} (this build reads version {VERSION})")]
    UnsupportedVersion(u8),
    /// An unknown element type code.
    #[error("wire: unknown element type code {0}")]
    BadDtype(u8),
    /// An unknown quantization code.
    #[error("wire: unknown quantization code {0}")]
    BadScheme(u8),
    /// A rank of 0 or above [`MAX_RANK`].
    #[error("wire: rank {0} is outside 1..={MAX_RANK}")]
    BadRank(u8),
    /// The channel axis is not below the rank.
    #[error("wire: channel axis {axis} is out of range for rank {rank}")]
    BadAxis {
        /// The axis.
        axis: u8,
        /// The rank.
        rank: u8,
    },
    /// Reserved bytes are not zero.
    #[error("wire: reserved header bytes are not zero")]
    Reserved,
    /// A dimension is zero.
    #[error("wire: shape {0:?} has a zero dimension")]
    ZeroDim(Vec<usize>),
    /// The tensor exceeds the element limit.
    #[error("wire: shape {shape:?} exceeds the limit of {limit} elements")]
    TooLarge {
        /// The shape.
        shape: Vec<usize>,
        /// The limit.
        limit: usize,
    },
    /// The channel count is 0 or above the channel dimension.
    #[error("wire: {present} channels present, the channel axis has {total}")]
    BadChannels {
        /// Channels in the message.
        present: usize,
        /// Channels of the full tensor.
        total: usize,
    },
    /// Invalid quantization parameters (non-positive scale, zero point out of range ...).
    #[error("wire: invalid quantization parameters: {0}")]
    BadQuant(String),
    /// Bytes after the payload.
    #[error("wire: {0} unexpected bytes after the payload")]
    TrailingBytes(usize),
    /// The tensor cannot be encoded (element type, per-channel quantization, shape ...).
    #[error("wire: cannot encode: {0}")]
    Encode(String),
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq)]
pub struct WireTensor {
    /// The full tensor's shape (before slicing).
    pub shape: Vec<usize>,
    /// The channel axis.
    pub axis: usize,
    /// Channels present (the first `channels` of `shape[axis]`).
    pub channels: usize,
    /// Per-tensor quantization, if any.
    pub quant: Option<Quant>,
    /// The received values in the usual row-major layout, with `shape[axis] = channels`.
    pub data: Tensor,
}

fn dtype_code(d: DType) -> Result<u8, WireError> {
    match d {
        DType::I8 => Ok(1),
        DType::I16 => Ok(2),
        d => Err(WireError::Encode(format!("element type {d} is not sent on the wire (i8 or i16 only)"))),
    }
}

/// Splits a shape at `axis` into (outer, dim, inner) element counts; `None` when `axis` is not
/// below the rank.
fn split(shape: &[usize], axis: usize) -> Option<(usize, usize, usize)> {
    let (outer, rest) = shape.split_at_checked(axis)?;
    let (dim, inner) = rest.split_first()?;
    Some((outer.iter().product(), *dim, inner.iter().product()))
}

/// The elements of the first `channels` channels of row-major `data` (shape split as
/// `outer x dim x inner`), channel-major: channel 0 of every outer index, then channel 1 ...
/// `None` when `data` does not hold `outer * dim * inner` elements or a count is zero.
fn channel_major<T>(
    data: &[T],
    (outer, dim, inner): (usize, usize, usize),
    channels: usize,
) -> Option<impl Iterator<Item = &T>> {
    if dim == 0 || inner == 0 || outer.checked_mul(dim)?.checked_mul(inner)? != data.len() {
        return None;
    }
    // Rows of `inner` elements; row `o * dim + c` is channel `c` of outer index `o`.
    Some((0..channels.min(dim)).flat_map(move |c| data.chunks_exact(inner).skip(c).step_by(dim).flatten()))
}

/// Encodes the first `channels` channels (along `axis`) of an i8/i16 tensor with its
/// per-tensor quantization.
pub fn encode(t: &Tensor, quant: Option<&Quant>, axis: usize, channels: usize) -> Result<Vec<u8>, WireError> {
    let shape = t.shape();
    let code = dtype_code(t.dtype())?;
    if shape.is_empty() || shape.len() > MAX_RANK {
        return Err(WireError::Encode(format!("rank {} is outside 1..={MAX_RANK}", shape.len())));
    }
    if axis >= shape.len() {
        return Err(WireError::Encode(format!("channel axis {axis} is out of range for rank {}", shape.len())));
    }
    if shape.contains(&0) || shape.iter().any(|d| *d > u32::MAX as usize) {
        return Err(WireError::Encode(format!("shape {shape:?} has a zero or too large dimension")));
    }
    let split = split(shape, axis)
        .ok_or_else(|| WireError::Encode(format!("channel axis {axis} is out of range for rank {}", shape.len())))?;
    let dim = split.1;
    if channels == 0 || channels > dim {
        return Err(WireError::BadChannels { present: channels, total: dim });
    }
    let mut out = Vec::with_capacity(24 + 4 * shape.len() + t.len() * t.dtype().size_bytes());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(code);
    let (scheme, qbytes): (u8, Vec<u8>) = match quant {
        None => (0, vec![]),
        Some(q) if q.axis.is_some() || q.len() != 1 => {
            return Err(WireError::Encode("only per-tensor quantization is sent on the wire".into()))
        }
        Some(Quant { scheme: QScheme::Pow2 { frac_bits }, .. }) => match frac_bits.as_slice() {
            [f] => (1, f.to_le_bytes().to_vec()),
            _ => return Err(WireError::Encode("only per-tensor quantization is sent on the wire".into())),
        },
        Some(Quant { scheme: QScheme::Affine { scales, zero_points }, .. }) => {
            match (scales.as_slice(), zero_points.as_slice()) {
                ([s], [z]) => {
                    let mut b = s.to_le_bytes().to_vec();
                    b.extend_from_slice(&z.to_le_bytes());
                    (2, b)
                }
                _ => return Err(WireError::Encode("only per-tensor quantization is sent on the wire".into())),
            }
        }
    };
    out.push(scheme);
    out.push(shape.len() as u8);
    out.push(axis as u8);
    out.extend_from_slice(&[0, 0, 0]);
    for d in shape {
        out.extend_from_slice(&(*d as u32).to_le_bytes());
    }
    out.extend_from_slice(&(channels as u32).to_le_bytes());
    out.extend_from_slice(&qbytes);
    let bad_len = || WireError::Encode(format!("tensor data do not match its shape {shape:?}"));
    match t.data() {
        TensorData::I8(v) => out.extend(channel_major(v, split, channels).ok_or_else(bad_len)?.map(|x| *x as u8)),
        TensorData::I16(v) => {
            for x in channel_major(v, split, channels).ok_or_else(bad_len)? {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        _ => unreachable!("dtype checked above"),
    }
    Ok(out)
}

/// A parsed header and where the payload starts.
/// A validated message header: everything before the payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// Element type (i8 or i16).
    pub elem: DType,
    /// The full tensor's shape (before slicing).
    pub shape: Vec<usize>,
    /// The channel axis.
    pub axis: usize,
    /// Channels the message says it holds.
    pub channels: usize,
    /// Per-tensor quantization, if any.
    pub quant: Option<Quant>,
    /// Byte offset of the channels-present field.
    pub channels_at: usize,
    /// Byte offset of the payload (the header's length).
    pub payload_at: usize,
    /// Elements per channel.
    pub per_channel: usize,
}

impl Header {
    /// Payload bytes of one channel.
    pub fn channel_bytes(&self) -> usize {
        self.per_channel * self.elem.size_bytes()
    }
}

/// Parses and validates the header at the start of `b` (the payload need not be present).
pub fn parse_header(b: &[u8], limits: &Limits) -> Result<Header, WireError> {
    header(b, limits)
}

/// A complete message from a header (as [`parse_header`] read it, from `header_bytes`) and the
/// payload of its first `channels` channels: the header's channels-present field is rewritten.
pub fn assemble(header_bytes: &[u8], h: &Header, channels: usize, payload: &[u8]) -> Result<Vec<u8>, WireError> {
    let total = *h.shape.get(h.axis).ok_or(WireError::BadAxis {
        axis: u8::try_from(h.axis).unwrap_or(u8::MAX),
        rank: u8::try_from(h.shape.len()).unwrap_or(u8::MAX),
    })?;
    if channels == 0 || channels > total {
        return Err(WireError::BadChannels { present: channels, total });
    }
    let want = channels * h.channel_bytes();
    let Some(payload) = payload.get(..want) else {
        return Err(WireError::Truncated { needed: h.payload_at + want, got: h.payload_at + payload.len() });
    };
    let head = take(header_bytes, 0, h.payload_at)?;
    let mut out = Vec::with_capacity(h.payload_at + want);
    out.extend_from_slice(head);
    set_channels(&mut out, h.channels_at, channels)?;
    out.extend_from_slice(payload);
    Ok(out)
}

/// Rewrites the channels-present field at `at` of a message being built.
fn set_channels(out: &mut [u8], at: usize, channels: usize) -> Result<(), WireError> {
    let got = out.len();
    let field = at
        .checked_add(4)
        .and_then(|end| out.get_mut(at..end))
        .ok_or(WireError::Truncated { needed: at.saturating_add(4), got })?;
    field.copy_from_slice(&(channels as u32).to_le_bytes());
    Ok(())
}

fn take(b: &[u8], at: usize, n: usize) -> Result<&[u8], WireError> {
    let end = at.checked_add(n).ok_or(WireError::Truncated { needed: usize::MAX, got: b.len() })?;
    b.get(at..end).ok_or(WireError::Truncated { needed: end, got: b.len() })
}

/// The `N` bytes at `at`.
fn array_at<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N], WireError> {
    take(b, at, N)?
        .first_chunk::<N>()
        .copied()
        .ok_or(WireError::Truncated { needed: at.saturating_add(N), got: b.len() })
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, WireError> {
    array_at::<4>(b, at).map(u32::from_le_bytes)
}

fn header(b: &[u8], limits: &Limits) -> Result<Header, WireError> {
    let [m0, m1, m2, m3, version, elem, scheme, rank, axis, r0, r1, r2] = array_at::<12>(b, 0)?;
    if [m0, m1, m2, m3] != MAGIC {
        return Err(WireError::BadMagic);
    }
    if version != VERSION {
        return Err(WireError::UnsupportedVersion(version));
    }
    let elem = match elem {
        1 => DType::I8,
        2 => DType::I16,
        c => return Err(WireError::BadDtype(c)),
    };
    if scheme > 2 {
        return Err(WireError::BadScheme(scheme));
    }
    if rank == 0 || rank as usize > MAX_RANK {
        return Err(WireError::BadRank(rank));
    }
    if axis >= rank {
        return Err(WireError::BadAxis { axis, rank });
    }
    if [r0, r1, r2] != [0, 0, 0] {
        return Err(WireError::Reserved);
    }
    let mut shape = Vec::with_capacity(rank as usize);
    for i in 0..rank as usize {
        shape.push(u32_at(b, 12 + 4 * i)? as usize);
    }
    if shape.contains(&0) {
        return Err(WireError::ZeroDim(shape));
    }
    let total = shape
        .iter()
        .try_fold(1usize, |a, d| a.checked_mul(*d))
        .filter(|n| *n <= limits.max_tensor_elements)
        .ok_or(WireError::TooLarge { shape: shape.clone(), limit: limits.max_tensor_elements })?;
    let channels_at = 12 + 4 * rank as usize;
    let channels = u32_at(b, channels_at)? as usize;
    let dim = *shape.get(axis as usize).ok_or(WireError::BadAxis { axis, rank })?;
    let axis = axis as usize;
    if channels == 0 || channels > dim {
        return Err(WireError::BadChannels { present: channels, total: dim });
    }
    let mut at = channels_at + 4;
    let range = elem.int_range().unwrap_or((0, 0));
    let quant = match scheme {
        0 => None,
        1 => {
            let f = u32_at(b, at)? as i32;
            at += 4;
            let q = Quant::pow2(f);
            q.check(&shape, range).map_err(WireError::BadQuant)?;
            Some(q)
        }
        _ => {
            let s = f32::from_bits(u32_at(b, at)?);
            let z = u32_at(b, at + 4)? as i32;
            at += 8;
            let q = Quant::affine(s, z);
            q.check(&shape, range).map_err(WireError::BadQuant)?;
            Some(q)
        }
    };
    Ok(Header { elem, shape, axis, channels, quant, channels_at, payload_at: at, per_channel: total / dim })
}

/// Decodes a message (see the module docs for what is checked).
pub fn decode(b: &[u8], limits: &Limits) -> Result<WireTensor, WireError> {
    let h = header(b, limits)?;
    let size = h.elem.size_bytes();
    let payload = h.channels * h.per_channel * size;
    let body = take(b, h.payload_at, payload)?;
    let extra = b.len() - h.payload_at - payload;
    if extra != 0 {
        return Err(WireError::TrailingBytes(extra));
    }
    let bad_axis = || WireError::BadAxis {
        axis: u8::try_from(h.axis).unwrap_or(u8::MAX),
        rank: u8::try_from(h.shape.len()).unwrap_or(u8::MAX),
    };
    let (outer, _, inner) = split(&h.shape, h.axis).ok_or_else(bad_axis)?;
    let k = h.channels;
    let mut out_shape = h.shape.clone();
    *out_shape.get_mut(h.axis).ok_or_else(bad_axis)? = k;
    // Channel-major payload -> row-major with k channels: the payload is `k * outer` rows of
    // `inner` elements, row `c * outer + o` holding channel `c` of outer index `o`; the output
    // takes, for each `o`, rows `o, outer + o, 2 * outer + o ...` (every `outer`-th row).
    let n = k * h.per_channel;
    let row = inner * size;
    if row == 0 || outer == 0 {
        return Err(WireError::ZeroDim(h.shape));
    }
    let rows_of = |o: usize| body.chunks_exact(row).skip(o).step_by(outer);
    let data = match h.elem {
        DType::I8 => {
            let mut v = Vec::with_capacity(n);
            for o in 0..outer {
                v.extend(rows_of(o).flatten().map(|x| *x as i8));
            }
            TensorData::I8(v)
        }
        _ => {
            let mut v = Vec::with_capacity(n);
            for o in 0..outer {
                for r in rows_of(o) {
                    v.extend(r.chunks_exact(2).filter_map(|p| p.first_chunk::<2>()).map(|p| i16::from_le_bytes(*p)));
                }
            }
            TensorData::I16(v)
        }
    };
    let data = Tensor::new(out_shape, data).map_err(|e| WireError::Encode(e.to_string()))?;
    Ok(WireTensor { shape: h.shape, axis: h.axis, channels: k, quant: h.quant, data })
}

/// Cuts a valid message to its first `channels` channels (the bytes a sender stops after,
/// with the header's channel count rewritten). Fails on an invalid message or a channel count
/// of 0 or above the channels present.
pub fn truncate_channels(b: &[u8], channels: usize, limits: &Limits) -> Result<Vec<u8>, WireError> {
    let h = header(b, limits)?;
    if channels == 0 || channels > h.channels {
        return Err(WireError::BadChannels { present: channels, total: h.channels });
    }
    let end = h.payload_at + channels * h.per_channel * h.elem.size_bytes();
    let mut out = take(b, 0, end)?.to_vec();
    set_channels(&mut out, h.channels_at, channels)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_prefix() {
        let t = Tensor::new(vec![2, 3, 2], TensorData::I8((0..12).map(|x| x as i8 - 6).collect())).unwrap();
        let q = Quant::affine(0.5, -3);
        let b = encode(&t, Some(&q), 1, 3).unwrap();
        let d = decode(&b, &Limits::default()).unwrap();
        assert_eq!(d.data, t);
        assert_eq!(d.quant, Some(q.clone()));
        let p = truncate_channels(&b, 1, &Limits::default()).unwrap();
        let d1 = decode(&p, &Limits::default()).unwrap();
        assert_eq!(d1.data.shape(), &[2, 1, 2]);
        assert_eq!(d1.data.data(), &TensorData::I8(vec![-6, -5, 0, 1]));
        assert_eq!(p.len(), b.len() - 8);
        let e = decode(b.get(..b.len() - 1).unwrap(), &Limits::default()).unwrap_err();
        assert!(matches!(e, WireError::Truncated { .. }), "{e}");
    }
}
