//! The tiny training configuration of the test suite: a small MobileNetV2 sliced at a cut, a few
//! hundred Fashion-MNIST images, one epoch. The loss of every head goes down, the heads share
//! their tied weights (one variable, trained by every head's loss), runs are deterministic for a
//! seed, and resuming from a checkpoint gives the same weights as an uninterrupted run.
//!
//! Needs Debian's `dataset-fashion-mnist` (installed by `.ci/run`). Without it the tests print a
//! note and pass, unless `CLIO_REQUIRE_DATASETS=1` (set by `.ci/run`) makes them fail.

use candle_core::{Device, Tensor};

// As in the `clio` binary: the system allocator returns freed activations to the kernel and
// page-faults them back in at every step.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clio::ir::Module;
use clio::models::{small_mobilenet_v2, SmallMobileNetV2Config};
use clio::pass::PassManager;
use clio_train::data::{load, Dataset, Split};
use clio_train::lower::Mode;
use clio_train::params::ParamStore;
use clio_train::trainer::{pixel_stats, TrainConfig};
use clio_train::{train, Objective, OptimizerKind, Schedule};

fn fashion(split: Split, n: usize) -> Option<Dataset> {
    match load("fashion-mnist", split) {
        Ok(d) => Some(d.take(n)),
        Err(e) if std::env::var("CLIO_REQUIRE_DATASETS").is_ok_and(|v| v == "1") => {
            panic!("CLIO_REQUIRE_DATASETS=1 but Fashion-MNIST is missing: {e}")
        }
        Err(e) => {
            eprintln!("skipping: {e} (apt-get install dataset-fashion-mnist)");
            None
        }
    }
}

/// Small MobileNetV2 (width 0.5) sliced after block 4 into heads of 4, 8 and 16 channels.
fn sliced() -> Module {
    let cfg = SmallMobileNetV2Config { width: 0.5, input: 28, in_channels: 1, classes: 10, seed: 11 };
    let mut m = small_mobilenet_v2(&cfg).unwrap();
    let mut pm =
        PassManager::from_pipeline(&clio_passes::registry(), "slice{cut=4,sizes=2:4:8,bandwidth=none}").unwrap();
    pm.run(&mut m).unwrap();
    m
}

fn config(epochs: usize, seed: u64) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 16,
        optimizer: OptimizerKind::Sgd { momentum: 0.9 },
        lr: 0.05,
        weight_decay: 5e-4,
        schedule: Schedule::Cosine { warmup: 2 },
        seed,
        ..TrainConfig::default()
    }
}

/// Per-head cross-entropy on `data` in evaluation mode.
fn head_losses(m: &Module, obj: &Objective, data: &Dataset) -> Vec<f64> {
    let norm = pixel_stats(data);
    let (x, y) = data.batch(&(0..data.count).collect::<Vec<_>>(), norm, None).unwrap();
    let x = Tensor::from_vec(x, (data.count, 1, 28, 28), &Device::Cpu).unwrap();
    let y = Tensor::from_vec(y, data.count, &Device::Cpu).unwrap();
    let mut params = ParamStore::from_module(m, &obj.graphs()).unwrap();
    let dev = m.graph(obj.device.as_ref().unwrap()).unwrap();
    let cut = clio_train::lower::forward(dev, &[x], &mut params, Mode::Eval).unwrap().remove(0);
    obj.heads
        .iter()
        .map(|h| {
            let g = m.graph(&h.graph).unwrap();
            let logits =
                clio_train::lower::forward(g, &[cut.narrow(1, 0, h.size).unwrap()], &mut params, Mode::Eval).unwrap();
            clio_train::lower::cross_entropy(&logits[0], &y).unwrap().to_scalar::<f32>().unwrap() as f64
        })
        .collect()
}

fn weight(m: &Module, name: &str) -> Vec<f32> {
    m.weight(name).unwrap_or_else(|| panic!("no weight {name}")).data().as_f32().unwrap().to_vec()
}

#[test]
fn one_epoch_lowers_every_heads_loss() {
    let (Some(train_set), Some(held_out)) = (fashion(Split::Train, 640), fashion(Split::Test, 256)) else { return };
    let mut m = sliced();
    let obj = Objective::from_module(&m).unwrap();
    assert_eq!(obj.heads.iter().map(|h| h.size).collect::<Vec<_>>(), vec![2, 4, 8]);
    let before = head_losses(&m, &obj, &held_out);
    let report = train(&mut m, &train_set, &obj, &config(1, 1)).unwrap();
    let after = head_losses(&m, &obj, &held_out);
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        eprintln!("head {}: held-out loss {b:.4} -> {a:.4}", obj.heads[i].size);
        assert!(a < &(b - 0.1), "head {}: held-out loss {b} -> {a}", obj.heads[i].size);
    }
    let s = &report.step_losses;
    assert_eq!(s.len(), 40);
    let (first, last) = (s[..10].iter().sum::<f64>() / 10.0, s[30..].iter().sum::<f64>() / 10.0);
    eprintln!("training loss {first:.4} -> {last:.4} in {:.1}s", report.seconds);
    assert!(last < first - 0.1, "training loss {first} -> {last}");
    clio::verify::verify_module(&m).unwrap();
}

