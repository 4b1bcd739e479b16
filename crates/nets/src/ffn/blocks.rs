//! FFN segmentation of a stack in blocks along z, so that a volume whose inference canvas
//! would not fit in memory is segmented one block at a time, and a run that stopped goes on
//! from the blocks it finished.
//!
//! The blocks are the watershed blocks of `emstudio_core::labels::blocks`: each owns a run of
//! slices, reads `halo` more on each side, and sends back its own slices and
//! [`SEAM`](emstudio_core::labels::blocks::SEAM) slices of each neighbour's. A block is
//! segmented on its own (seeds from [`policy_peaks`] of its slices, one [`Canvas`] over
//! them: image, mask and segmentation as 12 bytes a voxel, for that block only). Objects that
//! cross a seam are found from seeds on both sides; the merge step
//! ([`merge_basin_blocks`]) gives them one ID where, in the slices both blocks sent, most
//! voxels of either object are voxels of the other (ID reconciliation by mutual majority
//! overlap, as google/ffn's subvolume results are reconciled by their overlap). The halo
//! keeps the compared slices away from where a block's FOV cannot reach (half a FOV from the
//! edge of what it read): by default the FOV's depth ([`default_halo`]).
//!
//! How close blocks stay to one whole-volume run is measured in this module's tests (an
//! ideal predictor, tubes across every seam) and on real data in BENCHMARKS.md.

use super::infer::{Canvas, FfnInferError, FfnInferOptions, FovPredictor};
use super::net::FfnConfig;
use super::seeds::policy_peaks;
use crate::model::Normalization;
use emstudio_core::labels::blocks::{
    merge_basin_blocks, plan_blocks, Block, BlockParams, LabelledBlock, SEAM,
};
use emstudio_core::progress::{Phase, Progress};
use ndarray::{s, Array3, ArrayView3};

/// Slices a block reads beyond its own on each side unless told otherwise: the FOV's depth,
/// and at least the seam plus half a FOV plus one move, so that every slice the merge compares
/// can be the centre of a FOV.
pub fn default_halo(network: &FfnConfig) -> usize {
    let (fov_z, delta_z) = (network.fov[2], network.deltas[2]);
    fov_z.max(SEAM + fov_z / 2 + delta_z)
}

/// The blocks of a volume `depth` slices deep: blocks of at most `block_depth` slices, each
/// reading `halo` more on each side.
pub fn plan(depth: usize, block_depth: usize, halo: usize) -> Vec<Block> {
    plan_blocks(
        depth,
        BlockParams {
            depth: block_depth.max(1),
            halo: halo.max(1),
        },
    )
}

/// What segmenting one block found.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentedBlock {
    /// The block and its labels (its `send` slices; IDs from 1 within the block).
    pub labelled: LabelledBlock,
    /// Seeds tried.
    pub seeds: usize,
}

/// Segments one block: `image` holds the block's `read` slices as unit floats (`[0, 1]`), in
/// the volume's order. Seeds come from [`policy_peaks`] of the normalised slices.
pub fn segment_block<P: FovPredictor>(
    predictor: P,
    network: &FfnConfig,
    normalization: Normalization,
    image: ArrayView3<'_, f32>,
    block: &Block,
    options: &FfnInferOptions,
    progress: &mut dyn Progress,
) -> Result<SegmentedBlock, FfnInferError> {
    let mut canvas = Canvas::new(predictor, network, normalization, image, options.clone())?;
    let seeds = policy_peaks(canvas.image());
    canvas.segment_all(&seeds, progress)?;
    let labels = canvas
        .labels()
        .slice(s![block.send_in_read(), .., ..])
        .to_owned();
    Ok(SegmentedBlock {
        labelled: LabelledBlock {
            block: block.clone(),
            labels,
        },
        seeds: seeds.len(),
    })
}

/// Joins the segmented blocks of a volume of shape `dim` (module doc). Returns the labels and
/// the number of objects.
pub fn join(
    dim: (usize, usize, usize),
    blocks: &[LabelledBlock],
    progress: &mut dyn Progress,
) -> Result<(Array3<u32>, u32), FfnInferError> {
    merge_basin_blocks(dim, blocks, progress).map_err(|e| FfnInferError::Blocks(e.to_string()))
}

