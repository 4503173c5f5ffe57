//! The C of a streamed cluster convolution (`Engine::Stream`): the int32 accumulator chunk
//! and the output tile in L1, input planes (dense), a chunk's planes (depthwise) or row bands
//! of them double-buffered into L1 by the cluster DMA, and the reduction's write-back by DMA.

use super::emit::{l3_chunk_prologue, Names};
use super::l3::L3Slot;
use super::program::*;
use std::fmt::Write;

/// A streamed cluster conv: accumulator chunk in L1, inputs double-buffered into L1.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stream_body(
    out: &mut String,
    n: &Names,
    i: usize,
    c: &ConvStep,
    dw: bool,
    x: &str,
    y: &str,
    l3: Option<(&L3Slot, usize)>,
) {
    let p = &n.p;
    let hw = c.ho * c.wo;
    let plane = c.h * c.w;
    let kk = c.kh * c.kw;
    let (cout, chunk) = (c.cout, c.chunk);
    let xb = c.stream_xbuf(dw, chunk);
    let ob_at = 2 * xb + 4 * chunk * c.rows * c.wo;
    match n.width {
        Width::Q8 => {
            let _ = writeln!(
                out,
                "    int8_t *xb[2] = {{{p}_l1_pool, {p}_l1_pool + {xb}}};\n    int32_t *acc = (int32_t *)(void *)({p}_l1_pool + {});\n    int8_t *ob = {p}_l1_pool + {ob_at};",
                2 * xb
            );
        }
        Width::Q16 => {
            let _ = writeln!(
                out,
                "    int16_t *xb[2] = {{(int16_t *)(void *){p}_l1_pool, (int16_t *)(void *)({p}_l1_pool + {xb})}};\n    int32_t *acc = (int32_t *)(void *)({p}_l1_pool + {});\n    int16_t *ob = (int16_t *)(void *)({p}_l1_pool + {ob_at});",
                2 * xb
            );
        }
    }
    let _ = writeln!(out, "    pi_cl_dma_cmd_t wb;");
    // DMA sizes are bytes: element counts times the element size.
    let es = match n.width {
        Width::Q8 => String::new(),
        Width::Q16 => " * 2".to_string(),
    };
    let (ct, ck) = (n.t("ClioKerConvAcc32"), n.k("ClioKerParConvAcc32"));
    let prologue = l3.map(|(s, half)| l3_chunk_prologue(p, s, half, n.width.ctype())).unwrap_or_default();
    let conv = |inp: &str, acc: &str, filt: &str, fin: &str, fout: &str, groups: &str| {
        format!(
            "{ct} ca = {{.In = {inp}, .Acc = {acc}, .Filter = {filt}, .W = {}, .H = {}, .Wo = {}, .Ho = {}, .InFeatures = {fin}, .OutFeatures = {fout}, .Groups = {groups}, .Fx = {}, .Fy = {}, .Sx = {}, .Sy = {}, .Dx = {}, .Dy = {}, .PadT = {}, .PadL = {}}};",
            c.w, c.h, c.wo, c.ho, c.kw, c.kh, c.stride[1], c.stride[0], c.dil[1], c.dil[0], c.pads[0], c.pads[1]
        )
    };
    let dma = |src: &str, dst: &str, bytes: &str, cmd: &str| {
        format!("pi_cl_dma_cmd((uint32_t)(uintptr_t)({src}), (uint32_t)(uintptr_t){dst}, (uint32_t)({bytes}), PI_CL_DMA_DIR_EXT2LOC, {cmd});")
    };
    let reduce = l1_reduce(n, i, c, y);
    // A grouped dense layer: each chunk (inside one group) reads its group's `cg` planes.
    let cg = c.cin / c.groups.max(1);
    let xg =
        if c.groups > 1 && !dw { format!("({x} + oc0 / {} * {})", cout / c.groups, cg * plane) } else { x.to_string() };
    if dw && c.banded() {
        let (w, h, wo, ho, rows) = (c.w, c.h, c.wo, c.ho, c.rows);
        let (sy, pt) = (c.stride[0], c.pads[0]);
        let kext = (c.kh - 1) * c.dil[0] + 1;
        let nb = ho.div_ceil(rows);
        // The band rows of pair `t` (channel t / nb, band t % nb): its first output row and
        // input rows [r0, r0 + hb).
        let band = |t: &str, pre: &str| {
            format!(
                "int {pre}y0 = ({t}) % {nb} * {rows};
            int {pre}rows = {ho} - {pre}y0 < {rows} ? {ho} - {pre}y0 : {rows};
            int {pre}v0 = {pre}y0 * {sy} - {pt};
            int {pre}r0 = {pre}v0 < 0 ? 0 : {pre}v0;
            int {pre}r1 = ({pre}y0 + {pre}rows - 1) * {sy} + {kext} - {pt};
            if ({pre}r1 > {h}) {pre}r1 = {h};
            int {pre}hb = {pre}r1 - {pre}r0;"
            )
        };
        let _ = write!(
            out,
            "    /* Depthwise on L1 tiles, row-tiled: one channel at a time in bands of {rows} of {ho} output rows; the next (channel, band)'s input rows are fetched by DMA while this one is computed. */
    pi_cl_dma_cmd_t cmd[2];
    if (pi_core_id() == 0) {{
            {first_band}
            {first}
    }}
    for (int t = 0, b = 0; t < {cout} * {nb}; t++, b ^= 1) {{
        int oc0 = t / {nb};
            {this_band}
        if (pi_core_id() == 0) {{
            pi_cl_dma_cmd_wait(&cmd[b]);
            if (t + 1 < {cout} * {nb}) {{
            int noc = (t + 1) / {nb};
            {next_band}
            {next}
            }}
        }}
        ClioAccInit_T ai = {{.Acc = acc, .Init = {p}_init{i} + oc0, .C = 1, .Size = (uint32_t)(rows * {wo})}};
        ClioKerParAccInit(&ai);
        pi_cl_team_barrier();
        {ct} ca = {{.In = xb[b], .Acc = acc, .Filter = {p}_w{i} + oc0 * {kk}, {window}, .OutFeatures = 1}};
        {ck}(&ca);
        pi_cl_team_barrier();
        if (pi_core_id() == 0 && t > 0) pi_cl_dma_cmd_wait(&wb);
        pi_cl_team_barrier();
        {rt} rd = {{.Acc = acc, .Out = ob, .Norm = {p}_norm{i} + oc0, .C = 1, {band_out}}};
        {rk}(&rd);
        pi_cl_team_barrier();
        if (pi_core_id() == 0) pi_cl_dma_cmd((uint32_t)(uintptr_t)({y} + oc0 * {hw} + y0 * {wo}), (uint32_t)(uintptr_t)ob, (uint32_t)(rows * {wo}{es}), PI_CL_DMA_DIR_LOC2EXT, &wb);
    }}
    if (pi_core_id() == 0) pi_cl_dma_cmd_wait(&wb);
",
            first_band = band("0", "f"),
            first = dma(&format!("{x} + fr0 * {w}"), "xb[0]", &format!("fhb * {w}{es}"), "&cmd[0]"),
            this_band = band("t", ""),
            next_band = band("t + 1", "n"),
            next = dma(&format!("{x} + noc * {plane} + nr0 * {w}"), "xb[b ^ 1]", &format!("nhb * {w}{es}"), "&cmd[b ^ 1]"),
            window = band_window(c),
            band_out = band_out(c),
            rt = n.t("ClioReduct"),
            rk = n.k("ClioKerParReduct"),
        );
    } else if dw {
        let _ = write!(
            out,
            "    /* Depthwise on L1 tiles: chunks of {chunk} channels; the next chunk's planes are fetched by DMA while this one is computed. */
    pi_cl_dma_cmd_t cmd[2];
    if (pi_core_id() == 0) {first}
    for (int oc0 = 0, b = 0; oc0 < {cout}; oc0 += {chunk}, b ^= 1) {{
        int ch = {cout} - oc0 < {chunk} ? {cout} - oc0 : {chunk};
        if (pi_core_id() == 0) {{
            pi_cl_dma_cmd_wait(&cmd[b]);
            if (oc0 + {chunk} < {cout}) {{
                int nch = {cout} - oc0 - {chunk} < {chunk} ? {cout} - oc0 - {chunk} : {chunk};
                {next}
            }}
        }}
{prologue}        ClioAccInit_T ai = {{.Acc = acc, .Init = {p}_init{i} + oc0, .C = (uint16_t)ch, .Size = {hw}}};
        ClioKerParAccInit(&ai);
        pi_cl_team_barrier();
        {conv}
        {ck}(&ca);
        pi_cl_team_barrier();
        {reduce}
    }}
    if (pi_core_id() == 0) pi_cl_dma_cmd_wait(&wb);
",
            first = dma(x, "xb[0]", &format!("{} * {plane}{es}", chunk.min(cout)), "&cmd[0]"),
            next = dma(&format!("{x} + (oc0 + {chunk}) * {plane}"), "xb[b ^ 1]", &format!("nch * {plane}{es}"), "&cmd[b ^ 1]"),
            conv = conv(
                "xb[b]",
                "acc",
                &if l3.is_some() { "wl".to_string() } else { format!("{p}_w{i} + oc0 * {kk}") },
                "(uint16_t)ch",
                "(uint16_t)ch",
                "(uint16_t)ch"
            ),
        );
    } else if c.banded() {
        let wsrc = if l3.is_some() {
            format!("wl + ic * ch * {kk}")
        } else {
            format!("{p}_w{i} + (ic * {cout} + oc0) * {kk}")
        };
        let (w, h, wo, ho, rows) = (c.w, c.h, c.wo, c.ho, c.rows);
        let (sy, pt) = (c.stride[0], c.pads[0]);
        let kext = (c.kh - 1) * c.dil[0] + 1;
        let in_dma = |plane_expr: &str, dst: &str, cmd: &str| {
            dma(&format!("{xg} + {plane_expr} * {plane} + r0 * {w}"), dst, &format!("hb * {w}{es}"), cmd)
        };
        let _ = write!(
            out,
            "    /* Dense on L1 tiles, row-tiled: chunks of {chunk} output channel(s) in bands of {rows} of {ho} output rows; each band's input rows double-buffered by DMA, plane by plane. */
    for (int oc0 = 0; oc0 < {cout}; oc0 += {chunk}) {{
        int ch = {cout} - oc0 < {chunk} ? {cout} - oc0 : {chunk};
{prologue}        for (int y0 = 0; y0 < {ho}; y0 += {rows}) {{
        int rows = {ho} - y0 < {rows} ? {ho} - y0 : {rows};
        /* The band's input rows [r0, r1) (its window clipped to the plane); v0 is the first, padding included. */
        int v0 = y0 * {sy} - {pt};
        int r0 = v0 < 0 ? 0 : v0;
        int r1 = (y0 + rows - 1) * {sy} + {kext} - {pt};
        if (r1 > {h}) r1 = {h};
        int hb = r1 - r0;
        pi_cl_dma_cmd_t cmd[2];
        ClioAccInit_T ai = {{.Acc = acc, .Init = {p}_init{i} + oc0, .C = (uint16_t)ch, .Size = (uint32_t)(rows * {wo})}};
        ClioKerParAccInit(&ai);
{planes}        if (pi_core_id() == 0 && (oc0 > 0 || y0 > 0)) pi_cl_dma_cmd_wait(&wb);
        pi_cl_team_barrier();
        {rt} rd = {{.Acc = acc, .Out = ob, .Norm = {p}_norm{i} + oc0, .C = (uint16_t)ch, {band_out}}};
        {rk}(&rd);
        pi_cl_team_barrier();
        /* The band of each of the chunk's output planes back to L2: one line per channel. */
        if (pi_core_id() == 0) pi_cl_dma_cmd_2d((uint32_t)(uintptr_t)({y} + oc0 * {hw} + y0 * {wo}), (uint32_t)(uintptr_t)ob, (uint32_t)(ch * rows * {wo}{es}), {hw}{es}, (uint32_t)(rows * {wo}{es}), PI_CL_DMA_DIR_LOC2EXT, &wb);
        }}
    }}
    if (pi_core_id() == 0) pi_cl_dma_cmd_wait(&wb);
",
            planes = plane_loop(
                cg,
                &in_dma("0", "xb[0]", "&cmd[0]"),
                &in_dma("(ic + 1)", "xb[b ^ 1]", "&cmd[b ^ 1]"),
                &format!("{ct} ca = {{.In = xb[b], .Acc = acc, .Filter = {wsrc}, {}, .OutFeatures = (uint16_t)ch}};", band_window(c)),
                &ck
            ),
            band_out = band_out(c),
            rt = n.t("ClioReduct"),
            rk = n.k("ClioKerParReduct"),
        );
    } else {
        let _ = write!(
            out,
            "    /* Dense on L1 tiles: chunks of {chunk} output channels; input planes double-buffered by DMA. */
    for (int oc0 = 0; oc0 < {cout}; oc0 += {chunk}) {{
        int ch = {cout} - oc0 < {chunk} ? {cout} - oc0 : {chunk};
{prologue}        pi_cl_dma_cmd_t cmd[2];
        ClioAccInit_T ai = {{.Acc = acc, .Init = {p}_init{i} + oc0, .C = (uint16_t)ch, .Size = {hw}}};
        ClioKerParAccInit(&ai);
{planes}        {reduce}
    }}
    if (pi_core_id() == 0) pi_cl_dma_cmd_wait(&wb);
",
            planes = plane_loop(
                cg,
                &dma(&xg, "xb[0]", &format!("{plane}{es}"), "&cmd[0]"),
                &dma(&format!("{xg} + (ic + 1) * {plane}"), "xb[b ^ 1]", &format!("{plane}{es}"), "&cmd[b ^ 1]"),
                &conv(
                    "xb[b]",
                    "acc",
                    &if l3.is_some() {
                        format!("wl + ic * ch * {kk}")
                    } else {
                        format!("{p}_w{i} + (ic * {cout} + oc0) * {kk}")
                    },
                    "1",
                    "(uint16_t)ch",
                    "1"
                ),
                &ck
            ),
        );
    }
}