#[test]
fn heads_share_their_tied_weights() {
    let Some(train_set) = fashion(Split::Train, 128) else { return };
    let original = sliced();
    let obj = Objective::from_module(&original).unwrap();
    let slice: serde_json::Value = match original.attrs.get("clio.slice") {
        Some(clio::ir::Attr::Str(s)) => serde_json::from_str(s).unwrap(),
        _ => panic!("no clio.slice"),
    };
    let names = |h: &serde_json::Value, k: &str| -> Vec<String> {
        h["weights"][k].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    let heads = slice["heads"].as_array().unwrap();
    let tied = names(&heads[0], "tied");
    assert!(!tied.is_empty());
    // Every head graph reads the tied weights themselves: one variable in the trainer.
    for h in &obj.heads {
        let g = original.graph(&h.graph).unwrap();
        for t in &tied {
            assert!(g.weight_node(t).is_some(), "@{} does not read tied weight {t}", h.graph);
        }
    }
    let params = ParamStore::from_module(&original, &obj.graphs()).unwrap();
    let tied_vars = params.vars().filter(|(n, _)| tied.contains(n)).count();
    assert_eq!(tied_vars, tied.iter().filter(|n| params.is_trainable(n)).count());
    // Training only the smallest head moves the device and the tied weights, and no other
    // head's own weights; training all heads moves every head's own weights.
    let mut only = original.clone();
    train(&mut only, &train_set, &obj.only(2).unwrap(), &config(1, 3)).unwrap();
    let changed = |m: &Module, n: &str| weight(m, n) != weight(&original, n);
    let trainable_tied: Vec<&String> = tied.iter().filter(|n| params.is_trainable(n)).collect();
    // Filters and linear weights all move. (A batch norm's beta whose output only reaches later
    // layers through convs followed by batch norms has an exactly zero gradient: the next batch
    // norm subtracts any per-channel shift.)
    let filters: Vec<&&String> =
        trainable_tied.iter().filter(|n| original.weight(n).unwrap().data().shape().len() >= 2).collect();
    assert!(filters.len() >= 5, "{filters:?}");
    let unchanged: Vec<&&&String> = filters.iter().filter(|n| !changed(&only, n)).collect();
    assert!(unchanged.is_empty(), "tied weights not trained by head s2: {unchanged:?}");
    for h in &heads[1..] {
        for n in names(h, "per_slice") {
            assert!(!changed(&only, &n), "{n} changed although its head was not trained");
        }
    }
    for n in names(&heads[0], "per_slice").iter().filter(|n| params.is_trainable(n)) {
        assert!(changed(&only, n), "{n} of the trained head did not change");
    }
    let mut all = original.clone();
    train(&mut all, &train_set, &obj, &config(1, 3)).unwrap();
    for h in heads {
        for n in names(h, "per_slice").iter().filter(|n| params.is_trainable(n)) {
            assert!(changed(&all, n), "{n} did not change");
        }
    }
    // Each head keeps its own running statistics for the tied batch norms (slice's default
    // `bn-stats=per-head`): every head's copies move, each to its own values.
    let stats = |h: &serde_json::Value| -> Vec<String> {
        names(h, "per_slice").into_iter().filter(|n| !params.is_trainable(n) && !tied.contains(n)).collect()
    };
    let (first, last) = (stats(&heads[0]), stats(&heads[heads.len() - 1]));
    assert!(first.len() >= 4 && first.len() == last.len(), "{first:?} / {last:?}");
    for (a, b) in first.iter().zip(&last) {
        assert!(changed(&all, a) && changed(&all, b), "{a} or {b} did not update");
        assert_ne!(weight(&all, a), weight(&all, b), "{a} and {b} ended equal");
    }
}

#[test]
fn seeded_runs_repeat_and_checkpoints_resume_exactly() {
    let Some(train_set) = fashion(Split::Train, 96) else { return };
    let obj = Objective::from_module(&sliced()).unwrap();
    let run = |seed: u64| {
        let mut m = sliced();
        let r = train(&mut m, &train_set, &obj, &config(2, seed)).unwrap();
        (m, r.step_losses)
    };
    let (a, la) = run(5);
    let (b, lb) = run(5);
    let (_, lc) = run(6);
    assert_eq!(la, lb, "same seed, different losses");
    assert_ne!(la, lc, "the seed does not change the batch order");
    let dir = std::env::temp_dir().join(format!("clio-train-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut first = sliced();
    let part = TrainConfig { checkpoint_dir: Some(dir.clone()), stop_after: Some(1), ..config(2, 5) };
    let r = train(&mut first, &train_set, &obj, &part).unwrap();
    assert_eq!(r.step_losses[..], la[..la.len() / 2], "the first part differs from the first epoch");
    assert!(dir.join("latest.json").exists() && dir.join("epoch-1.clio").exists());
    let mut resumed = sliced();
    let r = train(&mut resumed, &train_set, &obj, &TrainConfig { resume: Some(dir.clone()), ..config(2, 5) }).unwrap();
    assert_eq!(r.epochs.len(), 1, "resuming after epoch 1 of 2 runs one epoch");
    assert_eq!(r.step_losses[..], la[la.len() / 2..], "resumed losses differ");
    for name in a.weights().keys() {
        assert_eq!(weight(&resumed, name), weight(&a, name), "{name} differs after resuming");
        assert_eq!(weight(&b, name), weight(&a, name));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
