//! One device connection: a read loop with timeouts around a [`FrameDecoder`], one request at
//! a time.
//!
//! * `Begin` checks the cut and the wire header and starts the request's deadline clock;
//! * `Channels` must follow on (`first` = channels received so far), stay within the tensor and
//!   carry exactly `count` channels; they are buffered (at most the full cut tensor);
//! * `Done`, or the deadline, closes the request: the widest head the received channels cover
//!   runs and a `Result` goes back;
//! * `Channels` / `Done` of the request answered last are late: dropped and counted;
//! * anything else (a bad frame, out of order, an unknown cut, a mismatched tensor, no frame
//!   within the idle timeout, a partial frame stalled past the stall timeout, the peer closing in
//!   the middle of a frame) gets an `Error` reply and the connection closes.
//!
//! On shutdown, an idle connection gets `ShuttingDown`; an open request is still answered if
//! its deadline or `Done` comes within the grace period.

use super::cloud::{micros, RunError};
use super::Shared;
use crate::protocol::{Answer, ErrorCode, Frame, FrameDecoder, Reason};
use clio::quant::wire::Header;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Longest the read loop sleeps before looking at the clocks and the shutdown flag again.
const TICK: Duration = Duration::from_millis(50);
/// Below this much time to the next clock, the socket is polled instead of read with a timeout.
const COARSE: Duration = Duration::from_millis(12);
/// What a socket timeout may oversleep: Linux counts it in scheduler ticks, rounded up, plus one
/// (measured at 250 Hz: a 1 ms timeout returns after 6 ms, 5 ms after 12, 46 ms after 52).
const TICK_SLACK: Duration = Duration::from_millis(10);
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// After an error reply: how long, and how many bytes, the peer's pending data is read and
/// dropped so that closing does not reset the connection before the reply is delivered.
const LINGER: Duration = Duration::from_millis(300);
const LINGER_BYTES: usize = 1 << 20;

/// The request being received.
struct Open {
    request: u32,
    cut: u32,
    header_bytes: Vec<u8>,
    header: Header,
    total: usize,
    received: usize,
    payload: Vec<u8>,
    begun: Instant,
    deadline: Instant,
}

/// Why the connection closes.
enum Close {
    /// The peer closed cleanly between frames.
    Eof,
    /// The socket failed (reset, write timeout ...).
    Broken,
    /// Reply `Error` with this code and message, then close.
    Reply(u32, ErrorCode, String),
}

/// Serves one connection until it closes.
pub(crate) fn serve(mut stream: TcpStream, sh: &Shared, id: u64) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(sh.config.write_timeout));
    let close = Conn { sh, id, open: None, answered: None }.run(&mut stream);
    match close {
        Close::Eof | Close::Broken => {}
        Close::Reply(request, code, message) => {
            sh.log(id, &format!("error {code} (request {request}): {message}"));
            reply_error(&mut stream, sh, request, code, &message);
        }
    }
    sh.log(id, "closed");
}

