//! `clio cuts`, `clio plan`, `clio simulate` and `clio opt --target ... -p slice{...}` end to
//! end on the bundled tiny MobileNetV2: the cut table (golden), the plan file, a trace replay
//! with SVG output, and one-line errors without partial outputs.

mod common;
use common::*;

const MODEL: &str = "testdata/models/mobilenet_v2_tiny.onnx";

#[test]
fn cut_tables_are_golden() {
    for (model, name) in [(MODEL, "cuts_mobilenet_v2_tiny"), ("testdata/models/resnet_tiny.onnx", "cuts_resnet_tiny")] {
        let table = ok(&clio(&["cuts", model, "--target", "gap8", "--link", "ble"]));
        snapshot(name, None, table);
    }
    // JSON: the same cuts, with ids and per-slice bytes.
    let json: serde_json::Value = serde_json::from_str(&ok(&clio(&["cuts", MODEL, "--json"]))).unwrap();
    let cuts = json["cuts"].as_array().unwrap();
    assert!(cuts.len() >= 5);
    for (i, c) in cuts.iter().enumerate() {
        assert_eq!(c["k"].as_u64(), Some(i as u64));
        let ch = c["channels"].as_u64().unwrap();
        assert_eq!(c["bytes_q8"].as_u64(), Some(ch * c["bytes_per_channel_q8"].as_u64().unwrap()));
        assert_eq!(c["bytes_f32"].as_u64(), Some(4 * c["bytes_q8"].as_u64().unwrap()));
    }
}

#[test]
fn plan_then_simulate_a_trace() {
    let d = tmp("plan");
    let plan = d.join("plan.json");
    let table = ok(&clio(&[
        "plan",
        MODEL,
        "--target",
        "gap8",
        "--link",
        "ble",
        "--latency-ms",
        "300",
        "--bandwidth",
        "50k:2M",
        "-o",
        plan.to_str().unwrap(),
    ]));
    assert!(table.contains("<- chosen"), "{table}");
    let p: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let chosen: Vec<u64> = p["chosen"].as_array().unwrap().iter().map(|k| k.as_u64().unwrap()).collect();
    assert!(!chosen.is_empty());
    // A profile: accuracy grows with the channels sent, and with later cuts.
    let mut csv = String::from("cut,channels,accuracy\n");
    for c in p["cuts"].as_array().unwrap() {
        let k = c["k"].as_u64().unwrap();
        let full = c["shape"][1].as_u64().unwrap();
        for s in c["slices"].as_array().unwrap() {
            let ch = s["channels"].as_u64().unwrap();
            csv += &format!("{k},{ch},{:.4}\n", 0.5 + 0.3 * ch as f64 / full as f64 + 0.01 * k as f64);
        }
    }
    let profile = d.join("profile.csv");
    std::fs::write(&profile, csv).unwrap();
    // `clio simulate` on the plan, the profile and `trace`, with `extra` arguments.
    let simulate_on = |trace: &str, extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--plan",
            plan.to_str().unwrap(),
            "--profile",
            profile.to_str().unwrap(),
            "--trace",
            trace,
        ];
        args.extend_from_slice(extra);
        clio(&args)
    };
    // ... on the bus trace, scaled to an eighth.
    let simulate_with = |extra: &[&str]| {
        let mut args = vec!["--scale", "0.125"];
        args.extend_from_slice(extra);
        simulate_on("testdata/traces/norway_bus_1", &args)
    };
    let svg = d.join("svg");
    let out = ok(&simulate_with(&["--svg-dir", svg.to_str().unwrap(), "--json"]));
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = r.to_string();
    for strategy in ["fixed", "adaptive", "oracle"] {
        assert!(text.contains(strategy), "{strategy} missing: {text}");
    }
    // --deploy replaces the plan's chosen cuts: one deployed cut pins adaptive and the oracle
    // to it; a cut the plan or the profile lacks is a one-line error.
    let feasible: Vec<u64> = p["cuts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["range_bps"].is_null())
        .map(|c| c["k"].as_u64().unwrap())
        .collect();
    let pinned = *feasible.iter().find(|k| !chosen.contains(k)).unwrap_or(&feasible[0]);
    let simulate_deploying = |deploy: &str| simulate_with(&["--deploy", deploy, "--json"]);
    let r: serde_json::Value = serde_json::from_str(&ok(&simulate_deploying(&pinned.to_string()))).unwrap();
    for s in r[0]["results"].as_array().unwrap().iter().filter(|s| s["strategy"] != "fixed") {
        assert_eq!(s["cuts_used"], serde_json::json!([pinned]), "{s}");
    }
    let all_feasible = feasible.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(",");
    let r: serde_json::Value = serde_json::from_str(&ok(&simulate_deploying(&all_feasible))).unwrap();
    for s in r[0]["results"].as_array().unwrap() {
        for k in s["cuts_used"].as_array().unwrap() {
            assert!(feasible.contains(&k.as_u64().unwrap()), "{s}");
        }
    }
    one_line_error(&simulate_deploying("999"), "--deploy 999");
    let with_estimator = |e: &str| simulate_with(&["--estimator", e]);
    assert!(ok(&with_estimator("distribution")).contains("adaptive"));
    one_line_error(&with_estimator("median"), "--estimator `median`");
    let svgs: Vec<_> = std::fs::read_dir(&svg).unwrap().filter_map(|e| e.ok()).collect();
    assert!(svgs.len() >= 2, "{svgs:?}");
    for e in svgs {
        assert!(std::fs::read_to_string(e.path()).unwrap().starts_with("<svg"));
    }
    // A malformed trace: one line naming the file and line; no SVG directory written.
    let bad = d.join("bad_trace");
    std::fs::write(&bad, "0 1.0\n1 fast\n").unwrap();
    let svg2 = d.join("svg2");
    one_line_error(&simulate_on(bad.to_str().unwrap(), &["--svg-dir", svg2.to_str().unwrap()]), "bad_trace:2");
    assert!(!svg2.exists());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn slice_through_opt_with_a_target() {
    let d = tmp("slice");
    let out = d.join("sliced.clio");
    let objective = d.join("objective.json");
    ok(&clio(&[
        "opt",
        MODEL,
        "--target",
        "gap8",
        "--link",
        "ble",
        "-p",
        &format!("fuse-bn,slice{{cut=3,step=4,latency-ms=300,objective={}}}", objective.display()),
        "-o",
        out.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("graph @device(") && text.contains("graph @cloud.s4("), "{}", &text[..400]);
    let o: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&objective).unwrap()).unwrap();
    assert!(o["radio_budget_s"].as_f64().unwrap() > 0.0);
    // The sliced module runs: the stats command loads it (weights checked against digests).
    let st = ok(&clio(&["stats", out.to_str().unwrap()]));
    assert!(st.contains("cloud.s4/"), "{st}");
    // Without a target or radio-ms the objective cannot be computed: one line, no output.
    let out2 = d.join("none.clio");
    one_line_error(&clio(&["opt", MODEL, "-p", "slice{cut=3}", "-o", out2.to_str().unwrap()]), "radio budget");
    assert!(!out2.exists());
    std::fs::remove_dir_all(&d).unwrap();
}
