//! Seeded watershed (2D/3D), `peak_local_max`-style seed finding, and the classic
//! "distance transform → peaks → watershed of the negated distance" pipeline.
//!
//! - [`watershed_3d`] / [`watershed_2d`] flood an `f32` elevation map from markers (`u32`,
//!   0 = unseeded) inside an optional mask. They match
//!   `skimage.segmentation.watershed(image, markers, connectivity=c, mask=mask)` (0.26)
//!   voxel for voxel, ties included, because they replay its algorithm exactly: a binary
//!   min-heap of `(value, age)` with the same push/pop (sift-up on strictly smaller; sift-down
//!   preferring the left child on ties), markers pushed in C order with age 0, every later
//!   push with the next age, neighbours visited in scikit-image's order (sorted by distance,
//!   then C order of the offset), a voxel labelled when it is pushed, and its priority raised
//!   to that of the voxel it was reached from ("a neighbour costs at least its origin").
//!   Voxels outside the mask, and markers there, stay 0. Input with NaN elevations takes a
//!   slower path that keeps scikit-image's comparator (`a.value != b.value ? a.value <
//!   b.value : a.age < b.age`) so even that matches.
//! - [`peak_local_max_3d`] / [`peak_local_max_2d`] match `skimage.feature.peak_local_max(image,
//!   min_distance=d, labels=labels, exclude_border=False)` (other arguments at their
//!   defaults); [`peak_markers_3d`] / [`peak_markers_2d`] number those peaks 1..N as seeds.
//! - [`distance_watershed`] / [`distance_watershed_2d`]: EDT of a binary mask
//!   ([`crate::distance`]), peaks of the distance (`labels = mask`), watershed of `-distance`
//!   within the mask.
//!
//! Tie and plateau rules of the peak finder (scikit-image's, reproduced):
//! 1. A voxel is a candidate when it equals the maximum of the `(2d+1)^ndim` cube around it
//!    (clipped at the image border) — so every voxel of a flat plateau top is a candidate —
//!    and is strictly greater than the minimum of the *whole* image. With `labels`, each label
//!    is handled separately inside its bounding box, voxels of other labels counting as
//!    `f32::MIN`. `d = 0` (or a one-voxel region) skips the cube test.
//! 2. If every voxel of a region is a candidate (a flat region), none is — except, with
//!    `labels`, voxels removed by a binary opening of the region with the cross-shaped
//!    structuring element (border counts as background): thin parts and isolated voxels.
//! 3. Candidates are ranked by value, highest first, ties in C (z, y, x) order; going down
//!    the list, a candidate is dropped if an already kept one is closer than `d` in Chebyshev
//!    distance (`max(|dz|, |dy|, |dx|) < d`). So of a plateau only the first voxel in C order
//!    survives within `d`.
//! 4. Output order: labels ascending, then that rank. Any NaN in the image yields no peaks
//!    (scikit-image's threshold becomes NaN).
//!
//! Golden tests: `tests/golden_watershed.rs` against scikit-image (fixtures from
//! `scripts/golden/gen_watershed.py`).
//!
//! ```
//! use emstudio_core::labels::watershed::{distance_watershed_2d, watershed_2d};
//! use emstudio_core::neighborhood::Connectivity2;
//! use ndarray::array;
//! // Two markers flood a 1D valley; the ridge at x = 3 decides the border.
//! let elevation = array![[0.0f32, 1.0, 2.0, 5.0, 2.0, 1.0, 0.0]];
//! let markers = array![[1u32, 0, 0, 0, 0, 0, 2]];
//! let basins = watershed_2d(elevation.view(), markers.view(), None, Connectivity2::C4).unwrap();
//! assert_eq!(basins, array![[1, 1, 1, 1, 2, 2, 2]]);
//! // Two touching squares joined by a thin neck are split at the neck.
//! let mut mask = ndarray::Array2::<u8>::zeros((7, 15));
//! mask.slice_mut(ndarray::s![.., 0..7]).fill(1);
//! mask.slice_mut(ndarray::s![.., 8..15]).fill(1);
//! mask.slice_mut(ndarray::s![3, 7]).fill(1);
//! let split = distance_watershed_2d(mask.view(), [1.0, 1.0], 3, Connectivity2::C4).unwrap();
//! assert_eq!((split[[3, 3]], split[[3, 11]]), (1, 2));
//! ```

use crate::distance::{edt_2d, edt_3d, sampling_from_voxel_size, DistanceError};
use crate::neighborhood::{Connectivity2, Connectivity3};
use crate::progress::{check, Cancelled, Phase, Progress};
use crate::volume::VoxelSize;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Errors of the watershed functions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WatershedError {
    /// An input array's shape differs from the elevation map's.
    #[error("{what} has shape {got:?}, expected {expected:?} (the elevation map's)")]
    ShapeMismatch {
        /// Which input ("markers", "mask", "labels").
        what: &'static str,
        /// Shape of the elevation map / image.
        expected: Vec<usize>,
        /// Shape given.
        got: Vec<usize>,
    },
    /// The distance transform failed (invalid voxel size).
    #[error(transparent)]
    Distance(DistanceError),
    /// Cancelled through the progress callback.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

impl From<DistanceError> for WatershedError {
    fn from(e: DistanceError) -> Self {
        match e {
            DistanceError::Cancelled(c) => WatershedError::Cancelled(c),
            other => WatershedError::Distance(other),
        }
    }
}

/// User-facing parameters of a seeded watershed (UI form / CLI flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatershedParams {
    /// Neighbourhood used for flooding (scikit-image `connectivity` 1, 2, 3 = 6, 18, 26).
    pub connectivity: Connectivity3,
}

impl WatershedParams {
    /// Runs [`watershed_3d`] with these parameters.
    pub fn run(
        &self,
        elevation: ArrayView3<'_, f32>,
        markers: ArrayView3<'_, u32>,
        mask: Option<ArrayView3<'_, bool>>,
        progress: &mut dyn Progress,
    ) -> Result<Array3<u32>, WatershedError> {
        watershed_3d(elevation, markers, mask, self.connectivity, progress)
    }
}

