//! The browser app: layout, the z slider and keyboard shortcuts; panels live in submodules.

mod edit_panel;
mod editing;
mod evaluate_panel;
mod ffn_train_panel;
mod filters_panel;
mod fsjs;
mod infer_panel;
mod models;
mod net_device;
mod open;
mod panels;
mod postprocess_panel;
mod state;
mod tools;
mod train_panel;
mod viewer;
mod worker_client;

use leptos::prelude::*;
use state::AppState;
use wasm_bindgen::JsCast;

/// Mounts the app.
pub fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

/// True when the focused element handles this key itself: text fields take every key;
/// sliders, check boxes and selects take arrows and paging keys but leave letters to us.
fn field_handles_key(ev: &web_sys::KeyboardEvent) -> bool {
    let Some(el) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
    else {
        return false;
    };
    let navigation = ev.key().starts_with("Arrow")
        || matches!(
            ev.key().as_str(),
            "PageUp" | "PageDown" | "Home" | "End" | " "
        );
    match el.tag_name().as_str() {
        "TEXTAREA" => true,
        "SELECT" => navigation,
        "INPUT" => {
            let kind = el.get_attribute("type").unwrap_or_default();
            !matches!(kind.as_str(), "range" | "checkbox" | "button" | "file") || navigation
        }
        _ => false,
    }
}

fn step_z(state: AppState, delta: i64) {
    let depth = state.depth() as i64;
    if depth == 0 {
        return;
    }
    state
        .z
        .update(|z| *z = (*z as i64 + delta).clamp(0, depth - 1) as usize);
}

fn toggle_labels(state: AppState, outline: bool) {
    state.layers.update(|layers| {
        if let Some(l) = layers
            .iter_mut()
            .find(|l| l.info.kind == emstudio_protocol::LayerKind::Label)
        {
            if outline {
                l.outline = !l.outline;
            } else {
                l.visible = !l.visible;
            }
        }
    });
}

/// The painting and proofreading keys (see the help overlay); true when the key was used.
fn edit_key(
    state: AppState,
    editing: editing::Editing,
    tab: tools::ToolTab,
    ev: &web_sys::KeyboardEvent,
) -> bool {
    use editing::Tool;
    use emstudio_protocol::LabelEdit;
    let key = ev.key();
    if ev.ctrl_key() || ev.meta_key() {
        return match key.as_str() {
            "z" | "Z" => {
                let edit = if ev.shift_key() {
                    LabelEdit::Redo
                } else {
                    LabelEdit::Undo
                };
                editing::apply(state, editing, edit);
                true
            }
            "y" | "Y" => {
                editing::apply(state, editing, LabelEdit::Redo);
                true
            }
            _ => false,
        };
    }
    if ev.alt_key() {
        return false;
    }
    let tool = |t: Tool| {
        editing.tool.set(t);
        editing.seed.set(None);
        tab.0.set("edit");
    };
    match key.as_str() {
        "v" | "V" => tool(Tool::Navigate),
        "b" | "B" => tool(Tool::Brush),
        "e" | "E" => tool(Tool::Eraser),
        "g" => tool(Tool::Fill),
        "G" => tool(Tool::FfnFill),
        "Enter" if editing.proposal.with_untracked(Option::is_some) => {
            editing::accept_proposal(state, editing)
        }
        "i" | "I" => tool(Tool::Pick),
        "c" | "C" => tool(Tool::Select),
        "x" => tool(Tool::Split),
        "X" => tool(Tool::Split3d),
        "=" | "+" | "]" => editing.resize_brush(true),
        "-" | "_" | "[" => editing.resize_brush(false),
        "n" | "N" => match editing.last.get_untracked() {
            Some(s) => editing.paint_id.set(s.next_id),
            None => editing::apply(state, editing, LabelEdit::Status),
        },
        "m" | "M" => edit_panel::merge_selection(state, editing),
        "Delete" | "Backspace" if !editing.selection.with_untracked(|s| s.is_empty()) => {
            edit_panel::delete_selection(state, editing)
        }
        "k" | "K" => edit_panel::toggle_lock_selection(state, editing),
        "p" | "P" => edit_panel::mark_problem(state, editing, String::new()),
        "j" | "J" => {
            tab.0.set("edit");
            if let Some(input) = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.get_element_by_id("jump-to"))
                .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
            {
                let _ = input.focus();
            }
        }
        "?" => editing.help.update(|h| *h = !*h),
        "Escape" => {
            editing::reject_proposal(state, editing);
            editing.help.set(false);
            editing.seed.set(None);
            editing.selection.set(Vec::new());
        }
        " " => viewer::set_space(true),
        _ => return false,
    }
    true
}

