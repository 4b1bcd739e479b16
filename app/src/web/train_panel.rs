//! The Train panel (UNI-EM's 2D DNN dialog, and more): image and ground-truth layers, which
//! slices to train and validate on, network, loss, steps, batch, patch, learning rate and
//! augmentations; Start, Pause / Resume, Stop (keep the model) and Cancel (discard). While
//! training: a progress bar with speed and ETA, a live loss chart (log scale, smoothing; saved as CSV) and
//! the network's prediction of the slice being viewed, refreshed as it learns. The trained
//! model goes to the model store (see [`super::models`]).

use super::fsjs;
use super::models::Models;
use super::net_device::{DevicePicker, NetDevices};
use super::state::AppState;
use super::worker_client;
use crate::training_ui::{
    arch_choice, chart, curve_csv, eta, limits, patch_note, size_label, trained_model_name, Chart,
    CurvePoint, TrainForm, ARCHITECTURES,
};
use emstudio_core::slices::parse_slice_list;
use emstudio_protocol::{FromWorker, LayerId, LayerKind, RequestId, ToWorker, TrainControl};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// Where a run is.
#[derive(Clone, Debug, PartialEq)]
struct Run {
    request: RequestId,
    device: String,
    /// Patch side the trainer uses, and the one asked for (it shrinks to fit small slices).
    patch: (usize, usize),
    step: u64,
    total: u64,
    steps_per_s: f64,
    paused: bool,
    stopping: bool,
}

/// The loss chart's size in SVG units.
pub const CHART: (f64, f64, f64) = (300.0, 160.0, 28.0);

