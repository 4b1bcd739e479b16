//! Painting and proofreading state shared by the Edit panel, the viewer's pointer tools, the
//! keyboard and the help overlay: the active tool and its settings, the target label layer,
//! the selection, problem marks, and the worker's reply to the last edit (history, locks, next
//! ID, autosave). Edits go to the worker as `EditLabels`; the viewer re-renders the slices an
//! edit changed.

use super::state::AppState;
use super::viewer;
use super::worker_client;
use emstudio_protocol::{
    EditState, FillLimit, FromWorker, LabelEdit, LayerId, LayerKind, RequestId, SessionInfo,
    ToWorker,
};
use leptos::prelude::*;

/// A pointer tool of the viewer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// Drag pans (the default).
    Navigate,
    /// Paint the paint ID.
    Brush,
    /// Paint 0.
    Eraser,
    /// Flood fill with the paint ID.
    Fill,
    /// Take the paint ID from the canvas.
    Pick,
    /// Click segments to select them (merge, delete, lock).
    Select,
    /// Draw across a segment to split it on this slice.
    Split,
    /// Click two seeds in one segment to split it in 3D.
    Split3d,
    /// Click inside an object: a flood-filling network grows it in 3D as a proposal.
    FfnFill,
}

impl Tool {
    /// Every tool, in toolbar order.
    pub const ALL: [Tool; 9] = [
        Tool::Navigate,
        Tool::Brush,
        Tool::Eraser,
        Tool::Fill,
        Tool::Pick,
        Tool::Select,
        Tool::Split,
        Tool::Split3d,
        Tool::FfnFill,
    ];

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Navigate => "Pan",
            Tool::Brush => "Brush",
            Tool::Eraser => "Eraser",
            Tool::Fill => "Fill",
            Tool::Pick => "Pick ID",
            Tool::Select => "Select",
            Tool::Split => "Split",
            Tool::Split3d => "Split 3D",
            Tool::FfnFill => "FFN fill",
        }
    }

    /// Its key (shown in the toolbar and the help overlay).
    pub fn key(self) -> &'static str {
        match self {
            Tool::Navigate => "V",
            Tool::Brush => "B",
            Tool::Eraser => "E",
            Tool::Fill => "G",
            Tool::Pick => "I",
            Tool::Select => "C",
            Tool::Split => "X",
            Tool::Split3d => "Shift+X",
            Tool::FfnFill => "Shift+G",
        }
    }

    /// What it does, for the help overlay.
    pub fn help(self) -> &'static str {
        match self {
            Tool::Navigate => "drag to pan (any tool: middle or right drag, or hold Space)",
            Tool::Brush => "drag to paint the paint ID",
            Tool::Eraser => "drag to erase (paint 0)",
            Tool::Fill => {
                "click to flood fill with the paint ID (2D or 3D; by label or EM intensity)"
            }
            Tool::Pick => "click a segment to paint with its ID (Alt+click with any tool)",
            Tool::Select => "click segments to select them; Shift+click adds",
            Tool::Split => {
                "draw across a segment: a watershed on the EM image cuts it along the membrane"
            }
            Tool::Split3d => "click two seeds in one segment: it is split in 3D between them",
            Tool::FfnFill => {
                "click inside an object: the flood-filling network grows it in 3D; Enter accepts, Esc rejects"
            }
        }
    }

    /// Tools that draw a stroke.
    pub fn strokes(self) -> bool {
        matches!(self, Tool::Brush | Tool::Eraser | Tool::Split)
    }
}

/// A location marked as a problem, to come back to.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// Voxel `[z, y, x]`.
    pub at: [usize; 3],
    /// What is wrong.
    pub note: String,
}

/// Autosave as the panel reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Autosave {
    /// Nothing edited yet.
    #[default]
    Nothing,
    /// Edits not written yet.
    Pending,
    /// This many edits are in private storage.
    Stored(usize),
    /// The last write failed.
    Failed(String),
}

