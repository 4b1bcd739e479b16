//! Connected components of binary and multi-label images, 2D and 3D.
//!
//! Hand-written (DESIGN.md §4 lists 3D multi-label connected components as a known gap).
//! Output matches `cc3d.connected_components(labels, connectivity=6/18/26)` (multi-label,
//! connected-components-3d 4.1.1) and `skimage.measure.label(mask, connectivity=1/2/3)`
//! (binary, scikit-image 0.26) voxel for voxel: components are numbered `1..=N` in raster
//! (z, y, x) order of their first voxel, background stays 0. Golden tests in
//! `tests/golden_labels.rs` (fixtures from `scripts/golden/gen_labels.py`), property tests
//! against a flood fill below.
//!
//! # Algorithm
//!
//! Run-based two-pass union-find (cc3d works voxel by voxel with a decision tree over the
//! neighbours; on EM label volumes, with runs of ~20 voxels, working per run does less work).
//!
//! - Each row is cut into runs: maximal stretches of one nonzero value (multi-label) or of
//!   nonzero voxels (binary). Boundaries are found 64 voxels at a time as a bit mask from a
//!   vectorised compare.
//! - Each run is matched with two earlier rows by a branch-free two-pointer merge: the row
//!   above in the same plane and the same row in the previous plane, with a reach of one voxel
//!   along x for 18- and 26-connectivity (diagonal contacts within those rows), none for 6.
//!   This makes the in-plane part of every component 4- or 8-connected.
//! - The remaining neighbours (previous plane, rows `y +- 1`) need a test only at voxels `v`
//!   that differ both from the voxel `b` below and from the in-plane voxel `u` above (or
//!   below): if `b` has `v`'s key, every neighbour `w` of `v` in the previous plane is an
//!   in-plane neighbour of `b`; if `u` has it, `w` is a same-row contact of `u`, or lies
//!   below `v`'s in-plane neighbour `a` (then `a` joins it directly). Such voxels are a few
//!   percent of a label volume; they are found with vector compares and tested offset by
//!   offset.
//! - A run takes the smallest label among the runs it touches (or a new one) and queues the
//!   union of the others (path halving, the smaller root wins); finished rows keep root labels
//!   so that unions stay rare. A component's first run in raster order touches no earlier run
//!   of it, so it opens a new provisional label, which is the smallest of its set: numbering
//!   the roots in label order numbers components in raster order of first appearance, and
//!   the second pass only writes each run with its final label.

use crate::neighborhood::{Connectivity2, Connectivity3};
use crate::progress::{check, Cancelled, NoProgress, Progress};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::hash::Hash;

/// An unsigned integer element type that labelling accepts (`u8`, `u16`, `u32`).
pub trait LabelValue: Copy + Eq + Ord + Hash + Default + Debug + Send + Sync + 'static {
    /// The background value.
    const ZERO: Self;
    /// The largest value of the type, as `u32`.
    const MAX_U32: u32;
    /// The value as `u32` (lossless for every implementor).
    fn to_u32(self) -> u32;
    /// `v` as this type, truncating high bits; callers only pass values `<= MAX_U32`.
    fn from_u32_truncating(v: u32) -> Self;
}

macro_rules! impl_label_value {
    ($t:ty) => {
        impl LabelValue for $t {
            const ZERO: Self = 0;
            const MAX_U32: u32 = <$t>::MAX as u32;
            #[inline]
            fn to_u32(self) -> u32 {
                self as u32
            }
            #[inline]
            fn from_u32_truncating(v: u32) -> Self {
                v as $t
            }
        }
    };
}
impl_label_value!(u8);
impl_label_value!(u16);
impl_label_value!(u32);

/// How input values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum InputMode {
    /// Every nonzero voxel is foreground; neighbouring foreground voxels join
    /// (`skimage.measure.label` on a mask, `cc3d.connected_components(binary_image=True)`).
    Binary,
    /// Neighbouring voxels join only when they hold the same nonzero value; 0 is background
    /// (`cc3d.connected_components` default).
    #[default]
    MultiLabel,
}

/// Parameters of 3D connected components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Components3Params {
    /// Which neighbours touch: 6 (faces), 18 (and edges) or 26 (and corners).
    pub connectivity: Connectivity3,
    /// Binary mask or multi-label input.
    pub mode: InputMode,
}

impl Default for Components3Params {
    fn default() -> Self {
        Self {
            connectivity: Connectivity3::C26,
            mode: InputMode::MultiLabel,
        }
    }
}

/// Parameters of 2D connected components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Components2Params {
    /// Which neighbours touch: 4 (edges) or 8 (and corners).
    pub connectivity: Connectivity2,
    /// Binary mask or multi-label input.
    pub mode: InputMode,
}

impl Default for Components2Params {
    fn default() -> Self {
        Self {
            connectivity: Connectivity2::C8,
            mode: InputMode::MultiLabel,
        }
    }
}

/// Why a labelling operation (components, relabelling, size filter, linking) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The progress callback asked to stop.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    /// More components than 32-bit labels can number (`max` is `u32::MAX - 1`; `u32::MAX`
    /// marks unlabelled runs internally). The check is on provisional labels, which are at
    /// least as many as components, so in theory it can trigger for a volume whose final
    /// count would still fit; that needs more than four billion foreground runs.
    #[error("more than {max} connected components; labels are 32-bit")]
    TooManyComponents {
        /// The largest label that fits.
        max: u32,
    },
    /// A parameter is out of range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// Parameter name as in the params struct.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A row is longer than 32-bit run coordinates allow.
    #[error("rows of {width} voxels are too long (at most {max})")]
    RowTooLong {
        /// Row length (x extent).
        width: usize,
        /// The longest supported row.
        max: usize,
    },
}

