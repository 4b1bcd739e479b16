//! The Postprocess panel's run cut into blocks for the helper workers: the map is thresholded
//! here, each block of the mask is labelled by a helper (or here, when there are none or one
//! is lost) with [`label_block`], and the blocks are joined by the merge step of
//! `emstudio_core::labels::blocks`, then linked, size-filtered and numbered as
//! [`emstudio_core::labels::postprocess::postprocess`] does.
//!
//! A watershed is cut into blocks when the user asks ([`PostprocessParams::blocks`]), always
//! into the same blocks whatever the number of helpers, so the labels are those of
//! `emstudio label --block-depth`. Connected components (3D, or per slice) stay in one block in
//! the data worker: at about 25 ms per million voxels in Chromium they cost less than sending
//! their slabs out and merging them back (measured: 379 ms alone, 478 ms with 2 helpers on
//! flyem-medulla-fib 250³; the same bar as a filter's, `POOL_MIN_MS_PER_MEGAVOXEL`). Their
//! exact slab merge (`merge_component_slabs`) waits for volumes that do not fit in one worker.

use crate::compute::ComputeError;
use crate::workspace::Workspace;
use emstudio_core::labels::blocks::{
    join_blocks, label_block, plain_blocks, plan_blocks, Block, BlockLabelling, LabelledBlock,
};
use emstudio_core::labels::postprocess::{
    check_markers, finish_postprocess, threshold_mask, Mask, PostprocessError, PostprocessParams,
    ThresholdChoice,
};
use emstudio_core::progress::{Phase, Progress};
use emstudio_core::{AnyVolume, VoxelSize};
use emstudio_protocol::LayerId;
use ndarray::{s, Array3, ArrayView3};

/// One block as a helper receives it.
pub struct BlockInput {
    /// The block's `read` slices of the mask, `depth × height × width`, 1 = foreground.
    pub mask: Vec<u8>,
    /// The same slices of the marker layer, for a marker watershed.
    pub markers: Option<Vec<u32>>,
    /// Slices in `mask`.
    pub depth: usize,
    /// The slices to send back, counted within `mask`.
    pub send: std::ops::Range<usize>,
}

/// A postprocessing run in blocks.
pub struct LabelJob {
    params: PostprocessParams,
    how: BlockLabelling,
    mask: Mask,
    markers: Option<Array3<u32>>,
    blocks: Vec<Block>,
    done: Vec<Option<LabelledBlock>>,
    next: usize,
    source: String,
    voxel_size: VoxelSize,
}

impl LabelJob {
    /// Thresholds `source` and plans its blocks: the user's blocks for a watershed that asks
    /// for them, else the whole volume as one block.
    pub fn new(
        ws: &Workspace,
        source: LayerId,
        markers: Option<LayerId>,
        params: &PostprocessParams,
    ) -> Result<Self, ComputeError> {
        let layer = ws.layer(source)?;
        let name = layer.info.name.clone();
        let shape = layer.info.shape;
        let map = layer.volume.to_f32_array(0..shape.z).map_err(|_| {
            format!(
                "{name}: postprocessing works on grayscale stacks, this one has {} channels",
                layer.info.channels
            )
        })?;
        let markers = match markers {
            Some(m) => {
                let ml = ws.layer(m)?;
                if ml.info.shape != shape {
                    return Err(ComputeError::Failed(format!(
                        "{}: the marker layer is {} but {name} is {shape}",
                        ml.info.name, ml.info.shape
                    )));
                }
                Some(
                    ml.volume
                        .to_label_array()
                        .map_err(|e| format!("{}: {e}", ml.info.name))?,
                )
            }
            None => None,
        };
        check_markers(
            &params.method,
            markers.as_ref().map(Array3::view),
            map.dim(),
        )
        .map_err(|e| failed(&name, e))?;
        let mask = threshold_mask(map.view(), params).map_err(|e| failed(&name, e))?;
        let voxel_size = layer.volume.voxel_size();
        let how = params.method.block_labelling(voxel_size);
        let blocks = match (params.method.is_watershed(), params.blocks) {
            (true, Some(b)) => {
                b.validate().map_err(|e| failed(&name, e.into()))?;
                plan_blocks(shape.z, b)
            }
            _ => plain_blocks(shape.z, 1),
        };
        Ok(Self {
            params: *params,
            how,
            markers: markers.filter(|_| how.needs_markers()),
            mask,
            done: vec![None; blocks.len()],
            blocks,
            next: 0,
            source: name,
            voxel_size,
        })
    }

