//! The device <-> cloud protocol (version 1): length-prefixed frames over one TCP connection.
//!
//! Every frame is `u32 length` (little-endian; the bytes that follow, type byte included,
//! `1..=max_frame`) then a `u8` type and its body. All integers are little-endian.
//!
//! Device -> cloud, one request at a time per connection:
//!
//! | type | frame | body |
//! |---|---|---|
//! | `0x01` | [`Frame::Begin`] | `u32 request, u32 cut, u32 budget_us`, then the cut tensor's wire-format header (as the device module's `invoke` wrote it, no payload) |
//! | `0x02` | [`Frame::Channels`] | `u32 request, u32 first, u32 count`, then `count` channels of payload (channel-major, as in the wire format) |
//! | `0x03` | [`Frame::Done`] | `u32 request`: nothing more will be sent for this request |
//!
//! Cloud -> device:
//!
//! | type | frame | body |
//! |---|---|---|
//! | `0x81` | [`Frame::Result`] | `u32 request, u32 cut, u32 received, u32 used, i32 class, u8 reason, u32 wait_us, u32 compute_us, u32 n`, then `n` f32 scores |
//! | `0x82` | [`Frame::Error`] | `u32 request, u16 code`, then a UTF-8 message; the server closes the connection after it |
//!
//! A request: `Begin` opens it (the server starts its deadline clock, `budget_us`, when the frame
//! arrives); `Channels` frames follow in channel order (`first` = channels received so far);
//! `Done` or the deadline closes it, and the server runs the cloud head for the largest slice
//! size not above the channels received and answers with `Result` (`used` = 0 and `class` = -1
//! when not even the smallest slice arrived: a deadline miss). Channels of a request already
//! answered are late, not wrong: the server drops them.
//!
//! [`FrameDecoder`] parses frames incrementally from any byte stream, so a reader with a
//! timeout never loses a partial frame; [`Frame::encode`] writes them.

// Decodes bytes from the network: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use std::fmt;

/// Protocol version (carried by nothing yet: the frame types are the version-1 set).
pub const VERSION: u32 = 1;
/// Bytes of the length prefix.
pub const LENGTH_BYTES: usize = 4;
/// Default largest frame (type byte + body) a peer accepts: 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// Frame type codes.
mod code {
    pub const BEGIN: u8 = 0x01;
    pub const CHANNELS: u8 = 0x02;
    pub const DONE: u8 = 0x03;
    pub const RESULT: u8 = 0x81;
    pub const ERROR: u8 = 0x82;
}

/// Why a request was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The device said `Done`.
    Done,
    /// The deadline (`budget_us` after `Begin` arrived) passed first.
    Deadline,
}

/// Error codes of [`Frame::Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u16)]
pub enum ErrorCode {
    /// A frame could not be parsed (bad length, type or body).
    Malformed = 1,
    /// The connection ended, or stalled past its timeout, in the middle of a frame.
    Truncated = 2,
    /// `Begin` named a cut the server does not serve.
    UnknownCut = 3,
    /// The wire-format header or payload is invalid, or does not match the served cut.
    BadTensor = 4,
    /// A frame out of order: channels not following on, a second `Begin`, an unknown request.
    OutOfOrder = 5,
    /// The server is at its connection limit.
    Busy = 6,
    /// No complete frame within the idle timeout.
    Timeout = 7,
    /// The server is shutting down.
    ShuttingDown = 8,
    /// The cloud head failed (a server-side problem).
    Internal = 9,
}

impl ErrorCode {
    fn from_u16(v: u16) -> Option<ErrorCode> {
        use ErrorCode::*;
        [Malformed, Truncated, UnknownCut, BadTensor, OutOfOrder, Busy, Timeout, ShuttingDown, Internal]
            .into_iter()
            .find(|c| *c as u16 == v)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        f.write_str(&s)
    }
}

/// The cloud's answer to one request.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    /// The request it answers.
    pub request: u32,
    /// The cut the request named.
    pub cut: u32,
    /// Channels that had arrived when the request closed.
    pub received: u32,
    /// The slice size whose head ran (0: none fitted, a deadline miss).
    pub used: u32,
    /// Arg-max class (-1 when no head ran).
    pub class: i32,
    /// What closed the request.
    pub reason: Reason,
    /// Microseconds from `Begin` arriving to the head starting.
    pub wait_us: u32,
    /// Microseconds the head took.
    pub compute_us: u32,
    /// The head's output (empty when no head ran).
    pub scores: Vec<f32>,
}

