//! Options naming the compilation target: device, cloud and link cost models.

use clap::Args;
use clio::cost::TargetContext;
use clio::Error;
use std::sync::Arc;

/// `--target`, `--cloud`, `--link`.
#[derive(Args, Clone, Debug)]
pub struct TargetArgs {
    /// Device: a built-in target (gap8, stm32f7) or a .json description.
    #[arg(long, default_value = "gap8")]
    pub target: String,
    /// Cloud executor: cloud-gpu, cloud-cpu or a .json description.
    #[arg(long, default_value = "cloud-gpu")]
    pub cloud: String,
    /// Link: ble, wifi or a .json description.
    #[arg(long, default_value = "ble")]
    pub link: String,
}

impl TargetArgs {
    /// Loads the three cost models.
    pub fn load(&self) -> Result<TargetContext, Error> {
        let e = |e: clio_targets::TargetError| Error::Format(e.to_string());
        Ok(TargetContext {
            device: Arc::from(clio_targets::load_target(&self.target).map_err(e)?),
            cloud: Arc::from(clio_targets::load_target(&self.cloud).map_err(e)?),
            link: Arc::from(clio_targets::load_link(&self.link).map_err(e)?),
        })
    }
}
