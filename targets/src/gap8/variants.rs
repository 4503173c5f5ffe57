//! Partition switching: several planned cut points in one device program, behind one entry
//! point.
//!
//! [`lower_variants`] lowers each cut's device graph as a *variant* (prefix `<prefix>_k<cut>`)
//! whose buffers are not its own statics but members of two unions the dispatcher
//! `<prefix>.c` defines, one in L2 (activation arena, int32 accumulator, padded HWCE plane) and
//! one in L1 (HWCE stripe, tiles and filters; streamed-layer pool): only one variant runs at a
//! time, so they share the largest footprint instead of the sum. The dispatcher exports
//!
//! ```c
//! int32_t <prefix>_select(uint32_t cut);   /* 0, -1 unknown cut, or the variant's init error */
//! int32_t <prefix>_cut(void);              /* the selected cut, -1 before the first select */
//! uint32_t <prefix>_output_bytes(void);    /* the selected variant's wire message size */
//! int32_t <prefix>_invoke(const int8_t *input, uint8_t *output);   /* -2 if nothing selected */
//! ```
//!
//! Variants are all q8 or all q16 (then `invoke` takes `const int16_t *` and the L2 union's
//! arenas are `int16_t`); mixing the two is an error, as is a variant that needs weights in L3.
//!
//! The switch procedure (what `select` does, and what it costs on a GAP8, ~20 ms in Clio):
//! the new variant's weights are brought from HyperFlash into L2 (here they are `PI_L2` const
//! arrays, placed by the loader), its cluster is opened on first use, and the shared buffers
//! are simply reused (no state survives between frames). Selecting the current cut is free.

use super::{Gap8Error, Gap8Module, Gap8Options};
use clio::Module;
use std::fmt::Write;
use std::path::Path;

/// One cut's memory footprint in a multi-variant program.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VariantFootprint {
    /// Cut point index.
    pub cut: u32,
    /// The variant's C prefix.
    pub prefix: String,
    /// L2 bytes of its buffers (arena, accumulator, padded plane) if it ran alone.
    pub l2_buffer_bytes: usize,
    /// Static L1 bytes.
    pub l1_bytes: usize,
    /// Constant bytes (weights, biases, shifts, wire header): HyperFlash.
    pub const_bytes: usize,
    /// The cut tensor's wire message bytes.
    pub output_bytes: usize,
    /// Total multiply-accumulates.
    pub macs: u64,
    /// The cost model's cycle estimate.
    pub est_cycles: f64,
}

/// Sizes of a multi-variant program.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VariantsReport {
    /// Every variant.
    pub variants: Vec<VariantFootprint>,
    /// L2 bytes of the shared buffer union (the largest variant's).
    pub shared_l2_bytes: usize,
    /// L1 bytes of the shared union (the largest variant's), under the 64 KB.
    pub shared_l1_bytes: usize,
    /// L2 bytes separate static buffers would take (the sum): what sharing saves.
    pub unshared_l2_bytes: usize,
    /// Constant bytes of all variants (HyperFlash).
    pub flash_bytes: usize,
    /// The switch procedure.
    pub switch_procedure: String,
}

/// The dispatcher and its variants.
#[derive(Clone, Debug, PartialEq)]
pub struct Gap8Variants {
    /// The dispatcher's prefix.
    pub prefix: String,
    /// `<prefix>.h`.
    pub header: String,
    /// `<prefix>.c`.
    pub source: String,
    /// The variants, in the order given.
    pub variants: Vec<(u32, Gap8Module)>,
    /// Sizes.
    pub report: VariantsReport,
}

impl Gap8Variants {
    /// `<prefix>.h`.
    pub fn header_name(&self) -> String {
        format!("{}.h", self.prefix)
    }

    /// `<prefix>.c`.
    pub fn source_name(&self) -> String {
        format!("{}.c", self.prefix)
    }

    /// Every C source to compile: the dispatcher's and each variant's.
    pub fn sources(&self) -> Vec<String> {
        std::iter::once(self.source_name()).chain(self.variants.iter().map(|(_, v)| v.source_name())).collect()
    }

    /// The report as pretty JSON.
    pub fn manifest_json(&self) -> String {
        serde_json::to_string_pretty(&self.report).unwrap_or_default()
    }

