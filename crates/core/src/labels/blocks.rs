//! Labelling a volume in blocks along z, so that several workers each take one block: the plan
//! (which slices a block reads, owns and sends back), what a worker runs on its block
//! ([`label_block`]), and the merge steps that join the blocks into one label volume.
//!
//! Hand-written: no crate splits these kernels into blocks. The kernels themselves are the
//! golden-tested ones of this crate; this module only cuts and joins.
//!
//! - **Connected components, exactly.** Slabs with no overlap are labelled on their own
//!   ([`connected_components_3d`]); [`merge_component_slabs`] joins the labels that touch
//!   across each seam (the last plane of one slab and the first of the next, under the
//!   connectivity, and in multi-label mode only where the input values agree) with a
//!   union-find whose root is always the smallest ID of its set. Each slab numbers its
//!   components in raster order of their first voxel, and the slabs are in z order, so that
//!   root is the component's first voxel in the whole volume: numbering the roots in order
//!   gives the whole-volume result voxel for voxel (tested against
//!   [`connected_components_3d`] of the whole volume, itself tested against cc3d and
//!   scikit-image). 2D components per slice ([`BlockLabelling::Components2`]) need no merge.
//! - **Watersheds, approximately.** A basin's extent depends on seeds and distances anywhere
//!   along its flood, so a block reads [`BlockParams::halo`] slices more on each side than it
//!   owns. The distance transform is then exact wherever the nearest background voxel lies
//!   inside the slices read, and seeds and flooding near the seam see the same surroundings in
//!   both blocks. Each block sends back its own slices and [`SEAM`] slices of each
//!   neighbour's; [`merge_basin_blocks`] joins a basin of one block with a basin of the next
//!   when most voxels of either, in the slices both sent, are voxels of the other. A marker
//!   watershed needs no such step: its basins carry the marker IDs, which are the same in
//!   every block ([`assemble_blocks`]). The result depends on the block layout
//!   ([`BlockParams`]) but not on how many workers run the blocks, so the browser's helpers
//!   and `emstudio label --block-depth` give the same labels. How close it stays to a
//!   whole-volume run is measured on real data in this module's tests (adapted Rand error on
//!   flyem-medulla-fib) and in BENCHMARKS.md.

use super::components::{
    connected_components_2d, connected_components_3d, Components2Params, Components3Params,
    InputMode, LabelError, LabelValue,
};
use super::postprocess::PostprocessError;
use super::watershed::{distance_watershed, watershed_3d};
use crate::distance::edt_3d;
use crate::neighborhood::{Connectivity2, Connectivity3};
use crate::progress::{check, Phase, Progress};
use ndarray::{s, Array3, ArrayView3, Axis};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::Range;

/// Slices next to a seam that both neighbouring blocks send back, on each side of it
/// (at most the halo): where [`merge_basin_blocks`] compares their basins.
pub const SEAM: usize = 4;

/// How a watershed is cut into blocks along z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockParams {
    /// Slices each block owns (the volume is cut into `ceil(depth / this)` equal blocks).
    pub depth: usize,
    /// Slices a block reads beyond its own on each side (at least 1).
    pub halo: usize,
}

impl Default for BlockParams {
    /// Blocks of 64 slices reading 24 more on each side: the distance transform of objects up
    /// to 20 voxels thick across z stays exact in the slices compared at the seams (the
    /// Postprocess panel proposes larger blocks when fewer helpers would share more of them).
    fn default() -> Self {
        Self {
            depth: 64,
            halo: 24,
        }
    }
}

impl BlockParams {
    /// Checks the values a user typed.
    pub fn validate(&self) -> Result<(), LabelError> {
        if self.depth == 0 {
            return Err(LabelError::InvalidParameter {
                name: "block depth",
                reason: "a block holds at least one slice".into(),
            });
        }
        if self.halo == 0 {
            return Err(LabelError::InvalidParameter {
                name: "block overlap",
                reason: "blocks must overlap by at least one slice to be joined".into(),
            });
        }
        Ok(())
    }
}

