//! The Train tab's flood-filling network mode: an FFN (3D neurons) trained on an image layer
//! and its dense neuron labels, over all slices or a range, in the network worker (CPU or
//! WebGPU); from fresh weights or fine-tuning a stored FFN (e.g. the demo's on a lab's own
//! labels); preset, steps, batch, learning rate; Start, Pause / Resume, Stop (keep the model)
//! and Cancel; a progress bar with speed and ETA, the loss chart and the mask's precision and
//! recall as it learns, a live preview of one training example (image, the neuron to fill,
//! the network's mask and its field of view), and a live fill on the slice on screen: every
//! few seconds the network as it is fills the object at the view's centre, drawn over the
//! slice (pan and change slices to look elsewhere, also at slices it does not train on). The
//! model (`.ffn`) goes to the model store, where the Edit panel's FFN fill and the Infer panel
//! find it.

use super::models::Models;
use super::net_device::{DevicePicker, NetDevices};
use super::state::AppState;
use super::train_panel::{LossChart, CHART};
use super::worker_client;
use crate::training_ui::{
    chart, eta, ffn_curve_csv, ffn_preview_rgba, live_fill_rgba, live_fill_seed, CurvePoint,
    FfnCurveRow, FfnTrainForm, FFN_MIN_SIZE, FFN_PRESETS,
};
use emstudio_core::slices::parse_slice_list;
use emstudio_protocol::{
    FfnFillAt, FfnTrainPreview, FromWorker, LayerId, LayerKind, RequestId, ToWorker, TrainControl,
};
use leptos::prelude::*;

/// Where a run is.
#[derive(Clone, Debug, PartialEq)]
struct Run {
    request: RequestId,
    device: String,
    step: u64,
    total: u64,
    steps_per_s: f64,
    paused: bool,
    stopping: bool,
    /// The mask's precision and recall over the last report's steps.
    mask: Option<(f32, f32)>,
    /// The live fill's box half-size (from the network worker).
    fill_radius: Option<[usize; 3]>,
    /// Where the live fill was last asked to grow.
    fill_at: Option<FfnFillAt>,
}