impl Default for WatershedParams {
    fn default() -> Self {
        Self {
            connectivity: Connectivity3::C6,
        }
    }
}

/// User-facing parameters of the distance-transform watershed (UI form / CLI flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistanceWatershedParams {
    /// Minimum separation of seeds in voxels (Chebyshev), scikit-image's `min_distance`.
    pub min_distance: usize,
    /// Neighbourhood used for flooding.
    pub connectivity: Connectivity3,
    /// Measure distances with the volume's voxel size (nm) rather than in voxels.
    pub use_voxel_size: bool,
}

impl DistanceWatershedParams {
    /// Runs [`distance_watershed`] with these parameters on a binary mask (nonzero =
    /// foreground), measuring in `voxel_size` (nm) when `use_voxel_size`, else in voxels.
    pub fn run<T: Copy + PartialEq + Default>(
        &self,
        binary_mask: ArrayView3<'_, T>,
        voxel_size: VoxelSize,
        progress: &mut dyn Progress,
    ) -> Result<Array3<u32>, WatershedError> {
        let sampling = if self.use_voxel_size {
            sampling_from_voxel_size(voxel_size)
        } else {
            [1.0; 3]
        };
        distance_watershed(
            binary_mask,
            sampling,
            self.min_distance,
            self.connectivity,
            progress,
        )
    }
}

impl Default for DistanceWatershedParams {
    fn default() -> Self {
        Self {
            min_distance: 5,
            connectivity: Connectivity3::C6,
            use_voxel_size: true,
        }
    }
}

