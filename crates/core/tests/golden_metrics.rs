//! Golden, constructed-case and property tests for `emstudio_core::metrics`.
//!
//! Fixtures come from `scripts/golden/gen_metrics.py` (scikit-image 0.26 / numpy, see
//! `tests/golden/metrics/README.md`). Integer outputs (counts, labels, thinned masks, error
//! lists) must match exactly. Float scores are compared with an absolute tolerance of 1e-9: the
//! scores are O(1) ratios or entropies in bits, and the only differences come from float64
//! summation order and from skimage normalising to probabilities before squaring/logging
//! (observed differences are around 1e-15); 1e-9 leaves room for that while catching any
//! convention error, which moves values by ≥ 1e-6 even on the 55k-voxel flyem crop.
#![cfg(not(target_arch = "wasm32"))]

use emstudio_core::metrics::isbi::{
    interior_components_2d, isbi_evaluate, isbi_evaluate_2d, slice_mean_scores, IsbiParams,
    MapPolarity, ThresholdSweep,
};
use emstudio_core::metrics::{
    evaluate_labels_2d, evaluate_labels_3d, info_scores, label_4connected, object_errors,
    rand_scores, semantic_scores_3d, thin_2d, ContingencyTable, ErrorListOptions, EvaluateParams,
    LabelValue, ObjectErrors, RandOptions, UnlabelledPrediction,
};
use emstudio_core::progress::NoProgress;
use ndarray::{s, Array1, Array2, Array3, Axis};
use ndarray_npy::{read_npy, ReadableElement};
use proptest::prelude::*;
use std::path::PathBuf;

const TOL: f64 = 1e-9;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("tests/golden/metrics")
        .join(name)
}

