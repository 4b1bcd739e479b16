//! Hostile model files: random bytes, mutated headers and mutated weights must give a clear
//! error from `ModelFile::from_bytes`, never a panic, an abort (a header asking for a network
//! of billions of parameters) or a prediction holding NaN. A file that is accepted predicts
//! finite probabilities, or returns an error.

use burn::prelude::*;
use emstudio_nets::arch::{resnet::ResNetConfig, unet::UNetConfig, ArchConfig, NetIo};
use emstudio_nets::infer::{predict, InferOptions};
use emstudio_nets::model::{ModelError, ModelFile, ModelHeader, Normalization, Provenance};
use proptest::prelude::*;

/// Two small valid models (gray U-Net, RGB ResNet) to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let device = Device::flex();
    device.seed(3);
    let headers = [
        ModelHeader {
            arch: ArchConfig::UNet(UNetConfig {
                depth: 1,
                base_width: 2,
            }),
            io: NetIo {
                in_channels: 1,
                out_channels: 1,
            },
            normalization: Normalization::default(),
            provenance: Provenance::default(),
        },
        ModelHeader {
            arch: ArchConfig::ResNet(ResNetConfig {
                blocks: 1,
                base_width: 2,
            }),
            io: NetIo {
                in_channels: 3,
                out_channels: 2,
            },
            normalization: Normalization {
                mean: 0.4,
                std: 0.2,
            },
            provenance: Provenance::default(),
        },
    ];
    headers
        .into_iter()
        .map(|h| {
            let net = h.arch.build(&h.io, &device);
            ModelFile::from_net(h, &net, None).expect("pack").to_bytes()
        })
        .collect()
}

/// Reads `bytes`; when accepted, the model must predict a small image with finite values or
/// refuse with an error.
fn feed(bytes: &[u8]) -> Result<(), ModelError> {
    let file = ModelFile::from_bytes(bytes)?;
    let device = Device::flex();
    let net = file.load_net(&device)?;
    let channels = file.header.io.in_channels;
    let image = ndarray::Array3::from_shape_fn((channels, 12, 12), |(c, y, x)| {
        ((c * 7 + y * 13 + x * 5) % 17) as f32 / 16.0
    });
    let options = InferOptions {
        tile: 8,
        batch: 2,
        views: 1,
    };
    if let Ok(p) = predict(
        &net,
        &file.header,
        image.view(),
        options,
        &device,
        &mut |_, _| {},
    ) {
        assert!(
            p.iter().all(|v| v.is_finite()),
            "an accepted model predicted non-finite values"
        );
    }
    Ok(())
}

/// The header's JSON and where it sits in the file.
fn header_json(bytes: &[u8]) -> (serde_json::Value, usize) {
    let len = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]) as usize;
    let json = serde_json::from_slice(&bytes[20..20 + len]).expect("json");
    (json, len)
}

/// `bytes` with its header replaced by `json`.
fn with_header(bytes: &[u8], json: &serde_json::Value) -> Vec<u8> {
    let (_, len) = header_json(bytes);
    let header = serde_json::to_vec(json).expect("json");
    let mut out = bytes[..16].to_vec();
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&bytes[20 + len..]);
    out
}

