//! `emstudio ffn …`: flood-filling network commands.
//!
//! - `prepare`: the partition volume and the class counts of the balanced training coordinates
//!   of a dense label stack (`emstudio_core::ffn_data`, google/ffn's `compute_partitions` and
//!   `build_coordinates`), written next to each other in one folder. The coordinates themselves
//!   are not stored: they follow from the partitions, the margin and a seed
//!   (`build_coordinates`), and for a 250³ volume they are 16 million centres.
//! - `train`: `emstudio_nets::ffn::train` on an image and label stack (optionally a box of
//!   them, so another box stays held out), with a progress bar, checkpoints and resume; with
//!   `--partitions`, the partitions `prepare` wrote are used (checked to be made with the
//!   training's box radius, minimum size and thresholds) instead of computed again.
//! - `evaluate`: the mask scores of a model on a (held-out) box: fixed-policy walks from
//!   balanced centres, voxels over 0.5 against the centre object.
//! - `import`: an FFN model file from the PyTorch twin's `state_dict` in safetensors
//!   (`FfnModelFile::import_safetensors`, golden-tested against the twin's outputs).
//! - `infer`: dense segmentation of a stack (or a box of it) with `emstudio_nets::ffn::infer`
//!   from `PolicyPeaks` seeds, written as a label stack; with `--truth`, scored against dense
//!   labels (adapted Rand error, VI, merges and splits; `core::metrics`). With
//!   `--block-depth` in blocks along z joined where they overlap (`nets::ffn::blocks`), with
//!   `--checkpoint-dir` each finished block kept on disk so a stopped run goes on from there.

use crate::cli::{bar, follow, read_stack_path, write_stack, OutputSpec};
use crate::nets_cli::{read_safetensors, today, DeviceChoice};
use anyhow::{ensure, Context, Result};
use emstudio_core::ffn_data::{class_counts, compute_partitions, PartitionParams};
use emstudio_core::labels::blocks::{LabelledBlock, SEAM};
use emstudio_core::metrics::{evaluate_labels_3d, EvaluateParams};
use emstudio_core::progress::Phase;
use emstudio_core::stack::{BitDepth, ExportFormat};
use emstudio_core::{AnyVolume, Volume};
use emstudio_nets::ffn::blocks as ffn_blocks;
use emstudio_nets::ffn::file::{FfnHeader, FfnModelFile};
use emstudio_nets::ffn::infer::{FfnInferOptions, NetPredictor};
use emstudio_nets::ffn::net::FfnConfig;
use emstudio_nets::ffn::train::{
    balanced_centres, evaluate_masks, FfnTrainConfig, FfnTrainer, FfnVolume,
};
use emstudio_nets::model::{Normalization, Provenance};
use emstudio_nets::native_device::pick_device;
use emstudio_nets::Device;
use ndarray::{s, Array3};
use serde::Serialize;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The partition volume's file in the output folder.
pub const PARTITIONS_FILE: &str = "partitions.tif";
/// The description's file in the output folder.
pub const DESCRIPTION_FILE: &str = "ffn-prepare.json";

/// Arguments of `emstudio ffn prepare`.
#[derive(Debug, Clone)]
pub struct PrepareArgs {
    /// Dense instance labels (a folder of slices or a multi-page TIFF).
    pub label: PathBuf,
    /// The folder to write `partitions.tif` and `ffn-prepare.json` into.
    pub output: PathBuf,
    /// Box radius, thresholds, dust size.
    pub params: PartitionParams,
    /// Training centres stay this far (z, y, x) from the border.
    pub margin: [usize; 3],
    /// No progress bar.
    pub quiet: bool,
}

/// What `ffn-prepare.json` says.
#[derive(Debug, Serialize)]
struct Description<'a> {
    /// The label stack the partitions came from.
    labels: String,
    /// Its shape, z, y, x.
    shape: [usize; 3],
    /// The parameters used.
    partitions: &'a PartitionParams,
    /// The margin of the training centres, z, y, x.
    margin: [usize; 3],
    /// `[value, voxels]` of every class inside the margin (0 = background).
    classes: Vec<(u8, u64)>,
    /// Training centres in one balanced pass: classes × the largest class.
    coordinates: u64,
}

