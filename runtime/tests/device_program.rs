//! The adaptive device program end to end against a stand-in server on loopback: two compiled
//! device modules (two cuts), a step trace (fast, then slow), the bandwidth estimate learning
//! from the shaped sends, one switch to the cut that suits the slow link (with its cost paid),
//! channels streamed in order until the deadline, and a log line per decision and per frame.

use clio::pass::PassManager;
use clio::quant::math::SplitMix64;
use clio::text::{parse_module, ParseOptions};
use clio::trace::BandwidthTrace;
use clio_passes::plan::policy::Policy;
use clio_passes::plan::simulate::{AccuracyProfile, Estimator, ProfileEntry};
use clio_passes::plan::Plan;
use clio_runtime::device::clock::TraceClock;
use clio_runtime::device::estimator::BandwidthEstimator;
use clio_runtime::device::module::DeviceModule;
use clio_runtime::device::program::{protocol_framing, Deployed, Device, Image, LogLine, ProgramConfig};
use clio_runtime::device::shaper::LinkShaper;
use clio_runtime::protocol::{read_frame, Answer, Frame, Reason, DEFAULT_MAX_FRAME};
use clio_targets::stm32::{lower, shim_files, Stm32Options};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;

#[path = "../../passes/tests/support/synthetic_plan.rs"]
mod synthetic_plan;
use synthetic_plan::{cut_plan, plan};

