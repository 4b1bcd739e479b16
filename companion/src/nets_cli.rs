//! `emstudio train` and `emstudio infer`: the 2D CNNs of `emstudio_nets` over image/label
//! stacks, with progress bars, on the device picked at run time (CPU always; wgpu/Vulkan and
//! CUDA when the binary is built with the `wgpu` or `cuda` feature and such a device exists).

use crate::cli::{parse_slices, read_stack_path, write_stack, OutputSpec};
use anyhow::{ensure, Context, Result};
use burn::prelude::*;
use emstudio_core::{AnyVolume, Volume};
use emstudio_nets::infer::{argmax_classes, predict, InferOptions};
use emstudio_nets::model::ModelFile;
pub use emstudio_nets::native_device::DeviceChoice;
use emstudio_nets::native_device::{pick_device, runs_on_cpu};
use emstudio_nets::train::{channel_words, Slice, TrainConfig, Trainer, GPU_LOSS_READ_EVERY};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array3, Axis};
use std::path::{Path, PathBuf};

/// A progress bar over `len` steps (hidden when `quiet`).
pub(crate) fn steps_bar(quiet: bool, len: u64, message: &str) -> ProgressBar {
    let pb = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(len)
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:40.cyan/blue}] {pos}/{len} {elapsed_precise} (eta {eta}) {prefix}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message(message.to_string());
    pb
}

/// Arguments of `emstudio train`.
#[derive(Clone, Debug)]
pub struct TrainArgs {
    /// Image stack.
    pub image: PathBuf,
    /// Label stack (same size).
    pub label: PathBuf,
    /// Training slices ("0-4").
    pub slices: String,
    /// Validation slices (empty: the bottom fifth of a single training slice).
    pub validation_slices: Option<String>,
    /// Training settings.
    pub config: TrainConfig,
    /// A label value meaning "not annotated" (ignored).
    pub ignore_label: Option<u32>,
    /// Start from this model (fine-tune); with `resume`, continue its run.
    pub init: Option<PathBuf>,
    /// Continue the run of `init` (optimiser state and step count).
    pub resume: bool,
    /// Model file to write.
    pub output: PathBuf,
    /// Also save every this many steps (0 = only at the end).
    pub checkpoint_every: u64,
    /// Compute device.
    pub device: DeviceChoice,
    /// No progress bar.
    pub quiet: bool,
}

