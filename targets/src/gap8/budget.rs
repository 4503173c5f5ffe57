//! The per-layer memory budget: what each layer needs of L1 (its tiles), of L2 (the arena
//! activations live while it runs, its L2 scratch, its weights when they are resident in L2) and
//! of L3 (its weights, when they do not fit L2 and stay in HyperFlash), against the GAP8's
//! 64 KB of cluster L1 and 512 KB of L2; and the table that states it (the generated `.c`'s
//! head comment, [`super::Gap8Report::memory_table`]).

use super::{Gap8Layer, Gap8Report, L1_BYTES, L2_BYTES};
use std::fmt::Write;

/// Where a layer's constants live when it has none.
pub(crate) const NO_WEIGHTS: &str = "none";

/// Places each layer's constants (weights, biases, shifts), first fit in layer order: in L2 when
/// they fit next to the generated code's buffers (`l2_base` bytes) and the constants already
/// placed there, otherwise in L3. Sets every layer's `weights_in`, `l2_bytes` and `l3_bytes`
/// (its `l2_act_bytes` and `l2_scratch_bytes` must be set) and returns whether every layer's
/// constants are in L2.
pub(crate) fn place_weights(layers: &mut [Gap8Layer], l2_base: usize) -> bool {
    let mut resident = l2_base;
    let mut all_l2 = true;
    for l in layers {
        let in_l2 = l.const_bytes == 0 || resident + l.const_bytes <= L2_BYTES;
        if in_l2 {
            resident += l.const_bytes;
        }
        all_l2 &= in_l2;
        l.weights_in = match (l.const_bytes, in_l2) {
            (0, _) => NO_WEIGHTS,
            (_, true) => "L2",
            (_, false) => "L3",
        }
        .into();
        l.l3_bytes = if in_l2 { 0 } else { l.const_bytes };
        l.l2_bytes = l.l2_act_bytes + l.l2_scratch_bytes + l.const_bytes - l.l3_bytes;
    }
    all_l2
}

/// The per-layer budget table of `r` (plain text, one line per layer, then the limits and the
/// static totals).
pub(crate) fn table(r: &Gap8Report) -> String {
    let wn = r.layers.iter().map(|l| l.node.len() + 1).max().unwrap_or(4).max(5);
    let wo = r.layers.iter().map(|l| l.op.len()).max().unwrap_or(2).max(2);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Per-layer memory budget, bytes (L1 budget {L1_BYTES}, L2 budget {L2_BYTES}):\n\
         L1 = the layer's tiles (HWCE stripe, tiles and filters, or streamed L1 tiles);\n\
         L2 = L2 act (arena activations live during the layer) + L2 scr (its int32 accumulator\n\
         chunk and padded HWCE plane) + its weights (and biases, shifts) when they are in L2;\n\
         L3 = its weights when they do not fit L2 and stay in HyperFlash."
    );
    let _ = writeln!(
        o,
        "{:>3}  {:<wn$}  {:<wo$}  {:<7}  {:>6}  {:>7}  {:>7}  {:>7}  {:<4}  {:>7}  {:>7}",
        "#", "node", "op", "unit", "L1", "L2 act", "L2 scr", "weights", "in", "L2", "L3"
    );
    for (i, l) in r.layers.iter().enumerate() {
        let _ = writeln!(
            o,
            "{i:>3}  {:<wn$}  {:<wo$}  {:<7}  {:>6}  {:>7}  {:>7}  {:>7}  {:<4}  {:>7}  {:>7}",
            format!("%{}", l.node),
            l.op,
            l.unit,
            l.l1_bytes,
            l.l2_act_bytes,
            l.l2_scratch_bytes,
            l.const_bytes,
            l.weights_in,
            l.l2_bytes,
            l.l3_bytes
        );
    }
    let max = |f: fn(&Gap8Layer) -> usize| r.layers.iter().map(f).max().unwrap_or(0);
    let l3: usize = r.layers.iter().map(|l| l.l3_bytes).sum();
    let _ = writeln!(
        o,
        "Largest layer: L1 {} of {L1_BYTES}, L2 {} of {L2_BYTES}.\n\
         Static: L1 buffers {} B; L2 buffers {} B + weights in L2 {} B = {} B; weights in L3 {l3} B.",
        max(|l| l.l1_bytes),
        max(|l| l.l2_bytes),
        r.l1_bytes,
        r.l2_bytes,
        r.const_bytes.saturating_sub(l3),
        r.l2_bytes + r.const_bytes.saturating_sub(l3),
    );
    o
}

/// `text` as the lines of a C block comment (a `*/` inside, e.g. in a node name, is broken up).
pub(crate) fn c_comment(text: &str) -> String {
    let mut o = String::from("/*\n");
    for line in text.lines() {
        let _ = writeln!(o, " * {}", line.replace("*/", "* /"));
    }
    o.push_str(" */\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(node: &str, const_bytes: usize, act: usize) -> Gap8Layer {
        Gap8Layer {
            node: node.into(),
            op: "conv2d".into(),
            unit: "cluster".into(),
            function: "ClioKerParConvAcc32_fps".into(),
            reason: String::new(),
            macs: 0,
            hwce_passes: 0,
            const_bytes,
            l1_bytes: 0,
            out_bytes: act,
            l2_act_bytes: act,
            l2_scratch_bytes: 8,
            weights_in: NO_WEIGHTS.into(),
            l2_bytes: 0,
            l3_bytes: 0,
            est_cycles: 0.0,
        }
    }

    /// First fit in layer order: a layer whose constants do not fit goes to L3, a later smaller
    /// one may still fit L2; layers without constants say `none`.
    #[test]
    fn weights_placed_first_fit() {
        let mut ls = vec![layer("a", 1000, 10), layer("b", 300_000, 20), layer("c", 0, 30), layer("d", 2000, 40)];
        assert!(!place_weights(&mut ls, L2_BYTES - 250_000));
        let got: Vec<(&str, usize, usize)> =
            ls.iter().map(|l| (l.weights_in.as_str(), l.l2_bytes, l.l3_bytes)).collect();
        assert_eq!(got, [("L2", 1018, 0), ("L3", 28, 300_000), ("none", 38, 0), ("L2", 2048, 0)]);
        let mut ls = vec![layer("a", 1000, 10)];
        assert!(place_weights(&mut ls, 0));
    }

    #[test]
    fn comment_cannot_be_closed_by_a_name() {
        let c = c_comment("a %x*/y\nb");
        assert_eq!(c, "/*\n * a %x* /y\n * b\n */\n");
    }
}
