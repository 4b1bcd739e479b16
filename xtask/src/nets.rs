//! `cargo xtask bench nets`: the 2D CNNs proven on real EM data with the release `emstudio`
//! binary — train on a few slices, infer on held-out slices, score — and the numbers written to
//! BENCHMARKS.md between `<!-- bench:nets -->` markers.
//!
//! - Mitochondria, EPFL hippocampus (Lucchi subset): train on slices 0–4, validate on 5,
//!   score slices 20–26 (foreground Jaccard/IoU and Dice of the thresholded probability).
//! - Mitochondria, UNI-EM AC3 slice: train on the top 4/5, score the bottom 1/5 (the held-out
//!   band the trainer keeps for validation; scored here on the whole band).
//! - Membranes, ISBI 2012: train on slices 0–19 (label 255 = cell interior), score 20–29 with
//!   the ISBI protocol (V_rand, V_info over a threshold sweep).
//!
//! Inference averages each tile over 8 orientations (`--views 8`). Settings are the constants
//! below; CPU runs on two cores are short by necessity, so scores
//! are lower than a GPU run of the same commands would reach (see BENCHMARKS.md).

use crate::{cargo, cmd, output, status, step, target_dir};
use anyhow::{Context, Result};
use std::path::Path;

/// Training steps per run unless `--steps` says otherwise (CPU-sized: about 5 minutes per run
/// on 2 cores; the mitochondria bar needs about 10000, BENCHMARKS.md).
pub const DEFAULT_STEPS: u64 = 1200;
const PATCH: &str = "128";
const BATCH: &str = "4";
const WIDTH: &str = "8";
/// Orientations each tile is predicted in and averaged over (`emstudio infer --views`).
const VIEWS: &str = "8";

fn emstudio() -> Result<std::path::PathBuf> {
    step("build emstudio (release)");
    status(cargo().args(["build", "--release", "-p", "emstudio-companion"]))?;
    Ok(target_dir()?.join("release/emstudio"))
}

fn run(bin: &Path, args: &[&str]) -> Result<String> {
    eprintln!("  emstudio {}", args.join(" "));
    let out = output(cmd(bin).args(args).arg("--quiet"))?;
    eprintln!("  {}", out.trim());
    Ok(out.trim().to_string())
}

fn json_f64(path: &Path, pointer: &str) -> Result<f64> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    v.pointer(pointer)
        .and_then(serde_json::Value::as_f64)
        .with_context(|| format!("{}: no {pointer}", path.display()))
}

fn text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `emstudio train` of the benchmark U-Net (settings above) with `extra` flags (slices).
fn train_unet(
    bin: &Path,
    image: &str,
    label: &str,
    model: &str,
    steps: &str,
    extra: &[&str],
) -> Result<String> {
    let mut args = vec![
        "train",
        "--image",
        image,
        "--label",
        label,
        "--arch",
        "unet",
        "--depth",
        "4",
        "--base-width",
        WIDTH,
        "--steps",
        steps,
        "--patch",
        PATCH,
        "--batch",
        BATCH,
        "-o",
        model,
    ];
    args.extend_from_slice(extra);
    run(bin, &args)
}

