//! The EM Studio Web Worker.
//!
//! It owns every volume (the UI thread only ever holds rendered slices), answers the requests
//! of [`emstudio_protocol::ToWorker`], and keeps the page responsive by yielding to the event
//! loop between files, slabs and training steps. [`workspace`] (layers, rendering, probing,
//! export), [`compute`] (filters, postprocessing, evaluation), [`training`] (CNN training
//! and inference), [`editing`] (painting and proofreading with undo) and [`autosave`] (the
//! session files that keep edits across a reload) are the platform-free parts, tested natively; `web` is the browser glue
//! (message loop, file reading, fetch) and `web_gpu` picks the networks' device (WebGPU or
//! the CPU) in the browser.

pub mod autosave;
pub mod compute;
pub mod editing;
pub mod training;
pub mod workspace;

#[cfg(target_arch = "wasm32")]
mod web;
#[cfg(target_arch = "wasm32")]
mod web_edit;
#[cfg(target_arch = "wasm32")]
mod web_gpu;
#[cfg(target_arch = "wasm32")]
mod web_opfs;
