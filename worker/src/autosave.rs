//! Autosave of edited label layers: what is written, and how a session is read back.
//!
//! A session is a folder in the browser's private storage (OPFS, `sessions/<key>/`; the I/O is
//! in `web_opfs`) holding
//! - `chunk-<i>.bin`: chunk `i` of the labels as little-endian `u32` (an empty file, or no
//!   file, is a chunk of zeros);
//! - `edit-<n>.bin`: edit number `n` of the undo history (postcard of
//!   `emstudio_core::journal::Edit<u32>`);
//! - `meta.json`: [`SessionMeta`], which edits are done and undone, locks, the next ID.
//!
//! Each file is replaced atomically (a writable stream commits on close). A save writes the
//! new edits, then the changed chunks, then `meta.json`, then removes edits that left the
//! history; a tab killed between two files loses at most the save in flight, which the UI has
//! not yet reported as saved.

use crate::editing::{Dirty, LabelEditor, JOURNAL_BUDGET};
use crate::workspace::Workspace;
use emstudio_core::journal::{Edit, Journal};
use emstudio_core::{AnyVolume, Shape, Volume, VoxelSize};
use emstudio_protocol::{LayerId, SessionInfo};
use serde::{Deserialize, Serialize};

/// Version of the session format.
pub const FORMAT: u32 = 1;

/// `meta.json` of a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionMeta {
    /// [`FORMAT`].
    pub format: u32,
    /// Folder name.
    pub key: String,
    /// "dataset / layer".
    pub title: String,
    /// The layer's name.
    pub layer_name: String,
    /// Extent.
    pub shape: Shape,
    /// Chunk shape of the stored chunks.
    pub chunk_shape: Shape,
    /// Voxel size (nm).
    pub voxel_size: VoxelSize,
    /// Next unused ID.
    pub next_id: u32,
    /// Locked IDs.
    pub locked: Vec<u32>,
    /// Done edits, oldest first.
    pub done: Vec<u64>,
    /// Undone edits, in the journal's order.
    pub undone: Vec<u64>,
    /// Next edit number.
    pub next_seq: u64,
    /// Bytes stored (approximate: the labels and the history).
    pub bytes: u64,
    /// Save time, ms since 1970.
    pub saved_at: f64,
}

impl SessionMeta {
    /// Checks what `meta.json` claims before anything is allocated for it: the format, an
    /// extent and chunk shape that make sense, and labels (`u32`) that fit in `max_bytes`, the
    /// memory the worker can still give ([`crate::memory`]). A damaged or edited `meta.json`
    /// is refused with the session's name instead of aborting the worker.
    pub fn check(&self, max_bytes: u64) -> Result<(), String> {
        let title = &self.title;
        if self.format != FORMAT {
            return Err(format!(
                "{title}: saved by a different version (format {}, this build reads {FORMAT})",
                self.format
            ));
        }
        let (s, c) = (self.shape, self.chunk_shape);
        if [s.z, s.y, s.x, c.z, c.y, c.x].contains(&0) {
            return Err(format!(
                "{title}: meta.json is damaged (extent {s}, chunks {c})"
            ));
        }
        let bytes = (s.z as u128) * (s.y as u128) * (s.x as u128) * 4;
        if bytes > u128::from(max_bytes) {
            return Err(format!(
                "{title}: meta.json claims a {s} label layer ({} MiB), more than the {} MiB this \
                 tab can still hold; close layers or reload, then restore it",
                bytes >> 20,
                max_bytes >> 20
            ));
        }
        Ok(())
    }

    /// What the session list shows.
    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            key: self.key.clone(),
            title: self.title.clone(),
            shape: self.shape,
            edits: self.done.len(),
            bytes: self.bytes,
            saved_at: self.saved_at,
        }
    }
}

/// File name of chunk `i`.
pub fn chunk_file(i: usize) -> String {
    format!("chunk-{i}.bin")
}

/// File name of edit `seq`.
pub fn edit_file(seq: u64) -> String {
    format!("edit-{seq}.bin")
}

/// A session key: the title made safe for a folder name, and a unique suffix.
pub fn session_key(title: &str, unique: u64) -> String {
    let safe: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    format!("{safe}-{unique}")
}