/// Runs `emstudio ffn prepare`; returns the summary line.
pub fn prepare(args: &PrepareArgs) -> Result<String> {
    let labels = read_stack_path(&args.label, args.quiet)?
        .to_label_array()
        .with_context(|| format!("{}: needs a label stack", args.label.display()))?;
    let pb = bar(args.quiet, "partitions");
    let partitions = compute_partitions(labels.view(), &args.params, &mut follow(&pb))
        .with_context(|| args.label.display().to_string())?;
    pb.finish_and_clear();
    let classes = class_counts(partitions.view(), args.margin)
        .with_context(|| args.label.display().to_string())?;
    let largest = classes.iter().map(|(_, n)| *n).max().unwrap_or(0);
    anyhow::ensure!(
        largest > 0,
        "{}: no voxel inside the margin has a partition (a smaller margin or box radius would leave some)",
        args.label.display()
    );
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("{}: cannot create the folder", args.output.display()))?;
    let volume = AnyVolume::U8(Volume::from_array(partitions.view())?);
    let spec = OutputSpec {
        path: args.output.join(PARTITIONS_FILE),
        series: ExportFormat::TiffSeries,
        depth: BitDepth::Native,
        rescale: false,
    };
    write_stack(&volume, &spec)?;
    let (nz, ny, nx) = labels.dim();
    let description = Description {
        labels: args.label.display().to_string(),
        shape: [nz, ny, nx],
        partitions: &args.params,
        margin: args.margin,
        coordinates: largest * classes.len() as u64,
        classes,
    };
    let json_path = args.output.join(DESCRIPTION_FILE);
    std::fs::write(&json_path, serde_json::to_string_pretty(&description)?)
        .with_context(|| format!("{}: cannot write", json_path.display()))?;
    Ok(format!(
        "{} classes, {} training centres in one balanced pass → {}",
        description.classes.len(),
        description.coordinates,
        args.output.display()
    ))
}

/// What `ffn train --partitions` reads of `ffn-prepare.json`.
#[derive(Debug, serde::Deserialize)]
struct Prepared {
    /// The label stack the partitions came from.
    labels: String,
    /// Its shape, z, y, x.
    shape: [usize; 3],
    /// The parameters used.
    partitions: PartitionParams,
}

/// The partitions `prepare` wrote into `dir`, cut to `region`, after checking they were made
/// with `wanted` (the training's box radius, minimum size and thresholds).
fn read_prepared(
    dir: &Path,
    wanted: &PartitionParams,
    region: &Region,
    quiet: bool,
) -> Result<Array3<u8>> {
    let json_path = dir.join(DESCRIPTION_FILE);
    let text = std::fs::read_to_string(&json_path)
        .with_context(|| format!("{}: cannot read (made by ffn prepare)", json_path.display()))?;
    let prepared: Prepared = serde_json::from_str(&text)
        .with_context(|| format!("{}: not an ffn prepare description", json_path.display()))?;
    let made = &prepared.partitions;
    let differs = |what: &str, theirs: String, ours: String| {
        anyhow::anyhow!(
            "{}: the partitions were made with {what} {theirs}, this training needs {ours} \
             (run ffn prepare again with it, or leave --partitions out)",
            dir.display()
        )
    };
    if made.lom_radius != wanted.lom_radius {
        let zyx = |r: [usize; 3]| format!("{},{},{} (z,y,x)", r[0], r[1], r[2]);
        return Err(differs(
            "--lom-radius",
            zyx(made.lom_radius),
            zyx(wanted.lom_radius),
        ));
    }
    if made.min_size != wanted.min_size {
        return Err(differs(
            "--min-size",
            made.min_size.to_string(),
            wanted.min_size.to_string(),
        ));
    }
    if made.thresholds != wanted.thresholds {
        return Err(differs(
            "--thresholds",
            format!("{:?}", made.thresholds),
            format!("{:?}", wanted.thresholds),
        ));
    }
    let path = dir.join(PARTITIONS_FILE);
    let parts = read_stack_path(&path, quiet)?
        .to_label_array()
        .with_context(|| format!("{}: needs the partitions' 8-bit stack", path.display()))?;
    let dim = parts.dim();
    ensure!(
        [dim.0, dim.1, dim.2] == prepared.shape,
        "{}: is {}×{}×{} but {} says {}×{}×{}",
        path.display(),
        dim.0,
        dim.1,
        dim.2,
        json_path.display(),
        prepared.shape[0],
        prepared.shape[1],
        prepared.shape[2]
    );
    if !quiet {
        eprintln!("partitions: {} (of {})", path.display(), prepared.labels);
    }
    let [z, y, x] = region.ranges(prepared.shape)?;
    Ok(parts.slice(s![z, y, x]).mapv(|v| v as u8))
}

