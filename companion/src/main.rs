//! `emstudio`: the EM Studio companion binary.

use anyhow::Context;
use clap::{Parser, Subcommand};
use emstudio_companion::cli::{self, EvaluateArgs, FilterArgs, LabelArgs, OutputSpec};
use emstudio_companion::{catalog, ffn_cli, nets_cli, server};
use emstudio_core::ffn_data::PartitionParams;
use emstudio_core::labels::blocks::BlockParams;
use emstudio_core::labels::postprocess::PostprocessParams;
use emstudio_core::metrics::EvaluateParams;
use emstudio_core::stack::{BitDepth, ExportFormat};
use emstudio_nets::ffn::infer::FfnInferOptions;
use emstudio_nets::ffn::net::{self as ffn_net, FfnConfig};
use emstudio_nets::ffn::train::{FfnOptimizer, FfnTrainConfig};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "emstudio",
    version,
    about = "EM Studio companion server and CLI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start-up
enum Command {
    /// Serve the browser app and datasets over HTTP.
    Serve(ServeArgs),
    #[command(flatten)]
    Batch(BatchCommand),
    /// Flood-filling networks for 3D neurons.
    #[command(subcommand)]
    Ffn(FfnCommand),
}

/// `emstudio ffn …` (see `emstudio_companion::ffn_cli`).
#[derive(Subcommand)]
enum FfnCommand {
    /// Training data from dense 3D labels: google/ffn's partition volume (partitions.tif) and
    /// the classes its balanced training centres come from (ffn-prepare.json), in one folder.
    Prepare {
        /// Dense instance labels: a folder of slices or one multi-page TIFF.
        #[arg(long, short)]
        label: PathBuf,
        /// Folder to write partitions.tif and ffn-prepare.json into.
        #[arg(long, short)]
        output: PathBuf,
        /// Half the box side, z,y,x (the FOV radius plus the deltas: 24,24,24 for a 33³ FOV
        /// moving by 8).
        #[arg(long, default_value = "24,24,24")]
        lom_radius: String,
        /// Objects with fewer voxels count as background.
        #[arg(long, default_value_t = 10_000)]
        min_size: u64,
        /// Ascending fractions that cut the partitions.
        #[arg(
            long,
            default_value = "0.025,0.05,0.075,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9"
        )]
        thresholds: String,
        /// Training centres stay this far from the border, z,y,x.
        #[arg(long, default_value = "24,24,24")]
        margin: String,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Train a flood-filling network on an image and its dense 3D instance labels (google/ffn's
    /// loop: balanced centres, fixed FOV moves, soft targets); writes an FFN model file.
    Train {
        /// Image stack (grayscale): a folder of slices or one multi-page TIFF.
        #[arg(long, short)]
        image: PathBuf,
        /// Dense instance labels, the image's shape.
        #[arg(long, short)]
        label: PathBuf,
        /// Train only inside this box, z0:z1,y0:y1,x0:x1 (":" = the whole axis), so another
        /// box stays held out for `ffn evaluate`.
        #[arg(long)]
        region: Option<String>,
        #[command(flatten)]
        network: FfnNetworkFlags,
        /// Steps to run.
        #[arg(long, default_value_t = 1000)]
        steps: u64,
        /// Examples per step.
        #[arg(long, default_value_t = 4)]
        batch: usize,
        /// sgd (google/ffn's default) | adam.
        #[arg(long, default_value = "adam")]
        optimizer: String,
        /// Learning rate (google/ffn: 0.001 with SGD; with Adam, 0.003 diverged after 2000
        /// steps of the light preset on flyem-medulla-fib, 0.001 did not: BENCHMARKS.md).
        #[arg(long, default_value_t = 0.001)]
        learning_rate: f64,
        /// Element-wise gradient clip (0 = none).
        #[arg(long, default_value_t = 0.7)]
        grad_clip: f32,
        /// Objects with fewer voxels count as background when centres are drawn.
        #[arg(long, default_value_t = 10_000)]
        min_size: u64,
        /// The folder `ffn prepare` wrote for these labels: its partitions are used instead of
        /// computing them again (its box radius and minimum size must be this run's: half the
        /// training canvas, --min-size).
        #[arg(long)]
        partitions: Option<PathBuf>,
        /// No reflections / transposition.
        #[arg(long)]
        no_augment: bool,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Start from this FFN model file.
        #[arg(long)]
        init: Option<PathBuf>,
        /// With --init: continue that run (optimiser state, step count).
        #[arg(long)]
        resume: bool,
        /// FFN model file to write.
        #[arg(long, short)]
        output: PathBuf,
        /// Save every N steps too.
        #[arg(long, default_value_t = 0)]
        checkpoint_every: u64,
        /// Write the final model without the optimiser state (a third of the size; it runs
        /// and fine-tunes, but cannot --resume the run). Checkpoints keep it.
        #[arg(long)]
        drop_optimizer: bool,
        /// auto | cpu | wgpu | cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Score an FFN model's masks on a (held-out) box: walks from balanced centres, voxels over
    /// 0.5 against the centre's object; prints F1, precision, recall, accuracy as JSON.
    Evaluate {
        /// FFN model file.
        #[arg(long, short)]
        model: PathBuf,
        /// Image stack.
        #[arg(long, short)]
        image: PathBuf,
        /// Dense instance labels.
        #[arg(long, short)]
        label: PathBuf,
        /// Score only inside this box, z0:z1,y0:y1,x0:x1.
        #[arg(long)]
        region: Option<String>,
        /// Balanced centres to walk from.
        #[arg(long, default_value_t = 64)]
        centres: usize,
        /// Objects with fewer voxels count as background when centres are drawn.
        #[arg(long, default_value_t = 10_000)]
        min_size: u64,
        /// Seed of the centres.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// auto | cpu | wgpu | cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Make an FFN model file from weights trained elsewhere: the `state_dict` of the PyTorch
    /// twin (scripts/golden/torch_ffn.py) saved as safetensors, with the network's settings and
    /// the image normalisation it was trained with.
    Import {
        /// The .safetensors file.
        #[arg(long)]
        safetensors: PathBuf,
        #[command(flatten)]
        network: FfnNetworkFlags,
        /// Input normalisation the weights expect: mean of [0, 1]-scaled images.
        #[arg(long)]
        mean: f32,
        /// Input normalisation: standard deviation.
        #[arg(long)]
        std: f32,
        /// FFN model file to write.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Segment a stack with a flood-filling network (google/ffn's inference: seeds from
    /// distance-transform peaks, face-maximum moves, objects kept by size and never
    /// overwritten); writes a label stack; with --truth, prints adapted Rand error and VI.
    Infer {
        /// FFN model file.
        #[arg(long, short)]
        model: PathBuf,
        /// Image stack.
        #[arg(long, short)]
        image: PathBuf,
        /// Segment only this box, z0:z1,y0:y1,x0:x1.
        #[arg(long)]
        region: Option<String>,
        /// The FOV moves to voxels at least this probable.
        #[arg(long, default_value_t = 0.9)]
        move_threshold: f64,
        /// Voxels at least this probable join an object.
        #[arg(long, default_value_t = 0.6)]
        segment_threshold: f64,
        /// Objects with fewer voxels are dropped.
        #[arg(long, default_value_t = 1000)]
        min_segment_size: u64,
        /// Seeds this close to an object are skipped, z,y,x.
        #[arg(long, default_value = "1,1,1")]
        min_boundary_dist: String,
        /// Segment in blocks of at most this many slices, joined where they overlap (for
        /// stacks whose canvas, 12 bytes a voxel, would not fit in memory).
        #[arg(long)]
        block_depth: Option<usize>,
        /// Slices a block reads beyond its own on each side (default: the FOV's depth, at
        /// least the 4 compared slices plus half a FOV and a move).
        #[arg(long)]
        block_overlap: Option<usize>,
        /// Keep every finished block in this folder; run the same command again to go on
        /// from where a stopped run was.
        #[arg(long)]
        checkpoint_dir: Option<PathBuf>,
        /// Dense labels to score against (the same box is cut from them).
        #[arg(long)]
        truth: Option<PathBuf>,
        #[command(flatten)]
        output: OutputFlags,
        /// auto | cpu | wgpu | cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
}

/// The flood-filling network's shape: a preset and what overrides it (`ffn train`, `ffn import`).
#[derive(clap::Args)]
struct FfnNetworkFlags {
    /// light | anisotropic | isotropic (UNI-EM's two and a small one for CPUs/browsers).
    #[arg(long, default_value = "light")]
    preset: String,
    /// Override the preset's residual depth.
    #[arg(long)]
    depth: Option<usize>,
    /// Override the preset's feature channels.
    #[arg(long)]
    features: Option<usize>,
    /// Override the field of view, x,y,z (odd sizes).
    #[arg(long)]
    fov: Option<String>,
    /// Override the moves, x,y,z.
    #[arg(long)]
    deltas: Option<String>,
}

impl FfnNetworkFlags {
    fn config(&self) -> anyhow::Result<FfnConfig> {
        let preset = &self.preset;
        let mut network = FfnConfig::preset(preset).ok_or_else(|| {
            anyhow::anyhow!("--preset {preset:?}: use {}", ffn_net::PRESETS.join(", "))
        })?;
        if let Some(d) = self.depth {
            network.depth = d;
        }
        if let Some(f) = self.features {
            network.features = f;
        }
        if let Some(f) = &self.fov {
            network.fov = xyz("--fov", f)?;
        }
        if let Some(d) = &self.deltas {
            network.deltas = xyz("--deltas", d)?;
        }
        Ok(network)
    }
}

/// `"17,17,9"` as x, y, z.
fn xyz(flag: &str, text: &str) -> anyhow::Result<[usize; 3]> {
    zyx(flag, text)
        .map_err(|_| anyhow::anyhow!("{flag}: give three whole numbers x,y,z, not {text:?}"))
}

/// `"24,24,24"` as z, y, x.
fn zyx(flag: &str, text: &str) -> anyhow::Result<[usize; 3]> {
    let parts: Vec<usize> = text
        .split(',')
        .map(|p| p.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("{flag}: give three whole numbers z,y,x, not {text:?}"))?;
    <[usize; 3]>::try_from(parts)
        .map_err(|_| anyhow::anyhow!("{flag}: give three whole numbers z,y,x, not {text:?}"))
}

/// The batch commands over stacks (see `emstudio_companion::cli`).
#[derive(Subcommand)]
enum BatchCommand {
    /// Apply a filter pipeline (saved from the app's Filters panel, or given with --step).
    Filter {
        /// Input stack: a folder of PNG/TIFF slices or one (multi-page) TIFF.
        #[arg(long, short, required_unless_present = "list")]
        input: Option<PathBuf>,
        /// Pipeline JSON file.
        #[arg(long, short)]
        pipeline: Option<PathBuf>,
        /// A filter step as JSON, e.g. '{"filter":"gaussian","sigma":[2,2]}' (repeatable).
        #[arg(long = "step")]
        steps: Vec<String>,
        #[command(flatten)]
        output: OutputFlags,
        /// List the filters with their default settings and exit.
        #[arg(long)]
        list: bool,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Probability map / mask → threshold → 3D objects → size filter → label stack.
    Label {
        /// Input stack (probability map, mask or labels).
        #[arg(long, short)]
        input: PathBuf,
        /// A number, "otsu", or "nonzero" (every nonzero voxel; for masks and labels).
        #[arg(long, default_value = "0.5")]
        threshold: String,
        /// Foreground is at or below the threshold (membrane maps).
        #[arg(long)]
        below: bool,
        /// components | distance (watershed from distance peaks) | markers | slices (2D per
        /// slice, linked across z).
        #[arg(long, default_value = "components")]
        method: String,
        /// 6, 18 or 26 (4 or 8 with --method slices).
        #[arg(long, default_value_t = 26)]
        connectivity: u8,
        /// --method distance: minimum seed separation in voxels.
        #[arg(long, default_value_t = 5)]
        min_distance: usize,
        /// --method distance: measure distances in voxels, ignoring the voxel size.
        #[arg(long)]
        isotropic: bool,
        /// --method markers: the seed label stack.
        #[arg(long)]
        markers: Option<PathBuf>,
        /// --method slices: overlap fraction that links segments across z.
        #[arg(long, default_value_t = 0.5)]
        min_overlap: f64,
        /// Remove objects with fewer voxels.
        #[arg(long, default_value_t = 0)]
        min_size: u64,
        /// --method distance | markers: run the watershed in blocks of this many slices (as
        /// the browser's helper workers do, with the same result), not on the whole volume.
        #[arg(long)]
        block_depth: Option<usize>,
        /// With --block-depth: slices each block reads beyond its own on each side.
        #[arg(long, default_value_t = 24)]
        block_overlap: usize,
        #[command(flatten)]
        output: OutputFlags,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Train a 2D CNN on image/label stacks and write a model file.
    Train {
        /// Image stack.
        #[arg(long)]
        image: PathBuf,
        /// Label stack (same size): binary masks or class values.
        #[arg(long)]
        label: PathBuf,
        /// Training slices, e.g. "0-4" or "0,3,7".
        #[arg(long, default_value = "0")]
        slices: String,
        /// Validation slices (default: the bottom fifth of a single training slice).
        #[arg(long)]
        validation_slices: Option<String>,
        #[command(flatten)]
        arch: ArchFlags,
        /// Output classes: 1 = binary (label ≠ 0), K = label values 0..K.
        #[arg(long, default_value_t = 1)]
        classes: usize,
        /// softmax_cross_entropy | sigmoid_cross_entropy | dice | square | logistic | l1.
        #[arg(long, default_value = "softmax_cross_entropy")]
        loss: String,
        /// Optimiser steps.
        #[arg(long, default_value_t = 2000)]
        steps: u64,
        /// Patches per step.
        #[arg(long, default_value_t = 4)]
        batch: usize,
        /// Patch side in pixels.
        #[arg(long, default_value_t = 256)]
        patch: usize,
        /// Adam learning rate.
        #[arg(long, default_value_t = 1e-3)]
        lr: f64,
        /// constant | cosine.
        #[arg(long, default_value = "cosine")]
        schedule: String,
        /// Validation loss every N steps.
        #[arg(long, default_value_t = 100)]
        validation_every: u64,
        /// Turn augmentation off.
        #[arg(long, conflicts_with = "augment")]
        no_augment: bool,
        /// Augmentation settings as JSON; fields left out keep their defaults, e.g.
        /// '{"contrast":0.4,"gamma":0.5,"elastic_pixels":0}'. Fields: flips, rotations,
        /// elastic_pixels, brightness, contrast, gamma, noise, blur_probability,
        /// missing_probability, misalign_probability.
        #[arg(long, value_name = "JSON")]
        augment: Option<String>,
        /// Adam weight decay (L2 penalty; 0 = off).
        #[arg(long, default_value_t = 0.0)]
        weight_decay: f64,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Label value meaning "not annotated" (ignored by the loss).
        #[arg(long)]
        ignore_label: Option<u32>,
        /// Start from this model file (fine-tune).
        #[arg(long)]
        init: Option<PathBuf>,
        /// With --init: continue that run (optimiser state, step count).
        #[arg(long)]
        resume: bool,
        /// Model file to write.
        #[arg(long, short)]
        output: PathBuf,
        /// Save every N steps too.
        #[arg(long, default_value_t = 0)]
        checkpoint_every: u64,
        /// auto | cpu | wgpu | cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Make a model file from PyTorch weights (safetensors, `state_dict` of a module with the
    /// same attribute names; see docs/plugins.md).
    Import {
        /// The .safetensors file.
        #[arg(long)]
        safetensors: PathBuf,
        #[command(flatten)]
        arch: ArchFlags,
        /// Output classes the weights were trained for.
        #[arg(long, default_value_t = 1)]
        classes: usize,
        /// Input channels the weights take: 1 (grayscale) or 3 (RGB).
        #[arg(long, default_value_t = 1)]
        channels: usize,
        /// Input normalisation the weights expect: mean of [0, 1]-scaled images.
        #[arg(long, default_value_t = 0.5)]
        mean: f32,
        /// Input normalisation: standard deviation.
        #[arg(long, default_value_t = 0.25)]
        std: f32,
        /// Model file to write.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Score a one-output model on the rows of a slice it never trained on (by default the
    /// bottom fifth, which `emstudio train` holds out of a single training slice), beside the
    /// best plain threshold, and write that with a description into the model's card.
    Card(nets_cli::CardArgs),
    /// Run a trained model over a stack: probability map (binary) or class labels.
    Infer {
        /// Model file.
        #[arg(long, short)]
        model: PathBuf,
        /// Image stack.
        #[arg(long, short)]
        input: PathBuf,
        /// Slices to run (default all).
        #[arg(long)]
        slices: Option<String>,
        #[command(flatten)]
        output: OutputFlags,
        /// Tile side in pixels (neighbouring tiles overlap by a quarter of it).
        #[arg(long, default_value_t = 512, value_parser = parse_tile)]
        tile: usize,
        /// Tiles per forward pass (1–256).
        #[arg(long, default_value_t = 4, value_parser = parse_infer_batch)]
        batch: usize,
        /// Average the prediction over 1, 4 (mirror images) or 8 (mirror images and 90°
        /// rotations) orientations: smoother, fewer specks, that many times slower.
        #[arg(long, default_value_t = 1, value_parser = parse_views)]
        views: usize,
        /// auto | cpu | wgpu | cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Score predicted labels against ground truth (Rand, VI, Jaccard/Dice, split/merge lists).
    Evaluate {
        /// Ground-truth label stack.
        #[arg(long)]
        gt: PathBuf,
        /// Predicted label stack (with --isbi: a probability map).
        #[arg(long)]
        pred: PathBuf,
        /// ISBI 2012 protocol: sweep thresholds over a map, thin borders, average per slice.
        #[arg(long)]
        isbi: bool,
        /// With --isbi: high map values are membranes (default: cell interiors).
        #[arg(long)]
        boundary_high: bool,
        /// --pred is a foreground probability map: Jaccard/Dice at thresholds 0.05–0.95 and
        /// the best one (choose a threshold on validation slices, then `label --threshold`).
        #[arg(long)]
        sweep: bool,
        /// Write all results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Errors of each kind to print.
        #[arg(long, default_value_t = 10)]
        show_errors: usize,
        /// Score only these slices, e.g. "20-29" (default: all).
        #[arg(long)]
        slices: Option<String>,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
    },
}

/// Network choice and size (`emstudio train`).
#[derive(clap::Args)]
struct ArchFlags {
    /// unet | resnet | highway | densenet.
    #[arg(long, default_value = "unet")]
    arch: String,
    /// U-Net levels.
    #[arg(long, default_value_t = 4)]
    depth: usize,
    /// ResNet blocks / Highway units / DenseNet blocks (defaults: 9, 9, 3).
    #[arg(long)]
    blocks: Option<usize>,
    /// DenseNet layers per block.
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// DenseNet growth rate.
    #[arg(long, default_value_t = 12)]
    growth: usize,
    /// Channels at full resolution.
    #[arg(long, default_value_t = 16)]
    base_width: usize,
}

impl ArchFlags {
    fn config(&self) -> anyhow::Result<emstudio_nets::arch::ArchConfig> {
        use emstudio_nets::arch::*;
        Ok(match self.arch.as_str() {
            "unet" => ArchConfig::UNet(unet::UNetConfig {
                depth: self.depth,
                base_width: self.base_width,
            }),
            "resnet" => ArchConfig::ResNet(resnet::ResNetConfig {
                blocks: self.blocks.unwrap_or(9),
                base_width: self.base_width,
            }),
            "highway" => ArchConfig::Highway(highway::HighwayConfig {
                units: self.blocks.unwrap_or(9),
                base_width: self.base_width,
            }),
            "densenet" => ArchConfig::DenseNet(densenet::DenseNetConfig {
                blocks: self.blocks.unwrap_or(3),
                layers: self.layers,
                growth: self.growth,
                base_width: self.base_width,
            }),
            other => anyhow::bail!("--arch {other}: use unet, resnet, highway or densenet"),
        })
    }
}

/// Flags of `emstudio serve`.
#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Folder with the built app (index.html, wasm).
    #[arg(long, default_value = "dist")]
    dist: PathBuf,
    /// Folder with the demo datasets shipped in the repository.
    #[arg(long, default_value = "demo")]
    demo: PathBuf,
    /// A dataset folder, or a folder of datasets, to serve too (repeatable).
    #[arg(long = "data")]
    data: Vec<PathBuf>,
}

/// Where and how results are written.
#[derive(clap::Args)]
struct OutputFlags {
    /// Output: a .tif/.tiff file (multi-page) or a folder (one file per slice).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Slice format for a folder output: png or tif.
    #[arg(long, default_value = "png")]
    format: String,
    /// native, 8 or 16.
    #[arg(long, default_value = "native")]
    depth: String,
    /// Map the value range onto the output type.
    #[arg(long)]
    rescale: bool,
}

impl OutputFlags {
    fn spec(&self) -> anyhow::Result<OutputSpec> {
        let path = self
            .output
            .clone()
            .ok_or_else(|| anyhow::anyhow!("--output is required"))?;
        let series = match self.format.as_str() {
            "png" => ExportFormat::PngSeries,
            "tif" | "tiff" => ExportFormat::TiffSeries,
            other => anyhow::bail!("--format {other}: use png or tif"),
        };
        let depth = match self.depth.as_str() {
            "native" => BitDepth::Native,
            "8" => BitDepth::U8,
            "16" => BitDepth::U16,
            other => anyhow::bail!("--depth {other}: use native, 8 or 16"),
        };
        Ok(OutputSpec {
            path,
            series,
            depth,
            rescale: self.rescale,
        })
    }
}

/// `--batch` of `emstudio infer`: 1 to 256 tiles per forward pass.
fn parse_infer_batch(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 1..=256) => Ok(n),
        _ => Err(format!("{s:?}: the batch is 1 to 256 tiles per pass")),
    }
}

/// `--tile` of `emstudio infer`: 8 to 4096 pixels.
fn parse_tile(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 8..=4096) => Ok(n),
        _ => Err(format!("{s:?}: the tile side is 8 to 4096 pixels")),
    }
}

/// `--views`: 1, 4 or 8 orientations.
fn parse_views(s: &str) -> Result<usize, String> {
    match s {
        "1" | "4" | "8" => s.parse().map_err(|e| format!("{e}")),
        _ => Err(format!("{s:?}: choose 1, 4 or 8")),
    }
}

fn batch(command: BatchCommand) -> anyhow::Result<()> {
    let message = match command {
        BatchCommand::Filter {
            input,
            pipeline,
            steps,
            output,
            list,
            quiet,
        } => {
            if list {
                return write_stdout(&cli::filter_list());
            }
            cli::filter(&FilterArgs {
                input: input.ok_or_else(|| anyhow::anyhow!("--input is required"))?,
                pipeline,
                steps,
                output: output.spec()?,
                quiet,
            })?
        }
        BatchCommand::Label {
            input,
            threshold,
            below,
            method,
            connectivity,
            min_distance,
            isotropic,
            markers,
            min_overlap,
            min_size,
            block_depth,
            block_overlap,
            output,
            quiet,
        } => {
            let method =
                cli::label_method(&method, connectivity, min_distance, !isotropic, min_overlap)?;
            anyhow::ensure!(
                markers.is_some()
                    == matches!(
                        method,
                        emstudio_core::labels::postprocess::LabelMethod::MarkerWatershed { .. }
                    ),
                "--markers goes with --method markers (and that method needs it)"
            );
            anyhow::ensure!(
                block_depth.is_none() || method.is_watershed(),
                "--block-depth goes with --method distance or markers (components need no \
                 blocks: they give the same labels either way)"
            );
            cli::label(&LabelArgs {
                input,
                markers,
                params: PostprocessParams {
                    threshold: cli::threshold_choice(&threshold)?,
                    foreground_below: below,
                    method,
                    min_size,
                    blocks: block_depth.map(|depth| BlockParams {
                        depth,
                        halo: block_overlap,
                    }),
                },
                output: output.spec()?,
                quiet,
            })?
        }
        BatchCommand::Train {
            image,
            label,
            slices,
            validation_slices,
            arch,
            classes,
            loss,
            steps,
            batch,
            patch,
            lr,
            schedule,
            validation_every,
            no_augment,
            augment,
            weight_decay,
            seed,
            ignore_label,
            init,
            resume,
            output,
            checkpoint_every,
            device,
            quiet,
        } => {
            use emstudio_nets::train::{Schedule, TrainConfig};
            let loss = serde_json::from_value(serde_json::Value::String(loss.clone()))
                .map_err(|_| anyhow::anyhow!("--loss {loss}: use softmax_cross_entropy, sigmoid_cross_entropy, dice, square, logistic or l1"))?;
            let schedule = match schedule.as_str() {
                "constant" => Schedule::Constant,
                "cosine" => Schedule::Cosine,
                other => anyhow::bail!("--schedule {other}: use constant or cosine"),
            };
            nets_cli::train(&nets_cli::TrainArgs {
                image,
                label,
                slices,
                validation_slices,
                config: TrainConfig {
                    arch: arch.config()?,
                    classes,
                    loss,
                    steps,
                    batch,
                    patch,
                    learning_rate: lr,
                    schedule,
                    weight_decay,
                    validation_every,
                    augment: match (no_augment, augment) {
                        (true, _) => emstudio_nets::augment::AugmentConfig::none(),
                        (false, None) => emstudio_nets::augment::AugmentConfig::default(),
                        (false, Some(json)) => serde_json::from_str(&json)
                            .with_context(|| format!("--augment {json}"))?,
                    },
                    seed,
                },
                ignore_label,
                init,
                resume,
                output,
                checkpoint_every,
                device: device.parse()?,
                quiet,
            })?
        }
        BatchCommand::Import {
            safetensors,
            arch,
            classes,
            channels,
            mean,
            std,
            output,
        } => nets_cli::import(&nets_cli::ImportArgs {
            safetensors,
            arch: arch.config()?,
            classes,
            channels,
            normalization: emstudio_nets::model::Normalization { mean, std },
            output,
        })?,
        BatchCommand::Card(args) => nets_cli::card(&args)?,
        BatchCommand::Infer {
            model,
            input,
            slices,
            output,
            tile,
            batch,
            views,
            device,
            quiet,
        } => nets_cli::infer(&nets_cli::InferArgs {
            model,
            image: input,
            slices,
            output: output.spec()?,
            tile,
            batch,
            views,
            device: device.parse()?,
            quiet,
        })?,
        BatchCommand::Evaluate {
            gt,
            pred,
            isbi,
            boundary_high,
            sweep,
            json,
            show_errors,
            slices,
            quiet,
        } => {
            cli::evaluate(&EvaluateArgs {
                gt,
                pred,
                isbi,
                boundary_high,
                sweep,
                params: EvaluateParams::default(),
                json,
                show_errors,
                slices,
                quiet,
            })?
            .0
        }
    };
    write_stdout(&format!("{}\n", message.trim_end()))
}

fn ffn(command: FfnCommand) -> anyhow::Result<()> {
    let message = match command {
        FfnCommand::Prepare {
            label,
            output,
            lom_radius,
            min_size,
            thresholds,
            margin,
            quiet,
        } => {
            let thresholds = thresholds
                .split(',')
                .map(|t| t.trim().parse::<f64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    anyhow::anyhow!(
                        "--thresholds: give fractions separated by commas, not {thresholds:?}"
                    )
                })?;
            ffn_cli::prepare(&ffn_cli::PrepareArgs {
                label,
                output,
                params: PartitionParams {
                    thresholds,
                    lom_radius: zyx("--lom-radius", &lom_radius)?,
                    min_size,
                },
                margin: zyx("--margin", &margin)?,
                quiet,
            })?
        }
        FfnCommand::Train {
            image,
            label,
            region,
            network,
            steps,
            batch,
            optimizer,
            learning_rate,
            grad_clip,
            min_size,
            partitions,
            no_augment,
            seed,
            init,
            resume,
            output,
            checkpoint_every,
            drop_optimizer,
            device,
            quiet,
        } => {
            let network = network.config()?;
            let optimizer = match optimizer.as_str() {
                "sgd" => FfnOptimizer::Sgd,
                "adam" => FfnOptimizer::Adam,
                o => anyhow::bail!("--optimizer {o:?}: use sgd or adam"),
            };
            ffn_cli::train(&ffn_cli::TrainArgs {
                image,
                label,
                region: region.as_deref().unwrap_or(":,:,:").parse()?,
                config: FfnTrainConfig {
                    network,
                    steps,
                    batch,
                    optimizer,
                    learning_rate,
                    grad_clip,
                    move_threshold: 0.9,
                    min_size,
                    augment: !no_augment,
                    seed,
                },
                partitions,
                init,
                resume,
                output,
                checkpoint_every,
                drop_optimizer,
                device: device.parse()?,
                quiet,
            })?
        }
        FfnCommand::Evaluate {
            model,
            image,
            label,
            region,
            centres,
            min_size,
            seed,
            device,
            quiet,
        } => ffn_cli::evaluate(&ffn_cli::EvaluateArgs {
            model,
            image,
            label,
            region: region.as_deref().unwrap_or(":,:,:").parse()?,
            centres,
            min_size,
            seed,
            device: device.parse()?,
            quiet,
        })?,
        FfnCommand::Import {
            safetensors,
            network,
            mean,
            std,
            output,
        } => ffn_cli::import(&ffn_cli::ImportArgs {
            safetensors,
            network: network.config()?,
            normalization: emstudio_nets::model::Normalization { mean, std },
            output,
        })?,
        FfnCommand::Infer {
            model,
            image,
            region,
            move_threshold,
            segment_threshold,
            min_segment_size,
            min_boundary_dist,
            block_depth,
            block_overlap,
            checkpoint_dir,
            truth,
            output,
            device,
            quiet,
        } => ffn_cli::infer(&ffn_cli::InferArgs {
            model,
            image,
            region: region.as_deref().unwrap_or(":,:,:").parse()?,
            options: FfnInferOptions {
                move_threshold,
                segment_threshold,
                min_segment_size,
                min_boundary_dist: zyx("--min-boundary-dist", &min_boundary_dist)?,
                ..FfnInferOptions::default()
            },
            block_depth,
            block_overlap,
            checkpoint_dir,
            output: output.spec()?,
            truth,
            device: device.parse()?,
            quiet,
        })?,
    };
    write_stdout(&format!("{}\n", message.trim_end()))
}

/// Writes a command's result to standard output. A reader that went away (`emstudio evaluate
/// … | head`) ends the command quietly, as it does for other Unix tools; `println!` would
/// panic there.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn main() -> std::process::ExitCode {
    let result = match Cli::parse().command {
        Command::Serve(args) => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(serve_app(args))),
        Command::Batch(command) => batch(command),
        Command::Ffn(command) => ffn(command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain on one line ("reading x: 0007.png: truncated"), no backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve_app(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let ServeArgs {
        host,
        port,
        dist,
        demo,
        data,
    } = args;
    {
        {
            anyhow::ensure!(
                dist.join("index.html").is_file(),
                "{}: no index.html; build the app first (cargo xtask build)",
                dist.display()
            );
            for d in &data {
                anyhow::ensure!(d.is_dir(), "--data {}: no such folder", d.display());
            }
            let demo = demo.is_dir().then_some(demo);
            let datasets = catalog::scan(demo.as_deref(), &data);
            for d in &datasets {
                tracing::info!(id = %d.info.id, layers = d.info.layers.len(), "dataset {}", d.root.display());
            }
            let listener = tokio::net::TcpListener::bind((host.as_str(), port))
                .await
                .with_context(|| format!("cannot listen on {host}:{port}"))?;
            let addr = listener.local_addr()?;
            println!("EM Studio is running at http://{addr}/");
            axum::serve(listener, server::router(&dist, datasets))
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
        }
    }
    Ok(())
}
