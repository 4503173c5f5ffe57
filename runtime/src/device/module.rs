//! The generated device C module as a host shared library: `clio compile --target stm32f7`
//! writes `DIR/<prefix>.c` and the CMSIS-NN host shims in `DIR/cmsis_nn/`; [`DeviceModule::build`]
//! compiles them with the system C compiler into a `.so`, loads it, resolves `<prefix>_init` and
//! `<prefix>_invoke`, and checks `init`. Sizes and the input quantization come from
//! `DIR/manifest.json`.
//!
//! Every module gets its own `.so` file (a fresh name per build) linked with `-Bsymbolic` and
//! opened `RTLD_LOCAL`, so several modules with the same symbol names (one per cut) coexist.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why a device module could not be built, loaded or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModuleError {
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// `manifest.json` lacks a field or is not JSON.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The C compiler failed.
    #[error("cc failed on {source_file}: {stderr}")]
    Compile {
        /// The device source.
        source_file: PathBuf,
        /// The first lines of the compiler's standard error.
        stderr: String,
    },
    /// The shared library could not be loaded.
    #[error("cannot load {library}: {message}")]
    Load {
        /// The library.
        library: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// A symbol is missing from the library.
    #[error("{library}: no symbol `{symbol}`")]
    Symbol {
        /// The library.
        library: PathBuf,
        /// The missing symbol.
        symbol: String,
    },
    /// `init` or `invoke` returned non-zero.
    #[error("{library}: {function} returned {code}")]
    Failed {
        /// The library.
        library: PathBuf,
        /// `init` or `invoke`.
        function: String,
        /// Its return value.
        code: i32,
    },
    /// The input has the wrong size.
    #[error("input has {got} values, the module takes {expected}")]
    InputSize {
        /// Bytes the module takes.
        expected: usize,
        /// Values given.
        got: usize,
    },
}

/// Layout and quantization of the module's input (from the manifest).
#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    /// IR shape (NCHW).
    pub shape: Vec<usize>,
    /// Affine scale.
    pub scale: f32,
    /// Affine zero point.
    pub zero_point: i32,
    /// Bytes at the C interface (int8 NHWC).
    pub bytes: usize,
}

impl InputSpec {
    /// Quantizes a float image in NCHW order to the int8 NHWC layout `invoke` takes.
    pub fn quantize(&self, nchw: &[f32]) -> Result<Vec<i8>, ModuleError> {
        if nchw.len() != self.bytes {
            return Err(ModuleError::InputSize { expected: self.bytes, got: nchw.len() });
        }
        let dims = |i: usize| self.shape.get(i).copied().unwrap_or(1);
        let (n, c, h, w) =
            if self.shape.len() == 4 { (dims(0), dims(1), dims(2), dims(3)) } else { (1, 1, 1, nchw.len()) };
        let (s, z) = (self.scale as f64, self.zero_point as f64);
        let mut out = vec![0i8; nchw.len()];
        for b in 0..n {
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        let v = nchw[((b * c + ch) * h + y) * w + x] as f64;
                        out[((b * h + y) * w + x) * c + ch] = ((v / s).round() + z).clamp(-128.0, 127.0) as i8;
                    }
                }
            }
        }
        Ok(out)
    }
}

type InitFn = unsafe extern "C" fn() -> i32;
type InvokeFn = unsafe extern "C" fn(*const i8, *mut u8) -> i32;

/// A compiled and loaded device module.
pub struct DeviceModule {
    library_path: PathBuf,
    invoke: InvokeFn,
    input: InputSpec,
    output_bytes: usize,
    // Keeps the code `invoke` points into mapped; dropped last.
    _library: libloading::Library,
}

impl std::fmt::Debug for DeviceModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceModule({})", self.library_path.display())
    }
}

/// A process-wide counter making every built library's file name unique.
static BUILDS: AtomicUsize = AtomicUsize::new(0);

fn io(path: &Path, e: impl std::fmt::Display) -> ModuleError {
    ModuleError::Io { path: path.to_path_buf(), message: e.to_string() }
}

/// What the module needs from `manifest.json`.
struct Manifest {
    source: String,
    input: InputSpec,
    output_bytes: usize,
}

fn read_manifest(path: &Path) -> Result<Manifest, ModuleError> {
    let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
    let bad = |m: &str| ModuleError::Manifest { path: path.to_path_buf(), message: m.to_string() };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&format!("not JSON: {e}")))?;
    let dev = &v["device"];
    let source = dev["source"].as_str().ok_or_else(|| bad("no device.source"))?.to_string();
    let inp = &dev["input"];
    let shape = inp["shape"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect::<Vec<_>>())
        .ok_or_else(|| bad("no device.input.shape"))?;
    let input = InputSpec {
        scale: inp["scale"].as_f64().ok_or_else(|| bad("no device.input.scale"))? as f32,
        zero_point: inp["zero_point"].as_i64().ok_or_else(|| bad("no device.input.zero_point"))? as i32,
        bytes: inp["bytes"].as_u64().ok_or_else(|| bad("no device.input.bytes"))? as usize,
        shape,
    };
    let output_bytes = dev["output"]["bytes"].as_u64().ok_or_else(|| bad("no device.output.bytes"))? as usize;
    Ok(Manifest { source, input, output_bytes })
}

