//! Benchmarks the metrics kernels on real data and prints one JSON line per kernel:
//! `{"kernel":"<name>","impl":"emstudio","ms":<median>}`.
//!
//! Run: `cargo run --release -p emstudio-core --example bench_metrics -- /work/shared/data`
//! Reference timings: `python scripts/golden/bench_metrics.py /work/shared/data` (same kernel
//! names and inputs).
//!
//! - `contingency_3d`: contingency table of flyem-medulla-fib 250³ GT vs a perturbed prediction
//!   (reference: `skimage.metrics.contingency_table`).
//! - `rand_vi_3d`: the full metric set ([`evaluate_labels_3d`]: table, Rand in two conventions,
//!   VI/V_info, mask scores, split/merge lists) on the same inputs (reference:
//!   `skimage.metrics.adapted_rand_error` + `variation_of_information`).
//! - `semantic_3d`: mask scores of the same pair (reference: numpy formulas).
//! - `isbi_sweep_2d`: the ISBI protocol (11 thresholds, predicted borders thinned) on the first
//!   3 slices of isbi2012 with the EM image / 255 as interior probability (reference: the same
//!   protocol composed of skimage thinning/labelling and numpy formulas).
//!
//! The prediction is derived from the GT exactly as `perturb` in `scripts/golden/gen_metrics.py`.

use emstudio_core::metrics::isbi::{isbi_evaluate, IsbiParams};
use emstudio_core::metrics::{
    evaluate_labels_3d, semantic_scores_3d, ContingencyTable, EvaluateParams,
};
use emstudio_core::progress::NoProgress;
use emstudio_core::stack::{read_stack, Limits};
use emstudio_core::AnyVolume;
use ndarray::{s, Array3};
use std::path::Path;
use std::time::Instant;

fn load(dir: &Path) -> AnyVolume {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let entry = entry.expect("directory entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        files.push((name, std::fs::read(entry.path()).expect("readable file")));
    }
    read_stack(files, &Limits::default()).expect("valid stack")
}

/// Mirror of `perturb` in gen_metrics.py.
fn perturb(gt: &Array3<u16>) -> Array3<u32> {
    let nx = gt.dim().2;
    Array3::from_shape_fn(gt.dim(), |(z, y, x)| {
        let g = u32::from(gt[[z, y, x]]);
        if g == 0 || (z % 50 < 2 && x < 25) {
            0
        } else if g % 7 == 3 && x >= nx / 2 {
            g + 100_000
        } else if g % 5 == 1 {
            g + 1
        } else {
            g
        }
    })
}

fn bench<T>(kernel: &str, runs: usize, mut f: impl FnMut() -> T) -> T {
    let mut times = Vec::new();
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        out = Some(f());
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"kernel\":\"{kernel}\",\"impl\":\"emstudio\",\"ms\":{:.3}}}",
        times[times.len() / 2]
    );
    out.expect("runs > 0")
}

fn main() {
    let data = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/work/shared/data".into());
    let data = Path::new(&data);

    let gt = match load(&data.join("flyem-medulla-fib/label")) {
        AnyVolume::U16(v) => v.to_array().expect("fits in memory"),
        other => panic!("expected 16-bit labels, got {}", other.dtype()),
    };
    let pred = perturb(&gt);

    let table = bench("contingency_3d", 7, || {
        ContingencyTable::from_labels_3d(gt.view(), pred.view(), &mut NoProgress).expect("ok")
    });
    let eval = bench("rand_vi_3d", 7, || {
        evaluate_labels_3d(
            gt.view(),
            pred.view(),
            &EvaluateParams::default(),
            &mut NoProgress,
        )
        .expect("ok")
    });
    bench("semantic_3d", 7, || {
        semantic_scores_3d(gt.view(), pred.view()).expect("ok")
    });
    let r = &eval.report;
    eprintln!(
        "flyem: {} cells, ARE {:.6} (skimage convention {:.6}), VI split {:.4} merge {:.4} bits, \
         {} splits, {} merges",
        table.cells().len(),
        r.adapted_rand_error,
        r.rand_skimage.adapted_rand_error,
        r.info.vi_split,
        r.info.vi_merge,
        r.split_objects,
        r.merge_objects
    );

    let labels = match load(&data.join("isbi2012/label")) {
        AnyVolume::U8(v) => v.to_array().expect("fits in memory"),
        other => panic!("expected 8-bit labels, got {}", other.dtype()),
    };
    let image = match load(&data.join("isbi2012/image")) {
        AnyVolume::U8(v) => v.to_array().expect("fits in memory"),
        other => panic!("expected an 8-bit image, got {}", other.dtype()),
    };
    let gt2 = labels.slice(s![0..3, .., ..]).to_owned();
    let prob = image.slice(s![0..3, .., ..]).mapv(|v| f32::from(v) / 255.0);
    let isbi = bench("isbi_sweep_2d", 5, || {
        isbi_evaluate(
            gt2.view(),
            prob.view(),
            &IsbiParams::default(),
            &mut NoProgress,
        )
        .expect("ok")
    });
    eprintln!(
        "isbi2012[0..3]: best V_rand {:.4} at {}, best V_info {:.4} at {}",
        isbi.best_rand.scores.v_rand,
        isbi.best_rand.threshold,
        isbi.best_info.scores.v_info,
        isbi.best_info.threshold
    );
}
