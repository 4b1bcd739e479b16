//! Training and inference of the 2D CNNs (`emstudio_nets`) on the worker's layers.
//!
//! Platform-free: [`TrainJob::step_async`] runs one optimiser step and the browser glue
//! (`web.rs`) awaits it in a loop that yields to the event loop between steps, so pause, stop,
//! cancel and render requests are served while training. Every read of a result is awaited
//! (`*_async`), because on WebGPU in the browser synchronous reads are impossible; the same
//! code runs on burn's flex CPU backend (single-threaded in the browser), where the awaits
//! resolve at once. The synchronous twins (`step`, `preview`, [`infer_layer`]) serve native
//! callers and tests.
//! Model files are the CLI's format ([`ModelFile`]), so a model moves between
//! `emstudio train` and the browser in both directions.

use crate::compute::ComputeError;
use crate::workspace::{Rendered, Workspace};
use emstudio_core::render::{render_intensity, render_labels};
use emstudio_core::{AnyVolume, Volume};
use emstudio_nets::infer::{argmax_classes, predict, predict_async, InferOptions};
use emstudio_nets::model::ModelFile;
use emstudio_nets::model::ModelHeader;
use emstudio_nets::train::{Slice, StepReport, TrainConfig, Trainer};
use emstudio_nets::Device;
use emstudio_protocol::{LayerId, Region};
use ndarray::{Array2, Array3, Axis};
use std::ops::ControlFlow;

/// What the worker's CPU backend is, for the UI.
pub fn device_description() -> String {
    if cfg!(target_arch = "wasm32") {
        "CPU (burn flex, wasm, 1 thread)".into()
    } else {
        "CPU (burn flex)".into()
    }
}

/// Tiles for inference and previews (shrunk to a GPU's binding limit, see
/// [`InferOptions::fit_to_binding`]).
const INFER: InferOptions = InferOptions {
    tile: 256,
    batch: 2,
};

/// The inference tiling for a model on a device whose largest storage binding is
/// `max_binding` bytes (none: the CPU, no limit).
pub fn infer_options(header: &ModelHeader, max_binding: Option<u64>) -> InferOptions {
    match max_binding {
        Some(bytes) => INFER.fit_to_binding(&header.arch, bytes),
        None => INFER,
    }
}

/// What a `Train` request asks for.
#[derive(Clone, Debug)]
pub struct TrainRequest {
    /// Image layer.
    pub image: LayerId,
    /// Ground-truth label layer.
    pub label: LayerId,
    /// Training slices.
    pub train_slices: Vec<usize>,
    /// Validation slices (may be empty).
    pub validation_slices: Vec<usize>,
    /// Settings as JSON (missing fields take defaults).
    pub config_json: String,
    /// Unannotated label value.
    pub ignore_label: Option<u32>,
    /// A model file to fine-tune.
    pub init: Option<Vec<u8>>,
}

/// A training run on the worker's layers.
pub struct TrainJob {
    trainer: Trainer,
    image: LayerId,
    max_binding: Option<u64>,
}

/// Grayscale slices of a layer scaled to [0, 1], or an error naming the layer.
fn unit_slices(ws: &Workspace, id: LayerId) -> Result<Array3<f32>, String> {
    let layer = ws.layer(id)?;
    layer.volume.to_unit_f32_array().map_err(|_| {
        format!(
            "{}: networks take grayscale stacks, this one has {} channels",
            layer.info.name, layer.info.channels
        )
    })
}

fn check_slices(name: &str, zs: &[usize], depth: usize) -> Result<(), String> {
    match zs.iter().find(|&&z| z >= depth) {
        Some(z) => Err(format!(
            "{name}: slice {z} requested, the stack has {depth} slices (0–{})",
            depth.saturating_sub(1)
        )),
        None => Ok(()),
    }
}

