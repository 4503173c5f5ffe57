//! The cloud server: accepts device connections over TCP, one thread per connection, and answers
//! each request with the prediction of the slice head that the received channels cover.
//!
//! Memory is bounded per connection: the frame decoder holds at most one frame
//! ([`ServerConfig::max_frame`], lowered to what the served tensors need:
//! [`CloudModel::max_frame_needed`]) plus one socket read (16 KiB), a request buffers at most the
//! full cut tensor, and at most [`ServerConfig::max_concurrent_heads`] heads run at once (their
//! activations are the only other per-request allocation). Connections beyond
//! [`ServerConfig::max_connections`] get `Error Busy` and are closed.
//!
//! ```no_run
//! use clio_runtime::server::{CloudModel, Server, ServerConfig};
//! use std::sync::{atomic::AtomicBool, Arc};
//! let model = CloudModel::load(&["out/cut4.stm32f7".into()]).unwrap();
//! let server = Server::bind(ServerConfig::default(), model).unwrap();
//! println!("listening on {}", server.local_addr());
//! let stats = server.run(Arc::new(AtomicBool::new(false)));
//! println!("{}", stats.summary());
//! ```

pub mod cloud;
mod conn;
mod stats;

pub use cloud::{CloudError, CloudModel, CutModel, CutTensor, Head, Prediction, RunError};
pub use stats::ServerStats;

use crate::protocol::{ErrorCode, DEFAULT_MAX_FRAME};
use stats::Counters;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Connections served at once; more get `Error Busy`.
    pub max_connections: usize,
    /// A connection without a complete frame (and no open request) for this long gets
    /// `Error Timeout`.
    pub idle_timeout: Duration,
    /// A frame begun but not completed within this long gets `Error Truncated`.
    pub stall_timeout: Duration,
    /// Largest frame accepted (type byte + body); lowered to [`CloudModel::max_frame_needed`].
    pub max_frame: usize,
    /// On shutdown, how long open requests may still be answered.
    pub shutdown_grace: Duration,
    /// A reply not written within this long closes the connection.
    pub write_timeout: Duration,
    /// Heads running at once (bounds the memory of head activations).
    pub max_concurrent_heads: usize,
    /// Log connection events to standard error.
    pub log: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_connections: 256,
            idle_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(10),
            max_frame: DEFAULT_MAX_FRAME,
            shutdown_grace: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            max_concurrent_heads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            log: false,
        }
    }
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket could not be set up.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// A setting is out of range.
    #[error("{0}")]
    Config(String),
}

/// A counting semaphore (heads running at once).
pub(crate) struct Gate {
    free: Mutex<usize>,
    cv: Condvar,
}

/// A held slot of a [`Gate`], released on drop.
pub(crate) struct Permit<'a>(&'a Gate);

impl Gate {
    fn new(n: usize) -> Gate {
        Gate { free: Mutex::new(n.max(1)), cv: Condvar::new() }
    }

    /// Waits for a free slot.
    pub(crate) fn acquire(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.cv.notify_one();
    }
}

/// What every connection thread shares.
pub(crate) struct Shared {
    pub(crate) model: Arc<CloudModel>,
    pub(crate) config: ServerConfig,
    pub(crate) stats: Counters,
    pub(crate) shutdown: Arc<AtomicBool>,
    pub(crate) compute: Gate,
}

impl Shared {
    /// A log line on standard error (with `--log`).
    pub(crate) fn log(&self, conn: u64, msg: &str) {
        if self.config.log {
            eprintln!("[conn {conn}] {msg}");
        }
    }
}

