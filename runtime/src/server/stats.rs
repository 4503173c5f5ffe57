//! The server's counters: atomics updated by the connection threads, a plain snapshot at the end.

use crate::protocol::{Answer, ErrorCode, Reason};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Every [`ErrorCode`], in code order (the index of a code's counter is `code - 1`).
const CODES: [ErrorCode; 9] = [
    ErrorCode::Malformed,
    ErrorCode::Truncated,
    ErrorCode::UnknownCut,
    ErrorCode::BadTensor,
    ErrorCode::OutOfOrder,
    ErrorCode::Busy,
    ErrorCode::Timeout,
    ErrorCode::ShuttingDown,
    ErrorCode::Internal,
];

/// Live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected_busy: AtomicU64,
    pub(crate) peak_connections: AtomicUsize,
    pub(crate) answered_done: AtomicU64,
    pub(crate) answered_deadline: AtomicU64,
    pub(crate) deadline_misses: AtomicU64,
    pub(crate) late_frames: AtomicU64,
    pub(crate) stalled: AtomicU64,
    pub(crate) disconnects_mid_request: AtomicU64,
    pub(crate) spawn_failures: AtomicU64,
    pub(crate) panics: AtomicU64,
    errors: [AtomicU64; 9],
}

impl Counters {
    /// Counts an `Error` reply.
    pub(crate) fn error(&self, code: ErrorCode) {
        if let Some(c) = self.errors.get((code as usize).wrapping_sub(1)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an answer.
    pub(crate) fn answered(&self, a: &Answer) {
        match a.reason {
            Reason::Done => &self.answered_done,
            Reason::Deadline => &self.answered_deadline,
        }
        .fetch_add(1, Ordering::Relaxed);
        if a.used == 0 {
            self.deadline_misses.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records `n` live connections.
    pub(crate) fn peak(&self, n: usize) {
        self.peak_connections.fetch_max(n, Ordering::Relaxed);
    }

    /// A snapshot.
    pub(crate) fn snapshot(&self) -> ServerStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ServerStats {
            accepted: g(&self.accepted),
            rejected_busy: g(&self.rejected_busy),
            peak_connections: self.peak_connections.load(Ordering::Relaxed),
            answered: g(&self.answered_done) + g(&self.answered_deadline),
            answered_done: g(&self.answered_done),
            answered_deadline: g(&self.answered_deadline),
            deadline_misses: g(&self.deadline_misses),
            late_frames: g(&self.late_frames),
            stalled: g(&self.stalled),
            disconnects_mid_request: g(&self.disconnects_mid_request),
            spawn_failures: g(&self.spawn_failures),
            panics: g(&self.panics),
            errors: CODES
                .iter()
                .zip(&self.errors)
                .filter(|(_, n)| g(n) > 0)
                .map(|(c, n)| (c.to_string(), g(n)))
                .collect(),
        }
    }
}

/// What the server did, returned by [`super::Server::run`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerStats {
    /// Connections accepted (including those rejected as busy).
    pub accepted: u64,
    /// Connections rejected with `Busy`.
    pub rejected_busy: u64,
    /// Most connections served at once.
    pub peak_connections: usize,
    /// Requests answered with a `Result`.
    pub answered: u64,
    /// ... of which closed by the device's `Done`.
    pub answered_done: u64,
    /// ... of which closed by the deadline.
    pub answered_deadline: u64,
    /// Answers where not even the smallest slice had arrived (`used` = 0).
    pub deadline_misses: u64,
    /// `Channels` / `Done` frames of an already answered request, dropped.
    pub late_frames: u64,
    /// Connections closed because a frame stalled past the stall timeout.
    pub stalled: u64,
    /// Connections the device closed (or reset) with a request open.
    pub disconnects_mid_request: u64,
    /// Connections dropped because no thread could be started.
    pub spawn_failures: u64,
    /// Connection threads that panicked (a bug; the server keeps serving).
    pub panics: u64,
    /// `Error` replies sent, by code (kebab-case name).
    pub errors: BTreeMap<String, u64>,
}

impl ServerStats {
    /// Total `Error` replies.
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// One line: `served N requests (...), E errors (...), ...`.
    pub fn summary(&self) -> String {
        let errors = if self.errors.is_empty() {
            "none".to_string()
        } else {
            self.errors.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        };
        format!(
            "served {} requests ({} done, {} at the deadline, {} misses), {} late frames dropped; \
             {} connections (peak {}, {} busy), {} disconnects mid-request, {} stalled; errors: {}; {} panics",
            self.answered,
            self.answered_done,
            self.answered_deadline,
            self.deadline_misses,
            self.late_frames,
            self.accepted,
            self.peak_connections,
            self.rejected_busy,
            self.disconnects_mid_request,
            self.stalled,
            errors,
            self.panics
        )
    }
}
