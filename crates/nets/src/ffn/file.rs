//! The FFN model file: settings, input normalisation, provenance, weights and (optionally)
//! the optimiser state for resuming.
//!
//! Same framing as the 2D model file (`crate::model`) under its own magic,
//! `EMSTUDIO-FFN-01\n`: a `u32` header length and the JSON header ([`FfnHeader`]), a `u64`
//! length and the weights (burn's burnpack record), a `u64` length and the optimiser record
//! (0 = none). Each reader names the other kind when given it ("this is a 2D network model"),
//! so a model for the wrong network gets a clear error. Every weight is checked on reading:
//! shapes against the settings, values finite.
//!
//! [`FfnModelFile::import_safetensors`] reads a PyTorch `state_dict` of the twin network in
//! `scripts/golden/torch_ffn.py` (same parameter names, PyTorch's `[out, in, kz, ky, kx]`
//! kernel layout is burn's).

use super::net::{ConvStack3d, FfnConfig};
use crate::model::{
    frame, load_problems, non_finite_weight, take, unframe, Normalization, Provenance,
    MAGIC as MODEL_MAGIC,
};
use burn::prelude::*;
use burn::store::{
    FloatCastAdapter, ModuleAdapter, ModuleRecord, ModuleSnapshot, PyTorchToBurnAdapter,
    SafetensorsStore,
};
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

/// The file's first bytes.
pub const FFN_MAGIC: &[u8; 16] = b"EMSTUDIO-FFN-01\n";

/// Everything but the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FfnHeader {
    /// The network's settings.
    pub network: FfnConfig,
    /// Image normalisation: `(v / scale − mean) / std` with `v / scale` in `[0, 1]` (as the
    /// 2D models), from the training volume.
    pub normalization: Normalization,
    /// Training history (settings, steps, losses, data).
    #[serde(default)]
    pub provenance: Provenance,
}

/// Why an FFN model file could not be read or used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FfnFileError {
    /// Not a model file at all.
    #[error("not an EM Studio FFN model file (it does not start with \"EMSTUDIO-FFN-01\")")]
    BadMagic,
    /// A 2D network's model file.
    #[error("this is a 2D network model (U-Net, ResNet, …), not a flood-filling network: train an FFN or pick an FFN model")]
    TwoDModel,
    /// Ends too early.
    #[error("the FFN model file is truncated ({0})")]
    Truncated(&'static str),
    /// The header is not valid.
    #[error("the FFN model header is invalid: {0}")]
    Header(String),
    /// The weights do not fit the settings or are not finite.
    #[error("the FFN weights do not match its settings: {0}")]
    Weights(String),
}

impl From<crate::model::ModelError> for FfnFileError {
    fn from(e: crate::model::ModelError) -> Self {
        match e {
            crate::model::ModelError::Truncated(what) => FfnFileError::Truncated(what),
            crate::model::ModelError::Device(e) => {
                FfnFileError::Weights(format!("reading them back from the device failed: {e}"))
            }
            other => FfnFileError::Header(other.to_string()),
        }
    }
}

/// An FFN model file's contents.
#[derive(Clone, Debug, PartialEq)]
pub struct FfnModelFile {
    /// Header.
    pub header: FfnHeader,
    /// burnpack record of the network.
    pub weights: Vec<u8>,
    /// burnpack record of the optimiser, if saved.
    pub optimizer: Option<Vec<u8>>,
}

impl FfnHeader {
    /// Checks the settings and the normalisation.
    pub fn validate(&self) -> Result<(), FfnFileError> {
        self.network
            .validate()
            .map_err(|e| FfnFileError::Header(e.to_string()))?;
        let Normalization { mean, std } = self.normalization;
        if !(mean.is_finite() && std.is_finite() && std >= 1e-6) {
            return Err(FfnFileError::Header(format!(
                "the normalisation is mean {mean}, std {std}: finite, with a std of at least 1e-6"
            )));
        }
        Ok(())
    }
}

