//! Painting and proofreading on the worker's label layers.
//!
//! A label layer becomes editable on its first [`LabelEdit`]: it is converted to 32-bit IDs
//! and gets a [`LabelEditor`] holding its edit journal (undo/redo as chunk diffs, bounded by
//! [`JOURNAL_BUDGET`]), its locked IDs, the next unused ID, and what autosave still has to
//! write ([`Dirty`]). The operations themselves are `emstudio_core::edit_ops` and
//! `emstudio_core::edit_split`; this module only routes layers to them and keeps the books.
//! Autosave's file format lives in [`crate::autosave`].

use crate::workspace::Workspace;
use emstudio_core::edit_ops::{self, FillBound, Locked};
use emstudio_core::edit_split::{split_2d, split_3d, Split, SplitStroke};
use emstudio_core::journal::{Edit, Journal};
use emstudio_core::{with_volume, AnyVolume, Volume};
use emstudio_protocol::{EditState, FillLimit, LabelEdit, LayerId, LayerInfo, LayerKind};
use std::collections::{BTreeSet, VecDeque};

/// Memory the undo history of one layer may hold.
pub const JOURNAL_BUDGET: usize = 256 << 20;

/// How many history entries an [`EditState`] lists.
const HISTORY_SHOWN: usize = 100;

/// What autosave has not written yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dirty {
    /// Every chunk (the session is new).
    pub all_chunks: bool,
    /// Chunks changed since the last save.
    pub chunks: BTreeSet<usize>,
    /// Edits (by sequence number) not stored yet.
    pub edits: BTreeSet<u64>,
    /// Stored edits that left the history.
    pub removed: BTreeSet<u64>,
    /// The session's description (history order, locks, next ID) changed.
    pub meta: bool,
}

impl Dirty {
    /// True when nothing waits to be written.
    pub fn is_clean(&self) -> bool {
        !self.all_chunks
            && !self.meta
            && self.chunks.is_empty()
            && self.edits.is_empty()
            && self.removed.is_empty()
    }
}

/// The editing state of one label layer.
#[derive(Debug)]
pub struct LabelEditor {
    /// Autosave session key (unique per session).
    pub key: String,
    /// What the user calls it ("dataset / layer").
    pub title: String,
    /// Undo/redo history.
    pub journal: Journal<u32>,
    /// IDs no tool may change.
    pub locked: BTreeSet<u32>,
    /// An ID no voxel has had.
    pub next_id: u32,
    /// Sequence numbers of the journal's done edits, oldest first.
    pub done_seq: VecDeque<u64>,
    /// Sequence numbers of the journal's undone edits, in the journal's order.
    pub undone_seq: Vec<u64>,
    /// The next sequence number.
    pub next_seq: u64,
    /// Not yet autosaved.
    pub dirty: Dirty,
    /// Changes so far (edits, undo, redo, locks).
    pub version: u64,
}

impl LabelEditor {
    /// A fresh session for a layer whose largest ID is `max_id`.
    pub fn new(key: String, title: String, max_id: u32) -> Self {
        Self {
            key,
            title,
            journal: Journal::new(JOURNAL_BUDGET),
            locked: BTreeSet::new(),
            next_id: max_id.saturating_add(1),
            done_seq: VecDeque::new(),
            undone_seq: Vec::new(),
            next_seq: 1,
            dirty: Dirty {
                all_chunks: true,
                meta: true,
                ..Dirty::default()
            },
            version: 0,
        }
    }

    fn locked_set(&self) -> Locked<u32> {
        self.locked.iter().copied().collect()
    }

    /// Records an applied edit: journal, sequence numbers, dirty chunks.
    fn record(&mut self, edit: Edit<u32>) {
        if edit.is_empty() {
            return;
        }
        self.mark_chunks(&edit);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.dirty.removed.extend(self.undone_seq.drain(..));
        let dropped = self.journal.record(edit);
        for _ in 0..dropped {
            if let Some(old) = self.done_seq.pop_front() {
                self.dirty.removed.insert(old);
            }
        }
        self.done_seq.push_back(seq);
        self.dirty.edits.insert(seq);
        self.dirty.meta = true;
        self.version += 1;
        // An edit written and dropped before its save needs neither.
        let both: Vec<u64> = self
            .dirty
            .edits
            .intersection(&self.dirty.removed)
            .copied()
            .collect();
        for s in both {
            self.dirty.edits.remove(&s);
        }
    }

