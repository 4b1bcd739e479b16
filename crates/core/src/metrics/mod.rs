//! Segmentation metrics: contingency tables, Rand and information-theoretic scores, semantic
//! (mask) scores, per-object split/merge lists, and the ISBI 2012 2D evaluation protocol.
//!
//! # Definitions (DESIGN.md section 5)
//!
//! Let `i` range over ground-truth (GT) labels and `j` over predicted labels. Label 0 in the GT
//! is background/boundary and is excluded ("foreground-restricted"): every sum below runs over
//! the `n` voxels whose GT label is not 0. With `n_ij` the overlap counts, `p_ij = n_ij / n`,
//! `t_i = Σ_j p_ij` (GT marginal) and `s_j = Σ_i p_ij` (predicted marginal):
//!
//! - **Rand F-score** (ISBI 2012, Arganda-Carreras et al. 2015):
//!   `V_rand(α) = Σ p_ij² / (α Σ s_j² + (1−α) Σ t_i²)`, `α = ½` by default;
//!   **split score** `Σ p_ij² / Σ t_i²` (drops when GT objects are split),
//!   **merge score** `Σ p_ij² / Σ s_j²` (drops when GT objects are merged).
//!   Predicted label 0 inside the GT foreground counts as **singletons** (each such voxel is its
//!   own predicted object), as in the ISBI/SNEMI3D scripts. See [`rand_scores`].
//! - **Adapted Rand error** (SNEMI3D/CREMI) `= 1 − V_rand(½)` over the whole volume.
//! - **Variation of information** `VI = H(S|T) + H(T|S)` in bits (log₂): split part `H(S|T)`
//!   (prediction given GT), merge part `H(T|S)`. The **ISBI information-theoretic scores** are
//!   `V_info_split = I(S;T)/H(S)`, `V_info_merge = I(S;T)/H(T)` and their weighted harmonic mean
//!   `V_info(α) = I(S;T) / (α H(T) + (1−α) H(S))` (α weights the merge score, as in `V_rand`;
//!   ratios do not depend on the log base). See [`info_scores`].
//! - **Semantic** (binary masks, foreground = label ≠ 0): Jaccard `TP/(TP+FP+FN)`, Dice
//!   `2TP/(2TP+FP+FN)`, conformity `1 − (FP+FN)/TP`, precision, recall. See [`semantic`].
//!
//! The plain 3D form ([`evaluate_labels_3d`]) scores whole label volumes with one contingency
//! table; the ISBI 2012 protocol ([`isbi`]) thresholds a boundary map per slice, labels 4-connected
//! components, optionally thins borders, averages per-slice scores and reports the best threshold.
//! The Evaluate panel and the CLI show [`MetricsReport`] (plain 3D form) and
//! [`isbi::IsbiReport`] (ISBI protocol); each says which form produced it.
//!
//! # Reference implementations
//!
//! Golden tests in `tests/golden_metrics.rs` (fixtures from `scripts/golden/gen_metrics.py`):
//! - [`RandOptions::skimage`] matches `skimage.metrics.adapted_rand_error(image_true,
//!   image_test)`, which counts distinct voxel pairs (`Σ n(n−1)`) and treats predicted 0 as an
//!   ordinary label. skimage's `precision` is our **split** score (`Σp²/Σt²`) and its `recall`
//!   is our **merge** score (`Σp²/Σs²`); its `alpha` weights the GT term, so skimage `alpha = a`
//!   equals our `alpha = 1 − a` (the same at ½).
//! - [`info_scores`] with [`UnlabelledPrediction::Label`] matches
//!   `skimage.metrics.variation_of_information(gt, pred, ignore_labels=[0])`, which returns
//!   `[H(pred|gt), H(gt|pred)]` = `[split, merge]` in bits (log₂, no conversion needed).
//! - The DESIGN conventions (self pairs included, predicted 0 as singletons) are checked against
//!   independent numpy formulas in the same script; they equal the Fiji "N²-normalised"
//!   foreground-restricted scores (`trainableSegmentation.metrics.RandError` /
//!   `VariationOfInformation`).
//! - The ISBI building blocks match `skimage.morphology.thin` (border thinning) and
//!   `skimage.measure.label(connectivity=1)` (4-connected components); the whole sweep is checked
//!   against a composition of those in the script and on constructed cases.

mod contingency;
pub mod isbi;
mod label2d;
mod object_errors;
mod rand_vi;
pub mod semantic;
mod thinning;

pub use contingency::{Cell, ContingencyTable, LabelSize};
pub use label2d::label_4connected;
pub use object_errors::{
    center_positions, object_errors, ErrorListOptions, MergeError, ObjectErrors, Piece, SplitError,
};
pub use rand_vi::{
    info_scores, rand_scores, InfoScores, PairCounting, RandOptions, RandScores,
    UnlabelledPrediction,
};
pub use semantic::{
    semantic_from_table, semantic_scores_2d, semantic_scores_3d, semantic_threshold_sweep,
    SemanticScores,
};
pub use thinning::thin_2d;