/// One block of a plan: the slices it reads, owns and sends back (`keep ⊆ send ⊆ read`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Slices the worker is given.
    pub read: Range<usize>,
    /// Slices whose labels this block decides.
    pub keep: Range<usize>,
    /// Slices the worker sends back: `keep` and up to [`SEAM`] slices on each side.
    pub send: Range<usize>,
}

impl Block {
    /// A block that reads, keeps and sends the same slices (no overlap).
    pub fn plain(keep: Range<usize>) -> Self {
        Self {
            read: keep.clone(),
            send: keep.clone(),
            keep,
        }
    }

    /// `send` counted from the start of `read`, as the worker sees its slab.
    pub fn send_in_read(&self) -> Range<usize> {
        self.send.start - self.read.start..self.send.end - self.read.start
    }

    /// `keep` counted from the start of `send`, as the sent labels hold it.
    pub fn keep_in_send(&self) -> Range<usize> {
        self.keep.start - self.send.start..self.keep.end - self.send.start
    }
}

/// `0..depth` cut into `parts` contiguous ranges whose sizes differ by at most one (at most
/// `depth` ranges; one empty range for an empty volume).
pub fn even_ranges(depth: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, depth.max(1));
    (0..parts)
        .map(|k| depth * k / parts..depth * (k + 1) / parts)
        .collect()
}

/// Blocks without overlap for an exact merge ([`merge_component_slabs`], per-slice work).
pub fn plain_blocks(depth: usize, parts: usize) -> Vec<Block> {
    even_ranges(depth, parts)
        .into_iter()
        .map(Block::plain)
        .collect()
}

/// The watershed blocks of a volume `depth` slices deep: `ceil(depth / params.depth)` equal
/// blocks, each reading `params.halo` slices more on each side and sending back
/// `min(SEAM, halo)` slices beyond its own.
pub fn plan_blocks(depth: usize, params: BlockParams) -> Vec<Block> {
    let parts = depth.div_ceil(params.depth.max(1));
    let seam = SEAM.min(params.halo);
    even_ranges(depth, parts)
        .into_iter()
        .map(|keep| Block {
            read: keep.start.saturating_sub(params.halo)..(keep.end + params.halo).min(depth),
            send: keep.start.saturating_sub(seam)..(keep.end + seam).min(depth),
            keep,
        })
        .collect()
}

/// What a worker computes on its block (it travels in the helper jobs of the browser).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum BlockLabelling {
    /// 3D connected components of the mask (exact merge: [`merge_component_slabs`]).
    Components3 {
        /// 6, 18 or 26.
        connectivity: Connectivity3,
    },
    /// 2D connected components of each slice, numbered per slice (no merge needed).
    Components2 {
        /// 4 or 8.
        connectivity: Connectivity2,
    },
    /// Distance-transform watershed of the mask ([`distance_watershed`]); merged by
    /// [`merge_basin_blocks`].
    DistanceWatershed {
        /// Distance units per voxel along `[z, y, x]`.
        sampling: [f64; 3],
        /// Minimum seed separation in voxels.
        min_distance: usize,
        /// Flooding neighbourhood.
        connectivity: Connectivity3,
    },
    /// Watershed of −distance inside the mask from marker IDs ([`assemble_blocks`]).
    MarkerWatershed {
        /// Distance units per voxel along `[z, y, x]`.
        sampling: [f64; 3],
        /// Flooding neighbourhood.
        connectivity: Connectivity3,
    },
}

impl BlockLabelling {
    /// True when the blocks need markers.
    pub fn needs_markers(&self) -> bool {
        matches!(self, BlockLabelling::MarkerWatershed { .. })
    }
}

