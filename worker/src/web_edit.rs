//! Browser glue of label editing: applying `EditLabels`, the autosave loop that writes each
//! change to OPFS (one save in flight per layer; edits made meanwhile go into the next), and
//! listing, restoring and discarding sessions.

use crate::autosave::{self, SavePlan, SessionMeta};
use crate::web::{fail, send, WORKSPACE};
use crate::web_opfs;
use emstudio_core::AnyVolume;
use emstudio_protocol::{FromWorker, LabelEdit, LayerId, LayerKind, RequestId, SessionInfo};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use wasm_bindgen_futures::spawn_local;

thread_local! {
    static SAVING: RefCell<HashSet<LayerId>> = RefCell::new(HashSet::new());
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Applies one edit and starts its autosave.
pub fn edit(request: RequestId, layer: LayerId, edit: LabelEdit, session: &str) {
    let started = js_sys::Date::now();
    let result = WORKSPACE.with(|w| {
        w.borrow_mut().edit_labels(layer, edit, session, || {
            autosave::session_key(session, now_ms() as u64)
        })
    });
    match result {
        Ok((info, mut state)) => {
            state.compute_ms = js_sys::Date::now() - started;
            send(
                &FromWorker::Edited {
                    request,
                    layer: info,
                    state,
                },
                &[],
            );
            schedule_save(layer);
        }
        Err(e) => fail(request, e),
    }
}

/// Saves a layer's pending changes unless a save of it is already running (which then picks
/// them up).
pub fn schedule_save(layer: LayerId) {
    let idle = SAVING.with(|s| s.borrow_mut().insert(layer));
    if !idle {
        return;
    }
    let nothing_to_do = WORKSPACE.with(|w| {
        let w = w.borrow();
        (!w.needs_save(layer)).then(|| {
            w.editor(layer)
                .map_or((0, 0), |e| (e.done_seq.len(), e.version))
        })
    });
    if let Some((edits, version)) = nothing_to_do {
        // The edit changed nothing: everything is as saved.
        SAVING.with(|s| s.borrow_mut().remove(&layer));
        return autosaved(layer, edits, version, None);
    }
    spawn_local(async move {
        while let Some(plan) = WORKSPACE.with(|w| w.borrow_mut().take_save_plan(layer, now_ms())) {
            let (edits, version) = (plan.edits, plan.version);
            match write_plan(&plan).await {
                Ok(()) => autosaved(layer, edits, version, None),
                Err(e) => {
                    autosaved(layer, edits, version, Some(e));
                    WORKSPACE.with(|w| w.borrow_mut().save_failed(plan));
                    break;
                }
            }
        }
        SAVING.with(|s| s.borrow_mut().remove(&layer));
    });
}

/// Tells the app how far a layer's autosave got.
fn autosaved(layer: LayerId, edits: usize, version: u64, error: Option<String>) {
    send(
        &FromWorker::Autosaved {
            layer,
            edits,
            version,
            error,
        },
        &[],
    );
}

/// Writes a save's files, then its meta, then removes what left the history.
pub async fn write_plan(plan: &SavePlan) -> Result<(), String> {
    let dir = web_opfs::session_dir(&plan.key, true)
        .await?
        .ok_or("private storage: could not make the session folder")?;
    for (name, bytes) in &plan.files {
        web_opfs::write(&dir, name, bytes).await?;
    }
    web_opfs::write(&dir, "meta.json", &plan.meta).await?;
    for name in &plan.remove {
        web_opfs::remove(&dir, name).await?;
    }
    Ok(())
}

/// Closes a layer, first taking what autosave has not written yet.
pub fn close(layer: LayerId) {
    let plan = WORKSPACE.with(|w| {
        let mut w = w.borrow_mut();
        let plan = w.take_save_plan(layer, now_ms());
        w.close(layer);
        plan
    });
    if let Some(plan) = plan {
        spawn_local(async move {
            if let Err(e) = write_plan(&plan).await {
                web_sys::console::error_1(&format!("emstudio worker: {e}").into());
            }
        });
    }
}

async fn read_meta(key: &str) -> Result<Option<SessionMeta>, String> {
    let Some(dir) = web_opfs::session_dir(key, false).await? else {
        return Ok(None);
    };
    let Some(bytes) = web_opfs::read(&dir, "meta.json").await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("session {key}: meta.json is damaged ({e})"))
}

async fn sessions() -> Result<Vec<SessionInfo>, String> {
    let dir = web_opfs::sessions_dir().await?;
    let mut out = Vec::new();
    for key in web_opfs::names(&dir).await? {
        match read_meta(&key).await {
            Ok(Some(meta)) => out.push(meta.info()),
            Ok(None) => {}
            Err(e) => web_sys::console::warn_1(&e.into()),
        }
    }
    out.sort_by(|a, b| b.saved_at.total_cmp(&a.saved_at));
    Ok(out)
}

/// Answers `ListSessions`.
pub fn list(request: RequestId) {
    spawn_local(async move {
        match sessions().await {
            Ok(sessions) => send(&FromWorker::Sessions { request, sessions }, &[]),
            Err(e) => fail(request, e),
        }
    });
}

/// Answers `DiscardSession`.
pub fn discard(request: RequestId, key: String) {
    spawn_local(async move {
        let removed = async {
            let dir = web_opfs::sessions_dir().await?;
            web_opfs::remove(&dir, &key).await
        };
        match removed.await {
            Ok(()) => list(request),
            Err(e) => fail(request, e),
        }
    });
}

/// Answers `RestoreSession`: reads every file of the session and opens it as a label layer
/// with its history.
pub fn restore(request: RequestId, key: String) {
    spawn_local(async move {
        let started = crate::web::now_ms();
        match restore_files(request, &key).await {
            Ok(layer) => send(
                &FromWorker::Opened {
                    request,
                    layer,
                    decoded_by: 0,
                    decoded_here: 0,
                    open_ms: crate::web::now_ms() - started,
                },
                &[],
            ),
            Err(e) => fail(request, e),
        }
    });
}

async fn restore_files(
    request: RequestId,
    key: &str,
) -> Result<emstudio_protocol::LayerInfo, String> {
    let meta = read_meta(key)
        .await?
        .ok_or_else(|| format!("session {key} is gone"))?;
    // Before any file is read: a damaged meta.json must not make the worker allocate.
    let max_bytes = crate::web::browser_stack_limits().max_total_bytes as u64;
    meta.check(max_bytes)?;
    let dir = web_opfs::session_dir(key, false)
        .await?
        .ok_or_else(|| format!("session {key} is gone"))?;
    let names = web_opfs::names(&dir).await?;
    let total = names.len() as u64;
    let mut files = HashMap::new();
    for (i, name) in names.into_iter().enumerate() {
        if i % 16 == 0 {
            send(
                &FromWorker::Progress {
                    request,
                    done: i as u64,
                    total,
                    message: format!("reading {name}"),
                },
                &[],
            );
        }
        if let Some(bytes) = web_opfs::read(&dir, &name).await? {
            files.insert(name, bytes);
        }
    }
    let (labels, editor, lost) = autosave::restore(&meta, max_bytes, |name| files.remove(name))?;
    if !lost.is_empty() {
        web_sys::console::warn_1(
            &format!(
                "{}: history entries missing: {}",
                meta.title,
                lost.join(", ")
            )
            .into(),
        );
    }
    WORKSPACE.with(|w| {
        let mut w = w.borrow_mut();
        let info = w.add(&meta.layer_name, LayerKind::Label, AnyVolume::U32(labels))?;
        w.set_editor(info.id, editor);
        Ok(info)
    })
}
