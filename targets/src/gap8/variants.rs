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
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::path::Path;

fn is_zero(n: &usize) -> bool {
    *n == 0
}

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
    /// Bytes of `<prefix>_l3.bin` (0: every weight in L2; the L2-resident constants of all
    /// variants and the buffer union are placed jointly within the L2 budget).
    #[serde(skip_serializing_if = "is_zero")]
    pub l3_image_bytes: usize,
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
    /// `<prefix>_l3.bin`: every variant's L3 weight image, one after the other (4-byte
    /// aligned); empty when every weight is in L2. `<prefix>_set_l3` hands each variant its part.
    pub l3_image: Vec<u8>,
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

    /// Writes the dispatcher, every variant (with its manifest), the combined L3 image (when
    /// there is one) and clio's cluster kernels into `dir`, each file atomically.
    pub fn write_to(&self, dir: &Path) -> Result<(), clio::error::IoError> {
        for (_, v) in &self.variants {
            let own = Gap8Module { l3_image: vec![], ..v.clone() };
            own.write_to(dir)?;
        }
        if !self.l3_image.is_empty() {
            clio::io::write_atomic(&dir.join(format!("{}_l3.bin", self.prefix)), &self.l3_image)?;
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
    // First pass: every constant in L2, to see what the program needs.
    let none = HashSet::new();
    let mut variants: Vec<(u32, Gap8Module)> = vec![];
    for (cut, m) in parts {
        if variants.iter().any(|(k, _)| k == cut) {
            return Err(Gap8Error::Options(format!("cut {cut} is given twice")));
        }
        let vo = Gap8Options { prefix: format!("{}_k{cut}", opts.prefix), ..opts.clone() };
        let v = super::lower_with(m, &vo, true, Some(&none))?;
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
    // All variants' L2 constants are resident together next to the buffer union: place the
    // weights jointly, then lower again with that placement.
    if let Some(in_l3) = joint_placement(&variants, opts)? {
        for ((cut, m), (_, v)) in parts.iter().zip(variants.iter_mut()) {
            let vo = Gap8Options { prefix: format!("{}_k{cut}", opts.prefix), ..opts.clone() };
            let nodes = in_l3.get(cut).cloned().unwrap_or_default();
            *v = super::lower_with(m, &vo, true, Some(&nodes))?;
        }
    }
    let footprints: Vec<VariantFootprint> = variants
        .iter()
        .map(|(cut, v)| VariantFootprint {
            cut: *cut,
            prefix: v.prefix.clone(),
            l2_buffer_bytes: v.report.arena_bytes + v.report.acc_bytes,
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
        l3_image_bytes: variants.iter().map(|(_, v)| v.l3_image.len().next_multiple_of(4)).sum(),
        flash_bytes: footprints.iter().map(|f| f.const_bytes).sum(),
        switch_procedure:
            "select(cut): bring the variant's weights from HyperFlash to L2, open its cluster on first use; \
                           the L2/L1 buffer unions are reused as they are (no state survives a frame)"
                .into(),
        variants: footprints,
    };
    let (header, source) = dispatcher(&opts.prefix, &variants);
    let mut l3_image = vec![];
    for (_, v) in &variants {
        l3_image.extend_from_slice(&v.l3_image);
        l3_image.resize(l3_image.len().next_multiple_of(4), 0);
    }
    Ok(Gap8Variants { prefix: opts.prefix.clone(), header, source, variants, report, l3_image })
}

/// The joint placement of the variants' weights: `None` when the buffer union and every
/// variant's constants fit the L2 budget together, else the nodes (per cut) whose weights move
/// to L3, largest first over all variants (one staging buffer in the union serves them all).
fn joint_placement(
    variants: &[(u32, Gap8Module)],
    opts: &Gap8Options,
) -> Result<Option<HashMap<u32, HashSet<String>>>, Gap8Error> {
    // The union holds the largest variant's buffers; each variant's wire header is its own.
    let buffers = |r: &super::Gap8Report| r.arena_bytes + r.acc_bytes;
    let union = variants.iter().map(|(_, v)| buffers(&v.report)).max().unwrap_or(0);
    let headers: usize = variants.iter().map(|(_, v)| v.report.l2_bytes - buffers(&v.report)).sum();
    let mut all: Vec<super::Gap8Layer> = variants.iter().flat_map(|(_, v)| v.report.layers.iter().cloned()).collect();
    let stage = super::budget::place_weights(&mut all, union + headers, opts.l2_budget_bytes)
        .map_err(|message| Gap8Error::Graph { graph: format!("{} (all variants)", opts.graph), message })?;
    if stage == 0 {
        return Ok(None);
    }
    let mut out: HashMap<u32, HashSet<String>> = HashMap::new();
    let mut at = all.iter();
    for (cut, v) in variants {
        for _ in &v.report.layers {
            if let Some(l) = at.next().filter(|l| l.weights_in == "L3") {
                out.entry(*cut).or_default().insert(l.node.clone());
            }
        }
    }
    Ok(Some(out))
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
    let l3_total: usize = variants.iter().map(|(_, v)| v.l3_image.len().next_multiple_of(4)).sum();
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
         int32_t {pre}_invoke(const {ct} *input, uint8_t *output);\n{l3}#endif\n",
        cuts = cuts.join(", "),
        l3 = if l3_total > 0 {
            format!(
                "/* L3 weights: {pre}_l3.bin ({l3_total} B, every variant's part) loaded into HyperRAM at `addr`;\n \
                 * call before the first invoke (a variant with weights in L3 fails until then). */\n\
                 #define {u}_L3_BYTES {l3_total}\nstruct pi_device;\nvoid {pre}_set_l3(struct pi_device *ram, uint32_t addr);\n"
            )
        } else {
            String::new()
        },
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
    if l3_total > 0 {
        let _ = writeln!(s, "\nvoid {pre}_set_l3(struct pi_device *ram, uint32_t addr)\n{{");
        let mut off = 0;
        for (_, v) in variants {
            if !v.l3_image.is_empty() {
                let _ = writeln!(s, "    {}_set_l3(ram, addr + {off});", v.prefix);
            }
            off += v.l3_image.len().next_multiple_of(4);
        }
        s.push_str("}\n");
    }
    (header, s)
}
