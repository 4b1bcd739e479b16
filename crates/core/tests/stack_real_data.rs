//! Reads the real EM data sets when they are present (skipped otherwise, failing under CI; see
//! `common::shared_dir`).

mod common;

use emstudio_core::stack::{is_stack_file_name, read_stack, sort_natural, Limits};
use emstudio_core::{DType, Shape};

/// The first `take` slice files of the shared data folder `sub` (natural order) as names and
/// bytes, or `None` when the folder is missing.
fn load(sub: &str, take: usize) -> Option<Vec<(String, Vec<u8>)>> {
    let dir = common::shared_dir(sub)?;
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_stack_file_name(n))
        .collect();
    sort_natural(&mut names);
    names.truncate(take);
    Some(
        names
            .into_iter()
            .map(|n| {
                let bytes = std::fs::read(dir.join(&n)).expect("read file");
                (n, bytes)
            })
            .collect(),
    )
}

#[test]
fn isbi2012_images() {
    let Some(files) = load("isbi2012/image", usize::MAX) else {
        return;
    };
    assert_eq!(files.len(), 30);
    let v = read_stack(files, &Limits::default()).expect("isbi2012");
    assert_eq!(v.dtype(), DType::U8);
    assert_eq!(v.shape(), Shape::new(30, 512, 512));
    assert_eq!(v.channels(), 1);
    let (lo, hi) = v.min_max_f64();
    assert!(lo < hi, "an EM image is not constant");
}

#[test]
fn flyem_medulla_labels() {
    let Some(files) = load("flyem-medulla-fib/label", 10) else {
        return;
    };
    assert_eq!(files.len(), 10);
    let v = read_stack(files, &Limits::default()).expect("flyem labels");
    assert_eq!(v.dtype(), DType::U16);
    assert_eq!(v.shape(), Shape::new(10, 250, 250));
    assert_eq!(v.channels(), 1);
    let (_, hi) = v.min_max_f64();
    assert!(hi > 255.0, "16-bit label IDs, max {hi}");
}
