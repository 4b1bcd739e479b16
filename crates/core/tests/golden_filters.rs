//! Golden tests for `emstudio_core::filters` against scipy.ndimage, scikit-image and OpenCV.
//!
//! Fixtures: `tests/golden/filters/` (inputs, expected outputs and `cases.json`, written by
//! `scripts/golden/gen_filters.py`). Each case names the `FilterSpec` JSON it runs, so the
//! JSON form is exercised too. Comparisons:
//! - `exact`: integer-valued results (median, morphology, thresholds, Otsu on integers);
//! - `close`: `|ours - ref| <= atol + rtol·|ref|`. Gaussian/unsharp: rtol 1e-5 (we accumulate
//!   in f32, scipy in f64); bilateral: atol 2e-4 on 0–255 data (OpenCV's SIMD order and FMA);
//!   CLAHE: atol 1e-4 on 0–255 (the integer pipeline is ported step by step; we measure 0);
//!   normalise/invert: about 1 ulp;
//! - `agreement`: Canny masks, fraction of equal pixels ≥ `min_agreement` (0.999);
//! - `otsu_float`: threshold within one histogram bin of skimage's, and the masks differ only
//!   for values between the two thresholds.
//!
//! Run with `--nocapture` to see the measured error of every case.

use std::path::{Path, PathBuf};

use emstudio_core::filters::{apply_filter, intensity, FilterSpec, Pipeline};
use emstudio_core::progress::NoProgress;
use ndarray::{Array3, Axis};
use ndarray_npy::read_npy;
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("tests/golden/filters")
}

fn load(file: &str, dtype: &str) -> Array3<f32> {
    let path = dir().join(file);
    match dtype {
        "uint8" => read_npy::<_, Array3<u8>>(&path)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .mapv(f32::from),
        "float32" => read_npy::<_, Array3<f32>>(&path).unwrap_or_else(|e| panic!("{file}: {e}")),
        other => panic!("{file}: unsupported dtype {other}"),
    }
}

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(dir().join("cases.json"))
        .expect("cases.json (run scripts/golden/gen_filters.py)");
    let v: Value = serde_json::from_str(&text).expect("cases.json is JSON");
    v["cases"].as_array().expect("cases array").clone()
}

/// The larger of `worst` and `err`, where a NaN wins (`f64::max` returns the other operand, so
/// a NaN error would never raise the maximum).
fn nan_max(worst: f64, err: f64) -> f64 {
    if err.is_nan() || err > worst {
        err
    } else {
        worst
    }
}

#[test]
fn nan_max_keeps_a_nan() {
    assert_eq!([1.0, 3.0, 2.0].into_iter().fold(0.0, nan_max), 3.0);
    for nan_at in 0..3 {
        let mut errs = [1.0, 3.0, 2.0];
        errs[nan_at] = f64::NAN;
        let worst = errs.into_iter().fold(0.0, nan_max);
        assert!(worst.is_nan(), "NaN at {nan_at}: {worst}");
        let within = worst <= 1.0;
        assert!(!within, "a NaN error passes the tolerance");
    }
}

