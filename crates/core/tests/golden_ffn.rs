//! FFN training data (`emstudio_core::ffn_data`) against the numpy transcription of google/ffn's
//! `compute_partitions.py` and `build_coordinates.py` in `scripts/golden/gen_ffn.py` (fixtures in
//! `tests/golden/ffn/`, names carry the parameters; see the script's doc).

use emstudio_core::ffn_data::{
    build_coordinates, class_counts, compute_partitions, PartitionParams,
};
use emstudio_core::progress::NoProgress;
use ndarray::{Array2, Array3};
use ndarray_npy::read_npy;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("tests/golden/ffn")
}

/// `[z, y, x]` from `"4_6_6"`.
fn triple(text: &str) -> [usize; 3] {
    let v: Vec<usize> = text
        .split('_')
        .map(|n| n.parse().expect("number"))
        .collect();
    [v[0], v[1], v[2]]
}

/// The fixture names with `prefix`, without `.npy`.
fn names(prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir())
        .expect("golden/ffn")
        .filter_map(|e| e.ok())
        .map(|e| {
            e.file_name()
                .to_string_lossy()
                .trim_end_matches(".npy")
                .to_string()
        })
        .filter(|n| n.starts_with(prefix))
        .collect();
    out.sort();
    out
}

#[test]
fn partitions_and_classes_match_google_ffn() {
    let parts = names("part__");
    assert!(parts.len() >= 5, "fixtures missing: {parts:?}");
    let mut counted = 0;
    for name in parts {
        // part__<case>__r<z>_<y>_<x>__m<min_size>
        let fields: Vec<&str> = name.split("__").collect();
        let (case, radius, min_size) = (fields[1], triple(&fields[2][1..]), &fields[3][1..]);
        let labels: Array3<u16> = read_npy(dir().join(format!("in__{case}.npy"))).expect("input");
        let expected: Array3<u8> = read_npy(dir().join(format!("{name}.npy"))).expect("partitions");
        let params = PartitionParams {
            lom_radius: radius,
            min_size: min_size.parse().expect("min size"),
            ..PartitionParams::default()
        };
        let labels = labels.mapv(u32::from);
        let got = compute_partitions(labels.view(), &params, &mut NoProgress).expect("partitions");
        let wrong = got
            .iter()
            .zip(expected.iter())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(wrong, 0, "{name}: {wrong} voxels differ");
        for count in names(&format!("count__{case}__{}__{}", fields[2], fields[3])) {
            let margin = triple(count.rsplit("__g").next().expect("margin"));
            let table: Array2<i64> = read_npy(dir().join(format!("{count}.npy"))).expect("counts");
            let want: Vec<(u8, u64)> = table
                .outer_iter()
                .map(|r| (r[0] as u8, r[1] as u64))
                .collect();
            assert_eq!(
                class_counts(got.view(), margin).expect("counts"),
                want,
                "{count}"
            );
            let centres = build_coordinates(got.view(), margin, 1).expect("coordinates");
            let largest = want.iter().map(|(_, n)| *n).max().expect("a class");
            assert_eq!(centres.len() as u64, largest * want.len() as u64, "{count}");
            for (value, _) in &want {
                let n = centres.iter().filter(|c| got[**c] == *value).count() as u64;
                assert_eq!(n, largest, "{count}: class {value}");
            }
            counted += 1;
        }
    }
    assert!(counted >= 5);
}
