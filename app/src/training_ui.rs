//! Platform-free parts of the Train and Infer panels, tested natively: the training settings
//! the form builds (as the JSON `emstudio_nets::train::TrainConfig` reads, without linking
//! burn into the UI bundle), the loss chart's geometry (log scale, smoothing), the ETA text,
//! what a model file says about itself (its JSON header), and the line describing the device
//! the networks will run on.

// Used by the browser panels; natively only the tests use it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use emstudio_protocol::{FfnTrainPreview, GpuInfo, NetDevice};
use serde_json::{json, Value};

/// The Train form's values.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainForm {
    /// An [`ArchChoice::name`] of [`ARCHITECTURES`] ("unet").
    pub arch: String,
    /// U-Net depth, or ResNet blocks / Highway units / DenseNet blocks.
    pub size: usize,
    /// Channels at full resolution.
    pub base_width: usize,
    /// Loss name (`LossKind` in snake case).
    pub loss: String,
    /// Optimiser steps.
    pub steps: u64,
    /// Patches per step.
    pub batch: usize,
    /// Patch side.
    pub patch: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Validation loss every N steps.
    pub validation_every: u64,
    /// Flips and 90° rotations.
    pub flips: bool,
    /// Elastic deformation.
    pub elastic: bool,
    /// Brightness / contrast / gamma.
    pub intensity: bool,
    /// Gaussian noise and blur.
    pub noise: bool,
    /// Random seed.
    pub seed: u64,
}

impl Default for TrainForm {
    fn default() -> Self {
        Self {
            arch: "unet".into(),
            size: 3,
            base_width: 8,
            loss: "softmax_cross_entropy".into(),
            steps: 200,
            batch: 4,
            patch: 128,
            learning_rate: 1e-3,
            validation_every: 25,
            flips: true,
            elastic: false,
            intensity: true,
            noise: true,
            seed: 1,
        }
    }
}

/// The largest value of each numeric field of the form: the trainer's bounds
/// (`emstudio_nets::train::bounds`; a test keeps them equal), so what the form sends is never
/// refused for its size, and a typo of 1e9 steps is clamped where it is typed.
pub mod limits {
    /// Steps.
    pub const MAX_STEPS: u64 = 10_000_000;
    /// Patches per step.
    pub const MAX_BATCH: usize = 64;
    /// Patch side.
    pub const MAX_PATCH: usize = 2048;
    /// Base width (every architecture's upper bound).
    pub const MAX_BASE_WIDTH: usize = 256;
}

/// An architecture the Train panel offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchChoice {
    /// Its name, as `emstudio_nets::arch::ArchConfig::name` gives it ("unet").
    pub name: &'static str,
    /// Its entry in the Architecture menu.
    pub label: &'static str,
    /// What the size field means for it.
    pub size_label: &'static str,
    /// The size field's smallest and largest value.
    pub size_range: (usize, usize),
    /// The size the form switches to when it is picked.
    pub default_size: usize,
}

/// The architectures of the Train panel's menu, in menu order. The app does not link
/// `emstudio-nets`, so a new architecture is added here by hand (and to
/// [`TrainForm::config_json`]); a test fails while this list and
/// `ArchConfig::all_defaults()` differ.
pub const ARCHITECTURES: [ArchChoice; 4] = [
    ArchChoice {
        name: "unet",
        label: "U-Net",
        size_label: "Depth (levels)",
        size_range: (1, 8),
        default_size: 3,
    },
    ArchChoice {
        name: "resnet",
        label: "ResNet",
        size_label: "Residual blocks",
        size_range: (1, 64),
        default_size: 9,
    },
    ArchChoice {
        name: "highway",
        label: "Highway-Net",
        size_label: "Highway units",
        size_range: (1, 64),
        default_size: 9,
    },
    ArchChoice {
        name: "densenet",
        label: "DenseNet",
        size_label: "Dense blocks",
        size_range: (1, 16),
        default_size: 3,
    },
];

/// The menu entry for an architecture name (the first, U-Net, for an unknown one).
pub fn arch_choice(name: &str) -> ArchChoice {
    ARCHITECTURES
        .iter()
        .copied()
        .find(|a| a.name == name)
        .unwrap_or(ARCHITECTURES[0])
}

/// What the size field means for an architecture, and its allowed range.
pub fn size_label(arch: &str) -> (&'static str, usize, usize) {
    let a = arch_choice(arch);
    (a.size_label, a.size_range.0, a.size_range.1)
}

impl TrainForm {
    /// The settings as `TrainConfig` JSON (binary segmentation: foreground = label ≠ 0).
    pub fn config_json(&self) -> String {
        let arch = match self.arch.as_str() {
            "resnet" => {
                json!({"arch": "resnet", "blocks": self.size, "base_width": self.base_width})
            }
            "highway" => {
                json!({"arch": "highway", "units": self.size, "base_width": self.base_width})
            }
            "densenet" => {
                json!({"arch": "densenet", "blocks": self.size, "layers": 4, "growth": 12,
                "base_width": self.base_width})
            }
            _ => json!({"arch": "unet", "depth": self.size, "base_width": self.base_width}),
        };
        let on = |b: bool, v: f64| if b { v } else { 0.0 };
        json!({
            "arch": arch,
            "classes": 1,
            "loss": self.loss,
            "steps": self.steps,
            "batch": self.batch,
            "patch": self.patch,
            "learning_rate": self.learning_rate,
            "schedule": {"kind": "cosine"},
            // Short runs still get several points on the loss chart.
            "validation_every": self.validation_every.min((self.steps / 8).max(1)),
            "seed": self.seed,
            "augment": {
                "flips": self.flips,
                "rotations": self.flips,
                "elastic_pixels": on(self.elastic, 4.0),
                "brightness": on(self.intensity, 0.1),
                "contrast": on(self.intensity, 0.1),
                "gamma": on(self.intensity, 0.2),
                "noise": on(self.noise, 0.03),
                "blur_probability": on(self.noise, 0.1),
                "missing_probability": 0.0,
                "misalign_probability": 0.0,
            },
        })
        .to_string()
    }
}

