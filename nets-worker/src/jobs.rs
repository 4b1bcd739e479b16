//! Training and inference of the 2D CNNs (`emstudio_nets`) on slices the data worker sends.
//!
//! Platform-free: [`TrainJob::step_async`] runs one optimiser step and the browser glue
//! (`web.rs`) awaits it in a loop that yields to the event loop now and then, so pause, stop,
//! cancel and preview requests are served while training. Every read of a result is awaited
//! (`*_async`), because on WebGPU in the browser synchronous reads are impossible; the same
//! code runs on burn's flex CPU backend (single-threaded in the browser), where the awaits
//! resolve at once. The synchronous twins (`step`, `preview`, [`InferEngine::predict`]) serve
//! native callers and tests. Model files are the CLI's format ([`ModelFile`]), so a model moves
//! between `emstudio train` and the browser in both directions.

use emstudio_core::render::{render_intensity, render_labels};
use emstudio_nets::infer::{
    argmax_classes, forward_batch, predict, predict_async, tile_work, InferOptions, TileWork,
    TiledPrediction,
};
use emstudio_nets::model::{ModelFile, ModelHeader};
use emstudio_nets::train::{Slice, StepReport, TrainConfig, Trainer};
use emstudio_nets::Device;
use ndarray::{Array2, Array3, Axis};

/// What the CPU backend is, for the UI.
pub fn cpu_description() -> String {
    if cfg!(target_arch = "wasm32") {
        "CPU (burn flex, wasm, 1 thread)".into()
    } else {
        "CPU (burn flex)".into()
    }
}

/// What the CPU backend is for a page whose inference would share its tiles with `helpers`
/// helper workers (training runs on one).
pub fn cpu_description_for(helpers: usize) -> String {
    match helpers {
        0 => cpu_description(),
        n => format!(
            "CPU (burn flex, wasm; training on 1 thread, inference on {n} helper worker{})",
            if n == 1 { "" } else { "s" }
        ),
    }
}

/// What the CPU backend is when inference shares its tiles with `helpers` helper workers.
pub fn cpu_description_shared(helpers: usize) -> String {
    format!(
        "CPU (burn flex, wasm, {helpers} helper worker{})",
        if helpers == 1 { "" } else { "s" }
    )
}

/// Tiles for inference and previews, shrunk by [`infer_options`] to a GPU's binding limit
/// or, on the CPU, to [`CPU_BUFFER_BUDGET`] ([`InferOptions::fit_to_binding`]).
const INFER: InferOptions = InferOptions {
    tile: 512,
    batch: 2,
    views: 1,
};

/// What the CPU backend's largest convolution buffer may take: wasm memory only grows, so a
/// wide network gets smaller tiles instead of hundreds of megabytes held for the tab's life.
const CPU_BUFFER_BUDGET: u64 = 256 << 20;

/// The inference tiling for a model on a device whose largest storage binding is
/// `max_binding` bytes (none: the CPU, held to [`CPU_BUFFER_BUDGET`]).
///
/// On the CPU one tile goes through the network at a time: measured natively on one thread
/// (the AC3 demo model, 1024² slice, 480² tiles, 2026-12-07) a batch of one is as fast per
/// pixel as a batch of two (2.00 against 2.09 s) with a third less memory (73 against 110
/// MB), gives the same probabilities bit for bit, and lets the CPU helpers share a slice's
/// tiles one by one (9 tiles: 5 rounds on 2 helpers instead of 3 batches of 2 and one of 1).
pub fn infer_options(header: &ModelHeader, max_binding: Option<u64>) -> InferOptions {
    match max_binding {
        Some(limit) => INFER.fit_to_binding(&header.arch, limit),
        None => InferOptions { batch: 1, ..INFER }.fit_to_binding(&header.arch, CPU_BUFFER_BUDGET),
    }
}

/// One slice to learn from: the image scaled to [0, 1] and its labels.
#[derive(Clone, Debug)]
pub struct LabelledSlice {
    /// Image, [0, 1], `channel, y, x` (1 gray or 3 RGB planes).
    pub image: Array3<f32>,
    /// Label values (0 background; the meaning follows the config's `classes`).
    pub labels: Array2<u32>,
    /// Where it came from ("gt, slice 3"), for error messages.
    pub name: String,
}