/// Labels one block as a worker does: `mask` (and `markers` for a marker watershed) are the
/// block's `read` slices; returns the labels of `send` (counted within `read`) and the
/// largest label in them.
pub fn label_block(
    how: &BlockLabelling,
    mask: ArrayView3<'_, u8>,
    markers: Option<ArrayView3<'_, u32>>,
    send: Range<usize>,
    progress: &mut dyn Progress,
) -> Result<(Array3<u32>, u32), PostprocessError> {
    if send.start > send.end || send.end > mask.len_of(Axis(0)) {
        return Err(PostprocessError::Invalid(format!(
            "a block of {} slices cannot send slices {}..{}",
            mask.len_of(Axis(0)),
            send.start,
            send.end
        )));
    }
    let labels = match *how {
        BlockLabelling::Components3 { connectivity } => {
            let p = Components3Params {
                connectivity,
                mode: InputMode::Binary,
            };
            connected_components_3d(mask, &p, progress)?.0
        }
        BlockLabelling::Components2 { connectivity } => {
            let p = Components2Params {
                connectivity,
                mode: InputMode::Binary,
            };
            let mut out = Array3::<u32>::zeros(mask.dim());
            let nz = mask.len_of(Axis(0)) as u64;
            for (z, (src, mut dst)) in mask.outer_iter().zip(out.outer_iter_mut()).enumerate() {
                dst.assign(&connected_components_2d(src, &p)?.0);
                check(progress, z as u64 + 1, nz).map_err(LabelError::from)?;
            }
            out
        }
        BlockLabelling::DistanceWatershed {
            sampling,
            min_distance,
            connectivity,
        } => distance_watershed(mask, sampling, min_distance, connectivity, progress)?,
        BlockLabelling::MarkerWatershed {
            sampling,
            connectivity,
        } => {
            let markers = markers.ok_or_else(|| {
                PostprocessError::Invalid("marker watershed needs a marker layer".into())
            })?;
            marker_watershed(mask, markers, sampling, connectivity, progress)?
        }
    };
    let sent = if send == (0..labels.len_of(Axis(0))) {
        labels
    } else {
        labels.slice(s![send, .., ..]).to_owned()
    };
    let max = sent.iter().copied().max().unwrap_or(0);
    Ok((sent, max))
}

/// Watershed of −distance inside `mask` from `markers` (the Postprocess panel's marker
/// watershed). Progress: 30 % distance, 70 % flooding.
pub(crate) fn marker_watershed(
    mask: ArrayView3<'_, u8>,
    markers: ArrayView3<'_, u32>,
    sampling: [f64; 3],
    connectivity: Connectivity3,
    progress: &mut dyn Progress,
) -> Result<Array3<u32>, PostprocessError> {
    if markers.dim() != mask.dim() {
        return Err(PostprocessError::Invalid(format!(
            "the marker layer is {:?} (z, y, x) but the map is {:?}",
            markers.dim(),
            mask.dim()
        )));
    }
    let mut dist = edt_3d(mask, sampling, &mut Phase::new(progress, 0, 300))
        .map_err(super::watershed::WatershedError::from)?;
    dist.mapv_inplace(|d| -d);
    let inside = mask.mapv(|m| m != 0);
    Ok(watershed_3d(
        dist.view(),
        markers,
        Some(inside.view()),
        connectivity,
        &mut Phase::new(progress, 300, 700),
    )?)
}

/// The labels one block sent back: `labels` holds the block's `send` slices.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledBlock {
    /// Where the block sits.
    pub block: Block,
    /// Its labels, `send.len() × height × width`.
    pub labels: Array3<u32>,
}

