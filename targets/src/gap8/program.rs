//! The lowered program: one step per layer, every parameter computed, in the planar CHW
//! layout of the IR (GAP8's kernels are planar too, so no layout change is needed).

/// Where an activation lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Loc {
    /// The module input (int8 CHW, owned by the caller).
    Input,
    /// An activation buffer in the L2 arena.
    Buf(usize),
}

/// How a convolution's multiply-accumulates run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Engine {
    /// On the HWCE, plane by plane (see `hwce.rs`).
    Hwce(super::hwce::HwcePlan),
    /// AutoTiler's `KerParConvDW3x3Stride{1,2}_fps`: bias already in the output format.
    Dw {
        /// Bias per channel in the output's Q format.
        bias: Vec<i8>,
        /// The one `Norm` of the layer.
        norm: u8,
    },
    /// clio's int32-accumulating cluster kernel `ClioKerParConvAcc32_fps`, operands in L2.
    Cluster,
    /// The same kernel on L1 tiles: the int32 accumulator chunk in L1, input planes (dense:
    /// one plane at a time, weights laid out `[cin][cout][kh][kw]`) or a chunk's planes
    /// (depthwise) double-buffered into L1 by the cluster DMA.
    Stream {
        /// Depthwise (a chunk's own planes) rather than dense (every plane for every chunk).
        dw: bool,
    },
    /// The same kernel with the whole input copied into L1 by one DMA (layers whose planes are
    /// too small to stream plane by plane, fully connected layers, other grouped convs), the
    /// int32 accumulator chunk and the output tile in L1.
    Whole,
}

/// A convolution (or a fully connected layer as a 1x1 convolution over `[depth, 1, 1]`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ConvStep {
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub ho: usize,
    pub wo: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub dil: [usize; 2],
    /// top, left, bottom, right.
    pub pads: [usize; 4],
    pub groups: usize,
    /// `[cout][cin / groups][kh][kw]` (i8 values in q8, i16 in q16).
    pub weights: Vec<i16>,
    /// Accumulator start per channel: `bias << bias_shift + rounding constant`.
    pub init: Vec<i32>,
    /// `out_shift` per channel.
    pub norm: Vec<u8>,
    /// Fused activation bounds (quantized).
    pub lo: i32,
    pub hi: i32,
    /// Bytes of an activation and weight element: 1 (q8) or 2 (q16).
    pub es: usize,
    pub engine: Engine,
    /// Output channels per accumulator chunk (the int32 accumulator holds one chunk).
    pub chunk: usize,
    /// Output rows per band of a streamed dense layer (`ho`: the whole plane at once; fewer
    /// when one output channel's plane does not fit L1: row tiling). `ho` for other engines.
    pub rows: usize,
}

impl ConvStep {
    /// L1 bytes of a streamed layer with `chunk` output channels: two input buffers, the int32
    /// accumulator chunk and the output tile.
    pub fn stream_l1_bytes(&self, dw: bool, chunk: usize) -> usize {
        2 * self.stream_xbuf(dw, chunk) + 4 * chunk * self.rows * self.wo + self.stream_obuf(chunk)
    }

    /// Bytes of the L1 output tile of a streamed layer (a chunk's output planes, or bands of
    /// `rows` rows, 4-aligned), written back to L2 by DMA.
    pub fn stream_obuf(&self, chunk: usize) -> usize {
        four(chunk * self.rows * self.wo * self.es)
    }

    /// Input rows a band of `rows` output rows reads at most (its window, clipped to the plane).
    pub fn band_in_rows(&self, rows: usize) -> usize {
        (rows.saturating_sub(1) * self.stride[0] + (self.kh - 1) * self.dil[0] + 1).min(self.h)
    }

    /// Input rows inside the plane that output rows `[y0, y0 + rows)` of this layer read
    /// (`r1 - r0` of the generated banded loops).
    pub fn window_rows(&self, y0: usize, rows: usize) -> usize {
        window_rows(y0, rows, self.stride[0], (self.kh - 1) * self.dil[0] + 1, self.pads[0], self.h)
    }

