//! Golden tests of `distance` (EDT) and `labels::watershed` against scipy, the `edt` package
//! and scikit-image, on fixtures written by `scripts/golden/gen_watershed.py` (see its
//! docstring for the file layout), plus property tests and edge cases.
//!
//! Tolerances: integer outputs (watershed labels, peak coordinates) must match exactly.
//! Binary EDT must match scipy's `float64` result rounded to `f32` within 1e-6 relative: with
//! integer voxel sizes it is in fact bit-exact (asserted too), with fractional ones the `f64`
//! sums may differ in the last bit. Per-label EDT is compared with the `edt` package's
//! `float32` output within 1e-5 relative, since `edt` accumulates in `float32` (about 1e-7
//! relative error per operation) while we accumulate in `f64`.
#![cfg(not(target_arch = "wasm32"))]

use emstudio_core::distance::{edt_2d, edt_3d, edt_labels_2d, edt_labels_3d};
use emstudio_core::labels::watershed::{
    distance_watershed, distance_watershed_2d, peak_local_max_2d, peak_local_max_3d,
    peak_markers_3d, watershed_2d, watershed_3d, WatershedError,
};
use emstudio_core::neighborhood::{Connectivity2, Connectivity3};
use emstudio_core::progress::NoProgress;
use ndarray::{Array2, Array3, ArrayD, Ix2, Ix3};
use ndarray_npy::read_npy;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("tests/golden/watershed")
}

/// Case names (`<kind>_<name>`) of one kind, from the files present.
fn cases(kind: &str) -> Vec<String> {
    let prefix = format!("{kind}_");
    let mut set = BTreeSet::new();
    for e in std::fs::read_dir(dir()).expect("fixture dir exists (run gen_watershed.py)") {
        let name = e
            .expect("dir entry")
            .file_name()
            .to_string_lossy()
            .to_string();
        if let Some(case) = name.strip_suffix(".npy").and_then(|n| n.split_once('.')) {
            if case.0.starts_with(&prefix) {
                set.insert(case.0.to_string());
            }
        }
    }
    assert!(!set.is_empty(), "no fixtures for {kind}");
    set.into_iter().collect()
}

fn path(case: &str, part: &str) -> PathBuf {
    dir().join(format!("{case}.{part}.npy"))
}

fn has(case: &str, part: &str) -> bool {
    path(case, part).exists()
}

/// Reads an unsigned integer array of any stored width as u32.
fn read_u32(case: &str, part: &str) -> ArrayD<u32> {
    let p = path(case, part);
    if let Ok(a) = read_npy::<_, ArrayD<u8>>(&p) {
        return a.mapv(u32::from);
    }
    if let Ok(a) = read_npy::<_, ArrayD<u16>>(&p) {
        return a.mapv(u32::from);
    }
    if let Ok(a) = read_npy::<_, ArrayD<u32>>(&p) {
        return a;
    }
    panic!("{} is not u8/u16/u32", p.display());
}

fn read_f32(case: &str, part: &str) -> ArrayD<f32> {
    read_npy(path(case, part)).unwrap_or_else(|e| panic!("{case}.{part}: {e}"))
}

fn read_f64(case: &str, part: &str) -> Vec<f64> {
    let a: ArrayD<f64> =
        read_npy(path(case, part)).unwrap_or_else(|e| panic!("{case}.{part}: {e}"));
    a.iter().copied().collect()
}

fn read_i64(case: &str, part: &str) -> Vec<i64> {
    let a: ArrayD<i64> =
        read_npy(path(case, part)).unwrap_or_else(|e| panic!("{case}.{part}: {e}"));
    a.iter().copied().collect()
}

fn d3<T: Clone>(a: ArrayD<T>) -> Array3<T> {
    a.into_dimensionality::<Ix3>().expect("3D fixture")
}

fn d2<T: Clone>(a: ArrayD<T>) -> Array2<T> {
    a.into_dimensionality::<Ix2>().expect("2D fixture")
}

fn conn3(c: i64) -> Connectivity3 {
    match c {
        1 => Connectivity3::C6,
        2 => Connectivity3::C18,
        3 => Connectivity3::C26,
        _ => panic!("connectivity {c}"),
    }
}

fn conn2(c: i64) -> Connectivity2 {
    match c {
        1 => Connectivity2::C4,
        2 => Connectivity2::C8,
        _ => panic!("connectivity {c}"),
    }
}

fn integer_sampling(s: &[f64]) -> bool {
    s.iter().all(|v| v.fract() == 0.0)
}