    /// Blocks in the plan.
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Hands out the next block to label here (see [`LabelJob::run_here`]).
    pub fn take_next(&mut self) -> Option<usize> {
        (self.next < self.blocks.len()).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    /// The layer's name, for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Rows and columns of a slice.
    pub fn plane(&self) -> (usize, usize) {
        let (_, ny, nx) = self.mask.mask.dim();
        (ny, nx)
    }

    /// What each block computes (sent with each helper job).
    pub fn labelling(&self) -> BlockLabelling {
        self.how
    }

    /// Voxels a block reads, for the progress bar's weights.
    pub fn weight(&self, index: usize) -> f64 {
        let (_, ny, nx) = self.mask.mask.dim();
        (self.blocks[index].read.len() * ny * nx) as f64
    }

    /// The next block to send out, or `None` when all have been handed out.
    pub fn next_block(&mut self) -> Option<(usize, BlockInput)> {
        let index = self.next;
        let block = self.blocks.get(index)?.clone();
        self.next += 1;
        let read = s![block.read.clone(), .., ..];
        let contiguous = |a: ArrayView3<'_, u8>| a.iter().copied().collect::<Vec<u8>>();
        Some((
            index,
            BlockInput {
                mask: contiguous(self.mask.mask.slice(read)),
                markers: self
                    .markers
                    .as_ref()
                    .map(|m| m.slice(read).iter().copied().collect()),
                depth: block.read.len(),
                send: block.send_in_read(),
            },
        ))
    }

    /// Labels block `index` here (no helpers, or one was lost).
    pub fn run_here(
        &mut self,
        index: usize,
        progress: &mut dyn Progress,
    ) -> Result<(), ComputeError> {
        let block = self.blocks[index].clone();
        let read = s![block.read.clone(), .., ..];
        let (labels, _) = label_block(
            &self.how,
            self.mask.mask.slice(read),
            self.markers.as_ref().map(|m| m.slice(read)),
            block.send_in_read(),
            progress,
        )
        .map_err(|e| failed(&self.source, e))?;
        self.done[index] = Some(LabelledBlock { block, labels });
        if self.next <= index {
            self.next = index + 1;
        }
        Ok(())
    }

    /// Stores the labels a helper sent for block `index` (its `send` slices).
    pub fn store(&mut self, index: usize, labels: Vec<u32>) -> Result<(), ComputeError> {
        let block = self.blocks[index].clone();
        let (_, ny, nx) = self.mask.mask.dim();
        let labels = Array3::from_shape_vec((block.send.len(), ny, nx), labels).map_err(|_| {
            format!(
                "{}: a helper sent labels of the wrong size for slices {}..{}",
                self.source, block.send.start, block.send.end
            )
        })?;
        self.done[index] = Some(LabelledBlock { block, labels });
        Ok(())
    }

    /// Indices of the blocks handed out that have no labels yet.
    pub fn missing(&self) -> Vec<usize> {
        (0..self.next).filter(|&i| self.done[i].is_none()).collect()
    }

    /// Joins the blocks, links, filters and numbers the objects; returns the label layer's
    /// volume and a one-line summary.
    pub fn finish(
        self,
        helpers: usize,
        progress: &mut dyn Progress,
    ) -> Result<(AnyVolume, String), ComputeError> {
        let source = &self.source;
        let blocks: Vec<LabelledBlock> = self
            .done
            .into_iter()
            .map(|b| b.ok_or_else(|| format!("{source}: a block was never labelled")))
            .collect::<Result<_, _>>()?;
        let (labels, _) = join_blocks(
            &self.how,
            self.mask.mask.view(),
            blocks,
            &mut Phase::new(progress, 0, 300),
        )
        .map_err(|e| failed(source, e))?;
        let planned = self.blocks.len();
        let out = finish_postprocess(
            labels,
            self.mask,
            &self.params,
            &mut Phase::new(progress, 300, 700),
        )
        .map_err(|e| failed(source, e))?;
        let threshold = match self.params.threshold {
            ThresholdChoice::Nonzero => "nonzero voxels".to_string(),
            ThresholdChoice::Otsu if out.threshold.fract() == 0.0 => {
                format!("Otsu threshold {:.0}", out.threshold)
            }
            ThresholdChoice::Otsu => format!("Otsu threshold {:.4}", out.threshold),
            ThresholdChoice::Fixed(t) => format!("threshold {t}"),
        };
        let mut summary = format!(
            "{} objects · {} · {} foreground voxels",
            out.objects, threshold, out.foreground_voxels
        );
        if let (true, Some(b)) = (self.params.method.is_watershed(), self.params.blocks) {
            summary += &format!(" · {planned} blocks of ≤ {} slices", b.depth);
        }
        if helpers > 0 && planned > 1 {
            summary += &format!(" · {}", crate::pool::helpers_phrase(helpers));
        }
        let volume = AnyVolume::from_labels(out.labels.view(), self.voxel_size)
            .map_err(|e| ComputeError::Failed(e.to_string()))?;
        Ok((volume, summary))
    }
}

/// A postprocessing error as the user sees it, naming the layer.
fn failed(source: &str, e: PostprocessError) -> ComputeError {
    match e {
        e if e.is_cancelled() => ComputeError::Cancelled,
        PostprocessError::Invalid(m) => ComputeError::Failed(format!("{source}: {m}")),
        e => ComputeError::Failed(format!("{source}: {e}")),
    }
}

/// Labels a block as a helper does, from the bytes it was sent: the labels of its `send`
/// slices, in z, y, x order.
pub fn label_job(
    how: &BlockLabelling,
    input: BlockInput,
    height: usize,
    width: usize,
    progress: &mut dyn Progress,
) -> Result<Vec<u32>, String> {
    let dim = (input.depth, height, width);
    let mask = Array3::from_shape_vec(dim, input.mask)
        .map_err(|_| format!("a mask block of the wrong size for {dim:?}"))?;
    let markers = input
        .markers
        .map(|m| Array3::from_shape_vec(dim, m))
        .transpose()
        .map_err(|_| format!("a marker block of the wrong size for {dim:?}"))?;
    let (labels, _) = label_block(
        how,
        mask.view(),
        markers.as_ref().map(Array3::view),
        input.send,
        progress,
    )
    .map_err(|e| match e {
        e if e.is_cancelled() => "cancelled".to_string(),
        e => e.to_string(),
    })?;
    Ok(labels.into_raw_vec_and_offset().0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::postprocess_layer;
    use emstudio_core::labels::blocks::BlockParams;
    use emstudio_core::labels::postprocess::LabelMethod;
    use emstudio_core::labels::watershed::DistanceWatershedParams;
    use emstudio_core::neighborhood::{Connectivity2, Connectivity3};
    use emstudio_core::progress::NoProgress;
    use emstudio_core::Volume;
    use emstudio_protocol::LayerKind;

    /// Bright tubes along z and blobs in a dim map, 30 slices deep.
    fn map(ws: &mut Workspace) -> LayerId {
        let a = Array3::from_shape_fn((30, 24, 26), |(z, y, x)| {
            let tube = (y % 8 < 4 && x % 9 < 5) || (x + z) % 13 < 3 && y > 10;
            let ball =
                (z as f32 - 15.0).powi(2) + (y as f32 - 12.0).powi(2) + (x as f32 - 13.0).powi(2)
                    < 40.0;
            if tube || ball {
                0.8f32
            } else {
                0.2
            }
        });
        let v = Volume::from_array(a.view()).expect("volume");
        ws.add("map", LayerKind::Image, v.into()).expect("add").id
    }

    /// Runs a job as the browser does with helpers: every block through the bytes a helper
    /// gets and sends back.
    fn through_helpers(
        ws: &Workspace,
        source: LayerId,
        params: &PostprocessParams,
        helpers: usize,
    ) -> (AnyVolume, String) {
        let mut job = LabelJob::new(ws, source, None, params).expect("job");
        let how = job.labelling();
        let (_, ny, nx) = job.mask.mask.dim();
        while let Some((index, input)) = job.next_block() {
            let labels = label_job(&how, input, ny, nx, &mut NoProgress).expect("helper");
            job.store(index, labels).expect("store");
        }
        assert!(job.missing().is_empty());
        job.finish(helpers, &mut NoProgress).expect("finish")
    }

    #[test]
    fn helpers_give_the_labels_of_one_thread() {
        let mut ws = Workspace::default();
        let source = map(&mut ws);
        let methods = [
            (
                LabelMethod::Components {
                    connectivity: Connectivity3::C26,
                },
                None,
            ),
            (
                LabelMethod::Components {
                    connectivity: Connectivity3::C6,
                },
                None,
            ),
            (
                LabelMethod::SlicesLinked {
                    connectivity: Connectivity2::C4,
                    min_overlap: 0.3,
                },
                None,
            ),
            (
                LabelMethod::DistanceWatershed(DistanceWatershedParams {
                    min_distance: 3,
                    connectivity: Connectivity3::C6,
                    use_voxel_size: false,
                }),
                Some(BlockParams { depth: 8, halo: 5 }),
            ),
        ];
        for (method, blocks) in methods {
            let params = PostprocessParams {
                method,
                min_size: 3,
                blocks,
                ..PostprocessParams::default()
            };
            let (here, summary) =
                postprocess_layer(&ws, source, None, &params, &mut NoProgress).expect("here");
            for helpers in [1, 3] {
                let (pooled, pooled_summary) = through_helpers(&ws, source, &params, helpers);
                assert_eq!(pooled, here, "{method:?} with {helpers} helpers");
                // Only a watershed in blocks goes to the helpers.
                assert_eq!(
                    pooled_summary.contains("helper worker"),
                    blocks.is_some(),
                    "{pooled_summary}"
                );
            }
            if blocks.is_some() {
                assert!(summary.contains("4 blocks of ≤ 8 slices"), "{summary}");
            }
        }
    }

    #[test]
    fn bad_blocks_and_markers_are_named() {
        let mut ws = Workspace::default();
        let source = map(&mut ws);
        let params = PostprocessParams {
            method: LabelMethod::MarkerWatershed {
                connectivity: Connectivity3::C6,
            },
            ..PostprocessParams::default()
        };
        let e = LabelJob::new(&ws, source, None, &params)
            .err()
            .expect("no markers");
        assert_eq!(
            e,
            ComputeError::Failed("map: marker watershed needs a marker layer".into())
        );
        let params = PostprocessParams {
            method: LabelMethod::DistanceWatershed(DistanceWatershedParams::default()),
            blocks: Some(BlockParams { depth: 8, halo: 0 }),
            ..PostprocessParams::default()
        };
        let e = LabelJob::new(&ws, source, None, &params)
            .err()
            .expect("no overlap");
        assert!(
            matches!(&e, ComputeError::Failed(m) if m.starts_with("map: ") && m.contains("overlap")),
            "{e:?}"
        );
        let mut job = LabelJob::new(&ws, source, None, &PostprocessParams::default()).expect("job");
        let (index, _) = job.next_block().expect("a block");
        let e = job.store(index, vec![0; 5]).expect_err("wrong size");
        assert!(
            matches!(&e, ComputeError::Failed(m) if m.contains("wrong size")),
            "{e:?}"
        );
        assert_eq!(job.missing(), vec![0]);
        assert!(job.finish(2, &mut NoProgress).is_err());
    }
}
