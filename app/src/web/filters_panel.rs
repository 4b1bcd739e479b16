//! The Filters panel: build a pipeline (add, remove, reorder, edit parameters), preview it on
//! the current slice, apply it to the whole stack in the worker, save and load it as JSON.
//!
//! Each step is edited as the JSON object of its [`FilterSpec`] (`{"filter":"gaussian",
//! "sigma":[1,1]}`): numbers, per-axis lists, booleans and the morphology choices each get
//! their own input, so one editor serves every filter, and the saved file is exactly what
//! `emstudio filter --pipeline` reads. Every edit is checked by parsing the step back into a
//! `FilterSpec`; an invalid step shows why and blocks preview and apply.

use super::fsjs;
use super::state::{AppState, Created};
use crate::pipeline_edit::{
    choices, has_axes, is_3d, parse_number, pipeline_json, set_3d, value_text, Step, AXIS_FIELDS,
};
use emstudio_core::filters::{catalog, Pipeline};
use emstudio_protocol::{LayerId, LayerKind, ToWorker};
use leptos::prelude::*;
use serde_json::{Map, Value};
use wasm_bindgen::JsCast;

/// The panel.
#[component]
pub fn FiltersPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let steps = RwSignal::new(Vec::<Step>::new());
    let next_key = StoredValue::new(0u32);
    let source = RwSignal::new(None::<LayerId>);
    let previewing = RwSignal::new(false);
    let result = RwSignal::new(None::<Created>);
    let add_choice = RwSignal::new(0usize);

    let images = move || state.layer_choices(LayerKind::Image, true);
    let source_id = move || {
        let list = images();
        source
            .get()
            .filter(|id| list.iter().any(|(i, _)| i == id))
            .or_else(|| list.first().map(|(i, _)| *i))
    };
    // Parsed once per edit; every control below reads the memo.
    let validity = Memo::new(move |_| steps.with(|s| pipeline_json(s)));

    // Keep the viewer's preview in step with the pipeline, the source and the toggle.
    Effect::new(move |_| {
        let want = match (previewing.get(), source_id(), validity.get()) {
            (true, Some(id), Ok(json)) => Some((id, json)),
            _ => None,
        };
        if state.preview.get_untracked() != want {
            state.preview.set(want);
        }
    });

    let push_step = move |value: Value| {
        let key = next_key.get_value() + 1;
        next_key.set_value(key);
        steps.update(|s| s.push(Step { key, value }));
    };
    let add = move |_| {
        if let Some(entry) = catalog().into_iter().nth(add_choice.get_untracked()) {
            if let Ok(v) = serde_json::to_value(&entry.default) {
                push_step(v);
            }
        }
    };

    let apply = move |_| {
        let (Some(layer), Ok(pipeline_json)) = (source_id(), validity.get()) else {
            return;
        };
        let src_name = images()
            .into_iter()
            .find(|(i, _)| *i == layer)
            .map(|(_, n)| n)
            .unwrap_or_default();
        let names: Vec<String> = steps.with_untracked(|s| s.iter().map(Step::name).collect());
        let name = format!("{src_name} · {}", names.join(" + ").to_lowercase());
        previewing.set(false);
        state.run_layer_job(
            format!("Filtering {src_name}"),
            move |request| ToWorker::ApplyFilters {
                request,
                layer,
                pipeline_json,
                name,
            },
            result,
        );
    };

    let save = move |_| match validity.get() {
        Ok(json) => {
            let bytes = js_sys::Uint8Array::from(json.as_bytes());
            fsjs::download_file("filters.json", &bytes.buffer(), "application/json");
        }
        Err(e) => state.error(format!("cannot save the pipeline: {e}")),
    };

    let load = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        input.set_value("");
        let name = file.name();
        leptos::task::spawn_local(async move {
            let text = match wasm_bindgen_futures::JsFuture::from(file.text()).await {
                Ok(t) => t.as_string().unwrap_or_default(),
                Err(e) => {
                    return state.error(format!("{name}: could not read ({})", fsjs::js_error(&e)))
                }
            };
            match Pipeline::from_json(&text) {
                Ok(p) => {
                    steps.set(Vec::new());
                    for spec in p.steps {
                        if let Ok(v) = serde_json::to_value(&spec) {
                            push_step(v);
                        }
                    }
                }
                Err(e) => state.error(format!("{name}: {e}")),
            }
        });
    };

    let numbered = move || -> Vec<(usize, Step)> { steps.get().into_iter().enumerate().collect() };

    view! {
        <div class="tool" data-testid="filters">
            <label class="row">"Image"
                <select data-testid="filters-source" on:change=move |ev| source.set(event_target_value(&ev).parse().ok().map(LayerId))>
                    <For each=images key=|(id, _)| *id let:item>
                        <option value=item.0.0.to_string() selected=move || source_id() == Some(item.0)>{item.1.clone()}</option>
                    </For>
                </select>
            </label>
            <Show when=move || images().is_empty()>
                <p class="hint">"Open a grayscale image stack to filter it."</p>
            </Show>
            <ol class="steps" data-testid="filter-steps">
                <For each=numbered key=|(i, s)| (*i, s.key, s.value.to_string()) let:item>
                    {step_view(steps, item.0, item.1)}
                </For>
            </ol>
            <div class="row">
                <select data-testid="filter-add-choice" on:change=move |ev| add_choice.set(event_target_value(&ev).parse().unwrap_or(0))>
                    {catalog().into_iter().enumerate().map(|(i, e)| view! { <option value=i.to_string() title=e.help>{e.label}</option> }).collect_view()}
                </select>
                <button data-testid="filter-add" on:click=add>"Add"</button>
            </div>
            <p class="hint">{move || catalog().into_iter().nth(add_choice.get()).map(|e| e.help).unwrap_or_default()}</p>
            <p class="invalid" data-testid="filters-invalid">{move || match validity.get() { Err(e) if !steps.with(|s| s.is_empty()) => e, _ => String::new() }}</p>
            <label class="row">
                <input type="checkbox" data-testid="filters-preview" prop:checked=move || previewing.get()
                    prop:disabled=move || validity.with(Result::is_err) || source_id().is_none()
                    on:change=move |ev| previewing.set(event_target_checked(&ev)) />
                "Preview on the current slice"
            </label>
            <div class="buttons">
                <button class="primary" data-testid="filters-apply" prop:disabled=move || validity.with(Result::is_err) || source_id().is_none() on:click=apply>"Apply to stack"</button>
                <button data-testid="filters-save" prop:disabled=move || validity.with(Result::is_err) on:click=save>"Save JSON"</button>
                <label class="button">"Load JSON"
                    <input type="file" accept=".json,application/json" class="hidden" data-testid="filters-load" on:change=load />
                </label>
            </div>
            <p class="result" data-testid="filters-result" data-compute-ms=move || result.get().map(|c| format!("{:.1}", c.compute_ms))>
                {move || result.get().map(|c| format!("{}: {}", c.layer_name, c.summary)).unwrap_or_default()}
            </p>
        </div>
    }
}

