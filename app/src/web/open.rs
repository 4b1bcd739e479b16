//! Opening data: the catalogue's datasets (the companion's `/api/datasets`, or on a static
//! site its `datasets.json`) with the models shipped with them, local folders (File System
//! Access with a "Recent" list), a directory `<input>` and drag-and-drop where that API is
//! missing.

use super::fsjs::{self, Entry};
use super::models::Models;
use super::state::{open_layers, AppState, Opened, PendingLayer};
use emstudio_core::stack::{is_label_folder_name, is_stack_file_name, natural_cmp};
use emstudio_protocol::{DatasetInfo, LayerKind, StackSource};
use leptos::html::Input;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Groups a folder's files into layers: files at the top are one layer, each subfolder with
/// slices another; subfolders named like labels become label layers. Images come first.
pub fn group_entries(folder: &str, entries: Vec<Entry>, as_labels: bool) -> Vec<PendingLayer> {
    let mut groups: Vec<(String, Vec<Entry>)> = Vec::new();
    for e in entries {
        let (dir, file) = match e.path.rsplit_once('/') {
            Some((d, f)) => (d.to_string(), f.to_string()),
            None => (String::new(), e.path.clone()),
        };
        if dir.contains('/') || !is_stack_file_name(&file) {
            continue;
        }
        match groups.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, list)) => list.push(Entry {
                path: file,
                file: e.file,
            }),
            None => groups.push((
                dir,
                vec![Entry {
                    path: file,
                    file: e.file,
                }],
            )),
        }
    }
    groups.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    let mut layers: Vec<PendingLayer> = groups
        .into_iter()
        .map(|(dir, files)| {
            let label = as_labels
                || is_label_folder_name(&dir)
                || (dir.is_empty() && is_label_folder_name(folder));
            let name = if dir.is_empty() {
                folder.to_string()
            } else {
                format!("{folder}/{dir}")
            };
            let (names, files): (Vec<_>, Vec<_>) =
                files.into_iter().map(|e| (e.path, e.file)).unzip();
            PendingLayer {
                name,
                kind: if label {
                    LayerKind::Label
                } else {
                    LayerKind::Image
                },
                source: StackSource::Attached { names },
                files,
                voxel_size: None,
            }
        })
        .collect();
    layers.sort_by_key(|l| l.kind == LayerKind::Label);
    layers
}

fn open_entries(state: AppState, folder: String, entries: Vec<Entry>, as_labels: bool) {
    let layers = group_entries(&folder, entries, as_labels);
    if layers.is_empty() {
        state.error(format!(
            "{folder}: no PNG or TIFF files in this folder or its subfolders"
        ));
        return;
    }
    let replace = !as_labels;
    open_layers(
        state,
        Some(Opened {
            name: folder,
            attribution: None,
        }),
        layers,
        replace,
    );
}

async fn open_handle(state: AppState, handle: wasm_bindgen::JsValue) {
    let name = js_sys::Reflect::get(&handle, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    match fsjs::read_directory(&handle).await {
        Ok(list) => open_entries(state, name, fsjs::entries(&list), false),
        Err(e) => state.error(format!(
            "{name}: could not read the folder ({})",
            fsjs::js_error(&e)
        )),
    }
}

/// Opens a catalogue dataset by URL, and offers the models shipped with it.
pub fn open_dataset(state: AppState, models: Models, d: &DatasetInfo) {
    add_shipped_models(state, models, d);
    let layers = d
        .layers
        .iter()
        .map(|l| {
            let prefix = if l.path.is_empty() {
                format!("datasets/{}/", d.id)
            } else {
                format!("datasets/{}/{}/", d.id, l.path)
            };
            PendingLayer {
                name: if l.path.is_empty() {
                    d.name.clone()
                } else {
                    format!("{}/{}", d.name, l.path)
                },
                kind: l.kind,
                source: StackSource::Urls {
                    names: l.files.clone(),
                    urls: l.files.iter().map(|f| format!("{prefix}{f}")).collect(),
                },
                files: Vec::new(),
                voxel_size: d.voxel_size,
            }
        })
        .collect();
    open_layers(
        state,
        Some(Opened {
            name: d.name.clone(),
            attribution: d.attribution.clone(),
        }),
        layers,
        true,
    );
}

/// The models a dataset ships with go to the model store the first time it is opened, and
/// are selected for the Infer panel then (so the demo infers in three clicks). Once stored
/// (or when the user has a model of that name) they are left as they are, and so is the
/// selection: reopening the dataset does not take it from the user's own models.
fn add_shipped_models(state: AppState, models: Models, d: &DatasetInfo) {
    for m in d.models.clone() {
        let url = format!("datasets/{}/{}", d.id, m.path);
        spawn_local(async move {
            if models.get(&m.name).is_some() {
                return;
            }
            match fetch_response(&url).await {
                Ok(resp) => match resp.array_buffer() {
                    Ok(promise) => match JsFuture::from(promise).await {
                        // The store may have finished loading it meanwhile.
                        Ok(_) if models.get(&m.name).is_some() => {}
                        Ok(buf) => {
                            let bytes = js_sys::Uint8Array::new(&buf).to_vec();
                            if let Err(e) = models.add(state, &m.name, bytes) {
                                state.error(e);
                            }
                        }
                        Err(e) => state.error(format!("{}: {}", m.name, fsjs::js_error(&e))),
                    },
                    Err(e) => state.error(format!("{}: {}", m.name, fsjs::js_error(&e))),
                },
                Err(e) => state.error(format!("{}: could not fetch the model ({e})", m.name)),
            }
        });
    }
}

/// Where the dataset list came from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Catalogue {
    /// The companion's `/api/datasets`.
    Companion,
    /// A static site's `datasets.json` (`cargo xtask build` writes it into `dist/`).
    StaticSite,
}