use crate::progress::{Cancelled, Progress};
use ndarray::{ArrayView2, ArrayView3, Axis};
use serde::{Deserialize, Serialize};

/// Integer label types accepted by the metrics (`0` = background / unlabelled).
pub trait LabelValue: Copy + PartialEq + 'static {
    /// The label as `u32`.
    fn to_u32(self) -> u32;
}

impl LabelValue for bool {
    fn to_u32(self) -> u32 {
        u32::from(self)
    }
}

impl LabelValue for u8 {
    fn to_u32(self) -> u32 {
        u32::from(self)
    }
}

impl LabelValue for u16 {
    fn to_u32(self) -> u32 {
        u32::from(self)
    }
}

impl LabelValue for u32 {
    fn to_u32(self) -> u32 {
        self
    }
}

/// Errors from the metric functions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// Ground truth and prediction differ in shape.
    #[error("ground truth is {gt:?} (z, y, x) but the prediction is {pred:?}")]
    ShapeMismatch {
        /// Ground-truth shape (z, y, x).
        gt: [usize; 3],
        /// Prediction shape (z, y, x).
        pred: [usize; 3],
    },
    /// A parameter is out of range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// Stopped through the progress callback.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

pub(crate) fn check_alpha(alpha: f64) -> Result<(), MetricsError> {
    if (0.0..=1.0).contains(&alpha) {
        Ok(())
    } else {
        Err(MetricsError::InvalidParameter(format!(
            "alpha must lie in [0, 1], got {alpha}"
        )))
    }
}

pub(crate) fn check_same_shape(gt: &[usize], pred: &[usize]) -> Result<(), MetricsError> {
    if gt == pred {
        return Ok(());
    }
    let three = |s: &[usize]| -> [usize; 3] {
        match *s {
            [z, y, x] => [z, y, x],
            [y, x] => [1, y, x],
            _ => [0, 0, 0],
        }
    };
    Err(MetricsError::ShapeMismatch {
        gt: three(gt),
        pred: three(pred),
    })
}

/// User parameters of [`evaluate_labels_3d`] (the Evaluate panel form / CLI flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateParams {
    /// Weight of the merge score in `V_rand` and `V_info` (DESIGN: ½).
    pub alpha: f64,
    /// How predicted label 0 inside the GT foreground is counted (DESIGN: singletons).
    pub unlabelled: UnlabelledPrediction,
    /// Thresholds for the split/merge object lists.
    pub errors: ErrorListOptions,
}

impl Default for EvaluateParams {
    fn default() -> Self {
        Self {
            alpha: 0.5,
            unlabelled: UnlabelledPrediction::Singletons,
            errors: ErrorListOptions::default(),
        }
    }
}

/// All scalar metrics of one GT/prediction comparison (plain 3D form, one contingency table
/// over the whole volume), for the Evaluate panel and the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    /// Volume shape (z, y, x); 2D images have z = 1.
    pub shape: [usize; 3],
    /// Voxels compared.
    pub voxels: u64,
    /// Voxels with GT label ≠ 0 (the `n` of the foreground-restricted scores).
    pub foreground_voxels: u64,
    /// GT foreground voxels whose predicted label is 0.
    pub unlabelled_foreground_voxels: u64,
    /// Distinct non-zero GT labels.
    pub gt_objects: usize,
    /// Distinct non-zero predicted labels (anywhere in the volume).
    pub pred_objects: usize,
    /// Rand scores with the parameters' α and unlabelled rule (DESIGN convention: self pairs
    /// included).
    pub rand: RandScores,
    /// `1 − V_rand(½)` with the DESIGN convention (SNEMI3D/CREMI adapted Rand error).
    pub adapted_rand_error: f64,
    /// Rand scores exactly as `skimage.metrics.adapted_rand_error` computes them
    /// ([`RandOptions::skimage`], α = ½): `split` = skimage precision, `merge` = skimage recall.
    pub rand_skimage: RandScores,
    /// VI split/merge (bits) and ISBI information-theoretic scores.
    pub info: InfoScores,
    /// Foreground-mask scores (label ≠ 0 in both).
    pub semantic: SemanticScores,
    /// Number of GT objects listed as split.
    pub split_objects: usize,
    /// Number of predicted objects listed as merging GT objects.
    pub merge_objects: usize,
}

/// Everything [`evaluate_labels_3d`] computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Scalar metrics.
    pub report: MetricsReport,
    /// Split and merge lists, most severe first.
    pub errors: ObjectErrors,
}

