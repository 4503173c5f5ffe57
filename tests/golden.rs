//! Golden tests: every `testdata/ir/*.clio` file names its pipeline in a `// RUN:` header and
//! its snapshot mode in `// MODE: output|diff`; the pipeline's result (or the before/after
//! diff, for rewrite passes) is snapshotted under `snapshots/`. Re-bless with
//! `INSTA_UPDATE=always cargo test --test golden` (or `cargo insta review`) after reviewing.

use clio::pass::PassManager;
use clio::text::{parse_module, print_module, ParseOptions, PrintOptions, WeightStyle};

fn header<'a>(src: &'a str, key: &str) -> Option<&'a str> {
    src.lines()
        .take_while(|l| l.starts_with("//"))
        .find_map(|l| l.strip_prefix("//")?.trim().strip_prefix(key))
        .map(str::trim)
}

fn unified_diff(before: &str, after: &str) -> String {
    similar::TextDiff::from_lines(before, after).unified_diff().context_radius(2).header("before", "after").to_string()
}

#[test]
fn golden_ir() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::glob!("../testdata/ir", "*.clio", |path| {
            let src = std::fs::read_to_string(path).unwrap();
            let pipeline = header(&src, "RUN:").unwrap_or_else(|| panic!("{}: no `// RUN:` header", path.display()));
            let mode = header(&src, "MODE:").unwrap_or("output");
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let mut m = parse_module(&src, &ParseOptions { file, ..Default::default() }).unwrap();
            let style = PrintOptions { weights: WeightStyle::InlineUpTo(16) };
            let before = print_module(&m, &style);
            let mut pm = PassManager::from_pipeline(&clio_passes::registry(), pipeline).unwrap();
            let report = pm.run(&mut m).unwrap();
            let after = print_module(&m, &style);
            let stats: Vec<String> = report
                .passes
                .iter()
                .flat_map(|p| p.stats.iter().map(move |(k, v)| format!("// stat {}.{k} = {v}", p.name)))
                .collect();
            let body = match mode {
                "diff" => unified_diff(&before, &after),
                _ => after,
            };
            insta::assert_snapshot!(format!("// pipeline: {pipeline}\n{}\n{body}", stats.join("\n")));
        });
    });
}
