//! The Edit panel: painting ground truth and proofreading a label layer. Tool buttons (with
//! their keys), brush size and units, the paint ID, fill and split settings, the selection
//! (merge, delete, lock), undo/redo with the history, autosave status, problem marks with
//! "Go", jump to x, y, z, and saving the labels into a folder.

use super::editing::{self, Autosave, Editing, Problem, Tool};
use super::fsjs;
use super::state::AppState;
use crate::training_ui::ModelKind;
use emstudio_core::render::label_color;
use emstudio_core::stack::{BitDepth, ExportFormat, ExportOptions};
use emstudio_protocol::{FromWorker, LabelEdit, LayerId, LayerKind, ToWorker};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsValue;

/// CSS colour of a segment ID.
pub fn id_color(id: u32) -> String {
    let [r, g, b] = label_color(id);
    format!("rgb({r},{g},{b})")
}

/// Merges the selection into its first ID.
pub fn merge_selection(state: AppState, editing: Editing) {
    let ids = editing.selection.get_untracked();
    let Some(&into) = ids.first() else {
        return state
            .error("select two or more segments to merge (Select tool, C; Shift+click adds)");
    };
    if ids.len() < 2 {
        return state.error("select at least two segments to merge (Shift+click adds)");
    }
    editing::apply(
        state,
        editing,
        LabelEdit::Merge {
            ids: ids[1..].to_vec(),
            into,
        },
    );
    editing.selection.set(vec![into]);
}

/// Deletes the selected segments.
pub fn delete_selection(state: AppState, editing: Editing) {
    let ids = editing.selection.get_untracked();
    if ids.is_empty() {
        return state.error("select a segment to delete (Select tool, C)");
    }
    for id in ids {
        editing::apply(state, editing, LabelEdit::Delete { id });
    }
    editing.selection.set(Vec::new());
}

/// Locks the selected segments, or unlocks them when all are locked.
pub fn toggle_lock_selection(state: AppState, editing: Editing) {
    let ids = editing.selection.get_untracked();
    if ids.is_empty() {
        return state.error("select a segment to lock (Select tool, C)");
    }
    let locked = editing
        .last
        .get_untracked()
        .map(|s| s.locked)
        .unwrap_or_default();
    let lock = !ids.iter().all(|id| locked.contains(id));
    for id in ids {
        editing::apply(state, editing, LabelEdit::Lock { id, locked: lock });
    }
}

/// Marks the cursor position (or the view's slice centre) as a problem.
pub fn mark_problem(state: AppState, editing: Editing, note: String) {
    let at = match state.readout.get_untracked() {
        Some(r) => [r.z, r.y, r.x],
        None => {
            let Some(s) = state
                .layers
                .with_untracked(|l| l.first().map(|l| l.info.shape))
            else {
                return;
            };
            [state.z.get_untracked(), s.y / 2, s.x / 2]
        }
    };
    editing.problems.update(|p| p.push(Problem { at, note }));
}

/// Goes to a voxel: its slice, centred and ringed.
pub fn go_to(state: AppState, at: [usize; 3]) {
    state.z.set(at[0]);
    state.marker.set(Some(at));
}