/// Files to write and remove for one save of one layer.
#[derive(Debug)]
pub struct SavePlan {
    /// The layer.
    pub layer: LayerId,
    /// Session folder.
    pub key: String,
    /// Edit files, then chunk files (name, bytes), in writing order.
    pub files: Vec<(String, Vec<u8>)>,
    /// `meta.json`, written after the files.
    pub meta: Vec<u8>,
    /// Files removed after the meta.
    pub remove: Vec<String>,
    /// Edits in the saved history.
    pub edits: usize,
    /// The editor's change count this save reflects.
    pub version: u64,
    /// What was taken from the dirty set (put back when the save fails).
    pub taken: Dirty,
}

impl Workspace {
    /// What a save of layer `id` has to write now (none: nothing changed since the last).
    pub fn take_save_plan(&mut self, id: LayerId, now_ms: f64) -> Option<SavePlan> {
        let layer = self.layer(id).ok()?;
        let AnyVolume::U32(labels) = &layer.volume else {
            return None;
        };
        let layer_name = layer.info.name.clone();
        let editor = self.editors.get(&id)?;
        if editor.dirty.is_clean() {
            return None;
        }
        let dirty = editor.dirty.clone();
        let mut files = Vec::new();
        // Edits by number: done ones from the journal's done list, undone ones likewise.
        let numbered = editor
            .done_seq
            .iter()
            .zip(editor.journal.done())
            .chain(editor.undone_seq.iter().zip(editor.journal.undone()));
        for (seq, edit) in numbered {
            if dirty.edits.contains(seq) || dirty.all_chunks {
                files.push((edit_file(*seq), postcard::to_allocvec(edit).ok()?));
            }
        }
        let chunks: Vec<usize> = if dirty.all_chunks {
            (0..labels.chunk_count()).collect()
        } else {
            dirty.chunks.iter().copied().collect()
        };
        for i in chunks {
            let values = labels.chunk_by_index(i);
            let data = if values.iter().all(|v| *v == 0) {
                Vec::new()
            } else {
                bytemuck::cast_slice::<u32, u8>(values).to_vec()
            };
            files.push((chunk_file(i), data));
        }
        let bytes = (labels.byte_len() + editor.journal.bytes()) as u64;
        let meta = SessionMeta {
            format: FORMAT,
            key: editor.key.clone(),
            title: editor.title.clone(),
            layer_name,
            shape: labels.shape(),
            chunk_shape: labels.chunk_shape(),
            voxel_size: labels.voxel_size(),
            next_id: editor.next_id,
            locked: editor.locked.iter().copied().collect(),
            done: editor.done_seq.iter().copied().collect(),
            undone: editor.undone_seq.clone(),
            next_seq: editor.next_seq,
            bytes,
            saved_at: now_ms,
        };
        let plan = SavePlan {
            layer: id,
            key: editor.key.clone(),
            files,
            meta: serde_json::to_vec_pretty(&meta).ok()?,
            remove: dirty.removed.iter().map(|s| edit_file(*s)).collect(),
            edits: editor.done_seq.len(),
            version: editor.version,
            taken: dirty,
        };
        if let Some(e) = self.editors.get_mut(&id) {
            e.dirty = Dirty::default();
        }
        Some(plan)
    }

    /// Puts back what a failed save took, so the next save writes it.
    pub fn save_failed(&mut self, plan: SavePlan) {
        if let Some(e) = self.editors.get_mut(&plan.layer) {
            let t = plan.taken;
            e.dirty.all_chunks |= t.all_chunks;
            e.dirty.meta = true;
            e.dirty.chunks.extend(t.chunks);
            e.dirty.edits.extend(t.edits);
            e.dirty.removed.extend(t.removed);
        }
    }

    /// True when layer `id` has changes autosave has not taken yet.
    pub fn needs_save(&self, id: LayerId) -> bool {
        self.editors.get(&id).is_some_and(|e| !e.dirty.is_clean())
    }
}

