//! Training losses, each with an optional per-pixel weight (0 = ignore the pixel).
//!
//! Logits are `[b, c, h, w]`. Targets are `[b, c, h, w]` too: the 0/1 mask for one output
//! channel, one-hot classes for `c ≥ 2`. Probabilities are `σ(logits)` for one channel and
//! `softmax` over channels otherwise. Every loss is a weighted mean over pixels (and channels
//! where per-channel), `Σ ℓ·w / max(Σ w, 1)`:
//!
//! | loss | per pixel | UNI-EM name |
//! | --- | --- | --- |
//! | [`LossKind::Square`] | `Σ_c (p_c − t_c)²` | Square |
//! | [`LossKind::SoftmaxCrossEntropy`] | `−Σ_c t_c log softmax_c` (1 channel: binary cross-entropy) | Softmax |
//! | [`LossKind::SigmoidCrossEntropy`] | `Σ_c BCE(σ(f_c), t_c)` (multi-label) | Sigmoid |
//! | [`LossKind::Dice`] | `1 − (2 Σ p t w + 1) / (Σ p w + Σ t w + 1)` per channel, averaged | — |
//! | [`LossKind::Logistic`] | `−Σ_c [t_c log p_c + (1 − t_c) log(1 − p_c)]` with `p` clipped to `[1e-7, 1 − 1e-7]` (TensorFlow's `log_loss`) | Logistic |
//! | [`LossKind::L1`] | `Σ_c |p_c − t_c|` | Absolute |
//!
//! Hand-written (burn's built-in losses take no pixel weights); each is checked against the
//! formula evaluated in f64 on small tensors in the tests below.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, sigmoid, softmax};
use serde::{Deserialize, Serialize};

/// Which loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Least squares on probabilities.
    Square,
    /// Softmax cross-entropy (binary cross-entropy for one channel).
    SoftmaxCrossEntropy,
    /// Per-channel sigmoid cross-entropy (multi-label).
    SigmoidCrossEntropy,
    /// Soft Dice.
    Dice,
    /// Log loss on clipped probabilities.
    Logistic,
    /// Absolute difference of probabilities.
    L1,
}

impl LossKind {
    /// Every loss, for menus.
    pub const ALL: [LossKind; 6] = [
        LossKind::SoftmaxCrossEntropy,
        LossKind::SigmoidCrossEntropy,
        LossKind::Dice,
        LossKind::Square,
        LossKind::Logistic,
        LossKind::L1,
    ];
}

/// Probabilities from logits: sigmoid for one channel, softmax over channels otherwise.
pub fn probabilities(logits: Tensor<4>) -> Tensor<4> {
    if logits.dims()[1] == 1 {
        sigmoid(logits)
    } else {
        softmax(logits, 1)
    }
}

/// Numerically stable `BCE(σ(f), t) = max(f, 0) − f·t + log(1 + e^{−|f|})`.
fn bce_with_logits(f: Tensor<4>, t: Tensor<4>) -> Tensor<4> {
    f.clone().clamp_min(0.0) - f.clone() * t + (f.abs().neg().exp() + 1.0).log()
}

/// Weighted mean of a per-pixel map `[b, 1, h, w]` (or per-pixel-per-channel `[b, c, h, w]`,
/// summed over channels first).
fn weighted_mean(per: Tensor<4>, weight: &Tensor<4>) -> Tensor<1> {
    let per_pixel = per.sum_dim(1);
    let total = (per_pixel * weight.clone()).sum();
    let norm = weight.clone().sum().clamp_min(1.0);
    total / norm
}

