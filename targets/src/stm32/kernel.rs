//! The lowered program: one [`Step`] per CMSIS-NN call (or small integer helper), with every
//! parameter already computed (layouts transposed, multipliers and shifts derived), so that
//! emitting C is printing.

/// CMSIS-NN's `cmsis_nn_dims` (`n`, `h`, `w`, `c`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Dims {
    pub fn new(n: usize, h: usize, w: usize, c: usize) -> Dims {
        Dims { n, h, w, c }
    }

    pub fn len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }
}

/// Where a tensor lives at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Loc {
    /// The caller's input buffer (read only).
    Input,
    /// Arena buffer `i` (its offset comes from the memory planner).
    Buf(usize),
}

/// Convolution and depthwise convolution parameters (`cmsis_nn_conv_params` /
/// `cmsis_nn_dw_conv_params` plus the constant data).
#[derive(Clone, Debug)]
pub(crate) struct ConvK {
    pub input: Dims,
    pub filter: Dims,
    pub output: Dims,
    /// `[h, w]`.
    pub stride: [usize; 2],
    /// `[top, left]`.
    pub pad: [usize; 2],
    /// `[h, w]`.
    pub dilation: [usize; 2],
    pub input_offset: i32,
    pub output_offset: i32,
    pub act: (i32, i32),
    /// Depthwise channel multiplier (1 for plain convolutions).
    pub ch_mult: usize,
    /// OHWI (conv) or `[1, H, W, C_OUT]` (depthwise).
    pub weights: Vec<i8>,
    pub bias: Vec<i32>,
    pub mult: Vec<i32>,
    pub shift: Vec<i32>,
}

/// `arm_fully_connected_s8`.
#[derive(Clone, Debug)]
pub(crate) struct FcK {
    pub batch: usize,
    pub depth: usize,
    pub out: usize,
    pub input_offset: i32,
    pub output_offset: i32,
    pub act: (i32, i32),
    /// `[out][depth]`, columns already in the input's physical order.
    pub weights: Vec<i8>,
    pub bias: Vec<i32>,
    pub mult: i32,
    pub shift: i32,
}

/// `arm_max_pool_s8` / `arm_avgpool_s8`.
#[derive(Clone, Debug)]
pub(crate) struct PoolK {
    pub input: Dims,
    /// `[h, w]`.
    pub kernel: [usize; 2],
    pub output: Dims,
    pub stride: [usize; 2],
    pub pad: [usize; 2],
    pub act: (i32, i32),
}

/// `arm_elementwise_add_s8`.
#[derive(Clone, Debug)]
pub(crate) struct AddK {
    pub in1: (i32, i32, i32),
    pub in2: (i32, i32, i32),
    pub left_shift: i32,
    pub out: (i32, i32, i32),
    pub act: (i32, i32),
    pub size: usize,
}

/// `arm_softmax_s8`.
#[derive(Clone, Debug)]
pub(crate) struct SoftmaxK {
    pub rows: usize,
    pub row_size: usize,
    pub mult: i32,
    pub shift: i32,
    pub diff_min: i32,
}

/// Channel concatenation with `arm_concatenation_s8_z` (one call per operand).
#[derive(Clone, Debug)]
pub(crate) struct ConcatK {
    /// Pixels (`n * h * w`), CMSIS's `input_w`.
    pub pixels: usize,
    /// Channels of each operand.
    pub parts: Vec<usize>,
    pub c_out: usize,
}

/// Global average pooling over H, W, an integer helper in the module.
#[derive(Clone, Debug)]
pub(crate) struct MeanK {
    pub n: usize,
    pub hw: usize,
    pub c: usize,
    pub arith: MeanArith,
}

/// The arithmetic of [`MeanK`], the same as the integer interpreter's `global_avg_pool`.
#[derive(Clone, Debug)]
pub(crate) enum MeanArith {
    /// TFLite int8 `MEAN` (affine types): `1 / n` folded into the Q31 multiplier.
    Affine { in_zp: i32, out_zp: i32, mult: i32, shift: i32 },
    /// Power-of-two formats (legacy q7): `round(sum << left / divisor)`, rounded once.
    Pow2 { left: u32, divisor: i64 },
}