/// Checks that `blocks` own `0..depth` in order, each once, with labels of the right shape.
fn check_blocks(dim: (usize, usize, usize), blocks: &[LabelledBlock]) -> Result<(), LabelError> {
    let invalid = |reason: String| LabelError::InvalidParameter {
        name: "blocks",
        reason,
    };
    let mut next = 0;
    for (k, b) in blocks.iter().enumerate() {
        let Block { read, keep, send } = &b.block;
        if keep.start != next {
            return Err(invalid(format!(
                "block {k} starts at slice {} instead of {next}",
                keep.start
            )));
        }
        if !(read.start <= send.start
            && send.start <= keep.start
            && keep.start <= keep.end
            && keep.end <= send.end
            && send.end <= read.end
            && read.end <= dim.0)
        {
            return Err(invalid(format!(
                "block {k} has inconsistent ranges {:?}",
                b.block
            )));
        }
        if b.labels.dim() != (send.len(), dim.1, dim.2) {
            return Err(invalid(format!(
                "block {k} sent labels of shape {:?}, expected {:?}",
                b.labels.dim(),
                (send.len(), dim.1, dim.2)
            )));
        }
        next = keep.end;
    }
    if next != dim.0 {
        return Err(invalid(format!(
            "the blocks end at slice {next} of {}",
            dim.0
        )));
    }
    Ok(())
}

/// Union-find over label IDs whose root is always the smallest ID of its set.
struct MinUnion(Vec<u32>);

impl MinUnion {
    fn new(n: usize) -> Self {
        Self((0..=n as u32).collect())
    }

    fn find(&mut self, mut a: u32) -> u32 {
        while self.0[a as usize] != a {
            let up = self.0[self.0[a as usize] as usize];
            self.0[a as usize] = up;
            a = up;
        }
        a
    }

    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra < rb {
            self.0[rb as usize] = ra;
        } else if rb < ra {
            self.0[ra as usize] = rb;
        }
    }
}

/// One ID space for all blocks: each block's offset (its local IDs plus it are global IDs)
/// and a union-find over every global ID.
fn id_space(blocks: &[LabelledBlock]) -> Result<(Vec<u32>, MinUnion), LabelError> {
    let mut offsets = Vec::with_capacity(blocks.len());
    let mut total: u64 = 0;
    for b in blocks {
        offsets.push(total as u32);
        total += u64::from(b.labels.iter().copied().max().unwrap_or(0));
        if total >= u64::from(u32::MAX) {
            return Err(LabelError::TooManyComponents { max: u32::MAX - 1 });
        }
    }
    Ok((offsets, MinUnion::new(total as usize)))
}

/// The blocks' own slices written with their global IDs, the roots numbered `1..=N` in
/// raster order of their first voxel. Returns the volume and `N`.
fn write_roots(
    dim: (usize, usize, usize),
    blocks: &[LabelledBlock],
    offsets: &[u32],
    union: &mut MinUnion,
    progress: &mut dyn Progress,
) -> Result<(Array3<u32>, u32), LabelError> {
    // Every ID's root once, then two table lookups per voxel.
    let roots: Vec<u32> = (0..union.0.len() as u32).map(|id| union.find(id)).collect();
    let mut number = vec![0u32; roots.len()];
    let mut out = Array3::<u32>::zeros(dim);
    let mut next = 0u32;
    for (b, (block, &offset)) in blocks.iter().zip(offsets).enumerate() {
        let own = block.labels.slice(s![block.block.keep_in_send(), .., ..]);
        let table = &roots[offset as usize..];
        let mut dst = out.slice_mut(s![block.block.keep.clone(), .., ..]);
        for (d, &l) in dst.iter_mut().zip(own.iter()) {
            if l != 0 {
                let root = table[l as usize] as usize;
                if number[root] == 0 {
                    next += 1;
                    number[root] = next;
                }
                *d = number[root];
            }
        }
        check(progress, b as u64 + 1, blocks.len() as u64)?;
    }
    Ok((out, next))
}

