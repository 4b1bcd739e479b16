//! `emstudio train` and `emstudio infer` on colour (RGB) stacks: a network trained on a PNG
//! series where the objects differ from the background only in hue finds them in a slice it
//! did not see, and mixing a colour model with a grayscale stack is refused with a message
//! that names both files.

mod common;
use common::write_png_series;

use emstudio_companion::cli::OutputSpec;
use emstudio_companion::nets_cli::{self, DeviceChoice, InferArgs, TrainArgs};
use emstudio_core::stack::{BitDepth, ExportFormat};
use emstudio_core::volume::{Shape, Volume};
use emstudio_core::AnyVolume;
use emstudio_nets::arch::{unet::UNetConfig, ArchConfig};
use emstudio_nets::augment::AugmentConfig;
use emstudio_nets::train::{Schedule, TrainConfig};
use std::path::Path;

/// Boxes at a different place on each slice.
fn inside(z: usize, y: usize, x: usize) -> bool {
    let (oy, ox) = (4 + (z * 5) % 12, 6 + (z * 11) % 20);
    (oy..oy + 12).contains(&y) && ((ox..ox + 10).contains(&x) || (ox + 20..ox + 28).contains(&x))
}

/// 4 × 32 × 64 RGB: reddish boxes on a greenish background of the same brightness, and the
/// box masks.
fn colour_stack() -> (AnyVolume, AnyVolume) {
    let shape = Shape::new(4, 32, 64);
    let mut image = Volume::<u8>::new(shape, 3).expect("rgb");
    let mut labels = Volume::<u8>::new(shape, 1).expect("labels");
    for z in 0..4 {
        let mut rgb = Vec::with_capacity(32 * 64 * 3);
        let mut mask = Vec::with_capacity(32 * 64);
        for y in 0..32 {
            for x in 0..64 {
                let noise = ((z * 31 + y * 17 + x * 7) % 13) as u8;
                let fg = inside(z, y, x);
                let (r, g) = if fg { (180, 80) } else { (80, 180) };
                rgb.extend([r + noise, g + noise, 128]);
                mask.push(u8::from(fg));
            }
        }
        image.set_slice(z, &rgb).expect("slice");
        labels.set_slice(z, &mask).expect("slice");
    }
    (image.into(), labels.into())
}

/// [`colour_stack`] as PNG series in `image/` and `labels/` of a new temporary folder.
fn colour_stack_on_disk() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    let (image, labels) = colour_stack();
    write_png_series(&image, &dir.path().join("image"));
    write_png_series(&labels, &dir.path().join("labels"));
    dir
}

#[test]
fn a_network_trains_and_infers_on_colour_stacks() {
    let dir = colour_stack_on_disk();
    let model = dir.path().join("rgb.emsmodel");
    let summary = nets_cli::train(&TrainArgs {
        image: dir.path().join("image"),
        label: dir.path().join("labels"),
        slices: "0-2".into(),
        validation_slices: None,
        config: TrainConfig {
            arch: ArchConfig::UNet(UNetConfig {
                depth: 2,
                base_width: 8,
            }),
            steps: 80,
            batch: 4,
            patch: 32,
            learning_rate: 3e-3,
            schedule: Schedule::Constant,
            validation_every: 0,
            augment: AugmentConfig::none(),
            ..TrainConfig::default()
        },
        ignore_label: None,
        init: None,
        resume: false,
        output: model.clone(),
        checkpoint_every: 0,
        device: DeviceChoice::Cpu,
        quiet: true,
    })
    .expect("train");
    assert!(summary.contains("trained 80 steps"), "{summary}");

    let infer = |input: &Path, out: &Path| {
        nets_cli::infer(&InferArgs {
            model: model.clone(),
            image: input.to_path_buf(),
            slices: Some("3".into()),
            output: OutputSpec {
                path: out.to_path_buf(),
                series: ExportFormat::PngSeries,
                depth: BitDepth::Native,
                rescale: false,
            },
            tile: 256,
            batch: 2,
            views: 8,
            device: DeviceChoice::Cpu,
            quiet: true,
        })
    };
    let prob_path = dir.path().join("prob.tif");
    infer(&dir.path().join("image"), &prob_path).expect("infer");
    let prob = emstudio_companion::cli::read_stack_path(&prob_path, true).expect("read back");
    let prob = prob.to_f32_array(0..1).expect("gray map");
    let (mut hit, mut union) = (0usize, 0usize);
    for ((_, y, x), &p) in prob.indexed_iter() {
        let (fg, truth) = (p > 0.5, inside(3, y, x));
        hit += usize::from(fg && truth);
        union += usize::from(fg || truth);
    }
    let iou = hit as f64 / union.max(1) as f64;
    assert!(iou > 0.6, "IoU on the held-out slice {iou:.3}");

    // `emstudio card` scores rows of the unseen slice and writes them into the model's card.
    let (mut hit, mut union) = (0usize, 0usize);
    for ((_, y, x), &p) in prob
        .indexed_iter()
        .filter(|((_, y, _), _)| (4..20).contains(y))
    {
        let (fg, truth) = (p >= 0.5, inside(3, y, x));
        hit += usize::from(fg && truth);
        union += usize::from(fg || truth);
    }
    let band_iou = hit as f64 / union.max(1) as f64;
    let carded = dir.path().join("carded.emsmodel");
    let card_args = |rows: &str| nets_cli::CardArgs {
        model: model.clone(),
        image: dir.path().join("image"),
        label: dir.path().join("labels"),
        slice: 3,
        rows: Some(rows.into()),
        text: "Reddish boxes.".into(),
        data_name: "the test stack".into(),
        drop_optimizer: true,
        output: Some(carded.clone()),
    };
    let said = nets_cli::card(&card_args("4-19")).expect("card");
    assert!(
        said.contains("rows 4–19 of slice 3 of the test stack"),
        "{said}"
    );
    let file = emstudio_nets::model::ModelFile::from_bytes(&std::fs::read(&carded).expect("read"))
        .expect("a model");
    let card = file.header.provenance.card.expect("a card");
    assert_eq!(card.text, "Reddish boxes.");
    assert!(
        (card.iou - band_iou).abs() < 1e-3,
        "card {} vs measured {band_iou}",
        card.iou
    );
    // Hue, not brightness, separates the boxes: no threshold of the gray image comes close.
    assert!(card.iou > card.threshold_iou + 0.2, "{card:?}");
    assert!(file.optimizer.is_none());
    assert!(std::fs::metadata(&carded).unwrap().len() < std::fs::metadata(&model).unwrap().len());
    let err = nets_cli::card(&card_args("20-40")).expect_err("rows past the slice");
    assert!(
        format!("{err:#}").contains("--rows 20-40: the slice has rows 0-31"),
        "{err:#}"
    );
    // Rows with no object and none predicted give no score (not a NaN in the file).
    let err = nets_cli::card(&card_args("24-31")).expect_err("nothing to score");
    assert!(format!("{err:#}").contains("nothing to score"), "{err:#}");

    // A colour model on a grayscale stack: refused, naming both.
    let err = infer(&dir.path().join("labels"), &dir.path().join("x.tif"))
        .expect_err("gray stack, RGB model");
    let text = format!("{err:#}");
    assert!(
        text.contains("rgb.emsmodel takes 3-channel (RGB) images")
            && text.contains("labels holds grayscale (1-channel) images"),
        "{text}"
    );
}