/// One protocol frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// Opens a request: the cut, the radio budget and the cut tensor's wire header.
    Begin {
        /// Request id (chosen by the device, unique per connection).
        request: u32,
        /// Cut point index `k` (as `clio cuts` and the plan number them).
        cut: u32,
        /// Microseconds the server waits for channels after this frame arrives.
        budget_us: u32,
        /// The wire-format header, without payload.
        header: Vec<u8>,
    },
    /// The next channels of the cut tensor.
    Channels {
        /// Request id.
        request: u32,
        /// Index of the first channel in this frame.
        first: u32,
        /// Channels in this frame.
        count: u32,
        /// `count` channels of payload.
        payload: Vec<u8>,
    },
    /// The device has sent all it will send for the request.
    Done {
        /// Request id.
        request: u32,
    },
    /// The cloud's answer.
    Result(Answer),
    /// A protocol error; the sender closes the connection after it.
    Error {
        /// The request concerned (0 if none).
        request: u32,
        /// What went wrong.
        code: ErrorCode,
        /// A one-line explanation.
        message: String,
    },
}

/// Why bytes are not a valid frame.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The length prefix is zero or above the limit.
    #[error("frame length {length} is outside 1..={max}")]
    BadLength {
        /// The announced length.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// An unknown frame type.
    #[error("unknown frame type 0x{0:02x}")]
    UnknownType(u8),
    /// The body is shorter than its fields.
    #[error("{frame} frame body is {got} bytes, {needed} needed")]
    ShortBody {
        /// Frame name.
        frame: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The body is longer than its fields.
    #[error("{frame} frame has {extra} trailing bytes")]
    TrailingBytes {
        /// Frame name.
        frame: &'static str,
        /// Extra bytes.
        extra: usize,
    },
    /// A field has an invalid value.
    #[error("{frame} frame: {message}")]
    BadField {
        /// Frame name.
        frame: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl ProtocolError {
    /// The [`ErrorCode`] a server replies with for this error.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Malformed
    }
}

/// Little-endian field reader over a frame body.
struct Body<'a> {
    frame: &'static str,
    b: &'a [u8],
    at: usize,
}

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        let end = self.at.saturating_add(n);
        let s = self.b.get(self.at..end).ok_or(ProtocolError::ShortBody {
            frame: self.frame,
            needed: end,
            got: self.b.len(),
        })?;
        self.at = end;
        Ok(s)
    }
    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let (frame, needed, got) = (self.frame, self.at.saturating_add(N), self.b.len());
        self.take(N)?.first_chunk::<N>().copied().ok_or(ProtocolError::ShortBody { frame, needed, got })
    }
    fn u32(&mut self) -> Result<u32, ProtocolError> {
        self.array::<4>().map(u32::from_le_bytes)
    }
    fn u16(&mut self) -> Result<u16, ProtocolError> {
        self.array::<2>().map(u16::from_le_bytes)
    }
    fn u8(&mut self) -> Result<u8, ProtocolError> {
        self.array::<1>().map(|[b]| b)
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = self.b.get(self.at..).unwrap_or_default();
        self.at = self.b.len();
        s
    }
    fn end(self) -> Result<(), ProtocolError> {
        match self.b.len() - self.at.min(self.b.len()) {
            0 => Ok(()),
            extra => Err(ProtocolError::TrailingBytes { frame: self.frame, extra }),
        }
    }
}