/// One point of the live loss curves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CurvePoint {
    /// Step.
    pub step: u64,
    /// Training loss (mean since the previous point).
    pub train: f32,
    /// Validation loss, when measured.
    pub validation: Option<f32>,
}

/// The loss curves as CSV (`step,training_loss,validation_loss`; an empty field where no
/// validation was measured), for a spreadsheet or a plot elsewhere. Losses are written in
/// full (the shortest text that reads back as the same `f32`).
pub fn curve_csv(points: &[CurvePoint]) -> String {
    let mut csv = String::from("step,training_loss,validation_loss\n");
    for p in points {
        let validation = p.validation.map(|v| v.to_string()).unwrap_or_default();
        csv.push_str(&format!("{},{},{validation}\n", p.step, p.train));
    }
    csv
}

/// One report of an FFN training run: the step, the mean loss and the mask's precision and
/// recall over the steps since the previous report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FfnCurveRow {
    /// Step.
    pub step: u64,
    /// Training loss (mean since the previous report).
    pub loss: f32,
    /// Mask precision over those steps' fields of view.
    pub precision: f32,
    /// Mask recall over the same.
    pub recall: f32,
}

/// An FFN training run's curves as CSV (`step,training_loss,mask_precision,mask_recall`),
/// every value in full (the shortest text that reads back as the same `f32`).
pub fn ffn_curve_csv(rows: &[FfnCurveRow]) -> String {
    let mut csv = String::from("step,training_loss,mask_precision,mask_recall\n");
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},{}\n",
            r.step, r.loss, r.precision, r.recall
        ));
    }
    csv
}

/// The chart's polylines (SVG `points`) and axis ticks, for a `width × height` box with
/// `pad` margins: training loss smoothed by an exponential moving average (`smoothing` in
/// 0..1, 0 = raw), validation loss as measured; losses on a log₁₀ scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// Smoothed training loss.
    pub train: String,
    /// Validation loss.
    pub validation: String,
    /// (y position, label) of the loss ticks (powers of ten and their halves).
    pub y_ticks: Vec<(f64, String)>,
    /// (x position, label) of the step ticks.
    pub x_ticks: Vec<(f64, String)>,
}

/// Lays out the loss chart; `total` is the run's step count (the x axis spans it).
pub fn chart(
    points: &[CurvePoint],
    total: u64,
    smoothing: f64,
    (width, height, pad): (f64, f64, f64),
) -> Chart {
    let positive = |v: f32| (v.is_finite() && v > 0.0).then_some(f64::from(v));
    let values = points
        .iter()
        .flat_map(|p| [positive(p.train), p.validation.and_then(positive)])
        .flatten();
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo.is_finite() {
        let (l, h) = (lo.log10().floor(), hi.log10().ceil());
        (l, if h > l { h } else { l + 1.0 })
    } else {
        (-1.0, 0.0)
    };
    let total = total.max(1) as f64;
    let px = |step: u64| pad + (step as f64 / total).clamp(0.0, 1.0) * (width - 2.0 * pad);
    let py = |v: f64| height - pad - ((v.log10() - lo) / (hi - lo)) * (height - 2.0 * pad);
    let mut ema = None::<f64>;
    let train: Vec<String> = points
        .iter()
        .filter_map(|p| {
            let v = positive(p.train)?;
            let s = match ema {
                Some(e) => smoothing * e + (1.0 - smoothing) * v,
                None => v,
            };
            ema = Some(s);
            Some(format!("{:.1},{:.1}", px(p.step), py(s)))
        })
        .collect();
    let validation: Vec<String> = points
        .iter()
        .filter_map(|p| {
            let v = p.validation.and_then(positive)?;
            Some(format!("{:.1},{:.1}", px(p.step), py(v)))
        })
        .collect();
    let mut y_ticks = Vec::new();
    let mut e = lo;
    while e <= hi + 1e-9 {
        let v = 10f64.powf(e);
        y_ticks.push((py(v), format_loss(v)));
        if e + 1.0 <= hi + 1e-9 {
            let half = 5.0 * v;
            y_ticks.push((py(half), format_loss(half)));
        }
        e += 1.0;
    }
    let x_ticks = (0..=4)
        .map(|i| {
            let step = (total * f64::from(i) / 4.0).round() as u64;
            (px(step), step.to_string())
        })
        .collect();
    Chart {
        train: train.join(" "),
        validation: validation.join(" "),
        y_ticks,
        x_ticks,
    }
}

fn format_loss(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').to_string()
    }
}

/// "1 min 05 s left" from steps done, in all, and the speed.
pub fn eta(done: u64, total: u64, steps_per_s: f64) -> String {
    if done >= total {
        return "done".into();
    }
    if steps_per_s <= 0.0 || !steps_per_s.is_finite() {
        return "estimating…".into();
    }
    let secs = ((total - done) as f64 / steps_per_s).round() as u64;
    if secs >= 3600 {
        format!("{} h {:02} min left", secs / 3600, secs / 60 % 60)
    } else if secs >= 60 {
        format!("{} min {:02} s left", secs / 60, secs % 60)
    } else {
        format!("{secs} s left")
    }
}

/// What the progress line adds when the trainer shrank the patch to fit the slices
/// (`used`, `wanted`): empty when it did not.
pub fn patch_note((used, wanted): (usize, usize)) -> String {
    if used >= wanted {
        String::new()
    } else {
        format!(" · patches {used}² (the training slices are too small for {wanted}²)")
    }
}

