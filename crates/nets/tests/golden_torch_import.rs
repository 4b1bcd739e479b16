//! Weights written by PyTorch import into EM Studio and give PyTorch's outputs.
//!
//! The fixtures in tests/golden/ are made by `scripts/golden/gen_nets.py` from the PyTorch twins
//! of our architectures (`scripts/golden/torch_nets.py`): a `state_dict` saved with
//! `safetensors.torch.save_file`, an input batch and the eval-mode output. Each case imports the
//! weights with [`ModelFile::import_safetensors`], runs the same input and compares; it also
//! exports the weights again and checks PyTorch's tensors come back unchanged.

use burn::prelude::*;
use emstudio_nets::arch::{ArchConfig, NetIo, SegNet};
use emstudio_nets::model::{ModelFile, ModelHeader, Normalization, Provenance};
use safetensors::SafeTensors;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    arch: ArchConfig,
    in_channels: usize,
    out_channels: usize,
}

fn golden() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("tests/golden")
}

/// A float32 tensor of a safetensors file as (shape, values).
fn tensor(file: &SafeTensors<'_>, name: &str) -> (Vec<usize>, Vec<f32>) {
    let t = file.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
    let values = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (t.shape().to_vec(), values)
}

/// The larger of `worst` and `d`, where a NaN wins (`f32::max` returns the other operand, so
/// a NaN difference would never raise the maximum).
fn nan_max(worst: f32, d: f32) -> f32 {
    if d.is_nan() || d > worst {
        d
    } else {
        worst
    }
}

/// The largest `|a - b|`, or NaN when any difference is NaN, so that `<= tol` fails on a NaN.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, nan_max)
}

#[test]
fn max_abs_diff_keeps_a_nan() {
    assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.5, 2.0]), 0.5);
    for nan_at in 0..3 {
        let mut got = [1.0, 2.0, 3.0];
        got[nan_at] = f32::NAN;
        let worst = max_abs_diff(&got, &[1.0, 2.5, 3.0]);
        assert!(worst.is_nan(), "NaN at {nan_at}: {worst}");
        let within = worst <= 1e-4;
        assert!(!within, "a NaN difference passes the tolerance");
    }
}

#[test]
fn pytorch_weights_import_and_match_pytorch_outputs() {
    let cases: Cases = serde_json::from_str(
        &std::fs::read_to_string(golden().join("cases.json")).expect("cases.json"),
    )
    .expect("parse cases.json");
    assert!(cases.cases.len() >= 5);
    let device = Device::flex();
    for case in &cases.cases {
        let weights = std::fs::read(golden().join(format!("{}.safetensors", case.name)))
            .expect("weights fixture");
        let io_bytes = std::fs::read(golden().join(format!("{}.io.safetensors", case.name)))
            .expect("io fixture");
        let io = SafeTensors::deserialize(&io_bytes).expect("io safetensors");
        let header = ModelHeader {
            arch: case.arch.clone(),
            io: NetIo {
                in_channels: case.in_channels,
                out_channels: case.out_channels,
            },
            normalization: Normalization::default(),
            provenance: Provenance::default(),
        };
        let model = ModelFile::import_safetensors(header, weights.clone(), &case.name, &device)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let net = model.load_net(&device).expect("load");

        let (shape, input) = tensor(&io, "input");
        let (out_shape, expected) = tensor(&io, "output");
        let x = Tensor::<4>::from_data(
            TensorData::new(input, [shape[0], shape[1], shape[2], shape[3]]),
            &device,
        );
        let y = net.forward(x);
        assert_eq!(y.dims().to_vec(), out_shape, "{}", case.name);
        let got = y.into_data().try_into_vec::<f32>().expect("f32 output");
        let scale = expected.iter().fold(1f32, |m, v| m.max(v.abs()));
        let worst = max_abs_diff(&got, &expected);
        assert!(
            worst <= 1e-4 * scale,
            "{}: largest difference from PyTorch {worst} (output scale {scale})",
            case.name
        );

        // Export writes PyTorch's names and layouts back.
        let exported = model.export_safetensors(&device).expect("export");
        let exported = SafeTensors::deserialize(&exported).expect("exported safetensors");
        let original = SafeTensors::deserialize(&weights).expect("fixture safetensors");
        for name in original.names() {
            if name.ends_with("num_batches_tracked") {
                continue;
            }
            assert_eq!(
                tensor(&exported, name),
                tensor(&original, name),
                "{}: {name}",
                case.name
            );
        }
    }
}