fn run_case(c: &Value) -> Result<String, String> {
    let name = c["name"].as_str().unwrap_or("?");
    let input = load(
        c["input"].as_str().unwrap_or_default(),
        c["input_dtype"].as_str().unwrap_or_default(),
    );
    let expected = load(
        c["expected"].as_str().unwrap_or_default(),
        c["expected_dtype"].as_str().unwrap_or_default(),
    );
    let spec: FilterSpec =
        serde_json::from_value(c["spec"].clone()).map_err(|e| format!("{name}: spec: {e}"))?;
    let got =
        apply_filter(&spec, input.view(), &mut NoProgress).map_err(|e| format!("{name}: {e}"))?;
    if got.dim() != expected.dim() {
        return Err(format!(
            "{name}: shape {:?} vs {:?}",
            got.dim(),
            expected.dim()
        ));
    }
    let n = got.len();
    match c["compare"].as_str().unwrap_or_default() {
        "exact" => {
            let bad = got.iter().zip(&expected).filter(|(a, b)| a != b).count();
            if let Some(t) = c.get("threshold").and_then(Value::as_f64) {
                let ours = intensity::otsu_threshold(input.as_slice().unwrap_or_default(), 256);
                if f64::from(ours) != t {
                    return Err(format!("{name}: Otsu threshold {ours} vs skimage {t}"));
                }
            }
            if bad > 0 {
                return Err(format!("{name}: {bad} of {n} values differ"));
            }
            Ok(format!("{name}: exact ({n} values)"))
        }
        "close" => {
            let rtol = c["rtol"].as_f64().unwrap_or(0.0);
            let atol = c["atol"].as_f64().unwrap_or(0.0);
            let mut worst = 0f64;
            let mut max_abs = 0f64;
            for (a, b) in got.iter().zip(&expected) {
                let (a, b) = (f64::from(*a), f64::from(*b));
                let err = (a - b).abs();
                max_abs = nan_max(max_abs, err);
                worst = nan_max(worst, err / (atol + rtol * b.abs()));
            }
            if worst.is_nan() || worst > 1.0 {
                return Err(format!(
                    "{name}: max |err| {max_abs:e} exceeds atol {atol:e} + rtol {rtol:e}·|ref|"
                ));
            }
            Ok(format!(
                "{name}: max |err| {max_abs:.3e} ({:.0}% of tolerance)",
                worst * 100.0
            ))
        }
        "agreement" => {
            let floor = c["min_agreement"].as_f64().unwrap_or(1.0);
            let same = got.iter().zip(&expected).filter(|(a, b)| a == b).count();
            let frac = same as f64 / n.max(1) as f64;
            if frac < floor {
                return Err(format!("{name}: agreement {frac:.5} below {floor}"));
            }
            let edges = expected.iter().filter(|&&v| v != 0.0).count();
            Ok(format!(
                "{name}: agreement {:.4}% ({} of {n} differ; {edges} reference edge pixels)",
                frac * 100.0,
                n - same
            ))
        }
        "otsu_float" => {
            let t_ref = c["threshold"].as_f64().unwrap_or(f64::NAN);
            let width = c["bin_width"].as_f64().unwrap_or(0.0);
            let ours = f64::from(intensity::otsu_threshold(
                input.as_slice().unwrap_or_default(),
                256,
            ));
            let off = (ours - t_ref).abs();
            if off.is_nan() || off > width * 1.0001 {
                return Err(format!(
                    "{name}: threshold {ours} vs {t_ref} (bin width {width})"
                ));
            }
            let (lo, hi) = (ours.min(t_ref), ours.max(t_ref));
            for ((a, b), x) in got.iter().zip(&expected).zip(&input) {
                let x = f64::from(*x);
                if a != b && !(x >= lo && x <= hi) {
                    return Err(format!(
                        "{name}: mask differs at value {x} outside [{lo}, {hi}]"
                    ));
                }
            }
            Ok(format!(
                "{name}: threshold {ours} vs {t_ref} (|Δ| {:.3} bins)",
                (ours - t_ref).abs() / width
            ))
        }
        other => Err(format!("{name}: unknown comparison {other}")),
    }
}