impl Frame {
    /// The frame's name in messages and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Begin { .. } => "begin",
            Frame::Channels { .. } => "channels",
            Frame::Done { .. } => "done",
            Frame::Result(_) => "result",
            Frame::Error { .. } => "error",
        }
    }

    /// The frame as bytes, length prefix included.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; LENGTH_BYTES];
        let put = |b: &mut Vec<u8>, v: u32| b.extend_from_slice(&v.to_le_bytes());
        match self {
            Frame::Begin { request, cut, budget_us, header } => {
                b.push(code::BEGIN);
                put(&mut b, *request);
                put(&mut b, *cut);
                put(&mut b, *budget_us);
                b.extend_from_slice(header);
            }
            Frame::Channels { request, first, count, payload } => {
                b.push(code::CHANNELS);
                put(&mut b, *request);
                put(&mut b, *first);
                put(&mut b, *count);
                b.extend_from_slice(payload);
            }
            Frame::Done { request } => {
                b.push(code::DONE);
                put(&mut b, *request);
            }
            Frame::Result(a) => {
                b.push(code::RESULT);
                for v in [a.request, a.cut, a.received, a.used, a.class as u32] {
                    put(&mut b, v);
                }
                b.push(match a.reason {
                    Reason::Done => 0,
                    Reason::Deadline => 1,
                });
                for v in [a.wait_us, a.compute_us, a.scores.len() as u32] {
                    put(&mut b, v);
                }
                for s in &a.scores {
                    b.extend_from_slice(&s.to_le_bytes());
                }
            }
            Frame::Error { request, code: c, message } => {
                b.push(code::ERROR);
                put(&mut b, *request);
                b.extend_from_slice(&(*c as u16).to_le_bytes());
                b.extend_from_slice(message.as_bytes());
            }
        }
        let len = (b.len() - LENGTH_BYTES) as u32;
        if let Some(prefix) = b.first_chunk_mut::<LENGTH_BYTES>() {
            *prefix = len.to_le_bytes();
        }
        b
    }

    /// Parses one frame from its type byte and body (the bytes after the length prefix).
    pub fn decode(frame: &[u8]) -> Result<Frame, ProtocolError> {
        let (&ty, body) = frame.split_first().ok_or(ProtocolError::BadLength { length: 0, max: 0 })?;
        let name = match ty {
            code::BEGIN => "begin",
            code::CHANNELS => "channels",
            code::DONE => "done",
            code::RESULT => "result",
            code::ERROR => "error",
            t => return Err(ProtocolError::UnknownType(t)),
        };
        let mut r = Body { frame: name, b: body, at: 0 };
        let f = match ty {
            code::BEGIN => {
                let (request, cut, budget_us) = (r.u32()?, r.u32()?, r.u32()?);
                let header = r.rest().to_vec();
                if header.is_empty() {
                    return Err(ProtocolError::BadField { frame: name, message: "no wire header".into() });
                }
                Frame::Begin { request, cut, budget_us, header }
            }
            code::CHANNELS => {
                let (request, first, count) = (r.u32()?, r.u32()?, r.u32()?);
                let payload = r.rest().to_vec();
                if count == 0 || payload.is_empty() {
                    return Err(ProtocolError::BadField { frame: name, message: "no channels".into() });
                }
                if payload.len() % count as usize != 0 {
                    return Err(ProtocolError::BadField {
                        frame: name,
                        message: format!("{} payload bytes are not {count} whole channels", payload.len()),
                    });
                }
                Frame::Channels { request, first, count, payload }
            }
            code::DONE => Frame::Done { request: r.u32()? },
            code::RESULT => {
                let (request, cut, received, used, class) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()? as i32);
                let reason = match r.u8()? {
                    0 => Reason::Done,
                    1 => Reason::Deadline,
                    v => return Err(ProtocolError::BadField { frame: name, message: format!("reason {v}") }),
                };
                let (wait_us, compute_us, n) = (r.u32()?, r.u32()?, r.u32()? as usize);
                let raw = r.take(
                    n.checked_mul(4).ok_or(ProtocolError::BadField { frame: name, message: format!("{n} scores") })?,
                )?;
                let scores =
                    raw.chunks_exact(4).filter_map(|c| c.first_chunk::<4>()).map(|c| f32::from_le_bytes(*c)).collect();
                Frame::Result(Answer { request, cut, received, used, class, reason, wait_us, compute_us, scores })
            }
            _ => {
                let request = r.u32()?;
                let c = r.u16()?;
                let code = ErrorCode::from_u16(c)
                    .ok_or(ProtocolError::BadField { frame: name, message: format!("error code {c}") })?;
                let message = String::from_utf8_lossy(r.rest()).into_owned();
                Frame::Error { request, code, message }
            }
        };
        r.end()?;
        Ok(f)
    }
}

