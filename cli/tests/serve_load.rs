//! Load and faults (issue 12, point 5): the real `clio serve` binary on loopback, at least 100
//! concurrent device connections for `CLIO_LOAD_SECONDS` (default 60) seconds, each looping over
//! seeded random behaviours: whole requests of random slice sizes and channel groups, requests
//! without `Done` (answered at their deadline), disconnects mid-request, truncated frames,
//! garbage bytes, stalled senders and pauses. The server must stay up, keep its memory bounded
//! (VmRSS / VmHWM from /proc sampled every second: a stated peak bound and no growth trend),
//! answer every completed request exactly as the interpreter does, give every fault its error
//! code, and exit 0 with its summary line on SIGTERM. Figures are printed for docs/robustness.md.
//!
//! `CLIO_LOAD_SECONDS=10 cargo test -p clio-cli --test serve_load -- --nocapture`

mod common;
#[path = "../../runtime/tests/server_fixture/mod.rs"]
mod server_fixture;

use clio_runtime::client::{read_answer, send, send_request};
use clio_runtime::protocol::{read_frame, ErrorCode, Frame, Reason, DEFAULT_MAX_FRAME};
use server_fixture::{build, Fixture, CHANNELS};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Inputs whose device messages the clients send.
const INPUTS: usize = 8;
/// The server's stall timeout in the test (seconds).
const STALL_S: f64 = 2.0;
/// Peak resident memory the server may reach (KiB): the stated bound.
const PEAK_RSS_BOUND_KB: u64 = 96 * 1024;

/// Kills the server if the test fails before its orderly shutdown.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Tiny xorshift64* (seeded per client thread).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<&'static str, u64>,
    /// Milliseconds from the first byte of a request to its answer (requests with `Done`).
    latency_ms: Vec<f64>,
    failures: Vec<String>,
}

impl Tally {
    fn add(&mut self, k: &'static str) {
        *self.counts.entry(k).or_default() += 1;
    }
    fn fail(&mut self, m: String) {
        if self.failures.len() < 20 {
            self.failures.push(m);
        }
        self.add("failures");
    }
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    let _ = s.set_nodelay(true);
    s
}

/// The next frame must be an `Error` with `code`, then the end of the stream.
fn expect_error(s: &mut TcpStream, code: ErrorCode) -> Result<(), String> {
    match read_frame(s, DEFAULT_MAX_FRAME) {
        Ok(Frame::Error { code: c, .. }) if c == code => {
            let mut b = [0u8; 8];
            match s.read(&mut b) {
                Ok(0) | Err(_) => Ok(()),
                Ok(_) => Err(format!("bytes after error {code}")),
            }
        }
        other => Err(format!("expected error {code}, got {other:?}")),
    }
}

struct Ctx {
    addr: SocketAddr,
    fx: Fixture,
    /// expected[(input, used)] = (class, score bits).
    expected: BTreeMap<(usize, usize), (i32, Vec<u32>)>,
    stop: AtomicBool,
}

impl Ctx {
    fn check(&self, a: &clio_runtime::protocol::Answer, i: usize, received: usize) -> Result<(), String> {
        let used = Fixture::used(received);
        let (class, bits) = &self.expected[&(i, used)];
        let got: Vec<u32> = a.scores.iter().map(|x| x.to_bits()).collect();
        if (a.received as usize, a.used as usize, a.class, &got) != (received, used, *class, bits) {
            return Err(format!("input {i}, {received} channels: got {a:?}, expected class {class} from s{used}"));
        }
        Ok(())
    }
}

