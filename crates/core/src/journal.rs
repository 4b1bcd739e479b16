//! The edit journal: one record of every change to a label volume, for undo, redo, autosave and
//! (later) collaboration and provenance.
//!
//! An [`Edit`] is a list of chunk diffs: for each chunk of the [`Volume`] it touched, the offsets
//! of the changed values with their value before and after. Every operation (a paint stroke, a
//! fill, a merge, a split) records through an [`EditRecorder`], so all of them undo and redo the
//! same way, and an edit costs memory in proportion to what it changed, not to the volume.
//! Applying an edit checks first that every value it expects is in place (before anything is
//! written), so a journal that no longer matches its volume is refused instead of corrupting it.
//! The [`Journal`] keeps done and undone edits within a byte budget, dropping the oldest first.
//! Edits are serde types, so they can be persisted (OPFS) and sent to collaborators. The
//! operations that make edits are in [`crate::edit_ops`].

use crate::volume::{Volume, Voxel};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// The changed values of one chunk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkDiff<T> {
    /// Row-major index of the chunk in the volume's chunk grid.
    pub chunk: usize,
    /// Offsets of the changed values inside the chunk, ascending.
    pub offsets: Vec<u32>,
    /// Values before the edit.
    pub before: Vec<T>,
    /// Values after the edit.
    pub after: Vec<T>,
}

/// One edit: what it was and what it changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Edit<T> {
    /// What the user did ("paint 12", "merge 5 ← 7, 9").
    pub label: String,
    /// Changes, one entry per touched chunk, in chunk order.
    pub diffs: Vec<ChunkDiff<T>>,
}

/// Why an edit could not be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// The edit names a chunk or offset the volume does not have.
    #[error("edit \"{label}\" does not fit this volume (chunk {chunk})")]
    OutOfRange {
        /// The edit.
        label: String,
        /// The chunk at fault.
        chunk: usize,
    },
    /// The volume no longer holds the values the edit expects.
    #[error("edit \"{label}\" does not match the volume (chunk {chunk} was changed elsewhere)")]
    Mismatch {
        /// The edit.
        label: String,
        /// The chunk at fault.
        chunk: usize,
    },
}

impl<T: Voxel> Edit<T> {
    /// Changed values in all.
    pub fn voxels(&self) -> usize {
        self.diffs.iter().map(|d| d.offsets.len()).sum()
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.diffs.is_empty()
    }

    /// First and last slice the edit changes in `volume` (none when it is empty).
    pub fn z_range(&self, volume: &Volume<T>) -> Option<(usize, usize)> {
        self.diffs
            .iter()
            .map(|d| volume.chunk_z_range(d.chunk))
            .fold(None, |acc, (z0, z1)| match acc {
                None => Some((z0, z1 - 1)),
                Some((a, b)) => Some((a.min(z0), b.max(z1 - 1))),
            })
    }

    /// Memory the edit holds, bytes (approximate).
    pub fn bytes(&self) -> usize {
        self.label.len()
            + self
                .diffs
                .iter()
                .map(|d| {
                    std::mem::size_of::<ChunkDiff<T>>()
                        + d.offsets.len() * (4 + 2 * std::mem::size_of::<T>())
                })
                .sum::<usize>()
    }

