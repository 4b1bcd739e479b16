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
}

impl Tool {
    /// Every tool, in toolbar order.
    pub const ALL: [Tool; 8] = [
        Tool::Navigate,
        Tool::Brush,
        Tool::Eraser,
        Tool::Fill,
        Tool::Pick,
        Tool::Select,
        Tool::Split,
        Tool::Split3d,
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
}

impl Editing {
    /// Fresh state.
    pub fn new() -> Self {
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
