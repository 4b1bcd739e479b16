//! Flood-filling networks in the network worker: the Edit panel's FFN fill, one object grown
//! from a clicked voxel in a box the data worker cuts around the click (`ToNets::FfnFill`,
//! [`FfnFillJob`]), the segmentation of a whole box from `PolicyPeaks` seeds
//! (`ToNets::FfnSegment`, [`FfnSegmentJob`]), google/ffn's inference, and training on a box
//! with dense labels (`ToNets::FfnTrain`, [`FfnTrainJob`], one awaited step at a time).
//!
//! Platform-free: both drive `emstudio_nets::ffn::infer::Canvas` from outside —
//! [`FfnFillJob::next_fov`] gives the next field of view, [`FfnFillJob::step_async`] runs it
//! (reads awaited, so it runs on WebGPU in the browser) and queues the moves it allows — so
//! the browser loop yields between steps for progress and cancel. [`FfnFillJob::run`] is the
//! synchronous loop for native callers and tests. A fill's result is the object's mask over the
//! box: every voxel at or above the segment threshold (0.6), whatever label it has now, so
//! a fill can extend a segment or propose a split; the data worker keeps the part connected
//! to the click.

use emstudio_core::labels::blocks::{Block, LabelledBlock};
use emstudio_nets::ffn::blocks;
use emstudio_nets::ffn::file::{FfnHeader, FfnModelFile};
use emstudio_nets::ffn::infer::{
    predict_fov_async, Canvas, DrivenFromOutside, FfnInferOptions, FillWalk, FovInput,
    FovPredictor, NetPredictor,
};
use emstudio_nets::ffn::net::ConvStack3d;
use emstudio_nets::ffn::train::{FfnStepReport, FfnTrainConfig, FfnTrainer, FfnVolume};
use emstudio_nets::Device;
use emstudio_protocol::FfnTrainPreview;
use ndarray::Array3;

/// The most fields of view a training run's live fill runs (about 0.8 s of the light preset
/// in the browser's CPU worker: a fill every few seconds costs the run little).
pub const LIVE_FILL_FOVS: usize = 16;
/// A live fill moves where the object is this probable: the Edit panel's FFN fill default
/// (google/ffn's 0.9 fills a third as much with a young network).
pub const LIVE_FILL_MOVE: f64 = 0.5;

/// One field of view through the network with a synchronous read (CPU only).
fn predict_sync(
    net: &ConvStack3d,
    input: FovInput,
    fov: [usize; 3],
    device: &Device,
) -> Result<Vec<f32>, emstudio_nets::ffn::infer::FfnInferError> {
    NetPredictor {
        net,
        device: device.clone(),
    }
    .predict(input.image, input.seed, fov)
}

/// What a fill found.
#[derive(Clone, Debug, PartialEq)]
pub struct FfnFillResult {
    /// Over the box, raster order: 1 = the object.
    pub mask: Vec<u8>,
    /// FOV positions the network ran.
    pub steps: u32,
    /// The object probability at the seed at the end.
    pub seed_probability: f32,
    /// The seed held (at least the move threshold): google/ffn keeps such an object.
    pub kept: bool,
}

/// One fill in progress.
pub struct FfnFillJob {
    net: ConvStack3d,
    canvas: Canvas<DrivenFromOutside>,
    walk: FillWalk,
    seed: [usize; 3],
}

impl FfnFillJob {
    /// Loads the FFN `model` onto `device` and starts a fill from `seed` in `image` (the
    /// box, scaled to [0, 1], `z, y, x`), running at most `max_steps` FOVs, moving where the
    /// object is at least `move_threshold` probable (google/ffn: 0.9).
    pub fn new(
        model: &[u8],
        device: &Device,
        image: Array3<f32>,
        seed: [usize; 3],
        max_steps: usize,
        move_threshold: f64,
    ) -> Result<Self, String> {
        let file = FfnModelFile::from_bytes(model).map_err(|e| format!("FFN model: {e}"))?;
        let net = file
            .load_net(device)
            .map_err(|e| format!("FFN model: {e}"))?;
        Self::with_net(net, &file.header, image, seed, max_steps, move_threshold)
    }

