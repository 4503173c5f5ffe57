//! The C of the layers tiled by `elem_tiles.rs`: elementwise layers and concat operands in
//! flat chunks, pools in (channel chunk, row band) tiles, global average pooling and the
//! AutoTiler depthwise kernel in chunks of whole channels. Core 0 issues every DMA; all cores
//! run the kernel on the L1 tile between barriers; a buffer is never refilled before the
//! transfer that last read it is waited for (the host DMA shim checks that discipline).

use super::elem_tiles::Tiles;
use super::emit::Names;
use super::program::{four, ConvStep, Engine, MeanStep, PoolStep};
use std::fmt::Write;

/// `ct *name = (ct *)(void *)(pool + at);` for each `(name, bytes)`, laid out in order from
/// offset 0 (each size 4-aligned).
fn carve(n: &Names, bufs: &[(&str, usize)]) -> String {
    let ct = n.width.ctype();
    let mut at = 0;
    let mut o = String::new();
    for (name, bytes) in bufs {
        let _ = writeln!(o, "    {ct} *{name} = ({ct} *)(void *)({}_l1_pool + {at});", n.p);
        at += four(*bytes);
    }
    o
}

/// ` * 2` in q16 (DMA sizes are bytes), empty in q8.
fn es_mul(n: &Names) -> &'static str {
    if n.width.bytes() == 2 {
        " * 2"
    } else {
        ""
    }
}

fn dma(src: &str, dst: &str, bytes: &str, dir: &str, cmd: &str) -> String {
    format!(
        "pi_cl_dma_cmd((uint32_t)(uintptr_t)({src}), (uint32_t)(uintptr_t)({dst}), (uint32_t)({bytes}), {dir}, {cmd});"
    )
}

fn dma2d(ext: &str, loc: &str, bytes: &str, stride: &str, line: &str, dir: &str, cmd: &str) -> String {
    format!(
        "pi_cl_dma_cmd_2d((uint32_t)(uintptr_t)({ext}), (uint32_t)(uintptr_t)({loc}), (uint32_t)({bytes}), (uint32_t)({stride}), (uint32_t)({line}), {dir}, {cmd});"
    )
}

/// The waits for the write-backs still in flight after `chunks` chunks whose commands alternate
/// between `cmd[0]` and `cmd[1]` and are waited for two chunks later: the last two (one if
/// there was a single chunk).
fn last_two_waits(cmd: &str, chunks: usize) -> String {
    if chunks > 1 {
        format!("pi_cl_dma_cmd_wait(&{cmd}[{}]); pi_cl_dma_cmd_wait(&{cmd}[{}]);", (chunks - 1) % 2, chunks % 2)
    } else {
        format!("pi_cl_dma_cmd_wait(&{cmd}[0]);")
    }
}

const IN: &str = "PI_CL_DMA_DIR_EXT2LOC";
const OUT: &str = "PI_CL_DMA_DIR_LOC2EXT";

