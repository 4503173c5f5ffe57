//! C text of a lowered program: the header (interface, sizes) and the source (constant data,
//! the static arena and scratch buffer, `init`, `invoke`, `truncate`).
//!
//! The generated code uses only integer types, no dynamic allocation and no variable-length
//! arrays: every size is a literal.

use super::kernel::*;
use super::memory::Memory;
use std::fmt::Write;

/// Names derived from the prefix.
pub(crate) struct Names {
    /// C identifier prefix (`clio_device`).
    pub p: String,
    /// Upper-case macro prefix (`CLIO_DEVICE`).
    pub u: String,
}

impl Names {
    pub fn new(prefix: &str) -> Names {
        Names { p: prefix.to_string(), u: prefix.to_ascii_uppercase() }
    }
}

/// A comment-safe rendering of an IR name.
fn cname(s: &str) -> String {
    s.replace("*/", "* /")
}

/// A C integer literal (`INT32_MIN` cannot be written as a negated literal of type int).
trait CLit {
    fn lit(&self) -> String;
}

impl CLit for i8 {
    fn lit(&self) -> String {
        self.to_string()
    }
}

impl CLit for u8 {
    fn lit(&self) -> String {
        self.to_string()
    }
}

impl CLit for i32 {
    fn lit(&self) -> String {
        if *self == i32::MIN {
            "(-2147483647 - 1)".to_string()
        } else {
            self.to_string()
        }
    }
}

fn array<T: CLit>(out: &mut String, ty: &str, name: &str, v: &[T]) {
    let _ = writeln!(out, "static const {ty} {name}[{}] = {{", v.len().max(1));
    if v.is_empty() {
        out.push_str("    0,\n");
    }
    for chunk in v.chunks(24) {
        let line: Vec<String> = chunk.iter().map(|x| x.lit()).collect();
        let _ = writeln!(out, "    {},", line.join(", "));
    }
    out.push_str("};\n");
}

fn dims(out: &mut String, name: &str, d: Dims) {
    let _ = writeln!(out, "static const cmsis_nn_dims {name} = {{{}, {}, {}, {}}};", d.n, d.h, d.w, d.c);
}

fn tile(v: [usize; 2]) -> String {
    // `cmsis_nn_tile` is {w, h}; our pairs are [h, w].
    format!("{{.w = {}, .h = {}}}", v[1], v[0])
}

/// The CMSIS-NN function a kernel calls (for reports and comments).
pub(crate) fn function(k: &Kernel) -> &'static str {
    match k {
        Kernel::Conv(_) => "arm_convolve_wrapper_s8",
        Kernel::DwConv(_) => "arm_depthwise_conv_wrapper_s8",
        Kernel::Fc(_) => "arm_fully_connected_s8",
        Kernel::MaxPool(_) => "arm_max_pool_s8",
        Kernel::AvgPool(_) => "arm_avgpool_s8",
        Kernel::Add(_) => "arm_elementwise_add_s8",
        Kernel::Softmax(_) => "arm_softmax_s8",
        Kernel::Concat(_) => "arm_concatenation_s8_z",
        Kernel::Mean(MeanK { arith: MeanArith::Affine { .. }, .. }) => "clio_mean_s8",
        Kernel::Mean(MeanK { arith: MeanArith::Pow2 { .. }, .. }) => "clio_mean_q7",
        Kernel::Clamp(_) => "clio_clamp_s8",
        Kernel::ConvQ7(k) => match k.f {
            ConvQ7Fn::Basic => "arm_convolve_HWC_q7_basic",
            ConvQ7Fn::Fast => "arm_convolve_HWC_q7_fast",
            ConvQ7Fn::Rgb => "arm_convolve_HWC_q7_RGB",
            ConvQ7Fn::Depthwise => "arm_depthwise_separable_conv_HWC_q7",
        },
        Kernel::FcQ7(_) => "arm_fully_connected_q7",
        Kernel::MaxPoolQ7(_) => "arm_maxpool_q7_HWC",
        Kernel::AddQ7(_) => "clio_add_q7",
        Kernel::ReluQ7(_) => "arm_relu_q7",
    }
}

