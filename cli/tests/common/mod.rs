//! Helpers the CLI test binaries share: running the `clio` binary, scratch directories, output
//! checks and snapshot settings.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the `clio` binary's working directory in these tests).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `clio ARGS` from the repository root.
pub fn clio(args: &[&str]) -> Output {
    clio_in(&root(), args)
}

/// Runs `clio ARGS` from `dir`.
pub fn clio_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clio")).args(args).current_dir(dir).output().expect("run clio")
}

/// A fresh scratch directory `clio-test-<name>-<pid>` under the system temp dir.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("clio-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A success: returns standard output.
pub fn ok(o: &Output) -> String {
    assert!(o.status.success(), "stderr: {}", stderr(o));
    stdout(o)
}

/// A failure: exit status 1 and exactly one line on stderr starting with `error: ` and
/// containing `needle`.
pub fn one_line_error(o: &Output, needle: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {e}");
    assert_eq!(e.lines().count(), 1, "one line expected: {e}");
    assert!(e.starts_with("error: ") && e.contains(needle), "wanted `{needle}` in: {e}");
}

/// Asserts `text` against `snapshots/<name>.snap` (`suffix` adds `@<suffix>`).
pub fn snapshot(name: &str, suffix: Option<&str>, text: String) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    if let Some(s) = suffix {
        settings.set_snapshot_suffix(s);
    }
    settings.bind(|| insta::assert_snapshot!(name, text));
}
