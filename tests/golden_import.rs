//! Golden snapshots of imported models: the IR that `clio opt MODEL` prints for every small
//! test model (weights as digests), so any change in import shows up in review.

use clio::import::{import_path, ImportOptions, InputShape};
use clio::text::{print_module, PrintOptions};

#[test]
fn imported_models() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::glob!("../testdata/models", "*.onnx", |path| {
            let x = clio::io::read_npy(&path.with_extension("input.npy")).unwrap();
            let opts = ImportOptions {
                input_shapes: vec![InputShape { name: None, shape: x.shape().to_vec() }],
                ..Default::default()
            };
            let m = import_path(path, &opts).unwrap();
            insta::assert_snapshot!(print_module(&m, &PrintOptions::default()));
        });
    });
}