/// All editing state; `Copy`, provided as context.
#[derive(Clone, Copy)]
pub struct Editing {
    /// Active tool.
    pub tool: RwSignal<Tool>,
    /// Label layer being edited (none: the first label layer).
    pub target: RwSignal<Option<LayerId>>,
    /// EM image for intensity fills and splits (none: the first image layer).
    pub image: RwSignal<Option<LayerId>>,
    /// Brush diameter.
    pub brush: RwSignal<f64>,
    /// Diameter in screen pixels (kept at any zoom) rather than data pixels.
    pub brush_screen: RwSignal<bool>,
    /// Stylus pressure scales the brush.
    pub pressure: RwSignal<bool>,
    /// ID the brush and fill paint.
    pub paint_id: RwSignal<u32>,
    /// Fill through slices.
    pub fill_3d: RwSignal<bool>,
    /// Fill bounded by EM intensity (else by the label).
    pub fill_intensity: RwSignal<bool>,
    /// Intensity tolerance of the fill.
    pub tolerance: RwSignal<f64>,
    /// Half-width of a split stroke's band, data pixels.
    pub band: RwSignal<f64>,
    /// Selected segments.
    pub selection: RwSignal<Vec<u32>>,
    /// First seed of a 3D split.
    pub seed: RwSignal<Option<[usize; 3]>>,
    /// The worker's state after the last edit.
    pub last: RwSignal<Option<EditState>>,
    /// Autosave.
    pub saved: RwSignal<Autosave>,
    /// Marked problems.
    pub problems: RwSignal<Vec<Problem>>,
    /// Help overlay shown.
    pub help: RwSignal<bool>,
    /// Autosaved sessions (for restore after a reload).
    pub sessions: RwSignal<Vec<SessionInfo>>,
    /// Replies to edits so far (tests wait on it).
    pub replies: RwSignal<u32>,
    /// Change count of the target layer that autosave last reported on disk.
    pub saved_version: RwSignal<u64>,
    /// The FFN model of the FFN fill (none: the first in the store).
    pub ffn_model: RwSignal<Option<String>>,
    /// Half-size of the FFN fill's box across a slice (y and x), voxels.
    pub ffn_radius_xy: RwSignal<usize>,
    /// Half-size of the FFN fill's box through slices (z), voxels.
    pub ffn_radius_z: RwSignal<usize>,
    /// Accept the proposal into a new ID (else into the paint ID).
    pub ffn_new_id: RwSignal<bool>,
    /// The FFN fill's move threshold.
    pub ffn_move: RwSignal<f64>,
    /// The FFN fill waiting for Accept or Reject.
    pub proposal: RwSignal<Option<FfnProposal>>,
    /// The FFN fill running now.
    pub ffn_running: RwSignal<Option<RequestId>>,
    /// What the last FFN fill said (found nothing, or its numbers).
    pub ffn_note: RwSignal<String>,
    /// The model store (for the FFN fill's model).
    pub models: super::models::Models,
    /// Where networks run (the Train and Infer panels' choice).
    pub devices: super::net_device::NetDevices,
}

/// An FFN fill the worker holds as a proposal (`FromWorker::FfnProposed`).
#[derive(Clone, Debug, PartialEq)]
pub struct FfnProposal {
    /// The label layer.
    pub layer: LayerId,
    /// Its voxels.
    pub voxels: u64,
    /// Its box, `[z, y, x]` start and end (exclusive).
    pub bounds: [[usize; 3]; 2],
    /// FOV positions the network ran.
    pub steps: u32,
    /// Where it ran.
    pub device: String,
    /// Request to reply, milliseconds.
    pub compute_ms: f64,
}

