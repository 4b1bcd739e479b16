//! A short FFN training run on real EM data, kept in CI so a regression in the network, the
//! loss, the movement policy or the optimiser shows: the light preset on the FlyEM demo
//! (50×250×250 FIB-SEM with dense neuron labels, shipped in demo/), trained on the half with
//! y < 125 and scored on the other half, which it never sees. The score is the F1 of the mask
//! (voxels over 0.5 against the centre object's voxels) over whole training canvases walked by
//! the fixed policy from balanced centres. It must rise well above the untrained network's
//! (which leaves the mask at its seed: F1 near 0), and the training loss must fall. A
//! plain-threshold flood fill (the centre's side of the Otsu threshold, 6-connected to the
//! centre) is scored on the same canvases and printed: it is the bar for longer training
//! (BENCHMARKS.md), not for these 400 steps.

use burn::prelude::*;
use emstudio_core::stack::{read_stack, Limits};
use emstudio_nets::ffn::net::FfnConfig;
use emstudio_nets::ffn::train::{
    balanced_centres, evaluate_masks, threshold_fill_counts, FfnOptimizer, FfnTrainConfig,
    FfnTrainer, FfnVolume,
};
use ndarray::s;
use std::path::Path;

fn layer(name: &str) -> emstudio_core::AnyVolume {
    let dir =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../../demo/flyem-medulla")
            .join(name);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("demo layer")
        .filter_map(|e| e.ok())
        .map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(e.path()).expect("read");
            (n, bytes)
        })
        .collect();
    files.sort();
    read_stack(files, &Limits::default()).expect("decode")
}

#[test]
fn the_light_ffn_learns_neuron_masks_on_a_held_out_half() {
    let image = layer("image").to_unit_f32_array().expect("gray");
    let labels = layer("label").to_label_array().expect("labels");
    let part = |r: std::ops::Range<usize>, name: &str| {
        FfnVolume::new(
            name,
            image.slice(s![.., r.clone(), ..]).to_owned(),
            labels.slice(s![.., r, ..]).to_owned(),
        )
        .expect("volume")
    };
    let train = part(0..125, "flyem demo, y < 125");
    let held_out = part(125..250, "flyem demo, y ≥ 125");
    let steps: u64 = std::env::var("FFN_TEST_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let config = FfnTrainConfig {
        network: FfnConfig::preset("light").expect("preset"),
        steps,
        batch: 4,
        optimizer: FfnOptimizer::Adam,
        learning_rate: std::env::var("FFN_TEST_LR")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3e-3),
        min_size: 1000,
        seed: 7,
        ..FfnTrainConfig::default()
    };
    let device = Device::flex().autodiff();
    let t0 = std::time::Instant::now();
    let mut trainer = FfnTrainer::new(
        config.clone(),
        vec![train],
        &device,
        None,
        &mut emstudio_core::progress::NoProgress,
    )
    .expect("trainer");
    let centres = balanced_centres(&held_out, &config, 24, 99).expect("centres");
    let score = |t: &FfnTrainer| {
        evaluate_masks(
            &t.net().valid(),
            &t.header(""),
            &held_out,
            &centres,
            config.move_threshold,
            8,
            &Device::flex(),
        )
        .expect("evaluate")
    };
    let before = score(&trainer);
    let baseline = threshold_fill_counts(&held_out, &centres, config.canvas_zyx());
    while !trainer.finished() {
        let r = trainer.step().expect("step");
        assert!(r.loss.is_finite(), "step {}: loss {}", r.step, r.loss);
    }
    let after = score(&trainer);
    let curve = trainer.curve();
    eprintln!(
        "{} steps in {:.1} s; loss {:.3} -> {:.3}; held-out F1 untrained {:.3}, trained {:.3} \
         (precision {:.3}, recall {:.3}), threshold fill {:.3}",
        steps,
        t0.elapsed().as_secs_f64(),
        curve.first().map_or(f32::NAN, |p| p.loss),
        curve.last().map_or(f32::NAN, |p| p.loss),
        before.f1(),
        after.f1(),
        after.precision(),
        after.recall(),
        baseline.f1()
    );
    // `>` and `<` fail on NaN.
    assert!(
        after.f1() > before.f1() + 0.2,
        "F1 {} -> {}",
        before.f1(),
        after.f1()
    );
    let (first, last) = (curve[0].loss, curve[curve.len() - 1].loss);
    assert!(last < 0.8 * first, "loss {first} -> {last}");
    assert!(
        baseline.f1() > 0.0,
        "the threshold fill scored {}",
        baseline.f1()
    );
}
