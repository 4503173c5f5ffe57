//! Optimizers (SGD with momentum, Adam) and learning-rate schedules.
//!
//! Both follow PyTorch's update rules (`torch.optim.SGD` with `dampening = 0`, `torch.optim.Adam`
//! with L2 weight decay added to the gradient), so hyperparameters carry over. Weight decay
//! applies to tensors of rank >= 2 only (conv filters and linear weights), not to biases or batch-norm
//! parameters.

use crate::error::TrainError;
use crate::params::ParamStore;
use candle_core::backprop::GradStore;
use candle_core::Tensor;
use std::collections::HashMap;

/// Which optimizer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimizerKind {
    /// SGD with (heavy-ball) momentum.
    Sgd {
        /// Momentum factor (0.9 is usual).
        momentum: f64,
    },
    /// Adam.
    Adam {
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator epsilon.
        eps: f64,
    },
}

impl OptimizerKind {
    /// Parses `sgd` (momentum 0.9) or `adam` (0.9, 0.999, 1e-8).
    pub fn parse(s: &str) -> Result<OptimizerKind, TrainError> {
        match s {
            "sgd" => Ok(OptimizerKind::Sgd { momentum: 0.9 }),
            "adam" => Ok(OptimizerKind::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 }),
            _ => Err(TrainError::Config(format!("unknown optimizer `{s}` (expected sgd or adam)"))),
        }
    }
}

/// Learning rate over the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Cosine decay from the base rate to 0 over all steps, after `warmup` linear steps.
    Cosine {
        /// Linear warm-up steps.
        warmup: usize,
    },
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Decay factor.
        gamma: f64,
    },
}

impl Schedule {
    /// Parses `constant`, `cosine` (warm-up: 1% of the steps) or `step:EVERY:GAMMA`.
    pub fn parse(s: &str) -> Result<Schedule, TrainError> {
        let bad =
            || TrainError::Config(format!("unknown schedule `{s}` (expected constant, cosine or step:EVERY:GAMMA)"));
        match s {
            "constant" => Ok(Schedule::Constant),
            "cosine" => Ok(Schedule::Cosine { warmup: usize::MAX }),
            _ => {
                let rest = s.strip_prefix("step:").ok_or_else(bad)?;
                let (e, gm) = rest.split_once(':').ok_or_else(bad)?;
                let every: usize = e.parse().map_err(|_| bad())?;
                let gamma: f64 = gm.parse().map_err(|_| bad())?;
                if every == 0 || !(gamma > 0.0 && gamma <= 1.0) {
                    return Err(TrainError::Config(format!("schedule `{s}`: EVERY >= 1 and 0 < GAMMA <= 1")));
                }
                Ok(Schedule::Step { every, gamma })
            }
        }
    }

    /// The rate at global step `step` (0-based) of `total`, in epoch `epoch` (0-based).
    pub fn rate(&self, base: f64, step: usize, total: usize, epoch: usize) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Cosine { warmup } => {
                let warmup = if warmup == usize::MAX { total / 100 } else { warmup };
                if step < warmup {
                    return base * (step + 1) as f64 / warmup as f64;
                }
                let span = total.saturating_sub(warmup).max(1) as f64;
                let p = (step - warmup) as f64 / span;
                base * 0.5 * (1.0 + (std::f64::consts::PI * p.min(1.0)).cos())
            }
            Schedule::Step { every, gamma } => base * gamma.powi((epoch / every) as i32),
        }
    }
}

/// Optimizer state: one or two moment tensors per variable.
pub struct Optimizer {
    kind: OptimizerKind,
    weight_decay: f64,
    first: HashMap<String, Tensor>,
    second: HashMap<String, Tensor>,
    steps: u64,
}

impl Optimizer {
    /// A fresh optimizer.
    pub fn new(kind: OptimizerKind, weight_decay: f64) -> Optimizer {
        Optimizer { kind, weight_decay, first: HashMap::new(), second: HashMap::new(), steps: 0 }
    }

