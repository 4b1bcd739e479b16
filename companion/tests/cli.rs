//! The batch commands `filter`, `label` and `evaluate`: results equal the library's on the
//! same input, outputs read back, and bad input gives one clear error line.

mod common;
use common::write_png_series;

use emstudio_companion::cli::{
    self, EvaluateArgs, EvaluateOutput, FilterArgs, LabelArgs, OutputSpec,
};
use emstudio_core::filters::{apply_pipeline, FilterSpec};
use emstudio_core::labels::postprocess::{LabelMethod, PostprocessParams, ThresholdChoice};
use emstudio_core::metrics::EvaluateParams;
use emstudio_core::progress::NoProgress;
use emstudio_core::stack::{BitDepth, ExportFormat};
use emstudio_core::{AnyVolume, Volume};
use ndarray::Array3;
use std::path::PathBuf;

/// 4 × 24 × 40: two bright boxes on a dark, slightly noisy background.
fn blobs() -> Array3<u8> {
    Array3::from_shape_fn((4, 24, 40), |(z, y, x)| {
        let inside = (4..20).contains(&y) && ((4..16).contains(&x) || (24..36).contains(&x));
        let noise = ((z * 31 + y * 17 + x * 7) % 11) as u8;
        if inside {
            200 + noise
        } else {
            30 + noise
        }
    })
}

/// The plain 3D evaluation of `pred` against `gt`: default metrics, quiet, nothing written.
fn evaluate_args(gt: PathBuf, pred: PathBuf) -> EvaluateArgs {
    EvaluateArgs {
        gt,
        pred,
        isbi: false,
        boundary_high: false,
        sweep: false,
        params: EvaluateParams::default(),
        json: None,
        show_errors: 0,
        slices: None,
        quiet: true,
    }
}

/// `emstudio label` with the marker watershed (6-connected) of `input` from `markers`.
fn marker_watershed(input: PathBuf, markers: Option<PathBuf>, out: PathBuf) -> LabelArgs {
    LabelArgs {
        input,
        markers,
        params: PostprocessParams {
            method: LabelMethod::MarkerWatershed {
                connectivity: emstudio_core::neighborhood::Connectivity3::C6,
            },
            ..PostprocessParams::default()
        },
        output: output(out),
        quiet: true,
    }
}

fn output(path: PathBuf) -> OutputSpec {
    OutputSpec {
        path,
        series: ExportFormat::PngSeries,
        depth: BitDepth::Native,
        rescale: false,
    }
}