/// A box of a volume, z, y, x ranges (`"0:100,0:250,0:125"`; an empty side means all).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Region(pub [Option<Range<usize>>; 3]);

impl std::str::FromStr for Region {
    type Err = anyhow::Error;
    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            anyhow::anyhow!(
                "a box is z0:z1,y0:y1,x0:x1 (an empty range, e.g. \":\", means the whole axis), not {text:?}"
            )
        };
        let parts: Vec<&str> = text.split(',').collect();
        ensure!(parts.len() == 3, bad());
        let mut out: [Option<Range<usize>>; 3] = Default::default();
        for (slot, part) in out.iter_mut().zip(parts) {
            let (a, b) = part.trim().split_once(':').ok_or_else(bad)?;
            if a.is_empty() && b.is_empty() {
                continue;
            }
            let a: usize = if a.is_empty() {
                0
            } else {
                a.parse().map_err(|_| bad())?
            };
            let b: usize = b.parse().map_err(|_| bad())?;
            ensure!(a < b, "the box {text:?} has an empty range {a}:{b}");
            *slot = Some(a..b);
        }
        Ok(Region(out))
    }
}

impl Region {
    /// The ranges inside a volume of `shape` (z, y, x); an error names a range that leaves it.
    fn ranges(&self, shape: [usize; 3]) -> Result<[Range<usize>; 3]> {
        let mut out = [0..shape[0], 0..shape[1], 0..shape[2]];
        for (axis, (r, n)) in self.0.iter().zip(shape).enumerate() {
            if let Some(r) = r {
                ensure!(
                    r.end <= n,
                    "the box's {} range {}:{} leaves the volume ({} along {})",
                    ["z", "y", "x"][axis],
                    r.start,
                    r.end,
                    n,
                    ["z", "y", "x"][axis]
                );
                out[axis] = r.clone();
            }
        }
        Ok(out)
    }
}

/// The image and labels (in `region`) as an FFN volume; errors name the files.
fn load_volume(image: &Path, label: &Path, region: &Region, quiet: bool) -> Result<FfnVolume> {
    let image_vol = read_stack_path(image, quiet)?;
    let label_vol = read_stack_path(label, quiet)?;
    ensure!(
        image_vol.shape() == label_vol.shape(),
        "{} is {} but {} is {}: the image and the labels must have one shape",
        image.display(),
        image_vol.shape(),
        label.display(),
        label_vol.shape()
    );
    ensure!(
        image_vol.channels() == 1,
        "{}: has {} channels; an FFN takes grayscale images",
        image.display(),
        image_vol.channels()
    );
    let pixels = image_vol
        .to_unit_f32_array()
        .with_context(|| image.display().to_string())?;
    let labels = label_vol
        .to_label_array()
        .with_context(|| format!("{}: needs a label stack", label.display()))?;
    let (nz, ny, nx) = labels.dim();
    let [z, y, x] = region.ranges([nz, ny, nx])?;
    let sel = s![z.clone(), y.clone(), x.clone()];
    let name = format!(
        "{} + {} [{}:{}, {}:{}, {}:{}]",
        image.display(),
        label.display(),
        z.start,
        z.end,
        y.start,
        y.end,
        x.start,
        x.end
    );
    Ok(FfnVolume::new(
        &name,
        pixels.slice(sel).to_owned(),
        labels.slice(sel).to_owned(),
    )?)
}

fn read_model(path: &Path) -> Result<FfnModelFile> {
    FfnModelFile::from_bytes(
        &std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?,
    )
    .with_context(|| path.display().to_string())
}

