//! Golden tests of the labels area against the Python references.
//!
//! Fixtures in `tests/golden/labels/` are written by `scripts/golden/gen_labels.py` (cc3d
//! 4.1.1, scikit-image 0.26, numpy); file names carry the parameters (see the script). All
//! outputs are integers and are compared exactly. The real-data test reads the first 32 slices
//! of flyem-medulla-fib from the shared data (skipped when absent, failing under CI; see
//! `common::shared_dir`) and compares the component count and a checksum of cc3d's output.

mod common;

use emstudio_core::labels::components::{
    connected_components_2d, connected_components_3d, Components2Params, Components3Params,
    InputMode, LabelValue,
};
use emstudio_core::labels::relabel::{
    label_sizes, relabel_sequential, remove_small_objects, SizeFilterParams,
};
use emstudio_core::neighborhood::{Connectivity2, Connectivity3};
use emstudio_core::progress::NoProgress;
use emstudio_core::stack::{is_stack_file_name, read_stack, Limits};
use emstudio_core::AnyVolume;
use ndarray::{ArrayD, Ix2, Ix3};
use ndarray_npy::read_npy;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("tests/golden/labels")
}

/// A fixture of any of the stored element types.
enum Vol {
    U8(ArrayD<u8>),
    U16(ArrayD<u16>),
    U32(ArrayD<u32>),
}

fn read_any(name: &str) -> Vol {
    let path = dir().join(format!("{name}.npy"));
    if let Ok(a) = read_npy::<_, ArrayD<u8>>(&path) {
        return Vol::U8(a);
    }
    if let Ok(a) = read_npy::<_, ArrayD<u16>>(&path) {
        return Vol::U16(a);
    }
    match read_npy::<_, ArrayD<u32>>(&path) {
        Ok(a) => Vol::U32(a),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// A label fixture widened to u32.
fn read_labels(name: &str) -> ArrayD<u32> {
    match read_any(name) {
        Vol::U8(a) => a.mapv(u32::from),
        Vol::U16(a) => a.mapv(u32::from),
        Vol::U32(a) => a,
    }
}

/// Fixture names (without `.npy`) starting with `prefix`, sorted.
fn fixtures(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .expect("fixture folder; run scripts/golden/gen_labels.py")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".npy"))
        .map(|n| n.trim_end_matches(".npy").to_owned())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no fixtures {prefix}*");
    names
}

/// `prefix__case__<letter><number>...` -> (case, number after `letter` in the given part).
fn parts(name: &str) -> Vec<&str> {
    name.split("__").collect()
}

fn number(part: &str) -> u64 {
    part[1..].parse().expect("numeric parameter")
}

fn conn3(c: u64) -> Connectivity3 {
    match c {
        6 | 1 => Connectivity3::C6,
        18 | 2 => Connectivity3::C18,
        26 | 3 => Connectivity3::C26,
        _ => panic!("connectivity {c}"),
    }
}

fn conn2(c: u64) -> Connectivity2 {
    match c {
        4 | 1 => Connectivity2::C4,
        8 | 2 => Connectivity2::C8,
        _ => panic!("connectivity {c}"),
    }
}

/// Runs connected components on an input of any dimension (2 or 3) and element type.
fn label<T: LabelValue>(input: &ArrayD<T>, c: u64, mode: InputMode) -> (ArrayD<u32>, u32) {
    match input.ndim() {
        3 => {
            let v = input.view().into_dimensionality::<Ix3>().expect("3D");
            let params = Components3Params {
                connectivity: conn3(c),
                mode,
            };
            let (l, n) = connected_components_3d(v, &params, &mut NoProgress).expect("labels");
            (l.into_dyn(), n)
        }
        2 => {
            let v = input.view().into_dimensionality::<Ix2>().expect("2D");
            let params = Components2Params {
                connectivity: conn2(c),
                mode,
            };
            let (l, n) = connected_components_2d(v, &params).expect("labels");
            (l.into_dyn(), n)
        }
        d => panic!("{d}D input"),
    }
}

fn check_components(name: &str, mode: InputMode) {
    let p = parts(name);
    let (case, c) = (p[1], number(p[2]));
    let expected = read_labels(name);
    let (got, n) = match read_any(&format!("in__{case}")) {
        Vol::U8(a) => label(&a, c, mode),
        Vol::U16(a) => label(&a, c, mode),
        Vol::U32(a) => label(&a, c, mode),
    };
    assert_eq!(got, expected, "{name}");
    assert_eq!(
        n,
        expected.iter().copied().max().unwrap_or(0),
        "{name}: count"
    );
}

#[test]
fn multilabel_components_match_cc3d() {
    let names = fixtures("cc__");
    assert!(names.len() >= 14);
    for name in names {
        check_components(&name, InputMode::MultiLabel);
    }
}

#[test]
fn binary_components_match_skimage() {
    let names = fixtures("sk__");
    assert!(names.len() >= 11);
    for name in names {
        check_components(&name, InputMode::Binary);
    }
}

fn view3<T>(a: &ArrayD<T>) -> ndarray::ArrayView3<'_, T> {
    a.view().into_dimensionality::<Ix3>().expect("3D fixture")
}

