//! Sparse contingency table (overlap counts) between a GT and a predicted label array.
//!
//! One pass over the voxels in z, y, x order: runs of equal (GT, prediction) pairs along x are
//! counted first and only run ends touch a hash map keyed by the packed pair, so cost is one
//! comparison per voxel plus one hash update per run (label arrays are piecewise constant).
//! Labels may be anything up to `u32`; memory is proportional to the number of distinct pairs.
//! Each cell also keeps the first voxel of its pair in raster order, which the split/merge lists
//! use as a jump-to position. The counts match `skimage.metrics.contingency_table` (tested
//! through the Rand/VI golden tests in `tests/golden_metrics.rs`).

use super::{check_same_shape, LabelValue, MetricsError};
use crate::progress::{check, Progress};
use ndarray::{ArrayView2, ArrayView3, Axis};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// SplitMix64 finaliser: the keys pack the GT label in the high and the predicted label in the
/// low 32 bits, so both halves must reach the low (bucket) bits.
#[derive(Default)]
struct PairHasher(u64);

impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, k: u64) {
        let mut z = k.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        self.0 = z ^ (z >> 31);
    }
}

type PairMap = HashMap<u64, usize, BuildHasherDefault<PairHasher>>;

/// One non-empty cell of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// GT label.
    pub gt: u32,
    /// Predicted label.
    pub pred: u32,
    /// Voxels with this (GT, predicted) pair.
    pub count: u64,
    /// First voxel of the pair in z, y, x raster order.
    pub first_voxel: [usize; 3],
}

/// Size of one label (a marginal of the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSize {
    /// The label.
    pub label: u32,
    /// Its voxel count in the whole array.
    pub count: u64,
    /// Its first voxel in z, y, x raster order.
    pub first_voxel: [usize; 3],
}

/// Overlap counts between two label arrays of the same shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContingencyTable {
    shape: [usize; 3],
    /// Sorted by (gt, pred).
    cells: Vec<Cell>,
    /// Sorted by label; includes 0 when present.
    gt: Vec<LabelSize>,
    /// Sorted by label; includes 0 when present.
    pred: Vec<LabelSize>,
    /// Parallel to `pred`: voxels of each predicted label inside the GT foreground.
    pred_foreground: Vec<u64>,
}

/// Accumulates runs; reused across slices by the ISBI protocol.
#[derive(Default)]
pub(crate) struct TableBuilder {
    map: PairMap,
    /// (key, count, first flat index), in insertion (= raster) order.
    acc: Vec<(u64, u64, u64)>,
}

