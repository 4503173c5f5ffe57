//! `quantize`: post-training quantization of one graph to int8 (TFLite / CMSIS-NN s8), q8
//! (8-bit power-of-two Q format: GAP8 `_fps`, legacy CMSIS-NN q7) or q16 (16-bit Q format:
//! GAP8 HWCE / `_fp`), calibrated on sample inputs.
//!
//! Matches: every node of the graph (option `graph`, default the module's first graph). Nodes
//! listed in `float-ops` (op names like `softmax`, or node names like `%fc`) stay f32; every
//! other node must have an integer kernel in the scheme, or the pass fails naming the graph,
//! node and op (`batch_norm` asks for `fuse-bn` first).
//!
//! Produces:
//! * activations: `i8` (int8, q8) or `i16` (q16) with per-tensor `affine<scale:zp>` (int8,
//!   asymmetric, TFLite's nudged parameters) or `pow2<frac>` (q8/q16) from the calibrated
//!   range; ops that only move or select values (`max_pool`, `avg_pool`, `concat`,
//!   `relu`/`clip`, `flatten`, `reshape`, `pad`, `channel_slice`, ...) get one shared format
//!   for operands and result (`global_avg_pool` rescales, as TFLite's `MEAN`); int8 `softmax`
//!   produces `affine<0.00390625:-128>`;
//! * weights stored quantized in the module (replacing the f32 weight when nothing else reads
//!   it, else as `@name.q`): int8 symmetric `i8` in `[-127, 127]` with zero point 0, per output
//!   channel (`weights=per-channel`, conv only: fully connected layers are per tensor as in
//!   CMSIS-NN's s8 kernel and TFLite's converter) or per tensor; q8/q16 `i8`/`i16` `pow2` per
//!   channel or per tensor; `gemm` `alpha`/`beta` are folded into weights and bias;
//! * biases: int8 `i32` with scale `s_in * s_w[c]` and zero point 0; q8 `i8` and q16 `i16`
//!   `pow2<bias_Q>` with `bias_Q <= in_Q + w_Q` (the q7 API's `bias << bias_shift`);
//! * requantisation parameters are *not* stored: the integer interpreter and the backends
//!   derive them from the operand and result types (int8: `QuantizeMultiplier(s_in * s_w[c] /
//!   s_out)`; Q formats: `out_shift = in_Q + w_Q - out_Q`, `bias_shift = in_Q + w_Q - bias_Q`;
//!   output formats are lowered where needed so that `0 <= out_shift <= 31`);
//! * fused activations: a `relu` or `clip {min = 0}` that is the only reader of a conv2d,
//!   gemm or add takes part in its producer's format: in int8 the activation node is removed and
//!   the producer's result gets the post-activation range, whose lower end is 0 so that the
//!   zero point is -128 and CMSIS-NN's activation clamp equals the int8 saturation; in q8/q16
//!   (symmetric formats, where the clamp is not implied) the node stays as an integer clamp in
//!   the producer's format (GAP8 runs ReLU on the cluster cores after the HWCE);
//! * the graph input (f32) feeds a `quantize`; graph outputs and float nodes read through
//!   `dequantize`; the graph's interface stays f32, except for a transmitted output
//!   (`transmit` of a quantized value, a device graph made by `partition` or `slice`): it stays
//!   integer, and the graphs receiving it (the `to` graph, and every head of a `slice` whose
//!   device this is) take the integer tensor and dequantize it first (see [`boundary`]).
//!
//! Calibration (`calib`): an `.npy` file (split along its leading dimension into samples) or a
//! directory of them, run through the float interpreter; `range` = `minmax`, `percentile`
//! (`percentile=99.99`) or `mse`. Without `calib` the pass refuses. `calib=random` (or
//! `random:SEED`) calibrates on `samples` seeded standard-normal inputs: for tests and smoke
//! runs only, never implied.
//!
//! Alignment (`align=true`, q8/q16): before formats are chosen, groups of activations are
//! multiplied by factors in `[1, 2)` (weights and clip bounds compensate, outputs unchanged) so
//! that their calibrated ranges fill power-of-two formats; see [`align`].
//!
//! Bias correction (`bias-correction=weights|measured`, every scheme): the calibration also
//! records the element-wise mean of every value, and each conv/gemm bias loses the mean output
//! shift that rounding the layer's weights causes (`sum dw * E[x]` per output channel, per
//! filter tap with zero padding counted) before it is quantized; `measured` then runs the
//! quantized graph layer by layer on `correction-samples` calibration samples and moves each
//! integer bias by the measured mean error; see [`bias_correction`]. A precomputed calibration
//! ([`Quantize::with_calibration`]) must then carry mean maps ([`CalibOptions::mean_maps`]),
//! else the pass fails naming the first layer.
//!
//! Preconditions: a float graph with one input; batch norms folded (`fuse-bn`). Not
//! idempotent by nature: a quantized graph is rejected.
//!
//! ```text
//! %conv = conv2d(%x, @w, @b) {...} : tensor<1x4x8x8xf32>       %x.q = quantize(%x) : tensor<1x3x8x8xi8, affine<0.0235:-1>>
//! %relu = relu(%conv) : tensor<1x4x8x8xf32>               =>  %conv = conv2d(%x.q, @w, @b) {...} : tensor<1x4x8x8xi8, affine<0.0118:-128>>
//! return %relu                                                 %conv.dq = dequantize(%conv) : tensor<1x4x8x8xf32>
//!                                                              return %conv.dq
//! ```

