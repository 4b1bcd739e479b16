//! The EM Studio Web Worker.
//!
//! It owns every volume (the UI thread only ever holds rendered slices), answers the requests
//! of [`emstudio_protocol::ToWorker`], and keeps the page responsive by yielding to the event
//! loop between files. [`workspace`] is the platform-free part (layers, rendering, probing,
//! export), tested natively; `web` is the browser glue (message loop, file reading, fetch).

pub mod workspace;

#[cfg(target_arch = "wasm32")]
mod web;
