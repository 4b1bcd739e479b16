//! The Infer panel: the model store (choose, rename, delete, download, upload a model file,
//! checked by the network worker before it is stored; the chosen model's card when it has one)
//! and running a model over the whole stack, the slice on screen or the part of it in view
//! into a probability layer,
//! with progress and cancel (the jobs bar), optionally followed in one click by threshold →
//! 3D labels (the Postprocess chain with its defaults); with a flood-filling network (FFN)
//! model, segmenting neurons in 3D over the whole stack or the part in view through some
//! slices into a label layer.

use super::models::Models;
use super::net_device::{DevicePicker, NetDevices};
use super::state::{add_computed_layer, AppState, Created};
use crate::training_ui::ModelKind;
use emstudio_core::labels::postprocess::{PostprocessParams, ThresholdChoice};
use emstudio_protocol::{FromWorker, LayerId, LayerKind, ToWorker};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};

/// The panel.
#[component]
pub fn InferPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let models = expect_context::<Models>();
    let devices = expect_context::<NetDevices>();
    let image = RwSignal::new(None::<LayerId>);
    // "stack", "slice" or "view".
    let scope = RwSignal::new("stack");
    let then_label = RwSignal::new(true);
    let views = RwSignal::new(1u8);
    let rename_to = RwSignal::new(String::new());
    let result = RwSignal::new(None::<Created>);
    let labelled = RwSignal::new(None::<Created>);
    // FFN segmentation: slices on each side of the one on screen ("part in view").
    let ffn_half_depth = RwSignal::new(10usize);

    // Gray or RGB: the model says which it takes, and the worker checks.
    let images = move || state.layer_choices(LayerKind::Image, false);
    let image_id = move || {
        let list = images();
        image
            .get()
            .filter(|id| list.iter().any(|(i, _)| i == id))
            .or_else(|| list.first().map(|(i, _)| *i))
    };
    let selected = move || {
        let name = models.selected.get()?;
        models
            .list
            .with(|l| l.iter().find(|m| m.name == name).cloned())
    };

    let is_ffn = move || selected().is_some_and(|m| m.summary.kind == ModelKind::Ffn);

    let segment = move |_| {
        let (Some(layer), Some(model)) = (image_id(), selected()) else {
            return state.error("choose an image layer and a model");
        };
        let Some(buffer) = models.buffer(&model.name) else {
            return;
        };
        let shape = state
            .layers
            .with_untracked(|l| l.iter().find(|l| l.info.id == layer).map(|l| l.info.shape));
        let Some(shape) = shape else { return };
        let z = state.z.get_untracked();
        let (region, what) = if scope.get_untracked() == "stack" {
            (None, "all slices".to_string())
        } else {
            let Some(r) = super::viewer::visible_region(shape.y, shape.x) else {
                return state.error("no part of the slice is in view");
            };
            let h = ffn_half_depth.get_untracked();
            let (z0, z1) = (z.saturating_sub(h), (z + h + 1).min(shape.z));
            (
                Some([[z0, r.y0, r.x0], [z1, r.y1, r.x1]]),
                format!("view of slices {z0}–{}", z1 - 1),
            )
        };
        let name = format!("{} · {what}", model.name.trim_end_matches(".ffn"));
        result.set(None);
        labelled.set(None);
        state.run_layer_job_with(
            format!("Segmenting with {}", model.name),
            move |request| ToWorker::FfnSegment {
                request,
                image: layer,
                region,
                name,
                device: devices.choice.get_untracked(),
            },
            &[buffer],
            result,
        );
    };

    let label_probability = move |layer: LayerId, name: String| {
        let params = PostprocessParams {
            threshold: ThresholdChoice::Fixed(0.5),
            min_size: 10,
            ..PostprocessParams::default()
        };
        state.run_layer_job(
            format!("Labelling {name}"),
            move |request| ToWorker::Postprocess {
                request,
                layer,
                markers: None,
                params,
                name: format!("{name} · objects"),
            },
            labelled,
        );
    };

    let run = move |_| {
        let (Some(layer), Some(model)) = (image_id(), selected()) else {
            return state.error("choose an image layer and a model");
        };
        let Some(buffer) = models.buffer(&model.name) else {
            return;
        };
        let z = state.z.get_untracked();
        let (slices, region) = match scope.get_untracked() {
            "stack" => (Vec::new(), None),
            "slice" => (vec![z], None),
            _ => {
                let shape = state.layers.with_untracked(|l| {
                    l.iter().find(|l| l.info.id == layer).map(|l| l.info.shape)
                });
                match shape.and_then(|s| super::viewer::visible_region(s.y, s.x)) {
                    Some(r) => (vec![z], Some(r)),
                    None => return state.error("no part of the slice is in view"),
                }
            }
        };
        let what = match (&region, slices.first()) {
            (Some(_), Some(z)) => format!("view of slice {z}"),
            (None, Some(z)) => format!("slice {z}"),
            _ => "all slices".to_string(),
        };
        let name = format!("{} · {what}", model.name.trim_end_matches(".emsmodel"));
        let chain = then_label.get_untracked() && model.summary.outputs == 1;
        result.set(None);
        labelled.set(None);
        state.run_job(
            format!("Inferring with {}", model.name),
            move |request| ToWorker::Infer {
                request,
                layer,
                slices,
                region,
                name,
                device: devices.choice.get_untracked(),
                views: views.get_untracked(),
            },
            &[buffer],
            move |msg, _| {
                if let FromWorker::LayerCreated {
                    layer,
                    summary,
                    compute_ms,
                    ..
                } = msg
                {
                    result.set(Some(Created {
                        layer_name: layer.name.clone(),
                        summary,
                        compute_ms,
                    }));
                    let (id, name) = (layer.id, layer.name.clone());
                    add_computed_layer(state, layer);
                    if chain {
                        label_probability(id, name);
                    }
                }
            },
        );
    };

    let upload = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(files) = input.files() else { return };
        for i in 0..files.length() {
            let Some(file) = files.get(i) else { continue };
            spawn_local(async move {
                let name = file.name();
                match JsFuture::from(file.array_buffer()).await {
                    Ok(buf) => {
                        let bytes = js_sys::Uint8Array::new(&buf).to_vec();
                        // The header is read here (cheap, names the file at once); the network
                        // worker then reads the whole file as inference would, and only a
                        // file that passes is stored.
                        if let Err(e) = crate::training_ui::model_summary(&bytes) {
                            return state.error(format!("{name}: {e}"));
                        }
                        let checked = name.clone();
                        state.run_job(
                            format!("checking {name}"),
                            move |request| ToWorker::CheckModel {
                                request,
                                name: checked,
                            },
                            &[buf],
                            move |msg, _| {
                                if let FromWorker::ModelChecked { name, .. } = msg {
                                    if let Err(e) = models.add(state, &name, bytes.clone()) {
                                        state.error(e);
                                    }
                                }
                            },
                        );
                    }
                    Err(e) => state.error(format!(
                        "{name}: could not read ({})",
                        super::fsjs::js_error(&e)
                    )),
                }
            });
        }
        input.set_value("");
    };

    view! {
        <div class="tool" data-testid="infer">
            <h3>"Models"</h3>
            <Show when=move || models.list.with(Vec::is_empty)>
                <p class="hint">"Train one in the Train tab, or upload a model file (.emsmodel, made by emstudio train; .ffn, a flood-filling network made by emstudio ffn train)."</p>
            </Show>
            <ul class="models" data-testid="model-list">
                <For each=move || models.list.get() key=|m| (m.name.clone(), m.summary.steps) let:m>
                    {
                        let name = m.name.clone();
                        let n2 = name.clone();
                        view! {
                            <li class:active=move || models.selected.get().as_deref() == Some(n2.as_str())>
                                <label>
                                    <input type="radio" name="model" prop:checked={let n = name.clone(); move || models.selected.get().as_deref() == Some(n.as_str())}
                                        on:change={let n = name.clone(); move |_| models.selected.set(Some(n.clone()))} />
                                    <span class="model-name">{name.clone()}</span>
                                </label>
                                <span class="hint">{format!("{} · {} steps{}", m.summary.arch, m.summary.steps,
                                    if m.summary.saved.is_empty() { String::new() } else { format!(" · {}", &m.summary.saved[..m.summary.saved.len().min(10)]) })}</span>
                            </li>
                        }
                    }
                </For>
            </ul>
            {move || selected().and_then(|m| m.summary.card).map(|card| view! {
                <div class="model-card" data-testid="model-card">
                    <p>{card.text.clone()}</p>
                    <p class="hint">{card.score_line()}</p>
                </div>
            })}
            <div class="buttons">
                <button data-testid="model-download" prop:disabled=move || selected().is_none()
                    on:click=move |_| if let Some(m) = selected() { models.download(&m.name) }>"Download"</button>
                <button data-testid="model-delete" prop:disabled=move || selected().is_none()
                    on:click=move |_| if let Some(m) = selected() { models.delete(state, &m.name) }>"Delete"</button>
                <label class="button">"Upload…"
                    <input type="file" accept=".emsmodel,.ffn" multiple data-testid="model-upload" class="hidden-input" on:change=upload /></label>
            </div>
            <div class="row">
                <input type="text" placeholder="new name" data-testid="model-rename-to" prop:value=move || rename_to.get()
                    on:change=move |ev| rename_to.set(event_target_value(&ev)) />
                <button data-testid="model-rename" prop:disabled=move || selected().is_none() || rename_to.get().trim().is_empty()
                    on:click=move |_| if let Some(m) = selected() {
                        match models.rename(state, &m.name, &rename_to.get_untracked()) {
                            Ok(_) => rename_to.set(String::new()),
                            Err(e) => state.error(e),
                        }
                    }>"Rename"</button>
            </div>
            <h3>"Run"</h3>
            <label class="row">"Image"
                <select data-testid="infer-image" on:change=move |ev| image.set(event_target_value(&ev).parse().ok().map(LayerId))>
                    <For each=images key=|(id, _)| *id let:item>
                        <option value=item.0.0.to_string() selected=move || image_id() == Some(item.0)>{item.1.clone()}</option>
                    </For>
                </select></label>
            <div class="choice">
                <label><input type="radio" name="infer-scope" data-testid="infer-whole" prop:checked=move || scope.get() == "stack" on:change=move |_| scope.set("stack") />"Whole stack"</label>
                <Show when=move || !is_ffn()>
                    <label><input type="radio" name="infer-scope" data-testid="infer-slice" prop:checked=move || scope.get() == "slice" on:change=move |_| scope.set("slice") />"Slice on screen"</label>
                </Show>
                <label><input type="radio" name="infer-scope" data-testid="infer-view" prop:checked=move || scope.get() == "view" on:change=move |_| scope.set("view") />"Part in view"</label>
            </div>
            <Show when=move || !is_ffn()
                fallback=move || view! {
                    <label class="row" title="The part in view is segmented through this many slices above and below the one on screen">"Through ±"
                        <input type="number" min="0" max="500" class="narrow" data-testid="ffn-segment-depth"
                            prop:value=move || ffn_half_depth.get().to_string()
                            on:change=move |ev| ffn_half_depth.set(event_target_value(&ev).parse().unwrap_or(10)) />
                        "slices"</label>
                    <p class="hint" data-testid="infer-ffn-note">"A flood-filling network segments neurons in 3D (seeds from distance-transform peaks, one object at a time) into a new label layer. It takes minutes for a whole stack on the CPU: try the part in view first. In the Edit tab, FFN fill (Shift+G) grows the one object you click."</p>
                    <DevicePicker id="infer" />
                    <div class="buttons">
                        <button class="primary" data-testid="ffn-segment-run" prop:disabled=move || image_id().is_none() on:click=segment>"Segment neurons"</button>
                    </div>
                }>
                <label class="row" title="Averaging the prediction over mirror images and rotations removes specks and ragged borders; it takes that many times longer">"Orientations"
                    <select data-testid="infer-views" on:change=move |ev| views.set(event_target_value(&ev).parse().unwrap_or(1))>
                        <option value="1" selected=move || views.get() == 1>"1 (fastest)"</option>
                        <option value="4" selected=move || views.get() == 4>"4: mirrored (4× time)"</option>
                        <option value="8" selected=move || views.get() == 8>"8: mirrored and rotated (8× time)"</option>
                    </select></label>
                <label class="row"><input type="checkbox" data-testid="infer-then-label" prop:checked=move || then_label.get()
                    on:change=move |ev| then_label.set(event_target_checked(&ev)) />"Then threshold at 0.5 → 3D labels"</label>
                <DevicePicker id="infer" />
                <div class="buttons">
                    <button class="primary" data-testid="infer-run" prop:disabled=move || selected().is_none() || image_id().is_none() on:click=run>"Run model"</button>
                </div>
            </Show>
            <p class="result" data-testid="infer-result" data-compute-ms=move || result.get().map(|c| format!("{:.1}", c.compute_ms))>
                {move || result.get().map(|c| c.summary).unwrap_or_default()}
            </p>
            <p class="result" data-testid="infer-labelled">{move || labelled.get().map(|c| c.summary).unwrap_or_default()}</p>
        </div>
    }
}
