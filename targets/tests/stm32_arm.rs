//! STM32 backend, cross compilation: the generated C and the shims build for a Cortex-M7
//! (`arm-none-eabi-gcc -mcpu=cortex-m7 -mthumb -mfpu=fpv5-d16 -mfloat-abi=hard -O2 -Wall
//! -Werror`), link into a bare-metal ELF, contain no floating-point instruction, and their
//! text/data/bss are reported with `arm-none-eabi-size`.
//!
//! `.ci/run` installs Debian's gcc-arm-none-eabi and libnewlib-arm-none-eabi. Without them the
//! test is skipped locally, and fails under `CI=true`.

mod stm32_common;

use clio::models::{mobilenet_v2, resnet18, vgg16_bn, MobileNetV2Config, ResNetConfig, Variant, VggConfig};
use clio::text::{parse_module, ParseOptions};
use clio_targets::stm32::{lower, shim_files, CmsisApi, Stm32Options};
use std::path::Path;
use std::process::Command;
use stm32_common::{device_part, run_pipeline, scratch_dir};

const FLAGS: &[&str] =
    &["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard", "-O2", "-Wall", "-Werror", "-std=c99"];

fn have_toolchain() -> bool {
    let ok = Command::new("arm-none-eabi-gcc").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "arm-none-eabi-gcc is missing (install gcc-arm-none-eabi and libnewlib-arm-none-eabi)"
        );
        eprintln!("skipping: arm-none-eabi-gcc is not installed");
    }
    ok
}

fn run(dir: &Path, prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog).current_dir(dir).args(args).output().unwrap();
    assert!(out.status.success(), "{prog} {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `(text, data, bss)` of one object/ELF from `arm-none-eabi-size` (Berkeley format).
fn size(dir: &Path, file: &str) -> (u64, u64, u64) {
    let out = run(dir, "arm-none-eabi-size", &[file]);
    let line = out.lines().nth(1).unwrap();
    let v: Vec<u64> = line.split_whitespace().take(3).map(|x| x.parse().unwrap()).collect();
    (v[0], v[1], v[2])
}

const MAIN: &str = r#"#include "clio_device.h"
static int8_t input[CLIO_DEVICE_INPUT_BYTES];
static uint8_t output[CLIO_DEVICE_OUTPUT_BYTES];
int main(void)
{
    if (clio_device_init() != 0) {
        return 1;
    }
    return (int)clio_device_invoke(input, output);
}
"#;

fn cross_compile(m: &clio::Module, name: &str) {
    cross_compile_with(m, name, CmsisApi::S8)
}

fn cross_compile_with(m: &clio::Module, name: &str, api: CmsisApi) {
    let c = lower(m, &Stm32Options { api, ..Default::default() }).unwrap();
    let dir = scratch_dir(&format!("arm-{name}"));
    c.write_to(&dir).unwrap();
    let mut objects = vec!["clio_device.o".to_string(), "main.o".to_string()];
    let mut sources = vec!["clio_device.c".to_string(), "main.c".to_string()];
    for (f, text) in shim_files(api) {
        std::fs::write(dir.join(f), text).unwrap();
        if f.ends_with(".c") {
            sources.push(f.to_string());
            objects.push(f.replace(".c", ".o"));
        }
    }
    std::fs::write(dir.join("main.c"), MAIN).unwrap();
    for src in &sources {
        let obj = src.replace(".c", ".o");
        let mut args: Vec<&str> = FLAGS.to_vec();
        args.extend(["-I.", "-c", src, "-o", &obj]);
        run(&dir, "arm-none-eabi-gcc", &args);
    }
    let mut args: Vec<&str> = FLAGS.to_vec();
    args.push("--specs=nosys.specs");
    args.extend(objects.iter().map(String::as_str));
    args.extend(["-o", "device.elf"]);
    run(&dir, "arm-none-eabi-gcc", &args);
    // No floating-point arithmetic in the generated module.
    let dis = run(&dir, "arm-none-eabi-objdump", &["-d", "clio_device.o"]);
    assert!(!dis.contains(".f32") && !dis.contains(".f64"), "{name}: floating-point instructions in the int8 path");
    let (t, d, b) = size(&dir, "clio_device.o");
    let (et, ed, eb) = size(&dir, "device.elf");
    let r = &c.report;
    println!(
        "{name}: generated module text {t} data {d} bss {b} (arena {} + scratch {}; const data {}); \
         linked ELF with host kernels and newlib text {et} data {ed} bss {eb}",
        r.arena_bytes, r.scratch_bytes, r.const_bytes
    );
    assert!(b as usize >= r.arena_bytes && t as usize >= r.const_bytes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cortex_m7_builds() {
    if !have_toolchain() {
        return;
    }
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/ir/quantize_int8_cnn.clio")).unwrap();
    let mut m = parse_module(&src, &ParseOptions::default()).unwrap();
    run_pipeline(&mut m, "quantize{scheme=int8,calib=random:1,samples=4},partition{cut=sm,granularity=layer}");
    cross_compile(&m, "small_cnn");
    for width in [0.35, 0.5] {
        let cfg = MobileNetV2Config { width, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
        cross_compile(&device_part(mobilenet_v2(&cfg).unwrap(), "9", 5), &format!("mobilenet_v2_w{width}_cut9"));
    }
    let cfg = ResNetConfig { width: 0.25, input: 32, classes: 10, seed: 4, variant: Variant::Cifar };
    cross_compile(&device_part(resnet18(&cfg).unwrap(), "6", 6), "resnet18_w0.25_cut6");
    let cfg = VggConfig { width: 0.25, input: 32, classes: 10, seed: 5, variant: Variant::Cifar };
    cross_compile(&device_part(vgg16_bn(&cfg).unwrap(), "9", 7), "vgg16_bn_w0.25_cut9");
    // The legacy q7 API on a q8 graph.
    let cfg = MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
    let mut m = mobilenet_v2(&cfg).unwrap();
    run_pipeline(&mut m, "fuse-bn,quantize{scheme=q8,weights=per-tensor,calib=random:5,samples=3},partition{cut=9}");
    cross_compile_with(&m, "q7_mobilenet_v2_w0.35_cut9", CmsisApi::LegacyQ7);
}
