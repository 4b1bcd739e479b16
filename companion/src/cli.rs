//! The batch subcommands `emstudio filter`, `emstudio label` and `emstudio evaluate`: the
//! Filters, Postprocess and Evaluate panels of the app on the command line, over the same
//! stack formats (a folder of PNG/TIFF slices, or one multi-page TIFF), running the same
//! `emstudio_core` functions, with progress bars on standard error.
//!
//! Each command is a function taking its arguments struct, so tests call them directly; the
//! binary only parses flags (`main.rs`).

use anyhow::{bail, ensure, Context, Result};
use emstudio_core::filters::{apply_pipeline, catalog, FilterError, FilterSpec, Pipeline};
use emstudio_core::labels::postprocess::{
    postprocess, LabelMethod, PostprocessParams, ThresholdChoice,
};
use emstudio_core::labels::watershed::DistanceWatershedParams;
use emstudio_core::metrics::isbi::{isbi_evaluate, IsbiParams, IsbiReport, MapPolarity};
use emstudio_core::metrics::{
    center_positions, evaluate_labels_3d, semantic_threshold_sweep, EvaluateParams, Evaluation,
    SemanticScores,
};
use emstudio_core::neighborhood::{Connectivity2, Connectivity3};
use emstudio_core::stack::{
    export, is_stack_file_name, natural_cmp, BitDepth, ExportFormat, ExportOptions, Limits,
    StackBuilder,
};
use emstudio_core::{AnyVolume, Volume};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// A progress bar on standard error (hidden when `quiet`).
pub(crate) fn bar(quiet: bool, message: &str) -> ProgressBar {
    let pb = if quiet {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
    } else {
        ProgressBar::new(0)
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40.cyan/blue}] {percent:>3}% {elapsed_precise} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message(message.to_string());
    pb
}

/// A kernel [`Progress`](emstudio_core::progress::Progress) that moves a bar.
pub(crate) fn follow(pb: &ProgressBar) -> impl FnMut(u64, u64) -> ControlFlow<()> + '_ {
    move |done, total| {
        pb.set_length(total);
        pb.set_position(done);
        ControlFlow::Continue(())
    }
}

/// Reads a stack: a folder of PNG/TIFF slices (naturally sorted; other files ignored) or one
/// image file (a multi-page TIFF or a single slice).
pub fn read_stack_path(path: &Path, quiet: bool) -> Result<AnyVolume> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut names: Vec<String> = std::fs::read_dir(path)
            .with_context(|| format!("{}: cannot list the folder", path.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_stack_file_name(n))
            .collect();
        names.sort_by(|a, b| natural_cmp(a, b));
        ensure!(
            !names.is_empty(),
            "{}: no PNG or TIFF files in this folder",
            path.display()
        );
        names.into_iter().map(|n| path.join(n)).collect()
    } else if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        bail!("{}: no such file or folder", path.display());
    };
    let pb = bar(quiet, "reading");
    pb.set_length(files.len() as u64);
    let mut builder = StackBuilder::new(files.len(), Limits::default());
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = std::fs::read(f).with_context(|| format!("{}: cannot read", f.display()))?;
        builder
            .push(&name, &bytes)
            .with_context(|| format!("reading {}", path.display()))?;
        pb.inc(1);
    }
    pb.finish_and_clear();
    builder
        .finish()
        .with_context(|| format!("reading {}", path.display()))
}

/// Parses "0-4,7,10-12" into sorted slice indices (below `depth`).
pub fn parse_slices(text: &str, depth: usize) -> Result<Vec<usize>> {
    Ok(emstudio_core::slices::parse_slice_list(text, depth)?)
}

/// How to write a result.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    /// A `.tif`/`.tiff` file (multi-page TIFF) or a folder (one file per slice).
    pub path: PathBuf,
    /// Slice format for folder outputs.
    pub series: ExportFormat,
    /// Element type to write.
    pub depth: BitDepth,
    /// Map the value range onto the target type.
    pub rescale: bool,
}

