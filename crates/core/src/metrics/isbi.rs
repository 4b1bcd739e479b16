//! The ISBI 2012 2D evaluation protocol (Arganda-Carreras et al. 2015; DESIGN.md section 5):
//! maximal foreground-restricted Rand score (`V_rand`) and information-theoretic score
//! (`V_info`) "after thinning", over a threshold sweep of a boundary-probability map.
//!
//! # What this module does
//!
//! For each threshold `t` of the sweep (default 0.0, 0.1, …, 1.0) and each z slice:
//! 1. **Binarise.** GT: interior = label ≠ 0 (the ISBI labels are 255 = cell interior,
//!    0 = membrane). Prediction: interior = `v > t` for [`MapPolarity::InteriorHigh`] maps (the
//!    ISBI submission convention, as the Fiji script thresholds: `value > threshold` is
//!    foreground), or `1 − v > t` for [`MapPolarity::BoundaryHigh`] maps (membrane
//!    probabilities), so `t` always thresholds the interior probability. NaN is boundary. A
//!    binary prediction is a map with values 0 and 1.
//! 2. **Thin borders** (when [`IsbiParams::thin_prediction`], default on; for the GT only
//!    when [`IsbiParams::thin_ground_truth`], default off): the boundary pixels (not interior)
//!    are thinned to 8-connected one-pixel-wide curves with the Guo–Hall algorithm
//!    ([`super::thin_2d`], the tables of `skimage.morphology.thin`), with the pixels outside
//!    the image counted as a fixed boundary frame so that a boundary reaching the image edge
//!    still reaches it (with a background frame, thick boundaries shrink away from the edge and
//!    open gaps that merge cells). Freed pixels become interior. Thinning preserves topology,
//!    so no two cells merge; a thick predicted boundary then costs nothing, whereas unthinned
//!    boundary pixels inside GT cells count as singletons (split errors). Thinning the GT is off
//!    by default because GT boundary pixels are already excluded by the foreground restriction;
//!    thinning them makes the score depend on where inside the GT boundary band the predicted
//!    curve runs (on the isbi2012 test crop the best `V_rand` drops from 0.9998 to 0.994).
//! 3. **Label** the interior into 4-connected components ([`super::label_4connected`]);
//!    boundary pixels are label 0. 8-connected one-pixel curves separate 4-connected regions.
//! 4. **Score** the slice with the DESIGN convention: foreground-restricted to GT components,
//!    predicted boundary pixels inside the GT foreground as singletons, self pairs included
//!    (Fiji's N² normalisation): `V_rand`, split, merge ([`super::rand_scores`]) and
//!    `V_info`, split, merge ([`super::info_scores`]). Slices whose GT has no interior are
//!    skipped.
//! 5. **Average** each score over the evaluated slices (per-slice mean); the best threshold is
//!    the first one with the highest mean `V_rand` (and, separately, the highest mean `V_info`).
//!
//! # What the original Fiji script did (to the best of my knowledge)
//!
//! The challenge used the BeanShell script around `trainableSegmentation.metrics.RandError.
//! getMaximalVRandAfterThinning(0.0, 1.0, 0.1, true)` and `VariationOfInformation.
//! getMaximalVInfoAfterThinning(0.0, 1.0, 0.1)` (a binary proposal used the single threshold
//! 0.0). Both binarise GT and proposal with `value > threshold` (the loop
//! `for th = min; th <= max; th += step` in floating point), label 4-connected components with
//! `Utils.connectedComponents(…, 4)`, and score slices with the N²-normalised
//! foreground-restricted formulas reproduced here (unlabelled proposal pixels as singletons,
//! natural log in `V_info`, which does not change the ratio). The thinning there is ImageJ's
//! binary `skeletonize` (a table-driven Zhang–Suen variant) applied to the boundary pixels of the
//! binarised proposal; we use Guo–Hall thinning instead because it has an exact open-source
//! reference (scikit-image) and, like ImageJ's, keeps 2×2 blocks and 8-connectivity. The two
//! can place a curve one pixel differently, so scores may differ from Fiji in the third
//! decimal. Unverified points, because Fiji's source for the "after thinning" methods could not
//! be consulted while writing this: whether Fiji also thins the GT (we do not by default, see
//! above), how it treats the image edge during thinning, and whether it averages per-slice
//! F-scores (as here and in DESIGN) or combines per-slice precision/recall first.
//!
//! Golden tests (`tests/golden_metrics.rs`) compare the sweep with a composition of
//! `skimage.morphology.thin`, `skimage.measure.label` and numpy formulas on an isbi2012 crop,
//! and constructed cases check thresholds, polarity and best-threshold selection.