/// Incremental frame parser: feed it bytes as they arrive, take whole frames out.
///
/// It holds at most one frame (`max_frame` + 4 bytes) plus what one read delivered, so memory per
/// connection is bounded by the limit, whatever the peer sends.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame: usize,
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder accepting frames up to `max_frame` bytes (type byte + body).
    pub fn new(max_frame: usize) -> FrameDecoder {
        FrameDecoder { max_frame, buf: Vec::new() }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that are not yet a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed. A bad length is reported as
    /// soon as the prefix is in, before the body is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        let Some((prefix, rest)) = self.buf.split_first_chunk::<LENGTH_BYTES>() else {
            return Ok(None);
        };
        let len = u32::from_le_bytes(*prefix) as usize;
        if len == 0 || len > self.max_frame {
            return Err(ProtocolError::BadLength { length: len, max: self.max_frame });
        }
        let Some(body) = rest.get(..len) else {
            return Ok(None);
        };
        let frame = Frame::decode(body);
        self.buf.drain(..LENGTH_BYTES + len);
        frame.map(Some)
    }
}

/// Reads one whole frame from a blocking reader (a client waiting for its answer).
pub fn read_frame(r: &mut impl std::io::Read, max_frame: usize) -> Result<Frame, ReadError> {
    let mut len = [0u8; LENGTH_BYTES];
    r.read_exact(&mut len).map_err(ReadError::Io)?;
    let n = u32::from_le_bytes(len) as usize;
    if n == 0 || n > max_frame {
        return Err(ReadError::Protocol(ProtocolError::BadLength { length: n, max: max_frame }));
    }
    let mut body = vec![0u8; n];
    r.read_exact(&mut body).map_err(ReadError::Io)?;
    Frame::decode(&body).map_err(ReadError::Protocol)
}

/// Why [`read_frame`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The stream failed or ended.
    #[error("connection: {0}")]
    Io(std::io::Error),
    /// The bytes are not a frame.
    #[error("protocol: {0}")]
    Protocol(ProtocolError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Vec<Frame> {
        vec![
            Frame::Begin { request: 7, cut: 3, budget_us: 90_000, header: b"CLQW-header".to_vec() },
            Frame::Channels { request: 7, first: 4, count: 2, payload: vec![1, 2, 3, 4, 5, 6] },
            Frame::Done { request: 7 },
            Frame::Result(Answer {
                request: 7,
                cut: 3,
                received: 6,
                used: 4,
                class: 2,
                reason: Reason::Deadline,
                wait_us: 100,
                compute_us: 2000,
                scores: vec![0.5, -1.25, 3.0],
            }),
            Frame::Error { request: 0, code: ErrorCode::Busy, message: "at the limit of 4 connections".into() },
        ]
    }

    #[test]
    fn every_frame_round_trips_through_the_incremental_decoder_byte_by_byte() {
        let bytes: Vec<u8> = frames().iter().flat_map(Frame::encode).collect();
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let mut got = vec![];
        for b in bytes {
            d.push(&[b]);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames());
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn bad_lengths_types_and_bodies_are_typed_errors() {
        let mut d = FrameDecoder::new(16);
        d.push(&1000u32.to_le_bytes());
        assert_eq!(d.next_frame(), Err(ProtocolError::BadLength { length: 1000, max: 16 }));
        assert_eq!(Frame::decode(&[0x55]), Err(ProtocolError::UnknownType(0x55)));
        assert!(matches!(Frame::decode(&[0x03, 1, 2]), Err(ProtocolError::ShortBody { frame: "done", .. })));
        assert!(matches!(Frame::decode(&[0x03, 1, 2, 3, 4, 5]), Err(ProtocolError::TrailingBytes { extra: 1, .. })));
        // Three payload bytes cannot be two whole channels.
        let mut ch = vec![0x02];
        for v in [1u32, 0, 2] {
            ch.extend_from_slice(&v.to_le_bytes());
        }
        ch.extend_from_slice(&[9, 9, 9]);
        assert!(matches!(Frame::decode(&ch), Err(ProtocolError::BadField { frame: "channels", .. })));
        let mut e = vec![0x82, 0, 0, 0, 0];
        e.extend_from_slice(&999u16.to_le_bytes());
        assert!(matches!(Frame::decode(&e), Err(ProtocolError::BadField { frame: "error", .. })));
    }

    #[test]
    fn error_codes_print_in_kebab_case() {
        assert_eq!(ErrorCode::UnknownCut.to_string(), "unknown-cut");
        assert_eq!(ErrorCode::from_u16(ErrorCode::ShuttingDown as u16), Some(ErrorCode::ShuttingDown));
    }
}
