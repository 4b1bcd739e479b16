//! Labelling in blocks (`labels::blocks`, what the browser's helper workers run) on real EM
//! data: flyem-medulla-fib (250³), its Otsu mask. Connected components in slabs must equal the
//! whole-volume result; a distance watershed in blocks must stay close to the whole-volume run,
//! far closer than the same blocks without the merge step. Skipped without the data (failing
//! under CI; see `common::shared_dir`).

mod common;

use emstudio_core::filters::intensity::otsu_threshold;
use emstudio_core::labels::blocks::{
    label_block, label_in_blocks, plain_blocks, plan_blocks, BlockLabelling, BlockParams,
};
use emstudio_core::labels::components::{connected_components_3d, Components3Params, InputMode};
use emstudio_core::metrics::{evaluate_labels_3d, EvaluateParams};
use emstudio_core::neighborhood::Connectivity3;
use emstudio_core::progress::NoProgress;
use emstudio_core::stack::{is_stack_file_name, read_stack, Limits};
use ndarray::{s, Array3};

/// The Otsu foreground of flyem-medulla-fib's image, or `None` without the data.
fn flyem_mask() -> Option<Array3<u8>> {
    let dir = common::shared_dir("flyem-medulla-fib/image")?;
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_stack_file_name(n))
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).expect("read file");
            (n, bytes)
        })
        .collect();
    files.sort();
    let volume = read_stack(files, &Limits::default()).expect("flyem image");
    let image = volume.to_f32_array(0..volume.shape().z).expect("f32");
    let t = otsu_threshold(image.as_slice().expect("standard layout"), 256);
    Some(image.mapv(|v| u8::from(v > t)))
}

/// Adapted Rand error of `labels` against `reference`, and the number of objects of each.
fn disagreement(reference: &Array3<u32>, labels: &Array3<u32>) -> f64 {
    let e = evaluate_labels_3d(
        reference.view(),
        labels.view(),
        &EvaluateParams::default(),
        &mut NoProgress,
    )
    .expect("evaluate");
    e.report.adapted_rand_error
}

#[test]
fn blocks_on_flyem_fib() {
    let Some(mask) = flyem_mask() else {
        return;
    };
    let depth = mask.dim().0;
    assert_eq!(depth, 250);

    // Components: five slabs merged = the whole volume, voxel for voxel.
    let how = BlockLabelling::Components3 {
        connectivity: Connectivity3::C26,
    };
    let params = Components3Params {
        connectivity: Connectivity3::C26,
        mode: InputMode::Binary,
    };
    let whole = connected_components_3d(mask.view(), &params, &mut NoProgress).expect("whole");
    let slabs = label_in_blocks(
        &how,
        mask.view(),
        None,
        &plain_blocks(depth, 5),
        &mut NoProgress,
    )
    .expect("slabs");
    assert_eq!(slabs, whole);

    // Distance watershed: the default blocks against the whole volume at once.
    let how = BlockLabelling::DistanceWatershed {
        sampling: [1.0; 3],
        min_distance: 8,
        connectivity: Connectivity3::C6,
    };
    let (whole, whole_objects) = label_in_blocks(
        &how,
        mask.view(),
        None,
        &plain_blocks(depth, 1),
        &mut NoProgress,
    )
    .expect("whole");
    let plan = plan_blocks(
        depth,
        BlockParams {
            depth: 64,
            halo: 24,
        },
    );
    assert_eq!(plan.len(), 4);
    let (blocked, objects) =
        label_in_blocks(&how, mask.view(), None, &plan, &mut NoProgress).expect("blocks");
    // The baseline: the same blocks, each numbered apart, not joined at the seams.
    let mut apart = Array3::<u32>::zeros(mask.dim());
    let mut offset = 0;
    for block in &plan {
        let read = s![block.read.clone(), .., ..];
        let (labels, max) = label_block(
            &how,
            mask.slice(read),
            None,
            block.send_in_read(),
            &mut NoProgress,
        )
        .expect("block");
        let own = labels.slice(s![block.keep_in_send(), .., ..]);
        apart
            .slice_mut(s![block.keep.clone(), .., ..])
            .assign(&own.mapv(|l| if l == 0 { 0 } else { l + offset }));
        offset += max;
    }
    let merged_error = disagreement(&whole, &blocked);
    let apart_error = disagreement(&whole, &apart);
    eprintln!(
        "distance watershed in blocks: {objects} objects (whole volume {whole_objects}), \
         adapted Rand error vs whole {merged_error:.5}, without the merge {apart_error:.5}"
    );
    assert!(merged_error < 0.005, "{merged_error}");
    assert!(
        merged_error * 10.0 < apart_error,
        "{merged_error} vs {apart_error}"
    );
    assert!(
        objects.abs_diff(whole_objects) * 50 < whole_objects,
        "{objects} vs {whole_objects}"
    );
}