fn load3<T: ReadableElement>(name: &str) -> Array3<T> {
    read_npy(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn load2<T: ReadableElement>(name: &str) -> Array2<T> {
    read_npy(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn load1<T: ReadableElement>(name: &str) -> Array1<T> {
    read_npy(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn close(what: &str, got: f64, want: f64) {
    if want.is_nan() {
        // skimage has no value here (e.g. no GT foreground): our convention is tested
        // elsewhere, but ours must still be a number.
        assert!(!got.is_nan(), "{what}: got NaN (reference NaN)");
        return;
    }
    assert!(
        (got - want).abs() <= TOL,
        "{what}: got {got}, reference {want} (diff {:e})",
        (got - want).abs()
    );
}

/// Field order of `<case>_scores.npy` (SCORE_FIELDS in the script).
fn check_scores(case: &str, t: &ContingencyTable) {
    let r = load1::<f64>(&format!("{case}_scores.npy"));
    let c = |i: usize, name: &str, got: f64| close(&format!("{case} {name}"), got, r[i]);

    let sk = rand_scores(t, &RandOptions::skimage());
    c(0, "skimage are", sk.adapted_rand_error);
    c(1, "skimage precision = split", sk.split);
    c(2, "skimage recall = merge", sk.merge);
    let sk03 = rand_scores(
        t,
        &RandOptions {
            alpha: 0.7,
            ..RandOptions::skimage()
        },
    );
    c(
        3,
        "skimage are alpha 0.3 = ours 0.7",
        sk03.adapted_rand_error,
    );
    let vi_label = info_scores(t, UnlabelledPrediction::Label, 0.5);
    c(4, "skimage vi split", vi_label.vi_split);
    c(5, "skimage vi merge", vi_label.vi_merge);

    let d = rand_scores(t, &RandOptions::isbi());
    c(6, "design v_rand", d.v_rand);
    c(7, "design split", d.split);
    c(8, "design merge", d.merge);
    let d03 = rand_scores(
        t,
        &RandOptions {
            alpha: 0.3,
            ..RandOptions::isbi()
        },
    );
    c(9, "design v_rand alpha 0.3", d03.v_rand);
    let i = info_scores(t, UnlabelledPrediction::Singletons, 0.5);
    c(10, "design vi split", i.vi_split);
    c(11, "design vi merge", i.vi_merge);
    c(12, "v_info", i.v_info);
    c(13, "v_info split", i.v_info_split);
    c(14, "v_info merge", i.v_info_merge);
    let i03 = info_scores(t, UnlabelledPrediction::Singletons, 0.3);
    c(15, "v_info alpha 0.3", i03.v_info);
    assert!((i.vi - i.vi_split - i.vi_merge).abs() < 1e-15);

    let sem = emstudio_core::metrics::semantic_from_table(t);
    assert_eq!(
        [
            sem.true_positives,
            sem.false_positives,
            sem.false_negatives,
            sem.true_negatives
        ],
        [r[16] as u64, r[17] as u64, r[18] as u64, r[19] as u64],
        "{case} confusion counts"
    );
    c(20, "jaccard", sem.jaccard);
    c(21, "dice", sem.dice);
    match sem.conformity {
        Some(v) => c(22, "conformity", v),
        None => assert!(
            r[22].is_nan(),
            "{case}: conformity undefined only when TP = 0"
        ),
    }
    c(23, "precision", sem.precision);
    c(24, "recall", sem.recall);
}

fn case3<G: ReadableElement + LabelValue, P: ReadableElement + LabelValue>(case: &str) {
    let gt = load3::<G>(&format!("{case}_gt.npy"));
    let pred = load3::<P>(&format!("{case}_pred.npy"));
    let t = ContingencyTable::from_labels_3d(gt.view(), pred.view(), &mut NoProgress)
        .expect("same shape");
    assert_eq!(t.voxels(), gt.len() as u64);
    check_scores(case, &t);
    // The direct mask scorer agrees with the table.
    assert_eq!(
        semantic_scores_3d(gt.view(), pred.view()).expect("same shape"),
        emstudio_core::metrics::semantic_from_table(&t)
    );
}

#[test]
fn rand_vi_semantic_random3d_u16_vs_large_u32() {
    case3::<u16, u32>("random3d");
}

#[test]
fn rand_vi_semantic_random2d_u8_vs_u16() {
    let gt = load2::<u8>("random2d_gt.npy");
    let pred = load2::<u16>("random2d_pred.npy");
    let t = ContingencyTable::from_labels_2d(gt.view(), pred.view()).expect("same shape");
    check_scores("random2d", &t);
    let e = evaluate_labels_2d(gt.view(), pred.view(), &EvaluateParams::default()).expect("ok");
    assert_eq!(e.report.shape, [1, 17, 23]);
}

#[test]
fn rand_vi_semantic_blocky3d() {
    case3::<u32, u32>("blocky3d");
}

#[test]
fn rand_vi_semantic_degenerate() {
    case3::<u8, u8>("single");
    case3::<u16, u16>("empty_gt");
    // Our conventions where skimage gives NaN: no GT foreground → perfect, nothing to get wrong.
    let gt = load3::<u16>("empty_gt_gt.npy");
    let pred = load3::<u16>("empty_gt_pred.npy");
    let e = evaluate_labels_3d(
        gt.view(),
        pred.view(),
        &EvaluateParams::default(),
        &mut NoProgress,
    )
    .expect("ok");
    assert_eq!(e.report.foreground_voxels, 0);
    assert_eq!(e.report.rand.v_rand, 1.0);
    assert_eq!(e.report.rand_skimage.v_rand, 1.0);
    assert_eq!(e.report.info.vi, 0.0);
}

#[test]
fn rand_vi_semantic_flyem_crop() {
    case3::<u16, u32>("flyem");
}

#[test]
fn evaluate_report_matches_parts_on_flyem_crop() {
    let gt = load3::<u16>("flyem_gt.npy");
    let pred = load3::<u32>("flyem_pred.npy");
    let mut planes = 0;
    let mut progress = |done: u64, total: u64| {
        planes += 1;
        assert!(done <= total);
        std::ops::ControlFlow::Continue(())
    };
    let e = evaluate_labels_3d(
        gt.view(),
        pred.view(),
        &EvaluateParams::default(),
        &mut progress,
    )
    .expect("ok");
    assert_eq!(planes, gt.len_of(Axis(0)));
    let r = load1::<f64>("flyem_scores.npy");
    close("report are", e.report.adapted_rand_error, 1.0 - r[6]);
    close(
        "report skimage are",
        e.report.rand_skimage.adapted_rand_error,
        r[0],
    );
    close("report vi", e.report.info.vi, r[10] + r[11]);
    assert_eq!(e.report.split_objects, e.errors.splits.len());
    assert!(e.report.unlabelled_foreground_voxels > 0);
    assert!(e.report.rand.merge < 1.0 && e.report.rand.split < 1.0);
}

/// Decodes the flat int64 lists written by `encode_errors` in the script.
fn decode_errors(flat: &[i64]) -> Vec<Vec<i64>> {
    let mut out = Vec::new();
    let mut k = 0;
    for _ in 0..2 {
        let n = flat[k] as usize;
        k += 1;
        for _ in 0..n {
            let pieces = flat[k + 7] as usize;
            let len = 8 + 5 * pieces;
            out.push(flat[k..k + len].to_vec());
            k += len;
        }
        out.push(vec![-1]); // list separator
    }
    assert_eq!(k, flat.len());
    out
}

fn encode_ours(e: &ObjectErrors) -> Vec<Vec<i64>> {
    let mut out = Vec::new();
    let pos = |p: [usize; 3]| p.iter().map(|&v| v as i64).collect::<Vec<_>>();
    for s in &e.splits {
        let mut v = vec![
            i64::from(s.gt_label),
            s.gt_voxels as i64,
            s.unlabelled_voxels as i64,
            s.split_pairs as i64,
        ];
        v.extend(pos(s.position));
        v.push(s.pieces.len() as i64);
        for p in &s.pieces {
            v.extend([i64::from(p.label), p.voxels as i64]);
            v.extend(pos(p.first_voxel));
        }
        out.push(v);
    }
    out.push(vec![-1]);
    for m in &e.merges {
        let mut v = vec![
            i64::from(m.pred_label),
            m.pred_voxels as i64,
            m.background_voxels as i64,
            m.merge_pairs as i64,
        ];
        v.extend(pos(m.position));
        v.push(m.gt_objects.len() as i64);
        for p in &m.gt_objects {
            v.extend([i64::from(p.label), p.voxels as i64]);
            v.extend(pos(p.first_voxel));
        }
        out.push(v);
    }
    out.push(vec![-1]);
    out
}

#[test]
fn error_lists_match_numpy_on_flyem_crop() {
    let gt = load3::<u16>("flyem_gt.npy");
    let pred = load3::<u32>("flyem_pred.npy");
    let t = ContingencyTable::from_labels_3d(gt.view(), pred.view(), &mut NoProgress).expect("ok");
    for (file, min_voxels, min_fraction) in [
        ("flyem_errors.npy", 10, 0.01),
        ("flyem_errors_all.npy", 1, 0.0),
    ] {
        let want = decode_errors(load1::<i64>(file).as_slice().expect("1D"));
        let ours = object_errors(
            &t,
            &ErrorListOptions {
                min_overlap_voxels: min_voxels,
                min_overlap_fraction: min_fraction,
                max_entries: None,
            },
        );
        assert!(!ours.splits.is_empty() && !ours.merges.is_empty(), "{file}");
        assert_eq!(encode_ours(&ours), want, "{file}");
    }
}

#[test]
fn thinning_matches_skimage() {
    let input = load3::<u8>("thin_in.npy");
    for (file, frame) in [("thin_out.npy", false), ("thin_framed.npy", true)] {
        let want = load3::<u8>(file);
        for k in 0..input.len_of(Axis(0)) {
            let m = input.index_axis(Axis(0), k).mapv(|v| v != 0);
            let got = thin_2d(m.view(), frame).mapv(u8::from);
            assert_eq!(got, want.index_axis(Axis(0), k), "{file} image {k}");
        }
    }
}

#[test]
fn labelling_matches_skimage() {
    let input = load3::<u8>("thin_in.npy");
    let want = load3::<u16>("label_out.npy");
    for k in 0..input.len_of(Axis(0)) {
        let m = input.index_axis(Axis(0), k).mapv(|v| v != 0);
        let (got, n) = label_4connected(m.view());
        let w = want.index_axis(Axis(0), k).mapv(u32::from);
        assert_eq!(got, w, "image {k}");
        assert_eq!(n, w.iter().copied().max().unwrap_or(0));
    }
}

fn check_sweep(file: &str, prob: &str, polarity: MapPolarity, thin_pred: bool, thin_gt: bool) {
    let gt = load3::<u8>("isbi_gt.npy");
    let p = load3::<f32>(prob);
    let want = load2::<f64>(file);
    let params = IsbiParams {
        polarity,
        thin_prediction: thin_pred,
        thin_ground_truth: thin_gt,
        ..IsbiParams::default()
    };
    let mut calls = 0u64;
    let mut progress = |_d: u64, _t: u64| {
        calls += 1;
        std::ops::ControlFlow::Continue(())
    };
    let r = isbi_evaluate(gt.view(), p.view(), &params, &mut progress).expect("ok");
    assert_eq!(calls, 3 * 12);
    assert_eq!(r.per_threshold.len(), want.nrows());
    for (row, got) in want.outer_iter().zip(&r.per_threshold) {
        let s = got.scores;
        close(&format!("{file} threshold"), got.threshold, row[0]);
        let vals = [
            s.v_rand,
            s.v_rand_split,
            s.v_rand_merge,
            s.v_info,
            s.v_info_split,
            s.v_info_merge,
            s.vi,
        ];
        for (k, v) in vals.iter().enumerate() {
            close(&format!("{file} t={} field {k}", row[0]), *v, row[k + 1]);
        }
        assert_eq!(s.slices_evaluated as f64, row[8]);
    }
    let best = want.outer_iter().fold(
        (f64::MIN, 0.0),
        |b, r| if r[1] > b.0 { (r[1], r[0]) } else { b },
    );
    close(
        &format!("{file} best threshold"),
        r.best_rand.threshold,
        best.1,
    );
}

#[test]
fn isbi_sweep_prediction_thinned() {
    check_sweep(
        "isbi_expected_thin.npy",
        "isbi_prob.npy",
        MapPolarity::InteriorHigh,
        true,
        false,
    );
}

#[test]
fn isbi_sweep_both_thinned() {
    check_sweep(
        "isbi_expected_thin_both.npy",
        "isbi_prob.npy",
        MapPolarity::InteriorHigh,
        true,
        true,
    );
}

#[test]
fn isbi_sweep_unthinned() {
    check_sweep(
        "isbi_expected_nothin.npy",
        "isbi_prob.npy",
        MapPolarity::InteriorHigh,
        false,
        false,
    );
}

#[test]
fn isbi_sweep_boundary_probability() {
    check_sweep(
        "isbi_expected_boundary.npy",
        "isbi_bprob.npy",
        MapPolarity::BoundaryHigh,
        true,
        false,
    );
}

/// Two cells left and right of a vertical boundary band; `band` columns wide.
fn two_cells(h: usize, w: usize, band: std::ops::Range<usize>) -> Array2<u8> {
    Array2::from_shape_fn((h, w), |(_, x)| if band.contains(&x) { 0 } else { 255 })
}

#[test]
fn isbi_perfect_binary_prediction_scores_one() {
    let gt = two_cells(12, 16, 7..9);
    let prob = gt.mapv(|v| f32::from(v) / 255.0);
    let r = isbi_evaluate_2d(gt.view(), prob.view(), &IsbiParams::default()).expect("ok");
    for t in &r.per_threshold[..10] {
        assert_eq!(t.scores.v_rand, 1.0, "t = {}", t.threshold);
        assert_eq!(t.scores.v_info, 1.0, "t = {}", t.threshold);
    }
    // At 1.0 nothing is interior: every GT pixel is an unlabelled singleton.
    let last = r.per_threshold[10].scores;
    assert!(last.v_rand < 0.1 && last.v_rand_merge == 1.0);
    assert_eq!(r.best_rand.threshold, 0.0);
    // Boundary polarity with 1 − p gives the same sweep.
    let b = IsbiParams {
        polarity: MapPolarity::BoundaryHigh,
        ..IsbiParams::default()
    };
    let rb = isbi_evaluate_2d(gt.view(), prob.mapv(|v| 1.0 - v).view(), &b).expect("ok");
    assert_eq!(rb.per_threshold, r.per_threshold);
}

#[test]
fn isbi_threshold_is_strict_and_best_is_found() {
    // Interior 0.9, a one-pixel separating column of 0.5: at t ≥ 0.5 it is boundary (v > t fails).
    let gt = two_cells(10, 11, 5..6);
    let prob = Array2::from_shape_fn((10, 11), |(_, x)| if x == 5 { 0.5f32 } else { 0.9 });
    let r = isbi_evaluate_2d(gt.view(), prob.view(), &IsbiParams::default()).expect("ok");
    let at = |t: f64| {
        r.per_threshold
            .iter()
            .find(|s| (s.threshold - t).abs() < 1e-12)
            .expect("threshold in sweep")
            .scores
    };
    assert!(at(0.4).v_rand < 0.7, "merged below the column value");
    assert!(at(0.4).v_rand_merge < 0.6 && at(0.4).v_rand_split == 1.0);
    assert_eq!(at(0.5).v_rand, 1.0);
    assert_eq!(at(0.8).v_rand, 1.0);
    assert_eq!(r.best_rand.threshold, 0.5);
    assert_eq!(r.best_info.threshold, 0.5);
}

#[test]
fn isbi_thinning_forgives_thick_boundaries_and_keeps_edges_closed() {
    // GT: two cells split by a 1-px column; prediction: a 5-px band around it that reaches the
    // top and bottom edges. Unthinned, band pixels inside GT cells are singletons; thinned, the
    // band becomes one curve that still reaches both edges (no merge through the edge).
    let gt = two_cells(14, 15, 7..8);
    let prob = two_cells(14, 15, 5..10).mapv(|v| f32::from(v) / 255.0);
    let thin = isbi_evaluate_2d(gt.view(), prob.view(), &IsbiParams::default()).expect("ok");
    let plain = IsbiParams {
        thin_prediction: false,
        ..IsbiParams::default()
    };
    let no = isbi_evaluate_2d(gt.view(), prob.view(), &plain).expect("ok");
    assert_eq!(thin.best_rand.scores.v_rand, 1.0);
    assert!(no.best_rand.scores.v_rand < 0.95);
    // The thinned band is one curve from the top to the bottom edge.
    let interior = prob.mapv(|v| v > 0.5);
    let (labels, n) = {
        let l = interior_components_2d(interior.view(), true);
        let n = l.iter().copied().max().unwrap_or(0);
        (l, n)
    };
    assert_eq!(n, 2);
    assert!((0..14).all(|y| labels.row(y).iter().filter(|&&v| v == 0).count() == 1));
}

#[test]
fn isbi_skips_slices_without_gt_and_validates() {
    let mut gt = Array3::<u8>::zeros((3, 8, 8));
    gt.slice_mut(s![1, .., ..]).fill(255);
    let prob = Array3::<f32>::ones((3, 8, 8));
    let r = isbi_evaluate(
        gt.view(),
        prob.view(),
        &IsbiParams::default(),
        &mut NoProgress,
    )
    .expect("ok");
    assert_eq!(r.best_rand.scores.slices_evaluated, 1);
    assert_eq!(r.best_rand.scores.v_rand, 1.0);
    let bad = IsbiParams {
        sweep: ThresholdSweep {
            min: 0.5,
            max: 0.1,
            step: 0.1,
        },
        ..IsbiParams::default()
    };
    assert!(isbi_evaluate(gt.view(), prob.view(), &bad, &mut NoProgress).is_err());
    let mut stop = |_d: u64, _t: u64| std::ops::ControlFlow::Break(());
    assert!(isbi_evaluate(gt.view(), prob.view(), &IsbiParams::default(), &mut stop).is_err());
}

#[test]
fn slice_means_of_label_stacks() {
    // Slice 0 perfect, slice 1 one cell split in halves, slice 2 without GT (skipped).
    let mut gt = Array3::<u16>::zeros((3, 4, 4));
    gt.slice_mut(s![0..2, .., ..]).fill(3);
    let mut pred = gt.mapv(u32::from);
    pred.slice_mut(s![1, .., 2..]).fill(9);
    let m = slice_mean_scores(gt.view(), pred.view(), 0.5, &mut NoProgress).expect("ok");
    assert_eq!(m.slices_evaluated, 2);
    assert!((m.v_rand_split - 0.75).abs() < 1e-15); // mean of 1 and ½
    assert!((m.v_rand - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-15);
    assert!((m.vi - 0.5).abs() < 1e-15); // 0 and 1 bit
}

fn labels_strategy() -> impl Strategy<Value = (Array3<u16>, Array3<u16>)> {
    (1usize..4, 1usize..6, 1usize..7).prop_flat_map(|(d, h, w)| {
        let n = d * h * w;
        (
            proptest::collection::vec(0u16..5, n),
            proptest::collection::vec(0u16..6, n),
        )
            .prop_map(move |(a, b)| {
                (
                    Array3::from_shape_vec((d, h, w), a).expect("n elements"),
                    Array3::from_shape_vec((d, h, w), b).expect("n elements"),
                )
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn scores_are_bounded_and_relabel_invariant((gt, pred) in labels_strategy()) {
        let t = ContingencyTable::from_labels_3d(gt.view(), pred.view(), &mut NoProgress).expect("ok");
        prop_assert_eq!(t.voxels(), gt.len() as u64);
        for o in [RandOptions::isbi(), RandOptions::skimage()] {
            let r = rand_scores(&t, &o);
            for v in [r.v_rand, r.split, r.merge] {
                prop_assert!((0.0..=1.0 + 1e-12).contains(&v));
            }
        }
        let i = info_scores(&t, UnlabelledPrediction::Singletons, 0.5);
        prop_assert!(i.vi_split >= 0.0 && i.vi_merge >= 0.0);
        prop_assert!((0.0..=1.0 + 1e-12).contains(&i.v_info));
        // A bijective relabelling of non-zero predicted labels changes nothing.
        let relabelled = pred.mapv(|v| if v == 0 { 0u32 } else { 4_000_000_000 - u32::from(v) * 7 });
        let t2 = ContingencyTable::from_labels_3d(gt.view(), relabelled.view(), &mut NoProgress).expect("ok");
        prop_assert_eq!(rand_scores(&t, &RandOptions::isbi()), rand_scores(&t2, &RandOptions::isbi()));
        let i2 = info_scores(&t2, UnlabelledPrediction::Singletons, 0.5);
        prop_assert!((i.vi - i2.vi).abs() < 1e-12);
    }

    #[test]
    fn swapping_roles_swaps_split_and_merge((gt, pred) in labels_strategy()) {
        // Without zeros the foreground restriction is void and the roles are symmetric.
        let a = gt.mapv(|v| v + 1);
        let b = pred.mapv(|v| v + 1);
        let ab = ContingencyTable::from_labels_3d(a.view(), b.view(), &mut NoProgress).expect("ok");
        let ba = ContingencyTable::from_labels_3d(b.view(), a.view(), &mut NoProgress).expect("ok");
        let (r1, r2) = (rand_scores(&ab, &RandOptions::isbi()), rand_scores(&ba, &RandOptions::isbi()));
        prop_assert!((r1.split - r2.merge).abs() < 1e-12 && (r1.merge - r2.split).abs() < 1e-12);
        let (i1, i2) = (
            info_scores(&ab, UnlabelledPrediction::Singletons, 0.5),
            info_scores(&ba, UnlabelledPrediction::Singletons, 0.5),
        );
        prop_assert!((i1.vi_split - i2.vi_merge).abs() < 1e-12);
    }

    #[test]
    fn thinning_is_a_subset_idempotent_and_keeps_components(
        bits in proptest::collection::vec(any::<bool>(), 1..200),
        w in 1usize..20,
    ) {
        let h = bits.len().div_ceil(w);
        let mut m = Array2::from_elem((h, w), false);
        for (k, &b) in bits.iter().enumerate() {
            m[[k / w, k % w]] = b;
        }
        for frame in [false, true] {
            let t = thin_2d(m.view(), frame);
            prop_assert!(t.iter().zip(m.iter()).all(|(&a, &b)| !a || b));
            prop_assert_eq!(thin_2d(t.view(), frame), t.clone());
            // Topology: with the object frame, background 4-components inside the image are
            // exactly the background components of the padded image, and thinning keeps them
            // (none merge or vanish). Without it they may join through the outside.
            if frame {
                let (_, before) = label_4connected(m.mapv(|v| !v).view());
                let (_, after) = label_4connected(t.mapv(|v| !v).view());
                prop_assert_eq!(before, after);
            }
        }
    }

    #[test]
    fn labels_are_consistent(bits in proptest::collection::vec(any::<bool>(), 0..150), w in 1usize..15) {
        let h = bits.len() / w;
        let m = Array2::from_shape_fn((h, w), |(y, x)| bits[y * w + x]);
        let (l, n) = label_4connected(m.view());
        for ((y, x), &v) in l.indexed_iter() {
            prop_assert_eq!(v != 0, m[[y, x]]);
            if x + 1 < w && m[[y, x]] && m[[y, x + 1]] { prop_assert_eq!(v, l[[y, x + 1]]); }
            if y + 1 < h && m[[y, x]] && m[[y + 1, x]] { prop_assert_eq!(v, l[[y + 1, x]]); }
        }
        prop_assert_eq!(n, l.iter().copied().max().unwrap_or(0));
    }
}