pub mod align;
pub mod bias_correction;
pub mod boundary;
mod plan;
mod rewrite;
mod weights;

use clio::ir::Module;
use clio::pass::{OptionInfo, OptionKind, Pass, PassContext, PassError, PassInfo, PassOptions, PassRegistry, StatInfo};
use clio::quant::calib::{calibrate, load_samples, CalibOptions, CalibSource, Calibration, RangeMethod};

/// Declaration of `quantize`.
pub static INFO: PassInfo = PassInfo {
    name: "quantize",
    summary: "Post-training quantization to int8 (TFLite/CMSIS-NN s8), q8 or q16 (power-of-two Q formats)",
    options: &[
        OptionInfo {
            name: "scheme",
            kind: OptionKind::Enum(&["int8", "q8", "q16"]),
            default: Some("int8"),
            help: "int8: affine TFLite int8; q8: 8-bit Q format (GAP8 fps, CMSIS q7); q16: 16-bit Q format (GAP8 HWCE)",
        },
        OptionInfo {
            name: "weights",
            kind: OptionKind::Enum(&["per-channel", "per-tensor"]),
            default: Some("per-channel"),
            help: "weight quantization granularity (int8 fully connected layers are always per tensor)",
        },
        OptionInfo {
            name: "float-ops",
            kind: OptionKind::Str,
            default: Some(""),
            help: "ops kept in float: op names or %node names separated by ':' (e.g. softmax:%fc)",
        },
        OptionInfo {
            name: "calib",
            kind: OptionKind::Path,
            default: Some(""),
            help: "calibration samples: an .npy file or a directory of them; `random[:SEED]` for tests only",
        },
        OptionInfo {
            name: "range",
            kind: OptionKind::Enum(&["minmax", "percentile", "mse"]),
            default: Some("minmax"),
            help: "how activation ranges are chosen from the calibration histograms",
        },
        OptionInfo {
            name: "percentile",
            kind: OptionKind::Float,
            default: Some("99.99"),
            help: "percentile kept by range=percentile (50..100)",
        },
        OptionInfo {
            name: "samples",
            kind: OptionKind::Int,
            default: Some("0"),
            help: "use at most this many calibration samples (0: all; calib=random: 8)",
        },
        OptionInfo {
            name: "align",
            kind: OptionKind::Bool,
            default: Some("false"),
            help: "q8/q16: rescale activation groups (weights compensate) so their ranges fill power-of-two formats \
                   (helps q8; q16 is bound by its accumulator and usually loses)",
        },
        OptionInfo {
            name: "bias-correction",
            kind: OptionKind::Enum(&["none", "weights", "measured"]),
            default: Some("none"),
            help: "remove the systematic error: `weights` subtracts from each conv/gemm bias the mean shift its \
                   weight rounding causes on the calibration data; `measured` then moves each integer bias, \
                   layer by layer, by the mean error measured with the integer interpreter",
        },
        OptionInfo {
            name: "correction-samples",
            kind: OptionKind::Int,
            default: Some("32"),
            help: "calibration samples run by bias-correction=measured (0: all; costs one integer run per layer and sample)",
        },
        OptionInfo { name: "seed", kind: OptionKind::Int, default: Some("0"), help: "seed of calib=random" },
        OptionInfo { name: "bins", kind: OptionKind::Int, default: Some("2048"), help: "histogram bins per tensor" },
        OptionInfo {
            name: "graph",
            kind: OptionKind::Str,
            default: Some(""),
            help: "the graph to quantize (default: the first graph; other graphs stay float)",
        },
    ],
    statistics: &[
        StatInfo { name: "quantized-nodes", help: "nodes executed in the integer domain" },
        StatInfo { name: "float-nodes", help: "nodes kept in float (float-ops)" },
        StatInfo { name: "fused-activations", help: "relu/clip nodes fused into the producer's output range (int8)" },
        StatInfo { name: "quantize-inserted", help: "quantize nodes inserted (graph inputs, float -> integer)" },
        StatInfo { name: "dequantize-inserted", help: "dequantize nodes inserted (outputs, integer -> float)" },
        StatInfo { name: "weights-quantized", help: "weights and biases stored quantized" },
        StatInfo { name: "bias-saturated", help: "bias values clamped to the bias type's range" },
        StatInfo { name: "bias-corrected", help: "conv/gemm biases corrected for the mean shift of weight rounding" },
        StatInfo { name: "bias-measured", help: "integer bias values moved by the measured bias correction" },
        StatInfo { name: "shift-adjusted", help: "Q-format output formats lowered to keep 0 <= out_shift <= 31" },
        StatInfo { name: "calib-samples", help: "calibration samples observed" },
        StatInfo { name: "aligned-values", help: "activations rescaled by align (factor != 1)" },
        StatInfo { name: "aligned-layers", help: "conv2d/gemm nodes whose weights align rescaled" },
        StatInfo {
            name: "receivers-retyped",
            help: "graphs receiving a transmitted tensor that now take it quantized and dequantize it",
        },
    ],
};