    /// [`FfnFillJob::new`] with a network already on its device (`header` gives its settings
    /// and normalisation), e.g. the one a training run is changing.
    pub fn with_net(
        net: ConvStack3d,
        header: &FfnHeader,
        image: Array3<f32>,
        seed: [usize; 3],
        max_steps: usize,
        move_threshold: f64,
    ) -> Result<Self, String> {
        let (nz, ny, nx) = image.dim();
        if seed[0] >= nz || seed[1] >= ny || seed[2] >= nx {
            return Err(format!(
                "FFN fill: the seed ({}, {}, {}) lies outside the {nz}×{ny}×{nx} box",
                seed[0], seed[1], seed[2]
            ));
        }
        let [fz, fy, fx] = header.network.fov_zyx();
        let fits = |pos: usize, n: usize, f: usize| pos >= f / 2 && pos + f / 2 < n;
        if !(fits(seed[0], nz, fz) && fits(seed[1], ny, fy) && fits(seed[2], nx, fx)) {
            return Err(format!(
                "FFN fill: the network's field of view (z×y×x {fz}×{fy}×{fx}) does not fit around \
                 the click: it is within {} slices or {} pixels of the stack's edge (or the fill \
                 box is smaller than the field of view); click further inside",
                fz / 2,
                fy.max(fx) / 2
            ));
        }
        let mut canvas = Canvas::new(
            DrivenFromOutside,
            &header.network,
            header.normalization,
            image.view(),
            FfnInferOptions {
                move_threshold,
                ..FfnInferOptions::default()
            },
        )
        .map_err(|e| format!("FFN fill: {e}"))?;
        let walk = canvas.begin_fill(seed, max_steps);
        Ok(Self {
            net,
            canvas,
            walk,
            seed,
        })
    }

    /// The next field of view to run; `None` when the fill is over.
    pub fn next_fov(&mut self) -> Option<FovInput> {
        self.canvas.next_fov(&mut self.walk)
    }

    /// Runs the network on `input` (from [`FfnFillJob::next_fov`]) with the read awaited (any
    /// device) and takes its prediction.
    pub async fn step_async(&mut self, input: FovInput, device: &Device) -> Result<(), String> {
        let pos = input.pos;
        let logits = predict_fov_async(&self.net, input, self.canvas.fov(), device)
            .await
            .map_err(|e| format!("FFN fill: {e}"))?;
        self.canvas
            .apply_fov(&mut self.walk, pos, logits)
            .map_err(|e| format!("FFN fill: {e}"))
    }

    /// [`FfnFillJob::step_async`] with a synchronous read (CPU only).
    pub fn step(&mut self, input: FovInput, device: &Device) -> Result<(), String> {
        let pos = input.pos;
        let logits = predict_sync(&self.net, input, self.canvas.fov(), device)
            .map_err(|e| format!("FFN fill: {e}"))?;
        self.canvas
            .apply_fov(&mut self.walk, pos, logits)
            .map_err(|e| format!("FFN fill: {e}"))
    }

    /// FOVs run so far, and that plus the positions waiting (an estimate of the total).
    pub fn progress(&self) -> (u64, u64) {
        let done = self.walk.steps() as u64;
        (done, done + self.walk.queued() as u64)
    }

    /// What the fill found.
    pub fn finish(&self) -> FfnFillResult {
        let (seed_probability, kept) = self.canvas.seed_kept(self.seed);
        FfnFillResult {
            mask: self
                .canvas
                .object_mask()
                .iter()
                .map(|&m| u8::from(m))
                .collect(),
            steps: self.walk.steps() as u32,
            seed_probability,
            kept,
        }
    }

    /// The object's probability (0–255, 0 where the fill never looked) on plane `z` of the
    /// box, raster order.
    pub fn plane_probability(&self, z: usize) -> Vec<u8> {
        let mask = self.canvas.mask();
        if z >= mask.dim().0 {
            return Vec::new();
        }
        mask.index_axis(ndarray::Axis(0), z)
            .iter()
            .map(|&logit| match logit.is_nan() {
                true => 0,
                false => (255.0 / (1.0 + (-logit).exp())).round() as u8,
            })
            .collect()
    }

    /// The whole fill with synchronous reads (CPU only).
    pub fn run(mut self, device: &Device) -> Result<FfnFillResult, String> {
        while let Some(input) = self.next_fov() {
            self.step(input, device)?;
        }
        Ok(self.finish())
    }
}