/// Joins slabs labelled by [`connected_components_3d`] (with `params`) into the labels of the
/// whole of `input`, exactly as labelling `input` at once (module doc). Each block's labels
/// must be its whole slab (`Block::plain`); blocks own `0..depth` in order.
pub fn merge_component_slabs<T: LabelValue>(
    input: ArrayView3<'_, T>,
    params: &Components3Params,
    blocks: &[LabelledBlock],
    progress: &mut dyn Progress,
) -> Result<(Array3<u32>, u32), LabelError> {
    let dim = input.dim();
    check_blocks(dim, blocks)?;
    if let Some(k) = blocks.iter().position(|b| b.block.send != b.block.keep) {
        return Err(LabelError::InvalidParameter {
            name: "blocks",
            reason: format!("block {k} overlaps its neighbours; component slabs do not"),
        });
    }
    let (offsets, mut union) = id_space(blocks)?;
    let (ny, nx) = (dim.1 as isize, dim.2 as isize);
    let reach: &[(isize, isize)] = match params.connectivity {
        Connectivity3::C6 => &[(0, 0)],
        Connectivity3::C18 => &[(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)],
        Connectivity3::C26 => &[
            (-1, -1),
            (-1, 0),
            (-1, 1),
            (0, -1),
            (0, 0),
            (0, 1),
            (1, -1),
            (1, 0),
            (1, 1),
        ],
    };
    let same = |a: T, b: T| params.mode == InputMode::Binary || a == b;
    for k in 1..blocks.len() {
        let (lower, upper) = (&blocks[k - 1], &blocks[k]);
        if lower.block.keep.is_empty() || upper.block.keep.is_empty() {
            continue;
        }
        let seam = upper.block.keep.start;
        let below = lower
            .labels
            .index_axis(Axis(0), lower.labels.len_of(Axis(0)) - 1);
        let above = upper.labels.index_axis(Axis(0), 0);
        let (in_below, in_above) = (
            input.index_axis(Axis(0), seam - 1),
            input.index_axis(Axis(0), seam),
        );
        for y in 0..ny {
            for x in 0..nx {
                let u = above[[y as usize, x as usize]];
                if u == 0 {
                    continue;
                }
                let value = in_above[[y as usize, x as usize]];
                for &(dy, dx) in reach {
                    let (yy, xx) = (y + dy, x + dx);
                    if yy < 0 || xx < 0 || yy >= ny || xx >= nx {
                        continue;
                    }
                    let l = below[[yy as usize, xx as usize]];
                    if l != 0 && same(in_below[[yy as usize, xx as usize]], value) {
                        union.union(l + offsets[k - 1], u + offsets[k]);
                    }
                }
            }
        }
    }
    write_roots(dim, blocks, &offsets, &mut union, progress)
}

/// Joins watershed blocks planned by [`plan_blocks`] (module doc): in the slices two
/// neighbouring blocks both sent, a basin of one joins a basin of the other when their common
/// voxels are more than half of either one's voxels there. Labels are numbered `1..=N` in
/// raster order of their first voxel.
pub fn merge_basin_blocks(
    dim: (usize, usize, usize),
    blocks: &[LabelledBlock],
    progress: &mut dyn Progress,
) -> Result<(Array3<u32>, u32), LabelError> {
    check_blocks(dim, blocks)?;
    let (offsets, mut union) = id_space(blocks)?;
    for k in 1..blocks.len() {
        let (a, b) = (&blocks[k - 1], &blocks[k]);
        let both =
            a.block.send.start.max(b.block.send.start)..a.block.send.end.min(b.block.send.end);
        if both.is_empty() {
            continue;
        }
        let za = both.start - a.block.send.start..both.end - a.block.send.start;
        let zb = both.start - b.block.send.start..both.end - b.block.send.start;
        let la = a.labels.slice(s![za, .., ..]);
        let lb = b.labels.slice(s![zb, .., ..]);
        let mut common: HashMap<(u32, u32), u32> = HashMap::new();
        let mut size_a: HashMap<u32, u32> = HashMap::new();
        let mut size_b: HashMap<u32, u32> = HashMap::new();
        for (&x, &y) in la.iter().zip(lb.iter()) {
            if x != 0 {
                *size_a.entry(x).or_default() += 1;
            }
            if y != 0 {
                *size_b.entry(y).or_default() += 1;
            }
            if x != 0 && y != 0 {
                *common.entry((x, y)).or_default() += 1;
            }
        }
        let mut pairs: Vec<_> = common.into_iter().collect();
        pairs.sort_unstable();
        for ((x, y), n) in pairs {
            if 2 * n > size_a[&x] && 2 * n > size_b[&y] {
                union.union(x + offsets[k - 1], y + offsets[k]);
            }
        }
    }
    write_roots(dim, blocks, &offsets, &mut union, progress)
}

