//! Relabelling, object sizes, the small-object filter, and linking per-slice 2D segments
//! across z into 3D objects.
//!
//! Hand-written; tested against these references (golden tests in `tests/golden_labels.rs`,
//! fixtures from `scripts/golden/gen_labels.py`):
//!
//! - [`relabel_sequential`] matches `skimage.segmentation.relabel_sequential(labels)` (offset
//!   1): the sorted distinct nonzero ids become `1..=N`, 0 stays 0, the element type is kept;
//!   the returned [`SequentialMap`] is skimage's forward map (and its inverse).
//! - [`label_sizes`] matches `numpy.unique(labels, return_counts=True)` without 0.
//! - [`remove_small_objects`] with `connectivity: Some(c)` matches
//!   `cc3d.dust(labels, threshold=min_size, connectivity=c, in_place=False)` on labelled
//!   input: it finds the multi-label connected components of `labels` (a label split into two
//!   separate pieces gives two objects), sets every piece with fewer than `min_size` voxels
//!   to 0, and keeps the original ids of everything else (cc3d.dust does **not** relabel).
//!   With `connectivity: None` an object is a label id wherever it occurs, which matches
//!   `skimage.morphology.remove_small_objects(labels, max_size=min_size - 1)` on integer input.
//! - [`link_slices`] has no PyPI reference; it is tested on constructed cases (a tube
//!   labelled per slice, a Y-shaped merge, a tiny touch) and by the property that linking the
//!   per-slice 4-connected components of a mask with any overlap gives exactly the mask's 3D
//!   6-connected components.

use super::components::find;
use super::components::{dust, for_each_run, LabelError, LabelValue};
use crate::neighborhood::Connectivity3;
use crate::progress::{check, Progress};
use ndarray::{Array3, ArrayView3};
use serde::{Deserialize, Serialize};

/// The forward map of [`relabel_sequential`]: old id `old_ids()[i]` became `i + 1`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SequentialMap<T> {
    old_ids: Vec<T>,
}

impl<T: LabelValue> SequentialMap<T> {
    /// The old nonzero ids in increasing order; the new id of `old_ids()[i]` is `i + 1`.
    pub fn old_ids(&self) -> &[T] {
        &self.old_ids
    }
    /// Number of nonzero ids (the largest new id).
    pub fn len(&self) -> usize {
        self.old_ids.len()
    }
    /// True when the input held only background.
    pub fn is_empty(&self) -> bool {
        self.old_ids.is_empty()
    }
    /// New id of an old id: `Some(0)` for 0, `None` for an id that did not occur.
    pub fn forward(&self, old: T) -> Option<T> {
        if old == T::ZERO {
            return Some(T::ZERO);
        }
        let i = self.old_ids.binary_search(&old).ok()?;
        // i + 1 <= number of distinct nonzero values of T, so it fits in T.
        Some(T::from_u32_truncating(i as u32 + 1))
    }
    /// Old id of a new id: `Some(0)` for 0, `None` beyond [`Self::len`].
    pub fn inverse(&self, new: T) -> Option<T> {
        if new == T::ZERO {
            return Some(T::ZERO);
        }
        self.old_ids.get(new.to_u32() as usize - 1).copied()
    }
}

/// Parameters of the small-object filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SizeFilterParams {
    /// Objects with fewer voxels than this become background (0 keeps everything).
    pub min_size: u64,
    /// `Some(c)`: an object is a connected piece of one id under `c` (cc3d.dust).
    /// `None`: an object is every voxel of one id, connected or not.
    pub connectivity: Option<Connectivity3>,
}

impl Default for SizeFilterParams {
    fn default() -> Self {
        Self {
            min_size: 100,
            connectivity: Some(Connectivity3::C26),
        }
    }
}

/// Parameters of [`link_slices`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkParams {
    /// Two segments in adjacent slices join when they overlap in at least this fraction of
    /// the smaller one's area (0..=1; at 0 any overlap joins).
    pub min_overlap: f64,
}

impl Default for LinkParams {
    fn default() -> Self {
        Self { min_overlap: 0.5 }
    }
}

/// Counts finished z planes across several passes and forwards them to a [`Progress`].
struct Planes<'a> {
    progress: &'a mut dyn Progress,
    done: u64,
    total: u64,
}