    /// Whether the layer is streamed in row bands (row tiling).
    pub fn banded(&self) -> bool {
        matches!(self.engine, Engine::Stream { .. }) && self.rows < self.ho
    }

    /// The reason text of a streamed layer's L1 tiling (empty for other engines).
    pub fn stream_note(&self) -> String {
        let Engine::Stream { dw } = self.engine else { return String::new() };
        let bands = if self.banded() {
            format!(
                " in bands of {} of {} output rows (row tiling: one output plane does not fit L1)",
                self.rows, self.ho
            )
        } else {
            String::new()
        };
        format!(
            "; L1 tiles: {} output channel(s) of int32 accumulator{bands}, double-buffered input {} by DMA in, the output tile by DMA out ({} B of L1)",
            self.chunk,
            if self.banded() { "plane bands" } else if dw { "chunks" } else { "planes" },
            self.stream_l1_bytes(dw, self.chunk)
        )
    }

    /// Bytes of the whole input in L1 (4-aligned).
    pub fn whole_in_bytes(&self) -> usize {
        four(self.cin * self.h * self.w * self.es)
    }

    /// L1 bytes of a [`Engine::Whole`] layer with `chunk` output channels: the input, the int32
    /// accumulator chunk and the output tile.
    pub fn whole_l1_bytes(&self, chunk: usize) -> usize {
        self.whole_in_bytes() + 4 * chunk * self.ho * self.wo + self.stream_obuf(chunk)
    }

    /// Turns a `Cluster` layer into a `Whole` one when its input, one chunk unit's accumulator
    /// and output tile fit `budget` bytes of L1; picks the largest chunk (in chunk units, at
    /// most the current one) that fits (the proof that the layer's L1 tiles fit).
    pub fn try_whole(&mut self, budget: usize) -> bool {
        if !matches!(self.engine, Engine::Cluster) {
            return false;
        }
        let unit = self.chunk_unit();
        let mut chunk = 0;
        while chunk + unit <= self.chunk.max(unit) && self.whole_l1_bytes(chunk + unit) <= budget {
            chunk += unit;
        }
        if chunk == 0 {
            return false;
        }
        self.chunk = chunk.min(self.cout);
        self.engine = Engine::Whole;
        true
    }

    /// The reason text of a [`Engine::Whole`] layer's L1 tiling (empty for other engines).
    pub fn whole_note(&self) -> String {
        if !matches!(self.engine, Engine::Whole) {
            return String::new();
        }
        format!(
            "; L1 tiles: the whole input ({} B) by DMA in, {} output channel(s) of int32 accumulator, the output tile by DMA out ({} B of L1)",
            self.whole_in_bytes(),
            self.chunk,
            self.whole_l1_bytes(self.chunk)
        )
    }

    /// Bytes of one L1 input buffer of a streamed layer (4-aligned).
    pub fn stream_xbuf(&self, dw: bool, chunk: usize) -> usize {
        let plane = self.h * self.w;
        // A band of one plane (row tiling; chunk 1 when depthwise), or whole planes.
        let band = if self.rows < self.ho { self.band_in_rows(self.rows) * self.w } else { plane };
        four((if dw { chunk * band } else { band }) * self.es)
    }