/// One client thread: random behaviours until `stop`.
fn client(ctx: &Ctx, seed: u64, tally: &Mutex<Tally>) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut conn: Option<TcpStream> = None;
    let mut id = 0u32;
    // The request answered last on the open connection (for a late frame at the end).
    let mut last_answered: Option<u32> = None;
    let cut = ctx.fx.cut;
    while !ctx.stop.load(Ordering::Relaxed) {
        id = id.wrapping_add(1);
        let s = conn.get_or_insert_with(|| connect(ctx.addr));
        let i = rng.below(INPUTS as u64) as usize;
        let channels = 1 + rng.below(CHANNELS as u64) as usize;
        let group = 1 + rng.below(4) as usize;
        let msg = ctx.fx.prefix(i, channels);
        let roll = rng.below(100);
        let outcome: Result<(&'static str, bool), String> = (|| {
            match roll {
                // A whole request (kept connection).
                0..=44 => {
                    let t0 = Instant::now();
                    send_request(s, id, cut, 5_000_000, &msg, group, true).map_err(|e| e.to_string())?;
                    let a = read_answer(s, id).map_err(|e| e.to_string())?;
                    let ms = t0.elapsed().as_secs_f64() * 1e3;
                    if a.reason != Reason::Done {
                        return Err(format!("{a:?} not closed by done"));
                    }
                    ctx.check(&a, i, channels)?;
                    tally.lock().unwrap().latency_ms.push(ms);
                    Ok(("answered (done)", true))
                }
                // No Done: answered at the deadline.
                45..=54 => {
                    let budget = 150_000 + 50_000 * rng.below(4) as u32;
                    let t0 = Instant::now();
                    send_request(s, id, cut, budget, &msg, group, false).map_err(|e| e.to_string())?;
                    let a = read_answer(s, id).map_err(|e| e.to_string())?;
                    if a.reason != Reason::Deadline || t0.elapsed() < Duration::from_micros(budget as u64) {
                        return Err(format!("{a:?} answered before its deadline of {budget} us"));
                    }
                    ctx.check(&a, i, channels)?;
                    Ok(("answered (deadline)", true))
                }
                // Disconnect in the middle of a request.
                55..=64 => {
                    let part = ctx.fx.prefix(i, channels.min(3));
                    send_request(s, id, cut, 5_000_000, &part, 1, false).map_err(|e| e.to_string())?;
                    if rng.below(2) == 0 {
                        // ... even in the middle of a frame.
                        let f = Frame::Channels { request: id, first: 3, count: 1, payload: vec![1; 64] }.encode();
                        let _ = s.write_all(&f[..7]);
                    }
                    Ok(("disconnected mid-request", false))
                }
                // A truncated frame: announce a length, send less, close the sending side.
                65..=74 => {
                    let f = Frame::Begin { request: id, cut, budget_us: 1000, header: msg[..40].to_vec() }.encode();
                    let cut_at = 1 + rng.below(f.len() as u64 - 1) as usize;
                    s.write_all(&f[..cut_at]).map_err(|e| e.to_string())?;
                    s.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
                    expect_error(s, ErrorCode::Truncated)?;
                    Ok(("truncated frame", false))
                }
                // Garbage: a huge length prefix, or an unknown frame type.
                75..=84 => {
                    let mut g: Vec<u8> = (0..16).map(|_| rng.next() as u8).collect();
                    if rng.below(2) == 0 {
                        g[3] |= 0xF0;
                    } else {
                        let ty = 0x40 | (g[4] & 0x3F);
                        g[..5].copy_from_slice(&[11, 0, 0, 0, ty]);
                    }
                    s.write_all(&g).map_err(|e| e.to_string())?;
                    expect_error(s, ErrorCode::Malformed)?;
                    Ok(("garbage", false))
                }
                // A stalled sender: part of a frame, then silence past the stall timeout.
                85..=89 => {
                    let f = Frame::Channels { request: id, first: 0, count: 1, payload: vec![0; 64] }.encode();
                    let t0 = Instant::now();
                    s.write_all(&f[..1 + rng.below(f.len() as u64 - 1) as usize]).map_err(|e| e.to_string())?;
                    expect_error(s, ErrorCode::Truncated)?;
                    let waited = t0.elapsed().as_secs_f64();
                    if !(STALL_S - 0.05..STALL_S + 2.0).contains(&waited) {
                        return Err(format!("stall detected after {waited:.2} s"));
                    }
                    Ok(("stalled sender", false))
                }
                // A pause (the connection stays open, idle).
                _ => {
                    std::thread::sleep(Duration::from_millis(100 + rng.below(400)));
                    Ok(("pause", true))
                }
            }
        })();
        match outcome {
            Ok((what, keep)) => {
                tally.lock().unwrap().add(what);
                if what.starts_with("answered") {
                    last_answered = Some(id);
                }
                if !keep {
                    conn = None;
                    last_answered = None;
                }
            }
            Err(e) => {
                tally.lock().unwrap().fail(format!("client {seed}, roll {roll}: {e}"));
                conn = None;
                last_answered = None;
            }
        }
        // Think time: keeps 100 clients within a reasonable share of 2 cores.
        std::thread::sleep(Duration::from_millis(20 + rng.below(100)));
    }
    // A late frame (the last request was answered): the server drops it.
    if let (Some(mut s), Some(request)) = (conn, last_answered) {
        let _ = send(&mut s, &Frame::Done { request });
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN)
}

