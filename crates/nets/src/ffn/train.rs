//! google/ffn's training loop (`ffn/training/train.py`, `examples.py`), one step at a time.
//!
//! - Training centres: the partition volume of each label volume (`ffn_data`, box radius and
//!   margin = the FOV radius plus the deltas), every partition class (background included)
//!   drawn equally often: a class uniformly, then one of its voxels (google/ffn balances the
//!   same way by resampling each class up to the largest; at most [`MAX_PER_CLASS`] voxels per
//!   class are kept, a seeded reservoir sample).
//! - One example: the image and labels around a centre, the FOV plus twice the deltas along
//!   each axis (the training canvas), randomly reflected along z, y, x and (when the FOV's x
//!   and y sizes agree) transposed in y/x; the target is 0.95 on the centre voxel's object and
//!   0.05 elsewhere (0.05 everywhere when the centre is background); the mask starts at 0.05
//!   with 0.95 at the centre (as logits).
//! - The "fixed" movement policy: the FOV visits the canvas centre, then the 26 shifts by
//!   ±deltas (in an order shuffled once per run), each only if the mask at the new centre is
//!   at least the move threshold (0.9) at that time; each prediction is written back into the
//!   mask before the next position is checked, so an example takes 1 to 27 steps.
//! - A batch holds `batch` examples, each at its own position in its own walk; a finished walk
//!   starts a new example.
//! - Loss: sigmoid cross-entropy of the predicted logits (seed + update) against the soft
//!   target, the mean over every voxel; gradients clipped element-wise to ±`grad_clip`; SGD
//!   (google/ffn's default, learning rate 0.001) or Adam.
//! - Mask scores of the FOVs trained on: voxels over 0.5 against the target over 0.5
//!   (accuracy, precision, recall, F1).
//!
//! [`evaluate_masks`] runs the same walk without training from given centres (e.g. on a
//! held-out block) and scores the whole canvas.

use super::file::{FfnFileError, FfnHeader, FfnModelFile};
use super::logit;
use super::net::{ConvStack3d, FfnConfig};
use crate::model::{LossPoint, Normalization, Provenance};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::tensor::Bytes;
use emstudio_core::ffn_data::{compute_partitions, PartitionParams, EXCLUDED};
use emstudio_core::progress::Progress;
use ndarray::{s, Array3, ArrayView3, Axis};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The most voxels kept per partition class and volume (a seeded reservoir sample).
pub const MAX_PER_CLASS: usize = 1 << 18;
/// The soft target inside the object (and the seed's value at the centre).
pub const SOFT_TRUE: f64 = 0.95;
/// The soft target outside (and the mask's initial value).
pub const SOFT_FALSE: f64 = 0.05;

/// The optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FfnOptimizer {
    /// Plain gradient descent (google/ffn's default).
    Sgd,
    /// Adam (β 0.9, 0.999, ε 1e-8).
    Adam,
}

/// Training settings (JSON with defaults for every missing field).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FfnTrainConfig {
    /// The network.
    pub network: FfnConfig,
    /// Steps to run.
    pub steps: u64,
    /// Examples per step.
    pub batch: usize,
    /// SGD or Adam.
    pub optimizer: FfnOptimizer,
    /// Learning rate.
    pub learning_rate: f64,
    /// Element-wise gradient clip (0 = none; google/ffn: 0.7).
    pub grad_clip: f32,
    /// The FOV moves where the mask is at least this probability (google/ffn: 0.9).
    pub move_threshold: f64,
    /// Objects smaller than this (voxels in the volume) count as background when the centres
    /// are drawn (google/ffn's `min_size`, 10000).
    pub min_size: u64,
    /// Random reflections along z, y, x and y/x transposition.
    pub augment: bool,
    /// Seed of the initial weights, the centres and the augmentation.
    pub seed: u64,
}

impl Default for FfnTrainConfig {
    fn default() -> Self {
        Self {
            network: FfnConfig::preset("light").expect("preset"),
            steps: 1000,
            batch: 4,
            optimizer: FfnOptimizer::Sgd,
            learning_rate: 0.001,
            grad_clip: 0.7,
            move_threshold: 0.9,
            min_size: 10_000,
            augment: true,
            seed: 0,
        }
    }
}

/// Why training cannot start or go on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FfnTrainError {
    /// A setting is out of range (the message names it).
    #[error("{0}")]
    Invalid(String),
    /// The training data cannot be used (the message names the volume).
    #[error("{0}")]
    Data(String),
    /// The model to start from.
    #[error(transparent)]
    Model(#[from] FfnFileError),
    /// The compute device failed.
    #[error("the compute device failed: {0}")]
    Device(String),
    /// Cancelled while preparing.
    #[error("cancelled")]
    Cancelled,
}

impl FfnTrainConfig {
    /// Checks every setting.
    pub fn check_bounds(&self) -> Result<(), FfnTrainError> {
        let bad = |m: String| Err(FfnTrainError::Invalid(m));
        self.network
            .validate()
            .map_err(|e| FfnTrainError::Invalid(e.to_string()))?;
        if !(1..=10_000_000).contains(&self.steps) {
            return bad(format!("steps is {}: 1 to 10000000", self.steps));
        }
        if !(1..=64).contains(&self.batch) {
            return bad(format!("batch is {}: 1 to 64", self.batch));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad(format!(
                "the learning rate is {}: above 0 and at most 1",
                self.learning_rate
            ));
        }
        if !(self.grad_clip >= 0.0 && self.grad_clip.is_finite()) {
            return bad(format!(
                "the gradient clip is {}: 0 (none) or positive",
                self.grad_clip
            ));
        }
        if !(self.move_threshold > 0.5 && self.move_threshold < 1.0) {
            return bad(format!(
                "the move threshold is {}: a probability above 0.5 and below 1",
                self.move_threshold
            ));
        }
        Ok(())
    }

