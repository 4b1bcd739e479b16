//! The Postprocess panel: a probability, binary or label layer → threshold → 3D labels
//! (components, distance or marker watershed, or per-slice components linked across z) →
//! size filter → a new label layer, in one form; a watershed can run in blocks of slices on the
//! helper workers. The worker runs
//! `emstudio_core::labels::postprocess`, the same chain as `emstudio label`.

use super::state::{AppState, Created};
use super::worker_client;
use emstudio_core::labels::blocks::BlockParams;
use emstudio_core::labels::postprocess::{LabelMethod, PostprocessParams, ThresholdChoice};
use emstudio_core::labels::watershed::DistanceWatershedParams;
use emstudio_core::neighborhood::{Connectivity2, Connectivity3};
use emstudio_protocol::{LayerId, LayerKind, ToWorker};
use leptos::prelude::*;

fn connectivity3(text: &str) -> Connectivity3 {
    match text {
        "6" => Connectivity3::C6,
        "18" => Connectivity3::C18,
        _ => Connectivity3::C26,
    }
}

/// The panel.
#[component]
pub fn PostprocessPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let source = RwSignal::new(None::<LayerId>);
    let threshold_kind = RwSignal::new(String::from("fixed"));
    let threshold = RwSignal::new(None::<f64>);
    let below = RwSignal::new(false);
    let method = RwSignal::new(String::from("components"));
    let conn3 = RwSignal::new(String::from("26"));
    let conn2 = RwSignal::new(String::from("8"));
    let min_distance = RwSignal::new(5usize);
    let use_voxel_size = RwSignal::new(true);
    let markers = RwSignal::new(None::<LayerId>);
    let min_overlap = RwSignal::new(0.5f64);
    let min_size = RwSignal::new(0u64);
    // A watershed in blocks of slices runs on the helper workers side by side; the same blocks
    // give the same labels on any machine (`emstudio label --block-depth`).
    let in_blocks = RwSignal::new(true);
    let block_depth = RwSignal::new(None::<usize>);
    let block_overlap = RwSignal::new(BlockParams::default().halo);
    let result = RwSignal::new(None::<Created>);

    let layers = move || {
        state.layers.with(|l| {
            l.iter()
                .filter(|l| l.info.channels == 1 && l.info.kind != LayerKind::Errors)
                .map(|l| l.info.clone())
                .collect::<Vec<_>>()
        })
    };
    let selected = move || {
        let list = layers();
        source
            .get()
            .and_then(|id| list.iter().find(|l| l.id == id).cloned())
            .or_else(|| {
                // Prefer a probability map (a computed float image), then any image.
                list.iter()
                    .rev()
                    .find(|l| l.kind == LayerKind::Image && l.dtype == emstudio_core::DType::F32)
                    .or_else(|| list.first())
                    .cloned()
            })
    };
    // The default threshold is the middle of the selected layer's range; labels use nonzero.
    let threshold_value = move || {
        threshold
            .get()
            .unwrap_or_else(|| selected().map(|l| (l.min + l.max) / 2.0).unwrap_or(0.5))
    };
    // A newly chosen input resets the threshold (labels and masks: nonzero voxels).
    let selected_id = Memo::new(move |_| selected().map(|l| (l.id, l.kind)));
    Effect::new(move |_| {
        if let Some((_, kind)) = selected_id.get() {
            threshold_kind.set(
                if kind == LayerKind::Label {
                    "nonzero"
                } else {
                    "fixed"
                }
                .into(),
            );
            threshold.set(None);
        }
    });
    // Unless the user says otherwise, one block per helper, of at least the default depth (the
    // overlap read by each block costs less in thick blocks).
    let depth_value = move || {
        block_depth.get().unwrap_or_else(|| {
            let helpers = worker_client::parallel().helpers.max(1) as usize;
            let slices = selected().map(|l| l.shape.z).unwrap_or(0);
            slices.div_ceil(helpers).max(BlockParams::default().depth)
        })
    };
    let label_layers = move || state.layer_choices(LayerKind::Label, false);
    let marker_id = move || {
        let list = label_layers();
        markers
            .get()
            .filter(|id| list.iter().any(|(i, _)| i == id))
            .or_else(|| list.first().map(|(i, _)| *i))
    };

    let params = move || -> Result<(PostprocessParams, Option<LayerId>), String> {
        let threshold = match threshold_kind.get().as_str() {
            "otsu" => ThresholdChoice::Otsu,
            "nonzero" => ThresholdChoice::Nonzero,
            _ => ThresholdChoice::Fixed(threshold_value() as f32),
        };
        let (method, marker) = match method.get().as_str() {
            "distance" => (
                LabelMethod::DistanceWatershed(DistanceWatershedParams {
                    min_distance: min_distance.get(),
                    connectivity: connectivity3(&conn3.get()),
                    use_voxel_size: use_voxel_size.get(),
                }),
                None,
            ),
            "markers" => (
                LabelMethod::MarkerWatershed {
                    connectivity: connectivity3(&conn3.get()),
                },
                Some(marker_id().ok_or("open a label layer with seeds to use as markers")?),
            ),
            "slices" => (
                LabelMethod::SlicesLinked {
                    connectivity: if conn2.get() == "4" {
                        Connectivity2::C4
                    } else {
                        Connectivity2::C8
                    },
                    min_overlap: min_overlap.get(),
                },
                None,
            ),
            _ => (
                LabelMethod::Components {
                    connectivity: connectivity3(&conn3.get()),
                },
                None,
            ),
        };
        Ok((
            PostprocessParams {
                threshold,
                foreground_below: below.get(),
                blocks: (in_blocks.get() && method.is_watershed()).then(|| BlockParams {
                    depth: depth_value(),
                    halo: block_overlap.get(),
                }),
                method,
                min_size: min_size.get(),
            },
            marker,
        ))
    };

    let run = move |_| {
        let Some(layer) = selected() else { return };
        let (params, markers) = match params() {
            Ok(p) => p,
            Err(e) => return state.error(e),
        };
        let name = format!("{} · objects", layer.name);
        let id = layer.id;
        state.run_layer_job(
            format!("Labelling {}", layer.name),
            move |request| ToWorker::Postprocess {
                request,
                layer: id,
                markers,
                params,
                name,
            },
            result,
        );
    };

    let num = |ev: &leptos::ev::Event| event_target_value(ev).trim().parse::<f64>().ok();

    view! {
        <div class="tool" data-testid="postprocess">
            <label class="row">"Input"
                <select data-testid="post-source" on:change=move |ev| source.set(event_target_value(&ev).parse().ok().map(LayerId))>
                    <For each=layers key=|l| l.id let:l>
                        <option value=l.id.0.to_string() selected=move || selected().map(|s| s.id) == Some(l.id)>{l.name.clone()}</option>
                    </For>
                </select>
            </label>
            <Show when=move || layers().is_empty()>
                <p class="hint">"Open or compute a probability map, mask or label layer."</p>
            </Show>
            <h3>"1 · Threshold"</h3>
            <div class="choice">
                <label><input type="radio" name="thr" value="fixed" prop:checked=move || threshold_kind.get() == "fixed"
                    on:change=move |_| threshold_kind.set("fixed".into()) />"Fixed"</label>
                <input type="number" step="any" data-testid="post-threshold" prop:value=move || format!("{}", threshold_value())
                    prop:disabled=move || threshold_kind.get() != "fixed"
                    on:change=move |ev| threshold.set(num(&ev)) />
                <label><input type="radio" name="thr" value="otsu" data-testid="post-otsu" prop:checked=move || threshold_kind.get() == "otsu"
                    on:change=move |_| threshold_kind.set("otsu".into()) />"Otsu"</label>
                <label><input type="radio" name="thr" value="nonzero" prop:checked=move || threshold_kind.get() == "nonzero"
                    on:change=move |_| threshold_kind.set("nonzero".into()) />"Nonzero"</label>
            </div>
            <p class="hint">{move || selected().map(|l| format!("values {} … {}", l.min, l.max)).unwrap_or_default()}</p>
            <label class="row"><input type="checkbox" data-testid="post-below" prop:checked=move || below.get()
                on:change=move |ev| below.set(event_target_checked(&ev)) />"Foreground is below the threshold (membrane maps)"</label>
            <h3>"2 · Objects"</h3>
            <select data-testid="post-method" on:change=move |ev| method.set(event_target_value(&ev))>
                <option value="components">"3D connected components"</option>
                <option value="distance">"Watershed from distance peaks (split touching)"</option>
                <option value="markers">"Watershed from a marker layer"</option>
                <option value="slices">"2D per slice, linked across z"</option>
            </select>
            <Show when=move || method.get() != "slices" fallback=move || view! {
                <label class="row">"Connectivity"
                    <select on:change=move |ev| conn2.set(event_target_value(&ev))>
                        <option value="8">"8"</option><option value="4">"4"</option>
                    </select></label>
                <label class="row">"Min overlap to link"
                    <input type="number" step="0.05" min="0" max="1" prop:value=move || min_overlap.get().to_string()
                        on:change=move |ev| if let Some(v) = num(&ev) { min_overlap.set(v.clamp(0.0, 1.0)) } /></label>
            }>
                <label class="row">"Connectivity"
                    <select data-testid="post-connectivity" on:change=move |ev| conn3.set(event_target_value(&ev))>
                        <option value="26">"26"</option><option value="18">"18"</option><option value="6">"6"</option>
                    </select></label>
            </Show>
            <Show when=move || method.get() == "distance">
                <label class="row">"Min seed distance (voxels)"
                    <input type="number" min="1" step="1" data-testid="post-min-distance" prop:value=move || min_distance.get().to_string()
                        on:change=move |ev| if let Some(v) = num(&ev) { min_distance.set(v.max(1.0) as usize) } /></label>
                <label class="row"><input type="checkbox" prop:checked=move || use_voxel_size.get()
                    on:change=move |ev| use_voxel_size.set(event_target_checked(&ev)) />"Measure with the voxel size"</label>
            </Show>
            <Show when=move || method.get() == "markers">
                <label class="row">"Markers"
                    <select on:change=move |ev| markers.set(event_target_value(&ev).parse().ok().map(LayerId))>
                        <For each=label_layers key=|(id, _)| *id let:item>
                            <option value=item.0.0.to_string()>{item.1.clone()}</option>
                        </For>
                    </select></label>
            </Show>
            <Show when=move || method.get() == "distance" || method.get() == "markers">
                <label class="row" title="Each block reads the overlap beyond its own slices on both sides; blocks run side by side on the helper workers and are joined where they overlap. Labels near block borders can differ slightly from one whole-volume run.">
                    <input type="checkbox" data-testid="post-blocks" prop:checked=move || in_blocks.get()
                        on:change=move |ev| in_blocks.set(event_target_checked(&ev)) />"In blocks of"
                    <input type="number" min="1" step="1" class="short" data-testid="post-block-depth" prop:value=move || depth_value().to_string()
                        prop:disabled=move || !in_blocks.get()
                        on:change=move |ev| block_depth.set(num(&ev).map(|v| v.max(1.0) as usize)) />"slices, overlap"
                    <input type="number" min="1" step="1" class="short" data-testid="post-block-overlap" prop:value=move || block_overlap.get().to_string()
                        prop:disabled=move || !in_blocks.get()
                        on:change=move |ev| if let Some(v) = num(&ev) { block_overlap.set(v.max(1.0) as usize) } /></label>
            </Show>
            <h3>"3 · Size filter"</h3>
            <label class="row">"Remove objects under"
                <input type="number" min="0" step="1" data-testid="post-min-size" prop:value=move || min_size.get().to_string()
                    on:change=move |ev| min_size.set(num(&ev).unwrap_or(0.0).max(0.0) as u64) />"voxels"</label>
            <div class="buttons">
                <button class="primary" data-testid="post-run" prop:disabled=move || selected().is_none() on:click=run>"Make label layer"</button>
            </div>
            <p class="result" data-testid="post-result" data-compute-ms=move || result.get().map(|c| format!("{:.1}", c.compute_ms))>
                {move || result.get().map(|c| c.summary).unwrap_or_default()}
            </p>
        </div>
    }
}