/// The header's note on parallel work: how many helper workers decode and filter, and whether
/// Cancel reaches inside a running kernel (only when the page is cross-origin isolated).
#[component]
fn ParallelStatus() -> impl IntoView {
    let p = worker_client::parallel();
    let workers = match p.helpers {
        0 => "no helper workers".to_string(),
        1 => "1 helper worker".to_string(),
        n => format!("{n} helper workers"),
    };
    let (text, title) = if p.isolated {
        (
            format!("{workers} · cross-origin isolated"),
            "Stacks are decoded and filters run in parallel; Cancel stops even a running 3D step at once.",
        )
    } else {
        (
            format!("{workers} · not isolated: Cancel waits for a running 3D step"),
            "This host sends no cross-origin isolation headers (COOP/COEP), so workers cannot share memory. Everything works; Cancel takes effect when the running 3D step (labelling, a 3D filter, evaluation) finishes. The companion sends the headers; on a static host the service worker adds them from the next visit.",
        )
    };
    view! {
        <span class="hint" data-testid="parallel-status" data-isolated=p.isolated.to_string()
            data-helpers=p.helpers.to_string() title=title>{text}</span>
    }
}

/// The whole page.
#[component]
fn App() -> impl IntoView {
    let state = AppState::new();
    provide_context(state);
    let models = models::Models::new();
    provide_context(models);
    models.load(state);
    let devices = net_device::NetDevices::new();
    provide_context(devices);

    let editing = editing::Editing::new(models, devices);
    provide_context(editing);
    editing::persist_problems(state, editing);
    let tab = tools::ToolTab(RwSignal::new("filters"));
    provide_context(tab);

    let on_ready = move || {
        state.ready.set(true);
        editing::start(state, editing);
    };
    let on_fatal = move |e: String| {
        state.stopped.set(true);
        state.error(e);
    };
    if let Err(e) = worker_client::start(on_ready, on_fatal) {
        on_fatal(e);
    }

    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        if field_handles_key(&ev) {
            return;
        }
        if edit_key(state, editing, tab, &ev) {
            ev.prevent_default();
            return;
        }
        if ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        match ev.key().as_str() {
            "w" | "W" | "ArrowUp" => step_z(state, 1),
            "s" | "S" | "ArrowDown" => step_z(state, -1),
            "PageUp" => step_z(state, 10),
            "PageDown" => step_z(state, -10),
            "Home" => state.z.set(0),
            "End" => step_z(state, i64::MAX / 2),
            "f" | "F" => state.fit.update(|f| *f += 1),
            "l" | "L" => toggle_labels(state, false),
            "o" | "O" => toggle_labels(state, true),
            _ => return,
        }
        ev.prevent_default();
    });
    let keys_up = window_event_listener(leptos::ev::keyup, move |ev| {
        if ev.key() == " " {
            viewer::set_space(false);
        }
    });
    on_cleanup(move || {
        keys.remove();
        keys_up.remove();
    });

    let depth = move || state.depth();

    view! {
        <div class="app">
            <header class="top">
                <h1>"EM Studio"</h1>
                <span class="hint" data-testid="opened">{move || state.opened.get().map(|o| o.name).unwrap_or_default()}</span>
                <span class="grow"></span>
                // Helpers live inside the data worker: when it stopped, so did they.
                <Show when=move || !state.stopped.get()><ParallelStatus/></Show>
                <span class="hint" data-testid="worker-status" class:stopped=move || state.stopped.get()>{move || {
                    if state.stopped.get() { "worker stopped: reload the page" } else if state.ready.get() { "worker ready" } else { "starting worker…" }
                }}</span>
            </header>
            <aside class="side">
                <open::OpenPanel/>
                <edit_panel::SessionsPanel/>
                <panels::LayersPanel/>
                <panels::ExportPanel/>
                <section class="panel">
                    <h2>"Keys"</h2>
                    <p class="hint">"W / ↑ next slice · S / ↓ previous · PgUp/PgDn ±10 · F fit · L labels on/off · O outlines · wheel zoom · drag pan · double-click fit · B brush · E eraser · G fill · Ctrl+Z undo"</p>
                    <button data-testid="show-help" on:click=move |_| editing.help.set(true)>"All shortcuts (?)"</button>
                </section>
            </aside>
            <main class="main"
                on:dragover=move |ev: web_sys::DragEvent| ev.prevent_default()
                on:drop=move |ev: web_sys::DragEvent| open::on_drop(state, ev)>
                <panels::ErrorsPanel/>
                <panels::JobsPanel/>
                <viewer::Viewer/>
                <div class="zbar">
                    <button title="Fit to window (F)" data-testid="fit" on:click=move |_| state.fit.update(|f| *f += 1)>"Fit"</button>
                    <input type="range" min="0" data-testid="z-slider"
                        prop:max=move || depth().saturating_sub(1).to_string()
                        prop:value=move || state.z.get().to_string()
                        prop:disabled=move || depth() == 0
                        on:input=move |ev| state.z.set(event_target_value(&ev).parse().unwrap_or(0)) />
                    <span data-testid="z-label">{move || if depth() == 0 { String::from("z —") } else { format!("z {} / {}", state.z.get(), depth() - 1) }}</span>
                </div>
            </main>
            <tools::Tools/>
            <panels::StatusBar/>
            <edit_panel::HelpOverlay/>
        </div>
    }
}