/// A file name for a model: letters, digits, `-`, `_` and `.` kept, the rest `-`, and the
/// `.emsmodel` suffix (`.ffn` kept for flood-filling network models, the CLI's suffix).
pub fn model_file_name(wanted: &str) -> String {
    let suffix = if wanted.trim().ends_with(".ffn") {
        "ffn"
    } else {
        "emsmodel"
    };
    let stem: String = wanted
        .trim()
        .trim_end_matches(".emsmodel")
        .trim_end_matches(".ffn")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut collapsed = String::with_capacity(stem.len());
    for c in stem.chars() {
        if !(c == '-' && collapsed.ends_with('-')) {
            collapsed.push(c);
        }
    }
    let stem = collapsed.trim_matches('-');
    let stem = if stem.is_empty() { "model" } else { stem };
    format!("{stem}.{suffix}")
}

/// `wanted` with the suffix of `kind`'s files: a flood-filling network renamed "neurons" is
/// stored as `neurons.ffn`, a 2D network as `neurons.emsmodel`.
pub fn name_for_kind(wanted: &str, kind: ModelKind) -> String {
    let stem = wanted
        .trim()
        .trim_end_matches(".emsmodel")
        .trim_end_matches(".ffn");
    match kind {
        ModelKind::Ffn => model_file_name(&format!("{stem}.ffn")),
        ModelKind::Cnn2d => model_file_name(stem),
    }
}

/// A store name for `wanted` (see [`model_file_name`]) that `taken` does not hold: `-2`, `-3`,
/// … before the suffix, which stays (`.ffn` files stay flood-filling networks).
pub fn free_model_name(wanted: &str, taken: impl Fn(&str) -> bool) -> String {
    let base = model_file_name(wanted);
    let (stem, suffix) = base.rsplit_once('.').unwrap_or((base.as_str(), "emsmodel"));
    let mut name = base.clone();
    let mut i = 2;
    while taken(&name) {
        name = format!("{stem}-{i}.{suffix}");
        i += 1;
    }
    name
}

/// The name a trained model is offered under: architecture, the dataset part of the image
/// layer's name (before `/`, without parenthesised notes) and the steps.
pub fn trained_model_name(arch: &str, image_layer: &str, steps: u64) -> String {
    let dataset = image_layer.split('/').next().unwrap_or(image_layer);
    let mut plain = String::new();
    let mut depth = 0usize;
    for c in dataset.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    model_file_name(&format!("{arch}-{}-{steps}steps", plain.trim()))
}

/// What a model file says about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSummary {
    /// A 2D CNN (Infer panel) or a flood-filling network (the Edit panel's FFN fill).
    pub kind: ModelKind,
    /// Architecture name ("unet"), or the FFN's shape ("FFN depth 4 · 16 features · FOV
    /// 17×17×17").
    pub arch: String,
    /// Steps trained.
    pub steps: u64,
    /// Output channels (1 = probability, K = classes).
    pub outputs: u64,
    /// When it was saved.
    pub saved: String,
    /// Its model card (`emstudio card`), if it has one.
    pub card: Option<CardSummary>,
}

/// Which network a model file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// A 2D CNN (`EMSTUDIO-MODEL1`).
    Cnn2d,
    /// A flood-filling network (`EMSTUDIO-FFN-01`).
    Ffn,
}

/// A model card as the Infer panel shows it (`emstudio_nets::card::ModelCard`).
#[derive(Clone, Debug, PartialEq)]
pub struct CardSummary {
    /// What the model finds, on what data, trained how.
    pub text: String,
    /// The pixels it was scored on.
    pub held_out: String,
    /// Its IoU there.
    pub iou: f64,
    /// The best plain threshold's IoU there.
    pub threshold_iou: f64,
}

impl CardSummary {
    /// "Held out (rows …): IoU 0.62; a plain threshold reaches 0.19."
    pub fn score_line(&self) -> String {
        format!(
            "Scored on {} (never trained on): IoU {:.2}; the best plain threshold of the image reaches {:.2}.",
            self.held_out, self.iou, self.threshold_iou
        )
    }
}

/// A flood-filling network preset of the FFN training form (`emstudio_nets::ffn::net::FfnConfig`'s
/// presets, kept by hand since the app does not link `nets`; a test checks them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FfnPreset {
    /// Its name in the settings ("light").
    pub name: &'static str,
    /// What the menu says.
    pub label: &'static str,
    /// Residual depth.
    pub depth: usize,
    /// Feature channels.
    pub features: usize,
    /// Field of view, x, y, z.
    pub fov: [usize; 3],
    /// Moves, x, y, z.
    pub deltas: [usize; 3],
}

/// The FFN training form's presets.
pub const FFN_PRESETS: [FfnPreset; 3] = [
    FfnPreset {
        name: "light",
        label: "light (FOV 17³, for the browser)",
        depth: 4,
        features: 16,
        fov: [17, 17, 17],
        deltas: [4, 4, 4],
    },
    FfnPreset {
        name: "anisotropic",
        label: "anisotropic (UNI-EM, FOV 33×33×17)",
        depth: 9,
        features: 32,
        fov: [33, 33, 17],
        deltas: [8, 8, 4],
    },
    FfnPreset {
        name: "isotropic",
        label: "isotropic (google/ffn, FOV 33³)",
        depth: 12,
        features: 32,
        fov: [33, 33, 33],
        deltas: [8, 8, 8],
    },
];