use super::contingency::TableBuilder;
use super::label2d::Labeller;
use super::thinning::Thinner;
use super::{
    check_alpha, check_same_shape, info_scores, rand_scores, ContingencyTable, LabelValue,
    MetricsError, PairCounting, RandOptions, UnlabelledPrediction,
};
use crate::progress::{check, Progress};
use ndarray::{Array2, ArrayView2, ArrayView3, Axis};
use serde::{Deserialize, Serialize};

/// Which values of the prediction map mean "cell interior".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapPolarity {
    /// High values are interior (ISBI 2012 submissions, the isbi2012 labels: 1/255 = interior).
    InteriorHigh,
    /// High values are boundary (membrane probability maps).
    BoundaryHigh,
}

/// Thresholds `min, min + step, …` up to `max` (inclusive, with a 1e-9 step tolerance).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholdSweep {
    /// First threshold.
    pub min: f64,
    /// Last threshold (inclusive).
    pub max: f64,
    /// Step (> 0).
    pub step: f64,
}

impl Default for ThresholdSweep {
    fn default() -> Self {
        Self {
            min: 0.0,
            max: 1.0,
            step: 0.1,
        }
    }
}

/// At most this many thresholds per sweep.
pub const MAX_THRESHOLDS: usize = 10_001;

impl ThresholdSweep {
    /// The thresholds (rounded to 12 decimals, so 0.1 steps read 0.3, not 0.30000000000000004).
    pub fn thresholds(&self) -> Result<Vec<f64>, MetricsError> {
        let ok = self.min.is_finite()
            && self.max.is_finite()
            && self.step.is_finite()
            && self.step > 0.0
            && self.min <= self.max;
        if !ok {
            return Err(MetricsError::InvalidParameter(format!(
                "threshold sweep needs finite min ≤ max and step > 0, got min {} max {} step {}",
                self.min, self.max, self.step
            )));
        }
        let count = ((self.max - self.min) / self.step + 1e-9).floor() + 1.0;
        if count > MAX_THRESHOLDS as f64 {
            return Err(MetricsError::InvalidParameter(format!(
                "threshold sweep has {count} thresholds (at most {MAX_THRESHOLDS})"
            )));
        }
        Ok((0..count as usize)
            .map(|k| ((self.min + k as f64 * self.step) * 1e12).round() / 1e12)
            .collect())
    }
}

/// Parameters of [`isbi_evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsbiParams {
    /// Threshold sweep (ISBI: 0.0 to 1.0 in steps of 0.1).
    pub sweep: ThresholdSweep,
    /// Meaning of high prediction values.
    pub polarity: MapPolarity,
    /// Thin the predicted boundaries before labelling (ISBI: yes).
    pub thin_prediction: bool,
    /// Thin the GT boundaries too (default: no; see the module doc).
    pub thin_ground_truth: bool,
    /// Weight of the merge score (ISBI: ½).
    pub alpha: f64,
}

impl Default for IsbiParams {
    fn default() -> Self {
        Self {
            sweep: ThresholdSweep::default(),
            polarity: MapPolarity::InteriorHigh,
            thin_prediction: true,
            thin_ground_truth: false,
            alpha: 0.5,
        }
    }
}

/// Per-slice scores averaged over the slices whose GT has foreground.
///
/// With no such slice every score is 1 and `slices_evaluated` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SliceMeanScores {
    /// Mean per-slice `V_rand`.
    pub v_rand: f64,
    /// Mean per-slice Rand split score.
    pub v_rand_split: f64,
    /// Mean per-slice Rand merge score.
    pub v_rand_merge: f64,
    /// Mean per-slice `V_info`.
    pub v_info: f64,
    /// Mean per-slice information split score.
    pub v_info_split: f64,
    /// Mean per-slice information merge score.
    pub v_info_merge: f64,
    /// Mean per-slice VI (bits).
    pub vi: f64,
    /// Slices that entered the means.
    pub slices_evaluated: usize,
}

#[derive(Default)]
struct MeanAcc {
    sums: [f64; 7],
    n: usize,
}

impl MeanAcc {
    fn add(&mut self, table: &ContingencyTable, alpha: f64) {
        let r = rand_scores(
            table,
            &RandOptions {
                alpha,
                unlabelled: UnlabelledPrediction::Singletons,
                pairs: PairCounting::WithSelfPairs,
            },
        );
        let i = info_scores(table, UnlabelledPrediction::Singletons, alpha);
        let v = [
            r.v_rand,
            r.split,
            r.merge,
            i.v_info,
            i.v_info_split,
            i.v_info_merge,
            i.vi,
        ];
        for (s, x) in self.sums.iter_mut().zip(v) {
            *s += x;
        }
        self.n += 1;
    }

