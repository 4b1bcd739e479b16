//! The EM Studio network worker: a second Web Worker, started by the data worker (`worker/`)
//! on the first network request, that trains and runs the 2D CNNs on WebGPU or burn's CPU
//! backend.
//!
//! It exists so the data worker stays small: burn's WebGPU backend adds about 30 MB of wasm,
//! and every trip through JavaScript costs a module that size milliseconds (BENCHMARKS.md).
//! It holds no layers: the data worker sends the slices each job needs and gets predicted
//! slices back (`emstudio_protocol::nets`). [`jobs`] (training and inference on slices) and
//! [`ffn`] (flood-filling networks: the Edit panel's fill, segmenting a volume) are platform-free and tested
//! natively; `web` is the browser loop, `web_gpu` picks the device
//! (WebGPU or the CPU), and on the CPU `web_pool` shares each slice's tiles with helper
//! instances of this module (`web_helper`), one per core.

pub mod ffn;
pub mod jobs;

/// The run-time device (re-exported for the data worker's tests).
pub use emstudio_nets::Device;

#[cfg(target_arch = "wasm32")]
mod web;
#[cfg(target_arch = "wasm32")]
mod web_gpu;
#[cfg(target_arch = "wasm32")]
mod web_helper;
#[cfg(target_arch = "wasm32")]
mod web_pool;
