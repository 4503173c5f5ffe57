//! Shared by the GAP8 backend tests (through `mod gap8_common;`): quantized, partitioned
//! models, the integer interpreter's expected wire message, and compiling/running the
//! generated C with the system C compiler against the GAP8 shims.

#![allow(dead_code)]

use clio::ir::{QScheme, Tensor};
use clio::Module;
use clio_targets::gap8::{lower, shim_files, Gap8Module, Gap8Options};
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "../backend_common/mod.rs"]
mod backend_common;
#[allow(unused_imports)] // not every test binary uses both
pub use backend_common::{inputs, run_pipeline};

/// The device input quantized as the graph's `quantize` does, as the bytes the generated
/// `invoke` takes: int8 (q8) or little-endian int16 (q16) values, planar CHW.
pub fn input_bytes(m: &Module, x: &Tensor) -> Vec<u8> {
    let g = m.graph("device").unwrap();
    let input = g.inputs()[0];
    let q = g.users(input).into_iter().find(|u| matches!(g.node(*u).op, clio::ir::Op::Quantize)).unwrap();
    let ty = g.node(q).ty();
    let Some(QScheme::Pow2 { frac_bits }) = ty.quant.as_ref().map(|q| &q.scheme) else {
        panic!("not a Q-format input")
    };
    match ty.dtype {
        clio::ir::DType::I8 => input_q8(m, x).iter().map(|v| *v as u8).collect(),
        clio::ir::DType::I16 => {
            let f = 2f64.powi(frac_bits[0]);
            let q = |v: &f32| ((*v as f64 * f).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes();
            x.as_f32().unwrap().iter().flat_map(q).collect()
        }
        d => panic!("input of type {d}"),
    }
}

/// Fuses BN, quantizes to q8 (seeded random calibration) and partitions at `cut`.
pub fn q8_device(m: Module, cut: &str, seed: u64) -> Module {
    backend_common::quantized_device(m, "q8", cut, seed)
}

/// The device input quantized as the graph's `quantize` does (planar CHW = NCHW order).
pub fn input_q8(m: &Module, x: &Tensor) -> Vec<i8> {
    let g = m.graph("device").unwrap();
    let input = g.inputs()[0];
    let q = g.users(input).into_iter().find(|u| matches!(g.node(*u).op, clio::ir::Op::Quantize)).unwrap();
    let Some(QScheme::Pow2 { frac_bits }) = g.node(q).ty().quant.as_ref().map(|q| &q.scheme) else {
        panic!("not a q8 input")
    };
    let f = 2f64.powi(frac_bits[0]);
    x.as_f32().unwrap().iter().map(|v| (*v as f64 * f).round().clamp(-128.0, 127.0) as i8).collect()
}

/// The wire message the integer interpreter's device output encodes to.
pub fn expected_message(m: &Module, x: &Tensor) -> Vec<u8> {
    let y = clio::interp::run_int(m, "device", std::slice::from_ref(x)).unwrap();
    let g = m.graph("device").unwrap();
    let ty = g.value_type(g.outputs()[0]).unwrap();
    clio::quant::wire::encode(&y[0], ty.quant.as_ref(), 1, y[0].shape()[1]).unwrap()
}

/// A fresh scratch directory under the system temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    backend_common::scratch_dir_for("gap8", name)
}

/// C text (for `PREFIX` / `UPPER` substitution): when the module has weights in L3, a
/// `load_l3()` that loads `PREFIX_l3.bin` into the emulated HyperRAM at a nonzero address
/// (after a 4 KB allocation) and hands it to `PREFIX_set_l3`; it returns 0, or 1 for a missing
/// or wrong-sized image, 2 when the RAM cannot be opened or allocated.
pub const L3_LOADER: &str = r#"#ifdef UPPER_L3_BYTES
#include "bsp/ram.h"
static uint8_t l3img[UPPER_L3_BYTES];
static struct pi_device ram;
static int load_l3(void)
{
    uint32_t other, addr;
    FILE *fl = fopen("PREFIX_l3.bin", "rb");
    if (!fl || fread(l3img, 1, sizeof l3img, fl) != sizeof l3img || fgetc(fl) != EOF) return 1;
    fclose(fl);
    if (pi_ram_open(&ram) || pi_ram_alloc(&ram, &other, 4096) || pi_ram_alloc(&ram, &addr, sizeof l3img)) return 2;
    pi_ram_write(&ram, addr, l3img, sizeof l3img);
    PREFIX_set_l3(&ram, addr);
    return 0;
}
#endif
"#;

/// Runs every input through `invoke`. With weights in L3 it first checks that `invoke` refuses
/// to run before `set_l3`, then loads the image ([`L3_LOADER`]). The host shim's DMA and
/// HyperRAM byte counts of the first `invoke` go to `dma.txt` (L2->L1, L1->L2, L3 reads).
const HARNESS: &str = r#"#include <stdio.h>
#include "PREFIX.h"
static uint8_t in[UPPER_INPUT_BYTES] __attribute__((aligned(4)));
static uint8_t out[UPPER_OUTPUT_BYTES];
extern uint64_t clio_host_dma_in_bytes, clio_host_dma_out_bytes, clio_host_l3_read_bytes;
L3_LOADER
int main(int argc, char **argv)
{
    if (argc != 3) return 10;
    FILE *fi = fopen(argv[1], "rb");
    FILE *fo = fopen(argv[2], "wb");
    if (!fi || !fo) return 11;
    if (PREFIX_init() != 0) return 12;
#ifdef UPPER_L3_BYTES
    if (PREFIX_invoke((const void *)in, out) != -1) return 14;
    if (load_l3() != 0) return 15;
#endif
    for (int first = 1; fread(in, 1, sizeof in, fi) == sizeof in; first = 0) {
        uint64_t i0 = clio_host_dma_in_bytes, o0 = clio_host_dma_out_bytes, l0 = clio_host_l3_read_bytes;
        if (PREFIX_invoke((const void *)in, out) != 0) return 13;
        fwrite(out, 1, sizeof out, fo);
        if (first) {
            FILE *fd = fopen("dma.txt", "w");
            if (!fd) return 16;
            fprintf(fd, "%llu %llu %llu\n", (unsigned long long)(clio_host_dma_in_bytes - i0),
                    (unsigned long long)(clio_host_dma_out_bytes - o0), (unsigned long long)(clio_host_l3_read_bytes - l0));
            fclose(fd);
        }
    }
    fclose(fi);
    fclose(fo);
    return 0;
}
"#;