impl Editing {
    /// Fresh state.
    pub fn new(models: super::models::Models, devices: super::net_device::NetDevices) -> Self {
        Self {
            tool: RwSignal::new(Tool::Navigate),
            target: RwSignal::new(None),
            image: RwSignal::new(None),
            brush: RwSignal::new(8.0),
            brush_screen: RwSignal::new(false),
            pressure: RwSignal::new(true),
            paint_id: RwSignal::new(1),
            fill_3d: RwSignal::new(false),
            fill_intensity: RwSignal::new(false),
            tolerance: RwSignal::new(20.0),
            band: RwSignal::new(4.0),
            selection: RwSignal::new(Vec::new()),
            seed: RwSignal::new(None),
            last: RwSignal::new(None),
            saved: RwSignal::new(Autosave::Nothing),
            problems: RwSignal::new(Vec::new()),
            help: RwSignal::new(false),
            sessions: RwSignal::new(Vec::new()),
            replies: RwSignal::new(0),
            saved_version: RwSignal::new(0),
            ffn_model: RwSignal::new(None),
            // A 25 × 49 × 49 box fills in about 7 s on one CPU core in the browser
            // (BENCHMARKS.md); the user makes it larger when the neuron is.
            ffn_radius_xy: RwSignal::new(24),
            ffn_radius_z: RwSignal::new(12),
            ffn_new_id: RwSignal::new(true),
            // Lower than google/ffn's 0.9: the demo's light network, measured on slices it
            // never saw, fills three times as much at the same precision (BENCHMARKS.md).
            ffn_move: RwSignal::new(0.5),
            proposal: RwSignal::new(None),
            ffn_running: RwSignal::new(None),
            ffn_note: RwSignal::new(String::new()),
            models,
            devices,
        }
    }

    /// The label layer tools act on.
    pub fn target_layer(&self, state: AppState) -> Option<LayerId> {
        state
            .layers
            .with(|l| chosen_or_first(l, self.target.get(), LayerKind::Label))
    }

    /// [`Editing::target_layer`] without tracking (for event handlers and the viewer).
    pub fn target_layer_untracked(&self, state: AppState) -> Option<LayerId> {
        state
            .layers
            .with_untracked(|l| chosen_or_first(l, self.target.get_untracked(), LayerKind::Label))
    }

    /// The EM image layer splits and intensity fills read.
    pub fn image_layer(&self, state: AppState) -> Option<LayerId> {
        state
            .layers
            .with_untracked(|l| chosen_or_first(l, self.image.get_untracked(), LayerKind::Image))
    }

    /// Brush radius in data pixels at view scale `scale` (screen px per data px).
    pub fn radius(&self, scale: f64) -> f32 {
        let d = self.brush.get_untracked();
        let d = if self.brush_screen.get_untracked() {
            d / scale
        } else {
            d
        };
        (d / 2.0).max(0.5) as f32
    }

    /// Grows or shrinks the brush one step (`=` / `-`).
    pub fn resize_brush(&self, grow: bool) {
        self.brush.update(|b| {
            let next = if grow {
                (*b * 1.25).ceil()
            } else {
                (*b / 1.25).floor()
            };
            *b = next.clamp(1.0, 200.0);
        });
    }

    /// The fill's limit with the current settings.
    pub fn fill_limit(&self, state: AppState) -> Option<FillLimit> {
        if self.fill_intensity.get_untracked() {
            Some(FillLimit::Intensity {
                image: self.image_layer(state)?,
                tolerance: self.tolerance.get_untracked(),
            })
        } else {
            Some(FillLimit::SameLabel)
        }
    }
}

/// `chosen` when it is an open layer of `kind`, else the first layer of that kind.
fn chosen_or_first(
    layers: &[super::state::LayerView],
    chosen: Option<LayerId>,
    kind: LayerKind,
) -> Option<LayerId> {
    let mut of_kind = layers.iter().filter(|l| l.info.kind == kind);
    chosen
        .filter(|id| of_kind.clone().any(|l| l.info.id == *id))
        .or_else(|| of_kind.next().map(|l| l.info.id))
}