async fn fetch_response(url: &str) -> Result<web_sys::Response, String> {
    let window = web_sys::window().ok_or("no window")?;
    let resp = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|e| fsjs::js_error(&e))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|e| fsjs::js_error(&e))?;
    if !resp.ok() {
        return Err(format!("HTTP {}", resp.status()));
    }
    Ok(resp)
}

async fn fetch_list(url: &str) -> Result<Vec<DatasetInfo>, String> {
    let resp = fetch_response(url).await?;
    let text = JsFuture::from(resp.text().map_err(|e| fsjs::js_error(&e))?)
        .await
        .map_err(|e| fsjs::js_error(&e))?
        .as_string()
        .unwrap_or_default();
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// The companion's catalogue, else the static site's (a static host answers `api/datasets`
/// with 404, or with the app's page, which is not JSON).
async fn fetch_datasets() -> Result<(Vec<DatasetInfo>, Catalogue), String> {
    match fetch_list("api/datasets").await {
        Ok(list) => Ok((list, Catalogue::Companion)),
        Err(api) => match fetch_list("datasets.json").await {
            Ok(list) => Ok((list, Catalogue::StaticSite)),
            Err(site) => Err(format!("api/datasets: {api}; datasets.json: {site}")),
        },
    }
}

async fn recent_names() -> Vec<String> {
    match fsjs::list_recent().await {
        Ok(list) => js_sys::Array::from(&list)
            .iter()
            .filter_map(|r| js_sys::Reflect::get(&r, &"name".into()).ok()?.as_string())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Handles files dropped on the viewer.
pub fn on_drop(state: AppState, ev: web_sys::DragEvent) {
    ev.prevent_default();
    let Some(dt) = ev.data_transfer() else { return };
    spawn_local(async move {
        match fsjs::files_from_drop(&dt).await {
            Ok(v) => {
                let name = js_sys::Reflect::get(&v, &"name".into())
                    .ok()
                    .and_then(|n| n.as_string())
                    .unwrap_or_default();
                let entries = js_sys::Reflect::get(&v, &"entries".into()).unwrap_or_default();
                open_entries(state, name, fsjs::entries(&entries), false);
            }
            Err(e) => state.error(format!(
                "could not read the dropped files ({})",
                fsjs::js_error(&e)
            )),
        }
    });
}

/// The "Open" panel.
#[component]
pub fn OpenPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let models = expect_context::<Models>();
    let datasets = RwSignal::new(Vec::<DatasetInfo>::new());
    let catalogue = RwSignal::new(None::<Result<Catalogue, String>>);
    let recent = RwSignal::new(Vec::<String>::new());
    let fs_access = fsjs::supports_fs_access();
    let folder_input = NodeRef::<Input>::new();
    let label_input = NodeRef::<Input>::new();

    for input in [folder_input, label_input] {
        input.on_load(|el| {
            // Directory pickers; not in leptos' attribute list, so set on the element.
            let _ = el.set_attribute("webkitdirectory", "");
            el.set_multiple(true);
        });
    }

    spawn_local(async move {
        match fetch_datasets().await {
            Ok((list, source)) => {
                datasets.set(list);
                catalogue.set(Some(Ok(source)));
            }
            Err(e) => catalogue.set(Some(Err(e))),
        }
        recent.set(recent_names().await);
    });

    let pick_folder = move |_| {
        spawn_local(async move {
            match fsjs::pick_directory("readwrite").await {
                Ok(handle) => {
                    let _ = fsjs::save_recent(&handle).await;
                    recent.set(recent_names().await);
                    open_handle(state, handle).await;
                }
                Err(e) if fsjs::is_abort(&e) => {}
                Err(e) => state.error(format!(
                    "could not open the folder ({})",
                    fsjs::js_error(&e)
                )),
            }
        });
    };

    let open_recent = move |name: String| {
        spawn_local(async move {
            let handle = match fsjs::recent_handle(&name).await {
                Ok(h) if !h.is_null() && !h.is_undefined() => h,
                _ => return state.error(format!("{name}: this recent folder is no longer known")),
            };
            match fsjs::ensure_permission(&handle).await {
                Ok(v) if v.as_bool() == Some(true) => open_handle(state, handle).await,
                Ok(_) => state.error(format!(
                    "{name}: permission to read this folder was not granted"
                )),
                Err(e) => {
                    state.error(format!(
                        "{name}: the folder cannot be reopened ({})",
                        fsjs::js_error(&e)
                    ));
                    let _ = fsjs::forget_recent(&name).await;
                    recent.set(recent_names().await);
                }
            }
        });
    };

    let input_changed = move |input: Option<web_sys::HtmlInputElement>, as_labels: bool| {
        let Some(input) = input else { return };
        let entries = fsjs::entries(&fsjs::files_from_input(&input));
        let name = fsjs::folder_name_from_input(&input);
        input.set_value("");
        if !entries.is_empty() {
            open_entries(state, name, entries, as_labels);
        }
    };

    view! {
        <section class="panel">
            <h2>"Open"</h2>
            <div class="buttons">
                <Show when=move || fs_access>
                    <button data-testid="open-folder" on:click=pick_folder title="Open a local folder (read and write)">"Open folder…"</button>
                </Show>
                <button data-testid="classic-folder"
                    on:click=move |_| { if let Some(i) = folder_input.get() { i.click() } }
                    title="Choose a folder of PNG/TIFF slices (with image/ and label/ subfolders, if any) in the browser's classic chooser: read only, not kept under Recent. The browser may call this an upload; nothing leaves this machine.">
                    {if fs_access { "Open folder (classic chooser)…" } else { "Open folder…" }}
                </button>
                <button data-testid="add-labels"
                    prop:disabled=move || state.layers.with(|l| l.is_empty())
                    on:click=move |_| { if let Some(i) = label_input.get() { i.click() } }
                    title="Open a folder of label slices over the current image">"Add labels…"</button>
            </div>
            <input type="file" class="hidden" data-testid="folder-input"
                node_ref=folder_input on:change=move |_| input_changed(folder_input.get(), false) />
            <input type="file" class="hidden" data-testid="label-input"
                node_ref=label_input on:change=move |_| input_changed(label_input.get(), true) />
            <p class="hint">"Or drop a folder on the viewer."</p>
            <Show when=move || !recent.with(|r| r.is_empty())>
                <h3>"Recent"</h3>
                <ul class="list" data-testid="recent">
                    <For each=move || recent.get() key=|n| n.clone() let:name>
                        <li><button class="link" on:click={let n = name.clone(); move |_| open_recent(n.clone())}>{name.clone()}</button></li>
                    </For>
                </ul>
            </Show>
            <h3>"Datasets"</h3>
            <p class="hint" data-testid="catalogue-source">{move || match catalogue.get() {
                Some(Err(_)) => "No datasets on this server: open local folders instead.",
                Some(Ok(Catalogue::StaticSite)) => "Served as a static site: the demo datasets come from here, your own data from local folders.",
                _ => "",
            }}</p>
            <ul class="list" data-testid="datasets">
                <For each=move || datasets.get() key=|d| d.id.clone() let:d>
                    <li>
                        <button class="link" data-testid=format!("dataset-{}", d.id)
                            title=d.attribution.clone().unwrap_or_default()
                            on:click={let d = d.clone(); move |_| open_dataset(state, models, &d)}>
                            {d.name.clone()}
                        </button>
                        {d.demo.then(|| view! { <span class="badge">"demo"</span> })}
                    </li>
                </For>
            </ul>
        </section>
    }
}