/// The FFN training preview as one RGBA picture (width, height, pixels): three panels of the
/// example's central plane side by side, one column apart — the image; the object it should
/// fill in green over the dimmed image; the network's probability in yellow (the FFN fill's
/// proposal colour) over the dimmed image, with the last FOV outlined in cyan. A preview whose
/// planes do not match its size draws nothing.
pub fn ffn_preview_rgba(p: &FfnTrainPreview) -> Option<(u32, u32, Vec<u8>)> {
    const GAP: usize = 1;
    let [h, w] = p.size;
    let n = h.checked_mul(w)?;
    if n == 0 || [&p.image, &p.target, &p.mask].iter().any(|v| v.len() != n) {
        return None;
    }
    let width = 3 * w + 2 * GAP;
    let mut out = vec![0u8; width * h * 4];
    let mut put = |panel: usize, y: usize, x: usize, rgb: [u8; 3]| {
        let i = (y * width + panel * (w + GAP) + x) * 4;
        out[i..i + 4].copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
    };
    let blend = |gray: u8, colour: [u8; 3], alpha: f32| -> [u8; 3] {
        let dim = f32::from(gray) * 0.6;
        colour.map(|c| (dim + (f32::from(c) - dim) * alpha).round() as u8)
    };
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let g = p.image[i];
            put(0, y, x, [g, g, g]);
            let on = if p.target[i] > 127 { 0.75 } else { 0.0 };
            put(1, y, x, blend(g, [60, 200, 90], on));
            put(
                2,
                y,
                x,
                blend(g, [255, 210, 0], f32::from(p.mask[i]) / 255.0 * 0.85),
            );
        }
    }
    if let Some([y0, x0, y1, x1]) = p.fov {
        if y0 < y1 && x0 < x1 && y1 <= h && x1 <= w {
            for y in y0..y1 {
                for x in x0..x1 {
                    if y == y0 || y == y1 - 1 || x == x0 || x == x1 - 1 {
                        put(2, y, x, [0, 220, 255]);
                    }
                }
            }
        }
    }
    Some((width as u32, h as u32, out))
}

/// Where an FFN run's live fill grows its object: the view's centre `(y, x)` on slice `z` of
/// a stack of `shape` (`[z, y, x]`), moved in so that the box of ±`radius` fits inside the
/// stack where the stack is larger than the box (the network's field of view then fits around
/// it). None when the centre is off the stack.
pub fn live_fill_seed(
    shape: [usize; 3],
    z: usize,
    centre: (usize, usize),
    radius: [usize; 3],
) -> Option<[usize; 3]> {
    let at = [z, centre.0, centre.1];
    if (0..3).any(|a| at[a] >= shape[a]) {
        return None;
    }
    Some([0, 1, 2].map(|a| match shape[a] > 2 * radius[a] {
        true => at[a].clamp(radius[a], shape[a] - 1 - radius[a]),
        false => shape[a] / 2,
    }))
}

/// The probability at or above which a voxel is the object (google/ffn's segment threshold).
pub const FFN_OBJECT_BYTE: u8 = 153;

/// A live fill's plane (probabilities 0–255, rows of `width`) as RGBA to draw over the slice:
/// the object (at or above [`FFN_OBJECT_BYTE`]) in the FFN fill's yellow with an opaque
/// border (so it shows over a label layer's colours), fainter below it down to nothing at 0;
/// and the number of object pixels. None when the plane does not match its size.
pub fn live_fill_rgba(probability: &[u8], width: usize) -> Option<(Vec<u8>, usize)> {
    if width == 0 || probability.is_empty() || probability.len() % width != 0 {
        return None;
    }
    let height = probability.len() / width;
    let on = |y: usize, x: usize| probability[y * width + x] >= FFN_OBJECT_BYTE;
    let mut object = 0;
    let mut out = Vec::with_capacity(probability.len() * 4);
    for (i, &p) in probability.iter().enumerate() {
        let (y, x) = (i / width, i % width);
        let pixel = if on(y, x) {
            object += 1;
            let border = y == 0
                || x == 0
                || y + 1 == height
                || x + 1 == width
                || !(on(y - 1, x) && on(y + 1, x) && on(y, x - 1) && on(y, x + 1));
            match border {
                true => [255, 235, 0, 255],
                false => [255, 210, 0, 150],
            }
        } else {
            [
                255,
                210,
                0,
                (u16::from(p) * 60 / u16::from(FFN_OBJECT_BYTE)) as u8,
            ]
        };
        out.extend_from_slice(&pixel);
    }
    Some((out, object))
}

/// The FFN training form.
#[derive(Clone, Debug, PartialEq)]
pub struct FfnTrainForm {
    /// Preset name.
    pub preset: String,
    /// Steps.
    pub steps: u64,
    /// Examples per step.
    pub batch: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Seed of the weights and the centres.
    pub seed: u64,
}

impl Default for FfnTrainForm {
    fn default() -> Self {
        Self {
            preset: "light".into(),
            steps: 500,
            batch: 4,
            learning_rate: 0.001,
            seed: 0,
        }
    }
}

/// Objects with fewer voxels count as background when FFN training draws its centres, so a
/// few annotated slices suffice.
pub const FFN_MIN_SIZE: u64 = 1000;

impl FfnTrainForm {
    fn preset(&self) -> &'static FfnPreset {
        FFN_PRESETS
            .iter()
            .find(|p| p.name == self.preset)
            .unwrap_or(&FFN_PRESETS[0])
    }

    /// The box radius (z, y, x) of the partitions training balances its centres over: half
    /// its canvas, the FOV's half plus the moves (`FfnTrainConfig::margin_zyx`).
    pub fn partition_radius(&self) -> [usize; 3] {
        let p = self.preset();
        [2, 1, 0].map(|a| (p.fov[a] + 2 * p.deltas[a]) / 2)
    }

    /// `FfnTrainConfig` as JSON (Adam, google/ffn's other defaults; objects of at least
    /// [`FFN_MIN_SIZE`] voxels count when centres are drawn).
    pub fn config_json(&self) -> String {
        let p = self.preset();
        serde_json::json!({
            "network": {
                "depth": p.depth,
                "features": p.features,
                "fov": p.fov,
                "deltas": p.deltas,
            },
            "steps": self.steps,
            "batch": self.batch,
            "optimizer": "adam",
            "learning_rate": self.learning_rate,
            "min_size": FFN_MIN_SIZE,
            "seed": self.seed,
        })
        .to_string()
    }
}