#[test]
fn filter_equals_the_library_and_reads_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = blobs();
    let vol: AnyVolume = Volume::from_array(input.view()).expect("v").into();
    write_png_series(&vol, &dir.path().join("em"));
    let pipeline = dir.path().join("p.json");
    std::fs::write(
        &pipeline,
        r#"{"version":1,"steps":[{"filter":"median","size":[3,3]}]}"#,
    )
    .expect("write");
    let out = dir.path().join("smooth.tif");
    let msg = cli::filter(&FilterArgs {
        input: dir.path().join("em"),
        pipeline: Some(pipeline),
        steps: vec![r#"{"filter":"gaussian","sigma":[1,1.5,1.5]}"#.into()],
        output: output(out.clone()),
        quiet: true,
    })
    .expect("filter");
    assert!(msg.contains("median → gaussian"), "{msg}");
    let back = cli::read_stack_path(&out, true).expect("read back");
    let specs: Vec<FilterSpec> = vec![
        serde_json::from_str(r#"{"filter":"median","size":[3,3]}"#).expect("spec"),
        serde_json::from_str(r#"{"filter":"gaussian","sigma":[1,1.5,1.5]}"#).expect("spec"),
    ];
    let expected =
        apply_pipeline(&specs, input.mapv(f32::from).view(), &mut NoProgress).expect("library");
    assert_eq!(back.to_f32_array(0..4).expect("f32"), expected);

    // A float result cannot be a PNG series; the error says what to do.
    let err = cli::filter(&FilterArgs {
        input: dir.path().join("em"),
        pipeline: None,
        steps: vec![r#"{"filter":"gaussian","sigma":[1,1]}"#.into()],
        output: output(dir.path().join("pngs")),
        quiet: true,
    })
    .expect_err("f32 to png");
    assert!(
        format!("{err:#}").contains("--depth 16 --rescale"),
        "{err:#}"
    );
    let err = cli::filter(&FilterArgs {
        input: dir.path().join("em"),
        pipeline: None,
        steps: vec![r#"{"filter":"gaussian","sigma":[-1,1]}"#.into()],
        output: output(out),
        quiet: true,
    })
    .expect_err("negative sigma");
    assert!(format!("{err:#}").contains("--step 1"), "{err:#}");
}

#[test]
fn label_then_evaluate() {
    let dir = tempfile::tempdir().expect("tmp");
    let vol: AnyVolume = Volume::from_array(blobs().view()).expect("v").into();
    write_png_series(&vol, &dir.path().join("em"));
    let msg = cli::label(&LabelArgs {
        input: dir.path().join("em"),
        markers: None,
        params: PostprocessParams {
            threshold: ThresholdChoice::Otsu,
            min_size: 10,
            ..PostprocessParams::default()
        },
        output: output(dir.path().join("objects")),
        quiet: true,
    })
    .expect("label");
    assert!(msg.starts_with("2 objects"), "{msg}");
    let labels = cli::read_stack_path(&dir.path().join("objects"), true).expect("read");
    assert_eq!(labels.dtype(), emstudio_core::DType::U16);
    let ids = labels.to_label_array().expect("ids");
    assert_eq!(ids[[0, 10, 10]], 1);
    assert_eq!(ids[[3, 10, 30]], 2);
    assert_eq!(ids[[0, 0, 0]], 0);

    // Ground truth: the same boxes, the right one split in two.
    let gt = Array3::from_shape_fn((4, 24, 40), |(_, y, x)| {
        let row = (4..20).contains(&y);
        match x {
            4..=15 if row => 1u16,
            24..=29 if row => 2,
            30..=35 if row => 3,
            _ => 0,
        }
    });
    write_png_series(
        &Volume::from_array(gt.view()).expect("v").into(),
        &dir.path().join("gt"),
    );
    let json = dir.path().join("eval.json");
    let (text, out) = cli::evaluate(&EvaluateArgs {
        gt: dir.path().join("gt"),
        pred: dir.path().join("objects"),
        isbi: false,
        boundary_high: false,
        sweep: false,
        params: EvaluateParams::default(),
        json: Some(json.clone()),
        show_errors: 5,
        slices: None,
        quiet: true,
    })
    .expect("evaluate");
    assert!(text.contains("merging predictions: 1"), "{text}");
    let EvaluateOutput::Plain(e) = out else {
        panic!("plain form expected")
    };
    assert_eq!(e.errors.merges[0].pred_label, 2);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).expect("json")).expect("parse");
    assert_eq!(saved["report"]["gt_objects"], 3);

    // Marker watershed needs markers; sizes must agree.
    let err = cli::label(&marker_watershed(
        dir.path().join("em"),
        None,
        dir.path().join("x"),
    ))
    .expect_err("no markers");
    assert!(format!("{err:#}").contains("marker layer"), "{err:#}");
    let small: AnyVolume = Volume::from_array(Array3::<u8>::zeros((1, 5, 5)).view())
        .expect("v")
        .into();
    write_png_series(&small, &dir.path().join("small"));
    let err = cli::evaluate(&evaluate_args(
        dir.path().join("gt"),
        dir.path().join("small"),
    ))
    .expect_err("size mismatch");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("gt") && msg.contains("small") && msg.contains("same size"),
        "{msg}"
    );
}

#[test]
fn isbi_protocol_on_a_perfect_map_scores_one() {
    let dir = tempfile::tempdir().expect("tmp");
    // Cells separated by one-pixel membranes (label 0); the map is 255 inside cells.
    let gt = Array3::from_shape_fn((2, 20, 20), |(_, y, x)| {
        if y == 10 || x == 10 {
            0u8
        } else {
            1 + u8::from(y > 10) * 2 + u8::from(x > 10)
        }
    });
    write_png_series(
        &Volume::from_array(gt.view()).expect("v").into(),
        &dir.path().join("gt"),
    );
    let map = gt.mapv(|v| if v == 0 { 0u8 } else { 255 });
    write_png_series(
        &Volume::from_array(map.view()).expect("v").into(),
        &dir.path().join("map"),
    );
    let (text, out) = cli::evaluate(&EvaluateArgs {
        gt: dir.path().join("gt"),
        pred: dir.path().join("map"),
        isbi: true,
        boundary_high: false,
        sweep: false,
        params: EvaluateParams::default(),
        json: None,
        show_errors: 0,
        slices: Some("1".into()),
        quiet: true,
    })
    .expect("isbi");
    let EvaluateOutput::Isbi(r) = out else {
        panic!("isbi form expected")
    };
    assert_eq!(r.best_rand.scores.v_rand, 1.0, "{text}");
    assert_eq!(
        r.best_rand.scores.slices_evaluated, 1,
        "--slices 1 scores one slice"
    );
    assert!(text.contains("V_rand  1.0000"), "{text}");
}

#[test]
fn a_threshold_sweep_names_the_threshold_that_separates_the_foreground() {
    let dir = tempfile::tempdir().expect("tmp");
    let gt = Array3::from_shape_fn((2, 16, 16), |(_, y, x)| {
        u8::from((4..12).contains(&y) && x < 8)
    });
    write_png_series(
        &Volume::from_array(gt.view()).expect("v").into(),
        &dir.path().join("gt"),
    );
    // Background at 140/255 ≈ 0.549, foreground at 170/255 ≈ 0.667: any threshold in
    // 0.55–0.65 separates them; 0.5 lets the background in.
    let map = gt.mapv(|v| if v == 0 { 140u8 } else { 170 });
    write_png_series(
        &Volume::from_array(map.view()).expect("v").into(),
        &dir.path().join("map"),
    );
    let args = EvaluateArgs {
        gt: dir.path().join("gt"),
        pred: dir.path().join("map"),
        isbi: false,
        boundary_high: false,
        sweep: true,
        params: EvaluateParams::default(),
        json: None,
        show_errors: 0,
        slices: None,
        quiet: true,
    };
    let (text, out) = cli::evaluate(&args).expect("sweep");
    let EvaluateOutput::Sweep(sweep) = out else {
        panic!("sweep form expected")
    };
    assert!((sweep.best_threshold - 0.55).abs() < 1e-9, "{text}");
    assert!(text.contains("best threshold 0.55"), "{text}");
    let at = |t: f64| {
        sweep
            .thresholds
            .iter()
            .find(|r| (r.threshold - t).abs() < 1e-9)
            .expect("row")
            .scores
    };
    assert_eq!(at(0.6).jaccard, 1.0);
    assert!(
        (at(0.5).jaccard - 64.0 / 256.0).abs() < 1e-9,
        "everything is foreground at 0.5"
    );
    assert_eq!(at(0.7).jaccard, 0.0);
    let err = cli::evaluate(&EvaluateArgs { isbi: true, ..args }).expect_err("both");
    assert!(format!("{err:#}").contains("choose one"), "{err:#}");
}

#[test]
fn the_binary_reports_errors_in_one_line() {
    let exe = env!("CARGO_BIN_EXE_emstudio");
    let out = std::process::Command::new(exe)
        .args(["evaluate", "--gt", "/no/such/gt", "--pred", "/no/such/pred"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim(), "error: /no/such/gt: no such file or folder");
    // An orientation count other than 1, 4 or 8 is refused before anything is read.
    let views = std::process::Command::new(exe)
        .args([
            "infer",
            "-m",
            "m.emsmodel",
            "-i",
            "em",
            "-o",
            "p.tif",
            "--views",
            "3",
        ])
        .output()
        .expect("run");
    assert!(!views.status.success());
    let stderr = String::from_utf8_lossy(&views.stderr);
    assert!(stderr.contains("choose 1, 4 or 8"), "{stderr}");
    let list = std::process::Command::new(exe)
        .args(["filter", "--list"])
        .output()
        .expect("run");
    assert!(list.status.success());
    assert!(String::from_utf8_lossy(&list.stdout).contains(r#"{"filter":"clahe""#));
}

/// A float32 multi-page TIFF of values in [0, 1) (a probability map) in `dir/name`.
fn write_probability_map(dir: &std::path::Path, name: &str) -> PathBuf {
    let map = Array3::from_shape_fn((2, 16, 16), |(z, y, x)| {
        ((z * 7 + y * 3 + x) % 10) as f32 / 10.0
    });
    let files = emstudio_core::stack::export(
        &Volume::from_array(map.view()).expect("v").into(),
        &emstudio_core::stack::ExportOptions {
            format: ExportFormat::MultiPageTiff,
            depth: BitDepth::Native,
            rescale: false,
            base_name: "prob".into(),
        },
    )
    .expect("export");
    let path = dir.join(name);
    std::fs::write(&path, &files[0].1).expect("write");
    path
}

#[test]
fn a_probability_map_is_never_scored_as_labels() {
    let dir = tempfile::tempdir().expect("tmp");
    let prob = write_probability_map(dir.path(), "prob.tif");
    let args = evaluate_args(prob.clone(), prob.clone());
    // It used to truncate to all-zero IDs: "0 GT objects", Jaccard 1.0, Rand 1.0.
    let err = cli::evaluate(&args).expect_err("float ground truth");
    let text = format!("{err:#}");
    assert!(
        text.contains("prob.tif") && text.contains("float") && text.contains("threshold"),
        "{text}"
    );
    // As the ground truth of a sweep or the ISBI protocol, likewise.
    for (sweep, isbi) in [(true, false), (false, true)] {
        let err = cli::evaluate(&EvaluateArgs {
            sweep,
            isbi,
            ..args.clone()
        })
        .expect_err("float ground truth");
        assert!(format!("{err:#}").contains("float"), "{err:#}");
    }
    // Label markers for the watershed, too.
    let label = marker_watershed(prob.clone(), Some(prob.clone()), dir.path().join("out"));
    let err = cli::label(&label).expect_err("float markers");
    assert!(format!("{err:#}").contains("float"), "{err:#}");
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    // A pipe whose reading end is closed before the command writes: `| head` that has
    // already quit. Rust ignores SIGPIPE, so the write fails with EPIPE; `println!` panicked.
    let run = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        std::process::Command::new(env!("CARGO_BIN_EXE_emstudio"))
            .args(args)
            .stdout(writer)
            .output()
            .expect("run")
    };
    let out = run(&["filter", "--list"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = tempfile::tempdir().expect("tmp");
    let gt = dir.path().join("gt");
    write_png_series(&Volume::from_array(blobs().view()).expect("v").into(), &gt);
    let gt = gt.to_string_lossy().into_owned();
    let out = run(&["evaluate", "--gt", &gt, "--pred", &gt, "-q"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn infer_refuses_batch_and_tile_sizes_out_of_range_by_name() {
    for (flag, value, says) in [
        ("--batch", "1000000", "the batch is 1 to 256"),
        ("--batch", "0", "the batch is 1 to 256"),
        ("--tile", "0", "the tile side is 8 to 4096"),
        ("--tile", "100000", "the tile side is 8 to 4096"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_emstudio"))
            .args([
                "infer",
                "-m",
                "m.emsmodel",
                "-i",
                "em",
                "-o",
                "p.tif",
                flag,
                value,
            ])
            .output()
            .expect("run");
        assert!(!out.status.success(), "{flag} {value} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says) && stderr.contains(flag), "{stderr}");
    }
}

#[test]
fn label_runs_a_watershed_in_blocks_and_refuses_blocks_it_cannot_use() {
    let dir = tempfile::tempdir().expect("tmp");
    let prob = write_probability_map(dir.path(), "prob.tif");
    let prob = prob.to_string_lossy().into_owned();
    let run = |extra: &[&str]| {
        let out_dir = dir.path().join(format!("out{}", extra.len()));
        let out_dir = out_dir.to_string_lossy().into_owned();
        let mut args = vec!["label", "-i", &prob, "-o", &out_dir, "-q"];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_emstudio"))
            .args(&args)
            .output()
            .expect("run")
    };
    // Two blocks of one slice each, reading the other slice as their overlap.
    let out = run(&[
        "--method",
        "distance",
        "--min-distance",
        "1",
        "--block-depth",
        "1",
        "--block-overlap",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("out8").read_dir().expect("output").count() >= 2);
    // Components need no blocks; blocks that do not overlap cannot be joined.
    let out = run(&["--block-depth", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--block-depth goes with"));
    let out = run(&[
        "--method",
        "distance",
        "--block-depth",
        "1",
        "--block-overlap",
        "0",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("overlap"), "{stderr}");
}
