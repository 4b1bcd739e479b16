//! The model shipped with the AC3 demo (`demo/uniem-ac3-mito/models/`, made by
//! `scripts/demo_model.sh`): its card's scores are what it does, measured again here, on the
//! rows `emstudio train` held out of the slice, and it clearly beats a plain threshold there.

use emstudio_core::stack::{read_stack, Limits};
use emstudio_core::AnyVolume;
use emstudio_nets::card::{held_out_rows, score_rows};
use emstudio_nets::model::ModelFile;
use emstudio_nets::Device;
use std::path::{Path, PathBuf};

fn demo() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../../demo/uniem-ac3-mito")
}

fn read_layer(name: &str) -> AnyVolume {
    let dir = demo().join(name);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    files.sort();
    read_stack(files, &Limits::default()).expect("decode")
}

#[test]
fn the_shipped_demo_model_scores_what_its_card_says_on_rows_it_never_trained_on() {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(demo().join("dataset.json")).expect("dataset.json"))
            .expect("json");
    let models: Vec<&str> = manifest["models"]
        .as_array()
        .expect("dataset.json lists the shipped models")
        .iter()
        .map(|m| m.as_str().expect("a path"))
        .collect();
    assert!(!models.is_empty());
    let (image, label) = (read_layer("image"), read_layer("label"));
    let (h, w) = (image.shape().y, image.shape().x);
    let truth = ndarray::Array2::from_shape_vec(
        (h, w),
        label
            .try_slice_labels(0)
            .expect("labels")
            .iter()
            .map(|&v| v != 0)
            .collect(),
    )
    .expect("shape");
    let rows = held_out_rows(h);
    for path in models {
        let file = ModelFile::from_bytes(&std::fs::read(demo().join(path)).expect("model file"))
            .expect("a valid model");
        let card = file.header.provenance.card.clone().expect("a model card");
        assert!(
            card.held_out
                .contains(&format!("rows {}–{}", rows.start, rows.end - 1)),
            "{path}: scored on {}",
            card.held_out
        );
        // Trained on the one slice with nothing else to validate on: the trainer held out
        // exactly these rows.
        let training = file.header.provenance.training.as_ref().expect("settings");
        assert!(training["steps"].as_u64().is_some_and(|s| s > 0));
        let score = score_rows(
            &file,
            image.unit_f32_planes(0).view(),
            truth.view(),
            rows.clone(),
            &Device::flex(),
        )
        .expect("score");
        assert!(
            (score.iou - card.iou).abs() < 0.005,
            "{path}: IoU {} now, the card says {}",
            score.iou,
            card.iou
        );
        assert!(
            (score.threshold_iou - card.threshold_iou).abs() < 1e-9,
            "{path}: threshold IoU {} now, the card says {}",
            score.threshold_iou,
            card.threshold_iou
        );
        assert!(
            score.iou > (1.5 * score.threshold_iou).max(score.threshold_iou + 0.1),
            "{path}: held-out IoU {} vs the best plain threshold {}",
            score.iou,
            score.threshold_iou
        );
        // Small enough to ship with the site.
        let bytes = std::fs::metadata(demo().join(path)).expect("size").len();
        assert!(bytes < 2 << 20, "{path}: {bytes} bytes");
    }
}
