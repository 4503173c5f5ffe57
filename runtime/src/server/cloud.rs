//! The cloud side's model: every slice head of one or more cut points, shared read-only by the
//! connection threads.
//!
//! A cloud part is what `clio compile` writes (`DIR/cloud.clio`) for a module made by the
//! `slice` pass: its heads `@cloud.s<i>` take the first `i` channels of the cut tensor (integer,
//! as the device transmits it) and its module attribute `clio.slice` names the cut index `k` and
//! the heads. A plain partition's cloud part (`@cloud`, no slicing) is served as one head that
//! needs every channel, at the cut its `clio compile` directory names. [`CloudModel::run`] decodes the channels that arrived (clio's wire format) and runs
//! the widest head they cover.

use clio::ir::{DType, Module, Quant};
use clio::quant::wire::{self, Header};
use clio::Limits;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why a cloud part cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloudError {
    /// The module file could not be read, parsed or verified.
    #[error("{path}: {message}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The module is not a sliced cloud part (no `clio.slice`, a head missing or mistyped).
    #[error("{path}: {message}")]
    NotSliced {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Two cloud parts serve the same cut.
    #[error("{path}: cut {cut} is already served by {other}")]
    DuplicateCut {
        /// The second file.
        path: PathBuf,
        /// The cut index.
        cut: u32,
        /// The first file.
        other: PathBuf,
    },
    /// No cloud part given.
    #[error("no cloud part given")]
    Empty,
}

/// Why a request cannot be run (the server maps these to error codes).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The cut is not served.
    #[error("cut {0} is not served")]
    UnknownCut(u32),
    /// The wire header is invalid or does not match the cut tensor the heads expect.
    #[error("{0}")]
    BadTensor(String),
    /// The head failed (a server-side problem).
    #[error("head @{graph}: {message}")]
    Internal {
        /// The head graph.
        graph: String,
        /// What went wrong.
        message: String,
    },
}

/// One head: the slice size it reads and its graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Channels it reads (the first `size` of the cut tensor).
    pub size: usize,
    /// Its graph in the cut's module.
    pub graph: String,
}

/// The cut tensor a cut's heads expect: what the device's `Begin` header must describe.
#[derive(Clone, Debug, PartialEq)]
pub struct CutTensor {
    /// Full shape (NCHW, all channels).
    pub shape: Vec<usize>,
    /// Channel axis (1).
    pub axis: usize,
    /// Element type (i8 or i16).
    pub elem: DType,
    /// Per-tensor quantization.
    pub quant: Option<Quant>,
}

impl CutTensor {
    /// Channels of the full tensor.
    pub fn channels(&self) -> usize {
        self.shape[self.axis]
    }

    /// Payload bytes of the full tensor (what a connection buffers at most for a request).
    pub fn payload_bytes(&self) -> usize {
        self.shape.iter().product::<usize>() * self.elem.size_bytes()
    }
}

/// One served cut point: its module, heads (smallest first) and expected tensor.
#[derive(Debug)]
pub struct CutModel {
    /// Cut index `k`.
    pub cut: u32,
    /// The file it was loaded from.
    pub path: PathBuf,
    /// The cloud part.
    pub module: Module,
    /// Heads, smallest slice first.
    pub heads: Vec<Head>,
    /// The cut tensor the heads read.
    pub tensor: CutTensor,
}

impl CutModel {
    /// The widest head whose slice size is at most `received` channels.
    pub fn head_for(&self, received: usize) -> Option<&Head> {
        self.heads.iter().rev().find(|h| h.size <= received)
    }

