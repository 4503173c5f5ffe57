//! The generated `.h` / `.c` text: constants per layer, one static function per layer, the
//! cluster entry (run by every core through `pi_cl_team_fork`) and the fabric-controller API
//! (`<prefix>_init`, `<prefix>_invoke`, which sends the cluster task).

use super::elem_tiles::Tiles;
use super::emit_elem;
use super::l3::{L3Plan, L3Slot};
use super::memory::Memory;
use super::program::*;
use std::fmt::Write;

/// `prefix` and its upper-case form.
pub(crate) struct Names {
    pub p: String,
    pub u: String,
    /// Buffers live in a dispatcher's unions (variants of one device program, one runs at a
    /// time): the header declares them as structs, the source reaches them through pointers.
    pub shared: bool,
    /// q8 or q16: element type of activations and weights, and the kernels' suffix.
    pub width: Width,
}

impl Names {
    pub fn new(prefix: &str, shared: bool) -> Self {
        Names { p: prefix.to_string(), u: prefix.to_ascii_uppercase(), shared, width: Width::Q8 }
    }

    /// A kernel with the width's suffix: `ClioKerParClamp` -> `ClioKerParClamp_fps` / `_fp`.
    pub(crate) fn k(&self, base: &str) -> String {
        format!("{base}{}", self.width.suffix())
    }

    /// An argument struct of the width: `ClioClamp` -> `ClioClamp_T` / `ClioClamp_fp_T`.
    pub(crate) fn t(&self, base: &str) -> String {
        format!("{base}{}_T", self.width.infix())
    }
}

/// The L2 and L1 buffer structs of a variant whose buffers a dispatcher shares (see
/// [`super::variants`]): every buffer is a member (at least one element), so the dispatcher can
/// overlay all variants in one union per memory level.
pub(crate) fn buffer_structs(n: &Names, mem: &Memory, l3: &L3Plan) -> String {
    let pre = &n.p;
    let ct = n.width.ctype();
    format!(
        "/* Buffers, overlaid with the other variants' by the dispatcher (one variant runs at a time). */
         struct {pre}_l2 {{
    {ct} arena[{}] __attribute__((aligned(4)));
    int32_t acc[{}];
    int8_t l3_stage[{}] __attribute__((aligned(4)));
}};
         struct {pre}_l1 {{
    int8_t l1_pool[{}] __attribute__((aligned(4)));
}};
",
        mem.plan.arena_bytes.max(4).div_ceil(n.width.bytes()),
        mem.acc_elems.max(1),
        l3.stage_bytes.max(4),
        mem.l1_pool_bytes.max(4),
    )
}

/// The source's buffer declarations when they are shared: pointers the dispatcher defines, and
/// the usual buffer names as macros over them.
fn shared_buffer_decls(o: &mut String, n: &Names) {
    let pre = &n.p;
    let _ = writeln!(
        o,
        "/* Buffers: members of the dispatcher's L2 / L1 unions (struct {pre}_l2 / {pre}_l1 in {pre}.h). */
         extern struct {pre}_l2 *const {pre}_l2p;
extern struct {pre}_l1 *const {pre}_l1p;"
    );
    for (name, level) in [("arena", "l2"), ("acc", "l2"), ("l3_stage", "l2"), ("l1_pool", "l1")] {
        let _ = writeln!(o, "#define {pre}_{name} ({pre}_{level}p->{name})");
    }
}

fn array<T: std::fmt::Display>(out: &mut String, decl: &str, v: &[T]) {
    let _ = writeln!(out, "{decl}[{}] = {{", v.len().max(1));
    if v.is_empty() {
        out.push_str("    0,\n");
    }
    for chunk in v.chunks(16) {
        let line: Vec<String> = chunk.iter().map(|x| x.to_string()).collect();
        let _ = writeln!(out, "    {},", line.join(", "));
    }
    out.push_str("};\n");
}

fn loc(n: &Names, mem: &Memory, l: Loc) -> String {
    match l {
        Loc::Input => format!("{}_in", n.p),
        // q16: the arena is an int16_t array and the plan's byte offsets are even (aligned to 4).
        Loc::Buf(b) => format!("({}_arena + {})", n.p, mem.plan.offsets[b] / n.width.bytes()),
    }
}

