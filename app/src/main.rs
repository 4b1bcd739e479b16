//! EM Studio in the browser: the Leptos single-page app.
//!
//! The UI thread draws and reacts; every volume lives in the Web Worker (`emstudio-worker`),
//! reached through [`emstudio_protocol`] messages. On native targets this binary only prints
//! a hint, so `cargo build --workspace` stays green.

mod pipeline_edit;
mod training_ui;
#[cfg(target_arch = "wasm32")]
mod web;

#[cfg(target_arch = "wasm32")]
fn main() {
    web::main();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("emstudio-app runs in the browser: use `cargo xtask run`.");
}
