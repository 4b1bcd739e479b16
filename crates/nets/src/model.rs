//! One model file: architecture, weights, input normalisation and training provenance, plus
//! (optionally) the optimiser state so training can resume.
//!
//! Layout (little-endian): the 16-byte magic `EMSTUDIO-MODEL1\n`, a `u32` header length and the
//! header as JSON ([`ModelHeader`]), a `u64` length and the weights (burn's burnpack record of
//! the network, loaded with validation), a `u64` length and the optimiser record (0 = none).
//! The same bytes are written by the CLI and by the browser (which keeps them in OPFS), so a
//! model moves freely between them. JSON keeps the header readable and extensible; unknown
//! header fields are ignored so older builds can open newer files of the same format version.
//!
//! [`ModelFile::import_safetensors`] makes a model file from weights trained elsewhere: a
//! PyTorch `state_dict` saved with `safetensors.torch.save_file`, for a PyTorch module with the
//! same attribute names as ours (`down.0.a.conv.weight`, `down.0.a.bn.running_mean`, …; batch
//! norm `weight`/`bias` become burn's `gamma`/`beta`, Linear weights are transposed, other
//! layouts already match). Every parameter must be present with the right shape; extra entries
//! such as `num_batches_tracked` are ignored. [`ModelFile::export_safetensors`] writes the same
//! layout back.

use crate::arch::{ArchConfig, Net, NetIo};
use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::store::{
    BurnToPyTorchAdapter, FloatCastAdapter, ModuleAdapter, ModuleRecord, PyTorchToBurnAdapter,
    SafetensorsStore,
};
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

/// The file's first bytes.
pub const MAGIC: &[u8; 16] = b"EMSTUDIO-MODEL1\n";

/// How raw intensities become network input: `(v / scale − mean) / std`, where `scale` maps the
/// stored range to `[0, 1]` (255 for 8-bit, 65535 for 16-bit, 1 for float).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean of the `[0, 1]`-scaled training images.
    pub mean: f32,
    /// Standard deviation of the `[0, 1]`-scaled training images (> 0).
    pub std: f32,
}

impl Default for Normalization {
    fn default() -> Self {
        Self {
            mean: 0.5,
            std: 0.25,
        }
    }
}

/// One point of the loss curves.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossPoint {
    /// Training step.
    pub step: u64,
    /// Training loss (mean over the steps since the previous point).
    pub train: f32,
    /// Validation loss, when measured.
    pub validation: Option<f32>,
}

/// Where a model came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Provenance {
    /// When it was saved (ISO 8601, given by the caller: the library has no clock).
    pub saved: String,
    /// The training data (paths or layer names, slices used).
    pub data: Vec<String>,
    /// The training settings, as JSON (see `train::TrainConfig`).
    pub training: Option<serde_json::Value>,
    /// Steps trained in all (across resumes).
    pub steps: u64,
    /// Loss curves.
    pub losses: Vec<LossPoint>,
    /// Set when the weights were imported (e.g. a PyTorch safetensors file name).
    pub imported_from: Option<String>,
    /// What the model is for and how it scored on pixels it never trained on
    /// ([`crate::card`]; written by `emstudio card`).
    pub card: Option<crate::card::ModelCard>,
}

/// Everything but the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelHeader {
    /// Architecture and settings.
    pub arch: ArchConfig,
    /// Input/output channels.
    pub io: NetIo,
    /// Input normalisation.
    pub normalization: Normalization,
    /// Training history.
    #[serde(default)]
    pub provenance: Provenance,
}

/// A model file's contents.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFile {
    /// Header.
    pub header: ModelHeader,
    /// burnpack record of the network.
    pub weights: Vec<u8>,
    /// burnpack record of the optimiser (for resuming), if saved.
    pub optimizer: Option<Vec<u8>>,
}