/// Writes the target label layer into a folder the user picks, as `<layer>/…_0000.png`
/// (16-bit PNG) or 32-bit TIFF when IDs do not fit 16 bits.
fn save_to_folder(state: AppState, layer: LayerId, done: RwSignal<String>) {
    let Some(info) = state.layers.with_untracked(|l| {
        l.iter()
            .find(|l| l.info.id == layer)
            .map(|l| l.info.clone())
    }) else {
        return;
    };
    let base_name = info.name.replace(['/', '\\', ' '], "_");
    let (format, depth) = if info.max < 65536.0 {
        (ExportFormat::PngSeries, BitDepth::U16)
    } else {
        (ExportFormat::TiffSeries, BitDepth::Native)
    };
    let options = ExportOptions {
        format,
        depth,
        rescale: false,
        base_name: base_name.clone(),
    };
    spawn_local(async move {
        let dir = match fsjs::pick_directory("readwrite").await {
            Ok(d) => d,
            Err(e) if fsjs::is_abort(&e) => return,
            Err(e) => {
                return state.error(format!(
                    "could not open the folder ({})",
                    fsjs::js_error(&e)
                ))
            }
        };
        let dir = match fsjs::sub_directory(&dir, &base_name).await {
            Ok(d) => d,
            Err(e) => {
                return state.error(format!(
                    "could not make the folder {base_name} ({})",
                    fsjs::js_error(&e)
                ))
            }
        };
        state.run_job(
            format!("Saving {}", info.name),
            move |request| ToWorker::Export {
                request,
                layer,
                options,
            },
            &[],
            move |msg, buffers| {
                let FromWorker::Exported { files, .. } = msg else {
                    return;
                };
                let names: js_sys::Array = files.iter().map(|f| JsValue::from_str(f)).collect();
                let bufs: js_sys::Array = buffers.iter().collect();
                let dir = dir.clone();
                let base_name = base_name.clone();
                spawn_local(async move {
                    match fsjs::write_files(&dir, &names, &bufs).await {
                        Ok(_) => {
                            done.set(format!("Saved {} slices into {base_name}/", names.length()))
                        }
                        Err(e) => state.error(format!(
                            "could not write the files ({})",
                            fsjs::js_error(&e)
                        )),
                    }
                });
            },
        );
    });
}