/// Everything a training run needs.
#[derive(Clone, Debug)]
pub struct TrainData {
    /// Training slices.
    pub train: Vec<LabelledSlice>,
    /// Validation slices (empty: the bottom fifth of a single training slice).
    pub validation: Vec<LabelledSlice>,
    /// `TrainConfig` as JSON (missing fields take defaults).
    pub config_json: String,
    /// Label value meaning "not annotated".
    pub ignore_label: Option<u32>,
    /// What the data is, for the model's provenance.
    pub data_names: Vec<String>,
    /// A model file to fine-tune.
    pub init: Option<Vec<u8>>,
}

/// A picture for the UI: RGBA, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width × height × 4` bytes.
    pub rgba: Vec<u8>,
}

/// A training run.
pub struct TrainJob {
    trainer: Trainer,
    max_binding: Option<u64>,
}

impl TrainJob {
    /// Checks the settings and prepares the run (weights initialised, or loaded from `init`).
    pub fn new(data: TrainData, device: &Device) -> Result<Self, String> {
        let config: TrainConfig = serde_json::from_str(&data.config_json)
            .map_err(|e| format!("training settings: {e}"))?;
        if data.train.is_empty() {
            return Err("choose at least one training slice".into());
        }
        let slices = |s: Vec<LabelledSlice>| -> Result<Vec<Slice>, String> {
            s.into_iter()
                .map(|s| {
                    Slice::new(s.image, &s.labels, config.classes, data.ignore_label)
                        .map_err(|e| format!("{}: {e}", s.name))
                })
                .collect()
        };
        let train = slices(data.train)?;
        let validation = slices(data.validation)?;
        let init = data
            .init
            .as_deref()
            .map(ModelFile::from_bytes)
            .transpose()
            .map_err(|e| format!("model to fine-tune: {e}"))?;
        let trainer = Trainer::new(
            config,
            train,
            validation,
            data.data_names,
            device,
            init.as_ref().map(|f| (f, false)),
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            trainer,
            max_binding: None,
        })
    }

    /// Inference tiles (previews) stay under this storage-binding size (a GPU's limit).
    pub fn set_max_binding(&mut self, bytes: Option<u64>) {
        self.max_binding = bytes;
    }

    /// Read the training losses back every `every` steps ([`Trainer::read_losses_every`]).
    pub fn read_losses_every(&mut self, every: u64) {
        self.trainer.read_losses_every(every);
    }

    /// One optimiser step (synchronous reads: CPU only).
    pub fn step(&mut self) -> StepReport {
        self.trainer.step()
    }

    /// One optimiser step, reads awaited (any device).
    pub async fn step_async(&mut self) -> Result<StepReport, String> {
        self.trainer.step_async().await.map_err(|e| e.to_string())
    }

    /// Reads the losses of steps still waiting for a read (a run stopped between reads).
    pub async fn read_unread_async(&mut self) -> Result<StepReport, String> {
        self.trainer
            .read_unread_async()
            .await
            .map_err(|e| e.to_string())
    }

    /// True when every step has run.
    pub fn finished(&self) -> bool {
        self.trainer.finished()
    }

    /// Steps done.
    pub fn steps_done(&self) -> u64 {
        self.trainer.steps_done()
    }

    /// The patch side in use.
    pub fn patch(&self) -> usize {
        self.trainer.patch()
    }

    /// Steps in all (those done before a resume included).
    pub fn total_steps(&self) -> u64 {
        self.trainer.total_steps()
    }

    /// The current network's prediction of `image` ([0, 1], `channel, y, x`): foreground
    /// probability as gray (one-output nets) or class colours (synchronous: CPU only).
    pub fn preview(&self, image: &Array3<f32>) -> Result<Picture, String> {
        let header = self.trainer.header("");
        let p = predict(
            &self.trainer.net(),
            &header,
            image.view(),
            infer_options(&header, self.max_binding),
            &self.trainer.inference_device(),
            &mut |_, _| {},
        )
        .map_err(|e| e.to_string())?;
        Ok(picture(&p))
    }

    /// [`TrainJob::preview`] with reads awaited (any device).
    pub async fn preview_async(&self, image: &Array3<f32>) -> Result<Picture, String> {
        let header = self.trainer.header("");
        let p = predict_async(
            &self.trainer.net(),
            &header,
            image.view(),
            infer_options(&header, self.max_binding),
            &self.trainer.inference_device(),
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(picture(&p))
    }

    /// The model file of the current state, with the optimiser state (synchronous: CPU only).
    pub fn model_bytes(&self, saved: &str) -> Result<Vec<u8>, String> {
        Ok(self
            .trainer
            .model_file(saved)
            .map_err(|e| e.to_string())?
            .to_bytes())
    }

    /// The model file of the current state, weights read back asynchronously (any device);
    /// without optimiser state (models made in the browser are fine-tuned, not resumed).
    pub async fn model_bytes_async(&self, saved: &str) -> Result<Vec<u8>, String> {
        Ok(self
            .trainer
            .model_file_async(saved)
            .await
            .map_err(|e| e.to_string())?
            .to_bytes())
    }

    /// One line on how the run went.
    pub fn summary(&self, seconds: f64) -> String {
        let h = self.trainer.history();
        let loss = |f: Option<&emstudio_nets::model::LossPoint>| {
            f.map_or("?".into(), |p| format!("{:.4}", p.train))
        };
        format!(
            "{} steps in {seconds:.0} s; loss {} → {}{}",
            self.steps_done(),
            self.trainer
                .first_loss()
                .map_or("?".into(), |l| format!("{l:.4}")),
            loss(h.last()),
            h.iter()
                .rev()
                .find_map(|p| p.validation)
                .map(|v| format!(", validation {v:.4}"))
                .unwrap_or_default()
        )
    }
}