/// Why a model file could not be read or used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// Not a model file.
    #[error("not an EM Studio model file (the file does not start with {:?})", String::from_utf8_lossy(MAGIC).trim_end())]
    BadMagic,
    /// Ends too early.
    #[error("the model file is truncated ({0})")]
    Truncated(&'static str),
    /// The header is not valid JSON for this format.
    #[error("the model header is invalid: {0}")]
    Header(String),
    /// The weights do not fit the architecture in the header.
    #[error("the weights do not match the architecture: {0}")]
    Weights(String),
    /// The architecture settings are invalid.
    #[error(transparent)]
    Arch(#[from] crate::arch::ArchError),
    /// The compute device failed while the weights were read back.
    #[error("could not read the weights from the compute device: {0}")]
    Device(String),
}

/// The most input channels a model may take (gray is 1, RGB 3; a few more leave room for
/// multi-channel EM without letting a header ask for millions).
pub const MAX_IN_CHANNELS: usize = 16;
/// The most output channels (classes) a model may have: training labels are stored as `u8`.
pub const MAX_OUT_CHANNELS: usize = 256;
/// The most parameters a network may have (400 MB of `f32`): the settings' upper bounds
/// multiply (a depth-8 U-Net of base width 256 would want tens of GB), so the product is
/// bounded too, before anything is allocated.
pub const MAX_PARAMETERS: u64 = 100_000_000;

/// The number of parameters (running statistics included) a network of `arch` with `io`
/// channels has, counted from the lazily built module without allocating its weights.
pub fn parameter_count(arch: &ArchConfig, io: &NetIo) -> u64 {
    /// Adds up the shapes of every float parameter without initialising it.
    struct Count(u64);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let n: u64 = param.lazy_shape().iter().map(|&d| d as u64).product();
            self.0 = self.0.saturating_add(n);
        }
    }
    let mut count = Count(0);
    arch.build(io, &Device::flex()).visit(&mut count);
    count.0
}

/// Checks channel counts and the network's size for `arch` (before anything is built that
/// would allocate): the settings a training form or a model header may ask for.
pub fn check_network_size(arch: &ArchConfig, io: &NetIo) -> Result<(), ModelError> {
    arch.validate()?;
    if !(1..=MAX_IN_CHANNELS).contains(&io.in_channels) {
        return Err(ModelError::Header(format!(
            "in_channels is {}: a model takes 1 to {MAX_IN_CHANNELS} input channels",
            io.in_channels
        )));
    }
    if !(1..=MAX_OUT_CHANNELS).contains(&io.out_channels) {
        return Err(ModelError::Header(format!(
            "out_channels is {}: a model has 1 to {MAX_OUT_CHANNELS} output channels (classes)",
            io.out_channels
        )));
    }
    // Bound each width first, so the count below never builds a monster lazily either.
    let parameters = parameter_count(arch, io);
    if parameters > MAX_PARAMETERS {
        return Err(ModelError::Header(format!(
            "{}: {parameters} parameters is more than the {MAX_PARAMETERS} a model may have \
             (lower the depth, blocks or width)",
            arch.name()
        )));
    }
    Ok(())
}

impl ModelHeader {
    /// Checks every field that is not checked against the weights: the architecture's
    /// settings, channel counts, the network's size, and an input normalisation that is
    /// finite with a positive standard deviation (a `std` of 0 would turn every input into
    /// NaN or infinity).
    pub fn validate(&self) -> Result<(), ModelError> {
        check_network_size(&self.arch, &self.io)?;
        let Normalization { mean, std } = self.normalization;
        if !mean.is_finite() {
            return Err(ModelError::Header(format!(
                "the normalisation mean is {mean}: it must be a finite number"
            )));
        }
        if !(std.is_finite() && std >= 1e-6) {
            return Err(ModelError::Header(format!(
                "the normalisation std is {std}: it must be a finite number of at least 1e-6"
            )));
        }
        Ok(())
    }
}