/// Writes the module, the shims and a harness into `dir`, compiles with `cc` (no PIE: GAP8
/// addresses are 32-bit, and the DMA shim takes them as such), runs every input through
/// `invoke` and returns the messages.
pub fn compile_and_run(c: &Gap8Module, dir: &Path, inputs: &[Vec<i8>]) -> Vec<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = inputs.iter().map(|v| v.iter().map(|x| *x as u8).collect()).collect();
    compile_and_run_bytes(c, dir, &bytes)
}

/// [`compile_and_run`] with the inputs as the bytes `invoke` reads (int8, or int16 little
/// endian in q16).
pub fn compile_and_run_bytes(c: &Gap8Module, dir: &Path, inputs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    c.write_to(dir).unwrap();
    let mut sources = vec![c.source_name(), "main.c".to_string()];
    for (name, text) in shim_files() {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        if name.ends_with(".c") {
            sources.push(name.to_string());
        }
    }
    let harness = HARNESS
        .replace("L3_LOADER", L3_LOADER)
        .replace("PREFIX", &c.prefix)
        .replace("UPPER", &c.prefix.to_ascii_uppercase());
    std::fs::write(dir.join("main.c"), harness).unwrap();
    let exe = dir.join("run");
    let out = Command::new("cc")
        .current_dir(dir)
        .args(["-std=gnu99", "-O1", "-Wall", "-Wextra", "-Werror", "-Wvla", "-fno-pie", "-no-pie", "-I."])
        .args(&sources)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("running cc (the system C compiler must be on PATH)");
    assert!(out.status.success(), "cc failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let bytes: Vec<u8> = inputs.concat();
    std::fs::write(dir.join("in.bin"), bytes).unwrap();
    let run = Command::new(&exe).current_dir(dir).args(["in.bin", "out.bin"]).output().unwrap();
    assert!(run.status.success(), "generated code failed ({}): {}", run.status, String::from_utf8_lossy(&run.stderr));
    if !inputs.is_empty() {
        // The emulated DMA engine and HyperRAM moved exactly what the report says.
        let counts = std::fs::read_to_string(dir.join("dma.txt")).unwrap();
        let got: Vec<usize> = counts.split_whitespace().map(|v| v.parse().unwrap()).collect();
        let l3: usize = c.report.layers.iter().map(|l| l.l3_bytes).sum();
        assert_eq!(
            got,
            [c.report.dma_in_bytes, c.report.dma_out_bytes, l3],
            "DMA bytes per invoke (L2->L1, L1->L2, L3 reads): shim vs report; dir {}",
            dir.display()
        );
    }
    let all = std::fs::read(dir.join("out.bin")).unwrap();
    let n = c.report.output_bytes;
    assert_eq!(all.len(), n * inputs.len());
    all.chunks(n).map(|c| c.to_vec()).collect()
}

/// Lowers the device part of `m`, runs it in C on `n` seeded inputs and requires every
/// message to equal the integer interpreter's, byte for byte. Returns the module.
pub fn check_bit_exact(m: &Module, name: &str, n: usize) -> Gap8Module {
    check_bit_exact_with(m, name, n, &Gap8Options::default())
}

/// [`check_bit_exact`] with backend options.
pub fn check_bit_exact_with(m: &Module, name: &str, n: usize, opts: &Gap8Options) -> Gap8Module {
    let c = lower(m, opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    let xs = inputs(m, n, 99);
    let dir = scratch_dir(name);
    let got = compile_and_run_bytes(&c, &dir, &xs.iter().map(|x| input_bytes(m, x)).collect::<Vec<_>>());
    for (i, (x, g)) in xs.iter().zip(&got).enumerate() {
        let want = expected_message(m, x);
        if &want != g {
            let diff = want.iter().zip(g).position(|(a, b)| a != b);
            let nd = want.iter().zip(g).filter(|(a, b)| a != b).count();
            panic!("{name}: input {i}: C output differs from the integer interpreter ({nd} bytes, first at {diff:?}); dir {}", dir.display());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    c
}

/// The kernels the module calls, in order.
pub fn functions(c: &Gap8Module) -> Vec<String> {
    c.report.layers.iter().map(|l| l.function.clone()).collect()
}

/// The sizes docs/gap8.md tabulates, for `--nocapture` runs.
pub fn summary(c: &Gap8Module) -> String {
    let r = &c.report;
    format!(
        "{} layers, {} MACs ({} on the HWCE), arena {} B, acc {} B, L2 {} B, L1 {} B, consts {} B (weights in {}), est {:.0} cycles",
        r.layers.len(),
        r.macs,
        r.hwce_macs,
        r.arena_bytes,
        r.acc_bytes,
        r.l2_bytes,
        r.l1_bytes,
        r.const_bytes,
        r.weights_in,
        r.est_cycles
    )
}