/// One mitochondria proof: where to train and where to score.
struct MitoRun<'a> {
    name: &'a str,
    /// Folder with image/ and label/ to train on, and extra `train` flags (slices).
    train: (&'a Path, &'a [&'a str]),
    /// Folder with image/ and label/ to score, and the slices to score (None: all).
    test: (&'a Path, Option<&'a str>),
    /// How the data is described in the table.
    described: &'a str,
}

/// Trains, infers, thresholds at 0.5 and scores one mitochondria set; returns a table row.
fn mito(bin: &Path, work: &Path, steps: &str, r: &MitoRun<'_>) -> Result<String> {
    let stem = r.name.replace(' ', "-");
    let model = text(&work.join(format!("{stem}.emsmodel")));
    let (train_dir, train_flags) = r.train;
    let (image, label) = (
        text(&train_dir.join("image")),
        text(&train_dir.join("label")),
    );
    let trained = train_unet(bin, &image, &label, &model, steps, train_flags)?;
    let (test_dir, slices) = r.test;
    let prob = text(&work.join(format!("{stem}-prob.tif")));
    let test_image = text(&test_dir.join("image"));
    let inferred = run(
        bin,
        &[
            "infer",
            "-m",
            &model,
            "-i",
            &test_image,
            "--views",
            VIEWS,
            "-o",
            &prob,
        ],
    )?;
    let mask = text(&work.join(format!("{stem}-mask")));
    run(
        bin,
        &["label", "-i", &prob, "--threshold", "0.5", "-o", &mask],
    )?;
    let json = work.join(format!("{stem}-eval.json"));
    let (gt, json_s) = (text(&test_dir.join("label")), text(&json));
    let mut eval = vec!["evaluate", "--gt", &gt, "--pred", &mask, "--json", &json_s];
    if let Some(z) = slices {
        eval.extend(["--slices", z]);
    }
    run(bin, &eval)?;
    let iou = json_f64(&json, "/report/semantic/jaccard")?;
    let dice = json_f64(&json, "/report/semantic/dice")?;
    Ok(format!(
        "| mitochondria, {} | U-Net depth 4, width {WIDTH}; {} | IoU **{iou:.3}**, Dice {dice:.3} | ≥ 0.85 (goal 0.91) | {trained} / {inferred} |\n",
        r.name, r.described
    ))
}

/// Splits the single AC3 slice into a top 4/5 (training) and a bottom 1/5 (scoring) stack.
fn split_ac3(data: &Path, work: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    use emstudio_core::stack::{export, read_stack, BitDepth, ExportFormat, ExportOptions, Limits};
    use emstudio_core::{AnyVolume, Volume};
    let (top, bottom) = (work.join("ac3-top"), work.join("ac3-bottom"));
    if top.join("label").is_dir() && bottom.join("label").is_dir() {
        return Ok((top, bottom));
    }
    for layer in ["image", "label"] {
        let file = data.join(layer).join("0000.png");
        let v = read_stack(
            vec![("0000.png".into(), std::fs::read(&file)?)],
            &Limits::default(),
        )?;
        let AnyVolume::U8(v) = v else {
            anyhow::bail!("{}: expected 8-bit", file.display())
        };
        let a = v.to_array()?;
        let cut = a.dim().1 - a.dim().1 / 5;
        for (dir, rows) in [(&top, 0..cut), (&bottom, cut..a.dim().1)] {
            let part = a.slice(ndarray::s![.., rows, ..]).to_owned();
            let vol: AnyVolume = Volume::from_array(part.view())?.into();
            let options = ExportOptions {
                format: ExportFormat::PngSeries,
                depth: BitDepth::Native,
                rescale: false,
                base_name: "slice".into(),
            };
            let out = dir.join(layer);
            std::fs::create_dir_all(&out)?;
            for (name, bytes) in export(&vol, &options)? {
                std::fs::write(out.join(name), bytes)?;
            }
        }
    }
    Ok((top, bottom))
}

/// Runs the three proofs; returns the Markdown block.
pub fn bench(data: &Path, machine: &str, steps: u64) -> Result<String> {
    let steps_s = steps.to_string();
    let steps = steps_s.as_str();
    let bin = emstudio()?;
    let work = target_dir()?.join("bench-nets");
    std::fs::create_dir_all(&work)?;
    let mut rows = String::new();
    step("mitochondria: EPFL hippocampus");
    let epfl = data.join("epfl-hippocampus-mito");
    rows.push_str(&mito(
        &bin,
        &work,
        steps,
        &MitoRun {
            name: "EPFL hippocampus",
            train: (&epfl, &["--slices", "0-4", "--validation-slices", "5"]),
            test: (&epfl, Some("20-26")),
            described: "train slices 0–4, validate 5; score slices 20–26",
        },
    )?);
    step("mitochondria: UNI-EM AC3 (train on the top 4/5 of the slice, score the bottom 1/5)");
    let (top, bottom) = split_ac3(&data.join("uniem-ac3-mito"), &work)?;
    rows.push_str(&mito(
        &bin,
        &work,
        steps,
        &MitoRun {
            name: "UNI-EM AC3",
            train: (&top, &[]),
            test: (&bottom, None),
            described: "train the top 820 rows of the 1024² slice (its own bottom fifth validates); score the held-out bottom 204 rows",
        },
    )?);
    step("membranes: ISBI 2012");
    let isbi = data.join("isbi2012");
    let (image_s, label_s) = (
        isbi.join("image").to_string_lossy().into_owned(),
        isbi.join("label").to_string_lossy().into_owned(),
    );
    let model = work.join("isbi.emsmodel").to_string_lossy().into_owned();
    let trained = train_unet(
        &bin,
        &image_s,
        &label_s,
        &model,
        steps,
        &["--slices", "0-17", "--validation-slices", "18-19"],
    )?;
    let prob = work.join("isbi-prob.tif").to_string_lossy().into_owned();
    let inferred = run(
        &bin,
        &[
            "infer", "-m", &model, "-i", &image_s, "--slices", "20-29", "--views", VIEWS, "-o",
            &prob,
        ],
    )?;
    let gt = work.join("isbi-gt-20-29");
    // The ground truth of the scored slices, as its own stack of the same depth as the map.
    let gt_s = gt.to_string_lossy().into_owned();
    if !gt.is_dir() {
        std::fs::create_dir_all(&gt)?;
        for z in 20..30 {
            std::fs::copy(
                isbi.join(format!("label/{z:04}.png")),
                gt.join(format!("{z:04}.png")),
            )?;
        }
    }
    let json = work.join("isbi-eval.json");
    let json_s = json.to_string_lossy().into_owned();
    run(
        &bin,
        &[
            "evaluate", "--gt", &gt_s, "--pred", &prob, "--isbi", "--json", &json_s,
        ],
    )?;
    let vrand = json_f64(&json, "/best_rand/scores/v_rand")?;
    let vinfo = json_f64(&json, "/best_info/scores/v_info")?;
    rows.push_str(&format!(
        "| membranes, ISBI 2012 | U-Net depth 4, width {WIDTH}; train slices 0–17, validate 18–19; score 20–29, ISBI protocol | V_rand **{vrand:.4}**, V_info {vinfo:.4} | V_rand ≥ 0.93 (goal 0.97) | {trained} / {inferred} |\n"
    ));
    Ok(format!(
        "<!-- bench:nets -->\nMachine: {machine}; {steps} steps of {BATCH} × {PATCH}² patches, Adam 1e-3 cosine, default augmentation, seed 1; inference averaged over {VIEWS} orientations (`--views {VIEWS}`).\n\n| task | network and data | score | bar | training / inference (as printed) |\n|---|---|---|---|---|\n{rows}<!-- /bench:nets -->"
    ))
}

/// Builds `crates/nets/examples/bench_speed.rs` (release) and returns its path.
fn bench_speed_bin() -> Result<std::path::PathBuf> {
    example_bin("bench_speed")
}

/// Builds one of emstudio-nets' examples (release) and returns its path.
fn example_bin(name: &str) -> Result<std::path::PathBuf> {
    step(&format!("build {name} (release)"));
    status(cargo().args([
        "build",
        "--release",
        "-p",
        "emstudio-nets",
        "--example",
        name,
    ]))?;
    Ok(target_dir()?.join("release/examples").join(name))
}

/// The FFN presets timed beside the PyTorch twin: (preset, batch, timed training steps,
/// timed inference passes).
const FFN_SPEED: [(&str, &str, &str, &str); 3] = [
    ("light", "4", "20", "40"),
    ("anisotropic", "4", "4", "8"),
    ("isotropic", "4", "3", "5"),
];

/// `cargo xtask bench ffn-speed`: training steps/s and inference voxels/s of the flood-filling
/// network's presets, ours (`crates/nets/examples/bench_ffn_speed.rs`) and the PyTorch twin
/// (`scripts/golden/bench_ffn.py`, CPU) in the same run with the same work. Returns the
/// BENCHMARKS.md section between `<!-- bench:ffn-speed -->` markers.
pub fn ffn_speed(machine: &str) -> Result<String> {
    let py = crate::kernels::venv_python("torch-venv", "scripts/golden/requirements-torch.txt")?;
    let ours_bin = example_bin("bench_ffn_speed")?;
    let mut rows = String::new();
    for (preset, batch, steps, runs) in FFN_SPEED {
        step(&format!("FFN speed, {preset}"));
        let args = [preset, batch, steps, runs];
        let ours: serde_json::Value =
            serde_json::from_str(output(cmd(&ours_bin).args(args))?.trim())?;
        let torch: serde_json::Value = serde_json::from_str(
            output(cmd(&py).arg("scripts/golden/bench_ffn.py").args(args))?.trim(),
        )?;
        let get = |v: &serde_json::Value, k: &str| {
            v[k].as_f64().with_context(|| format!("no {k} in {v}"))
        };
        let (ot, tt) = (
            get(&ours, "train_steps_per_s")?,
            get(&torch, "train_steps_per_s")?,
        );
        let (oi, ti) = (
            get(&ours, "infer_voxels_per_s")? / 1e3,
            get(&torch, "infer_voxels_per_s")? / 1e3,
        );
        eprintln!("  train {ot:.2} vs {tt:.2} steps/s, infer {oi:.1} vs {ti:.1} k voxels/s");
        rows.push_str(&format!(
            "| {preset} | {ot:.2} | {tt:.2} | {:.2}× | {oi:.1} | {ti:.1} | {:.2}× |\n",
            tt / ot,
            ti / oi
        ));
    }
    Ok(format!(
        "<!-- bench:ffn-speed -->\nMachine: {machine}; PyTorch {} on the CPU with {} threads, ours burn flex (simd + rayon). Training: SGD steps (clip 0.7) on a batch of 4 random FOV-sized inputs, sigmoid cross-entropy on soft targets, predictions read back (2 warm-up steps, then the timed ones). Inference: forward passes of one FOV, as the inference canvas runs them. Ratio = our time ÷ PyTorch's (below 1 = we are faster).\n\n| preset | ours train (steps/s) | PyTorch train (steps/s) | train time ratio | ours infer (k voxels/s) | PyTorch infer (k voxels/s) | infer time ratio |\n|---|---|---|---|---|---|---|\n{rows}<!-- /bench:ffn-speed -->",
        torch_version(&py)?,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    ))
}

/// Networks timed side by side with PyTorch by `bench nets-speed`.
const SPEED_NETS: [&str; 5] = [
    r#"{"arch":"unet","depth":4,"base_width":8}"#,
    r#"{"arch":"unet","depth":4,"base_width":16}"#,
    r#"{"arch":"resnet","blocks":9,"base_width":8}"#,
    r#"{"arch":"highway","units":9,"base_width":8}"#,
    r#"{"arch":"densenet","blocks":3,"layers":4,"growth":12,"base_width":8}"#,
];

/// `cargo xtask bench nets-speed`: training steps/s and inference Mpx/s of each network in
/// `SPEED_NETS`, ours (burn flex, `crates/nets/examples/bench_speed.rs`) and PyTorch
/// (`scripts/golden/bench_nets.py`, CPU) in the same run on the same EPFL slice. Returns the
/// BENCHMARKS.md section between `<!-- bench:nets-speed -->` markers.
pub fn speed(data: &Path, machine: &str) -> Result<String> {
    let py = crate::kernels::venv_python("torch-venv", "scripts/golden/requirements-torch.txt")?;
    let ours_bin = bench_speed_bin()?;
    let epfl = data.join("epfl-hippocampus-mito");
    let image = text(&epfl.join("image/0000.png"));
    let label = text(&epfl.join("label/0000.png"));
    let work = ["4", "128", "20", "256"];
    let mut rows = String::new();
    for arch in SPEED_NETS {
        step(&format!("speed of {arch}"));
        let mut args = vec![arch, image.as_str(), label.as_str()];
        args.extend_from_slice(&work);
        let ours: serde_json::Value =
            serde_json::from_str(output(cmd(&ours_bin).args(&args))?.trim())?;
        let torch: serde_json::Value = serde_json::from_str(
            output(cmd(&py).arg("scripts/golden/bench_nets.py").args(&args))?.trim(),
        )?;
        let get = |v: &serde_json::Value, k: &str| {
            v[k].as_f64().with_context(|| format!("no {k} in {v}"))
        };
        let (ot, tt) = (
            get(&ours, "train_steps_per_s")?,
            get(&torch, "train_steps_per_s")?,
        );
        let (oi, ti) = (
            get(&ours, "infer_mpx_per_s")?,
            get(&torch, "infer_mpx_per_s")?,
        );
        eprintln!("  train {ot:.2} vs {tt:.2} steps/s, infer {oi:.2} vs {ti:.2} Mpx/s");
        rows.push_str(&format!(
            "| `{arch}` | {ot:.2} | {tt:.2} | {:.2}× | {oi:.2} | {ti:.2} | {:.2}× |\n",
            tt / ot,
            ti / oi
        ));
    }
    Ok(format!(
        "<!-- bench:nets-speed -->\nMachine: {machine}; PyTorch {} on the CPU with {} threads, ours burn flex (simd + rayon). Training: Adam steps on 4 random 128² crops of EPFL slice 0, BCE, no augmentation (20 timed after 2 warm-up). Inference: 3 forward passes of 4 × 256² tiles. Ratio = our time ÷ PyTorch's (below 1 = we are faster).\n\n| network | ours train (steps/s) | PyTorch train (steps/s) | train time ratio | ours infer (Mpx/s) | PyTorch infer (Mpx/s) | infer time ratio |\n|---|---|---|---|---|---|---|\n{rows}<!-- /bench:nets-speed -->",
        torch_version(&py)?,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    ))
}

fn torch_version(py: &Path) -> Result<String> {
    Ok(
        output(cmd(py).args(["-c", "import torch; print(torch.__version__)"]))?
            .trim()
            .to_string(),
    )
}

/// The network timed in the browser and beside ONNX Runtime Web.
const BROWSER_NET: &str = r#"{"arch":"unet","depth":4,"base_width":8}"#;

/// ONNX Runtime Web, installed once into the tool cache (150 MB, so not a test dependency).
fn onnxruntime_web() -> Result<std::path::PathBuf> {
    let dir = crate::cache_dir().join("ort");
    let dist = dir.join("node_modules/onnxruntime-web/dist");
    if !dist.join("ort.all.min.mjs").exists() {
        step("npm install onnxruntime-web (once, into the tool cache)");
        std::fs::create_dir_all(&dir)?;
        status(
            cmd("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .arg("onnxruntime-web@1.30.0"),
        )?;
    }
    Ok(dist)
}

/// `cargo xtask bench nets-browser`: in one headless Chromium, a U-Net trained (Train panel)
/// and run (Infer panel) in the worker, and the same architecture from PyTorch run by ONNX
/// Runtime Web (WASM and WebGPU providers); natively, the same training and inference on one
/// thread. Returns the BENCHMARKS.md section between `<!-- bench:nets-browser -->` markers.
pub fn browser(data: &Path, machine: &str) -> Result<String> {
    let py = crate::kernels::venv_python("torch-venv", "scripts/golden/requirements-torch.txt")?;
    let work = target_dir()?.join("bench-nets-browser");
    std::fs::create_dir_all(&work)?;
    let onnx = work.join("unet.onnx");
    step("export the PyTorch U-Net to ONNX");
    output(
        cmd(&py)
            .arg("scripts/golden/export_onnx.py")
            .arg(BROWSER_NET)
            .arg(&onnx),
    )?;
    let ort = onnxruntime_web()?;
    crate::build(crate::Lint::No)?;
    // ONNX Runtime Web and the model are served from the app's origin for the bench only.
    let ort_bench = std::path::Path::new("dist/ort-bench");
    std::fs::create_dir_all(ort_bench)?;
    for entry in std::fs::read_dir(&ort)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(name) =
            name.filter(|n| n == "ort.all.min.mjs" || n.starts_with("ort-wasm-simd-threaded.jsep."))
        {
            std::fs::copy(&path, ort_bench.join(name))?;
        }
    }
    std::fs::copy(&onnx, ort_bench.join("model.onnx"))?;
    let companion = crate::companion_bin()?;
    let chromium = crate::ensure_chromium()?;
    crate::ensure_node_deps()?;
    let (_server, url) = crate::start_server(&companion, &[data])?;
    let model = work.join("browser-unet.emsmodel");
    step("train and infer in Chromium; ONNX Runtime Web");
    let line = output(
        cmd("node")
            .arg("tests/e2e/bench_nets.mjs")
            .env("EMSTUDIO_URL", &url)
            .env("CHROMIUM", &chromium)
            .env("ORT_BENCH", "1")
            .env("MODEL_OUT", &model),
    )?;
    std::fs::remove_dir_all(ort_bench)?;
    let web: serde_json::Value = serde_json::from_str(line.trim().lines().last().unwrap_or(""))
        .with_context(|| format!("bench_nets.mjs printed {line}"))?;
    let num = |v: &serde_json::Value, p: &str| v.pointer(p).and_then(serde_json::Value::as_f64);

    // Natively, one thread, same network and work.
    step("the same natively, one thread");
    let bench_speed = bench_speed_bin()?;
    let ac3 = std::path::PathBuf::from("demo/uniem-ac3-mito");
    let (image, label) = (
        text(&ac3.join("image/0000.png")),
        text(&ac3.join("label/0000.png")),
    );
    let native: serde_json::Value = serde_json::from_str(
        output(
            cmd(&bench_speed)
                .args([BROWSER_NET, &image, &label, "4", "128", "20", "256"])
                .env("RAYON_NUM_THREADS", "1"),
        )?
        .trim(),
    )?;
    // Each engine's network pixels: the tiles the worker reported, at the side it chose (the
    // native run and ONNX Runtime Web get the same side, so all do the same work per pixel).
    let tiling = |p: &str| -> Result<(u64, u64)> {
        let n = |f: &str| num(&web, &format!("{p}/{f}")).map(|v| v as u64);
        Ok((
            n("tiles").context("no tile count")?,
            n("side").context("no tile side")?,
        ))
    };
    let ((tiles, side), (gpu_tiles, gpu_side)) = (tiling("/tiling")?, tiling("/webgpu/tiling")?);
    let net_mpx = (tiles * side * side) as f64 / 1e6;
    let gpu_net_mpx = (gpu_tiles * gpu_side * gpu_side) as f64 / 1e6;
    let (cpu_tiles, gpu_tiles) = (
        format!("{tiles} × {side}²"),
        format!("{gpu_tiles} × {gpu_side}²"),
    );
    let bin = emstudio()?;
    let prob = text(&work.join("prob.tif"));
    let started = std::time::Instant::now();
    output(
        cmd(&bin)
            .args(["infer", "-m"])
            .arg(&model)
            .args([
                "-i",
                &text(&ac3.join("image")),
                "-o",
                &prob,
                "--batch",
                "1",
                "--tile",
                &side.to_string(),
                "--quiet",
            ])
            .env("RAYON_NUM_THREADS", "1"),
    )?;
    let native_infer_s = started.elapsed().as_secs_f64();

    let browser_train = num(&web, "/train_steps_per_s").context("no training speed")?;
    let native_train = num(&native, "/train_steps_per_s").context("no native speed")?;
    let infer_s = num(&web, "/infer_ms").context("no inference time")? / 1000.0;
    let mpx = 1024.0 * 1024.0 / 1e6;
    let ort_cell = |ep: &str| match (
        num(&web, &format!("/ort/{ep}/mpx_per_s")),
        web.pointer(&format!("/ort/{ep}/error")),
    ) {
        (Some(v), _) => format!("{v:.3}"),
        (None, Some(e)) => format!("failed: {e}"),
        _ => "—".into(),
    };
    let ours_net = net_mpx / infer_s;
    let ort_wasm = num(&web, "/ort/wasm/mpx_per_s").unwrap_or(f64::NAN);
    let gpu_infer_s = num(&web, "/webgpu/infer_ms").unwrap_or(f64::NAN) / 1000.0;
    let gpu_train = num(&web, "/webgpu/train_steps_per_s").unwrap_or(f64::NAN);
    // The same CPU inference with the tiles shared by N helper workers, and ORT with N threads.
    let helpers = num(&web, "/pooled/helpers").context("no pooled run")?;
    let (p_tiles, p_side) = tiling("/pooled/tiling")?;
    let pooled_net = (p_tiles * p_side * p_side) as f64
        / 1e6
        / (num(&web, "/pooled/infer_ms").context("no pooled time")? / 1000.0);
    let first_s = num(&web, "/pooled/first_infer_ms").unwrap_or(f64::NAN) / 1000.0;
    let ort_threads = num(&web, "/pooled/ort_wasm/mpx_per_s").unwrap_or(f64::NAN);
    let ort_isolated = web
        .pointer("/pooled/ort_wasm/isolated")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let ort_threads_cell = match web.pointer("/pooled/ort_wasm/error") {
        Some(e) => format!("failed: {e}"),
        None => format!("{ort_threads:.3}"),
    };
    Ok(format!(
        "<!-- bench:nets-browser -->\nMachine: {machine}; headless Chromium (WebGPU on SwiftShader, i.e. the CPU). Network `{BROWSER_NET}`; training: Adam steps on 4 random 128² crops of the AC3 demo slice, no augmentation, no live preview; inference: the 1024² slice in the tiles the worker chose for the device (on the CPU {cpu_tiles}, one a pass; on WebGPU {gpu_tiles}, two a pass; the native run and ONNX Runtime Web run tiles of the same side and batch, and speeds count network pixels). Ours runs in the worker on burn flex (wasm) or on burn's WebGPU backend (here SwiftShader; a short run, so its first steps include shader compilation); ONNX Runtime Web 1.30 runs the PyTorch twin exported to ONNX on its WASM or WebGPU provider. The first table is one thread each (`?workers=0`, ORT `numThreads = 1`).\n\n\
| measure | ours in Chromium, CPU | ours in Chromium, WebGPU (SwiftShader) | ours native, 1 thread | ONNX Runtime Web WASM | ONNX Runtime Web WebGPU (SwiftShader) |\n|---|---|---|---|---|---|\n\
| training (steps/s) | {browser_train:.2} | {gpu_train:.3} | {native_train:.2} | — | — |\n\
| inference, slice output (Mpx/s) | {:.3} | {:.3} | {:.3} | — | — |\n\
| inference, network pixels (Mpx/s) | {ours_net:.3} | {:.3} | {:.3} | {} | {} |\n\n\
Ratios: training in the browser ÷ native (1 thread) speed {:.2}; inference time ours ÷ ONNX Runtime Web WASM {:.2}× (below 1 = we are faster); on SwiftShader, ONNX Runtime Web WebGPU ÷ ours WebGPU speed {:.2}.\n\n\
CPU inference on {helpers:.0} cores: ours with the tiles shared by {helpers:.0} helper workers of the network worker (default page; the first run, which starts the helpers, took {first_s:.2} s, the second is counted), ONNX Runtime Web WASM with `numThreads = {helpers:.0}` (page cross-origin isolated: {ort_isolated}).\n\n\
| inference, network pixels (Mpx/s) | 1 worker / thread | {helpers:.0} workers / threads | speed-up |\n|---|---|---|---|\n\
| ours in Chromium (CPU) | {ours_net:.3} | {pooled_net:.3} | {:.2}× |\n\
| ONNX Runtime Web WASM | {} | {ort_threads_cell} | {:.2}× |\n\n\
With {helpers:.0} each, inference time ours ÷ ONNX Runtime Web WASM: {:.2}× (below 1 = we are faster).\n<!-- /bench:nets-browser -->",
        mpx / infer_s,
        mpx / gpu_infer_s,
        mpx / native_infer_s,
        gpu_net_mpx / gpu_infer_s,
        net_mpx / native_infer_s,
        ort_cell("wasm"),
        ort_cell("webgpu"),
        browser_train / native_train,
        ort_wasm / ours_net,
        num(&web, "/ort/webgpu/mpx_per_s").unwrap_or(f64::NAN) / (gpu_net_mpx / gpu_infer_s),
        pooled_net / ours_net,
        ort_cell("wasm"),
        ort_threads / ort_wasm,
        ort_threads / pooled_net,
    ))
}
