//! The per-layer memory budget: what each layer needs of L1 (its tiles), of L2 (the arena
//! activations live while it runs, its L2 scratch, its weights when they are resident in L2) and
//! of L3 (its weights, when they do not fit L2 and stay in HyperFlash), against the GAP8's
//! 64 KB of cluster L1 and 512 KB of L2; and the table that states it (the generated `.c`'s
//! head comment, [`super::Gap8Report::memory_table`]).

#[cfg(test)]
use super::L2_BYTES;
use super::{Gap8Layer, Gap8Report, L1_BYTES};
use std::fmt::Write;

/// Where a layer's constants live when it has none.
pub(crate) const NO_WEIGHTS: &str = "none";

/// Places each layer's constants. When they all fit L2 next to the generated code's buffers
/// (`l2_base` bytes), they all stay there. Otherwise the largest weight arrays
/// (`weight_bytes`) move to L3 (HyperRAM, loaded from HyperFlash), largest first, until the
/// rest fits next to the L2 staging buffer: a moved layer reads its weights chunk by chunk
/// into the staging buffer (see `l3.rs`), which needs the layer's `stage_if_moved` bytes
/// (`None`: its weights cannot move), while its small per-channel constants (bias / init,
/// shifts) stay in L2.
///
/// Sets every layer's `weights_in`, `l2_bytes` and `l3_bytes` (its `l2_act_bytes` and
/// `l2_scratch_bytes` must be set) and returns the staging buffer's bytes (0 when every
/// layer's constants are in L2). Afterwards `l2_base` + the constants resident in L2 + the
/// staging buffer are at most `l2_budget`; when no placement achieves that, the error says
/// how far over it is.
pub(crate) fn place_weights(layers: &mut [Gap8Layer], l2_base: usize, l2_budget: usize) -> Result<usize, String> {
    if l2_base > l2_budget {
        let peak = layers.iter().max_by_key(|l| l.l2_act_bytes + l.l2_scratch_bytes);
        let at = peak.map(|l| format!(", {} B live at %{} ({})", l.l2_act_bytes + l.l2_scratch_bytes, l.node, l.op));
        return Err(format!(
            "the activation arena and scratch buffers need {l2_base} B of L2 (> {l2_budget} B{}); \
             activations in L3 (HyperRAM) are not implemented: cut earlier or use a smaller input",
            at.unwrap_or_default()
        ));
    }
    let stage_of = |i: usize| layers.get(i).and_then(|l| l.stage_if_moved);
    let mut by_size: Vec<usize> =
        (0..layers.len()).filter(|i| layers[*i].weight_bytes > 0 && stage_of(*i).is_some()).collect();
    by_size.sort_by_key(|i| std::cmp::Reverse(layers[*i].weight_bytes));
    let mut need = l2_base + layers.iter().map(|l| l.const_bytes).sum::<usize>();
    let mut stage = 0;
    let mut moved = 0;
    while need > l2_budget {
        let Some(&i) = by_size.get(moved) else {
            return Err(format!(
                "the weights do not fit L2 even with {moved} layers' weights in L3: {need} B of L2 needed (> {l2_budget} B)"
            ));
        };
        let grown = stage.max(stage_of(i).unwrap_or(0));
        need = need + (grown - stage) - layers[i].weight_bytes;
        stage = grown;
        moved += 1;
    }
    let in_l3: std::collections::HashSet<usize> = by_size.iter().take(moved).copied().collect();
    mark(layers, |i, _| in_l3.contains(&i));
    assign_l2(layers, stage);
    Ok(stage)
}

/// Places exactly the weights of the layers named in `nodes` (those that can move) in L3, the
/// rest in L2 (a dispatcher's joint placement over its variants); returns the staging bytes.
pub(crate) fn place_forced(layers: &mut [Gap8Layer], nodes: &std::collections::HashSet<String>) -> usize {
    mark(layers, |_, l| l.stage_if_moved.is_some() && l.weight_bytes > 0 && nodes.contains(&l.node));
    let stage = layers.iter().filter(|l| l.weights_in == "L3").filter_map(|l| l.stage_if_moved).max().unwrap_or(0);
    assign_l2(layers, stage);
    stage
}

/// Sets `weights_in` and `l3_bytes` of every layer, in L3 where `in_l3(index, layer)`.
fn mark(layers: &mut [Gap8Layer], in_l3: impl Fn(usize, &Gap8Layer) -> bool) {
    for (i, l) in layers.iter_mut().enumerate() {
        let l3 = in_l3(i, l);
        l.weights_in = match (l.const_bytes, l3) {
            (0, _) => NO_WEIGHTS,
            (_, false) => "L2",
            (_, true) => "L3",
        }
        .into();
        l.l3_bytes = if l3 { l.weight_bytes } else { 0 };
    }
}

/// Sets each layer's `l2_bytes` from its live activations, scratch and constants; an L3
/// layer's resident constants plus the staging buffer (`stage` bytes) its weights pass through.
pub(crate) fn assign_l2(layers: &mut [Gap8Layer], stage: usize) {
    for l in layers {
        let consts = if l.weights_in == "L3" { l.const_bytes - l.l3_bytes + stage } else { l.const_bytes };
        l.l2_bytes = l.l2_act_bytes + l.l2_scratch_bytes + consts;
    }
}