impl TableBuilder {
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.acc.clear();
    }

    #[inline]
    fn add_run(&mut self, g: u32, p: u32, n: u64, first: u64) {
        let key = (u64::from(g) << 32) | u64::from(p);
        match self.map.get(&key) {
            Some(&i) => self.acc[i].1 += n,
            None => {
                self.map.insert(key, self.acc.len());
                self.acc.push((key, n, first));
            }
        }
    }

    /// Adds one plane whose first voxel has flat index `base`.
    pub(crate) fn add_plane<G: LabelValue, P: LabelValue>(
        &mut self,
        g: ArrayView2<'_, G>,
        p: ArrayView2<'_, P>,
        base: u64,
    ) {
        let width = g.ncols();
        if width == 0 {
            return;
        }
        for (y, (grow, prow)) in g.outer_iter().zip(p.outer_iter()).enumerate() {
            let row_base = base + (y * width) as u64;
            match (grow.as_slice(), prow.as_slice()) {
                (Some(gs), Some(ps)) => {
                    self.add_row(gs.iter().copied(), ps.iter().copied(), row_base)
                }
                _ => self.add_row(grow.iter().copied(), prow.iter().copied(), row_base),
            }
        }
    }

    #[inline]
    fn add_row<G: LabelValue, P: LabelValue>(
        &mut self,
        mut g: impl Iterator<Item = G>,
        mut p: impl Iterator<Item = P>,
        row_base: u64,
    ) {
        let (Some(mut cg), Some(mut cp)) = (g.next(), p.next()) else {
            return;
        };
        let mut start = 0u64;
        let mut k = 1u64;
        for (a, b) in g.zip(p) {
            if a != cg || b != cp {
                self.add_run(cg.to_u32(), cp.to_u32(), k - start, row_base + start);
                cg = a;
                cp = b;
                start = k;
            }
            k += 1;
        }
        self.add_run(cg.to_u32(), cp.to_u32(), k - start, row_base + start);
    }

    /// Sorts the cells and derives the marginals.
    pub(crate) fn finish(&self, shape: [usize; 3]) -> ContingencyTable {
        let [_, h, w] = shape;
        let plane = (h * w).max(1) as u64;
        let wide = w.max(1) as u64;
        let pos = |f: u64| -> [usize; 3] {
            [
                (f / plane) as usize,
                ((f % plane) / wide) as usize,
                (f % wide) as usize,
            ]
        };
        let mut acc = self.acc.clone();
        acc.sort_unstable_by_key(|e| e.0);
        let cells: Vec<Cell> = acc
            .iter()
            .map(|&(key, count, first)| Cell {
                gt: (key >> 32) as u32,
                pred: key as u32,
                count,
                first_voxel: pos(first),
            })
            .collect();

        let mut gt: Vec<LabelSize> = Vec::new();
        let mut gt_first: Vec<u64> = Vec::new();
        for &(key, count, first) in &acc {
            let label = (key >> 32) as u32;
            match gt.last_mut() {
                Some(last) if last.label == label => {
                    last.count += count;
                    if let Some(f) = gt_first.last_mut() {
                        *f = (*f).min(first);
                    }
                }
                _ => {
                    gt.push(LabelSize {
                        label,
                        count,
                        first_voxel: [0; 3],
                    });
                    gt_first.push(first);
                }
            }
        }
        for (l, &f) in gt.iter_mut().zip(&gt_first) {
            l.first_voxel = pos(f);
        }

        // (pred, count, first, count inside GT foreground)
        let mut by_pred: Vec<(u32, u64, u64, u64)> = acc
            .iter()
            .map(|&(key, count, first)| {
                let fg = if key >> 32 != 0 { count } else { 0 };
                (key as u32, count, first, fg)
            })
            .collect();
        by_pred.sort_unstable_by_key(|e| e.0);
        let mut pred: Vec<LabelSize> = Vec::new();
        let mut pred_first: Vec<u64> = Vec::new();
        let mut pred_foreground: Vec<u64> = Vec::new();
        for (label, count, first, fg) in by_pred {
            match (
                pred.last_mut(),
                pred_first.last_mut(),
                pred_foreground.last_mut(),
            ) {
                (Some(last), Some(f), Some(g)) if last.label == label => {
                    last.count += count;
                    *f = (*f).min(first);
                    *g += fg;
                }
                _ => {
                    pred.push(LabelSize {
                        label,
                        count,
                        first_voxel: [0; 3],
                    });
                    pred_first.push(first);
                    pred_foreground.push(fg);
                }
            }
        }
        for (l, &f) in pred.iter_mut().zip(&pred_first) {
            l.first_voxel = pos(f);
        }
        ContingencyTable {
            shape,
            cells,
            gt,
            pred,
            pred_foreground,
        }
    }
}

impl ContingencyTable {
    /// Builds the table of two 3D label arrays (z, y, x) of the same shape, reporting progress
    /// once per z plane.
    pub fn from_labels_3d<G: LabelValue, P: LabelValue>(
        gt: ArrayView3<'_, G>,
        pred: ArrayView3<'_, P>,
        progress: &mut dyn Progress,
    ) -> Result<Self, MetricsError> {
        check_same_shape(gt.shape(), pred.shape())?;
        let (d, h, w) = gt.dim();
        let mut builder = TableBuilder::default();
        let plane = (h * w) as u64;
        for z in 0..d {
            builder.add_plane(
                gt.index_axis(Axis(0), z),
                pred.index_axis(Axis(0), z),
                z as u64 * plane,
            );
            check(progress, z as u64 + 1, d as u64)?;
        }
        Ok(builder.finish([d, h, w]))
    }

    /// Builds the table of two 2D label images (reported with z = 1).
    pub fn from_labels_2d<G: LabelValue, P: LabelValue>(
        gt: ArrayView2<'_, G>,
        pred: ArrayView2<'_, P>,
    ) -> Result<Self, MetricsError> {
        check_same_shape(gt.shape(), pred.shape())?;
        let (h, w) = gt.dim();
        let mut builder = TableBuilder::default();
        builder.add_plane(gt, pred, 0);
        Ok(builder.finish([1, h, w]))
    }

    /// Shape (z, y, x) of the compared arrays.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Non-empty cells, sorted by (gt, pred).
    pub fn cells(&self) -> &[Cell] {
        &self.cells
    }