/// The FFN mode of the Train tab.
#[component]
pub fn FfnTrainPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let models = expect_context::<Models>();
    let devices = expect_context::<NetDevices>();
    let form = RwSignal::new(FfnTrainForm::default());
    let image = RwSignal::new(None::<LayerId>);
    let label = RwSignal::new(None::<LayerId>);
    let slices_text = RwSignal::new(String::new());
    let run = RwSignal::new(None::<Run>);
    let curve = RwSignal::new(Vec::<CurvePoint>::new());
    // The same reports with the mask's precision and recall, for the CSV download.
    let rows = RwSignal::new(Vec::<FfnCurveRow>::new());
    let outcome = RwSignal::new(None::<String>);
    let partitions = RwSignal::new(None::<super::state::Created>);
    let preview_ref = NodeRef::<leptos::html::Canvas>::new();
    let previewed = RwSignal::new(None::<u64>);
    // Fine-tune a stored FFN instead of starting from fresh weights.
    let start_from = RwSignal::new(None::<String>);
    // The live fill on the slice on screen, and what the last one found.
    let live_fill = RwSignal::new(true);
    let filled = RwSignal::new(None::<String>);
    let ffn_models = move || {
        let mut list = models.list.get();
        list.retain(|m| m.summary.kind == crate::training_ui::ModelKind::Ffn);
        list
    };

    let pick = move |chosen: Option<LayerId>, kind: LayerKind| {
        let list = state.layer_choices(kind, false);
        chosen
            .filter(|id| list.iter().any(|(i, _)| i == id))
            .or_else(|| list.first().map(|(i, _)| *i))
    };
    let image_id = move || pick(image.get(), LayerKind::Image);
    let label_id = move || pick(label.get(), LayerKind::Label);

    let start = move |_| {
        let (Some(img), Some(gt)) = (image_id(), label_id()) else {
            return state.error("FFN training needs an image layer and a label layer of neurons");
        };
        let Some(shape) = state
            .layers
            .with_untracked(|l| l.iter().find(|l| l.info.id == img).map(|l| l.info.shape))
        else {
            return;
        };
        let text = slices_text.get_untracked();
        let region = if text.trim().is_empty() {
            None
        } else {
            match parse_slice_list(&text, shape.z) {
                Ok(zs) if !zs.is_empty() => {
                    let (z0, z1) = (zs[0], zs[zs.len() - 1] + 1);
                    if zs.len() != z1 - z0 {
                        return state.error(
                            "FFN training slices: give one range (e.g. 0-39); an FFN learns in 3D",
                        );
                    }
                    Some([[z0, 0, 0], [z1, shape.y, shape.x]])
                }
                Ok(_) => return state.error("FFN training slices: none given"),
                Err(e) => return state.error(format!("FFN training slices: {e}")),
            }
        };
        let f = form.get_untracked();
        let config_json = f.config_json();
        curve.set(Vec::new());
        rows.set(Vec::new());
        outcome.set(None);
        previewed.set(None);
        let dataset = state
            .opened
            .get_untracked()
            .map(|o| o.name)
            .unwrap_or_else(|| "data".into());
        let init = start_from
            .get_untracked()
            .filter(|name| models.get(name).is_some());
        let attachments: Vec<wasm_bindgen::JsValue> =
            init.iter().filter_map(|name| models.buffer(name)).collect();
        let result = worker_client::request(
            move |request| ToWorker::FfnTrain {
                request,
                image: img,
                label: gt,
                region,
                config_json,
                device: devices.choice.get_untracked(),
            },
            &attachments,
            move |msg, attachments| match msg {
                FromWorker::TrainStarted {
                    request,
                    device,
                    total,
                    fill_radius,
                    ..
                } => {
                    run.set(Some(Run {
                        request,
                        device,
                        step: 0,
                        total,
                        steps_per_s: 0.0,
                        paused: false,
                        stopping: false,
                        mask: None,
                        fill_radius,
                        fill_at: None,
                    }));
                    steer_live_fill(state, run, live_fill.get_untracked(), img);
                }
                FromWorker::FfnTrainStep {
                    step,
                    total,
                    loss,
                    precision,
                    recall,
                    steps_per_s,
                    preview,
                    ..
                } => {
                    if let (Some(canvas), Some(p)) = (preview_ref.get_untracked(), preview) {
                        if draw_preview(&canvas, &p) {
                            previewed.set(Some(step));
                        }
                    }
                    run.update(|r| {
                        if let Some(r) = r {
                            (r.step, r.total, r.steps_per_s) = (step, total, steps_per_s);
                            r.mask = Some((precision, recall));
                        }
                    });
                    steer_live_fill(state, run, live_fill.get_untracked(), img);
                    curve.update(|c| {
                        c.push(CurvePoint {
                            step,
                            train: loss,
                            validation: None,
                        })
                    });
                    rows.update(|r| {
                        r.push(FfnCurveRow {
                            step,
                            loss,
                            precision,
                            recall,
                        })
                    });
                }
                FromWorker::FfnTrainFill {
                    step,
                    seed,
                    origin,
                    size,
                    probability,
                    fovs,
                    compute_ms,
                    ..
                } if live_fill.get_untracked() => {
                    filled.set(show_live_fill(
                        seed,
                        origin,
                        size,
                        &probability,
                        (step, fovs, compute_ms),
                    ));
                }
                FromWorker::Trained { steps, summary, .. } => {
                    run.set(None);
                    super::viewer::show_live_fill(None);
                    let bytes = attachments
                        .first()
                        .map(|b| js_sys::Uint8Array::new(b).to_vec())
                        .unwrap_or_default();
                    let stem: String = dataset
                        .split(['(', '/'])
                        .next()
                        .unwrap_or("data")
                        .trim()
                        .to_string();
                    let wanted = match &init {
                        Some(from) => format!(
                            "{}-tuned-{stem}-{steps}steps.ffn",
                            from.trim_end_matches(".ffn")
                        ),
                        None => format!("ffn-{}-{stem}-{steps}steps.ffn", f.preset),
                    };
                    match models.add(state, &wanted, bytes) {
                        Ok(name) => outcome.set(Some(format!("{summary} → model {name}"))),
                        Err(e) => state.error(e),
                    }
                }
                FromWorker::Failed { error, .. } => {
                    run.set(None);
                    super::viewer::show_live_fill(None);
                    state.error(format!("FFN training: {error}"));
                }
                FromWorker::Cancelled { .. } => {
                    run.set(None);
                    super::viewer::show_live_fill(None);
                    outcome.set(Some("cancelled; nothing was kept".into()));
                }
                _ => {}
            },
        );
        if let Err(e) = result {
            state.error(e);
        }
    };

    // The partitions training balances its centres over, as a layer to look at and export.
    let show_partitions = move |_| {
        let Some(gt) = label_id() else {
            return state.error("FFN partitions need a label layer of neurons");
        };
        let f = form.get_untracked();
        let lom_radius = f.partition_radius();
        let source = state
            .layers
            .with_untracked(|l| {
                l.iter()
                    .find(|l| l.info.id == gt)
                    .map(|l| l.info.name.clone())
            })
            .unwrap_or_default();
        state.run_layer_job(
            format!("FFN partitions of {source}"),
            move |request| ToWorker::FfnPartitions {
                request,
                label: gt,
                lom_radius,
                min_size: FFN_MIN_SIZE,
                name: format!("{source} · FFN partitions ({})", f.preset),
            },
            partitions,
        );
    };

    // A new slice on screen gets a live fill of its own (also while paused, when no step
    // reports come to look again).
    Effect::new(move |_| {
        state.z.track();
        if let Some(img) = image_id() {
            steer_live_fill(state, run, live_fill.get_untracked(), img);
        }
    });

    let control = move |c: TrainControl| {
        if let Some(r) = run.get_untracked() {
            worker_client::notify(&ToWorker::TrainControl {
                request: r.request,
                control: c,
            });
            run.update(|r| {
                if let Some(r) = r {
                    match c {
                        TrainControl::Pause => r.paused = true,
                        TrainControl::Resume => r.paused = false,
                        TrainControl::Stop => r.stopping = true,
                        TrainControl::PreviewSlice(_) | TrainControl::FfnFillAt(_) => {}
                    }
                }
            });
        }
    };
    let cancel = move |_| {
        if let Some(r) = run.get_untracked() {
            worker_client::cancel(r.request);
        }
    };
    let set_form = move |f: fn(&mut FfnTrainForm, &str), ev: leptos::ev::Event| {
        let v = event_target_value(&ev);
        form.update(|form| f(form, &v));
    };
    let running = move || run.with(Option::is_some);
    let drawn = move || {
        chart(
            &curve.get(),
            run.get().map_or_else(
                || curve.with(|c| c.last().map_or(1, |p| p.step)),
                |r| r.total,
            ),
            0.6,
            CHART,
        )
    };

    view! {
        <div class="tool" data-testid="ffn-train">
            <p class="hint">"A flood-filling network learns to grow one neuron at a time in 3D from dense neuron labels (every object its own ID). Use it in the Edit tab (FFN fill, Shift+G) or the Infer tab (Segment neurons)."</p>
            <label class="row">"Image"
                <select data-testid="ffn-train-image" on:change=move |ev| image.set(event_target_value(&ev).parse().ok().map(LayerId))>
                    {move || state.layer_choices(LayerKind::Image, false).into_iter().map(|(id, name)| view! {
                        <option value=id.0.to_string() selected=move || image_id() == Some(id)>{name}</option>
                    }).collect_view()}
                </select></label>
            <label class="row">"Neuron labels"
                <select data-testid="ffn-train-label" on:change=move |ev| label.set(event_target_value(&ev).parse().ok().map(LayerId))>
                    {move || state.layer_choices(LayerKind::Label, false).into_iter().map(|(id, name)| view! {
                        <option value=id.0.to_string() selected=move || label_id() == Some(id)>{name}</option>
                    }).collect_view()}
                </select></label>
            <fieldset class="settings" prop:disabled=running>
            <label class="row" title="One range of slices (e.g. 0-39); empty: the whole stack. Keep some slices out to score the model on them.">"Train on slices"
                <input type="text" data-testid="ffn-train-slices" placeholder="all" prop:value=move || slices_text.get()
                    on:change=move |ev| slices_text.set(event_target_value(&ev)) /></label>
            <label class="row" title="Go on training a stored flood-filling network on these labels, e.g. the demo's network on your own neurons">"Start from"
                <select data-testid="ffn-train-start-from" on:change=move |ev| {
                    let v = event_target_value(&ev);
                    start_from.set((!v.is_empty()).then_some(v));
                }>
                    <option value="" selected=move || start_from.get().is_none()>"fresh weights"</option>
                    <For each=ffn_models key=|m| m.name.clone() let:m>
                        <option value=m.name.clone() selected={let n = m.name.clone(); move || start_from.get().as_deref() == Some(n.as_str())}>{m.name.clone()}</option>
                    </For>
                </select></label>
            <Show when=move || start_from.get().is_none()
                fallback=move || view! { <p class="hint" data-testid="ffn-train-tuning">{move || {
                    let from = start_from.get().and_then(|n| models.get(&n));
                    from.map(|m| format!("Fine-tuning: the network and the image normalisation come from the model ({} · {} steps); the optimiser starts afresh.", m.summary.arch, m.summary.steps)).unwrap_or_default()
                }}</p> }>
            <label class="row">"Network"
                <select data-testid="ffn-train-preset" on:change=move |ev| set_form(|f, v| f.preset = v.to_string(), ev)>
                    {FFN_PRESETS.map(|p| view! { <option value=p.name selected=move || form.with(|f| f.preset == p.name)>{p.label}</option> }).collect_view()}
                </select></label>
            <p class="hint">{move || {
                let name = form.with(|f| f.preset.clone());
                FFN_PRESETS.iter().find(|p| p.name == name).map(|p| format!(
                    "depth {}, {} features, field of view {}×{}×{} (x×y×z), moves {}×{}×{}{}",
                    p.depth, p.features, p.fov[0], p.fov[1], p.fov[2], p.deltas[0], p.deltas[1], p.deltas[2],
                    if p.name == "light" { "" } else { ": slow on a CPU, meant for a GPU" })).unwrap_or_default()
            }}</p>
            </Show>
            <label class="row">"Steps"
                <input type="number" min="1" max="1000000" data-testid="ffn-train-steps" prop:value=move || form.with(|f| f.steps.to_string())
                    on:change=move |ev| set_form(|f, v| if let Ok(n) = v.parse::<u64>() { f.steps = n.clamp(1, 1_000_000) }, ev) /></label>
            <label class="row">"Batch"
                <input type="number" min="1" max="64" data-testid="ffn-train-batch" prop:value=move || form.with(|f| f.batch.to_string())
                    on:change=move |ev| set_form(|f, v| if let Ok(n) = v.parse::<usize>() { f.batch = n.clamp(1, 64) }, ev) /></label>
            <label class="row">"Learning rate (Adam)"
                <input type="number" min="0" step="any" data-testid="ffn-train-lr" prop:value=move || form.with(|f| f.learning_rate.to_string())
                    on:change=move |ev| set_form(|f, v| if let Ok(n) = v.parse::<f64>() { f.learning_rate = n.max(0.0) }, ev) /></label>
            </fieldset>
            <div class="buttons">
                <button data-testid="ffn-partitions" prop:disabled=move || label_id().is_none() on:click=show_partitions
                    title="A layer of the classes training draws its centres from in balance (google/ffn's partitions: how much of each voxel's box is its own neuron; 255 = too near the border). Export it like any layer.">"Show training partitions"</button>
            </div>
            <p class="hint" data-testid="ffn-partitions-result">{move || partitions.get().map(|c| format!("{}: {}", c.layer_name, c.summary)).unwrap_or_default()}</p>
            <DevicePicker id="ffn-train" />
            <div class="buttons">
                <button class="primary" data-testid="ffn-train-start" prop:disabled=move || running() || image_id().is_none() || label_id().is_none() on:click=start>"Start"</button>
                <Show when=move || run.with(|r| r.as_ref().is_some_and(|r| !r.paused))
                    fallback=move || view! { <button data-testid="ffn-train-resume" prop:disabled=move || !running() on:click=move |_| control(TrainControl::Resume)>"Resume"</button> }>
                    <button data-testid="ffn-train-pause" on:click=move |_| control(TrainControl::Pause)>"Pause"</button>
                </Show>
                <button data-testid="ffn-train-stop" title="End now and keep the model" prop:disabled=move || !running() on:click=move |_| control(TrainControl::Stop)>"Stop"</button>
                <button data-testid="ffn-train-cancel" title="End now and discard the model" prop:disabled=move || !running() on:click=cancel>"Cancel"</button>
            </div>
            <Show when=running>
                <div class="job train" data-testid="ffn-train-progress">
                    {move || run.get().map(|r| view! {
                        <div class="job-title">{format!("step {} / {} · {:.2} steps/s · {}{}", r.step, r.total, r.steps_per_s,
                            if r.paused { "paused".to_string() } else { eta(r.step, r.total, r.steps_per_s) },
                            if r.stopping { " · stopping" } else { "" })}</div>
                        <progress max=r.total.to_string() value=r.step.to_string()></progress>
                        <div class="hint" data-testid="ffn-train-device">{format!("on {}", r.device)}</div>
                    })}
                </div>
                <p class="hint" data-testid="ffn-train-mask" title="Voxels the network puts over 0.5 in its field of view, against the neuron of the training centre, over the steps since the last report">
                    {move || run.get().and_then(|r| r.mask).map(|(p, rc)| format!("mask precision {p:.2} · recall {rc:.2}")).unwrap_or_default()}</p>
            </Show>
            <div class="ffn-preview" class:hidden=move || previewed.get().is_none()>
                <canvas node_ref=preview_ref data-testid="ffn-train-preview"
                    title="The middle slice of one training example: the image, the neuron it should fill (green), and what the network fills (yellow) with its last field of view (cyan)"></canvas>
                <p class="hint" data-testid="ffn-train-preview-info">{move || previewed.get().map(|s| format!("image · neuron to fill · network's mask (step {s})")).unwrap_or_default()}</p>
            </div>
            <label class="row" title="Every few seconds the network as it is now fills the object at the centre of the view, drawn over the slice in yellow (its box dashed). Pan or change slices to look elsewhere, also at slices it does not train on.">
                <input type="checkbox" data-testid="ffn-train-live-fill" prop:checked=move || live_fill.get()
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        live_fill.set(on);
                        if !on {
                            filled.set(None);
                            super::viewer::show_live_fill(None);
                        }
                        if let Some(img) = image_id() {
                            steer_live_fill(state, run, on, img);
                        }
                    } />"Live fill on the slice (the object at the view's centre)"</label>
            <p class="hint" data-testid="ffn-train-fill-info">{move || filled.get().unwrap_or_default()}</p>
            <LossChart testid="ffn-train-chart" curve=curve drawn=Signal::derive(drawn) />
            <p class="hint"><span class="swatch rand"></span>"training loss (log scale, smoothed) against the step"</p>
            <p class="hint"><button class="link" data-testid="ffn-train-curve-csv" title="Download the curves as a CSV file (step, training loss, mask precision, mask recall)"
                    prop:disabled=move || rows.with(Vec::is_empty)
                    on:click=move |_| {
                        let csv = rows.with_untracked(|r| ffn_curve_csv(r));
                        let buffer = js_sys::Uint8Array::from(csv.as_bytes()).buffer();
                        super::fsjs::download_file("ffn-training-loss.csv", &buffer.into(), "text/csv");
                    }>"Save the curves (CSV)"</button></p>
            <p class="result" data-testid="ffn-train-result">{move || outcome.get().unwrap_or_default()}</p>
        </div>
    }
}

