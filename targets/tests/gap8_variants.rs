//! GAP8 partition switching: three cut points of one q8 MobileNetV2 (width 0.35, CIFAR) in one
//! program behind `<prefix>_select` / `_invoke`, compiled with `cc` against the shims and run
//! with the cut changing between frames (3, 8, 3, 5, 8, 5, ...): every message is bit-exact with
//! that cut's integer interpreter, although all variants share one L2 and one L1 buffer union.

mod gap8_common;

use clio::models::{mobilenet_v2, MobileNetV2Config, Variant};
use clio_targets::gap8::{lower_variants, shim_files, Gap8Error, Gap8Options, Gap8Variants};
use gap8_common::{expected_message, input_bytes, inputs, q8_device, run_pipeline, scratch_dir, L3_LOADER};
use std::process::Command;

/// Reads `cut input` pairs from stdin-like file `plan.bin` (u32 cut, then the input bytes),
/// selects the cut, invokes and writes `u32 length` + the message for each.
const HARNESS: &str = r#"#include <stdio.h>
#include "clio_device.h"
static uint8_t in[CLIO_DEVICE_INPUT_BYTES] __attribute__((aligned(4)));
static uint8_t out[CLIO_DEVICE_MAX_OUTPUT_BYTES];
L3_LOADER
int main(int argc, char **argv)
{
    if (argc != 3) return 10;
    FILE *fi = fopen(argv[1], "rb");
    FILE *fo = fopen(argv[2], "wb");
    if (!fi || !fo) return 11;
    if (clio_device_invoke((const void *)in, out) != -2) return 12;   /* nothing selected yet */
    if (clio_device_select(999) != -1) return 13;       /* no such variant */
#ifdef CLIO_DEVICE_L3_BYTES
    if (load_l3() != 0) return 17;
#endif
    uint32_t cut;
    while (fread(&cut, sizeof cut, 1, fi) == 1 && fread(in, 1, sizeof in, fi) == sizeof in) {
        if (clio_device_select(cut) != 0) return 14;
        if (clio_device_cut() != (int32_t)cut) return 15;
        if (clio_device_invoke((const void *)in, out) != 0) return 16;
        uint32_t n = clio_device_output_bytes();
        fwrite(&n, sizeof n, 1, fo);
        fwrite(out, 1, n, fo);
    }
    fclose(fi);
    fclose(fo);
    return 0;
}
"#;

#[test]
fn three_cuts_in_one_program_switch_per_frame_bit_exact() {
    let cfg = MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
    let m = mobilenet_v2(&cfg).unwrap();
    let cuts = [3u32, 5, 8];
    let parts: Vec<(u32, clio::Module)> = cuts.iter().map(|k| (*k, q8_device(m.clone(), &k.to_string(), 5))).collect();
    let refs: Vec<(u32, &clio::Module)> = parts.iter().map(|(k, m)| (*k, m)).collect();
    let v = lower_variants(&refs, &Gap8Options::default()).unwrap();

    // Sharing: the program needs the largest variant's buffers, not the sum.
    let r = &v.report;
    assert_eq!(r.variants.len(), 3);
    assert_eq!(r.shared_l2_bytes, r.variants.iter().map(|f| f.l2_buffer_bytes).max().unwrap());
    assert!(r.shared_l2_bytes < r.unshared_l2_bytes, "{r:?}");
    assert!(r.shared_l1_bytes <= 64 * 1024);
    assert_eq!(r.flash_bytes, r.variants.iter().map(|f| f.const_bytes).sum::<usize>());
    eprintln!("{}", v.manifest_json());

    let order = [3u32, 8, 3, 5, 8, 5, 3, 5];
    run_switching(&v, &parts, &order, "variants");
}