    /// GT label sizes, sorted by label (0 included when present).
    pub fn gt_labels(&self) -> &[LabelSize] {
        &self.gt
    }

    /// Predicted label sizes over the whole array, sorted by label (0 included when present).
    pub fn pred_labels(&self) -> &[LabelSize] {
        &self.pred
    }

    /// Parallel to [`Self::pred_labels`]: each predicted label's voxels inside the GT
    /// foreground (GT label ≠ 0).
    pub fn pred_foreground_sizes(&self) -> &[u64] {
        &self.pred_foreground
    }

    /// Total voxels.
    pub fn voxels(&self) -> u64 {
        self.gt.iter().map(|l| l.count).sum()
    }

    /// Voxels with GT label ≠ 0.
    pub fn foreground_voxels(&self) -> u64 {
        self.gt
            .iter()
            .filter(|l| l.label != 0)
            .map(|l| l.count)
            .sum()
    }

    /// GT-foreground voxels with predicted label 0.
    pub fn unlabelled_foreground_voxels(&self) -> u64 {
        self.cells
            .iter()
            .filter(|c| c.gt != 0 && c.pred == 0)
            .map(|c| c.count)
            .sum()
    }

    /// The cells of one GT label (a contiguous run of [`Self::cells`]).
    pub fn row(&self, gt: u32) -> &[Cell] {
        let start = self.cells.partition_point(|c| c.gt < gt);
        let end = self.cells.partition_point(|c| c.gt <= gt);
        &self.cells[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
    use ndarray::{array, Array3};

    #[test]
    fn counts_pairs_and_marginals() {
        let gt = array![[[0u16, 1, 1], [2, 2, 0]], [[2, 2, 2], [1, 1, 1]]];
        let pred = array![[[5u32, 5, 5], [7, 7, 7]], [[7, 9, 9], [u32::MAX, 5, 5]]];
        let t = ContingencyTable::from_labels_3d(gt.view(), pred.view(), &mut NoProgress)
            .expect("same shape");
        let cells: Vec<(u32, u32, u64)> =
            t.cells().iter().map(|c| (c.gt, c.pred, c.count)).collect();
        assert_eq!(
            cells,
            vec![
                (0, 5, 1),
                (0, 7, 1),
                (1, 5, 4),
                (1, u32::MAX, 1),
                (2, 7, 3),
                (2, 9, 2)
            ]
        );
        assert_eq!(t.voxels(), 12);
        assert_eq!(t.foreground_voxels(), 10);
        let c15 = t.row(1)[0];
        assert_eq!(c15.first_voxel, [0, 0, 1]);
        assert_eq!(t.row(2)[1].first_voxel, [1, 0, 1]);
        let preds: Vec<(u32, u64)> = t.pred_labels().iter().map(|l| (l.label, l.count)).collect();
        assert_eq!(preds, vec![(5, 5), (7, 4), (9, 2), (u32::MAX, 1)]);
        assert_eq!(t.pred_foreground_sizes(), &[4, 3, 2, 1]);
        assert_eq!(t.gt_labels()[2].first_voxel, [0, 1, 0]);
        assert!(t.row(3).is_empty());
    }

    #[test]
    fn non_standard_layout_matches() {
        let gt = Array3::from_shape_fn((3, 4, 5), |(z, y, x)| ((z * 7 + y * 3 + x) % 5) as u8);
        let pred = Array3::from_shape_fn((3, 4, 5), |(z, y, x)| ((z + y + x / 2) % 3) as u16);
        let a =
            ContingencyTable::from_labels_3d(gt.view(), pred.view(), &mut NoProgress).expect("ok");
        // Same data through transposed (non-contiguous) views of transposed copies.
        let gt_t = gt.view().reversed_axes().to_owned();
        let pred_t = pred.view().reversed_axes().to_owned();
        let b = ContingencyTable::from_labels_3d(
            gt_t.view().reversed_axes(),
            pred_t.view().reversed_axes(),
            &mut NoProgress,
        )
        .expect("ok");
        assert_eq!(a, b);
    }

    #[test]
    fn empty_arrays() {
        let e = Array3::<u8>::zeros((2, 0, 4));
        let t = ContingencyTable::from_labels_3d(e.view(), e.view(), &mut NoProgress).expect("ok");
        assert!(t.cells().is_empty());
        assert_eq!(t.voxels(), 0);
    }
}
