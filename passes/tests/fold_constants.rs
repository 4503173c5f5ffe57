//! `fold-constants`: numerics and idempotence on the golden inputs and the real test models.

mod canonicalize_support;

use canonicalize_support::*;

#[test]
fn golden_inputs_numerics_and_idempotence() {
    let files = files(&root().join("testdata/ir"), "fold_constants_", "clio");
    assert!(files.len() >= 2, "fold-constants golden files: {files:?}");
    for path in files {
        let what = path.file_name().unwrap().to_string_lossy().into_owned();
        let pipeline = run_header(&std::fs::read_to_string(&path).unwrap());
        let before = parse_file(&path);
        let mut after = before.clone();
        let r = run_pipeline(&mut after, &pipeline);
        assert!(r.passes[0].stats["folded"] > 0, "{what}");
        for seed in 1..=3 {
            let inputs = random_inputs(&before, seed, 4.0);
            assert_close(&what, &eval(&before, &inputs), &eval(&after, &inputs), 0.0);
        }
        let once = printed(&after);
        let r = run_pipeline(&mut after, &pipeline);
        assert_eq!(r.passes[0].stats["folded"], 0, "{what}");
        assert_eq!(once, printed(&after), "{what}: a second `{pipeline}` changed the IR");
    }
}

/// On the models (after fuse-bn), folding changes no output and a second run finds nothing.
#[test]
fn models_numerics_and_idempotence() {
    for path in files(&root().join("testdata/models"), "", "onnx") {
        let what = path.file_name().unwrap().to_string_lossy().into_owned();
        let original = import_model(&path);
        let inputs = random_inputs(&original, 5, 1.0);
        let mut m = original.clone();
        run_pipeline(&mut m, "fuse-bn,fold-constants,canonicalize,dce");
        assert_close(&what, &eval(&original, &inputs), &eval(&m, &inputs), 1e-5);
        let once = printed(&m);
        let r = run_pipeline(&mut m, "fold-constants");
        assert_eq!(r.passes[0].stats["folded"], 0, "{what}");
        assert_eq!(once, printed(&m), "{what}");
    }
}

/// Folding a node whose result is a graph output makes the output a weight read.
#[test]
fn folded_output_reads_a_weight() {
    let src = "module @o {\n  weight @a : tensor<2xf32> = dense<[1.0, -2.0]>\n\
        graph @main(%x: tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>) {\n\
        %r = relu(@a) : tensor<2xf32>\n %y = add(%x, %r) : tensor<2xf32>\n return %y, %r } }";
    let m0 = clio::text::parse_module(src, &Default::default()).unwrap();
    let mut m = m0.clone();
    let r = run_pipeline(&mut m, "fold-constants");
    assert_eq!(r.passes[0].stats["folded"], 1);
    assert_eq!(r.passes[0].stats["weights-removed"], 1);
    let inputs = random_inputs(&m0, 1, 2.0);
    assert_close("output", &eval(&m0, &inputs), &eval(&m, &inputs), 0.0);
    assert!(m.weight("r").is_some() && m.weight("a").is_none(), "{}", printed(&m));
}
