//! The weight gradient of `conv3d` and `conv2d` on the CPU backend (vendor/burn-flex: one GEMM per tile of
//! output pixels on the channel-major im2col matrix, instead of burn's convolution with the
//! output gradient as its kernel) equals the definition, summed here voxel by voxel:
//! `dW[co, ci, k] = Σ_b Σ_o dy[b, co, o] · x[b, g · cin_g + ci, o · stride + k · dilation − pad]`.
//! Cases: the FFN's SAME 3×3×3 layers (more output voxels than one tile), its 1×1×1 layer,
//! VALID, unequal kernel sides, stride, dilation and groups (burn's `conv3d` refuses asymmetric
//! padding; the backend pads such an input first, as its forward does).

use burn::prelude::*;
use burn::tensor::module::{conv2d, conv3d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::Distribution;

struct Case {
    batch: usize,
    cin: usize,
    cout: usize,
    size: [usize; 3],
    kernel: [usize; 3],
    padding: [(usize, usize); 3],
    stride: [usize; 3],
    dilation: [usize; 3],
    groups: usize,
    /// Run as `conv2d` (depth and kernel depth 1).
    two_d: bool,
}

impl Case {
    fn same(batch: usize, cin: usize, cout: usize, size: [usize; 3], kernel: [usize; 3]) -> Self {
        Case {
            batch,
            cin,
            cout,
            size,
            kernel,
            padding: kernel.map(|k| (k / 2, k / 2)),
            stride: [1; 3],
            dilation: [1; 3],
            groups: 1,
            two_d: false,
        }
    }

    fn check(self) {
        let Case {
            batch,
            cin,
            cout,
            size,
            kernel: k,
            padding,
            stride,
            dilation,
            groups,
            two_d,
        } = self;
        let label = format!(
            "{size:?} k {k:?} pad {padding:?} stride {stride:?} dilation {dilation:?} groups {groups}"
        );
        let device = Device::flex();
        let ad = device.clone().autodiff();
        let x = Tensor::<5>::random(
            [batch, cin, size[0], size[1], size[2]],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let w = Tensor::<5>::random(
            [cout, cin / groups, k[0], k[1], k[2]],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let xa = Tensor::<5>::from_data(x.to_data(), &ad);
        let wa = Tensor::<5>::from_data(w.to_data(), &ad).require_grad();
        let (y, grad_of_w) = if two_d {
            assert!(size[0] == 1 && k[0] == 1, "{label}: not 2D");
            let options = ConvOptions::new_with_padding(
                [stride[1], stride[2]],
                [padding[1], padding[2]],
                [dilation[1], dilation[2]],
                groups,
            );
            let w4 = wa.clone().squeeze_dim::<4>(2);
            let y = conv2d(xa.squeeze_dim::<4>(2), w4, None, options).unsqueeze_dim::<5>(2);
            (y, wa.clone())
        } else {
            let options = ConvOptions::new_with_padding(stride, padding, dilation, groups);
            (conv3d(xa, wa.clone(), None, options), wa.clone())
        };
        let dy = Tensor::<5>::random(y.dims(), Distribution::Normal(0.0, 1.0), &device);
        let grads = (y * Tensor::<5>::from_data(dy.to_data(), &ad))
            .sum()
            .backward();
        let got = grad_of_w.grad(&grads).expect("weight gradient");
        assert_eq!(got.dims(), w.dims(), "{label}");
        let got = got.into_data().try_to_vec::<f32>().expect("f32 values");

        let out = dy.dims();
        let xs = x.into_data().try_to_vec::<f32>().expect("f32 values");
        let dys = dy.into_data().try_to_vec::<f32>().expect("f32 values");
        let (cin_g, cout_g) = (cin / groups, cout / groups);
        let mut want = vec![0.0f64; got.len()];
        for b in 0..batch {
            for co in 0..cout {
                let g = co / cout_g;
                for ci in 0..cin_g {
                    let c = g * cin_g + ci;
                    for (t, want) in want[(co * cin_g + ci) * k[0] * k[1] * k[2]..]
                        [..k[0] * k[1] * k[2]]
                        .iter_mut()
                        .enumerate()
                    {
                        let tap = [t / (k[1] * k[2]), t / k[2] % k[1], t % k[2]];
                        for o in 0..out[2] * out[3] * out[4] {
                            let at = [o / (out[3] * out[4]), o / out[4] % out[3], o % out[4]];
                            let i: [isize; 3] = core::array::from_fn(|a| {
                                (at[a] * stride[a] + tap[a] * dilation[a]) as isize
                                    - padding[a].0 as isize
                            });
                            if (0..3).any(|a| i[a] < 0 || i[a] >= size[a] as isize) {
                                continue;
                            }
                            let xi = (((b * cin + c) * size[0] + i[0] as usize) * size[1]
                                + i[1] as usize)
                                * size[2]
                                + i[2] as usize;
                            let di = (b * cout + co) * out[2] * out[3] * out[4] + o;
                            *want += xs[xi] as f64 * dys[di] as f64;
                        }
                    }
                }
            }
        }
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let err = (g as f64 - w).abs();
            assert!(
                err <= 1e-4 * scale,
                "{label}: weight {i}: {g} against {w} (scale {scale})"
            );
        }
    }
}

#[test]
fn conv3d_weight_gradient_matches_the_definition() {
    Case::same(2, 16, 16, [17, 17, 17], [3, 3, 3]).check(); // the light FFN's layer (10 tiles)
    Case::same(2, 2, 16, [9, 11, 13], [3, 3, 3]).check(); // its first layer
    Case::same(2, 16, 1, [5, 6, 7], [1, 1, 1]).check(); // conv_lom
    Case::same(1, 3, 4, [6, 8, 20], [1, 3, 5]).check(); // unequal kernel sides
    Case {
        padding: [(0, 0); 3],
        ..Case::same(2, 2, 3, [6, 8, 9], [3, 3, 3])
    }
    .check(); // VALID
    Case {
        stride: [2, 1, 2],
        ..Case::same(2, 3, 4, [9, 9, 10], [3, 3, 3])
    }
    .check();
    Case {
        dilation: [2, 2, 1],
        ..Case::same(1, 2, 3, [9, 10, 8], [3, 3, 3])
    }
    .check();
    Case {
        groups: 2,
        ..Case::same(2, 4, 6, [7, 8, 9], [3, 3, 3])
    }
    .check();
}

#[test]
fn conv2d_weight_gradient_matches_the_definition() {
    let plane = |batch, cin, cout, size: [usize; 2], kernel: [usize; 2]| Case {
        two_d: true,
        ..Case::same(
            batch,
            cin,
            cout,
            [1, size[0], size[1]],
            [1, kernel[0], kernel[1]],
        )
    };
    plane(4, 8, 16, [40, 48], [3, 3]).check(); // a U-Net layer (4 tiles)
    plane(2, 1, 8, [20, 21], [3, 3]).check(); // a first layer
    plane(2, 3, 4, [12, 13], [1, 5]).check();
    Case {
        stride: [1, 2, 2],
        dilation: [1, 1, 2],
        ..plane(2, 3, 4, [14, 15], [3, 3])
    }
    .check();
    Case {
        groups: 3,
        padding: [(0, 0); 3],
        ..plane(1, 6, 3, [9, 10], [3, 3])
    }
    .check();
}