fn is_tiff_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("tif") || e.eq_ignore_ascii_case("tiff"))
}

/// Writes a volume as [`OutputSpec`] says; returns the files written.
pub fn write_stack(volume: &AnyVolume, out: &OutputSpec) -> Result<Vec<PathBuf>> {
    let (dir, format, base) = if is_tiff_file(&out.path) {
        let stem = out
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "stack".into());
        let dir = out
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        (dir, ExportFormat::MultiPageTiff, stem)
    } else {
        let base = out
            .path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "slice".into());
        (out.path.clone(), out.series, base)
    };
    let options = ExportOptions {
        format,
        depth: out.depth,
        rescale: out.rescale,
        base_name: base,
    };
    let files = export(volume, &options).with_context(|| {
        format!(
            "writing {} (for 32-bit or float results use a .tif output, or --depth 16 --rescale)",
            out.path.display()
        )
    })?;
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let mut written = Vec::new();
    for (name, bytes) in files {
        let p = dir.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("{}: cannot write", p.display()))?;
        written.push(p);
    }
    Ok(written)
}

/// The filter menu as text (`emstudio filter --list`).
pub fn filter_list() -> String {
    let mut s = String::from("Filters (JSON of a step, as in a pipeline file):\n");
    for e in catalog() {
        let json = serde_json::to_string(&e.default).unwrap_or_default();
        s.push_str(&format!(
            "  {:<16} {}\n  {:<16} {json}\n",
            e.label, e.help, ""
        ));
    }
    s
}

/// Arguments of `emstudio filter`.
#[derive(Debug, Clone)]
pub struct FilterArgs {
    /// Input stack.
    pub input: PathBuf,
    /// A pipeline file saved by the app (or a JSON array of steps).
    pub pipeline: Option<PathBuf>,
    /// Extra steps as JSON objects, appended after the file's steps.
    pub steps: Vec<String>,
    /// Where to write.
    pub output: OutputSpec,
    /// No progress bars.
    pub quiet: bool,
}

/// `emstudio filter`: applies a filter pipeline to a stack.
pub fn filter(args: &FilterArgs) -> Result<String> {
    let mut specs: Vec<FilterSpec> = match &args.pipeline {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read", p.display()))?;
            Pipeline::from_json(&text)
                .with_context(|| p.display().to_string())?
                .steps
        }
        None => Vec::new(),
    };
    for (i, s) in args.steps.iter().enumerate() {
        let spec: FilterSpec = serde_json::from_str(s)
            .with_context(|| format!("--step {} ({s}): not a filter", i + 1))?;
        spec.validate()
            .with_context(|| format!("--step {} ({s})", i + 1))?;
        specs.push(spec);
    }
    ensure!(
        !specs.is_empty(),
        "no filters given: use --pipeline FILE and/or --step JSON (see --list)"
    );
    let volume = read_stack_path(&args.input, args.quiet)?;
    let input = volume
        .to_f32_array(0..volume.shape().z)
        .with_context(|| format!("{}: filters need a grayscale stack", args.input.display()))?;
    let pb = bar(args.quiet, "filtering");
    let out = apply_pipeline(&specs, input.view(), &mut follow(&pb)).map_err(|e| match e {
        FilterError::Cancelled(_) => anyhow::anyhow!("cancelled"),
        e => anyhow::Error::new(e),
    })?;
    pb.finish_and_clear();
    let mut result: AnyVolume = Volume::from_array(out.view())?.into();
    result.set_voxel_size(volume.voxel_size());
    let files = write_stack(&result, &args.output)?;
    let names: Vec<&str> = specs.iter().map(FilterSpec::name).collect();
    Ok(format!(
        "{} → {}: {} ({} file{})",
        args.input.display(),
        args.output.path.display(),
        names.join(" → "),
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    ))
}

/// Arguments of `emstudio label`.
#[derive(Debug, Clone)]
pub struct LabelArgs {
    /// Probability map, mask or label stack.
    pub input: PathBuf,
    /// Seed stack for marker watershed.
    pub markers: Option<PathBuf>,
    /// The chain's settings.
    pub params: PostprocessParams,
    /// Where to write the labels.
    pub output: OutputSpec,
    /// No progress bars.
    pub quiet: bool,
}