/// Rebuilds a session's labels and editor from its files; `read(name)` returns a file's bytes
/// (none when missing). Edits whose files are missing or unreadable are dropped from the
/// history (the labels are intact; only that undo step is gone), and reported in the second
/// value.
pub fn restore(
    meta: &SessionMeta,
    max_bytes: u64,
    mut read: impl FnMut(&str) -> Option<Vec<u8>>,
) -> Result<(Volume<u32>, LabelEditor, Vec<String>), String> {
    meta.check(max_bytes)?;
    let mut labels = Volume::<u32>::with_chunk_shape(meta.shape, 1, meta.chunk_shape)
        .map_err(|e| format!("{}: {e}", meta.title))?;
    if labels.chunk_shape() != meta.chunk_shape {
        return Err(format!(
            "{}: the stored chunk shape does not fit the extent",
            meta.title
        ));
    }
    labels.set_voxel_size(meta.voxel_size);
    for i in 0..labels.chunk_count() {
        let name = chunk_file(i);
        let Some(bytes) = read(&name) else { continue };
        if bytes.is_empty() {
            continue;
        }
        let chunk = labels.chunk_by_index_mut(i);
        if bytes.len() != chunk.len() * 4 {
            return Err(format!(
                "{}: {name} holds {} bytes, expected {} (the session is damaged)",
                meta.title,
                bytes.len(),
                chunk.len() * 4
            ));
        }
        for (v, b) in chunk.iter_mut().zip(bytes.chunks_exact(4)) {
            *v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
    }
    let mut lost = Vec::new();
    let mut load = |seqs: &[u64]| -> (Vec<u64>, Vec<Edit<u32>>) {
        let mut kept = (Vec::new(), Vec::new());
        for &seq in seqs {
            let name = edit_file(seq);
            match read(&name).and_then(|b| postcard::from_bytes::<Edit<u32>>(&b).ok()) {
                Some(edit) => {
                    kept.0.push(seq);
                    kept.1.push(edit);
                }
                None => lost.push(name),
            }
        }
        kept
    };
    let (done_seq, done) = load(&meta.done);
    let (undone_seq, undone) = load(&meta.undone);
    let editor = LabelEditor {
        key: meta.key.clone(),
        title: meta.title.clone(),
        journal: Journal::restore(JOURNAL_BUDGET, done, undone),
        locked: meta.locked.iter().copied().collect(),
        next_id: meta.next_id,
        done_seq: done_seq.into(),
        undone_seq,
        next_seq: meta.next_seq,
        dirty: Dirty::default(),
        version: 0,
    };
    Ok((labels, editor, lost))
}

#[cfg(test)]
mod tests {
    use super::*;
    use emstudio_protocol::{FillLimit, LabelEdit, LayerKind};
    use std::collections::HashMap;

    fn disk_apply(disk: &mut HashMap<String, Vec<u8>>, plan: SavePlan) {
        for (name, bytes) in plan.files {
            disk.insert(name, bytes);
        }
        disk.insert("meta.json".into(), plan.meta);
        for name in plan.remove {
            disk.remove(&name);
        }
    }

    fn brush(z: usize, x: f32, id: u32) -> LabelEdit {
        LabelEdit::Brush {
            z,
            points: vec![(2.0, x), (10.0, x)],
            radius: 1.5,
            pressure: Vec::new(),
            id,
        }
    }

    #[test]
    fn a_session_saved_edit_by_edit_restores_labels_history_and_locks() {
        let mut ws = Workspace::default();
        let image = ws
            .add(
                "em",
                LayerKind::Image,
                AnyVolume::U8(Volume::new(Shape::new(3, 16, 16), 1).expect("image")),
            )
            .expect("image layer");
        let gt = ws.new_label_layer(image.id, "gt").expect("new layer");
        let key = || "demo-1".to_string();
        let mut disk = HashMap::new();
        let edit = |ws: &mut Workspace, e: LabelEdit, disk: &mut HashMap<String, Vec<u8>>| {
            let (_, state) = ws.edit_labels(gt.id, e, "demo / gt", key).expect("edit");
            if let Some(plan) = ws.take_save_plan(gt.id, 5.0) {
                disk_apply(disk, plan);
            }
            state
        };
        edit(&mut ws, brush(1, 4.0, 7), &mut disk);
        edit(&mut ws, brush(1, 11.0, 8), &mut disk);
        let s = edit(
            &mut ws,
            LabelEdit::Fill {
                z: 2,
                y: 0,
                x: 0,
                three_d: false,
                limit: FillLimit::SameLabel,
                id: 9,
            },
            &mut disk,
        );
        assert_eq!((s.undo_depth, s.changed, s.slices), (3, 256, Some((2, 2))));
        let s = edit(&mut ws, LabelEdit::Undo, &mut disk);
        assert_eq!((s.done.as_str(), s.redo_depth), ("undo fill 9", 1));
        edit(
            &mut ws,
            LabelEdit::Lock {
                id: 7,
                locked: true,
            },
            &mut disk,
        );
        assert!(ws.take_save_plan(gt.id, 6.0).is_none(), "all saved");

        let meta: SessionMeta = serde_json::from_slice(&disk["meta.json"]).expect("meta");
        assert_eq!(
            (meta.done.len(), meta.undone.len(), meta.locked.clone()),
            (2, 1, vec![7])
        );
        assert_eq!(meta.info().edits, 2);
        let (labels, mut editor, lost) =
            restore(&meta, u64::MAX, |name| disk.get(name).cloned()).expect("restore");
        assert!(lost.is_empty());
        let AnyVolume::U32(live) = &ws.layer(gt.id).expect("layer").volume else {
            panic!("edited layers are u32");
        };
        assert_eq!(&labels, live, "labels restored");
        assert_eq!(editor.next_id, 10);
        // History works after the reload: redo the fill, undo both strokes.
        let mut labels = labels;
        editor.journal.redo(&mut labels).expect("redo");
        assert_eq!(labels.get(2, 5, 5, 0), 9);
        for _ in 0..3 {
            editor.journal.undo(&mut labels).expect("undo");
        }
        assert!((0..3).all(|z| labels.slice(z).iter().all(|v| *v == 0)));
    }

    #[test]
    fn a_new_edit_after_undo_removes_the_undone_files_and_damage_is_named() {
        let mut ws = Workspace::default();
        let image = ws
            .add(
                "em",
                LayerKind::Image,
                AnyVolume::U8(Volume::new(Shape::new(2, 8, 8), 1).expect("image")),
            )
            .expect("image layer");
        let gt = ws.new_label_layer(image.id, "gt").expect("new layer");
        let mut disk = HashMap::new();
        for e in [brush(0, 2.0, 3), LabelEdit::Undo, brush(0, 5.0, 4)] {
            ws.edit_labels(gt.id, e, "t", || "k-1".into())
                .expect("edit");
            let plan = ws.take_save_plan(gt.id, 1.0).expect("something to save");
            disk_apply(&mut disk, plan);
        }
        assert!(
            !disk.contains_key(&edit_file(1)),
            "the undone edit's file is removed"
        );
        assert!(disk.contains_key(&edit_file(2)));
        let meta: SessionMeta = serde_json::from_slice(&disk["meta.json"]).expect("meta");
        disk.insert(chunk_file(0), vec![1, 2, 3]);
        let err = restore(&meta, u64::MAX, |n| disk.get(n).cloned()).expect_err("damaged chunk");
        assert!(
            err.contains("chunk-0.bin") && err.contains("damaged"),
            "{err}"
        );
    }

    #[test]
    fn an_edited_meta_json_is_refused_before_anything_is_allocated() {
        let meta = SessionMeta {
            format: FORMAT,
            key: "k".into(),
            title: "demo / gt".into(),
            layer_name: "gt".into(),
            shape: Shape::new(100_000, 100_000, 100_000),
            chunk_shape: Shape::new(1, 512, 512),
            voxel_size: VoxelSize::default(),
            next_id: 1,
            locked: Vec::new(),
            done: Vec::new(),
            undone: Vec::new(),
            next_seq: 0,
            bytes: 0,
            saved_at: 0.0,
        };
        let mut reads = 0;
        let err = restore(&meta, 3 << 30, |_| {
            reads += 1;
            None
        })
        .expect_err("huge");
        assert!(
            err.contains("demo / gt") && err.contains("100000×100000×100000"),
            "{err}"
        );
        assert_eq!(reads, 0, "no file is read for a refused session");
        // Zero-sized chunks, and another format version, likewise.
        let zero = SessionMeta {
            shape: Shape::new(2, 8, 8),
            chunk_shape: Shape::new(0, 8, 8),
            ..meta.clone()
        };
        assert!(restore(&zero, 3 << 30, |_| None)
            .expect_err("chunks")
            .contains("damaged"));
        let newer = SessionMeta {
            format: FORMAT + 1,
            shape: Shape::new(2, 8, 8),
            ..meta
        };
        assert!(restore(&newer, 3 << 30, |_| None)
            .expect_err("format")
            .contains("different version"));
    }

    #[test]
    fn keys_are_safe_folder_names() {
        assert_eq!(session_key("AC3 / gt (new)", 17), "AC3___gt__new_-17");
    }
}