/// What a segmentation found.
#[derive(Clone, Debug, PartialEq)]
pub struct FfnSegmentResult {
    /// Over the box, raster order: consecutive object IDs from 1, 0 = background.
    pub labels: Vec<u32>,
    /// Objects kept.
    pub objects: u32,
    /// Seeds tried.
    pub seeds: u32,
    /// FOV positions the network ran.
    pub steps: u64,
}

/// A box larger than this many voxels is segmented in blocks along z (each block's canvas
/// takes 12 bytes a voxel: 2²⁴ voxels is about 200 MB), 250³ (15.6 M voxels) still in one.
pub const SEGMENT_BLOCK_VOXELS: usize = 1 << 24;

/// The segmentation of a box: every `PolicyPeaks` seed in turn, each object kept by
/// google/ffn's rules (the seed holds, at least `min_segment_size` new voxels), none
/// overwriting another. A box larger than the block size given is segmented in blocks along
/// z, one canvas at a time, and the blocks joined as `emstudio ffn infer --block-depth` joins
/// them (`emstudio_nets::ffn::blocks`); one block is the whole-box run exactly.
pub struct FfnSegmentJob {
    net: ConvStack3d,
    header: FfnHeader,
    /// The whole box, unit floats, kept only when a later block needs its slices (the
    /// canvas holds its own normalised copy, so one block does not keep it twice).
    image: Option<Array3<f32>>,
    /// The box's shape.
    dim: (usize, usize, usize),
    blocks: Vec<Block>,
    /// The block being segmented.
    block: usize,
    canvas: Canvas<DrivenFromOutside>,
    seeds: Vec<[usize; 3]>,
    /// The next seed to begin.
    next_seed: usize,
    /// The seed being filled and its walk.
    current: Option<([usize; 3], FillWalk)>,
    /// The blocks segmented.
    done: Vec<LabelledBlock>,
    /// Seeds of the blocks segmented.
    seeds_done: usize,
    steps: u64,
}

impl FfnSegmentJob {
    /// Loads the FFN `model` onto `device` and finds the seeds of `image` (the box, scaled to
    /// [0, 1], `z, y, x`), in blocks of at most `block_voxels` voxels (at least twice the FOV
    /// deep) when it is larger.
    pub fn new(
        model: &[u8],
        device: &Device,
        image: Array3<f32>,
        block_voxels: usize,
    ) -> Result<Self, String> {
        let file = FfnModelFile::from_bytes(model).map_err(|e| format!("FFN model: {e}"))?;
        let net = file
            .load_net(device)
            .map_err(|e| format!("FFN model: {e}"))?;
        let (nz, ny, nx) = image.dim();
        let network = &file.header.network;
        let blocks = if nz * ny * nx <= block_voxels {
            vec![Block::plain(0..nz)]
        } else {
            let depth = (block_voxels / (ny * nx).max(1)).max(2 * network.fov_zyx()[0]);
            blocks::plan(nz, depth, blocks::default_halo(network))
        };
        let (canvas, seeds) = Self::block_canvas(&file.header, &image, &blocks[0])?;
        Ok(Self {
            net,
            header: file.header,
            image: (blocks.len() > 1).then_some(image),
            dim: (nz, ny, nx),
            blocks,
            block: 0,
            canvas,
            seeds,
            next_seed: 0,
            current: None,
            done: Vec::new(),
            seeds_done: 0,
            steps: 0,
        })
    }

    /// The canvas over one block's slices, and its seeds.
    fn block_canvas(
        header: &FfnHeader,
        image: &Array3<f32>,
        block: &Block,
    ) -> Result<(Canvas<DrivenFromOutside>, Vec<[usize; 3]>), String> {
        let canvas = Canvas::new(
            DrivenFromOutside,
            &header.network,
            header.normalization,
            image.slice(ndarray::s![block.read.clone(), .., ..]),
            FfnInferOptions::default(),
        )
        .map_err(|e| format!("FFN segmentation: {e}"))?;
        let seeds = emstudio_nets::ffn::seeds::policy_peaks(canvas.image());
        Ok((canvas, seeds))
    }