/// Labels the connected components of a 3D volume.
///
/// Returns labels `1..=N` numbered in raster (z, y, x) order of each component's first voxel
/// (0 = background) and `N`, exactly as `cc3d.connected_components(input, connectivity=c)`
/// (multi-label) or `skimage.measure.label(input > 0, connectivity=1/2/3)` (binary).
/// Reports per z plane (two passes) and stops with [`LabelError::Cancelled`] when asked.
///
/// ```
/// use emstudio_core::labels::components::{connected_components_3d, Components3Params, InputMode};
/// use emstudio_core::neighborhood::Connectivity3;
/// use emstudio_core::progress::NoProgress;
/// let v = ndarray::Array3::<u8>::from_shape_vec((1, 1, 5), vec![3, 3, 0, 3, 4]).unwrap();
/// let params = Components3Params {
///     connectivity: Connectivity3::C26,
///     mode: InputMode::MultiLabel,
/// };
/// let (labels, n) = connected_components_3d(v.view(), &params, &mut NoProgress).unwrap();
/// assert_eq!(n, 3);
/// assert_eq!(labels.as_slice().unwrap(), &[1, 1, 0, 2, 3]);
/// ```
pub fn connected_components_3d<T: LabelValue>(
    input: ArrayView3<'_, T>,
    params: &Components3Params,
    progress: &mut dyn Progress,
) -> Result<(Array3<u32>, u32), LabelError> {
    let voxels = input.len();
    components_with_budget(input, params, progress, (voxels / 16).max(1 << 16))
}

/// [`connected_components_3d`] keeping at most `budget` runs for pass 2 (tests lower it).
fn components_with_budget<T: LabelValue>(
    input: ArrayView3<'_, T>,
    params: &Components3Params,
    progress: &mut dyn Progress,
    budget: usize,
) -> Result<(Array3<u32>, u32), LabelError> {
    let (nz, ny, nx) = input.dim();
    let mut out = Array3::<u32>::zeros((nz, ny, nx));
    let Some(flat) = out.as_slice_mut() else {
        return Ok((out, 0));
    };
    // Pass 1 keeps the runs with their provisional labels; pass 2 writes final labels.
    let mut store = Deferred {
        nx,
        spans: Vec::with_capacity(budget.min(flat.len())),
        out: flat,
        rows: Vec::new(),
        flushed_rows: 0,
        budget,
    };
    let labels = label_runs(
        input,
        params.connectivity,
        params.mode,
        u32::MAX,
        progress,
        |row, spans| store.push(row, spans),
    )?;
    store.finish(&labels.final_of, ny, progress, nz)?;
    Ok((out, labels.count))
}

/// The runs of pass 1 waiting for their final labels. Up to `budget` runs (one per 16 voxels,
/// 0.75 bytes per voxel) are kept in memory and written once, with final labels, in pass 2; beyond
/// that (images with very many short runs) the kept runs are written into the output with
/// provisional labels, which pass 2 then maps voxel by voxel.
struct Deferred<'a> {
    out: &'a mut [u32],
    nx: usize,
    spans: Vec<Kept>,
    /// (row index, end of its runs in `spans`) for each kept row, in order.
    rows: Vec<(usize, usize)>,
    /// Rows `0..flushed_rows` of `out` hold provisional labels.
    flushed_rows: usize,
    budget: usize,
}

impl Deferred<'_> {
    fn push(&mut self, row: usize, spans: &[Span]) {
        if self.spans.len() + spans.len() > self.budget {
            self.flush();
            let kept: Vec<Kept> = spans.iter().map(Kept::from).collect();
            write_spans(self.out, self.nx, row, &kept, |l| l);
            self.flushed_rows = row + 1;
            return;
        }
        self.spans.extend(spans.iter().map(Kept::from));
        self.rows.push((row, self.spans.len()));
    }

    fn flush(&mut self) {
        let mut start = 0;
        for &(row, end) in &self.rows {
            write_spans(self.out, self.nx, row, &self.spans[start..end], |l| l);
            self.flushed_rows = row + 1;
            start = end;
        }
        self.spans.clear();
        self.rows.clear();
    }

    /// Pass 2: maps flushed rows and writes kept runs, reporting planes `Z..2 Z`.
    fn finish(
        self,
        final_of: &[u32],
        ny: usize,
        progress: &mut dyn Progress,
        nz: usize,
    ) -> Result<(), LabelError> {
        let total = 2 * nz as u64;
        let row_len = self.nx;
        let mut kept = self.rows.iter().peekable();
        let mut start = 0;
        for z in 0..nz {
            let rows = z * ny..(z + 1) * ny;
            let flushed_end = self.flushed_rows.clamp(rows.start, rows.end);
            if flushed_end > rows.start {
                for v in &mut self.out[rows.start * row_len..flushed_end * row_len] {
                    // Every provisional label written in pass 1 indexes `final_of`.
                    *v = final_of.get(*v as usize).copied().unwrap_or(0);
                }
            }
            while let Some(&&(row, end)) = kept.peek() {
                if row >= rows.end {
                    break;
                }
                let map = |l: u32| final_of.get(l as usize).copied().unwrap_or(0);
                write_spans(self.out, row_len, row, &self.spans[start..end], map);
                start = end;
                kept.next();
            }
            check(progress, (nz + z + 1) as u64, total)?;
        }
        Ok(())
    }
}

/// A run kept for pass 2 (a [`Span`] without its key).
#[derive(Debug, Clone, Copy)]
struct Kept {
    x0: u32,
    x1: u32,
    label: u32,
}

impl From<&Span> for Kept {
    fn from(s: &Span) -> Self {
        Kept {
            x0: s.x0,
            x1: s.x1,
            label: s.label,
        }
    }
}