/// An integer clamp (a `relu` / `clip` that could not be fused), in place when possible.
#[derive(Clone, Debug)]
pub(crate) struct ClampK {
    pub size: usize,
    pub lo: i32,
    pub hi: i32,
}

/// Which CMSIS-NN API a program calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum CmsisApi {
    /// The current s8 API (int8 affine graphs, CMSIS-NN >= 4.1).
    #[default]
    S8,
    /// The legacy CMSIS_5 q7 API (q8 power-of-two graphs; removed in CMSIS-NN 4.0).
    LegacyQ7,
}

/// Which legacy q7 convolution function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConvQ7Fn {
    /// `arm_convolve_HWC_q7_basic` (any channel counts).
    Basic,
    /// `arm_convolve_HWC_q7_fast` (`ch_in % 4 == 0`, `ch_out % 2 == 0`).
    Fast,
    /// `arm_convolve_HWC_q7_RGB` (`ch_in == 3`).
    Rgb,
    /// `arm_depthwise_separable_conv_HWC_q7` (`ch_in == ch_out`, even).
    Depthwise,
}

/// A legacy q7 convolution: square image and kernel, one padding, one stride.
#[derive(Clone, Debug)]
pub(crate) struct ConvQ7K {
    pub f: ConvQ7Fn,
    pub dim_in: usize,
    pub ch_in: usize,
    pub ch_out: usize,
    pub kernel: usize,
    pub pad: usize,
    pub stride: usize,
    pub dim_out: usize,
    /// OHWI, or `[H, W, C]` for depthwise.
    pub weights: Vec<i8>,
    pub bias: Vec<i8>,
    pub bias_shift: i32,
    pub out_shift: i32,
}

/// `arm_fully_connected_q7`.
#[derive(Clone, Debug)]
pub(crate) struct FcQ7K {
    pub dim_vec: usize,
    pub rows: usize,
    pub weights: Vec<i8>,
    pub bias: Vec<i8>,
    pub bias_shift: i32,
    pub out_shift: i32,
}

/// `arm_maxpool_q7_HWC` (square; overwrites its input).
#[derive(Clone, Debug)]
pub(crate) struct MaxPoolQ7K {
    pub dim_in: usize,
    pub ch: usize,
    pub kernel: usize,
    pub pad: usize,
    pub stride: usize,
    pub dim_out: usize,
}

/// Q-format add (an integer helper: the q7 API has no rescaling add): operands shifted left by
/// `la` / `lb` to a common format, then `shift > 0` rounds right, `shift < 0` saturates left.
#[derive(Clone, Debug)]
pub(crate) struct AddQ7K {
    pub la: i32,
    pub lb: i32,
    pub shift: i32,
    pub size: usize,
}

/// One kernel call.
#[derive(Clone, Debug)]
pub(crate) enum Kernel {
    ConvQ7(ConvQ7K),
    FcQ7(FcQ7K),
    MaxPoolQ7(MaxPoolQ7K),
    AddQ7(AddQ7K),
    /// `arm_relu_q7`, in place (a copy first when the operand is still needed).
    ReluQ7(usize),
    Conv(ConvK),
    DwConv(ConvK),
    Fc(FcK),
    MaxPool(PoolK),
    AvgPool(PoolK),
    Add(AddK),
    Softmax(SoftmaxK),
    Concat(ConcatK),
    Mean(MeanK),
    Clamp(ClampK),
}

impl Kernel {
    /// Whether the output may share the buffer of an input whose last use is this step
    /// (element-wise kernels that read element `i` before writing element `i`).
    pub fn in_place_ok(&self) -> bool {
        matches!(self, Kernel::Add(_) | Kernel::Clamp(_) | Kernel::AddQ7(_) | Kernel::ReluQ7(_))
    }

    /// The fused activation bounds, for kernels that have them.
    pub fn act_mut(&mut self) -> Option<&mut (i32, i32)> {
        match self {
            Kernel::Conv(k) | Kernel::DwConv(k) => Some(&mut k.act),
            Kernel::Fc(k) => Some(&mut k.act),
            Kernel::MaxPool(k) | Kernel::AvgPool(k) => Some(&mut k.act),
            Kernel::Add(k) => Some(&mut k.act),
            _ => None,
        }
    }

