//! Benchmarks of the filters on real EM images.
//!
//! `cargo run --release -p emstudio-core --example bench_filters -- /work/shared/data`
//!
//! Loads flyem-medulla-fib (250³ 8-bit) and isbi2012 (30×512×512 8-bit), runs each kernel
//! several times (single-threaded) and prints one JSON line per kernel with the median wall
//! time: `{"kernel":"<name>","impl":"emstudio","ms":<median>}`. The references are timed on
//! the same inputs with the same kernel names by `scripts/golden/bench_filters.py`
//! (scipy.ndimage, scikit-image, OpenCV). Sanity values go to stderr.

use emstudio_core::filters::median::median_u8;
use emstudio_core::filters::{apply_filter, FilterSpec};
use emstudio_core::progress::NoProgress;
use emstudio_core::stack::{is_stack_file_name, read_stack, Limits};
use emstudio_core::AnyVolume;
use ndarray::{Array3, ArrayView3};
use std::path::Path;
use std::time::Instant;

fn load_u8(dir: &Path) -> Array3<u8> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("data folder") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_stack_file_name(&name) {
            files.push((name, std::fs::read(entry.path()).expect("read slice")));
        }
    }
    match read_stack(files, &Limits::default()).expect("decode stack") {
        AnyVolume::U8(v) => v.to_array().expect("dense array"),
        other => panic!("expected 8-bit images, got {}", other.dtype()),
    }
}

/// Median milliseconds of `repeats` runs of `f` (after one warm-up run).
fn time<R>(repeats: usize, mut f: impl FnMut() -> R) -> f64 {
    std::hint::black_box(f());
    let mut ms: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[repeats / 2]
}

fn report(kernel: &str, ms: f64) {
    println!("{{\"kernel\":\"{kernel}\",\"impl\":\"emstudio\",\"ms\":{ms:.3}}}");
}

fn spec(json: &str) -> FilterSpec {
    serde_json::from_str(json).expect("valid spec")
}

fn bench_spec(kernel: &str, repeats: usize, json: &str, v: ArrayView3<'_, f32>) {
    let s = spec(json);
    let ms = time(repeats, || {
        apply_filter(&s, v, &mut NoProgress).expect("filter")
    });
    let out = apply_filter(&s, v, &mut NoProgress).expect("filter");
    eprintln!("{kernel}: mean {:.4}", out.mean().unwrap_or(f32::NAN));
    report(kernel, ms);
}

fn main() {
    let data = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/work/shared/data".to_string());
    let data = Path::new(&data);
    let only: Option<String> = std::env::args().nth(2);
    let want = |k: &str| only.as_deref().is_none_or(|o| k.contains(o));
    let flyem = load_u8(&data.join("flyem-medulla-fib/image"));
    let isbi = load_u8(&data.join("isbi2012/image"));
    let flyem_f = flyem.mapv(f32::from);
    let isbi_f = isbi.mapv(f32::from);
    let flyem_bin = flyem.mapv(|v| if v > 120 { 1.0f32 } else { 0.0 });

    let f = flyem_f.view();
    let i = isbi_f.view();
    let cases: Vec<(&str, usize, &str, ArrayView3<'_, f32>)> = vec![
        (
            "gaussian_3d_s2",
            5,
            r#"{"filter":"gaussian","sigma":[2,2,2]}"#,
            f,
        ),
        (
            "gaussian_3d_s1_aniso",
            5,
            r#"{"filter":"gaussian","sigma":[0.5,1,1]}"#,
            f,
        ),
        (
            "gaussian_2d_isbi",
            5,
            r#"{"filter":"gaussian","sigma":[2,2]}"#,
            i,
        ),
        (
            "median_3d_3_f32",
            3,
            r#"{"filter":"median","size":[3,3,3]}"#,
            f,
        ),
        (
            "median_2d_isbi_5",
            3,
            r#"{"filter":"median","size":[5,5]}"#,
            i,
        ),
        (
            "bilateral_2d_isbi",
            3,
            r#"{"filter":"bilateral","sigma_spatial":3,"sigma_range":30}"#,
            i,
        ),
        (
            "clahe_2d_isbi",
            3,
            r#"{"filter":"clahe","block_size":[127,127],"bins":256,"max_slope":1.5}"#,
            i,
        ),
        (
            "unsharp_3d",
            5,
            r#"{"filter":"unsharp_mask","radius":[2,2,2],"amount":1}"#,
            f,
        ),
        (
            "canny_2d_isbi",
            3,
            r#"{"filter":"canny","sigma":2,"low_threshold":10,"high_threshold":30}"#,
            i,
        ),
        (
            "normalize_pct_3d",
            5,
            r#"{"filter":"normalize","low_percentile":1,"high_percentile":99}"#,
            f,
        ),
        ("otsu_3d", 5, r#"{"filter":"otsu"}"#, f),
        (
            "grey_erode_3d_ball1",
            5,
            r#"{"filter":"morphology","op":"erode","mode":"grey","footprint":"ball","radius":[1,1,1]}"#,
            f,
        ),
        (
            "grey_dilate_3d_ball2",
            5,
            r#"{"filter":"morphology","op":"dilate","mode":"grey","footprint":"ball","radius":[2,2,2]}"#,
            f,
        ),
        (
            "grey_open_3d_box1",
            5,
            r#"{"filter":"morphology","op":"open","mode":"grey","footprint":"box","radius":[1,1,1]}"#,
            f,
        ),
        (
            "binary_open_3d_ball1",
            5,
            r#"{"filter":"morphology","op":"open","mode":"binary","footprint":"ball","radius":[1,1,1]}"#,
            flyem_bin.view(),
        ),
        (
            "binary_erode_3d_box1",
            5,
            r#"{"filter":"morphology","op":"erode","mode":"binary","footprint":"box","radius":[1,1,1]}"#,
            flyem_bin.view(),
        ),
    ];

    // The u8 entry point (what the worker calls for 8-bit volumes).
    if want("median_3d_3") {
        let ms = time(3, || {
            median_u8(flyem.view(), [3, 3, 3], &mut NoProgress).expect("median")
        });
        report("median_3d_3", ms);
    }
    for (kernel, repeats, json, v) in cases {
        if want(kernel) {
            bench_spec(kernel, repeats, json, v);
        }
    }
}