/// Decrements the live-connection count when a connection thread ends (even by a panic).
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Rejection threads (a `Busy` reply each) alive at once at most; beyond, a connection over the
/// limit is closed without a reply.
const MAX_REJECTERS: usize = 32;
/// How often the waker looks at the shutdown flag (and the accept loop, if no waker could be
/// started, polls for connections).
const ACCEPT_POLL: Duration = Duration::from_millis(20);
/// Pause after a failed `accept` (out of descriptors ...) before the next one.
const ACCEPT_RETRY: Duration = Duration::from_millis(10);

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds the listening socket (the port is known from then on: [`Server::local_addr`]).
    pub fn bind(config: ServerConfig, model: CloudModel) -> Result<Server, ServerError> {
        if config.max_connections == 0 {
            return Err(ServerError::Config("--max-connections must be at least 1".into()));
        }
        if config.max_frame < 64 {
            return Err(ServerError::Config(format!("max frame {} is below 64 bytes", config.max_frame)));
        }
        if config.idle_timeout.is_zero() || config.stall_timeout.is_zero() {
            return Err(ServerError::Config("timeouts must be positive".into()));
        }
        // No legitimate frame is larger than the served tensors need: cap the frame buffer there.
        let mut config = config;
        config.max_frame = config.max_frame.min(model.max_frame_needed());
        let bind_err = |source| ServerError::Bind { addr: config.listen, source };
        let listener = TcpListener::bind(config.listen).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let shared = Arc::new(Shared {
            model: Arc::new(model),
            compute: Gate::new(config.max_concurrent_heads),
            config,
            stats: Counters::default(),
            shutdown: Arc::new(AtomicBool::new(false)),
        });
        Ok(Server { listener, addr, shared })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The served model.
    pub fn model(&self) -> &CloudModel {
        &self.shared.model
    }

    /// Serves until `shutdown` becomes true, then stops accepting, lets open requests finish
    /// within the grace period, tells idle connections `ShuttingDown`, joins every connection
    /// thread and returns the counters.
    pub fn run(self, shutdown: Arc<AtomicBool>) -> ServerStats {
        let Server { listener, shared, addr } = self;
        // The connections watch the server's own flag, set from `shutdown` below.
        let live = Arc::new(AtomicUsize::new(0));
        let rejecters = Arc::new(AtomicUsize::new(0));
        let mut threads: Vec<JoinHandle<()>> = vec![];
        let mut next_id = 0u64;
        // Accept blocks (no polling delay for a new connection); a waker thread watches the flag
        // and, once it is set, connects to the listener so that `accept` returns.
        let stopped = Arc::new(AtomicBool::new(false));
        let waker = spawn_waker(wake_addr(addr), Arc::clone(&shutdown), Arc::clone(&stopped));
        if waker.is_none() && listener.set_nonblocking(true).is_err() {
            return shared.stats.snapshot();
        }
        while !shutdown.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => {
                    if shutdown.load(Ordering::SeqCst) {
                        break;
                    }
                    next_id += 1;
                    accept(stream, next_id, &shared, &live, &rejecters, &mut threads);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
                // Out of descriptors, a connection reset before accept ...: keep serving.
                Err(_) => std::thread::sleep(ACCEPT_RETRY),
            }
            reap(&mut threads, &shared);
        }
        stopped.store(true, Ordering::SeqCst);
        if let Some(w) = waker {
            let _ = w.join();
        }
        drop(listener);
        shared.shutdown.store(true, Ordering::SeqCst);
        for t in threads {
            if t.join().is_err() {
                shared.stats.panics.fetch_add(1, Ordering::Relaxed);
            }
        }
        while rejecters.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        shared.stats.snapshot()
    }
}

/// Starts a connection thread, or rejects the connection when at the limit.
fn accept(
    stream: TcpStream,
    id: u64,
    shared: &Arc<Shared>,
    live: &Arc<AtomicUsize>,
    rejecters: &Arc<AtomicUsize>,
    threads: &mut Vec<JoinHandle<()>>,
) {
    // Accepted sockets may inherit the listener's non-blocking mode: connections block with timeouts.
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
    let now = live.load(Ordering::SeqCst);
    if now >= shared.config.max_connections {
        shared.stats.rejected_busy.fetch_add(1, Ordering::Relaxed);
        if rejecters.fetch_add(1, Ordering::SeqCst) >= MAX_REJECTERS {
            rejecters.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let (sh, rj) = (Arc::clone(shared), Arc::clone(rejecters));
        let msg = format!("the server is at its limit of {} connections", shared.config.max_connections);
        let spawned = std::thread::Builder::new().name("clio-busy".into()).spawn(move || {
            let mut s = stream;
            let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
            conn::reply_error(&mut s, &sh, 0, ErrorCode::Busy, &msg);
            rj.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            rejecters.fetch_sub(1, Ordering::SeqCst);
        }
        return;
    }
    let n = live.fetch_add(1, Ordering::SeqCst) + 1;
    shared.stats.peak(n);
    let guard = Live(Arc::clone(live));
    let sh = Arc::clone(shared);
    let spawned = std::thread::Builder::new().name(format!("clio-conn-{id}")).spawn(move || {
        let _guard = guard;
        sh.log(id, "connected");
        conn::serve(stream, &sh, id);
    });
    match spawned {
        Ok(t) => threads.push(t),
        // The closure (and its guard) was dropped: the count is already back.
        Err(_) => {
            shared.stats.spawn_failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Joins the connection threads that have ended (so the handle list stays bounded).
fn reap(threads: &mut Vec<JoinHandle<()>>, shared: &Shared) {
    if threads.iter().all(|t| !t.is_finished()) {
        return;
    }
    let (done, running): (Vec<_>, Vec<_>) = std::mem::take(threads).into_iter().partition(|t| t.is_finished());
    *threads = running;
    for t in done {
        if t.join().is_err() {
            shared.stats.panics.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Where the waker connects: the listening address, loopback if it listens on every address.
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

/// Starts the thread that wakes the blocking `accept` once `shutdown` is set (by connecting to
/// `addr`, again every poll period until the accept loop says `stopped`).
fn spawn_waker(addr: SocketAddr, shutdown: Arc<AtomicBool>, stopped: Arc<AtomicBool>) -> Option<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("clio-accept-waker".into())
        .spawn(move || {
            while !shutdown.load(Ordering::SeqCst) {
                std::thread::sleep(ACCEPT_POLL);
            }
            while !stopped.load(Ordering::SeqCst) {
                let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
                std::thread::sleep(ACCEPT_POLL);
            }
        })
        .ok()
}