#[test]
fn train_takes_augmentation_and_weight_decay_settings_and_refuses_bad_ones() {
    let dir = colour_stack_on_disk();
    let model = dir.path().join("tuned.emsmodel");
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--image",
            "image",
            "--label",
            "labels",
            "--slices",
            "0-2",
            "--depth",
            "2",
            "--base-width",
            "4",
            "--steps",
            "2",
            "--batch",
            "2",
            "--patch",
            "32",
            "--device",
            "cpu",
            "-q",
            "-o",
            "tuned.emsmodel",
        ];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_emstudio"))
            .current_dir(dir.path())
            .args(&args)
            .output()
            .expect("run")
    };
    let ok = train(&[
        "--augment",
        r#"{"contrast":0.4,"elastic_pixels":0}"#,
        "--weight-decay",
        "0.0001",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let file = emstudio_nets::model::ModelFile::from_bytes(&std::fs::read(&model).expect("model"))
        .expect("model file");
    let training = file.header.provenance.training.expect("training settings");
    assert_eq!(
        training["augment"]["contrast"].as_f64(),
        Some(0.4f32 as f64)
    );
    assert_eq!(training["augment"]["elastic_pixels"].as_f64(), Some(0.0));
    // Fields left out keep their defaults.
    assert_eq!(training["augment"]["flips"].as_bool(), Some(true));
    assert_eq!(training["weight_decay"].as_f64(), Some(0.0001));

    let refused = |extra: &[&str], says: &str| {
        let out = train(extra);
        assert!(!out.status.success(), "{extra:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{extra:?}: {stderr}");
    };
    refused(
        &["--augment", r#"{"contrst":0.4}"#],
        "unknown field `contrst`",
    );
    refused(&["--augment", "{"], "--augment {");
    refused(&["--augment", "{}", "--no-augment"], "cannot be used with");
    refused(
        &["--weight-decay=-1"],
        "the weight decay must be 0 or positive",
    );
}

#[test]
fn a_model_with_a_broken_header_is_refused_naming_the_file() {
    use burn::prelude::Device;
    use emstudio_nets::arch::NetIo;
    use emstudio_nets::model::{ModelFile, ModelHeader, Normalization, Provenance};
    let dir = colour_stack_on_disk();
    let header = ModelHeader {
        arch: ArchConfig::UNet(UNetConfig {
            depth: 1,
            base_width: 2,
        }),
        io: NetIo {
            in_channels: 3,
            out_channels: 1,
        },
        // A std of 0 turned every input into ±infinity and the map into NaN, and `infer`
        // exited 0.
        normalization: Normalization {
            mean: 0.5,
            std: 0.0,
        },
        provenance: Provenance::default(),
    };
    let net = header.arch.build(&header.io, &Device::flex());
    let file = ModelFile::from_net(header, &net, None).expect("pack");
    let model = dir.path().join("edited.emsmodel");
    std::fs::write(&model, file.to_bytes()).expect("write");
    let err = nets_cli::infer(&InferArgs {
        model: model.clone(),
        image: dir.path().join("image"),
        slices: None,
        output: OutputSpec {
            path: dir.path().join("prob.tif"),
            series: ExportFormat::MultiPageTiff,
            depth: BitDepth::Native,
            rescale: false,
        },
        tile: 64,
        batch: 2,
        views: 1,
        device: DeviceChoice::Cpu,
        quiet: true,
    })
    .expect_err("std 0");
    let text = format!("{err:#}");
    assert!(
        text.contains("edited.emsmodel") && text.contains("std"),
        "{text}"
    );
    assert!(!dir.path().join("prob.tif").exists(), "no map is written");
}
