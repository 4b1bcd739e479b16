//! The flood-filling network against its PyTorch twin: weights written by PyTorch import into
//! an FFN model file and give PyTorch's outputs.
//!
//! Fixtures in tests/golden/ffn/ are made by `scripts/golden/gen_ffn_net.py` from the twin in
//! `scripts/golden/torch_ffn.py`: a `state_dict` with random weights and biases, an input pair
//! (image, mask logits) and the twin's output.

use burn::prelude::*;
use emstudio_nets::ffn::file::{FfnFileError, FfnHeader, FfnModelFile};
use emstudio_nets::ffn::net::FfnConfig;
use emstudio_nets::model::{Normalization, Provenance};
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
    network: FfnConfig,
}

fn golden() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("tests/golden/ffn")
}

fn tensor(file: &SafeTensors<'_>, name: &str, device: &Device) -> Tensor<5> {
    let t = file.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
    let values: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let s = t.shape();
    Tensor::from_data(
        TensorData::new(values, [s[0], s[1], s[2], s[3], s[4]]),
        device,
    )
}

fn header(network: FfnConfig) -> FfnHeader {
    FfnHeader {
        network,
        normalization: Normalization {
            mean: 0.5,
            std: 0.25,
        },
        provenance: Provenance::default(),
    }
}

#[test]
fn pytorch_ffn_weights_import_and_match_pytorch_outputs() {
    let cases: Cases = serde_json::from_str(
        &std::fs::read_to_string(golden().join("cases.json")).expect("cases.json"),
    )
    .expect("cases");
    assert_eq!(cases.cases.len(), 3);
    let device = Device::flex();
    for case in cases.cases {
        let weights =
            std::fs::read(golden().join(format!("{}.safetensors", case.name))).expect("weights");
        let file = FfnModelFile::import_safetensors(
            header(case.network.clone()),
            weights,
            &format!("{}.safetensors", case.name),
            &device,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        // Through the file's bytes, as a user's import would be stored.
        let file = FfnModelFile::from_bytes(&file.to_bytes()).expect("read back");
        let net = file.load_net(&device).expect("load");
        let io = std::fs::read(golden().join(format!("{}.io.safetensors", case.name))).expect("io");
        let io = SafeTensors::deserialize(&io).expect("io file");
        let (image, seed, want) = (
            tensor(&io, "image", &device),
            tensor(&io, "seed", &device),
            tensor(&io, "output", &device),
        );
        let got = net.forward(image, seed);
        assert_eq!(got.dims(), want.dims(), "{}", case.name);
        let worst = (got - want.clone()).abs().max().into_scalar::<f32>();
        let scale = want.abs().max().into_scalar::<f32>();
        // `<=` fails on NaN.
        assert!(
            worst <= 1e-4 * scale.max(1.0),
            "{}: max |difference| {worst} (outputs up to {scale})",
            case.name
        );
    }
}

#[test]
fn weights_of_another_network_are_refused_with_the_reason() {
    let device = Device::flex();
    let weights = std::fs::read(golden().join("small.safetensors")).expect("weights");
    // The fixture is depth 3 with 4 features: a depth-4 header misses a residual module's
    // weights, 5 features mismatch every shape.
    for (depth, features) in [(4, 4), (3, 5)] {
        let network = FfnConfig {
            depth,
            features,
            fov: [9, 7, 5],
            deltas: [2, 2, 1],
        };
        let e = FfnModelFile::import_safetensors(
            header(network),
            weights.clone(),
            "small.safetensors",
            &device,
        )
        .unwrap_err();
        assert!(matches!(e, FfnFileError::Weights(_)), "{e}");
        assert!(e.to_string().contains("small.safetensors"), "{e}");
    }
}