/// Parses `--method` and its options into a [`LabelMethod`].
pub fn label_method(
    method: &str,
    connectivity: u8,
    min_distance: usize,
    physical: bool,
    min_overlap: f64,
) -> Result<LabelMethod> {
    let c3 = match connectivity {
        6 => Connectivity3::C6,
        18 => Connectivity3::C18,
        26 => Connectivity3::C26,
        4 | 8 if method == "slices" => Connectivity3::C26,
        other => bail!("--connectivity {other}: use 6, 18 or 26 (4 or 8 with --method slices)"),
    };
    Ok(match method {
        "components" => LabelMethod::Components { connectivity: c3 },
        "distance" => LabelMethod::DistanceWatershed(DistanceWatershedParams {
            min_distance,
            connectivity: c3,
            use_voxel_size: physical,
        }),
        "markers" => LabelMethod::MarkerWatershed { connectivity: c3 },
        "slices" => LabelMethod::SlicesLinked {
            connectivity: if connectivity == 4 {
                Connectivity2::C4
            } else {
                Connectivity2::C8
            },
            min_overlap,
        },
        other => bail!("--method {other}: use components, distance, markers or slices"),
    })
}

/// Parses `--threshold VALUE|otsu|nonzero`.
pub fn threshold_choice(text: &str) -> Result<ThresholdChoice> {
    Ok(match text {
        "otsu" => ThresholdChoice::Otsu,
        "nonzero" => ThresholdChoice::Nonzero,
        t => ThresholdChoice::Fixed(
            t.parse()
                .with_context(|| format!("--threshold {t}: a number, otsu or nonzero"))?,
        ),
    })
}

/// `emstudio label`: threshold → objects → size filter → consecutive IDs.
pub fn label(args: &LabelArgs) -> Result<String> {
    let volume = read_stack_path(&args.input, args.quiet)?;
    let map = volume
        .to_f32_array(0..volume.shape().z)
        .with_context(|| format!("{}: needs a grayscale stack", args.input.display()))?;
    let markers = match &args.markers {
        Some(p) => Some(
            read_stack_path(p, args.quiet)?
                .to_label_array()
                .with_context(|| format!("{}: markers must be a label stack", p.display()))?,
        ),
        None => None,
    };
    let pb = bar(args.quiet, "labelling");
    let out = postprocess(
        map.view(),
        volume.voxel_size(),
        markers.as_ref().map(|m| m.view()),
        &args.params,
        &mut follow(&pb),
    )
    .with_context(|| args.input.display().to_string())?;
    pb.finish_and_clear();
    let result = AnyVolume::from_labels(out.labels.view(), volume.voxel_size())?;
    let files = write_stack(&result, &args.output)?;
    Ok(format!(
        "{} objects ({} foreground voxels{}) → {} ({} file{})",
        out.objects,
        out.foreground_voxels,
        if out.threshold.is_nan() {
            String::new()
        } else {
            format!(", threshold {}", out.threshold)
        },
        args.output.path.display(),
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    ))
}

/// Arguments of `emstudio evaluate`.
#[derive(Debug, Clone)]
pub struct EvaluateArgs {
    /// Ground-truth label stack.
    pub gt: PathBuf,
    /// Predicted labels, or with `isbi` a boundary/interior probability map.
    pub pred: PathBuf,
    /// Run the ISBI 2012 protocol (threshold sweep, thinning, per-slice means).
    pub isbi: bool,
    /// With `isbi`: high values of the map are membranes (default: interiors).
    pub boundary_high: bool,
    /// `pred` is a foreground probability map: score it binarised at 0.05, 0.10, … 0.95 and
    /// name the threshold with the best Jaccard (to choose one on validation slices).
    pub sweep: bool,
    /// Metric settings (plain form).
    pub params: EvaluateParams,
    /// Also write everything as JSON here.
    pub json: Option<PathBuf>,
    /// Errors of each kind to print.
    pub show_errors: usize,
    /// Score only these slices ("20-29"); default all.
    pub slices: Option<String>,
    /// No progress bars.
    pub quiet: bool,
}

