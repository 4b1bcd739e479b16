//! Building blocks shared by the architectures: 3×3 convolution + batch norm + ReLU, stride-2
//! down- and up-sampling, and the 1×1 head.
//!
//! When no gradient is wanted (inference, validation, previews) a batch norm that follows a
//! convolution is folded into it ([`conv_bn`], [`conv_transpose_bn`]): the convolution runs with
//! weights scaled by `γ / √(σ² + ε)` and a bias `β − μ·γ / √(σ² + ε)`, which is the same function
//! (checked against the unfolded layers in the tests below) without the four passes over the
//! activation that burn's batch norm makes (subtract, divide, multiply, add).

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// True when `bn` normalises with its running statistics for this input (what
/// `BatchNorm::forward` decides: no autodiff device, or a frozen layer).
fn uses_running_statistics(bn: &BatchNorm, x: &Tensor<4>) -> bool {
    !(x.device().is_autodiff() && bn.training.is_enabled())
}

/// The per-channel scale and shift that batch norm applies with its running statistics.
fn folded(bn: &BatchNorm) -> (Tensor<1>, Tensor<1>) {
    let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt();
    let shift = bn.beta.val() - bn.running_mean.value() * scale.clone();
    (scale, shift)
}

/// `bn(conv(x))`, with the norm folded into the convolution when it uses running statistics.
pub fn conv_bn(conv: &Conv2d, bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    if !uses_running_statistics(bn, &x) {
        return bn.forward(conv.forward(x));
    }
    let (scale, shift) = folded(bn);
    let cout = scale.dims()[0];
    let mut fused = conv.clone();
    // Weights are [out, in, kh, kw]: scale each output channel.
    fused.weight = Param::from_tensor(conv.weight.val() * scale.clone().reshape([cout, 1, 1, 1]));
    fused.bias = Some(Param::from_tensor(match &conv.bias {
        Some(b) => b.val() * scale + shift,
        None => shift,
    }));
    fused.forward(x)
}

/// `bn(conv(x))` for a transposed convolution, folded like [`conv_bn`].
pub fn conv_transpose_bn(conv: &ConvTranspose2d, bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    if !uses_running_statistics(bn, &x) {
        return bn.forward(conv.forward(x));
    }
    let (scale, shift) = folded(bn);
    let cout = scale.dims()[0];
    let mut fused = conv.clone();
    // Weights are [in, out, kh, kw]: scale each output channel.
    fused.weight = Param::from_tensor(conv.weight.val() * scale.clone().reshape([1, cout, 1, 1]));
    fused.bias = Some(Param::from_tensor(match &conv.bias {
        Some(b) => b.val() * scale + shift,
        None => shift,
    }));
    fused.forward(x)
}

/// 3×3 convolution (padding 1) → batch norm → ReLU, at stride 1 ([`ConvBnRelu::new`]) or
/// stride 2, halving height and width ([`down`]).
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    conv: Conv2d,
    bn: BatchNorm,
}

impl ConvBnRelu {
    /// `cin` → `cout` channels, 3×3, stride 1.
    pub fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Self::with_stride(cin, cout, 1, device)
    }
    fn with_stride(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([cin, cout], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(cout).init(device),
        }
    }
    /// Applies the block.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(conv_bn(&self.conv, &self.bn, x))
    }
}

/// `cin` → `cout` channels at half resolution (3×3, stride 2).
pub fn down(cin: usize, cout: usize, device: &Device) -> ConvBnRelu {
    ConvBnRelu::with_stride(cin, cout, 2, device)
}

/// 2×2 transposed convolution with stride 2 → batch norm → ReLU: doubles height and width.
#[derive(Module, Debug)]
pub struct Up {
    conv: ConvTranspose2d,
    bn: BatchNorm,
}

impl Up {
    /// `cin` → `cout` channels at double resolution.
    pub fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Self {
            conv: ConvTranspose2dConfig::new([cin, cout], [2, 2])
                .with_stride([2, 2])
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(cout).init(device),
        }
    }
    /// Applies the block.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(conv_transpose_bn(&self.conv, &self.bn, x))
    }
}

/// A 1×1 convolution to the output channels (logits).
pub fn head(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [1, 1]).init(device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// A batch norm with trained-looking statistics (not the identity it starts as).
    fn trained_bn(c: usize, device: &Device) -> BatchNorm {
        let mut bn = BatchNormConfig::new(c).init(device);
        let t = |lo: f64, hi: f64| Tensor::<1>::random([c], Distribution::Uniform(lo, hi), device);
        bn.gamma = Param::from_tensor(t(0.5, 2.0));
        bn.beta = Param::from_tensor(t(-1.0, 1.0));
        bn.running_mean = burn::module::RunningState::new(t(-0.5, 0.5));
        bn.running_var = burn::module::RunningState::new(t(0.2, 3.0));
        bn
    }

    fn max_difference(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    #[test]
    fn folded_batch_norm_equals_the_layers_it_replaces() {
        let device = Device::flex();
        let x = crate::train::seeded_init(&device, 3, || {
            Tensor::<4>::random([2, 3, 12, 10], Distribution::Normal(0.0, 1.0), &device)
        });
        for (stride, bias) in [(1, false), (2, false), (1, true)] {
            let conv = Conv2dConfig::new([3, 5], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(bias)
                .init(&device);
            let bn = trained_bn(5, &device);
            let plain = bn.forward(conv.forward(x.clone()));
            let fused = conv_bn(&conv, &bn, x.clone());
            assert_eq!(plain.dims(), fused.dims());
            let d = max_difference(plain, fused);
            assert!(d < 1e-4, "stride {stride}, bias {bias}: {d}");
        }
        let up = ConvTranspose2dConfig::new([3, 4], [2, 2])
            .with_stride([2, 2])
            .with_bias(false)
            .init(&device);
        let bn = trained_bn(4, &device);
        let plain = bn.forward(up.forward(x.clone()));
        let fused = conv_transpose_bn(&up, &bn, x);
        assert_eq!(plain.dims(), [2, 4, 24, 20]);
        let d = max_difference(plain, fused);
        assert!(d < 1e-4, "transposed: {d}");
    }

    #[test]
    fn training_keeps_batch_statistics() {
        // On an autodiff device the norm uses the batch's own statistics (and learns them), so
        // it must not be folded: the output is normalised per channel whatever the running
        // statistics say.
        let device = Device::flex().autodiff();
        device.seed(4);
        let conv = Conv2dConfig::new([2, 3], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let bn = trained_bn(3, &device);
        let x = Tensor::<4>::random([4, 2, 8, 8], Distribution::Normal(2.0, 3.0), &device);
        let y = conv_bn(&conv, &bn, x.clone());
        let expected = bn.forward(conv.forward(x));
        assert!(max_difference(y.clone(), expected) < 1e-5);
        // γ·x̂ + β with x̂ of mean 0 per channel: the batch mean is β.
        let means = y.mean_dim(0).mean_dim(2).mean_dim(3).reshape([3]);
        let beta = bn.beta.val();
        let d = (means - beta).abs().max().into_scalar::<f32>();
        assert!(d < 1e-3, "{d}");
    }
}