pub(crate) fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let days = (secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let t = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// The networks take grayscale (1 channel) or RGB (3 channels) images.
fn check_channels(volume: &AnyVolume, path: &Path) -> Result<()> {
    let c = volume.channels();
    ensure!(
        c == 1 || c == 3,
        "{}: has {c} channels; the networks take grayscale (1) or RGB (3) images",
        path.display()
    );
    Ok(())
}

fn slices_of(
    image: &AnyVolume,
    labels: &Array3<u32>,
    zs: &[usize],
    classes: usize,
    ignore: Option<u32>,
) -> Result<Vec<Slice>> {
    zs.iter()
        .map(|&z| {
            Slice::new(
                image.unit_f32_planes(z),
                &labels.index_axis(Axis(0), z).to_owned(),
                classes,
                ignore,
            )
            .with_context(|| format!("slice {z}"))
        })
        .collect()
}

fn write_model(path: &Path, file: &ModelFile) -> Result<()> {
    std::fs::write(path, file.to_bytes())
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// `emstudio train`: trains a network and writes its model file.
pub fn train(args: &TrainArgs) -> Result<String> {
    let (device, described) = pick_device(args.device)?;
    if !args.quiet {
        eprintln!("device: {described}");
    }
    let image_vol = read_stack_path(&args.image, args.quiet)?;
    let label_vol = read_stack_path(&args.label, args.quiet)?;
    ensure!(
        image_vol.shape() == label_vol.shape(),
        "{} is {} but {} is {}",
        args.image.display(),
        image_vol.shape(),
        args.label.display(),
        label_vol.shape()
    );
    check_channels(&image_vol, &args.image)?;
    let labels = label_vol
        .to_label_array()
        .with_context(|| format!("{}: needs a label stack", args.label.display()))?;
    let depth = image_vol.shape().z;
    let train_z = parse_slices(&args.slices, depth)?;
    let val_z = match &args.validation_slices {
        Some(s) => parse_slices(s, depth)?,
        None => Vec::new(),
    };
    let classes = args.config.classes;
    let train_set = slices_of(&image_vol, &labels, &train_z, classes, args.ignore_label)?;
    let val_set = slices_of(&image_vol, &labels, &val_z, classes, args.ignore_label)?;
    let names = vec![format!(
        "{} + {} slices {}",
        args.image.display(),
        args.label.display(),
        args.slices
    )];
    let start = match &args.init {
        Some(p) => Some(
            ModelFile::from_bytes(
                &std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?,
            )
            .with_context(|| p.display().to_string())?,
        ),
        None => None,
    };
    let mut trainer = Trainer::new(
        args.config.clone(),
        train_set,
        val_set,
        names,
        &device.clone().autodiff(),
        start.as_ref().map(|f| (f, args.resume)),
    )?;
    if trainer.patch() != args.config.patch && !args.quiet {
        eprintln!(
            "patch {} → {}: it must fit the training slices and be a multiple of {}",
            args.config.patch,
            trainer.patch(),
            args.config.arch.size_multiple()
        );
    }
    if !runs_on_cpu(args.device) {
        trainer.read_losses_every(GPU_LOSS_READ_EVERY);
    }
    let total = args.config.steps;
    let pb = steps_bar(args.quiet, total, "training");
    let t0 = std::time::Instant::now();
    let (mut last_loss, mut last_val) = (None, None);
    let mut done = 0u64;
    while !trainer.finished() {
        let r = trainer.step();
        done += 1;
        if r.validation.is_some() {
            last_val = r.validation;
        }
        last_loss = r.latest_loss().or(last_loss);
        pb.set_position(done);
        pb.set_prefix(format!(
            "loss {}{}",
            last_loss.map_or("…".into(), |l| format!("{l:.4}")),
            last_val.map(|v| format!(" val {v:.4}")).unwrap_or_default()
        ));
        if args.checkpoint_every > 0 && done % args.checkpoint_every == 0 {
            write_model(&args.output, &trainer.model_file(&today())?)?;
        }
    }
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    write_model(&args.output, &trainer.model_file(&today())?)?;
    let h = trainer.history();
    Ok(format!(
        "trained {} steps in {secs:.1} s ({:.2} steps/s, patch {}, {described}); loss {} → {}{} → {}",
        total,
        total as f64 / secs.max(1e-9),
        trainer.patch(),
        trainer
            .first_loss()
            .map_or("?".into(), |l| format!("{l:.4}")),
        h.last().map_or("?".into(), |p| format!("{:.4}", p.train)),
        h.last()
            .and_then(|p| p.validation)
            .map(|v| format!(" (validation {v:.4})"))
            .unwrap_or_default(),
        args.output.display()
    ))
}

/// Arguments of `emstudio infer`.
#[derive(Clone, Debug)]
pub struct InferArgs {
    /// Model file.
    pub model: PathBuf,
    /// Image stack.
    pub image: PathBuf,
    /// Slices to run (default all).
    pub slices: Option<String>,
    /// Output: probabilities (one channel: foreground; several: the argmax class as labels).
    pub output: OutputSpec,
    /// Tile side.
    pub tile: usize,
    /// Tiles per pass.
    pub batch: usize,
    /// Orientations averaged (1, 4 or 8; [`InferOptions::views`]).
    pub views: usize,
    /// Compute device.
    pub device: DeviceChoice,
    /// No progress bar.
    pub quiet: bool,
}

/// `emstudio infer`: runs a model over a stack and writes the probability map (binary
/// models: foreground probability as float, or 8/16-bit with `--depth`) or class labels
/// (multi-class models).
pub fn infer(args: &InferArgs) -> Result<String> {
    let (device, described) = pick_device(args.device)?;
    let file = ModelFile::from_bytes(
        &std::fs::read(&args.model)
            .with_context(|| format!("{}: cannot read", args.model.display()))?,
    )
    .with_context(|| args.model.display().to_string())?;
    let net = file.load_net(&device)?;
    let vol = read_stack_path(&args.image, args.quiet)?;
    check_channels(&vol, &args.image)?;
    let model_channels = file.header.io.in_channels;
    ensure!(
        model_channels == vol.channels(),
        "{} takes {}, but {} holds {}",
        args.model.display(),
        channel_words(model_channels),
        args.image.display(),
        channel_words(vol.channels())
    );
    let depth = vol.shape().z;
    let zs = match &args.slices {
        Some(s) => parse_slices(s, depth)?,
        None => (0..depth).collect(),
    };
    let (h, w) = (vol.shape().y, vol.shape().x);
    let classes = file.header.io.out_channels;
    let pb = steps_bar(args.quiet, zs.len() as u64, "inferring");
    let t0 = std::time::Instant::now();
    let mut prob = Array3::<f32>::zeros((zs.len(), h, w));
    let mut class = Array3::<u32>::zeros((zs.len(), h, w));
    for (k, &z) in zs.iter().enumerate() {
        let p = predict(
            &net,
            &file.header,
            vol.unit_f32_planes(z).view(),
            InferOptions {
                tile: args.tile,
                batch: args.batch,
                views: args.views,
            },
            &device,
            &mut |_, _| {},
        )?;
        if classes == 1 {
            prob.index_axis_mut(Axis(0), k)
                .assign(&p.index_axis(Axis(0), 0));
        } else {
            class.index_axis_mut(Axis(0), k).assign(&argmax_classes(&p));
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    let mut result: AnyVolume = if classes == 1 {
        Volume::from_array(prob.view())?.into()
    } else {
        AnyVolume::from_labels(class.view(), vol.voxel_size())?
    };
    result.set_voxel_size(vol.voxel_size());
    let files = write_stack(&result, &args.output)?;
    let mpx = (zs.len() * h * w) as f64 / 1e6;
    Ok(format!(
        "{} slices ({mpx:.1} Mpx) in {secs:.1} s = {:.2} Mpx/s on {described} → {} ({} file{})",
        zs.len(),
        mpx / secs.max(1e-9),
        args.output.path.display(),
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    ))
}

/// Arguments of `emstudio card`.
#[derive(Clone, Debug, clap::Args)]
pub struct CardArgs {
    /// Model file (read, then written back with its card unless --output says where).
    #[arg(long, short)]
    pub model: PathBuf,
    /// Image stack.
    #[arg(long)]
    pub image: PathBuf,
    /// Label stack of the same size (foreground = label ≠ 0).
    #[arg(long)]
    pub label: PathBuf,
    /// The slice to score on.
    #[arg(long, default_value_t = 0)]
    pub slice: usize,
    /// Rows scored, e.g. "820-1023" (default: the bottom fifth of the slice).
    #[arg(long)]
    pub rows: Option<String>,
    /// What the model finds, on what data, trained how: the card's text.
    #[arg(long)]
    pub text: String,
    /// Where the scored pixels come from, for the card ("the AC3 demo").
    #[arg(long, default_value = "the stack")]
    pub data_name: String,
    /// Leave the optimiser state out of the written model (smaller; it can still be
    /// fine-tuned, not resumed).
    #[arg(long)]
    pub drop_optimizer: bool,
    /// Model file to write (default: the model file itself).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// `emstudio card`: the model scored on held-out rows beside the best plain threshold,
/// written into its card (`emstudio_nets::card`).
pub fn card(args: &CardArgs) -> Result<String> {
    use emstudio_nets::card::{held_out_rows, score_rows, ModelCard};
    let mut file = ModelFile::from_bytes(
        &std::fs::read(&args.model)
            .with_context(|| format!("{}: cannot read", args.model.display()))?,
    )
    .with_context(|| args.model.display().to_string())?;
    let image = read_stack_path(&args.image, true)?;
    let label = read_stack_path(&args.label, true)?;
    ensure!(
        image.shape() == label.shape(),
        "{} is {} but {} is {}",
        args.image.display(),
        image.shape(),
        args.label.display(),
        label.shape()
    );
    let (depth, h, w) = (image.shape().z, image.shape().y, image.shape().x);
    ensure!(
        args.slice < depth,
        "--slice {}: the stack has {depth} slices",
        args.slice
    );
    let rows = match &args.rows {
        None => held_out_rows(h),
        Some(text) => {
            let (a, b) = text
                .split_once('-')
                .and_then(|(a, b)| {
                    Some((
                        a.trim().parse::<usize>().ok()?,
                        b.trim().parse::<usize>().ok()?,
                    ))
                })
                .with_context(|| format!("--rows {text}: write first-last, e.g. 820-1023"))?;
            ensure!(
                a <= b && b < h,
                "--rows {text}: the slice has rows 0-{}",
                h - 1
            );
            a..b + 1
        }
    };
    let labels = label
        .try_slice_labels(args.slice)
        .with_context(|| args.label.display().to_string())?;
    let truth = ndarray::Array2::from_shape_vec((h, w), labels.iter().map(|&v| v != 0).collect())?;
    let score = score_rows(
        &file,
        image.unit_f32_planes(args.slice).view(),
        truth.view(),
        rows.clone(),
        &Device::flex(),
    )
    .with_context(|| args.model.display().to_string())?;
    let held_out = format!(
        "rows {}–{} of slice {} of {}",
        rows.start,
        rows.end - 1,
        args.slice,
        args.data_name
    );
    file.header.provenance.card = Some(ModelCard {
        text: args.text.clone(),
        held_out: held_out.clone(),
        iou: score.iou,
        threshold_iou: score.threshold_iou,
    });
    if args.drop_optimizer {
        file.optimizer = None;
    }
    let output = args.output.as_ref().unwrap_or(&args.model);
    write_model(output, &file)?;
    Ok(format!(
        "held out {held_out}: IoU {:.3} (the best plain threshold: {:.3}) → {}",
        score.iou,
        score.threshold_iou,
        output.display()
    ))
}

/// Arguments of `emstudio import`.
#[derive(Clone, Debug)]
pub struct ImportArgs {
    /// PyTorch safetensors file.
    pub safetensors: PathBuf,
    /// Architecture the weights belong to.
    pub arch: emstudio_nets::arch::ArchConfig,
    /// Output classes.
    pub classes: usize,
    /// Input channels (1 gray, 3 RGB).
    pub channels: usize,
    /// Input normalisation the weights expect.
    pub normalization: emstudio_nets::model::Normalization,
    /// Model file to write.
    pub output: PathBuf,
}

/// Reads a safetensors file of weights trained elsewhere: its bytes and its file name (what a
/// model records as where its weights came from).
pub(crate) fn read_safetensors(path: &Path) -> Result<(Vec<u8>, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let source = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok((bytes, source))
}

/// `emstudio import`: PyTorch safetensors weights → model file.
pub fn import(args: &ImportArgs) -> Result<String> {
    use emstudio_nets::arch::NetIo;
    use emstudio_nets::model::{ModelHeader, Provenance};
    ensure!(args.normalization.std > 0.0, "--std must be positive");
    ensure!(
        args.channels == 1 || args.channels == 3,
        "--channels must be 1 (grayscale) or 3 (RGB), not {}",
        args.channels
    );
    let (bytes, source) = read_safetensors(&args.safetensors)?;
    let header = ModelHeader {
        arch: args.arch.clone(),
        io: NetIo {
            in_channels: args.channels,
            out_channels: args.classes.max(1),
        },
        normalization: args.normalization,
        provenance: Provenance {
            saved: today(),
            ..Provenance::default()
        },
    };
    let file = ModelFile::import_safetensors(header, bytes, &source, &Device::flex())
        .with_context(|| args.safetensors.display().to_string())?;
    write_model(&args.output, &file)?;
    Ok(format!(
        "{} ({} weights) → {}",
        source,
        args.arch.name(),
        args.output.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_round_trips_through_safetensors_and_refuses_other_shapes() {
        use emstudio_nets::arch::{unet::UNetConfig, ArchConfig, NetIo};
        use emstudio_nets::model::{ModelHeader, Normalization, Provenance};
        let dir = tempfile::tempdir().expect("tmp");
        let device = Device::flex();
        let arch = ArchConfig::UNet(UNetConfig {
            depth: 1,
            base_width: 2,
        });
        let header = ModelHeader {
            arch: arch.clone(),
            io: NetIo {
                in_channels: 1,
                out_channels: 1,
            },
            normalization: Normalization::default(),
            provenance: Provenance::default(),
        };
        let net = arch.build(&header.io, &device);
        let file = ModelFile::from_net(header, &net, None).expect("pack");
        let st = dir.path().join("w.safetensors");
        std::fs::write(&st, file.export_safetensors(&device).expect("export")).expect("write");
        let out = dir.path().join("m.emsmodel");
        let args = ImportArgs {
            safetensors: st,
            arch,
            classes: 1,
            channels: 1,
            normalization: Normalization::default(),
            output: out.clone(),
        };
        let msg = import(&args).expect("import");
        assert!(msg.contains("w.safetensors (unet weights)"), "{msg}");
        let back = ModelFile::from_bytes(&std::fs::read(&out).expect("read")).expect("model");
        assert_eq!(back.weights.len(), file.weights.len());
        let wrong = ImportArgs {
            arch: ArchConfig::UNet(UNetConfig {
                depth: 1,
                base_width: 4,
            }),
            ..args
        };
        let err = import(&wrong).expect_err("shapes differ");
        assert!(format!("{err:#}").contains("w.safetensors"), "{err:#}");
    }

    #[test]
    fn dates_are_iso_8601() {
        assert_eq!(
            parse_slices("0-2, 5,4", 10).expect("ok"),
            vec![0, 1, 2, 4, 5]
        );
        assert!(parse_slices("3-1", 10).is_err());
        assert!(parse_slices("12", 10)
            .expect_err("out of range")
            .to_string()
            .contains("10 slices"));
        let d = today();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20"));
    }
}
