//! FFN inference: google/ffn's `Canvas` (`ffn/inference/inference.py`) with the
//! `FaceMaxMovementPolicy` (`movement.py`).
//!
//! One object at a time from a seed: the mask (logits; unexplored voxels NaN, read as the pad
//! value 0.05) starts at 0.95 on the seed; the FOV runs at the seed, then at positions from a
//! first-in-first-out queue. After each prediction, on each of the six faces of the box of
//! ±deltas around the FOV centre, the voxel with the highest logit is queued when it is at
//! least the move threshold (0.9), strongest first per step. A queued position is skipped when
//! its cell (the deltas-sized grid around the seed) was already visited, when the mask there is
//! now below the move threshold, when it is within half a FOV of the border, or when it is
//! already part of an earlier object. Predictions overwrite the mask, except that a voxel
//! already believed outside (below 0.5) may not rise while the step is confident somewhere
//! (google/ffn's default `disco_seed_threshold` 0). The fill stops when the queue is empty or
//! the seed voxel itself falls below the move threshold.
//!
//! An object is kept when its seed stays at least at the move threshold and at least
//! `min_segment_size` voxels of the visited box reach the segment threshold (0.6) that no
//! earlier object owns; it gets the next ID. Seeds within `min_boundary_dist` of an object are
//! skipped. Seeds come from [`super::seeds::policy_peaks`] or from a user's click.

use super::logit;
use super::net::{ConvStack3d, FfnConfig};
use crate::model::Normalization;
use burn::prelude::*;
use emstudio_core::progress::{Cancelled, Progress};
use ndarray::{s, Array3, ArrayView3};
use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};

/// Inference settings (probabilities; google/ffn's and UNI-EM's defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FfnInferOptions {
    /// The mask's value at the seed.
    pub init_activation: f64,
    /// The value unexplored voxels are read as.
    pub pad_value: f64,
    /// The FOV moves to (and the seed must stay at) voxels at least this probable.
    pub move_threshold: f64,
    /// Voxels at least this probable join the object.
    pub segment_threshold: f64,
    /// Objects with fewer new voxels are dropped.
    pub min_segment_size: u64,
    /// Seeds this close to an object (z, y, x) are skipped.
    pub min_boundary_dist: [usize; 3],
}

impl Default for FfnInferOptions {
    fn default() -> Self {
        Self {
            init_activation: 0.95,
            pad_value: 0.05,
            move_threshold: 0.9,
            segment_threshold: 0.6,
            min_segment_size: 1000,
            min_boundary_dist: [1, 1, 1],
        }
    }
}

impl FfnInferOptions {
    /// Checks the values a user typed.
    pub fn validate(&self) -> Result<(), FfnInferError> {
        for (name, p) in [
            ("init activation", self.init_activation),
            ("pad value", self.pad_value),
            ("move threshold", self.move_threshold),
            ("segment threshold", self.segment_threshold),
        ] {
            if !(p > 0.0 && p < 1.0) {
                return Err(FfnInferError::Invalid(format!(
                    "the {name} is {p}: a probability above 0 and below 1"
                )));
            }
        }
        if self.init_activation < self.move_threshold {
            return Err(FfnInferError::Invalid(format!(
                "the init activation ({}) is below the move threshold ({}): no fill could start",
                self.init_activation, self.move_threshold
            )));
        }
        Ok(())
    }
}

/// Why inference failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FfnInferError {
    /// A setting or the input is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The compute device failed.
    #[error("the compute device failed: {0}")]
    Device(String),
    /// Cancelled through the progress callback.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    /// The blocks of a segmentation in blocks could not be joined.
    #[error("the blocks could not be joined: {0}")]
    Blocks(String),
}

/// What predicts a FOV's new mask logits from its image and mask: the network
/// ([`NetPredictor`]), or a stand-in in tests.
pub trait FovPredictor {
    /// `image` and `seed` hold `fov` (z, y, x) values in raster order; returns as many logits.
    fn predict(
        &mut self,
        image: Vec<f32>,
        seed: Vec<f32>,
        fov: [usize; 3],
    ) -> Result<Vec<f32>, FfnInferError>;
}