#[test]
fn serve_under_load_and_faults() {
    let seconds: u64 = std::env::var("CLIO_LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let clients: usize = std::env::var("CLIO_LOAD_CLIENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(100).max(100);
    let dir = common::tmp("serve-load");
    let fx = build(INPUTS);
    clio::io::save_module(&fx.cloud, &dir.join("cloud.clio")).unwrap();
    let mut expected = BTreeMap::new();
    for i in 0..INPUTS {
        for used in [0, 2, 4, 8] {
            let (c, s) = fx.expected(i, used);
            expected.insert((i, used), (c, s.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()));
        }
    }
    let child = Command::new(env!("CARGO_BIN_EXE_clio"))
        .args(["serve", dir.to_str().unwrap(), "--listen", "127.0.0.1:0", "--stall-timeout-s", &STALL_S.to_string()])
        .args(["--idle-timeout-s", "10", "--max-connections", "1024", "--max-concurrent-heads", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let pid = server.0.id();
    let mut out = BufReader::new(server.0.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(
        first.starts_with("listening on 127.0.0.1:") && first.contains(&format!("cuts: {} [2:4:8]", fx.cut)),
        "{first}"
    );
    let addr: SocketAddr = first["listening on ".len()..].split_whitespace().next().unwrap().parse().unwrap();
    let rss_start = status_kb(pid, "VmRSS:").unwrap();

    let ctx = Arc::new(Ctx { addr, fx, expected, stop: AtomicBool::new(false) });
    let tally = Arc::new(Mutex::new(Tally::default()));
    let t0 = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (ctx, tally) = (Arc::clone(&ctx), Arc::clone(&tally));
            std::thread::spawn(move || client(&ctx, c as u64 + 1, &tally))
        })
        .collect();
    // Sample the server's memory every second while the clients run.
    let mut samples: Vec<(f64, u64, u64)> = vec![];
    while t0.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(1));
        assert!(server.0.try_wait().unwrap().is_none(), "the server died under load");
        let (rss, threads) = (status_kb(pid, "VmRSS:").unwrap(), status_kb(pid, "Threads:").unwrap_or(0));
        samples.push((t0.elapsed().as_secs_f64(), rss, threads));
    }
    ctx.stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let hwm = status_kb(pid, "VmHWM:").unwrap();
    let rss_end = status_kb(pid, "VmRSS:").unwrap();

    // Graceful shutdown on SIGTERM: exit 0 and the summary line.
    let t_term = Instant::now();
    let kill = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(t_term.elapsed() < Duration::from_secs(20), "no exit 20 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let shutdown_s = t_term.elapsed().as_secs_f64();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    server.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    let summary = rest.lines().find(|l| l.starts_with("shut down: served ")).unwrap_or_else(|| panic!("{rest}"));

    let mut t = tally.lock().unwrap();
    let answered = t.counts.get("answered (done)").copied().unwrap_or(0)
        + t.counts.get("answered (deadline)").copied().unwrap_or(0);
    let (p50, p99) = (percentile(&mut t.latency_ms, 0.5), percentile(&mut t.latency_ms, 0.99));
    // Warm-up: the sample at a quarter of the run; trend: the mean of the last quarter.
    let quarter = samples.len().div_ceil(4).max(1);
    let warm = samples[quarter.min(samples.len()) - 1].1;
    let last: Vec<u64> = samples.iter().rev().take(quarter).map(|s| s.1).collect();
    let last_mean = last.iter().sum::<u64>() / last.len() as u64;
    let peak_threads = samples.iter().map(|s| s.2).max().unwrap_or(0);
    println!("load test: {clients} clients, {seconds} s, stall timeout {STALL_S} s");
    println!("client outcomes: {:?}", t.counts);
    println!("answered {answered} requests correctly; latency with done p50 {p50:.2} ms, p99 {p99:.2} ms");
    println!(
        "server RSS: start {} KiB, after warm-up {warm} KiB, last-quarter mean {last_mean} KiB, end {rss_end} KiB, \
         peak (VmHWM) {hwm} KiB; peak threads {peak_threads}; shutdown took {shutdown_s:.2} s",
        rss_start
    );
    println!("server: {summary}");
    println!("rss samples (s, KiB): {:?}", samples.iter().map(|s| (s.0.round() as u64, s.1)).collect::<Vec<_>>());

    assert!(t.failures.is_empty(), "{} failures, first: {:#?}", t.counts.get("failures").unwrap_or(&0), t.failures);
    for k in [
        "answered (done)",
        "answered (deadline)",
        "disconnected mid-request",
        "truncated frame",
        "garbage",
        "stalled sender",
    ] {
        assert!(t.counts.get(k).copied().unwrap_or(0) > 0, "behaviour `{k}` never ran: {:?}", t.counts);
    }
    assert!(answered >= seconds * 50, "only {answered} requests answered in {seconds} s");
    assert!(summary.contains(&format!("served {answered} requests")), "server and clients disagree: {summary}");
    assert!(summary.ends_with(" 0 panics"), "{summary}");
    assert!(hwm < PEAK_RSS_BOUND_KB, "peak RSS {hwm} KiB above the bound of {PEAK_RSS_BOUND_KB} KiB");
    assert!(
        last_mean as f64 <= 1.25 * warm as f64 + 8.0 * 1024.0,
        "RSS grows: {warm} KiB after warm-up, {last_mean} KiB in the last quarter"
    );
    assert!(peak_threads as usize <= clients + 64, "{peak_threads} server threads for {clients} clients");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `clio serve ARGS` on port 0 and returns the server and its address.
fn spawn_serve(dir: &std::path::Path, args: &[&str]) -> (Server, SocketAddr, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clio"))
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let server = Server(child);
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with("listening on "), "{first}");
    let addr = first["listening on ".len()..].split_whitespace().next().unwrap().parse().unwrap();
    (server, addr, out)
}

/// The real flow: `build-model`, `slice` + device `quantize`, `clio compile` (the cloud part in
/// DIR/cloud.clio), `clio serve DIR`; a request with the device graph's message (integer
/// interpreter) is answered as the interpreter answers; SIGINT stops it with exit 0.
#[test]
fn serve_a_compiled_cloud_part() {
    let d = common::tmp("serve-compiled");
    common::ok(&common::clio_in(&d, &["build-model", "mobilenet_v2_small", "--width", "0.25", "-o", "m.clio"]));
    common::ok(&common::clio_in(
        &d,
        &["opt", "m.clio", "-p", "fuse-bn,slice{cut=3,sizes=4:8,bandwidth=none}", "-o", "s.clio"],
    ));
    common::ok(&common::clio_in(
        &d,
        &["opt", "s.clio", "-p", "quantize{scheme=int8,calib=random:1,samples=4,graph=device}", "-o", "q.clio"],
    ));
    common::ok(&common::clio_in(&d, &["compile", "q.clio", "--target", "stm32f7", "-o", "out"]));
    let q = clio::io::load_module(&d.join("q.clio"), &Default::default()).unwrap();
    let x = clio::ir::Tensor::from_f32(vec![1, 1, 28, 28], (0..784).map(|i| (i % 29) as f32 / 14.0 - 1.0).collect())
        .unwrap();
    let sent = clio::interp::run_int(&q, "device", &[x]).unwrap().remove(0);
    let g = q.graph("device").unwrap();
    let quant = g.value_type(g.outputs()[0]).unwrap().quant.clone();
    let channels = sent.shape()[1];
    let msg = clio::quant::wire::encode(&sent, quant.as_ref(), 1, channels).unwrap();
    let (mut server, addr, mut out) = spawn_serve(&d, &["out"]);
    let mut s = connect(addr);
    // 6 channels arrive: the 4-channel head answers.
    let part = clio::quant::wire::truncate_channels(&msg, 6, &clio::Limits::default()).unwrap();
    let a = clio_runtime::client::request(&mut s, 1, 3, 1_000_000, &part, 2).unwrap();
    let clio::ir::TensorData::I8(v) = sent.data() else { panic!("not i8") };
    let per = v.len() / channels;
    let x4 = clio::ir::Tensor::new(
        vec![1, 4, sent.shape()[2], sent.shape()[3]],
        clio::ir::TensorData::I8(v[..4 * per].to_vec()),
    )
    .unwrap();
    let want = clio::interp::run_int(&q, "cloud.s4", &[x4]).unwrap().remove(0);
    assert_eq!((a.cut, a.received, a.used, a.reason), (3, 6, 4, Reason::Done));
    assert_eq!(a.scores, want.as_f32().unwrap());
    drop(s);
    let kill = Command::new("kill").args(["-INT", &server.0.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = server.0.wait().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(rest.starts_with("shut down: served 1 requests"), "{rest}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn serve_bad_arguments_are_one_line_errors() {
    let d = common::tmp("serve-errors");
    common::ok(&common::clio_in(&d, &["build-model", "chain", "--layers", "2", "-o", "plain.clio"]));
    let serve = |args: &[&str]| {
        let mut a = vec!["serve"];
        a.extend_from_slice(args);
        common::clio_in(&d, &a)
    };
    common::one_line_error(&serve(&["missing.clio"]), "missing.clio");
    common::one_line_error(&serve(&["plain.clio"]), "clio.slice");
    common::one_line_error(&serve(&["plain.clio", "--idle-timeout-s", "0"]), "--idle-timeout-s");
    // The port is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fx = build(1);
    clio::io::save_module(&fx.cloud, &d.join("cloud.clio")).unwrap();
    let port = taken.local_addr().unwrap().to_string();
    common::one_line_error(&serve(&["cloud.clio", "--listen", &port]), "cannot listen");
    // The same cut twice.
    common::one_line_error(&serve(&["cloud.clio", "."]), "already served");
    let _ = std::fs::remove_dir_all(&d);
}