/// Sends an `Error` frame, then closes gracefully: shut the write side, drop what the peer
/// still sends for a short while.
pub(crate) fn reply_error(stream: &mut TcpStream, sh: &Shared, request: u32, code: ErrorCode, message: &str) {
    sh.stats.error(code);
    let frame = Frame::Error { request, code, message: message.to_string() };
    if stream.write_all(&frame.encode()).is_err() {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    let end = Instant::now() + LINGER;
    let mut buf = [0u8; 4096];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

struct Conn<'a> {
    sh: &'a Shared,
    id: u64,
    open: Option<Open>,
    /// The request answered last (its late frames are dropped).
    answered: Option<u32>,
}

impl Conn<'_> {
    fn run(&mut self, stream: &mut TcpStream) -> Close {
        let cfg = &self.sh.config;
        let mut dec = FrameDecoder::new(cfg.max_frame);
        let mut buf = vec![0u8; READ_CHUNK];
        let mut last_frame = Instant::now();
        let mut partial_since: Option<Instant> = None;
        let mut shutdown_at: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if self.open.as_ref().is_some_and(|o| now >= o.deadline) {
                if let Err(c) = self.answer(stream, Reason::Deadline) {
                    return c;
                }
                last_frame = Instant::now();
            }
            if shutdown_at.is_none() && self.sh.shutdown.load(Ordering::Relaxed) {
                shutdown_at = Some(now);
            }
            if let Some(t) = shutdown_at {
                match &self.open {
                    None => return Close::Reply(0, ErrorCode::ShuttingDown, "the server is shutting down".into()),
                    Some(o) if now >= t + cfg.shutdown_grace => {
                        return Close::Reply(
                            o.request,
                            ErrorCode::ShuttingDown,
                            "the server is shutting down (grace period over)".into(),
                        )
                    }
                    Some(_) => {}
                }
            }
            if let Some(p) = partial_since {
                if now >= p + cfg.stall_timeout {
                    self.sh.stats.stalled.fetch_add(1, Ordering::Relaxed);
                    return Close::Reply(
                        self.request_id(),
                        ErrorCode::Truncated,
                        format!(
                            "a frame stalled: {} bytes of it arrived, nothing more within {:.1} s",
                            dec.pending(),
                            cfg.stall_timeout.as_secs_f64()
                        ),
                    );
                }
            }
            if self.open.is_none() && partial_since.is_none() && now >= last_frame + cfg.idle_timeout {
                return Close::Reply(
                    0,
                    ErrorCode::Timeout,
                    format!("no frame within the idle timeout of {:.1} s", cfg.idle_timeout.as_secs_f64()),
                );
            }
            // Sleep until the next clock (deadline, stall, idle) or a tick.
            let mut wake = now + TICK;
            if let Some(o) = &self.open {
                wake = wake.min(o.deadline);
            } else if partial_since.is_none() {
                wake = wake.min(last_frame + cfg.idle_timeout);
            }
            if let Some(p) = partial_since {
                wake = wake.min(p + cfg.stall_timeout);
            }
            let read = match wake.saturating_duration_since(now) {
                // Socket timeouts oversleep (TICK_SLACK): wait on the socket until shortly before
                // the clock, then poll it every millisecond.
                wait if wait >= COARSE => {
                    if stream.set_read_timeout(Some(wait - TICK_SLACK)).is_err() {
                        return Close::Broken;
                    }
                    stream.read(&mut buf)
                }
                wait => {
                    if stream.set_nonblocking(true).is_err() {
                        return Close::Broken;
                    }
                    let r = stream.read(&mut buf);
                    if stream.set_nonblocking(false).is_err() {
                        return Close::Broken;
                    }
                    if matches!(&r, Err(e) if e.kind() == ErrorKind::WouldBlock) {
                        std::thread::sleep(wait.min(Duration::from_millis(1)));
                    }
                    r
                }
            };
            match read {
                Ok(0) => return self.eof(dec.pending()),
                Ok(n) => {
                    dec.push(&buf[..n]);
                    let mut completed = false;
                    loop {
                        match dec.next_frame() {
                            Ok(Some(f)) => {
                                completed = true;
                                last_frame = Instant::now();
                                if let Err(c) = self.frame(stream, f) {
                                    return c;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => return Close::Reply(self.request_id(), e.code(), e.to_string()),
                        }
                    }
                    partial_since = match (dec.pending(), partial_since) {
                        (0, _) => None,
                        (_, Some(p)) if !completed => Some(p),
                        _ => Some(Instant::now()),
                    };
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(_) => {
                    if self.open.is_some() {
                        self.sh.stats.disconnects_mid_request.fetch_add(1, Ordering::Relaxed);
                    }
                    return Close::Broken;
                }
            }
        }
    }

    fn request_id(&self) -> u32 {
        self.open.as_ref().map_or(0, |o| o.request)
    }

    /// The peer closed its side.
    fn eof(&self, pending: usize) -> Close {
        if self.open.is_some() {
            self.sh.stats.disconnects_mid_request.fetch_add(1, Ordering::Relaxed);
        }
        if pending == 0 {
            return Close::Eof;
        }
        Close::Reply(
            self.request_id(),
            ErrorCode::Truncated,
            format!("the connection ended in the middle of a frame ({pending} bytes of it arrived)"),
        )
    }

    /// Handles one frame; `Err` closes the connection.
    fn frame(&mut self, stream: &mut TcpStream, f: Frame) -> Result<(), Close> {
        // A frame read after the open request's deadline comes too late for it.
        if self.open.as_ref().is_some_and(|o| Instant::now() >= o.deadline) {
            self.answer(stream, Reason::Deadline)?;
        }
        match f {
            Frame::Begin { request, cut, budget_us, header } => {
                if let Some(o) = &self.open {
                    return Err(Close::Reply(
                        request,
                        ErrorCode::OutOfOrder,
                        format!("begin of request {request} while request {} is open", o.request),
                    ));
                }
                let h = self.sh.model.check_begin(cut, &header).map_err(|e| match e {
                    RunError::UnknownCut(_) => Close::Reply(
                        request,
                        ErrorCode::UnknownCut,
                        format!(
                            "{e} (served: {})",
                            self.sh.model.cuts().map(|c| c.cut.to_string()).collect::<Vec<_>>().join(", ")
                        ),
                    ),
                    e => Close::Reply(request, ErrorCode::BadTensor, e.to_string()),
                })?;
                let now = Instant::now();
                self.sh.log(self.id, &format!("begin request {request}, cut {cut}, budget {budget_us} us"));
                self.open = Some(Open {
                    request,
                    cut,
                    header_bytes: header,
                    total: h.shape[h.axis],
                    header: h,
                    received: 0,
                    payload: Vec::new(),
                    begun: now,
                    deadline: now + Duration::from_micros(u64::from(budget_us)),
                });
                Ok(())
            }
            Frame::Channels { request, first, count, payload } => {
                let Some(o) = self.open.as_mut().filter(|o| o.request == request) else {
                    return self.late_or_out_of_order(request, "channels");
                };
                if first as usize != o.received {
                    return Err(Close::Reply(
                        request,
                        ErrorCode::OutOfOrder,
                        format!("channels from {first} after {} channels received", o.received),
                    ));
                }
                let (first, count) = (first as usize, count as usize);
                if first.checked_add(count).is_none_or(|end| end > o.total) {
                    return Err(Close::Reply(
                        request,
                        ErrorCode::BadTensor,
                        format!("channels {first}..{} beyond the tensor's {} channels", first + count, o.total),
                    ));
                }
                let want = count * o.header.channel_bytes();
                if payload.len() != want {
                    return Err(Close::Reply(
                        request,
                        ErrorCode::BadTensor,
                        format!(
                            "{} payload bytes for {count} channels of {} bytes",
                            payload.len(),
                            o.header.channel_bytes()
                        ),
                    ));
                }
                if o.payload.capacity() == 0 {
                    o.payload.reserve_exact(o.total * o.header.channel_bytes());
                }
                o.payload.extend_from_slice(&payload);
                o.received += count;
                Ok(())
            }
            Frame::Done { request } => {
                if self.open.as_ref().is_some_and(|o| o.request == request) {
                    self.answer(stream, Reason::Done)
                } else {
                    self.late_or_out_of_order(request, "done")
                }
            }
            Frame::Result(a) => {
                Err(Close::Reply(a.request, ErrorCode::Malformed, "a device does not send result frames".into()))
            }
            Frame::Error { request, code, message } => {
                self.sh.log(self.id, &format!("the device reported {code} (request {request}): {message}"));
                Err(Close::Eof)
            }
        }
    }

    /// A frame for a request that is not open: late if it is the one answered last.
    fn late_or_out_of_order(&self, request: u32, what: &str) -> Result<(), Close> {
        if self.answered == Some(request) {
            self.sh.stats.late_frames.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let open =
            self.open.as_ref().map_or("no request is open".to_string(), |o| format!("request {} is open", o.request));
        Err(Close::Reply(request, ErrorCode::OutOfOrder, format!("{what} of request {request}, but {open}")))
    }

    /// Runs the head for the open request and sends the `Result`.
    fn answer(&mut self, stream: &mut TcpStream, reason: Reason) -> Result<(), Close> {
        let Some(o) = self.open.take() else { return Ok(()) };
        let prediction = {
            let _permit = self.sh.compute.acquire();
            let wait_us = micros(o.begun);
            self.sh.model.run(o.cut, &o.header_bytes, &o.header, o.received, &o.payload).map(|p| (wait_us, p))
        };
        let (wait_us, p) = prediction.map_err(|e| match e {
            RunError::UnknownCut(_) | RunError::BadTensor(_) => {
                Close::Reply(o.request, ErrorCode::BadTensor, e.to_string())
            }
            RunError::Internal { .. } => Close::Reply(o.request, ErrorCode::Internal, e.to_string()),
        })?;
        let a = Answer {
            request: o.request,
            cut: o.cut,
            received: o.received as u32,
            used: p.used as u32,
            class: p.class,
            reason,
            wait_us,
            compute_us: p.compute_us,
            scores: p.scores,
        };
        self.sh.stats.answered(&a);
        self.sh.log(
            self.id,
            &format!(
                "answered request {} ({:?}): {} channels, head s{}, class {}, wait {} us, compute {} us",
                a.request, a.reason, a.received, a.used, a.class, a.wait_us, a.compute_us
            ),
        );
        self.answered = Some(o.request);
        stream.write_all(&Frame::Result(a).encode()).map_err(|_| Close::Broken)
    }
}