impl<'a> Planes<'a> {
    fn new(progress: &'a mut dyn Progress, planes: usize, passes: u64) -> Self {
        Self {
            progress,
            done: 0,
            total: planes as u64 * passes,
        }
    }
    fn tick(&mut self) -> Result<(), LabelError> {
        self.done += 1;
        check(self.progress, self.done, self.total)?;
        Ok(())
    }
}

/// Sorted distinct nonzero ids of some data and a fast id → rank (1-based) lookup.
enum IdIndex<T> {
    /// `rank[v]` for every `v` up to the maximum (0 for absent ids and for 0).
    Dense { rank: Vec<u32>, ids: Vec<T> },
    /// Ids too large for a table: binary search.
    Sparse { ids: Vec<T> },
}

/// Whether ids up to `max` in `len` values are looked up in a table (at most 4 bytes per value
/// or 256 KiB) rather than by binary search.
fn dense_table(max: usize, len: usize) -> bool {
    max <= len.max(1 << 16)
}

impl<T: LabelValue> IdIndex<T> {
    /// Builds the index over `data`, calling `tick` after each of `chunk`-sized pieces.
    fn build(
        data: &[T],
        chunk: usize,
        tick: &mut dyn FnMut() -> Result<(), LabelError>,
    ) -> Result<Self, LabelError> {
        let max = data.iter().copied().max().unwrap_or(T::ZERO).to_u32() as usize;
        if dense_table(max, data.len()) {
            let mut rank = vec![0u32; max + 1];
            for piece in data.chunks(chunk.max(1)) {
                for_each_run(piece, |_, _, v| rank[v.to_u32() as usize] = 1);
                tick()?;
            }
            rank[0] = 0;
            let mut ids = Vec::new();
            for (v, r) in rank.iter_mut().enumerate() {
                if *r != 0 {
                    ids.push(T::from_u32_truncating(v as u32));
                    *r = ids.len() as u32;
                }
            }
            Ok(IdIndex::Dense { rank, ids })
        } else {
            let mut ids = Vec::new();
            for piece in data.chunks(chunk.max(1)) {
                for_each_run(piece, |_, _, v| ids.push(v));
                tick()?;
            }
            ids.sort_unstable();
            ids.dedup();
            ids.retain(|&v| v != T::ZERO);
            Ok(IdIndex::Sparse { ids })
        }
    }

    fn ids(&self) -> &[T] {
        match self {
            IdIndex::Dense { ids, .. } | IdIndex::Sparse { ids } => ids,
        }
    }

    /// Rank of `v` (0 for background and absent ids). Callers look up once per run.
    fn rank(&self, v: T) -> u32 {
        match self {
            IdIndex::Dense { rank, .. } => rank.get(v.to_u32() as usize).copied().unwrap_or(0),
            IdIndex::Sparse { ids } => ids.binary_search(&v).map_or(0, |k| k as u32 + 1),
        }
    }
}

/// Renumbers the nonzero ids of `labels` to `1..=N` in increasing order of the old id.
///
/// Matches `skimage.segmentation.relabel_sequential(labels)` (output image and forward map);
/// the element type is kept, as N never exceeds the type's range. Two passes over the volume,
/// reported per z plane.
///
/// ```
/// use emstudio_core::labels::relabel::relabel_sequential;
/// use emstudio_core::progress::NoProgress;
/// let v = ndarray::Array3::<u16>::from_shape_vec((1, 1, 4), vec![9, 0, 4, 9]).unwrap();
/// let (out, map) = relabel_sequential(v.view(), &mut NoProgress).unwrap();
/// assert_eq!(out.as_slice().unwrap(), &[2, 0, 1, 2]);
/// assert_eq!(map.old_ids(), &[4, 9]);
/// assert_eq!(map.forward(9), Some(2));
/// ```
pub fn relabel_sequential<T: LabelValue>(
    labels: ArrayView3<'_, T>,
    progress: &mut dyn Progress,
) -> Result<(Array3<T>, SequentialMap<T>), LabelError> {
    let (nz, ny, nx) = labels.dim();
    let plane = (ny * nx).max(1);
    let mut planes = Planes::new(progress, nz, 2);
    let dense = labels.as_standard_layout();
    let flat = dense.as_slice().unwrap_or(&[]);
    let index = IdIndex::build(flat, plane, &mut || planes.tick())?;
    let mut out = Array3::from_elem((nz, ny, nx), T::ZERO);
    if let Some(dst) = out.as_slice_mut() {
        for (src, dst) in flat.chunks(plane).zip(dst.chunks_mut(plane)) {
            for_each_run(src, |a, b, v| {
                dst[a..b].fill(T::from_u32_truncating(index.rank(v)));
            });
            planes.tick()?;
        }
    }
    let map = SequentialMap {
        old_ids: index.ids().to_vec(),
    };
    Ok((out, map))
}