/// Reads the JSON header of an EM Studio model file (magic, `u32` length, JSON), or says
/// why the bytes are not one.
pub fn model_summary(bytes: &[u8]) -> Result<ModelSummary, String> {
    const MAGIC: &[u8; 16] = b"EMSTUDIO-MODEL1\n";
    const FFN_MAGIC: &[u8; 16] = b"EMSTUDIO-FFN-01\n";
    if bytes.is_empty() {
        return Err("the file is empty (a save that was cut off leaves one)".into());
    }
    let kind = match bytes.get(..16) {
        Some(m) if bytes.len() >= 20 && m == MAGIC => ModelKind::Cnn2d,
        Some(m) if bytes.len() >= 20 && m == FFN_MAGIC => ModelKind::Ffn,
        _ => {
            return Err(
                "not an EM Studio model file (it starts with neither EMSTUDIO-MODEL1 nor \
                 EMSTUDIO-FFN-01)"
                    .into(),
            )
        }
    };
    let len = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]) as usize;
    let json = bytes
        .get(20..20 + len)
        .ok_or("the model file is truncated (its header is cut off)")?;
    let header: Value =
        serde_json::from_slice(json).map_err(|e| format!("the model header is not valid: {e}"))?;
    let arch = match kind {
        ModelKind::Cnn2d => header
            .pointer("/arch/arch")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
        ModelKind::Ffn => {
            let n = |p: &str| header.pointer(p).and_then(Value::as_u64).unwrap_or(0);
            format!(
                "FFN depth {} · {} features · FOV {}×{}×{}",
                n("/network/depth"),
                n("/network/features"),
                n("/network/fov/0"),
                n("/network/fov/1"),
                n("/network/fov/2")
            )
        }
    };
    Ok(ModelSummary {
        kind,
        arch,
        steps: header
            .pointer("/provenance/steps")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        outputs: header
            .pointer("/io/out_channels")
            .and_then(Value::as_u64)
            .unwrap_or(1),
        saved: header
            .pointer("/provenance/saved")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        card: header.pointer("/provenance/card").and_then(|c| {
            Some(CardSummary {
                text: c.get("text")?.as_str()?.to_string(),
                held_out: c.get("held_out")?.as_str()?.to_string(),
                iou: c.get("iou")?.as_f64()?,
                threshold_iou: c.get("threshold_iou")?.as_f64()?,
            })
        }),
    })
}

/// What the worker reported (`FromWorker::Devices`).
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// The WebGPU adapter, if any.
    pub gpu: Option<GpuInfo>,
    /// Why there is none.
    pub gpu_missing: Option<String>,
    /// The CPU backend.
    pub cpu: String,
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