    /// The training canvas (FOV plus twice the deltas), z, y, x.
    pub fn canvas_zyx(&self) -> [usize; 3] {
        let (f, d) = (self.network.fov_zyx(), self.network.deltas_zyx());
        [f[0] + 2 * d[0], f[1] + 2 * d[1], f[2] + 2 * d[2]]
    }

    /// How far centres stay from the border (half the canvas), z, y, x; also the partitions'
    /// box radius.
    pub fn margin_zyx(&self) -> [usize; 3] {
        self.canvas_zyx().map(|c| c / 2)
    }

    /// The partitions training draws its centres from: a box of half its canvas, its
    /// minimum object size, google/ffn's thresholds.
    pub fn partition_params(&self) -> PartitionParams {
        PartitionParams {
            lom_radius: self.margin_zyx(),
            min_size: self.min_size,
            ..PartitionParams::default()
        }
    }
}

/// One training volume: image scaled to `[0, 1]` and dense instance labels (0 = background).
#[derive(Clone, Debug)]
pub struct FfnVolume {
    /// For messages and the model's provenance.
    pub name: String,
    /// z, y, x.
    pub image: Array3<f32>,
    /// z, y, x, the image's shape.
    pub labels: Array3<u32>,
    /// Partitions computed before (`emstudio ffn prepare`, the browser's "Show training
    /// partitions") with the training's box radius and minimum size: used instead of
    /// computing them again.
    pub partitions: Option<Array3<u8>>,
}

impl FfnVolume {
    /// Checks that image and labels have one shape and that the labels are instances.
    pub fn new(name: &str, image: Array3<f32>, labels: Array3<u32>) -> Result<Self, FfnTrainError> {
        if image.dim() != labels.dim() {
            let (a, b) = (image.dim(), labels.dim());
            return Err(FfnTrainError::Data(format!(
                "{name}: the image ({}×{}×{}, z×y×x) and the labels ({}×{}×{}) differ in shape",
                a.0, a.1, a.2, b.0, b.1, b.2
            )));
        }
        let mut ids = std::collections::HashSet::new();
        for &v in &labels {
            if v != 0 && ids.insert(v) && ids.len() >= 2 {
                break;
            }
        }
        if ids.len() < 2 {
            return Err(FfnTrainError::Data(format!(
                "{name}: the labels hold {} object ID(s): an FFN learns from dense instance \
                 labels (one ID per neuron), not from a mask",
                ids.len()
            )));
        }
        Ok(Self {
            name: name.to_string(),
            image,
            labels,
            partitions: None,
        })
    }

    /// Takes the partitions computed before (with the training's box radius, minimum size
    /// and google/ffn's thresholds: the caller checks the settings) instead of computing them
    /// again; they must have the labels' shape.
    pub fn with_partitions(mut self, partitions: Array3<u8>) -> Result<Self, FfnTrainError> {
        if partitions.dim() != self.labels.dim() {
            let (a, b) = (partitions.dim(), self.labels.dim());
            return Err(FfnTrainError::Data(format!(
                "{}: the partitions ({}×{}×{}, z×y×x) and the labels ({}×{}×{}) differ in shape",
                self.name, a.0, a.1, a.2, b.0, b.1, b.2
            )));
        }
        self.partitions = Some(partitions);
        Ok(self)
    }
}

/// Counts of voxels over 0.5 against a target over 0.5.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskCounts {
    /// Predicted in, target in.
    pub tp: u64,
    /// Predicted in, target out.
    pub fp: u64,
    /// Predicted out, target in.
    pub fn_: u64,
    /// Predicted out, target out.
    pub tn: u64,
}

impl MaskCounts {
    fn add(&mut self, predicted: bool, target: bool) {
        match (predicted, target) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }
    /// Adds another's counts.
    pub fn merge(&mut self, o: &MaskCounts) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.tn += o.tn;
    }
    /// Correct voxels / all voxels (NaN without voxels).
    pub fn accuracy(&self) -> f64 {
        (self.tp + self.tn) as f64 / (self.tp + self.fp + self.fn_ + self.tn) as f64
    }
    /// tp / (tp + fp), 0 when nothing is predicted.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    /// tp / (tp + fn), 0 when the target is empty.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// What one step did.
#[derive(Clone, Debug, PartialEq)]
pub struct FfnStepReport {
    /// Steps done (this one included).
    pub step: u64,
    /// Steps the run will take in all.
    pub total: u64,
    /// This step's loss.
    pub loss: f32,
    /// This step's mask counts over the FOVs of the batch.
    pub counts: MaskCounts,
}

/// The central z plane of a training example's canvas ([`FfnTrainer::preview`]), rows of
/// `size[1]` values.
#[derive(Clone, Debug, PartialEq)]
pub struct FfnPreview {
    /// Height and width (y, x) of the plane: the training canvas, the FOV plus the moves.
    pub size: [usize; 2],
    /// The image, in [0, 1].
    pub image: Vec<f32>,
    /// 1 on the object of the example's centre, 0 elsewhere.
    pub target: Vec<f32>,
    /// The network's probability that a voxel is on the object (the pad value where no
    /// FOV has been yet).
    pub mask: Vec<f32>,
    /// Where the last step's FOV cut this plane, `[y0, x0, y1, x1]` (end exclusive); none
    /// when it sat above or below it.
    pub fov: Option<[usize; 4]>,
}