fn shape_check(
    what: &'static str,
    expected: &[usize],
    got: &[usize],
) -> Result<(), WatershedError> {
    if expected == got {
        Ok(())
    } else {
        Err(WatershedError::ShapeMismatch {
            what,
            expected: expected.to_vec(),
            got: got.to_vec(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Seeded watershed
// ---------------------------------------------------------------------------------------

/// Seeded watershed of a 3D elevation map. `markers` (same shape; 0 = unseeded) are flooded
/// outwards in order of elevation within `mask` (`None` = everywhere) using `connectivity`.
/// Returns the label of the basin each voxel belongs to (0 outside the mask or where no
/// marker reaches). Matches `skimage.segmentation.watershed(elevation, markers,
/// connectivity=c, mask=mask)` exactly (see module doc). Reports progress every 65536
/// flooded voxels.
pub fn watershed_3d(
    elevation: ArrayView3<'_, f32>,
    markers: ArrayView3<'_, u32>,
    mask: Option<ArrayView3<'_, bool>>,
    connectivity: Connectivity3,
    progress: &mut dyn Progress,
) -> Result<Array3<u32>, WatershedError> {
    let shape = elevation.shape().to_vec();
    shape_check("markers", &shape, markers.shape())?;
    if let Some(m) = &mask {
        shape_check("mask", &shape, m.shape())?;
    }
    let offsets: Vec<(isize, isize, isize)> = connectivity.offsets();
    watershed_core(elevation, markers, mask, &offsets, true, progress)
}

/// Seeded watershed of a 2D elevation map; see [`watershed_3d`].
pub fn watershed_2d(
    elevation: ArrayView2<'_, f32>,
    markers: ArrayView2<'_, u32>,
    mask: Option<ArrayView2<'_, bool>>,
    connectivity: Connectivity2,
) -> Result<Array2<u32>, WatershedError> {
    let shape = elevation.shape().to_vec();
    shape_check("markers", &shape, markers.shape())?;
    if let Some(m) = &mask {
        shape_check("mask", &shape, m.shape())?;
    }
    let offsets: Vec<(isize, isize, isize)> = connectivity
        .offsets()
        .into_iter()
        .map(|(dy, dx)| (0, dy, dx))
        .collect();
    let out = watershed_core(
        elevation.insert_axis(Axis(0)),
        markers.insert_axis(Axis(0)),
        mask.map(|m| m.insert_axis(Axis(0))),
        &offsets,
        false,
        &mut crate::progress::NoProgress,
    )?;
    Ok(out.index_axis_move(Axis(0), 0))
}

/// Sentinel key of voxels that cannot be flooded (outside the mask, padding). It is the key
/// only a NaN could have, and NaN input takes the other path.
const BLOCKED: u32 = u32::MAX;

/// `f32` → `u32` whose unsigned order is the float order; `-0.0` and `0.0` map alike, as
/// they compare equal.
fn ordered_key(v: f32) -> u32 {
    let v = if v == 0.0 { 0.0 } else { v };
    let b = v.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// An entry of the flooding heap.
trait HeapItem: Copy {
    /// scikit-image's `smaller`: value first, then age.
    fn smaller(&self, other: &Self) -> bool;
}

/// Fast entry: `(ordered value << 32) | age` compares like scikit-image's `(value, age)`;
/// the voxel's label travels with it so popping needs no label lookup.
#[derive(Clone, Copy)]
struct PackedItem {
    key: u64,
    index: u32,
    label: u32,
}

impl HeapItem for PackedItem {
    #[inline(always)]
    fn smaller(&self, other: &Self) -> bool {
        self.key < other.key
    }
}

/// Exact entry for elevation maps with NaN (or more than 2³² voxels).
#[derive(Clone, Copy)]
struct FloatItem {
    value: f32,
    age: u64,
    index: usize,
}

impl HeapItem for FloatItem {
    #[inline(always)]
    fn smaller(&self, other: &Self) -> bool {
        #[allow(clippy::float_cmp)]
        if self.value != other.value {
            self.value < other.value
        } else {
            self.age < other.age
        }
    }
}

/// The binary heap of scikit-image's `heap_general.pxi`, operation for operation (its pop
/// order on equal keys depends on the exact sift steps, which decide ties between markers).
struct Heap<I> {
    data: Vec<I>,
}

impl<I: HeapItem> Heap<I> {
    #[inline]
    fn push(&mut self, item: I) {
        let mut child = self.data.len();
        self.data.push(item);
        while child > 0 {
            let parent = (child - 1) / 2; // scikit-image: (child + 1) / 2 - 1
            if self.data[child].smaller(&self.data[parent]) {
                self.data.swap(parent, child);
                child = parent;
            } else {
                break;
            }
        }
    }

    #[inline]
    fn pop(&mut self) -> Option<I> {
        let last = self.data.pop()?;
        if self.data.is_empty() {
            return Some(last);
        }
        let top = std::mem::replace(&mut self.data[0], last);
        let n = self.data.len();
        let mut i = 0;
        loop {
            let l = 2 * i + 1;
            let r = l + 1;
            let mut smallest = i;
            if l < n {
                if self.data[l].smaller(&self.data[i]) {
                    smallest = l;
                }
                if r < n && self.data[r].smaller(&self.data[smallest]) {
                    smallest = r;
                }
            } else {
                break;
            }
            if smallest == i {
                break;
            }
            self.data.swap(i, smallest);
            i = smallest;
        }
        Some(top)
    }
}

/// Voxel state and heap-entry construction for one of the two paths.
trait Flood {
    type Item: HeapItem;
    /// Entry of the marker voxel `n` (age 0).
    fn marker(&self, n: usize) -> Self::Item;
    /// Padded index and label of a popped entry.
    fn open(&self, item: &Self::Item) -> (usize, u32);
    /// If voxel `n` is in the mask and unlabelled: labels it `label` and returns its entry
    /// (with `age`, priority at least `from`'s).
    fn claim(&mut self, n: usize, label: u32, age: u64, from: &Self::Item) -> Option<Self::Item>;
    /// Final label of voxel `n`.
    fn label(&self, n: usize) -> u32;
}

/// Cell of a voxel: `(ordered elevation << 32) | label`; key [`BLOCKED`] outside the mask.
/// One load answers "in mask?", "labelled?" and "elevation?".
struct PackedFlood {
    cells: Vec<u64>,
}

const BLOCKED_CELL: u64 = (BLOCKED as u64) << 32;

impl Flood for PackedFlood {
    type Item = PackedItem;
    #[inline(always)]
    fn marker(&self, n: usize) -> PackedItem {
        let c = self.cells[n];
        PackedItem {
            key: c & !0xFFFF_FFFF,
            index: n as u32,
            label: c as u32,
        }
    }
    #[inline(always)]
    fn open(&self, item: &PackedItem) -> (usize, u32) {
        (item.index as usize, item.label)
    }
    #[inline(always)]
    fn claim(&mut self, n: usize, label: u32, age: u64, from: &PackedItem) -> Option<PackedItem> {
        let c = self.cells[n];
        if c as u32 != 0 || c >= BLOCKED_CELL {
            return None;
        }
        self.cells[n] = c | u64::from(label);
        let v = (c >> 32).max(from.key >> 32);
        Some(PackedItem {
            key: (v << 32) | age,
            index: n as u32,
            label,
        })
    }
    #[inline(always)]
    fn label(&self, n: usize) -> u32 {
        self.cells[n] as u32
    }
}

struct FloatFlood {
    values: Vec<f32>,
    allowed: Vec<bool>,
    out: Vec<u32>,
}

impl Flood for FloatFlood {
    type Item = FloatItem;
    #[inline(always)]
    fn marker(&self, n: usize) -> FloatItem {
        FloatItem {
            value: self.values[n],
            age: 0,
            index: n,
        }
    }
    #[inline(always)]
    fn open(&self, item: &FloatItem) -> (usize, u32) {
        (item.index, self.out[item.index])
    }
    #[inline(always)]
    fn claim(&mut self, n: usize, label: u32, age: u64, from: &FloatItem) -> Option<FloatItem> {
        if !self.allowed[n] || self.out[n] != 0 {
            return None;
        }
        self.out[n] = label;
        let mut value = self.values[n];
        if value < from.value {
            value = from.value;
        }
        Some(FloatItem {
            value,
            age,
            index: n,
        })
    }
    #[inline(always)]
    fn label(&self, n: usize) -> u32 {
        self.out[n]
    }
}

/// Padded geometry: one voxel of padding on each side of y and x, and of z when `pad_z`.
struct Padded {
    dims: (usize, usize, usize),
    pz: usize,
    py: usize,
    px: usize,
}

impl Padded {
    fn new(dims: (usize, usize, usize), pad_z: bool) -> Self {
        let (nz, ny, nx) = dims;
        Self {
            dims,
            pz: nz + 2 * usize::from(pad_z),
            py: ny + 2,
            px: nx + 2,
        }
    }
    fn len(&self) -> usize {
        self.pz * self.py * self.px
    }
    fn z0(&self) -> usize {
        (self.pz - self.dims.0) / 2
    }
    #[inline]
    fn index(&self, z: usize, y: usize, x: usize) -> usize {
        ((z + self.z0()) * self.py + y + 1) * self.px + x + 1
    }
}

fn watershed_core(
    elevation: ArrayView3<'_, f32>,
    markers: ArrayView3<'_, u32>,
    mask: Option<ArrayView3<'_, bool>>,
    offsets: &[(isize, isize, isize)],
    pad_z: bool,
    progress: &mut dyn Progress,
) -> Result<Array3<u32>, WatershedError> {
    let dims = elevation.dim();
    let (nz, ny, nx) = dims;
    if nz * ny * nx == 0 {
        return Ok(Array3::zeros(dims));
    }
    let pad = Padded::new(dims, pad_z);
    // scikit-image's neighbour order: by distance from the centre (number of nonzero
    // components), stable, i.e. C order of (dz, dy, dx) within each shell.
    let mut offs = offsets.to_vec();
    offs.sort_by_key(|&(dz, dy, dx)| (dz != 0) as u8 + (dy != 0) as u8 + (dx != 0) as u8);
    let stride_z = (pad.py * pad.px) as isize;
    let stride_y = pad.px as isize;
    let raveled: Vec<isize> = offs
        .iter()
        .map(|&(dz, dy, dx)| dz * stride_z + dy * stride_y + dx)
        .collect();

    let elev = elevation.as_standard_layout();
    let elev = elev.as_slice().expect("standard layout is contiguous");
    let mk = markers.as_standard_layout();
    let mk = mk.as_slice().expect("standard layout is contiguous");
    let mask_std = mask.as_ref().map(|m| m.as_standard_layout());
    let mask_slice: Option<&[bool]> = mask_std
        .as_ref()
        .map(|m| m.as_slice().expect("standard layout is contiguous"));
    let allowed = |i: usize| mask_slice.is_none_or(|m| m[i]);
    let has_nan = (0..elev.len()).any(|i| elev[i].is_nan() && allowed(i));
    // Ages must fit in 32 bits for the packed key: at most one push per voxel.
    let packed_ok = !has_nan && (pad.len() as u64) < u64::from(u32::MAX) - 2;

    let mut labels = vec![0u32; pad.len()];
    let mut marker_locations = Vec::new();
    let mut floodable = 0u64;
    for z in 0..nz {
        for y in 0..ny {
            let src = (z * ny + y) * nx;
            let dst = pad.index(z, y, 0);
            for x in 0..nx {
                if allowed(src + x) {
                    floodable += 1;
                    let m = mk[src + x];
                    if m != 0 {
                        labels[dst + x] = m;
                        marker_locations.push(dst + x);
                    }
                }
            }
        }
    }

    let mut result = Array3::<u32>::zeros(dims);
    let mut write_result = |f: &dyn Fn(usize) -> u32| {
        for z in 0..nz {
            for y in 0..ny {
                let start = pad.index(z, y, 0);
                for (x, r) in result
                    .slice_mut(ndarray::s![z, y, ..])
                    .iter_mut()
                    .enumerate()
                {
                    *r = f(start + x);
                }
            }
        }
    };
    if packed_ok {
        let mut cells = vec![BLOCKED_CELL; pad.len()];
        for z in 0..nz {
            for y in 0..ny {
                let src = (z * ny + y) * nx;
                let dst = pad.index(z, y, 0);
                for x in 0..nx {
                    if allowed(src + x) {
                        cells[dst + x] = (u64::from(ordered_key(elev[src + x])) << 32)
                            | u64::from(labels[dst + x]);
                    }
                }
            }
        }
        drop(labels);
        let mut f = PackedFlood { cells };
        flood(&mut f, marker_locations, &raveled, floodable, progress)?;
        write_result(&|n| f.label(n));
    } else {
        let mut values = vec![0f32; pad.len()];
        let mut allowed_p = vec![false; pad.len()];
        for z in 0..nz {
            for y in 0..ny {
                let src = (z * ny + y) * nx;
                let dst = pad.index(z, y, 0);
                for x in 0..nx {
                    values[dst + x] = elev[src + x];
                    allowed_p[dst + x] = allowed(src + x);
                }
            }
        }
        let mut f = FloatFlood {
            values,
            allowed: allowed_p,
            out: labels,
        };
        flood(&mut f, marker_locations, &raveled, floodable, progress)?;
        write_result(&|n| f.label(n));
    }
    Ok(result)
}

fn flood<F: Flood>(
    f: &mut F,
    marker_locations: Vec<usize>,
    raveled: &[isize],
    total: u64,
    progress: &mut dyn Progress,
) -> Result<(), Cancelled> {
    let mut heap = Heap {
        data: Vec::with_capacity(marker_locations.len().max(1024)),
    };
    for &m in &marker_locations {
        heap.push(f.marker(m));
    }
    drop(marker_locations);
    let mut age: u64 = 1;
    let mut pops: u64 = 0;
    while let Some(e) = heap.pop() {
        let (i, label) = f.open(&e);
        for &off in raveled {
            // Padding is blocked, so a flooded voxel's neighbours are always in bounds.
            if let Some(child) = f.claim(i.wrapping_add_signed(off), label, age + 1, &e) {
                age += 1;
                heap.push(child);
            }
        }
        pops += 1;
        if pops & 0xFFFF == 0 {
            check(progress, pops.min(total), total)?;
        }
    }
    check(progress, total, total)
}

// ---------------------------------------------------------------------------------------
// Peak finding
// ---------------------------------------------------------------------------------------

/// Which voxels form the regions peaks are searched in.
enum Regions<'a> {
    /// The whole image is one region.
    Whole,
    /// Nonzero voxels form one region (label 1).
    Mask(&'a [bool]),
    /// Each nonzero label is a region.
    Labels(&'a [u32]),
}

impl Regions<'_> {
    #[inline]
    fn label(&self, i: usize) -> u32 {
        match self {
            Regions::Whole => 1,
            Regions::Mask(m) => u32::from(m[i]),
            Regions::Labels(l) => l[i],
        }
    }
}

/// Local maxima of a 3D image at least `min_distance` apart, as `[z, y, x]` coordinates.
/// Matches `skimage.feature.peak_local_max(image, min_distance=min_distance, labels=labels,
/// exclude_border=False)` including order; see the module doc for the plateau and tie rules.
/// Reports progress per label.
pub fn peak_local_max_3d(
    image: ArrayView3<'_, f32>,
    min_distance: usize,
    labels: Option<ArrayView3<'_, u32>>,
    progress: &mut dyn Progress,
) -> Result<Vec<[usize; 3]>, WatershedError> {
    peak_local_max_impl(image, min_distance, labels, false, progress)
}

/// Local maxima of a 2D image as `[y, x]`; see [`peak_local_max_3d`].
pub fn peak_local_max_2d(
    image: ArrayView2<'_, f32>,
    min_distance: usize,
    labels: Option<ArrayView2<'_, u32>>,
) -> Result<Vec<[usize; 2]>, WatershedError> {
    let peaks = peak_local_max_impl(
        image.insert_axis(Axis(0)),
        min_distance,
        labels.map(|l| l.insert_axis(Axis(0))),
        true,
        &mut crate::progress::NoProgress,
    )?;
    Ok(peaks.into_iter().map(|[_, y, x]| [y, x]).collect())
}

fn peak_local_max_impl(
    image: ArrayView3<'_, f32>,
    min_distance: usize,
    labels: Option<ArrayView3<'_, u32>>,
    two_d: bool,
    progress: &mut dyn Progress,
) -> Result<Vec<[usize; 3]>, WatershedError> {
    if let Some(l) = &labels {
        shape_check("labels", image.shape(), l.shape())?;
    }
    let img = image.as_standard_layout();
    let img = img.as_slice().expect("standard layout is contiguous");
    let lab = labels.as_ref().map(|l| l.as_standard_layout());
    let regions = match &lab {
        None => Regions::Whole,
        Some(l) => Regions::Labels(l.as_slice().expect("standard layout is contiguous")),
    };
    let peaks = peaks_core(img, image.dim(), two_d, min_distance, &regions, progress)?;
    Ok(unravel(&peaks, image.dim()))
}

/// [`peak_local_max_3d`] as a marker array: peak `k` (in the returned order) gets seed `k+1`,
/// everything else 0.
pub fn peak_markers_3d(
    image: ArrayView3<'_, f32>,
    min_distance: usize,
    labels: Option<ArrayView3<'_, u32>>,
    progress: &mut dyn Progress,
) -> Result<Array3<u32>, WatershedError> {
    let peaks = peak_local_max_3d(image, min_distance, labels, progress)?;
    let mut m = Array3::zeros(image.dim());
    for (k, p) in peaks.iter().enumerate() {
        m[*p] = k as u32 + 1;
    }
    Ok(m)
}

/// [`peak_local_max_2d`] as a marker array numbered 1..N; see [`peak_markers_3d`].
pub fn peak_markers_2d(
    image: ArrayView2<'_, f32>,
    min_distance: usize,
    labels: Option<ArrayView2<'_, u32>>,
) -> Result<Array2<u32>, WatershedError> {
    let peaks = peak_local_max_2d(image, min_distance, labels)?;
    let mut m = Array2::zeros(image.dim());
    for (k, p) in peaks.iter().enumerate() {
        m[*p] = k as u32 + 1;
    }
    Ok(m)
}

fn unravel(flat: &[usize], (_, ny, nx): (usize, usize, usize)) -> Vec<[usize; 3]> {
    flat.iter()
        .map(|&i| [i / (ny * nx), (i / nx) % ny, i % nx])
        .collect()
}

/// Bounding box, inclusive start, exclusive end, per axis.
#[derive(Clone, Copy)]
struct BBox {
    lo: [usize; 3],
    hi: [usize; 3],
}

/// Peaks as raveled indices, in scikit-image's output order.
fn peaks_core(
    img: &[f32],
    dims: (usize, usize, usize),
    two_d: bool,
    min_distance: usize,
    regions: &Regions<'_>,
    progress: &mut dyn Progress,
) -> Result<Vec<usize>, Cancelled> {
    let (nz, ny, nx) = dims;
    let n = nz * ny * nx;
    if n == 0 || img.iter().any(|v| v.is_nan()) {
        return Ok(Vec::new());
    }
    let threshold = img.iter().copied().fold(f32::INFINITY, f32::min);

    // Bounding boxes of the regions, by label ascending (scipy.ndimage.find_objects).
    let mut boxes: BTreeMap<u32, BBox> = BTreeMap::new();
    match regions {
        Regions::Whole => {
            boxes.insert(
                1,
                BBox {
                    lo: [0; 3],
                    hi: [nz, ny, nx],
                },
            );
        }
        _ => {
            // One map update per run of equal labels along x.
            for z in 0..nz {
                for y in 0..ny {
                    let row = (z * ny + y) * nx;
                    let mut x = 0;
                    while x < nx {
                        let l = regions.label(row + x);
                        let x0 = x;
                        while x < nx && regions.label(row + x) == l {
                            x += 1;
                        }
                        if l == 0 {
                            continue;
                        }
                        let b = boxes.entry(l).or_insert(BBox {
                            lo: [z, y, x0],
                            hi: [z + 1, y + 1, x],
                        });
                        b.lo = [b.lo[0].min(z), b.lo[1].min(y), b.lo[2].min(x0)];
                        b.hi = [b.hi[0].max(z + 1), b.hi[1].max(y + 1), b.hi[2].max(x)];
                    }
                }
            }
        }
    }

    let total = boxes.len() as u64;
    let mut peaks = Vec::new();
    let mut scratch = Scratch::default();
    for (k, (&label, bbox)) in boxes.iter().enumerate() {
        region_peaks(
            img,
            dims,
            two_d,
            min_distance,
            regions,
            label,
            *bbox,
            threshold,
            &mut scratch,
            &mut peaks,
        );
        check(progress, k as u64 + 1, total)?;
    }
    Ok(peaks)
}

#[derive(Default)]
struct Scratch {
    vals: Vec<f32>,
    inside: Vec<bool>,
    maxf: Vec<f32>,
    line: Vec<f32>,
    line_out: Vec<f32>,
    g: Vec<f32>,
    h: Vec<f32>,
    cand: Vec<bool>,
    blocked: Vec<bool>,
}

#[allow(clippy::too_many_arguments)]
fn region_peaks(
    img: &[f32],
    (_, ny, nx): (usize, usize, usize),
    two_d: bool,
    min_distance: usize,
    regions: &Regions<'_>,
    label: u32,
    bbox: BBox,
    threshold: f32,
    s: &mut Scratch,
    peaks: &mut Vec<usize>,
) {
    let whole = matches!(regions, Regions::Whole);
    let [rz, ry, rx] = [0, 1, 2].map(|a| bbox.hi[a] - bbox.lo[a]);
    let rn = rz * ry * rx;
    let global = |i: usize| {
        let (z, y, x) = (i / (ry * rx), (i / rx) % ry, i % rx);
        ((z + bbox.lo[0]) * ny + y + bbox.lo[1]) * nx + x + bbox.lo[2]
    };
    s.vals.clear();
    s.inside.clear();
    for z in bbox.lo[0]..bbox.hi[0] {
        for y in bbox.lo[1]..bbox.hi[1] {
            let row = (z * ny + y) * nx;
            for x in bbox.lo[2]..bbox.hi[2] {
                let i = row + x;
                let inside = whole || regions.label(i) == label;
                s.inside.push(inside);
                s.vals.push(if inside { img[i] } else { f32::MIN });
            }
        }
    }

    s.cand.clear();
    if min_distance == 0 || rn == 1 {
        s.cand.extend(s.vals.iter().map(|&v| v > threshold));
    } else {
        max_filter(s, [rz, ry, rx], min_distance);
        #[allow(clippy::float_cmp)]
        s.cand
            .extend(s.vals.iter().zip(&s.maxf).map(|(&v, &m)| v == m));
        let trivial = s.cand.iter().zip(&s.inside).all(|(&c, &ins)| c || !ins);
        if trivial {
            s.cand.iter_mut().for_each(|c| *c = false);
            if !whole {
                let opened = binary_opening(&s.inside, [rz, ry, rx], two_d);
                for ((c, &ins), &op) in s.cand.iter_mut().zip(&s.inside).zip(&opened) {
                    *c = ins && !op;
                }
            }
        }
        for (c, &v) in s.cand.iter_mut().zip(&s.vals) {
            *c = *c && v > threshold;
        }
    }

    let mut order: Vec<usize> = (0..rn).filter(|&i| s.cand[i]).collect();
    // Highest first; the stable sort keeps C order among equal values (`-0.0 == 0.0`, as in
    // numpy). There is no NaN here (checked by the caller).
    order.sort_by(|&a, &b| {
        s.vals[b]
            .partial_cmp(&s.vals[a])
            .unwrap_or(std::cmp::Ordering::Equal)
    });

    if min_distance > 1 {
        let r = min_distance - 1;
        s.blocked.clear();
        s.blocked.resize(rn, false);
        for &i in &order {
            if s.blocked[i] {
                continue;
            }
            peaks.push(global(i));
            let (z, y, x) = (i / (ry * rx), (i / rx) % ry, i % rx);
            for bz in z.saturating_sub(r)..(z + r + 1).min(rz) {
                for by in y.saturating_sub(r)..(y + r + 1).min(ry) {
                    let row = (bz * ry + by) * rx;
                    let lo = row + x.saturating_sub(r);
                    let hi = row + (x + r + 1).min(rx);
                    s.blocked[lo..hi].iter_mut().for_each(|b| *b = true);
                }
            }
        }
    } else {
        peaks.extend(order.iter().map(|&i| global(i)));
    }
}

/// Maximum over the `(2r+1)³` cube clipped to the box (scipy `maximum_filter`, mode
/// `nearest`), separably with the van Herk / Gil–Werman algorithm; result in `s.maxf`.
fn max_filter(s: &mut Scratch, [rz, ry, rx]: [usize; 3], r: usize) {
    s.maxf.clear();
    s.maxf.extend_from_slice(&s.vals);
    // x: rows are contiguous lines.
    if rx > 1 {
        for row in s.maxf.chunks_exact_mut(rx) {
            s.line.clear();
            s.line.extend_from_slice(row);
            running_max(&s.line, r, &mut s.line_out, &mut s.g, &mut s.h);
            row.copy_from_slice(&s.line_out);
        }
    }
    // y: lines of whole rows within each plane; z: lines of plane segments.
    if ry > 1 {
        for plane in s.maxf.chunks_exact_mut(ry * rx) {
            max_along(plane, ry, rx, r, &mut s.g, &mut s.h);
        }
    }
    if rz > 1 {
        max_along(&mut s.maxf, rz, ry * rx, r, &mut s.g, &mut s.h);
    }
}

/// In place on `data = [len][inner]`: each of the `inner` lines along the first axis is
/// replaced by its clipped running max of radius `r` (van Herk / Gil–Werman on vectors of
/// `inner` values at a time, so every access is contiguous).
fn max_along(
    data: &mut [f32],
    len: usize,
    inner: usize,
    r: usize,
    g: &mut Vec<f32>,
    h: &mut Vec<f32>,
) {
    const CHUNK: usize = 1024;
    let w = 2 * r + 1;
    let padded = (len + 2 * r).div_ceil(w) * w;
    for k0 in (0..inner).step_by(CHUNK) {
        let c = CHUNK.min(inner - k0);
        g.clear();
        g.resize(padded * c, f32::NEG_INFINITY);
        h.clear();
        h.resize(padded * c, f32::NEG_INFINITY);
        // Padded position j holds line index j - r; outside the line: -inf.
        for j in 0..padded {
            let (done, rest) = g.split_at_mut(j * c);
            let gj = &mut rest[..c];
            let inside = j >= r && j - r < len;
            if j % w == 0 {
                if inside {
                    let src = (j - r) * inner + k0;
                    gj.copy_from_slice(&data[src..src + c]);
                }
            } else {
                let prev = &done[(j - 1) * c..];
                if inside {
                    let src = (j - r) * inner + k0;
                    for ((o, &p), &v) in gj.iter_mut().zip(prev).zip(&data[src..src + c]) {
                        *o = p.max(v);
                    }
                } else {
                    gj.copy_from_slice(&prev[..c]);
                }
            }
        }
        for j in (0..padded).rev() {
            let (head, next) = h.split_at_mut((j + 1) * c);
            let hj = &mut head[j * c..];
            let inside = j >= r && j - r < len;
            if j % w == w - 1 || j + 1 == padded {
                if inside {
                    let src = (j - r) * inner + k0;
                    hj.copy_from_slice(&data[src..src + c]);
                }
            } else if inside {
                let src = (j - r) * inner + k0;
                for ((o, &n), &v) in hj.iter_mut().zip(&next[..c]).zip(&data[src..src + c]) {
                    *o = n.max(v);
                }
            } else {
                hj.copy_from_slice(&next[..c]);
            }
        }
        // Output i covers padded positions i ..= i + 2r.
        for i in 0..len {
            let dst = i * inner + k0;
            let hi = &h[i * c..(i + 1) * c];
            let gi = &g[(i + 2 * r) * c..(i + 2 * r + 1) * c];
            for ((o, &a), &b) in data[dst..dst + c].iter_mut().zip(hi).zip(gi) {
                *o = a.max(b);
            }
        }
    }
}

/// `out[i] = max(line[i-r ..= i+r])` clipped to the line (van Herk / Gil–Werman).
fn running_max(line: &[f32], r: usize, out: &mut Vec<f32>, g: &mut Vec<f32>, h: &mut Vec<f32>) {
    let n = line.len();
    let w = 2 * r + 1;
    // Padded line: r NEG_INFINITY on each side, length rounded up to blocks of w.
    let padded = (n + 2 * r).div_ceil(w) * w;
    let at = |j: usize| {
        if j >= r && j - r < n {
            line[j - r]
        } else {
            f32::NEG_INFINITY
        }
    };
    g.clear();
    h.clear();
    g.resize(padded, f32::NEG_INFINITY);
    h.resize(padded, f32::NEG_INFINITY);
    for j in 0..padded {
        let v = at(j);
        g[j] = if j % w == 0 { v } else { g[j - 1].max(v) };
    }
    for j in (0..padded).rev() {
        let v = at(j);
        h[j] = if j % w == w - 1 || j + 1 == padded {
            v
        } else {
            h[j + 1].max(v)
        };
    }
    out.clear();
    // Window of output i covers padded j = i ..= i + 2r.
    out.extend((0..n).map(|i| h[i].max(g[i + 2 * r])));
}

/// scipy `binary_opening(mask)` with the cross-shaped structure (6 or 4 neighbours) and
/// border value 0.
fn binary_opening(mask: &[bool], [rz, ry, rx]: [usize; 3], two_d: bool) -> Vec<bool> {
    let idx = |z: usize, y: usize, x: usize| (z * ry + y) * rx + x;
    let mut eroded = vec![false; mask.len()];
    for z in 0..rz {
        for y in 0..ry {
            for x in 0..rx {
                let i = idx(z, y, x);
                if !mask[i] {
                    continue;
                }
                let mut keep = y > 0
                    && y + 1 < ry
                    && x > 0
                    && x + 1 < rx
                    && mask[idx(z, y - 1, x)]
                    && mask[idx(z, y + 1, x)]
                    && mask[idx(z, y, x - 1)]
                    && mask[idx(z, y, x + 1)];
                if keep && !two_d {
                    keep = z > 0 && z + 1 < rz && mask[idx(z - 1, y, x)] && mask[idx(z + 1, y, x)];
                }
                eroded[i] = keep;
            }
        }
    }
    let mut opened = vec![false; mask.len()];
    for z in 0..rz {
        for y in 0..ry {
            for x in 0..rx {
                let i = idx(z, y, x);
                let mut v = eroded[i]
                    || (y > 0 && eroded[idx(z, y - 1, x)])
                    || (y + 1 < ry && eroded[idx(z, y + 1, x)])
                    || (x > 0 && eroded[idx(z, y, x - 1)])
                    || (x + 1 < rx && eroded[idx(z, y, x + 1)]);
                if !v && !two_d {
                    v = (z > 0 && eroded[idx(z - 1, y, x)])
                        || (z + 1 < rz && eroded[idx(z + 1, y, x)]);
                }
                opened[i] = v;
            }
        }
    }
    opened
}

// ---------------------------------------------------------------------------------------
// Distance-transform watershed
// ---------------------------------------------------------------------------------------

/// Splits touching objects of a binary mask (nonzero = foreground): exact EDT with voxel
/// size `voxel_size = [z, y, x]` ([`edt_3d`]), seeds at the distance peaks at least
/// `min_distance` voxels apart within the mask ([`peak_markers_3d`] with `labels = mask`),
/// then [`watershed_3d`] of `-distance` within the mask. Matches the scikit-image pipeline
/// `peak_local_max(d, min_distance, labels=mask, exclude_border=False)` → seeds 1..N →
/// `watershed(-d, seeds, connectivity=c, mask=mask)` with `d =
/// distance_transform_edt(mask, sampling).astype(float32)`. Progress: 0–40 % distance,
/// 40–50 % peaks, 50–100 % flooding.
pub fn distance_watershed<T: Copy + PartialEq + Default>(
    binary_mask: ArrayView3<'_, T>,
    voxel_size: [f64; 3],
    min_distance: usize,
    connectivity: Connectivity3,
    progress: &mut dyn Progress,
) -> Result<Array3<u32>, WatershedError> {
    let dims = binary_mask.dim();
    let zero = T::default();
    let mut dist = edt_3d(binary_mask, voxel_size, &mut Phase::new(progress, 0, 400))?;
    let mask: Array3<bool> = binary_mask.mapv(|v| v != zero);
    let mask_slice = mask
        .as_slice()
        .expect("mapv returns a standard-layout array");
    let dist_slice = dist
        .as_slice()
        .expect("edt returns a standard-layout array");
    let peaks = peaks_core(
        dist_slice,
        dims,
        false,
        min_distance,
        &Regions::Mask(mask_slice),
        &mut Phase::new(progress, 400, 100),
    )?;
    let mut markers = Array3::<u32>::zeros(dims);
    for (k, p) in unravel(&peaks, dims).into_iter().enumerate() {
        markers[p] = k as u32 + 1;
    }
    dist.mapv_inplace(|d| -d);
    watershed_3d(
        dist.view(),
        markers.view(),
        Some(mask.view()),
        connectivity,
        &mut Phase::new(progress, 500, 500),
    )
}

/// 2D version of [`distance_watershed`] with pixel size `[y, x]`.
pub fn distance_watershed_2d<T: Copy + PartialEq + Default>(
    binary_mask: ArrayView2<'_, T>,
    pixel_size: [f64; 2],
    min_distance: usize,
    connectivity: Connectivity2,
) -> Result<Array2<u32>, WatershedError> {
    let dims = binary_mask.dim();
    let zero = T::default();
    let mut dist = edt_2d(binary_mask, pixel_size)?;
    let mask: Array2<bool> = binary_mask.mapv(|v| v != zero);
    let peaks = peaks_core(
        dist.as_slice()
            .expect("edt returns a standard-layout array"),
        (1, dims.0, dims.1),
        true,
        min_distance,
        &Regions::Mask(
            mask.as_slice()
                .expect("mapv returns a standard-layout array"),
        ),
        &mut crate::progress::NoProgress,
    )?;
    let mut markers = Array2::<u32>::zeros(dims);
    for (k, [_, y, x]) in unravel(&peaks, (1, dims.0, dims.1)).into_iter().enumerate() {
        markers[[y, x]] = k as u32 + 1;
    }
    dist.mapv_inplace(|d| -d);
    watershed_2d(dist.view(), markers.view(), Some(mask.view()), connectivity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
    use ndarray::array;

    #[test]
    fn ordered_key_follows_float_order() {
        let vals = [
            f32::NEG_INFINITY,
            f32::MIN,
            -1.5,
            -f32::MIN_POSITIVE,
            -0.0,
            0.0,
            f32::MIN_POSITIVE,
            2.0,
            f32::MAX,
            f32::INFINITY,
        ];
        for a in vals {
            for b in vals {
                assert_eq!(a < b, ordered_key(a) < ordered_key(b), "{a} {b}");
                assert_eq!(a == b, ordered_key(a) == ordered_key(b), "{a} {b}");
            }
            assert_ne!(ordered_key(a), BLOCKED);
        }
    }

    fn lcg(seed: &mut u64) -> u32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 33) as u32
    }

    #[test]
    fn max_filters_match_naive() {
        let mut seed = 7;
        for _ in 0..40 {
            let len = 1 + lcg(&mut seed) as usize % 13;
            let inner = 1 + lcg(&mut seed) as usize % 5;
            let r = lcg(&mut seed) as usize % 5;
            let data: Vec<f32> = (0..len * inner)
                .map(|_| (lcg(&mut seed) % 7) as f32)
                .collect();
            let naive = |i: usize, k: usize| {
                (i.saturating_sub(r)..(i + r + 1).min(len))
                    .map(|j| data[j * inner + k])
                    .fold(f32::NEG_INFINITY, f32::max)
            };
            let mut got = data.clone();
            max_along(&mut got, len, inner, r, &mut Vec::new(), &mut Vec::new());
            for i in 0..len {
                for k in 0..inner {
                    assert_eq!(got[i * inner + k], naive(i, k));
                }
            }
            let line: Vec<f32> = (0..len).map(|i| data[i * inner]).collect();
            let mut out = Vec::new();
            running_max(&line, r, &mut out, &mut Vec::new(), &mut Vec::new());
            for (i, &o) in out.iter().enumerate() {
                assert_eq!(o, naive(i, 0));
            }
        }
    }

    /// scikit-image 0.26: a neighbour costs at least the voxel it is reached from, so the
    /// marker that reaches a basin first does not take all of it.
    #[test]
    fn cost_propagation_example() {
        let e = array![[2.0f32, 2.0, 0.0, 0.0, 0.0, 0.0, 2.0]];
        let m = array![[1u32, 0, 0, 0, 0, 0, 2]];
        let out = watershed_2d(e.view(), m.view(), None, Connectivity2::C4).expect("valid");
        assert_eq!(out, array![[1, 1, 1, 1, 2, 2, 2]]);
    }

    #[test]
    fn markers_outside_mask_are_dropped() {
        let e = Array2::<f32>::zeros((1, 4));
        let m = array![[1u32, 0, 0, 2]];
        let k = array![[false, true, true, true]];
        let out = watershed_2d(e.view(), m.view(), Some(k.view()), Connectivity2::C4).expect("ok");
        assert_eq!(out, array![[0, 2, 2, 2]]);
    }

    #[test]
    fn nan_elevation_uses_exact_path() {
        let e = array![[0.0f32, f32::NAN, 1.0, 0.5]];
        let m = array![[1u32, 0, 0, 2]];
        let out = watershed_2d(e.view(), m.view(), None, Connectivity2::C4).expect("ok");
        assert!(out.iter().all(|&v| v != 0));
        let p = peak_local_max_2d(e.view(), 1, None).expect("ok");
        assert!(p.is_empty());
    }

    #[test]
    fn peaks_plateau_keeps_first_in_c_order() {
        // Checked with skimage 0.26: peak_local_max(img, min_distance=2,
        // exclude_border=False) == [[0, 1], [1, 6]].
        let img = array![
            [0.0f32, 3.0, 3.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 3.0, 3.0, 0.0, 0.0, 0.0, 1.0]
        ];
        assert_eq!(
            peak_local_max_2d(img.view(), 2, None).expect("ok"),
            vec![[0, 1], [1, 6]]
        );
        let markers = peak_markers_2d(img.view(), 2, None).expect("ok");
        assert_eq!(markers[[0, 1]], 1);
        assert_eq!(markers[[1, 6]], 2);
        assert_eq!(markers.iter().filter(|&&v| v != 0).count(), 2);
        let img3 = img.clone().insert_axis(Axis(0));
        let p = peak_local_max_3d(img3.view(), 2, None, &mut NoProgress).expect("ok");
        assert_eq!(p, vec![[0, 0, 1], [0, 1, 6]]);
    }
}