    /// Turns a `Cluster` layer into a `Stream` one when its planes are not tiny and one output
    /// channel fits `budget` bytes of L1 (dense, depthwise, or grouped when its whole input
    /// does not fit L1: then chunks stay inside a group); picks the
    /// largest chunk that fits (a proof that the layer's L1 tiles fit). A dense layer whose
    /// single output plane does not fit is tiled in bands of output rows (the most that fit).
    pub fn try_stream(&mut self, budget: usize) -> bool {
        let dw = self.groups > 1 && self.groups == self.cin && self.cin == self.cout;
        let grouped = self.groups > 1 && !dw;
        if !matches!(self.engine, Engine::Cluster) || self.h * self.w < 16 {
            return false;
        }
        // A grouped conv whose whole input fits L1 takes the whole-input tiles instead.
        if grouped && self.whole_l1_bytes(self.chunk_unit()) <= budget {
            return false;
        }
        // A grouped conv streams one group's planes per chunk: chunks stay inside a group.
        let limit = if grouped { self.cout / self.groups } else { self.cout };
        let mut chunk = 0;
        while chunk < limit && self.stream_l1_bytes(dw, chunk + 1) <= budget {
            chunk += 1;
        }
        if grouped {
            chunk = (1..=chunk).rev().find(|c| limit % c == 0).unwrap_or(0);
        }
        if chunk == 0 {
            // Row tiling: one output channel in bands of as many rows as fit.
            chunk = 1;
            self.rows = self.ho.saturating_sub(1);
            while self.rows > 0 && self.stream_l1_bytes(dw, 1) > budget {
                self.rows -= 1;
            }
            if self.rows == 0 {
                self.rows = self.ho;
                return false;
            }
        }
        if !dw {
            // [cout][cg][kh][kw] -> [cg][cout][kh][kw]: one input plane's filters are contiguous.
            let (kk, cg) = (self.kh * self.kw, self.cin / self.groups.max(1));
            let mut t = vec![0i16; self.weights.len()];
            for o in 0..self.cout {
                for i in 0..cg {
                    t[(i * self.cout + o) * kk..(i * self.cout + o + 1) * kk]
                        .copy_from_slice(&self.weights[(o * cg + i) * kk..(o * cg + i + 1) * kk]);
                }
            }
            self.weights = t;
        }
        self.chunk = chunk;
        self.engine = Engine::Stream { dw };
        true
    }

    /// The largest valid chunk of at most `max` output channels (at least one unit): whole
    /// units (see [`ConvStep::chunk_unit`]), and for a streamed grouped conv a divisor of the
    /// channels per group, so that no chunk straddles two groups.
    pub fn valid_chunk(&self, max: usize) -> usize {
        let unit = self.chunk_unit();
        let chunk = ((max / unit).max(1) * unit).min(self.cout).max(1);
        if matches!(self.engine, Engine::Stream { dw: false }) && self.groups > 1 {
            let og = self.cout / self.groups;
            return (1..=chunk.min(og)).rev().find(|c| og % c == 0).unwrap_or(1);
        }
        chunk
    }

    /// Chooses [`ConvStep::chunk`]: as many output channels as fit `budget` bytes of int32
    /// accumulator, a multiple of the channels per group (grouped convs) or of the HWCE's
    /// three outputs per call, at least one unit.
    pub fn choose_chunk(&mut self, budget: usize) {
        let unit = self.chunk_unit();
        let fit = budget / (4 * self.ho * self.wo).max(1);
        self.chunk = ((fit / unit).max(1) * unit).min(self.cout).max(1);
    }

    /// The granularity of output-channel chunks: whole groups of a grouped conv, the three
    /// outputs of an HWCE 3x3 multi-out call, else one channel.
    pub fn chunk_unit(&self) -> usize {
        if matches!(self.engine, Engine::Stream { .. }) {
            // Streamed layers accumulate plane by plane: any channel count within a group.
            1
        } else if self.groups > 1 {
            (self.cout / self.groups.max(1)).max(1)
        } else if matches!(&self.engine, Engine::Hwce(h) if h.k == 3) {
            3
        } else {
            1
        }
    }

    /// Multiply-accumulates of the layer.
    pub fn macs(&self) -> u64 {
        (self.cout * self.ho * self.wo * (self.cin / self.groups.max(1)) * self.kh * self.kw) as u64
    }
}

/// Input rows inside an `h`-row plane that output rows `[y0, y0 + rows)` of a window of
/// `kext` rows (dilation included), stride `stride` and top padding `pad` read: the window
/// clipped to the plane, `r1 - r0` of the generated banded loops (convolutions and pools).
pub(crate) fn window_rows(y0: usize, rows: usize, stride: usize, kext: usize, pad: usize, h: usize) -> usize {
    let r0 = (y0 * stride).saturating_sub(pad);
    let r1 = ((y0 + rows - 1) * stride + kext).saturating_sub(pad).min(h);
    r1.saturating_sub(r0)
}