    /// Checks a device's wire header (parsed) against the expected cut tensor.
    pub fn check_header(&self, h: &Header) -> Result<(), RunError> {
        let t = &self.tensor;
        let mut bad = vec![];
        if h.shape != t.shape {
            bad.push(format!("shape {:?} (expected {:?})", h.shape, t.shape));
        }
        if h.axis != t.axis {
            bad.push(format!("channel axis {} (expected {})", h.axis, t.axis));
        }
        if h.elem != t.elem {
            bad.push(format!("element type {} (expected {})", h.elem, t.elem));
        }
        if h.quant != t.quant {
            bad.push(format!("quantization {:?} (expected {:?})", h.quant, t.quant));
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(RunError::BadTensor(format!("cut {}: the device's tensor has {}", self.cut, bad.join(", "))))
        }
    }
}

/// What one head run gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The slice size whose head ran (0: none fitted).
    pub used: usize,
    /// Arg-max class (-1 when no head ran).
    pub class: i32,
    /// The head's output (empty when no head ran).
    pub scores: Vec<f32>,
    /// Microseconds the decode and head took.
    pub compute_us: u32,
}

/// Every served cut, keyed by cut index.
#[derive(Debug, Default)]
pub struct CloudModel {
    cuts: BTreeMap<u32, CutModel>,
    limits: Limits,
}

impl CloudModel {
    /// Loads cloud parts: each path is a `clio compile` output directory (its `cloud.clio`, or
    /// every `cloud_k<k>/cloud.clio` of a several-cut compile) or a `.clio` file; a module
    /// carries the `clio.slice` attribute, or is a plain partition with a `@cloud` graph whose
    /// cut its directory names.
    pub fn load(paths: &[PathBuf]) -> Result<CloudModel, CloudError> {
        if paths.is_empty() {
            return Err(CloudError::Empty);
        }
        let mut m = CloudModel::default();
        for p in paths {
            for (file, hint) in cloud_files(p) {
                let module = clio::io::load_module(&file, &Default::default())
                    .map_err(|e| CloudError::Load { path: file.clone(), message: e.to_string() })?;
                m.add_with_cut(module, &file, hint)?;
            }
        }
        Ok(m)
    }

    /// Adds a sliced cloud part already in memory (`path` names it in messages).
    pub fn add(&mut self, module: Module, path: &Path) -> Result<(), CloudError> {
        self.add_with_cut(module, path, None)
    }

    /// Adds a cloud part: sliced (`clio.slice` names the cut and the heads), or a plain
    /// partition's `@cloud` graph served as one head reading every channel, at cut `cut`.
    pub fn add_with_cut(&mut self, module: Module, path: &Path, cut: Option<u32>) -> Result<(), CloudError> {
        let c = cut_model(module, path, cut)?;
        if let Some(other) = self.cuts.get(&c.cut) {
            return Err(CloudError::DuplicateCut { path: path.to_path_buf(), cut: c.cut, other: other.path.clone() });
        }
        self.cuts.insert(c.cut, c);
        Ok(())
    }

    /// A model of one sliced module (tests, embedding).
    pub fn from_module(module: Module) -> Result<CloudModel, CloudError> {
        let mut m = CloudModel::default();
        m.add(module, Path::new("<memory>"))?;
        Ok(m)
    }

    /// The served cuts, by index.
    pub fn cuts(&self) -> impl Iterator<Item = &CutModel> {
        self.cuts.values()
    }

    /// One served cut.
    pub fn cut(&self, cut: u32) -> Option<&CutModel> {
        self.cuts.get(&cut)
    }

    /// The largest frame a device needs to send: `Channels` with a whole tensor of the largest
    /// served cut, or a `Begin` with the largest wire header (at least 1 KiB, room for an
    /// `Error` message).
    pub fn max_frame_needed(&self) -> usize {
        // Type byte + three u32 fields.
        const FIXED: usize = 13;
        // Magic to channels-present, rank 8, and affine parameters.
        const MAX_HEADER: usize = 12 + 4 * wire::MAX_RANK + 4 + 8;
        let payload = self.cuts.values().map(|c| c.tensor.payload_bytes()).max().unwrap_or(0);
        (FIXED + payload.max(MAX_HEADER)).max(1024)
    }

