//! `emstudio ffn prepare` end to end: a label stack on disk → partitions.tif and
//! ffn-prepare.json, read back and compared with the library; bad flags named.

mod common;

use common::write_png_series;
use emstudio_core::ffn_data::{class_counts, compute_partitions, PartitionParams};
use emstudio_core::progress::NoProgress;
use emstudio_core::stack::{read_stack, Limits};
use emstudio_core::{AnyVolume, Volume};
use ndarray::Array3;

/// Two slabs of objects along x and a lone small one, 12 × 20 × 24.
fn labels() -> Array3<u16> {
    Array3::from_shape_fn((12, 20, 24), |(z, y, x)| match (y < 9, x) {
        _ if (5..7).contains(&z) && (10..12).contains(&y) && (16..18).contains(&x) => 9,
        (true, _) => 1,
        (false, x) if x < 15 => 2,
        _ => 0,
    })
}

#[test]
fn prepare_writes_partitions_and_their_classes() {
    let dir = tempfile::tempdir().expect("tmp");
    let stack = dir.path().join("labels");
    let labels = labels();
    write_png_series(
        &AnyVolume::U16(Volume::from_array(labels.view()).expect("v")),
        &stack,
    );
    let out = dir.path().join("prep");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "ffn".to_string(),
            "prepare".into(),
            "-l".into(),
            stack.display().to_string(),
            "-o".into(),
            out.display().to_string(),
            "-q".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        std::process::Command::new(env!("CARGO_BIN_EXE_emstudio"))
            .args(&args)
            .output()
            .expect("run")
    };
    let done = run(&[
        "--lom-radius",
        "2,3,3",
        "--min-size",
        "10",
        "--margin",
        "3,4,4",
    ]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        stdout.contains("classes") && stdout.contains("prep"),
        "{stdout}"
    );

    let params = PartitionParams {
        lom_radius: [2, 3, 3],
        min_size: 10,
        ..PartitionParams::default()
    };
    let expected = compute_partitions(labels.mapv(u32::from).view(), &params, &mut NoProgress)
        .expect("partitions");
    let bytes = std::fs::read(out.join("partitions.tif")).expect("partitions.tif");
    let written = read_stack(vec![("partitions.tif".into(), bytes)], &Limits::default())
        .expect("read back")
        .to_label_array()
        .expect("u8 labels");
    assert_eq!(written.mapv(|v| v as u8), expected);
    // The small object (8 voxels) is background, as dust.
    assert_eq!(expected[[5, 10, 16]], 0);

    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("ffn-prepare.json")).expect("ffn-prepare.json"),
    )
    .expect("json");
    let classes = class_counts(expected.view(), [3, 4, 4]).expect("classes");
    let listed: Vec<(u8, u64)> = json["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| {
            (
                c[0].as_u64().expect("value") as u8,
                c[1].as_u64().expect("voxels"),
            )
        })
        .collect();
    assert_eq!(listed, classes);
    let largest = classes.iter().map(|(_, n)| *n).max().expect("a class");
    assert_eq!(
        json["coordinates"].as_u64(),
        Some(largest * classes.len() as u64)
    );
    assert_eq!(json["margin"], serde_json::json!([3, 4, 4]));

    for (flags, says) in [
        (
            vec!["--margin", "3,4"],
            "--margin: give three whole numbers",
        ),
        (vec!["--thresholds", "0.5,x"], "--thresholds"),
        (vec!["--thresholds", "0.5,0.2"], "ascending"),
        (vec!["--lom-radius", "6,3,3"], "too small"),
        (vec!["--lom-radius", "2,3,3", "--margin", "6,4,4"], "margin"),
    ] {
        let failed = run(&flags);
        assert!(!failed.status.success(), "{flags:?} accepted");
        let stderr = String::from_utf8_lossy(&failed.stderr);
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
    }
}
