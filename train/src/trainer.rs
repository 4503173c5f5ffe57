//! The training loop: minibatches of a dataset through the device graph, the cut tensor's first
//! `size_i` channels through every head, the loss `sum_i pi_i * CE_i`, one optimizer step.

use crate::checkpoint;
use crate::data::{shuffled_indices, Dataset, Normalize};
use crate::error::TrainError;
use crate::lower::{cross_entropy, forward, Mode};
use crate::objective::Objective;
use crate::optim::{Optimizer, OptimizerKind, Schedule};
use crate::params::ParamStore;
use candle_core::{Device, Tensor};
use clio::ir::Module;
use std::path::PathBuf;
use std::time::Instant;

/// Training settings. [`TrainConfig::default`] is a reasonable start for small networks on
/// 28x28 images (SGD, momentum 0.9, lr 0.05, cosine schedule, batch 64, weight decay 5e-4).
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Base learning rate.
    pub lr: f64,
    /// L2 weight decay (rank >= 2 weights).
    pub weight_decay: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Seed of the minibatch order (weights come from the module).
    pub seed: u64,
    /// Input normalisation (`None`: mean and std of the training pixels).
    pub normalize: Option<Normalize>,
    /// Write a checkpoint after every epoch into this directory.
    pub checkpoint_dir: Option<PathBuf>,
    /// Continue from the latest checkpoint in this directory.
    pub resume: Option<PathBuf>,
    /// Stop after this many epochs in total (the schedule still spans `epochs`): splits a long
    /// run into resumable parts.
    pub stop_after: Option<usize>,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 1,
            batch_size: 64,
            optimizer: OptimizerKind::Sgd { momentum: 0.9 },
            lr: 0.05,
            weight_decay: 5e-4,
            schedule: Schedule::Cosine { warmup: usize::MAX },
            seed: 0,
            normalize: None,
            checkpoint_dir: None,
            resume: None,
            stop_after: None,
            progress: false,
        }
    }
}

/// One epoch's record.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EpochLog {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean weighted loss over the epoch's steps.
    pub loss: f64,
    /// Mean loss of each head (objective order).
    pub head_loss: Vec<f64>,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Wall time.
    pub seconds: f64,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TrainReport {
    /// Per epoch (only the epochs run, when resuming).
    pub epochs: Vec<EpochLog>,
    /// Loss of every step, in order (for plots and tests).
    pub step_losses: Vec<f64>,
    /// Trainable scalars.
    pub trainable: usize,
    /// Normalisation used: mean and std of pixel/255.
    pub normalize: [f32; 2],
    /// Total wall time.
    pub seconds: f64,
}

/// Channels, height and width the graph `name` expects as input 0.
pub(crate) fn input_chw(m: &Module, name: &str) -> Result<[usize; 3], TrainError> {
    let g = m.graph(name).ok_or_else(|| TrainError::Module(format!("no graph @{name}")))?;
    let id = *g.inputs().first().ok_or_else(|| TrainError::Module(format!("graph @{name} has no input")))?;
    match g.node(id).ty().shape.as_slice() {
        [_, c, h, w] => Ok([*c, *h, *w]),
        s => Err(TrainError::Module(format!("graph @{name} takes {s:?}; training needs an NCHW image input"))),
    }
}

/// Checks that `data` fits the input `[c, h, w]` and returns the padding target.
pub(crate) fn fit_input(data: &Dataset, chw: [usize; 3]) -> Result<Option<usize>, TrainError> {
    let [c, h, w] = chw;
    if c != 1 {
        return Err(TrainError::Config(format!(
            "the model takes {c} input channels; {} images have 1 (build the model with --in-channels 1)",
            data.name
        )));
    }
    if h != w || h < data.height || w < data.width {
        return Err(TrainError::Config(format!(
            "the model takes {h}x{w} inputs; {} images are {}x{} (square inputs of at least the image size pad)",
            data.name, data.height, data.width
        )));
    }
    Ok((h > data.height).then_some(h))
}

/// A batch as candle tensors: images `[B, 1, H, W]` and labels `[B]`.
pub(crate) fn batch_tensors(
    data: &Dataset,
    idx: &[usize],
    norm: Normalize,
    pad_to: Option<usize>,
) -> Result<(Tensor, Tensor), TrainError> {
    let (x, y) = data.batch(idx, norm, pad_to)?;
    let side = pad_to.unwrap_or(data.height);
    let side_w = pad_to.unwrap_or(data.width);
    let x = Tensor::from_vec(x, (idx.len(), 1, side, side_w), &Device::Cpu)?;
    let y = Tensor::from_vec(y, idx.len(), &Device::Cpu)?;
    Ok((x, y))
}

/// The logits of every head of `obj` on the batch `x`: the device graph once, then each head on
/// the first `size_i` channels of the cut tensor (or on `x` itself for an unsliced module).
pub(crate) fn head_logits(
    m: &Module,
    obj: &Objective,
    params: &mut ParamStore,
    x: &Tensor,
    mode: Mode,
) -> Result<Vec<Tensor>, TrainError> {
    let graph = |name: &str| m.graph(name).ok_or_else(|| TrainError::Module(format!("no graph @{name}")));
    let cut = match &obj.device {
        Some(d) => forward(graph(d)?, std::slice::from_ref(x), params, mode)?.swap_remove(0),
        None => x.clone(),
    };
    obj.heads
        .iter()
        .map(|h| {
            let input = if obj.device.is_some() { cut.narrow(1, 0, h.size)? } else { cut.clone() };
            Ok(forward(graph(&h.graph)?, &[input], params, mode)?.swap_remove(0))
        })
        .collect()
}