fn assert_close(case: &str, got: &[f32], want: &[f32], rel: f32, exact: bool) {
    assert_eq!(got.len(), want.len(), "{case}: length");
    let mut worst = 0f32;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if g == w {
            continue;
        }
        assert!(
            !exact,
            "{case}: voxel {i}: got {g}, want {w} (expected bit-exact)"
        );
        let err = (g - w).abs() / w.abs().max(1e-30);
        assert!(
            err <= rel,
            "{case}: voxel {i}: got {g}, want {w} (rel err {err})"
        );
        worst = worst.max(err);
    }
    eprintln!("{case}: ok (worst rel err {worst:e})");
}

#[test]
fn edt_binary_3d_matches_scipy() {
    for case in cases("edt3d") {
        let input = d3(read_u32(&case, "input"));
        let s = read_f64(&case, "sampling");
        let want = d3(read_f32(&case, "expected"));
        let got = edt_3d(input.view(), [s[0], s[1], s[2]], &mut NoProgress).expect("valid");
        assert_eq!(got.dim(), want.dim(), "{case}");
        let exact = integer_sampling(&s);
        assert_close(
            &case,
            &got.iter().copied().collect::<Vec<_>>(),
            &want.iter().copied().collect::<Vec<_>>(),
            1e-6,
            exact,
        );
    }
}

#[test]
fn edt_binary_2d_matches_scipy() {
    for case in cases("edt2d") {
        let input = d2(read_u32(&case, "input"));
        let s = read_f64(&case, "sampling");
        let want = d2(read_f32(&case, "expected"));
        let got = edt_2d(input.view(), [s[0], s[1]]).expect("valid");
        assert_eq!(got.dim(), want.dim(), "{case}");
        let exact = integer_sampling(&s);
        assert_close(
            &case,
            &got.iter().copied().collect::<Vec<_>>(),
            &want.iter().copied().collect::<Vec<_>>(),
            1e-6,
            exact,
        );
    }
}

#[test]
fn edt_labels_3d_matches_edt_package() {
    for case in cases("edtlab3d") {
        let labels = d3(read_u32(&case, "labels"));
        let s = read_f64(&case, "sampling");
        let want = d3(read_f32(&case, "expected"));
        let got = edt_labels_3d(labels.view(), [s[0], s[1], s[2]], &mut NoProgress).expect("valid");
        assert_eq!(got.dim(), want.dim(), "{case}");
        assert_close(
            &case,
            &got.iter().copied().collect::<Vec<_>>(),
            &want.iter().copied().collect::<Vec<_>>(),
            1e-5,
            false,
        );
    }
}

#[test]
fn edt_labels_2d_matches_edt_package() {
    for case in cases("edtlab2d") {
        let labels = d2(read_u32(&case, "labels"));
        let s = read_f64(&case, "sampling");
        let want = d2(read_f32(&case, "expected"));
        let got = edt_labels_2d(labels.view(), [s[0], s[1]]).expect("valid");
        assert_close(
            &case,
            &got.iter().copied().collect::<Vec<_>>(),
            &want.iter().copied().collect::<Vec<_>>(),
            1e-5,
            false,
        );
    }
}

#[test]
fn watershed_3d_matches_skimage() {
    for case in cases("ws3d") {
        let elev = d3(read_f32(&case, "elevation"));
        let markers = d3(read_u32(&case, "markers"));
        let mask = has(&case, "mask").then(|| d3(read_u32(&case, "mask")).mapv(|v| v != 0));
        let c = read_i64(&case, "params")[0];
        let want = d3(read_u32(&case, "expected"));
        let got = watershed_3d(
            elev.view(),
            markers.view(),
            mask.as_ref().map(|m| m.view()),
            conn3(c),
            &mut NoProgress,
        )
        .expect("valid");
        let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(diff, 0, "{case}: {diff} voxels differ");
    }
}

