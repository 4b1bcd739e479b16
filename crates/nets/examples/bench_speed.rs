//! Speed of one network, for `cargo xtask bench nets-speed`, which runs
//! `scripts/golden/bench_nets.py` (the same network in PyTorch) beside it on the same data.
//! The device is the CPU (burn flex) unless `EMSTUDIO_BENCH_DEVICE` names another (`wgpu`,
//! `cuda`; the example must be built with that feature); `scripts/gpu/run_gpu_bench.sh` runs it
//! on a GPU machine beside PyTorch on CUDA.
//!
//! Training: Adam steps on random `patch`² crops of a real image/label slice, no augmentation
//! (the PyTorch side does the same), binary cross-entropy. Inference: forward passes of a batch of
//! `infer_side`² tiles. Prints one JSON line.
//!
//! Usage: bench_speed <arch JSON> <image.png> <label.png> <batch> <patch> <steps> <infer_side>

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use burn::tensor::Distribution;
use emstudio_core::stack::{read_stack, Limits};
use emstudio_nets::arch::{ArchConfig, NetIo, SegNet};
use emstudio_nets::augment::AugmentConfig;
use emstudio_nets::native_device::{pick_device, DeviceChoice};
use emstudio_nets::train::{Schedule, Slice, TrainConfig, Trainer};
use ndarray::Array2;
use std::time::Instant;

fn slice(path: &str) -> Result<Array2<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("{path}: cannot read"))?;
    let v = read_stack(vec![(path.into(), bytes)], &Limits::default())
        .with_context(|| path.to_string())?;
    let a = v.to_unit_f32_array().with_context(|| path.to_string())?;
    Ok(a.index_axis(ndarray::Axis(0), 0).to_owned())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 7 {
        bail!("usage: bench_speed <arch JSON> <image.png> <label.png> <batch> <patch> <steps> <infer_side>");
    }
    let arch: ArchConfig = serde_json::from_str(&args[0]).context("architecture JSON")?;
    let (batch, patch, steps, side): (usize, usize, u64, usize) = (
        args[3].parse()?,
        args[4].parse()?,
        args[5].parse()?,
        args[6].parse()?,
    );
    let image = slice(&args[1])?;
    let label = slice(&args[2])?.mapv(|v| u32::from(v > 0.0));
    let config = TrainConfig {
        arch: arch.clone(),
        steps: steps + 2,
        batch,
        patch,
        schedule: Schedule::Constant,
        validation_every: 0,
        augment: AugmentConfig::none(),
        ..TrainConfig::default()
    };
    let choice: DeviceChoice = std::env::var("EMSTUDIO_BENCH_DEVICE")
        .unwrap_or_else(|_| "cpu".into())
        .parse()?;
    let (plain, described) = pick_device(choice)?;
    let device = plain.clone().autodiff();
    let train = vec![Slice::gray(image, &label, 1, None)?];
    let mut trainer = Trainer::new(config, train, vec![], vec![], &device, None)?;
    // Two warm-up steps (allocations, first-touch; on a GPU kernel compilation and autotuning),
    // then the timed ones.
    let warm = Instant::now();
    trainer.step();
    trainer.step();
    let warmup_s = warm.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for _ in 0..steps {
        trainer.step();
    }
    let train_steps_per_s = steps as f64 / t0.elapsed().as_secs_f64();

    let net = arch.build(
        &NetIo {
            in_channels: 1,
            out_channels: 1,
        },
        &plain,
    );
    let input = || Tensor::<4>::random([batch, 1, side, side], Distribution::Default, &plain);
    let _ = net.forward(input()).into_data();
    let runs = 3;
    let t0 = Instant::now();
    for _ in 0..runs {
        let _ = net.forward(input()).into_data();
    }
    let infer_mpx_per_s = (runs * batch * side * side) as f64 / 1e6 / t0.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "train_steps_per_s": train_steps_per_s,
            "infer_mpx_per_s": infer_mpx_per_s,
            "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "device": described,
            "train_warmup_s": warmup_s,
            // The patch trained on: the asked one unless the slice is smaller.
            "train_patch": trainer.patch(),
        })
    );
    Ok(())
}
