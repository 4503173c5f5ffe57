//! `clio build-model` and the compression report of `clio stats`: build baselines, prune and
//! sparsify one, and compare them side by side (table and JSON).

mod common;
use common::*;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn build_model_writes_the_torchvision_architectures() {
    let d = tmp("build");
    let out = d.join("m.clio");
    ok(&clio(&[
        "build-model",
        "mobilenet_v2",
        "--width",
        "0.5",
        "--input",
        "32",
        "--classes",
        "10",
        "--seed",
        "1",
        "-o",
        s(&out),
    ]));
    assert!(out.exists() && d.join("m.safetensors").exists());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("module @mobilenet_v2_w05_32 attributes {model = \"mobilenet_v2\", variant = \"cifar\", width = 0.5, input = 32, classes = 10, seed = 1}"), "{}", &text[..200]);
    // Loading checks every digest against the sidecar; the model runs through `stats`.
    let st = ok(&clio(&["stats", s(&out)]));
    assert!(st.contains("classifier.1") && st.contains("features.17.conv.2"), "{st}");
    // Same seed, same bytes.
    let again = d.join("again.clio");
    ok(&clio(&[
        "build-model",
        "mobilenet_v2",
        "--width",
        "0.5",
        "--input",
        "32",
        "--classes",
        "10",
        "--seed",
        "1",
        "-o",
        s(&again),
    ]));
    assert_eq!(std::fs::read(d.join("m.safetensors")).unwrap(), std::fs::read(d.join("again.safetensors")).unwrap());

    // ImageNet sizes: the torchvision counts.
    let st = ok(&clio(&["build-model", "resnet18"]));
    assert!(st.contains("%layer4.1.add = add("), "{}", &st[..300]);
    let r = d.join("r.clio");
    ok(&clio(&["build-model", "resnet18", "-o", s(&r)]));
    let st = ok(&clio(&["stats", s(&r)]));
    assert!(st.contains("total: 11689512 params (11.69M), 1814073344 MACs (1.81G)"), "{st}");
    let c = d.join("c.clio");
    ok(&clio(&["build-model", "chain", "--layers", "1000", "--classes", "10", "-o", s(&c)]));
    assert!(std::fs::read_to_string(&c).unwrap().contains("%layers.999.relu = relu"));

    let e = clio(&["build-model", "vgg16", "--input", "32", "--variant", "imagenet"]);
    assert_eq!(e.status.code(), Some(1));
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(err.starts_with("error: model builder: VGG-16 ImageNet variant") && err.lines().count() == 1, "{err}");
    let h = ok(&clio(&["build-model", "--help"]));
    for flag in ["--width", "--input", "--classes", "--seed", "--variant", "--layers", "--output"] {
        assert!(h.contains(flag), "build-model --help lacks {flag}");
    }
}

#[test]
fn stats_compare_reports_original_pruned_sparse_and_width_multiplied() {
    let d = tmp("compare");
    let full = d.join("full.clio");
    let half = d.join("half.clio");
    let pruned = d.join("pruned.clio");
    let sparse = d.join("sparse.clio");
    let args = ["--input", "32", "--classes", "10", "--seed", "3"];
    ok(&clio(&[&["build-model", "mobilenet_v2"][..], &args, &["-o", s(&full)]].concat()));
    ok(&clio(&[&["build-model", "mobilenet_v2", "--width", "0.5"][..], &args, &["-o", s(&half)]].concat()));
    ok(&clio(&["opt", s(&full), "-p", "prune{ratio=0.5,round-to=8}", "-o", s(&pruned)]));
    ok(&clio(&["opt", s(&full), "-p", "sparsify{sparsity=0.75}", "-o", s(&sparse)]));

    let out = ok(&clio(&["stats", s(&full), s(&pruned), s(&half), s(&sparse)]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["model", "params", "MACs", "weight", "bytes", "peak", "act", "bytes", "sparsity", "params", "%", "MACs", "%"]
    );
    let row = |i: usize| lines[i].split_whitespace().map(str::to_string).collect::<Vec<_>>();
    // The full CIFAR MobileNetV2 at 10 classes: torchvision's parameter count.
    let r = row(1);
    assert_eq!(r[0], s(&full));
    assert_eq!(r[1], "2236682");
    assert_eq!((r[5].as_str(), r[6].as_str(), r[7].as_str()), ("-", "100.0%", "100.0%"));
    // Pruned and width 0.5 are smaller in every total.
    for i in [2, 3] {
        let r = row(i);
        for (col, (x, y)) in r.iter().zip(row(1)).enumerate().take(5).skip(1) {
            let (a, b): (u64, u64) = (x.parse().unwrap(), y.parse().unwrap());
            assert!(a < b, "row {i} col {col}: {a} vs {b}\n{out}");
        }
        assert_eq!(r[5], "-");
    }
    // The sparse model keeps every parameter (zeros count) and reports 75% zeros.
    let r = row(4);
    assert_eq!((r[1].as_str(), r[5].as_str(), r[6].as_str()), ("2236682", "75.0%", "100.0%"));

    // JSON: one object per model, with ratios to the first.
    let j: serde_json::Value =
        serde_json::from_str(&ok(&clio(&["stats", "--compare", "--json", s(&full), s(&sparse)]))).unwrap();
    let models = j["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["params"], 2236682);
    assert!((models[1]["sparsity"].as_f64().unwrap() - 0.75).abs() < 1e-3, "{j}");
    assert_eq!(models[1]["params_ratio"], 1.0);
    assert!(
        models[0]["peak_activation_bytes"].as_u64().unwrap() > 0 && models[0]["weight_bytes"].as_u64().unwrap() > 0
    );

    // --layers: per-layer params and MACs side by side, matched by name.
    let out = ok(&clio(&["stats", "--compare", "--layers", s(&full), s(&pruned)]));
    let layer = out.lines().find(|l| l.starts_with("main/features.2.conv.0.0 ")).unwrap_or_else(|| panic!("{out}"));
    let cols: Vec<&str> = layer.split_whitespace().collect();
    assert_eq!(cols.len(), 5, "{layer}");
    assert_ne!(cols[1], cols[3], "{layer}");

    // A single sparse model: a zero-weight column and a sparsity line.
    let out = ok(&clio(&["stats", s(&sparse)]));
    assert!(out.lines().next().unwrap().ends_with("zero weights"), "{out}");
    assert!(out.contains("(75.0%)") && out.contains("conv/gemm weights are zero (7"), "{out}");
    let e = clio(&["stats", "--layers", s(&full)]);
    assert_eq!(e.status.code(), Some(1));
}