/// One step: title with move/remove buttons, a 3D switch where it applies, and its fields.
fn step_view(steps: RwSignal<Vec<Step>>, index: usize, step: Step) -> impl IntoView {
    let title = step.name();
    let error = step.spec().err();
    let edit = move |f: Box<dyn FnOnce(&mut Value)>| {
        steps.update(|s| {
            if let Some(st) = s.get_mut(index) {
                f(&mut st.value);
            }
        })
    };
    let fields: Vec<(String, Value)> = step
        .value
        .as_object()
        .map(|m: &Map<String, Value>| {
            m.iter()
                .filter(|(k, _)| k.as_str() != "filter")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let three_d = is_3d(&step.value);
    let axes = has_axes(&step.value);
    view! {
        <li class="step" data-testid="filter-step">
            <div class="step-head">
                <span class="step-name">{title}</span>
                <span>
                    <button class="icon" title="Move up" prop:disabled=index == 0
                        on:click=move |_| steps.update(|s| if index > 0 { s.swap(index, index - 1) })>"↑"</button>
                    <button class="icon" title="Move down"
                        on:click=move |_| steps.update(|s| if index + 1 < s.len() { s.swap(index, index + 1) })>"↓"</button>
                    <button class="icon" title="Remove" data-testid="filter-remove"
                        on:click=move |_| steps.update(|s| { if index < s.len() { s.remove(index); } })>"×"</button>
                </span>
            </div>
            {axes.then(|| view! {
                <label class="row"><input type="checkbox" prop:checked=three_d data-testid="filter-3d"
                    on:change=move |ev| { let on = event_target_checked(&ev); edit(Box::new(move |v| set_3d(v, on))) } />
                    "3D (across slices)"</label>
            })}
            <div class="fields">
                {fields.into_iter().map(|(name, value)| field_view(edit, name, value)).collect_view()}
            </div>
            {error.map(|e| view! { <p class="invalid">{e}</p> })}
        </li>
    }
}

fn field_view<E>(edit: E, name: String, value: Value) -> impl IntoView
where
    E: Fn(Box<dyn FnOnce(&mut Value)>) + Copy + 'static,
{
    let label = name.replace('_', " ");
    let set = move |name: String, v: Value| {
        edit(Box::new(move |obj| {
            if let Some(m) = obj.as_object_mut() {
                m.insert(name, v);
            }
        }))
    };
    match value {
        Value::Bool(b) => {
            let n = name.clone();
            view! {
                <label class="field"><input type="checkbox" prop:checked=b
                    on:change=move |ev| set(n.clone(), Value::Bool(event_target_checked(&ev))) />{label}</label>
            }
            .into_any()
        }
        Value::String(s) if choices(&name).is_some() => {
            let n = name.clone();
            let options = choices(&name).unwrap_or(&[]);
            view! {
                <label class="field">{label}
                    <select on:change=move |ev| set(n.clone(), Value::String(event_target_value(&ev)))>
                        {options.iter().map(|o| view! { <option value=*o selected=s == *o>{*o}</option> }).collect_view()}
                    </select>
                </label>
            }
            .into_any()
        }
        Value::Array(items) if items.iter().all(Value::is_number) => {
            let axes: &[&str] = match (AXIS_FIELDS.contains(&name.as_str()), items.len()) {
                (true, 3) => &["z", "y", "x"],
                (true, 2) => &["y", "x"],
                _ => &["lo", "hi", "", ""],
            };
            let inputs = items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let n = name.clone();
                    let axis = axes.get(i).copied().unwrap_or("");
                    view! {
                        <span class="axis">{axis}
                            <input type="number" step="any" data-testid=format!("param-{n}-{i}") prop:value=value_text(v)
                                on:change=move |ev| {
                                    let Some(x) = parse_number(&event_target_value(&ev)) else { return };
                                    let n = n.clone();
                                    edit(Box::new(move |obj| {
                                        if let Some(Value::Array(a)) = obj.get_mut(&n) {
                                            if let Some(slot) = a.get_mut(i) { *slot = x; }
                                        }
                                    }))
                                } />
                        </span>
                    }
                })
                .collect_view();
            view! { <div class="field">{label}<span class="axes">{inputs}</span></div> }.into_any()
        }
        other => {
            let n = name.clone();
            let placeholder = if other.is_null() { "auto" } else { "" };
            view! {
                <label class="field">{label}
                    <input type="text" inputmode="decimal" placeholder=placeholder data-testid=format!("param-{name}") prop:value=value_text(&other)
                        on:change=move |ev| {
                            let text = event_target_value(&ev);
                            // Numbers, empty (= automatic), or a JSON value such as [0, 1].
                            let v = parse_number(&text)
                                .or_else(|| serde_json::from_str::<Value>(&text).ok())
                                .unwrap_or(Value::String(text));
                            set(n.clone(), v)
                        } />
                </label>
            }
            .into_any()
        }
    }
}