#[test]
fn relabel_sequential_matches_skimage() {
    fn run<T: LabelValue + ndarray_npy::ReadableElement>(case: &str, input: &ArrayD<T>) {
        let (out, map) = relabel_sequential(view3(input), &mut NoProgress).expect("relabel");
        let expected: ArrayD<T> =
            read_npy(dir().join(format!("relabel__{case}.npy"))).expect("out");
        assert_eq!(out.into_dyn(), expected, "{case}");
        let old: ndarray::Array1<T> =
            read_npy(dir().join(format!("relabel_in__{case}.npy"))).expect("in");
        let new: ndarray::Array1<T> =
            read_npy(dir().join(format!("relabel_out__{case}.npy"))).expect("out");
        assert_eq!(map.old_ids(), old.as_slice().expect("contiguous"), "{case}");
        for (&o, &n) in old.iter().zip(&new) {
            assert_eq!(map.forward(o), Some(n), "{case}");
            assert_eq!(map.inverse(n), Some(o), "{case}");
        }
    }
    let names = fixtures("relabel__");
    assert_eq!(names.len(), 3);
    for name in names {
        let case = parts(&name)[1].to_owned();
        match read_any(&format!("in__{case}")) {
            Vol::U8(a) => run(&case, &a),
            Vol::U16(a) => run(&case, &a),
            Vol::U32(a) => run(&case, &a),
        }
    }
}

#[test]
fn label_sizes_match_numpy_unique() {
    fn run<T: LabelValue + ndarray_npy::ReadableElement>(case: &str, input: &ArrayD<T>) {
        let sizes = label_sizes(view3(input), &mut NoProgress).expect("sizes");
        let ids: ndarray::Array1<T> =
            read_npy(dir().join(format!("sizes_ids__{case}.npy"))).expect("ids");
        let counts: ndarray::Array1<u64> =
            read_npy(dir().join(format!("sizes_counts__{case}.npy"))).expect("counts");
        let expected: Vec<(T, u64)> = ids.iter().copied().zip(counts.iter().copied()).collect();
        assert_eq!(sizes, expected, "{case}");
    }
    let names = fixtures("sizes_ids__");
    assert_eq!(names.len(), 3);
    for name in names {
        let case = parts(&name)[1].to_owned();
        match read_any(&format!("in__{case}")) {
            Vol::U8(a) => run(&case, &a),
            Vol::U16(a) => run(&case, &a),
            Vol::U32(a) => run(&case, &a),
        }
    }
}

fn filter<T: LabelValue>(input: &ArrayD<T>, params: &SizeFilterParams) -> ArrayD<u32> {
    let out = remove_small_objects(view3(input), params, &mut NoProgress).expect("filter");
    out.mapv(LabelValue::to_u32).into_dyn()
}

fn check_filter(name: &str, params: &SizeFilterParams) {
    let case = parts(name)[1];
    let expected = read_labels(name);
    let got = match read_any(&format!("in__{case}")) {
        Vol::U8(a) => filter(&a, params),
        Vol::U16(a) => filter(&a, params),
        Vol::U32(a) => filter(&a, params),
    };
    assert_eq!(got, expected, "{name}");
}

#[test]
fn size_filter_per_piece_matches_cc3d_dust() {
    let names = fixtures("dust__");
    assert_eq!(names.len(), 7);
    for name in names {
        let p = parts(&name);
        let params = SizeFilterParams {
            min_size: number(p[2]),
            connectivity: Some(conn3(number(p[3]))),
        };
        check_filter(&name, &params);
    }
}

#[test]
fn size_filter_per_id_matches_skimage() {
    let names = fixtures("rso__");
    assert_eq!(names.len(), 3);
    for name in names {
        let params = SizeFilterParams {
            min_size: number(parts(&name)[2]),
            connectivity: None,
        };
        check_filter(&name, &params);
    }
}

/// Whole 250 x 250 slices of real labels: count and checksum of cc3d's output.
#[test]
fn flyem_slices_match_cc3d_checksum() {
    let Some(folder) = common::shared_dir("flyem-medulla-fib/label") else {
        return;
    };
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_stack_file_name(n))
        .collect();
    names.sort();
    names.truncate(32);
    let files = names
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(folder.join(&n)).expect("read slice");
            (n, bytes)
        })
        .collect();
    let AnyVolume::U16(volume) = read_stack(files, &Limits::default()).expect("decode") else {
        panic!("flyem labels are 16-bit");
    };
    let volume = volume.to_array().expect("dense");
    for c in [6u64, 18, 26] {
        let expected: ndarray::Array1<u64> =
            read_npy(dir().join(format!("real__flyem_z32__c{c}.npy"))).expect("fixture");
        let params = Components3Params {
            connectivity: conn3(c),
            mode: InputMode::MultiLabel,
        };
        let (out, n) =
            connected_components_3d(volume.view(), &params, &mut NoProgress).expect("labels");
        let checksum = out.iter().enumerate().fold(0u64, |s, (i, &l)| {
            s.wrapping_add(u64::from(l) * (i as u64 % 7919))
        });
        assert_eq!([u64::from(n), checksum], [expected[0], expected[1]], "c{c}");
    }
}