fn write_model(path: &Path, file: &FfnModelFile) -> Result<()> {
    std::fs::write(path, file.to_bytes())
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// Arguments of `emstudio ffn import`.
#[derive(Debug, Clone)]
pub struct ImportArgs {
    /// The PyTorch twin's `state_dict` as safetensors.
    pub safetensors: PathBuf,
    /// The network the weights are for.
    pub network: FfnConfig,
    /// The image normalisation the weights were trained with.
    pub normalization: Normalization,
    /// FFN model file to write.
    pub output: PathBuf,
}

/// Runs `emstudio ffn import`; returns the summary line.
pub fn import(args: &ImportArgs) -> Result<String> {
    let (bytes, source) = read_safetensors(&args.safetensors)?;
    let header = FfnHeader {
        network: args.network.clone(),
        normalization: args.normalization,
        provenance: Provenance {
            saved: today(),
            ..Provenance::default()
        },
    };
    let file = FfnModelFile::import_safetensors(header, bytes, &source, &Device::flex())
        .with_context(|| args.safetensors.display().to_string())?;
    write_model(&args.output, &file)?;
    let n = &args.network;
    Ok(format!(
        "{source} (FFN depth {}, {} features, FOV {}×{}×{}) → {}",
        n.depth,
        n.features,
        n.fov[0],
        n.fov[1],
        n.fov[2],
        args.output.display()
    ))
}

/// Arguments of `emstudio ffn train`.
#[derive(Debug, Clone)]
pub struct TrainArgs {
    /// Image stack (grayscale).
    pub image: PathBuf,
    /// Dense instance labels, the image's shape.
    pub label: PathBuf,
    /// Train only inside this box.
    pub region: Region,
    /// Settings.
    pub config: FfnTrainConfig,
    /// A folder `prepare` wrote for these labels, whose partitions to use.
    pub partitions: Option<PathBuf>,
    /// Start from this model (its network replaces the config's).
    pub init: Option<PathBuf>,
    /// Continue `init`'s run (optimiser state, step count).
    pub resume: bool,
    /// Model file to write.
    pub output: PathBuf,
    /// Also save every this many steps (0 = only at the end).
    pub checkpoint_every: u64,
    /// The final file without the optimiser state (checkpoints keep it).
    pub drop_optimizer: bool,
    /// Compute device.
    pub device: DeviceChoice,
    /// No progress bar.
    pub quiet: bool,
}

/// Runs `emstudio ffn train`; returns the summary line.
pub fn train(args: &TrainArgs) -> Result<String> {
    let (device, described) = pick_device(args.device)?;
    if !args.quiet {
        eprintln!("device: {described}");
    }
    let volume = load_volume(&args.image, &args.label, &args.region, args.quiet)?;
    let start = args.init.as_deref().map(read_model).transpose()?;
    let volume = match &args.partitions {
        Some(dir) => {
            // With --init the model's network sets the canvas, hence the box radius.
            let mut config = args.config.clone();
            if let Some(file) = &start {
                config.network = file.header.network.clone();
            }
            let parts = read_prepared(dir, &config.partition_params(), &args.region, args.quiet)?;
            volume
                .with_partitions(parts)
                .with_context(|| dir.display().to_string())?
        }
        None => volume,
    };
    let pb = bar(args.quiet, "centres");
    let mut trainer = FfnTrainer::new(
        args.config.clone(),
        vec![volume],
        &device.clone().autodiff(),
        start.as_ref().map(|f| (f, args.resume)),
        &mut follow(&pb),
    )?;
    pb.finish_and_clear();
    let pb = crate::nets_cli::steps_bar(args.quiet, args.config.steps, "training");
    let t0 = std::time::Instant::now();
    let mut done = 0u64;
    while !trainer.finished() {
        let r = trainer.step()?;
        done += 1;
        pb.set_position(done);
        if let Some(p) = trainer.curve().last() {
            pb.set_prefix(format!(
                "loss {:.4} precision {:.3} recall {:.3}",
                p.loss, p.precision, p.recall
            ));
        }
        ensure!(
            r.loss.is_finite(),
            "step {}: the loss is {}: lower the learning rate",
            r.step,
            r.loss
        );
        if args.checkpoint_every > 0 && done % args.checkpoint_every == 0 {
            write_model(&args.output, &trainer.model_file(&today())?)?;
        }
    }
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    let mut file = trainer.model_file(&today())?;
    if args.drop_optimizer {
        file.optimizer = None;
    }
    write_model(&args.output, &file)?;
    let curve = trainer.curve();
    let (first, last) = (curve.first(), curve.last());
    Ok(format!(
        "trained {done} steps in {secs:.1} s ({:.2} steps/s, {} centre classes, {described}); \
         loss {} → {}, mask precision {} recall {} → {}",
        done as f64 / secs.max(1e-9),
        trainer.class_count(),
        first.map_or("?".into(), |p| format!("{:.4}", p.loss)),
        last.map_or("?".into(), |p| format!("{:.4}", p.loss)),
        last.map_or("?".into(), |p| format!("{:.3}", p.precision)),
        last.map_or("?".into(), |p| format!("{:.3}", p.recall)),
        args.output.display()
    ))
}

/// Arguments of `emstudio ffn evaluate`.
#[derive(Debug, Clone)]
pub struct EvaluateArgs {
    /// FFN model file.
    pub model: PathBuf,
    /// Image stack.
    pub image: PathBuf,
    /// Dense instance labels.
    pub label: PathBuf,
    /// Score only inside this box (e.g. the one training left out).
    pub region: Region,
    /// How many balanced centres.
    pub centres: usize,
    /// Objects smaller than this count as background when centres are drawn.
    pub min_size: u64,
    /// Seed of the centres.
    pub seed: u64,
    /// Compute device.
    pub device: DeviceChoice,
    /// No progress output.
    pub quiet: bool,
}

/// Runs `emstudio ffn evaluate`; returns the scores as one JSON line.
pub fn evaluate(args: &EvaluateArgs) -> Result<String> {
    let (device, _) = pick_device(args.device)?;
    let file = read_model(&args.model)?;
    let volume = load_volume(&args.image, &args.label, &args.region, args.quiet)?;
    let config = FfnTrainConfig {
        network: file.header.network.clone(),
        min_size: args.min_size,
        ..FfnTrainConfig::default()
    };
    let centres = balanced_centres(&volume, &config, args.centres, args.seed)?;
    let net = file
        .load_net(&device)
        .with_context(|| args.model.display().to_string())?;
    let c = evaluate_masks(
        &net,
        &file.header,
        &volume,
        &centres,
        config.move_threshold,
        8,
        &device,
    )?;
    Ok(serde_json::json!({
        "model": args.model.display().to_string(),
        "data": volume.name,
        "centres": centres.len(),
        "f1": c.f1(),
        "precision": c.precision(),
        "recall": c.recall(),
        "accuracy": c.accuracy(),
        "counts": c,
    })
    .to_string())
}

/// Arguments of `emstudio ffn infer`.
#[derive(Debug, Clone)]
pub struct InferArgs {
    /// FFN model file.
    pub model: PathBuf,
    /// Image stack.
    pub image: PathBuf,
    /// Segment only this box.
    pub region: Region,
    /// Thresholds, minimum size, boundary distance.
    pub options: FfnInferOptions,
    /// Segment in blocks of at most this many slices (`None` = one block).
    pub block_depth: Option<usize>,
    /// Slices a block reads beyond its own on each side (`None` = `blocks::default_halo`).
    pub block_overlap: Option<usize>,
    /// Keep each finished block here and reuse the ones a run with the same settings left.
    pub checkpoint_dir: Option<PathBuf>,
    /// Where the labels go.
    pub output: OutputSpec,
    /// Dense labels to score against.
    pub truth: Option<PathBuf>,
    /// Compute device.
    pub device: DeviceChoice,
    /// No progress bar.
    pub quiet: bool,
}

/// The settings file of a checkpoint folder.
pub const CHECKPOINT_SETTINGS: &str = "ffn-infer.json";

/// A checkpoint folder of `emstudio ffn infer`: [`CHECKPOINT_SETTINGS`] (what the blocks were
/// made from) and `block-KKKK.tif`, each block's labels (its `send` slices, 32-bit), written
/// to a `.partial` file and renamed when complete, so a run stopped at any point leaves only
/// whole blocks.
struct Checkpoints {
    dir: PathBuf,
}

impl Checkpoints {
    /// Opens (or starts) the folder for a run with `settings`; a folder made with other
    /// settings is refused, naming the first that differs.
    fn open(dir: &Path, settings: &serde_json::Value) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the folder", dir.display()))?;
        let path = dir.join(CHECKPOINT_SETTINGS);
        if path.exists() {
            let old: serde_json::Value = serde_json::from_slice(
                &std::fs::read(&path)
                    .with_context(|| format!("{}: cannot read", path.display()))?,
            )
            .with_context(|| format!("{}: not a settings file", path.display()))?;
            if &old != settings {
                let differs = settings
                    .as_object()
                    .into_iter()
                    .flatten()
                    .find(|(k, v)| old.get(k.as_str()) != Some(v))
                    .map_or_else(|| "its settings".to_string(), |(k, _)| format!("{k:?}"));
                anyhow::bail!(
                    "{}: the blocks there were made with another {differs} ({} says {}); \
                     give a new --checkpoint-dir or delete that folder",
                    dir.display(),
                    CHECKPOINT_SETTINGS,
                    old.get(differs.trim_matches('"'))
                        .map_or_else(String::new, ToString::to_string)
                );
            }
        } else {
            std::fs::write(&path, serde_json::to_vec_pretty(settings)?)
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn file(&self, k: usize) -> PathBuf {
        self.dir.join(format!("block-{k:04}.tif"))
    }

    /// Block `k`'s labels if a run left them whole; an unreadable or misshapen file is noted
    /// and the block segmented again.
    fn load(&self, k: usize, shape: (usize, usize, usize)) -> Option<ndarray::Array3<u32>> {
        let path = self.file(k);
        if !path.exists() {
            return None;
        }
        let read = read_stack_path(&path, true).and_then(|v| {
            let labels = v.to_label_array()?;
            ensure!(
                labels.dim() == shape,
                "holds {:?} voxels, the block is {shape:?}",
                labels.dim()
            );
            Ok(labels)
        });
        match read {
            Ok(labels) => Some(labels),
            Err(e) => {
                eprintln!("{}: {e:#}; segmenting this block again", path.display());
                None
            }
        }
    }

    fn save(&self, k: usize, labels: &ndarray::Array3<u32>) -> Result<()> {
        let path = self.file(k);
        let partial = path.with_extension("tif.partial");
        let volume = AnyVolume::U32(Volume::from_array(labels.view())?);
        let mut files = emstudio_core::stack::export(
            &volume,
            &emstudio_core::stack::ExportOptions {
                format: ExportFormat::MultiPageTiff,
                depth: BitDepth::Native,
                rescale: false,
                base_name: "block".into(),
            },
        )?;
        let (_, bytes) = files.pop().context("no block file encoded")?;
        std::fs::write(&partial, bytes)
            .with_context(|| format!("{}: cannot write", partial.display()))?;
        std::fs::rename(&partial, &path)
            .with_context(|| format!("{}: cannot write", path.display()))
    }
}

/// FNV-1a of a model file's bytes: tells checkpoints of one model from another's.
fn fingerprint(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Runs `emstudio ffn infer`; returns the summary line.
pub fn infer(args: &InferArgs) -> Result<String> {
    let (device, described) = pick_device(args.device)?;
    let model_bytes = std::fs::read(&args.model)
        .with_context(|| format!("{}: cannot read", args.model.display()))?;
    let file =
        FfnModelFile::from_bytes(&model_bytes).with_context(|| args.model.display().to_string())?;
    let image_vol = read_stack_path(&args.image, args.quiet)?;
    ensure!(
        image_vol.channels() == 1,
        "{}: has {} channels; an FFN takes grayscale images",
        args.image.display(),
        image_vol.channels()
    );
    let shape = image_vol.shape();
    let (nz, ny, nx) = (shape.z, shape.y, shape.x);
    let [z, y, x] = args.region.ranges([nz, ny, nx])?;
    let sel = s![z.clone(), y.clone(), x.clone()];
    let dim = (z.len(), y.len(), x.len());
    let network = &file.header.network;
    let block_depth = args.block_depth.unwrap_or(dim.0);
    ensure!(block_depth > 0, "--block-depth must be at least 1 slice");
    let halo = args
        .block_overlap
        .unwrap_or_else(|| ffn_blocks::default_halo(network));
    let blocks = ffn_blocks::plan(dim.0, block_depth, halo);
    ensure!(
        blocks.len() == 1 || halo >= SEAM,
        "--block-overlap {halo}: blocks must overlap by at least {SEAM} slices to be joined"
    );
    let checkpoints = match &args.checkpoint_dir {
        Some(dir) => Some(Checkpoints::open(
            dir,
            &serde_json::json!({
                "model": fingerprint(&model_bytes),
                "image": std::fs::canonicalize(&args.image)
                    .unwrap_or_else(|_| args.image.clone())
                    .display()
                    .to_string(),
                "shape": [nz, ny, nx],
                "region": [[z.start, z.end], [y.start, y.end], [x.start, x.end]],
                "block_depth": block_depth,
                "block_overlap": halo,
                "options": args.options,
            }),
        )?),
        None => None,
    };
    let net = file
        .load_net(&device)
        .with_context(|| args.model.display().to_string())?;
    let t0 = std::time::Instant::now();
    let pb = bar(args.quiet, "segmenting");
    let mut progress = follow(&pb);
    let (mut done, mut seeds, mut reused) = (Vec::with_capacity(blocks.len()), 0, 0);
    let n = blocks.len() as u64;
    for (k, block) in blocks.iter().enumerate() {
        let send = (block.send.len(), dim.1, dim.2);
        if let Some(labels) = checkpoints.as_ref().and_then(|c| c.load(k, send)) {
            reused += 1;
            done.push(LabelledBlock {
                block: block.clone(),
                labels,
            });
            continue;
        }
        let read = z.start + block.read.start..z.start + block.read.end;
        let pixels = image_vol
            .to_unit_f32_slices(read)
            .with_context(|| args.image.display().to_string())?;
        let segmented = ffn_blocks::segment_block(
            NetPredictor {
                net: &net,
                device: device.clone(),
            },
            network,
            file.header.normalization,
            pixels.slice(s![.., y.clone(), x.clone()]),
            block,
            &args.options,
            &mut Phase::new(&mut progress, 950 * k as u64 / n, 950 / n),
        )
        .with_context(|| args.image.display().to_string())?;
        seeds += segmented.seeds;
        if let Some(c) = &checkpoints {
            c.save(k, &segmented.labelled.labels)?;
        }
        done.push(segmented.labelled);
    }
    let (labels, objects) = ffn_blocks::join(dim, &done, &mut Phase::new(&mut progress, 950, 50))?;
    drop(done);
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    let volume = AnyVolume::from_labels(labels.view(), image_vol.voxel_size())?;
    write_stack(&volume, &args.output)?;
    let voxels = labels.len() as f64;
    let in_blocks = match (blocks.len(), &args.checkpoint_dir) {
        (1, None) => String::new(),
        (b, None) => format!(" in {b} blocks (overlap {halo})"),
        (b, Some(dir)) => format!(
            " in {b} blocks (overlap {halo}; {reused} of them from {})",
            dir.display()
        ),
    };
    let mut summary = format!(
        "{objects} objects from {seeds} seeds{in_blocks} in {secs:.1} s ({:.0} voxels/s, {described}) → {}",
        voxels / secs.max(1e-9),
        args.output.path.display()
    );
    if let Some(truth) = &args.truth {
        let truth_labels = read_stack_path(truth, args.quiet)?
            .to_label_array()
            .with_context(|| format!("{}: needs a label stack", truth.display()))?;
        ensure!(
            truth_labels.dim() == (nz, ny, nx),
            "{} is {}×{}×{} but the image is {nz}×{ny}×{nx}",
            truth.display(),
            truth_labels.dim().0,
            truth_labels.dim().1,
            truth_labels.dim().2
        );
        let reference = truth_labels.slice(sel);
        let e = evaluate_labels_3d(
            reference,
            labels.view(),
            &EvaluateParams::default(),
            &mut emstudio_core::progress::NoProgress,
        )
        .with_context(|| truth.display().to_string())?;
        let r = &e.report;
        summary.push('\n');
        summary.push_str(
            &serde_json::json!({
                "adapted_rand_error": r.adapted_rand_error,
                "vi_split": r.info.vi_split,
                "vi_merge": r.info.vi_merge,
                "gt_objects": r.gt_objects,
                "pred_objects": r.pred_objects,
                "split_objects": r.split_objects,
                "merge_objects": r.merge_objects,
                "seconds": secs,
            })
            .to_string(),
        );
    }
    Ok(summary)
}