/// Voxel count of every nonzero id, in increasing id order.
///
/// Matches `numpy.unique(labels, return_counts=True)` with 0 left out. Two passes, reported
/// per z plane.
pub fn label_sizes<T: LabelValue>(
    labels: ArrayView3<'_, T>,
    progress: &mut dyn Progress,
) -> Result<Vec<(T, u64)>, LabelError> {
    let (nz, ny, nx) = labels.dim();
    let plane = (ny * nx).max(1);
    let dense = labels.as_standard_layout();
    let flat = dense.as_slice().unwrap_or(&[]);
    let max = flat.iter().copied().max().unwrap_or(T::ZERO).to_u32() as usize;
    if dense_table(max, flat.len()) {
        // One pass: count straight into a table indexed by id.
        let mut planes = Planes::new(progress, nz, 1);
        let mut counts = vec![0u64; max + 1];
        for piece in flat.chunks(plane) {
            for_each_run(piece, |a, b, v| {
                counts[v.to_u32() as usize] += (b - a) as u64
            });
            planes.tick()?;
        }
        return Ok(counts
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, &n)| n != 0)
            .map(|(v, &n)| (T::from_u32_truncating(v as u32), n))
            .collect());
    }
    let mut planes = Planes::new(progress, nz, 2);
    let index = IdIndex::build(flat, plane, &mut || planes.tick())?;
    let counts = count_ranks(&index, flat, plane, &mut planes)?;
    Ok(index
        .ids()
        .iter()
        .zip(&counts[1..])
        .map(|(&id, &n)| (id, n))
        .collect())
}

/// Voxels per rank (index 0 = background).
fn count_ranks<T: LabelValue>(
    index: &IdIndex<T>,
    flat: &[T],
    plane: usize,
    planes: &mut Planes<'_>,
) -> Result<Vec<u64>, LabelError> {
    let mut counts = vec![0u64; index.ids().len() + 1];
    for src in flat.chunks(plane) {
        for_each_run(src, |a, b, v| {
            counts[index.rank(v) as usize] += (b - a) as u64
        });
        planes.tick()?;
    }
    Ok(counts)
}

/// Sets objects with fewer than `params.min_size` voxels to 0 and keeps every other voxel.
///
/// With `connectivity: Some(c)` an object is a connected piece of one id (multi-label
/// components under `c`), exactly as `cc3d.dust(labels, threshold=min_size, connectivity=c,
/// in_place=False)`; with `None` it is all voxels of one id, as
/// `skimage.morphology.remove_small_objects(labels, max_size=min_size - 1)`. Ids are not
/// renumbered (use [`relabel_sequential`] afterwards for that).
pub fn remove_small_objects<T: LabelValue>(
    labels: ArrayView3<'_, T>,
    params: &SizeFilterParams,
    progress: &mut dyn Progress,
) -> Result<Array3<T>, LabelError> {
    if let Some(c) = params.connectivity {
        return dust(labels, c, params.min_size, progress);
    }
    let (nz, ny, nx) = labels.dim();
    let source = labels.as_standard_layout();
    let flat = source.as_slice().unwrap_or(&[]);
    let mut out = source.to_owned();
    let plane = (ny * nx).max(1);
    let mut planes = Planes::new(progress, nz, 3);
    let Some(dst) = out.as_slice_mut() else {
        return Ok(out);
    };
    let index = IdIndex::build(flat, plane, &mut || planes.tick())?;
    let counts = count_ranks(&index, flat, plane, &mut planes)?;
    let keep: Vec<bool> = counts.iter().map(|&n| n >= params.min_size).collect();
    for (src, dst) in flat.chunks(plane).zip(dst.chunks_mut(plane)) {
        for_each_run(src, |a, b, v| {
            if !keep[index.rank(v) as usize] {
                dst[a..b].fill(T::ZERO);
            }
        });
        planes.tick()?;
    }
    Ok(out)
}

