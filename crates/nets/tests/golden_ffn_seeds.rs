//! The FFN seed policy (`ffn::seeds`) against google/ffn's `PolicyPeaks` computed with scipy and
//! scikit-image by `scripts/golden/gen_ffn_seeds.py` (fixtures in tests/golden/ffn/): the
//! distance to the adaptive-threshold edges, the peaks of the same values (distances plus
//! google/ffn's noise) from our peak finder and from `skimage.feature.peak_local_max`, and the
//! whole policy end to end.

use emstudio_nets::ffn::seeds::{edge_distance, local_peaks, policy_peaks, MIN_DISTANCE};
use ndarray::{Array2, Array3};
use ndarray_npy::read_npy;
use std::path::{Path, PathBuf};

fn file(case: &str, what: &str) -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join(format!("tests/golden/ffn/seeds__{case}__{what}.npy"))
}

fn peaks(case: &str) -> Vec<[usize; 3]> {
    let p: Array2<i64> = read_npy(file(case, "peaks")).expect("peaks");
    p.rows()
        .into_iter()
        .map(|r| [r[0] as usize, r[1] as usize, r[2] as usize])
        .collect()
}

#[test]
fn seeds_match_scipy_and_skimage() {
    for case in ["blobs", "flyem"] {
        let image: Array3<f32> = read_npy(file(case, "image")).expect("image");
        let dt: Array3<f32> = read_npy(file(case, "dt")).expect("dt");
        let values: Array3<f64> = read_npy(file(case, "values")).expect("values");
        let want = peaks(case);
        assert!(want.len() >= 10, "{case}: {} peaks", want.len());

        // Distances: voxels right at the adaptive threshold may fall either side between f32
        // and scipy's f64 smoothing; all but a handful agree.
        let ours = edge_distance(image.view());
        let differing = ours
            .iter()
            .zip(&dt)
            .filter(|(a, b)| (*a - *b).abs() > 1e-3 || a.is_nan())
            .count();
        assert!(
            (differing as f64) <= 0.002 * dt.len() as f64,
            "{case}: {differing} of {} distances differ",
            dt.len()
        );

        // Peaks of the same values: exactly skimage's.
        assert_eq!(local_peaks(values.view(), MIN_DISTANCE), want, "{case}");

        // The whole policy (our distances, google/ffn's noise): the same peaks, but where a
        // voxel at the adaptive threshold falls the other way.
        let ours = policy_peaks(image.view());
        let common = ours.iter().filter(|p| want.contains(p)).count();
        assert!(
            common as f64 >= 0.95 * want.len() as f64 && ours.len() <= want.len() + 1,
            "{case}: {common} of {} peaks agree ({} found)",
            want.len(),
            ours.len()
        );
    }
}
