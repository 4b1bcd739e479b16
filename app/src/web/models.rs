//! The model store: model files trained here or uploaded, kept in the browser's origin-private
//! file system (OPFS, folder `models/`) so they survive reloads, listed with what their header
//! says, renamed, deleted, downloaded. The bytes are the CLI's model format, so a model
//! downloaded here opens in `emstudio infer` and one trained natively uploads here.

use super::fsjs;
use super::state::AppState;
use crate::training_ui::{free_model_name, model_summary, name_for_kind, ModelKind, ModelSummary};
use leptos::prelude::*;
use std::sync::Arc;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;

/// One stored model.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredModel {
    /// File name in the store ("unet-ac3.emsmodel").
    pub name: String,
    /// The model file.
    pub bytes: Arc<Vec<u8>>,
    /// What its header says.
    pub summary: ModelSummary,
}

/// The store, shared through context.
#[derive(Clone, Copy)]
pub struct Models {
    /// Models, sorted by name.
    pub list: RwSignal<Vec<StoredModel>>,
    /// The one the Infer panel uses.
    pub selected: RwSignal<Option<String>>,
}

fn buffer_of(bytes: &[u8]) -> JsValue {
    js_sys::Uint8Array::from(bytes).buffer().into()
}

impl Models {
    /// An empty store; [`Models::load`] fills it from OPFS.
    pub fn new() -> Self {
        Self {
            list: RwSignal::new(Vec::new()),
            selected: RwSignal::new(None),
        }
    }

    /// Reads every model in OPFS; files that are not models are reported and skipped.
    pub fn load(self, state: AppState) {
        spawn_local(async move {
            let entries = match fsjs::opfs_list_models().await {
                Ok(v) => v,
                // No OPFS (very old browser, some private modes): the store stays in memory.
                Err(e) => {
                    web_sys::console::warn_1(
                        &format!("model store unavailable: {}", fsjs::js_error(&e)).into(),
                    );
                    return;
                }
            };
            let mut list = Vec::new();
            for entry in js_sys::Array::from(&entries).iter() {
                let name = js_sys::Reflect::get(&entry, &"name".into())
                    .ok()
                    .and_then(|v| v.as_string())
                    .unwrap_or_default();
                let buffer = js_sys::Reflect::get(&entry, &"buffer".into()).unwrap_or_default();
                let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
                match model_summary(&bytes) {
                    Ok(summary) => list.push(StoredModel {
                        name,
                        bytes: Arc::new(bytes),
                        summary,
                    }),
                    Err(e) => state.error(format!("stored model {name}: {e}")),
                }
            }
            self.list.set(list);
            if self.selected.get_untracked().is_none() {
                self.selected.set(self.list.with_untracked(|l| {
                    l.iter()
                        .rev()
                        .find(|m| m.summary.kind == ModelKind::Cnn2d)
                        .map(|m| m.name.clone())
                }));
            }
        });
    }

    /// Adds a model (checked first) under a free name, stores it in OPFS and selects it for
    /// the Infer panel (a flood-filling network only when nothing else is selected: the Edit
    /// panel's FFN fill picks those).
    pub fn add(self, state: AppState, wanted: &str, bytes: Vec<u8>) -> Result<String, String> {
        let summary = model_summary(&bytes).map_err(|e| format!("{wanted}: {e}"))?;
        let select = summary.kind == ModelKind::Cnn2d || self.selected.get_untracked().is_none();
        let name = free_model_name(wanted, |n| {
            self.list.with_untracked(|l| l.iter().any(|m| m.name == n))
        });
        let buffer = buffer_of(&bytes);
        self.list.update(|l| {
            l.push(StoredModel {
                name: name.clone(),
                bytes: Arc::new(bytes),
                summary,
            });
            l.sort_by(|a, b| a.name.cmp(&b.name));
        });
        if select {
            self.selected.set(Some(name.clone()));
        }
        let stored = name.clone();
        spawn_local(async move {
            if let Err(e) = fsjs::opfs_save_model(&stored, &buffer).await {
                state.error(format!(
                    "{stored}: could not keep the model in the browser's storage ({}); download it to keep it",
                    fsjs::js_error(&e)
                ));
            }
        });
        Ok(name)
    }

    /// Removes a model from the store.
    pub fn delete(self, state: AppState, name: &str) {
        self.list.update(|l| l.retain(|m| m.name != name));
        if self.selected.get_untracked().as_deref() == Some(name) {
            self.selected.set(
                self.list
                    .with_untracked(|l| l.last().map(|m| m.name.clone())),
            );
        }
        let name = name.to_string();
        spawn_local(async move {
            if let Err(e) = fsjs::opfs_delete_model(&name).await {
                state.error(format!("{name}: could not delete ({})", fsjs::js_error(&e)));
            }
        });
    }

    /// Renames a model (stored under the new name, the old one removed).
    pub fn rename(self, state: AppState, old: &str, wanted: &str) -> Result<String, String> {
        let model = self
            .get(old)
            .ok_or_else(|| format!("{old}: no such model"))?;
        let wanted = name_for_kind(wanted, model.summary.kind);
        if wanted == old {
            return Ok(old.to_string());
        }
        let new = self.add(state, &wanted, model.bytes.as_ref().clone())?;
        self.delete(state, old);
        self.selected.set(Some(new.clone()));
        Ok(new)
    }

    /// The model called `name`.
    pub fn get(&self, name: &str) -> Option<StoredModel> {
        self.list
            .with_untracked(|l| l.iter().find(|m| m.name == name).cloned())
    }

    /// Offers a model as a download.
    pub fn download(&self, name: &str) {
        if let Some(m) = self.get(name) {
            fsjs::download_file(&m.name, &buffer_of(&m.bytes), "application/octet-stream");
        }
    }

    /// A copy of a model's bytes as an `ArrayBuffer` to attach to a worker request.
    pub fn buffer(&self, name: &str) -> Option<JsValue> {
        self.get(name).map(|m| buffer_of(&m.bytes))
    }
}