/// Compiles the program `v` with a harness, runs `order` (one frame per cut, seeded inputs) and
/// requires every message to equal that cut's integer interpreter's.
fn run_switching(v: &Gap8Variants, parts: &[(u32, clio::Module)], order: &[u32], name: &str) {
    let dir = scratch_dir(name);
    v.write_to(&dir).unwrap();
    let mut sources = v.sources();
    clio_targets::gap8::write_shims(&dir).unwrap();
    for (name, _) in shim_files() {
        if name.ends_with(".c") {
            sources.push(name.to_string());
        }
    }
    let loader = L3_LOADER.replace("PREFIX", "clio_device").replace("UPPER", "CLIO_DEVICE");
    std::fs::write(dir.join("main.c"), HARNESS.replace("L3_LOADER", &loader)).unwrap();
    sources.push("main.c".into());
    let cc = Command::new("cc")
        .current_dir(&dir)
        .args(["-std=gnu99", "-O1", "-Wall", "-Wextra", "-Werror", "-Wvla", "-fno-pie", "-no-pie", "-I."])
        .args(&sources)
        .args(["-o", "run"])
        .output()
        .unwrap();
    assert!(cc.status.success(), "cc failed:\n{}", String::from_utf8_lossy(&cc.stderr));

    // Frames alternate between cuts, so a variant runs after another has used the shared buffers.
    let xs = inputs(&parts[0].1, order.len(), 41);
    let mut plan = vec![];
    for (cut, x) in order.iter().zip(&xs) {
        let (_, m) = parts.iter().find(|(k, _)| k == cut).unwrap();
        plan.extend_from_slice(&cut.to_le_bytes());
        plan.extend(input_bytes(m, x));
    }
    std::fs::write(dir.join("plan.bin"), plan).unwrap();
    let run = Command::new(dir.join("run")).current_dir(&dir).args(["plan.bin", "out.bin"]).output().unwrap();
    assert!(run.status.success(), "exit {:?}: {}", run.status.code(), String::from_utf8_lossy(&run.stderr));
    let out = std::fs::read(dir.join("out.bin")).unwrap();
    let mut at = 0;
    for (i, (cut, x)) in order.iter().zip(&xs).enumerate() {
        let (_, m) = parts.iter().find(|(k, _)| k == cut).unwrap();
        let n = u32::from_le_bytes(out[at..at + 4].try_into().unwrap()) as usize;
        let got = &out[at + 4..at + 4 + n];
        at += 4 + n;
        assert_eq!(got, &expected_message(m, x)[..], "frame {i} (cut {cut}) differs from the integer interpreter");
    }
    assert_eq!(at, out.len());
    let _ = std::fs::remove_dir_all(&dir);
}

/// q16 variants (cuts 3 and 8 of the q16 MobileNetV2 0.35): the dispatcher takes int16 input,
/// the L2 union's arenas are int16, and frames alternating between the cuts stay bit-exact.
#[test]
fn q16_cuts_in_one_program_switch_per_frame_bit_exact() {
    let cfg = MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
    let m = mobilenet_v2(&cfg).unwrap();
    let parts: Vec<(u32, clio::Module)> = [3u32, 8]
        .iter()
        .map(|k| {
            let mut d = m.clone();
            run_pipeline(
                &mut d,
                &format!("fuse-bn,quantize{{scheme=q16,calib=random:1,samples=2}},partition{{cut={k}}}"),
            );
            (*k, d)
        })
        .collect();
    let refs: Vec<(u32, &clio::Module)> = parts.iter().map(|(k, m)| (*k, m)).collect();
    let v = lower_variants(&refs, &Gap8Options::default()).unwrap();
    assert!(v.header.contains("int32_t clio_device_invoke(const int16_t *input, uint8_t *output);"), "{}", v.header);
    for (_, var) in &v.variants {
        assert_eq!(var.report.scheme, "q16");
        assert!(var.header.contains("int16_t arena["), "{}", var.header);
    }
    assert!(v.report.shared_l2_bytes < v.report.unshared_l2_bytes);
    run_switching(&v, &parts, &[8, 3, 3, 8, 3], "variants_q16");

    // Mixing schemes is refused.
    let q8 = q8_device(m, "5", 5);
    let err = lower_variants(&[(3, &parts[0].1), (5, &q8)], &Gap8Options::default()).unwrap_err();
    assert!(matches!(&err, Gap8Error::Options(m) if m.contains("must share the scheme")), "{err}");
}