/// Fills each run of row `row` with `label(its label)`.
#[inline]
fn write_spans<'k>(
    out: &mut [u32],
    nx: usize,
    row: usize,
    spans: impl IntoIterator<Item = &'k Kept>,
    label: impl Fn(u32) -> u32,
) {
    let dst = &mut out[row * nx..(row + 1) * nx];
    for s in spans {
        dst[s.x0 as usize..s.x1 as usize].fill(label(s.label));
    }
}

/// Labels the connected components of a 2D image.
///
/// Same numbering and references as [`connected_components_3d`] (4 ↔ `connectivity=1`,
/// 8 ↔ `connectivity=2` in scikit-image; 4/8 in cc3d). 2D images are small enough that no
/// progress is reported.
pub fn connected_components_2d<T: LabelValue>(
    input: ArrayView2<'_, T>,
    params: &Components2Params,
) -> Result<(Array2<u32>, u32), LabelError> {
    let connectivity = match params.connectivity {
        Connectivity2::C4 => Connectivity3::C6,
        Connectivity2::C8 => Connectivity3::C26,
    };
    let params3 = Components3Params {
        connectivity,
        mode: params.mode,
    };
    let (out, n) = connected_components_3d(input.insert_axis(Axis(0)), &params3, &mut NoProgress)?;
    Ok((out.index_axis_move(Axis(0), 0), n))
}

/// Result of the labelling pass: final label of every provisional label.
pub(crate) struct Provisional {
    /// `final_of[p]` is the final label (`1..=count`) of provisional label `p`; index 0 is 0.
    pub final_of: Vec<u32>,
    /// Number of components.
    pub count: u32,
}

/// How input values are cut into runs and which runs may join.
trait Extract<T: LabelValue> {
    /// What two neighbouring voxels of one row must share to lie in one run.
    type Class: Copy + Eq;
    fn class(v: T) -> Self::Class;
    /// What two runs must share to join (0 for every run of a binary image).
    fn key(v: T) -> u32;
}

struct MultiLabel;
struct Binary;

impl<T: LabelValue> Extract<T> for MultiLabel {
    type Class = T;
    #[inline(always)]
    fn class(v: T) -> T {
        v
    }
    #[inline(always)]
    fn key(v: T) -> u32 {
        v.to_u32()
    }
}

impl<T: LabelValue> Extract<T> for Binary {
    type Class = bool;
    #[inline(always)]
    fn class(v: T) -> bool {
        v != T::ZERO
    }
    #[inline(always)]
    fn key(_: T) -> u32 {
        0
    }
}

/// One run: voxels `x0..x1` of a row, with its (provisional) label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// First x.
    pub x0: u32,
    /// One past the last x.
    pub x1: u32,
    /// Label ([`UNLABELLED`] until assigned).
    pub label: u32,
    /// Runs join only when their keys are equal (the value, or 0 in a binary image).
    pub key: u32,
}

/// The label of a run that has not been given one yet. It is larger than every label, so a
/// run meeting labelled runs can take the smallest label it meets with `min`.
pub(crate) const UNLABELLED: u32 = u32::MAX;

/// The runs of some rows: row `r` holds `row_start[r]..row_start[r + 1]`.
struct Runs {
    spans: Vec<Span>,
    row_start: Vec<usize>,
}

impl Runs {
    fn new() -> Self {
        Self {
            spans: Vec::new(),
            row_start: vec![0],
        }
    }
    fn clear(&mut self) {
        self.spans.clear();
        self.row_start.clear();
        self.row_start.push(0);
    }
    fn len(&self) -> usize {
        self.spans.len()
    }
    /// Appends the runs of `row` as a new row (labels 0).
    #[inline]
    fn push_row<T: LabelValue, E: Extract<T>>(&mut self, row: &[T]) {
        let Some(&first) = row.first() else {
            self.row_start.push(self.spans.len());
            return;
        };
        let mut start = 0usize;
        let mut value = first;
        // Run boundaries are the x where class(row[x]) != class(row[x - 1]). They are found 64
        // at a time as a bit mask (a branch-free compare loop the compiler vectorises into
        // bytes, packed eight at a time by a multiply) and visited with trailing_zeros, so a
        // long run costs a few vector compares.
        let mut base = 1usize;
        let mut ne = [0u8; 64];
        while base < row.len() {
            let end = (base + 64).min(row.len());
            let len = end - base;
            let (cur, prev) = (&row[base..end], &row[base - 1..end - 1]);
            for ((n, &c), &p) in ne[..len].iter_mut().zip(cur).zip(prev) {
                *n = u8::from(E::class(c) != E::class(p));
            }
            ne[len..].fill(0);
            let mut mask = pack_bits(&ne);
            while mask != 0 {
                let x = base + mask.trailing_zeros() as usize;
                self.push_run::<T, E>(start, x, value);
                start = x;
                value = row[x];
                mask &= mask - 1;
            }
            base = end;
        }
        self.push_run::<T, E>(start, row.len(), value);
        self.row_start.push(self.spans.len());
    }
    #[inline(always)]
    fn push_run<T: LabelValue, E: Extract<T>>(&mut self, a: usize, b: usize, v: T) {
        if v != T::ZERO {
            // Row length was checked to fit in u32.
            self.spans.push(Span {
                x0: a as u32,
                x1: b as u32,
                label: UNLABELLED,
                key: E::key(v),
            });
        }
    }
}

/// Root of `x` with path halving. Invariant: `parent[i] <= i`. Shared with `relabel`.
#[inline(always)]
pub(crate) fn find(parent: &mut [u32], mut x: u32) -> u32 {
    loop {
        let p = parent[x as usize];
        if p == x {
            return x;
        }
        let gp = parent[p as usize];
        parent[x as usize] = gp;
        x = gp;
    }
}