/// The quantization scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// TFLite-style affine int8.
    Int8,
    /// 8-bit power-of-two Q format.
    Q8,
    /// 16-bit power-of-two Q format.
    Q16,
}

impl Scheme {
    /// The option spelling.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Int8 => "int8",
            Scheme::Q8 => "q8",
            Scheme::Q16 => "q16",
        }
    }

    /// Parses the option spelling.
    pub fn parse(s: &str) -> Option<Scheme> {
        match s {
            "int8" => Some(Scheme::Int8),
            "q8" => Some(Scheme::Q8),
            "q16" => Some(Scheme::Q16),
            _ => None,
        }
    }
}

/// Validated options of one `quantize` instance.
#[derive(Clone, Debug)]
pub struct Config {
    /// The scheme.
    pub scheme: Scheme,
    /// Per-channel weights.
    pub per_channel: bool,
    /// Op names and node names kept in float.
    pub float_ops: Vec<String>,
    /// The `calib` option (path, `random`, `random:SEED`, or empty).
    pub calib: String,
    /// Range choice.
    pub range: RangeMethod,
    /// Sample limit (0 = all; random calibration: 8 when 0).
    pub samples: usize,
    /// Seed of random calibration.
    pub seed: u64,
    /// Histogram bins.
    pub bins: usize,
    /// Graph to quantize (empty: the first).
    pub graph: String,
    /// Align activation ranges to power-of-two formats before quantizing (q8/q16, see [`align`]).
    pub align: bool,
    /// Bias correction (see [`bias_correction`]).
    pub bias_correction: BiasCorrection,
    /// Samples run by the measured bias correction (0: all calibration samples).
    pub correction_samples: usize,
}