    /// Wire-format limits used to parse headers.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses and validates a `Begin` header for `cut`: the cut must be served, the bytes must
    /// be exactly one wire header (no payload) describing the tensor the heads expect.
    pub fn check_begin(&self, cut: u32, header: &[u8]) -> Result<Header, RunError> {
        let c = self.cuts.get(&cut).ok_or(RunError::UnknownCut(cut))?;
        let h = wire::parse_header(header, &self.limits).map_err(|e| RunError::BadTensor(e.to_string()))?;
        if header.len() != h.payload_at {
            return Err(RunError::BadTensor(format!(
                "the begin frame's wire header is {} bytes, {} expected (no payload)",
                header.len(),
                h.payload_at
            )));
        }
        c.check_header(&h)?;
        Ok(h)
    }

    /// Runs the request: `received` channels of payload (`payload`, channel-major, at least
    /// `received * channel_bytes` bytes) behind the `Begin` header. Picks the widest head not
    /// above `received`, decodes its channels with the wire decoder and runs it (the integer
    /// interpreter: bit-exact for quantized heads, float for float ones).
    pub fn run(
        &self,
        cut: u32,
        header_bytes: &[u8],
        h: &Header,
        received: usize,
        payload: &[u8],
    ) -> Result<Prediction, RunError> {
        let start = Instant::now();
        let c = self.cuts.get(&cut).ok_or(RunError::UnknownCut(cut))?;
        let Some(head) = c.head_for(received) else {
            return Ok(Prediction { used: 0, class: -1, scores: vec![], compute_us: micros(start) });
        };
        let msg =
            wire::assemble(header_bytes, h, head.size, payload).map_err(|e| RunError::BadTensor(e.to_string()))?;
        let t = wire::decode(&msg, &self.limits).map_err(|e| RunError::BadTensor(e.to_string()))?;
        let internal = |message: String| RunError::Internal { graph: head.graph.clone(), message };
        let out = clio::interp::run_int(&c.module, &head.graph, std::slice::from_ref(&t.data))
            .map_err(|e| internal(e.to_string()))?;
        let scores = out
            .first()
            .and_then(|t| t.as_f32())
            .ok_or_else(|| internal("the head's output is not an f32 tensor".into()))?
            .to_vec();
        Ok(Prediction { used: head.size, class: argmax(&scores), scores, compute_us: micros(start) })
    }
}

/// Microseconds since `t`, saturating.
pub(crate) fn micros(t: Instant) -> u32 {
    u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX)
}

/// Index of the largest score (the first on ties; NaN never wins), -1 for no scores.
pub fn argmax(scores: &[f32]) -> i32 {
    let mut best: Option<(usize, f32)> = None;
    for (i, s) in scores.iter().enumerate() {
        if s.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| *s > b) {
            best = Some((i, *s));
        }
    }
    best.map_or(-1, |(i, _)| i32::try_from(i).unwrap_or(i32::MAX))
}