/// Scores a predicted label volume against GT labels: contingency table (one pass, progress per
/// z plane), Rand (DESIGN and skimage conventions), VI / V_info, semantic mask scores and the
/// split/merge lists.
pub fn evaluate_labels_3d<G: LabelValue, P: LabelValue>(
    gt: ArrayView3<'_, G>,
    pred: ArrayView3<'_, P>,
    params: &EvaluateParams,
    progress: &mut dyn Progress,
) -> Result<Evaluation, MetricsError> {
    check_alpha(params.alpha)?;
    params.errors.validate()?;
    let table = ContingencyTable::from_labels_3d(gt, pred, progress)?;
    Ok(evaluate_table(&table, params))
}

/// [`evaluate_labels_3d`] for one 2D image (reported with z = 1).
pub fn evaluate_labels_2d<G: LabelValue, P: LabelValue>(
    gt: ArrayView2<'_, G>,
    pred: ArrayView2<'_, P>,
    params: &EvaluateParams,
) -> Result<Evaluation, MetricsError> {
    evaluate_labels_3d(
        gt.insert_axis(Axis(0)),
        pred.insert_axis(Axis(0)),
        params,
        &mut crate::progress::NoProgress,
    )
}

/// The metrics of [`evaluate_labels_3d`] from an existing table. Parameters are not checked
/// here: α outside `[0, 1]` gives meaningless (but finite or ±∞) scores.
pub fn evaluate_table(table: &ContingencyTable, params: &EvaluateParams) -> Evaluation {
    let rand = rand_scores(
        table,
        &RandOptions {
            alpha: params.alpha,
            unlabelled: params.unlabelled,
            pairs: PairCounting::WithSelfPairs,
        },
    );
    let adapted_rand_error = if params.alpha == 0.5 {
        rand.adapted_rand_error
    } else {
        rand_scores(
            table,
            &RandOptions {
                alpha: 0.5,
                ..RandOptions::isbi()
            },
        )
        .adapted_rand_error
    };
    let rand_skimage = rand_scores(table, &RandOptions::skimage());
    let info = info_scores(table, params.unlabelled, params.alpha);
    let semantic = semantic_from_table(table);
    let errors = object_errors(table, &params.errors);
    let report = MetricsReport {
        shape: table.shape(),
        voxels: table.voxels(),
        foreground_voxels: table.foreground_voxels(),
        unlabelled_foreground_voxels: table.unlabelled_foreground_voxels(),
        gt_objects: table.gt_labels().iter().filter(|l| l.label != 0).count(),
        pred_objects: table.pred_labels().iter().filter(|l| l.label != 0).count(),
        rand,
        adapted_rand_error,
        rand_skimage,
        info,
        semantic,
        split_objects: errors.splits.len(),
        merge_objects: errors.merges.len(),
    };
    Evaluation { report, errors }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
    use ndarray::{Array2, Array3};

    #[test]
    fn identical_labels_are_perfect() {
        let gt = Array3::from_shape_fn((3, 4, 5), |(z, y, x)| ((z + y * 2 + x / 2) % 4) as u16);
        let e = evaluate_labels_3d(
            gt.view(),
            gt.view(),
            &EvaluateParams::default(),
            &mut NoProgress,
        )
        .expect("same shape");
        let r = &e.report;
        assert_eq!(r.rand.v_rand, 1.0);
        assert_eq!(r.adapted_rand_error, 0.0);
        assert!(r.info.vi.abs() < 1e-12);
        assert_eq!(r.semantic.jaccard, 1.0);
        assert!(e.errors.splits.is_empty() && e.errors.merges.is_empty());
    }

    #[test]
    fn empty_and_mismatched_inputs() {
        let a = Array3::<u8>::zeros((0, 3, 3));
        let e = evaluate_labels_3d(
            a.view(),
            a.view(),
            &EvaluateParams::default(),
            &mut NoProgress,
        )
        .expect("empty is valid");
        assert_eq!(e.report.voxels, 0);
        assert_eq!(e.report.rand.v_rand, 1.0);
        let b = Array3::<u8>::zeros((1, 3, 3));
        assert!(matches!(
            evaluate_labels_3d(
                a.view(),
                b.view(),
                &EvaluateParams::default(),
                &mut NoProgress
            ),
            Err(MetricsError::ShapeMismatch { .. })
        ));
        let one = Array2::<u32>::from_elem((1, 1), 7);
        let e = evaluate_labels_2d(one.view(), one.view(), &EvaluateParams::default())
            .expect("1 pixel");
        assert_eq!(e.report.rand.v_rand, 1.0);
        let bad = EvaluateParams {
            alpha: 1.5,
            ..EvaluateParams::default()
        };
        assert!(evaluate_labels_2d(one.view(), one.view(), &bad).is_err());
    }

    #[test]
    fn cancel_stops() {
        let gt = Array3::<u16>::ones((4, 2, 2));
        let mut stop = |_d: u64, _t: u64| std::ops::ControlFlow::Break(());
        assert_eq!(
            evaluate_labels_3d(gt.view(), gt.view(), &EvaluateParams::default(), &mut stop),
            Err(MetricsError::Cancelled(Cancelled))
        );
    }
}