/// One line on what a choice will use, given the probe's answer.
pub fn describe_device(choice: NetDevice, found: &Found) -> String {
    let gpu_line = |g: &GpuInfo| {
        format!(
            "WebGPU on {}{}{} · largest binding {} · largest buffer {} · {} invocations per workgroup",
            g.adapter,
            if g.software { ", a software adapter" } else { "" },
            // In a browser the backend is always "browserwebgpu": say it only natively.
            if g.backend.contains("webgpu") { String::new() } else { format!(" ({})", g.backend) },
            mib(g.max_storage_binding),
            mib(g.max_buffer_size),
            g.max_workgroup_invocations
        )
    };
    match (choice, &found.gpu) {
        (NetDevice::Cpu, _) => found.cpu.clone(),
        (NetDevice::Gpu, Some(g)) => gpu_line(g),
        (NetDevice::Gpu, None) => format!(
            "no WebGPU: {}",
            found.gpu_missing.as_deref().unwrap_or("unknown reason")
        ),
        (NetDevice::Auto, Some(g)) if !g.software => gpu_line(g),
        (NetDevice::Auto, Some(g)) => format!(
            "{} (the only WebGPU adapter, {}, is software emulation: slower than the CPU backend)",
            found.cpu, g.adapter
        ),
        (NetDevice::Auto, None) => format!(
            "{} (no WebGPU: {})",
            found.cpu,
            found.gpu_missing.as_deref().unwrap_or("unknown reason")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ffn_preview_draws_three_panels_and_the_fov() {
        let p = FfnTrainPreview {
            size: [2, 3],
            image: vec![0, 100, 200, 50, 150, 250],
            target: vec![0, 255, 255, 0, 0, 0],
            mask: vec![0, 255, 128, 0, 0, 0],
            fov: Some([0, 0, 2, 2]),
        };
        let (w, h, px) = ffn_preview_rgba(&p).expect("drawn");
        assert_eq!((w, h), (11, 2));
        assert_eq!(px.len(), 11 * 2 * 4);
        let at = |x: usize, y: usize| &px[(y * 11 + x) * 4..(y * 11 + x) * 4 + 4];
        assert_eq!(at(1, 0), &[100, 100, 100, 255], "the image as it is");
        assert_eq!(at(3, 0), &[0, 0, 0, 0], "the gap stays clear");
        assert!(at(5, 0)[1] > at(5, 0)[0], "the object in green");
        assert_eq!(
            at(4, 0),
            &[0, 0, 0, 255],
            "off the object: the dimmed image"
        );
        assert_eq!(at(8, 0), &[0, 220, 255, 255], "the FOV's outline");
        assert!(at(10, 0)[0] > at(10, 0)[2], "probability in yellow");
        assert_eq!(
            at(10, 1),
            &[150, 150, 150, 255],
            "dimmed 250, no probability"
        );
        let mut bad = p.clone();
        bad.mask.pop();
        assert!(ffn_preview_rgba(&bad).is_none());
        bad.size = [usize::MAX, 2];
        assert!(ffn_preview_rgba(&bad).is_none());
    }

    #[test]
    fn the_live_fill_seed_keeps_its_box_inside_the_stack_and_the_plane_draws_the_object() {
        let shape = [250, 250, 250];
        let r = [16, 16, 16];
        assert_eq!(
            live_fill_seed(shape, 120, (100, 140), r),
            Some([120, 100, 140]),
            "the view's centre where the box fits"
        );
        assert_eq!(
            live_fill_seed(shape, 3, (5, 249), r),
            Some([16, 16, 233]),
            "moved in at the edges"
        );
        assert_eq!(
            live_fill_seed([20, 250, 250], 3, (100, 100), r),
            Some([10, 100, 100]),
            "a stack thinner than the box: its middle"
        );
        assert_eq!(live_fill_seed(shape, 250, (5, 5), r), None);
        assert_eq!(live_fill_seed(shape, 5, (250, 5), r), None);

        let (rgba, object) = live_fill_rgba(&[0, 100, 153, 255, 152, 0], 3).expect("drawn");
        assert_eq!(object, 2);
        assert_eq!(rgba.len(), 24);
        let alpha = |i: usize| rgba[i * 4 + 3];
        assert_eq!(alpha(0), 0, "never looked at: clear");
        assert!(alpha(1) > 0 && alpha(1) < 150, "below the threshold: faint");
        assert_eq!((alpha(2), alpha(3)), (255, 255), "the object's border");
        assert!(alpha(4) < 150);
        // A 3 × 3 object in a 5 × 5 plane: its middle is filled, its ring opaque.
        let mut plane = vec![0u8; 25];
        for y in 1..4 {
            for x in 1..4 {
                plane[y * 5 + x] = 200;
            }
        }
        let (rgba, object) = live_fill_rgba(&plane, 5).expect("drawn");
        assert_eq!(object, 9);
        assert_eq!(
            &rgba[12 * 4..13 * 4],
            &[255, 210, 0, 150],
            "inside: the fill's yellow"
        );
        assert_eq!(rgba[6 * 4 + 3], 255, "on the ring: opaque");
        assert_eq!(rgba[3], 0, "outside: clear");
        assert!(live_fill_rgba(&[1, 2, 3], 2).is_none());
        assert!(live_fill_rgba(&[], 2).is_none());
        assert!(live_fill_rgba(&[1, 2], 0).is_none());
    }
    use emstudio_nets::train::TrainConfig;

    #[test]
    fn the_curve_csv_has_a_row_per_point_and_reads_back_exactly() {
        let points = [
            CurvePoint {
                step: 1,
                train: 0.693_2,
                validation: Some(0.7),
            },
            CurvePoint {
                step: 5,
                train: 1e-7,
                validation: None,
            },
        ];
        let csv = curve_csv(&points);
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(
            rows,
            [
                "step,training_loss,validation_loss",
                "1,0.6932,0.7",
                "5,0.0000001,"
            ]
        );
        let back: f32 = rows[1].split(',').nth(1).unwrap().parse().unwrap();
        assert_eq!(back, points[0].train);
    }

    #[test]
    fn the_ffn_curve_csv_has_a_row_per_report_and_reads_back_exactly() {
        let rows = [
            FfnCurveRow {
                step: 1,
                loss: 0.569_123_4,
                precision: 0.73,
                recall: 0.68,
            },
            FfnCurveRow {
                step: 2,
                loss: 1e-7,
                precision: 1.0,
                recall: 0.0,
            },
        ];
        let csv = ffn_curve_csv(&rows);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines,
            [
                "step,training_loss,mask_precision,mask_recall",
                "1,0.5691234,0.73,0.68",
                "2,0.0000001,1,0"
            ]
        );
        let back: Vec<f32> = lines[1]
            .split(',')
            .skip(1)
            .map(|v| v.parse().expect("a number"))
            .collect();
        assert_eq!(back, [rows[0].loss, rows[0].precision, rows[0].recall]);
    }

    #[test]
    fn the_menu_offers_exactly_the_registered_architectures() {
        // docs/plugins.md: a new architecture must be added to `ARCHITECTURES` (and to
        // `TrainForm::config_json`) as well as to the registry in `emstudio-nets`.
        let registered: Vec<&str> = emstudio_nets::arch::ArchConfig::all_defaults()
            .iter()
            .map(|a| a.name())
            .collect();
        let offered: Vec<&str> = ARCHITECTURES.iter().map(|a| a.name).collect();
        assert_eq!(
            offered, registered,
            "the Train panel's ARCHITECTURES (app/src/training_ui.rs) must list the registry's \
             architectures (crates/nets/src/arch/mod.rs), in the same order"
        );
        assert_eq!(TrainForm::default().arch, ARCHITECTURES[0].name);
        for a in ARCHITECTURES {
            let (min, max) = a.size_range;
            assert!((min..=max).contains(&a.default_size), "{a:?}");
        }
    }

    #[test]
    fn the_form_bounds_are_the_trainers() {
        use emstudio_nets::train::bounds;
        assert_eq!(limits::MAX_STEPS, bounds::MAX_STEPS);
        assert_eq!(limits::MAX_BATCH, bounds::MAX_BATCH);
        assert_eq!(limits::MAX_PATCH, bounds::MAX_PATCH);
        // The largest form the fields allow is accepted by the trainer's checks, one more
        // in any field is refused with the field's name.
        let at_limit = |f: TrainForm| {
            serde_json::from_str::<TrainConfig>(&f.config_json())
                .expect("json")
                .check_bounds()
        };
        let most = TrainForm {
            steps: limits::MAX_STEPS,
            batch: 16,
            patch: 1024,
            base_width: limits::MAX_BASE_WIDTH,
            ..TrainForm::default()
        };
        at_limit(most.clone()).expect("the largest form is accepted");
        for (form, name) in [
            (
                TrainForm {
                    steps: limits::MAX_STEPS + 1,
                    ..most.clone()
                },
                "steps",
            ),
            (
                TrainForm {
                    batch: limits::MAX_BATCH + 1,
                    ..most.clone()
                },
                "batch",
            ),
            (
                TrainForm {
                    patch: limits::MAX_PATCH + 16,
                    ..most.clone()
                },
                "patch",
            ),
            (
                TrainForm {
                    base_width: limits::MAX_BASE_WIDTH + 1,
                    ..most
                },
                "base_width",
            ),
        ] {
            let err = at_limit(form).expect_err(name).to_string();
            assert!(err.contains(name), "{name}: {err}");
        }
    }

    #[test]
    fn every_form_makes_settings_the_trainer_reads() {
        for (arch, size) in ARCHITECTURES.map(|a| (a.name, a.default_size)) {
            for loss in ["softmax_cross_entropy", "dice", "square", "logistic", "l1"] {
                let form = TrainForm {
                    arch: arch.into(),
                    size,
                    loss: loss.into(),
                    elastic: true,
                    ..TrainForm::default()
                };
                let config: TrainConfig = serde_json::from_str(&form.config_json())
                    .unwrap_or_else(|e| panic!("{arch}/{loss}: {e}"));
                assert_eq!(config.arch.name(), arch);
                assert_eq!(config.steps, 200);
                config.arch.validate().expect("valid sizes");
            }
        }
        let off = TrainForm {
            flips: false,
            intensity: false,
            noise: false,
            ..TrainForm::default()
        };
        let config: TrainConfig = serde_json::from_str(&off.config_json()).expect("parse");
        assert!(!config.augment.flips && config.augment.noise == 0.0);
    }

    #[test]
    fn chart_is_log_scaled_and_smoothed() {
        let points: Vec<CurvePoint> = (1..=10)
            .map(|i| CurvePoint {
                step: i * 10,
                train: 1.0 / i as f32,
                validation: (i % 5 == 0).then_some(0.5 / i as f32),
            })
            .collect();
        let c = chart(&points, 100, 0.0, (300.0, 150.0, 20.0));
        assert_eq!(c.train.split(' ').count(), 10);
        assert_eq!(c.validation.split(' ').count(), 2);
        // 0.05 … 1 spans 10^-2 … 10^0: ticks 0.01, 0.05, 0.1, 0.5, 1.
        let labels: Vec<&str> = c.y_ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["0.01", "0.05", "0.1", "0.5", "1"]);
        // Loss 1 sits at the top of the plot area, the last step at the right edge.
        assert!(c.train.starts_with("46.0,20.0"), "{}", c.train);
        assert!(
            c.train
                .ends_with(&format!("280.0,{:.1}", 130.0 - 110.0 / 2.0)),
            "{}",
            c.train
        );
        // Smoothing keeps the first point and pulls later ones towards earlier values.
        let s = chart(&points, 100, 0.9, (300.0, 150.0, 20.0));
        assert_eq!(s.train.split(' ').next(), c.train.split(' ').next());
        assert_ne!(s.train, c.train);
        // Nothing to plot yet: still a valid empty chart.
        assert!(chart(&[], 10, 0.5, (300.0, 150.0, 20.0)).train.is_empty());
    }

    #[test]
    fn model_names_are_safe_file_names() {
        assert_eq!(model_file_name("unet AC3/mito"), "unet-AC3-mito.emsmodel");
        assert_eq!(model_file_name("a -- b?"), "a-b.emsmodel");
        assert_eq!(
            trained_model_name("unet", "AC3 mitochondria (demo, 1×1024×1024)/image", 80),
            "unet-AC3-mitochondria-80steps.emsmodel"
        );
        assert_eq!(
            trained_model_name("resnet", "stack", 5),
            "resnet-stack-5steps.emsmodel"
        );
        assert_eq!(model_file_name("a.emsmodel"), "a.emsmodel");
        assert_eq!(model_file_name("  "), "model.emsmodel");
        assert_eq!(model_file_name("flyem light.ffn"), "flyem-light.ffn");
        // Another model of a taken name keeps its kind's suffix.
        let taken = [
            "flyem-ffn-light.ffn",
            "flyem-ffn-light-2.ffn",
            "unet.emsmodel",
        ];
        let taken = |n: &str| taken.contains(&n);
        assert_eq!(
            free_model_name("flyem-ffn-light.ffn", taken),
            "flyem-ffn-light-3.ffn"
        );
        assert_eq!(free_model_name("unet", taken), "unet-2.emsmodel");
        assert_eq!(free_model_name("new.ffn", taken), "new.ffn");
        assert_eq!(name_for_kind("neurons", ModelKind::Ffn), "neurons.ffn");
        assert_eq!(name_for_kind("x.emsmodel", ModelKind::Ffn), "x.ffn");
        assert_eq!(name_for_kind("x.ffn", ModelKind::Cnn2d), "x.emsmodel");
    }

    #[test]
    fn eta_reads_naturally() {
        assert_eq!(eta(0, 100, 0.0), "estimating…");
        assert_eq!(eta(40, 100, 2.0), "30 s left");
        assert_eq!(eta(0, 1000, 4.0), "4 min 10 s left");
        assert_eq!(eta(0, 100_000, 10.0), "2 h 46 min left");
        assert_eq!(eta(5, 5, 1.0), "done");
    }

    #[test]
    fn a_shrunk_patch_is_said_and_a_kept_one_is_not() {
        assert_eq!(patch_note((128, 128)), "");
        assert_eq!(
            patch_note((64, 128)),
            " · patches 64² (the training slices are too small for 128²)"
        );
    }

    #[test]
    fn ffn_presets_and_the_form_give_the_settings_the_trainer_reads() {
        for p in FFN_PRESETS {
            let c = emstudio_nets::ffn::net::FfnConfig::preset(p.name).expect("a preset");
            assert_eq!(
                (c.depth, c.features, c.fov, c.deltas),
                (p.depth, p.features, p.fov, p.deltas),
                "{}",
                p.name
            );
        }
        let form = FfnTrainForm {
            preset: "anisotropic".into(),
            steps: 20,
            ..FfnTrainForm::default()
        };
        let config: emstudio_nets::ffn::train::FfnTrainConfig =
            serde_json::from_str(&form.config_json()).expect("the trainer's JSON");
        assert_eq!(
            config.network,
            emstudio_nets::ffn::net::FfnConfig::preset("anisotropic").expect("preset")
        );
        assert_eq!((config.steps, config.batch, config.min_size), (20, 4, 1000));
        assert_eq!(
            config.optimizer,
            emstudio_nets::ffn::train::FfnOptimizer::Adam
        );
        config.check_bounds().expect("in bounds");
        // The partitions shown are the ones training balances over.
        assert_eq!(form.partition_radius(), config.margin_zyx());
        assert_eq!(form.partition_radius(), [12, 24, 24]);
    }

    #[test]
    fn model_headers_are_read_and_foreign_files_refused() {
        use emstudio_nets::arch::{unet::UNetConfig, ArchConfig, NetIo};
        use emstudio_nets::model::{ModelFile, ModelHeader, Normalization, Provenance};
        use emstudio_nets::Device;
        let device = Device::flex();
        let header = ModelHeader {
            arch: ArchConfig::UNet(UNetConfig {
                depth: 1,
                base_width: 2,
            }),
            io: NetIo {
                in_channels: 1,
                out_channels: 1,
            },
            normalization: Normalization::default(),
            provenance: Provenance {
                saved: "2026-11-26T09:00:00Z".into(),
                steps: 42,
                ..Provenance::default()
            },
        };
        let net = header.arch.build(&header.io, &device);
        let bytes = ModelFile::from_net(header, &net, None)
            .expect("model")
            .to_bytes();
        let s = model_summary(&bytes).expect("summary");
        assert_eq!((s.arch.as_str(), s.steps, s.outputs), ("unet", 42, 1));
        assert_eq!(s.saved, "2026-11-26T09:00:00Z");
        assert_eq!(s.card, None);
        let mut with_card = ModelFile::from_bytes(&bytes).expect("model");
        with_card.header.provenance.card = Some(emstudio_nets::card::ModelCard {
            text: "Mitochondria.".into(),
            held_out: "rows 52–63".into(),
            iou: 0.6251,
            threshold_iou: 0.25,
        });
        let card = model_summary(&with_card.to_bytes())
            .expect("summary")
            .card
            .expect("card");
        assert_eq!(
            (card.text.as_str(), card.iou, card.threshold_iou),
            ("Mitochondria.", 0.6251, 0.25)
        );
        assert_eq!(
            card.score_line(),
            "Scored on rows 52–63 (never trained on): IoU 0.63; the best plain threshold of the image reaches 0.25."
        );
        assert!(model_summary(b"PK\x03\x04 a zip file")
            .unwrap_err()
            .contains("not an EM Studio model"));
        assert!(model_summary(&bytes[..30])
            .unwrap_err()
            .contains("truncated"));
        assert!(model_summary(&[]).unwrap_err().contains("empty"));
        assert_eq!(s.kind, ModelKind::Cnn2d);
        // A flood-filling network's file: its kind and shape.
        let network = emstudio_nets::ffn::net::FfnConfig::preset("anisotropic").expect("preset");
        let ffn = emstudio_nets::ffn::file::FfnModelFile::from_net(
            emstudio_nets::ffn::file::FfnHeader {
                network: network.clone(),
                normalization: Normalization::default(),
                provenance: Provenance {
                    steps: 4000,
                    ..Provenance::default()
                },
            },
            &network.build(&device),
            None,
        )
        .expect("ffn")
        .to_bytes();
        let f = model_summary(&ffn).expect("ffn summary");
        assert_eq!(f.kind, ModelKind::Ffn);
        assert_eq!(f.arch, "FFN depth 9 · 32 features · FOV 33×33×17");
        assert_eq!(f.steps, 4000);
    }

    #[test]
    fn the_device_line_says_what_auto_picks_and_why() {
        let swiftshader = GpuInfo {
            adapter: "SwiftShader".into(),
            backend: "browserwebgpu".into(),
            software: true,
            max_buffer_size: 256 << 20,
            max_storage_binding: 128 << 20,
            max_workgroup_invocations: 256,
        };
        let found = Found {
            gpu: Some(swiftshader.clone()),
            gpu_missing: None,
            cpu: "CPU (burn flex, wasm, 1 thread)".into(),
        };
        let auto = describe_device(NetDevice::Auto, &found);
        assert!(
            auto.starts_with("CPU (burn flex") && auto.contains("software emulation"),
            "{auto}"
        );
        let gpu = describe_device(NetDevice::Gpu, &found);
        assert!(
            gpu.contains("SwiftShader, a software adapter")
                && gpu.contains("largest binding 128 MiB"),
            "{gpu}"
        );
        let hardware = Found {
            gpu: Some(GpuInfo {
                software: false,
                ..swiftshader
            }),
            ..found.clone()
        };
        assert!(describe_device(NetDevice::Auto, &hardware).starts_with("WebGPU on"));
        assert_eq!(describe_device(NetDevice::Cpu, &hardware), found.cpu);
        let none = Found {
            gpu: None,
            gpu_missing: Some("navigator.gpu is missing".into()),
            ..found
        };
        assert!(describe_device(NetDevice::Gpu, &none).contains("navigator.gpu is missing"));
        assert!(describe_device(NetDevice::Auto, &none).contains("no WebGPU"));
    }
}