/// A copy of `net` (in inference mode) with every weight on the CPU (flex) device, read back
/// asynchronously in one transaction: the way to save a network trained on WebGPU in the
/// browser, where synchronous reads are impossible.
pub async fn net_to_cpu(net: &Net) -> Result<Net, ModelError> {
    module_to_cpu(net.valid()).await
}

/// [`net_to_cpu`] for any module (the flood-filling network too): every float parameter,
/// running statistics included, read back in one transaction onto the CPU (flex) device.
pub async fn module_to_cpu<M: Module>(module: M) -> Result<M, ModelError> {
    /// Registers every float parameter (running statistics included) in visiting order.
    struct Collect(burn::tensor::Transaction);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 = std::mem::take(&mut self.0).register(param.val());
        }
    }
    /// Replaces each float parameter, in the same order, by its data on the CPU.
    struct Replace {
        data: std::vec::IntoIter<TensorData>,
        device: Device,
    }
    impl ModuleMapper for Replace {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            match self.data.next() {
                Some(data) => param.map(|_| Tensor::from_data(data, &self.device)),
                None => param,
            }
        }
    }
    let mut collect = Collect(burn::tensor::Transaction::default());
    module.visit(&mut collect);
    let data = collect
        .0
        .execute_async()
        .await
        .map_err(|e| ModelError::Device(e.to_string()))?;
    Ok(module.map(&mut Replace {
        data: data.into_iter(),
        device: Device::flex(),
    }))
}

pub(crate) fn take<'a>(
    bytes: &mut &'a [u8],
    n: usize,
    what: &'static str,
) -> Result<&'a [u8], ModelError> {
    if bytes.len() < n {
        return Err(ModelError::Truncated(what));
    }
    let (a, b) = bytes.split_at(n);
    *bytes = b;
    Ok(a)
}

fn take_u64(bytes: &mut &[u8], what: &'static str) -> Result<usize, ModelError> {
    let b = take(bytes, 8, what)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    usize::try_from(u64::from_le_bytes(a)).map_err(|_| ModelError::Truncated(what))
}

impl ModelFile {
    /// Packs a trained network with its header.
    pub fn from_net(
        header: ModelHeader,
        net: &Net,
        optimizer: Option<Vec<u8>>,
    ) -> Result<Self, ModelError> {
        let weights = net
            .valid()
            .into_record()
            .into_bytes()
            .map_err(|e| ModelError::Weights(e.to_string()))?
            .to_vec();
        Ok(Self {
            header,
            weights,
            optimizer,
        })
    }

    /// [`ModelFile::from_net`] for a network on any device, read back asynchronously (see
    /// [`net_to_cpu`]); without optimiser state.
    pub async fn from_net_async(header: ModelHeader, net: &Net) -> Result<Self, ModelError> {
        Self::from_net(header, &net_to_cpu(net).await?, None)
    }