/// One point of the curves: means over the steps since the previous point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FfnCurvePoint {
    /// Step.
    pub step: u64,
    /// Mean loss.
    pub loss: f32,
    /// Mask accuracy, precision, recall over those steps' FOVs.
    pub accuracy: f32,
    /// See `accuracy`.
    pub precision: f32,
    /// See `accuracy`.
    pub recall: f32,
}

/// The balanced source of training centres (see the module doc).
#[derive(Clone, Debug)]
pub struct CentreSampler {
    /// Per class: (volume, z, y, x).
    classes: Vec<Vec<(u32, [u32; 3])>>,
}

impl CentreSampler {
    /// Partitions of every volume (reporting progress over all of them) and the centres of
    /// each class inside the margin.
    pub fn new(
        volumes: &[FfnVolume],
        config: &FfnTrainConfig,
        progress: &mut dyn Progress,
    ) -> Result<Self, FfnTrainError> {
        let margin = config.margin_zyx();
        let params = config.partition_params();
        let mut rng = SmallRng::seed_from_u64(config.seed ^ 0x5EED_CE47);
        // Per class: voxels seen, the reservoir of (volume, z, y, x).
        type Reservoir = (u64, Vec<(u32, [u32; 3])>);
        let mut classes: std::collections::BTreeMap<u8, Reservoir> =
            std::collections::BTreeMap::new();
        let n = volumes.len() as u64;
        let mut any_object = false;
        for (vi, v) in volumes.iter().enumerate() {
            let (nz, ny, nx) = v.labels.dim();
            if nz < config.canvas_zyx()[0] + 1
                || ny < config.canvas_zyx()[1] + 1
                || nx < config.canvas_zyx()[2] + 1
            {
                let c = config.canvas_zyx();
                return Err(FfnTrainError::Data(format!(
                    "{}: the volume ({nz}×{ny}×{nx}, z×y×x) is smaller than the training \
                     canvas ({}×{}×{}: the field of view plus twice the moves) plus one voxel",
                    v.name, c[0], c[1], c[2]
                )));
            }
            let mut inner =
                |done: u64, total: u64| progress.report(vi as u64 * total + done, n * total.max(1));
            let computed;
            let parts =
                match &v.partitions {
                    Some(p) => p,
                    None => {
                        computed = compute_partitions(v.labels.view(), &params, &mut inner)
                            .map_err(|e| match e {
                                emstudio_core::ffn_data::FfnDataError::Cancelled(_) => {
                                    FfnTrainError::Cancelled
                                }
                                e => FfnTrainError::Data(format!("{}: {e}", v.name)),
                            })?;
                        &computed
                    }
                };
            let [mz, my, mx] = margin;
            let inner = parts.slice(s![mz..nz - mz, my..ny - my, mx..nx - mx]);
            for ((z, y, x), &c) in inner.indexed_iter() {
                if c == EXCLUDED {
                    continue;
                }
                any_object |= c != 0;
                let (seen, members) = classes.entry(c).or_default();
                *seen += 1;
                let item = (
                    vi as u32,
                    [(z + mz) as u32, (y + my) as u32, (x + mx) as u32],
                );
                if members.len() < MAX_PER_CLASS {
                    members.push(item);
                } else {
                    let j = rng.random_range(0..*seen);
                    if (j as usize) < MAX_PER_CLASS {
                        members[j as usize] = item;
                    }
                }
            }
        }
        if !any_object {
            return Err(FfnTrainError::Data(format!(
                "no object of at least {} voxels inside the margin of {}: nothing to learn \
                 (lower the minimum object size)",
                config.min_size,
                volumes
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(Self {
            classes: classes.into_values().map(|(_, m)| m).collect(),
        })
    }

    /// The number of classes (partition values present, background included).
    pub fn class_count(&self) -> usize {
        self.classes.len()
    }

    /// A class uniformly, then one of its centres: (volume, [z, y, x]).
    pub fn sample(&self, rng: &mut SmallRng) -> (usize, [usize; 3]) {
        let class = &self.classes[rng.random_range(0..self.classes.len())];
        let (v, c) = class[rng.random_range(0..class.len())];
        (v as usize, c.map(|x| x as usize))
    }
}

/// One example's walk: its canvas-sized image, target and mask, and where it is in the
/// offsets.
struct Walk {
    image: Array3<f32>,
    target: Array3<f32>,
    mask: Array3<f32>,
    next: usize,
    /// The FOV's current offset (z, y, x) from the canvas centre.
    at: [isize; 3],
}

/// The training canvas around `centre` of `volume`, augmented, as a fresh walk.
fn new_walk(
    volume: &FfnVolume,
    centre: [usize; 3],
    canvas: [usize; 3],
    normalization: Normalization,
    augment: Option<&mut SmallRng>,
) -> Walk {
    let h = canvas.map(|c| c / 2);
    let sel = s![
        centre[0] - h[0]..centre[0] - h[0] + canvas[0],
        centre[1] - h[1]..centre[1] - h[1] + canvas[1],
        centre[2] - h[2]..centre[2] - h[2] + canvas[2]
    ];
    let mut image = volume
        .image
        .slice(sel)
        .mapv(|v| (v - normalization.mean) / normalization.std);
    let mut labels = volume.labels.slice(sel).to_owned();
    if let Some(rng) = augment {
        if canvas[1] == canvas[2] && rng.random_bool(0.5) {
            image = image
                .permuted_axes([0, 2, 1])
                .as_standard_layout()
                .to_owned();
            labels = labels
                .permuted_axes([0, 2, 1])
                .as_standard_layout()
                .to_owned();
        }
        for axis in 0..3 {
            if rng.random_bool(0.5) {
                image.invert_axis(Axis(axis));
                labels.invert_axis(Axis(axis));
            }
        }
        image = image.as_standard_layout().to_owned();
        labels = labels.as_standard_layout().to_owned();
    }
    let id = labels[h];
    let (hi, lo) = (SOFT_TRUE as f32, SOFT_FALSE as f32);
    let target = labels.mapv(|l| if id != 0 && l == id { hi } else { lo });
    let mut mask = Array3::from_elem(canvas, logit(SOFT_FALSE));
    mask[h] = logit(SOFT_TRUE);
    Walk {
        image,
        target,
        mask,
        next: 0,
        at: [0; 3],
    }
}

impl Walk {
    /// Moves to the next offset whose centre passes the threshold; false when none is left.
    fn advance(&mut self, offsets: &[[isize; 3]], threshold: f32) -> bool {
        let h = [0, 1, 2].map(|a| self.mask.dim_arr()[a] as isize / 2);
        while self.next < offsets.len() {
            let off = offsets[self.next];
            self.next += 1;
            let c = [0, 1, 2].map(|a| (h[a] + off[a]) as usize);
            if self.mask[c] >= threshold {
                self.at = off;
                return true;
            }
        }
        false
    }

    /// The FOV's selection in the canvas.
    fn fov(
        &self,
        fov: [usize; 3],
    ) -> ndarray::SliceInfo<[ndarray::SliceInfoElem; 3], ndarray::Ix3, ndarray::Ix3> {
        let d = self.mask.dim_arr();
        let start = [0, 1, 2].map(|a| (d[a] / 2 - fov[a] / 2) as isize + self.at[a]);
        s![
            start[0]..start[0] + fov[0] as isize,
            start[1]..start[1] + fov[1] as isize,
            start[2]..start[2] + fov[2] as isize
        ]
    }
}

/// A small extension: the dimensions as an array.
trait DimArr {
    fn dim_arr(&self) -> [usize; 3];
}
impl<T> DimArr for Array3<T> {
    fn dim_arr(&self) -> [usize; 3] {
        let (a, b, c) = self.dim();
        [a, b, c]
    }
}

/// The centre followed by the 26 shifts by ±deltas (z, y, x), the shifts shuffled by `rng`
/// (once per run, as google/ffn).
fn fixed_offsets(deltas: [usize; 3], rng: Option<&mut SmallRng>) -> Vec<[isize; 3]> {
    let d = deltas.map(|v| v as isize);
    let mut shifts = Vec::new();
    for dz in [-d[0], 0, d[0]] {
        for dy in [-d[1], 0, d[1]] {
            for dx in [-d[2], 0, d[2]] {
                if [dz, dy, dx] != [0, 0, 0] && !shifts.contains(&[dz, dy, dx]) {
                    shifts.push([dz, dy, dx]);
                }
            }
        }
    }
    if let Some(rng) = rng {
        shifts.shuffle(rng);
    }
    let mut out = vec![[0, 0, 0]];
    out.extend(shifts);
    out
}

/// Stacks the FOVs of `walks` into `[b, 1, z, y, x]` image and mask tensors (and targets).
fn batch_tensors(
    walks: &[&Walk],
    fov: [usize; 3],
    device: &Device,
) -> (Tensor<5>, Tensor<5>, Tensor<5>) {
    let n = fov.iter().product::<usize>();
    let (mut image, mut mask, mut target) = (
        Vec::with_capacity(n * walks.len()),
        Vec::with_capacity(n * walks.len()),
        Vec::with_capacity(n * walks.len()),
    );
    for w in walks {
        let sel = w.fov(fov);
        image.extend(w.image.slice(sel).iter());
        mask.extend(w.mask.slice(sel).iter());
        target.extend(w.target.slice(sel).iter());
    }
    let shape = [walks.len(), 1, fov[0], fov[1], fov[2]];
    let t = |v: Vec<f32>| Tensor::<5>::from_data(TensorData::new(v, shape), device);
    (t(image), t(mask), t(target))
}

/// Writes predicted logits (`[b, 1, z, y, x]` values in order) back into the walks' masks and
/// counts voxels over 0.5 against the targets.
fn write_back(walks: &mut [&mut Walk], fov: [usize; 3], logits: &[f32]) -> MaskCounts {
    let n = fov.iter().product::<usize>();
    let mut counts = MaskCounts::default();
    for (w, values) in walks.iter_mut().zip(logits.chunks_exact(n)) {
        let sel = w.fov(fov);
        let Walk { mask, target, .. } = &mut **w;
        let mut m = mask.slice_mut(sel);
        let t = target.slice(sel);
        for ((dst, &v), &tv) in m.iter_mut().zip(values).zip(t.iter()) {
            *dst = v;
            counts.add(v > 0.0, tv > 0.5);
        }
    }
    counts
}

/// Mean sigmoid cross-entropy of `logits` against soft `target`.
fn loss(logits: Tensor<5>, target: Tensor<5>) -> Tensor<1> {
    let per = logits.clone().clamp_min(0.0) - logits.clone() * target
        + (logits.abs().neg().exp() + 1.0).log();
    per.mean()
}

/// Mean and standard deviation of the images of `volumes`.
fn mean_std(volumes: &[FfnVolume]) -> Normalization {
    let (mut s, mut s2, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for v in volumes {
        for &x in &v.image {
            s += f64::from(x);
            s2 += f64::from(x) * f64::from(x);
            n += 1.0;
        }
    }
    let mean = s / n.max(1.0);
    let var = (s2 / n.max(1.0) - mean * mean).max(1e-12);
    Normalization {
        mean: mean as f32,
        std: var.sqrt().max(1e-6) as f32,
    }
}

/// A training run.
pub struct FfnTrainer {
    config: FfnTrainConfig,
    net: ConvStack3d,
    optim: burn::optim::ModuleOptimizer,
    device: Device,
    rng: SmallRng,
    volumes: Vec<FfnVolume>,
    sampler: CentreSampler,
    normalization: Normalization,
    offsets: Vec<[isize; 3]>,
    walks: Vec<Walk>,
    step: u64,
    first_step: u64,
    curve: Vec<FfnCurvePoint>,
    window: (f64, MaskCounts, u64),
    losses: Vec<LossPoint>,
    imported_from: Option<String>,
}

impl FfnTrainer {
    /// Prepares a run on `device` (an autodiff device): partitions and centres of `volumes`
    /// (progress reported), normalisation, the network (fresh, or `start`'s weights; with
    /// `resume`, its optimiser state and step count too, and its settings replace the
    /// config's network).
    pub fn new(
        mut config: FfnTrainConfig,
        volumes: Vec<FfnVolume>,
        device: &Device,
        start: Option<(&FfnModelFile, bool)>,
        progress: &mut dyn Progress,
    ) -> Result<Self, FfnTrainError> {
        if let Some((file, _)) = start {
            config.network = file.header.network.clone();
        }
        config.check_bounds()?;
        if volumes.is_empty() {
            return Err(FfnTrainError::Data("no training volume".into()));
        }
        let sampler = CentreSampler::new(&volumes, &config, progress)?;
        let (net, normalization, optimizer, first_step, losses, imported_from) = match start {
            Some((file, resume)) => (
                file.load_net(device)?,
                file.header.normalization,
                if resume { file.optimizer.clone() } else { None },
                if resume {
                    file.header.provenance.steps
                } else {
                    0
                },
                if resume {
                    file.header.provenance.losses.clone()
                } else {
                    Vec::new()
                },
                file.header.provenance.imported_from.clone(),
            ),
            None => (
                crate::train::seeded_init(device, config.seed, || config.network.build(device)),
                mean_std(&volumes),
                None,
                0,
                Vec::new(),
                None,
            ),
        };
        let clip =
            (config.grad_clip > 0.0).then_some(GradientClippingConfig::Value(config.grad_clip));
        let mut optim = match config.optimizer {
            FfnOptimizer::Sgd => SgdConfig::new().with_gradient_clipping(clip).init(),
            FfnOptimizer::Adam => AdamConfig::new()
                .with_epsilon(1e-8)
                .with_grad_clipping(clip)
                .init(),
        };
        if let Some(bytes) = optimizer {
            optim = optim
                .from_bytes(Bytes::from_bytes_vec(bytes))
                .map_err(|e| FfnTrainError::Model(FfnFileError::Weights(e.to_string())))?;
        }
        let mut rng = SmallRng::seed_from_u64(config.seed.wrapping_add(first_step));
        let offsets = fixed_offsets(config.network.deltas_zyx(), Some(&mut rng));
        Ok(Self {
            config,
            net,
            optim,
            device: device.clone(),
            rng,
            volumes,
            sampler,
            normalization,
            offsets,
            walks: Vec::new(),
            step: first_step,
            first_step,
            curve: Vec::new(),
            window: (0.0, MaskCounts::default(), 0),
            losses,
            imported_from,
        })
    }

    /// Steps done (across resumes).
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    /// The step the run ends at.
    pub fn total_steps(&self) -> u64 {
        self.first_step + self.config.steps
    }

    /// True when every step of the run is done.
    pub fn finished(&self) -> bool {
        self.step >= self.total_steps()
    }

    /// The balanced classes the centres come from.
    pub fn class_count(&self) -> usize {
        self.sampler.class_count()
    }

    /// The curves so far.
    pub fn curve(&self) -> &[FfnCurvePoint] {
        &self.curve
    }

    /// The normalisation in use.
    pub fn normalization(&self) -> Normalization {
        self.normalization
    }

    /// The central plane of the first training example after the last step (as google/ffn's
    /// training summaries show it): image, object, the network's mask and the last FOV. None
    /// before the first step.
    pub fn preview(&self) -> Option<FfnPreview> {
        let walk = self.walks.first()?;
        let (nz, ny, nx) = walk.mask.dim();
        let z = nz / 2;
        let n = self.normalization;
        let plane = |a: &Array3<f32>, f: &dyn Fn(f32) -> f32| -> Vec<f32> {
            a.slice(s![z, .., ..]).iter().map(|&v| f(v)).collect()
        };
        let fov = self.config.network.fov_zyx();
        let start = [0, 1, 2]
            .map(|a| walk.mask.dim_arr()[a] as isize / 2 - fov[a] as isize / 2 + walk.at[a]);
        let fov_box = (start[0]..start[0] + fov[0] as isize)
            .contains(&(z as isize))
            .then(|| {
                [
                    start[1] as usize,
                    start[2] as usize,
                    start[1] as usize + fov[1],
                    start[2] as usize + fov[2],
                ]
            });
        Some(FfnPreview {
            size: [ny, nx],
            image: plane(&walk.image, &|v| (v * n.std + n.mean).clamp(0.0, 1.0)),
            target: plane(&walk.target, &|v| if v > 0.5 { 1.0 } else { 0.0 }),
            mask: plane(&walk.mask, &|v| {
                let p = 1.0 / (1.0 + (-v).exp());
                if p.is_finite() {
                    p
                } else {
                    SOFT_FALSE as f32
                }
            }),
            fov: fov_box,
        })
    }

    /// The network as it is now (for evaluation; parameters stay on the training device).
    pub fn net(&self) -> ConvStack3d {
        self.net.clone()
    }

    /// The network as it is now, off the autodiff graph (for inference: a live fill).
    pub fn inference_net(&self) -> ConvStack3d {
        self.net.valid()
    }

    /// The slot's walk, advanced to its next position (a new example when it is done).
    fn ready_walk(&mut self, slot: usize) {
        let threshold = logit(self.config.move_threshold);
        if slot < self.walks.len() && self.walks[slot].advance(&self.offsets, threshold) {
            return;
        }
        let (vi, centre) = self.sampler.sample(&mut self.rng);
        let augment = self.config.augment.then_some(&mut self.rng);
        let mut walk = new_walk(
            &self.volumes[vi],
            centre,
            self.config.canvas_zyx(),
            self.normalization,
            augment,
        );
        walk.advance(&self.offsets, threshold);
        if slot < self.walks.len() {
            self.walks[slot] = walk;
        } else {
            self.walks.push(walk);
        }
    }

    /// One optimisation step on a batch of FOVs; the predictions go back into the walks.
    pub fn step(&mut self) -> Result<FfnStepReport, FfnTrainError> {
        let (logits, l) = self.step_tensors();
        let values = logits
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| FfnTrainError::Device(format!("{e:?}")))?;
        let loss_value = l
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| FfnTrainError::Device(format!("{e:?}")))?[0];
        Ok(self.finish_step(&values, loss_value))
    }

    /// [`FfnTrainer::step`] with the predictions and the loss read back asynchronously (any
    /// device; WebGPU in the browser cannot read synchronously).
    pub async fn step_async(&mut self) -> Result<FfnStepReport, FfnTrainError> {
        let (logits, l) = self.step_tensors();
        let device = |e: burn::tensor::ExecutionError| FfnTrainError::Device(e.to_string());
        let values = logits
            .into_data_async()
            .await
            .map_err(device)?
            .try_into_vec::<f32>()
            .map_err(|e| FfnTrainError::Device(format!("{e:?}")))?;
        let loss_value = l
            .into_data_async()
            .await
            .map_err(device)?
            .try_into_vec::<f32>()
            .map_err(|e| FfnTrainError::Device(format!("{e:?}")))?[0];
        Ok(self.finish_step(&values, loss_value))
    }

    /// The optimiser step on the next batch; returns its (detached) logits and its loss.
    fn step_tensors(&mut self) -> (Tensor<5>, Tensor<1>) {
        for slot in 0..self.config.batch {
            self.ready_walk(slot);
        }
        let fov = self.config.network.fov_zyx();
        let (image, mask, target) =
            batch_tensors(&self.walks.iter().collect::<Vec<_>>(), fov, &self.device);
        let logits = self.net.forward(image, mask);
        let l = loss(logits.clone(), target);
        let grads = GradientsParams::from_grads(l.backward(), &self.net);
        self.net = self
            .optim
            .step(self.config.learning_rate, self.net.clone(), grads);
        (logits.detach(), l)
    }

    /// Writes a step's predictions back into the walks and books the step.
    fn finish_step(&mut self, values: &[f32], loss_value: f32) -> FfnStepReport {
        let fov = self.config.network.fov_zyx();
        let counts = write_back(&mut self.walks.iter_mut().collect::<Vec<_>>(), fov, values);
        self.step += 1;
        self.record(loss_value, counts);
        FfnStepReport {
            step: self.step,
            total: self.total_steps(),
            loss: loss_value,
            counts,
        }
    }

    /// Curve bookkeeping: a point every 10 steps and at the end.
    fn record(&mut self, loss: f32, counts: MaskCounts) {
        self.window.0 += f64::from(loss);
        self.window.1.merge(&counts);
        self.window.2 += 1;
        if self.window.2 >= 10 || self.finished() {
            let (sum, c, n) = std::mem::take(&mut self.window);
            let point = FfnCurvePoint {
                step: self.step,
                loss: (sum / n as f64) as f32,
                accuracy: c.accuracy() as f32,
                precision: c.precision() as f32,
                recall: c.recall() as f32,
            };
            self.curve.push(point);
            self.losses.push(LossPoint {
                step: self.step,
                train: point.loss,
                validation: None,
            });
        }
    }

    /// The header a model file of this run gets (`saved`: ISO 8601 time).
    pub fn header(&self, saved: &str) -> FfnHeader {
        FfnHeader {
            network: self.config.network.clone(),
            normalization: self.normalization,
            provenance: Provenance {
                saved: saved.to_string(),
                data: self.volumes.iter().map(|v| v.name.clone()).collect(),
                training: serde_json::to_value(&self.config).ok(),
                steps: self.step,
                losses: self.losses.clone(),
                imported_from: self.imported_from.clone(),
                card: None,
            },
        }
    }

    /// The model file without the optimiser state, weights read back asynchronously (any
    /// device).
    pub async fn model_file_async(&self, saved: &str) -> Result<FfnModelFile, FfnTrainError> {
        Ok(FfnModelFile::from_net_async(self.header(saved), &self.net.valid()).await?)
    }

    /// The model file (with the optimiser state, so the run can resume).
    pub fn model_file(&self, saved: &str) -> Result<FfnModelFile, FfnTrainError> {
        let optimizer = self.optim.clone().into_bytes().ok().map(|b| b.to_vec());
        Ok(FfnModelFile::from_net(
            self.header(saved),
            &self.net.valid(),
            optimizer,
        )?)
    }
}

/// Runs the fixed-policy walk (no training) from each of `centres` of `volume` and scores the
/// whole canvases against their targets; `batch` walks at a time. `model` gives the network's
/// settings and normalisation.
pub fn evaluate_masks(
    net: &ConvStack3d,
    model: &FfnHeader,
    volume: &FfnVolume,
    centres: &[[usize; 3]],
    move_threshold: f64,
    batch: usize,
    device: &Device,
) -> Result<MaskCounts, FfnTrainError> {
    let (network, normalization) = (&model.network, model.normalization);
    let config = FfnTrainConfig {
        network: network.clone(),
        ..FfnTrainConfig::default()
    };
    let canvas = config.canvas_zyx();
    let fov = network.fov_zyx();
    let offsets = fixed_offsets(network.deltas_zyx(), None);
    let threshold = logit(move_threshold);
    let mut total = MaskCounts::default();
    for group in centres.chunks(batch.max(1)) {
        let mut walks: Vec<Walk> = group
            .iter()
            .map(|&c| new_walk(volume, c, canvas, normalization, None))
            .collect();
        let mut live: Vec<bool> = walks
            .iter_mut()
            .map(|w| w.advance(&offsets, threshold))
            .collect();
        while live.iter().any(|&l| l) {
            let mut active: Vec<&mut Walk> = walks
                .iter_mut()
                .zip(&live)
                .filter_map(|(w, &l)| l.then_some(w))
                .collect();
            let (image, mask, _) = batch_tensors(
                &active.iter().map(|w| &**w).collect::<Vec<_>>(),
                fov,
                device,
            );
            let values = net
                .forward(image, mask)
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| FfnTrainError::Device(format!("{e:?}")))?;
            write_back(&mut active, fov, &values);
            for (w, l) in walks.iter_mut().zip(live.iter_mut()) {
                if *l {
                    *l = w.advance(&offsets, threshold);
                }
            }
        }
        for w in &walks {
            for (&m, &t) in w.mask.iter().zip(&w.target) {
                total.add(m > 0.0, t > 0.5);
            }
        }
    }
    Ok(total)
}

/// `n` centres of `volume` balanced across its partition classes, as training draws them
/// (for evaluation on a held-out volume).
pub fn balanced_centres(
    volume: &FfnVolume,
    config: &FfnTrainConfig,
    n: usize,
    seed: u64,
) -> Result<Vec<[usize; 3]>, FfnTrainError> {
    let sampler = CentreSampler::new(
        std::slice::from_ref(volume),
        config,
        &mut emstudio_core::progress::NoProgress,
    )?;
    let mut rng = SmallRng::seed_from_u64(seed);
    Ok((0..n).map(|_| sampler.sample(&mut rng).1).collect())
}

/// The image view of a volume, for callers that score baselines on the same canvases.
pub fn canvas_view<'a, T>(
    array: &'a Array3<T>,
    centre: [usize; 3],
    canvas: [usize; 3],
) -> ArrayView3<'a, T> {
    let h = canvas.map(|c| c / 2);
    array.slice(s![
        centre[0] - h[0]..centre[0] - h[0] + canvas[0],
        centre[1] - h[1]..centre[1] - h[1] + canvas[1],
        centre[2] - h[2]..centre[2] - h[2] + canvas[2]
    ])
}