    /// Scratch bytes this kernel needs, from the `*_get_buffer_size` formulas of a Cortex-M7
    /// (DSP, no MVE) build: conv `2 * align4(KH * KW * C_IN) * sizeof(int16)`, depthwise the
    /// same bound over its channels, avgpool `C * sizeof(int32)`, fully connected 0. The
    /// generated `init` checks every layer against the linked library's own functions.
    pub fn scratch_bytes(&self) -> usize {
        let align4 = |x: usize| x.div_ceil(4) * 4;
        match self {
            Kernel::Conv(k) => 2 * align4(k.filter.h * k.filter.w * k.input.c) * 2,
            Kernel::DwConv(k) => 2 * align4(k.filter.h * k.filter.w * k.input.c) * 2,
            Kernel::AvgPool(k) => k.input.c * 4,
            // bufferA of q15 values: 2 * ch_in * k * k (conv, depthwise), dim_vec (fully connected).
            Kernel::ConvQ7(k) => 2 * k.ch_in * k.kernel * k.kernel * 2,
            Kernel::FcQ7(k) => k.dim_vec * 2,
            _ => 0,
        }
    }

    /// Bytes of constant data (weights, biases, multipliers, shifts) this kernel puts in flash.
    pub fn const_bytes(&self) -> usize {
        match self {
            Kernel::Conv(k) | Kernel::DwConv(k) => k.weights.len() + 4 * (k.bias.len() + k.mult.len() + k.shift.len()),
            Kernel::Fc(k) => k.weights.len() + 4 * k.bias.len(),
            Kernel::ConvQ7(k) => k.weights.len() + k.bias.len(),
            Kernel::FcQ7(k) => k.weights.len() + k.bias.len(),
            _ => 0,
        }
    }

    /// Multiply-accumulates of the kernel.
    pub fn macs(&self) -> u64 {
        match self {
            Kernel::Conv(k) => (k.output.len() * k.filter.h * k.filter.w * k.input.c) as u64,
            Kernel::DwConv(k) => (k.output.len() * k.filter.h * k.filter.w) as u64,
            Kernel::Fc(k) => (k.batch * k.depth * k.out) as u64,
            Kernel::ConvQ7(k) => {
                let per_out =
                    if k.f == ConvQ7Fn::Depthwise { k.kernel * k.kernel } else { k.kernel * k.kernel * k.ch_in };
                (k.dim_out * k.dim_out * k.ch_out * per_out) as u64
            }
            Kernel::FcQ7(k) => (k.dim_vec * k.rows) as u64,
            _ => 0,
        }
    }
}

/// One step of the program: a kernel, the IR node it comes from, its operands and its output.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    /// The IR node name (without `%`).
    pub node: String,
    /// The IR op name.
    pub op: String,
    pub kernel: Kernel,
    pub inputs: Vec<Loc>,
    pub output: Loc,
}

/// The program's input: int8 NHWC, with the quantization of the graph's `quantize`.
#[derive(Clone, Debug)]
pub(crate) struct InputInfo {
    pub dims: Dims,
    /// The IR shape.
    pub shape: Vec<usize>,
    pub scale: f32,
    pub zero_point: i32,
    /// The IR name of the input.
    pub name: String,
}

/// The program's output: the cut tensor in the wire format (`clio::quant::wire`).
#[derive(Clone, Debug)]
pub(crate) struct OutputInfo {
    pub src: Loc,
    /// Physical (NHWC) dims of the source.
    pub dims: Dims,
    /// The wire header (fixed for the full tensor).
    pub header: Vec<u8>,
    pub scale: f32,
    pub zero_point: i32,
    /// The IR shape of the cut tensor.
    pub shape: Vec<usize>,
    /// The IR name of the transmitted value.
    pub name: String,
}

/// A lowered device graph.
#[derive(Clone, Debug)]
pub(crate) struct Program {
    pub graph: String,
    pub api: CmsisApi,
    pub input: InputInfo,
    pub steps: Vec<Step>,
    /// Size in bytes of every arena buffer.
    pub buffers: Vec<usize>,
    pub output: OutputInfo,
}