    /// Builds the network on `device` and loads the weights (validated against the
    /// architecture).
    pub fn load_net(&self, device: &Device) -> Result<Net, ModelError> {
        self.header.validate()?;
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.weights.clone()))
            .map_err(|e| ModelError::Weights(e.to_string()))?;
        self.header
            .arch
            .build(&self.header.io, device)
            .try_load_record(record)
            .map_err(|e| ModelError::Weights(e.to_string()))
    }

    /// A model from PyTorch-layout safetensors weights (see the module doc). `header` gives the
    /// architecture, channels and normalisation the weights were trained with; its provenance
    /// records `source` as where the weights came from.
    pub fn import_safetensors(
        mut header: ModelHeader,
        safetensors: Vec<u8>,
        source: &str,
        device: &Device,
    ) -> Result<Self, ModelError> {
        header.arch.validate()?;
        let mut net = header.arch.build(&header.io, device);
        let mut store = SafetensorsStore::from_bytes(Some(safetensors)).with_from_adapter(
            PyTorchToBurnAdapter.chain(FloatCastAdapter::to(burn::tensor::DType::F32)),
        );
        let result = net
            .load_from_store(&mut store)
            .map_err(|e| ModelError::Weights(e.to_string()))?;
        if let Some(problems) = load_problems(&result) {
            return Err(ModelError::Weights(format!("{source}: {problems}")));
        }
        header.provenance.imported_from = Some(source.to_string());
        Self::from_net(header, &net, None)
    }

    /// The network's weights as PyTorch-layout safetensors bytes.
    pub fn export_safetensors(&self, device: &Device) -> Result<Vec<u8>, ModelError> {
        let net = self.load_net(device)?;
        let mut store = SafetensorsStore::from_bytes(None).with_to_adapter(BurnToPyTorchAdapter);
        net.save_to_store(&mut store)
            .map_err(|e| ModelError::Weights(e.to_string()))?;
        store
            .get_bytes()
            .map_err(|e| ModelError::Weights(e.to_string()))
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("the header is plain data");
        frame(MAGIC, &header, &self.weights, self.optimizer.as_deref())
    }

    /// Reads a model file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let mut rest = bytes;
        let magic = take(&mut rest, 16, "magic").map_err(|_| ModelError::BadMagic)?;
        if magic == crate::ffn::file::FFN_MAGIC {
            return Err(ModelError::Header(
                "this is a flood-filling network (FFN) model: it segments 3D neurons in the \
                 FFN tools, not in 2D inference"
                    .into(),
            ));
        }
        if magic != MAGIC {
            return Err(ModelError::BadMagic);
        }
        let framed = unframe(rest)?;
        let header: ModelHeader =
            serde_json::from_slice(framed.header).map_err(|e| ModelError::Header(e.to_string()))?;
        header.validate()?;
        let file = Self {
            header,
            weights: framed.weights,
            optimizer: framed.optimizer,
        };
        file.check_weights()?;
        Ok(file)
    }

    /// Loads the weights into a network on the CPU and checks them: every parameter the
    /// header's architecture has is present with its shape (so channel counts in the header
    /// equal the weights'), and every value is finite. Run by [`ModelFile::from_bytes`], so a
    /// file that passes gives no surprise later on any device.
    pub fn check_weights(&self) -> Result<(), ModelError> {
        match non_finite_weight(&self.load_net(&Device::flex())?) {
            Some(problem) => Err(ModelError::Weights(problem)),
            None => Ok(()),
        }
    }
}

/// The framing both kinds of model file share (see the module doc): `magic`, the JSON header
/// after its `u32` length, the weights and the optimiser record (empty = none) after their
/// `u64` lengths.
pub(crate) fn frame(
    magic: &[u8; 16],
    header: &[u8],
    weights: &[u8],
    optimizer: Option<&[u8]>,
) -> Vec<u8> {
    let opt = optimizer.unwrap_or(&[]);
    let mut out = Vec::with_capacity(36 + header.len() + weights.len() + opt.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(&(weights.len() as u64).to_le_bytes());
    out.extend_from_slice(weights);
    out.extend_from_slice(&(opt.len() as u64).to_le_bytes());
    out.extend_from_slice(opt);
    out
}

/// The parts of a framed file after its magic ([`frame`]).
pub(crate) struct Framed<'a> {
    /// The JSON header's bytes.
    pub header: &'a [u8],
    /// The weights' record.
    pub weights: Vec<u8>,
    /// The optimiser's record, if any.
    pub optimizer: Option<Vec<u8>>,
}

/// Splits what follows the magic into header, weights and optimiser record; an error names
/// the part that is cut short, or the bytes left over.
pub(crate) fn unframe(mut rest: &[u8]) -> Result<Framed<'_>, ModelError> {
    let len = take(&mut rest, 4, "header length")?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let header = take(&mut rest, len, "header")?;
    let n = take_u64(&mut rest, "weights length")?;
    let weights = take(&mut rest, n, "weights")?.to_vec();
    let n = take_u64(&mut rest, "optimizer length")?;
    let optimizer = take(&mut rest, n, "optimizer")?.to_vec();
    if !rest.is_empty() {
        return Err(ModelError::Header(format!(
            "{} unexpected byte(s) after the optimizer record",
            rest.len()
        )));
    }
    Ok(Framed {
        header,
        weights,
        optimizer: (!optimizer.is_empty()).then_some(optimizer),
    })
}