/// The loss of `logits` against `target`, weighted by `weight` (`[b, 1, h, w]`, 1 = count,
/// 0 = ignore).
pub fn loss(kind: LossKind, logits: Tensor<4>, target: Tensor<4>, weight: &Tensor<4>) -> Tensor<1> {
    let channels = logits.dims()[1];
    match kind {
        LossKind::Square => {
            let d = probabilities(logits) - target;
            weighted_mean(d.clone() * d, weight)
        }
        LossKind::L1 => weighted_mean((probabilities(logits) - target).abs(), weight),
        LossKind::SoftmaxCrossEntropy if channels > 1 => {
            weighted_mean(log_softmax(logits, 1).neg() * target, weight)
        }
        LossKind::SoftmaxCrossEntropy | LossKind::SigmoidCrossEntropy => {
            weighted_mean(bce_with_logits(logits, target), weight)
        }
        LossKind::Logistic => {
            let eps = 1e-7;
            let p = probabilities(logits).clamp(eps, 1.0 - eps);
            let per = (target.clone() * p.clone().log()
                + (target.neg() + 1.0) * (p.neg() + 1.0).log())
            .neg();
            weighted_mean(per, weight)
        }
        LossKind::Dice => {
            let p = probabilities(logits) * weight.clone();
            let t = target * weight.clone();
            // Per channel over batch and pixels.
            let inter = (p.clone() * t.clone()).sum_dims(&[0, 2, 3]);
            let denom = p.sum_dims(&[0, 2, 3]) + t.sum_dims(&[0, 2, 3]);
            let dice = (inter * 2.0 + 1.0) / (denom + 1.0);
            (dice.neg() + 1.0).mean()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t4(v: &[f32], shape: [usize; 4], device: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
    }

    fn scalar(t: Tensor<1>) -> f64 {
        f64::from(t.into_scalar::<f32>())
    }

    fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    #[test]
    fn binary_losses_match_their_formulas() {
        let d = Device::flex();
        let f = [2.0f32, -1.0, 0.5, -3.0];
        let t = [1.0f32, 0.0, 0.0, 1.0];
        let w = [1.0f32, 1.0, 0.0, 1.0]; // third pixel ignored
        let (lf, lt, lw) = (
            t4(&f, [1, 1, 2, 2], &d),
            t4(&t, [1, 1, 2, 2], &d),
            t4(&w, [1, 1, 2, 2], &d),
        );
        let kept = [0usize, 1, 3];
        let mean = |g: &dyn Fn(f64, f64) -> f64| {
            kept.iter()
                .map(|&i| g(f64::from(f[i]), f64::from(t[i])))
                .sum::<f64>()
                / 3.0
        };
        let bce = mean(&|f, t| -(t * sig(f).ln() + (1.0 - t) * (1.0 - sig(f)).ln()));
        let sq = mean(&|f, t| (sig(f) - t).powi(2));
        let l1 = mean(&|f, t| (sig(f) - t).abs());
        let close = |a: f64, b: f64| (a - b).abs() < 1e-5;
        for (kind, want) in [
            (LossKind::SigmoidCrossEntropy, bce),
            (LossKind::SoftmaxCrossEntropy, bce),
            (LossKind::Logistic, bce),
            (LossKind::Square, sq),
            (LossKind::L1, l1),
        ] {
            let got = scalar(loss(kind, lf.clone(), lt.clone(), &lw));
            assert!(close(got, want), "{kind:?}: {got} vs {want}");
        }
        let (mut inter, mut sp, mut st) = (0.0, 0.0, 0.0);
        for &i in &kept {
            let p = sig(f64::from(f[i]));
            inter += p * f64::from(t[i]);
            sp += p;
            st += f64::from(t[i]);
        }
        let dice = 1.0 - (2.0 * inter + 1.0) / (sp + st + 1.0);
        let got = scalar(loss(LossKind::Dice, lf, lt, &lw));
        assert!(close(got, dice), "dice {got} vs {dice}");
    }

    #[test]
    fn softmax_cross_entropy_over_classes() {
        let d = Device::flex();
        // One pixel, three classes, class 2 is right.
        let f = [1.0f32, 0.0, 2.0];
        let got = scalar(loss(
            LossKind::SoftmaxCrossEntropy,
            t4(&f, [1, 3, 1, 1], &d),
            t4(&[0.0, 0.0, 1.0], [1, 3, 1, 1], &d),
            &t4(&[1.0], [1, 1, 1, 1], &d),
        ));
        let z: f64 = f.iter().map(|&v| f64::from(v).exp()).sum();
        let want = -(2.0f64.exp() / z).ln();
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        // All pixels ignored: zero, not NaN.
        let none = scalar(loss(
            LossKind::SoftmaxCrossEntropy,
            t4(&f, [1, 3, 1, 1], &d),
            t4(&[0.0, 0.0, 1.0], [1, 3, 1, 1], &d),
            &t4(&[0.0], [1, 1, 1, 1], &d),
        ));
        assert_eq!(none, 0.0);
    }
}