/// The flood-filling network on a device, one FOV per call.
pub struct NetPredictor<'a> {
    /// The network.
    pub net: &'a ConvStack3d,
    /// Where it runs.
    pub device: Device,
}

impl FovPredictor for NetPredictor<'_> {
    fn predict(
        &mut self,
        image: Vec<f32>,
        seed: Vec<f32>,
        fov: [usize; 3],
    ) -> Result<Vec<f32>, FfnInferError> {
        forward_fov(self.net, image, seed, fov, &self.device)
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| FfnInferError::Device(format!("{e:?}")))
    }
}

/// One FOV through the network: image and mask logits (`fov` values each, raster order) as
/// `[1, 1, z, y, x]` tensors on `device`; the new logits, not yet read back.
fn forward_fov(
    net: &ConvStack3d,
    image: Vec<f32>,
    seed: Vec<f32>,
    fov: [usize; 3],
    device: &Device,
) -> Tensor<5> {
    let shape = [1, 1, fov[0], fov[1], fov[2]];
    let t = |v: Vec<f32>| Tensor::<5>::from_data(TensorData::new(v, shape), device);
    net.forward(t(image), t(seed))
}

/// [`NetPredictor`]'s prediction with the read awaited, for devices that cannot read
/// synchronously (WebGPU in the browser); on the CPU it resolves at once.
pub async fn predict_fov_async(
    net: &ConvStack3d,
    input: FovInput,
    fov: [usize; 3],
    device: &Device,
) -> Result<Vec<f32>, FfnInferError> {
    forward_fov(net, input.image, input.seed, fov, device)
        .into_data_async()
        .await
        .map_err(|e| FfnInferError::Device(format!("{e:?}")))?
        .try_into_vec::<f32>()
        .map_err(|e| FfnInferError::Device(format!("{e:?}")))
}

/// What one fill did.
#[derive(Clone, Debug, PartialEq)]
pub struct Fill {
    /// FOV positions predicted.
    pub steps: usize,
    /// The visited box (z, y, x start, end exclusive), in which the mask was written.
    pub bounds: [[usize; 3]; 2],
}

/// A fill in progress, driven by [`Canvas::next_fov`] and [`Canvas::apply_fov`].
#[derive(Clone, Debug)]
pub struct FillWalk {
    start: [usize; 3],
    queue: VecDeque<[isize; 3]>,
    done: HashSet<[isize; 3]>,
    lo: [usize; 3],
    hi: [usize; 3],
    steps: usize,
    max_steps: usize,
}

impl FillWalk {
    /// FOV positions predicted so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Positions waiting in the queue (some may be skipped).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

/// One FOV to predict: its centre and the network's two inputs (`fov` values each, raster
/// order; see [`FovPredictor::predict`]).
#[derive(Clone, Debug, PartialEq)]
pub struct FovInput {
    /// The FOV's centre.
    pub pos: [usize; 3],
    /// The normalised image.
    pub image: Vec<f32>,
    /// The mask's logits.
    pub seed: Vec<f32>,
}

/// The predictor of a canvas whose fills are driven from outside ([`Canvas::begin_fill`]):
/// it is never asked, and says so if it is.
pub struct DrivenFromOutside;

impl FovPredictor for DrivenFromOutside {
    fn predict(
        &mut self,
        _image: Vec<f32>,
        _seed: Vec<f32>,
        _fov: [usize; 3],
    ) -> Result<Vec<f32>, FfnInferError> {
        Err(FfnInferError::Invalid(
            "this canvas is driven from outside (next_fov / apply_fov); it has no predictor".into(),
        ))
    }
}

/// The state of inference over one volume (see the module doc).
pub struct Canvas<P: FovPredictor> {
    predictor: P,
    fov: [usize; 3],
    deltas: [usize; 3],
    image: Array3<f32>,
    /// Logits; NaN = unexplored.
    mask: Array3<f32>,
    /// 0 = free, > 0 = object ID, −1 = a seed tried and dropped.
    segmentation: Array3<i64>,
    options: FfnInferOptions,
    move_logit: f32,
    pad_logit: f32,
    max_id: i64,
}

impl<P: FovPredictor> Canvas<P> {
    /// A canvas over `image` (scaled to `[0, 1]`; normalised here with the model's
    /// `normalization`). The volume must hold at least one FOV.
    pub fn new(
        predictor: P,
        network: &FfnConfig,
        normalization: Normalization,
        image: ArrayView3<'_, f32>,
        options: FfnInferOptions,
    ) -> Result<Self, FfnInferError> {
        options.validate()?;
        let fov = network.fov_zyx();
        let (nz, ny, nx) = image.dim();
        if nz < fov[0] || ny < fov[1] || nx < fov[2] {
            return Err(FfnInferError::Invalid(format!(
                "the volume ({nz}×{ny}×{nx}, z×y×x) is smaller than the network's field of view \
                 ({}×{}×{})",
                fov[0], fov[1], fov[2]
            )));
        }
        Ok(Self {
            predictor,
            fov,
            deltas: network.deltas_zyx(),
            image: image.mapv(|v| (v - normalization.mean) / normalization.std),
            mask: Array3::from_elem((nz, ny, nx), f32::NAN),
            segmentation: Array3::zeros((nz, ny, nx)),
            move_logit: logit(options.move_threshold),
            pad_logit: logit(options.pad_value),
            options,
            max_id: 0,
        })
    }

