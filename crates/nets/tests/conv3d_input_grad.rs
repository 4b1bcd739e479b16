//! The input gradient of `conv3d` on the CPU backend (vendor/burn-flex: a stride-1 convolution's
//! input gradient runs as a convolution with the flipped, channel-swapped kernel) equals burn's
//! definition of it, a transposed convolution of the output gradient (`conv_transpose3d`), for
//! the FFN's SAME 3×3×3 and 1×1×1 layers, VALID and asymmetric shapes, and the strided case that
//! keeps burn's path.

use burn::prelude::*;
use burn::tensor::module::{conv3d, conv_transpose3d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::Distribution;

fn check(
    batch: usize,
    cin: usize,
    cout: usize,
    size: [usize; 3],
    k: [usize; 3],
    pad: [usize; 3],
    stride: [usize; 3],
) {
    let device = Device::flex();
    let ad = device.clone().autodiff();
    let x = Tensor::<5>::random(
        [batch, cin, size[0], size[1], size[2]],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let w = Tensor::<5>::random(
        [cout, cin, k[0], k[1], k[2]],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let xa = Tensor::<5>::from_data(x.to_data(), &ad).require_grad();
    let wa = Tensor::<5>::from_data(w.to_data(), &ad);
    let y = conv3d(
        xa.clone(),
        wa,
        None,
        ConvOptions::new(stride, pad, [1; 3], 1),
    );
    let dy = Tensor::<5>::random(y.dims(), Distribution::Normal(0.0, 1.0), &device);
    let grads = (y * Tensor::<5>::from_data(dy.to_data(), &ad))
        .sum()
        .backward();
    let got = xa.grad(&grads).expect("input gradient");
    let out = dy.dims();
    let padding_out = [0, 1, 2].map(|i| {
        let used = (out[2 + i] - 1) * stride[i] + k[i];
        (size[i] + 2 * pad[i]).saturating_sub(used)
    });
    let want = conv_transpose3d(
        dy,
        w,
        None,
        ConvTransposeOptions::new(stride, pad, padding_out, [1; 3], 1),
    );
    assert_eq!(
        got.dims(),
        want.dims(),
        "{size:?} k {k:?} pad {pad:?} stride {stride:?}"
    );
    let worst = (got - want.clone()).abs().max().into_scalar::<f32>();
    let scale = want.abs().max().into_scalar::<f32>();
    assert!(
        worst <= 1e-4 * scale.max(1.0),
        "{size:?} k {k:?} pad {pad:?} stride {stride:?}: {worst} of {scale}"
    );
}

#[test]
fn conv3d_input_gradient_matches_the_transposed_convolution() {
    check(2, 3, 4, [7, 9, 17], [3, 3, 3], [1, 1, 1], [1, 1, 1]); // SAME
    check(1, 16, 16, [17, 17, 17], [3, 3, 3], [1, 1, 1], [1, 1, 1]); // the light FFN's layer
    check(2, 5, 1, [5, 6, 7], [1, 1, 1], [0, 0, 0], [1, 1, 1]); // conv_lom
    check(1, 2, 3, [6, 8, 9], [3, 3, 3], [0, 0, 0], [1, 1, 1]); // VALID
    check(1, 2, 3, [6, 8, 20], [1, 3, 5], [0, 1, 2], [1, 1, 1]); // unequal kernel sides
    check(1, 2, 3, [9, 9, 9], [3, 3, 3], [1, 1, 1], [2, 2, 2]); // strided: burn's own path
}