/// Probabilities `[classes, h, w]` as a picture.
fn picture(p: &Array3<f32>) -> Picture {
    let (_, height, width) = p.dim();
    let rgba = if p.dim().0 == 1 {
        let values: Vec<f32> = p.iter().copied().collect();
        render_intensity(&values, 1, 0.0, 1.0)
    } else {
        let classes: Vec<u32> = argmax_classes(p).into_iter().collect();
        render_labels(&classes, width, height, false)
    };
    Picture {
        width,
        height,
        rgba,
    }
}

/// A predicted slice.
#[derive(Clone, Debug, PartialEq)]
pub enum Prediction {
    /// Foreground probability (one-output models).
    Probability(Array2<f32>),
    /// The most likely class of each pixel (K-class models).
    Classes(Array2<u32>),
}

/// Reads a model file as [`InferEngine::new`] (a 2D network) or an FFN fill
/// ([`crate::ffn::FfnFillJob`], a flood-filling network) would, without keeping it: the
/// header, every weight against the architecture and finite values. The model store's
/// upload runs this before it stores a file, so a broken one is refused by name instead of
/// failing later.
pub fn check_model(bytes: &[u8]) -> Result<(), String> {
    if bytes.starts_with(emstudio_nets::ffn::file::FFN_MAGIC) {
        return emstudio_nets::ffn::file::FfnModelFile::from_bytes(bytes)
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    ModelFile::from_bytes(bytes)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A loaded model that predicts slices one at a time.
pub struct InferEngine {
    file: ModelFile,
    net: emstudio_nets::arch::Net,
    options: InferOptions,
}

impl InferEngine {
    /// Loads a model file onto `device`; tiles stay under `max_binding` bytes (a GPU's limit).
    pub fn new(model: &[u8], device: &Device, max_binding: Option<u64>) -> Result<Self, String> {
        let file = ModelFile::from_bytes(model).map_err(|e| format!("model: {e}"))?;
        let net = file.load_net(device).map_err(|e| format!("model: {e}"))?;
        Ok(Self {
            options: infer_options(&file.header, max_binding),
            file,
            net,
        })
    }

    /// This engine averaging each tile over `views` orientations (1, 4 or 8; see
    /// [`InferOptions::views`]).
    pub fn with_views(mut self, views: usize) -> Self {
        self.options.views = views;
        self
    }

    /// The tiles a `height × width` slice takes (for the user and for benchmarks).
    pub fn work(&self, height: usize, width: usize) -> Result<TileWork, String> {
        tile_work(&self.file.header.arch, height, width, self.options).map_err(|e| e.to_string())
    }

    /// The model's description.
    pub fn header(&self) -> &ModelHeader {
        &self.file.header
    }

    /// True for K-class models (predictions are [`Prediction::Classes`]).
    pub fn classes(&self) -> bool {
        self.file.header.io.out_channels > 1
    }

    fn prediction(&self, p: &Array3<f32>) -> Prediction {
        if self.classes() {
            Prediction::Classes(argmax_classes(p))
        } else {
            Prediction::Probability(p.index_axis(Axis(0), 0).to_owned())
        }
    }

    /// The tiled prediction of `image` for callers that run its batches elsewhere (the CPU
    /// helpers): [`TiledPrediction::batch_input`] each batch, [`InferEngine::forward`] it,
    /// accept the results in order, then [`InferEngine::finish`].
    pub fn tiled<'a>(&self, image: &'a Array3<f32>) -> Result<TiledPrediction<'a>, String> {
        TiledPrediction::new(&self.file.header, image.view(), self.options)
            .map_err(|e| e.to_string())
    }

    /// The prediction of a finished [`InferEngine::tiled`] run.
    pub fn finish(&self, job: TiledPrediction<'_>) -> Prediction {
        self.prediction(&job.finish())
    }

    /// Probabilities `[items, classes, height, width]` of one normalised batch
    /// `[items, channels, height, width]` (synchronous reads: CPU only). A batch whose shape
    /// does not fit the model or its values is refused by name, never run.
    pub fn forward(
        &self,
        values: Vec<f32>,
        shape: [usize; 4],
        device: &Device,
    ) -> Result<Vec<f32>, String> {
        let [items, channels, height, width] = shape;
        let m = self.file.header.arch.size_multiple();
        let wanted = self.file.header.io.in_channels;
        if items == 0 || height == 0 || width == 0 || height % m != 0 || width % m != 0 {
            return Err(format!(
                "batch of shape {shape:?}: tiles must be non-empty multiples of {m} pixels"
            ));
        }
        if channels != wanted {
            return Err(format!(
                "batch of shape {shape:?}: the model takes {wanted} channel(s)"
            ));
        }
        if shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) != Some(values.len()) {
            return Err(format!(
                "batch of shape {shape:?}: {} values attached",
                values.len()
            ));
        }
        forward_batch(&self.net, values, shape, device).map_err(|e| e.to_string())
    }

    /// Predicts `image` ([0, 1], `channel, y, x`) (synchronous reads: CPU only).
    pub fn predict(&self, image: &Array3<f32>, device: &Device) -> Result<Prediction, String> {
        let p = predict(
            &self.net,
            &self.file.header,
            image.view(),
            self.options,
            device,
            &mut |_, _| {},
        )
        .map_err(|e| e.to_string())?;
        Ok(self.prediction(&p))
    }

    /// [`InferEngine::predict`] with reads awaited (any device).
    pub async fn predict_async(
        &self,
        image: &Array3<f32>,
        device: &Device,
    ) -> Result<Prediction, String> {
        let p = predict_async(
            &self.net,
            &self.file.header,
            image.view(),
            self.options,
            device,
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(self.prediction(&p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    /// Slice `z` of bright squares on a dark, noisy background, and its mask.
    fn slice(z: usize) -> LabelledSlice {
        let inside = |y: usize, x: usize| ((y + 3 * z) / 12 + (x + 5 * z) / 12) % 3 == 0;
        let image = Array3::from_shape_fn((1, 48, 48), |(_, y, x)| {
            let noise = ((y * 31 + x * 17 + z * 7) % 13) as f32 * 4.0;
            (if inside(y, x) { 190.0 } else { 40.0 } + noise) / 255.0
        });
        let labels = Array2::from_shape_fn((48, 48), |(y, x)| u32::from(inside(y, x)));
        LabelledSlice {
            image,
            labels,
            name: format!("gt, slice {z}"),
        }
    }

    fn data(config: &str) -> TrainData {
        TrainData {
            train: vec![slice(0)],
            validation: vec![slice(1)],
            config_json: config.into(),
            ignore_label: None,
            data_names: vec!["squares".into()],
            init: None,
        }
    }

    const SMALL: &str = r#"{"arch":{"arch":"unet","depth":2,"base_width":4},"steps":40,"batch":2,
        "patch":32,"learning_rate":0.01,"schedule":{"kind":"constant"},"validation_every":20,
        "augment":{"elastic_pixels":0.0}}"#;

    fn header(arch: &str) -> ModelHeader {
        let mut job = TrainJob::new(
            data(&SMALL.replace(r#"{"arch":"unet","depth":2,"base_width":4}"#, arch)),
            &Device::flex().autodiff(),
        )
        .expect("job");
        job.step();
        ModelFile::from_bytes(&job.model_bytes("2026-11-27").expect("model"))
            .expect("model file")
            .header
    }

    #[test]
    fn uploaded_models_are_checked_as_inference_reads_them() {
        let mut job = TrainJob::new(data(SMALL), &Device::flex().autodiff()).expect("job");
        job.step();
        let good = job.model_bytes("2026-12-06").expect("model");
        check_model(&good).expect("a trained model passes");
        // The header edited to a normalisation std of 0: refused, naming the field.
        let file = ModelFile::from_bytes(&good).expect("model");
        let mut edited = file.clone();
        edited.header.normalization.std = 0.0;
        let err = check_model(&edited.to_bytes()).expect_err("std 0");
        assert!(err.contains("std"), "{err}");
        // Weights of another width, and junk.
        let mut other = file;
        other.header.arch =
            serde_json::from_str(r#"{"arch":"unet","depth":2,"base_width":8}"#).expect("arch");
        let err = check_model(&other.to_bytes()).expect_err("weights");
        assert!(err.contains("weights do not match"), "{err}");
        assert!(check_model(b"not a model").is_err());
    }

    #[test]
    fn batches_run_by_helpers_give_the_prediction_computed_alone() {
        let mut job = TrainJob::new(data(SMALL), &Device::flex().autodiff()).expect("job");
        job.step();
        let model = job.model_bytes("2026-12-07").expect("model");
        let device = Device::flex();
        // Two engines, as the network worker and a helper each load the model.
        let engine = InferEngine::new(&model, &device, None).expect("engine");
        let helper = InferEngine::new(&model, &device, None).expect("helper");
        let image =
            Array3::from_shape_fn((1, 1100, 40), |(_, y, x)| ((y * 3 + x) % 23) as f32 / 22.0);
        let Prediction::Probability(alone) = engine.predict(&image, &device).expect("alone") else {
            panic!("a one-class model predicts probabilities");
        };
        let mut tiled = engine.tiled(&image).expect("tiled");
        assert!(tiled.batches() >= 2, "more than one batch to share");
        let results: Vec<Vec<f32>> = (0..tiled.batches())
            .map(|k| {
                let (values, shape) = tiled.batch_input(k);
                helper.forward(values, shape, &device).expect("forward")
            })
            .collect();
        for r in &results {
            tiled.accept(r).expect("accept");
        }
        let Prediction::Probability(shared) = engine.finish(tiled) else {
            panic!("probabilities");
        };
        assert_eq!(shared, alone);
        // A malformed batch is refused by name, never run.
        let (values, shape) = engine.tiled(&image).expect("tiled").batch_input(0);
        let err = helper
            .forward(values.clone(), [shape[0], 3, shape[2], shape[3]], &device)
            .expect_err("channels");
        assert!(err.contains("1 channel(s)"), "{err}");
        let err = helper
            .forward(values[1..].to_vec(), shape, &device)
            .expect_err("short");
        assert!(err.contains("values attached"), "{err}");
        let err = helper
            .forward(vec![0.0; 10 * 10], [1, 1, 10, 10], &device)
            .expect_err("odd size");
        assert!(err.contains("multiples of"), "{err}");
    }

    #[test]
    fn cpu_tiles_keep_the_largest_buffer_within_the_budget() {
        // Width 8 (the browser tests' U-Net): the 512² default, one tile at a time.
        let narrow = infer_options(&header(r#"{"arch":"unet","depth":4,"base_width":8}"#), None);
        assert_eq!((narrow.tile, narrow.batch), (512, 1));
        // A wide DenseNet gets small tiles rather than a buffer of hundreds of MB.
        let wide = r#"{"arch":"densenet","blocks":3,"layers":8,"growth":32,"base_width":32}"#;
        let wide = infer_options(&header(wide), None);
        assert!(wide.tile < narrow.tile, "{wide:?}");
        let per_pixel = 9 * (32 + 8 * 32) * 4;
        assert!((wide.tile * wide.tile * per_pixel) as u64 <= CPU_BUFFER_BUDGET / 2);
        // A GPU's own limit decides there: a larger binding allows the full 512².
        let gpu = infer_options(
            &header(r#"{"arch":"unet","depth":4,"base_width":8}"#),
            Some(1 << 30),
        );
        assert_eq!(gpu.tile, 512);
    }

    #[test]
    fn trains_previews_and_predicts_held_out_slices() {
        let device = Device::flex().autodiff();
        let mut job = TrainJob::new(data(SMALL), &device).expect("job");
        let mut losses = Vec::new();
        while !job.finished() {
            losses.extend(job.step().losses);
        }
        assert_eq!(job.steps_done(), 40);
        let (first, last) = (
            losses[..5].iter().sum::<f32>(),
            losses[35..].iter().sum::<f32>(),
        );
        assert!(last < first * 0.7, "loss {first} → {last}");
        assert!(job.summary(1.0).starts_with("40 steps"));

        let held_out = slice(1);
        let preview = job.preview(&held_out.image).expect("preview");
        assert_eq!(
            (preview.width, preview.height, preview.rgba.len()),
            (48, 48, 48 * 48 * 4)
        );
        // The awaited paths (the ones WebGPU uses) give the same picture and a model file.
        let awaited = block_on(job.preview_async(&held_out.image)).expect("awaited preview");
        assert_eq!(awaited, preview);
        let saved = block_on(job.model_bytes_async("2026-11-26")).expect("awaited model");
        let saved = ModelFile::from_bytes(&saved).expect("model file");
        assert_eq!(saved.header.provenance.steps, 40);
        assert!(saved.optimizer.is_none());

        let model = job.model_bytes("2026-11-26").expect("model");
        let cpu = Device::flex();
        let engine = InferEngine::new(&model, &cpu, None).expect("engine");
        assert!(!engine.classes());
        let Prediction::Probability(p) = engine.predict(&held_out.image, &cpu).expect("predict")
        else {
            panic!("a one-output model predicts probabilities")
        };
        // Slice 1 was never trained on: the thresholded probability must overlap the squares.
        let (mut inter, mut union) = (0usize, 0usize);
        for (p, g) in p.iter().zip(held_out.labels.iter()) {
            let (a, b) = (*p > 0.5, *g > 0);
            inter += usize::from(a && b);
            union += usize::from(a || b);
        }
        assert!(inter as f64 / union as f64 > 0.6, "IoU {inter}/{union}");
        // Awaited, with tiles shrunk to a small binding limit: the same objects.
        let small = InferEngine::new(&model, &cpu, Some(1 << 16)).expect("engine");
        let Prediction::Probability(q) =
            block_on(small.predict_async(&held_out.image, &cpu)).expect("predict")
        else {
            panic!("probabilities")
        };
        let agree = p
            .iter()
            .zip(q.iter())
            .filter(|(a, b)| (**a > 0.5) == (**b > 0.5))
            .count();
        assert!(
            agree as f64 > 0.97 * p.len() as f64,
            "{agree} of {}",
            p.len()
        );

        // Fine-tuning starts from the trained weights.
        let mut d = data(SMALL);
        d.init = Some(model);
        assert!(TrainJob::new(d, &device).is_ok());
    }

    #[test]
    fn bad_requests_name_the_problem() {
        let device = Device::flex().autodiff();
        let err = |d: TrainData| TrainJob::new(d, &device).err().expect("refused");
        assert!(err(data("{not json")).starts_with("training settings"));
        let mut d = data(SMALL);
        d.train.clear();
        assert!(err(d).contains("at least one training slice"));
        let mut d = data(SMALL);
        d.init = Some(b"not a model".to_vec());
        assert!(err(d).starts_with("model to fine-tune"));
        let mut d = data(SMALL);
        d.train[0].labels = Array2::zeros((8, 8));
        let e = err(d);
        assert!(e.starts_with("gt, slice 0:"), "{e}");
        let e = InferEngine::new(b"junk", &Device::flex(), None)
            .err()
            .expect("refused");
        assert!(e.starts_with("model"), "{e}");
    }
}