/// Segments a whole volume block by block in this thread and joins the blocks (what
/// `emstudio ffn infer --block-depth` does without its checkpoint files). `predictor` makes
/// one predictor per block. Progress: 95 % blocks, 5 % merge.
pub fn segment_in_blocks<P: FovPredictor>(
    mut predictor: impl FnMut() -> P,
    network: &FfnConfig,
    normalization: Normalization,
    image: ArrayView3<'_, f32>,
    blocks: &[Block],
    options: &FfnInferOptions,
    progress: &mut dyn Progress,
) -> Result<(Array3<u32>, u32), FfnInferError> {
    let n = blocks.len().max(1) as u64;
    let mut done = Vec::with_capacity(blocks.len());
    for (k, block) in blocks.iter().enumerate() {
        let segmented = segment_block(
            predictor(),
            network,
            normalization,
            image.slice(s![block.read.clone(), .., ..]),
            block,
            options,
            &mut Phase::new(progress, 950 * k as u64 / n, 950 / n),
        )?;
        done.push(segmented.labelled);
    }
    join(image.dim(), &done, &mut Phase::new(progress, 950, 50))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffn::infer::tests::{network, Oracle};
    use emstudio_core::labels::blocks::assemble_blocks;
    use emstudio_core::progress::NoProgress;

    /// Four bright tubes along z through 60 slices (so every seam cuts each of them), one of
    /// them bending in y half way, and a short blob, on a dark background.
    fn tubes() -> Array3<f32> {
        Array3::from_shape_fn((60, 40, 40), |(z, y, x)| {
            let tube = |cy: usize, cx: usize| y.abs_diff(cy) <= 3 && x.abs_diff(cx) <= 3;
            let bent = if z < 30 { tube(10, 30) } else { tube(13, 30) };
            let blob = (20..27).contains(&z) && tube(30, 30);
            f32::from(u8::from(tube(10, 10) || tube(30, 10) || bent || blob))
        })
    }

    fn norm() -> Normalization {
        Normalization {
            mean: 0.0,
            std: 1.0,
        }
    }

    fn options() -> FfnInferOptions {
        FfnInferOptions {
            min_segment_size: 50,
            ..FfnInferOptions::default()
        }
    }

    /// One canvas over the whole volume, as without blocks.
    fn whole_run(image: &Array3<f32>) -> Array3<u32> {
        let mut canvas =
            Canvas::new(Oracle, &network(), norm(), image.view(), options()).expect("canvas");
        let seeds = policy_peaks(canvas.image());
        canvas.segment_all(&seeds, &mut NoProgress).expect("whole");
        canvas.labels()
    }

    /// The number of distinct non-zero IDs under each object of `image` (tube or blob).
    fn ids_per_object(labels: &Array3<u32>) -> Vec<usize> {
        [(10, 10), (30, 10), (10, 30), (30, 30)]
            .iter()
            .map(|&(y, x)| {
                let mut ids: Vec<u32> = (0..labels.dim().0)
                    .map(|z| labels[(z, y, x)])
                    .filter(|&v| v != 0)
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                ids.len()
            })
            .collect()
    }

    #[test]
    fn blocks_give_each_tube_one_id_as_the_whole_volume_does() {
        let image = tubes();
        let whole = whole_run(&image);
        assert_eq!(ids_per_object(&whole), vec![1, 1, 1, 1]);
        let halo = default_halo(&network());
        assert_eq!(halo, 11);
        let blocks = plan(60, 16, halo);
        assert_eq!(blocks.len(), 4);
        let (labels, objects) = segment_in_blocks(
            || Oracle,
            &network(),
            norm(),
            image.view(),
            &blocks,
            &options(),
            &mut NoProgress,
        )
        .expect("blocks");
        assert_eq!(objects, 4, "four objects, as in the whole volume");
        assert_eq!(ids_per_object(&labels), vec![1, 1, 1, 1]);
        // Each whole-volume object is one blocked object, and away from the volume's first
        // and last slices (where how far a fill reaches depends on where its seed's walk lands)
        // the same voxels are objects, at the seams too.
        let mut pairs = std::collections::HashSet::new();
        for (((z, y, x), &a), &b) in whole.indexed_iter().zip(labels.iter()) {
            if (9..51).contains(&z) {
                assert_eq!(a == 0, b == 0, "at {:?}: {a} {b}", (z, y, x));
            }
            if a != 0 && b != 0 {
                pairs.insert((a, b));
            }
        }
        assert_eq!(pairs.len(), 4);

        // Without the merge step every seam splits the tubes: the step is what joins them.
        let mut done = Vec::new();
        for block in &blocks {
            let b = segment_block(
                Oracle,
                &network(),
                norm(),
                image.slice(s![block.read.clone(), .., ..]),
                block,
                &options(),
                &mut NoProgress,
            )
            .expect("block");
            assert!(b.seeds > 0);
            // Each block's own IDs, told apart as the merge step tells them apart.
            let mut labelled = b.labelled;
            let offset = 100 * done.len() as u32;
            labelled
                .labels
                .mapv_inplace(|v| if v == 0 { 0 } else { v + offset });
            done.push(labelled);
        }
        let unjoined = assemble_blocks(image.dim(), &done).expect("assemble");
        assert!(ids_per_object(&unjoined).iter().take(3).all(|&n| n > 1));
    }

    #[test]
    fn one_block_over_the_whole_volume_is_the_whole_volume_run() {
        let image = tubes();
        let blocks = plan(60, 60, default_halo(&network()));
        assert_eq!(blocks.len(), 1);
        let (labels, objects) = segment_in_blocks(
            || Oracle,
            &network(),
            norm(),
            image.view(),
            &blocks,
            &options(),
            &mut NoProgress,
        )
        .expect("one block");
        assert_eq!(objects, 4);
        assert_eq!(labels, whole_run(&image));
    }
}