/// The blocks' own slices as they are (labels that mean the same in every block, such as
/// marker IDs or per-slice numbers).
pub fn assemble_blocks(
    dim: (usize, usize, usize),
    blocks: &[LabelledBlock],
) -> Result<Array3<u32>, LabelError> {
    check_blocks(dim, blocks)?;
    let mut out = Array3::<u32>::zeros(dim);
    for b in blocks {
        out.slice_mut(s![b.block.keep.clone(), .., ..])
            .assign(&b.labels.slice(s![b.block.keep_in_send(), .., ..]));
    }
    Ok(out)
}

/// Runs `how` block by block in this thread and joins the blocks, as workers running the
/// same blocks would: [`merge_component_slabs`] for 3D components, [`merge_basin_blocks`] for
/// a distance watershed, [`assemble_blocks`] otherwise. Returns the labels and the largest
/// label. Progress: 90 % blocks, 10 % merge.
pub fn label_in_blocks(
    how: &BlockLabelling,
    mask: ArrayView3<'_, u8>,
    markers: Option<ArrayView3<'_, u32>>,
    blocks: &[Block],
    progress: &mut dyn Progress,
) -> Result<(Array3<u32>, u32), PostprocessError> {
    let mut labelled = Vec::with_capacity(blocks.len());
    let n = blocks.len().max(1) as u64;
    for (k, block) in blocks.iter().enumerate() {
        let read = s![block.read.clone(), .., ..];
        let (labels, _) = label_block(
            how,
            mask.slice(read),
            markers.as_ref().map(|m| m.slice(read)),
            block.send_in_read(),
            &mut Phase::new(progress, 900 * k as u64 / n, 900 / n),
        )?;
        labelled.push(LabelledBlock {
            block: block.clone(),
            labels,
        });
    }
    join_blocks(how, mask, labelled, &mut Phase::new(progress, 900, 100))
}