impl TrainJob {
    /// Checks the layers and settings and prepares the run (weights initialised, or loaded
    /// from `init`).
    pub fn new(ws: &Workspace, req: TrainRequest, device: &Device) -> Result<Self, String> {
        let config: TrainConfig = serde_json::from_str(&req.config_json)
            .map_err(|e| format!("training settings: {e}"))?;
        let image_layer = ws.layer(req.image)?;
        let label_layer = ws.layer(req.label)?;
        let (iname, lname) = (&image_layer.info.name, &label_layer.info.name);
        if !label_layer.info.kind.is_labels() {
            return Err(format!("{lname}: ground truth must be a label layer"));
        }
        if image_layer.info.shape != label_layer.info.shape {
            return Err(format!(
                "{lname} is {} but {iname} is {}: the ground truth must match the image",
                label_layer.info.shape, image_layer.info.shape
            ));
        }
        if req.train_slices.is_empty() {
            return Err("choose at least one training slice".into());
        }
        let depth = image_layer.info.shape.z;
        check_slices(iname, &req.train_slices, depth)?;
        check_slices(iname, &req.validation_slices, depth)?;
        let image = unit_slices(ws, req.image)?;
        let labels = label_layer
            .volume
            .to_label_array()
            .map_err(|e| format!("{lname}: {e}"))?;
        let slices = |zs: &[usize]| -> Result<Vec<Slice>, String> {
            zs.iter()
                .map(|&z| {
                    Slice::new(
                        image.index_axis(Axis(0), z).to_owned(),
                        &labels.index_axis(Axis(0), z).to_owned(),
                        config.classes,
                        req.ignore_label,
                    )
                    .map_err(|e| format!("{lname}, slice {z}: {e}"))
                })
                .collect()
        };
        let train = slices(&req.train_slices)?;
        let validation = slices(&req.validation_slices)?;
        let init = req
            .init
            .as_deref()
            .map(ModelFile::from_bytes)
            .transpose()
            .map_err(|e| format!("model to fine-tune: {e}"))?;
        let names = vec![format!("{iname} / {lname}, slices {:?}", req.train_slices)];
        let trainer = Trainer::new(
            config,
            train,
            validation,
            names,
            device,
            init.as_ref().map(|f| (f, false)),
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            trainer,
            image: req.image,
            max_binding: None,
        })
    }

    /// Inference tiles (previews) stay under this storage-binding size (a GPU's limit).
    pub fn set_max_binding(&mut self, bytes: Option<u64>) {
        self.max_binding = bytes;
    }

    /// One optimiser step (synchronous reads: CPU only).
    pub fn step(&mut self) -> StepReport {
        self.trainer.step()
    }

    /// One optimiser step, reads awaited (any device).
    pub async fn step_async(&mut self) -> Result<StepReport, String> {
        self.trainer.step_async().await.map_err(|e| e.to_string())
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

    /// Slice `z` of the image layer scaled to [0, 1], for a preview.
    pub fn preview_image(&self, ws: &Workspace, z: usize) -> Result<Array2<f32>, String> {
        let layer = ws.layer(self.image)?;
        check_slices(&layer.info.name, &[z], layer.info.shape.z)?;
        let image = layer
            .volume
            .to_unit_f32_slices(z..z + 1)
            .map_err(|e| format!("{}: {e}", layer.info.name))?;
        Ok(image.index_axis_move(Axis(0), 0))
    }

    /// The current network's prediction of slice `z` of the image layer: foreground
    /// probability as gray (one-output nets) or class colours (synchronous: CPU only).
    pub fn preview(&self, ws: &Workspace, z: usize) -> Result<Rendered, String> {
        let image = self.preview_image(ws, z)?;
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
        Ok(render_prediction(&p, image.ncols(), image.nrows()))
    }

    /// [`TrainJob::preview`] of an image from [`TrainJob::preview_image`], reads awaited.
    pub async fn preview_async(&self, image: &Array2<f32>) -> Result<Rendered, String> {
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
        Ok(render_prediction(&p, image.ncols(), image.nrows()))
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
            loss(h.first()),
            loss(h.last()),
            h.iter()
                .rev()
                .find_map(|p| p.validation)
                .map(|v| format!(", validation {v:.4}"))
                .unwrap_or_default()
        )
    }
}

fn render_prediction(p: &Array3<f32>, width: usize, height: usize) -> Rendered {
    let rgba = if p.dim().0 == 1 {
        let values: Vec<f32> = p.iter().copied().collect();
        render_intensity(&values, 1, 0.0, 1.0)
    } else {
        let classes: Vec<u32> = argmax_classes(p).into_iter().collect();
        render_labels(&classes, width, height, false)
    };
    Rendered {
        width,
        height,
        rgba,
    }
}

/// A model running over an image layer slice by slice ([`InferJob::step`]), so the browser
/// glue can yield (and honour `Cancel`) between slices. One-output models make a foreground
/// probability layer (`f32`), K-class models a class label layer; slices not asked for stay 0.
pub struct InferJob {
    file: ModelFile,
    net: emstudio_nets::arch::Net,
    layer: LayerId,
    zs: Vec<usize>,
    region: Region,
    slice_shape: (usize, usize),
    done: usize,
    prob: Array3<f32>,
    class: Array3<u32>,
    options: InferOptions,
}