fn describe(k: &Kernel) -> String {
    match k {
        Kernel::Conv(c) | Kernel::DwConv(c) => format!(
            "{}x{} stride {}x{} pad {}x{} dilation {}x{}, {}x{}x{} -> {}x{}x{}, act [{}, {}]",
            c.filter.h,
            c.filter.w,
            c.stride[0],
            c.stride[1],
            c.pad[0],
            c.pad[1],
            c.dilation[0],
            c.dilation[1],
            c.input.h,
            c.input.w,
            c.input.c,
            c.output.h,
            c.output.w,
            c.output.c,
            c.act.0,
            c.act.1
        ),
        Kernel::Fc(f) => format!("{} -> {} (batch {}), act [{}, {}]", f.depth, f.out, f.batch, f.act.0, f.act.1),
        Kernel::MaxPool(p) | Kernel::AvgPool(p) => format!(
            "{}x{} stride {}x{} pad {}x{}, {}x{}x{} -> {}x{}x{}",
            p.kernel[0],
            p.kernel[1],
            p.stride[0],
            p.stride[1],
            p.pad[0],
            p.pad[1],
            p.input.h,
            p.input.w,
            p.input.c,
            p.output.h,
            p.output.w,
            p.output.c
        ),
        Kernel::Add(a) => format!("{} elements, act [{}, {}]", a.size, a.act.0, a.act.1),
        Kernel::Softmax(s) => format!("{} x {} (rows x row size)", s.rows, s.row_size),
        Kernel::Concat(c) => format!("{:?} -> {} channels over {} pixels", c.parts, c.c_out, c.pixels),
        Kernel::Mean(m) => format!("{} cells x {} channels", m.hw, m.c),
        Kernel::Clamp(c) => format!("{} elements to [{}, {}]", c.size, c.lo, c.hi),
        Kernel::ConvQ7(k) => format!(
            "{0}x{0} stride {1} pad {2}, {3}x{3}x{4} -> {5}x{5}x{6}, bias_shift {7}, out_shift {8}",
            k.kernel, k.stride, k.pad, k.dim_in, k.ch_in, k.dim_out, k.ch_out, k.bias_shift, k.out_shift
        ),
        Kernel::FcQ7(k) => {
            format!("{} -> {}, bias_shift {}, out_shift {}", k.dim_vec, k.rows, k.bias_shift, k.out_shift)
        }
        Kernel::MaxPoolQ7(k) => format!(
            "{0}x{0} stride {1} pad {2}, {3}x{3}x{4} -> {5}x{5}x{4}",
            k.kernel, k.stride, k.pad, k.dim_in, k.ch, k.dim_out
        ),
        Kernel::AddQ7(k) => format!("{} elements, << {} + << {}, >> {}", k.size, k.la, k.lb, k.shift),
        Kernel::ReluQ7(n) => format!("{n} elements"),
    }
}

const ADD_Q7_HELPER: &str = r#"/* Q-format add: both operands aligned to a common format (shifted left by la / lb), then
 * rounded right by `shift` (or saturated left when shift < 0), saturated to int8. */