/// The `bias-correction` option of `quantize` (see [`bias_correction`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BiasCorrection {
    /// Biases as calibrated.
    #[default]
    None,
    /// Subtract the mean output shift of the weight rounding from the float bias.
    Weights,
    /// `Weights`, then move each integer bias by the mean error measured layer by layer.
    Measured,
}

impl BiasCorrection {
    /// Parses the option value (`none`, `weights`, `measured`).
    pub fn parse(s: &str) -> Option<BiasCorrection> {
        match s {
            "none" => Some(BiasCorrection::None),
            "weights" => Some(BiasCorrection::Weights),
            "measured" => Some(BiasCorrection::Measured),
            _ => None,
        }
    }

    /// True unless `None`: the calibration must keep mean maps.
    pub fn is_on(self) -> bool {
        self != BiasCorrection::None
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            scheme: Scheme::Int8,
            per_channel: true,
            float_ops: vec![],
            calib: String::new(),
            range: RangeMethod::MinMax,
            samples: 0,
            seed: 0,
            bins: 2048,
            graph: String::new(),
            align: false,
            bias_correction: BiasCorrection::None,
            correction_samples: 32,
        }
    }
}

impl Config {
    /// Reads validated pass options.
    pub fn from_options(o: &PassOptions) -> Result<Config, PassError> {
        let bad = |m: String| PassError::Option { pass: "quantize".into(), message: m };
        let range = match o.str("range")? {
            "percentile" => {
                let p = o.float("percentile")?;
                if !(50.0..=100.0).contains(&p) {
                    return Err(bad(format!("option `percentile` must be in 50..100, got {p}")));
                }
                RangeMethod::Percentile(p)
            }
            "mse" => RangeMethod::Mse,
            _ => RangeMethod::MinMax,
        };
        let scheme = Scheme::parse(o.str("scheme")?).unwrap_or(Scheme::Int8);
        let align = o.bool("align")?;
        if align && scheme == Scheme::Int8 {
            return Err(bad("option `align` applies to scheme=q8 and scheme=q16 (int8 scales are free)".into()));
        }
        let bins = o.usize("bins")?;
        if !(16..=1 << 20).contains(&bins) {
            return Err(bad(format!("option `bins` must be in 16..=1048576, got {bins}")));
        }
        Ok(Config {
            scheme,
            per_channel: o.str("weights")? == "per-channel",
            float_ops: o
                .str("float-ops")?
                .split([':', ','])
                .map(|s| s.trim().trim_start_matches('%').to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            calib: o.str("calib")?.to_string(),
            range,
            samples: o.usize("samples")?,
            seed: o.int("seed")? as u64,
            bins,
            graph: o.str("graph")?.to_string(),
            align,
            bias_correction: BiasCorrection::parse(o.str("bias-correction")?).unwrap_or_default(),
            correction_samples: o.usize("correction-samples")?,
        })
    }

    /// Whether a node (by name or op name) stays in float.
    pub fn is_float(&self, node: &str, op: &str) -> bool {
        self.float_ops.iter().any(|f| f == node || f == op)
    }

    /// The calibration source, or the error explaining how to give one.
    pub fn source(&self) -> Result<CalibSource, String> {
        if self.calib.is_empty() {
            return Err(
                "no calibration data: pass calib=PATH (an .npy file or a directory of .npy files; \
                        `clio quantize --calib PATH`); calib=random[:SEED] calibrates on random inputs, for tests only"
                    .into(),
            );
        }
        let count = if self.samples == 0 { 8 } else { self.samples };
        CalibSource::parse(&self.calib, count, self.seed).map_err(|e| e.to_string())
    }
}

/// Registers `quantize`.
pub fn register(reg: &mut PassRegistry) {
    reg.register(&INFO, |o: &PassOptions| Ok(Box::new(Quantize::new(Config::from_options(o)?))));
}

/// The `quantize` pass.
pub struct Quantize {
    cfg: Config,
    calibration: Option<Calibration>,
}

impl Quantize {
    /// An instance with the given options.
    pub fn new(cfg: Config) -> Self {
        Quantize { cfg, calibration: None }
    }