/// The panel.
#[component]
pub fn EditPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let editing = expect_context::<Editing>();
    let note = RwSignal::new(String::new());
    let jump = RwSignal::new(String::new());
    let saved_to = RwSignal::new(String::new());

    let label_layers = move || state.layer_choices(LayerKind::Label, false);
    let image_layers = move || state.layer_choices(LayerKind::Image, false);
    let target = move || editing.target_layer(state);
    let no_target = move || target().is_none();
    let tool_button = move |tool: Tool| {
        view! {
            <button class="tool-button" class:active=move || editing.tool.get() == tool
                data-testid=format!("tool-{}", tool.name().to_lowercase().replace(' ', "-"))
                title=format!("{} ({}): {}", tool.name(), tool.key(), tool.help())
                prop:disabled=move || no_target() && tool != Tool::Navigate
                on:click=move |_| { editing.tool.set(tool); editing.seed.set(None); }>
                {tool.name()}<span class="key">{tool.key()}</span>
            </button>
        }
    };
    let history = move || editing.last.get().map(|s| s.history).unwrap_or_default();
    let locked = move || editing.last.get().map(|s| s.locked).unwrap_or_default();
    let jump_go = move || {
        let v: Vec<usize> = jump
            .get_untracked()
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        let Some(shape) = state
            .layers
            .with_untracked(|l| l.first().map(|l| l.info.shape))
        else {
            return;
        };
        match v[..] {
            [x, y, z] if x < shape.x && y < shape.y && z < shape.z => go_to(state, [z, y, x]),
            _ => state.error(format!(
                "jump: give x, y, z inside the stack (x < {}, y < {}, z < {})",
                shape.x, shape.y, shape.z
            )),
        }
    };

    view! {
        <section class="tool" data-testid="edit-panel" data-replies=move || editing.replies.get().to_string()>
            <label class="row">"Label layer"
                <select data-testid="edit-layer" on:change=move |ev| editing.target.set(event_target_value(&ev).parse().ok().map(LayerId))>
                    {move || label_layers().into_iter().map(|(id, name)| view! {
                        <option value=id.0.to_string() selected=move || target() == Some(id)>{name}</option>
                    }).collect_view()}
                </select>
            </label>
            <div class="buttons">
                <button data-testid="edit-new-layer" prop:disabled=move || state.layers.with(|l| l.is_empty())
                    on:click=move |_| editing::new_label_layer(state, editing)>"New label layer"</button>
                <button data-testid="edit-save" prop:disabled=no_target
                    title="Write the label stack into a folder (16-bit PNG, or 32-bit TIFF for large IDs)"
                    on:click=move |_| if let Some(l) = target() { save_to_folder(state, l, saved_to) }>"Save labels to folder…"</button>
            </div>
            <p class="result" data-testid="saved-to">{move || saved_to.get()}</p>
            <p class="hint" data-testid="autosave">{move || match editing.saved.get() {
                Autosave::Nothing => String::from("Edits are autosaved in this browser as you go."),
                Autosave::Pending => String::from("Saving…"),
                Autosave::Stored(n) => format!("Autosaved · {n} edit{} in the history", if n == 1 { "" } else { "s" }),
                Autosave::Failed(e) => format!("Autosave failed: {e}"),
            }}</p>

            <h3>"Tools"</h3>
            <div class="tool-grid">{Tool::ALL.map(tool_button).collect_view()}</div>

            <h3>"Brush"</h3>
            <label class="row">"Size"
                <input type="range" min="1" max="100" data-testid="brush-size"
                    prop:value=move || editing.brush.get().to_string()
                    on:input=move |ev| editing.brush.set(event_target_value(&ev).parse().unwrap_or(8.0)) />
                <span data-testid="brush-size-label">{move || format!("{:.0}", editing.brush.get())}</span>
            </label>
            <label class="row">"in"
                <select data-testid="brush-units" on:change=move |ev| editing.brush_screen.set(event_target_value(&ev) == "screen")>
                    <option value="data" selected=move || !editing.brush_screen.get()>"data pixels"</option>
                    <option value="screen" selected=move || editing.brush_screen.get()>"screen pixels"</option>
                </select>
                <label><input type="checkbox" prop:checked=move || editing.pressure.get()
                    on:change=move |ev| editing.pressure.set(event_target_checked(&ev)) />"pen pressure"</label>
            </label>
            <label class="row">"Paint ID"
                <span class="swatch" style=move || format!("background:{}", id_color(editing.paint_id.get()))></span>
                <input type="number" min="1" data-testid="paint-id" prop:value=move || editing.paint_id.get().to_string()
                    on:change=move |ev| editing.paint_id.set(event_target_value(&ev).parse().unwrap_or(1).max(1)) />
                <button data-testid="new-id" title="An ID no segment has (N)"
                    on:click=move |_| if let Some(s) = editing.last.get_untracked() { editing.paint_id.set(s.next_id) } else { editing::apply(state, editing, LabelEdit::Status) }>"New ID"</button>
            </label>

            <h3>"Fill"</h3>
            <label class="row"><input type="checkbox" data-testid="fill-3d" prop:checked=move || editing.fill_3d.get()
                on:change=move |ev| editing.fill_3d.set(event_target_checked(&ev)) />"through slices (3D)"</label>
            <label class="row">"bounded by"
                <select data-testid="fill-limit" on:change=move |ev| editing.fill_intensity.set(event_target_value(&ev) == "intensity")>
                    <option value="label">"the segment"</option>
                    <option value="intensity">"EM intensity ±"</option>
                </select>
                <input type="number" min="0" class="narrow" prop:value=move || editing.tolerance.get().to_string()
                    prop:disabled=move || !editing.fill_intensity.get()
                    on:change=move |ev| editing.tolerance.set(event_target_value(&ev).parse().unwrap_or(20.0)) />
            </label>
            <label class="row">"EM image"
                <select data-testid="edit-image" on:change=move |ev| editing.image.set(event_target_value(&ev).parse().ok().map(LayerId))>
                    {move || image_layers().into_iter().map(|(id, name)| view! {
                        <option value=id.0.to_string() selected=move || editing.image.get() == Some(id)>{name}</option>
                    }).collect_view()}
                </select>
            </label>
            <h3>"FFN fill"</h3>
            <FfnFillSection/>

            <label class="row">"Split band"
                <input type="range" min="1" max="20" prop:value=move || editing.band.get().to_string()
                    on:input=move |ev| editing.band.set(event_target_value(&ev).parse().unwrap_or(4.0)) />
                <span>{move || format!("{:.0} px", editing.band.get())}</span>
            </label>
            <p class="hint">{move || match (editing.tool.get(), editing.seed.get()) {
                (Tool::Split3d, None) => String::from("Split 3D: click the first seed."),
                (Tool::Split3d, Some([z, y, x])) => format!("Split 3D: first seed at x {x}, y {y}, z {z}; click the second (Esc cancels)."),
                (tool, _) => tool.help().to_string(),
            }}</p>

            <h3>"Selection"</h3>
            <div class="chips" data-testid="selection">
                {move || editing.selection.get().into_iter().map(|id| view! {
                    <span class="chip"><span class="swatch" style=format!("background:{}", id_color(id))></span>{id}</span>
                }).collect_view()}
            </div>
            <div class="buttons">
                <button data-testid="merge" title="Merge the selection into its first ID (M)"
                    prop:disabled=move || editing.selection.with(|s| s.len() < 2)
                    on:click=move |_| merge_selection(state, editing)>"Merge"</button>
                <button data-testid="delete" title="Delete the selected segments (Delete)"
                    prop:disabled=move || editing.selection.with(|s| s.is_empty())
                    on:click=move |_| delete_selection(state, editing)>"Delete"</button>
                <button data-testid="lock" title="Lock or unlock the selection (K)"
                    prop:disabled=move || editing.selection.with(|s| s.is_empty())
                    on:click=move |_| toggle_lock_selection(state, editing)>"Lock / unlock"</button>
                <button prop:disabled=move || editing.selection.with(|s| s.is_empty())
                    on:click=move |_| editing.selection.set(Vec::new())>"Clear"</button>
            </div>
            <p class="hint" data-testid="locked">{move || {
                let l = locked();
                if l.is_empty() { String::new() } else { format!("Locked: {}", l.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")) }
            }}</p>

            <h3>"History"</h3>
            <div class="buttons">
                <button data-testid="undo" title="Undo (Ctrl+Z)" prop:disabled=move || editing.last.with(|s| s.as_ref().is_none_or(|s| s.undo_depth == 0))
                    on:click=move |_| editing::apply(state, editing, LabelEdit::Undo)>"Undo"</button>
                <button data-testid="redo" title="Redo (Ctrl+Shift+Z or Ctrl+Y)" prop:disabled=move || editing.last.with(|s| s.as_ref().is_none_or(|s| s.redo_depth == 0))
                    on:click=move |_| editing::apply(state, editing, LabelEdit::Redo)>"Redo"</button>
            </div>
            <p class="result" data-testid="edit-result">{move || editing.last.get().filter(|s| !s.done.is_empty()).map(|s| {
                format!("{} · {} voxels · {:.0} ms", s.done, s.changed, s.compute_ms)
            }).unwrap_or_default()}</p>
            <ol class="history" data-testid="history">
                {move || history().into_iter().rev().take(12).map(|h| view! { <li>{h}</li> }).collect_view()}
            </ol>

            <h3>"Problems"</h3>
            <div class="row">
                <input type="text" placeholder="note (optional)" prop:value=move || note.get()
                    on:input=move |ev| note.set(event_target_value(&ev)) />
                <button data-testid="mark-problem" title="Mark the point under the cursor (P)"
                    prop:disabled=move || state.layers.with(|l| l.is_empty())
                    on:click=move |_| { mark_problem(state, editing, note.get_untracked()); note.set(String::new()); }>"Mark"</button>
            </div>
            <ul class="list problems" data-testid="problems">
                {move || editing.problems.get().into_iter().enumerate().map(|(i, p)| {
                    let [z, y, x] = p.at;
                    view! {
                        <li>
                            <span class="grow">{format!("x {x}, y {y}, z {z}")}{if p.note.is_empty() { String::new() } else { format!(" — {}", p.note) }}</span>
                            <button on:click=move |_| go_to(state, [z, y, x])>"Go"</button>
                            <button title="Remove" on:click=move |_| editing.problems.update(|ps| { ps.remove(i); })>"×"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <label class="row">"Jump to"
                <input type="text" id="jump-to" data-testid="jump" placeholder="x, y, z (J)" prop:value=move || jump.get()
                    on:input=move |ev| jump.set(event_target_value(&ev))
                    on:keydown=move |ev| if ev.key() == "Enter" { jump_go() } />
                <button data-testid="jump-go" on:click=move |_| jump_go()>"Go"</button>
            </label>
        </section>
    }
}

/// The FFN fill's settings (model, box, the ID it goes into) and its pending proposal with
/// Accept and Reject.
#[component]
fn FfnFillSection() -> impl IntoView {
    let state = expect_context::<AppState>();
    let editing = expect_context::<Editing>();
    let ffn_models = move || {
        editing.models.list.with(|l| {
            l.iter()
                .filter(|m| m.summary.kind == ModelKind::Ffn)
                .map(|m| (m.name.clone(), m.summary.clone()))
                .collect::<Vec<_>>()
        })
    };
    let chosen = move || editing::ffn_model(editing).map(|m| m.name);
    let radius = move |signal: RwSignal<usize>, ev: leptos::ev::Event| {
        let v: usize = event_target_value(&ev).parse().unwrap_or(0);
        signal.set(v.clamp(8, 128));
    };
    view! {
        <Show when=move || !ffn_models().is_empty()
            fallback=|| view! { <p class="hint" data-testid="ffn-no-model">"No flood-filling network model yet: upload one (.ffn, made by emstudio ffn train) in the Infer tab."</p> }>
            <label class="row">"Model"
                <select data-testid="ffn-model" on:change=move |ev| editing.ffn_model.set(Some(event_target_value(&ev)))>
                    {move || ffn_models().into_iter().map(|(name, summary)| {
                        let n = name.clone();
                        view! {
                            <option value=name.clone() selected=move || chosen().as_deref() == Some(n.as_str())
                                title=format!("{} · {} steps", summary.arch, summary.steps)>{name.clone()}</option>
                        }
                    }).collect_view()}
                </select>
            </label>
            <p class="hint">{move || editing::ffn_model(editing).map(|m| format!("{} · {} steps", m.summary.arch, m.summary.steps)).unwrap_or_default()}</p>
        </Show>
        <label class="row" title="The network may fill this far from the click: a box of ±this many voxels, drawn around the cursor">"Box ±"
            <input type="number" min="8" max="128" class="narrow" data-testid="ffn-radius-xy"
                prop:value=move || editing.ffn_radius_xy.get().to_string()
                on:change=move |ev| radius(editing.ffn_radius_xy, ev) />
            "px, ±"
            <input type="number" min="8" max="128" class="narrow" data-testid="ffn-radius-z"
                prop:value=move || editing.ffn_radius_z.get().to_string()
                on:change=move |ev| radius(editing.ffn_radius_z, ev) />
            "slices"
        </label>
        <label class="row" title="The network's view moves on where the object is at least this probable. google/ffn uses 0.9; lower moves further (a network trained briefly is rarely that sure), higher stops sooner.">"Move at ≥"
            <input type="number" min="0.1" max="0.95" step="0.05" class="narrow" data-testid="ffn-move"
                prop:value=move || format!("{:.2}", editing.ffn_move.get())
                on:change=move |ev| editing.ffn_move.set(event_target_value(&ev).parse::<f64>().unwrap_or(0.5).clamp(0.1, 0.95)) />
            "probability"
        </label>
        <label class="row">"Accept into"
            <select data-testid="ffn-into" on:change=move |ev| editing.ffn_new_id.set(event_target_value(&ev) == "new")>
                <option value="new" selected=move || editing.ffn_new_id.get()>"a new ID"</option>
                <option value="paint" selected=move || !editing.ffn_new_id.get()>"the paint ID (extend it)"</option>
            </select>
        </label>
        {move || editing.proposal.get().map(|p| {
            let [lo, hi] = p.bounds;
            view! {
                <div class="proposal" data-testid="ffn-proposal" data-voxels=p.voxels.to_string()>
                    <p><span class="swatch proposal-swatch"></span>
                        {format!("Proposal: {} voxels on slices {}–{} · {} fields of view on {} · {:.1} s",
                            p.voxels, lo[0], hi[0] - 1, p.steps, p.device, p.compute_ms / 1000.0)}</p>
                    <div class="buttons">
                        <button class="primary" data-testid="ffn-accept" title="Write it into the labels as one undoable edit (Enter)"
                            on:click=move |_| editing::accept_proposal(state, editing)>"Accept"<span class="key">"Enter"</span></button>
                        <button data-testid="ffn-reject" title="Drop it (Esc)"
                            on:click=move |_| editing::reject_proposal(state, editing)>"Reject"<span class="key">"Esc"</span></button>
                    </div>
                </div>
            }
        })}
        <p class="hint" data-testid="ffn-note">{move || editing.ffn_note.get()}</p>
    }
}

/// Autosaved editing sessions found in this browser, with Restore and Discard.
#[component]
pub fn SessionsPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let editing = expect_context::<Editing>();
    let when = |ms: f64| {
        let d = js_sys::Date::new(&JsValue::from_f64(ms));
        String::from(d.to_locale_string("en-GB", &JsValue::UNDEFINED))
    };
    view! {
        <section class="panel" data-testid="sessions" class:hidden=move || editing.sessions.with(|s| s.is_empty())>
            <h2>"Autosaved edits"</h2>
            <ul class="list">
                {move || editing.sessions.get().into_iter().map(|s| {
                    let (key, key2, title) = (s.key.clone(), s.key.clone(), s.title.clone());
                    view! {
                        <li class="session">
                            <div class="session-title">{s.title.clone()}</div>
                            <div class="hint">{format!("{} · {} edits · saved {}", s.shape, s.edits, when(s.saved_at))}</div>
                            <div class="buttons">
                                <button data-testid="session-restore" title="Open these labels with their undo history"
                                    on:click=move |_| editing::restore(state, editing, key.clone(), title.clone())>"Restore"</button>
                                <button title="Delete this autosave for good"
                                    on:click=move |_| editing::discard(state, editing, key2.clone())>"Discard"</button>
                            </div>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
    }
}

/// Every key, shown with `?`.
#[component]
pub fn HelpOverlay() -> impl IntoView {
    let editing = expect_context::<Editing>();
    let general = [
        ("W / ↑, S / ↓", "next / previous slice"),
        ("PgUp / PgDn, Home / End", "±10 slices, first / last"),
        ("F, double-click", "fit to the window"),
        (
            "wheel; middle or right drag, Space+drag",
            "zoom; pan with any tool",
        ),
        ("L / O", "label layer on/off, outlines"),
        ("= / -  (or ] / [)", "bigger / smaller brush"),
        ("N", "new paint ID (one no segment has)"),
        ("Alt+click", "pick the paint ID from the canvas"),
        ("M", "merge the selection"),
        ("Delete", "delete the selection"),
        ("K", "lock / unlock the selection"),
        ("Ctrl+Z; Ctrl+Shift+Z or Ctrl+Y", "undo; redo"),
        ("P", "mark a problem under the cursor"),
        ("J", "jump to x, y, z"),
        ("Enter", "accept the FFN fill's proposal"),
        (
            "Esc",
            "reject the FFN fill's proposal, clear selection and seeds, close this help",
        ),
        ("?", "this help"),
    ];
    view! {
        <div class="help-overlay" data-testid="help" class:hidden=move || !editing.help.get()
            on:click=move |_| editing.help.set(false)>
            <div class="help-card" on:click=|ev| ev.stop_propagation()>
                <h2>"Keyboard shortcuts"</h2>
                <div class="help-columns">
                    <table>
                        <tr><th colspan="2">"Tools"</th></tr>
                        {Tool::ALL.map(|t| view! { <tr><td class="key">{t.key()}</td><td><b>{t.name()}</b>": "{t.help()}</td></tr> }).collect_view()}
                    </table>
                    <table>
                        <tr><th colspan="2">"Everything else"</th></tr>
                        {general.map(|(k, what)| view! { <tr><td class="key">{k}</td><td>{what}</td></tr> }).collect_view()}
                    </table>
                </div>
                <button on:click=move |_| editing.help.set(false)>"Close"</button>
            </div>
        </div>
    }
}