    /// Writes the dispatcher, every variant (with its manifest) and clio's cluster kernels into
    /// `dir`, each file atomically.
    pub fn write_to(&self, dir: &Path) -> Result<(), clio::error::IoError> {
        for (_, v) in &self.variants {
            v.write_to(dir)?;
        }
        clio::io::write_atomic(&dir.join(self.header_name()), self.header.as_bytes())?;
        clio::io::write_atomic(&dir.join(self.source_name()), self.source.as_bytes())?;
        clio::io::write_atomic(&dir.join(format!("{}.manifest.json", self.prefix)), self.manifest_json().as_bytes())
    }
}

/// Lowers the device graph (`opts.graph`) of each `(cut, module)` as one variant of a program
/// with prefix `opts.prefix` (see the module documentation). Every variant must take the same
/// input; cuts must be distinct.
pub fn lower_variants(parts: &[(u32, &Module)], opts: &Gap8Options) -> Result<Gap8Variants, Gap8Error> {
    if parts.is_empty() {
        return Err(Gap8Error::Options("no variants to lower".into()));
    }
    let mut variants: Vec<(u32, Gap8Module)> = vec![];
    for (cut, m) in parts {
        if variants.iter().any(|(k, _)| k == cut) {
            return Err(Gap8Error::Options(format!("cut {cut} is given twice")));
        }
        let vo = Gap8Options { prefix: format!("{}_k{cut}", opts.prefix), ..opts.clone() };
        let v = super::lower_with(m, &vo, true)?;
        if let Some((k0, v0)) = variants.first() {
            if v.report.scheme != v0.report.scheme {
                return Err(Gap8Error::Options(format!(
                    "cut {cut} is a {} graph, cut {k0} a {} one: variants must share the scheme (and the input)",
                    v.report.scheme, v0.report.scheme
                )));
            }
            if v.report.input_bytes != v0.report.input_bytes {
                return Err(Gap8Error::Options(format!(
                    "cut {cut} takes {} input bytes, cut {k0} takes {}: variants must share the input",
                    v.report.input_bytes, v0.report.input_bytes
                )));
            }
        }
        variants.push((*cut, v));
    }
    let footprints: Vec<VariantFootprint> = variants
        .iter()
        .map(|(cut, v)| VariantFootprint {
            cut: *cut,
            prefix: v.prefix.clone(),
            l2_buffer_bytes: v.report.arena_bytes + v.report.acc_bytes + v.report.pad_bytes,
            l1_bytes: v.report.l1_bytes,
            const_bytes: v.report.const_bytes,
            output_bytes: v.report.output_bytes,
            macs: v.report.macs,
            est_cycles: v.report.est_cycles,
        })
        .collect();
    let report = VariantsReport {
        shared_l2_bytes: footprints.iter().map(|f| f.l2_buffer_bytes).max().unwrap_or(0),
        shared_l1_bytes: footprints.iter().map(|f| f.l1_bytes).max().unwrap_or(0),
        unshared_l2_bytes: footprints.iter().map(|f| f.l2_buffer_bytes).sum(),
        flash_bytes: footprints.iter().map(|f| f.const_bytes).sum(),
        switch_procedure:
            "select(cut): bring the variant's weights from HyperFlash to L2, open its cluster on first use; \
                           the L2/L1 buffer unions are reused as they are (no state survives a frame)"
                .into(),
        variants: footprints,
    };
    let (header, source) = dispatcher(&opts.prefix, &variants);
    Ok(Gap8Variants { prefix: opts.prefix.clone(), header, source, variants, report })
}

