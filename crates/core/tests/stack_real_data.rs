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

/// The FlyEM demo (`demo/flyem-medulla/`, written by `cargo xtask demo-data`) is one
/// Deflate-compressed multi-page TIFF per layer holding slices 0–49 of flyem-medulla-fib.
#[test]
fn the_flyem_demo_tiffs_hold_the_first_fifty_slices() {
    let demo = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../../demo/flyem-medulla");
    for (layer, dtype) in [("image", DType::U8), ("label", DType::U16)] {
        let Some(files) = load(&format!("flyem-medulla-fib/{layer}"), 50) else {
            return;
        };
        let source = read_stack(files, &Limits::default()).expect("shared slices");
        let name = format!("flyem-medulla-{layer}.tif");
        let bytes = std::fs::read(demo.join(layer).join(&name)).expect("demo TIFF");
        let shipped = read_stack(vec![(name, bytes)], &Limits::default()).expect("demo stack");
        assert_eq!(shipped.dtype(), dtype);
        assert_eq!(shipped.shape(), Shape::new(50, 250, 250));
        assert!(
            shipped == source,
            "{layer}: the demo differs from the shared slices"
        );
    }
}