impl InferJob {
    /// Loads the model and checks the layer, slices (`zs` empty: all) and region (none: whole
    /// slices).
    pub fn new(
        ws: &Workspace,
        layer: LayerId,
        model: &[u8],
        zs: &[usize],
        region: Option<Region>,
        device: &Device,
        max_binding: Option<u64>,
    ) -> Result<Self, String> {
        let file = ModelFile::from_bytes(model).map_err(|e| format!("model: {e}"))?;
        let net = file.load_net(device).map_err(|e| format!("model: {e}"))?;
        let l = ws.layer(layer)?;
        if l.info.channels != 1 {
            return Err(format!(
                "{}: networks take grayscale stacks, this one has {} channels",
                l.info.name, l.info.channels
            ));
        }
        let s = l.info.shape;
        let zs: Vec<usize> = if zs.is_empty() {
            (0..s.z).collect()
        } else {
            check_slices(&l.info.name, zs, s.z)?;
            zs.to_vec()
        };
        let region = region.unwrap_or(Region {
            y0: 0,
            y1: s.y,
            x0: 0,
            x1: s.x,
        });
        if region.y0 >= region.y1 || region.x0 >= region.x1 || region.y1 > s.y || region.x1 > s.x {
            return Err(format!(
                "{}: region rows {}..{}, columns {}..{} is empty or outside the {}×{} slice",
                l.info.name, region.y0, region.y1, region.x0, region.x1, s.y, s.x
            ));
        }
        let multi = file.header.io.out_channels > 1;
        let plane = |on: bool| if on { (s.z, s.y, s.x) } else { (0, 0, 0) };
        Ok(Self {
            options: infer_options(&file.header, max_binding),
            prob: Array3::zeros(plane(!multi)),
            class: Array3::zeros(plane(multi)),
            file,
            net,
            layer,
            zs,
            region,
            slice_shape: (s.y, s.x),
            done: 0,
        })
    }

    /// Slices done and in all.
    pub fn done_of(&self) -> (usize, usize) {
        (self.done, self.zs.len())
    }

    /// The region of the next slice to run, scaled to [0, 1]; `None` when all are done.
    pub fn next_image(&self, ws: &Workspace) -> Result<Option<Array2<f32>>, String> {
        let Some(&z) = self.zs.get(self.done) else {
            return Ok(None);
        };
        let l = ws.layer(self.layer)?;
        let image = l
            .volume
            .to_unit_f32_slices(z..z + 1)
            .map_err(|e| format!("{}: {e}", l.info.name))?;
        let Region { y0, y1, x0, x1 } = self.region;
        Ok(Some(image.slice(ndarray::s![0, y0..y1, x0..x1]).to_owned()))
    }

    /// Runs the next slice (synchronous reads: CPU only); false when all are done.
    pub fn step(&mut self, ws: &Workspace, device: &Device) -> Result<bool, String> {
        let Some(image) = self.next_image(ws)? else {
            return Ok(false);
        };
        let p = predict(
            &self.net,
            &self.file.header,
            image.view(),
            self.options,
            device,
            &mut |_, _| {},
        )
        .map_err(|e| e.to_string())?;
        Ok(self.store(&p))
    }