impl DeviceModule {
    /// Compiles `compile_dir` (the output of `clio compile --target stm32f7`) into a shared
    /// library under `work_dir`, loads it and runs `init`.
    pub fn build(compile_dir: &Path, work_dir: &Path) -> Result<DeviceModule, ModuleError> {
        let m = read_manifest(&compile_dir.join("manifest.json"))?;
        let source = compile_dir.join(&m.source);
        let prefix = m.source.trim_end_matches(".c").to_string();
        let shims = compile_dir.join("cmsis_nn");
        let mut sources = vec![source.clone()];
        let entries = std::fs::read_dir(&shims).map_err(|e| io(&shims, e))?;
        for e in entries {
            let p = e.map_err(|e| io(&shims, e))?.path();
            if p.extension().is_some_and(|x| x == "c") {
                sources.push(p);
            }
        }
        sources[1..].sort();
        std::fs::create_dir_all(work_dir).map_err(|e| io(work_dir, e))?;
        let n = BUILDS.fetch_add(1, Ordering::Relaxed);
        let library_path = work_dir.join(format!("lib{prefix}-{}-{n}.so", std::process::id()));
        let out = Command::new("cc")
            .args(["-std=c99", "-O2", "-shared", "-fPIC", "-Wl,-Bsymbolic"])
            .arg("-I")
            .arg(compile_dir)
            .arg("-I")
            .arg(&shims)
            .args(&sources)
            .arg("-o")
            .arg(&library_path)
            .arg("-lm")
            .output()
            .map_err(|e| ModuleError::Compile { source_file: source.clone(), stderr: format!("cannot run cc: {e}") })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first: Vec<&str> = stderr.lines().take(5).collect();
            return Err(ModuleError::Compile { source_file: source, stderr: first.join(" | ") });
        }
        Self::load(&library_path, &prefix, m.input, m.output_bytes)
    }

    fn load(path: &Path, prefix: &str, input: InputSpec, output_bytes: usize) -> Result<DeviceModule, ModuleError> {
        let load_err = |e: libloading::Error| ModuleError::Load { library: path.to_path_buf(), message: e.to_string() };
        // SAFETY: the library is clio-generated C with no initialisers that run on load.
        let library = unsafe { libloading::Library::new(path) }.map_err(load_err)?;
        let symbol = |name: &str| ModuleError::Symbol { library: path.to_path_buf(), symbol: name.to_string() };
        let init_name = format!("{prefix}_init");
        let invoke_name = format!("{prefix}_invoke");
        // SAFETY: the generated header declares `int32_t PREFIX_init(void)` and
        // `int32_t PREFIX_invoke(const int8_t *, uint8_t *)`, the types named here.
        let (init, invoke) = unsafe {
            let init: InitFn = *library.get::<InitFn>(init_name.as_bytes()).map_err(|_| symbol(&init_name))?;
            let invoke: InvokeFn =
                *library.get::<InvokeFn>(invoke_name.as_bytes()).map_err(|_| symbol(&invoke_name))?;
            (init, invoke)
        };
        // SAFETY: init takes no arguments and only checks buffer sizes.
        let code = unsafe { init() };
        if code != 0 {
            return Err(ModuleError::Failed { library: path.to_path_buf(), function: init_name, code });
        }
        Ok(DeviceModule { library_path: path.to_path_buf(), invoke, input, output_bytes, _library: library })
    }

    /// The input the module takes.
    pub fn input(&self) -> &InputSpec {
        &self.input
    }

    /// Bytes of the wire message `invoke` writes.
    pub fn output_bytes(&self) -> usize {
        self.output_bytes
    }

    /// The loaded library file.
    pub fn library_path(&self) -> &Path {
        &self.library_path
    }

    /// Runs the device part on an int8 NHWC input; returns the wire message (header + every
    /// channel). `&mut self`: the module's arena is static, one call at a time.
    pub fn invoke(&mut self, input: &[i8]) -> Result<Vec<u8>, ModuleError> {
        if input.len() != self.input.bytes {
            return Err(ModuleError::InputSize { expected: self.input.bytes, got: input.len() });
        }
        let mut out = vec![0u8; self.output_bytes];
        // SAFETY: `input` holds INPUT_BYTES values and `out` OUTPUT_BYTES bytes, as the generated
        // function requires; calls are serialised by `&mut self`.
        let code = unsafe { (self.invoke)(input.as_ptr(), out.as_mut_ptr()) };
        if code != 0 {
            return Err(ModuleError::Failed { library: self.library_path.clone(), function: "invoke".into(), code });
        }
        Ok(out)
    }
}
