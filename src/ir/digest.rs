//! [`Digest`]: the content digest of a tensor, as the text format prints `blob<"...">` weights
//! and as loading a module checks its safetensors sidecar against the text.
//!
//! Both algorithms hash the same byte stream: the dtype's text spelling (`f32`), every dimension
//! as a little-endian `u64`, then the elements' little-endian bytes. The algorithm is part of the
//! spelling, so files written by earlier versions still load:
//!
//! | spelling | algorithm | written by |
//! |---|---|---|
//! | `blob<"xxh3:5f2a9c01d3e4b6a7">` | XXH3-64 (seed 0) | clio since 2026-12-05 (seventh session) |
//! | `blob<"5f2a9c01d3e4b6a7">` | FNV-1a 64 | earlier versions (still read, never written) |
//!
//! XXH3 hashes many bytes per cycle; FNV-1a one byte per multiply, which made the digest 28 % of
//! `clio opt` on ResNet-18 (45 MB of weights).

use super::Tensor;
use std::fmt;
use xxhash_rust::xxh3::Xxh3Default;

/// A digest algorithm of the text format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// XXH3-64 with seed 0 (spelled `xxh3:<16 hex digits>`): what clio writes.
    Xxh3,
    /// FNV-1a 64 (spelled as 16 bare hex digits): read for files written before XXH3.
    Fnv1a,
}

/// A tensor's content digest together with its algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Digest {
    /// The algorithm.
    pub algorithm: DigestAlgorithm,
    /// The 64-bit value.
    pub value: u64,
}

impl Digest {
    /// The digest of `t` under `algorithm`.
    pub fn of(t: &Tensor, algorithm: DigestAlgorithm) -> Digest {
        let value = match algorithm {
            DigestAlgorithm::Xxh3 => {
                let mut h = Xxh3Default::new();
                feed(t, |b| h.update(b));
                h.digest()
            }
            DigestAlgorithm::Fnv1a => {
                let mut h = Fnv1a::new();
                feed(t, |b| h.write(b));
                h.0
            }
        };
        Digest { algorithm, value }
    }

    /// Parses the text between the quotes of `blob<"...">`; the error says what was expected.
    pub fn parse(s: &str) -> Result<Digest, String> {
        let (algorithm, hex) = match s.split_once(':') {
            Some(("xxh3", hex)) => (DigestAlgorithm::Xxh3, hex),
            Some((other, _)) => {
                return Err(format!(
                    "unknown digest algorithm `{other}` in \"{s}\" (expected `xxh3:` and 16 hex digits, or 16 bare \
                     hex digits for an FNV-1a digest)"
                ))
            }
            None => (DigestAlgorithm::Fnv1a, s),
        };
        if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("expected a digest of 1 to 16 hex digits, found \"{s}\""));
        }
        let value = u64::from_str_radix(hex, 16).map_err(|_| format!("expected a hex digest, found \"{s}\""))?;
        Ok(Digest { algorithm, value })
    }

    /// Whether `t`'s content has this digest.
    pub fn matches(&self, t: &Tensor) -> bool {
        Digest::of(t, self.algorithm) == *self
    }
}

impl fmt::Display for Digest {
    /// The spelling inside `blob<"...">`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.algorithm {
            DigestAlgorithm::Xxh3 => write!(f, "xxh3:{:016x}", self.value),
            DigestAlgorithm::Fnv1a => write!(f, "{:016x}", self.value),
        }
    }
}

/// Hands the digested byte stream of `t` to `write`, in order.
fn feed(t: &Tensor, mut write: impl FnMut(&[u8])) {
    write(t.dtype().as_str().as_bytes());
    for d in t.shape() {
        write(&(*d as u64).to_le_bytes());
    }
    write(&t.data().le_bytes());
}

/// FNV-1a, 64 bit.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}
