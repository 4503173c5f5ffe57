//! The C body of an HWCE layer: the tiling of `hwce_tiles.rs` as loops. Per chunk of output
//! channels (its L3 weights read first when they live there) and band of output rows: the
//! int32 L1 accumulator is initialised; for every input plane the DMA brings the band's input
//! rows into one of two L1 raw buffers (the next plane's while this one is computed); the
//! cores build each vertical stripe from it in L1 (zero padding and widening to int16; in q16
//! one balanced 8-bit input digit at a time), and for every weight digit the chunk's filters go
//! to L1, the HWCE writes 1-3 output tiles per call and the cores add them (shifted by the
//! digits) into the accumulator; then the cores round the accumulator into the L1 output tile,
//! whose DMA back to the L2 activation overlaps the next band. Nothing is written to L2 but
//! the results.

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
        "HWCE_ProcessOneTile3x3_MultiOut(xs[s], ot[0], ot[1], ot[2], f, 0, (unsigned)sw, (unsigned)hb, n == 3 ? 0x1 : n == 2 ? 0x3 : 0x7)"
            .to_string()
    } else {
        format!("HWCE_ProcessOneTile{k}x{k}(xs[s], ot[0], f, 0, (unsigned)sw, (unsigned)hb)")
    };
    // The chunk's filters of input plane `ic`, every weight digit: one 2D transfer, a line per
    // digit (digits are `cin x cout` filters apart in L2, `cin x ch` in the L3 staging buffer).
    let (fsrc, fstride) = if l3.is_some() {
        (format!("wl + ic * ch * {}", h.flen), format!("{} * ch * {} * 2", c.cin, h.flen))
    } else {
        (format!("{p}_f{i} + (ic * {} + oc0) * {}", c.cout, h.flen), format!("{}", c.cin * c.cout * h.flen * 2))
    };
    let prologue = l3.map(|(s, half)| l3_chunk_prologue(p, s, half, "short int")).unwrap_or_default();
    let pool = |at: usize| format!("(void *)({p}_l1_pool + {at})");
    let (cout, chunk, rows, ho, wo) = (c.cout, c.chunk, c.rows, c.ho, c.wo);
    let q16 = h.in_digits > 1;
    // The stripe at column x0, built by the cores from the raw band in L1: zero padding and
    // widening to int16 (q8), or balanced 8-bit input digit `e` (q16).
    let build = {
        let fields = format!(
            ".In = raw[rb], .Out = xs[s], .W = {w}, .Hr = (uint16_t)hr, .X0 = (uint16_t)x0, .Sw = (uint16_t)sw, .Hb = (uint16_t)hb, .PadT = (uint8_t)(r0 - v0), .PadL = {pl}",
            w = c.w,
            pl = c.pads[1]
        );
        if q16 {
            format!("ClioStripe16D_T st = {{{fields}, .Digit = (uint8_t)e}};\n            ClioKerParStripe16D(&st);")
        } else {
            format!("ClioStripe16_T st = {{{fields}}};\n            ClioKerParStripe16(&st);")
        }
    };
    let raw_dma = |plane: &str, dst: &str, cmd: &str| {
        format!(
            "pi_cl_dma_cmd((uint32_t)(uintptr_t)({x} + ({plane}) * {pl} + r0 * {w}), (uint32_t)(uintptr_t)({dst}), (uint32_t)(hr * {w}{es}), PI_CL_DMA_DIR_EXT2LOC, {cmd});",
            pl = c.h * c.w,
            w = c.w,
            es = if q16 { " * 2" } else { "" }
        )
    };
    let (so, km1) = (h.stripe_out, k - 1);
    let hw = ho * wo;
    let _ = write!(
        out,
        "    /* L1 tiles ({total} B of the pool): two raw input bands, two int16 stripes, three HWCE output tiles, the filters, the int32 accumulator and the output tile. */
    {ct} *raw[2] = {{({ct} *){r0p}, ({ct} *){r1p}}};
    short int *xs[2] = {{(short int *){s0}, (short int *){s1}}};
    short int *ot[3] = {{(short int *){t0}, (short int *){t1}, (short int *){t2}}};
    short int *fl = (short int *){fa};
    int32_t *acc = (int32_t *){aa};
    {ct} *ob = ({ct} *){oa};
    pi_cl_dma_cmd_t wb, rc[2];
    if (pi_core_id() == 0) {{ HWCE_Enable(); HwCE_SoftReset(); HWCE_GenericInit({ty}, 0, 0); HwCE_SetYinMode(1); }}
    /* Chunks of {chunk} output channel(s), bands of {rows} of {ho} output rows. */
    for (int oc0 = 0; oc0 < {cout}; oc0 += {chunk}) {{
    int ch = {cout} - oc0 < {chunk} ? {cout} - oc0 : {chunk};
{prologue}    for (int y0 = 0; y0 < {ho}; y0 += {rows}) {{
    int rows = {ho} - y0 < {rows} ? {ho} - y0 : {rows};
    int hb = rows + {km1};
    /* The band's padded rows start at input row v0; its rows inside the plane are [r0, r1). */
    int v0 = y0 - {pt};
    int r0 = v0 < 0 ? 0 : v0 > {h} ? {h} : v0;
    int r1 = v0 + hb < 0 ? 0 : v0 + hb > {h} ? {h} : v0 + hb;
    int hr = r1 - r0;
    ClioAccInit_T ai = {{.Acc = acc, .Init = {p}_init{i} + oc0, .C = (uint16_t)ch, .Size = (uint32_t)(rows * {wo})}};
    ClioKerParAccInit(&ai);
    if (pi_core_id() == 0 && hr > 0) {raw_first}
    for (int ic = 0, rb = 0; ic < {cin}; ic++, rb ^= 1) {{
        /* This plane's band is in raw[rb]; the next plane's goes to the other buffer meanwhile. */
        if (pi_core_id() == 0 && hr > 0) {{
            pi_cl_dma_cmd_wait(&rc[rb]);
            if (ic + 1 < {cin}) {raw_next}
        }}
        /* The chunk's filters of this input plane, every weight digit: L2 -> L1 (the HWCE reads L1). */
        if (pi_core_id() == 0) {{
            pi_cl_dma_cmd_t fc;
            pi_cl_dma_cmd_2d((uint32_t)(uintptr_t)({fsrc}), (uint32_t)(uintptr_t)fl, (uint32_t)({digits} * ch * {flen} * 2), (uint32_t)({fstride}), (uint32_t)(ch * {flen} * 2), PI_CL_DMA_DIR_EXT2LOC, &fc);
            pi_cl_dma_cmd_wait(&fc);
        }}
        pi_cl_team_barrier();
{e_open}        /* Vertical stripes, at most {stripe_w} input pixels wide, even width, built in L1 by the cores (two buffers in turn). */
        for (int x0 = 0, s = 0; x0 < {wo}; x0 += {so}, s ^= 1) {{
            int so = {wo} - x0 < {so} ? {wo} - x0 : {so};
            int sw = so + {km1} + ((so + {km1}) & 1);
            {build}
            pi_cl_team_barrier();
            for (int d = 0; d < {digits}; d++) {{
                for (int oc = oc0; oc < oc0 + ch; oc += {per}) {{
                    int n = oc0 + ch - oc < {per} ? oc0 + ch - oc : {per};
                    short int *f = fl + (d * ch + oc - oc0) * {flen};
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
        r0p = pool(0),
        r1p = pool(l1.raw),
        s0 = pool(l1.stripes_at),
        s1 = pool(l1.stripes_at + l1.stripe),
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
        raw_first = raw_dma("0", "raw[0]", "&rc[0]"),
        raw_next = raw_dma("ic + 1", "raw[rb ^ 1]", "&rc[rb ^ 1]"),
        build = build,
        digits = h.digits,
        fsrc = fsrc,
        fstride = fstride,
        per = h.outs_per_call(),
        flen = h.flen,
        lo = c.lo,
        hi = c.hi,
        ct = n.width.ctype(),
        rt = n.t("ClioReduct"),
        rk = n.k("ClioKerParReduct"),
        es = if q16 { " * 2" } else { "" },
        e_open = if q16 { "        for (int e = 0; e < 2; e++) {\n" } else { "" },
        e_close = if q16 { "        }\n" } else { "" },
        shift = if q16 { format!("d * {} + 8 * e", h.bits) } else { format!("d * {}", h.bits) },
    );
}