#[test]
fn watershed_2d_matches_skimage() {
    for case in cases("ws2d") {
        let elev = d2(read_f32(&case, "elevation"));
        let markers = d2(read_u32(&case, "markers"));
        let mask = has(&case, "mask").then(|| d2(read_u32(&case, "mask")).mapv(|v| v != 0));
        let c = read_i64(&case, "params")[0];
        let want = d2(read_u32(&case, "expected"));
        let got = watershed_2d(
            elev.view(),
            markers.view(),
            mask.as_ref().map(|m| m.view()),
            conn2(c),
        )
        .expect("valid");
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn peak_local_max_3d_matches_skimage() {
    for case in cases("plm3d") {
        let image = d3(read_f32(&case, "image"));
        let labels = has(&case, "labels").then(|| d3(read_u32(&case, "labels")));
        let d = read_i64(&case, "params")[0] as usize;
        let want = d2(read_u32(&case, "expected"));
        let got = peak_local_max_3d(
            image.view(),
            d,
            labels.as_ref().map(|l| l.view()),
            &mut NoProgress,
        )
        .expect("valid");
        let want: Vec<[usize; 3]> = want
            .rows()
            .into_iter()
            .map(|r| [r[0] as usize, r[1] as usize, r[2] as usize])
            .collect();
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn peak_local_max_2d_matches_skimage() {
    for case in cases("plm2d") {
        let image = d2(read_f32(&case, "image"));
        let labels = has(&case, "labels").then(|| d2(read_u32(&case, "labels")));
        let d = read_i64(&case, "params")[0] as usize;
        let want = d2(read_u32(&case, "expected"));
        let got =
            peak_local_max_2d(image.view(), d, labels.as_ref().map(|l| l.view())).expect("valid");
        let want: Vec<[usize; 2]> = want
            .rows()
            .into_iter()
            .map(|r| [r[0] as usize, r[1] as usize])
            .collect();
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn distance_watershed_3d_matches_skimage_pipeline() {
    for case in cases("dws3d") {
        let mask = d3(read_u32(&case, "mask"));
        let s = read_f64(&case, "sampling");
        let p = read_i64(&case, "params");
        let want = d3(read_u32(&case, "expected"));
        let got = distance_watershed(
            mask.view(),
            [s[0], s[1], s[2]],
            p[0] as usize,
            conn3(p[1]),
            &mut NoProgress,
        )
        .expect("valid");
        let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(diff, 0, "{case}: {diff} voxels differ");
    }
}

#[test]
fn distance_watershed_2d_matches_skimage_pipeline() {
    for case in cases("dws2d") {
        let mask = d2(read_u32(&case, "mask"));
        let s = read_f64(&case, "sampling");
        let p = read_i64(&case, "params");
        let want = d2(read_u32(&case, "expected"));
        let got = distance_watershed_2d(mask.view(), [s[0], s[1]], p[0] as usize, conn2(p[1]))
            .expect("valid");
        assert_eq!(got, want, "{case}");
    }
}

// ---- edge cases ----

#[test]
fn empty_and_tiny_inputs() {
    for dims in [(0, 0, 0), (0, 4, 5), (3, 0, 2), (1, 1, 1)] {
        let e = Array3::<f32>::zeros(dims);
        let m = Array3::<u32>::zeros(dims);
        assert_eq!(
            watershed_3d(
                e.view(),
                m.view(),
                None,
                Connectivity3::C26,
                &mut NoProgress
            )
            .expect("ok")
            .dim(),
            dims
        );
        assert!(peak_local_max_3d(e.view(), 3, None, &mut NoProgress)
            .expect("ok")
            .is_empty());
        assert_eq!(
            distance_watershed(m.view(), [1.0; 3], 2, Connectivity3::C6, &mut NoProgress)
                .expect("ok")
                .dim(),
            dims
        );
        assert_eq!(
            edt_3d(m.view(), [1.0; 3], &mut NoProgress)
                .expect("ok")
                .dim(),
            dims
        );
    }
    // A single seeded voxel floods nothing else; an unseeded voxel stays 0.
    let one = Array3::<u32>::from_elem((1, 1, 1), 9);
    let e = Array3::<f32>::zeros((1, 1, 1));
    assert_eq!(
        watershed_3d(
            e.view(),
            one.view(),
            None,
            Connectivity3::C6,
            &mut NoProgress
        )
        .expect("ok")[[0, 0, 0]],
        9
    );
    // Flat image, no markers: all zero.
    let flat = Array3::<f32>::from_elem((3, 4, 5), 1.0);
    let none = Array3::<u32>::zeros((3, 4, 5));
    assert!(watershed_3d(
        flat.view(),
        none.view(),
        None,
        Connectivity3::C6,
        &mut NoProgress
    )
    .expect("ok")
    .iter()
    .all(|&v| v == 0));
    // Whole-volume mask without background (scipy's no-zero EDT) still works.
    let full = Array3::<u8>::ones((4, 5, 6));
    let ws = distance_watershed(full.view(), [1.0; 3], 1, Connectivity3::C6, &mut NoProgress)
        .expect("ok");
    assert!(ws.iter().all(|&v| v != 0));
}

#[test]
fn shape_mismatch_is_an_error() {
    let e = Array3::<f32>::zeros((2, 3, 4));
    let m = Array3::<u32>::zeros((2, 3, 5));
    assert!(matches!(
        watershed_3d(e.view(), m.view(), None, Connectivity3::C6, &mut NoProgress),
        Err(WatershedError::ShapeMismatch { .. })
    ));
    let l = Array3::<u32>::zeros((1, 3, 4));
    assert!(peak_local_max_3d(e.view(), 1, Some(l.view()), &mut NoProgress).is_err());
    assert!(distance_watershed(
        l.view(),
        [0.0, 1.0, 1.0],
        1,
        Connectivity3::C6,
        &mut NoProgress
    )
    .is_err());
}

#[test]
fn cancellation_stops_watershed() {
    let e = Array3::<f32>::zeros((40, 40, 45));
    let mut m = Array3::<u32>::zeros((40, 40, 45));
    m[[0, 0, 0]] = 1;
    let mut stop = |_: u64, _: u64| std::ops::ControlFlow::Break(());
    assert!(matches!(
        watershed_3d(e.view(), m.view(), None, Connectivity3::C6, &mut stop),
        Err(WatershedError::Cancelled(_))
    ));
    let mut stop = |_: u64, _: u64| std::ops::ControlFlow::Break(());
    assert!(matches!(
        distance_watershed(m.view(), [1.0; 3], 2, Connectivity3::C6, &mut stop),
        Err(WatershedError::Cancelled(_))
    ));
}

#[test]
fn progress_reaches_total() {
    let mut m = Array3::<u32>::zeros((6, 7, 8));
    m[[0, 0, 0]] = 1;
    let mut last = (0, 0);
    let mut p = |d: u64, t: u64| {
        assert!(d <= t);
        last = (d, t);
        std::ops::ControlFlow::Continue(())
    };
    distance_watershed(m.view(), [1.0; 3], 2, Connectivity3::C6, &mut p).expect("ok");
    assert_eq!(last, (1000, 1000));
}

// ---- properties ----

fn volume(
    max_dim: usize,
    levels: u32,
) -> impl Strategy<Value = (Array3<f32>, Array3<u32>, Array3<bool>)> {
    (1..=max_dim, 1..=max_dim, 1..=max_dim).prop_flat_map(move |(z, y, x)| {
        let n = z * y * x;
        (
            proptest::collection::vec(0..levels, n),
            proptest::collection::vec(prop_oneof![8 => Just(0u32), 1 => 1u32..5], n),
            proptest::collection::vec(proptest::bool::weighted(0.85), n),
        )
            .prop_map(move |(e, m, k)| {
                (
                    Array3::from_shape_vec((z, y, x), e.into_iter().map(|v| v as f32).collect())
                        .expect("n"),
                    Array3::from_shape_vec((z, y, x), m).expect("n"),
                    Array3::from_shape_vec((z, y, x), k).expect("n"),
                )
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every voxel of the mask that is connected (within the mask) to a marker gets a
    /// marker label; voxels outside the mask stay 0; markers inside the mask keep theirs.
    #[test]
    fn watershed_labels_reachable_voxels((elev, markers, mask) in volume(7, 4)) {
        let out = watershed_3d(elev.view(), markers.view(), Some(mask.view()), Connectivity3::C6, &mut NoProgress).expect("valid");
        let (nz, ny, nx) = elev.dim();
        // Reachability by BFS from the markers within the mask.
        let mut reach = Array3::<bool>::from_elem((nz, ny, nx), false);
        let mut queue: Vec<(usize, usize, usize)> = Vec::new();
        for ((z, y, x), &m) in markers.indexed_iter() {
            if m != 0 && mask[[z, y, x]] {
                reach[[z, y, x]] = true;
                queue.push((z, y, x));
            }
        }
        while let Some((z, y, x)) = queue.pop() {
            for (dz, dy, dx) in Connectivity3::C6.offsets() {
                let (a, b, c) = (z as isize + dz, y as isize + dy, x as isize + dx);
                if a < 0 || b < 0 || c < 0 || a >= nz as isize || b >= ny as isize || c >= nx as isize { continue; }
                let p = (a as usize, b as usize, c as usize);
                if mask[p] && !reach[p] { reach[p] = true; queue.push(p); }
            }
        }
        let labels: BTreeSet<u32> = markers.iter().copied().filter(|&v| v != 0).collect();
        for (((p, &o), &r), &k) in out.indexed_iter().zip(reach.iter()).zip(mask.iter()) {
            prop_assert_eq!(o != 0, r, "voxel {:?}", p);
            if !k { prop_assert_eq!(o, 0); }
            if o != 0 { prop_assert!(labels.contains(&o)); }
            if k && markers[p] != 0 { prop_assert_eq!(o, markers[p]); }
        }
    }

    /// 2D watershed equals the 3D one on a single slice with in-plane connectivity.
    #[test]
    fn watershed_2d_is_a_3d_slice((elev, markers, mask) in volume(9, 3)) {
        let e2 = elev.index_axis(ndarray::Axis(0), 0);
        let m2 = markers.index_axis(ndarray::Axis(0), 0);
        let k2 = mask.index_axis(ndarray::Axis(0), 0);
        let a = watershed_2d(e2, m2, Some(k2), Connectivity2::C4).expect("valid");
        let b = watershed_3d(
            e2.insert_axis(ndarray::Axis(0)),
            m2.insert_axis(ndarray::Axis(0)),
            Some(k2.insert_axis(ndarray::Axis(0))),
            Connectivity3::C6,
            &mut NoProgress,
        ).expect("valid");
        prop_assert_eq!(a, b.index_axis(ndarray::Axis(0), 0).to_owned());
    }

    /// Peaks are candidates of the region they lie in, at least `d` apart (Chebyshev), and
    /// the marker array numbers them 1..N.
    #[test]
    fn peaks_are_spaced((elev, _markers, mask) in volume(8, 6), d in 1usize..4) {
        let labels = mask.mapv(u32::from);
        let peaks = peak_local_max_3d(elev.view(), d, Some(labels.view()), &mut NoProgress).expect("valid");
        for (i, p) in peaks.iter().enumerate() {
            prop_assert!(mask[*p]);
            for q in &peaks[..i] {
                let cheb = (0..3).map(|a| p[a].abs_diff(q[a])).max().unwrap_or(0);
                prop_assert!(cheb >= d, "{:?} {:?}", p, q);
            }
        }
        let m = peak_markers_3d(elev.view(), d, Some(labels.view()), &mut NoProgress).expect("valid");
        prop_assert_eq!(m.iter().filter(|&&v| v != 0).count(), peaks.len());
        prop_assert_eq!(m.iter().copied().max().unwrap_or(0) as usize, peaks.len());
    }

    /// Binary EDT: zero exactly on background; per-label EDT of a binary image equals the
    /// binary EDT wherever background exists.
    #[test]
    fn edt_binary_equals_labels_on_binary((_e, _m, mask) in volume(8, 2), sz in 1u32..4) {
        let s = [f64::from(sz), 1.0, 2.0];
        let bin = mask.mapv(u8::from);
        let a = edt_3d(bin.view(), s, &mut NoProgress).expect("valid");
        let b = edt_labels_3d(bin.view(), s, &mut NoProgress).expect("valid");
        if bin.iter().any(|&v| v == 0) {
            prop_assert_eq!(&a, &b);
        }
        for (&d, &k) in a.iter().zip(mask.iter()) {
            prop_assert_eq!(d == 0.0, !k);
        }
    }
}

#[test]
fn params_structs_drive_the_same_kernels() {
    use emstudio_core::distance::EdtParams;
    use emstudio_core::labels::watershed::{DistanceWatershedParams, WatershedParams};
    use emstudio_core::VoxelSize;
    let case = "dws3d_isbi_d4_c1";
    let mask = d3(read_u32(case, "mask"));
    let vs = VoxelSize {
        z: 50.0,
        y: 4.0,
        x: 4.0,
    };
    let p = DistanceWatershedParams {
        min_distance: 4,
        connectivity: Connectivity3::C6,
        use_voxel_size: true,
    };
    let got = p.run(mask.view(), vs, &mut NoProgress).expect("valid");
    assert_eq!(got, d3(read_u32(case, "expected")));
    let unit = DistanceWatershedParams {
        use_voxel_size: false,
        ..p
    };
    assert_eq!(
        unit.run(mask.view(), vs, &mut NoProgress).expect("valid"),
        distance_watershed(mask.view(), [1.0; 3], 4, Connectivity3::C6, &mut NoProgress)
            .expect("valid")
    );
    let e = EdtParams {
        per_label: false,
        use_voxel_size: true,
    };
    assert_eq!(
        e.run(mask.view(), vs, &mut NoProgress).expect("valid"),
        edt_3d(mask.view(), [50.0, 4.0, 4.0], &mut NoProgress).expect("valid")
    );
    let case = "ws3d_ties_mask_c3";
    let w = WatershedParams {
        connectivity: Connectivity3::C26,
    };
    let mask = d3(read_u32(case, "mask")).mapv(|v| v != 0);
    let got = w
        .run(
            d3(read_f32(case, "elevation")).view(),
            d3(read_u32(case, "markers")).view(),
            Some(mask.view()),
            &mut NoProgress,
        )
        .expect("valid");
    assert_eq!(got, d3(read_u32(case, "expected")));
}
