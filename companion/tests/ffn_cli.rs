//! `emstudio ffn …` end to end: `prepare` (a label stack on disk → partitions.tif and
//! ffn-prepare.json, read back and compared with the library), `train` → `evaluate` →
//! `infer` (a model file made, scored and run on a small synthetic volume, with resume), and
//! bad input named (shapes, masks instead of instances, a 2D model, a box off the volume).

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

/// Eight boxes of cells (bright inside, a dark membrane on their faces), 20 × 32 × 32, with
/// their dense labels.
fn cells() -> (Array3<u8>, Array3<u16>) {
    let labels = Array3::from_shape_fn((20, 32, 32), |(z, y, x)| {
        1 + u16::from(z >= 10) * 4 + u16::from(y >= 16) * 2 + u16::from(x >= 16)
    });
    let image = Array3::from_shape_fn((20, 32, 32), |(z, y, x)| {
        let edge = |v: usize, half: usize| v % half == 0 || v % half == half - 1;
        if edge(z, 10) || edge(y, 16) || edge(x, 16) {
            40
        } else {
            200 - ((z * 7 + y * 3 + x) % 11) as u8
        }
    });
    (image, labels)
}

/// [`cells`] written as PNG series under `dir`: the image's and the labels' folders.
fn cells_on_disk(dir: &std::path::Path) -> (String, String) {
    let (image, labels) = cells();
    let (image_dir, label_dir) = (dir.join("image"), dir.join("label"));
    write_png_series(
        &AnyVolume::U8(Volume::from_array(image.view()).expect("v")),
        &image_dir,
    );
    write_png_series(
        &AnyVolume::U16(Volume::from_array(labels.view()).expect("v")),
        &label_dir,
    );
    (
        image_dir.display().to_string(),
        label_dir.display().to_string(),
    )
}

/// `emstudio ffn ARGS…`.
fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_emstudio"))
        .arg("ffn")
        .args(args)
        .output()
        .expect("run")
}