#[test]
fn each_edited_header_field_is_refused_by_name() {
    for seed in seeds() {
        feed(&seed).expect("the valid seed loads");
        let (json, _) = header_json(&seed);
        let edits: [(&str, serde_json::Value, &str); 8] = [
            ("/normalization/std", 0.0.into(), "std"),
            ("/normalization/std", (-1.0).into(), "std"),
            ("/normalization/std", 1e-30.into(), "std"),
            ("/io/in_channels", 100_000_000.into(), "in_channels"),
            ("/io/in_channels", 0.into(), "in_channels"),
            ("/io/out_channels", 4_000_000_000u64.into(), "out_channels"),
            // Within range but not what the weights hold.
            ("/io/out_channels", 5.into(), "weights do not match"),
            ("/arch/base_width", 256.into(), "weights do not match"),
        ];
        for (field, value, expect) in edits {
            let mut edited = json.clone();
            *edited.pointer_mut(field).expect("field") = value.clone();
            let err = ModelFile::from_bytes(&with_header(&seed, &edited))
                .expect_err(&format!("{field} = {value}"));
            assert!(err.to_string().contains(expect), "{field} = {value}: {err}");
        }
        // A network too large to build: refused from the header, before any allocation.
        let mut huge = json.clone();
        *huge.pointer_mut("/arch").expect("arch") = serde_json::json!({
            "arch": "unet", "depth": 8, "base_width": 256
        });
        let err = ModelFile::from_bytes(&with_header(&seed, &huge)).expect_err("huge");
        assert!(err.to_string().contains("parameters"), "{err}");
        // JSON NaN does not exist; a string or a missing field is a header error.
        let mut text = json.clone();
        *text.pointer_mut("/normalization/mean").expect("mean") = "NaN".into();
        assert!(matches!(
            ModelFile::from_bytes(&with_header(&seed, &text)),
            Err(ModelError::Header(_))
        ));
    }
}

#[test]
fn weights_holding_nan_or_infinity_are_refused() {
    let seed = &seeds()[0];
    let (_, len) = header_json(seed);
    let weights_at = 20 + len + 8;
    let le_one = 1.0f32.to_le_bytes();
    // The first stored 1.0 (a batch-norm scale): make it NaN, then infinity.
    let at = (weights_at..seed.len() - 4)
        .find(|&i| seed[i..i + 4] == le_one)
        .expect("a 1.0 among the weights");
    for bad in [f32::NAN, f32::INFINITY] {
        let mut file = seed.clone();
        file[at..at + 4].copy_from_slice(&bad.to_le_bytes());
        let err = ModelFile::from_bytes(&file).expect_err("non-finite weight");
        assert!(
            matches!(err, ModelError::Weights(ref m) if m.contains(&bad.to_string())),
            "{err}"
        );
    }
}

/// Cases per property: 96, or `MODEL_FUZZ_CASES` for a longer run.
fn cases() -> u32 {
    std::env::var("MODEL_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(96)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_bytes_never_panic(
        magic in any::<bool>(),
        rest in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut bytes = if magic { emstudio_nets::model::MAGIC.to_vec() } else { Vec::new() };
        bytes.extend_from_slice(&rest);
        let _ = feed(&bytes);
    }

    #[test]
    fn truncated_models_are_refused(which in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let seeds = seeds();
        let file = which.get(&seeds);
        let at = cut.index(file.len());
        prop_assert!(feed(&file[..at]).is_err());
    }

    #[test]
    fn mutated_models_never_panic(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let seeds = seeds();
        let mut file = which.get(&seeds).clone();
        for (at, value) in edits {
            let i = at.index(file.len());
            file[i] = value;
        }
        let _ = feed(&file);
    }

    #[test]
    fn mutated_header_numbers_never_panic(
        which in any::<prop::sample::Index>(),
        field in 0usize..6,
        value in prop_oneof![
            Just(serde_json::json!(0)),
            Just(serde_json::json!(-1)),
            Just(serde_json::json!(1e38)),
            Just(serde_json::json!(u64::MAX)),
            (0u64..5000).prop_map(|v| serde_json::json!(v)),
            (-10.0f64..10.0).prop_map(|v| serde_json::json!(v)),
        ],
    ) {
        let seeds = seeds();
        let seed = which.get(&seeds);
        let (mut json, _) = header_json(seed);
        let path = [
            "/normalization/std",
            "/normalization/mean",
            "/io/in_channels",
            "/io/out_channels",
            "/arch/base_width",
            "/arch/depth",
        ][field];
        if let Some(slot) = json.pointer_mut(path) {
            *slot = value;
        }
        let _ = feed(&with_header(seed, &json));
    }
}
