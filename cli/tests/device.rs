//! `clio simulate` replaying exactly the frames a device run covers (`--frames`, `--start-s`,
//! per-frame JSON, protocol `--framing`); `clio device`'s one-line argument errors; and `clio
//! device` against a real `clio serve` on loopback (a compiled small MobileNetV2 cut, real
//! Fashion-MNIST images, a shaped HSDPA trace). The switching path runs in
//! runtime/tests/device_program.rs; the four-device demo is scripts/results/demo.sh.

mod common;
use common::*;

const MODEL: &str = "testdata/models/mobilenet_v2_tiny.onnx";

/// A plan for the tiny MobileNetV2 over BLE and a profile growing with channels and cut.
fn plan_and_profile(d: &std::path::Path) -> (String, String) {
    let plan = d.join("plan.json");
    ok(&clio(&[
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
    let p: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
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
    (plan.to_str().unwrap().to_string(), profile.to_str().unwrap().to_string())
}

fn adaptive_frames(out: &str) -> Vec<serde_json::Value> {
    let r: serde_json::Value = serde_json::from_str(out).unwrap();
    let a = r[0]["results"].as_array().unwrap().iter().find(|s| s["strategy"] == "adaptive").unwrap();
    a["frame_log"].as_array().unwrap().clone()
}

#[test]
fn simulate_replays_the_requested_frames_per_frame() {
    let d = tmp("device-sim");
    let (plan, profile) = plan_and_profile(&d);
    let base = [
        "simulate",
        "--plan",
        &plan,
        "--profile",
        &profile,
        "--trace",
        "testdata/traces/norway_bus_1",
        "--scale",
        "0.02",
        "--window-s",
        "10",
        "--frames",
        "7",
        "--start-s",
        "5",
        "--json",
        "--per-frame",
    ];
    let plain = adaptive_frames(&ok(&clio(&base)));
    assert_eq!(plain.len(), 7);
    for (i, f) in plain.iter().enumerate() {
        assert!((f["t"].as_f64().unwrap() - (5.0 + i as f64)).abs() < 1e-9, "{f}");
        for key in ["cut", "channels", "accuracy", "estimate_bps", "actual_bps", "planned_channels", "latency_s"] {
            assert!(f.get(key).is_some(), "{key} missing in {f}");
        }
        assert!(f["latency_s"].as_f64().unwrap() <= 0.3 + 1e-9);
    }
    // Counting the protocol's bytes can only lower what arrives, never raise it.
    let mut framed_args = base.to_vec();
    framed_args.extend(["--framing", "57:17"]);
    let framed = adaptive_frames(&ok(&clio(&framed_args)));
    assert_eq!(framed.len(), 7);
    let sum = |v: &[serde_json::Value]| v.iter().map(|f| f["channels"].as_u64().unwrap()).sum::<u64>();
    assert!(sum(&framed) <= sum(&plain), "{} > {}", sum(&framed), sum(&plain));
    // Without --per-frame the summary has no frame log.
    let summary = ok(&clio(&base[..base.len() - 1]));
    assert!(!summary.contains("frame_log"));
    let mut bad = base.to_vec();
    bad.extend(["--framing", "57"]);
    one_line_error(&clio(&bad), "--framing `57`");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn device_argument_errors_are_one_line() {
    let d = tmp("device-args");
    let (plan, profile) = plan_and_profile(&d);
    let run_with = |deploy: &str, extra: &[&str]| {
        let mut args = vec![
            "device",
            "--server",
            "127.0.0.1:9",
            "--plan",
            &plan,
            "--profile",
            &profile,
            "--deploy",
            deploy,
            "--trace",
            "testdata/traces/norway_bus_1",
        ];
        args.extend_from_slice(extra);
        clio(&args)
    };
    let run = |deploy: &str| run_with(deploy, &[]);
    one_line_error(&run("nine"), "--deploy `nine`: expected K=DIR");
    one_line_error(&run("x=dir"), "`x` is not a cut index");
    one_line_error(&run("99=dir"), "the plan has no cut 99");
    // A cut the plan has but whose directory holds no compiled module.
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    one_line_error(&run(&format!("1={}", empty.display())), "manifest.json");
    let bad_estimator = run_with("1=dir", &["--estimator", "median"]);
    one_line_error(&bad_estimator, "--estimator `median`");
    std::fs::remove_dir_all(&d).unwrap();
}

fn have_data() -> bool {
    let present = std::path::Path::new("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").exists();
    if !present && std::env::var("CLIO_REQUIRE_DATASETS").is_ok_and(|v| v == "1") {
        panic!("CLIO_REQUIRE_DATASETS=1 but /usr/share/datasets/fashion-mnist is missing");
    }
    if !present {
        eprintln!("skipping: Fashion-MNIST missing (apt-get install dataset-fashion-mnist)");
    }
    present
}

/// Stops the server (SIGTERM) when the test ends, whatever happens.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

#[test]
fn device_runs_against_clio_serve() {
    if !have_data() {
        return;
    }
    let d = tmp("device-serve");
    let p = |name: &str| d.join(name).to_str().unwrap().to_string();
    // An untrained small MobileNetV2 sliced at cut 4 (8 channels, slices 2:4:8), compiled for
    // STM32F7: the device program needs no accuracy, only a real device part and cloud heads.
    ok(&clio(&["build-model", "mobilenet_v2_small", "--width", "0.25", "-o", &p("base.clio")]));
    ok(&clio(&[
        "plan",
        &p("base.clio"),
        "--latency-ms",
        "100",
        "--bandwidth",
        "20k:500k",
        "--link",
        "ble",
        "--target",
        "gap8",
        "-o",
        &p("plan.json"),
    ]));
    ok(&clio(&["opt", &p("base.clio"), "-p", "slice{cut=4,sizes=2:4:8,bandwidth=none}", "-o", &p("cut4.clio")]));
    ok(&clio(&[
        "compile",
        &p("cut4.clio"),
        "--target",
        "stm32f7",
        "--pipeline",
        "fuse-bn,quantize{scheme=int8,calib=random:1,graph=device}",
        "-o",
        &p("cut4.stm32f7"),
    ]));
    std::fs::write(
        d.join("profile.json"),
        r#"{"entries": [{"cut": 4, "channels": 2, "accuracy": 0.5}, {"cut": 4, "channels": 4, "accuracy": 0.6},
            {"cut": 4, "channels": 8, "accuracy": 0.7}]}"#,
    )
    .unwrap();
    // The server's stdout goes to a file (kept open for its shutdown summary).
    let log_out = std::fs::File::create(d.join("serve.out")).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_clio"))
        .args(["serve", &p("cut4.stm32f7"), "--listen", "127.0.0.1:0"])
        .stdout(log_out)
        .spawn()
        .unwrap();
    let server = Server(child);
    let mut line = String::new();
    for _ in 0..600 {
        line = std::fs::read_to_string(d.join("serve.out")).unwrap().lines().next().unwrap_or("").to_string();
        if line.starts_with("listening on ") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let addr = line.strip_prefix("listening on ").unwrap().split_whitespace().next().unwrap().to_string();
    let out = ok(&clio(&[
        "device",
        "--server",
        &addr,
        "--plan",
        &p("plan.json"),
        "--profile",
        &p("profile.json"),
        "--deploy",
        &format!("4={}", p("cut4.stm32f7")),
        "--trace",
        "testdata/traces/norway_bus_1",
        "--scale",
        "0.05",
        "--frames",
        "4",
        "--period-s",
        "0.2",
        "--normalize",
        "0.2860:0.3530",
        "--log",
        &p("log.jsonl"),
        "--json",
    ]));
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["frames"], 4, "{summary}");
    assert_eq!(summary["switches"], 0);
    assert_eq!(summary["framing"]["group_bytes"], 17);
    let log: Vec<serde_json::Value> = std::fs::read_to_string(d.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(log.len(), 8);
    for (i, pair) in log.chunks(2).enumerate() {
        assert_eq!((pair[0]["event"].as_str(), pair[0]["frame"].as_u64()), (Some("decision"), Some(i as u64)));
        let f = &pair[1];
        assert_eq!(f["event"], "frame");
        assert_eq!(f["cut"], 4);
        // The server received what the device sent, and ran the widest head those cover.
        let (sent, received, used) =
            (f["sent"].as_u64().unwrap(), f["received"].as_u64().unwrap(), f["used"].as_u64().unwrap());
        assert_eq!(sent, received, "{f}");
        let widest = [8u64, 4, 2].into_iter().find(|h| *h <= received).unwrap_or(0);
        assert_eq!(used, widest, "{f}");
        assert!((0..10).contains(&f["label"].as_i64().unwrap()));
        assert_eq!(f["miss"].as_bool().unwrap(), used == 0);
        assert!(f["latency_ms"].as_f64().unwrap() > 0.0);
    }
    // SIGTERM: the server shuts down and reports the four requests.
    drop(server);
    let served = std::fs::read_to_string(d.join("serve.out")).unwrap();
    assert!(served.contains("served 4 requests"), "{served}");
    std::fs::remove_dir_all(&d).unwrap();
}
