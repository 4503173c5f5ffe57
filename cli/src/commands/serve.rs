//! `clio serve`: the cloud server of split execution.
//!
//! `clio serve DIR_OR_CLIO... --listen 127.0.0.1:PORT` loads the cloud part of every given cut
//! (a `clio compile` output directory, its `cloud_k<k>/` parts for several cuts, or a sliced
//! `.clio` cloud part; a plain partition's `@cloud` is served as one full-width head), prints one line
//! `listening on ADDR (cuts: ...)` when it accepts connections (the real port when PORT is 0),
//! serves device connections until SIGINT or SIGTERM, then shuts down gracefully and prints a
//! one-line summary of what it served.

use clap::Args;
use clio::Error;
use clio_runtime::server::{CloudModel, Server, ServerConfig};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `clio serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Cloud parts: `clio compile` output directories or sliced `.clio` cloud parts (one per cut).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Address to listen on (port 0 picks a free port, printed on the first line).
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: SocketAddr,
    /// Connections served at once; more are answered `busy` and closed.
    #[arg(long, default_value_t = 256)]
    pub max_connections: usize,
    /// Seconds without a frame (and no open request) before a connection is closed.
    #[arg(long, default_value_t = 30.0)]
    pub idle_timeout_s: f64,
    /// Seconds a frame may take to arrive once begun.
    #[arg(long, default_value_t = 10.0)]
    pub stall_timeout_s: f64,
    /// Largest frame accepted, in bytes (lowered to what the served tensors need).
    #[arg(long, default_value_t = clio_runtime::protocol::DEFAULT_MAX_FRAME)]
    pub max_frame: usize,
    /// Seconds open requests may still be answered after SIGINT / SIGTERM.
    #[arg(long, default_value_t = 5.0)]
    pub grace_s: f64,
    /// Heads running at once (default: the number of CPUs).
    #[arg(long)]
    pub max_concurrent_heads: Option<usize>,
    /// Log every connection event to standard error.
    #[arg(long)]
    pub log: bool,
}

fn seconds(v: f64, what: &str) -> Result<Duration, Error> {
    if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
        return Err(Error::Format(format!("{what} must be a positive number of seconds (at most a day), got {v}")));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Turns transparent huge pages off for this process. The allocator (mimalloc, with the
/// `train` feature) madvises its arena for huge pages, so every connection thread's heap would
/// fault in a whole 2 MiB page: measured 100 idle connections at 80 MB resident with them, 16 MB
/// without.
#[cfg(target_os = "linux")]
fn no_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and touches no memory of ours.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

#[cfg(not(target_os = "linux"))]
fn no_huge_pages() {}

/// Runs `clio serve`.
pub fn run(a: ServeArgs) -> Result<(), Error> {
    no_huge_pages();
    let defaults = ServerConfig::default();
    let config = ServerConfig {
        listen: a.listen,
        max_connections: a.max_connections,
        idle_timeout: seconds(a.idle_timeout_s, "--idle-timeout-s")?,
        stall_timeout: seconds(a.stall_timeout_s, "--stall-timeout-s")?,
        max_frame: a.max_frame,
        shutdown_grace: seconds(a.grace_s, "--grace-s")?,
        max_concurrent_heads: a.max_concurrent_heads.unwrap_or(defaults.max_concurrent_heads),
        log: a.log,
        ..defaults
    };
    if config.max_concurrent_heads == 0 {
        return Err(Error::Format("--max-concurrent-heads must be at least 1".into()));
    }
    let model = CloudModel::load(&a.inputs).map_err(|e| Error::Format(e.to_string()))?;
    let cuts: Vec<String> = model
        .cuts()
        .map(|c| format!("{} [{}]", c.cut, c.heads.iter().map(|h| h.size.to_string()).collect::<Vec<_>>().join(":")))
        .collect();
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&shutdown))
            .map_err(|e| Error::Format(format!("cannot install the signal handler: {e}")))?;
    }
    let server = Server::bind(config, model).map_err(|e| Error::Format(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {} (cuts: {})", server.local_addr(), cuts.join(", "))
        .and_then(|()| out.flush())
        .map_err(|e| Error::Format(format!("stdout: {e}")))?;
    drop(out);
    let stats = server.run(shutdown);
    // The summary is best effort: whoever started the server may have closed our stdout.
    let _ = writeln!(std::io::stdout().lock(), "shut down: {}", stats.summary());
    Ok(())
}