/// The dispatcher's header and source.
fn dispatcher(pre: &str, variants: &[(u32, Gap8Module)]) -> (String, String) {
    let u = pre.to_ascii_uppercase();
    let input = variants.first().map(|(_, v)| v.report.input_bytes).unwrap_or(0);
    // Every variant has the first one's scheme (checked by the caller): int8 or int16 input.
    let ct = match variants.first().map(|(_, v)| v.report.scheme.as_str()) {
        Some("q16") => "int16_t",
        _ => "int8_t",
    };
    let max_out = variants.iter().map(|(_, v)| v.report.output_bytes).max().unwrap_or(0);
    let cuts: Vec<String> = variants.iter().map(|(k, _)| k.to_string()).collect();
    let header = format!(
        "/* Generated by clio (GAP8 backend): one device program with the variants for cuts {cuts}.\n \
         * Select a cut, then invoke; see {pre}.c for the switch procedure. Do not edit. */\n\
         #ifndef {u}_H\n#define {u}_H\n#include <stdint.h>\n\n\
         #define {u}_INPUT_BYTES {input}\n/* The largest variant's wire message. */\n#define {u}_MAX_OUTPUT_BYTES {max_out}\n\n\
         /* Switches to the variant for `cut`: 0, -1 for a cut without a variant, or the variant's init error. */\n\
         int32_t {pre}_select(uint32_t cut);\n\
         /* The selected cut, -1 before the first select. */\nint32_t {pre}_cut(void);\n\
         /* Bytes the selected variant writes (0 before the first select). */\nuint32_t {pre}_output_bytes(void);\n\
         /* Runs the selected variant: 0, -2 if no cut is selected, or the variant's error. */\n\
         int32_t {pre}_invoke(const {ct} *input, uint8_t *output);\n#endif\n",
        cuts = cuts.join(", "),
    );
    let mut s = format!(
        "/* Generated by clio (GAP8 backend): the dispatcher of cuts {}.\n *\n \
         * Switch procedure: {pre}_select(cut) brings the variant's weights from HyperFlash to L2\n \
         * (their PI_L2 const arrays, placed by the loader) and opens its cluster on first use; the\n \
         * variants' buffers are overlaid in one L2 and one L1 union, so the program needs the\n \
         * largest variant's buffers, not the sum. No state survives a frame. */\n\
         #include <stdint.h>\n#include \"pmsis.h\"\n#include \"{pre}.h\"\n",
        cuts.join(", ")
    );
    for (_, v) in variants {
        let _ = writeln!(s, "#include \"{}\"", v.header_name());
    }
    s.push_str("\nPI_L2 static union {\n");
    for (k, v) in variants {
        let _ = writeln!(s, "    struct {}_l2 k{k};", v.prefix);
    }
    let _ = writeln!(s, "}} {pre}_l2;\nPI_CL_L1 static union {{");
    for (k, v) in variants {
        let _ = writeln!(s, "    struct {}_l1 k{k};", v.prefix);
    }
    let _ = writeln!(s, "}} {pre}_l1;\n");
    for (k, v) in variants {
        let p = &v.prefix;
        let _ = writeln!(
            s,
            "struct {p}_l2 *const {p}_l2p = &{pre}_l2.k{k};\nstruct {p}_l1 *const {p}_l1p = &{pre}_l1.k{k};"
        );
    }
    let _ = writeln!(s, "\nstatic int32_t {pre}_current = -1;\nstatic uint8_t {pre}_opened[{}];\n", variants.len());
    let _ = writeln!(s, "int32_t {pre}_select(uint32_t cut)\n{{\n    switch (cut) {{");
    for (i, (k, v)) in variants.iter().enumerate() {
        let _ = writeln!(
            s,
            "    case {k}:\n        if (!{pre}_opened[{i}]) {{\n            int32_t e = {p}_init();\n            if (e) return e;\n            {pre}_opened[{i}] = 1;\n        }}\n        {pre}_current = {k};\n        return 0;",
            p = v.prefix
        );
    }
    let _ = writeln!(
        s,
        "    default:\n        return -1;\n    }}\n}}\n\nint32_t {pre}_cut(void)\n{{\n    return {pre}_current;\n}}\n"
    );
    let _ = writeln!(s, "uint32_t {pre}_output_bytes(void)\n{{\n    switch ({pre}_current) {{");
    for (k, v) in variants {
        let _ = writeln!(s, "    case {k}:\n        return {}_OUTPUT_BYTES;", v.prefix.to_ascii_uppercase());
    }
    let _ = writeln!(s, "    default:\n        return 0;\n    }}\n}}\n");
    let _ = writeln!(s, "int32_t {pre}_invoke(const {ct} *input, uint8_t *output)\n{{\n    switch ({pre}_current) {{");
    for (k, v) in variants {
        let _ = writeln!(s, "    case {k}:\n        return {}_invoke(input, output);", v.prefix);
    }
    let _ = writeln!(s, "    default:\n        return -2;\n    }}\n}}");
    (header, s)
}