/// Joins the sets of `a` and `b`; the smaller root becomes the root.
#[inline(always)]
fn union(parent: &mut [u32], a: u32, b: u32) {
    let ra = find(parent, a);
    let rb = find(parent, b);
    if ra != rb {
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        parent[hi as usize] = lo;
    }
}

/// How a connectivity is checked: the reach along x when matching the row above in the same
/// plane (the in-plane part is 4- or 8-connected), and the in-plane offsets `(dy, dx)` towards
/// which a voxel may touch the previous plane diagonally.
///
/// The previous plane is matched only voxel over voxel (runs overlapping in x, reach 0), and
/// diagonal contacts are tested only where that misses them. For voxels `v` (in plane z) and
/// `w` (plane z - 1, at in-plane offset `d` from `v`'s position) of one key: if the voxel `b`
/// below `v` has the key, `b` and `w` are in-plane neighbours and so in one 2D component,
/// which `v` joins through `b`; if the in-plane neighbour `a` of `v` at `d` has the key, `v`
/// and `a` are in one 2D component and `a` joins `w` directly below it. Only when neither
/// holds, which needs `b` to differ from `v` (a few percent of the voxels of a real label
/// volume), is the pair checked explicitly. This replaces three row merges per row by one.
struct Plan {
    in_plane_reach: u32,
    below_reach: u32,
    diagonals: Diagonals,
}

/// Which in-plane offsets toward rows `y +- 1` are checked for contacts with the previous plane.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Diagonals {
    None,
    /// dx = 0 (18-connectivity).
    Straight,
    /// dx in -1..=1 (26-connectivity).
    All,
}

fn plan(connectivity: Connectivity3) -> Plan {
    match connectivity {
        Connectivity3::C6 => Plan {
            in_plane_reach: 0,
            below_reach: 0,
            diagonals: Diagonals::None,
        },
        Connectivity3::C18 => Plan {
            in_plane_reach: 1,
            below_reach: 1,
            diagonals: Diagonals::Straight,
        },
        Connectivity3::C26 => Plan {
            in_plane_reach: 1,
            below_reach: 1,
            diagonals: Diagonals::All,
        },
    }
}

/// The labelling pass: finds the runs of every row, gives each a provisional label, and hands
/// each finished row to `sink(row index z * Y + y, runs with provisional labels)`. `max_label` is
/// the largest label allowed (tests lower it). Reports planes `0..Z` of `2 Z`.
pub(crate) fn label_runs<T: LabelValue>(
    input: ArrayView3<'_, T>,
    connectivity: Connectivity3,
    mode: InputMode,
    max_label: u32,
    progress: &mut dyn Progress,
    sink: impl FnMut(usize, &[Span]),
) -> Result<Provisional, LabelError> {
    match mode {
        InputMode::MultiLabel => {
            label_runs_with::<T, MultiLabel>(input, connectivity, max_label, progress, sink)
        }
        InputMode::Binary => {
            label_runs_with::<T, Binary>(input, connectivity, max_label, progress, sink)
        }
    }
}

fn label_runs_with<T: LabelValue, E: Extract<T>>(
    input: ArrayView3<'_, T>,
    connectivity: Connectivity3,
    max_label: u32,
    progress: &mut dyn Progress,
    mut sink: impl FnMut(usize, &[Span]),
) -> Result<Provisional, LabelError> {
    let (nz, ny, nx) = input.dim();
    // x + 1 (diagonal reach) must not overflow u32.
    let max_width = (u32::MAX - 1) as usize;
    if nx > max_width {
        return Err(LabelError::RowTooLong {
            width: nx,
            max: max_width,
        });
    }
    let total = 2 * nz as u64;
    let dense = input.as_standard_layout();
    let flat: &[T] = dense.as_slice().unwrap_or(&[]);

    // Runs of the previous and the current plane.
    let mut prev = Runs::new();
    let mut cur = Runs::new();
    // parent[0] is unused: label 0 means "not yet labelled".
    let mut parent: Vec<u32> = vec![0];
    let plan = plan(connectivity);
    let mut pending = Pairs::default();
    let row_of = |z: usize, y: usize| &flat[(z * ny + y) * nx..(z * ny + y + 1) * nx];
    let zero_row = vec![
        T::ZERO;
        if plan.diagonals == Diagonals::None {
            0
        } else {
            nx
        }
    ];

    for z in 0..nz {
        check(progress, z as u64, total)?;
        std::mem::swap(&mut prev, &mut cur);
        cur.clear();
        for y in 0..ny {
            let row = z * ny + y;
            let c0 = cur.len();
            cur.push_row::<T, E>(row_of(z, y));
            let c1 = cur.len();
            if c0 == c1 {
                continue;
            }
            if y > 0 {
                let (p0, p1) = (cur.row_start[y - 1], cur.row_start[y]);
                let (done, now) = cur.spans.split_at_mut(c0);
                match_rows(now, &done[p0..p1], plan.in_plane_reach, &mut pending);
            }
            if z > 0 {
                let (p0, p1) = (prev.row_start[y], prev.row_start[y + 1]);
                let now = &mut cur.spans[c0..c1];
                match_rows(now, &prev.spans[p0..p1], plan.below_reach, &mut pending);
            }
            for &(a, b) in pending.take() {
                union(&mut parent, a, b);
            }
            for span in cur.spans[c0..c1]
                .iter_mut()
                .filter(|s| s.label == UNLABELLED)
            {
                let next = parent.len();
                let max = max_label.min(UNLABELLED - 1);
                if next > max as usize {
                    return Err(LabelError::TooManyComponents { max });
                }
                span.label = next as u32;
                parent.push(next as u32);
            }
            if z > 0 && plan.diagonals != Diagonals::None {
                let zero = &zero_row[..];
                let rows = Neighbourhood {
                    cur: [
                        if y > 0 { row_of(z, y - 1) } else { zero },
                        row_of(z, y),
                        if y + 1 < ny { row_of(z, y + 1) } else { zero },
                    ],
                    below: [
                        if y > 0 { row_of(z - 1, y - 1) } else { zero },
                        row_of(z - 1, y),
                        if y + 1 < ny {
                            row_of(z - 1, y + 1)
                        } else {
                            zero
                        },
                    ],
                };
                let all_dx = plan.diagonals == Diagonals::All;
                let spans = &cur.spans[c0..c1];
                diagonal_contacts::<T, E>(&rows, all_dx, spans, &prev, y, &mut parent);
            }
            // Keep root labels on finished rows so that later matches rarely union.
            for span in cur.spans[c0..c1].iter_mut() {
                span.label = find(&mut parent, span.label);
            }
            sink(row, &cur.spans[c0..c1]);
        }
    }

    // Final labels: roots in label order. parent[l] <= l, so one forward sweep resolves every
    // label through its already-resolved parent.
    let mut count = 0u32;
    for l in 1..parent.len() {
        let p = parent[l];
        if p as usize == l {
            count += 1;
            parent[l] = count;
        } else {
            parent[l] = parent[p as usize];
        }
    }
    check(progress, nz as u64, total)?;
    Ok(Provisional {
        final_of: parent,
        count,
    })
}

