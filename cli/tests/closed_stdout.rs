//! A report piped into a reader that stops early (`clio opt ... | head`) ends quietly: no panic
//! message, no error line, killed by SIGPIPE like other Unix tools.

mod common;
use common::*;
use std::process::{Command, Stdio};

#[test]
fn printing_into_a_closed_pipe_does_not_panic() {
    let model = root().join("testdata/models/mobilenet_v2_tiny.onnx");
    // Inline weights: far more output than a pipe buffers, so clio is still writing when the
    // reader has gone.
    let mut child = Command::new(env!("CARGO_BIN_EXE_clio"))
        .args(["opt", model.to_str().unwrap(), "-p", "dce", "--inline-weights"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.is_empty(), "stderr: {err}");
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(13), "ended by SIGPIPE: {:?}", out.status);
    }
}