/// The C function(s) a step calls (the manifest's `function`).
pub(crate) fn function(s: &Step, width: Width) -> String {
    let k = |base: &str| format!("{base}{}", width.suffix());
    match &s.kind {
        StepKind::Conv(c) => match &c.engine {
            Engine::Hwce(h) => match h.k {
                3 => "HWCE_ProcessOneTile3x3_MultiOut".into(),
                k => format!("HWCE_ProcessOneTile{k}x{k}"),
            },
            Engine::Dw { .. } => format!("KerParConvDW3x3Stride{}_fps", c.stride[0]),
            Engine::Cluster | Engine::Stream { .. } | Engine::Whole => k("ClioKerParConvAcc32"),
        },
        StepKind::Clamp { .. } => k("ClioKerParClamp"),
        StepKind::MaxPool(_) => k("ClioKerParMaxPool"),
        StepKind::AvgPool(_) => k("ClioKerParAvgPool"),
        StepKind::GlobalAvgPool(_) => k("ClioKerParGlobalAvgPool"),
        StepKind::Add { .. } => k("ClioKerParAdd"),
        StepKind::Concat { .. } if s.tiles.is_some() => "pi_cl_dma_cmd".into(),
        StepKind::Concat { .. } => k("ClioKerParConcat"),
    }
}

/// The header.
pub(crate) fn header(p: &Program, n: &Names, mem: &Memory, l3: &L3Plan) -> String {
    let u = &n.u;
    let pre = &n.p;
    let mut buffers = if n.shared { buffer_structs(n, mem, l3) } else { String::new() };
    if l3.is_used() {
        let _ = write!(
            buffers,
            "/* L3 weights: {pre}_l3.bin ({b} B) holds the weight arrays that do not fit L2. Load it into\n \
             * HyperRAM (e.g. from HyperFlash), then pass the opened RAM device and the image's HyperRAM\n \
             * address to {pre}_set_l3 before the first {pre}_invoke (which fails until then). */\n\
             #define {u}_L3_BYTES {b}\nstruct pi_device;\nvoid {pre}_set_l3(struct pi_device *ram, uint32_t addr);\n\n",
            b = l3.image.len()
        );
    }
    format!(
        "/* Generated by clio (GAP8 backend) from graph @{g}. Do not edit. */\n\
         #ifndef {u}_H\n#define {u}_H\n#include <stdint.h>\n\n\
         /* Input %{iname}: {cn} Q{ifrac}, planar CHW, shape {ishape:?}. */\n\
         #define {u}_INPUT_BYTES {ib}\n#define {u}_INPUT_FRAC {ifrac}\n\
         /* Output %{oname}: the wire message (header + {cn} Q{ofrac} channel-major payload{le}). */\n\
         #define {u}_OUTPUT_BYTES {ob}\n\n{buffers}\
         /* Opens the cluster. Returns 0 on success. */\nint32_t {pre}_init(void);\n\
         /* Runs the device part on the cluster and writes the message. Returns 0 on success. */\n\
         int32_t {pre}_invoke(const {ct} *input, uint8_t *output);\n#endif\n",
        ct = p.width.ctype(),
        cn = if p.width == Width::Q16 { "int16" } else { "int8" },
        le = if p.width == Width::Q16 { ", little endian" } else { "" },
        g = p.graph,
        iname = p.input.name,
        ifrac = p.input.frac,
        ishape = p.input.shape,
        ib = p.input.bytes,
        oname = p.output.name,
        ofrac = p.output.frac,
        ob = p.header.len() + p.output.bytes,
    )
}

