//! Reading a candle CPU tensor's elements in place, for the hand-written kernels (forward and backward).

use candle_core::{CpuStorage, Layout, Storage, Tensor};

type CResult<T> = candle_core::Result<T>;

/// The contiguous f32 elements of a CPU tensor, passed to `f`.
pub(crate) fn with_elements<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> CResult<R>) -> CResult<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(storage) = &*storage else {
        return Err(candle_core::Error::Msg(format!("{what}: not on the CPU")));
    };
    f(elements(storage, layout, what)?)
}

/// The f32 elements of a contiguous operand of a custom op's CPU kernel.
pub(crate) fn elements<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> CResult<&'a [f32]> {
    let (a, b) = l.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg(format!("{what}: not contiguous")))?;
    Ok(&s.as_slice::<f32>()?[a..b])
}