#[test]
fn golden_cases() {
    let cases = cases();
    assert!(
        cases.len() >= 60,
        "expected the full fixture set, got {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for c in &cases {
        match run_case(c) {
            Ok(line) => println!("ok   {line}"),
            Err(e) => {
                println!("FAIL {e}");
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn preview_matches_volume_for_per_slice_specs() {
    for c in cases() {
        let spec: FilterSpec = serde_json::from_value(c["spec"].clone()).expect("spec");
        if spec.scope() == emstudio_core::filters::Scope::Volume {
            continue;
        }
        let input = load(
            c["input"].as_str().unwrap_or_default(),
            c["input_dtype"].as_str().unwrap_or_default(),
        );
        let whole = apply_filter(&spec, input.view(), &mut NoProgress).expect("volume");
        let z = input.dim().0 - 1;
        let one = spec
            .apply_2d(input.index_axis(Axis(0), z))
            .expect("preview");
        assert_eq!(one, whole.index_axis(Axis(0), z), "{}", c["name"]);
    }
}

#[test]
fn all_fixture_specs_form_a_pipeline_that_roundtrips() {
    let steps: Vec<FilterSpec> = cases()
        .iter()
        .map(|c| serde_json::from_value(c["spec"].clone()).expect("spec"))
        .collect();
    let p = Pipeline::new(steps);
    let back = Pipeline::from_json(&p.to_json()).expect("roundtrip");
    assert_eq!(back, p);
}

/// Property tests: results that must hold for any input.
mod properties {
    use super::*;
    use emstudio_core::filters::median::{median_u16, median_u8};
    use emstudio_core::filters::{
        GaussianParams, MedianParams, MorphMode, MorphOp, MorphologyParams,
    };
    use proptest::prelude::*;

    fn volume() -> impl Strategy<Value = Array3<u8>> {
        (1usize..5, 1usize..7, 1usize..9).prop_flat_map(|(z, y, x)| {
            proptest::collection::vec(any::<u8>(), z * y * x)
                .prop_map(move |v| Array3::from_shape_vec((z, y, x), v).expect("sized"))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 64,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn median_paths_agree(v in volume(), sz in 1usize..4, sy in 1usize..5, sx in 1usize..6) {
            let size = [sz, sy, sx];
            let a = median_u8(v.view(), size, &mut NoProgress).expect("u8");
            let b = median_u16(v.mapv(u16::from).view(), size, &mut NoProgress).expect("u16");
            prop_assert_eq!(a.mapv(u16::from), b);
            let f = apply_filter(
                &FilterSpec::Median(MedianParams { size: size.to_vec() }),
                v.mapv(|x| f32::from(x) * 0.5 + 0.25).view(),
                &mut NoProgress,
            ).expect("f32");
            prop_assert_eq!(f, a.mapv(|x| f32::from(x) * 0.5 + 0.25));
        }

        #[test]
        fn typed_morphology_matches_f32(v in volume(), r in 0usize..3, binary in any::<bool>(), op in 0usize..4) {
            let params = MorphologyParams {
                op: [MorphOp::Erode, MorphOp::Dilate, MorphOp::Open, MorphOp::Close][op],
                mode: if binary { MorphMode::Binary } else { MorphMode::Grey },
                footprint: emstudio_core::filters::FootprintShape::Cross,
                radius: vec![r, r + 1, r],
            };
            let typed = emstudio_core::filters::morphology::morphology(v.view(), &params, &mut NoProgress).expect("u8");
            let f = apply_filter(&FilterSpec::Morphology(params), v.mapv(f32::from).view(), &mut NoProgress).expect("f32");
            prop_assert_eq!(typed.mapv(f32::from), f);
        }

        #[test]
        fn gaussian_preserves_range_and_mean_of_constant(v in volume(), s in 0.0f32..3.0) {
            let f = v.mapv(f32::from);
            let out = apply_filter(
                &FilterSpec::Gaussian(GaussianParams { sigma: vec![s, s, s] }),
                f.view(),
                &mut NoProgress,
            ).expect("gaussian");
            let (lo, hi) = f.iter().fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            for &x in &out {
                prop_assert!(x >= lo - 1e-3 && x <= hi + 1e-3);
            }
        }

        #[test]
        fn grey_opening_is_below_and_closing_above(v in volume(), r in 0usize..3) {
            let f = v.mapv(f32::from);
            let run = |op| apply_filter(
                &FilterSpec::Morphology(MorphologyParams {
                    op,
                    mode: MorphMode::Grey,
                    footprint: emstudio_core::filters::FootprintShape::Ball,
                    radius: vec![r, r, r],
                }),
                f.view(),
                &mut NoProgress,
            ).expect("morph");
            let open = run(MorphOp::Open);
            let close = run(MorphOp::Close);
            for ((o, c), x) in open.iter().zip(&close).zip(&f) {
                prop_assert!(o <= x && x <= c);
            }
            // Idempotence of opening.
            let open2 = apply_filter(
                &FilterSpec::Morphology(MorphologyParams {
                    op: MorphOp::Open,
                    mode: MorphMode::Grey,
                    footprint: emstudio_core::filters::FootprintShape::Ball,
                    radius: vec![r, r, r],
                }),
                open.view(),
                &mut NoProgress,
            ).expect("morph");
            prop_assert_eq!(open2, open);
        }
    }
}
