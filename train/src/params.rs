//! The trainable state of a module: one candle [`Var`] per weight that a trained graph reads
//! (shared by name, so weights tied between heads are one variable), plus the batch-norm running
//! statistics as non-trainable buffers.

use crate::error::TrainError;
use candle_core::{Device, Tensor, Var};
use clio::ir::{Module, Op};
use indexmap::IndexMap;
use std::collections::HashSet;

/// Trainable variables and buffers by weight name.
pub struct ParamStore {
    vars: IndexMap<String, Var>,
    buffers: IndexMap<String, Tensor>,
}

/// Weight names that hold running statistics (operands 3 and 4 of every `batch_norm`) in `graphs`.
fn running_stat_names(m: &Module, graphs: &[String]) -> HashSet<String> {
    let mut out = HashSet::new();
    for g in graphs.iter().filter_map(|n| m.graph(n)) {
        for id in g.node_ids() {
            if matches!(g.node(id).op, Op::BatchNorm(_)) {
                for slot in [3, 4] {
                    if let Some(name) = g.operand(id, slot).and_then(|v| g.weight_name(v)) {
                        out.insert(name.to_string());
                    }
                }
            }
        }
    }
    out
}

impl ParamStore {
    /// Variables for every weight that `graphs` read (in module order); batch-norm running
    /// statistics become buffers.
    pub fn from_module(m: &Module, graphs: &[String]) -> Result<ParamStore, TrainError> {
        let stats = running_stat_names(m, graphs);
        let mut read: HashSet<String> = HashSet::new();
        for name in graphs {
            let g = m.graph(name).ok_or_else(|| TrainError::Module(format!("the module has no graph @{name}")))?;
            for id in g.node_ids() {
                if let Op::Weight { name } = &g.node(id).op {
                    read.insert(name.clone());
                }
            }
        }
        let mut vars = IndexMap::new();
        let mut buffers = IndexMap::new();
        for (name, w) in m.weights() {
            if !read.contains(name) {
                continue;
            }
            let data = w.data().as_f32().ok_or_else(|| {
                TrainError::Module(format!("weight @{name} is {} (training needs f32 weights)", w.data().dtype()))
            })?;
            let t = Tensor::from_slice(data, w.data().shape(), &Device::Cpu)?;
            if stats.contains(name) {
                buffers.insert(name.clone(), t);
            } else {
                vars.insert(name.clone(), Var::from_tensor(&t)?);
            }
        }
        Ok(ParamStore { vars, buffers })
    }

    /// The current value of weight `name` (variable or buffer).
    pub fn get(&self, name: &str) -> Option<Tensor> {
        self.vars.get(name).map(|v| v.as_tensor().clone()).or_else(|| self.buffers.get(name).cloned())
    }

    /// Whether `name` is a trainable variable.
    pub fn is_trainable(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// Replaces buffer `name` (running statistics), if it is one.
    pub fn set_buffer(&mut self, name: &str, t: Tensor) {
        if let Some(b) = self.buffers.get_mut(name) {
            *b = t;
        }
    }

    /// The trainable variables, in module order.
    pub fn vars(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.vars.iter()
    }

    /// Number of trainable scalars.
    pub fn trainable_len(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    /// Every variable and buffer as a named tensor (checkpoints).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let vars = self.vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone()));
        vars.chain(self.buffers.iter().map(|(n, t)| (n.clone(), t.clone()))).collect()
    }

    /// Writes every variable and buffer back into the module's weights.
    pub fn write_back(&self, m: &mut Module) -> Result<(), TrainError> {
        for (name, t) in self.named_tensors() {
            let data: Vec<f32> = t.flatten_all()?.to_vec1()?;
            let w = m
                .weights_mut()
                .get_mut(&name)
                .ok_or_else(|| TrainError::Module(format!("weight @{name} vanished from the module")))?;
            let shape = w.data().shape().to_vec();
            let tensor = clio::ir::Tensor::from_f32(shape, data)
                .map_err(|e| TrainError::Module(format!("weight @{name}: {e}")))?;
            w.set_data(tensor);
        }
        Ok(())
    }
}

impl ParamStore {
    /// Sets every variable and buffer from the same-named weight of `m` (resuming).
    pub fn load_from(&mut self, m: &Module) -> Result<(), TrainError> {
        for (name, var) in &self.vars {
            var.set(&weight_tensor(m, name, var.dims())?)?;
        }
        for (name, buf) in self.buffers.iter_mut() {
            *buf = weight_tensor(m, name, buf.dims())?;
        }
        Ok(())
    }
}

/// Weight `name` of `m` as a tensor of `dims`.
fn weight_tensor(m: &Module, name: &str, dims: &[usize]) -> Result<Tensor, TrainError> {
    let w = m.weight(name).ok_or_else(|| TrainError::Module(format!("the checkpoint lacks weight @{name}")))?;
    let data = w.data().as_f32().ok_or_else(|| TrainError::Module(format!("checkpoint weight @{name} is not f32")))?;
    if w.data().shape() != dims {
        return Err(TrainError::Module(format!(
            "checkpoint weight @{name} has shape {:?}, the model {dims:?}",
            w.data().shape()
        )));
    }
    Ok(Tensor::from_slice(data, dims, &Device::Cpu)?)
}