/// An elementwise layer over `size` elements in chunks of `elems`: inputs `xs` (one or two)
/// and the output double-buffered; `kernel` is the C call on `In*` / `Out` / `Size` fields,
/// given the input tile expressions and `ob[t]`.
pub(crate) fn flat(
    out: &mut String,
    n: &Names,
    size: usize,
    elems: usize,
    xs: &[String],
    y: &str,
    kernel: &dyn Fn(&[String]) -> String,
) {
    let es = es_mul(n);
    let eb = elems * n.width.bytes();
    let mut bufs = vec![];
    let names: Vec<String> = (0..xs.len()).map(|i| format!("x{i}b")).collect();
    let buf_names: Vec<[String; 2]> = names.iter().map(|b| [format!("{b}0"), format!("{b}1")]).collect();
    for [a, b] in &buf_names {
        bufs.push((a.as_str(), eb));
        bufs.push((b.as_str(), eb));
    }
    bufs.push(("ob0", eb));
    bufs.push(("ob1", eb));
    let _ = write!(
        out,
        "    /* L1 tiles: chunks of {elems} elements; the input(s) double-buffered by DMA in, the output double-buffered by DMA out. */\n{}",
        carve(n, &bufs)
    );
    let ct = n.width.ctype();
    for (i, [a, b]) in buf_names.iter().enumerate() {
        let _ = writeln!(out, "    {ct} *{}[2] = {{{a}, {b}}};\n    pi_cl_dma_cmd_t c{i}[2];", names[i]);
    }
    let _ = writeln!(out, "    {ct} *ob[2] = {{ob0, ob1}};\n    pi_cl_dma_cmd_t wb[2];");
    let first: Vec<String> = xs
        .iter()
        .enumerate()
        .map(|(i, x)| {
            dma(x, &format!("{}[0]", names[i]), &format!("{}{es}", elems.min(size)), IN, &format!("&c{i}[0]"))
        })
        .collect();
    let waits: Vec<String> = (0..xs.len()).map(|i| format!("pi_cl_dma_cmd_wait(&c{i}[t]);")).collect();
    let next: Vec<String> = xs
        .iter()
        .enumerate()
        .map(|(i, x)| {
            dma(
                &format!("{x} + off + {elems}"),
                &format!("{}[t ^ 1]", names[i]),
                &format!("nn{es}"),
                IN,
                &format!("&c{i}[t ^ 1]"),
            )
        })
        .collect();
    let tiles: Vec<String> = names.iter().map(|b| format!("{b}[t]")).collect();
    let last_waits = last_two_waits("wb", size.div_ceil(elems));
    let _ = write!(
        out,
        "    if (pi_core_id() == 0) {{ {first} }}
    for (int off = 0, t = 0; off < {size}; off += {elems}, t ^= 1) {{
        int n = {size} - off < {elems} ? {size} - off : {elems};
        if (pi_core_id() == 0) {{
            {waits}
            if (off + {elems} < {size}) {{
                int nn = {size} - off - {elems} < {elems} ? {size} - off - {elems} : {elems};
                {next}
            }}
            /* This output tile was last written back two chunks ago. */
            if (off >= {two}) pi_cl_dma_cmd_wait(&wb[t]);
        }}
        pi_cl_team_barrier();
        {kernel}
        pi_cl_team_barrier();
        if (pi_core_id() == 0) {wb}
    }}
    if (pi_core_id() == 0) {{ {last_waits} }}
",
        first = first.join(" "),
        waits = waits.join(" "),
        next = next.join("\n                "),
        two = 2 * elems,
        kernel = kernel(&tiles),
        wb = dma(&format!("{y} + off"), "ob[t]", &format!("n{es}"), OUT, "&wb[t]"),
    );
}

/// One concat operand of `size` elements copied from `x` to `y` through L1 by DMA alone, in
/// chunks of `elems` (two buffers: a chunk's read overlaps the previous chunk's write).
pub(crate) fn copy(out: &mut String, n: &Names, size: usize, elems: usize, x: &str, y: &str) {
    let es = es_mul(n);
    let last_waits = last_two_waits("co", size.div_ceil(elems));
    let _ = write!(
        out,
        "    {{
    /* {size} elements through L1 in chunks of {elems}, by DMA only. */
{bufs}    {ct} *cb[2] = {{cb0, cb1}};
    pi_cl_dma_cmd_t ci, co[2];
    if (pi_core_id() == 0) {{
        for (int off = 0, t = 0; off < {size}; off += {elems}, t ^= 1) {{
            int n = {size} - off < {elems} ? {size} - off : {elems};
            if (off >= {two}) pi_cl_dma_cmd_wait(&co[t]);
            {din}
            pi_cl_dma_cmd_wait(&ci);
            {dout}
        }}
        {last_waits}
    }}
    }}
",
        bufs = carve(n, &[("cb0", elems * n.width.bytes()), ("cb1", elems * n.width.bytes())]),
        ct = n.width.ctype(),
        two = 2 * elems,
        din = dma(&format!("{x} + off"), "cb[t]", &format!("n{es}"), IN, "&ci"),
        dout = dma(&format!("{y} + off"), "cb[t]", &format!("n{es}"), OUT, "&co[t]"),
    );
}