    /// The next field of view to run, beginning seeds as the earlier ones end and blocks as
    /// the earlier ones end; `None` when every seed of every block is done.
    pub fn next_fov(&mut self) -> Result<Option<FovInput>, String> {
        loop {
            if let Some((pos, walk)) = &mut self.current {
                if let Some(input) = self.canvas.next_fov(walk) {
                    return Ok(Some(input));
                }
                let (pos, walk) = (*pos, walk.clone());
                self.canvas.end_segment(pos, &walk);
                self.current = None;
            }
            if let Some(&pos) = self.seeds.get(self.next_seed) {
                self.next_seed += 1;
                self.current = self.canvas.begin_segment(pos).map(|w| (pos, w));
                continue;
            }
            // This block is done: keep the slices it sends, go on with the next.
            if self.done.len() == self.block {
                let block = self.blocks[self.block].clone();
                let labels = self
                    .canvas
                    .labels()
                    .slice(ndarray::s![block.send_in_read(), .., ..])
                    .to_owned();
                self.done.push(LabelledBlock { block, labels });
                self.seeds_done += self.seeds.len();
            }
            let Some(next) = self.blocks.get(self.block + 1) else {
                return Ok(None);
            };
            let image = self
                .image
                .as_ref()
                .ok_or("FFN segmentation: internal error, no image for the next block")?;
            let (canvas, seeds) = Self::block_canvas(&self.header, image, next)?;
            (self.canvas, self.seeds, self.next_seed) = (canvas, seeds, 0);
            self.block += 1;
        }
    }

    /// Runs the network on `input` (from [`FfnSegmentJob::next_fov`]) with the read awaited.
    pub async fn step_async(&mut self, input: FovInput, device: &Device) -> Result<(), String> {
        let pos = input.pos;
        let logits = predict_fov_async(&self.net, input, self.canvas.fov(), device)
            .await
            .map_err(|e| format!("FFN segmentation: {e}"))?;
        self.apply(pos, logits)
    }

    /// [`FfnSegmentJob::step_async`] with a synchronous read (CPU only).
    pub fn step(&mut self, input: FovInput, device: &Device) -> Result<(), String> {
        let pos = input.pos;
        let logits = predict_sync(&self.net, input, self.canvas.fov(), device)
            .map_err(|e| format!("FFN segmentation: {e}"))?;
        self.apply(pos, logits)
    }

    fn apply(&mut self, pos: [usize; 3], logits: Vec<f32>) -> Result<(), String> {
        let Some((_, walk)) = &mut self.current else {
            return Err("FFN segmentation: a prediction came with no fill running".into());
        };
        self.steps += 1;
        self.canvas
            .apply_fov(walk, pos, logits)
            .map_err(|e| format!("FFN segmentation: {e}"))
    }

    /// How far it is, in thousandths of the whole: each block an equal share, moved by the
    /// seeds it began.
    pub fn progress(&self) -> (u64, u64) {
        let n = self.blocks.len() as u64;
        let within = 1000 * self.next_seed as u64 / self.seeds.len().max(1) as u64;
        (self.block as u64 * 1000 + within, n * 1000)
    }

    /// "block 2 of 3, seed 10 of 40" (without the block in one block).
    pub fn describe(&self) -> String {
        let seeds = format!("seed {} of {}", self.next_seed, self.seeds.len());
        match self.blocks.len() {
            1 => seeds,
            n => format!("block {} of {n}, {seeds}", self.block + 1),
        }
    }

    /// Blocks the box is segmented in.
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// The segmentation, once [`FfnSegmentJob::next_fov`] said it is over: the blocks joined
    /// (objects found in two blocks get one ID where they overlap), consecutive IDs.
    pub fn finish(&self) -> Result<FfnSegmentResult, String> {
        if self.done.len() != self.blocks.len() {
            return Err("FFN segmentation: finished before its last block".into());
        }
        let (labels, objects) = blocks::join(
            self.dim,
            &self.done,
            &mut emstudio_core::progress::NoProgress,
        )
        .map_err(|e| format!("FFN segmentation: {e}"))?;
        Ok(FfnSegmentResult {
            labels: labels.into_iter().collect(),
            objects,
            seeds: self.seeds_done as u32,
            steps: self.steps,
        })
    }

    /// The whole segmentation with synchronous reads (CPU only).
    pub fn run(mut self, device: &Device) -> Result<FfnSegmentResult, String> {
        while let Some(input) = self.next_fov()? {
            self.step(input, device)?;
        }
        self.finish()
    }
}

