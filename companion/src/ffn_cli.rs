//! `emstudio ffn …`: flood-filling network commands. Now `prepare`: the partition volume and
//! the class counts of the balanced training coordinates of a dense label stack
//! (`emstudio_core::ffn_data`, google/ffn's `compute_partitions` and `build_coordinates`),
//! written next to each other in one folder. The coordinates themselves are not stored: they
//! follow from the partitions, the margin and a seed (`build_coordinates`), and for a 250³
//! volume they are 16 million centres.

use crate::cli::{bar, follow, read_stack_path, write_stack, OutputSpec};
use anyhow::{Context, Result};
use emstudio_core::ffn_data::{class_counts, compute_partitions, PartitionParams};
use emstudio_core::stack::{BitDepth, ExportFormat};
use emstudio_core::{AnyVolume, Volume};
use serde::Serialize;
use std::path::PathBuf;

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