fn compile_dir(cut: &str, dir: &Path) {
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/ir/quantize_int8_cnn.clio")).unwrap();
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    let pipe = format!("quantize{{scheme=int8,calib=random:1,samples=4}},partition{{cut={cut},granularity=layer}}");
    PassManager::from_pipeline(&clio_passes::registry(), &pipe).unwrap().run(&mut m).unwrap();
    let c = lower(&m, &Stm32Options::default()).unwrap();
    std::fs::create_dir_all(dir.join("cmsis_nn")).unwrap();
    c.write_to(dir).unwrap();
    for (name, text) in shim_files(c.api) {
        std::fs::write(dir.join("cmsis_nn").join(name), text).unwrap();
    }
    let manifest = serde_json::json!({
        "device": { "source": c.source_name(), "input": c.report.input, "output": c.report.output }
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
}

/// Cut 1 (4x8x8, 64 B per channel) is best when all of it arrives; cut 2 (4x4x4, 16 B per
/// channel) is better on a slow link.
fn setup() -> (Plan, AccuracyProfile) {
    let cuts =
        vec![cut_plan(1, vec![1, 4, 8, 8], 64, 0.06, 0.002, 1), cut_plan(2, vec![1, 4, 4, 4], 16, 0.06, 0.002, 1)];
    let plan = plan(0.1, (20e3, 500e3), 1, cuts);
    let mut entries = vec![];
    for (k, accs) in [(1usize, [0.2, 0.3, 0.85, 0.9]), (2, [0.4, 0.5, 0.55, 0.6])] {
        for (i, a) in accs.iter().enumerate() {
            entries.push(ProfileEntry { cut: k, channels: i + 1, accuracy: *a });
        }
    }
    (plan, AccuracyProfile { model: "m".into(), entries })
}

/// Answers every request with the channels that arrived (a head for every slice size), class 1;
/// checks the channels come in order. Returns the requests' (cut, received) pairs.
fn stand_in_server(listener: TcpListener) -> std::thread::JoinHandle<Vec<(u32, u32)>> {
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut seen = vec![];
        let mut open: Option<(u32, u32, u32)> = None;
        while let Ok(f) = read_frame(&mut s, DEFAULT_MAX_FRAME) {
            match f {
                Frame::Begin { request, cut, header, .. } => {
                    clio::quant::wire::parse_header(&header, &clio::Limits::default()).unwrap();
                    open = Some((request, cut, 0));
                }
                Frame::Channels { request, first, count, .. } => {
                    let o = open.as_mut().unwrap();
                    assert_eq!((request, first), (o.0, o.2), "channels out of order");
                    o.2 += count;
                }
                Frame::Done { request } => {
                    let (r, cut, received) = open.take().unwrap();
                    assert_eq!(r, request);
                    seen.push((cut, received));
                    let a = Answer {
                        request,
                        cut,
                        received,
                        used: received,
                        class: if received > 0 { 1 } else { -1 },
                        reason: Reason::Done,
                        wait_us: 0,
                        compute_us: 0,
                        scores: vec![],
                    };
                    s.write_all(&Frame::Result(a).encode()).unwrap();
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        seen
    })
}

/// What one device run on the step trace produced.
struct StepRun {
    summary: clio_runtime::device::program::Summary,
    frames: Vec<clio_runtime::device::program::FrameLog>,
    lines: Vec<LogLine>,
    /// (cut, channels) of every frame the stand-in server received.
    seen: Vec<(u32, u32)>,
}

/// Compiles the two cuts, runs 16 frames on a 400 -> 40 kbit/s step trace against the stand-in
/// server with the given estimator, and cleans up.
fn run_on_step_trace(tag: &str, estimator: Estimator) -> StepRun {
    let root = std::env::temp_dir().join(format!("clio-device-program-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    compile_dir("add", &root.join("cut1"));
    compile_dir("mp", &root.join("cut2"));
    let mut deployed = BTreeMap::new();
    for (k, d) in [(1usize, "cut1"), (2, "cut2")] {
        let module = DeviceModule::build(&root.join(d), &root.join("work")).unwrap();
        deployed.insert(k, Deployed { module, group: 1 });
    }
    let header = {
        let d = deployed.get_mut(&1).unwrap();
        let msg = d.module.invoke(&vec![0i8; d.module.input().bytes]).unwrap();
        clio::quant::wire::parse_header(&msg, &clio::Limits::default()).unwrap().payload_at
    };
    let (plan, profile) = setup();
    let link = clio_targets::load_link("ble").unwrap();
    let policy = Policy::new(&plan, &profile, link.as_ref(), vec![1, 2], 0.02).with_framing(protocol_framing(header));
    // 400 kbit/s for 2 s, then 40 kbit/s.
    let trace = BandwidthTrace::parse("0 0.4\n2 0.04\n100 0.04\n", "step", 1.0).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = stand_in_server(listener.try_clone().unwrap());
    let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    stream.set_nodelay(true).unwrap();
    let clock = TraceClock::starting_now(0.0);
    let mut device = Device {
        stream,
        policy: &policy,
        deployed,
        shaper: LinkShaper::new(trace, link.as_ref(), clock),
        estimator: BandwidthEstimator::new(0.5, 400e3),
    };
    let mut r = SplitMix64::new(3);
    let images: Vec<Image> =
        (0..4).map(|_| Image { nchw: (0..192).map(|_| r.normal() as f32).collect(), label: 1 }).collect();
    let mut lines = vec![];
    let cfg = ProgramConfig { frames: 16, period_s: 0.25, emulate_device_latency: true, estimator };
    let (summary, frames) = device.run(&images, &cfg, &mut |l: &LogLine| lines.push(l.clone())).unwrap();
    drop(device);
    let seen = server.join().unwrap();
    let _ = std::fs::remove_dir_all(&root);
    StepRun { summary, frames, lines, seen }
}

#[test]
fn the_device_switches_cut_when_the_link_slows_down() {
    let StepRun { summary, frames, lines, seen } = run_on_step_trace("mean", Estimator::Mean);

    // A decision line before every frame line.
    assert_eq!(lines.len(), 32);
    for (i, pair) in lines.chunks(2).enumerate() {
        assert!(matches!(&pair[0], LogLine::Decision(d) if d.frame == i), "{pair:?}");
        assert!(matches!(&pair[1], LogLine::Frame(f) if f.frame == i), "{pair:?}");
    }
    // The server saw what the device says it sent, cut and all.
    assert_eq!(seen, frames.iter().map(|f| (f.cut as u32, f.sent as u32)).collect::<Vec<_>>());
    // Fast phase (frames at 0 .. 1.5 s): cut 1, every channel.
    for f in &frames[..7] {
        assert_eq!((f.cut, f.sent, f.used), (1, 4, 4), "{f:?}");
        assert!(!f.late && !f.miss);
    }
    // Slow phase: one switch to cut 2, which stays.
    assert_eq!(summary.switches, 1, "{frames:#?}");
    let sw = frames.iter().position(|f| f.switched).unwrap();
    assert!((9..=12).contains(&sw), "switched at frame {sw}");
    assert_eq!(frames[sw].cut, 2);
    assert!(frames[sw..].iter().all(|f| f.cut == 2));
    // The switch cost is paid: budget 60 - 20 ms, and the frame lasts at least the cost.
    let d = lines
        .iter()
        .find_map(|l| match l {
            LogLine::Decision(d) if d.frame == sw => Some(d.clone()),
            _ => None,
        })
        .unwrap();
    assert!(d.switching && (d.radio_budget_s - 0.04).abs() < 1e-9, "{d:?}");
    assert!(frames[sw].latency_ms >= 22.0, "{:?}", frames[sw]);
    // The first slow frame on cut 1 could not send every channel before the deadline.
    assert!(frames[sw - 1].cut == 1 && frames[sw - 1].sent < 4, "{:?}", frames[sw - 1]);
    // On cut 2 at 40 kbit/s the whole tensor (Begin + 4 x (17 + 16) bytes) fits the 60 ms.
    for f in &frames[sw + 1..] {
        assert_eq!(f.used, 4, "{f:?}");
    }
    // The estimate has learnt the slow rate from the sends alone.
    let last = frames.last().unwrap();
    assert!((last.estimate_bps - 40e3).abs() < 0.05 * 40e3, "{last:?}");
    assert!(summary.correct == summary.frames - summary.misses);
}

#[test]
fn the_distribution_estimator_switches_too() {
    // `clio device --estimator distribution`: the policy scores each cut over the window's
    // per-send throughputs instead of their mean. On the same step it must also serve the fast
    // phase on cut 1 with every channel and end on cut 2 for good once the link is slow.
    let StepRun { summary, frames, lines, seen } = run_on_step_trace("distribution", Estimator::Distribution);
    assert_eq!(lines.len(), 32);
    assert_eq!(seen, frames.iter().map(|f| (f.cut as u32, f.sent as u32)).collect::<Vec<_>>());
    for f in &frames[..7] {
        assert_eq!((f.cut, f.sent, f.used), (1, 4, 4), "{f:?}");
    }
    assert_eq!(summary.switches, 1, "{frames:#?}");
    let sw = frames.iter().position(|f| f.switched).unwrap();
    assert!((9..=12).contains(&sw), "switched at frame {sw}");
    assert!(frames[sw..].iter().all(|f| f.cut == 2), "{frames:#?}");
    assert!(frames[sw + 1..].iter().all(|f| f.used == 4), "{frames:#?}");
    // The estimate stays within the rates the link had.
    for f in &frames {
        assert!(f.estimate_bps > 30e3 && f.estimate_bps < 420e3, "{f:?}");
    }
}
