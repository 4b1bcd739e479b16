//! Model cards: what a model finds, what it was trained on, and how it scores on pixels it
//! never trained on, next to what a plain intensity threshold reaches on the same pixels.
//!
//! A card travels in the model file's header (`Provenance::card`), so a model shared or
//! shipped with a dataset shows it wherever it is listed. [`score_rows`] measures a binary
//! model on a band of rows of one slice (the band the trainer held out of a single training
//! slice: its bottom fifth, [`held_out_rows`]); `emstudio card` writes the result into a model
//! file, and the shipped demo model's card is checked against a fresh measurement by
//! `tests/demo_model.rs`.

use crate::infer::{predict, InferOptions};
use crate::model::ModelFile;
use crate::Device;
use emstudio_core::metrics::semantic_scores_2d;
use ndarray::{ArrayView2, ArrayView3, Axis};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// What a model is for and its score on held-out pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// What it finds, on what data, trained how (with the data's attribution and license).
    pub text: String,
    /// The pixels it was scored on, never trained on ("rows 820–1023 of …").
    pub held_out: String,
    /// Intersection over union of its prediction (probability ≥ 0.5) with the truth there.
    pub iou: f64,
    /// The best IoU any plain intensity threshold (either polarity) reaches on them.
    pub threshold_iou: f64,
}

/// Why a model could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// The model cannot be scored this way.
    #[error("{0}")]
    Unsupported(String),
    /// The image, labels or rows do not fit together.
    #[error("{0}")]
    Data(String),
    /// The model could not be loaded.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// Inference failed.
    #[error(transparent)]
    Infer(#[from] crate::tiling::TilingError),
}

/// The rows the trainer holds out of a single training slice of `height` rows (its bottom
/// fifth, `train::Trainer::new`).
pub fn held_out_rows(height: usize) -> Range<usize> {
    height - height / 5..height
}

/// IoU and threshold baseline of a binary model on `rows` of one slice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowScore {
    /// IoU of the prediction (probability ≥ 0.5).
    pub iou: f64,
    /// The best plain threshold's IoU on the same pixels.
    pub threshold_iou: f64,
}

/// Scores a one-output model on `rows` of a slice: `image` is `(channels, h, w)` in the
/// units inference takes (`Volume::unit_f32_planes`), `truth` is foreground where true. The
/// whole slice is predicted (so the band gets the context it has in use) and the band scored.
pub fn score_rows(
    model: &ModelFile,
    image: ArrayView3<'_, f32>,
    truth: ArrayView2<'_, bool>,
    rows: Range<usize>,
    device: &Device,
) -> Result<RowScore, CardError> {
    if model.header.io.out_channels != 1 {
        return Err(CardError::Unsupported(format!(
            "the model has {} outputs; cards score one-output (foreground) models",
            model.header.io.out_channels
        )));
    }
    let (h, w) = (image.shape()[1], image.shape()[2]);
    if truth.dim() != (h, w) {
        return Err(CardError::Data(format!(
            "the labels are {}×{} but the image is {h}×{w}",
            truth.dim().0,
            truth.dim().1
        )));
    }
    if rows.is_empty() || rows.end > h {
        return Err(CardError::Data(format!(
            "rows {}–{} are not inside the slice's {h} rows",
            rows.start,
            rows.end.saturating_sub(1)
        )));
    }
    let net = model.load_net(device)?;
    let p = predict(
        &net,
        &model.header,
        image,
        InferOptions::default(),
        device,
        &mut |_, _| {},
    )?;
    let p = p.index_axis(Axis(0), 0);
    // The band's prediction (probability ≥ 0.5) and truth, scored by the metrics the
    // Evaluate panel uses (`core::metrics::semantic`).
    let band = |f: &dyn Fn(usize, usize) -> bool| {
        ndarray::Array2::from_shape_fn((rows.len(), w), |(y, x)| u8::from(f(rows.start + y, x)))
    };
    let predicted = band(&|y, x| p[[y, x]] >= 0.5);
    let truth_band = band(&|y, x| truth[[y, x]]);
    let scores = semantic_scores_2d(truth_band.view(), predicted.view())
        .map_err(|e| CardError::Data(e.to_string()))?;
    if scores.true_positives + scores.false_positives + scores.false_negatives == 0 {
        return Err(CardError::Data(format!(
            "rows {}–{} hold no foreground and the model predicts none there: nothing to score",
            rows.start,
            rows.end - 1
        )));
    }
    let gray = image.mean_axis(Axis(0)).expect("at least one channel");
    let threshold_iou = best_threshold_iou(
        rows.clone()
            .flat_map(|y| (0..w).map(move |x| (y, x)))
            .map(|(y, x)| (gray[[y, x]], truth[[y, x]])),
    );
    Ok(RowScore {
        iou: scores.jaccard,
        threshold_iou,
    })
}

/// The best IoU a plain threshold of the values reaches against the truth, over every cut
/// and both polarities (dark objects: value ≤ t; bright: value > t). 0 without pixels.
pub fn best_threshold_iou(pixels: impl Iterator<Item = (f32, bool)>) -> f64 {
    let mut v: Vec<(f32, bool)> = pixels.filter(|(x, _)| !x.is_nan()).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = v.len() as f64;
    let total_fg = v.iter().filter(|p| p.1).count() as f64;
    let (mut below, mut below_fg, mut best) = (0f64, 0f64, 0f64);
    let mut i = 0;
    while i < v.len() {
        // Every pixel of one value falls on the same side of a cut.
        let value = v[i].0;
        while i < v.len() && v[i].0 == value {
            below += 1.0;
            below_fg += f64::from(u8::from(v[i].1));
            i += 1;
        }
        let dark = below_fg / (below + total_fg - below_fg);
        let bright = (total_fg - below_fg) / (n - below + below_fg);
        for iou in [dark, bright] {
            if iou > best {
                best = iou;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_baseline_finds_the_best_cut_of_either_polarity() {
        // Bright objects separate perfectly at a cut between 0.4 and 0.6.
        let bright = [(0.1, false), (0.4, false), (0.6, true), (0.9, true)];
        assert_eq!(best_threshold_iou(bright.into_iter()), 1.0);
        // Dark objects, with one bright pixel of the object: the best cut takes the two dark
        // ones (2/3; everything would be 3/5).
        let dark = [
            (0.1, true),
            (0.2, true),
            (0.5, false),
            (0.6, false),
            (0.9, true),
        ];
        assert!((best_threshold_iou(dark.into_iter()) - 2.0 / 3.0).abs() < 1e-12);
        // Equal values cannot be split: one of each class at the same value gives 1/2.
        let tied = [(0.5, true), (0.5, false)];
        assert_eq!(best_threshold_iou(tied.into_iter()), 0.5);
        assert_eq!(best_threshold_iou(std::iter::empty()), 0.0);
    }

    #[test]
    fn the_held_out_band_is_the_trainers_bottom_fifth() {
        assert_eq!(held_out_rows(1024), 820..1024);
        assert_eq!(held_out_rows(64), 52..64);
    }
}