/// The per-layer budget table of `r` (plain text, one line per layer, then the limits and the
/// static totals).
pub(crate) fn table(r: &Gap8Report) -> String {
    let wn = r.layers.iter().map(|l| l.node.len() + 1).max().unwrap_or(4).max(5);
    let wo = r.layers.iter().map(|l| l.op.len()).max().unwrap_or(2).max(2);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Per-layer memory budget, bytes (L1 budget {} of {L1_BYTES}, L2 budget {}):\n\
         L1 = the layer's L1 tiles (input buffers or bands, HWCE stripes, tiles and filters,\n\
         accumulator, output tile);\n\
         L2 = L2 act (arena activations live during the layer) + L2 scr (the int32 accumulator\n\
         of a layer not tiled in L1) + its constants (weights, biases, shifts; the weights in\n\
         the L3 staging buffer when they are in L3);\n\
         L3 = its weights when they do not fit L2: read from HyperRAM into the staging buffer.",
        r.l1_budget_bytes, r.l2_budget_bytes
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
    // The wire header is both a constant and part of the buffers' figure: count it once.
    let header = r.l2_bytes.saturating_sub(r.arena_bytes + r.acc_bytes);
    let in_l2 = r.const_bytes.saturating_sub(l3 + header);
    let _ = writeln!(
        o,
        "Largest layer: L1 {} of {}, L2 {} of {}.\n\
         Static: L1 buffers {} B; L2 buffers {} B + constants in L2 {in_l2} B + L3 staging {} B = {} B; weights in L3 {l3} B.",
        max(|l| l.l1_bytes),
        r.l1_budget_bytes,
        max(|l| l.l2_bytes),
        r.l2_budget_bytes,
        r.l1_bytes,
        r.l2_bytes,
        r.l3_stage_bytes,
        r.l2_bytes + in_l2 + r.l3_stage_bytes,
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
        let weight_bytes = const_bytes.saturating_sub(20).min(const_bytes);
        Gap8Layer {
            node: node.into(),
            op: "conv2d".into(),
            unit: "cluster".into(),
            function: "ClioKerParConvAcc32_fps".into(),
            reason: String::new(),
            macs: 0,
            hwce_passes: 0,
            const_bytes,
            weight_bytes,
            l1_bytes: 0,
            dma_in_bytes: 0,
            dma_out_bytes: 0,
            out_bytes: act,
            l2_act_bytes: act,
            l2_scratch_bytes: 8,
            weights_in: NO_WEIGHTS.into(),
            l2_bytes: 0,
            l3_bytes: 0,
            est_cycles: 0.0,
            stage_if_moved: Some(2 * weight_bytes.min(16_384)),
        }
    }

    /// Everything stays in L2 when it fits; otherwise the largest movable weight arrays move to
    /// L3, largest first, until the rest and the staging buffer fit; layers without constants
    /// say `none`, layers whose weights cannot move stay in L2.
    #[test]
    fn largest_weights_move_to_l3_first() {
        let mut ls = vec![layer("a", 1000, 10)];
        assert_eq!(place_weights(&mut ls, 0, L2_BYTES), Ok(0));
        assert_eq!(ls[0].weights_in, "L2");
        // 301k of constants, 250k free: `x` is the largest but cannot move; `a` (the largest
        // movable, the first among equals) moves and adds a 32 KB staging buffer: 51,000 -
        // 99,980 + 32,768 < 0, so the rest fits; `c` stays.
        let mut ls = vec![
            layer("a", 100_000, 10),
            layer("b", 1000, 20),
            layer("c", 100_000, 30),
            layer("d", 0, 40),
            layer("x", 100_020, 0),
        ];
        ls[3].stage_if_moved = None;
        ls[4].stage_if_moved = None;
        assert_eq!(place_weights(&mut ls, L2_BYTES - 250_020, L2_BYTES), Ok(32_768));
        let got: Vec<(&str, usize, usize)> =
            ls.iter().map(|l| (l.weights_in.as_str(), l.l2_bytes, l.l3_bytes)).collect();
        assert_eq!(
            got,
            [("L3", 32_806, 99_980), ("L2", 1028, 0), ("L2", 100_038, 0), ("none", 48, 0), ("L2", 100_028, 0)]
        );
    }

    /// Weights that cannot fit even streamed, and buffers past L2, are errors that say why.
    #[test]
    fn what_cannot_be_placed_is_an_error() {
        let mut ls = vec![layer("big", 300_000, 0)];
        ls[0].stage_if_moved = None;
        let e = place_weights(&mut ls, L2_BYTES - 250_000, L2_BYTES).unwrap_err();
        assert!(e.starts_with("the weights do not fit L2 even with 0 layers' weights in L3"), "{e}");
        let e = place_weights(&mut ls, L2_BYTES + 1, L2_BYTES).unwrap_err();
        assert!(e.contains("need 524289 B of L2 (> 524288 B, 8 B live at %big (conv2d))"), "{e}");
    }

    #[test]
    fn comment_cannot_be_closed_by_a_name() {
        let c = c_comment("a %x*/y\nb");
        assert_eq!(c, "/*\n * a %x* /y\n * b\n */\n");
    }
}