/// The first float parameter of `module` holding NaN or infinity (or not `f32`), described.
pub(crate) fn non_finite_weight<M: burn::module::Module>(module: &M) -> Option<String> {
    /// Finds the first parameter holding NaN or infinity.
    struct Finite(Option<String>);
    impl ModuleVisitor for Finite {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.0.is_some() {
                return;
            }
            match param.val().into_data().as_slice::<f32>() {
                Ok(values) => {
                    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                        self.0 = Some(format!(
                            "a weight of shape {:?} holds {v}",
                            param.lazy_shape().as_slice()
                        ));
                    }
                }
                Err(e) => self.0 = Some(format!("weights that are not f32: {e:?}")),
            }
        }
    }
    let mut finite = Finite(None);
    module.visit(&mut finite);
    finite.0
}

/// What a weight import left undone: missing weights (the first 8 named) and errors, or
/// `None` when every weight loaded.
pub(crate) fn load_problems(result: &burn::store::ApplyResult) -> Option<String> {
    if result.missing.is_empty() && result.errors.is_empty() {
        return None;
    }
    let missing: Vec<&str> = result
        .missing
        .iter()
        .map(|(k, _)| k.as_str())
        .take(8)
        .collect();
    Some(format!(
        "{} missing weight(s) [{}], {} error(s) {:?}",
        result.missing.len(),
        missing.join(", "),
        result.errors.len(),
        result
            .errors
            .iter()
            .take(3)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{unet::UNetConfig, SegNet};

    #[test]
    fn round_trip_gives_the_same_outputs_and_bad_files_are_refused() {
        let device = Device::flex();
        device.seed(5);
        let header = ModelHeader {
            arch: ArchConfig::UNet(UNetConfig {
                depth: 2,
                base_width: 4,
            }),
            io: NetIo {
                in_channels: 1,
                out_channels: 1,
            },
            normalization: Normalization::default(),
            provenance: Provenance {
                saved: "2026-11-26T00:00:00Z".into(),
                ..Provenance::default()
            },
        };
        let net = header.arch.build(&header.io, &device);
        let x = Tensor::<4>::random([1, 1, 8, 8], burn::tensor::Distribution::Default, &device);
        let before: Vec<f32> = net
            .valid()
            .forward(x.clone())
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        let file = ModelFile::from_net(header, &net, None).expect("pack");
        let bytes = file.to_bytes();
        let back = ModelFile::from_bytes(&bytes).expect("read");
        assert_eq!(back, file);
        let net2 = back.load_net(&device).expect("load");
        let after: Vec<f32> = net2
            .forward(x.clone())
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        assert_eq!(before, after);

        assert_eq!(
            ModelFile::from_bytes(b"PNG....").err(),
            Some(ModelError::BadMagic)
        );
        for cut in [20, 40, bytes.len() - 1] {
            assert!(
                ModelFile::from_bytes(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        // Read back asynchronously (the WebGPU path): the same weights, byte for byte.
        let from_async =
            futures_lite::future::block_on(ModelFile::from_net_async(back.header.clone(), &net))
                .expect("async read-back");
        assert_eq!(from_async.weights, file.weights);
        assert_eq!(from_async.optimizer, None);

        // Weights of another architecture do not load.
        let mut other = back.clone();
        other.header.arch = ArchConfig::UNet(UNetConfig {
            depth: 3,
            base_width: 4,
        });
        assert!(matches!(
            other.load_net(&device),
            Err(ModelError::Weights(_))
        ));
    }
}