fn conv_consts(out: &mut String, n: &Names, i: usize, c: &ConvStep, l3: Option<&L3Slot>) {
    let p = &n.p;
    let (name, ctype) = match &c.engine {
        Engine::Hwce(_) => (format!("{p}_f{i}"), "short int"),
        _ => (format!("{p}_w{i}"), n.width.ctype()),
    };
    match (l3, &c.engine) {
        (Some(s), _) => {
            let _ = writeln!(
                out,
                "/* L3: {name} ({} B, {ctype}) is at offset {} of {p}_l3.bin, read chunk by chunk ({} output channel(s)) into the L2 staging buffer. */",
                s.bytes, s.offset, s.chunk
            );
        }
        (None, Engine::Hwce(h)) => array(out, &format!("PI_L2 static const {ctype} {name}"), &h.filters),
        (None, _) => array(out, &format!("PI_L2 static const {ctype} {name}"), &c.weights),
    }
    match &c.engine {
        Engine::Dw { bias, .. } => array(out, &format!("PI_L2 static const int8_t {p}_b{i}"), bias),
        _ => {
            array(out, &format!("PI_L2 static const int32_t {p}_init{i}"), &c.init);
            array(out, &format!("PI_L2 static const uint8_t {p}_norm{i}"), &c.norm);
        }
    }
}

fn conv_body(out: &mut String, n: &Names, i: usize, c: &ConvStep, x: &str, y: &str, l3: Option<(&L3Slot, usize)>) {
    let p = &n.p;
    let hw = c.ho * c.wo;
    if let Engine::Dw { norm, .. } = &c.engine {
        let [t, l, b, r] = c.pads;
        let s = c.stride[0];
        let _ = writeln!(
            out,
            "    KerConv_fps_T k = {{.In = (signed char *){x}, .W = {w}, .UsedW = {w}, .H = {h}, .UsedH = {h}, .InFeatures = {ch}, \
             .OutFeatures = {ch}, .TotalInFeatures = {ch}, .Filter = (signed char *){p}_w{i}, .Out = (signed char *){y}, \
             .Bias = (signed char *){p}_b{i}, .Pad = {{{l}, {r}, {t}, {b}}}, .Norm = {norm}, .N = 3, .S = {s}, .Orientation = 0, \
             .D = 1, .Ny = 3, .Sy = {s}, .Dy = 1}};\n    KerParConvDW3x3Stride{s}_fps(&k);",
            w = c.w,
            h = c.h,
            ch = c.cout,
        );
        return;
    }
    if let Engine::Stream { dw } = c.engine {
        super::emit_stream::stream_body(out, n, i, c, dw, x, y, l3);
        return;
    }
    if let Engine::Hwce(_) = &c.engine {
        super::emit_hwce::hwce_body(out, n, i, c, x, y, l3);
        return;
    }
    // A whole-input layer: the input goes to L1 by one DMA, accumulator and output tile are L1.
    let whole = matches!(c.engine, Engine::Whole);
    let (acc, xin) = if whole { ("acc".to_string(), "xin".to_string()) } else { (format!("{p}_acc"), x.to_string()) };
    if whole {
        let ct = n.width.ctype();
        let inb = c.whole_in_bytes();
        let _ = writeln!(
            out,
            "    /* L1 tiles: the whole input ({inb} B) by one DMA, chunks of {ch} output channels accumulated in L1, each chunk's outputs back to L2 by DMA. */\n    \
             {ct} *xin = ({ct} *)(void *){p}_l1_pool;\n    int32_t *acc = (int32_t *)(void *)({p}_l1_pool + {inb});\n    \
             {ct} *ob = ({ct} *)(void *)({p}_l1_pool + {ob_at});\n    pi_cl_dma_cmd_t wb, xc;\n    \
             if (pi_core_id() == 0) {{ pi_cl_dma_cmd((uint32_t)(uintptr_t)({x}), (uint32_t)(uintptr_t)xin, {bytes}, PI_CL_DMA_DIR_EXT2LOC, &xc); pi_cl_dma_cmd_wait(&xc); }}\n    \
             pi_cl_team_barrier();",
            ch = c.chunk,
            ob_at = inb + 4 * c.chunk * hw,
            bytes = c.cin * c.h * c.w * c.es,
        );
    }
    let prologue = l3.map(|(s, half)| l3_chunk_prologue(p, s, half, n.width.ctype())).unwrap_or_default();
    let _ = writeln!(
        out,
        "    /* int32 accumulation in chunks of {ch} output channels ({} B). */\n    for (int oc0 = 0; oc0 < {cout}; oc0 += {ch}) {{\n    int ch = {cout} - oc0 < {ch} ? {cout} - oc0 : {ch};\n{prologue}    ClioAccInit_T ai = {{.Acc = {acc}, .Init = {p}_init{i} + oc0, .C = (uint16_t)ch, .Size = {hw}}};\n    ClioKerParAccInit(&ai);\n    pi_cl_team_barrier();",
        4 * c.chunk * hw,
        ch = c.chunk,
        cout = c.cout,
    );
    // A chunk of whole groups: its input planes start at group oc0 / og.
    let og = (c.cout / c.groups.max(1)).max(1);
    let cg = c.cin / c.groups.max(1);
    let (in_off, cin_expr, g_expr) = if c.groups <= 1 {
        ("0".to_string(), c.cin.to_string(), "1".to_string())
    } else {
        (
            format!("(oc0 / {og}) * {}", cg * c.h * c.w),
            format!("(uint16_t)(ch / {og} * {cg})"),
            format!("(uint16_t)(ch / {og})"),
        )
    };
    let _ = writeln!(
        out,
        "    {ct} ca = {{.In = {xin} + {in_off}, .Acc = {acc}, .Filter = {wsrc}, .W = {w}, .H = {h}, .Wo = {wo}, .Ho = {ho}, \
         .InFeatures = {cin_expr}, .OutFeatures = (uint16_t)ch, .Groups = {g_expr}, .Fx = {kw}, .Fy = {kh}, .Sx = {sx}, .Sy = {sy}, \
         .Dx = {dx}, .Dy = {dy}, .PadT = {pt}, .PadL = {pl}}};\n    {ck}(&ca);\n    pi_cl_team_barrier();",
        ct = n.t("ClioKerConvAcc32"),
        ck = n.k("ClioKerParConvAcc32"),
        w = c.w,
        h = c.h,
        wo = c.wo,
        ho = c.ho,
        in_off = in_off,
        wsrc = if l3.is_some() {
            "wl".to_string()
        } else {
            format!("{p}_w{i} + oc0 * {}", (c.cin / c.groups.max(1)) * c.kh * c.kw)
        },
        cin_expr = cin_expr,
        g_expr = g_expr,
        kw = c.kw,
        kh = c.kh,
        sx = c.stride[1],
        sy = c.stride[0],
        dx = c.dil[1],
        dy = c.dil[0],
        pt = c.pads[0],
        pl = c.pads[1],
    );
    if whole {
        let _ = writeln!(
            out,
            "        {}\n    }}\n    if (pi_core_id() == 0) pi_cl_dma_cmd_wait(&wb);",
            super::emit_stream::l1_reduce(n, i, c, y)
        );
        return;
    }
    let _ = writeln!(
        out,
        "    {} rd = {{.Acc = {p}_acc, .Out = {y} + oc0 * {hw}, .Norm = {p}_norm{i} + oc0, .C = (uint16_t)ch, .Size = {hw}, .Lo = {}, .Hi = {}}};\n    {}(&rd);\n    pi_cl_team_barrier();\n    }}",
        n.t("ClioReduct"),
        c.lo,
        c.hi,
        n.k("ClioKerParReduct")
    );
}

