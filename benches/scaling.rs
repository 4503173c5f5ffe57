//! Scaling benchmark (issue 10, point 2): synthetic chains of N x (conv, batch norm, ReLU) built
//! with [`clio::models::chain`], timed item by item at several sizes, with the ratio
//! time(largest) / time(previous size) per item and the peak heap used by each item.
//!
//! ```sh
//! cargo bench --bench scaling                       # 1k, 10k and 100k layers, Markdown table
//! cargo bench --bench scaling -- --sizes 1000,10000 --reps 5
//! ```
//!
//! Options: `--sizes N,N,...` (layer counts, increasing), `--reps R` (repetitions per item and
//! size; the minimum is reported, the most robust statistic on a shared machine), `--max-reps-layers N`
//! (sizes above N run each item once; default: none, every size gets the same repetitions, so
//! that each ratio compares a warm allocator with a warm allocator), `--quadratic-max N`
//! (skip the items running `canonicalize` or `slice` above N layers; default: none skipped,
//! both scale near-linearly since the region cap and the slice fixes, see docs/benchmarks.md), `--only PREFIX` (only the items whose label starts with PREFIX),
//! `--evict-mb MB` (before every timed repetition, read through a buffer of MB megabytes so that
//! the repetition starts with cold CPU caches; default: off, warm caches; see "cold caches" in
//! docs/benchmarks.md). Items:
//! build (the model builder), print (IR text, weights as digests), parse (the same text, digests
//! checked against the weights), verify, two reference loops that are not clio algorithms (one
//! pass over the nodes summing their result shapes; one weight-table lookup per `weight` node), every standard float pass run alone on the built model
//! (no verify-each), the cut-point analysis at block and layer granularity, and the full pipeline
//! through the pass manager with verify-each on.
//!
//! Memory: a counting global allocator records the heap in use; per item the table gives the
//! peak heap above what was live before the item started, and per size the heap held by the
//! built module.
//!
//! This is a `harness = false` bench target: `cargo test` does not run it.