    /// Writes the edit's `after` values (`forward`) or its `before` values (undo) into
    /// `volume`, after checking that every value it replaces is the one it expects.
    pub fn apply(&self, volume: &mut Volume<T>, forward: bool) -> Result<(), JournalError> {
        for d in &self.diffs {
            let out_of_range = JournalError::OutOfRange {
                label: self.label.clone(),
                chunk: d.chunk,
            };
            if d.chunk >= volume.chunk_count()
                || d.before.len() != d.offsets.len()
                || d.after.len() != d.offsets.len()
            {
                return Err(out_of_range);
            }
            let data = volume.chunk_by_index(d.chunk);
            let expected = if forward { &d.before } else { &d.after };
            for (&o, e) in d.offsets.iter().zip(expected) {
                match data.get(o as usize) {
                    None => return Err(out_of_range),
                    Some(v) if v != e => {
                        return Err(JournalError::Mismatch {
                            label: self.label.clone(),
                            chunk: d.chunk,
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        for d in &self.diffs {
            let values = if forward { &d.after } else { &d.before };
            let data = volume.chunk_by_index_mut(d.chunk);
            for (&o, &v) in d.offsets.iter().zip(values) {
                data[o as usize] = v;
            }
        }
        Ok(())
    }
}

/// Records changes to a single-channel volume as they are made; [`EditRecorder::finish`] gives
/// the [`Edit`]. Setting a voxel twice keeps its first "before" and last "after"; voxels set back
/// to their old value drop out. Changes are appended per chunk and sorted once at the end, so
/// recording costs a push per changed voxel.
#[derive(Debug)]
pub struct EditRecorder<T> {
    label: String,
    changes: BTreeMap<usize, Vec<(u32, T, T)>>,
}

impl<T: Voxel> EditRecorder<T> {
    /// A recorder for an edit called `label`.
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            changes: BTreeMap::new(),
        }
    }

    /// Sets voxel `(z, y, x)` of a single-channel `volume` to `value` and records the change.
    /// Panics when out of bounds (a caller bug, as [`Volume::set`]).
    pub fn set(&mut self, volume: &mut Volume<T>, z: usize, y: usize, x: usize, value: T) {
        let old = volume.get(z, y, x, 0);
        if old != value {
            let (chunk, offset) = volume.locate(z, y, x);
            self.changes
                .entry(chunk)
                .or_default()
                .push((offset as u32, old, value));
            volume.set(z, y, x, 0, value);
        }
    }

    /// Sets every single-channel voxel for which `hit` holds to `value`, chunk by chunk (no
    /// per-voxel address arithmetic), recording the changes.
    pub(crate) fn relabel_where(
        &mut self,
        volume: &mut Volume<T>,
        hit: impl Fn(T) -> bool,
        value: T,
    ) {
        assert_eq!(volume.channels(), 1, "label volumes have one channel");
        for chunk in 0..volume.chunk_count() {
            let data = volume.chunk_by_index_mut(chunk);
            let mut changed = Vec::new();
            for (offset, v) in data.iter_mut().enumerate() {
                if *v != value && hit(*v) {
                    changed.push((offset as u32, *v, value));
                    *v = value;
                }
            }
            if !changed.is_empty() {
                self.changes.entry(chunk).or_default().extend(changed);
            }
        }
    }

    /// The edit (empty when nothing changed).
    pub fn finish(self) -> Edit<T> {
        let diffs = self
            .changes
            .into_iter()
            .filter_map(|(chunk, mut changes)| {
                // Stable: the changes of one voxel stay in the order they were made.
                changes.sort_by_key(|c| c.0);
                let mut diff = ChunkDiff {
                    chunk,
                    offsets: Vec::with_capacity(changes.len()),
                    before: Vec::with_capacity(changes.len()),
                    after: Vec::with_capacity(changes.len()),
                };
                let mut i = 0;
                while i < changes.len() {
                    let (offset, before, _) = changes[i];
                    let mut j = i;
                    while j + 1 < changes.len() && changes[j + 1].0 == offset {
                        j += 1;
                    }
                    let after = changes[j].2;
                    if before != after {
                        diff.offsets.push(offset);
                        diff.before.push(before);
                        diff.after.push(after);
                    }
                    i = j + 1;
                }
                (!diff.offsets.is_empty()).then_some(diff)
            })
            .collect();
        Edit {
            label: self.label,
            diffs,
        }
    }
}

/// Done and undone edits of one volume, within a memory budget.
#[derive(Clone, Debug)]
pub struct Journal<T> {
    done: VecDeque<Edit<T>>,
    undone: Vec<Edit<T>>,
    budget: usize,
    bytes: usize,
}

impl<T: Voxel> Journal<T> {
    /// An empty journal keeping at most about `budget` bytes of edits (the newest edit is
    /// always kept, however large).
    pub fn new(budget: usize) -> Self {
        Self {
            done: VecDeque::new(),
            undone: Vec::new(),
            budget,
            bytes: 0,
        }
    }

    /// Adds an edit that has been applied to the volume; the redo list is cleared. Empty edits
    /// are ignored. Returns how many old edits were dropped to stay within the budget.
    pub fn record(&mut self, edit: Edit<T>) -> usize {
        if edit.is_empty() {
            return 0;
        }
        self.bytes -= self.undone.iter().map(Edit::bytes).sum::<usize>();
        self.undone.clear();
        self.bytes += edit.bytes();
        self.done.push_back(edit);
        let mut dropped = 0;
        while self.bytes > self.budget && self.done.len() > 1 {
            if let Some(old) = self.done.pop_front() {
                self.bytes -= old.bytes();
                dropped += 1;
            }
        }
        dropped
    }

    /// Undoes the newest edit; returns its label (None: nothing to undo).
    pub fn undo(&mut self, volume: &mut Volume<T>) -> Result<Option<String>, JournalError> {
        let Some(edit) = self.done.back() else {
            return Ok(None);
        };
        edit.apply(volume, false)?;
        let edit = self.done.pop_back().expect("checked above");
        let label = edit.label.clone();
        self.undone.push(edit);
        Ok(Some(label))
    }

    /// Redoes the newest undone edit; returns its label (None: nothing to redo).
    pub fn redo(&mut self, volume: &mut Volume<T>) -> Result<Option<String>, JournalError> {
        let Some(edit) = self.undone.last() else {
            return Ok(None);
        };
        edit.apply(volume, true)?;
        let edit = self.undone.pop().expect("checked above");
        let label = edit.label.clone();
        self.done.push_back(edit);
        Ok(Some(label))
    }

    /// A journal rebuilt from stored edits (oldest first), for example after a reload. The
    /// edits must match the volume's current state: `done` applied, `undone` not.
    pub fn restore(budget: usize, done: Vec<Edit<T>>, undone: Vec<Edit<T>>) -> Self {
        let bytes = done.iter().chain(&undone).map(Edit::bytes).sum();
        Self {
            done: done.into(),
            undone,
            budget,
            bytes,
        }
    }

    /// The edits that can be undone, oldest first.
    pub fn done(&self) -> impl Iterator<Item = &Edit<T>> {
        self.done.iter()
    }

    /// The edits that can be redone, in the order they would be redone last-first (the last
    /// one is redone first).
    pub fn undone(&self) -> &[Edit<T>] {
        &self.undone
    }

    /// Labels of the edits that can be undone, oldest first.
    pub fn done_labels(&self) -> Vec<&str> {
        self.done.iter().map(|e| e.label.as_str()).collect()
    }

    /// Number of edits that can be redone.
    pub fn undone_len(&self) -> usize {
        self.undone.len()
    }

    /// Memory held by the edits, bytes (approximate).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit_ops::{delete_segment, merge};
    use crate::volume::Shape;
    use proptest::prelude::*;

    /// A 4×20×20 label volume in 8×8 chunks (edits cross chunk borders), IDs in stripes.
    fn volume() -> Volume<u16> {
        let mut v = Volume::<u16>::with_chunk_shape(Shape::new(4, 20, 20), 1, Shape::new(1, 8, 8))
            .expect("volume");
        for z in 0..4 {
            for y in 0..20 {
                for x in 0..20 {
                    v.set(z, y, x, 0, ((x / 5) + 1) as u16);
                }
            }
        }
        v
    }

    fn paint(v: &mut Volume<u16>, z: usize, cy: usize, cx: usize, r: usize, id: u16) -> Edit<u16> {
        let mut rec = EditRecorder::new(format!("paint {id}"));
        for y in cy.saturating_sub(r)..(cy + r + 1).min(20) {
            for x in cx.saturating_sub(r)..(cx + r + 1).min(20) {
                rec.set(v, z, y, x, id);
            }
        }
        rec.finish()
    }

    #[test]
    fn undo_and_redo_restore_every_value_across_chunks() {
        let mut v = volume();
        let original = v.to_array().expect("array");
        let mut journal = Journal::new(1 << 20);
        let stroke = paint(&mut v, 1, 7, 7, 3, 9);
        assert_eq!(stroke.diffs.len(), 4, "the square crosses four chunks");
        assert_eq!(stroke.voxels(), 49);
        journal.record(stroke);
        let painted = v.to_array().expect("array");
        let merged = merge(&mut v, &[2, 3], 1, &Default::default());
        // IDs 2 and 3 (columns 5-14 of 4 slices) except the 6 × 7 of them under the stroke.
        assert_eq!(merged.voxels(), 4 * 20 * 10 - 6 * 7);
        journal.record(merged);
        assert!(v
            .to_array()
            .expect("array")
            .iter()
            .all(|&id| id == 1 || id == 4 || id == 9));
        assert_eq!(
            journal.undo(&mut v).expect("undo").as_deref(),
            Some("merge [2, 3] into 1")
        );
        assert_eq!(v.to_array().expect("array"), painted);
        assert_eq!(
            journal.undo(&mut v).expect("undo").as_deref(),
            Some("paint 9")
        );
        assert_eq!(v.to_array().expect("array"), original);
        assert_eq!(journal.undo(&mut v).expect("nothing"), None);
        assert_eq!(
            journal.redo(&mut v).expect("redo").as_deref(),
            Some("paint 9")
        );
        assert_eq!(v.to_array().expect("array"), painted);
        // A new edit clears the redo list.
        journal.record(delete_segment(&mut v, 4, &Default::default()));
        assert_eq!(journal.undone_len(), 0);
        assert_eq!(journal.redo(&mut v).expect("nothing"), None);
        assert_eq!(journal.done_labels(), ["paint 9", "delete 4"]);
    }

    #[test]
    fn repainting_keeps_the_first_before_and_unchanged_voxels_drop_out() {
        let mut v = volume();
        let mut rec = EditRecorder::new("scribble");
        rec.set(&mut v, 0, 0, 0, 7);
        rec.set(&mut v, 0, 0, 0, 8);
        rec.set(&mut v, 0, 0, 1, 7);
        rec.set(&mut v, 0, 0, 1, 1); // back to its old value
        rec.set(&mut v, 0, 0, 2, 1); // no change at all
        let edit = rec.finish();
        assert_eq!(edit.voxels(), 1);
        assert_eq!((edit.diffs[0].before[0], edit.diffs[0].after[0]), (1, 8));
        assert!(EditRecorder::<u16>::new("nothing").finish().is_empty());
    }

    #[test]
    fn a_journal_that_no_longer_matches_is_refused_and_writes_nothing() {
        let mut v = volume();
        let mut journal = Journal::new(1 << 20);
        journal.record(paint(&mut v, 0, 10, 10, 2, 9));
        v.set(0, 12, 12, 0, 5); // changed behind the journal's back
        let before = v.to_array().expect("array");
        let err = journal.undo(&mut v).expect_err("mismatch");
        assert!(matches!(err, JournalError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("paint 9"));
        assert_eq!(v.to_array().expect("array"), before, "nothing written");
        assert_eq!(journal.done_labels().len(), 1, "the edit is kept");
        let mut small = Volume::<u16>::new(Shape::new(1, 4, 4), 1).expect("small");
        let edit = paint(&mut volume(), 3, 18, 18, 1, 9);
        assert!(matches!(
            edit.apply(&mut small, true),
            Err(JournalError::OutOfRange { .. })
        ));
    }

    #[test]
    fn the_budget_drops_the_oldest_edits_first() {
        let mut v = volume();
        // Strokes of the same size inside one chunk: every edit holds the same bytes.
        let one = paint(&mut v.clone(), 0, 2, 2, 1, 10).bytes();
        let mut journal = Journal::new(one * 3);
        let mut dropped = 0;
        for i in 0..6 {
            dropped += journal.record(paint(&mut v, i % 4, 2, 2, 1, 10 + i as u16));
        }
        assert_eq!(dropped, 3);
        assert_eq!(journal.done_labels(), ["paint 13", "paint 14", "paint 15"]);
        assert!(journal.bytes() <= one * 3);
        // The newest edit stays even when it alone is over the budget.
        let mut tiny = Journal::new(1);
        tiny.record(paint(&mut v, 0, 10, 10, 4, 20));
        assert_eq!(tiny.done_labels(), ["paint 20"]);
    }

    #[test]
    fn edits_survive_serialisation() {
        let mut v = volume();
        let edit = paint(&mut v, 2, 3, 16, 2, 9);
        let json = serde_json::to_string(&edit).expect("json");
        let back: Edit<u16> = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, edit);
        back.apply(&mut v, false).expect("undo");
        assert_eq!(
            v.to_array().expect("array"),
            volume().to_array().expect("array")
        );
    }

    proptest! {
        /// Any sequence of strokes, merges, undos and redos matches a stack of snapshots.
        #[test]
        fn random_sessions_match_snapshots(ops in proptest::collection::vec((0u8..4, 0usize..4, 0usize..20, 0usize..20, 1u16..12), 1..30)) {
            let mut v = volume();
            let mut journal = Journal::new(usize::MAX);
            let mut done = vec![v.to_array().expect("array")];
            let mut undone = Vec::new();
            for (kind, z, y, x, id) in ops {
                match kind {
                    0 | 1 => {
                        let edit = if kind == 0 { paint(&mut v, z, y, x, 2, id) } else { merge(&mut v, &[id, id / 2], id % 5, &Default::default()) };
                        if !edit.is_empty() {
                            journal.record(edit);
                            done.push(v.to_array().expect("array"));
                            undone.clear();
                        }
                    }
                    2 => {
                        if journal.undo(&mut v).expect("undo").is_some() {
                            undone.push(done.pop().expect("state"));
                        }
                    }
                    _ => {
                        if journal.redo(&mut v).expect("redo").is_some() {
                            done.push(undone.pop().expect("state"));
                        }
                    }
                }
                prop_assert_eq!(&v.to_array().expect("array"), done.last().expect("state"));
            }
        }
    }
}