/// The merge step of `how` over blocks labelled by [`label_block`]; see [`label_in_blocks`].
/// One block that holds the whole volume is the result as it is (the kernel's own numbering).
pub fn join_blocks(
    how: &BlockLabelling,
    mask: ArrayView3<'_, u8>,
    mut blocks: Vec<LabelledBlock>,
    progress: &mut dyn Progress,
) -> Result<(Array3<u32>, u32), PostprocessError> {
    let dim = mask.dim();
    if blocks.len() == 1 && blocks[0].block.send == (0..dim.0) && blocks[0].labels.dim() == dim {
        let labels = blocks.remove(0).labels;
        let max = labels.iter().copied().max().unwrap_or(0);
        return Ok((labels, max));
    }
    let blocks = &blocks[..];
    Ok(match *how {
        BlockLabelling::Components3 { connectivity } => {
            let p = Components3Params {
                connectivity,
                mode: InputMode::Binary,
            };
            merge_component_slabs(mask, &p, blocks, progress)?
        }
        BlockLabelling::DistanceWatershed { .. } => merge_basin_blocks(dim, blocks, progress)?,
        BlockLabelling::Components2 { .. } | BlockLabelling::MarkerWatershed { .. } => {
            let out = assemble_blocks(dim, blocks)?;
            let max = out.iter().copied().max().unwrap_or(0);
            (out, max)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    /// A deterministic speckled mask with long tubes across z (so components cross seams).
    fn speckle(dim: (usize, usize, usize), seed: u64) -> Array3<u8> {
        let mut state = seed;
        Array3::from_shape_fn(dim, |(z, y, x)| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = (state >> 33) % 100 < 30;
            let tube = (y % 7 == 3 && x % 5 == 1) || (y + z) % 11 == 0 && x % 3 == 0;
            u8::from(noise || tube)
        })
    }

    #[test]
    fn plans_cover_the_volume() {
        assert_eq!(even_ranges(10, 3), vec![0..3, 3..6, 6..10]);
        assert_eq!(even_ranges(2, 5), vec![0..1, 1..2]);
        assert_eq!(even_ranges(0, 4), vec![0..0]);
        let plan = plan_blocks(250, BlockParams::default());
        assert_eq!(plan.len(), 4);
        assert_eq!(plan[0].keep, 0..62);
        assert_eq!(plan[0].read, 0..86);
        assert_eq!(plan[0].send, 0..66);
        assert_eq!(plan[1].read, 38..149);
        assert_eq!(plan[3].keep.end, 250);
        assert_eq!(plan[3].send, 183..250);
        for b in &plan {
            assert!(b.read.start <= b.send.start && b.send.end <= b.read.end);
        }
        assert!(BlockParams { depth: 0, halo: 2 }.validate().is_err());
        assert!(BlockParams { depth: 4, halo: 0 }.validate().is_err());
    }

    #[test]
    fn component_slabs_merge_to_the_whole_volume_result() {
        let mask = speckle((23, 19, 17), 7);
        for connectivity in [Connectivity3::C6, Connectivity3::C18, Connectivity3::C26] {
            let p = Components3Params {
                connectivity,
                mode: InputMode::Binary,
            };
            let whole = connected_components_3d(mask.view(), &p, &mut NoProgress).expect("whole");
            for parts in [1, 2, 3, 7, 23] {
                let how = BlockLabelling::Components3 { connectivity };
                let blocks = plain_blocks(23, parts);
                let merged = label_in_blocks(&how, mask.view(), None, &blocks, &mut NoProgress)
                    .expect("blocks");
                assert_eq!(merged, whole, "{connectivity:?}, {parts} slabs");
            }
        }
    }

    #[test]
    fn multi_label_slabs_join_only_equal_values() {
        let input = Array3::from_shape_fn((6, 5, 5), |(z, y, x)| ((z / 2 + y + x) % 3) as u16);
        let p = Components3Params::default();
        let whole = connected_components_3d(input.view(), &p, &mut NoProgress).expect("whole");
        let blocks: Vec<LabelledBlock> = plain_blocks(6, 3)
            .into_iter()
            .map(|block| LabelledBlock {
                labels: connected_components_3d(
                    input.slice(s![block.keep.clone(), .., ..]),
                    &p,
                    &mut NoProgress,
                )
                .expect("slab")
                .0,
                block,
            })
            .collect();
        let merged =
            merge_component_slabs(input.view(), &p, &blocks, &mut NoProgress).expect("merge");
        assert_eq!(merged, whole);
    }

    #[test]
    fn bad_blocks_are_refused() {
        let mask = speckle((6, 4, 4), 1);
        let p = Components3Params {
            connectivity: Connectivity3::C6,
            mode: InputMode::Binary,
        };
        let block = |keep: Range<usize>, n: usize| LabelledBlock {
            block: Block::plain(keep),
            labels: Array3::zeros((n, 4, 4)),
        };
        let gap = [block(0..2, 2), block(3..6, 3)];
        let e = merge_component_slabs(mask.view(), &p, &gap, &mut NoProgress).unwrap_err();
        assert!(e.to_string().contains("starts at slice 3"), "{e}");
        let short = [block(0..3, 3)];
        assert!(merge_component_slabs(mask.view(), &p, &short, &mut NoProgress).is_err());
        let wrong_shape = [block(0..6, 5)];
        assert!(merge_basin_blocks((6, 4, 4), &wrong_shape, &mut NoProgress).is_err());
        assert!(label_block(
            &BlockLabelling::Components3 {
                connectivity: Connectivity3::C6
            },
            mask.view(),
            None,
            2..9,
            &mut NoProgress
        )
        .is_err());
    }

    #[test]
    fn per_slice_components_and_markers_assemble_unchanged() {
        let mask = speckle((9, 8, 8), 3);
        let how = BlockLabelling::Components2 {
            connectivity: Connectivity2::C4,
        };
        let whole = label_in_blocks(
            &how,
            mask.view(),
            None,
            &plain_blocks(9, 1),
            &mut NoProgress,
        )
        .expect("whole");
        let parts = label_in_blocks(
            &how,
            mask.view(),
            None,
            &plain_blocks(9, 4),
            &mut NoProgress,
        )
        .expect("parts");
        assert_eq!(parts, whole);
        // Two cubes joined by a bar along z, a marker in each: the blocks agree with a whole run
        // when they read the whole bar.
        let mut mask = Array3::<u8>::zeros((20, 5, 5));
        mask.slice_mut(s![1..4, 1..4, 1..4]).fill(1);
        mask.slice_mut(s![16..19, 1..4, 1..4]).fill(1);
        mask.slice_mut(s![4..16, 2, 2]).fill(1);
        let mut markers = Array3::<u32>::zeros(mask.dim());
        markers[[2, 2, 2]] = 5;
        markers[[17, 2, 2]] = 9;
        let how = BlockLabelling::MarkerWatershed {
            sampling: [1.0; 3],
            connectivity: Connectivity3::C6,
        };
        let whole = marker_watershed(
            mask.view(),
            markers.view(),
            [1.0; 3],
            Connectivity3::C6,
            &mut NoProgress,
        )
        .expect("whole");
        let plan = plan_blocks(20, BlockParams { depth: 7, halo: 20 });
        let (blocked, max) = label_in_blocks(
            &how,
            mask.view(),
            Some(markers.view()),
            &plan,
            &mut NoProgress,
        )
        .expect("blocks");
        assert_eq!(blocked, whole);
        assert_eq!(max, 9);
    }

    #[test]
    fn distance_watershed_blocks_join_basins_across_seams() {
        // Two balls touching through a neck, cut right through the first ball: the blocks
        // find the same two objects as the whole volume.
        let mut mask = Array3::<u8>::zeros((40, 24, 24));
        for ((z, y, x), v) in mask.indexed_iter_mut() {
            let d2 = |cz: f64, cy: f64| {
                (z as f64 - cz).powi(2) + (y as f64 - cy).powi(2) + (x as f64 - 12.0).powi(2)
            };
            *v = u8::from(d2(12.0, 12.0) <= 81.0 || d2(28.0, 12.0) <= 64.0);
        }
        let how = BlockLabelling::DistanceWatershed {
            sampling: [1.0; 3],
            min_distance: 5,
            connectivity: Connectivity3::C6,
        };
        let whole =
            distance_watershed(mask.view(), [1.0; 3], 5, Connectivity3::C6, &mut NoProgress)
                .expect("whole");
        let plan = plan_blocks(
            40,
            BlockParams {
                depth: 10,
                halo: 12,
            },
        );
        assert_eq!(plan.len(), 4);
        let (blocked, n) =
            label_in_blocks(&how, mask.view(), None, &plan, &mut NoProgress).expect("blocks");
        assert_eq!(n, 2, "one object per ball");
        // The same partition (IDs may differ): every pair of voxels agrees.
        let mut map = HashMap::new();
        for (&w, &b) in whole.iter().zip(blocked.iter()) {
            assert_eq!(w == 0, b == 0);
            if w != 0 {
                assert_eq!(*map.entry(w).or_insert(b), b, "basin {w} split");
            }
        }
        assert_eq!(map.len(), 2);
    }
}