    /// Starts from an existing segmentation (objects keep their IDs; FFN fills only free
    /// space).
    pub fn with_segmentation(mut self, labels: ArrayView3<'_, u32>) -> Self {
        self.segmentation = labels.mapv(i64::from);
        self.max_id = self.segmentation.iter().copied().max().unwrap_or(0);
        self
    }

    /// The normalised image (for seeds).
    pub fn image(&self) -> ArrayView3<'_, f32> {
        self.image.view()
    }

    /// The mask's probabilities (NaN where unexplored).
    pub fn probability(&self, pos: [usize; 3]) -> f32 {
        1.0 / (1.0 + (-self.mask[pos]).exp())
    }

    /// The mask as logits.
    pub fn mask(&self) -> ArrayView3<'_, f32> {
        self.mask.view()
    }

    fn margin(&self) -> [usize; 3] {
        self.fov.map(|f| f / 2)
    }

    /// True when a FOV fits around `pos` and `pos` is free (and, unless `ignore_threshold`,
    /// the mask there passes the move threshold).
    fn is_valid_pos(&self, pos: [isize; 3], ignore_threshold: bool) -> bool {
        let shape = self.mask.dim();
        let shape = [shape.0, shape.1, shape.2];
        let m = self.margin();
        for a in 0..3 {
            if pos[a] < m[a] as isize || pos[a] + m[a] as isize >= shape[a] as isize {
                return false;
            }
        }
        let p = pos.map(|v| v as usize);
        // NaN (unexplored) passes, as in google/ffn (`NaN < t` is false).
        if !ignore_threshold && self.mask[p] < self.move_logit {
            return false;
        }
        self.segmentation[p] <= 0
    }

    /// The FOV box around `pos`.
    fn fov_box(
        &self,
        pos: [usize; 3],
    ) -> ndarray::SliceInfo<[ndarray::SliceInfoElem; 3], ndarray::Ix3, ndarray::Ix3> {
        let m = self.margin();
        s![
            pos[0] - m[0]..pos[0] - m[0] + self.fov[0],
            pos[1] - m[1]..pos[1] - m[1] + self.fov[1],
            pos[2] - m[2]..pos[2] - m[2] + self.fov[2]
        ]
    }

    /// The network's input at `pos`: the image and the mask (unexplored voxels as the pad
    /// value), each `fov` values in raster order.
    fn fov_input(&self, pos: [usize; 3]) -> FovInput {
        let sel = self.fov_box(pos);
        let seed: Vec<f32> = self
            .mask
            .slice(sel)
            .iter()
            .map(|&v| if v.is_nan() { self.pad_logit } else { v })
            .collect();
        let image: Vec<f32> = self.image.slice(sel).iter().copied().collect();
        FovInput { pos, image, seed }
    }

    /// Writes a prediction at `pos` into the mask; returns the FOV's new logits.
    fn write_prediction(
        &mut self,
        pos: [usize; 3],
        values: Vec<f32>,
    ) -> Result<Array3<f32>, FfnInferError> {
        let sel = self.fov_box(pos);
        let old = self.mask.slice(sel).to_owned();
        if values.len() != old.len() {
            return Err(FfnInferError::Device(format!(
                "the network predicted {} values for a FOV of {}",
                values.len(),
                old.len()
            )));
        }
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(FfnInferError::Device(format!(
                "the network predicted {bad} at ({}, {}, {})",
                pos[0], pos[1], pos[2]
            )));
        }
        let mut logits = Array3::from_shape_vec(self.fov, values).expect("FOV-sized output");
        // google/ffn's disco-seed rule: once confident anywhere, voxels already believed
        // outside may not rise.
        if logits.iter().any(|&v| v >= self.move_logit) {
            ndarray::Zip::from(&mut logits).and(&old).for_each(|l, &o| {
                if o < 0.0 && *l > o {
                    *l = o;
                }
            });
        }
        self.mask.slice_mut(sel).assign(&logits);
        Ok(logits)
    }

    /// The six face-maximum moves of a prediction (see the module doc), strongest first.
    fn face_moves(&self, logits: &Array3<f32>) -> Vec<(f32, [isize; 3])> {
        let c = self.fov.map(|f| (f / 2) as isize);
        let d = self.deltas.map(|v| v as isize);
        let mut out: Vec<(f32, [isize; 3])> = Vec::new();
        for axis in 0..3 {
            if d[axis] == 0 {
                continue;
            }
            for side in [-d[axis], d[axis]] {
                let mut best: Option<(f32, [isize; 3])> = None;
                let (a, b) = match axis {
                    0 => (1, 2),
                    1 => (0, 2),
                    _ => (0, 1),
                };
                for i in -d[a]..=d[a] {
                    for j in -d[b]..=d[b] {
                        let mut rel = [0isize; 3];
                        rel[axis] = side;
                        rel[a] = i;
                        rel[b] = j;
                        let v = logits[[0, 1, 2].map(|k| (c[k] + rel[k]) as usize)];
                        if best.is_none_or(|(bv, _)| v > bv) {
                            best = Some((v, rel));
                        }
                    }
                }
                if let Some((v, rel)) = best {
                    if v >= self.move_logit && !out.contains(&(v, rel)) {
                        out.push((v, rel));
                    }
                }
            }
        }
        out.sort_by(|x, y| y.0.total_cmp(&x.0).then(y.1.cmp(&x.1)));
        out
    }

    /// Fills one object from `start` into the mask (nothing is assigned yet), running the
    /// canvas's predictor at each FOV position.
    pub fn fill_at(&mut self, start: [usize; 3], max_steps: usize) -> Result<Fill, FfnInferError> {
        let mut walk = self.begin_fill(start, max_steps);
        while let Some(input) = self.next_fov(&mut walk) {
            let pos = input.pos;
            let values = self.predictor.predict(input.image, input.seed, self.fov)?;
            self.apply_fov(&mut walk, pos, values)?;
        }
        Ok(self.end_fill(&walk))
    }

    /// Starts a fill from `start` that the caller drives: [`Canvas::next_fov`] gives the next
    /// FOV to predict, [`Canvas::apply_fov`] takes the prediction, [`Canvas::end_fill`] the
    /// result. [`Canvas::fill_at`] is this loop with the canvas's predictor; the browser runs
    /// it with predictions read from WebGPU asynchronously, yielding between steps.
    pub fn begin_fill(&mut self, start: [usize; 3], max_steps: usize) -> FillWalk {
        self.mask[start] = logit(self.options.init_activation);
        FillWalk {
            start,
            queue: VecDeque::from([start.map(|v| v as isize)]),
            done: HashSet::new(),
            lo: start,
            hi: start,
            steps: 0,
            max_steps,
        }
    }

    /// The next FOV the walk needs predicted; `None` when the fill is over (the queue is
    /// empty, the step budget spent, or the seed fell below the move threshold).
    pub fn next_fov(&self, walk: &mut FillWalk) -> Option<FovInput> {
        let deltas = self.deltas;
        let start = walk.start;
        let quantize = |pos: [isize; 3]| -> [isize; 3] {
            [0, 1, 2].map(|a| {
                let d = deltas[a].max(1) as isize;
                (pos[a] - start[a] as isize + deltas[a] as isize / 2).div_euclid(d)
            })
        };
        while let Some(pos) = walk.queue.pop_front() {
            let seed_holds = self.mask[start] >= self.move_logit;
            if walk.steps >= walk.max_steps || !seed_holds {
                walk.queue.clear();
                return None;
            }
            if walk.done.contains(&quantize(pos)) || !self.is_valid_pos(pos, false) {
                continue;
            }
            walk.done.insert(quantize(pos));
            return Some(self.fov_input(pos.map(|v| v as usize)));
        }
        None
    }

    /// Takes the network's logits for the FOV at `pos` (from [`Canvas::next_fov`]) and
    /// queues the moves they allow.
    pub fn apply_fov(
        &mut self,
        walk: &mut FillWalk,
        pos: [usize; 3],
        logits: Vec<f32>,
    ) -> Result<(), FfnInferError> {
        let logits = self.write_prediction(pos, logits)?;
        walk.steps += 1;
        walk.lo = [0, 1, 2].map(|a| walk.lo[a].min(pos[a]));
        walk.hi = [0, 1, 2].map(|a| walk.hi[a].max(pos[a]));
        for (_, rel) in self.face_moves(&logits) {
            walk.queue
                .push_back([0, 1, 2].map(|a| pos[a] as isize + rel[a]));
        }
        Ok(())
    }

    /// What the walk did: its steps and the box the mask was written in.
    pub fn end_fill(&self, walk: &FillWalk) -> Fill {
        let m = self.margin();
        let (nz, ny, nx) = self.mask.dim();
        let shape = [nz, ny, nx];
        Fill {
            steps: walk.steps,
            bounds: [
                [0, 1, 2].map(|a| walk.lo[a].saturating_sub(m[a])),
                [0, 1, 2].map(|a| (walk.hi[a] + m[a] + 1).min(shape[a])),
            ],
        }
    }

    /// True when a fill could start at `pos`: a whole FOV fits around it.
    pub fn fits_fov(&self, pos: [usize; 3]) -> bool {
        self.is_valid_pos(pos.map(|v| v as isize), true)
    }

    /// The probability at the seed after a fill, and whether the fill kept it (at least the
    /// move threshold, google/ffn's test for keeping an object).
    pub fn seed_kept(&self, pos: [usize; 3]) -> (f32, bool) {
        (self.probability(pos), self.mask[pos] >= self.move_logit)
    }

    /// The voxels of the fill's box at or above the segment threshold that no object owns.
    pub fn fill_mask(&self, fill: &Fill) -> Array3<bool> {
        let [lo, hi] = fill.bounds;
        let sel = s![lo[0]..hi[0], lo[1]..hi[1], lo[2]..hi[2]];
        let t = logit(self.options.segment_threshold);
        ndarray::Zip::from(self.mask.slice(sel))
            .and(self.segmentation.slice(sel))
            .map_collect(|&m, &s| m >= t && s <= 0)
    }

    /// Every voxel of the canvas at or above the segment threshold (whatever owns it): the
    /// object of an interactive fill, which may cross existing labels (to extend or split).
    pub fn object_mask(&self) -> Array3<bool> {
        let t = logit(self.options.segment_threshold);
        self.mask.mapv(|m| m >= t)
    }

    /// The network's field of view `[z, y, x]`.
    pub fn fov(&self) -> [usize; 3] {
        self.fov
    }

    /// Forgets the fill's mask (back to unexplored).
    pub fn clear_fill(&mut self, fill: &Fill) {
        let [lo, hi] = fill.bounds;
        self.mask
            .slice_mut(s![lo[0]..hi[0], lo[1]..hi[1], lo[2]..hi[2]])
            .fill(f32::NAN);
    }

    /// Segments one object from `pos` (google/ffn's `segment_all` step); returns its ID when
    /// kept.
    pub fn segment_at(&mut self, pos: [usize; 3]) -> Result<Option<u32>, FfnInferError> {
        let Some(mut walk) = self.begin_segment(pos) else {
            return Ok(None);
        };
        while let Some(input) = self.next_fov(&mut walk) {
            let at = input.pos;
            let values = self.predictor.predict(input.image, input.seed, self.fov)?;
            self.apply_fov(&mut walk, at, values)?;
        }
        Ok(self.end_segment(pos, &walk))
    }

    /// The first half of [`Canvas::segment_at`] for callers that drive the fill: `None` when
    /// the seed is skipped (no FOV fits, it is taken, or an object is within
    /// `min_boundary_dist`), else the walk to drive with [`Canvas::next_fov`] and
    /// [`Canvas::apply_fov`] before [`Canvas::end_segment`].
    pub fn begin_segment(&mut self, pos: [usize; 3]) -> Option<FillWalk> {
        let ipos = pos.map(|v| v as isize);
        if !self.is_valid_pos(ipos, true) {
            return None;
        }
        let b = self.options.min_boundary_dist;
        let (nz, ny, nx) = self.segmentation.dim();
        let near = self
            .segmentation
            .slice(s![
                pos[0].saturating_sub(b[0])..(pos[0] + b[0] + 1).min(nz),
                pos[1].saturating_sub(b[1])..(pos[1] + b[1] + 1).min(ny),
                pos[2].saturating_sub(b[2])..(pos[2] + b[2] + 1).min(nx)
            ])
            .iter()
            .any(|&v| v > 0);
        if near {
            self.segmentation[pos] = -1;
            return None;
        }
        Some(self.begin_fill(pos, usize::MAX))
    }

    /// The second half of [`Canvas::segment_at`]: keeps the object (the next ID) when the
    /// seed held and it is large enough, and forgets the fill's mask.
    pub fn end_segment(&mut self, pos: [usize; 3], walk: &FillWalk) -> Option<u32> {
        let fill = self.end_fill(walk);
        let mut kept = None;
        if fill.steps > 0 && self.mask[pos] >= self.move_logit {
            let mask = self.fill_mask(&fill);
            let count = mask.iter().filter(|&&m| m).count() as u64;
            if count >= self.options.min_segment_size {
                self.max_id += 1;
                let id = self.max_id;
                let [lo, hi] = fill.bounds;
                ndarray::Zip::from(self.segmentation.slice_mut(s![
                    lo[0]..hi[0],
                    lo[1]..hi[1],
                    lo[2]..hi[2]
                ]))
                .and(&mask)
                .for_each(|s, &m| {
                    if m {
                        *s = id;
                    }
                });
                kept = u32::try_from(id).ok();
            }
        }
        if kept.is_none() && self.segmentation[pos] == 0 {
            self.segmentation[pos] = -1;
        }
        self.clear_fill(&fill);
        kept
    }

    /// Segments from every seed in order, reporting progress per seed.
    pub fn segment_all(
        &mut self,
        seeds: &[[usize; 3]],
        progress: &mut dyn Progress,
    ) -> Result<(), FfnInferError> {
        let total = seeds.len() as u64;
        for (i, &pos) in seeds.iter().enumerate() {
            if progress.report(i as u64, total).is_break() {
                return Err(Cancelled.into());
            }
            self.segment_at(pos)?;
        }
        let _ = progress.report(total, total);
        Ok(())
    }

    /// The segmentation with consecutive IDs from 1 (0 = background).
    pub fn labels(&self) -> Array3<u32> {
        let mut map = std::collections::HashMap::new();
        let mut next = 0u32;
        self.segmentation.mapv(|v| {
            if v <= 0 {
                0
            } else {
                *map.entry(v).or_insert_with(|| {
                    next += 1;
                    next
                })
            }
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The ideal FFN: inside the FOV, the bright voxels 6-connected (through bright voxels) to
    /// a voxel the mask already holds (logit ≥ 0) become +4 (a little more near the FOV's
    /// centre, as a trained network is surest there), the rest −4.
    pub(crate) struct Oracle;
    impl FovPredictor for Oracle {
        fn predict(
            &mut self,
            image: Vec<f32>,
            seed: Vec<f32>,
            fov: [usize; 3],
        ) -> Result<Vec<f32>, FfnInferError> {
            let idx = |p: [usize; 3]| (p[0] * fov[1] + p[1]) * fov[2] + p[2];
            let mut inside = vec![false; image.len()];
            let mut queue: VecDeque<[usize; 3]> = VecDeque::new();
            for z in 0..fov[0] {
                for y in 0..fov[1] {
                    for x in 0..fov[2] {
                        let i = idx([z, y, x]);
                        if seed[i] >= 0.0 && image[i] > 0.5 {
                            inside[i] = true;
                            queue.push_back([z, y, x]);
                        }
                    }
                }
            }
            while let Some(p) = queue.pop_front() {
                for a in 0..3 {
                    for d in [-1isize, 1] {
                        let q = p[a] as isize + d;
                        if q < 0 || q >= fov[a] as isize {
                            continue;
                        }
                        let mut n = p;
                        n[a] = q as usize;
                        let j = idx(n);
                        if !inside[j] && image[j] > 0.5 {
                            inside[j] = true;
                            queue.push_back(n);
                        }
                    }
                }
            }
            let c = fov.map(|f| (f / 2) as f32);
            let mut out = Vec::with_capacity(inside.len());
            for z in 0..fov[0] {
                for y in 0..fov[1] {
                    for x in 0..fov[2] {
                        let d = ((z as f32 - c[0]).powi(2)
                            + (y as f32 - c[1]).powi(2)
                            + (x as f32 - c[2]).powi(2))
                        .sqrt();
                        out.push(if inside[idx([z, y, x])] {
                            4.0 + 1.0 / (1.0 + d)
                        } else {
                            -4.0
                        });
                    }
                }
            }
            Ok(out)
        }
    }

    pub(crate) fn network() -> FfnConfig {
        FfnConfig {
            depth: 1,
            features: 1,
            fov: [9, 9, 9],
            deltas: [3, 3, 3],
        }
    }

    /// Two spheres of radius 9, centres 19 apart along x, separated by a dark plane at x = 46.
    fn two_spheres() -> Array3<f32> {
        let r = 9.0f32;
        Array3::from_shape_fn((48, 48, 96), |(z, y, x)| {
            let d = |cx: f32| {
                ((z as f32 - 24.0).powi(2) + (y as f32 - 24.0).powi(2) + (x as f32 - cx).powi(2))
                    .sqrt()
            };
            f32::from(u8::from(
                (d(36.0) <= r && x < 46) || (d(55.0) <= r && x > 46),
            ))
        })
    }

    #[test]
    fn one_seed_fills_one_of_two_touching_spheres_and_stops() {
        let image = two_spheres();
        let options = FfnInferOptions {
            min_segment_size: 100,
            ..FfnInferOptions::default()
        };
        let norm = Normalization {
            mean: 0.0,
            std: 1.0,
        };
        let mut canvas =
            Canvas::new(Oracle, &network(), norm, image.view(), options).expect("canvas");
        assert_eq!(canvas.segment_at([24, 24, 36]).expect("fill"), Some(1));
        let labels = canvas.labels();
        let (mut first, mut other) = (0, 0);
        for ((z, y, x), &l) in labels.indexed_iter() {
            if l == 1 {
                assert!(image[[z, y, x]] > 0.5, "a dark voxel joined at {z},{y},{x}");
                if x < 46 {
                    first += 1;
                } else {
                    other += 1;
                }
            }
        }
        let sphere = image
            .indexed_iter()
            .filter(|((_, _, x), &v)| v > 0.5 && *x < 46)
            .count();
        assert_eq!(other, 0, "the fill crossed into the second sphere");
        assert_eq!(first, sphere, "the fill covers the first sphere");
        // A seed inside the filled sphere is skipped; one in the other sphere starts object 2.
        assert_eq!(canvas.segment_at([24, 24, 37]).expect("skip"), None);
        assert_eq!(canvas.segment_at([24, 24, 55]).expect("second"), Some(2));
        let labels = canvas.labels();
        assert!(labels.iter().all(|&l| l <= 2));
        assert_eq!(labels[[24, 24, 47]], 2);
        assert_eq!(labels[[24, 24, 46]], 0);
    }

    #[test]
    fn a_fill_driven_from_outside_equals_fill_at() {
        let image = two_spheres();
        let norm = Normalization {
            mean: 0.0,
            std: 1.0,
        };
        let options = FfnInferOptions::default();
        let seed = [24, 24, 36];
        let mut own =
            Canvas::new(Oracle, &network(), norm, image.view(), options.clone()).expect("canvas");
        let filled = own.fill_at(seed, usize::MAX).expect("fill");
        let mut driven = Canvas::new(DrivenFromOutside, &network(), norm, image.view(), options)
            .expect("canvas");
        assert!(driven.fits_fov(seed));
        assert!(!driven.fits_fov([2, 24, 36]), "a FOV does not fit at z 2");
        let mut walk = driven.begin_fill(seed, usize::MAX);
        let mut oracle = Oracle;
        while let Some(input) = driven.next_fov(&mut walk) {
            let logits = oracle
                .predict(input.image, input.seed, driven.fov())
                .expect("oracle");
            driven
                .apply_fov(&mut walk, input.pos, logits)
                .expect("apply");
        }
        assert_eq!(driven.end_fill(&walk), filled);
        assert_eq!(walk.steps(), filled.steps);
        assert_eq!(driven.object_mask(), own.object_mask());
        let (p, kept) = driven.seed_kept(seed);
        assert!(kept && p > 0.9, "{p}");
        // The object is the first sphere: bright, and none of it across the dark plane.
        let mask = driven.object_mask();
        assert!(mask
            .indexed_iter()
            .all(|((z, y, x), &m)| !m || (image[[z, y, x]] > 0.5 && x < 46)));
        // A step budget stops the walk early; the undriven canvas says it has no predictor.
        let mut short = Canvas::new(
            DrivenFromOutside,
            &network(),
            norm,
            image.view(),
            FfnInferOptions::default(),
        )
        .expect("canvas");
        let mut walk = short.begin_fill(seed, 2);
        let mut n = 0;
        while let Some(input) = short.next_fov(&mut walk) {
            let logits = Oracle
                .predict(input.image, input.seed, short.fov())
                .expect("oracle");
            short
                .apply_fov(&mut walk, input.pos, logits)
                .expect("apply");
            n += 1;
        }
        assert_eq!(n, 2);
        assert!(short
            .fill_at(seed, 5)
            .unwrap_err()
            .to_string()
            .contains("driven from outside"));
    }

    #[test]
    fn peaks_seed_both_spheres_and_small_fills_are_dropped() {
        let image = two_spheres();
        let seeds = super::super::seeds::policy_peaks(image.view());
        assert!(!seeds.is_empty());
        let norm = Normalization {
            mean: 0.0,
            std: 1.0,
        };
        let options = FfnInferOptions {
            min_segment_size: 100,
            ..FfnInferOptions::default()
        };
        let mut canvas =
            Canvas::new(Oracle, &network(), norm, image.view(), options).expect("canvas");
        canvas
            .segment_all(&seeds, &mut emstudio_core::progress::NoProgress)
            .expect("segment");
        let labels = canvas.labels();
        assert_ne!(labels[[24, 24, 36]], 0);
        assert_ne!(labels[[24, 24, 55]], 0);
        assert_ne!(labels[[24, 24, 36]], labels[[24, 24, 55]]);
        // A minimum size above a sphere's volume drops every fill.
        let options = FfnInferOptions {
            min_segment_size: 1_000_000,
            ..FfnInferOptions::default()
        };
        let mut canvas =
            Canvas::new(Oracle, &network(), norm, image.view(), options).expect("canvas");
        canvas
            .segment_all(&seeds, &mut emstudio_core::progress::NoProgress)
            .expect("segment");
        assert!(canvas.labels().iter().all(|&l| l == 0));
    }

    #[test]
    fn a_volume_smaller_than_the_fov_is_refused() {
        let image = Array3::<f32>::zeros((5, 20, 20));
        let e = Canvas::new(
            Oracle,
            &network(),
            Normalization {
                mean: 0.0,
                std: 1.0,
            },
            image.view(),
            FfnInferOptions::default(),
        )
        .err()
        .expect("refused")
        .to_string();
        assert!(
            e.contains("smaller than the network's field of view"),
            "{e}"
        );
    }
}
