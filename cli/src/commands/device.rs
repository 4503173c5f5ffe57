//! `clio device`: the device program of split execution on the host.
//!
//! Builds the generated STM32 device C of every deployed cut (`--deploy K=DIR`, a `clio compile
//! --target stm32f7` output) into a shared library, reads test images (Fashion-MNIST, normalised
//! as in training), and runs one frame per period against a `clio serve` server: choose `<cut,
//! slice>` from the bandwidth estimate with the plan's policy (the one `clio simulate` replays),
//! run the device part, stream channel groups through a link shaper that follows the bandwidth
//! trace until the deadline, read the answer. Prints a one-line summary; `--log` writes one
//! JSON line per decision and per frame.

use clap::Args;
use clio::trace::BandwidthTrace;
use clio::Error;
use clio_passes::plan::policy::Policy;
use clio_runtime::device::clock::TraceClock;
use clio_runtime::device::estimator::BandwidthEstimator;
use clio_runtime::device::module::DeviceModule;
use clio_runtime::device::program::{protocol_framing, Deployed, Device, Estimator, Image, LogLine, ProgramConfig};
use clio_runtime::device::shaper::LinkShaper;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `clio device`.
#[derive(Args, Debug)]
pub struct DeviceArgs {
    /// The server (`clio serve`) address, HOST:PORT.
    #[arg(long)]
    pub server: String,
    /// The plan (JSON) written by `clio plan -o`.
    #[arg(long)]
    pub plan: PathBuf,
    /// Accuracy per <cut, channels> (as for `clio simulate`).
    #[arg(long)]
    pub profile: PathBuf,
    /// A deployed cut: `K=DIR`, DIR a `clio compile --target stm32f7` output (repeatable).
    #[arg(long = "deploy", required = true, value_name = "K=DIR")]
    pub deploy: Vec<String>,
    /// Bandwidth trace: `time_s throughput_Mbit_per_s` per line.
    #[arg(long)]
    pub trace: PathBuf,
    /// Multiply trace bandwidths by this (e.g. 0.05 to map 3G traces into the BLE band).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// The link: set-up latency and framing overhead (ble, wifi or a .json description).
    #[arg(long, default_value = "ble")]
    pub link: String,
    /// Frames to run.
    #[arg(long, default_value_t = 60)]
    pub frames: usize,
    /// Seconds between frames.
    #[arg(long, default_value_t = 1.0)]
    pub period_s: f64,
    /// The bandwidth estimate: throughput of the sends of the last N seconds.
    #[arg(long, default_value_t = 60.0)]
    pub window_s: f64,
    /// Partition-switch cost in milliseconds (slept on every switch).
    #[arg(long, default_value_t = 20.0)]
    pub switch_ms: f64,
    /// How the policy reads the window's sends: `mean` (Clio's rule: the best cut at their mean
    /// throughput) or `distribution` (the best mean accuracy over each send's throughput), as
    /// `clio simulate --estimator`.
    #[arg(long, default_value = "mean")]
    pub estimator: String,
    /// Start at this many seconds after the trace's first sample.
    #[arg(long, default_value_t = 0.0)]
    pub trace_offset_s: f64,
    /// Bandwidth estimate before the first send, bit/s (default: the link's nominal bandwidth).
    #[arg(long)]
    pub initial_estimate_bps: Option<f64>,
    /// Do not wait out the plan's device latency (the host runs the C far faster than the MCU).
    #[arg(long)]
    pub no_device_latency: bool,
    /// Dataset of the test images.
    #[arg(long, default_value = "fashion-mnist")]
    pub data: String,
    /// Index of the first test image.
    #[arg(long, default_value_t = 0)]
    pub first_image: usize,
    /// Input normalisation MEAN:STD of pixel/255 (default: the `clio.input_normalize` attribute
    /// of the first deployed cut's cloud.clio).
    #[arg(long)]
    pub normalize: Option<String>,
    /// Write one JSON line per decision and per frame here.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Where the shared libraries are built (default: a fresh directory under the temp dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

fn fail(m: impl std::fmt::Display) -> Error {
    Error::Format(m.to_string())
}

/// `K=DIR` pairs.
fn parse_deploy(specs: &[String]) -> Result<Vec<(usize, PathBuf)>, Error> {
    specs
        .iter()
        .map(|s| {
            let (k, dir) = s.split_once('=').ok_or_else(|| fail(format!("--deploy `{s}`: expected K=DIR")))?;
            let k = k.trim().parse::<usize>().map_err(|_| fail(format!("--deploy `{s}`: `{k}` is not a cut index")))?;
            Ok((k, PathBuf::from(dir)))
        })
        .collect()
}

/// MEAN:STD.
fn parse_norm(s: &str) -> Result<(f32, f32), Error> {
    let bad = || fail(format!("normalisation `{s}`: expected MEAN:STD with STD > 0"));
    let (m, d) = s.split_once(':').ok_or_else(bad)?;
    let (mean, std): (f32, f32) = (m.trim().parse().map_err(|_| bad())?, d.trim().parse().map_err(|_| bad())?);
    if !(mean.is_finite() && std.is_finite() && std > 0.0) {
        return Err(bad());
    }
    Ok((mean, std))
}

/// The normalisation recorded in a compile directory's cloud part.
fn recorded_norm(dir: &Path) -> Result<(f32, f32), Error> {
    let path = dir.join("cloud.clio");
    let m = crate::load::load_model(&path, &crate::load::InputArgs::default())?;
    match m.attrs.get("clio.input_normalize") {
        Some(clio::ir::Attr::Str(s)) => parse_norm(s),
        _ => Err(fail(format!("{}: no `clio.input_normalize` attribute; pass --normalize", path.display()))),
    }
}

/// Test images `first..first + n` of the dataset, normalised, padded to the model's input side.
#[cfg(feature = "train")]
fn images(a: &DeviceArgs, norm: (f32, f32), shape: &[usize]) -> Result<Vec<Image>, Error> {
    use clio_train::data::{load, Normalize, Split};
    let data = load(&a.data, Split::Test).map_err(fail)?;
    let side = shape.get(2).copied().unwrap_or(data.height);
    let pad = (side != data.height).then_some(side);
    let n = a.frames.min(data.count);
    if a.first_image + n > data.count {
        return Err(fail(format!("--first-image {}: the test split has {} images", a.first_image, data.count)));
    }
    (a.first_image..a.first_image + n)
        .map(|i| {
            let (x, y) = data.batch(&[i], Normalize { mean: norm.0, std: norm.1 }, pad).map_err(fail)?;
            Ok(Image { nchw: x, label: y.first().copied().unwrap_or(0) as usize })
        })
        .collect()
}

#[cfg(not(feature = "train"))]
fn images(_: &DeviceArgs, _: (f32, f32), _: &[usize]) -> Result<Vec<Image>, Error> {
    Err(fail("`clio device` reads its test images with the dataset loader: build clio with the `train` feature"))
}

/// Runs `clio device`.
pub fn run(a: DeviceArgs) -> Result<(), Error> {
    let (plan, profile) = crate::load::load_plan_and_profile(&a.plan, &a.profile)?;
    let link = clio_targets::load_link(&a.link).map_err(fail)?;
    let trace = BandwidthTrace::load(&a.trace, a.scale)?;
    let estimator = Estimator::parse(&a.estimator)
        .ok_or_else(|| Error::Format(format!("--estimator `{}`: expected mean or distribution", a.estimator)))?;
    if !(a.period_s > 0.0 && a.window_s >= 0.0 && a.switch_ms >= 0.0 && a.trace_offset_s >= 0.0) {
        return Err(fail("--period-s must be positive; --window-s, --switch-ms, --trace-offset-s non-negative"));
    }
    let deploy = parse_deploy(&a.deploy)?;
    let work = match &a.work_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("clio-device-{}", std::process::id())),
    };
    let mut deployed = BTreeMap::new();
    for (k, dir) in &deploy {
        let cut = plan.cut(*k).ok_or_else(|| fail(format!("--deploy {k}: the plan has no cut {k}")))?;
        if profile.curve(*k).is_empty() {
            return Err(fail(format!("--deploy {k}: the profile has no entry for cut {k}")));
        }
        let module = DeviceModule::build(dir, &work).map_err(fail)?;
        // One group = the plan's slice step at this cut.
        let group = cut.slices.first().map_or(1, |s| s.channels).max(1);
        deployed.insert(*k, Deployed { module, group });
    }
    let cuts: Vec<usize> = deploy.iter().map(|(k, _)| *k).collect();
    let norm = match &a.normalize {
        Some(s) => parse_norm(s)?,
        None => recorded_norm(&deploy[0].1)?,
    };
    let shape = deployed.values().next().map(|d| d.module.input().shape.clone()).unwrap_or_default();
    let images = images(&a, norm, &shape)?;
    // The protocol's bytes count against the radio budget: the wire header (from a first run of
    // the device part) rides in `Begin`, every group has a frame head.
    let header_bytes = match deployed.values_mut().next() {
        Some(d) => {
            let zeros = vec![0i8; d.module.input().bytes];
            let msg = d.module.invoke(&zeros).map_err(fail)?;
            clio::quant::wire::parse_header(&msg, &clio::Limits::default()).map_err(fail)?.payload_at
        }
        None => 0,
    };
    let framing = protocol_framing(header_bytes);
    let policy = Policy::new(&plan, &profile, link.as_ref(), cuts, a.switch_ms / 1e3).with_framing(framing);
    let stream =
        std::net::TcpStream::connect(&a.server).map_err(|e| fail(format!("connecting to {}: {e}", a.server)))?;
    stream.set_nodelay(true).map_err(|e| fail(format!("{}: {e}", a.server)))?;
    // A server that never answers does not hang the device.
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| fail(format!("{}: {e}", a.server)))?;
    let clock = TraceClock::starting_now(trace.start() + a.trace_offset_s);
    let initial = a.initial_estimate_bps.unwrap_or(link.nominal_bandwidth_bps());
    let mut device = Device {
        stream,
        policy: &policy,
        deployed,
        shaper: LinkShaper::new(trace, link.as_ref(), clock),
        estimator: BandwidthEstimator::new(a.window_s, initial),
    };
    let cfg = ProgramConfig {
        frames: a.frames,
        period_s: a.period_s,
        emulate_device_latency: !a.no_device_latency,
        estimator,
    };
    let mut lines = String::new();
    let result = device.run(&images, &cfg, &mut |l: &LogLine| {
        lines.push_str(&serde_json::to_string(l).unwrap_or_default());
        lines.push('\n');
    });
    if a.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    let (summary, _) = result.map_err(fail)?;
    if let Some(p) = &a.log {
        clio::io::write_atomic(p, lines.as_bytes())?;
    }
    if a.json {
        let mut v = serde_json::to_value(&summary).map_err(fail)?;
        v["accuracy"] = summary.accuracy().into();
        v["framing"] = serde_json::to_value(framing).map_err(fail)?;
        println!("{}", serde_json::to_string(&v).map_err(fail)?);
    } else {
        println!(
            "device: {} frames, accuracy {:.4} ({}/{} correct; profile {:.4}), misses {}, late {}, switches {}, \
             channels {:.1}, latency mean {:.1} ms p95 {:.1} ms (framing {}+{}/group bytes)",
            summary.frames,
            summary.accuracy(),
            summary.correct,
            summary.frames,
            summary.expected_accuracy,
            summary.misses,
            summary.late,
            summary.switches,
            summary.mean_channels,
            summary.mean_latency_ms,
            summary.p95_latency_ms,
            framing.begin_bytes,
            framing.group_bytes
        );
    }
    Ok(())
}
