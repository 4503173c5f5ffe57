//! A minimal blocking client of the cloud server: send one request (the `Begin` header, the
//! channels in groups, `Done`) and read its answer. Generic over any stream, so a device program
//! can put a link shaper between it and the socket.

use crate::protocol::{read_frame, Answer, ErrorCode, Frame, ReadError, DEFAULT_MAX_FRAME};
use clio::quant::wire::{self, WireError};
use std::io::{Read, Write};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The wire message to send is invalid.
    #[error("{0}")]
    Wire(#[from] WireError),
    /// Writing to the server failed.
    #[error("send: {0}")]
    Send(std::io::Error),
    /// Reading the answer failed.
    #[error("{0}")]
    Read(#[from] ReadError),
    /// The server replied with an error frame (and closes the connection).
    #[error("server error {code} (request {request}): {message}")]
    Server {
        /// The request it concerns (0: none).
        request: u32,
        /// The error code.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The server sent something other than this request's answer.
    #[error("unexpected {0} frame from the server")]
    Unexpected(&'static str),
}

/// Sends `Begin` (the message's wire header), the message's channels in frames of
/// `group_channels` channels (the last one may be shorter), and `Done` if `done`.
/// `wire_message` is a wire-format message holding the channels to send (any prefix).
pub fn send_request(
    stream: &mut impl Write,
    request: u32,
    cut: u32,
    budget_us: u32,
    wire_message: &[u8],
    group_channels: usize,
    done: bool,
) -> Result<(), ClientError> {
    let h = wire::parse_header(wire_message, &clio::Limits::default())?;
    let header = wire_message
        .get(..h.payload_at)
        .ok_or(WireError::Truncated { needed: h.payload_at, got: wire_message.len() })?;
    send(stream, &Frame::Begin { request, cut, budget_us, header: header.to_vec() })?;
    let cb = h.channel_bytes();
    let group = group_channels.max(1);
    let mut first = 0;
    while first < h.channels {
        let count = group.min(h.channels - first);
        let at = h.payload_at + first * cb;
        let payload = wire_message
            .get(at..at + count * cb)
            .ok_or(WireError::Truncated { needed: at + count * cb, got: wire_message.len() })?;
        send(
            stream,
            &Frame::Channels { request, first: first as u32, count: count as u32, payload: payload.to_vec() },
        )?;
        first += count;
    }
    if done {
        send(stream, &Frame::Done { request })?;
    }
    Ok(())
}

/// Reads frames until the `Result` of `request` (an `Error` frame is [`ClientError::Server`]).
pub fn read_answer(stream: &mut impl Read, request: u32) -> Result<Answer, ClientError> {
    loop {
        match read_frame(stream, DEFAULT_MAX_FRAME)? {
            Frame::Result(a) if a.request == request => return Ok(a),
            // An answer to an earlier request (e.g. one answered at its deadline) is skipped.
            Frame::Result(_) => {}
            Frame::Error { request, code, message } => return Err(ClientError::Server { request, code, message }),
            f => return Err(ClientError::Unexpected(f.name())),
        }
    }
}

/// One whole request: [`send_request`] with `Done`, then [`read_answer`].
pub fn request<S: Read + Write>(
    stream: &mut S,
    request: u32,
    cut: u32,
    budget_us: u32,
    wire_message: &[u8],
    group_channels: usize,
) -> Result<Answer, ClientError> {
    send_request(stream, request, cut, budget_us, wire_message, group_channels, true)?;
    read_answer(stream, request)
}

/// Writes one frame.
pub fn send(stream: &mut impl Write, frame: &Frame) -> Result<(), ClientError> {
    stream.write_all(&frame.encode()).map_err(ClientError::Send)
}