/// The cloud modules a path names, each with the cut its location gives (if any): a file; a
/// `clio compile` directory's `cloud.clio` (cut from its `manifest.json` when numeric); or, for
/// a several-cut compile, every `cloud_k<k>/cloud.clio` (cut `k`).
fn cloud_files(p: &Path) -> Vec<(PathBuf, Option<u32>)> {
    if !p.is_dir() {
        return vec![(p.to_path_buf(), None)];
    }
    if !p.join("cloud.clio").exists() {
        let mut subs: Vec<(PathBuf, Option<u32>)> = std::fs::read_dir(p)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let k = name.strip_prefix("cloud_k")?.parse().ok()?;
                Some((e.path().join("cloud.clio"), Some(k)))
            })
            .collect();
        if !subs.is_empty() {
            subs.sort();
            return subs;
        }
    }
    let manifest: Option<serde_json::Value> =
        std::fs::read_to_string(p.join("manifest.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
    let cut = manifest.as_ref().and_then(|m| m["cut"].as_str()).and_then(|c| c.parse().ok());
    vec![(p.join("cloud.clio"), cut)]
}

/// The heads of a cloud part: from `clio.slice` (and its cut index), or the single `@cloud`
/// graph of a plain partition at cut `cut_hint`.
fn heads_of(module: &Module, cut_hint: Option<u32>) -> Result<(u32, Vec<Head>, Option<usize>), String> {
    let Some(attr) = module.attrs.get("clio.slice") else {
        let g = module.graph("cloud").ok_or(
            "neither a `clio.slice` attribute (a module made by the `slice` pass) nor a `@cloud` graph (`partition`)",
        )?;
        let cut = cut_hint.ok_or(
            "a plain partition's cloud part needs its cut index: serve the `clio compile` directory \
             (its manifest names the cut) or its `cloud_k<k>/`",
        )?;
        let size = g.inputs().first().and_then(|i| g.node(*i).ty().shape.get(1).copied()).unwrap_or(0);
        return Ok((cut, vec![Head { size, graph: "cloud".into() }], None));
    };
    let clio::ir::Attr::Str(json) = attr else { return Err("`clio.slice` is not a string".into()) };
    let report: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("`clio.slice` is not valid JSON: {e}"))?;
    let cut = report["cut_k"].as_u64().and_then(|k| u32::try_from(k).ok()).ok_or("`clio.slice` has no cut_k")?;
    let mut heads = vec![];
    for h in report["heads"].as_array().into_iter().flatten() {
        let (Some(size), Some(graph)) = (h["size"].as_u64(), h["graph"].as_str()) else {
            return Err(format!("`clio.slice` head without size or graph: {h}"));
        };
        heads.push(Head { size: size as usize, graph: graph.to_string() });
    }
    let full = report["cut_shape"].as_array().and_then(|s| s.get(1)).and_then(|c| c.as_u64()).map(|c| c as usize);
    Ok((cut, heads, full))
}

/// Reads the heads and their input types.
fn cut_model(module: Module, path: &Path, cut_hint: Option<u32>) -> Result<CutModel, CloudError> {
    let bad = |message: String| CloudError::NotSliced { path: path.to_path_buf(), message };
    let (cut, mut heads, full) = heads_of(&module, cut_hint).map_err(bad)?;
    heads.sort_by_key(|h| h.size);
    if heads.is_empty() {
        return Err(bad("`clio.slice` lists no heads".into()));
    }
    let mut tensor: Option<CutTensor> = None;
    for head in &heads {
        let g = module.graph(&head.graph).ok_or_else(|| bad(format!("no head graph @{}", head.graph)))?;
        let (&[input], [_]) = (g.inputs(), g.outputs()) else {
            return Err(bad(format!("head @{} must have one input and one output", head.graph)));
        };
        let ty = g.node(input).ty();
        if ty.shape.len() < 2 || ty.shape[1] != head.size || !matches!(ty.dtype, DType::I8 | DType::I16) {
            return Err(bad(format!(
                "head @{} reads {:?} x {}, not the first {} channels of an integer cut tensor",
                head.graph, ty.shape, ty.dtype, head.size
            )));
        }
        let mut shape = ty.shape.clone();
        shape[1] = 0;
        let t = CutTensor { shape, axis: 1, elem: ty.dtype, quant: ty.quant.clone() };
        match &tensor {
            None => tensor = Some(t),
            Some(prev) if *prev == t => {}
            Some(_) => return Err(bad(format!("head @{} reads another tensor than the other heads", head.graph))),
        }
    }
    let mut tensor = tensor.ok_or_else(|| bad("no heads".into()))?;
    let full = full.unwrap_or_else(|| heads.last().map_or(0, |h| h.size));
    if full < heads.last().map_or(0, |h| h.size) {
        return Err(bad(format!("`clio.slice` cut_shape has {full} channels, fewer than the widest head")));
    }
    tensor.shape[1] = full;
    Ok(CutModel { cut, path: path.to_path_buf(), module, heads, tensor })
}