/// The autosave session name of a layer: "dataset / layer".
fn session_title(state: AppState, layer: LayerId) -> String {
    let dataset = state
        .opened
        .get_untracked()
        .map(|o| o.name)
        .unwrap_or_else(|| "untitled".into());
    let name = state.layers.with_untracked(|l| {
        l.iter()
            .find(|l| l.info.id == layer)
            .map(|l| l.info.name.clone())
            .unwrap_or_default()
    });
    format!("{dataset} / {name}")
}

/// Sends an edit of the target layer; the reply updates the layer, the history and the view.
pub fn apply(state: AppState, editing: Editing, edit: LabelEdit) {
    let Some(layer) = editing.target_layer(state) else {
        state.error("no label layer to edit: open one or make one with “New label layer”");
        return;
    };
    let session = session_title(state, layer);
    let changes = !matches!(edit, LabelEdit::Status);
    // Edits that should change voxels; when one changes none, the user hears why.
    let expects_voxels = matches!(
        edit,
        LabelEdit::Brush { .. }
            | LabelEdit::Fill { .. }
            | LabelEdit::Merge { .. }
            | LabelEdit::Delete { .. }
            | LabelEdit::Split2d { .. }
            | LabelEdit::Split3d { .. }
            | LabelEdit::AcceptProposal { .. }
    );
    let saved_before = editing.saved.get_untracked();
    if changes {
        editing.saved.set(Autosave::Pending);
    }
    let sent = worker_client::request(
        move |request| ToWorker::EditLabels {
            request,
            layer,
            edit,
            session,
        },
        &[],
        move |msg, _| match msg {
            FromWorker::Edited {
                layer: info,
                state: s,
                ..
            } => {
                state.edit_layer(info.id, |l| l.info = info.clone());
                match s.slices {
                    Some((z0, z1)) => viewer::refresh_layer(info.id, z0, z1),
                    None => viewer::clear_strokes(),
                }
                if expects_voxels && s.changed == 0 {
                    state.error(format!(
                        "{}: nothing changed (locked segments are not edited)",
                        s.done
                    ));
                }
                if s.version > editing.saved_version.get_untracked() {
                    editing.saved.set(Autosave::Pending);
                }
                editing.last.set(Some(s));
                editing.replies.update(|n| *n += 1);
            }
            FromWorker::Failed { error, .. } => {
                viewer::clear_strokes();
                editing.saved.set(saved_before.clone());
                state.error(error);
                editing.replies.update(|n| *n += 1);
            }
            _ => {}
        },
    );
    if let Err(e) = sent {
        state.error(e);
    }
}

