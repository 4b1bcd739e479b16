//! `emstudio`: the EM Studio companion binary.

use anyhow::Context;
use clap::{Parser, Subcommand};
use emstudio_companion::cli::{self, EvaluateArgs, FilterArgs, LabelArgs, OutputSpec};
use emstudio_companion::{catalog, server};
use emstudio_core::labels::postprocess::PostprocessParams;
use emstudio_core::metrics::EvaluateParams;
use emstudio_core::stack::{BitDepth, ExportFormat};
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
enum Command {
    /// Serve the browser app and datasets over HTTP.
    Serve(ServeArgs),
    #[command(flatten)]
    Batch(BatchCommand),
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
        #[command(flatten)]
        output: OutputFlags,
        /// No progress bars.
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
        /// Write all results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Errors of each kind to print.
        #[arg(long, default_value_t = 10)]
        show_errors: usize,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
    },
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
                print!("{}", cli::filter_list());
                return Ok(());
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
            cli::label(&LabelArgs {
                input,
                markers,
                params: PostprocessParams {
                    threshold: cli::threshold_choice(&threshold)?,
                    foreground_below: below,
                    method,
                    min_size,
                },
                output: output.spec()?,
                quiet,
            })?
        }
        BatchCommand::Evaluate {
            gt,
            pred,
            isbi,
            boundary_high,
            json,
            show_errors,
            quiet,
        } => {
            cli::evaluate(&EvaluateArgs {
                gt,
                pred,
                isbi,
                boundary_high,
                params: EvaluateParams::default(),
                json,
                show_errors,
                quiet,
            })?
            .0
        }
    };
    println!("{}", message.trim_end());
    Ok(())
}

fn main() -> std::process::ExitCode {
    let result = match Cli::parse().command {
        Command::Serve(args) => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(serve_app(args))),
        Command::Batch(command) => batch(command),
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