    /// Runs the image from [`InferJob::next_image`] with reads awaited (any device); false
    /// when all are done.
    pub async fn step_async(
        &mut self,
        image: &Array2<f32>,
        device: &Device,
    ) -> Result<bool, String> {
        let p = predict_async(
            &self.net,
            &self.file.header,
            image.view(),
            self.options,
            device,
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(self.store(&p))
    }

    /// Puts the probabilities of the current slice in place; false when all are done.
    fn store(&mut self, p: &Array3<f32>) -> bool {
        let Some(&z) = self.zs.get(self.done) else {
            return false;
        };
        let Region { y0, y1, x0, x1 } = self.region;
        if self.file.header.io.out_channels == 1 {
            self.prob
                .slice_mut(ndarray::s![z, y0..y1, x0..x1])
                .assign(&p.index_axis(Axis(0), 0));
        } else {
            self.class
                .slice_mut(ndarray::s![z, y0..y1, x0..x1])
                .assign(&argmax_classes(p));
        }
        self.done += 1;
        self.done < self.zs.len()
    }

    /// The new layer's volume and a one-line summary.
    pub fn finish(self, ws: &Workspace) -> Result<(AnyVolume, String), String> {
        let voxel_size = ws.layer(self.layer)?.volume.voxel_size();
        let header = &self.file.header;
        let (mut volume, kind): (AnyVolume, _) = if header.io.out_channels == 1 {
            (
                Volume::from_array(self.prob.view())
                    .map_err(|e| e.to_string())?
                    .into(),
                "foreground probability",
            )
        } else {
            (
                AnyVolume::from_labels(self.class.view(), voxel_size).map_err(|e| e.to_string())?,
                "classes",
            )
        };
        volume.set_voxel_size(voxel_size);
        let n = self.zs.len();
        let Region { y0, y1, x0, x1 } = self.region;
        let whole = (y0, x0) == (0, 0) && (y1, x1) == self.slice_shape;
        let part = if whole {
            String::new()
        } else {
            format!(" (rows {y0}–{}, columns {x0}–{})", y1 - 1, x1 - 1)
        };
        Ok((
            volume,
            format!(
                "{kind} of {n} slice{}{part} ({}, {} steps)",
                if n == 1 { "" } else { "s" },
                header.arch.name(),
                header.provenance.steps
            ),
        ))
    }
}

/// Runs an [`InferJob`] to the end; `progress(done, total)` may stop it between slices.
pub fn infer_layer(
    ws: &Workspace,
    layer: LayerId,
    model: &[u8],
    zs: &[usize],
    device: &Device,
    progress: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
) -> Result<(AnyVolume, String), ComputeError> {
    let mut job = InferJob::new(ws, layer, model, zs, None, device, None)?;
    loop {
        let (done, total) = job.done_of();
        if progress(done as u64, total as u64).is_break() {
            return Err(ComputeError::Cancelled);
        }
        if !job.step(ws, device)? {
            break;
        }
    }
    let (_, total) = job.done_of();
    let _ = progress(total as u64, total as u64);
    Ok(job.finish(ws)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use emstudio_protocol::LayerKind;
    use futures_lite::future::block_on;

    /// Two slices of bright squares on a dark, noisy background, and their masks.
    fn workspace() -> (Workspace, LayerId, LayerId) {
        let inside = |z: usize, y: usize, x: usize| ((y + 3 * z) / 12 + (x + 5 * z) / 12) % 3 == 0;
        let image = Array3::from_shape_fn((2, 48, 48), |(z, y, x)| {
            let noise = ((y * 31 + x * 17 + z * 7) % 13) as u8 * 4;
            if inside(z, y, x) {
                190 + noise
            } else {
                40 + noise
            }
        });
        let label = Array3::from_shape_fn((2, 48, 48), |(z, y, x)| u8::from(inside(z, y, x)));
        let mut ws = Workspace::default();
        let i = ws
            .add(
                "img",
                LayerKind::Image,
                Volume::from_array(image.view()).expect("vol").into(),
            )
            .expect("add")
            .id;
        let l = ws
            .add(
                "gt",
                LayerKind::Label,
                Volume::from_array(label.view()).expect("vol").into(),
            )
            .expect("add")
            .id;
        (ws, i, l)
    }

    fn request(i: LayerId, l: LayerId, config: &str) -> TrainRequest {
        TrainRequest {
            image: i,
            label: l,
            train_slices: vec![0],
            validation_slices: vec![1],
            config_json: config.into(),
            ignore_label: None,
            init: None,
        }
    }

    const SMALL: &str = r#"{"arch":{"arch":"unet","depth":2,"base_width":4},"steps":40,"batch":2,
        "patch":32,"learning_rate":0.01,"schedule":{"kind":"constant"},"validation_every":20,
        "augment":{"elastic_pixels":0.0}}"#;

    #[test]
    fn trains_previews_and_infers_on_layers() {
        let (ws, i, l) = workspace();
        let device = Device::flex().autodiff();
        let mut job = TrainJob::new(&ws, request(i, l, SMALL), &device).expect("job");
        let mut losses = Vec::new();
        while !job.finished() {
            losses.push(job.step().loss);
        }
        assert_eq!(job.steps_done(), 40);
        let (first, last) = (
            losses[..5].iter().sum::<f32>(),
            losses[35..].iter().sum::<f32>(),
        );
        assert!(last < first * 0.7, "loss {first} → {last}");
        assert!(job.summary(1.0).starts_with("40 steps"));

        let preview = job.preview(&ws, 1).expect("preview");
        assert_eq!(
            (preview.width, preview.height, preview.rgba.len()),
            (48, 48, 48 * 48 * 4)
        );
        assert!(job.preview(&ws, 2).unwrap_err().contains("slice 2"));
        // The awaited paths (the ones WebGPU uses) give the same picture and a model file.
        let shown = job.preview_image(&ws, 1).expect("image");
        let awaited = block_on(job.preview_async(&shown)).expect("awaited preview");
        assert_eq!(awaited.rgba, preview.rgba);
        let saved = block_on(job.model_bytes_async("2026-11-26")).expect("awaited model");
        let saved = ModelFile::from_bytes(&saved).expect("model file");
        assert_eq!(saved.header.provenance.steps, 40);
        assert!(saved.optimizer.is_none());

        let model = job.model_bytes("2026-11-26").expect("model");
        let mut calls = 0;
        let (volume, summary) = infer_layer(&ws, i, &model, &[1], &Device::flex(), &mut |_, _| {
            calls += 1;
            ControlFlow::Continue(())
        })
        .expect("infer");
        assert!(calls >= 2 && summary.contains("1 slice"), "{summary}");
        let prob = volume.to_f32_array(0..2).expect("f32");
        let gt = ws
            .layer(l)
            .expect("gt")
            .volume
            .to_label_array()
            .expect("labels");
        // Slice 1 was never trained on: the thresholded probability must overlap the squares.
        let (mut inter, mut union) = (0usize, 0usize);
        for (p, g) in prob
            .index_axis(Axis(0), 1)
            .iter()
            .zip(gt.index_axis(Axis(0), 1))
        {
            let (a, b) = (*p > 0.5, *g > 0);
            inter += usize::from(a && b);
            union += usize::from(a || b);
        }
        assert!(inter as f64 / union as f64 > 0.6, "IoU {inter}/{union}");
        // Slices not asked for stay 0.
        assert!(prob.index_axis(Axis(0), 0).iter().all(|&v| v == 0.0));

        // A region: only its pixels are computed.
        let region = Region {
            y0: 8,
            y1: 40,
            x0: 16,
            x1: 48,
        };
        let mut job =
            InferJob::new(&ws, i, &model, &[0], Some(region), &Device::flex(), None).expect("job");
        while job.step(&ws, &Device::flex()).expect("step") {}
        let (volume, summary) = job.finish(&ws).expect("finish");
        assert!(summary.contains("rows 8–39, columns 16–47"), "{summary}");
        let p = volume.to_f32_array(0..1).expect("f32");
        assert!(p.slice(ndarray::s![0, ..8, ..]).iter().all(|&v| v == 0.0));
        assert!(p
            .slice(ndarray::s![0, 8..40, 16..48])
            .iter()
            .any(|&v| v > 0.5));
        // Awaited, with tiles shrunk to a small binding limit: the same objects.
        let mut small = InferJob::new(
            &ws,
            i,
            &model,
            &[0],
            Some(region),
            &Device::flex(),
            Some(1 << 16),
        )
        .expect("job");
        while let Some(image) = small.next_image(&ws).expect("image") {
            if !block_on(small.step_async(&image, &Device::flex())).expect("step") {
                break;
            }
        }
        let q = small
            .finish(&ws)
            .expect("finish")
            .0
            .to_f32_array(0..1)
            .expect("f32");
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
        let outside = Region {
            y0: 40,
            y1: 60,
            x0: 0,
            x1: 8,
        };
        let err = InferJob::new(&ws, i, &model, &[0], Some(outside), &Device::flex(), None)
            .err()
            .expect("refused");
        assert!(err.contains("outside the 48×48 slice"), "{err}");

        // Fine-tuning starts from the trained weights.
        let mut req = request(i, l, SMALL);
        req.init = Some(model);
        assert!(TrainJob::new(&ws, req, &device).is_ok());
    }

    #[test]
    fn bad_requests_name_the_problem() {
        let (mut ws, i, l) = workspace();
        let device = Device::flex().autodiff();
        let err =
            |ws: &Workspace, r: TrainRequest| TrainJob::new(ws, r, &device).err().expect("refused");
        assert!(err(&ws, request(i, l, "{not json")).starts_with("training settings"));
        assert!(err(&ws, request(i, i, SMALL)).contains("must be a label layer"));
        let mut r = request(i, l, SMALL);
        r.train_slices = vec![5];
        assert!(err(&ws, r).contains("slice 5 requested"));
        let small = Array3::<u8>::zeros((2, 16, 16));
        let other = ws
            .add(
                "small",
                LayerKind::Label,
                Volume::from_array(small.view()).expect("vol").into(),
            )
            .expect("add")
            .id;
        assert!(err(&ws, request(i, other, SMALL)).contains("must match the image"));
        let mut r = request(i, l, SMALL);
        r.init = Some(b"not a model".to_vec());
        assert!(err(&ws, r).starts_with("model to fine-tune"));
        let infer_err = infer_layer(&ws, i, b"junk", &[], &Device::flex(), &mut |_, _| {
            ControlFlow::Continue(())
        })
        .unwrap_err();
        assert!(matches!(infer_err, ComputeError::Failed(ref e) if e.starts_with("model")));
    }
}
