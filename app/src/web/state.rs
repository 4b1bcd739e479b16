//! Reactive application state shared by all panels, and the operations that change it.

use super::worker_client;
use emstudio_core::VoxelSize;
use emstudio_protocol::{
    FromWorker, LayerId, LayerInfo, LayerKind, RequestId, StackSource, ToWorker,
};
use leptos::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsValue;

/// A layer as the viewer shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerView {
    /// What the worker holds.
    pub info: LayerInfo,
    /// Drawn or not.
    pub visible: bool,
    /// 0..1, applied when compositing.
    pub opacity: f64,
    /// Labels: outlines only.
    pub outline: bool,
    /// How it was opened ("opened in 0.8 s by 2 helper workers"); empty for computed layers.
    pub opened_note: String,
}

/// A long-running request shown with a progress bar.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// The request (for cancel).
    pub request: RequestId,
    /// What it is ("Opening isbi2012 / image").
    pub title: String,
    /// Units done.
    pub done: u64,
    /// Units in all (0 = unknown yet).
    pub total: u64,
    /// Latest step.
    pub message: String,
}

/// The cursor readout.
#[derive(Clone, Debug, PartialEq)]
pub struct Readout {
    /// Voxel x.
    pub x: usize,
    /// Voxel y.
    pub y: usize,
    /// Voxel z.
    pub z: usize,
    /// Per layer name: values there.
    pub values: Vec<(String, LayerKind, Vec<f64>)>,
}

/// Name and attribution of what is open.
#[derive(Clone, Debug, PartialEq)]
pub struct Opened {
    /// Dataset or folder name.
    pub name: String,
    /// Attribution / license to show.
    pub attribution: Option<String>,
}

/// All reactive state; `Copy`, handed to components through context.
#[derive(Clone, Copy)]
pub struct AppState {
    /// Layers, images first.
    pub layers: RwSignal<Vec<LayerView>>,
    /// Current slice.
    pub z: RwSignal<usize>,
    /// Running jobs.
    pub jobs: RwSignal<Vec<Job>>,
    /// Errors the user has not dismissed.
    pub errors: RwSignal<Vec<String>>,
    /// Cursor readout.
    pub readout: RwSignal<Option<Readout>>,
    /// What is open.
    pub opened: RwSignal<Option<Opened>>,
    /// The worker is up.
    pub ready: RwSignal<bool>,
    /// The worker could not start or stopped for good (its error is shown).
    pub stopped: RwSignal<bool>,
    /// Bumped to ask the viewer to fit the data to the window.
    pub fit: RwSignal<u32>,
    /// Filter preview: the viewer shows this pipeline (JSON) applied to this image layer's
    /// current slice in place of the layer.
    pub preview: RwSignal<Option<(LayerId, String)>>,
    /// A voxel (z, y, x) to centre on and mark (set by "Go" in the error lists).
    pub marker: RwSignal<Option<[usize; 3]>>,
}

impl AppState {
    /// Fresh state.
    pub fn new() -> Self {
        Self {
            layers: RwSignal::new(Vec::new()),
            z: RwSignal::new(0),
            jobs: RwSignal::new(Vec::new()),
            errors: RwSignal::new(Vec::new()),
            readout: RwSignal::new(None),
            opened: RwSignal::new(None),
            ready: RwSignal::new(false),
            stopped: RwSignal::new(false),
            fit: RwSignal::new(0),
            preview: RwSignal::new(None),
            marker: RwSignal::new(None),
        }
    }

    /// Shows an error.
    pub fn error(&self, msg: impl Into<String>) {
        let msg = msg.into();
        web_sys::console::warn_1(&msg.clone().into());
        self.errors.update(|e| e.push(msg));
    }

    /// Number of slices of the deepest layer.
    pub fn depth(&self) -> usize {
        self.layers
            .with(|l| l.iter().map(|l| l.info.shape.z).max().unwrap_or(0))
    }

    /// Closes every layer.
    pub fn close_all(&self) {
        for l in self.layers.get_untracked() {
            worker_client::notify(&ToWorker::Close { layer: l.info.id });
        }
        self.layers.set(Vec::new());
        self.preview.set(None);
        self.marker.set(None);
        self.readout.set(None);
        self.z.set(0);
    }

    /// Closes one layer.
    pub fn close_layer(&self, id: LayerId) {
        worker_client::notify(&ToWorker::Close { layer: id });
        self.layers.update(|l| l.retain(|l| l.info.id != id));
    }

    /// Updates one layer's display settings.
    pub fn edit_layer(&self, id: LayerId, f: impl FnOnce(&mut LayerView)) {
        self.layers.update(|l| {
            if let Some(layer) = l.iter_mut().find(|l| l.info.id == id) {
                f(layer);
            }
        });
    }

    fn job_progress(&self, request: RequestId, done: u64, total: u64, message: String) {
        self.jobs.update(|jobs| {
            if let Some(j) = jobs.iter_mut().find(|j| j.request == request) {
                j.done = done;
                j.total = total;
                j.message = message;
            }
        });
    }