/// The input-plane loop of a streamed dense layer: core 0 waits for plane `ic` (in `xb[b]`)
/// and starts the DMA of the next (`next`) into the other buffer, then every core accumulates
/// plane `ic` with the argument struct `conv` (named `ca`) and kernel `kernel`; `first` is the
/// DMA of plane 0.
fn plane_loop(cin: usize, first: &str, next: &str, conv: &str, kernel: &str) -> String {
    format!(
        "        if (pi_core_id() == 0) {first}
        for (int ic = 0; ic < {cin}; ic++) {{
            int b = ic & 1;
            if (pi_core_id() == 0) {{
                pi_cl_dma_cmd_wait(&cmd[b]);
                if (ic + 1 < {cin}) {next}
            }}
            pi_cl_team_barrier();
            {conv}
            {kernel}(&ca);
            pi_cl_team_barrier();
        }}
"
    )
}

/// The end of a chunk of a layer whose accumulator and output tile are in L1 (`acc`, `ob`):
/// the reduction into the tile, then its write-back to the L2 result `y` by DMA, which overlaps
/// the next chunk's computation and is waited for before the tile is written again (the
/// caller waits for the last one after its loop).
pub(crate) fn l1_reduce(n: &Names, i: usize, c: &ConvStep, y: &str) -> String {
    let p = &n.p;
    let hw = c.ho * c.wo;
    let es = if n.width == Width::Q16 { " * 2" } else { "" };
    format!(
        "if (pi_core_id() == 0 && oc0 > 0) pi_cl_dma_cmd_wait(&wb);
        pi_cl_team_barrier();
        {rt} rd = {{.Acc = acc, .Out = ob, .Norm = {p}_norm{i} + oc0, .C = (uint16_t)ch, .Size = {hw}, .Lo = {lo}, .Hi = {hi}}};
        {rk}(&rd);
        pi_cl_team_barrier();
        if (pi_core_id() == 0) pi_cl_dma_cmd((uint32_t)(uintptr_t)({y} + oc0 * {hw}), (uint32_t)(uintptr_t)ob, (uint32_t)(ch * {hw}{es}), PI_CL_DMA_DIR_LOC2EXT, &wb);",
        rt = n.t("ClioReduct"),
        rk = n.k("ClioKerParReduct"),
        lo = c.lo,
        hi = c.hi,
    )
}

/// The window fields of `ClioKerConvAcc32` for one input plane's band (`hb` input rows from
/// `r0`, `rows` output rows; C variables of the banded loops), the band's top padding included.
fn band_window(c: &ConvStep) -> String {
    format!(
        ".W = {}, .H = (uint16_t)hb, .Wo = {}, .Ho = (uint16_t)rows, .InFeatures = 1, .Groups = 1, .Fx = {}, .Fy = {}, \
         .Sx = {}, .Sy = {}, .Dx = {}, .Dy = {}, .PadT = (uint8_t)(r0 - v0), .PadL = {}",
        c.w, c.wo, c.kw, c.kh, c.stride[1], c.stride[0], c.dil[1], c.dil[0], c.pads[1]
    )
}

/// The size and bounds fields of `ClioReduct` for a band of `rows` output rows.
fn band_out(c: &ConvStep) -> String {
    format!(".Size = (uint32_t)(rows * {}), .Lo = {}, .Hi = {}", c.wo, c.lo, c.hi)
}
