//! Foreground-restricted Rand scores and variation of information from a contingency table
//! (definitions in DESIGN.md section 5 and the [`super`] module doc).
//!
//! Sums of squares are accumulated exactly in `u128` and divided once, so results do not depend
//! on summation order. Tested against `skimage.metrics.adapted_rand_error` /
//! `variation_of_information` and against numpy formulas for the DESIGN conventions
//! (`tests/golden_metrics.rs`).

use super::ContingencyTable;
use serde::{Deserialize, Serialize};

/// How predicted label 0 inside the GT foreground is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnlabelledPrediction {
    /// Every such voxel is its own predicted object (DESIGN, ISBI/SNEMI3D/Fiji): leaving a voxel
    /// unlabelled is a split error, never a merge.
    Singletons,
    /// Predicted 0 is an ordinary object (what `skimage.metrics` does).
    Label,
}

/// Which voxel pairs the Rand sums count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PairCounting {
    /// `Σ n²`: ordered pairs including a voxel with itself, i.e. `Σ p²` of the probabilities
    /// (DESIGN; Fiji's "N² normalisation").
    WithSelfPairs,
    /// `Σ n(n−1)`: distinct pairs only (`skimage.metrics.adapted_rand_error`).
    DistinctPairs,
}

/// Options of [`rand_scores`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RandOptions {
    /// Weight of the merge term: `V_rand = Σp² / (α Σs² + (1−α) Σt²)`.
    pub alpha: f64,
    /// Counting of predicted 0 inside the GT foreground.
    pub unlabelled: UnlabelledPrediction,
    /// Pair counting.
    pub pairs: PairCounting,
}

impl RandOptions {
    /// DESIGN / ISBI 2012 convention: α = ½, self pairs, unlabelled voxels as singletons.
    pub fn isbi() -> Self {
        Self {
            alpha: 0.5,
            unlabelled: UnlabelledPrediction::Singletons,
            pairs: PairCounting::WithSelfPairs,
        }
    }

    /// `skimage.metrics.adapted_rand_error(gt, pred)` convention: α = ½, distinct pairs,
    /// predicted 0 an ordinary label.
    pub fn skimage() -> Self {
        Self {
            alpha: 0.5,
            unlabelled: UnlabelledPrediction::Label,
            pairs: PairCounting::DistinctPairs,
        }
    }
}

impl Default for RandOptions {
    fn default() -> Self {
        Self::isbi()
    }
}

/// Rand scores. A ratio whose denominator is 0 (no GT foreground, or only single-voxel objects
/// with [`PairCounting::DistinctPairs`]) is defined as 1 (nothing could be wrong).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RandScores {
    /// `V_rand(α)`.
    pub v_rand: f64,
    /// Split score `Σp²/Σt²` (skimage's "precision").
    pub split: f64,
    /// Merge score `Σp²/Σs²` (skimage's "recall").
    pub merge: f64,
    /// `1 − V_rand(α)`.
    pub adapted_rand_error: f64,
    /// The α used.
    pub alpha: f64,
}

fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        num / den
    } else {
        1.0
    }
}