/// What `emstudio evaluate` computed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum EvaluateOutput {
    /// Plain 3D form.
    Plain(Box<Evaluation>),
    /// ISBI 2012 protocol.
    Isbi(IsbiReport),
    /// Foreground scores of a probability map at a series of thresholds.
    Sweep(ThresholdSweep),
}

/// `emstudio evaluate --sweep`: a probability map's foreground scores at each threshold.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThresholdSweep {
    /// Scores at each threshold, in increasing order.
    pub thresholds: Vec<ThresholdScores>,
    /// The threshold with the highest Jaccard (the lowest of equals).
    pub best_threshold: f64,
}

/// One row of a [`ThresholdSweep`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThresholdScores {
    /// Foreground is `value > threshold`.
    pub threshold: f64,
    /// The binarised map's scores.
    pub scores: SemanticScores,
}

/// `emstudio evaluate`: scores a prediction against ground truth; returns the printed report.
pub fn evaluate(args: &EvaluateArgs) -> Result<(String, EvaluateOutput)> {
    let gt = read_stack_path(&args.gt, args.quiet)?;
    let pred = read_stack_path(&args.pred, args.quiet)?;
    ensure!(
        gt.shape() == pred.shape(),
        "{} is {} but {} is {}: they must have the same size",
        args.gt.display(),
        gt.shape(),
        args.pred.display(),
        pred.shape()
    );
    let zs = match &args.slices {
        Some(s) => parse_slices(s, gt.shape().z)?,
        None => (0..gt.shape().z).collect(),
    };
    let pick = |a: ndarray::Array3<u32>| a.select(ndarray::Axis(0), &zs);
    let gt_labels =
        pick(gt.to_label_array().with_context(|| {
            format!("{}: ground truth must be a label stack", args.gt.display())
        })?);
    let pb = bar(args.quiet, "evaluating");
    ensure!(
        !(args.isbi && args.sweep),
        "--isbi and --sweep are two different ways to score a map: choose one"
    );
    let (text, output) = if args.sweep {
        let map = pred
            .to_unit_f32_array()
            .with_context(|| format!("{}: needs a grayscale map", args.pred.display()))?
            .select(ndarray::Axis(0), &zs);
        let thresholds: Vec<f64> = (1..20).map(|k| f64::from(k) * 0.05).collect();
        let rows: Vec<ThresholdScores> =
            semantic_threshold_sweep(gt_labels.view(), map.view(), &thresholds)?
                .into_iter()
                .map(|(threshold, scores)| ThresholdScores { threshold, scores })
                .collect();
        let best = rows
            .iter()
            .fold(None::<&ThresholdScores>, |best, r| match best {
                Some(b) if b.scores.jaccard >= r.scores.jaccard => Some(b),
                _ => Some(r),
            })
            .map_or(0.5, |r| r.threshold);
        let mut text = String::from("threshold  Jaccard  Dice    precision  recall\n");
        for r in &rows {
            let s = &r.scores;
            text += &format!(
                "{:>9.2}  {:.4}   {:.4}  {:.4}     {:.4}{}\n",
                r.threshold,
                s.jaccard,
                s.dice,
                s.precision,
                s.recall,
                if r.threshold == best {
                    "  ← best"
                } else {
                    ""
                }
            );
        }
        text += &format!("best threshold {best:.2}\n");
        (
            text,
            EvaluateOutput::Sweep(ThresholdSweep {
                thresholds: rows,
                best_threshold: best,
            }),
        )
    } else if args.isbi {
        // Maps stored as 8/16-bit images are scaled to 0..1 for the 0.0..1.0 sweep.
        let map = pred
            .to_unit_f32_array()
            .with_context(|| format!("{}: needs a grayscale map", args.pred.display()))?
            .select(ndarray::Axis(0), &zs);
        let params = IsbiParams {
            polarity: if args.boundary_high {
                MapPolarity::BoundaryHigh
            } else {
                MapPolarity::InteriorHigh
            },
            ..IsbiParams::default()
        };
        let report = isbi_evaluate(gt_labels.view(), map.view(), &params, &mut follow(&pb))?;
        let b = &report.best_rand;
        let i = &report.best_info;
        let text = format!(
            "ISBI 2012 protocol ({} slices, thinned prediction: {})\n  V_rand  {:.4}  (split {:.4}, merge {:.4}) at threshold {:.2}\n  V_info  {:.4}  (split {:.4}, merge {:.4}) at threshold {:.2}\n",
            b.scores.slices_evaluated,
            report.thinned_prediction,
            b.scores.v_rand,
            b.scores.v_rand_split,
            b.scores.v_rand_merge,
            b.threshold,
            i.scores.v_info,
            i.scores.v_info_split,
            i.scores.v_info_merge,
            i.threshold,
        );
        (text, EvaluateOutput::Isbi(report))
    } else {
        let pred_labels = pick(pred.to_label_array().with_context(|| {
            format!(
                "{}: the prediction must be a label stack",
                args.pred.display()
            )
        })?);
        let mut e = evaluate_labels_3d(
            gt_labels.view(),
            pred_labels.view(),
            &args.params,
            &mut follow(&pb),
        )?;
        center_positions(gt_labels.view(), pred_labels.view(), &mut e.errors);
        (
            plain_report(&e, args.show_errors),
            EvaluateOutput::Plain(Box::new(e)),
        )
    };
    pb.finish_and_clear();
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&output)?;
        std::fs::write(path, json).with_context(|| format!("{}: cannot write", path.display()))?;
    }
    Ok((text, output))
}