/// Joins two sets; the smaller root becomes the root.
fn union(parent: &mut [u32], a: u32, b: u32) {
    let ra = find(parent, a);
    let rb = find(parent, b);
    if ra < rb {
        parent[rb as usize] = ra;
    } else if rb < ra {
        parent[ra as usize] = rb;
    }
}

/// Links segments of independently labelled z slices into 3D objects.
///
/// `labels` is a z-stack whose slices were labelled on their own (ids need not agree between
/// slices; 0 is background). A segment is one nonzero id within one slice, connected or not.
/// Segments `a` in slice z and `b` in slice z + 1 join when they share at least one (y, x)
/// position and `|a ∩ b| >= min_overlap × min(|a|, |b|)`; joins are transitive (union-find
/// over (z, id)). Returns 3D labels `1..=N` numbered in raster (z, y, x) order of each
/// object's first voxel, and N. Two passes, reported per z plane.
///
/// Because the fraction is taken of the smaller segment, a small segment lying inside one
/// object in the slice below and another in the slice above joins both: fragments bridge
/// objects at any threshold. On per-slice segmentations with many fragments, remove small
/// segments first (e.g. [`remove_small_objects`] on each slice's labels).
///
/// ```
/// use emstudio_core::labels::relabel::{link_slices, LinkParams};
/// use emstudio_core::progress::NoProgress;
/// // A column whose id changes every slice, and a segment that appears only in slice 1.
/// let v = ndarray::Array3::<u8>::from_shape_vec((3, 1, 3), vec![5, 0, 0, 7, 0, 2, 1, 0, 0])
///     .unwrap();
/// let params = LinkParams { min_overlap: 0.5 };
/// let (out, n) = link_slices(v.view(), &params, &mut NoProgress).unwrap();
/// assert_eq!(n, 2);
/// assert_eq!(out.as_slice().unwrap(), &[1, 0, 0, 1, 0, 2, 1, 0, 0]);
/// ```
pub fn link_slices<T: LabelValue>(
    labels: ArrayView3<'_, T>,
    params: &LinkParams,
    progress: &mut dyn Progress,
) -> Result<(Array3<u32>, u32), LabelError> {
    if !(0.0..=1.0).contains(&params.min_overlap) {
        return Err(LabelError::InvalidParameter {
            name: "min_overlap",
            reason: format!("{} is not a fraction in 0..=1", params.min_overlap),
        });
    }
    let (nz, ny, nx) = labels.dim();
    let plane = ny * nx;
    let mut out = Array3::<u32>::zeros((nz, ny, nx));
    if plane == 0 || nz == 0 {
        return Ok((out, 0));
    }
    let mut planes = Planes::new(progress, nz, 2);
    let dense = labels.as_standard_layout();
    let flat = dense.as_slice().unwrap_or(&[]);
    let Some(nodes) = out.as_slice_mut() else {
        return Ok((out, 0));
    };

    // Pass 1: global segment ids per slice (node = base + rank), sizes, and overlaps with the
    // previous slice.
    let mut sizes: Vec<u64> = vec![0];
    let mut parent: Vec<u32> = vec![0];
    let mut pairs: Vec<(u64, u64)> = Vec::new();
    for z in 0..nz {
        let src = &flat[z * plane..(z + 1) * plane];
        let index = IdIndex::build(src, plane, &mut || Ok(()))?;
        let base = sizes.len() - 1;
        let k = index.ids().len();
        if base + k > u32::MAX as usize {
            return Err(LabelError::TooManyComponents { max: u32::MAX });
        }
        sizes.resize(base + k + 1, 0);
        parent.extend((base + 1..=base + k).map(|i| i as u32));
        let (done, rest) = nodes.split_at_mut(z * plane);
        let dst = &mut rest[..plane];
        for_each_run(src, |a, b, v| {
            let r = index.rank(v);
            if r != 0 {
                let node = base as u32 + r;
                dst[a..b].fill(node);
                sizes[node as usize] += (b - a) as u64;
            }
        });
        if z > 0 {
            let prev = &done[(z - 1) * plane..];
            pairs.clear();
            let mut last = 0u64;
            for (&a, &b) in prev.iter().zip(dst.iter()) {
                if a == 0 || b == 0 {
                    continue;
                }
                let key = (u64::from(a) << 32) | u64::from(b);
                match pairs.last_mut() {
                    Some(p) if last == key => p.1 += 1,
                    _ => pairs.push((key, 1)),
                }
                last = key;
            }
            pairs.sort_unstable_by_key(|p| p.0);
            let mut i = 0;
            while i < pairs.len() {
                let key = pairs[i].0;
                let mut n = 0;
                while i < pairs.len() && pairs[i].0 == key {
                    n += pairs[i].1;
                    i += 1;
                }
                let (a, b) = ((key >> 32) as u32, key as u32);
                let smaller = sizes[a as usize].min(sizes[b as usize]);
                if n as f64 >= params.min_overlap * smaller as f64 {
                    union(&mut parent, a, b);
                }
            }
        }
        planes.tick()?;
    }

    // Pass 2: number the roots in raster order of first appearance.
    for l in 1..parent.len() {
        let p = parent[l];
        parent[l] = parent[p as usize];
    }
    let mut final_label = vec![0u32; parent.len()];
    let mut count = 0u32;
    for piece in nodes.chunks_mut(plane) {
        for v in piece.iter_mut().filter(|v| **v != 0) {
            let root = parent[*v as usize] as usize;
            if final_label[root] == 0 {
                count += 1;
                final_label[root] = count;
            }
            *v = final_label[root];
        }
        planes.tick()?;
    }
    Ok((out, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::components::{
        connected_components_2d, connected_components_3d, Components2Params, Components3Params,
        InputMode,
    };
    use crate::neighborhood::Connectivity2;
    use crate::progress::NoProgress;
    use ndarray::{s, Array3};
    use proptest::prelude::*;

    fn link(v: &Array3<u16>, min_overlap: f64) -> (Array3<u32>, u32) {
        link_slices(v.view(), &LinkParams { min_overlap }, &mut NoProgress).expect("link")
    }

    #[test]
    fn tube_split_per_slice_links_into_one() {
        let mut v = Array3::<u16>::zeros((6, 10, 10));
        for z in 0..6 {
            // A disc drifting by one pixel per slice, with a fresh id per slice.
            v.slice_mut(s![z, 2..6, z..z + 4]).fill(10 + z as u16);
        }
        let (out, n) = link(&v, 0.5);
        assert_eq!(n, 1);
        assert_eq!(out.iter().filter(|&&l| l == 1).count(), 6 * 16);
    }

    #[test]
    fn tiny_touch_stays_apart() {
        let mut v = Array3::<u16>::zeros((2, 10, 10));
        v.slice_mut(s![0, 0..5, 0..5]).fill(1);
        v.slice_mut(s![1, 4..9, 4..9]).fill(1); // overlaps at one pixel (4, 4)
        assert_eq!(link(&v, 0.1).1, 2);
        // ... but any overlap links at 0.
        assert_eq!(link(&v, 0.0).1, 1);
        // Exactly at the threshold joins: 1 of 25 pixels.
        assert_eq!(link(&v, 1.0 / 25.0).1, 1);
    }

    #[test]
    fn y_shaped_merge() {
        let mut v = Array3::<u16>::zeros((4, 8, 12));
        for z in 0..2 {
            v.slice_mut(s![z, 2..6, 0..4]).fill(3);
            v.slice_mut(s![z, 2..6, 8..12]).fill(4);
        }
        for z in 2..4 {
            v.slice_mut(s![z, 2..6, 0..12]).fill(1);
        }
        let (out, n) = link(&v, 0.5);
        assert_eq!(n, 1);
        assert_eq!(out[[0, 2, 0]], out[[0, 2, 8]]);
        // With a higher threshold the branches (16 px each, 16 px overlap of a 16-px
        // smaller segment) still join: the fraction is of the smaller segment.
        assert_eq!(link(&v, 1.0).1, 1);
    }

    #[test]
    fn numbering_is_raster_order() {
        let mut v = Array3::<u16>::zeros((2, 2, 4));
        v[[1, 0, 0]] = 9; // first appears at z = 1
        v[[0, 1, 3]] = 2;
        v[[1, 1, 3]] = 5;
        let (out, n) = link(&v, 0.5);
        assert_eq!(n, 2);
        assert_eq!(out[[0, 1, 3]], 1);
        assert_eq!(out[[1, 1, 3]], 1);
        assert_eq!(out[[1, 0, 0]], 2);
    }

    #[test]
    fn link_rejects_bad_overlap_and_handles_empty() {
        let v = Array3::<u16>::zeros((2, 2, 2));
        for bad in [-0.1, 1.5, f64::NAN] {
            let r = link_slices(v.view(), &LinkParams { min_overlap: bad }, &mut NoProgress);
            assert!(matches!(r, Err(LabelError::InvalidParameter { .. })));
        }
        for shape in [(0, 0, 0), (3, 0, 2), (1, 1, 1)] {
            let v = Array3::<u8>::zeros(shape);
            let (out, n) =
                link_slices(v.view(), &LinkParams::default(), &mut NoProgress).expect("link");
            assert_eq!((out.dim(), n), (shape, 0));
        }
    }

    #[test]
    fn relabel_and_sizes_small() {
        let v = Array3::<u32>::from_shape_vec((1, 2, 3), vec![7, 0, 4_000_000_000, 7, 7, 3])
            .expect("shape");
        let (out, map) = relabel_sequential(v.view(), &mut NoProgress).expect("relabel");
        assert_eq!(out.as_slice(), Some(&[2, 0, 3, 2, 2, 1][..]));
        assert_eq!(map.old_ids(), &[3, 7, 4_000_000_000]);
        assert_eq!(map.forward(4_000_000_000), Some(3));
        assert_eq!(map.forward(5), None);
        assert_eq!(map.inverse(2), Some(7));
        assert_eq!(map.inverse(0), Some(0));
        assert_eq!(map.inverse(4), None);
        let sizes = label_sizes(v.view(), &mut NoProgress).expect("sizes");
        assert_eq!(sizes, vec![(3, 1), (7, 3), (4_000_000_000, 1)]);
    }

    #[test]
    fn size_filter_by_id_and_by_piece() {
        // id 1 in two pieces of 3 and 1 voxels; id 2 one piece of 2 voxels.
        let v = Array3::<u8>::from_shape_vec((1, 1, 9), vec![1, 1, 1, 0, 1, 0, 2, 2, 0])
            .expect("shape");
        let by_id = SizeFilterParams {
            min_size: 3,
            connectivity: None,
        };
        let out = remove_small_objects(v.view(), &by_id, &mut NoProgress).expect("filter");
        assert_eq!(out.as_slice(), Some(&[1, 1, 1, 0, 1, 0, 0, 0, 0][..]));
        let by_piece = SizeFilterParams {
            min_size: 2,
            connectivity: Some(Connectivity3::C26),
        };
        let out = remove_small_objects(v.view(), &by_piece, &mut NoProgress).expect("filter");
        assert_eq!(out.as_slice(), Some(&[1, 1, 1, 0, 0, 0, 2, 2, 0][..]));
        for shape in [(0, 0, 0), (2, 0, 3), (1, 1, 1)] {
            let e = Array3::<u16>::ones(shape);
            for p in [by_id, by_piece] {
                let out = remove_small_objects(e.view(), &p, &mut NoProgress).expect("filter");
                assert_eq!(out.dim(), shape);
            }
            assert_eq!(
                relabel_sequential(e.view(), &mut NoProgress)
                    .expect("r")
                    .0
                    .dim(),
                shape
            );
            assert!(label_sizes(e.view(), &mut NoProgress).expect("s").len() <= 1);
        }
    }

    fn mask() -> impl Strategy<Value = Array3<u8>> {
        (1usize..6, 1usize..8, 1usize..12).prop_flat_map(|(z, y, x)| {
            proptest::collection::vec(0u8..=1, z * y * x)
                .prop_map(move |d| Array3::from_shape_vec((z, y, x), d).expect("shape"))
        })
    }

    proptest! {
        /// Linking per-slice 4-connected components with any overlap is 3D 6-connectivity.
        #[test]
        fn link_any_overlap_equals_cc6(m in mask()) {
            let p4 = Components2Params {
                connectivity: Connectivity2::C4,
                mode: InputMode::Binary,
            };
            let mut per_slice = Array3::<u32>::zeros(m.dim());
            for z in 0..m.dim().0 {
                let slice = m.index_axis(ndarray::Axis(0), z);
                let (l, _) = connected_components_2d(slice, &p4).expect("2d");
                per_slice.index_axis_mut(ndarray::Axis(0), z).assign(&l);
            }
            let any = LinkParams { min_overlap: 0.0 };
            let linked = link_slices(per_slice.view(), &any, &mut NoProgress).expect("link");
            let p6 = Components3Params {
                connectivity: Connectivity3::C6,
                mode: InputMode::Binary,
            };
            let cc = connected_components_3d(m.view(), &p6, &mut NoProgress).expect("3d");
            prop_assert_eq!(linked, cc);
        }

        /// Both size filters agree with counting done the slow way.
        #[test]
        fn size_filters_match_naive(
            m in mask(),
            ids in proptest::collection::vec(1u16..4, 1..4),
            min_size in 0u64..12,
            c in prop_oneof![
                Just(Connectivity3::C6),
                Just(Connectivity3::C18),
                Just(Connectivity3::C26)
            ],
        ) {
            // Multi-label input from a mask: the id cycles through `ids` along x.
            let v = Array3::from_shape_fn(m.dim(), |(z, y, x)| {
                if m[[z, y, x]] == 0 { 0 } else { ids[x % ids.len()] }
            });
            let count = |a: &Array3<u16>, id: u16| a.iter().filter(|&&w| w == id).count() as u64;
            let by_id = SizeFilterParams { min_size, connectivity: None };
            let got = remove_small_objects(v.view(), &by_id, &mut NoProgress).expect("by id");
            let expected = v.mapv(|id| if id != 0 && count(&v, id) < min_size { 0 } else { id });
            prop_assert_eq!(got, expected);

            let params = Components3Params { connectivity: c, mode: InputMode::MultiLabel };
            let (cc, _) = connected_components_3d(v.view(), &params, &mut NoProgress).expect("cc");
            let pieces = cc.mapv(|l| l as u16);
            let by_piece = SizeFilterParams { min_size, connectivity: Some(c) };
            let got = remove_small_objects(v.view(), &by_piece, &mut NoProgress).expect("dust");
            let expected = ndarray::Zip::from(&v).and(&pieces).map_collect(|&id, &piece| {
                if piece != 0 && count(&pieces, piece) < min_size { 0 } else { id }
            });
            prop_assert_eq!(got, expected);
        }

        /// Relabelling keeps the partition, is sequential and increasing, and round-trips.
        #[test]
        fn relabel_properties(
            d in proptest::collection::vec(
                prop_oneof![Just(0u32), 1u32..5, 1_000_000u32..1_000_010, Just(u32::MAX)],
                1..200,
            )
        ) {
            let v = Array3::from_shape_vec((1, 1, d.len()), d.clone()).expect("shape");
            let (out, map) = relabel_sequential(v.view(), &mut NoProgress).expect("relabel");
            let mut ids: Vec<u32> = d.iter().copied().filter(|&x| x != 0).collect();
            ids.sort_unstable();
            ids.dedup();
            prop_assert_eq!(map.old_ids(), &ids[..]);
            for (&o, &n) in d.iter().zip(out.iter()) {
                prop_assert_eq!(map.forward(o), Some(n));
                prop_assert_eq!(map.inverse(n), Some(o));
            }
            let sizes = label_sizes(v.view(), &mut NoProgress).expect("sizes");
            let total: u64 = sizes.iter().map(|s| s.1).sum();
            prop_assert_eq!(total, d.iter().filter(|&&x| x != 0).count() as u64);
        }
    }
}