static void clio_add_q7(const int8_t *a, const int8_t *b, int32_t la, int32_t lb, int32_t shift, int32_t size,
                        int8_t *out)
{
    for (int32_t i = 0; i < size; i++) {
        const int32_t acc = (int32_t)(((uint32_t)(int32_t)a[i] << la) + ((uint32_t)(int32_t)b[i] << lb));
        int32_t v;
        if (shift >= 0) {
            const int32_t round = shift > 0 ? ((int32_t)1 << (shift - 1)) : 0;
            v = ((int32_t)((uint32_t)acc + (uint32_t)round)) >> shift;
        } else {
            const int64_t w = (int64_t)acc * ((int64_t)1 << -shift);
            v = w > INT32_MAX ? INT32_MAX : (w < INT32_MIN ? INT32_MIN : (int32_t)w);
        }
        out[i] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
}
"#;

const COPY_HELPER: &str = r#"static void clio_copy_s8(const int8_t *in, uint32_t size, int8_t *out)
{
    for (uint32_t i = 0; i < size; i++) {
        out[i] = in[i];
    }
}
"#;

/// Integer helpers for the ops CMSIS-NN has no kernel for (TFLite `MEAN`, a clamp). Same
/// arithmetic as `clio::quant::math` and the integer interpreter.
const MEAN_HELPERS: &str = r#"static int32_t clio_srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static int32_t clio_rdbp(int32_t x, int32_t exponent)
{
    const int32_t e = exponent < 0 ? 0 : (exponent > 31 ? 31 : exponent);
    const int32_t mask = (int32_t)(((int64_t)1 << e) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

static int32_t clio_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift < 0 ? -shift : 0;
    return clio_rdbp(clio_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

/* TFLite int8 MEAN over H and W of an NHWC tensor (global average pooling). */
static void clio_mean_s8(const int8_t *in, int32_t n, int32_t hw, int32_t c, int32_t in_zp, int32_t out_zp,
                         int32_t multiplier, int32_t shift, int8_t *out)
{
    for (int32_t b = 0; b < n; b++) {
        for (int32_t ch = 0; ch < c; ch++) {
            int32_t sum = 0;
            for (int32_t p = 0; p < hw; p++) {
                sum += in[(b * hw + p) * c + ch];
            }
            int32_t v = clio_requantize(sum - in_zp * hw, multiplier, shift) + out_zp;
            v = v < -128 ? -128 : (v > 127 ? 127 : v);
            out[b * c + ch] = (int8_t)v;
        }
    }
}
"#;

const MEAN_Q7_HELPER: &str = r#"/* Global average pooling of an NHWC q7 tensor: round(sum << left / divisor), half away from
   zero, with divisor = cells << (Q_in - Q_out) (one rounding, as clio's integer interpreter). */
static void clio_mean_q7(const q7_t *in, int32_t n, int32_t hw, int32_t c, int32_t left, int64_t divisor, q7_t *out)
{
    for (int32_t b = 0; b < n; b++) {
        for (int32_t ch = 0; ch < c; ch++) {
            int64_t sum = 0;
            for (int32_t p = 0; p < hw; p++) {
                sum += in[(b * hw + p) * c + ch];
            }
            sum = sum * ((int64_t)1 << left);
            int64_t v = sum >= 0 ? (sum + divisor / 2) / divisor : (sum - divisor / 2) / divisor;
            v = v < -128 ? -128 : (v > 127 ? 127 : v);
            out[b * c + ch] = (q7_t)v;
        }
    }
}
"#;

const CLAMP_HELPER: &str = r#"/* Integer clamp (a relu / clip that could not be fused); in place when in == out. */
static void clio_clamp_s8(const int8_t *in, int32_t size, int32_t lo, int32_t hi, int8_t *out)
{
    for (int32_t i = 0; i < size; i++) {
        const int32_t v = in[i];
        out[i] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
    }
}
"#;

fn api_label(api: CmsisApi) -> &'static str {
    match api {
        CmsisApi::S8 => "CMSIS-NN s8",
        CmsisApi::LegacyQ7 => "CMSIS_5 legacy q7",
    }
}

/// The header file.
pub(crate) fn header(p: &Program, mem: &Memory, n: &Names) -> String {
    let (pp, u) = (&n.p, &n.u);
    let o = &p.output;
    let channels = o.shape[1];
    let per_channel: usize = o.dims.len() / channels.max(1);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "/* Generated by clio (STM32F7, {}) from graph @{}. Do not edit.",
        api_label(p.api),
        cname(&p.graph)
    );
    s.push_str(" *\n");
    let _ = writeln!(
        s,
        " * Input:  %{}, int8 NHWC [{}, {}, {}, {}], scale {:e}, zero point {}.",
        cname(&p.input.name),
        p.input.dims.n,
        p.input.dims.h,
        p.input.dims.w,
        p.input.dims.c,
        p.input.scale,
        p.input.zero_point
    );
    let _ = writeln!(
        s,
        " * Output: %{} {:?}, scale {:e}, zero point {}, in the clio wire format",
        cname(&o.name),
        o.shape,
        o.scale,
        o.zero_point
    );
    s.push_str(" *         (CLQW v1: header, then channel-major int8 payload; any channel prefix is valid).\n");
    let _ = writeln!(
        s,
        " * Memory: arena {} bytes (lower bound {}, TFLM greedy {}, no reuse {}), scratch {} bytes.",
        mem.plan.arena_bytes,
        mem.plan.lower_bound_bytes,
        mem.plan.tflm_greedy_bytes,
        mem.plan.no_reuse_bytes,
        mem.scratch_bytes
    );
    s.push_str(" */\n");
    let _ = writeln!(s, "#ifndef {u}_H\n#define {u}_H\n\n#include <stdint.h>\n");
    s.push_str("#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    let d = p.input.dims;
    let _ = writeln!(s, "#define {u}_INPUT_N {}", d.n);
    let _ = writeln!(s, "#define {u}_INPUT_H {}", d.h);
    let _ = writeln!(s, "#define {u}_INPUT_W {}", d.w);
    let _ = writeln!(s, "#define {u}_INPUT_C {}", d.c);
    let _ = writeln!(s, "#define {u}_INPUT_BYTES {}", d.len());
    let _ = writeln!(s, "#define {u}_INPUT_ZERO_POINT {}", p.input.zero_point);
    let _ = writeln!(s, "#define {u}_OUTPUT_CHANNELS {channels}");
    let _ = writeln!(s, "#define {u}_OUTPUT_HEADER_BYTES {}", o.header.len());
    let _ = writeln!(s, "#define {u}_OUTPUT_CHANNEL_BYTES {per_channel}");
    let _ = writeln!(s, "#define {u}_OUTPUT_BYTES {}", o.header.len() + o.dims.len());
    let _ = writeln!(s, "#define {u}_ARENA_BYTES {}", mem.plan.arena_bytes);
    let _ = writeln!(s, "#define {u}_SCRATCH_BYTES {}", mem.scratch_bytes);
    s.push('\n');
    s.push_str("/* Checks the scratch buffer against the linked CMSIS-NN's *_get_buffer_size: 0 when it fits,\n");
    s.push_str(" * otherwise 1 + the index of the first layer that needs more. Call once before invoke. */\n");
    let _ = writeln!(s, "int32_t {pp}_init(void);\n");
    let _ = writeln!(s, "/* Runs the device part: `input` holds {u}_INPUT_BYTES int8 values (NHWC, quantized with the");
    let _ = writeln!(s, " * scale and zero point above); writes {u}_OUTPUT_BYTES bytes to `output`. Returns 0, or");
    s.push_str(" * 1 + the index of the layer whose kernel reported an error. */\n");
    let _ = writeln!(s, "int32_t {pp}_invoke(const int8_t *input, uint8_t *output);\n");
    s.push_str("/* Progressive slicing: keeps the first `channels` channels of a message written by invoke\n");
    s.push_str(" * (updates its header) and returns its new length in bytes, or 0 if `channels` is out of range. */\n");
    let _ = writeln!(s, "uint32_t {pp}_truncate(uint8_t *message, uint32_t channels);\n");
    s.push_str("#ifdef __cplusplus\n}\n#endif\n\n");
    let _ = writeln!(s, "#endif /* {u}_H */");
    s
}

struct Src<'a> {
    n: &'a Names,
    mem: &'a Memory,
    data: String,
    init: String,
    body: String,
}

impl Src<'_> {
    fn ptr(&self, l: Loc) -> String {
        match l {
            Loc::Input => "input".to_string(),
            Loc::Buf(b) => format!("({}_arena + {})", self.n.p, self.mem.offsets[b].unwrap_or(0)),
        }
    }

    fn step(&mut self, i: usize, st: &Step) {
        let pp = self.n.p.clone();
        let l = format!("{pp}_l{i}");
        let _ = writeln!(
            self.data,
            "\n/* layer {i}: %{} ({}) -> {}: {} */",
            cname(&st.node),
            st.op,
            function(&st.kernel),
            describe(&st.kernel)
        );
        let out = self.ptr(st.output);
        let ins: Vec<String> = st.inputs.iter().map(|x| self.ptr(*x)).collect();
        let _ = writeln!(self.body, "    /* {i}: %{} */", cname(&st.node));
        let check =
            |call: String| format!("    if ({call} != ARM_CMSIS_NN_SUCCESS) {{\n        return {};\n    }}\n", i + 1);
        match &st.kernel {
            Kernel::Conv(c) | Kernel::DwConv(c) => {
                let dw = matches!(st.kernel, Kernel::DwConv(_));
                array(&mut self.data, "int8_t", &format!("{l}_w"), &c.weights);
                array(&mut self.data, "int32_t", &format!("{l}_b"), &c.bias);
                array(&mut self.data, "int32_t", &format!("{l}_mult"), &c.mult);
                array(&mut self.data, "int32_t", &format!("{l}_shift"), &c.shift);
                let ptype = if dw { "cmsis_nn_dw_conv_params" } else { "cmsis_nn_conv_params" };
                let mult = if dw { format!(".ch_mult = {}, ", c.ch_mult) } else { String::new() };
                let _ = writeln!(
                    self.data,
                    "static const {ptype} {l}_params = {{.input_offset = {}, .output_offset = {}, {mult}.stride = {}, .padding = {}, .dilation = {}, .activation = {{{}, {}}}}};",
                    c.input_offset,
                    c.output_offset,
                    tile(c.stride),
                    tile(c.pad),
                    tile(c.dilation),
                    c.act.0,
                    c.act.1
                );
                let _ = writeln!(
                    self.data,
                    "static const cmsis_nn_per_channel_quant_params {l}_quant = {{(int32_t *){l}_mult, (int32_t *){l}_shift}};"
                );
                dims(&mut self.data, &format!("{l}_in"), c.input);
                dims(&mut self.data, &format!("{l}_filter"), c.filter);
                dims(&mut self.data, &format!("{l}_bias"), Dims::new(1, 1, 1, c.output.c));
                dims(&mut self.data, &format!("{l}_out"), c.output);
                let f = function(&st.kernel);
                let _ = writeln!(
                    self.init,
                    "    if ({f}_get_buffer_size(&{l}_params, &{l}_in, &{l}_filter, &{l}_out) > {}_SCRATCH_BYTES) {{\n        return {};\n    }}",
                    self.n.u,
                    i + 1
                );
                self.body.push_str(&check(format!(
                    "{f}(&ctx, &{l}_params, &{l}_quant, &{l}_in, {}, &{l}_filter, {l}_w, &{l}_bias, {l}_b, &{l}_out, {out})",
                    ins[0]
                )));
            }
            Kernel::Fc(f) => {
                array(&mut self.data, "int8_t", &format!("{l}_w"), &f.weights);
                array(&mut self.data, "int32_t", &format!("{l}_b"), &f.bias);
                let _ = writeln!(
                    self.data,
                    "static const cmsis_nn_fc_params {l}_params = {{.input_offset = {}, .filter_offset = 0, .output_offset = {}, .activation = {{{}, {}}}}};",
                    f.input_offset, f.output_offset, f.act.0, f.act.1
                );
                let _ = writeln!(
                    self.data,
                    "static const cmsis_nn_per_tensor_quant_params {l}_quant = {{{}, {}}};",
                    f.mult, f.shift
                );
                dims(&mut self.data, &format!("{l}_in"), Dims::new(f.batch, 1, 1, f.depth));
                dims(&mut self.data, &format!("{l}_filter"), Dims::new(f.depth, 1, 1, f.out));
                dims(&mut self.data, &format!("{l}_bias"), Dims::new(1, 1, 1, f.out));
                dims(&mut self.data, &format!("{l}_out"), Dims::new(f.batch, 1, 1, f.out));
                let _ = writeln!(
                    self.init,
                    "    if (arm_fully_connected_s8_get_buffer_size(&{l}_filter) > {}_SCRATCH_BYTES) {{\n        return {};\n    }}",
                    self.n.u,
                    i + 1
                );
                self.body.push_str(&check(format!(
                    "arm_fully_connected_s8(&ctx, &{l}_params, &{l}_quant, &{l}_in, {}, &{l}_filter, {l}_w, &{l}_bias, {l}_b, &{l}_out, {out})",
                    ins[0]
                )));
            }
            Kernel::MaxPool(k) | Kernel::AvgPool(k) => {
                let _ = writeln!(
                    self.data,
                    "static const cmsis_nn_pool_params {l}_params = {{.stride = {}, .padding = {}, .activation = {{{}, {}}}}};",
                    tile(k.stride),
                    tile(k.pad),
                    k.act.0,
                    k.act.1
                );
                dims(&mut self.data, &format!("{l}_in"), k.input);
                dims(&mut self.data, &format!("{l}_filter"), Dims::new(1, k.kernel[0], k.kernel[1], 1));
                dims(&mut self.data, &format!("{l}_out"), k.output);
                let f = function(&st.kernel);
                if matches!(st.kernel, Kernel::AvgPool(_)) {
                    let _ = writeln!(
                        self.init,
                        "    if (arm_avgpool_s8_get_buffer_size({}, {}) > {}_SCRATCH_BYTES) {{\n        return {};\n    }}",
                        k.output.w,
                        k.input.c,
                        self.n.u,
                        i + 1
                    );
                }
                self.body.push_str(&check(format!(
                    "{f}(&ctx, &{l}_params, &{l}_in, {}, &{l}_filter, &{l}_out, {out})",
                    ins[0]
                )));
            }
            Kernel::Add(a) => {
                self.body.push_str(&check(format!(
                    "arm_elementwise_add_s8({}, {}, {}, {}, {}, {}, {}, {}, {}, {out}, {}, {}, {}, {}, {}, {})",
                    ins[0],
                    ins[1],
                    a.in1.0,
                    a.in1.1,
                    a.in1.2,
                    a.in2.0,
                    a.in2.1,
                    a.in2.2,
                    a.left_shift,
                    a.out.0,
                    a.out.1,
                    a.out.2,
                    a.act.0,
                    a.act.1,
                    a.size
                )));
            }
            Kernel::Softmax(k) => {
                let _ = writeln!(
                    self.body,
                    "    arm_softmax_s8({}, {}, {}, {}, {}, {}, {out});",
                    ins[0], k.rows, k.row_size, k.mult, k.shift, k.diff_min
                );
            }
            Kernel::Concat(k) => {
                let mut off = 0;
                for (src, c) in ins.iter().zip(&k.parts) {
                    let _ = writeln!(
                        self.body,
                        "    arm_concatenation_s8_z({src}, 1, 1, {c}, {}, {out}, {}, {off});",
                        k.pixels, k.c_out
                    );
                    off += c;
                }
            }
            Kernel::Mean(m) => match m.arith {
                MeanArith::Affine { in_zp, out_zp, mult, shift } => {
                    let _ = writeln!(
                        self.body,
                        "    clio_mean_s8({}, {}, {}, {}, {in_zp}, {out_zp}, {mult}, {shift}, {out});",
                        ins[0], m.n, m.hw, m.c
                    );
                }
                MeanArith::Pow2 { left, divisor } => {
                    let _ = writeln!(
                        self.body,
                        "    clio_mean_q7({}, {}, {}, {}, {left}, {divisor}, {out});",
                        ins[0], m.n, m.hw, m.c
                    );
                }
            },
            Kernel::Clamp(c) => {
                let _ = writeln!(self.body, "    clio_clamp_s8({}, {}, {}, {}, {out});", ins[0], c.size, c.lo, c.hi);
            }
            Kernel::ConvQ7(k) => {
                array(&mut self.data, "q7_t", &format!("{l}_w"), &k.weights);
                array(&mut self.data, "q7_t", &format!("{l}_b"), &k.bias);
                let status = |call: String| {
                    format!("    if ({call} != ARM_MATH_SUCCESS) {{\n        return {};\n    }}\n", i + 1)
                };
                self.body.push_str(&status(format!(
                    "{}({}, {}, {}, {l}_w, {}, {}, {}, {}, {l}_b, {}, {}, {out}, {}, (q15_t *){pp}_scratch, NULL)",
                    function(&st.kernel),
                    ins[0],
                    k.dim_in,
                    k.ch_in,
                    k.ch_out,
                    k.kernel,
                    k.pad,
                    k.stride,
                    k.bias_shift,
                    k.out_shift,
                    k.dim_out
                )));
            }
            Kernel::FcQ7(k) => {
                array(&mut self.data, "q7_t", &format!("{l}_w"), &k.weights);
                array(&mut self.data, "q7_t", &format!("{l}_b"), &k.bias);
                let _ = writeln!(
                    self.body,
                    "    if (arm_fully_connected_q7({}, {l}_w, {}, {}, {}, {}, {l}_b, {out}, (q15_t *){pp}_scratch) != ARM_MATH_SUCCESS) {{\n        return {};\n    }}",
                    ins[0],
                    k.dim_vec,
                    k.rows,
                    k.bias_shift,
                    k.out_shift,
                    i + 1
                );
            }
            Kernel::MaxPoolQ7(k) => {
                let _ = writeln!(
                    self.body,
                    "    arm_maxpool_q7_HWC({}, {}, {}, {}, {}, {}, {}, NULL, {out});",
                    ins[0], k.dim_in, k.ch, k.kernel, k.pad, k.stride, k.dim_out
                );
            }
            Kernel::AddQ7(k) => {
                let _ = writeln!(
                    self.body,
                    "    clio_add_q7({}, {}, {}, {}, {}, {}, {out});",
                    ins[0], ins[1], k.la, k.lb, k.shift, k.size
                );
            }
            Kernel::ReluQ7(n) => {
                if st.inputs[0] != st.output {
                    let _ = writeln!(self.body, "    clio_copy_s8({}, {n}, {out});", ins[0]);
                }
                let _ = writeln!(
                    self.body,
                    "    for (uint32_t off = 0; off < {n}u; off += 32768u) {{\n        arm_relu_q7({out} + off, (uint16_t)({n}u - off < 32768u ? {n}u - off : 32768u));\n    }}"
                );
            }
        }
    }
}

/// The source file.
pub(crate) fn source(p: &Program, mem: &Memory, n: &Names) -> String {
    let (pp, u) = (&n.p, &n.u);
    let mut src = Src { n, mem, data: String::new(), init: String::new(), body: String::new() };
    for (i, st) in p.steps.iter().enumerate() {
        src.step(i, st);
    }
    let o = &p.output;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "/* Generated by clio (STM32F7, {}) from graph @{}. Do not edit. */",
        api_label(p.api),
        cname(&p.graph)
    );
    let _ = writeln!(s, "#include \"{pp}.h\"\n#include \"arm_nnfunctions.h\"\n");
    let uses_ctx = |k: &Kernel| {
        matches!(k, Kernel::Conv(_) | Kernel::DwConv(_) | Kernel::Fc(_) | Kernel::MaxPool(_) | Kernel::AvgPool(_))
    };
    let any_ctx = p.steps.iter().any(|s| uses_ctx(&s.kernel));
    if !p.steps.is_empty() {
        let _ = writeln!(s, "static int8_t {pp}_arena[{u}_ARENA_BYTES] __attribute__((aligned(16)));");
    }
    let q7_buffer = p.steps.iter().any(|s| matches!(s.kernel, Kernel::ConvQ7(_) | Kernel::FcQ7(_)));
    if any_ctx || q7_buffer {
        let _ = writeln!(s, "static int32_t {pp}_scratch[{u}_SCRATCH_BYTES > 0 ? ({u}_SCRATCH_BYTES + 3) / 4 : 1];");
    }
    s.push('\n');
    array(&mut s, "uint8_t", &format!("{pp}_wire_header"), &o.header);
    if p.steps.iter().any(|s| matches!(s.kernel, Kernel::Mean(MeanK { arith: MeanArith::Affine { .. }, .. }))) {
        s.push('\n');
        s.push_str(MEAN_HELPERS);
    }
    if p.steps.iter().any(|s| matches!(s.kernel, Kernel::Mean(MeanK { arith: MeanArith::Pow2 { .. }, .. }))) {
        s.push('\n');
        s.push_str(MEAN_Q7_HELPER);
    }
    if p.steps.iter().any(|s| matches!(s.kernel, Kernel::Clamp(_))) {
        s.push('\n');
        s.push_str(CLAMP_HELPER);
    }
    if p.steps.iter().any(|s| matches!(s.kernel, Kernel::AddQ7(_))) {
        s.push('\n');
        s.push_str(ADD_Q7_HELPER);
    }
    if p.steps.iter().any(|s| matches!(s.kernel, Kernel::ReluQ7(_)) && s.inputs.first() != Some(&s.output)) {
        s.push('\n');
        s.push_str(COPY_HELPER);
    }
    s.push_str(&src.data);
    // Output: header, then NHWC -> channel-major payload.
    let d = o.dims;
    let hw = d.h * d.w;
    let _ = writeln!(s, "\nstatic void {pp}_write_output(const int8_t *src, uint8_t *out)\n{{");
    let _ = writeln!(
        s,
        "    for (uint32_t i = 0; i < {u}_OUTPUT_HEADER_BYTES; i++) {{\n        out[i] = {pp}_wire_header[i];\n    }}"
    );
    let _ = writeln!(s, "    uint8_t *payload = out + {u}_OUTPUT_HEADER_BYTES;");
    let _ = writeln!(s, "    for (uint32_t n = 0; n < {}; n++) {{", d.n);
    let _ = writeln!(s, "        for (uint32_t p = 0; p < {hw}; p++) {{");
    let _ = writeln!(s, "            for (uint32_t c = 0; c < {}; c++) {{", d.c);
    let _ = writeln!(
        s,
        "                payload[(c * {} + n) * {hw} + p] = (uint8_t)src[(n * {hw} + p) * {} + c];",
        d.n, d.c
    );
    s.push_str("            }\n        }\n    }\n}\n");
    let _ = writeln!(s, "\nint32_t {pp}_init(void)\n{{");
    s.push_str(&src.init);
    s.push_str("    return 0;\n}\n");
    let _ = writeln!(s, "\nint32_t {pp}_invoke(const int8_t *input, uint8_t *output)\n{{");
    if any_ctx {
        let _ = writeln!(s, "    const cmsis_nn_context ctx = {{{pp}_scratch, {u}_SCRATCH_BYTES}};");
    }
    s.push_str(&src.body);
    let _ = writeln!(s, "    {pp}_write_output({}, output);", src.ptr(o.src));
    s.push_str("    return 0;\n}\n");
    let off = 12 + 4 * o.shape.len();
    let _ = writeln!(s, "\nuint32_t {pp}_truncate(uint8_t *message, uint32_t channels)\n{{");
    let _ = writeln!(s, "    if (channels == 0 || channels > {u}_OUTPUT_CHANNELS) {{\n        return 0;\n    }}");
    for b in 0..4 {
        let _ = writeln!(s, "    message[{}] = (uint8_t)(channels >> {});", off + b, 8 * b);
    }
    let _ = writeln!(s, "    return {u}_OUTPUT_HEADER_BYTES + channels * {u}_OUTPUT_CHANNEL_BYTES;\n}}");
    s
}