    fn job_end(&self, request: RequestId) {
        self.jobs
            .update(|jobs| jobs.retain(|j| j.request != request));
    }

    /// Starts a job: sends the request, tracks progress, calls `done` with the terminal reply.
    pub fn run_job(
        &self,
        title: String,
        make: impl FnOnce(RequestId) -> ToWorker,
        attachments: &[JsValue],
        mut done: impl FnMut(FromWorker, Vec<JsValue>) + 'static,
    ) -> Option<RequestId> {
        let state = *self;
        let result = worker_client::request(make, attachments, move |msg, att| match msg {
            FromWorker::Progress {
                request,
                done: d,
                total,
                message,
            } => state.job_progress(request, d, total, message),
            other => {
                if let Some(r) = other.request() {
                    state.job_end(r);
                }
                if let FromWorker::Failed { error, .. } = &other {
                    state.error(error.clone());
                }
                done(other, att);
            }
        });
        match result {
            Ok(request) => {
                self.jobs.update(|j| {
                    j.push(Job {
                        request,
                        title,
                        done: 0,
                        total: 0,
                        message: String::new(),
                    })
                });
                Some(request)
            }
            Err(e) => {
                self.error(e);
                None
            }
        }
    }
}

/// What a computation that made a layer reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Created {
    /// The new layer's name.
    pub layer_name: String,
    /// One line from the worker ("312 objects · Otsu threshold 127 · 1.6 s").
    pub summary: String,
    /// Worker compute time (ms).
    pub compute_ms: f64,
}

impl AppState {
    /// `(id, name)` of the layers of `kind` in display order — only single-channel ones with
    /// `gray_only` (what the networks and filters take); tracked, for the panels' layer pickers.
    pub fn layer_choices(&self, kind: LayerKind, gray_only: bool) -> Vec<(LayerId, String)> {
        self.layers.with(|l| {
            l.iter()
                .filter(|l| l.info.kind == kind && (!gray_only || l.info.channels == 1))
                .map(|l| (l.info.id, l.info.name.clone()))
                .collect()
        })
    }

    /// Runs a request that makes a layer (filters, postprocessing): `outcome` is cleared now and
    /// set when the layer arrives, which is added and shown.
    pub fn run_layer_job(
        &self,
        title: String,
        make: impl FnOnce(RequestId) -> ToWorker,
        outcome: RwSignal<Option<Created>>,
    ) {
        self.run_layer_job_with(title, make, &[], outcome);
    }

    /// [`AppState::run_layer_job`] with attachments (a model file).
    pub fn run_layer_job_with(
        &self,
        title: String,
        make: impl FnOnce(RequestId) -> ToWorker,
        attachments: &[JsValue],
        outcome: RwSignal<Option<Created>>,
    ) {
        let state = *self;
        outcome.set(None);
        self.run_job(title, make, attachments, move |msg, _| {
            if let FromWorker::LayerCreated {
                layer,
                summary,
                compute_ms,
                ..
            } = msg
            {
                outcome.set(Some(Created {
                    layer_name: layer.name.clone(),
                    summary,
                    compute_ms,
                }));
                add_computed_layer(state, layer);
            }
        });
    }
}

/// A stack waiting to be opened as a layer.
pub struct PendingLayer {
    /// Layer name.
    pub name: String,
    /// Image or label.
    pub kind: LayerKind,
    /// Where its slices are.
    pub source: StackSource,
    /// `File`s for `StackSource::Attached`.
    pub files: Vec<JsValue>,
    /// Voxel size if known.
    pub voxel_size: Option<VoxelSize>,
}

/// Opens the layers all at once (the data worker and its helpers read them in parallel) and
/// adds them in their order as they arrive. With `replace`, what was open is closed once the
/// first new layer has opened, so a folder that fails to open does not take the current data
/// with it. One failed layer does not stop the others (its error is shown); Cancel on any of
/// them stops them all and keeps what was open before.
pub fn open_layers(
    state: AppState,
    opened: Option<Opened>,
    pending: Vec<PendingLayer>,
    replace: bool,
) {
    let group = Rc::new(RefCell::new(OpenGroup {
        arrived: (0..pending.len()).map(|_| None).collect(),
        next: 0,
        requests: Vec::new(),
        replacing: replace.then_some(Replacing { opened }),
        cancelled: false,
    }));
    for (k, p) in pending.into_iter().enumerate() {
        let title = format!("Opening {}", p.name);
        let (name, kind, source, voxel_size) = (p.name.clone(), p.kind, p.source, p.voxel_size);
        let g = group.clone();
        let request = state.run_job(
            title,
            move |request| ToWorker::Open {
                request,
                kind,
                name,
                source,
                voxel_size,
            },
            &p.files,
            move |msg, _| {
                let outcome = match msg {
                    FromWorker::Opened {
                        layer,
                        decoded_by,
                        decoded_here,
                        open_ms,
                        ..
                    } => Arrival::Layer(layer, opened_note(decoded_by, decoded_here, open_ms)),
                    FromWorker::Cancelled { .. } => {
                        let others = {
                            let mut g = g.borrow_mut();
                            g.cancelled = true;
                            g.requests.clone()
                        };
                        for r in others {
                            worker_client::cancel(r);
                        }
                        Arrival::Nothing
                    }
                    _ => Arrival::Nothing,
                };
                g.borrow_mut().arrived[k] = Some(outcome);
                flush_opened(state, &g);
            },
        );
        match request {
            Some(r) => group.borrow_mut().requests.push(r),
            None => group.borrow_mut().arrived[k] = Some(Arrival::Nothing),
        }
    }
}