/// The classic baseline of [`evaluate_masks`]: on the canvas of each centre, the voxels on the
/// centre's side of the volume's Otsu threshold and 6-connected to it (a flood fill by
/// intensity, as the Edit panel's fill does), scored like the network's masks.
pub fn threshold_fill_counts(
    volume: &FfnVolume,
    centres: &[[usize; 3]],
    canvas: [usize; 3],
) -> MaskCounts {
    let values: Vec<f32> = volume.image.iter().copied().collect();
    let t = emstudio_core::filters::intensity::otsu_threshold(&values, 256);
    let mut counts = MaskCounts::default();
    for &c in centres {
        let image = canvas_view(&volume.image, c, canvas);
        let labels = canvas_view(&volume.labels, c, canvas);
        let h = canvas.map(|v| v / 2);
        let side = image[h] > t;
        let mut inside = Array3::<bool>::from_elem(canvas, false);
        let mut queue = std::collections::VecDeque::from([h]);
        inside[h] = true;
        while let Some([z, y, x]) = queue.pop_front() {
            for (dz, dy, dx) in [
                (-1, 0, 0),
                (1, 0, 0),
                (0, -1, 0),
                (0, 1, 0),
                (0, 0, -1),
                (0, 0, 1),
            ] {
                let n = [z as isize + dz, y as isize + dy, x as isize + dx];
                if (0..3).any(|a| n[a] < 0 || n[a] >= canvas[a] as isize) {
                    continue;
                }
                let n = n.map(|v| v as usize);
                if !inside[n] && (image[n] > t) == side {
                    inside[n] = true;
                    queue.push_back(n);
                }
            }
        }
        let id = labels[h];
        for (&p, &l) in inside.iter().zip(labels.iter()) {
            let target = id != 0 && l == id;
            match (p, target) {
                (true, true) => counts.tp += 1,
                (true, false) => counts.fp += 1,
                (false, true) => counts.fn_ += 1,
                (false, false) => counts.tn += 1,
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_offsets_are_the_centre_then_26_shifts() {
        let o = fixed_offsets([2, 4, 4], None);
        assert_eq!(o.len(), 27);
        assert_eq!(o[0], [0, 0, 0]);
        let mut sorted = o.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 27);
        // A zero delta along z: 9 distinct positions.
        assert_eq!(fixed_offsets([0, 4, 4], None).len(), 9);
        let mut rng = SmallRng::seed_from_u64(1);
        let shuffled = fixed_offsets([2, 4, 4], Some(&mut rng));
        assert_eq!(shuffled[0], [0, 0, 0]);
        assert_ne!(shuffled, o);
    }

    #[test]
    fn a_walk_moves_only_where_the_mask_passes_the_threshold() {
        let image = Array3::<f32>::zeros((9, 9, 9));
        let labels = Array3::<u32>::from_shape_fn((9, 9, 9), |(_, _, x)| 1 + u32::from(x > 4));
        let v = FfnVolume::new("t", image, labels).expect("volume");
        let norm = Normalization {
            mean: 0.0,
            std: 1.0,
        };
        let mut w = new_walk(&v, [4, 4, 4], [5, 5, 5], norm, None);
        // Target: object 1 (x ≤ 4 in the volume = canvas x ≤ 2).
        assert_eq!(w.target[[2, 2, 2]], SOFT_TRUE as f32);
        assert_eq!(w.target[[2, 2, 3]], SOFT_FALSE as f32);
        let offsets = fixed_offsets([1, 1, 1], None);
        let th = logit(0.9);
        assert!(w.advance(&offsets, th));
        assert_eq!(w.at, [0, 0, 0]);
        // The mask is 0.05 everywhere but the centre: no shift passes.
        assert!(!w.advance(&offsets, th));
        // Raise the mask at the centre + (0, 0, 1): that shift is taken.
        let mut w = new_walk(&v, [4, 4, 4], [5, 5, 5], norm, None);
        w.mask[[2, 2, 3]] = logit(0.95);
        assert!(w.advance(&offsets, th));
        assert!(w.advance(&offsets, th));
        assert_eq!(w.at, [0, 0, 1]);
        assert!(!w.advance(&offsets, th));
    }

    #[test]
    fn awaited_steps_and_model_files_equal_the_synchronous_ones() {
        // Two objects split at x = 12 with a little texture; a tiny network.
        let image = Array3::from_shape_fn((12, 16, 24), |(z, y, x)| {
            (if x < 12 { 0.7 } else { 0.3 }) + ((z + 2 * y + 3 * x) % 5) as f32 * 0.02
        });
        let labels = Array3::from_shape_fn((12, 16, 24), |(_, _, x)| 1 + u32::from(x >= 12));
        let volume = FfnVolume::new("halves", image, labels).expect("volume");
        let config = FfnTrainConfig {
            network: FfnConfig {
                depth: 1,
                features: 2,
                fov: [5, 5, 5],
                deltas: [1, 1, 1],
            },
            steps: 3,
            batch: 2,
            min_size: 10,
            seed: 3,
            ..FfnTrainConfig::default()
        };
        let device = Device::flex().autodiff();
        let make = |start: Option<(&FfnModelFile, bool)>| {
            FfnTrainer::new(
                config.clone(),
                vec![volume.clone()],
                &device,
                start,
                &mut emstudio_core::progress::NoProgress,
            )
            .expect("trainer")
        };
        // The twin resumes the first at step 0: the same weights (burn's random generator is
        // shared by the tests running beside this one, so two fresh draws could differ).
        let mut sync = make(None);
        assert!(sync.preview().is_none(), "no example before the first step");
        let start = sync.model_file("t").expect("file");
        let mut awaited = make(Some((&start, true)));
        for _ in 0..3 {
            let a = sync.step().expect("step");
            let b = futures_lite::future::block_on(awaited.step_async()).expect("step");
            assert_eq!(a, b);
        }
        assert!(awaited.finished());
        // The preview: the canvas's central plane (FOV 5 + 2 × 1 moves = 7²), the image back
        // in its range, the object as 0/1, probabilities, and the FOV inside the plane.
        let p = sync.preview().expect("a preview after a step");
        assert_eq!(p.size, [7, 7]);
        for plane in [&p.image, &p.target, &p.mask] {
            assert_eq!(plane.len(), 49);
            assert!(plane.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        assert!(p.target.contains(&1.0), "the centre's object is marked");
        assert!(p.image.iter().any(|&v| v > 0.6) && p.image.iter().any(|&v| v < 0.4));
        assert!(p.fov.is_none_or(|[y0, x0, y1, x1]| y1 - y0 == 5
            && x1 - x0 == 5
            && y1 <= 7
            && x1 <= 7
            && y0 < y1
            && x0 < x1));
        assert_eq!(p, awaited.preview().expect("preview"));
        let file = futures_lite::future::block_on(awaited.model_file_async("t")).expect("file");
        let mut plain = sync.model_file("t").expect("file");
        plain.optimizer = None;
        assert_eq!(file, plain);
    }

    #[test]
    fn bad_data_names_the_volume_and_the_problem() {
        let e = FfnVolume::new("crop", Array3::zeros((4, 5, 6)), Array3::zeros((4, 5, 7)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("crop") && e.contains("differ in shape"), "{e}");
        let mask = Array3::from_shape_fn((4, 4, 4), |(z, _, _)| u32::from(z > 1));
        let e = FfnVolume::new("mask.tif", Array3::zeros((4, 4, 4)), mask)
            .unwrap_err()
            .to_string();
        assert!(e.contains("mask.tif") && e.contains("instance"), "{e}");
        let labels = Array3::from_shape_fn((20, 20, 20), |(z, _, _)| 1 + u32::from(z > 9));
        let v = FfnVolume::new("small", Array3::zeros((20, 20, 20)), labels).expect("volume");
        let e = v
            .clone()
            .with_partitions(Array3::zeros((20, 20, 19)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("small") && e.contains("partitions") && e.contains("differ in shape"),
            "{e}"
        );
        let e = CentreSampler::new(
            &[v],
            &FfnTrainConfig::default(),
            &mut emstudio_core::progress::NoProgress,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("small") && e.contains("smaller than the training canvas"),
            "{e}"
        );
    }
}