impl FfnModelFile {
    /// Packs a network with its header.
    pub fn from_net(
        header: FfnHeader,
        net: &ConvStack3d,
        optimizer: Option<Vec<u8>>,
    ) -> Result<Self, FfnFileError> {
        let weights = net
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| FfnFileError::Weights(e.to_string()))?
            .to_vec();
        Ok(Self {
            header,
            weights,
            optimizer,
        })
    }

    /// [`FfnModelFile::from_net`] for a network on any device, read back asynchronously
    /// (`crate::model::module_to_cpu`; WebGPU in the browser); without optimiser state.
    pub async fn from_net_async(
        header: FfnHeader,
        net: &ConvStack3d,
    ) -> Result<Self, FfnFileError> {
        let on_cpu = crate::model::module_to_cpu(net.clone()).await?;
        Self::from_net(header, &on_cpu, None)
    }

    /// Builds the network on `device` with the file's weights.
    pub fn load_net(&self, device: &Device) -> Result<ConvStack3d, FfnFileError> {
        self.header.validate()?;
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.weights.clone()))
            .map_err(|e| FfnFileError::Weights(e.to_string()))?;
        self.header
            .network
            .build(device)
            .try_load_record(record)
            .map_err(|e| FfnFileError::Weights(e.to_string()))
    }

    /// A model from the PyTorch twin's `state_dict` in safetensors; `source` is recorded as
    /// where the weights came from.
    pub fn import_safetensors(
        mut header: FfnHeader,
        safetensors: Vec<u8>,
        source: &str,
        device: &Device,
    ) -> Result<Self, FfnFileError> {
        header.validate()?;
        let mut net = header.network.build(device);
        let mut store = SafetensorsStore::from_bytes(Some(safetensors)).with_from_adapter(
            PyTorchToBurnAdapter.chain(FloatCastAdapter::to(burn::tensor::DType::F32)),
        );
        let result = net
            .load_from(&mut store)
            .map_err(|e| FfnFileError::Weights(format!("{source}: {e}")))?;
        if let Some(problems) = load_problems(&result) {
            return Err(FfnFileError::Weights(format!("{source}: {problems}")));
        }
        header.provenance.imported_from = Some(source.to_string());
        let file = Self::from_net(header, &net, None)?;
        file.check_weights()?;
        Ok(file)
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("the header is plain data");
        frame(FFN_MAGIC, &header, &self.weights, self.optimizer.as_deref())
    }

    /// Reads and checks a model file (header, weight shapes, finite values).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FfnFileError> {
        let mut rest = bytes;
        let magic = take(&mut rest, 16, "magic").map_err(|_| FfnFileError::BadMagic)?;
        if magic == MODEL_MAGIC {
            return Err(FfnFileError::TwoDModel);
        }
        if magic != FFN_MAGIC {
            return Err(FfnFileError::BadMagic);
        }
        let framed = unframe(rest)?;
        let header: FfnHeader = serde_json::from_slice(framed.header)
            .map_err(|e| FfnFileError::Header(e.to_string()))?;
        header.validate()?;
        let file = Self {
            header,
            weights: framed.weights,
            optimizer: framed.optimizer,
        };
        file.check_weights()?;
        Ok(file)
    }

    /// Loads the weights on the CPU: every parameter present with its shape, every value
    /// finite.
    pub fn check_weights(&self) -> Result<(), FfnFileError> {
        match non_finite_weight(&self.load_net(&Device::flex())?) {
            Some(problem) => Err(FfnFileError::Weights(problem)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> FfnHeader {
        FfnHeader {
            network: FfnConfig {
                depth: 2,
                features: 3,
                fov: [5, 5, 3],
                deltas: [1, 1, 1],
            },
            normalization: Normalization {
                mean: 0.5,
                std: 0.2,
            },
            provenance: Provenance::default(),
        }
    }

    #[test]
    fn round_trip_and_bad_files() {
        let device = Device::flex();
        let header = small();
        let net = crate::train::seeded_init(&device, 1, || header.network.build(&device));
        let file = FfnModelFile::from_net(header.clone(), &net, None).expect("pack");
        let bytes = file.to_bytes();
        let back = FfnModelFile::from_bytes(&bytes).expect("read");
        assert_eq!(back, file);
        let image = Tensor::<5>::ones([1, 1, 3, 5, 5], &device);
        let seed = Tensor::<5>::zeros([1, 1, 3, 5, 5], &device);
        let a = net.forward(image.clone(), seed.clone()).into_data();
        let b = back
            .load_net(&device)
            .expect("load")
            .forward(image, seed)
            .into_data();
        assert_eq!(a, b);
        for cut in [10, 30, bytes.len() - 1] {
            assert!(FfnModelFile::from_bytes(&bytes[..cut]).is_err(), "{cut}");
        }
        assert_eq!(
            FfnModelFile::from_bytes(b"\x89PNG\r\n\x1a\n........").err(),
            Some(FfnFileError::BadMagic)
        );
        // Weights of another depth do not load.
        let mut other = back.clone();
        other.header.network.depth = 3;
        assert!(matches!(
            other.load_net(&device),
            Err(FfnFileError::Weights(_))
        ));
        // A zero std is refused when read.
        let mut bad = back.clone();
        bad.header.normalization.std = 0.0;
        let e = FfnModelFile::from_bytes(&bad.to_bytes()).unwrap_err();
        assert!(e.to_string().contains("std"), "{e}");
    }

    #[test]
    fn each_kind_of_model_file_names_the_other() {
        let device = Device::flex();
        let ffn = FfnModelFile::from_net(small(), &small().network.build(&device), None)
            .expect("pack")
            .to_bytes();
        let e = crate::model::ModelFile::from_bytes(&ffn)
            .unwrap_err()
            .to_string();
        assert!(e.contains("flood-filling network (FFN) model"), "{e}");
        let mut two_d = MODEL_MAGIC.to_vec();
        two_d.extend_from_slice(&[0; 12]);
        assert_eq!(
            FfnModelFile::from_bytes(&two_d).err(),
            Some(FfnFileError::TwoDModel)
        );
    }
}