/// What came of opening one layer.
enum Arrival {
    /// The layer and how it was opened.
    Layer(LayerInfo, String),
    /// It failed (the error is shown) or was cancelled.
    Nothing,
}

/// Layers being opened together.
struct OpenGroup {
    /// Per layer, in order: what came, once it came.
    arrived: Vec<Option<Arrival>>,
    /// The first layer not added yet.
    next: usize,
    /// The group's requests (to cancel them all).
    requests: Vec<RequestId>,
    /// What to close when the first layer arrives.
    replacing: Option<Replacing>,
    /// Cancel was pressed: layers still arriving are closed again.
    cancelled: bool,
}

/// Adds the layers that arrived, in order, as far as nothing earlier is missing.
fn flush_opened(state: AppState, group: &Rc<RefCell<OpenGroup>>) {
    loop {
        let (arrival, cancelled, replacing) = {
            let mut g = group.borrow_mut();
            let next = g.next;
            let Some(slot) = g.arrived.get_mut(next) else {
                return;
            };
            let Some(arrival) = slot.take() else { return };
            *slot = Some(Arrival::Nothing);
            g.next += 1;
            let is_layer = matches!(arrival, Arrival::Layer(..));
            let replacing = if is_layer && !g.cancelled {
                g.replacing.take()
            } else {
                None
            };
            (arrival, g.cancelled, replacing)
        };
        let Arrival::Layer(layer, note) = arrival else {
            continue;
        };
        if cancelled {
            worker_client::notify(&ToWorker::Close { layer: layer.id });
            continue;
        }
        if let Some(r) = replacing {
            state.close_all();
            state.opened.set(r.opened);
        }
        let id = layer.id;
        add_layer(state, layer);
        state.edit_layer(id, |l| l.opened_note = note);
    }
}

/// "opened in 0.8 s by 2 helper workers" (or "… in the data worker" without helpers; "…, 64
/// files in the data worker after a helper stopped" when one was lost mid-open: its files, or
/// all from there on when it was the last).
fn opened_note(decoded_by: u32, decoded_here: u32, open_ms: f64) -> String {
    let by = match (decoded_by, decoded_here) {
        (0, 0) => "in the data worker".to_string(),
        (0, _) => "in the data worker after a helper stopped".to_string(),
        (1, 0) => "by 1 helper worker".to_string(),
        (n, 0) => format!("by {n} helper workers"),
        (n, here) => format!(
            "by {n} helper worker{}, {here} file{} in the data worker after a helper stopped",
            if n == 1 { "" } else { "s" },
            if here == 1 { "" } else { "s" }
        ),
    };
    format!("opened in {:.1} s {by}", open_ms / 1000.0)
}

/// What to do when the first layer of a new dataset arrives.
struct Replacing {
    opened: Option<Opened>,
}

/// Adds a layer the user just computed: shown at once, whatever its kind. A new label-like
/// layer hides the other label layers (still loaded, one click to show), so it is not drawn
/// through a mix of overlays.
pub fn add_computed_layer(state: AppState, layer: LayerInfo) {
    let id = layer.id;
    let labels = layer.kind.is_labels();
    add_layer(state, layer);
    state.layers.update(|ls| {
        for l in ls.iter_mut() {
            if l.info.id == id {
                l.visible = true;
            } else if labels && l.info.kind.is_labels() {
                l.visible = false;
            }
        }
    });
}

/// Adds a layer the worker made (opened or computed); refused with an error when its size
/// differs from what is open. Label-like layers draw over images at half opacity; only the
/// first label layer starts visible.
pub fn add_layer(state: AppState, layer: LayerInfo) {
    let existing = state.layers.get_untracked();
    if let Some(first) = existing.first() {
        let (a, b) = (first.info.shape, layer.shape);
        if (a.y, a.x) != (b.y, b.x) || a.z != b.z {
            state.error(format!(
                "{}: the stack is {} but {} is {}; it was not added",
                layer.name, b, first.info.name, a
            ));
            worker_client::notify(&ToWorker::Close { layer: layer.id });
            return;
        }
    }
    let first_label = layer.kind.is_labels() && !existing.iter().any(|l| l.info.kind.is_labels());
    let view = LayerView {
        visible: layer.kind == LayerKind::Image || first_label,
        opacity: if layer.kind.is_labels() { 0.5 } else { 1.0 },
        outline: false,
        opened_note: String::new(),
        info: layer,
    };
    let was_empty = existing.is_empty();
    state.layers.update(|l| {
        l.push(view);
        l.sort_by_key(|v| v.info.kind.is_labels());
    });
    if was_empty {
        state.z.set(0);
        state.fit.update(|f| *f += 1);
    }
}