/// Foreground-restricted Rand scores of a table (rows with GT label 0 are ignored).
pub fn rand_scores(table: &ContingencyTable, options: &RandOptions) -> RandScores {
    let singletons = options.unlabelled == UnlabelledPrediction::Singletons;
    let mut sum_p2: u128 = 0;
    let mut sum_t2: u128 = 0;
    let mut n: u128 = 0;
    let mut singles: u128 = 0;
    let mut row_label = None;
    let mut row_sum: u128 = 0;
    for c in table.cells().iter().filter(|c| c.gt != 0) {
        if row_label != Some(c.gt) {
            sum_t2 += row_sum * row_sum;
            row_sum = 0;
            row_label = Some(c.gt);
        }
        let k = u128::from(c.count);
        row_sum += k;
        n += k;
        if singletons && c.pred == 0 {
            singles += k;
        } else {
            sum_p2 += k * k;
        }
    }
    sum_t2 += row_sum * row_sum;
    let mut sum_s2: u128 = 0;
    for (l, &s) in table
        .pred_labels()
        .iter()
        .zip(table.pred_foreground_sizes())
    {
        if !(singletons && l.label == 0) {
            sum_s2 += u128::from(s) * u128::from(s);
        }
    }
    // Each singleton contributes 1² to Σp² and Σs².
    sum_p2 += singles;
    sum_s2 += singles;
    if options.pairs == PairCounting::DistinctPairs {
        // Σ n(n−1) = Σ n² − Σ n, and every sum adds up to n voxels.
        sum_p2 -= n;
        sum_t2 -= n;
        sum_s2 -= n;
    }
    let (p2, t2, s2) = (sum_p2 as f64, sum_t2 as f64, sum_s2 as f64);
    let a = options.alpha;
    let v_rand = ratio(p2, a * s2 + (1.0 - a) * t2);
    RandScores {
        v_rand,
        split: ratio(p2, t2),
        merge: ratio(p2, s2),
        adapted_rand_error: 1.0 - v_rand,
        alpha: a,
    }
}

/// Variation of information (bits) and the ISBI information-theoretic scores.
///
/// With no GT foreground all entropies are 0 and the `v_info*` scores are 1; a `v_info` ratio
/// whose entropy denominator is 0 is 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InfoScores {
    /// `H(S|T)`: false splits, in bits (skimage `variation_of_information(gt, pred)[0]`).
    pub vi_split: f64,
    /// `H(T|S)`: false merges, in bits (skimage `variation_of_information(gt, pred)[1]`).
    pub vi_merge: f64,
    /// `VI = vi_split + vi_merge`.
    pub vi: f64,
    /// `H(T)` of the GT foreground, bits.
    pub gt_entropy: f64,
    /// `H(S)` of the prediction on the GT foreground, bits.
    pub pred_entropy: f64,
    /// `I(S;T)`, bits.
    pub mutual_information: f64,
    /// `I/H(S)`: information split score.
    pub v_info_split: f64,
    /// `I/H(T)`: information merge score.
    pub v_info_merge: f64,
    /// `I / (α H(T) + (1−α) H(S))`.
    pub v_info: f64,
    /// The α used.
    pub alpha: f64,
}

fn xlog2x(c: u64) -> f64 {
    if c > 1 {
        let c = c as f64;
        c * c.log2()
    } else {
        0.0
    }
}