fn problems_key(state: AppState) -> Option<String> {
    state
        .opened
        .get()
        .map(|o| format!("emstudio.problems.{}", o.name))
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// Keeps the problem marks of each dataset in the browser's local storage: loaded when the
/// dataset opens, saved on every change.
pub fn persist_problems(state: AppState, editing: Editing) {
    Effect::new(move |_| {
        let Some(key) = problems_key(state) else {
            return;
        };
        let stored: Vec<(usize, usize, usize, String)> = local_storage()
            .and_then(|s| s.get_item(&key).ok().flatten())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        editing.problems.set(
            stored
                .into_iter()
                .map(|(z, y, x, note)| Problem {
                    at: [z, y, x],
                    note,
                })
                .collect(),
        );
    });
    Effect::new(move |prev: Option<()>| {
        let problems = editing.problems.get();
        let Some(key) = state
            .opened
            .with_untracked(|o| o.as_ref().map(|o| format!("emstudio.problems.{}", o.name)))
        else {
            return;
        };
        if prev.is_none() {
            return;
        }
        let rows: Vec<(usize, usize, usize, &str)> = problems
            .iter()
            .map(|p| (p.at[0], p.at[1], p.at[2], p.note.as_str()))
            .collect();
        if let (Some(storage), Ok(text)) = (local_storage(), serde_json::to_string(&rows)) {
            let _ = storage.set_item(&key, &text);
        }
    });
}

/// Listens for autosave reports and asks for the stored sessions.
pub fn start(state: AppState, editing: Editing) {
    worker_client::on_event(move |msg| {
        if let FromWorker::Autosaved {
            edits,
            version,
            error,
            ..
        } = msg
        {
            editing.saved_version.set(version);
            // A save of an older state while newer edits wait: still pending.
            let newest = editing.last.get_untracked().map_or(0, |s| s.version);
            if error.is_none() && version < newest {
                return;
            }
            editing.saved.set(match error {
                None => Autosave::Stored(edits),
                Some(e) => {
                    state.error(format!("autosave failed: {e}"));
                    Autosave::Failed(e)
                }
            });
        }
    });
    refresh_sessions(state, editing);
}

/// Sends a request answered by the list of autosaved sessions, and shows the list.
fn sessions_request(state: AppState, editing: Editing, make: impl FnOnce(RequestId) -> ToWorker) {
    let sent = worker_client::request(make, &[], move |msg, _| match msg {
        FromWorker::Sessions { sessions, .. } => editing.sessions.set(sessions),
        FromWorker::Failed { error, .. } => state.error(error),
        _ => {}
    });
    if let Err(e) = sent {
        state.error(e);
    }
}

/// Reloads the list of autosaved sessions.
pub fn refresh_sessions(state: AppState, editing: Editing) {
    sessions_request(state, editing, |request| ToWorker::ListSessions { request });
}

/// Reopens an autosaved session as a label layer and makes it the target.
pub fn restore(state: AppState, editing: Editing, key: String, title: String) {
    state.run_job(
        format!("Restoring {title}"),
        move |request| ToWorker::RestoreSession { request, key },
        &[],
        move |msg, _| {
            if let FromWorker::Opened { layer, .. } = msg {
                let id = layer.id;
                super::state::add_computed_layer(state, layer);
                editing.target.set(Some(id));
                editing.saved.set(Autosave::Nothing);
                editing.saved_version.set(0);
                apply(state, editing, LabelEdit::Status);
            }
        },
    );
}

/// Deletes an autosaved session.
pub fn discard(state: AppState, editing: Editing, key: String) {
    sessions_request(state, editing, |request| ToWorker::DiscardSession {
        request,
        key,
    });
}

/// Makes an empty label layer the size of the first image layer and targets it.
pub fn new_label_layer(state: AppState, editing: Editing) {
    let Some(like) = state
        .layers
        .with_untracked(|l| l.first().map(|l| l.info.id))
    else {
        state.error("open an image stack first: a new label layer takes its size");
        return;
    };
    let n = state.layers.with_untracked(|l| {
        l.iter()
            .filter(|l| l.info.name.starts_with("ground truth"))
            .count()
    });
    let name = if n == 0 {
        "ground truth".to_string()
    } else {
        format!("ground truth {}", n + 1)
    };
    state.run_job(
        format!("New label layer {name}"),
        move |request| ToWorker::NewLabelLayer {
            request,
            like,
            name,
        },
        &[],
        move |msg, _| {
            if let FromWorker::LayerCreated { layer, .. } = msg {
                let id = layer.id;
                super::state::add_computed_layer(state, layer);
                editing.target.set(Some(id));
                editing.paint_id.set(1);
                editing.last.set(None);
                if editing.tool.get_untracked() == Tool::Navigate {
                    editing.tool.set(Tool::Brush);
                }
            }
        },
    );
}

/// The FFN model the fill uses: the chosen one if it is still stored, else the first FFN
/// model in the store.
pub fn ffn_model(editing: Editing) -> Option<super::models::StoredModel> {
    let chosen = editing.ffn_model.get();
    editing.models.list.with(|l| {
        let mut ffn = l
            .iter()
            .filter(|m| m.summary.kind == crate::training_ui::ModelKind::Ffn);
        chosen
            .and_then(|c| ffn.clone().find(|m| m.name == c))
            .or_else(|| ffn.next())
            .cloned()
    })
}

/// The FFN fill from a clicked voxel: the network grows the object in 3D, and the worker
/// holds the result as a proposal drawn over the label layer until Accept or Reject.
pub fn ffn_fill(state: AppState, editing: Editing, seed: [usize; 3]) {
    let Some(layer) = editing.target_layer_untracked(state) else {
        return state.error("no label layer to edit: open one or make one with “New label layer”");
    };
    let Some(image) = editing.image_layer(state) else {
        return state.error("an FFN fill needs the EM image layer");
    };
    let Some(model) = untrack(|| ffn_model(editing)) else {
        return state.error(
            "no flood-filling network model: upload one (.ffn, made by emstudio ffn train) in the \
             Infer tab",
        );
    };
    if editing.ffn_running.get_untracked().is_some() {
        return state.error("an FFN fill is running: wait for it or cancel it in the jobs bar");
    }
    let Some(buffer) = editing.models.buffer(&model.name) else {
        return;
    };
    let xy = editing.ffn_radius_xy.get_untracked();
    let radius = [editing.ffn_radius_z.get_untracked(), xy, xy];
    let device = editing.devices.choice.get_untracked();
    let move_threshold = editing.ffn_move.get_untracked() as f32;
    editing.ffn_note.set(String::new());
    let [z, y, x] = seed;
    let request = state.run_job(
        format!("FFN fill at x {x}, y {y}, z {z}"),
        move |request| ToWorker::FfnFill {
            request,
            layer,
            image,
            seed,
            radius,
            move_threshold,
            device,
        },
        &[buffer],
        move |msg, _| {
            editing.ffn_running.set(None);
            match msg {
                FromWorker::FfnProposed {
                    layer,
                    voxels,
                    bounds,
                    steps,
                    seed_probability,
                    device,
                    compute_ms,
                    ..
                } => {
                    if voxels == 0 {
                        // The worker keeps any earlier proposal; so does the panel.
                        editing.ffn_note.set(format!(
                            "The network found no object at x {x}, y {y}, z {z}: the click's \
                             probability fell to {seed_probability:.2} (it must stay at the \
                             move threshold, {move_threshold:.2}) after {steps} steps. Click \
                             nearer the middle of the object."
                        ));
                    } else {
                        // A new proposal replaces the old one in the worker: redraw both.
                        let old = editing.proposal.get_untracked();
                        editing.proposal.set(Some(FfnProposal {
                            layer,
                            voxels,
                            bounds,
                            steps,
                            device,
                            compute_ms,
                        }));
                        viewer::refresh_layer(layer, bounds[0][0], bounds[1][0] - 1);
                        if let Some(o) = old {
                            viewer::refresh_layer(o.layer, o.bounds[0][0], o.bounds[1][0] - 1);
                        }
                    }
                    editing.replies.update(|n| *n += 1);
                }
                FromWorker::Failed { .. } | FromWorker::Cancelled { .. } => {
                    editing.replies.update(|n| *n += 1);
                }
                _ => {}
            }
        },
    );
    editing.ffn_running.set(request);
}

/// Accepts the pending FFN fill as one undoable edit: into a new ID, or into the paint ID.
pub fn accept_proposal(state: AppState, editing: Editing) {
    if editing.proposal.get_untracked().is_none() {
        return;
    }
    // 0: a new ID, which the worker picks (one no voxel has).
    let id = if editing.ffn_new_id.get_untracked() {
        0
    } else {
        editing.paint_id.get_untracked()
    };
    editing.proposal.set(None);
    apply(state, editing, LabelEdit::AcceptProposal { id });
}

/// Rejects the pending FFN fill.
pub fn reject_proposal(state: AppState, editing: Editing) {
    if editing.proposal.get_untracked().is_none() {
        return;
    }
    editing.proposal.set(None);
    apply(state, editing, LabelEdit::RejectProposal);
}
