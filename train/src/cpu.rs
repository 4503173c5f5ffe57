//! Reading a candle CPU tensor's elements in place, for the hand-written backward passes.

use candle_core::{Storage, Tensor};

type CResult<T> = candle_core::Result<T>;

/// The contiguous f32 elements of a CPU tensor, passed to `f`.
pub(crate) fn with_elements<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> CResult<R>) -> CResult<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(storage) = &*storage else {
        return Err(candle_core::Error::Msg(format!("{what}: not on the CPU")));
    };
    let (a, b) =
        layout.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg(format!("{what}: not contiguous")))?;
    f(&storage.as_slice::<f32>()?[a..b])
}
