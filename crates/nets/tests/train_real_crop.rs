//! A short training run on real EM data, kept in CI so regressions in the nets, losses or the
//! training loop show: a small U-Net on a 256² crop of the UNI-EM AC3 demo slice (mitochondria,
//! shipped in demo/), 40 steps; the training loss must fall and the validation loss with it.

use burn::prelude::*;
use emstudio_core::stack::{read_stack, Limits};
use emstudio_nets::arch::{unet::UNetConfig, ArchConfig};
use emstudio_nets::augment::AugmentConfig;
use emstudio_nets::train::{Schedule, Slice, TrainConfig, Trainer};
use ndarray::{s, Array2};
use std::path::Path;

fn load(layer: &str) -> Array2<f32> {
    let path =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join(format!("../../demo/uniem-ac3-mito/{layer}/0000.png"));
    let bytes = std::fs::read(&path).expect("demo slice");
    let v = read_stack(vec![("0000.png".into(), bytes)], &Limits::default()).expect("decode");
    let a = v.to_unit_f32_array().expect("gray");
    a.index_axis(ndarray::Axis(0), 0).to_owned()
}

#[test]
fn a_small_unet_learns_mitochondria_on_a_real_crop() {
    let image = load("image");
    let label = load("label").mapv(|v| u32::from(v > 0.5));
    // 256² with about a quarter mitochondria; train on its top 192 rows, validate on the rest.
    let crop = |r: std::ops::Range<usize>| {
        Slice::gray(
            image
                .slice(s![544 + r.start..544 + r.end, 512..768])
                .to_owned(),
            &label
                .slice(s![544 + r.start..544 + r.end, 512..768])
                .to_owned(),
            1,
            None,
        )
        .expect("slice")
    };
    let config = TrainConfig {
        arch: ArchConfig::UNet(UNetConfig {
            depth: 3,
            base_width: 8,
        }),
        steps: 40,
        batch: 4,
        patch: 64,
        learning_rate: 3e-3,
        schedule: Schedule::Constant,
        validation_every: 20,
        augment: AugmentConfig {
            elastic_pixels: 0.0,
            ..AugmentConfig::default()
        },
        ..TrainConfig::default()
    };
    let device = Device::flex().autodiff();
    let mut t = Trainer::new(
        config,
        vec![crop(0..192)],
        vec![crop(192..256)],
        vec![],
        &device,
        None,
    )
    .expect("trainer");
    let mut losses = Vec::new();
    while !t.finished() {
        losses.extend(t.step().losses);
    }
    let first = losses[..8].iter().sum::<f32>() / 8.0;
    let last = losses[losses.len() - 8..].iter().sum::<f32>() / 8.0;
    assert!(last < first * 0.8, "training loss {first:.4} → {last:.4}");
    let h = t.history();
    let (v0, v1) = (
        h[0].validation.expect("measured"),
        h[1].validation.expect("measured"),
    );
    assert!(v1 < v0, "validation loss {v0:.4} → {v1:.4}");
}