/// A pool tiled in `chunk` channels x bands of `rows` output rows (`kernel`: its C name).
pub(crate) fn pool(out: &mut String, n: &Names, q: &PoolStep, t: Tiles, x: &str, y: &str, kernel: &str) {
    let Tiles::Bands { chunk, rows } = t else { return };
    let es = es_mul(n);
    let ebytes = n.width.bytes();
    let (plane, hwo) = (q.h * q.w, q.ho * q.wo);
    let nb = q.ho.div_ceil(rows);
    let groups = q.c.div_ceil(chunk);
    let max_band = super::elem_tiles::pool_max_band(q, rows);
    // The tile `tt` (chunk tt / nb, band tt % nb): its channels, output rows and input rows
    // [r0, r1) (v0: the first, padding included); `ind` indents the lines after the first.
    let band = |tt: &str, pre: &str, ind: &str| {
        [
            format!("int {pre}c0 = ({tt}) / {nb} * {chunk};"),
            format!("int {pre}ch = {c} - {pre}c0 < {chunk} ? {c} - {pre}c0 : {chunk};", c = q.c),
            format!("int {pre}y0 = ({tt}) % {nb} * {rows};"),
            format!("int {pre}rows = {ho} - {pre}y0 < {rows} ? {ho} - {pre}y0 : {rows};", ho = q.ho),
            format!("int {pre}v0 = {pre}y0 * {sy} - {pt};", sy = q.stride[0], pt = q.pad[0]),
            format!("int {pre}r0 = {pre}v0 < 0 ? 0 : {pre}v0;"),
            format!(
                "int {pre}r1 = ({pre}y0 + {pre}rows - 1) * {sy} + {ky} - {pt};",
                sy = q.stride[0],
                ky = q.k[0],
                pt = q.pad[0]
            ),
            format!("if ({pre}r1 > {h}) {pre}r1 = {h};", h = q.h),
            format!("int {pre}hb = {pre}r1 - {pre}r0;"),
        ]
        .join(&format!("\n{ind}"))
    };
    let fetch = |pre: &str, dst: &str, cmd: &str| {
        dma2d(
            &format!("{x} + {pre}c0 * {plane} + {pre}r0 * {w}", w = q.w),
            dst,
            &format!("{pre}ch * {pre}hb * {w}{es}", w = q.w),
            &format!("{plane}{es}"),
            &format!("{pre}hb * {w}{es}", w = q.w),
            IN,
            cmd,
        )
    };
    let _ = write!(
        out,
        "    /* L1 tiles: {chunk} channel(s) x bands of {rows} of {ho} output rows; the next tile's input rows are fetched by DMA while this one is computed, the output tile goes back by DMA. */
{bufs}    {ct} *xb[2] = {{xb0, xb1}};
    pi_cl_dma_cmd_t cmd[2], wb;
    if (pi_core_id() == 0) {{
        {first_band}
        {first}
    }}
    for (int t = 0, b = 0; t < {tiles}; t++, b ^= 1) {{
        {this_band}
        if (pi_core_id() == 0) {{
            pi_cl_dma_cmd_wait(&cmd[b]);
            if (t + 1 < {tiles}) {{
                {next_band}
                {next}
            }}
            if (t > 0) pi_cl_dma_cmd_wait(&wb);
        }}
        pi_cl_team_barrier();
        {pt_} a = {{.In = xb[b], .Out = ob, .C = (uint16_t)ch, .W = {w}, .H = (uint16_t)hb, .Wo = {wo}, .Ho = (uint16_t)rows, .Fx = {kx}, .Fy = {ky}, .Sx = {sx}, .Sy = {sy}, .PadT = (uint8_t)(r0 - v0), .PadL = {pl}}};
        {kernel}(&a);
        pi_cl_team_barrier();
        if (pi_core_id() == 0) {wb}
    }}
    if (pi_core_id() == 0) pi_cl_dma_cmd_wait(&wb);
",
        bufs = carve(
            n,
            &[
                ("xb0", chunk * max_band * q.w * ebytes),
                ("xb1", chunk * max_band * q.w * ebytes),
                ("ob", chunk * rows * q.wo * ebytes)
            ]
        ),
        ct = n.width.ctype(),
        ho = q.ho,
        tiles = groups * nb,
        first_band = band("0", "f", "        "),
        first = fetch("f", "xb[0]", "&cmd[0]"),
        this_band = band("t", "", "        "),
        next_band = band("t + 1", "n", "                "),
        next = fetch("n", "xb[b ^ 1]", "&cmd[b ^ 1]"),
        pt_ = n.t("ClioPool"),
        w = q.w,
        wo = q.wo,
        kx = q.k[1],
        ky = q.k[0],
        sx = q.stride[1],
        sy = q.stride[0],
        pl = q.pad[1],
        wb = dma2d(
            &format!("{y} + c0 * {hwo} + y0 * {wo}", wo = q.wo),
            "ob",
            &format!("ch * rows * {wo}{es}", wo = q.wo),
            &format!("{hwo}{es}"),
            &format!("rows * {wo}{es}", wo = q.wo),
            OUT,
            "&wb"
        ),
    );
}

/// Chunks of `chunk` whole channels of `c`: planes of `pin` input elements, `pout` output
/// elements per channel.
struct PlaneChunks {
    c: usize,
    chunk: usize,
    pin: usize,
    pout: usize,
}