/// Input rows `y - 1, y, y + 1` of the current plane and of the one below; rows outside the
/// volume are a row of zeros, which never matches a foreground key.
struct Neighbourhood<'a, T> {
    cur: [&'a [T]; 3],
    below: [&'a [T]; 3],
}

/// Unions the runs of the current row `y` with runs of the previous plane in rows `y +- 1`
/// that they touch, where [`Plan`] says an explicit check is needed: at voxels `v` that
/// differ from the voxel below and from the in-plane voxel `u` above (or below), towards the
/// voxels of the previous plane next to `u`'s position (`dx` in `-1..=1` for 26-connectivity,
/// 0 for 18). Where `u` has `v`'s key, `u` is in `v`'s 2D component and those voxels are
/// `u`'s own same-row contacts, which the row merge with the previous plane finds.
///
/// The candidate voxels are found for a whole row with vector compares; each is then tested
/// offset by offset without branches, and only the rare hits look up a run.
fn diagonal_contacts<T: LabelValue, E: Extract<T>>(
    rows: &Neighbourhood<'_, T>,
    all_dx: bool,
    spans: &[Span],
    prev: &Runs,
    y: usize,
    parent: &mut [u32],
) {
    let [up, cur, down] = rows.cur;
    let below = rows.below[1];
    let nx = cur.len();
    if nx == 0 || rows.cur.iter().chain(&rows.below).any(|r| r.len() != nx) {
        return;
    }
    let last = nx - 1;
    let mut run = 0usize;
    let mut base = 0usize;
    let (mut to_up, mut to_down) = ([0u8; 64], [0u8; 64]);
    while base < nx {
        let end = (base + 64).min(nx);
        let lanes = to_up.iter_mut().zip(to_down.iter_mut());
        let values = cur[base..end].iter().zip(&below[base..end]);
        let across = up[base..end].iter().zip(&down[base..end]);
        for (((nu, nd), (&c, &b)), (&u, &d)) in lanes.zip(values).zip(across) {
            let k = E::class(c);
            let candidate = (c != T::ZERO) & (E::class(b) != k);
            *nu = u8::from(candidate & (E::class(u) != k));
            *nd = u8::from(candidate & (E::class(d) != k));
        }
        to_up[end - base..].fill(0);
        to_down[end - base..].fill(0);
        let (mask_up, mask_down) = (pack_bits(&to_up), pack_bits(&to_down));
        let mut mask = mask_up | mask_down;
        while mask != 0 {
            let bit = mask.trailing_zeros();
            mask &= mask - 1;
            let x = base + bit as usize;
            let key = E::class(cur[x]);
            let (lo, hi) = if all_dx {
                (x.saturating_sub(1), (x + 1).min(last))
            } else {
                (x, x)
            };
            // Bit 3r + j: the voxel of row r (0 above, 1 below) at lo + j is a contact.
            let mut hits = 0u32;
            for (r, (side, mask_side)) in [(0usize, mask_up), (2, mask_down)].iter().enumerate() {
                if (mask_side >> bit) & 1 == 0 {
                    continue;
                }
                let (inplane, under) = (rows.cur[*side], rows.below[*side]);
                for (j, xx) in (lo..=hi).enumerate() {
                    let (a, w) = (inplane[xx], under[xx]);
                    let hit = (E::class(a) != key) & (E::class(w) == key) & (w != T::ZERO);
                    hits |= u32::from(hit) << (3 * r + j);
                }
            }
            if hits == 0 {
                continue;
            }
            while run + 1 < spans.len() && spans[run].x1 as usize <= x {
                run += 1;
            }
            let Some(here) = spans.get(run) else {
                continue;
            };
            while hits != 0 {
                let h = hits.trailing_zeros() as usize;
                hits &= hits - 1;
                let (py, xx) = (y + 2 * (h / 3) - 1, lo + h % 3);
                // Find the run of the previous plane holding (py, xx).
                let (p0, p1) = (prev.row_start[py], prev.row_start[py + 1]);
                let row_runs = &prev.spans[p0..p1];
                let k = row_runs.partition_point(|s| s.x1 as usize <= xx);
                if let Some(other) = row_runs.get(k) {
                    union(parent, here.label, other.label);
                }
            }
        }
        base = end;
    }
}

/// Calls `f(start, end, value)` for every maximal run of equal values in `data` (zeros
/// included), in order. Boundaries are found 64 elements at a time like row runs.
pub(crate) fn for_each_run<T: LabelValue>(data: &[T], mut f: impl FnMut(usize, usize, T)) {
    let Some(&first) = data.first() else {
        return;
    };
    let (mut start, mut value) = (0usize, first);
    let mut base = 1usize;
    let mut ne = [0u8; 64];
    while base < data.len() {
        let end = (base + 64).min(data.len());
        let len = end - base;
        for ((n, &c), &p) in ne[..len]
            .iter_mut()
            .zip(&data[base..end])
            .zip(&data[base - 1..])
        {
            *n = u8::from(c != p);
        }
        ne[len..].fill(0);
        let mut mask = pack_bits(&ne);
        while mask != 0 {
            let x = base + mask.trailing_zeros() as usize;
            mask &= mask - 1;
            f(start, x, value);
            start = x;
            value = data[x];
        }
        base = end;
    }
    f(start, data.len(), value);
}

/// Packs 64 bytes of 0/1 into a bit mask (byte i -> bit i).
#[inline(always)]
fn pack_bits(bytes: &[u8; 64]) -> u64 {
    let mut mask = 0u64;
    for (j, chunk) in bytes.chunks_exact(8).enumerate() {
        let mut word = [0u8; 8];
        for (w, &b) in word.iter_mut().zip(chunk) {
            *w = b;
        }
        // The top byte of the product collects bit i of byte i.
        let bits = u64::from_le_bytes(word).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        mask |= bits << (8 * j);
    }
    mask
}

/// Unions the runs of the current row with those of one earlier row that touch them
/// (`reach` = 1 also joins runs that meet only diagonally).
///
/// A two-pointer merge that always advances the run ending first, written so that the only
/// hard-to-predict branch is the loop exit: every overlapping pair is visited, and with
/// `reach` = 1 the one diagonal contact the merge can step over (the current run ends exactly
/// where one earlier run ends and the next begins) is tested on ties. Earlier rows carry root
/// labels, so a match usually only copies a label and `union` is rare.
#[inline]
fn match_rows(cur: &mut [Span], prev: &[Span], reach: u32, pending: &mut Pairs) {
    // At most two pairs per merge step, and fewer steps than runs.
    pending.reserve(2 * (cur.len() + prev.len()));
    if reach == 0 {
        merge::<0>(cur, prev, pending);
    } else {
        merge::<1>(cur, prev, pending);
    }
}

#[inline(always)]
fn merge<const REACH: u32>(cur: &mut [Span], prev: &[Span], pending: &mut Pairs) {
    let (cn, pn) = (cur.len(), prev.len());
    if pn == 0 || cn == 0 {
        return;
    }
    let (mut i, mut k) = (0usize, 0usize);
    loop {
        let c = cur[i];
        let p = prev[k];
        let touch = (p.x0 < c.x1 + REACH) & (c.x0 < p.x1 + REACH) & (c.key == p.key);
        let mut label = join(c.label, p.label, touch, pending);
        if REACH > 0 {
            // The next earlier run when it starts exactly where this one and the current one
            // end (a diagonal contact the merge would step over); clamped index, masked.
            let k1 = (k + 1).min(pn - 1);
            let q = prev[k1];
            let diagonal = (c.x1 == p.x1) & (k1 > k) & (q.x0 == c.x1) & (c.key == q.key);
            label = join(label, q.label, diagonal, pending);
        }
        cur[i].label = label;
        let step_cur = c.x1 <= p.x1;
        i += usize::from(step_cur);
        k += usize::from(!step_cur);
        if (i == cn) | (k == pn) {
            break;
        }
    }
}

/// The label of a run labelled `l` (or [`UNLABELLED`]) after meeting a run labelled `m`:
/// when `touch`, the smaller of the two, and a labelled run meeting another label queues
/// the union of both (rare: earlier rows carry root labels). Whether two runs touch is
/// data-dependent, so this is written without branches: a masked minimum and a queue slot
/// that is written every time and kept only when needed.
#[inline(always)]
fn join(l: u32, m: u32, touch: bool, pending: &mut Pairs) -> u32 {
    let conflict = touch & (l != UNLABELLED) & (l != m);
    pending.push_if(l, m, conflict);
    // Not touching: `m | u32::MAX` leaves `l`. The minimum is taken with a mask that
    // `black_box` hides from the compiler, which would otherwise turn it into a branch.
    let m = m | u32::from(touch).wrapping_sub(1);
    let take_m = std::hint::black_box(0u32.wrapping_sub(u32::from(m < l)));
    l ^ ((l ^ m) & take_m)
}

/// Label pairs to union, queued while matching one row and applied after it.
#[derive(Default)]
struct Pairs {
    slots: Vec<(u32, u32)>,
    len: usize,
}

impl Pairs {
    /// Makes room for `extra` more pairs.
    fn reserve(&mut self, extra: usize) {
        let need = self.len + extra + 1;
        if self.slots.len() < need {
            self.slots.resize(need.next_power_of_two(), (0, 0));
        }
    }
    /// Writes `(a, b)` into the next slot and keeps it when `keep`.
    #[inline(always)]
    fn push_if(&mut self, a: u32, b: u32, keep: bool) {
        if let Some(slot) = self.slots.get_mut(self.len) {
            *slot = (a, b);
            self.len += usize::from(keep);
        }
    }
    /// The kept pairs; the queue is empty afterwards.
    fn take(&mut self) -> &[(u32, u32)] {
        let n = std::mem::take(&mut self.len);
        &self.slots[..n]
    }
}

/// `cc3d.dust` on labelled input: multi-label components under `connectivity` with fewer
/// than `min_size` voxels become 0, everything else keeps its value. Reports `2 Z` planes.
pub(crate) fn dust<T: LabelValue>(
    input: ArrayView3<'_, T>,
    connectivity: Connectivity3,
    min_size: u64,
    progress: &mut dyn Progress,
) -> Result<Array3<T>, LabelError> {
    let (nz, ny, nx) = input.dim();
    let mut out = input.as_standard_layout().into_owned();
    // Pass 1 keeps each run's provisional label and each provisional label's voxel count.
    let mut run_labels: Vec<u32> = Vec::new();
    let mut sizes: Vec<u64> = Vec::new();
    let sink = |_: usize, spans: &[Span]| {
        for s in spans {
            let l = s.label as usize;
            if sizes.len() <= l {
                sizes.resize(l + 1, 0);
            }
            sizes[l] += u64::from(s.x1 - s.x0);
            run_labels.push(s.label);
        }
    };
    let labels = label_runs(
        input,
        connectivity,
        InputMode::MultiLabel,
        u32::MAX,
        progress,
        sink,
    )?;
    let mut final_sizes = vec![0u64; labels.count as usize + 1];
    for (p, &n) in sizes.iter().enumerate() {
        final_sizes[labels.final_of[p] as usize] += n;
    }
    let Some(flat) = out.as_slice_mut() else {
        return Ok(out);
    };
    // Pass 2 cuts the same runs again (the cut is deterministic) and clears the small ones.
    let mut runs = Runs::new();
    let mut next_run = 0usize;
    for z in 0..nz {
        for y in 0..ny {
            let row = z * ny + y;
            let dst = &mut flat[row * nx..(row + 1) * nx];
            runs.clear();
            runs.push_row::<T, MultiLabel>(dst);
            for s in &runs.spans {
                let (a, b) = (s.x0, s.x1);
                let p = run_labels.get(next_run).copied().unwrap_or(0);
                next_run += 1;
                let f = labels.final_of.get(p as usize).copied().unwrap_or(0);
                if final_sizes[f as usize] < min_size {
                    dst[a as usize..b as usize].fill(T::ZERO);
                }
            }
        }
        check(progress, (nz + z + 1) as u64, 2 * nz as u64)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;
    use proptest::prelude::*;

    /// Reference: breadth-first flood fill over `Connectivity3::offsets`, raster-order seeds.
    fn flood_fill<T: LabelValue>(
        v: &Array3<T>,
        c: Connectivity3,
        mode: InputMode,
    ) -> (Array3<u32>, u32) {
        let (nz, ny, nx) = v.dim();
        let mut out = Array3::<u32>::zeros((nz, ny, nx));
        let offs = c.offsets();
        let same = |a: T, b: T| match mode {
            InputMode::Binary => b != T::ZERO,
            InputMode::MultiLabel => a == b,
        };
        let mut n = 0;
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    if v[[z, y, x]] == T::ZERO || out[[z, y, x]] != 0 {
                        continue;
                    }
                    n += 1;
                    out[[z, y, x]] = n;
                    let mut stack = vec![(z, y, x)];
                    while let Some((a, b, c)) = stack.pop() {
                        for &(dz, dy, dx) in &offs {
                            let (p, q, r) = (a as isize + dz, b as isize + dy, c as isize + dx);
                            if p < 0
                                || q < 0
                                || r < 0
                                || p >= nz as isize
                                || q >= ny as isize
                                || r >= nx as isize
                            {
                                continue;
                            }
                            let (p, q, r) = (p as usize, q as usize, r as usize);
                            if out[[p, q, r]] == 0
                                && v[[p, q, r]] != T::ZERO
                                && same(v[[a, b, c]], v[[p, q, r]])
                            {
                                out[[p, q, r]] = n;
                                stack.push((p, q, r));
                            }
                        }
                    }
                }
            }
        }
        (out, n)
    }

    fn conn() -> impl Strategy<Value = Connectivity3> {
        prop_oneof![
            Just(Connectivity3::C6),
            Just(Connectivity3::C18),
            Just(Connectivity3::C26)
        ]
    }

    fn volume(max: u8) -> impl Strategy<Value = Array3<u8>> {
        (1usize..7, 1usize..7, 1usize..40).prop_flat_map(move |(z, y, x)| {
            proptest::collection::vec(0..=max, z * y * x)
                .prop_map(move |d| Array3::from_shape_vec((z, y, x), d).expect("shape matches"))
        })
    }

    /// Rows long enough for full 64-voxel blocks, with runs (each voxel repeats the previous
    /// one with probability 4/5).
    fn wide_volume(max: u8) -> impl Strategy<Value = Array3<u8>> {
        (1usize..4, 1usize..5, 60usize..200).prop_flat_map(move |(z, y, x)| {
            let n = z * y * x;
            (
                proptest::collection::vec(0..=max, n),
                proptest::collection::vec(0u8..5, n),
            )
                .prop_map(move |(mut d, repeat)| {
                    for i in 1..d.len() {
                        if repeat[i] != 0 {
                            d[i] = d[i - 1];
                        }
                    }
                    Array3::from_shape_vec((z, y, x), d).expect("shape matches")
                })
        })
    }

    proptest! {
        #[test]
        fn wide_rows_match_flood_fill(v in wide_volume(3), c in conn(), binary in any::<bool>()) {
            let mode = if binary { InputMode::Binary } else { InputMode::MultiLabel };
            let params = Components3Params { connectivity: c, mode };
            let got = connected_components_3d(v.view(), &params, &mut NoProgress).expect("labels");
            prop_assert_eq!(got, flood_fill(&v, c, mode));
        }

        /// Past the run budget, pass 2 maps provisional labels written into the output.
        #[test]
        fn small_run_budget_matches(v in wide_volume(2), c in conn(), budget in 1usize..40) {
            let params = Components3Params { connectivity: c, mode: InputMode::MultiLabel };
            let got = components_with_budget(v.view(), &params, &mut NoProgress, budget)
                .expect("labels");
            prop_assert_eq!(got, flood_fill(&v, c, InputMode::MultiLabel));
        }

        /// Large ids of wider types label like small ones.
        #[test]
        fn wide_types_match_u8(v in volume(3), c in conn()) {
            let params = Components3Params { connectivity: c, mode: InputMode::MultiLabel };
            let small = connected_components_3d(v.view(), &params, &mut NoProgress).expect("u8");
            let v16 = v.mapv(|x| if x == 0 { 0 } else { u16::MAX - u16::from(x) });
            let v32 = v.mapv(|x| u32::from(x) * 1_000_000_007);
            let l16 = connected_components_3d(v16.view(), &params, &mut NoProgress).expect("u16");
            let l32 = connected_components_3d(v32.view(), &params, &mut NoProgress).expect("u32");
            prop_assert_eq!(&small, &l16);
            prop_assert_eq!(&small, &l32);
        }

        /// Runs cover the data in order, hold equal values, and neighbouring runs differ.
        #[test]
        fn runs_partition_the_data(
            d in proptest::collection::vec(prop_oneof![Just(0u16), Just(1), 2u16..5], 0..300)
        ) {
            let mut runs = Vec::new();
            for_each_run(&d, |a, b, v| runs.push((a, b, v)));
            let mut at = 0;
            for (i, &(a, b, v)) in runs.iter().enumerate() {
                prop_assert_eq!(a, at);
                prop_assert!(b > a);
                prop_assert!(d[a..b].iter().all(|&x| x == v));
                if i > 0 {
                    prop_assert!(runs[i - 1].2 != v);
                }
                at = b;
            }
            prop_assert_eq!(at, d.len());
        }

        #[test]
        fn matches_flood_fill(v in volume(3), c in conn(), binary in any::<bool>()) {
            let mode = if binary { InputMode::Binary } else { InputMode::MultiLabel };
            let params = Components3Params { connectivity: c, mode };
            let got = connected_components_3d(v.view(), &params, &mut NoProgress).expect("labels");
            prop_assert_eq!(got, flood_fill(&v, c, mode));
        }

        #[test]
        fn strided_input_matches_copy(v in volume(2), c in conn()) {
            let params = Components3Params { connectivity: c, mode: InputMode::MultiLabel };
            let t = v.view().reversed_axes();
            let owned = t.to_owned();
            let a = connected_components_3d(t, &params, &mut NoProgress).expect("labels");
            let b = connected_components_3d(owned.view(), &params, &mut NoProgress)
                .expect("labels");
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn empty_and_tiny() {
        for shape in [(0, 0, 0), (0, 3, 3), (3, 0, 3), (3, 3, 0), (1, 1, 1)] {
            let v = Array3::<u16>::zeros(shape);
            let (l, n) =
                connected_components_3d(v.view(), &Components3Params::default(), &mut NoProgress)
                    .expect("labels");
            assert_eq!(n, 0);
            assert_eq!(l.dim(), shape);
        }
        let v = Array3::<u32>::from_elem((1, 1, 1), 7);
        let (l, n) =
            connected_components_3d(v.view(), &Components3Params::default(), &mut NoProgress)
                .expect("labels");
        assert_eq!((l[[0, 0, 0]], n), (1, 1));
    }

    #[test]
    fn two_d_connectivity() {
        let v = ndarray::arr2(&[[1u8, 0, 0], [0, 1, 0], [0, 0, 2]]);
        let p4 = Components2Params {
            connectivity: Connectivity2::C4,
            mode: InputMode::Binary,
        };
        let p8 = Components2Params {
            connectivity: Connectivity2::C8,
            mode: InputMode::Binary,
        };
        let m8 = Components2Params {
            connectivity: Connectivity2::C8,
            mode: InputMode::MultiLabel,
        };
        assert_eq!(connected_components_2d(v.view(), &p4).expect("4").1, 3);
        assert_eq!(connected_components_2d(v.view(), &p8).expect("8").1, 1);
        let (l, n) = connected_components_2d(v.view(), &m8).expect("m8");
        assert_eq!(n, 2);
        assert_eq!(l, ndarray::arr2(&[[1, 0, 0], [0, 1, 0], [0, 0, 2]]));
        let empty = Array2::<u8>::zeros((0, 5));
        assert_eq!(
            connected_components_2d(empty.view(), &p8).expect("empty").1,
            0
        );
    }

    #[test]
    fn too_many_components_is_an_error() {
        let v = Array3::<u8>::from_shape_fn((1, 1, 9), |(_, _, x)| (x % 2) as u8);
        let sink = |_: usize, _: &[Span]| {};
        let ok = label_runs(
            v.view(),
            Connectivity3::C6,
            InputMode::Binary,
            5,
            &mut NoProgress,
            sink,
        );
        assert_eq!(ok.map(|r| r.count).ok(), Some(4));
        let err = label_runs(
            v.view(),
            Connectivity3::C6,
            InputMode::Binary,
            3,
            &mut NoProgress,
            sink,
        );
        assert!(matches!(err, Err(LabelError::TooManyComponents { max: 3 })));
    }

    #[test]
    fn cancels() {
        let v = Array3::<u8>::ones((4, 4, 4));
        let mut stop = |_: u64, _: u64| std::ops::ControlFlow::Break(());
        let r = connected_components_3d(v.view(), &Components3Params::default(), &mut stop);
        assert!(matches!(r, Err(LabelError::Cancelled(_))));
    }

    #[test]
    fn reports_progress_to_completion() {
        let v = Array3::<u8>::ones((3, 4, 4));
        let mut seen = Vec::new();
        let mut p = |d: u64, t: u64| {
            seen.push((d, t));
            std::ops::ControlFlow::Continue(())
        };
        connected_components_3d(v.view(), &Components3Params::default(), &mut p).expect("labels");
        assert_eq!(seen.last(), Some(&(6, 6)));
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
    }
}