    /// Uses a precomputed calibration of the graph instead of running one.
    pub fn with_calibration(mut self, calib: Calibration) -> Self {
        self.calibration = Some(calib);
        self
    }
}

impl Pass for Quantize {
    fn info(&self) -> &'static PassInfo {
        &INFO
    }

    fn run(&mut self, m: &mut Module, cx: &mut PassContext) -> Result<(), PassError> {
        let fail = |msg: String| PassError::failed("quantize", msg);
        let gname = if self.cfg.graph.is_empty() {
            m.graph_names().into_iter().next().ok_or_else(|| fail("the module has no graph".into()))?
        } else {
            self.cfg.graph.clone()
        };
        let g = m.graph(&gname).ok_or_else(|| fail(format!("the module has no graph @{gname}")))?;
        let mut calib = match self.calibration.take() {
            Some(c) => c,
            None => {
                // Refuse before the (possibly long) calibration when the graph cannot be quantized.
                plan::plan(m, g, &self.cfg, &Calibration::default()).map_err(fail)?;
                let source = self.cfg.source().map_err(fail)?;
                let opts = CalibOptions {
                    bins: self.cfg.bins,
                    max_samples: if self.cfg.samples == 0 { None } else { Some(self.cfg.samples) },
                    progress: true,
                    mean_maps: self.cfg.bias_correction.is_on(),
                };
                calibrate(m, &gname, &source, &opts).map_err(|e| fail(e.to_string()))?
            }
        };
        cx.stat("calib-samples", calib.samples as i64);
        let cfg = if self.cfg.align {
            let (a, cfg) = align::align_for_quantize(m, &gname, &mut calib, &self.cfg).map_err(fail)?;
            cx.stat("aligned-values", a.factors.len() as i64);
            cx.stat("aligned-layers", a.rescaled_layers as i64);
            cfg
        } else {
            self.cfg.clone()
        };
        let g = m.graph(&gname).ok_or_else(|| fail(format!("the module has no graph @{gname}")))?;
        let p = plan::plan(m, g, &cfg, &calib).map_err(fail)?;
        cx.stat("shift-adjusted", p.shift_adjusted);
        // The measured correction compares with the float module as it was before the rewrite.
        let float_module = (cfg.bias_correction == BiasCorrection::Measured).then(|| m.clone());
        rewrite::rewrite(m, &gname, &p, &cfg, cx).map_err(fail)?;
        if let Some(float_module) = float_module {
            let float_graph = float_module.graph(&gname).ok_or_else(|| fail(format!("no graph @{gname}")))?;
            let order = float_graph.topo_order().map_err(|c| fail(format!("{}: cycle", plan::at(float_graph, c.0))))?;
            let layers = bias_correction::measured_layers(m, &gname, float_graph, &order, &p);
            let input_ty = float_graph.node(float_graph.inputs()[0]).ty().clone();
            let source = cfg.source().map_err(fail)?;
            let max = if cfg.correction_samples == 0 { None } else { Some(cfg.correction_samples) };
            let samples = load_samples(&source, &input_ty, max).map_err(|e| fail(e.to_string()))?;
            let r = bias_correction::measured_correction(m, &float_module, &gname, &layers, &samples, true)
                .map_err(fail)?;
            cx.stat("bias-measured", r.moved);
            cx.stat("bias-saturated", r.saturated);
        }
        let receivers = boundary::keep_transmit_quantized(m, &gname).map_err(fail)?;
        cx.stat("receivers-retyped", receivers.len() as i64);
        Ok(())
    }
}