/// The panel.
#[component]
pub fn TrainPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let models = expect_context::<Models>();
    let devices = expect_context::<NetDevices>();
    let form = RwSignal::new(TrainForm::default());
    let image = RwSignal::new(None::<LayerId>);
    let label = RwSignal::new(None::<LayerId>);
    let train_text = RwSignal::new(String::new());
    let validation_text = RwSignal::new(String::new());
    let run = RwSignal::new(None::<Run>);
    let curve = RwSignal::new(Vec::<CurvePoint>::new());
    let smoothing = RwSignal::new(0.6f64);
    let outcome = RwSignal::new(None::<String>);
    let preview_ref = NodeRef::<leptos::html::Canvas>::new();
    let preview_info = RwSignal::new(None::<(usize, u64)>);
    let live_preview = RwSignal::new(true);
    // Fine-tune a stored model instead of starting from fresh weights.
    let start_from = RwSignal::new(None::<String>);

    // Images gray or RGB (the networks take either); ground truth single-channel labels.
    let layers_of = move |want_labels: bool| {
        if want_labels {
            state.layer_choices(LayerKind::Label, true)
        } else {
            state.layer_choices(LayerKind::Image, false)
        }
    };
    let pick = move |chosen: Option<LayerId>, list: Vec<(LayerId, String)>| {
        chosen
            .filter(|id| list.iter().any(|(i, _)| i == id))
            .or_else(|| list.first().map(|(i, _)| *i))
    };
    let image_id = move || pick(image.get(), layers_of(false));
    let label_id = move || pick(label.get(), layers_of(true));
    // Training slices default to the slice on screen.
    let train_slices_text = move || {
        let t = train_text.get();
        if t.trim().is_empty() {
            state.z.get().to_string()
        } else {
            t
        }
    };

    let start = move |_| {
        let (Some(img), Some(gt)) = (image_id(), label_id()) else {
            return state.error("training needs an image layer and a ground-truth label layer");
        };
        let depth = state.depth();
        let train_slices = match parse_slice_list(&train_slices_text(), depth) {
            Ok(z) => z,
            Err(e) => return state.error(format!("training slices: {e}")),
        };
        let validation_slices = if validation_text.get_untracked().trim().is_empty() {
            Vec::new()
        } else {
            match parse_slice_list(&validation_text.get_untracked(), depth) {
                Ok(z) => z,
                Err(e) => return state.error(format!("validation slices: {e}")),
            }
        };
        let f = form.get_untracked();
        let config_json = f.config_json();
        let preview_every = (f.steps / 20).clamp(5, 200) as u32;
        let wanted_patch = f.patch;
        let image_name = state
            .layers
            .with_untracked(|l| {
                l.iter()
                    .find(|l| l.info.id == img)
                    .map(|l| l.info.name.clone())
            })
            .unwrap_or_default();
        curve.set(Vec::new());
        outcome.set(None);
        preview_info.set(None);
        let z = state.z.get_untracked();
        let init = start_from
            .get_untracked()
            .and_then(|name| models.get(&name));
        let arch = init
            .as_ref()
            .map_or_else(|| f.arch.clone(), |m| m.summary.arch.clone());
        let attachments: Vec<wasm_bindgen::JsValue> =
            init.iter().filter_map(|m| models.buffer(&m.name)).collect();
        let result = worker_client::request(
            move |request| ToWorker::Train {
                request,
                image: img,
                label: gt,
                train_slices,
                validation_slices,
                config_json,
                ignore_label: None,
                preview_z: live_preview.get_untracked().then_some(z),
                preview_every,
                device: devices.choice.get_untracked(),
            },
            &attachments,
            move |msg, attachments| match msg {
                FromWorker::TrainStarted {
                    request,
                    device,
                    total,
                    patch,
                    ..
                } => run.set(Some(Run {
                    request,
                    device,
                    patch: (patch, wanted_patch),
                    step: 0,
                    total,
                    steps_per_s: 0.0,
                    paused: false,
                    stopping: false,
                })),
                FromWorker::TrainStep {
                    step,
                    total,
                    loss,
                    validation,
                    steps_per_s,
                    ..
                } => {
                    run.update(|r| {
                        if let Some(r) = r {
                            (r.step, r.total, r.steps_per_s) = (step, total, steps_per_s);
                        }
                    });
                    curve.update(|c| {
                        c.push(CurvePoint {
                            step,
                            train: loss,
                            validation,
                        })
                    });
                }
                FromWorker::TrainPreview { z, step, .. } => {
                    if let (Some(canvas), Some(bitmap)) =
                        (preview_ref.get_untracked(), attachments.first())
                    {
                        draw_preview(&canvas, bitmap);
                        preview_info.set(Some((z, step)));
                    }
                }
                FromWorker::Trained { steps, summary, .. } => {
                    run.set(None);
                    let bytes = attachments
                        .first()
                        .map(|b| js_sys::Uint8Array::new(b).to_vec())
                        .unwrap_or_default();
                    let wanted = trained_model_name(&arch, &image_name, steps);
                    match models.add(state, &wanted, bytes) {
                        Ok(name) => outcome.set(Some(format!("{summary} → model {name}"))),
                        Err(e) => state.error(e),
                    }
                }
                FromWorker::Failed { error, .. } => {
                    run.set(None);
                    state.error(format!("training: {error}"));
                }
                FromWorker::Cancelled { .. } => {
                    run.set(None);
                    outcome.set(Some("cancelled; nothing was kept".into()));
                }
                _ => {}
            },
        );
        if let Err(e) = result {
            state.error(e);
        }
    };

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
    // The preview follows the slice on screen (and stops when switched off).
    Effect::new(move |_| {
        let z = live_preview.get().then(|| state.z.get());
        if run.with_untracked(Option::is_some) {
            control(TrainControl::PreviewSlice(z));
        }
    });

    let set_form = move |f: fn(&mut TrainForm, &str), ev: leptos::ev::Event| {
        let v = event_target_value(&ev);
        form.update(|form| f(form, &v));
    };
    let set_flag = move |f: fn(&mut TrainForm, bool), ev: leptos::ev::Event| {
        let v = event_target_checked(&ev);
        form.update(|form| f(form, v));
    };
    let running = move || run.with(Option::is_some);
    let drawn = move || {
        chart(
            &curve.get(),
            run.get().map_or_else(
                || curve.with(|c| c.last().map_or(1, |p| p.step)),
                |r| r.total,
            ),
            smoothing.get(),
            CHART,
        )
    };
    let size = move || size_label(&form.with(|f| f.arch.clone()));
    // Fine-tuning starts from a 2D model (flood-filling networks train in the FFN mode).
    let cnn_models = move || {
        let mut list = models.list.get();
        list.retain(|m| m.summary.kind == crate::training_ui::ModelKind::Cnn2d);
        list
    };

    view! {
        <div class="tool" data-testid="train">
            <label class="row">"Image"
                <select data-testid="train-image" on:change=move |ev| image.set(event_target_value(&ev).parse().ok().map(LayerId))>
                    <For each=move || layers_of(false) key=|(id, _)| *id let:item>
                        <option value=item.0.0.to_string() selected=move || image_id() == Some(item.0)>{item.1.clone()}</option>
                    </For>
                </select></label>
            <label class="row">"Ground truth"
                <select data-testid="train-label" on:change=move |ev| label.set(event_target_value(&ev).parse().ok().map(LayerId))>
                    <For each=move || layers_of(true) key=|(id, _)| *id let:item>
                        <option value=item.0.0.to_string() selected=move || label_id() == Some(item.0)>{item.1.clone()}</option>
                    </For>
                </select></label>
            <Show when=move || label_id().is_none()>
                <p class="hint">"Open or paint a label layer: foreground (label ≠ 0) is what the network learns."</p>
            </Show>
            <fieldset class="settings" prop:disabled=running>
            <label class="row">"Train on slices"
                <input type="text" data-testid="train-slices" placeholder="e.g. 0-4" prop:value=train_slices_text
                    on:change=move |ev| train_text.set(event_target_value(&ev)) /></label>
            <label class="row">"Validate on"
                <input type="text" data-testid="train-validation" placeholder="bottom fifth of one slice" prop:value=move || validation_text.get()
                    on:change=move |ev| validation_text.set(event_target_value(&ev)) /></label>
            <h3>"Network"</h3>
            <DevicePicker id="train" />
            <label class="row">"Start from"
                <select data-testid="train-start-from" on:change=move |ev| {
                    let v = event_target_value(&ev);
                    start_from.set((!v.is_empty()).then_some(v));
                }>
                    <option value="" selected=move || start_from.get().is_none()>"fresh weights"</option>
                    <For each=cnn_models key=|m| m.name.clone() let:m>
                        <option value=m.name.clone() selected={let n = m.name.clone(); move || start_from.get().as_deref() == Some(n.as_str())}>{m.name.clone()}</option>
                    </For>
                </select></label>
            <Show when=move || start_from.get().is_some()>
                <p class="hint">"Fine-tuning: the network (architecture, size, width) comes from the model."</p>
            </Show>
            <label class="row">"Architecture"
                <select data-testid="train-arch" on:change=move |ev| set_form(|f, v| {
                    f.arch = v.to_string();
                    f.size = arch_choice(v).default_size;
                }, ev)>
                    {ARCHITECTURES.map(|a| view! { <option value=a.name>{a.label}</option> }).collect_view()}
                </select></label>
            <label class="row">{move || size().0}
                <input type="number" step="1" data-testid="train-size" prop:min=move || size().1 prop:max=move || size().2
                    prop:value=move || form.with(|f| f.size.to_string())
                    on:change=move |ev| set_form(|f, v| if let Ok(n) = v.parse::<usize>() { f.size = n.max(1) }, ev) /></label>
            <label class="row">"Base width"
                <input type="number" min="1" max=limits::MAX_BASE_WIDTH step="1" data-testid="train-width" prop:value=move || form.with(|f| f.base_width.to_string())
                    on:change=move |ev| set_form(|f, v| if let Ok(n) = v.parse::<usize>() { f.base_width = n.clamp(1, limits::MAX_BASE_WIDTH) }, ev) /></label>
            <label class="row">"Loss"
                <select data-testid="train-loss" on:change=move |ev| set_form(|f, v| f.loss = v.to_string(), ev)>
                    <option value="softmax_cross_entropy">"Cross-entropy"</option>
                    <option value="dice">"Dice"</option>
                    <option value="square">"Square (least squares)"</option>
                    <option value="logistic">"Logistic"</option>
                    <option value="l1">"L1"</option>
                </select></label>
            <h3>"Schedule"</h3>
            <label class="row">"Steps"
                <input type="number" min="1" max=limits::MAX_STEPS step="1" data-testid="train-steps" prop:value=move || form.with(|f| f.steps.to_string())
                    on:change=move |ev| set_form(|f, v| if let Ok(n) = v.parse::<u64>() { f.steps = n.clamp(1, limits::MAX_STEPS) }, ev) /></label>
            <label class="row">"Batch"
                <input type="number" min="1" max=limits::MAX_BATCH step="1" data-testid="train-batch" prop:value=move || form.with(|f| f.batch.to_string())
                    on:change=move |ev| set_form(|f, v| if let Ok(n) = v.parse::<usize>() { f.batch = n.clamp(1, limits::MAX_BATCH) }, ev) /></label>
            <label class="row">"Patch (px)"
                <input type="number" min="16" max=limits::MAX_PATCH step="16" data-testid="train-patch" prop:value=move || form.with(|f| f.patch.to_string())
                    on:change=move |ev| set_form(|f, v| if let Ok(n) = v.parse::<usize>() { f.patch = n.clamp(16, limits::MAX_PATCH) }, ev) /></label>
            <label class="row">"Learning rate"
                <input type="number" min="0" step="any" data-testid="train-lr" prop:value=move || form.with(|f| f.learning_rate.to_string())
                    on:change=move |ev| set_form(|f, v| if let Ok(n) = v.parse::<f64>() { f.learning_rate = n.max(0.0) }, ev) /></label>
            <h3>"Augmentation"</h3>
            <div class="choice">
                <label><input type="checkbox" data-testid="train-aug-flips" prop:checked=move || form.with(|f| f.flips) on:change=move |ev| set_flag(|f, v| f.flips = v, ev) />"Flips / rotations"</label>
                <label><input type="checkbox" data-testid="train-aug-elastic" prop:checked=move || form.with(|f| f.elastic) on:change=move |ev| set_flag(|f, v| f.elastic = v, ev) />"Elastic"</label>
                <label><input type="checkbox" data-testid="train-aug-intensity" prop:checked=move || form.with(|f| f.intensity) on:change=move |ev| set_flag(|f, v| f.intensity = v, ev) />"Brightness / contrast"</label>
                <label><input type="checkbox" data-testid="train-aug-noise" prop:checked=move || form.with(|f| f.noise) on:change=move |ev| set_flag(|f, v| f.noise = v, ev) />"Noise / blur"</label>
            </div>
            </fieldset>
            <div class="buttons">
                <button class="primary" data-testid="train-start" prop:disabled=move || running() || image_id().is_none() || label_id().is_none() on:click=start>"Start"</button>
                <Show when=move || run.with(|r| r.as_ref().is_some_and(|r| !r.paused))
                    fallback=move || view! { <button data-testid="train-resume" prop:disabled=move || !running() on:click=move |_| control(TrainControl::Resume)>"Resume"</button> }>
                    <button data-testid="train-pause" on:click=move |_| control(TrainControl::Pause)>"Pause"</button>
                </Show>
                <button data-testid="train-stop" title="End now and keep the model" prop:disabled=move || !running() on:click=move |_| control(TrainControl::Stop)>"Stop"</button>
                <button data-testid="train-cancel" title="End now and discard the model" prop:disabled=move || !running() on:click=cancel>"Cancel"</button>
            </div>
            <Show when=running>
                <div class="job train" data-testid="train-progress">
                    {move || run.get().map(|r| view! {
                        <div class="job-title">{format!("step {} / {} · {:.1} steps/s · {}{}", r.step, r.total, r.steps_per_s,
                            if r.paused { "paused".to_string() } else { eta(r.step, r.total, r.steps_per_s) },
                            if r.stopping { " · stopping" } else { "" })}</div>
                        <progress max=r.total.to_string() value=r.step.to_string() data-steps-per-s=format!("{:.3}", r.steps_per_s)></progress>
                        <div class="hint" data-testid="train-device">{format!("on {}{}", r.device, patch_note(r.patch))}</div>
                    })}
                </div>
            </Show>
            <LossChart testid="train-chart" curve=curve drawn=Signal::derive(drawn) />
            <p class="hint"><span class="swatch rand"></span>"training  "<span class="swatch info"></span>"validation  loss (log scale) against the step"</p>
            <p class="hint"><button class="link" data-testid="train-curve-csv" title="Download the loss curves as a CSV file (step, training loss, validation loss)"
                    prop:disabled=move || curve.with(Vec::is_empty)
                    on:click=move |_| {
                        let csv = curve.with_untracked(|c| curve_csv(c));
                        let buffer = js_sys::Uint8Array::from(csv.as_bytes()).buffer();
                        fsjs::download_file("training-loss.csv", &buffer.into(), "text/csv");
                    }>"Save the curves (CSV)"</button></p>
            <label class="row"><input type="checkbox" data-testid="train-live-preview" prop:checked=move || live_preview.get()
                on:change=move |ev| live_preview.set(event_target_checked(&ev)) />"Show the prediction while training"</label>
            <label class="row">"Smoothing"
                <input type="range" min="0" max="0.95" step="0.05" prop:value=move || smoothing.get().to_string()
                    on:input=move |ev| smoothing.set(event_target_value(&ev).parse().unwrap_or(0.6)) /></label>
            <div class="train-preview" class:hidden=move || preview_info.get().is_none()>
                <canvas node_ref=preview_ref data-testid="train-preview"></canvas>
                <p class="hint">{move || preview_info.get().map(|(z, step)| format!("prediction of slice {z} at step {step} (white = foreground)")).unwrap_or_default()}</p>
            </div>
            <p class="result" data-testid="train-result">{move || outcome.get().unwrap_or_default()}</p>
        </div>
    }
}