/// Bytes rounded up to a multiple of 4 (every L1 buffer starts 4-aligned).
pub(crate) fn four(b: usize) -> usize {
    b.div_ceil(4) * 4
}

/// Max pooling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PoolStep {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub ho: usize,
    pub wo: usize,
    pub k: [usize; 2],
    pub stride: [usize; 2],
    pub pad: [usize; 2],
}

/// Global average pooling in Q formats: per channel
/// `y = saturate8(round_half_away((sum << left) / divisor))` in 64 bits, with `(left, divisor)`
/// from `clio::interp::int::pow2_mean_params` (the interpreter's parameters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MeanStep {
    pub c: usize,
    /// Cells per channel (`H * W`).
    pub size: usize,
    pub left: u32,
    pub divisor: i64,
}

/// What a step computes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StepKind {
    Conv(Box<ConvStep>),
    Clamp {
        size: usize,
        lo: i32,
        hi: i32,
    },
    MaxPool(PoolStep),
    /// TFLite's rounded average over the window's cells inside the input (same format in and out).
    AvgPool(PoolStep),
    GlobalAvgPool(MeanStep),
    Add {
        size: usize,
        shift_a: u8,
        shift_b: u8,
        norm: u8,
        left: u8,
    },
    /// Concatenation along channels: `[C_i, H, W]` of each input, in order (planar CHW: one copy
    /// per operand).
    Concat {
        parts: Vec<[usize; 3]>,
    },
}

/// One layer of the generated code.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Step {
    pub node: String,
    pub op: String,
    pub kind: StepKind,
    pub inputs: Vec<Loc>,
    pub output: Loc,
    /// Why this engine and kernel (the generated comment and the manifest say it).
    pub reason: String,
    /// L1 tiles of a layer that is not a tiled convolution (`None`: it reads L2 directly, or
    /// it is a convolution tiled by its engine).
    pub tiles: Option<super::elem_tiles::Tiles>,
}

/// The data width of a program: q8 (`int8_t` activations and weights, the `_fps` kernels and
/// the HWCE) or q16 (`int16_t` activations, weights and biases, the `_fp` kernels on the
/// cluster cores only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Width {
    Q8,
    Q16,
}

impl Width {
    /// Bytes per element.
    pub fn bytes(self) -> usize {
        match self {
            Width::Q8 => 1,
            Width::Q16 => 2,
        }
    }

    /// The saturation range.
    pub fn range(self) -> (i32, i32) {
        match self {
            Width::Q8 => (-128, 127),
            Width::Q16 => (-32768, 32767),
        }
    }

    /// The kernel-name suffix: `_fps` (8-bit Q) or `_fp` (16-bit Q), as in AutoTiler.
    pub fn suffix(self) -> &'static str {
        match self {
            Width::Q8 => "_fps",
            Width::Q16 => "_fp",
        }
    }

    /// The argument-struct infix: clio's q8 structs are `Clio<Name>_T`, q16 `Clio<Name>_fp_T`.
    pub fn infix(self) -> &'static str {
        match self {
            Width::Q8 => "",
            Width::Q16 => "_fp",
        }
    }

    /// The C element type of activations and weights.
    pub fn ctype(self) -> &'static str {
        match self {
            Width::Q8 => "int8_t",
            Width::Q16 => "int16_t",
        }
    }

    /// The scheme name (`q8`, `q16`).
    pub fn scheme(self) -> &'static str {
        match self {
            Width::Q8 => "q8",
            Width::Q16 => "q16",
        }
    }
}

/// The module input and the cut tensor.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Io {
    pub name: String,
    pub shape: Vec<usize>,
    pub frac: i32,
    pub bytes: usize,
}

/// A lowered device graph.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Program {
    pub graph: String,
    /// q8 or q16.
    pub width: Width,
    pub input: Io,
    pub output: Io,
    /// Where the cut tensor is.
    pub output_loc: Loc,
    /// Wire header of the cut tensor.
    pub header: Vec<u8>,
    pub steps: Vec<Step>,
    /// Bytes of each activation buffer.
    pub buffers: Vec<usize>,
}
