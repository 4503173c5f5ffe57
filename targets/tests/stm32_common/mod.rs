//! Shared by the STM32 backend tests (through `mod stm32_common;`): building quantized,
//! partitioned models from the Rust builders, the integer interpreter's expected wire message,
//! and compiling/running the generated C with the system C compiler.

#![allow(dead_code)]

use clio::ir::{DType, QScheme, Tensor, TensorData};
use clio::Module;
use clio_targets::stm32::{lower, shim_files, CModule, Stm32Options};
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "../backend_common/mod.rs"]
mod backend_common;
#[allow(unused_imports)] // not every test binary uses both
pub use backend_common::{inputs, run_pipeline};

/// Fuses BN, quantizes to int8 (seeded random calibration) and partitions at `cut`.
pub fn device_part(m: Module, cut: &str, seed: u64) -> Module {
    backend_common::quantized_device(m, "int8", cut, seed)
}

/// The device input quantized as the graph's `quantize` does, in NHWC order.
pub fn input_nhwc(m: &Module, x: &Tensor) -> Vec<i8> {
    let g = m.graph("device").unwrap();
    let input = g.inputs()[0];
    let q = g.users(input).into_iter().find(|u| matches!(g.node(*u).op, clio::ir::Op::Quantize)).unwrap();
    let ty = g.node(q).ty();
    let xs = x.as_f32().unwrap();
    let qv: Vec<i8> = match ty.quant.as_ref().map(|q| &q.scheme) {
        Some(QScheme::Affine { scales, zero_points }) => {
            let (s, z) = (scales[0] as f64, zero_points[0] as f64);
            xs.iter().map(|v| ((*v as f64 / s).round() + z).clamp(-128.0, 127.0) as i8).collect()
        }
        Some(QScheme::Pow2 { frac_bits }) => {
            let f = 2f64.powi(frac_bits[0]);
            xs.iter().map(|v| (*v as f64 * f).round().clamp(-128.0, 127.0) as i8).collect()
        }
        None => panic!("unquantized input"),
    };
    let sh = x.shape();
    let (n, c, h, w) = (sh[0], sh[1], sh[2], sh[3]);
    let mut out = vec![0i8; qv.len()];
    for b in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    out[((b * h + y) * w + xx) * c + ch] = qv[((b * c + ch) * h + y) * w + xx];
                }
            }
        }
    }
    out
}

/// The wire message the integer interpreter's device output encodes to.
pub fn expected_message(m: &Module, x: &Tensor) -> Vec<u8> {
    let y = clio::interp::run_int(m, "device", std::slice::from_ref(x)).unwrap();
    let t = &y[0];
    assert_eq!(t.dtype(), DType::I8);
    let g = m.graph("device").unwrap();
    let ty = g.value_type(g.outputs()[0]).unwrap();
    clio::quant::wire::encode(t, ty.quant.as_ref(), 1, t.shape()[1]).unwrap()
}

/// A fresh scratch directory under the system temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    backend_common::scratch_dir_for("stm32", name)
}

const HARNESS: &str = r#"#include <stdio.h>
#include "PREFIX.h"
static int8_t in[UPPER_INPUT_BYTES];
static uint8_t out[UPPER_OUTPUT_BYTES];
int main(int argc, char **argv)
{
    if (argc != 3) return 10;
    FILE *fi = fopen(argv[1], "rb");
    FILE *fo = fopen(argv[2], "wb");
    if (!fi || !fo) return 11;
    int32_t r = PREFIX_init();
    if (r != 0) { fprintf(stderr, "init failed: %d\n", (int)r); return 12; }
    while (fread(in, 1, sizeof in, fi) == sizeof in) {
        r = PREFIX_invoke(in, out);
        if (r != 0) { fprintf(stderr, "invoke failed at layer %d\n", (int)r - 1); return 13; }
        fwrite(out, 1, sizeof out, fo);
    }
    fclose(fi);
    fclose(fo);
    return 0;
}
"#;

/// Writes the module, the shims and a harness into `dir`, compiles with `cc`, runs every input
/// through `invoke` and returns the messages.
pub fn compile_and_run(c: &CModule, dir: &Path, inputs: &[Vec<i8>]) -> Vec<Vec<u8>> {
    c.write_to(dir).unwrap();
    let mut sources = vec![c.source_name(), "main.c".to_string()];
    for (name, text) in shim_files(c.api) {
        std::fs::write(dir.join(name), text).unwrap();
        if name.ends_with(".c") {
            sources.push(name.to_string());
        }
    }
    let harness = HARNESS.replace("PREFIX", &c.prefix).replace("UPPER", &c.prefix.to_ascii_uppercase());
    std::fs::write(dir.join("main.c"), harness).unwrap();
    let exe = dir.join("run");
    let out = Command::new("cc")
        .current_dir(dir)
        .args(["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-Wvla", "-I."])
        .args(&sources)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("running cc (the system C compiler must be on PATH)");
    assert!(out.status.success(), "cc failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let bytes: Vec<u8> = inputs.iter().flat_map(|v| v.iter().map(|x| *x as u8)).collect();
    std::fs::write(dir.join("in.bin"), bytes).unwrap();
    let run = Command::new(&exe).current_dir(dir).args(["in.bin", "out.bin"]).output().unwrap();
    assert!(run.status.success(), "generated code failed: {}", String::from_utf8_lossy(&run.stderr));
    let all = std::fs::read(dir.join("out.bin")).unwrap();
    let n = c.report.output_bytes;
    assert_eq!(all.len(), n * inputs.len());
    all.chunks(n).map(|c| c.to_vec()).collect()
}

/// Lowers the device part of `m`, runs it in C on `n` seeded inputs and requires every
/// message to equal the integer interpreter's, byte for byte. Returns the module.
pub fn check_bit_exact(m: &Module, name: &str, n: usize) -> CModule {
    check_bit_exact_with(m, name, n, &Stm32Options::default())
}

/// [`check_bit_exact`] with backend options (the legacy q7 API ...).
pub fn check_bit_exact_with(m: &Module, name: &str, n: usize, opts: &Stm32Options) -> CModule {
    let c = lower(m, opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    let xs = inputs(m, n, 99);
    let dir = scratch_dir(name);
    let got = compile_and_run(&c, &dir, &xs.iter().map(|x| input_nhwc(m, x)).collect::<Vec<_>>());
    for (i, (x, g)) in xs.iter().zip(&got).enumerate() {
        let want = expected_message(m, x);
        if &want != g {
            let diff = want.iter().zip(g).position(|(a, b)| a != b);
            panic!("{name}: input {i}: C output differs from the integer interpreter (first at byte {diff:?})");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    c
}

/// Ensures an i8 tensor is what it claims (helper for debugging).
pub fn i8_data(t: &Tensor) -> &[i8] {
    match t.data() {
        TensorData::I8(v) => v,
        _ => panic!("not i8"),
    }
}