    fn mark_chunks(&mut self, edit: &Edit<u32>) {
        self.dirty.chunks.extend(edit.diffs.iter().map(|d| d.chunk));
    }

    /// The state the UI shows.
    pub fn state(&self, done: String, changed: usize, slices: Option<(usize, usize)>) -> EditState {
        let labels = self.journal.done_labels();
        EditState {
            done,
            changed,
            slices,
            history: labels[labels.len().saturating_sub(HISTORY_SHOWN)..]
                .iter()
                .map(|l| l.to_string())
                .collect(),
            undo_depth: labels.len(),
            redo_depth: self.journal.undone_len(),
            locked: self.locked.iter().copied().collect(),
            next_id: self.next_id,
            compute_ms: 0.0,
            version: self.version,
        }
    }
}

/// The 32-bit copy of a label volume (the type every edit works on).
fn to_u32(volume: &AnyVolume) -> Result<Volume<u32>, String> {
    let s = volume.shape();
    let mut out = Volume::<u32>::new(s, 1).map_err(|e| e.to_string())?;
    out.set_voxel_size(volume.voxel_size());
    for z in 0..s.z {
        out.set_slice(z, &volume.try_slice_labels(z).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

impl Workspace {
    /// Adds an all-zero 32-bit label layer with the extent and voxel size of `like`.
    pub fn new_label_layer(&mut self, like: LayerId, name: &str) -> Result<LayerInfo, String> {
        let source = self.layer(like)?;
        let mut volume = Volume::<u32>::new(source.volume.shape(), 1).map_err(|e| e.to_string())?;
        volume.set_voxel_size(source.volume.voxel_size());
        self.add(name, LayerKind::Label, AnyVolume::U32(volume))
    }

    /// The editor of a layer, if it has been edited.
    pub fn editor(&self, id: LayerId) -> Option<&LabelEditor> {
        self.editors.get(&id)
    }

    /// The editor of a layer, mutably.
    pub fn editor_mut(&mut self, id: LayerId) -> Option<&mut LabelEditor> {
        self.editors.get_mut(&id)
    }

    /// Installs a restored layer's editor.
    pub fn set_editor(&mut self, id: LayerId, editor: LabelEditor) {
        self.editors.insert(id, editor);
    }

    /// Applies one edit to a label layer. `new_key` makes the autosave key when this is the
    /// layer's first edit; `title` names the session.
    pub fn edit_labels(
        &mut self,
        id: LayerId,
        edit: LabelEdit,
        title: &str,
        new_key: impl FnOnce() -> String,
    ) -> Result<(LayerInfo, EditState), String> {
        let layer = self.layer(id)?;
        let name = layer.info.name.clone();
        if layer.info.kind != LayerKind::Label {
            return Err(format!("{name}: only label layers can be edited"));
        }
        let mut layer = self.take_layer(id)?;
        let mut editor = self.editors.remove(&id).unwrap_or_else(|| {
            LabelEditor::new(new_key(), title.to_string(), layer.info.max.max(0.0) as u32)
        });
        let ends_proposal = matches!(
            edit,
            LabelEdit::AcceptProposal { .. } | LabelEdit::RejectProposal
        );
        let mut result = self.apply(&mut layer, &mut editor, edit);
        if ends_proposal {
            if let (Ok(state), Some(p)) = (&mut result, self.proposals.get(&id)) {
                // The overlay goes from every slice it was drawn on.
                let [lo, hi] = p.bounds();
                let (z0, z1) = state.slices.unwrap_or((lo[0], hi[0] - 1));
                state.slices = Some((z0.min(lo[0]), z1.max(hi[0] - 1)));
                self.proposals.remove(&id);
            }
        }
        let info = layer.info.clone();
        self.put_layer(layer);
        self.editors.insert(id, editor);
        result.map(|state| (info, state))
    }

    /// Applies `edit` to a layer taken out of the workspace (images are read from the rest).
    fn apply(
        &self,
        layer: &mut crate::workspace::Layer,
        editor: &mut LabelEditor,
        edit: LabelEdit,
    ) -> Result<EditState, String> {
        let name = layer.info.name.clone();
        if !matches!(layer.volume, AnyVolume::U32(_)) {
            layer.volume =
                AnyVolume::U32(to_u32(&layer.volume).map_err(|e| format!("{name}: {e}"))?);
            layer.info.dtype = emstudio_core::DType::U32;
        }
        let AnyVolume::U32(labels) = &mut layer.volume else {
            unreachable!("converted above");
        };
        let locked = editor.locked_set();
        let made: Option<Edit<u32>> = match edit {
            LabelEdit::Brush {
                z,
                points,
                radius,
                pressure,
                id,
            } => {
                check_z(z, labels, &name)?;
                let radii: Vec<f32> = if pressure.is_empty() {
                    vec![radius]
                } else {
                    pressure.iter().map(|p| radius * p).collect()
                };
                Some(edit_ops::brush_stroke_varying(
                    labels, z, &points, &radii, id, &locked,
                ))
            }
            LabelEdit::Fill {
                z,
                y,
                x,
                three_d,
                limit,
                id,
            } => {
                let edit = match limit {
                    FillLimit::SameLabel => edit_ops::flood_fill::<u32, u8>(
                        labels,
                        (z, y, x),
                        three_d,
                        FillBound::SameLabel,
                        id,
                        &locked,
                    ),
                    FillLimit::Intensity { image, tolerance } => {
                        let image = &self.layer(image)?.volume;
                        with_volume!(image, img => edit_ops::flood_fill(
                            labels,
                            (z, y, x),
                            three_d,
                            FillBound::Intensity { image: img, tolerance },
                            id,
                            &locked,
                        ))
                    }
                }
                .map_err(|e| format!("{name}: {e}"))?;
                Some(edit)
            }
            LabelEdit::Merge { ids, into } => Some(edit_ops::merge(labels, &ids, into, &locked)),
            LabelEdit::Delete { id } => Some(edit_ops::delete_segment(labels, id, &locked)),
            LabelEdit::Split2d {
                z,
                stroke,
                band,
                segment,
                image,
            } => {
                let next = editor.next_id;
                let image = &self.layer(image)?.volume;
                let split = with_volume!(image, img => split_2d(labels, img, SplitStroke { z, points: &stroke, band, segment }, next, &locked))
                    .map_err(|e| format!("{name}: {e}"))?;
                Some(take_split(editor, split))
            }
            LabelEdit::Split3d { image, a, b } => {
                let next = editor.next_id;
                let image = &self.layer(image)?.volume;
                let split = with_volume!(image, img => split_3d(
                    labels,
                    img,
                    (a[0], a[1], a[2]),
                    (b[0], b[1], b[2]),
                    next,
                    &locked
                ))
                .map_err(|e| format!("{name}: {e}"))?;
                Some(take_split(editor, split))
            }
            LabelEdit::AcceptProposal { id } => {
                let Some(proposal) = self.proposals.get(&layer.info.id) else {
                    return Err(format!(
                        "{name}: no FFN fill waits to be accepted (it was accepted, rejected or \
                         replaced)"
                    ));
                };
                let id = if id == 0 { editor.next_id } else { id };
                let label = if id >= editor.next_id {
                    format!("FFN fill {id}")
                } else {
                    format!("FFN fill into {id}")
                };
                Some(edit_ops::paint_mask(
                    labels,
                    proposal.origin,
                    proposal.mask.view(),
                    id,
                    &locked,
                    label,
                ))
            }
            LabelEdit::RejectProposal => {
                let what = if self.proposals.contains_key(&layer.info.id) {
                    "rejected the FFN fill"
                } else {
                    ""
                };
                return Ok(editor.state(what.into(), 0, None));
            }
            LabelEdit::Lock { id, locked } => {
                if locked {
                    editor.locked.insert(id);
                } else {
                    editor.locked.remove(&id);
                }
                editor.dirty.meta = true;
                editor.version += 1;
                let what = format!("{} {id}", if locked { "lock" } else { "unlock" });
                return Ok(editor.state(what, 0, None));
            }
            LabelEdit::Undo | LabelEdit::Redo => {
                let undo = matches!(edit, LabelEdit::Undo);
                let pending = if undo {
                    editor.journal.done().last()
                } else {
                    editor.journal.undone().last()
                };
                let Some(pending) = pending else {
                    let what = if undo {
                        "nothing to undo"
                    } else {
                        "nothing to redo"
                    };
                    return Ok(editor.state(what.into(), 0, None));
                };
                let (changed, slices) = (pending.voxels(), pending.z_range(labels));
                let chunks: Vec<usize> = pending.diffs.iter().map(|d| d.chunk).collect();
                let label = if undo {
                    editor.journal.undo(labels)
                } else {
                    editor.journal.redo(labels)
                }
                .map_err(|e| format!("{name}: {e}"))?
                .unwrap_or_default();
                if undo {
                    if let Some(seq) = editor.done_seq.pop_back() {
                        editor.undone_seq.push(seq);
                    }
                } else if let Some(seq) = editor.undone_seq.pop() {
                    editor.done_seq.push_back(seq);
                }
                editor.dirty.chunks.extend(chunks);
                editor.dirty.meta = true;
                editor.version += 1;
                let what = format!("{} {label}", if undo { "undo" } else { "redo" });
                return Ok(editor.state(what, changed, slices));
            }
            LabelEdit::Status => None,
        };
        let Some(edit) = made else {
            return Ok(editor.state(String::new(), 0, None));
        };
        let (changed, slices, label) = (edit.voxels(), edit.z_range(labels), edit.label.clone());
        for d in &edit.diffs {
            if let Some(&m) = d.after.iter().max() {
                editor.next_id = editor.next_id.max(m.saturating_add(1));
                layer.info.max = layer.info.max.max(f64::from(m));
            }
        }
        editor.record(edit);
        Ok(editor.state(label, changed, slices))
    }
}

fn check_z(z: usize, labels: &Volume<u32>, name: &str) -> Result<(), String> {
    if z >= labels.shape().z {
        return Err(format!(
            "{name}: slice {z} is outside the stack ({} slices)",
            labels.shape().z
        ));
    }
    Ok(())
}

/// Books a split's new IDs and returns its edit.
fn take_split(editor: &mut LabelEditor, split: Split) -> Edit<u32> {
    if let Some(&last) = split.new_ids.last() {
        editor.next_id = editor.next_id.max(last.saturating_add(1));
    }
    let mut edit = split.edit;
    if let Some(first) = split.new_ids.first() {
        edit.label = format!("{} → {first}", edit.label);
    }
    edit
}

#[cfg(test)]
mod tests {
    use super::*;
    use emstudio_core::Shape;

    /// An 8-bit 2×12×12 label layer (segment 5 fills rows 2..10 of slice 0, a membrane of dark
    /// pixels at column 8 of the image) and the image.
    fn workspace() -> (Workspace, LayerId, LayerId) {
        let s = Shape::new(2, 12, 12);
        let mut labels = Volume::<u8>::new(s, 1).expect("labels");
        let mut image = Volume::<u8>::new(s, 1).expect("image");
        for y in 0..12 {
            for x in 0..12 {
                if (2..10).contains(&y) {
                    labels.set(0, y, x, 0, 5);
                }
                image.set(0, y, x, 0, if x == 8 { 10 } else { 200 });
                image.set(1, y, x, 0, if x < 6 { 50 } else { 180 });
            }
        }
        let mut ws = Workspace::default();
        let em = ws
            .add("em", LayerKind::Image, AnyVolume::U8(image))
            .expect("em");
        let gt = ws
            .add("gt", LayerKind::Label, AnyVolume::U8(labels))
            .expect("gt");
        (ws, em.id, gt.id)
    }

    fn edit(
        ws: &mut Workspace,
        layer: LayerId,
        e: LabelEdit,
    ) -> Result<(LayerInfo, EditState), String> {
        ws.edit_labels(layer, e, "t / gt", || "k".into())
    }

    fn label(ws: &Workspace, layer: LayerId, z: usize, y: usize, x: usize) -> f64 {
        ws.layer(layer).expect("layer").volume.get_f64(z, y, x, 0)
    }

    #[test]
    fn an_ffn_proposal_is_drawn_accepted_as_one_undoable_edit_or_rejected() {
        let (mut ws, em, gt) = workspace();
        let fill = crate::ffn_link::fill_box(&ws, gt, em, [0, 5, 3], [1, 4, 4]).expect("box");
        assert_eq!((fill.origin, fill.size), ([0, 1, 0], [2, 9, 8]));
        // The network's answer: a 2×2×2 cube at the click, in the box.
        let mut mask = vec![0u8; 2 * 9 * 8];
        for z in 0..2 {
            for y in 4..6 {
                for x in 3..5 {
                    mask[(z * 9 + y) * 8 + x] = 1;
                }
            }
        }
        let p = crate::ffn_link::proposal(&fill, &mask)
            .expect("ok")
            .expect("object");
        assert_eq!((p.voxels, p.bounds()), (8, [[0, 5, 3], [2, 7, 5]]));
        ws.set_proposal(gt, p);
        // Drawn in the proposal's colour over the labels, on both slices.
        let r = ws.render(gt, 1, false, &[]).expect("render");
        let px = (5 * 12 + 3) * 4;
        let [cr, cg, cb] = emstudio_core::render::PROPOSAL_COLOR;
        assert_eq!(&r.rgba[px..px + 4], &[cr, cg, cb, 255]);
        // Accept into a new ID: one edit, the overlay gone, undo restores the labels.
        // 0 asks for a new ID: the layer's largest is 5, so 6.
        let (_, state) = edit(&mut ws, gt, LabelEdit::AcceptProposal { id: 0 }).expect("accept");
        assert_eq!(state.done, "FFN fill 6");
        assert_eq!(state.changed, 8);
        assert_eq!(state.slices, Some((0, 1)));
        assert_eq!(state.undo_depth, 1);
        assert!(ws.proposal(gt).is_none());
        assert_eq!(label(&ws, gt, 1, 6, 4), 6.0);
        assert_eq!(
            label(&ws, gt, 0, 5, 3),
            6.0,
            "over segment 5: a split proposal"
        );
        let r = ws.render(gt, 1, false, &[]).expect("render");
        assert_eq!(&r.rgba[px..px + 3], &emstudio_core::render::label_color(6));
        let again = edit(&mut ws, gt, LabelEdit::AcceptProposal { id: 9 }).expect_err("none");
        assert!(again.contains("no FFN fill waits"), "{again}");
        edit(&mut ws, gt, LabelEdit::Undo).expect("undo");
        assert_eq!(label(&ws, gt, 1, 6, 4), 0.0);
        assert_eq!(label(&ws, gt, 0, 5, 3), 5.0);
        // Into an existing, locked-around ID: locked voxels are kept.
        let p = crate::ffn_link::proposal(&fill, &mask)
            .expect("ok")
            .expect("object");
        ws.set_proposal(gt, p.clone());
        edit(
            &mut ws,
            gt,
            LabelEdit::Lock {
                id: 5,
                locked: true,
            },
        )
        .expect("lock");
        let (_, state) = edit(&mut ws, gt, LabelEdit::AcceptProposal { id: 5 }).expect("accept");
        assert_eq!(state.done, "FFN fill into 5");
        assert_eq!(
            state.changed, 4,
            "slice 1 only: slice 0 is locked segment 5"
        );
        // Rejected: nothing changes, the overlay goes.
        ws.set_proposal(gt, p);
        let (_, state) = edit(&mut ws, gt, LabelEdit::RejectProposal).expect("reject");
        assert_eq!(
            (state.done.as_str(), state.changed),
            ("rejected the FFN fill", 0)
        );
        assert_eq!(state.slices, Some((0, 1)));
        assert!(ws.proposal(gt).is_none());
        let (_, state) = edit(&mut ws, gt, LabelEdit::RejectProposal).expect("nothing");
        assert_eq!(state.done, "");
    }

    #[test]
    fn split_merge_lock_and_undo_through_the_workspace() {
        let (mut ws, em, gt) = workspace();
        let (info, state) = edit(
            &mut ws,
            gt,
            LabelEdit::Split2d {
                z: 0,
                stroke: vec![(0.0, 7.5), (11.0, 7.5)],
                band: 2.0,
                segment: None,
                image: em,
            },
        )
        .expect("split");
        assert_eq!(
            info.dtype,
            emstudio_core::DType::U32,
            "edited layers become 32-bit"
        );
        assert_eq!(state.done, "split 5 → 6");
        assert_eq!(
            (label(&ws, gt, 0, 5, 2), label(&ws, gt, 0, 5, 10)),
            (5.0, 6.0)
        );
        assert_eq!(state.next_id, 7);
        edit(
            &mut ws,
            gt,
            LabelEdit::Lock {
                id: 6,
                locked: true,
            },
        )
        .expect("lock");
        let (_, state) = edit(
            &mut ws,
            gt,
            LabelEdit::Merge {
                ids: vec![6],
                into: 5,
            },
        )
        .expect("merge");
        assert_eq!(state.changed, 0, "a locked segment is not merged");
        edit(
            &mut ws,
            gt,
            LabelEdit::Lock {
                id: 6,
                locked: false,
            },
        )
        .expect("unlock");
        let (_, state) = edit(
            &mut ws,
            gt,
            LabelEdit::Merge {
                ids: vec![6],
                into: 5,
            },
        )
        .expect("merge");
        assert!(state.changed > 0);
        assert_eq!(label(&ws, gt, 0, 5, 10), 5.0);
        let (_, state) = edit(&mut ws, gt, LabelEdit::Undo).expect("undo");
        assert_eq!(
            (state.done.as_str(), state.redo_depth),
            ("undo merge [6] into 5", 1)
        );
        assert_eq!(label(&ws, gt, 0, 5, 10), 6.0);
        edit(&mut ws, gt, LabelEdit::Undo).expect("undo split");
        assert_eq!(label(&ws, gt, 0, 5, 10), 5.0);
        let (_, state) = edit(&mut ws, gt, LabelEdit::Undo).expect("nothing");
        assert_eq!(state.done, "nothing to undo");
    }

    #[test]
    fn intensity_fill_delete_and_refusals() {
        let (mut ws, em, gt) = workspace();
        let fill = LabelEdit::Fill {
            z: 1,
            y: 0,
            x: 0,
            three_d: false,
            limit: FillLimit::Intensity {
                image: em,
                tolerance: 20.0,
            },
            id: 3,
        };
        let (_, state) = edit(&mut ws, gt, fill).expect("fill");
        assert_eq!(
            (state.changed, state.slices),
            (72, Some((1, 1))),
            "the dark half of slice 1"
        );
        edit(&mut ws, gt, LabelEdit::Delete { id: 3 }).expect("delete");
        assert_eq!(label(&ws, gt, 1, 0, 0), 0.0);
        let err = edit(&mut ws, em, LabelEdit::Delete { id: 1 }).expect_err("image layer");
        assert!(err.contains("em") && err.contains("label layers"), "{err}");
        let err = edit(
            &mut ws,
            gt,
            LabelEdit::Brush {
                z: 9,
                points: vec![(0.0, 0.0)],
                radius: 1.0,
                pressure: Vec::new(),
                id: 1,
            },
        )
        .expect_err("slice outside");
        assert!(err.contains("slice 9"), "{err}");
        let err = edit(
            &mut ws,
            gt,
            LabelEdit::Split3d {
                image: em,
                a: [0, 3, 3],
                b: [0, 0, 0],
            },
        )
        .expect_err("background seed");
        assert!(err.starts_with("gt: there is no segment"), "{err}");
    }
}
