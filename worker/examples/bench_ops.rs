//! Native timings of the worker's operations, for the wasm/native ratios in BENCHMARKS.md.
//!
//! `cargo run --release -p emstudio-worker --example bench_ops -- /work/shared/data`
//!
//! Runs exactly what the browser worker runs for the Filters, Postprocess and Evaluate panels
//! (`emstudio_worker::compute`, same layer conversions) on flyem-medulla-fib (250³) and prints
//! one JSON line per operation: `{"op":"<name>","impl":"native","ms":<median of 3>}`.
//! `tests/e2e/bench_ops.mjs` times the same operations in Chromium's worker (wasm) by clicking
//! through the panels, with the same names.

use emstudio_core::labels::postprocess::{LabelMethod, PostprocessParams, ThresholdChoice};
use emstudio_core::labels::watershed::DistanceWatershedParams;
use emstudio_core::metrics::EvaluateParams;
use emstudio_core::neighborhood::Connectivity3;
use emstudio_core::progress::NoProgress;
use emstudio_core::stack::{is_stack_file_name, read_stack, Limits};
use emstudio_protocol::{LayerId, LayerKind};
use emstudio_worker::compute::{apply_filters, evaluate_layers, parse_pipeline, postprocess_layer};
use emstudio_worker::workspace::Workspace;
use std::path::Path;
use std::time::Instant;

const RUNS: usize = 3;

fn load(ws: &mut Workspace, dir: &Path, kind: LayerKind) -> LayerId {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("data folder") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_stack_file_name(&name) {
            files.push((name, std::fs::read(entry.path()).expect("read slice")));
        }
    }
    let v = read_stack(files, &Limits::default()).expect("decode stack");
    ws.add(&dir.display().to_string(), kind, v).expect("add").id
}

fn median_ms(mut f: impl FnMut()) -> f64 {
    let mut ms: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[RUNS / 2]
}

fn report(op: &str, ms: f64) {
    println!("{{\"op\":\"{op}\",\"impl\":\"native\",\"ms\":{ms:.1}}}");
}

/// The operations, shared names with `bench_ops.mjs`.
const FILTERS: [(&str, &str); 3] = [
    (
        "gaussian_3d_s2",
        r#"[{"filter":"gaussian","sigma":[2,2,2]}]"#,
    ),
    ("median_3d_3", r#"[{"filter":"median","size":[3,3,3]}]"#),
    ("clahe_2d", r#"[{"filter":"clahe","block_size":[127,127]}]"#),
];

fn main() {
    let data = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data".into());
    let flyem = Path::new(&data).join("flyem-medulla-fib");
    let mut ws = Workspace::default();
    let image = load(&mut ws, &flyem.join("image"), LayerKind::Image);
    let gt = load(&mut ws, &flyem.join("label"), LayerKind::Label);

    for (op, json) in FILTERS {
        let pipeline = parse_pipeline(json).expect("valid pipeline");
        report(
            op,
            median_ms(|| {
                std::hint::black_box(
                    apply_filters(&ws, image, pipeline.clone(), &mut NoProgress).expect("filter"),
                );
            }),
        );
    }
    let otsu_cc = PostprocessParams {
        threshold: ThresholdChoice::Otsu,
        ..PostprocessParams::default()
    };
    let mut objects = None;
    report(
        "label_otsu_cc26",
        median_ms(|| {
            objects = Some(
                postprocess_layer(&ws, image, None, &otsu_cc, &mut NoProgress)
                    .expect("label")
                    .0,
            );
        }),
    );
    let distance = PostprocessParams {
        threshold: ThresholdChoice::Otsu,
        method: LabelMethod::DistanceWatershed(DistanceWatershedParams {
            min_distance: 8,
            connectivity: Connectivity3::C6,
            use_voxel_size: true,
        }),
        min_size: 500,
        ..PostprocessParams::default()
    };
    report(
        "label_otsu_distance_ws",
        median_ms(|| {
            std::hint::black_box(
                postprocess_layer(&ws, image, None, &distance, &mut NoProgress).expect("label"),
            );
        }),
    );
    let pred = ws
        .add(
            "objects",
            LayerKind::Label,
            objects.expect("labelled at least once"),
        )
        .expect("add")
        .id;
    report(
        "evaluate_gt_vs_otsu_cc",
        median_ms(|| {
            std::hint::black_box(
                evaluate_layers(&ws, gt, pred, &EvaluateParams::default(), &mut NoProgress)
                    .expect("evaluate"),
            );
        }),
    );
}