fn plain_report(e: &Evaluation, show: usize) -> String {
    let r = &e.report;
    let mut s = format!(
        "{} voxels, {} in GT foreground; {} GT objects, {} predicted\n\
         Rand F-score     {:.4}  (split {:.4}, merge {:.4})\n\
         adapted Rand err {:.4}\n\
         VI               {:.4} bits  (split {:.4}, merge {:.4})\n\
         V_info           {:.4}  (split {:.4}, merge {:.4})\n\
         Jaccard {:.4}  Dice {:.4}  conformity {}\n",
        r.voxels,
        r.foreground_voxels,
        r.gt_objects,
        r.pred_objects,
        r.rand.v_rand,
        r.rand.split,
        r.rand.merge,
        r.adapted_rand_error,
        r.info.vi,
        r.info.vi_split,
        r.info.vi_merge,
        r.info.v_info,
        r.info.v_info_split,
        r.info.v_info_merge,
        r.semantic.jaccard,
        r.semantic.dice,
        r.semantic
            .conformity
            .map_or("n/a".to_string(), |c| format!("{c:.4}")),
    );
    s.push_str(&format!("split GT objects: {}\n", e.errors.splits.len()));
    for x in e.errors.splits.iter().take(show) {
        s.push_str(&format!(
            "  GT {:>6}  {:>3} pieces  {:>9} voxels  at z,y,x {:?}\n",
            x.gt_label,
            x.pieces.len(),
            x.gt_voxels,
            x.position
        ));
    }
    s.push_str(&format!("merging predictions: {}\n", e.errors.merges.len()));
    for x in e.errors.merges.iter().take(show) {
        s.push_str(&format!(
            "  pred {:>6}  joins {:>3} GT  {:>9} voxels  at z,y,x {:?}\n",
            x.pred_label,
            x.gt_objects.len(),
            x.pred_voxels,
            x.position
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_lists() {
        assert_eq!(
            parse_slices("0-2, 5,4", 10).expect("ok"),
            vec![0, 1, 2, 4, 5]
        );
        assert!(parse_slices("3-1", 10).is_err());
        let err = parse_slices("12", 10).expect_err("out of range");
        assert!(err.to_string().contains("10 slices"));
    }
}