/// An FFN training run on one box of image and dense instance labels
/// (`emstudio_nets::ffn::train::FfnTrainer`), stepped with awaited reads.
pub struct FfnTrainJob {
    trainer: FfnTrainer,
}

impl FfnTrainJob {
    /// Checks the settings (`FfnTrainConfig` as JSON) and the data, draws the training
    /// centres and builds the network on `device` (with autodiff): fresh, or the weights of
    /// `init`, an FFN model file to fine-tune (its network and normalisation replace the
    /// settings'; the optimiser starts afresh).
    pub fn new(
        image: Array3<f32>,
        labels: Array3<u32>,
        name: &str,
        config_json: &str,
        init: Option<&[u8]>,
        device: &Device,
    ) -> Result<Self, String> {
        let config: FfnTrainConfig =
            serde_json::from_str(config_json).map_err(|e| format!("FFN training settings: {e}"))?;
        let start = init
            .map(FfnModelFile::from_bytes)
            .transpose()
            .map_err(|e| format!("the model to fine-tune: {e}"))?;
        let volume = FfnVolume::new(name, image, labels).map_err(|e| e.to_string())?;
        let trainer = FfnTrainer::new(
            config,
            vec![volume],
            device,
            start.as_ref().map(|f| (f, false)),
            &mut emstudio_core::progress::NoProgress,
        )
        .map_err(|e| e.to_string())?;
        Ok(Self { trainer })
    }

    /// One step, reads awaited (any device).
    pub async fn step_async(&mut self) -> Result<FfnStepReport, String> {
        self.trainer.step_async().await.map_err(|e| e.to_string())
    }

    /// One step, synchronous reads (CPU only).
    pub fn step(&mut self) -> Result<FfnStepReport, String> {
        self.trainer.step().map_err(|e| e.to_string())
    }

    /// All steps done.
    pub fn finished(&self) -> bool {
        self.trainer.finished()
    }

    /// Steps done and in all.
    pub fn steps(&self) -> (u64, u64) {
        (self.trainer.steps_done(), self.trainer.total_steps())
    }

    /// The central plane of a training example after the last step, as bytes for the app.
    pub fn preview(&self) -> Option<FfnTrainPreview> {
        let p = self.trainer.preview()?;
        let bytes = |v: &[f32]| -> Vec<u8> {
            v.iter()
                .map(|&x| (x.clamp(0.0, 1.0) * 255.0).round() as u8)
                .collect()
        };
        Some(FfnTrainPreview {
            size: p.size,
            image: bytes(&p.image),
            target: bytes(&p.target),
            mask: bytes(&p.mask),
            fov: p.fov,
        })
    }

    /// The half-size `[z, y, x]` of the box a live fill needs: half the field of view and two
    /// moves each way.
    pub fn fill_radius(&self) -> [usize; 3] {
        let network = self.trainer.header("").network;
        let (fov, deltas) = (network.fov_zyx(), network.deltas_zyx());
        [0, 1, 2].map(|a| fov[a] / 2 + 2 * deltas[a])
    }

    /// A fill of the object at `seed` in `image` (a box scaled to [0, 1], `z, y, x`) with the
    /// network as it is now (off the autodiff graph), at most [`LIVE_FILL_FOVS`] fields of
    /// view, moving where the object is at least [`LIVE_FILL_MOVE`] probable.
    pub fn live_fill(&self, image: Array3<f32>, seed: [usize; 3]) -> Result<FfnFillJob, String> {
        FfnFillJob::with_net(
            self.trainer.inference_net(),
            &self.trainer.header(""),
            image,
            seed,
            LIVE_FILL_FOVS,
            LIVE_FILL_MOVE,
        )
    }

    /// Partition classes the centres are drawn from.
    pub fn classes(&self) -> usize {
        self.trainer.class_count()
    }

    /// The model file of the current state (no optimiser state), weights read back
    /// asynchronously; `saved` is the ISO 8601 time.
    pub async fn model_bytes_async(&self, saved: &str) -> Result<Vec<u8>, String> {
        self.trainer
            .model_file_async(saved)
            .await
            .map(|f| f.to_bytes())
            .map_err(|e| e.to_string())
    }