/// Asks the run for a live fill at the view's centre on the slice on screen when that moved
/// (or to stop when `on` is false); nothing before the run said its box size.
fn steer_live_fill(state: AppState, run: RwSignal<Option<Run>>, on: bool, image: LayerId) {
    let Some(r) = run.get_untracked() else {
        return;
    };
    let wanted = match (on, r.fill_radius) {
        (true, Some(radius)) => state
            .layers
            .with_untracked(|l| l.iter().find(|l| l.info.id == image).map(|l| l.info.shape))
            .and_then(|shape| {
                let view = super::viewer::visible_region(shape.y, shape.x)?;
                let centre = ((view.y0 + view.y1) / 2, (view.x0 + view.x1) / 2);
                live_fill_seed(
                    [shape.z, shape.y, shape.x],
                    state.z.get_untracked(),
                    centre,
                    radius,
                )
            })
            .map(|voxel| FfnFillAt { voxel, radius }),
        _ => None,
    };
    if wanted == r.fill_at {
        return;
    }
    worker_client::notify(&ToWorker::TrainControl {
        request: r.request,
        control: TrainControl::FfnFillAt(wanted),
    });
    run.update(|r| {
        if let Some(r) = r {
            r.fill_at = wanted;
        }
    });
}

/// Draws a live fill over its slice; the line saying what it found (none when it cannot be
/// drawn).
fn show_live_fill(
    seed: [usize; 3],
    origin: [usize; 3],
    size: [usize; 3],
    probability: &[u8],
    (step, fovs, compute_ms): (u64, u32, f64),
) -> Option<String> {
    use wasm_bindgen::JsCast;
    let (rgba, object) = live_fill_rgba(probability, size[2])?;
    let data = web_sys::ImageData::new_with_u8_clamped_array_and_sh(
        wasm_bindgen::Clamped(&rgba),
        size[2] as u32,
        size[1] as u32,
    )
    .ok()?;
    let canvas: web_sys::HtmlCanvasElement = web_sys::window()?
        .document()?
        .create_element("canvas")
        .ok()?
        .dyn_into()
        .ok()?;
    canvas.set_width(size[2] as u32);
    canvas.set_height(size[1] as u32);
    canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())?
        .put_image_data(&data, 0, 0)
        .ok()?;
    super::viewer::show_live_fill(Some(super::viewer::LiveFill {
        z: seed[0],
        y0: origin[1],
        x0: origin[2],
        seed: (seed[1], seed[2]),
        canvas,
    }));
    Some(format!(
        "live fill at x {}, y {}, slice {} after step {step}: {object} pixels of the object on \
         this slice · {fovs} fields of view · {:.1} s",
        seed[2],
        seed[1],
        seed[0],
        compute_ms / 1000.0
    ))
}

/// Draws a training preview at its own size (CSS scales it up, pixelated); false when it
/// could not be drawn.
fn draw_preview(canvas: &web_sys::HtmlCanvasElement, p: &FfnTrainPreview) -> bool {
    use wasm_bindgen::JsCast;
    let Some((width, height, pixels)) = ffn_preview_rgba(p) else {
        return false;
    };
    let Ok(data) = web_sys::ImageData::new_with_u8_clamped_array_and_sh(
        wasm_bindgen::Clamped(&pixels),
        width,
        height,
    ) else {
        return false;
    };
    canvas.set_width(width);
    canvas.set_height(height);
    canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
        .is_some_and(|ctx| ctx.put_image_data(&data, 0, 0).is_ok())
}
