//! Benchmarks of the labelling kernels on real EM labels.
//!
//! `cargo run --release -p emstudio-core --example bench_labels -- /work/shared/data`
//!
//! Loads flyem-medulla-fib (250³ 16-bit instance labels) and isbi2012 (30×512×512, 255 = cell
//! interior), runs each kernel several times and prints one JSON line per kernel with the
//! median wall time: `{"kernel":"<name>","impl":"emstudio","ms":<median>}`. The same kernel
//! names are timed for the references by `scripts/golden/bench_labels.py`. Result checks
//! (component counts) go to stderr.
//!
//! Allocation policy matters on Linux: numpy asks for transparent huge pages for large arrays,
//! so cc3d's 62 MB output costs ~30 page faults where a plain Rust allocation costs ~15000.
//! Run with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` for the same policy here.

use emstudio_core::labels::components::{
    connected_components_2d, connected_components_3d, Components2Params, Components3Params,
    InputMode, LabelValue,
};
use emstudio_core::labels::relabel::{
    label_sizes, link_slices, relabel_sequential, remove_small_objects, LinkParams,
    SizeFilterParams,
};
use emstudio_core::neighborhood::{Connectivity2, Connectivity3};
use emstudio_core::progress::NoProgress;
use emstudio_core::stack::{is_stack_file_name, read_stack, Limits};
use emstudio_core::AnyVolume;
use ndarray::{Array3, ArrayView3, Axis};
use std::path::Path;
use std::time::Instant;

const REPEATS: usize = 7;

fn load(dir: &Path) -> AnyVolume {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("data folder") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_stack_file_name(&name) {
            files.push((name, std::fs::read(entry.path()).expect("read slice")));
        }
    }
    read_stack(files, &Limits::default()).expect("decode stack")
}

/// Median milliseconds of `REPEATS` runs of `f` (after one warm-up run).
fn time<R>(mut f: impl FnMut() -> R) -> f64 {
    std::hint::black_box(f());
    let mut ms: Vec<f64> = (0..REPEATS)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[REPEATS / 2]
}

fn report(kernel: &str, ms: f64) {
    println!("{{\"kernel\":\"{kernel}\",\"impl\":\"emstudio\",\"ms\":{ms:.3}}}");
}

fn cc3<T: LabelValue>(kernel: &str, v: ArrayView3<'_, T>, c: Connectivity3, mode: InputMode) {
    let params = Components3Params {
        connectivity: c,
        mode,
    };
    let run = || connected_components_3d(v, &params, &mut NoProgress).expect("labels");
    eprintln!("{kernel}: {} components", run().1);
    report(kernel, time(run));
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/work/shared/data".into());
    let root = Path::new(&root);

    let flyem: Array3<u16> = match load(&root.join("flyem-medulla-fib/label")) {
        AnyVolume::U16(v) => v.to_array().expect("dense"),
        other => panic!("flyem labels are 16-bit, got {}", other.dtype()),
    };
    let fly = flyem.view();
    cc3(
        "cc3d_multilabel_26",
        fly,
        Connectivity3::C26,
        InputMode::MultiLabel,
    );
    cc3(
        "cc3d_multilabel_18",
        fly,
        Connectivity3::C18,
        InputMode::MultiLabel,
    );
    cc3(
        "cc3d_multilabel_6",
        fly,
        Connectivity3::C6,
        InputMode::MultiLabel,
    );
    let fg: Array3<u8> = flyem.mapv(|v| u8::from(v > 0));
    cc3(
        "cc3d_binary_26",
        fg.view(),
        Connectivity3::C26,
        InputMode::Binary,
    );
    cc3(
        "cc3d_binary_6",
        fg.view(),
        Connectivity3::C6,
        InputMode::Binary,
    );

    let isbi: Array3<u8> = match load(&root.join("isbi2012/label")) {
        AnyVolume::U8(v) => v.to_array().expect("dense"),
        other => panic!("isbi labels are 8-bit, got {}", other.dtype()),
    };
    let interior = isbi.view();
    cc3(
        "cc3d_binary_26_isbi",
        interior,
        Connectivity3::C26,
        InputMode::Binary,
    );
    cc3(
        "cc3d_binary_6_isbi",
        interior,
        Connectivity3::C6,
        InputMode::Binary,
    );
    let p4 = Components2Params {
        connectivity: Connectivity2::C4,
        mode: InputMode::Binary,
    };
    report(
        "cc2d_binary_4_isbi_per_slice",
        time(|| {
            interior
                .axis_iter(Axis(0))
                .map(|s| connected_components_2d(s, &p4).expect("2d").1)
                .sum::<u32>()
        }),
    );

    report(
        "relabel_sequential",
        time(|| relabel_sequential(fly, &mut NoProgress).expect("relabel")),
    );
    report(
        "label_sizes",
        time(|| label_sizes(fly, &mut NoProgress).expect("sizes")),
    );
    let dust = SizeFilterParams {
        min_size: 1000,
        connectivity: Some(Connectivity3::C26),
    };
    report(
        "dust_26",
        time(|| remove_small_objects(fly, &dust, &mut NoProgress).expect("dust")),
    );
    let by_id = SizeFilterParams {
        min_size: 1000,
        connectivity: None,
    };
    report(
        "remove_small_objects_by_id",
        time(|| remove_small_objects(fly, &by_id, &mut NoProgress).expect("filter")),
    );

    // Linking: the flyem labels cut into per-slice 8-connected segments, linked back.
    let p8 = Components2Params {
        connectivity: Connectivity2::C8,
        mode: InputMode::MultiLabel,
    };
    let mut per_slice = Array3::<u32>::zeros(fly.dim());
    for (src, mut dst) in fly.axis_iter(Axis(0)).zip(per_slice.axis_iter_mut(Axis(0))) {
        dst.assign(&connected_components_2d(src, &p8).expect("2d").0);
    }
    let link = LinkParams { min_overlap: 0.5 };
    let run = || link_slices(per_slice.view(), &link, &mut NoProgress).expect("link");
    eprintln!("link_slices: {} objects", run().1);
    report("link_slices", time(run));
}
