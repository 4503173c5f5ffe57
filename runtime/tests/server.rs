//! The cloud server in process on 127.0.0.1:0, with a tiny sliced int8 model: answers are the
//! interpreter's (bit for bit), the widest head the received channels cover runs, the deadline
//! closes requests whose `Done` never comes, every protocol fault gets its error code and closes
//! only its own connection, idle / stalled connections time out, the connection limit answers
//! `busy`, and the shutdown flag ends `run` with its counters.

mod server_fixture;

use clio_runtime::client::{read_answer, request, send, send_request, ClientError};
use clio_runtime::protocol::{read_frame, ErrorCode, Frame, Reason, DEFAULT_MAX_FRAME};
use clio_runtime::server::{CloudModel, Server, ServerConfig, ServerStats};
use server_fixture::{build, Fixture, CHANNELS};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| build(3))
}

struct Running {
    addr: SocketAddr,
    flag: Arc<AtomicBool>,
    thread: JoinHandle<ServerStats>,
}

impl Running {
    fn stop(self) -> ServerStats {
        self.flag.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

fn start(config: ServerConfig) -> Running {
    start_with(config, CloudModel::from_module(fixture().cloud.clone()).unwrap())
}

fn start_with(config: ServerConfig, model: CloudModel) -> Running {
    let server = Server::bind(config, model).unwrap();
    let addr = server.local_addr();
    let flag = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&flag);
    Running { addr, flag, thread: std::thread::spawn(move || server.run(f)) }
}

fn quick() -> ServerConfig {
    ServerConfig {
        idle_timeout: Duration::from_secs(5),
        stall_timeout: Duration::from_secs(5),
        shutdown_grace: Duration::from_secs(2),
        ..Default::default()
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A full request for input `i` with `channels` channels sent in groups of `group`.
fn ask(s: &mut TcpStream, id: u32, i: usize, channels: usize, group: usize) -> clio_runtime::protocol::Answer {
    let f = fixture();
    request(s, id, f.cut, 5_000_000, &f.prefix(i, channels), group).unwrap()
}

/// Checks an answer against the interpreter, bit for bit.
fn check(a: &clio_runtime::protocol::Answer, i: usize, received: usize) {
    let used = Fixture::used(received);
    let (class, scores) = fixture().expected(i, used);
    assert_eq!((a.received as usize, a.used as usize, a.class), (received, used, class), "{a:?}");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a.scores), bits(&scores), "scores of input {i} with {received} channels");
}

/// The next frame must be an `Error` with `code`, and the server must then close.
fn expect_error_and_close(s: &mut TcpStream, code: ErrorCode) -> String {
    match read_frame(s, DEFAULT_MAX_FRAME) {
        Ok(Frame::Error { code: c, message, .. }) => {
            assert_eq!(c, code, "{message}");
            let mut rest = [0u8; 16];
            assert_eq!(s.read(&mut rest).unwrap_or(0), 0, "the server closes after an error");
            message
        }
        other => panic!("expected error {code}, got {other:?}"),
    }
}

#[test]
fn full_requests_answer_what_the_interpreter_gives() {
    let srv = start(quick());
    let mut s = connect(srv.addr);
    // Several requests on one connection, channel groups of 1, 3 and 8.
    for (id, (i, group)) in [(0, 1), (1, 3), (2, 8), (0, 8)].into_iter().enumerate() {
        let a = ask(&mut s, id as u32 + 1, i, CHANNELS, group);
        assert_eq!(a.reason, Reason::Done);
        assert_eq!(a.cut, fixture().cut);
        check(&a, i, CHANNELS);
        assert!(a.compute_us > 0 && a.compute_us < 5_000_000, "{a:?}");
    }
    drop(s);
    let st = srv.stop();
    assert_eq!((st.answered, st.answered_done, st.deadline_misses), (4, 4, 0), "{st:?}");
    assert_eq!(st.error_total(), 0, "{st:?}");
}

#[test]
fn a_prefix_runs_the_widest_head_it_covers() {
    // The heads really differ, so running the wrong one would show.
    let f = fixture();
    let (s2, s4, s8) = (f.expected(1, 2).1, f.expected(1, 4).1, f.expected(1, 8).1);
    assert!(s2 != s4 && s4 != s8 && s2 != s8, "{s2:?} {s4:?} {s8:?}");
    assert_eq!(CloudModel::from_module(f.cloud.clone()).unwrap().max_frame_needed(), 1024);
    let srv = start(quick());
    let mut s = connect(srv.addr);
    for (id, channels) in [1usize, 2, 3, 5, 7, 8].into_iter().enumerate() {
        let a = ask(&mut s, id as u32 + 10, 1, channels, 2);
        check(&a, 1, channels);
        if channels == 1 {
            assert_eq!((a.used, a.class), (0, -1));
            assert!(a.scores.is_empty());
        }
    }
    drop(s);
    let st = srv.stop();
    assert_eq!((st.answered, st.deadline_misses), (6, 1), "{st:?}");
}

#[test]
fn a_request_without_done_is_answered_at_its_deadline_and_late_frames_are_dropped() {
    let srv = start(quick());
    let f = fixture();
    let mut s = connect(srv.addr);
    let t0 = Instant::now();
    send_request(&mut s, 5, f.cut, 200_000, &f.prefix(2, 5), 2, false).unwrap();
    let a = read_answer(&mut s, 5).unwrap();
    let took = t0.elapsed();
    assert_eq!(a.reason, Reason::Deadline);
    check(&a, 2, 5);
    eprintln!("deadline answer: wait {} us for a 200000 us budget, {took:?} round trip", a.wait_us);
    // Tolerance: the machine may be busy (2 shared cores); measured 0.1-0.2 ms late.
    assert!(a.wait_us >= 200_000 && a.wait_us < 1_500_000, "{a:?}");
    assert!(took >= Duration::from_millis(200) && took < Duration::from_millis(1700), "{took:?}");
    // Channels and Done for the answered request are late: dropped, and the connection serves on.
    send(&mut s, &Frame::Channels { request: 5, first: 5, count: 1, payload: vec![0; 64] }).unwrap();
    send(&mut s, &Frame::Done { request: 5 }).unwrap();
    let a = ask(&mut s, 6, 0, 8, 4);
    check(&a, 0, 8);
    // A deadline before the smallest slice arrived: a miss, answered with used 0.
    send_request(&mut s, 7, f.cut, 150_000, &f.prefix(0, 1), 1, false).unwrap();
    let a = read_answer(&mut s, 7).unwrap();
    assert_eq!((a.reason, a.received, a.used, a.class), (Reason::Deadline, 1, 0, -1));
    drop(s);
    let st = srv.stop();
    assert_eq!((st.answered, st.answered_deadline, st.deadline_misses, st.late_frames), (3, 2, 1, 2), "{st:?}");
}

/// Raw bytes of a frame with a custom length prefix.
fn raw(len: u32, body: &[u8]) -> Vec<u8> {
    let mut b = len.to_le_bytes().to_vec();
    b.extend_from_slice(body);
    b
}

fn begin(f: &Fixture, request: u32, cut: u32) -> Frame {
    let h = clio::quant::wire::parse_header(&f.messages[0], &clio::Limits::default()).unwrap();
    Frame::Begin { request, cut, budget_us: 1_000_000, header: f.messages[0][..h.payload_at].to_vec() }
}

#[test]
fn protocol_faults_get_their_error_code_and_close_only_their_connection() {
    let srv = start(quick());
    let f = fixture();
    let h = clio::quant::wire::parse_header(&f.messages[0], &clio::Limits::default()).unwrap();
    let payload = |first: usize, count: usize| {
        f.messages[0][h.payload_at + first * h.channel_bytes()..h.payload_at + (first + count) * h.channel_bytes()]
            .to_vec()
    };
    // A tensor of another quantization than the heads read.
    let other_quant = {
        let q = clio::ir::Quant::affine(0.123, 3);
        clio::quant::wire::encode(&f.sent[0], Some(&q), 1, CHANNELS).unwrap()
    };
    let cases: Vec<(&str, Vec<Vec<u8>>, ErrorCode)> = vec![
        ("zero length", vec![raw(0, &[])], ErrorCode::Malformed),
        ("length above the limit", vec![raw(DEFAULT_MAX_FRAME as u32 + 1, &[1, 2, 3])], ErrorCode::Malformed),
        // The frame limit is lowered to what the served tensor needs (1 KiB here).
        ("length above what the tensors need", vec![raw(2000, &[0x02; 16])], ErrorCode::Malformed),
        ("unknown type", vec![raw(1, &[0x55])], ErrorCode::Malformed),
        ("short done body", vec![raw(3, &[0x03, 1, 2])], ErrorCode::Malformed),
        ("a result from the device", vec![raw(1, &[0x81])], ErrorCode::Malformed),
        ("unknown cut", vec![begin(f, 1, 99).encode()], ErrorCode::UnknownCut),
        (
            "mismatched tensor",
            vec![{
                let hh = clio::quant::wire::parse_header(&other_quant, &clio::Limits::default()).unwrap();
                Frame::Begin { request: 1, cut: f.cut, budget_us: 1000, header: other_quant[..hh.payload_at].to_vec() }
                    .encode()
            }],
            ErrorCode::BadTensor,
        ),
        (
            "not a wire header",
            vec![Frame::Begin { request: 1, cut: f.cut, budget_us: 1000, header: b"JUNKJUNKJUNK".to_vec() }.encode()],
            ErrorCode::BadTensor,
        ),
        (
            "channels out of order",
            vec![
                begin(f, 1, f.cut).encode(),
                Frame::Channels { request: 1, first: 2, count: 2, payload: payload(2, 2) }.encode(),
            ],
            ErrorCode::OutOfOrder,
        ),
        (
            "channels of another request",
            vec![
                begin(f, 1, f.cut).encode(),
                Frame::Channels { request: 2, first: 0, count: 2, payload: payload(0, 2) }.encode(),
            ],
            ErrorCode::OutOfOrder,
        ),
        ("done without begin", vec![Frame::Done { request: 4 }.encode()], ErrorCode::OutOfOrder),
        ("a second begin", vec![begin(f, 1, f.cut).encode(), begin(f, 2, f.cut).encode()], ErrorCode::OutOfOrder),
        (
            "payload of the wrong size",
            vec![
                begin(f, 1, f.cut).encode(),
                Frame::Channels { request: 1, first: 0, count: 1, payload: payload(0, 2) }.encode(),
            ],
            ErrorCode::BadTensor,
        ),
        (
            "channels beyond the tensor",
            vec![
                begin(f, 1, f.cut).encode(),
                Frame::Channels { request: 1, first: 0, count: 8, payload: payload(0, 8) }.encode(),
                Frame::Channels { request: 1, first: 8, count: 1, payload: payload(0, 1) }.encode(),
            ],
            ErrorCode::BadTensor,
        ),
    ];
    for (what, frames, code) in &cases {
        let mut s = connect(srv.addr);
        for fr in frames {
            s.write_all(fr).unwrap();
        }
        let msg = expect_error_and_close(&mut s, *code);
        assert!(!msg.is_empty(), "{what}");
        // Another connection is still served correctly.
        let mut ok = connect(srv.addr);
        check(&ask(&mut ok, 1, 2, 8, 3), 2, 8);
    }
    // Truncated: the frame announces more than is sent, then the device closes its side.
    let mut s = connect(srv.addr);
    let full = begin(f, 1, f.cut).encode();
    s.write_all(&full[..full.len() - 3]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let msg = expect_error_and_close(&mut s, ErrorCode::Truncated);
    assert!(msg.contains("middle of a frame"), "{msg}");
    let mut ok = connect(srv.addr);
    check(&ask(&mut ok, 1, 0, 6, 6), 0, 6);
    drop(ok);
    let st = srv.stop();
    assert_eq!(st.error_total(), cases.len() as u64 + 1, "{st:?}");
    assert_eq!(st.errors.get("truncated"), Some(&1), "{st:?}");
    assert_eq!(st.answered, cases.len() as u64 + 1);
}

#[test]
fn idle_and_stalled_connections_time_out() {
    let srv = start(ServerConfig {
        idle_timeout: Duration::from_millis(300),
        stall_timeout: Duration::from_millis(300),
        ..quick()
    });
    let t0 = Instant::now();
    let mut idle = connect(srv.addr);
    expect_error_and_close(&mut idle, ErrorCode::Timeout);
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(2000), "{took:?}");
    // Half a frame, then nothing.
    let mut stalled = connect(srv.addr);
    let full = begin(fixture(), 1, fixture().cut).encode();
    stalled.write_all(&full[..10]).unwrap();
    let msg = expect_error_and_close(&mut stalled, ErrorCode::Truncated);
    assert!(msg.contains("stalled"), "{msg}");
    // A request answered at its deadline, then the stalled rest of a frame: answer, then error.
    let f = fixture();
    let mut s = connect(srv.addr);
    send_request(&mut s, 3, f.cut, 100_000, &f.prefix(1, 4), 4, false).unwrap();
    s.write_all(&Frame::Done { request: 3 }.encode()[..2]).unwrap();
    check(&read_answer(&mut s, 3).unwrap(), 1, 4);
    expect_error_and_close(&mut s, ErrorCode::Truncated);
    let st = srv.stop();
    assert_eq!(st.errors.get("timeout"), Some(&1), "{st:?}");
    assert_eq!((st.errors.get("truncated"), st.stalled), (Some(&2), 2), "{st:?}");
}

#[test]
fn connections_beyond_the_limit_are_busy() {
    let srv = start(ServerConfig { max_connections: 2, ..quick() });
    let mut a = connect(srv.addr);
    let mut b = connect(srv.addr);
    // Both are being served (an answer each proves the server accepted them).
    check(&ask(&mut a, 1, 0, 8, 8), 0, 8);
    check(&ask(&mut b, 1, 1, 8, 8), 1, 8);
    let mut c = connect(srv.addr);
    let msg = expect_error_and_close(&mut c, ErrorCode::Busy);
    assert!(msg.contains("limit of 2"), "{msg}");
    // A freed slot is reusable.
    drop(a);
    let t0 = Instant::now();
    loop {
        let mut d = connect(srv.addr);
        match request(&mut d, 1, fixture().cut, 1_000_000, &fixture().prefix(2, 8), 8) {
            Ok(ans) => {
                check(&ans, 2, 8);
                break;
            }
            Err(ClientError::Server { code: ErrorCode::Busy, .. }) if t0.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("{e}"),
        }
    }
    drop(b);
    let st = srv.stop();
    assert!(st.rejected_busy >= 1 && st.errors.get("busy") == Some(&st.rejected_busy), "{st:?}");
    assert_eq!(st.peak_connections, 2, "{st:?}");
}

#[test]
fn shutdown_answers_open_requests_tells_idle_connections_and_returns_the_counters() {
    let srv = start(quick());
    let f = fixture();
    let mut idle = connect(srv.addr);
    check(&ask(&mut idle, 1, 0, 8, 2), 0, 8);
    let mut open = connect(srv.addr);
    send_request(&mut open, 2, f.cut, 600_000, &f.prefix(1, 4), 2, false).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    let (flag, thread) = (srv.flag, srv.thread);
    flag.store(true, Ordering::SeqCst);
    expect_error_and_close(&mut idle, ErrorCode::ShuttingDown);
    // The open request is still answered at its deadline, then the connection is told.
    let a = read_answer(&mut open, 2).unwrap();
    assert_eq!(a.reason, Reason::Deadline);
    check(&a, 1, 4);
    expect_error_and_close(&mut open, ErrorCode::ShuttingDown);
    let st = thread.join().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!((st.answered, st.accepted, st.panics), (2, 2, 0), "{st:?}");
    assert_eq!(st.errors.get("shutting-down"), Some(&2), "{st:?}");
    assert!(st.summary().starts_with("served 2 requests"), "{}", st.summary());
    // Nothing listens any more.
    assert!(TcpStream::connect(srv.addr).is_err());
}

#[test]
fn loading_rejects_modules_that_are_not_sliced_cloud_parts() {
    let mut m = fixture().cloud.clone();
    m.attrs.shift_remove("clio.slice");
    let e = CloudModel::from_module(m).unwrap_err().to_string();
    assert!(e.contains("clio.slice"), "{e}");
    let mut m = CloudModel::from_module(fixture().cloud.clone()).unwrap();
    let e = m.add(fixture().cloud.clone(), std::path::Path::new("again.clio")).unwrap_err().to_string();
    assert!(e.contains("already served"), "{e}");
    let c = m.cut(fixture().cut).unwrap();
    assert_eq!(c.heads.iter().map(|h| h.size).collect::<Vec<_>>(), vec![2, 4, 8]);
    assert_eq!(c.tensor.shape, vec![1, 8, 8, 8]);
    assert!(CloudModel::load(&[]).is_err());
}

/// A plain partition (no slicing) in a several-cut `clio compile` layout (`DIR/cloud_k1/`): one
/// head reading every channel, at the cut the directory names; fewer channels are a miss.
#[test]
fn a_plain_partition_is_served_as_one_full_width_head() {
    use clio::models::{chain, ChainConfig};
    use clio::pass::PassManager;
    let cfg = ChainConfig { layers: 3, channels: 8, spatial: 8, kernel: 3, batch_norm: false, classes: 10, seed: 7 };
    let mut m = chain(&cfg).unwrap();
    for p in ["partition{cut=1}", "quantize{scheme=int8,calib=random:3,samples=8,graph=device}"] {
        PassManager::from_pipeline(&clio_passes::registry(), p).unwrap().run(&mut m).unwrap();
    }
    let x = server_fixture::input(5);
    let sent = clio::interp::run_int(&m, "device", std::slice::from_ref(&x)).unwrap().remove(0);
    let g = m.graph("device").unwrap();
    let msg = clio::quant::wire::encode(&sent, g.value_type(g.outputs()[0]).unwrap().quant.as_ref(), 1, 8).unwrap();
    let want = clio::interp::run_int(&m, "cloud", &[sent]).unwrap().remove(0);
    let mut cloud = m.clone();
    cloud.remove_graph("device");
    let dir = std::env::temp_dir().join(format!("clio-server-plain-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("cloud_k1")).unwrap();
    clio::io::save_module(&cloud, &dir.join("cloud_k1/cloud.clio")).unwrap();
    let model = CloudModel::load(std::slice::from_ref(&dir)).unwrap();
    let c = model.cut(1).unwrap();
    assert_eq!((c.heads.len(), c.heads[0].size, c.heads[0].graph.as_str()), (1, 8, "cloud"));
    let srv = start_with(quick(), model);
    let mut s = connect(srv.addr);
    let a = request(&mut s, 1, 1, 1_000_000, &msg, 3).unwrap();
    assert_eq!((a.used, a.scores.as_slice()), (8, want.as_f32().unwrap()));
    let short = clio::quant::wire::truncate_channels(&msg, 7, &clio::Limits::default()).unwrap();
    let a = request(&mut s, 2, 1, 1_000_000, &short, 7).unwrap();
    assert_eq!((a.received, a.used, a.class), (7, 0, -1));
    drop(s);
    assert_eq!(srv.stop().answered, 2);
    // Without a cut index (a bare file), a plain partition is refused.
    let e = CloudModel::load(&[dir.join("cloud_k1/cloud.clio")]).unwrap_err().to_string();
    assert!(e.contains("cut index"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