/// Foreground-restricted VI and information-theoretic scores of a table.
pub fn info_scores(
    table: &ContingencyTable,
    unlabelled: UnlabelledPrediction,
    alpha: f64,
) -> InfoScores {
    let singletons = unlabelled == UnlabelledPrediction::Singletons;
    let mut n: u64 = 0;
    let mut sum_n = 0.0; // Σ n_ij log2 n_ij
    let mut sum_t = 0.0; // Σ t_i log2 t_i
    let mut row_label = None;
    let mut row_sum: u64 = 0;
    for c in table.cells().iter().filter(|c| c.gt != 0) {
        if row_label != Some(c.gt) {
            sum_t += xlog2x(row_sum);
            row_sum = 0;
            row_label = Some(c.gt);
        }
        row_sum += c.count;
        n += c.count;
        if !(singletons && c.pred == 0) {
            sum_n += xlog2x(c.count);
        }
    }
    sum_t += xlog2x(row_sum);
    let mut sum_s = 0.0;
    for (l, &s) in table
        .pred_labels()
        .iter()
        .zip(table.pred_foreground_sizes())
    {
        if !(singletons && l.label == 0) {
            sum_s += xlog2x(s);
        }
    }
    if n == 0 {
        return InfoScores {
            vi_split: 0.0,
            vi_merge: 0.0,
            vi: 0.0,
            gt_entropy: 0.0,
            pred_entropy: 0.0,
            mutual_information: 0.0,
            v_info_split: 1.0,
            v_info_merge: 1.0,
            v_info: 1.0,
            alpha,
        };
    }
    let nf = n as f64;
    let log_n = nf.log2();
    let h_t = (log_n - sum_t / nf).max(0.0);
    let h_s = (log_n - sum_s / nf).max(0.0);
    let vi_split = ((sum_t - sum_n) / nf).max(0.0);
    let vi_merge = ((sum_s - sum_n) / nf).max(0.0);
    let mi = (h_t - vi_merge).max(0.0);
    InfoScores {
        vi_split,
        vi_merge,
        vi: vi_split + vi_merge,
        gt_entropy: h_t,
        pred_entropy: h_s,
        mutual_information: mi,
        v_info_split: ratio(mi, h_s),
        v_info_merge: ratio(mi, h_t),
        v_info: ratio(mi, alpha * h_t + (1.0 - alpha) * h_s),
        alpha,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn table(gt: &ndarray::Array2<u32>, pred: &ndarray::Array2<u32>) -> ContingencyTable {
        ContingencyTable::from_labels_2d(gt.view(), pred.view()).expect("same shape")
    }

    #[test]
    fn split_in_halves() {
        // One GT object of 4 pixels split into two predicted halves.
        let gt = array![[1u32, 1, 1, 1]];
        let pred = array![[1u32, 1, 2, 2]];
        let r = rand_scores(&table(&gt, &pred), &RandOptions::isbi());
        // Σp² = 2·(2/4)² = ½, Σt² = 1, Σs² = ½.
        assert!((r.split - 0.5).abs() < 1e-15);
        assert!((r.merge - 1.0).abs() < 1e-15);
        assert!((r.v_rand - 2.0 / 3.0).abs() < 1e-15);
        let i = info_scores(&table(&gt, &pred), UnlabelledPrediction::Singletons, 0.5);
        assert!((i.vi_split - 1.0).abs() < 1e-15);
        assert!(i.vi_merge.abs() < 1e-15);
        assert_eq!(i.v_info_merge, 1.0); // H(T) = 0
        assert!(i.v_info_split.abs() < 1e-15);
    }

    #[test]
    fn unlabelled_as_singletons() {
        let gt = array![[1u32, 1, 1, 1, 0]];
        let pred = array![[0u32, 0, 3, 3, 3]];
        let t = table(&gt, &pred);
        let r = rand_scores(&t, &RandOptions::isbi());
        // counts: singletons 2 (each 1), n(1,3) = 2 → Σp² = 4 + 2 = 6, Σt² = 16, Σs² = 4 + 2.
        assert!((r.split - 6.0 / 16.0).abs() < 1e-15);
        assert!((r.merge - 1.0).abs() < 1e-15);
        let l = rand_scores(
            &t,
            &RandOptions {
                unlabelled: UnlabelledPrediction::Label,
                ..RandOptions::isbi()
            },
        );
        assert!((l.split - 8.0 / 16.0).abs() < 1e-15);
        let i = info_scores(&t, UnlabelledPrediction::Singletons, 0.5);
        // H(S) = 2·¼·2 + ½·1 = 1.5 bits, H(S|T) = H(S) since H(T) = 0.
        assert!((i.vi_split - 1.5).abs() < 1e-12);
        assert!((i.pred_entropy - 1.5).abs() < 1e-12);
    }

    #[test]
    fn degenerate_denominators() {
        let gt = array![[1u32, 2, 3]];
        let pred = array![[1u32, 1, 1]];
        let r = rand_scores(&table(&gt, &pred), &RandOptions::skimage());
        // Distinct pairs: Σt² − n = 0 → split defined as 1; merge = 0/6.
        assert_eq!(r.split, 1.0);
        assert_eq!(r.merge, 0.0);
        let empty = array![[0u32, 0]];
        let r = rand_scores(
            &table(&empty, &pred.slice(ndarray::s![.., ..2]).to_owned()),
            &RandOptions::isbi(),
        );
        assert_eq!(r.v_rand, 1.0);
    }
}
