//! The C body of an HWCE layer (q8): the tiling of `hwce_tiles.rs` as loops. Per chunk of
//! output channels (its L3 weights read first when they live there) and band of output rows:
//! the int32 L1 accumulator is initialised; for every input plane the cores zero-pad the
//! band's rows into the int16 L2 scratch, the DMA moves its vertical stripes into two L1
//! buffers in turn, and for every digit pass the chunk's filters go to L1, the HWCE writes
//! 1-3 output tiles per call and the cores add them (shifted by the digit) into the
//! accumulator; then the cores round the accumulator into the L1 output tile, whose DMA back
//! to the L2 activation overlaps the next band.

use super::emit::{l3_chunk_prologue, Names};
use super::hwce_tiles::HwceL1;
use super::l3::L3Slot;
use super::program::ConvStep;
use std::fmt::Write;

/// Writes the body of HWCE layer `i` (`c`) reading `x` and writing `y` (nothing for a layer
/// that is not on the HWCE).
pub(crate) fn hwce_body(
    out: &mut String,
    n: &Names,
    i: usize,
    c: &ConvStep,
    x: &str,
    y: &str,
    l3: Option<(&L3Slot, usize)>,
) {
    let Some(h) = c.hwce() else { return };
    let p = &n.p;
    let l1 = HwceL1::new(c, h, c.chunk, c.rows);
    let k = h.k;
    let ty = match k {
        3 => "HWCE_CONV3x3",
        5 => "HWCE_CONV5x5",
        _ => "HWCE_CONV4x7",
    };
    let call = if k == 3 {
        "HWCE_ProcessOneTile3x3_MultiOut(xs[b], ot[0], ot[1], ot[2], f, 0, (unsigned)sw, (unsigned)hb, n == 3 ? 0x1 : n == 2 ? 0x3 : 0x7)"
            .to_string()
    } else {
        format!("HWCE_ProcessOneTile{k}x{k}(xs[b], ot[0], f, 0, (unsigned)sw, (unsigned)hb)")
    };
    let fsrc = if l3.is_some() {
        format!("wl + (d * {} + ic) * ch * {}", c.cin, h.flen)
    } else {
        format!("{p}_f{i} + ((d * {} + ic) * {} + oc0) * {}", c.cin, c.cout, h.flen)
    };
    let prologue = l3.map(|(s, half)| l3_chunk_prologue(p, s, half, "short int")).unwrap_or_default();
    let pool = |at: usize| format!("(void *)({p}_l1_pool + {at})");
    let stripe = |first: &str, dst: &str, cmd: &str| {
        format!(
            "pi_cl_dma_cmd_2d((uint32_t)(uintptr_t)({p}_pad16 + {first}), (uint32_t)(uintptr_t){dst}, (uint32_t)(nsw * hb * 2), {wp} * 2, (uint32_t)(nsw * 2), PI_CL_DMA_DIR_EXT2LOC, {cmd});",
            wp = h.wp
        )
    };
    let (cout, chunk, rows, ho, wo) = (c.cout, c.chunk, c.rows, c.ho, c.wo);
    let q16 = h.in_digits > 1;
    // Zero padding on the cores, into the int16 band scratch: the int8 plane (q8), or input
    // digit `e` of the int16 plane (q16).
    let pad = {
        let fields = format!(
            ".In = {x} + ic * {plane} + r0 * {w}, .Out = {p}_pad16, .W = {w}, .H = (uint16_t)({h} - r0), .Wp = {wp}, .Hp = (uint16_t)hb, .PadT = (uint8_t)(r0 - v0), .PadL = {pl}",
            plane = c.h * c.w,
            w = c.w,
            h = c.h,
            wp = h.wp,
            pl = c.pads[1]
        );
        if q16 {
            format!("/* Zero padding on the cores: balanced 8-bit digit e of the band's rows of the int16 plane -> int16 {wp}-wide rows (L2). */\n        ClioPad16D_T pd = {{{fields}, .Digit = (uint8_t)e}};\n        ClioKerParPad16D(&pd);", wp = h.wp)
        } else {
            format!("/* Zero padding on the cores: the band's rows of the int8 plane -> int16 {wp}-wide rows (L2). */\n        ClioPad16_T pd = {{{fields}}};\n        ClioKerParPad16(&pd);", wp = h.wp)
        }
    };
    let (so, km1) = (h.stripe_out, k - 1);
    let hw = ho * wo;
    let _ = write!(
        out,
        "    /* L1 tiles ({total} B of the pool): two int16 input stripes, three HWCE output tiles, the filters, the int32 accumulator and the output tile. */
    short int *xs[2] = {{(short int *){s0}, (short int *){s1}}};
    short int *ot[3] = {{(short int *){t0}, (short int *){t1}, (short int *){t2}}};
    short int *fl = (short int *){fa};
    int32_t *acc = (int32_t *){aa};
    {ct} *ob = ({ct} *){oa};
    pi_cl_dma_cmd_t wb;
    if (pi_core_id() == 0) {{ HWCE_Enable(); HwCE_SoftReset(); HWCE_GenericInit({ty}, 0, 0); HwCE_SetYinMode(1); }}
    /* Chunks of {chunk} output channel(s), bands of {rows} of {ho} output rows. */
    for (int oc0 = 0; oc0 < {cout}; oc0 += {chunk}) {{
    int ch = {cout} - oc0 < {chunk} ? {cout} - oc0 : {chunk};
{prologue}    for (int y0 = 0; y0 < {ho}; y0 += {rows}) {{
    int rows = {ho} - y0 < {rows} ? {ho} - y0 : {rows};
    int hb = rows + {km1};
    /* The band's first input row (v0, padding included) and the first one inside the plane (r0). */
    int v0 = y0 - {pt};
    int r0 = v0 < 0 ? 0 : v0 > {h} ? {h} : v0;
    ClioAccInit_T ai = {{.Acc = acc, .Init = {p}_init{i} + oc0, .C = (uint16_t)ch, .Size = (uint32_t)(rows * {wo})}};
    ClioKerParAccInit(&ai);
    pi_cl_team_barrier();
    for (int ic = 0; ic < {cin}; ic++) {{
{e_open}        {pad}
        pi_cl_team_barrier();
        /* Vertical stripes, at most {stripe_w} input pixels wide, even width, double-buffered in L1:
         * the next stripe's DMA runs while the HWCE works on this one. */
        pi_cl_dma_cmd_t sc[2];
        if (pi_core_id() == 0) {{
            int nso = {wo} < {so} ? {wo} : {so};
            int nsw = nso + {km1} + ((nso + {km1}) & 1);
            {first}
        }}
        for (int x0 = 0, b = 0; x0 < {wo}; x0 += {so}, b ^= 1) {{
            int so = {wo} - x0 < {so} ? {wo} - x0 : {so};
            int sw = so + {km1} + ((so + {km1}) & 1);
            if (pi_core_id() == 0) {{
                pi_cl_dma_cmd_wait(&sc[b]);
                if (x0 + {so} < {wo}) {{
                    int nso = {wo} - x0 - {so} < {so} ? {wo} - x0 - {so} : {so};
                    int nsw = nso + {km1} + ((nso + {km1}) & 1);
                    {next}
                }}
            }}
            pi_cl_team_barrier();
            for (int d = 0; d < {digits}; d++) {{
                /* The chunk's filters of this digit and input plane: L2 -> L1 (the HWCE reads L1). */
                if (pi_core_id() == 0) {{
                    pi_cl_dma_cmd_t fc;
                    pi_cl_dma_cmd((uint32_t)(uintptr_t)({fsrc}), (uint32_t)(uintptr_t)fl, (uint32_t)(ch * {flen} * 2), PI_CL_DMA_DIR_EXT2LOC, &fc);
                    pi_cl_dma_cmd_wait(&fc);
                }}
                pi_cl_team_barrier();
                for (int oc = oc0; oc < oc0 + ch; oc += {per}) {{
                    int n = oc0 + ch - oc < {per} ? oc0 + ch - oc : {per};
                    short int *f = fl + (oc - oc0) * {flen};
                    if (pi_core_id() == 0) {call};
                    pi_cl_team_barrier();
                    ClioHwceAcc_T ha = {{.Acc = acc, .Tile = {{ot[0], ot[1], ot[2]}}, .N = (uint16_t)n, .Oc = (uint16_t)(oc - oc0), .So = (uint16_t)so, .TileW = (uint16_t)(sw - {km1}), .Ho = (uint16_t)rows, .Wo = {wo}, .X0 = (uint16_t)x0, .Shift = (uint8_t)({shift})}};
                    ClioKerParHwceAcc(&ha);
                    pi_cl_team_barrier();
                }}
            }}
        }}
{e_close}    }}
    /* One rounding into the L1 output tile (once its previous write-back is done), then the band of each of the chunk's planes back to L2. */
    if (pi_core_id() == 0 && (oc0 > 0 || y0 > 0)) pi_cl_dma_cmd_wait(&wb);
    pi_cl_team_barrier();
    {rt} rd = {{.Acc = acc, .Out = ob, .Norm = {p}_norm{i} + oc0, .C = (uint16_t)ch, .Size = (uint32_t)(rows * {wo}), .Lo = {lo}, .Hi = {hi}}};
    {rk}(&rd);
    pi_cl_team_barrier();
    if (pi_core_id() == 0) pi_cl_dma_cmd_2d((uint32_t)(uintptr_t)({y} + oc0 * {hw} + y0 * {wo}), (uint32_t)(uintptr_t)ob, (uint32_t)(ch * rows * {wo}{es}), {hw}{es}, (uint32_t)(rows * {wo}{es}), PI_CL_DMA_DIR_LOC2EXT, &wb);
    }}
    }}
    if (pi_core_id() == 0) {{ pi_cl_dma_cmd_wait(&wb); HWCE_Disable(); }}
",
        total = l1.total,
        s0 = pool(0),
        s1 = pool(l1.stripe),
        t0 = pool(l1.tiles_at),
        t1 = pool(l1.tiles_at + l1.tile),
        t2 = pool(l1.tiles_at + 2 * l1.tile),
        fa = pool(l1.filters_at),
        aa = pool(l1.acc_at),
        oa = pool(l1.out_at),
        cin = c.cin,
        h = c.h,
        pt = c.pads[0],
        stripe_w = super::hwce::STRIPE,
        first = stripe("0", "xs[0]", "&sc[0]"),
        next = stripe(&format!("x0 + {so}"), "xs[b ^ 1]", "&sc[b ^ 1]"),
        digits = h.digits,
        per = h.outs_per_call(),
        flen = h.flen,
        lo = c.lo,
        hi = c.hi,
        ct = n.width.ctype(),
        rt = n.t("ClioReduct"),
        rk = n.k("ClioKerParReduct"),
        es = if q16 { " * 2" } else { "" },
        e_open = if q16 { "    for (int e = 0; e < 2; e++) {\n" } else { "" },
        e_close = if q16 { "    }\n" } else { "" },
        pad = pad,
        shift = if q16 { format!("d * {} + 8 * e", h.bits) } else { format!("d * {}", h.bits) },
    );
}
