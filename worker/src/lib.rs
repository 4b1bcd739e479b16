//! The EM Studio data worker.
//!
//! It owns every volume (the UI thread only ever holds rendered slices), answers the requests
//! of [`emstudio_protocol::ToWorker`], and keeps the page responsive by yielding to the event
//! loop between files and slabs. [`workspace`] (layers, rendering, probing, export),
//! [`compute`] (filters, postprocessing, evaluation), [`labelling`] (postprocessing in blocks
//! for the helpers), [`nets_link`] (the slices a network job
//! needs and the layer its predictions make), [`editing`] (painting and proofreading with undo)
//! [`ffn_link`] (the Edit panel's FFN fill: the box sent to the network worker, the proposal
//! made of its answer), [`autosave`] (the session files that keep edits across a reload) and
//! [`memory`] (how large
//! a stack the worker can still hold) are the platform-free
//! parts, tested natively. `web` is the browser glue (message loop, file reading, fetch),
//! `web_edit` and `web_opfs` run edits and their autosave, `web_label` runs the Postprocess
//! panel's blocks, `web_pool` runs
//! helper workers (more instances of this module, `web_helper`) that decode, filter and label in
//! parallel ([`pool`] is their platform-free half), and `web_nets` hands network jobs
//! to the network worker (`nets-worker/`), which it starts on the first one: the networks'
//! WebGPU backend would make this module 30 MB larger and every trip through JavaScript slower.

pub mod autosave;
pub mod compute;
pub mod editing;
pub mod ffn_link;
pub mod labelling;
pub mod memory;
pub mod nets_link;
pub mod pool;
pub mod workspace;

#[cfg(target_arch = "wasm32")]
mod web;
#[cfg(target_arch = "wasm32")]
mod web_edit;
#[cfg(target_arch = "wasm32")]
mod web_helper;
#[cfg(target_arch = "wasm32")]
mod web_label;
#[cfg(target_arch = "wasm32")]
mod web_nets;
#[cfg(target_arch = "wasm32")]
mod web_opfs;
#[cfg(target_arch = "wasm32")]
mod web_pool;