/// The weighted loss of one batch and each head's loss.
pub(crate) fn batch_loss(
    m: &Module,
    obj: &Objective,
    params: &mut ParamStore,
    x: &Tensor,
    y: &Tensor,
    mode: Mode,
) -> Result<(Tensor, Vec<f64>), TrainError> {
    let mut total: Option<Tensor> = None;
    let mut per_head = vec![];
    for (h, logits) in obj.heads.iter().zip(head_logits(m, obj, params, x, mode)?) {
        let loss = cross_entropy(&logits, y)?;
        per_head.push(loss.to_scalar::<f32>()? as f64);
        let weighted = loss.affine(h.pi, 0.0)?;
        total = Some(match total {
            Some(t) => t.add(&weighted)?,
            None => weighted,
        });
    }
    let total = total.ok_or_else(|| TrainError::Config("the objective has no heads".into()))?;
    Ok((total, per_head))
}

/// Trains `m` on `data` with objective `obj`; the trained weights (and batch-norm running
/// statistics) are written back into `m`.
pub fn train(m: &mut Module, data: &Dataset, obj: &Objective, cfg: &TrainConfig) -> Result<TrainReport, TrainError> {
    if cfg.epochs == 0 || cfg.batch_size == 0 {
        return Err(TrainError::Config("epochs and batch size must be at least 1".into()));
    }
    if !(cfg.lr.is_finite() && cfg.lr > 0.0 && cfg.weight_decay >= 0.0) {
        return Err(TrainError::Config(format!("lr must be positive (got {}), weight decay >= 0", cfg.lr)));
    }
    if data.count < cfg.batch_size {
        return Err(TrainError::Config(format!(
            "batch size {} exceeds the {} training images",
            cfg.batch_size, data.count
        )));
    }
    let first = obj.device.clone().unwrap_or_else(|| obj.heads[0].graph.clone());
    let pad_to = fit_input(data, input_chw(m, &first)?)?;
    let norm = cfg.normalize.unwrap_or_else(|| pixel_stats(data));
    let mut params = ParamStore::from_module(m, &obj.graphs())?;
    let mut opt = Optimizer::new(cfg.optimizer, cfg.weight_decay);
    let steps_per_epoch = data.count / cfg.batch_size;
    let total_steps = steps_per_epoch * cfg.epochs;
    let mut start_epoch = 0;
    if let Some(dir) = &cfg.resume {
        let ck = checkpoint::load_latest(dir)?;
        start_epoch = ck.epoch;
        ck.restore(&mut params, &mut opt)?;
    }
    let started = Instant::now();
    let mut report = TrainReport {
        epochs: vec![],
        step_losses: vec![],
        trainable: params.trainable_len(),
        normalize: [norm.mean, norm.std],
        seconds: 0.0,
    };
    let end_epoch = cfg.stop_after.map_or(cfg.epochs, |s| s.min(cfg.epochs));
    for epoch in start_epoch..end_epoch {
        let t0 = Instant::now();
        let order = shuffled_indices(data.count, cfg.seed, epoch as u64);
        let bar = progress_bar(cfg.progress, steps_per_epoch, epoch + 1, cfg.epochs);
        let (mut sum, mut head_sum) = (0.0, vec![0.0; obj.heads.len()]);
        let mut lr = cfg.lr;
        for step in 0..steps_per_epoch {
            let idx = &order[step * cfg.batch_size..(step + 1) * cfg.batch_size];
            let (x, y) = batch_tensors(data, idx, norm, pad_to)?;
            let (loss, per_head) = batch_loss(m, obj, &mut params, &x, &y, Mode::Train)?;
            let value = loss.to_scalar::<f32>()?;
            if !value.is_finite() {
                return Err(TrainError::Diverged { epoch: epoch + 1, step: step + 1, value });
            }
            let grads = loss.backward()?;
            lr = cfg.schedule.rate(cfg.lr, epoch * steps_per_epoch + step, total_steps, epoch);
            opt.step(&params, &grads, lr)?;
            sum += value as f64;
            for (a, b) in head_sum.iter_mut().zip(&per_head) {
                *a += b;
            }
            report.step_losses.push(value as f64);
            bar.set_message(format!("loss {value:.4}"));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let n = steps_per_epoch.max(1) as f64;
        report.epochs.push(EpochLog {
            epoch: epoch + 1,
            loss: sum / n,
            head_loss: head_sum.iter().map(|s| s / n).collect(),
            lr,
            seconds: t0.elapsed().as_secs_f64(),
        });
        if let Some(dir) = &cfg.checkpoint_dir {
            params.write_back(m)?;
            checkpoint::save(dir, epoch + 1, cfg.seed, m, &opt)?;
        }
    }
    params.write_back(m)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Mean and standard deviation of the dataset's pixels, scaled to [0, 1].
pub fn pixel_stats(data: &Dataset) -> Normalize {
    let n = data.images.len().max(1) as f64;
    let mean = data.images.iter().map(|p| *p as f64 / 255.0).sum::<f64>() / n;
    let var = data.images.iter().map(|p| (*p as f64 / 255.0 - mean).powi(2)).sum::<f64>() / n;
    Normalize { mean: mean as f32, std: var.sqrt().max(1e-6) as f32 }
}

fn progress_bar(show: bool, len: usize, epoch: usize, epochs: usize) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps {msg} ({elapsed}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    bar
}
