//! Checkpoints: after every epoch, the module with its current weights (`epoch-N.clio` and its
//! safetensors sidecar), the optimizer moments (`epoch-N.optim.safetensors`) and `latest.json`
//! naming the last complete epoch. Each file is written atomically, `latest.json` last, so an
//! interrupted run resumes from the last complete checkpoint.

use crate::error::TrainError;
use crate::optim::Optimizer;
use crate::params::ParamStore;
use candle_core::{Device, Tensor};
use clio::ir::Module;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The small record in `latest.json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// Epochs completed.
    pub epoch: usize,
    /// Seed of the run.
    pub seed: u64,
    /// Optimizer steps taken.
    pub steps: u64,
}

/// A loaded checkpoint.
pub struct Loaded {
    /// Epochs completed.
    pub epoch: usize,
    module: Module,
    optimizer: Vec<(String, Tensor)>,
    steps: u64,
}

fn io(path: &Path, what: &str, e: impl std::fmt::Display) -> TrainError {
    TrainError::Clio(clio::Error::from(clio::error::IoError::new(path, what, e)))
}

fn module_path(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("epoch-{epoch}.clio"))
}

fn optim_path(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("epoch-{epoch}.optim.safetensors"))
}

/// Writes the checkpoint after `epoch` epochs: `m` (weights already written back) and the
/// optimizer state, into `dir`.
pub fn save(dir: &Path, epoch: usize, seed: u64, m: &Module, opt: &Optimizer) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, "cannot create the checkpoint directory", e))?;
    clio::io::save_module(m, &module_path(dir, epoch))?;
    let (tensors, steps) = opt.state();
    let map: HashMap<String, Tensor> = tensors.into_iter().collect();
    let tmp = dir.join(format!(".epoch-{epoch}.optim.tmp"));
    candle_core::safetensors::save(&map, &tmp)?;
    let target = optim_path(dir, epoch);
    std::fs::rename(&tmp, &target).map_err(|e| io(&target, "cannot write", e))?;
    let record = Checkpoint { epoch, seed, steps };
    let json = serde_json::to_string_pretty(&record).map_err(|e| TrainError::Module(e.to_string()))?;
    clio::io::write_atomic(&dir.join("latest.json"), json.as_bytes()).map_err(|e| TrainError::Clio(e.into()))?;
    Ok(())
}

/// Reads the latest checkpoint of `dir`.
pub fn load_latest(dir: &Path) -> Result<Loaded, TrainError> {
    let latest = dir.join("latest.json");
    let text = std::fs::read_to_string(&latest).map_err(|e| io(&latest, "cannot read the checkpoint record", e))?;
    let ck: Checkpoint = serde_json::from_str(&text).map_err(|e| io(&latest, "not a checkpoint record", e))?;
    let module = clio::io::load_module(&module_path(dir, ck.epoch), &clio::io::LoadOptions::default())?;
    let op = optim_path(dir, ck.epoch);
    let map = candle_core::safetensors::load(&op, &Device::Cpu).map_err(|e| io(&op, "cannot read", e))?;
    Ok(Loaded { epoch: ck.epoch, module, optimizer: map.into_iter().collect(), steps: ck.steps })
}

impl Loaded {
    /// Loads the checkpoint's weights into `params` and its moments into `opt`.
    pub fn restore(self, params: &mut ParamStore, opt: &mut Optimizer) -> Result<(), TrainError> {
        params.load_from(&self.module)?;
        opt.restore(self.optimizer, self.steps);
        Ok(())
    }
}