use clio::analysis::{cut_points, Granularity};
use clio::models::{chain, ChainConfig};
use clio::pass::PassManager;
use clio::text::{parse_module, print_module, ParseOptions, PrintOptions};
use clio::verify::verify_module;
use clio::{Module, Tensor};
use std::alloc::{GlobalAlloc, Layout};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The allocator of the shipped `clio` binary (mimalloc, which `clio opt` and the other compile
/// commands run on, with their option: freed memory is kept until exit, see cli/src/main.rs)
/// plus counters of the bytes in use and their peak. Before 2026-12-05 (fourth session) the
/// bench used the system allocator (glibc), which no shipped command uses with the default
/// features; until the sixth session, mimalloc's default of returning freed memory after 10 ms.
struct Counting;

/// The allocator `Counting` forwards to.
static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = INNER.alloc(layout);
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = INNER.alloc_zeroed(layout);
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        INNER.dealloc(ptr, layout);
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = INNER.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = IN_USE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                IN_USE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// One measurement: the fastest repetition and the largest peak heap above the starting level.
#[derive(Clone, Copy, Default)]
struct Sample {
    time: Duration,
    peak_bytes: usize,
}

/// A buffer read through before every timed repetition when `--evict-mb` is given, so that each
/// repetition starts with none of the module in the CPU caches (see [`evict_caches`]).
static EVICTION_BUFFER: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();

/// Reads the whole eviction buffer (if any), one load per 64-byte line: with a buffer several
/// times the last-level cache, every line the module had in the caches is replaced.
fn evict_caches() {
    if let Some(buf) = EVICTION_BUFFER.get() {
        let sum = buf.iter().step_by(8).fold(0u64, |a, &x| a.wrapping_add(x));
        std::hint::black_box(sum);
    }
}

/// Runs `setup` (untimed) then `f` on its result `reps` times.
fn measure<S, T>(reps: usize, mut setup: impl FnMut() -> S, mut f: impl FnMut(S) -> T) -> Sample {
    let mut best = Sample { time: Duration::MAX, peak_bytes: 0 };
    for _ in 0..reps {
        let input = setup();
        evict_caches();
        let base = IN_USE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let start = Instant::now();
        let out = f(input);
        let time = start.elapsed();
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
        drop(out);
        best.time = best.time.min(time);
        best.peak_bytes = best.peak_bytes.max(peak);
    }
    best
}

fn registry_pipeline(pipeline: &str, verify_each: bool) -> PassManager {
    let reg = clio_passes::registry();
    let mut pm = PassManager::from_pipeline(&reg, pipeline).unwrap_or_else(|e| panic!("{pipeline}: {e}"));
    pm.config.verify_each = verify_each;
    pm
}

/// The items measured, in table order: (label, pipeline or a special name).
fn items(layers: usize) -> Vec<(String, String)> {
    let cut = layers / 2;
    let mut v: Vec<(String, String)> = [
        "build",
        "print",
        "parse",
        "verify",
        "cuts (block)",
        "cuts (layer)",
        "reference: node walk",
        "reference: weight lookups",
    ]
    .iter()
    .map(|s| (s.to_string(), s.to_string()))
    .collect();
    let passes = [
        "fuse-bn",
        "skip-to-conv",
        "canonicalize",
        "dce",
        "fold-constants",
        "prune{ratio=0.5}",
        "sparsify{sparsity=0.5}",
        "partition{cut=@}",
        "slice{cut=@,bandwidth=none}",
    ];
    for p in passes {
        let label = p.split('{').next().unwrap().to_string();
        v.push((label, p.replace('@', &cut.to_string())));
    }
    v.push(("full pipeline (verify-each)".into(), full_pipeline(layers)));
    let without_canon = full_pipeline(layers).replace("canonicalize,", "");
    v.push(("full pipeline without canonicalize".into(), without_canon.clone()));
    let without_both = without_canon.replace(&format!("slice{{cut={},bandwidth=none}},", layers / 2), "");
    v.push(("full pipeline without canonicalize, slice".into(), without_both));
    v
}

/// The whole standard float pipeline, in the order the Clio flow uses.
fn full_pipeline(layers: usize) -> String {
    format!(
        "fuse-bn,skip-to-conv,canonicalize,fold-constants,dce,prune{{ratio=0.5}},\
         slice{{cut={},bandwidth=none}},sparsify{{sparsity=0.5}},dce",
        layers / 2
    )
}

fn config(layers: usize) -> ChainConfig {
    ChainConfig { layers, ..ChainConfig::default() }
}

fn measure_item(label: &str, what: &str, m: &Module, layers: usize, reps: usize) -> Sample {
    match label {
        "build" => measure(reps, || (), |_| chain(&config(layers)).unwrap()),
        "print" => measure(reps, || (), |_| print_module(m, &PrintOptions::default())),
        "parse" => {
            let text = print_module(m, &PrintOptions::default());
            let blobs: HashMap<String, Tensor> =
                m.weights().iter().map(|(k, w)| (k.clone(), w.data().clone())).collect();
            measure(
                reps,
                || (),
                |_| {
                    let opts = ParseOptions { file: "chain.clio".into(), blobs: Some(&blobs), ..Default::default() };
                    parse_module(&text, &opts).unwrap()
                },
            )
        }
        "verify" => measure(reps, || (), |_| verify_module(m).unwrap()),
        "cuts (block)" => measure(reps, || (), |_| cut_points(m, "main", Granularity::Block).unwrap()),
        "cuts (layer)" => measure(reps, || (), |_| cut_points(m, "main", Granularity::Layer).unwrap()),
        // Two baselines that are not clio algorithms, to tell the memory hierarchy from the code:
        // one pass over the nodes in index order reading each result type's shape, and one
        // name lookup in the module's weight table per `weight` node.
        "reference: node walk" => measure(
            reps,
            || (),
            |_| {
                let g = m.graph("main").unwrap();
                let dims = |n: &clio::ir::Node| n.results.iter().flat_map(|t| &t.shape).sum::<usize>();
                std::hint::black_box(g.petgraph().node_weights().map(dims).sum::<usize>())
            },
        ),
        "reference: weight lookups" => measure(
            reps,
            || (),
            |_| {
                let g = m.graph("main").unwrap();
                let found = g.petgraph().node_weights().filter_map(|n| match &n.op {
                    clio::ir::Op::Weight { name } => m.weight(name).map(|w| w.data().len()),
                    _ => None,
                });
                std::hint::black_box(found.sum::<usize>())
            },
        ),
        _ if label.starts_with("full pipeline") => measure(
            reps,
            || (m.clone(), registry_pipeline(what, true)),
            |(mut m, mut pm)| {
                pm.run(&mut m).unwrap_or_else(|e| panic!("{what}: {e}"));
                m
            },
        ),
        _ => measure(
            reps,
            || (m.clone(), registry_pipeline(what, false)),
            |(mut m, mut pm)| {
                pm.run(&mut m).unwrap_or_else(|e| panic!("{what}: {e}"));
                m
            },
        ),
    }
}

fn fmt_time(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

fn fmt_bytes(b: usize) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

/// mimalloc v2's `mi_option_purge_delay` (as cli/src/main.rs).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // SAFETY: setting an option before any allocation work; -1 = keep freed memory, as the CLI.
    // An explicit MIMALLOC_PURGE_DELAY in the environment wins (to measure mimalloc's default).
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut sizes = vec![1_000usize, 10_000, 100_000];
    let mut reps = 3usize;
    let mut max_reps_layers = usize::MAX;
    let mut only: Option<String> = None;
    // The items running canonicalize or slice can be skipped above this size (they were
    // super-linear on a chain before the fixes in docs/benchmarks.md); by default none is.
    let mut quadratic_max = usize::MAX;
    let mut i = 0;
    while i < args.len() {
        let value = || args.get(i + 1).cloned().unwrap_or_else(|| panic!("{} needs a value", args[i]));
        match args[i].as_str() {
            "--sizes" => {
                sizes = value().split(',').map(|s| s.trim().parse().expect("--sizes N,N,...")).collect();
                i += 1;
            }
            "--reps" => {
                reps = value().parse().expect("--reps R");
                i += 1;
            }
            "--max-reps-layers" => {
                max_reps_layers = value().parse().expect("--max-reps-layers N");
                i += 1;
            }
            "--quadratic-max" => {
                quadratic_max = value().parse().expect("--quadratic-max N");
                i += 1;
            }
            "--only" => {
                only = Some(value());
                i += 1;
            }
            "--evict-mb" => {
                let mb: usize = value().parse().expect("--evict-mb MB");
                // Filled with non-zero data so that every page is resident before timing starts.
                let words = mb * (1 << 20) / 8;
                let buf: Vec<u64> = (0..words as u64).map(|w| w | 1).collect();
                EVICTION_BUFFER.set(buf).expect("--evict-mb given once");
                i += 1;
            }
            // `cargo bench` passes `--bench`; libtest-style filters are ignored.
            _ => {}
        }
        i += 1;
    }
    let labels: Vec<String> = items(1).into_iter().map(|(l, _)| l).collect();
    let mut table: Vec<Vec<Sample>> = vec![vec![]; labels.len()];
    let mut module_bytes = vec![];
    let mut node_counts = vec![];
    for &layers in &sizes {
        let before = IN_USE.load(Ordering::Relaxed);
        let m = chain(&config(layers)).expect("chain");
        module_bytes.push(IN_USE.load(Ordering::Relaxed).saturating_sub(before));
        node_counts.push(m.main_graph().unwrap().len());
        let r = if layers > max_reps_layers { 1 } else { reps };
        // Sanity: the full pipeline must succeed (and verify) before anything is timed.
        for (row, (label, what)) in items(layers).into_iter().enumerate() {
            let slow = what.contains("canonicalize") || what.contains("slice{");
            if (slow && layers > quadratic_max) || only.as_deref().is_some_and(|o| !label.starts_with(o)) {
                table[row].push(Sample::default());
                continue;
            }
            let s = measure_item(&label, &what, &m, layers, r);
            eprintln!(
                "{layers:>8} layers  {label:<28} {:>10}  peak heap {:>9}",
                fmt_time(s.time),
                fmt_bytes(s.peak_bytes)
            );
            table[row].push(s);
        }
        drop(m);
    }
    // Markdown table.
    let mut head = "| item |".to_string();
    let mut rule = "|---|".to_string();
    for &n in &sizes {
        head += &format!(" {} layers |", n);
        rule += "---|";
    }
    for w in sizes.windows(2) {
        head += &format!(" t({})/t({}) |", w[1], w[0]);
        rule += "---|";
    }
    head += &format!(" peak heap at {} |", sizes.last().unwrap());
    rule += "---|";
    println!("{head}\n{rule}");
    let mut row = "| nodes (module heap) |".to_string();
    for (n, b) in node_counts.iter().zip(&module_bytes) {
        row += &format!(" {n} ({}) |", fmt_bytes(*b));
    }
    for w in module_bytes.windows(2) {
        row += &format!(" {:.1} (heap) |", w[1] as f64 / w[0].max(1) as f64);
    }
    row += " |";
    println!("{row}");
    for (label, samples) in labels.iter().zip(&table) {
        let mut row = format!("| {label} |");
        for s in samples {
            row += &if s.time.is_zero() { " - |".to_string() } else { format!(" {} |", fmt_time(s.time)) };
        }
        for w in samples.windows(2) {
            if w[0].time.is_zero() || w[1].time.is_zero() {
                row += " - |";
                continue;
            }
            let ratio = w[1].time.as_secs_f64() / w[0].time.as_secs_f64();
            row += &format!(" {ratio:.1} |");
        }
        row += &format!(" {} |", fmt_bytes(samples.last().map_or(0, |s| s.peak_bytes)));
        println!("{row}");
    }
    println!("\nfull pipeline: `{}`", full_pipeline(*sizes.last().unwrap()));
}