/// Whole-channel chunks `pc`: input planes double-buffered in, the output tile back by DMA;
/// `call` is the kernel call on `xb[b]`, `ob`, `c0` and `ch`.
fn planes(out: &mut String, n: &Names, pc: PlaneChunks, x: &str, y: &str, call: &str) {
    let PlaneChunks { c, chunk, pin, pout } = pc;
    let es = es_mul(n);
    let eb = n.width.bytes();
    let _ = write!(
        out,
        "    /* L1 tiles: {chunk} whole channel(s); the next chunk's planes are fetched by DMA while this one is computed, the output tile goes back by DMA. */
{bufs}    {ct} *xb[2] = {{xb0, xb1}};
    pi_cl_dma_cmd_t cmd[2], wb;
    if (pi_core_id() == 0) {first}
    for (int c0 = 0, b = 0; c0 < {c}; c0 += {chunk}, b ^= 1) {{
        int ch = {c} - c0 < {chunk} ? {c} - c0 : {chunk};
        if (pi_core_id() == 0) {{
            pi_cl_dma_cmd_wait(&cmd[b]);
            if (c0 + {chunk} < {c}) {{
                int nch = {c} - c0 - {chunk} < {chunk} ? {c} - c0 - {chunk} : {chunk};
                {next}
            }}
            if (c0 > 0) pi_cl_dma_cmd_wait(&wb);
        }}
        pi_cl_team_barrier();
        {call}
        pi_cl_team_barrier();
        if (pi_core_id() == 0) {wb}
    }}
    if (pi_core_id() == 0) pi_cl_dma_cmd_wait(&wb);
",
        bufs = carve(n, &[("xb0", chunk * pin * eb), ("xb1", chunk * pin * eb), ("ob", chunk * pout * eb)]),
        ct = n.width.ctype(),
        first = dma(x, "xb[0]", &format!("{}{es}", chunk.min(c) * pin), IN, "&cmd[0]"),
        next = dma(&format!("{x} + (c0 + {chunk}) * {pin}"), "xb[b ^ 1]", &format!("nch * {pin}{es}"), IN, "&cmd[b ^ 1]"),
        wb = dma(&format!("{y} + c0 * {pout}"), "ob", &format!("ch * {pout}{es}"), OUT, "&wb"),
    );
}

/// Global average pooling in chunks of whole channels.
pub(crate) fn mean(out: &mut String, n: &Names, m: &MeanStep, t: Tiles, x: &str, y: &str) {
    let Tiles::Planes { chunk } = t else { return };
    let call = format!(
        "{} a = {{.In = xb[b], .Out = ob, .C = (uint16_t)ch, .Size = {}, .Left = {}, .Divisor = {}}};\n        {}(&a);",
        n.t("ClioMean"),
        m.size,
        m.left,
        m.divisor,
        n.k("ClioKerParGlobalAvgPool")
    );
    planes(out, n, PlaneChunks { c: m.c, chunk, pin: m.size, pout: 1 }, x, y, &call);
}

/// The AutoTiler depthwise kernel in chunks of whole channels (layer `i`).
pub(crate) fn vendor_dw(out: &mut String, n: &Names, i: usize, c: &ConvStep, t: Tiles, x: &str, y: &str) {
    let (Tiles::Planes { chunk }, Engine::Dw { norm, .. }) = (t, &c.engine) else { return };
    let p = &n.p;
    let [pt, pl, pb, pr] = c.pads;
    let s = c.stride[0];
    let call = format!(
        "KerConv_fps_T k = {{.In = (signed char *)xb[b], .W = {w}, .UsedW = {w}, .H = {h}, .UsedH = {h}, .InFeatures = (unsigned short)ch, \
         .OutFeatures = (unsigned short)ch, .TotalInFeatures = (short)ch, .Filter = (signed char *)({p}_w{i} + c0 * 9), .Out = (signed char *)ob, \
         .Bias = (signed char *)({p}_b{i} + c0), .Pad = {{{pl}, {pr}, {pt}, {pb}}}, .Norm = {norm}, .N = 3, .S = {s}, .Orientation = 0, \
         .D = 1, .Ny = 3, .Sy = {s}, .Dy = 1}};\n        KerParConvDW3x3Stride{s}_fps(&k);",
        w = c.w,
        h = c.h,
    );
    planes(out, n, PlaneChunks { c: c.cout, chunk, pin: c.h * c.w, pout: c.ho * c.wo }, x, y, &call);
}
