//! Split execution at run time (Clio as a running system, not only a compiler).
//!
//! * [`protocol`]: the length-prefixed frames a device and the cloud exchange over TCP; the cut
//!   tensor travels in clio's wire format ([`clio::quant::wire`]), channel group by channel
//!   group, so whatever prefix arrived by the deadline is a valid slice.
//! * [`server`]: the cloud server (`clio serve`): loads every slice head of the served cuts and
//!   answers each device request with the head the received channels cover.
//! * [`client`]: a minimal blocking client (one request: `Begin`, channels, `Done`, answer).
//! * [`device`]: the device program: the generated device C module loaded as a host library,
//!   a link shaper following a bandwidth trace, the bandwidth estimator and the adaptive loop.
//!
//! The protocol is the contract between the two sides; it is versioned and every decoding
//! failure is a typed [`protocol::ProtocolError`], never a panic.

#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod client;
pub mod device;
pub mod protocol;
pub mod server;
