//! # clio-targets
//!
//! Target descriptions and cost models for clio: GAP8 (HWCE + cluster cores), STM32F7
//! (CMSIS-NN on a Cortex-M7), cloud servers, and radio links (BLE, generic IP). Every constant
//! is data: built-in descriptions live in `targets/data/*.json` with a `sources` entry per
//! field, and users load their own copies by path (`--target my-board.json`).
//!
//! The traits they implement ([`clio::cost::CostModel`], [`clio::cost::LinkModel`]) are defined
//! in the core, so passes use costs without naming a target.
//!
//! Backends: [`stm32::lower`] turns an int8-quantized device graph into a C module calling
//! CMSIS-NN's s8 kernels (or a q8 graph into CMSIS_5's legacy q7 calls), with a static arena
//! from a liveness-based planner ([`stm32::plan_arena`]); [`stm32::shim_files`] are the header
//! shims and host kernels that let tests compile and run it with the system C compiler.
//! [`gap8::lower`] turns a q8 (power-of-two) device graph into C for the GAP8 cluster: dense
//! 3x3 / 5x5 / 7x7 convolutions on the HWCE, the rest on the 8 cores, with a JSON manifest
//! saying which unit and kernel each layer uses and why; [`gap8::shim_files`] are its shims.
//! [`cloud`] exports the cloud part's graphs as ONNX and (through tract) NNEF.

// No unwrap/expect in library code (tests may; see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod classify;
pub mod cloud;
mod desc;
pub mod gap8;
mod link;
mod server;
pub mod stm32;

pub use classify::{classify, OpClass};
pub use desc::{builtin_links, builtin_targets, load_link, load_target, TargetError};
pub use gap8::Gap8Cost;
pub use link::LinkDesc;
pub use server::ServerCost;
pub use stm32::CortexMCost;