/// The loss chart of a training run (log scale, against the step), shared by the 2D and the
/// FFN mode of the Train tab; `drawn` is the laid-out chart ([`chart`] with [`CHART`]).
#[component]
pub fn LossChart(
    /// `data-testid` of the SVG (its `data-points` says how many points it has).
    testid: &'static str,
    /// The run's points.
    curve: RwSignal<Vec<CurvePoint>>,
    /// The laid-out chart.
    drawn: Signal<Chart>,
) -> impl IntoView {
    view! {
        <svg class="plot" data-testid=testid data-points=move || curve.with(|c| c.len().to_string())
            viewBox=format!("0 0 {} {}", CHART.0, CHART.1) width="100%">
            <rect x=CHART.2 y=CHART.2 width=CHART.0 - 2.0 * CHART.2 height=CHART.1 - 2.0 * CHART.2 class="plot-frame"></rect>
            {move || {
                let c = drawn.get();
                view! {
                    {c.y_ticks.iter().map(|(y, label)| view! {
                        <line x1=CHART.2 - 3.0 x2=CHART.0 - CHART.2 y1=*y y2=*y class="plot-grid"></line>
                        <text x=CHART.2 - 5.0 y=*y + 3.0 class="plot-label" text-anchor="end">{label.clone()}</text>
                    }).collect_view()}
                    {c.x_ticks.iter().map(|(x, label)| view! {
                        <text x=*x y=CHART.1 - 10.0 class="plot-label" text-anchor="middle">{label.clone()}</text>
                    }).collect_view()}
                    <polyline points=c.train class="plot-rand"></polyline>
                    <polyline points=c.validation class="plot-info"></polyline>
                }
            }}
        </svg>
    }
}

/// Draws a preview bitmap into the panel's canvas at its own size.
fn draw_preview(canvas: &web_sys::HtmlCanvasElement, bitmap: &wasm_bindgen::JsValue) {
    let Some(bitmap) = bitmap.dyn_ref::<web_sys::ImageBitmap>() else {
        return;
    };
    canvas.set_width(bitmap.width());
    canvas.set_height(bitmap.height());
    if let Some(ctx) = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
    {
        let _ = ctx.draw_image_with_image_bitmap(bitmap, 0.0, 0.0);
    }
    bitmap.close();
}
