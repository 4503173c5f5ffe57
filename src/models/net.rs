//! A thin graph builder that names nodes and weights after torchvision module paths
//! (`features.0.0` reads `@features.0.0.weight`) and initialises weights deterministically.
//! It adds weight nodes with [`Graph::add_node`] directly (one per weight, each new), so building
//! stays linear in the number of layers (100k-layer chains).

use super::init::{Init, WeightRng};
use super::ModelError;
use crate::ir::{Graph, Module, Op, TensorType, Value, Weight};
use crate::ops::{BatchNorm, Clip, Conv2d, Flatten, Gemm};
use crate::Limits;

pub(crate) struct Net<'m> {
    m: &'m mut Module,
    g: Graph,
    seed: u64,
    limits: Limits,
    /// Weight elements allocated so far.
    total: usize,
}

impl<'m> Net<'m> {
    pub(crate) fn new(m: &'m mut Module, seed: u64) -> Self {
        let g = m.remove_graph("main").unwrap_or_else(|| Graph::new("main"));
        Net { m, g, seed, limits: Limits::default(), total: 0 }
    }

    pub(crate) fn input(&mut self, name: &str, shape: &[usize]) -> Value {
        self.g.add_input(name, TensorType::f32(shape.to_vec()))
    }

    pub(crate) fn weight(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Value, ModelError> {
        let n = crate::ir::checked_product(shape).unwrap_or(usize::MAX);
        if n > self.limits.max_tensor_elements {
            return Err(ModelError::new(format!(
                "weight @{name} of shape {shape:?} has {n} elements, over the limit of {}",
                self.limits.max_tensor_elements
            )));
        }
        if self.total.saturating_add(n) > super::MAX_MODEL_ELEMENTS {
            return Err(ModelError::new(format!(
                "the weights would exceed {} elements at @{name} (width or input too large)",
                super::MAX_MODEL_ELEMENTS
            )));
        }
        self.total += n;
        let (lo, hi) = init.range();
        let t = WeightRng::for_weight(self.seed, name).tensor(shape, lo, hi);
        let w = Weight::new(t);
        let ty = w.ty();
        let name = self.m.add_weight(name, w);
        Ok(Value::of(self.g.add_node(&format!("@{name}"), Op::Weight { name }, &[], vec![ty])))
    }

    pub(crate) fn op(&mut self, name: &str, op: Op, operands: &[Value]) -> Result<Value, ModelError> {
        self.g.add_op(name, op, operands).map_err(|e| ModelError::new(format!("%{name}: {e}")))
    }

    pub(crate) fn shape(&mut self, v: Value) -> Vec<usize> {
        self.g.value_type(v).map(|t| t.shape.clone()).unwrap_or_default()
    }

    /// `conv2d` named `path` reading `@path.weight` (and `@path.bias` when `bias`), padding
    /// `(k - 1) / 2` as torchvision's `Conv2dNormActivation` and ResNet/VGG convs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn conv(
        &mut self,
        path: &str,
        x: Value,
        out: usize,
        k: usize,
        stride: usize,
        groups: usize,
        bias: bool,
    ) -> Result<Value, ModelError> {
        let cin = self.shape(x).get(1).copied().unwrap_or(0);
        let per_group = cin / groups.max(1);
        let fan_in = per_group * k * k;
        let w = self.weight(&format!("{path}.weight"), &[out, per_group, k, k], Init::HeUniform { fan_in })?;
        let mut operands = vec![x, w];
        if bias {
            operands.push(self.weight(&format!("{path}.bias"), &[out], Init::TorchDefault { fan_in })?);
        }
        let p = (k - 1) / 2;
        let op = Conv2d { strides: [stride, stride], pads: [p; 4], dilations: [1, 1], groups };
        self.op(path, Op::Conv2d(op), &operands)
    }

    /// `batch_norm` named `path` with random affine parameters and running statistics.
    pub(crate) fn bn(&mut self, path: &str, x: Value) -> Result<Value, ModelError> {
        let c = self.shape(x).get(1).copied().unwrap_or(0);
        let g = self.weight(&format!("{path}.weight"), &[c], Init::Uniform(0.5, 1.5))?;
        let b = self.weight(&format!("{path}.bias"), &[c], Init::Uniform(-0.2, 0.2))?;
        let mean = self.weight(&format!("{path}.running_mean"), &[c], Init::Uniform(-0.2, 0.2))?;
        let var = self.weight(&format!("{path}.running_var"), &[c], Init::Uniform(0.5, 2.0))?;
        self.op(path, Op::BatchNorm(BatchNorm { epsilon: 1e-5 }), &[x, g, b, mean, var])
    }

    pub(crate) fn relu(&mut self, path: &str, x: Value) -> Result<Value, ModelError> {
        self.op(path, Op::Relu, &[x])
    }

    pub(crate) fn relu6(&mut self, path: &str, x: Value) -> Result<Value, ModelError> {
        self.op(path, Op::Clip(Clip { min: 0.0, max: 6.0 }), &[x])
    }

    /// `gemm(x, @path.weight, @path.bias) {trans_b = true}`: PyTorch's `Linear` as exported to ONNX.
    pub(crate) fn linear(&mut self, path: &str, x: Value, out: usize) -> Result<Value, ModelError> {
        let k = self.shape(x).get(1).copied().unwrap_or(0);
        let init = Init::TorchDefault { fan_in: k };
        let w = self.weight(&format!("{path}.weight"), &[out, k], init)?;
        let b = self.weight(&format!("{path}.bias"), &[out], init)?;
        self.op(path, Op::Gemm(Gemm { trans_b: true, ..Default::default() }), &[x, w, b])
    }

    /// `global_avg_pool` + `flatten {axis = 1}`: `adaptive_avg_pool2d(x, 1)` then `flatten(x, 1)`.
    pub(crate) fn pool_flatten(&mut self, pool: &str, x: Value) -> Result<Value, ModelError> {
        let p = self.op(pool, Op::GlobalAvgPool, &[x])?;
        self.op("flatten", Op::Flatten(Flatten { axis: 1 }), &[p])
    }

    pub(crate) fn finish(mut self, out: Value) {
        self.g.set_outputs(vec![out]);
        self.m.add_graph(self.g);
    }
}
