//! The EM Studio Web Worker.
//!
//! It owns every volume (the UI thread only ever holds rendered slices), answers the requests
//! of [`emstudio_protocol::ToWorker`], and keeps the page responsive by yielding to the event
//! loop between files and slabs. [`workspace`] (layers, rendering, probing, export) and
//! [`compute`] (filters, postprocessing, evaluation) are the platform-free parts, tested
//! natively; `web` is the browser glue (message loop, file reading, fetch).

pub mod compute;
pub mod workspace;

#[cfg(target_arch = "wasm32")]
mod web;
