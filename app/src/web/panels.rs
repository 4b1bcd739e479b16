//! Side panels: layers (visibility, opacity, outline), running jobs with progress and cancel,
//! errors, export, and the status bar (cursor readout, attribution).

use super::fsjs;
use super::state::{AppState, LayerView};
use super::worker_client;
use emstudio_core::stack::{BitDepth, ExportFormat, ExportOptions};
use emstudio_protocol::{FromWorker, LayerId, LayerKind, ToWorker};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsValue;

/// The layer list.
#[component]
pub fn LayersPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <section class="panel" data-testid="layers">
            <h2>"Layers"</h2>
            <Show when=move || state.layers.with(|l| l.is_empty())>
                <p class="hint">"Nothing open yet."</p>
            </Show>
            <For each=move || state.layers.get() key=|l: &LayerView| (l.info.id, l.visible, l.outline, (l.opacity * 100.0) as i32) let:l>
                {layer_row(state, l)}
            </For>
        </section>
    }
}

fn layer_row(state: AppState, l: LayerView) -> impl IntoView {
    let id: LayerId = l.info.id;
    let is_label = l.info.kind.is_labels();
    let s = l.info.shape;
    let details = format!(
        "{} · {}×{}×{} · {}{}",
        match l.info.kind {
            LayerKind::Image => "image",
            LayerKind::Label => "labels",
            LayerKind::Errors => "error map",
        },
        s.z,
        s.y,
        s.x,
        l.info.dtype,
        if l.info.channels == 3 { " RGB" } else { "" }
    );
    view! {
        <div class="layer" data-testid=format!("layer-{}", l.info.name)>
            <div class="layer-head">
                <label>
                    <input type="checkbox" data-testid="layer-visible" prop:checked=l.visible
                        on:change=move |ev| { let on = event_target_checked(&ev); state.edit_layer(id, |l| l.visible = on) } />
                    <span class="layer-name">{l.info.name.clone()}</span>
                </label>
                <button class="icon" title="Close layer" on:click=move |_| state.close_layer(id)>"×"</button>
            </div>
            <div class="hint" data-testid="layer-details" title=l.opened_note.clone()>{details}</div>
            <label class="row">"Opacity"
                <input type="range" min="0" max="100" data-testid="layer-opacity" prop:value=(l.opacity * 100.0).round().to_string()
                    on:input=move |ev| {
                        let v = event_target_value(&ev).parse::<f64>().unwrap_or(100.0) / 100.0;
                        state.edit_layer(id, |l| l.opacity = v)
                    } />
            </label>
            {is_label.then(|| view! {
                <label class="row">
                    <input type="checkbox" data-testid="layer-outline" prop:checked=l.outline
                        on:change=move |ev| { let on = event_target_checked(&ev); state.edit_layer(id, |l| l.outline = on) } />
                    "Outline only"
                </label>
            })}
        </div>
    }
}

/// Running jobs with progress bars and Cancel. Rows are keyed by request only and update in
/// place, so the Cancel button stays put while progress streams in.
#[component]
pub fn JobsPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <div class="jobs" data-testid="jobs">
            <For each=move || state.jobs.get() key=|j| j.request let:j>
                {job_row(state, j.request, j.title.clone())}
            </For>
        </div>
    }
}

fn job_row(state: AppState, request: emstudio_protocol::RequestId, title: String) -> impl IntoView {
    let field = move |f: fn(&super::state::Job) -> String| {
        move || {
            state
                .jobs
                .with(|jobs| jobs.iter().find(|j| j.request == request).map(f))
                .unwrap_or_default()
        }
    };
    view! {
        <div class="job">
            <div class="job-title">{title}<span class="hint">{field(|j| format!(" {}", j.message))}</span></div>
            <progress data-testid="progress" max=field(|j| j.total.max(1).to_string()) value=field(|j| j.done.to_string())></progress>
            <button on:click=move |_| worker_client::cancel(request)>"Cancel"</button>
        </div>
    }
}

/// Errors, each with its own dismiss button.
#[component]
pub fn ErrorsPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let numbered =
        move || -> Vec<(usize, String)> { state.errors.get().into_iter().enumerate().collect() };
    view! {
        <div class="errors" role="alert" data-testid="errors">
            <For each=numbered key=|(i, e)| (*i, e.clone()) let:item>
                <div class="error">
                    <span data-testid="error">{item.1.clone()}</span>
                    <button class="icon" title="Dismiss" on:click=move |_| state.errors.update(|e| { if item.0 < e.len() { e.remove(item.0); } })>"×"</button>
                </div>
            </For>
        </div>
    }
}

fn mime(name: &str) -> &'static str {
    if name.ends_with(".png") {
        "image/png"
    } else {
        "image/tiff"
    }
}