    fn finish(&self) -> SliceMeanScores {
        let m = |k: usize| -> f64 {
            if self.n == 0 {
                if k == 6 {
                    0.0
                } else {
                    1.0
                }
            } else {
                self.sums[k] / self.n as f64
            }
        };
        SliceMeanScores {
            v_rand: m(0),
            v_rand_split: m(1),
            v_rand_merge: m(2),
            v_info: m(3),
            v_info_split: m(4),
            v_info_merge: m(5),
            vi: m(6),
            slices_evaluated: self.n,
        }
    }
}

/// Scores at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IsbiThresholdScores {
    /// The threshold (on the interior probability).
    pub threshold: f64,
    /// Per-slice means.
    pub scores: SliceMeanScores,
}

/// Result of the ISBI protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsbiReport {
    /// One entry per threshold, in sweep order.
    pub per_threshold: Vec<IsbiThresholdScores>,
    /// The threshold with the highest mean `V_rand` (first of ties): the ISBI "Rand score".
    pub best_rand: IsbiThresholdScores,
    /// The threshold with the highest mean `V_info` (first of ties): the ISBI "information
    /// theoretic score".
    pub best_info: IsbiThresholdScores,
    /// Whether predicted borders were thinned.
    pub thinned_prediction: bool,
    /// Whether GT borders were thinned.
    pub thinned_ground_truth: bool,
}

/// Thins the boundary (non-interior) pixels if asked, then labels the interior 4-connected.
fn segment(
    interior: &mut [bool],
    h: usize,
    w: usize,
    thin: bool,
    thinner: &mut Thinner,
    labeller: &mut Labeller,
    out: &mut Vec<u32>,
) {
    if thin {
        for v in interior.iter_mut() {
            *v = !*v;
        }
        thinner.thin(interior, h, w, true);
        for v in interior.iter_mut() {
            *v = !*v;
        }
    }
    labeller.label(interior, w, out);
}

/// The ISBI segmentation of one interior mask: boundary thinning (optional, with the fixed
/// boundary frame described in the module doc) and 4-connected labelling of the interior
/// (boundary = 0).
pub fn interior_components_2d(interior: ArrayView2<'_, bool>, thin_borders: bool) -> Array2<u32> {
    let (h, w) = interior.dim();
    let mut data: Vec<bool> = interior.iter().copied().collect();
    let mut out = Vec::new();
    segment(
        &mut data,
        h,
        w,
        thin_borders,
        &mut Thinner::default(),
        &mut Labeller::default(),
        &mut out,
    );
    Array2::from_shape_vec((h, w), out).expect("one label per pixel of an h × w mask")
}

/// Runs the ISBI 2012 protocol on a stack: `gt` labels (≠ 0 = interior) and a prediction map,
/// both z × y × x. Progress counts slice preparations and (threshold, slice) evaluations.
pub fn isbi_evaluate<G: LabelValue>(
    gt: ArrayView3<'_, G>,
    prediction: ArrayView3<'_, f32>,
    params: &IsbiParams,
    progress: &mut dyn Progress,
) -> Result<IsbiReport, MetricsError> {
    check_same_shape(gt.shape(), prediction.shape())?;
    check_alpha(params.alpha)?;
    let thresholds = params.sweep.thresholds()?;
    let (d, h, w) = gt.dim();
    let total = (d * (thresholds.len() + 1)) as u64;
    let mut done = 0u64;
    let mut thinner = Thinner::default();
    let mut labeller = Labeller::default();
    let mut mask = vec![false; h * w];

    // GT components per slice, computed once.
    let mut gt_slices: Vec<Option<Array2<u32>>> = Vec::with_capacity(d);
    for z in 0..d {
        let mut has_fg = false;
        for (m, &g) in mask.iter_mut().zip(gt.index_axis(Axis(0), z).iter()) {
            *m = g.to_u32() != 0;
            has_fg |= *m;
        }
        // A slice without GT interior is skipped (thinning its all-boundary mask would
        // otherwise invent interior).
        gt_slices.push(if has_fg {
            let mut out = Vec::new();
            segment(
                &mut mask,
                h,
                w,
                params.thin_ground_truth,
                &mut thinner,
                &mut labeller,
                &mut out,
            );
            Some(Array2::from_shape_vec((h, w), out).expect("one label per pixel of a slice"))
        } else {
            None
        });
        done += 1;
        check(progress, done, total)?;
    }

    let mut builder = TableBuilder::default();
    let mut pred = Vec::new();
    let mut per_threshold = Vec::with_capacity(thresholds.len());
    for &t in &thresholds {
        let mut acc = MeanAcc::default();
        for (z, gt_labels) in gt_slices.iter().enumerate() {
            if let Some(gt_labels) = gt_labels {
                let plane = prediction.index_axis(Axis(0), z);
                for (m, &v) in mask.iter_mut().zip(plane.iter()) {
                    let v = f64::from(v);
                    *m = match params.polarity {
                        MapPolarity::InteriorHigh => v > t,
                        MapPolarity::BoundaryHigh => 1.0 - v > t,
                    };
                }
                segment(
                    &mut mask,
                    h,
                    w,
                    params.thin_prediction,
                    &mut thinner,
                    &mut labeller,
                    &mut pred,
                );
                let pv = ArrayView2::from_shape((h, w), &pred[..])
                    .expect("the labeller writes one label per pixel");
                builder.clear();
                builder.add_plane(gt_labels.view(), pv, 0);
                acc.add(&builder.finish([1, h, w]), params.alpha);
            }
            done += 1;
            check(progress, done, total)?;
        }
        per_threshold.push(IsbiThresholdScores {
            threshold: t,
            scores: acc.finish(),
        });
    }
    let best = |key: fn(&SliceMeanScores) -> f64| -> IsbiThresholdScores {
        let mut best = per_threshold[0];
        for s in &per_threshold[1..] {
            if key(&s.scores) > key(&best.scores) {
                best = *s;
            }
        }
        best
    };
    let best_rand = best(|s| s.v_rand);
    let best_info = best(|s| s.v_info);
    Ok(IsbiReport {
        per_threshold,
        best_rand,
        best_info,
        thinned_prediction: params.thin_prediction,
        thinned_ground_truth: params.thin_ground_truth,
    })
}