    /// Applies one update with learning rate `lr` from `grads` to every variable of `params`.
    pub fn step(&mut self, params: &ParamStore, grads: &GradStore, lr: f64) -> Result<(), TrainError> {
        self.steps += 1;
        for (name, var) in params.vars() {
            let Some(grad) = grads.get(var.as_tensor()) else { continue };
            // Gradients (and anything computed from a variable) carry the step's autograd graph,
            // and with it every activation of the step: detach before keeping them as moments,
            // or each step's graph stays alive through the next one's.
            let mut grad = grad.detach();
            let value = var.as_tensor().detach();
            if self.weight_decay > 0.0 && var.rank() >= 2 {
                grad = grad.add(&value.affine(self.weight_decay, 0.0)?)?;
            }
            match self.kind {
                OptimizerKind::Sgd { momentum } => {
                    let buf = match self.first.get(name) {
                        Some(b) if momentum > 0.0 => b.affine(momentum, 0.0)?.add(&grad)?,
                        _ => grad,
                    };
                    var.set(&value.sub(&buf.affine(lr, 0.0)?)?)?;
                    self.first.insert(name.clone(), buf);
                }
                OptimizerKind::Adam { beta1, beta2, eps } => {
                    let m = match self.first.get(name) {
                        Some(m) => m.affine(beta1, 0.0)?.add(&grad.affine(1.0 - beta1, 0.0)?)?,
                        None => grad.affine(1.0 - beta1, 0.0)?,
                    };
                    let g2 = grad.sqr()?;
                    let v = match self.second.get(name) {
                        Some(v) => v.affine(beta2, 0.0)?.add(&g2.affine(1.0 - beta2, 0.0)?)?,
                        None => g2.affine(1.0 - beta2, 0.0)?,
                    };
                    let t = self.steps as i32;
                    let m_hat = m.affine(1.0 / (1.0 - beta1.powi(t)), 0.0)?;
                    let v_hat = v.affine(1.0 / (1.0 - beta2.powi(t)), 0.0)?;
                    let update = m_hat.div(&v_hat.sqrt()?.affine(1.0, eps)?)?;
                    var.set(&value.sub(&update.affine(lr, 0.0)?)?)?;
                    self.first.insert(name.clone(), m);
                    self.second.insert(name.clone(), v);
                }
            }
        }
        Ok(())
    }

    /// The moment tensors, named `<weight>.m1` / `<weight>.m2`, and the step count (checkpoints).
    pub fn state(&self) -> (Vec<(String, Tensor)>, u64) {
        let mut out: Vec<(String, Tensor)> = self.first.iter().map(|(n, t)| (format!("{n}.m1"), t.clone())).collect();
        out.extend(self.second.iter().map(|(n, t)| (format!("{n}.m2"), t.clone())));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        (out, self.steps)
    }

    /// Restores [`Optimizer::state`].
    pub fn restore(&mut self, tensors: Vec<(String, Tensor)>, steps: u64) {
        for (name, t) in tensors {
            if let Some(w) = name.strip_suffix(".m1") {
                self.first.insert(w.to_string(), t);
            } else if let Some(w) = name.strip_suffix(".m2") {
                self.second.insert(w.to_string(), t);
            }
        }
        self.steps = steps;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clio::ir::Module;

    /// A module with one weight `@w` read by `@main`.
    fn module() -> Module {
        let text = "module @m {\n  weight @w : tensor<2x2xf32> = dense<[1, 2, 3, 4]>\n  graph @main(%x: tensor<1x2xf32>) -> (tensor<1x2xf32>) {\n    %y = matmul(%x, @w) : tensor<1x2xf32>\n    return %y\n  }\n}\n";
        clio::text::parse_module(text, &clio::text::ParseOptions::default()).unwrap()
    }

    #[test]
    fn moments_do_not_keep_the_autograd_graph_alive() {
        let m = module();
        for kind in [OptimizerKind::parse("sgd").unwrap(), OptimizerKind::parse("adam").unwrap()] {
            let params = ParamStore::from_module(&m, &["main".to_string()]).unwrap();
            let mut opt = Optimizer::new(kind, 1e-3);
            let w = params.get("w").unwrap();
            let x = Tensor::new(&[[1f32, -1.0]], &candle_core::Device::Cpu).unwrap();
            for _ in 0..2 {
                let loss = x.matmul(&w).unwrap().sqr().unwrap().sum_all().unwrap();
                opt.step(&params, &loss.backward().unwrap(), 0.1).unwrap();
            }
            let (state, steps) = opt.state();
            assert_eq!(steps, 2);
            assert!(!state.is_empty());
            for (name, t) in state {
                assert!(!t.track_op(), "{kind:?}: moment {name} holds an autograd graph");
            }
        }
    }

    #[test]
    fn schedules_follow_their_definitions() {
        let cos = Schedule::Cosine { warmup: 10 };
        assert!((cos.rate(1.0, 0, 110, 0) - 0.1).abs() < 1e-12);
        assert!((cos.rate(1.0, 10, 110, 0) - 1.0).abs() < 1e-12);
        assert!((cos.rate(1.0, 60, 110, 0) - 0.5).abs() < 1e-12);
        assert!(cos.rate(1.0, 109, 110, 0) < 1e-3);
        let step = Schedule::parse("step:2:0.5").unwrap();
        assert_eq!(step.rate(0.8, 0, 10, 3), 0.4);
        assert!(Schedule::parse("step:0:0.5").is_err() && Schedule::parse("linear").is_err());
    }
}