/// Export a layer as PNG series, TIFF series or multi-page TIFF.
#[component]
pub fn ExportPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let layer = RwSignal::new(None::<LayerId>);
    let format = RwSignal::new(ExportFormat::MultiPageTiff);
    let depth = RwSignal::new(BitDepth::Native);
    let rescale = RwSignal::new(false);
    let fs_access = fsjs::supports_fs_access();

    let selected = move || {
        let layers = state.layers.get();
        layer
            .get()
            .and_then(|id| layers.iter().find(|l| l.info.id == id).cloned())
            .or_else(|| layers.first().cloned())
    };

    let run = move |to_folder: bool| {
        let Some(l) = selected() else { return };
        let options = ExportOptions {
            format: format.get_untracked(),
            depth: depth.get_untracked(),
            rescale: rescale.get_untracked(),
            base_name: l.info.name.replace(['/', '\\', ' '], "_"),
        };
        spawn_local(async move {
            // Pick the folder first, while the click still counts as a user gesture.
            let dir = if to_folder {
                match fsjs::pick_directory("readwrite").await {
                    Ok(d) => Some(d),
                    Err(e) if fsjs::is_abort(&e) => return,
                    Err(e) => {
                        return state.error(format!(
                            "could not open the folder ({})",
                            fsjs::js_error(&e)
                        ))
                    }
                }
            } else {
                None
            };
            let layer_id = l.info.id;
            state.run_job(
                format!("Exporting {}", l.info.name),
                move |request| ToWorker::Export {
                    request,
                    layer: layer_id,
                    options,
                },
                &[],
                move |msg, buffers| {
                    let FromWorker::Exported { files, .. } = msg else {
                        return;
                    };
                    match &dir {
                        Some(dir) => {
                            let dir = dir.clone();
                            let names: js_sys::Array =
                                files.iter().map(|f| JsValue::from_str(f)).collect();
                            let bufs: js_sys::Array = buffers.iter().collect();
                            spawn_local(async move {
                                if let Err(e) = fsjs::write_files(&dir, &names, &bufs).await {
                                    state.error(format!(
                                        "could not write the files ({})",
                                        fsjs::js_error(&e)
                                    ));
                                }
                            });
                        }
                        None => {
                            for (name, buf) in files.iter().zip(buffers.iter()) {
                                fsjs::download_file(name, buf, mime(name));
                            }
                        }
                    }
                },
            );
        });
    };

    view! {
        <section class="panel" data-testid="export">
            <h2>"Export"</h2>
            <label class="row">"Layer"
                <select data-testid="export-layer" on:change=move |ev| layer.set(event_target_value(&ev).parse().ok().map(LayerId))>
                    <For each=move || state.layers.get() key=|l| l.info.id let:l>
                        <option value=l.info.id.0.to_string()>{l.info.name.clone()}</option>
                    </For>
                </select>
            </label>
            <label class="row">"Format"
                <select data-testid="export-format" on:change=move |ev| format.set(match event_target_value(&ev).as_str() {
                    "png" => ExportFormat::PngSeries, "tif" => ExportFormat::TiffSeries, _ => ExportFormat::MultiPageTiff })>
                    <option value="multi">"Multi-page TIFF"</option>
                    <option value="tif">"TIFF series"</option>
                    <option value="png">"PNG series"</option>
                </select>
            </label>
            <label class="row">"Bit depth"
                <select data-testid="export-depth" on:change=move |ev| depth.set(match event_target_value(&ev).as_str() {
                    "8" => BitDepth::U8, "16" => BitDepth::U16, _ => BitDepth::Native })>
                    <option value="native">"As loaded"</option>
                    <option value="8">"8-bit"</option>
                    <option value="16">"16-bit"</option>
                </select>
            </label>
            <label class="row"><input type="checkbox" on:change=move |ev| rescale.set(event_target_checked(&ev)) />"Rescale values to fit"</label>
            <div class="buttons">
                <Show when=move || fs_access>
                    <button prop:disabled=move || state.layers.with(|l| l.is_empty()) on:click=move |_| run(true)>"Save to folder…"</button>
                </Show>
                <button data-testid="export-download" prop:disabled=move || state.layers.with(|l| l.is_empty()) on:click=move |_| run(false)>"Download"</button>
            </div>
        </section>
    }
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

/// Cursor readout and attribution.
#[component]
pub fn StatusBar() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <footer class="status">
            <span data-testid="readout">{move || match state.readout.get() {
                None => String::from("—"),
                Some(r) => {
                    let mut s = format!("x {}  y {}  z {}", r.x, r.y, r.z);
                    let images = r.values.iter().filter(|v| v.1 == LayerKind::Image).count();
                    for (name, kind, values) in r.values {
                        let vals: Vec<String> = values.iter().copied().map(fmt_value).collect();
                        let short = name.rsplit('/').next().unwrap_or(&name).to_string();
                        let what = match kind {
                            LayerKind::Image if images == 1 => String::from("intensity"),
                            LayerKind::Image => format!("intensity[{short}]"),
                            LayerKind::Label if short.starts_with("label") => short,
                            LayerKind::Label => format!("label[{short}]"),
                            LayerKind::Errors => format!("errors {}", match values.first().copied().unwrap_or(0.0) as u32 {
                                1 => "merge", 2 => "split", 3 => "split+merge", _ => "none" }),
                        };
                        s.push_str(&format!("   {what} {}", vals.join(",")));
                    }
                    s
                }
            }}</span>
            <span class="attribution" data-testid="attribution"
                title=move || state.opened.get().and_then(|o| o.attribution).unwrap_or_default()>
                {move || state.opened.get().and_then(|o| o.attribution).unwrap_or_default()}
            </span>
        </footer>
    }
}