/// [`isbi_evaluate`] on one 2D image.
pub fn isbi_evaluate_2d<G: LabelValue>(
    gt: ArrayView2<'_, G>,
    prediction: ArrayView2<'_, f32>,
    params: &IsbiParams,
) -> Result<IsbiReport, MetricsError> {
    isbi_evaluate(
        gt.insert_axis(Axis(0)),
        prediction.insert_axis(Axis(0)),
        params,
        &mut crate::progress::NoProgress,
    )
}

/// Per-slice evaluation of two label stacks (ISBI-style 2D scoring of an existing 2D
/// segmentation; labels used as given, no thresholding or thinning): per-slice `V_rand`,
/// `V_info` and VI in the DESIGN convention, averaged over slices whose GT has foreground.
pub fn slice_mean_scores<G: LabelValue, P: LabelValue>(
    gt: ArrayView3<'_, G>,
    pred: ArrayView3<'_, P>,
    alpha: f64,
    progress: &mut dyn Progress,
) -> Result<SliceMeanScores, MetricsError> {
    check_same_shape(gt.shape(), pred.shape())?;
    check_alpha(alpha)?;
    let (d, h, w) = gt.dim();
    let mut builder = TableBuilder::default();
    let mut acc = MeanAcc::default();
    for z in 0..d {
        let g = gt.index_axis(Axis(0), z);
        if g.iter().any(|v| v.to_u32() != 0) {
            builder.clear();
            builder.add_plane(g, pred.index_axis(Axis(0), z), 0);
            acc.add(&builder.finish([1, h, w]), alpha);
        }
        check(progress, z as u64 + 1, d as u64)?;
    }
    Ok(acc.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
    use ndarray::Array3;

    #[test]
    fn sweep_values() {
        let t = ThresholdSweep::default().thresholds().expect("valid");
        assert_eq!(t.len(), 11);
        assert_eq!(t[3], 0.3);
        assert_eq!(t[10], 1.0);
        let one = ThresholdSweep {
            min: 0.0,
            max: 0.0,
            step: 0.1,
        };
        assert_eq!(one.thresholds().expect("valid"), vec![0.0]);
        let bad = ThresholdSweep {
            min: 0.0,
            max: 1.0,
            step: 0.0,
        };
        assert!(bad.thresholds().is_err());
    }

    #[test]
    fn empty_stack_and_mismatch() {
        let gt = Array3::<u8>::zeros((0, 4, 4));
        let p = Array3::<f32>::zeros((0, 4, 4));
        let r = isbi_evaluate(gt.view(), p.view(), &IsbiParams::default(), &mut NoProgress)
            .expect("valid");
        assert_eq!(r.best_rand.scores.slices_evaluated, 0);
        let p2 = Array3::<f32>::zeros((1, 4, 4));
        assert!(isbi_evaluate(
            gt.view(),
            p2.view(),
            &IsbiParams::default(),
            &mut NoProgress
        )
        .is_err());
    }
}
