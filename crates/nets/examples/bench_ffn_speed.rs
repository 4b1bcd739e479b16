//! Speed of the flood-filling network, for `cargo xtask bench nets-speed`, which runs
//! `scripts/golden/bench_ffn.py` (the PyTorch twin) beside it with the same work. The device is
//! the CPU (burn flex) unless `EMSTUDIO_BENCH_DEVICE` names another (`wgpu`, `cuda`; built with
//! that feature).
//!
//! Training: SGD steps (google/ffn's optimiser, learning rate 0.001, element-wise clip 0.7) on a
//! batch of random FOV-sized image and mask inputs with soft 0.05/0.95 targets, sigmoid
//! cross-entropy; 2 warm-up steps, then `steps` timed. Inference: `runs` forward passes of one
//! FOV (as the inference canvas does), voxels per second. Prints one JSON line.
//!
//! Usage: bench_ffn_speed <preset> <batch> <steps> <runs>

use anyhow::{bail, Context, Result};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use emstudio_nets::ffn::net::FfnConfig;
use emstudio_nets::native_device::{pick_device, DeviceChoice};
use std::time::Instant;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 4 {
        bail!("usage: bench_ffn_speed <preset> <batch> <steps> <runs>");
    }
    let config = FfnConfig::preset(&args[0]).with_context(|| format!("preset {}", args[0]))?;
    let (batch, steps, runs): (usize, u64, usize) =
        (args[1].parse()?, args[2].parse()?, args[3].parse()?);
    let choice: DeviceChoice = std::env::var("EMSTUDIO_BENCH_DEVICE")
        .unwrap_or_else(|_| "cpu".into())
        .parse()?;
    let (plain, described) = pick_device(choice)?;
    let device = plain.clone().autodiff();
    let [fz, fy, fx] = config.fov_zyx();
    let shape = [batch, 1, fz, fy, fx];
    let mut net = emstudio_nets::train::seeded_init(&device, 1, || config.build(&device));
    let mut optim = SgdConfig::new()
        .with_gradient_clipping(Some(GradientClippingConfig::Value(0.7)))
        .init();
    let mut step = || {
        let image = Tensor::<5>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let seed = Tensor::<5>::random(shape, Distribution::Uniform(-3.0, 3.0), &device);
        let target = Tensor::<5>::random(shape, Distribution::Bernoulli(0.3), &device) * 0.9 + 0.05;
        let logits = net.forward(image, seed);
        let predicted = logits.clone().detach();
        let per = logits.clone().clamp_min(0.0) - logits.clone() * target
            + (logits.abs().neg().exp() + 1.0).log();
        let loss = per.mean();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-3, net.clone(), grads);
        // Read the predictions back, as the training loop does (it writes them into the mask).
        let _ = predicted.into_data();
    };
    let warm = Instant::now();
    step();
    step();
    let warmup_s = warm.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for _ in 0..steps {
        step();
    }
    let train_steps_per_s = steps as f64 / t0.elapsed().as_secs_f64();

    let inference = config.build(&plain);
    let one = [1, 1, fz, fy, fx];
    let input = || Tensor::<5>::random(one, Distribution::Normal(0.0, 1.0), &plain);
    let _ = inference.forward(input(), input()).into_data();
    let t0 = Instant::now();
    for _ in 0..runs {
        let _ = inference.forward(input(), input()).into_data();
    }
    let infer_voxels_per_s = (runs * fz * fy * fx) as f64 / t0.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "train_steps_per_s": train_steps_per_s,
            "infer_voxels_per_s": infer_voxels_per_s,
            "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "device": described,
            "train_warmup_s": warmup_s,
        })
    );
    Ok(())
}