#[test]
fn train_evaluate_and_infer_make_score_and_run_a_model() {
    let dir = tempfile::tempdir().expect("tmp");
    let (img, lab) = cells_on_disk(dir.path());
    let model = dir.path().join("cells.emsffn").display().to_string();
    let tiny = [
        "--depth",
        "1",
        "--features",
        "2",
        "--fov",
        "7,7,7",
        "--deltas",
        "2,2,2",
        "--min-size",
        "10",
        "--device",
        "cpu",
        "-q",
    ];
    let mut train = vec![
        "train", "-i", &img, "-l", &lab, "-o", &model, "--steps", "3",
    ];
    train.extend_from_slice(&tiny);
    let done = run(&train);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(stdout.contains("trained 3 steps"), "{stdout}");
    let file = emstudio_nets::ffn::file::FfnModelFile::from_bytes(
        &std::fs::read(&model).expect("model written"),
    )
    .expect("a valid FFN model file");
    assert_eq!(file.header.provenance.steps, 3);
    assert_eq!(file.header.network.fov, [7, 7, 7]);
    assert!(file.optimizer.is_some(), "saved for resuming");

    // Resume: two more steps on top of the three.
    let more = dir.path().join("more.emsffn").display().to_string();
    let mut resume = vec![
        "train", "-i", &img, "-l", &lab, "-o", &more, "--steps", "2", "--init", &model, "--resume",
    ];
    resume.extend_from_slice(&tiny);
    let done = run(&resume);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let resumed =
        emstudio_nets::ffn::file::FfnModelFile::from_bytes(&std::fs::read(&more).expect("more"))
            .expect("model");
    assert_eq!(resumed.header.provenance.steps, 5);
    // --drop-optimizer: the final file is smaller and still runs.
    let small = dir.path().join("small.ffn").display().to_string();
    let mut dropped = vec![
        "train",
        "-i",
        &img,
        "-l",
        &lab,
        "-o",
        &small,
        "--steps",
        "1",
        "--drop-optimizer",
    ];
    dropped.extend_from_slice(&tiny);
    let done = run(&dropped);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let small =
        emstudio_nets::ffn::file::FfnModelFile::from_bytes(&std::fs::read(&small).expect("small"))
            .expect("model");
    assert!(small.optimizer.is_none());

    let done = run(&[
        "evaluate",
        "-m",
        &model,
        "-i",
        &img,
        "-l",
        &lab,
        "--centres",
        "4",
        "--min-size",
        "10",
        "--region",
        "0:20,:,:",
        "--device",
        "cpu",
        "-q",
    ]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let scores: serde_json::Value =
        serde_json::from_slice(&done.stdout).expect("evaluate prints JSON");
    assert_eq!(scores["centres"], 4);
    let f1 = scores["f1"].as_f64().expect("f1");
    assert!((0.0..=1.0).contains(&f1), "{f1}");

    let seg = dir.path().join("seg.tif").display().to_string();
    let done = run(&[
        "infer",
        "-m",
        &model,
        "-i",
        &img,
        "--region",
        "2:18,:,:",
        "--truth",
        &lab,
        "--min-segment-size",
        "5",
        "-o",
        &seg,
        "--device",
        "cpu",
        "-q",
    ]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(stdout.contains("objects from"), "{stdout}");
    let json = stdout.lines().nth(1).expect("scores line");
    let scores: serde_json::Value = serde_json::from_str(json).expect("scores JSON");
    let are = scores["adapted_rand_error"].as_f64().expect("ARAND");
    assert!((0.0..=1.0).contains(&are), "{are}");
    let out = read_stack(
        vec![("seg.tif".into(), std::fs::read(&seg).expect("seg written"))],
        &Limits::default(),
    )
    .expect("labels");
    assert_eq!((out.shape().z, out.shape().y, out.shape().x), (16, 32, 32));

    // In blocks, with checkpoints: a run stopped after some blocks goes on from them and gives
    // the same labels; a checkpoint folder of other settings is refused by name.
    // A model that has learnt these cells a little (the three-step one keeps no object).
    let learnt = dir.path().join("learnt.emsffn").display().to_string();
    let mut train = vec![
        "train", "-i", &img, "-l", &lab, "-o", &learnt, "--steps", "150",
    ];
    train.extend_from_slice(&tiny);
    let done = run(&train);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let ck = dir.path().join("ck");
    let blocked = |out: &str, extra: &[&str]| {
        let ck = ck.display().to_string();
        let mut args = vec![
            "infer",
            "-m",
            &learnt,
            "-i",
            &img,
            "--block-depth",
            "5",
            "--block-overlap",
            "7",
            "--checkpoint-dir",
            &ck,
            "--move-threshold",
            "0.5",
            "--min-segment-size",
            "5",
            "-o",
            out,
            "--device",
            "cpu",
            "-q",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let first = dir.path().join("blocks-first.tif").display().to_string();
    let done = blocked(&first, &[]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let stdout = String::from_utf8_lossy(&done.stdout);
    eprintln!("{stdout}");
    assert!(
        stdout.contains("in 4 blocks (overlap 7; 0 of them from"),
        "{stdout}"
    );
    let block_files = |n| ck.join(format!("block-{n:04}.tif"));
    assert!((0..4).all(|k| block_files(k).exists()));
    assert!(ck.join("ffn-infer.json").exists());
    // As if the run had stopped during block 2: its file and the next are missing.
    std::fs::remove_file(block_files(2)).expect("rm");
    std::fs::remove_file(block_files(3)).expect("rm");
    let again = dir.path().join("blocks-again.tif").display().to_string();
    let done = blocked(&again, &[]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(stdout.contains("2 of them from"), "{stdout}");
    let read = |path: &str| {
        read_stack(
            vec![("s.tif".into(), std::fs::read(path).expect("written"))],
            &Limits::default(),
        )
        .expect("labels")
        .to_label_array()
        .expect("ids")
    };
    let (a, b) = (read(&first), read(&again));
    assert!(a.iter().any(|&v| v != 0), "the blocks found objects");
    assert_eq!(
        a, b,
        "a resumed run gives the labels of an uninterrupted one"
    );
    let other = blocked(&again, &["--segment-threshold", "0.7"]);
    assert!(!other.status.success());
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(
        stderr.contains("\"options\"") && stderr.contains("--checkpoint-dir"),
        "{stderr}"
    );

    // Bad input, each named.
    let (_, labels) = cells();
    let mask_dir = dir.path().join("mask");
    write_png_series(
        &AnyVolume::U8(Volume::from_array(labels.mapv(|v| u8::from(v > 4)).view()).expect("v")),
        &mask_dir,
    );
    let short_dir = dir.path().join("short");
    write_png_series(
        &AnyVolume::U16(
            Volume::from_array(labels.slice(ndarray::s![..10, .., ..]).view()).expect("v"),
        ),
        &short_dir,
    );
    let two_d = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../demo/uniem-ac3-mito/models/ac3-mito-unet.emsmodel")
    .display()
    .to_string();
    let (mask, short) = (
        mask_dir.display().to_string(),
        short_dir.display().to_string(),
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["train", "-i", &img, "-l", &short, "-o", &more],
            "must have one shape",
        ),
        (
            vec!["train", "-i", &img, "-l", &mask, "-o", &more],
            "instance",
        ),
        (
            vec![
                "train", "-i", &img, "-l", &lab, "-o", &more, "--preset", "huge",
            ],
            "--preset",
        ),
        (
            vec![
                "train", "-i", &img, "-l", &lab, "-o", &more, "--fov", "8,7,7",
            ],
            "odd size",
        ),
        (
            vec![
                "train", "-i", &img, "-l", &lab, "-o", &more, "--region", "0:40,:,:",
            ],
            "leaves the volume",
        ),
        (
            vec![
                "train",
                "-i",
                &img,
                "-l",
                &lab,
                "-o",
                &more,
                "--preset",
                "isotropic",
            ],
            "smaller than the training canvas",
        ),
        (
            vec!["infer", "-m", &two_d, "-i", &img, "-o", &seg],
            "2D network model",
        ),
        (
            vec![
                "infer", "-m", &model, "-i", &img, "-o", &seg, "--region", "0:4,:,:",
            ],
            "smaller than the network's field of view",
        ),
    ];
    for (args, says) in cases {
        let failed = run(&args);
        assert!(!failed.status.success(), "{args:?} accepted");
        let stderr = String::from_utf8_lossy(&failed.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn train_takes_the_partitions_prepare_wrote_and_refuses_ones_made_otherwise() {
    let dir = tempfile::tempdir().expect("tmp");
    let (img, lab) = cells_on_disk(dir.path());
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // FOV 7 moving by 2: a training canvas of 11, so a box radius and margin of 5.
    let prepared = dir.path().join("prep").display().to_string();
    ok(run(&[
        "prepare",
        "-l",
        &lab,
        "-o",
        &prepared,
        "--lom-radius",
        "5,5,5",
        "--margin",
        "5,5,5",
        "--min-size",
        "10",
        "-q",
    ]));
    let tiny = [
        "--depth",
        "1",
        "--features",
        "2",
        "--fov",
        "7,7,7",
        "--device",
        "cpu",
        "--steps",
        "2",
        "--region",
        "2:18,:,:",
        "-q",
    ];
    // `--min-size` and `--deltas` vary below: given once each.
    let train = |out: &str, min_size: &str, deltas: &str, extra: &[&str]| {
        let mut args = vec!["train", "-i", &img, "-l", &lab, "-o", out];
        args.extend_from_slice(&tiny);
        args.extend_from_slice(&["--min-size", min_size, "--deltas", deltas]);
        args.extend_from_slice(extra);
        run(&args)
    };
    let computed = dir.path().join("computed.ffn").display().to_string();
    let reused = dir.path().join("reused.ffn").display().to_string();
    ok(train(&computed, "10", "2,2,2", &[]));
    ok(train(&reused, "10", "2,2,2", &["--partitions", &prepared]));
    let read = |path: &str| {
        emstudio_nets::ffn::file::FfnModelFile::from_bytes(&std::fs::read(path).expect("model"))
            .expect("model")
    };
    // The same centres, the same training: the same network (the records' parameter IDs are
    // drawn afresh by each run, so the networks are compared by what they predict).
    let predict = |file: &emstudio_nets::ffn::file::FfnModelFile| {
        use emstudio_nets::ffn::infer::FovPredictor;
        let device = emstudio_nets::Device::flex();
        let net = file.load_net(&device).expect("net");
        let image: Vec<f32> = (0..343)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let seed: Vec<f32> = (0..343)
            .map(|i| if i == 171 { 2.0 } else { -2.0 })
            .collect();
        emstudio_nets::ffn::infer::NetPredictor { net: &net, device }
            .predict(image, seed, [7, 7, 7])
            .expect("predict")
    };
    let (a, b) = (read(&computed), read(&reused));
    assert_eq!(predict(&a), predict(&b), "the same weights");
    assert_eq!(a.header.provenance.steps, 2);

    // Partitions of other settings are refused, naming the setting.
    let other = dir.path().join("other.ffn").display().to_string();
    for (min_size, deltas, says) in [
        ("20", "2,2,2", "--min-size 10, this training needs 20"),
        (
            "10",
            "3,3,3",
            "--lom-radius 5,5,5 (z,y,x), this training needs 6,6,6",
        ),
    ] {
        let failed = train(&other, min_size, deltas, &["--partitions", &prepared]);
        assert!(!failed.status.success(), "{min_size} {deltas} accepted");
        let stderr = String::from_utf8_lossy(&failed.stderr);
        assert!(stderr.contains(says), "{min_size} {deltas}: {stderr}");
        assert!(!std::path::Path::new(&other).exists(), "nothing written");
    }
    let missing = dir.path().join("nothing").display().to_string();
    let failed = train(&other, "10", "2,2,2", &["--partitions", &missing]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        !failed.status.success() && stderr.contains("ffn-prepare.json: cannot read"),
        "{stderr}"
    );
}

#[test]
fn import_makes_a_model_file_from_the_pytorch_twins_weights_and_names_a_mismatch() {
    use emstudio_nets::ffn::file::{FfnHeader, FfnModelFile};
    use emstudio_nets::ffn::net::FfnConfig;
    use emstudio_nets::model::{Normalization, Provenance};
    // The golden fixture of `crates/nets/tests/golden_ffn_net.rs` (depth 3, 4 features,
    // FOV 9×7×5): that test checks the import against PyTorch's outputs; this one checks the
    // command makes the same file and names what does not fit.
    let weights = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../crates/nets/tests/golden/ffn/small.safetensors");
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("small.ffn");
    let run = |features: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_emstudio"))
            .args(["ffn", "import", "--safetensors"])
            .arg(&weights)
            .args([
                "--preset",
                "light",
                "--depth",
                "3",
                "--features",
                features,
                "--fov",
                "9,7,5",
                "--deltas",
                "2,2,1",
                "--mean",
                "0.45",
                "--std",
                "0.2",
                "-o",
            ])
            .arg(&out)
            .output()
            .expect("run")
    };
    let done = run("4");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(stdout.contains("small.safetensors"), "{stdout}");
    let file = FfnModelFile::from_bytes(&std::fs::read(&out).expect("written")).expect("valid");
    let network = FfnConfig {
        depth: 3,
        features: 4,
        fov: [9, 7, 5],
        deltas: [2, 2, 1],
    };
    assert_eq!(file.header.network, network);
    assert_eq!(
        file.header.normalization,
        Normalization {
            mean: 0.45,
            std: 0.2
        }
    );
    assert_eq!(
        file.header.provenance.imported_from.as_deref(),
        Some("small.safetensors")
    );
    let direct = FfnModelFile::import_safetensors(
        FfnHeader {
            network,
            normalization: file.header.normalization,
            provenance: Provenance::default(),
        },
        std::fs::read(&weights).expect("fixture"),
        "small.safetensors",
        &emstudio_nets::Device::flex(),
    )
    .expect("import");
    // The same network (the weight records carry random parameter IDs, so compare outputs).
    let device = emstudio_nets::Device::flex();
    let input = |phase: f32| {
        let values: Vec<f32> = (0..5 * 7 * 9)
            .map(|i| (i as f32 * 0.37 + phase).sin())
            .collect();
        burn::tensor::Tensor::<5>::from_data(
            burn::tensor::TensorData::new(values, [1, 1, 5, 7, 9]),
            &device,
        )
    };
    let outputs = [&file, &direct].map(|f| {
        let net = f.load_net(&device).expect("load");
        net.forward(input(0.0), input(1.0))
            .into_data()
            .try_to_vec::<f32>()
            .expect("floats")
    });
    assert_eq!(outputs[0], outputs[1], "the library's import, bit for bit");

    std::fs::remove_file(&out).expect("rm");
    let refused = run("5");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("small.safetensors") && stderr.contains("do not match"),
        "{stderr}"
    );
    assert!(
        !out.exists(),
        "no file is written for weights that do not fit"
    );
}