    /// One line for the user: steps, time, the loss and mask scores from first to last.
    pub fn summary(&self, seconds: f64) -> String {
        let curve = self.trainer.curve();
        let (steps, _) = self.steps();
        match (curve.first(), curve.last()) {
            (Some(a), Some(b)) => format!(
                "trained {steps} steps in {seconds:.0} s; loss {:.3} → {:.3}, mask precision {:.2} \
                 recall {:.2}",
                a.loss, b.loss, b.precision, b.recall
            ),
            _ => format!("trained {steps} steps in {seconds:.0} s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use emstudio_nets::ffn::net::FfnConfig;
    use emstudio_nets::model::{Normalization, Provenance};
    use futures_lite::future::block_on;

    fn model(device: &Device) -> Vec<u8> {
        let network = FfnConfig {
            depth: 1,
            features: 2,
            fov: [9, 9, 5],
            deltas: [2, 2, 1],
        };
        let net = network.build(device);
        emstudio_nets::ffn::file::FfnModelFile::from_net(
            emstudio_nets::ffn::file::FfnHeader {
                network,
                normalization: Normalization {
                    mean: 0.5,
                    std: 0.25,
                },
                provenance: Provenance::default(),
            },
            &net,
            None,
        )
        .expect("model")
        .to_bytes()
    }

    #[test]
    fn a_fill_runs_sync_and_awaited_alike_and_bad_clicks_are_named() {
        let device = Device::default();
        let bytes = model(&device);
        crate::jobs::check_model(&bytes).expect("the store takes an FFN model");
        let cut = crate::jobs::check_model(&bytes[..bytes.len() - 10]).expect_err("truncated");
        assert!(cut.contains("truncated"), "{cut}");
        let image = Array3::from_shape_fn((12, 20, 20), |(z, y, x)| {
            ((z * 7 + y * 3 + x) % 11) as f32 / 10.0
        });
        let seed = [6, 10, 10];
        let sync = FfnFillJob::new(&bytes, &device, image.clone(), seed, 50, 0.9)
            .expect("job")
            .run(&device)
            .expect("run");
        assert_eq!(sync.mask.len(), 12 * 20 * 20);
        assert!(sync.steps >= 1);
        assert!(sync.seed_probability.is_finite());
        let mut job = FfnFillJob::new(&bytes, &device, image.clone(), seed, 50, 0.9).expect("job");
        while let Some(input) = job.next_fov() {
            block_on(job.step_async(input, &device)).expect("step");
        }
        assert_eq!(job.progress().0, u64::from(sync.steps));
        assert_eq!(job.finish(), sync);

        let near_edge = FfnFillJob::new(&bytes, &device, image.clone(), [1, 10, 10], 50, 0.9)
            .err()
            .expect("refused");
        assert!(
            near_edge.contains("does not fit around the click"),
            "{near_edge}"
        );
        let outside = FfnFillJob::new(&bytes, &device, image.clone(), [30, 10, 10], 50, 0.9)
            .err()
            .expect("refused");
        assert!(outside.contains("outside the 12×20×20 box"), "{outside}");
        let wrong = FfnFillJob::new(b"EMSTUDIO-MODEL1\n....", &device, image, seed, 50, 0.9)
            .err()
            .expect("refused");
        assert!(wrong.contains("2D network model"), "{wrong}");
    }

    #[test]
    fn a_segmentation_driven_here_equals_the_command_lines() {
        let device = Device::default();
        let bytes = model(&device);
        let image = Array3::from_shape_fn((14, 24, 24), |(z, y, x)| {
            let d =
                ((z as f32 - 7.0).powi(2) + (y as f32 - 12.0).powi(2) + (x as f32 - 12.0).powi(2))
                    .sqrt();
            if d < 6.0 {
                0.9
            } else {
                0.1 + ((y + x) % 3) as f32 * 0.05
            }
        });
        let ours = FfnSegmentJob::new(&bytes, &device, image.clone(), SEGMENT_BLOCK_VOXELS)
            .expect("job")
            .run(&device)
            .expect("run");
        // The same canvas run by emstudio ffn infer's loop.
        let file = FfnModelFile::from_bytes(&bytes).expect("model");
        let net = file.load_net(&device).expect("net");
        let mut canvas = Canvas::new(
            NetPredictor {
                net: &net,
                device: device.clone(),
            },
            &file.header.network,
            file.header.normalization,
            image.view(),
            FfnInferOptions::default(),
        )
        .expect("canvas");
        let seeds = emstudio_nets::ffn::seeds::policy_peaks(canvas.image());
        canvas
            .segment_all(&seeds, &mut emstudio_core::progress::NoProgress)
            .expect("segment");
        assert_eq!(ours.seeds as usize, seeds.len());
        assert!(ours.seeds > 0);
        assert_eq!(ours.labels, canvas.labels().into_iter().collect::<Vec<_>>());
        assert_eq!(ours.labels.len(), 14 * 24 * 24);
        let small = FfnSegmentJob::new(
            &bytes,
            &device,
            Array3::zeros((4, 24, 24)),
            SEGMENT_BLOCK_VOXELS,
        )
        .err()
        .expect("refused");
        assert!(
            small.contains("smaller than the network's field of view"),
            "{small}"
        );
    }

    #[test]
    fn a_large_box_is_segmented_in_blocks_as_the_command_line_segments_it() {
        let device = Device::default();
        let bytes = model(&device);
        // Two bright tubes along z through 40 slices, on a textured background.
        let image = Array3::from_shape_fn((40, 24, 24), |(z, y, x)| {
            let tube = |cy: usize, cx: usize| y.abs_diff(cy) <= 3 && x.abs_diff(cx) <= 3;
            if tube(7, 7) || tube(16, 16) {
                0.9
            } else {
                0.1 + ((z + y + x) % 3) as f32 * 0.05
            }
        });
        // Blocks of 10 slices (twice the FOV's depth), each reading 7 more on each side.
        let mut job =
            FfnSegmentJob::new(&bytes, &device, image.clone(), 10 * 24 * 24).expect("job");
        assert_eq!(job.blocks(), 4);
        assert_eq!(job.progress(), (0, 4000));
        assert!(job.describe().starts_with("block 1 of 4, seed 0 of "));
        let mut seen_blocks = std::collections::BTreeSet::new();
        while let Some(input) = job.next_fov().expect("next") {
            seen_blocks.insert(job.describe()[..10].to_string());
            let (done, total) = job.progress();
            assert!(done <= total);
            job.step(input, &device).expect("step");
        }
        assert!(job.next_fov().expect("over").is_none(), "stays over");
        assert!(seen_blocks.len() > 1, "{seen_blocks:?}");
        let ours = job.finish().expect("finish");

        // The same blocks through emstudio ffn infer's code.
        let file = FfnModelFile::from_bytes(&bytes).expect("model");
        let net = file.load_net(&device).expect("net");
        let plan = blocks::plan(40, 10, blocks::default_halo(&file.header.network));
        assert_eq!(plan.len(), 4);
        let (labels, objects) = blocks::segment_in_blocks(
            || NetPredictor {
                net: &net,
                device: device.clone(),
            },
            &file.header.network,
            file.header.normalization,
            image.view(),
            &plan,
            &FfnInferOptions::default(),
            &mut emstudio_core::progress::NoProgress,
        )
        .expect("blocks");
        assert_eq!(ours.objects, objects);
        assert_eq!(ours.labels, labels.into_iter().collect::<Vec<_>>());
        assert_eq!(ours.labels.len(), 40 * 24 * 24);

        // The box in one block is the whole-box run of before.
        let one = FfnSegmentJob::new(&bytes, &device, image, SEGMENT_BLOCK_VOXELS).expect("job");
        assert_eq!(one.blocks(), 1);
        assert!(one.describe().starts_with("seed 0 of "));
    }

    #[test]
    fn a_training_run_steps_awaited_and_saves_a_model_the_fill_takes() {
        let image = Array3::from_shape_fn((12, 16, 24), |(z, y, x)| {
            (if x < 12 { 0.7 } else { 0.3 }) + ((z + 2 * y + 3 * x) % 5) as f32 * 0.02
        });
        let labels = Array3::from_shape_fn((12, 16, 24), |(_, _, x)| 1 + u32::from(x >= 12));
        let config = r#"{"network": {"depth": 1, "features": 2, "fov": [5, 5, 5], "deltas": [1, 1, 1]},
            "steps": 2, "batch": 2, "min_size": 10, "optimizer": "adam"}"#;
        let device = Device::default().autodiff();
        let mut job = FfnTrainJob::new(
            image.clone(),
            labels.clone(),
            "halves",
            config,
            None,
            &device,
        )
        .expect("job");
        assert!(job.classes() >= 1);
        while !job.finished() {
            let r = block_on(job.step_async()).expect("step");
            assert!(r.loss.is_finite());
        }
        assert_eq!(job.steps(), (2, 2));
        let preview = job.preview().expect("a preview after the steps");
        assert_eq!(preview.size, [7, 7], "FOV 5 plus a move of 1 on each side");
        assert!([&preview.image, &preview.target, &preview.mask]
            .iter()
            .all(|p| p.len() == 49));
        assert!(preview.target.contains(&255) && preview.target.contains(&0));
        assert!(
            job.summary(1.0).starts_with("trained 2 steps"),
            "{}",
            job.summary(1.0)
        );
        let bytes = block_on(job.model_bytes_async("2026-12-07")).expect("model");
        crate::jobs::check_model(&bytes).expect("a valid FFN model");
        let plain = Device::default();
        let saved = FfnFillJob::new(&bytes, &plain, image.clone(), [6, 8, 6], 10, 0.9)
            .expect("the fill loads it")
            .run(&plain)
            .expect("fill");
        assert!(saved.steps >= 1);

        // The live fill: FOV 5 and moves of 1 need a box of ±(2 + 2); it grows the object with
        // the weights of now, as a fill with the model saved now does.
        assert_eq!(job.fill_radius(), [4, 4, 4]);
        let mut live = job.live_fill(image.clone(), [6, 8, 6]).expect("live fill");
        while let Some(input) = live.next_fov() {
            block_on(live.step_async(input, &plain)).expect("step");
        }
        assert!(live.progress().0 as usize <= LIVE_FILL_FOVS);
        let same = FfnFillJob::new(
            &bytes,
            &plain,
            image.clone(),
            [6, 8, 6],
            LIVE_FILL_FOVS,
            LIVE_FILL_MOVE,
        )
        .expect("job")
        .run(&plain)
        .expect("fill");
        assert_eq!(live.finish(), same);
        let plane = live.plane_probability(6);
        assert_eq!(plane.len(), 16 * 24);
        assert!(plane[8 * 24 + 6] > 0, "the seed's voxel was filled");
        assert!(plane.contains(&0), "voxels no FOV reached stay 0");
        assert!(live.plane_probability(12).is_empty(), "no such plane");
        let e = job
            .live_fill(image.clone(), [0, 8, 6])
            .err()
            .expect("refused");
        assert!(e.contains("does not fit around the click"), "{e}");
        // Bad settings and data are named.
        let e = FfnTrainJob::new(
            image.clone(),
            labels.clone(),
            "halves",
            "{\"steps\": -1}",
            None,
            &device,
        )
        .err()
        .expect("refused");
        assert!(e.contains("FFN training settings"), "{e}");
        let e = FfnTrainJob::new(
            image.clone(),
            Array3::from_shape_fn((12, 16, 24), |(z, _, _)| u32::from(z > 5)),
            "mask.tif",
            config,
            None,
            &device,
        )
        .err()
        .expect("refused");
        assert!(e.contains("mask.tif"), "{e}");

        // Fine-tuning: the model's network and normalisation, whatever the settings say.
        let other = r#"{"network": {"depth": 2, "features": 3, "fov": [7, 7, 7], "deltas": [2, 2, 2]},
            "steps": 1, "batch": 1, "min_size": 10}"#;
        let mut tuned = FfnTrainJob::new(
            image.map(|v| v * 0.5),
            labels.clone(),
            "halves",
            other,
            Some(&bytes),
            &device,
        )
        .expect("fine-tune");
        while !tuned.finished() {
            block_on(tuned.step_async()).expect("step");
        }
        assert_eq!(tuned.steps(), (1, 1), "a fresh run of its own steps");
        let tuned = FfnModelFile::from_bytes(
            &block_on(tuned.model_bytes_async("2026-12-07")).expect("model"),
        )
        .expect("valid");
        let started = FfnModelFile::from_bytes(&bytes).expect("valid");
        assert_eq!(tuned.header.network, started.header.network);
        assert_eq!(tuned.header.normalization, started.header.normalization);
        let e = FfnTrainJob::new(
            image,
            labels,
            "halves",
            config,
            Some(b"not a model"),
            &device,
        )
        .err()
        .expect("refused");
        assert!(e.starts_with("the model to fine-tune"), "{e}");
    }
}