/// The source; `budget` is the per-layer memory table as a C comment, placed after the head
/// comment.
pub(crate) fn source(p: &Program, mem: &Memory, n: &Names, est: &[String], budget: &str, l3: &L3Plan) -> String {
    let pre = &n.p;
    let mut o = String::new();
    let head = match p.width {
        Width::Q8 => {
            "q8 (8-bit Q format) device part.
 * Dense 3x3/5x5/7x7 stride-1 convolutions run on the HWCE; everything else on the cluster
 * cores. Each layer's comment says why. Activations are planar CHW int8 in one L2 arena."
        }
        Width::Q16 => {
            "q16 (16-bit Q format) device part.
 * Layers run on the cluster cores (clio's _fp kernels: 16-bit data, int32 accumulation,
 * one rounding, 16-bit saturation), dense KxK layers on the HWCE in input-digit x weight-digit
 * passes when that is faster (each layer's comment says why).
 * Activations are planar CHW int16 in one L2 arena."
        }
    };
    let _ = write!(
        o,
        "/* Generated by clio (GAP8 backend) from graph @{g}: {head} */
{budget}#include <stdint.h>
#include <string.h>
#include \"pmsis.h\"
{ram_h}#include \"CNN_HwCE.h\"
#include \"CNN_BasicKernels.h\"
#include \"clio_gap8_kernels.h\"
#include \"{pre}.h\"

#define {u}_NB_CORES 8

/* L2: activation arena {arena} B (lower bound {lb} B, no reuse {nr} B). */
",
        g = p.graph,
        u = n.u,
        arena = mem.plan.arena_bytes,
        lb = mem.plan.lower_bound_bytes,
        nr = mem.plan.no_reuse_bytes,
        ram_h = if l3.is_used() { "#include \"bsp/ram.h\"\n" } else { "" },
    );
    if n.shared {
        shared_buffer_decls(&mut o, n);
    } else {
        private_buffer_decls(&mut o, n, mem);
    }
    if l3.is_used() {
        let stage = if n.shared {
            String::new()
        } else {
            format!("PI_L2 static int8_t {pre}_l3_stage[{}] __attribute__((aligned(4)));\n", l3.stage_bytes)
        };
        let _ = writeln!(
            o,
            "/* L2: staging buffer of the weights read from L3 (two halves of {h} B: one chunk computed, the next read), and the HyperRAM image. */\n\
             {stage}static struct pi_device *{pre}_l3_ram;\nstatic uint32_t {pre}_l3_addr;\nstatic pi_cl_ram_req_t {pre}_l3_req[2];",
            h = l3.half_bytes()
        );
    }
    source_body(o, p, mem, n, est, l3)
}

/// The source's own static buffers (a single-variant module).
fn private_buffer_decls(o: &mut String, n: &Names, mem: &Memory) {
    let pre = &n.p;
    let _ = writeln!(
        o,
        "PI_L2 static {} {pre}_arena[{}] __attribute__((aligned(4), unused));",
        n.width.ctype(),
        mem.plan.arena_bytes.max(4).div_ceil(n.width.bytes())
    );
    if mem.acc_elems > 0 {
        let _ = writeln!(o, "/* L2: int32 accumulator of one layer ({} B). */", 4 * mem.acc_elems);
        let _ = writeln!(o, "PI_L2 static int32_t {pre}_acc[{}];", mem.acc_elems);
    }
    if mem.l1_pool_bytes > 0 {
        let _ = writeln!(
            o,
            "/* L1: pool of the tiled layers' buffers (HWCE: input stripes, output tiles, filters; streamed cluster layers: input buffers; both: int32 accumulator chunk and output tile; {} B). */\nPI_CL_L1 static int8_t {pre}_l1_pool[{}] __attribute__((aligned(4)));",
            mem.l1_pool_bytes, mem.l1_pool_bytes
        );
    }
}

/// Everything after the buffer declarations: constants, layers, the cluster entry, init and
/// invoke.
fn source_body(mut o: String, p: &Program, mem: &Memory, n: &Names, est: &[String], l3: &L3Plan) -> String {
    let pre = &n.p;
    let _ = writeln!(o, "static const {} *{pre}_in;", n.width.ctype());
    array(&mut o, &format!("static const uint8_t {pre}_header"), &p.header);
    for (i, s) in p.steps.iter().enumerate() {
        let x = loc(n, mem, s.inputs.first().copied().unwrap_or(Loc::Input));
        let y = loc(n, mem, s.output);
        let _ = writeln!(
            o,
            "\n/* Layer {i}: %{} ({}) -> {}.\n * {}.\n * {} */",
            s.node,
            s.op,
            function(s, p.width),
            s.reason,
            est.get(i).map(String::as_str).unwrap_or("")
        );
        let slot = l3.slots.get(i).and_then(Option::as_ref);
        if let StepKind::Conv(c) = &s.kind {
            conv_consts(&mut o, n, i, c, slot);
        }
        let _ = writeln!(o, "static void {pre}_layer{i}(void)\n{{");

        match (&s.kind, s.tiles) {
            (StepKind::Conv(c), Some(t)) => emit_elem::vendor_dw(&mut o, n, i, c, t, &x, &y),
            (StepKind::Conv(c), None) => conv_body(&mut o, n, i, c, &x, &y, slot.map(|s| (s, l3.half_bytes()))),
            (StepKind::Clamp { size, lo, hi }, Some(Tiles::Flat { elems })) => {
                let (st, kn) = (n.t("ClioClamp"), n.k("ClioKerParClamp"));
                let call = |t: &[String]| {
                    format!("{st} a = {{.In = {}, .Out = ob[t], .Size = (uint32_t)n, .Lo = {lo}, .Hi = {hi}}};\n        {kn}(&a);", t[0])
                };
                emit_elem::flat(&mut o, n, *size, elems, std::slice::from_ref(&x), &y, &call);
            }
            (StepKind::Clamp { size, lo, hi }, _) => {
                let _ = writeln!(
                    o,
                    "    {} a = {{.In = {x}, .Out = {y}, .Size = {size}, .Lo = {lo}, .Hi = {hi}}};\n    {}(&a);",
                    n.t("ClioClamp"),
                    n.k("ClioKerParClamp")
                );
            }
            (StepKind::MaxPool(q), Some(t)) => emit_elem::pool(&mut o, n, q, t, &x, &y, &n.k("ClioKerParMaxPool")),
            (StepKind::AvgPool(q), Some(t)) => emit_elem::pool(&mut o, n, q, t, &x, &y, &n.k("ClioKerParAvgPool")),
            (StepKind::MaxPool(q), None) => pool_body(&mut o, n, q, &x, &y, &n.k("ClioKerParMaxPool")),
            (StepKind::AvgPool(q), None) => pool_body(&mut o, n, q, &x, &y, &n.k("ClioKerParAvgPool")),
            (StepKind::GlobalAvgPool(m), Some(t)) => emit_elem::mean(&mut o, n, m, t, &x, &y),
            (StepKind::GlobalAvgPool(m), None) => {
                let _ = writeln!(
                    o,
                    "    {} a = {{.In = {x}, .Out = {y}, .C = {}, .Size = {}, .Left = {}, .Divisor = {}}};\n    {}(&a);",
                    n.t("ClioMean"),
                    m.c,
                    m.size,
                    m.left,
                    m.divisor,
                    n.k("ClioKerParGlobalAvgPool")
                );
            }
            (StepKind::Concat { parts }, t) => concat_body(&mut o, n, mem, s, parts, &y, t),
            (StepKind::Add { size, shift_a, shift_b, norm, left }, t) => {
                let x2 = loc(n, mem, s.inputs.get(1).copied().unwrap_or(Loc::Input));
                let (st, kn) = (n.t("ClioAdd"), n.k("ClioKerParAdd"));
                let fields = format!(".ShiftA = {shift_a}, .ShiftB = {shift_b}, .Norm = {norm}, .LeftShift = {left}");
                if let Some(Tiles::Flat { elems }) = t {
                    let call = |t: &[String]| {
                        format!("{st} a = {{.In1 = {}, .In2 = {}, .Out = ob[t], .Size = (uint32_t)n, {fields}}};\n        {kn}(&a);", t[0], t[1])
                    };
                    emit_elem::flat(&mut o, n, *size, elems, &[x.clone(), x2], &y, &call);
                } else {
                    let _ = writeln!(o, "    {st} a = {{.In1 = {x}, .In2 = {x2}, .Out = {y}, .Size = {size}, {fields}}};\n    {kn}(&a);");
                }
            }
        }
        o.push_str("}\n");
    }
    let _ = writeln!(o, "\n/* Run by every cluster core (pi_cl_team_fork). */\nstatic void {pre}_cluster_entry(void *arg)\n{{\n    (void)arg;");
    for i in 0..p.steps.len() {
        for (j, s) in l3.prefetched_at(i) {
            let _ = writeln!(
                o,
                "    /* Layer {j}'s first weight chunk: HyperRAM -> L2 staging half 0, while the layers before it run. */\n    \
                 if (pi_core_id() == 0) {}",
                s.read(pre, l3.half_bytes(), "0", &s.chunk.min(s.layout.cout).to_string(), "0")
            );
        }
        let _ = writeln!(o, "    {pre}_layer{i}();\n    pi_cl_team_barrier();");
    }
    let out_ptr = loc(n, mem, p.output_loc);
    let _ = write!(
        o,
        "}}

static void {pre}_cluster_main(void *arg)
{{
    pi_cl_team_fork({u}_NB_CORES, {pre}_cluster_entry, arg);
}}

static struct pi_device {pre}_cluster;

int32_t {pre}_init(void)
{{
    struct pi_cluster_conf conf;
    pi_cluster_conf_init(&conf);
    pi_open_from_conf(&{pre}_cluster, &conf);
    return pi_cluster_open(&{pre}_cluster) ? -1 : 0;
}}

{set_l3}int32_t {pre}_invoke(const {ct} *input, uint8_t *output)
{{
    struct pi_cluster_task task;{l3_check}
    {pre}_in = input;
    pi_cluster_task(&task, {pre}_cluster_main, NULL);
    if (pi_cluster_send_task_to_cl(&{pre}_cluster, &task)) return -1;
    memcpy(output, {pre}_header, sizeof {pre}_header);
    memcpy(output + sizeof {pre}_header, {out_ptr}, {ob});
    return 0;
}}
",
        u = n.u,
        ct = n.width.ctype(),
        ob = p.output.bytes,
        set_l3 = if l3.is_used() {
            format!("void {pre}_set_l3(struct pi_device *ram, uint32_t addr)\n{{\n    {pre}_l3_ram = ram;\n    {pre}_l3_addr = addr;\n}}\n\n")
        } else {
            String::new()
        },
        l3_check = if l3.is_used() { format!("\n    if (!{pre}_l3_ram) return -1;") } else { String::new() },
    );
    o
}

/// A max or average pooling layer's call.
fn pool_body(o: &mut String, n: &Names, q: &PoolStep, x: &str, y: &str, kernel: &str) {
    let _ = writeln!(
        o,
        "    {} a = {{.In = {x}, .Out = {y}, .C = {}, .W = {}, .H = {}, .Wo = {}, .Ho = {}, .Fx = {}, .Fy = {}, .Sx = {}, .Sy = {}, .PadT = {}, .PadL = {}}};\n    {kernel}(&a);",
        n.t("ClioPool"),
        q.c, q.w, q.h, q.wo, q.ho, q.k[1], q.k[0], q.stride[1], q.stride[0], q.pad[0], q.pad[1]
    );
}

/// A channel concatenation: one planar copy per operand, each at its channel offset of the
/// result: through L1 by DMA when tiled (`t`), else by the cores (which split each operand's
/// channels).
fn concat_body(o: &mut String, n: &Names, mem: &Memory, s: &Step, parts: &[[usize; 3]], y: &str, t: Option<Tiles>) {
    let mut off = 0;
    for (i, [c, h, w]) in parts.iter().enumerate() {
        let x = loc(n, mem, s.inputs.get(i).copied().unwrap_or(Loc::Input));
        if let Some(Tiles::Flat { elems }) = t {
            emit_elem::copy(o, n, c * h * w, elems, &x, &format!("{y} + {off}"));
        } else {
            let _ = writeln!(
                o,
                "    {{ {} a = {{.In = {x}, .Out = {y} + {off}, .C = {c}, .Size = {}}}; {}(&a); }}",
                n.t("ClioConcat"),
                h * w,
                n.k("ClioKerParConcat")
            );
        }
        off += c * h * w;
    }
}

/// The start of a chunk of an L3 layer: core 0 waits for this chunk's weights (staging half
/// `lb`) and starts reading the next chunk's into the other half; `wl` points at the chunk.
pub(crate) fn l3_chunk_prologue(p: &str, s: &L3Slot, half: usize, ctype: &str) -> String {
    let (chunk, cout) = (s.chunk, s.layout.cout);
    format!(
        "        /* This chunk's weights from L3: wait for them, and start reading the next chunk's into the other half. */
        int lb = (oc0 / {chunk}) & 1;
        if (pi_core_id() == 0) {{
            pi_cl_ram_read_wait(&{p}_l3_req[lb]);
            if (oc0 + {chunk} < {cout}) {{
                int nch = {cout} - oc0 - {chunk} < {chunk} ? {cout} - oc0 - {chunk} : {chunk};
                {next}
            }}
        }}
        pi_cl_team_barrier();
        const {ctype} *wl = (const {ctype} *)(const void *)({p}_l3_stage + lb * {half});
",
        next = s.read(p, half, &format!("oc0 + {chunk}"), "nch", "lb ^ 1")
    )
}