#[test]
fn variants_must_share_the_input_and_have_distinct_cuts() {
    let cfg = MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
    let a = q8_device(mobilenet_v2(&cfg).unwrap(), "3", 5);
    let small = MobileNetV2Config { input: 16, ..cfg };
    let b = q8_device(mobilenet_v2(&small).unwrap(), "3", 5);
    let err = lower_variants(&[(3, &a), (3, &a)], &Gap8Options::default()).unwrap_err();
    assert!(matches!(&err, Gap8Error::Options(m) if m.contains("cut 3 is given twice")), "{err}");
    let err = lower_variants(&[(3, &a), (4, &b)], &Gap8Options::default()).unwrap_err();
    assert!(matches!(&err, Gap8Error::Options(m) if m.contains("must share the input")), "{err}");
    assert!(lower_variants(&[], &Gap8Options::default()).is_err());
}

/// Cuts 3 and 21 (the whole feature extractor) in one program: all variants' L2 constants
/// and the buffer union do not fit L2 together, so the largest arrays over both variants move
/// to L3 (one staging buffer in the union); the combined image hands each variant its part,
/// and frames alternating between the cuts stay bit-exact.
#[test]
fn variants_place_their_weights_jointly_and_read_l3_bit_exact() {
    let cfg = MobileNetV2Config { width: 0.35, input: 32, classes: 10, seed: 3, variant: Variant::Cifar };
    let m = mobilenet_v2(&cfg).unwrap();
    let parts: Vec<(u32, clio::Module)> =
        [3u32, 21].iter().map(|k| (*k, q8_device(m.clone(), &k.to_string(), 5))).collect();
    let refs: Vec<(u32, &clio::Module)> = parts.iter().map(|(k, m)| (*k, m)).collect();
    let v = lower_variants(&refs, &Gap8Options::default()).unwrap();
    let moved: Vec<(u32, String)> = v
        .variants
        .iter()
        .flat_map(|(k, var)| var.report.layers.iter().filter(|l| l.weights_in == "L3").map(|l| (*k, l.node.clone())))
        .collect();
    assert_eq!(moved, [(21, "features.18.0".to_string())], "{}", v.manifest_json());
    assert_eq!(v.report.l3_image_bytes, v.l3_image.len());
    assert_eq!(v.l3_image.len(), 143_360);
    assert!(v.header.contains("void clio_device_set_l3(struct pi_device *ram, uint32_t addr);"));
    assert!(v.source.contains("clio_device_k21_set_l3(ram, addr + 0);"));
    // Everything resident together fits: the union, each variant's constants in L2, the stage.
    let union = v.report.shared_l2_bytes;
    let resident: usize = v.variants.iter().map(|(_, var)| var.report.const_bytes - var.l3_image.len()).sum();
    let stage = v.variants.iter().map(|(_, var)| var.report.l3_stage_bytes).max().unwrap();
    assert!(union + resident + stage <= 512 * 1024, "{union} + {resident} + {stage}");
    run_switching(&v, &parts, &[21, 3, 21, 21, 3], "variants_l3");

    // Cuts 18 and 19 each fit L2 on their own, but not together: the joint placement moves
    // weights to L3 that neither variant alone would.
    let parts: Vec<(u32, clio::Module)> =
        [18u32, 19].iter().map(|k| (*k, q8_device(m.clone(), &k.to_string(), 5))).collect();
    for (k, part) in &parts {
        let alone = clio_targets::gap8::lower(part, &Gap8Options::default()).unwrap();
        assert_eq!(alone.report.weights_in, "L2", "cut {k} alone");
    }
    let refs: Vec<(u32, &clio::Module)> = parts.iter().map(|(k, m)| (*k, m)).collect();
    let v = lower_variants(&refs, &Gap8Options::default()).unwrap();
    assert!(v.report.l3_image_bytes > 0, "{}", v.manifest_json());
    run_switching(&v, &parts, &[19, 18, 19], "variants_l3_joint");
}
